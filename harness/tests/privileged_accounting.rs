//! Exact accounting under load, and frames that belong to no group kept apart.
//!
//! - 1,000,000 frames through the seed dropper (native `xdp_drop`, the batched injector), 20
//!   runs in a row, each on a fresh lab: the program's `drop_cnt`, the kernel's own count (the
//!   veth's XDP counters: frames run through XDP and frames dropped by it) and the frames the
//!   sender says the kernel accepted are the same number, exactly, every time.
//! - Frames that are not a send group's (another run's tag, a group or sequence number never
//!   sent) injected in the middle of a run are counted as unattributed, and the groups' counts
//!   stay exact.

use std::time::{Duration, Instant};

use xdplab::{
    frame::{FrameSpec, FrameTemplate},
    host::privileges,
    inject::{Budget, batched::BatchedInjector, pnet::PnetInjector},
    kernel::program::{ObjectSource, Program, XdpMode},
    observe::{Capture, CaptureOptions, DriverStats, LinkStats},
    topology::lab::{Lab, LabConfig},
};

fn frame(spec: &str) -> FrameTemplate {
    let spec: FrameSpec = toml::from_str(spec).expect("frame spec parses");
    FrameTemplate::build(&spec, &xdplab::topology::lab::endpoints(), 1514).expect("frame builds")
}

fn drop_cnt(program: &Program) -> u64 {
    program
        .map("drop_cnt")
        .expect("map exists")
        .lookup(&0u32.to_le_bytes())
        .expect("lookup")
        .expect("slot 0 exists")
        .sum_u64()
        .expect("u64 value")
}

#[test]
fn privileged_million_frames_agree_exactly_20_times() {
    if !privileges::gate("privileged_million_frames_agree_exactly_20_times") {
        return;
    }
    const RUNS: usize = 20;
    const FRAMES: u64 = 1_000_000;
    let bytes = frame("ipv4 = {}\nudp = { dst-port = 9 }\nsize = 64")
        .bytes()
        .to_vec();
    for run in 0..RUNS {
        // A fresh lab and program each run: map, kernel counters and sender all start at 0.
        let lab = Lab::new(&LabConfig::default()).expect("lab builds");
        let mut program =
            Program::load(&ObjectSource::Bundled("xdp_drop".into()), "xdp_drop_all").expect("load");
        let _attachment = program
            .attach(lab.receiver(), XdpMode::Native)
            .expect("attach");
        let driver = DriverStats::open(lab.receiver()).expect("ethtool stats");
        let sender_link = LinkStats::open(lab.sender()).expect("link stats");
        let xdp_before = driver.xdp().expect("read");
        let tx_before = sender_link.read().expect("read");
        let map_before = drop_cnt(&program);

        let sent = BatchedInjector::open(lab.sender())
            .expect("injector")
            .send_for(
                &bytes,
                Budget {
                    frames: FRAMES,
                    // A bound, not a target: the frame count ends the loop first.
                    duration: Duration::from_secs(60),
                },
            );
        assert_eq!(
            (sent.offered, sent.accepted, sent.errors),
            (FRAMES, FRAMES, 0),
            "run {run}: the sender sends every frame: {sent:?}"
        );

        // Settle: until the kernel has run every accepted frame through XDP, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut xdp = driver.xdp().expect("read").since(&xdp_before);
        while xdp.packets < sent.accepted && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            xdp = driver.xdp().expect("read").since(&xdp_before);
        }
        let map = drop_cnt(&program) - map_before;
        let tx = sender_link.read().expect("read").since(&tx_before);
        let view = format!(
            "run {run}: accepted {}, veth xdp packets {} drops {} ring drops {}, drop_cnt {map}, \
             sender tx_packets {} tx_dropped {}, injector retries {}",
            sent.accepted,
            xdp.packets,
            xdp.drops,
            xdp.ring_drops,
            tx.tx_packets,
            tx.tx_dropped,
            sent.retries
        );
        assert_eq!(xdp.packets, sent.accepted, "{view}");
        assert_eq!(xdp.drops, sent.accepted, "{view}");
        assert_eq!(map, sent.accepted, "{view}");
        // A frame the sender's kernel counts as dropped must be one it refused (ENOBUFS on the
        // qdisc-bypass path, or a sendmmsg that stopped short) and the injector sent again:
        // 5.10 under QEMU's TCG counted 186 drops in a run of a million, with 185 calls refused
        // whole (short calls were not counted then), and XDP still saw every frame once.
        assert!(tx.tx_dropped <= sent.retries, "{view}");
        eprintln!("{view} in {:?}", sent.elapsed);
    }
}

#[test]
fn privileged_frames_of_no_group_are_counted_apart() {
    if !privileges::gate("privileged_frames_of_no_group_are_counted_apart") {
        return;
    }
    const GROUP: u32 = 200;
    let lab = Lab::new(&LabConfig::default()).expect("lab builds");
    let mut program =
        Program::load(&ObjectSource::Bundled("xdp_pass".into()), "xdp_pass").expect("load");
    let _attachment = program
        .attach(lab.receiver(), XdpMode::Native)
        .expect("attach");
    let options = CaptureOptions {
        groups: vec![GROUP, GROUP],
        ..CaptureOptions::default()
    };
    let run_id = lab.run_id();
    let capture = Capture::start(lab.receiver(), run_id, &options).expect("capture");
    let mut injector = PnetInjector::open(lab.sender()).expect("injector");
    let template = [frame("ipv4 = {}\nudp = { dst-port = 9 }\nsize = 64")];

    let first = injector.send(&template, run_id, 0, GROUP);
    // In the middle of the run: 7 frames of another run, 3 of a group this run never sends.
    let other_run = injector.send(&template, run_id.wrapping_add(1), 0, 7);
    let no_group = injector.send(&template, run_id, 9, 3);
    let second = injector.send(&template, run_id, 1, GROUP);
    for (what, stats, n) in [
        ("first", &first, GROUP),
        ("other run", &other_run, 7),
        ("no group", &no_group, 3),
        ("second", &second, GROUP),
    ] {
        assert_eq!(stats.accepted, u64::from(n), "{what}: {stats:?}");
    }
    let total = u64::from(2 * GROUP + 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    while capture.frames() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let captured = capture.finish().expect("capture");
    for group in 0..2 {
        assert!(
            (0..GROUP as usize).all(|seq| captured.times_seen(group, seq) == 1),
            "group {group}: every frame exactly once, no foreign frame counted in"
        );
    }
    assert_eq!(captured.stray_tagged, 3, "{captured:?}");
    assert_eq!(captured.unattributed(), 10, "{captured:?}");
    assert_eq!(captured.total, total);
}
