//! The live injector on several CPUs: the receiving veth gets one receive queue per sending
//! CPU, and each CPU's frames land on its own queue (needs root; see `privileges::gate`). No
//! timing is checked here: rates are the benchmarks' business.

use std::time::Duration;

use xdplab::{
    host::privileges,
    host::requires::{self, Feature, Requirement},
    inject::{Budget, live::LiveInjector},
    kernel::program::{ObjectSource, Program, XdpMode},
    kernel::veth::{self, Queues},
    observe::DriverStats,
    topology::lab::{Lab, LabConfig},
};

/// `rx_queue_N_xdp_packets` of the receiver, by queue.
fn queue_packets(stats: &DriverStats) -> Vec<u64> {
    let counters = stats.read().expect("read ethtool statistics");
    (0..)
        .map_while(|q| counters.get(&format!("rx_queue_{q}_xdp_packets")).copied())
        .collect()
}

/// Two CPUs this process may run on, or `None` (the test then says it skipped).
fn two_cpus(test: &str) -> Option<[usize; 2]> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    let cpus: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    match cpus[..] {
        [a, b, ..] => Some([a, b]),
        _ => {
            eprintln!("SKIP {test}: needs two CPUs, this process may use {cpus:?}");
            None
        }
    }
}

#[test]
fn veth_queue_counts_follow_the_request() {
    const TEST: &str = "veth_queue_counts_follow_the_request";
    // veth answers ethtool's channel requests (-l and -L) from 5.14: 5.10 says EOPNOTSUPP.
    let channels: Requirement = "kernel>=5.14".parse().expect("requirement");
    if !privileges::gate(TEST) || !requires::gate(TEST, &[channels]) {
        return;
    }
    let lab = Lab::new(&LabConfig::default()).expect("lab");
    let before = veth::queues(lab.receiver()).expect("read queues");
    assert_eq!(
        (before.rx, before.tx),
        (1, 1),
        "a fresh veth uses one queue each"
    );
    if before.max_rx < 2 {
        eprintln!(
            "SKIP veth_queue_counts_follow_the_request: the veth has room for {} rx queues",
            before.max_rx
        );
        return;
    }
    let rx = veth::set_queues(lab.receiver(), 2, 2).expect("receiver queues");
    let tx = veth::set_queues(lab.sender(), 2, 2).expect("sender queues");
    for (end, q) in [(lab.receiver(), rx), (lab.sender(), tx)] {
        assert_eq!((q.rx, q.tx), (2, 2), "{q:?}");
        assert_eq!(veth::queues(end).expect("read queues"), q);
    }
    // Native XDP on the receiver holds it to at least as many rx queues as the sender has tx
    // queues: the kernel refuses to shrink it below.
    let mut program =
        Program::load(&ObjectSource::Bundled("xdp_drop".into()), "xdp_drop_all").expect("load");
    let _attachment = program
        .attach(lab.receiver(), XdpMode::Native)
        .expect("native XDP with two rx queues");
    let e = veth::set_queues(lab.receiver(), 1, 2).expect_err("fewer rx than the peer's tx");
    assert!(
        e.to_string().contains("failed to set the queue counts"),
        "{e}"
    );
    assert_eq!(
        veth::queues(lab.receiver()).expect("read queues"),
        Queues { rx: 2, tx: 2, ..rx }
    );
    // Asking for more than the veth has room for is an error, not a silent cap.
    let e = veth::set_queues(lab.sender(), before.max_rx + 1, 1).expect_err("too many");
    assert!(e.to_string().contains("has room for"), "{e}");
}

#[test]
fn each_sending_cpu_fills_its_own_receive_queue() {
    const TEST: &str = "each_sending_cpu_fills_its_own_receive_queue";
    if !privileges::gate(TEST)
        || !requires::gate(TEST, &[Requirement::Feature(Feature::LiveFrames)])
    {
        return;
    }
    let Some(cpus) = two_cpus(TEST) else {
        return;
    };
    let lab = Lab::new(&LabConfig::default()).expect("lab");
    // As many queues as the highest CPU needs, so the two CPUs map to two queues.
    let queues = u32::try_from(cpus[1] + 1).expect("a CPU number");
    let room = veth::queues(lab.receiver()).expect("read queues").max_rx;
    if room < queues {
        eprintln!(
            "SKIP {TEST}: CPU {} needs {queues} rx queues, the veth has {room}",
            cpus[1]
        );
        return;
    }
    veth::set_queues(lab.receiver(), queues, queues).expect("receiver queues");
    veth::set_queues(lab.sender(), queues, queues).expect("sender queues");
    let mut program =
        Program::load(&ObjectSource::Bundled("xdp_drop".into()), "xdp_drop_all").expect("load");
    let _attachment = program
        .attach(lab.receiver(), XdpMode::Native)
        .expect("attach");
    let stats = DriverStats::open(lab.receiver()).expect("driver stats");
    let frame = xdplab::frame::FrameTemplate::build(
        &xdplab::frame::FrameSpec {
            ipv4: Some(Default::default()),
            udp: Some(Default::default()),
            ..Default::default()
        },
        &lab.endpoints(),
        1500,
    )
    .expect("frame")
    .bytes()
    .to_vec();
    let budget = Budget {
        frames: 400_000,
        duration: Duration::from_secs(10),
    };
    let queue_of = |cpu: usize| cpu % queues as usize;

    // One CPU: every frame on its queue, none on the other's.
    let before = queue_packets(&stats);
    let sent = LiveInjector::open_on(lab.sender(), &cpus[1..])
        .expect("live injector")
        .send_for(&frame, budget);
    std::thread::sleep(Duration::from_millis(200));
    let after = queue_packets(&stats);
    let got: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(sent.errors, 0, "{sent:?}");
    assert!(sent.accepted > 0, "{sent:?}");
    assert_eq!(
        got[queue_of(cpus[0])],
        0,
        "CPU {} sent nothing: {got:?}",
        cpus[0]
    );
    assert_eq!(
        got[queue_of(cpus[1])],
        sent.accepted,
        "CPU {}'s frames, all on queue {}: {got:?}",
        cpus[1],
        queue_of(cpus[1])
    );

    // Two CPUs: each queue holds exactly what its CPU sent.
    let before = queue_packets(&stats);
    let sent = LiveInjector::open_on(lab.sender(), &cpus)
        .expect("live injector")
        .send_for(&frame, budget);
    std::thread::sleep(Duration::from_millis(200));
    let after = queue_packets(&stats);
    let got: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(sent.errors, 0, "{sent:?}");
    assert_eq!(sent.threads.len(), 2, "{sent:?}");
    for thread in &sent.threads {
        assert!(
            thread.accepted > 0,
            "CPU {} sent nothing: {sent:?}",
            thread.cpu
        );
        assert_eq!(
            got[queue_of(thread.cpu)],
            thread.accepted,
            "CPU {}'s frames on queue {}: {got:?}, {sent:?}",
            thread.cpu,
            queue_of(thread.cpu)
        );
    }
}
