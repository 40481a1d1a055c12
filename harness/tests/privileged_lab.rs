//! End-to-end checks of the lab through the library API (needs root; see `privileges::gate`).
//!
//! Each test builds its own lab in its own namespaces, so they run in parallel.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use xdplab::{
    frame::{FrameSpec, FrameTemplate},
    host::privileges,
    inject::pnet::PnetInjector,
    kernel::program::{ObjectSource, Program, XdpMode},
    observe::{Capture, CaptureOptions, DriverStats, LinkStats},
    report::{ScenarioReport, Status},
    scenario,
    topology::lab::{Lab, LabConfig},
    verdict::Verdict,
};

fn frame(spec: &str) -> FrameTemplate {
    let spec: FrameSpec = toml::from_str(spec).expect("frame spec parses");
    FrameTemplate::build(&spec, &xdplab::topology::lab::endpoints(), 1514).expect("frame builds")
}

fn groups(frames: u32) -> CaptureOptions {
    CaptureOptions {
        groups: vec![frames],
        ..CaptureOptions::default()
    }
}

fn counter(program: &Program, map: &str) -> u64 {
    program
        .map(map)
        .expect("map exists")
        .lookup(&0u32.to_le_bytes())
        .expect("lookup")
        .expect("slot 0 exists")
        .sum_u64()
        .expect("u64 value")
}

/// Polls `f` until it returns true or the deadline passes; returns the last answer.
fn wait_for(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn seed_dropper_counts_exactly(mode: XdpMode) {
    const FRAMES: u32 = 10_000;
    let lab = Lab::new(&LabConfig::default()).expect("lab builds");
    let mut program =
        Program::load(&ObjectSource::Bundled("xdp_drop".into()), "xdp_drop_all").expect("load");
    let _attachment = program.attach(lab.receiver(), mode).expect("attach");
    let driver = DriverStats::open(lab.receiver()).expect("ethtool stats");
    let link = LinkStats::open(lab.receiver()).expect("link stats");
    let xdp_before = driver.xdp().expect("read");
    let rx_before = link.read().expect("read");
    let capture = Capture::start(lab.receiver(), lab.run_id(), &groups(FRAMES)).expect("capture");
    let mut injector = PnetInjector::open(lab.sender()).expect("injector");

    let sent = injector.send(
        &[frame("ipv4 = {}\nudp = { dst-port = 9 }\nsize = 64")],
        lab.run_id(),
        0,
        FRAMES,
    );
    assert_eq!(sent.accepted, u64::from(FRAMES), "sender: {sent:?}");

    let settled = wait_for(Duration::from_secs(5), || {
        counter(&program, "drop_cnt") >= u64::from(FRAMES)
    });
    assert!(settled, "drop_cnt never reached {FRAMES}");
    let map = counter(&program, "drop_cnt");
    let captured = capture.finish().expect("capture");
    let rx = link.read().expect("read").since(&rx_before);
    assert_eq!(map, u64::from(FRAMES), "program map");
    assert_eq!(rx.rx_packets, u64::from(FRAMES), "device received");
    if mode == XdpMode::Native {
        let xdp = driver.xdp().expect("read").since(&xdp_before);
        assert_eq!(xdp.packets, u64::from(FRAMES), "veth xdp_packets");
        assert_eq!(
            xdp.drops,
            u64::from(FRAMES),
            "veth xdp_drops (kernel oracle)"
        );
    }
    let seen: u32 = captured.seen[0].iter().sum();
    assert_eq!(seen, 0, "a dropped frame reached the receiver");
    assert_eq!(captured.total, 0, "nothing at all may arrive: {captured:?}");
}

#[test]
fn privileged_seed_dropper_counts_exactly_native() {
    if !privileges::gate("privileged_seed_dropper_counts_exactly_native") {
        return;
    }
    seed_dropper_counts_exactly(XdpMode::Native);
}

#[test]
fn privileged_seed_dropper_counts_exactly_generic() {
    if !privileges::gate("privileged_seed_dropper_counts_exactly_generic") {
        return;
    }
    seed_dropper_counts_exactly(XdpMode::Generic);
}

#[test]
fn privileged_passed_frames_arrive_tagged() {
    if !privileges::gate("privileged_passed_frames_arrive_tagged") {
        return;
    }
    const FRAMES: u32 = 500;
    let lab = Lab::new(&LabConfig::default()).expect("lab builds");
    let mut program =
        Program::load(&ObjectSource::Bundled("xdp_pass".into()), "xdp_pass").expect("load");
    let _attachment = program
        .attach(lab.receiver(), XdpMode::Native)
        .expect("attach");
    let capture = Capture::start(lab.receiver(), lab.run_id(), &groups(FRAMES)).expect("capture");
    let mut injector = PnetInjector::open(lab.sender()).expect("injector");
    let template = frame("ipv6 = {}\ntcp = { dst-port = 80, flags = \"S\" }");
    let sent = injector.send(std::slice::from_ref(&template), lab.run_id(), 0, FRAMES);
    assert_eq!(sent.accepted, u64::from(FRAMES));
    assert!(
        wait_for(Duration::from_secs(5), || capture.frames()
            >= u64::from(FRAMES)),
        "only {} of {FRAMES} frames arrived",
        capture.frames()
    );
    let captured = capture.finish().expect("capture");
    assert!(
        (0..FRAMES as usize).all(|seq| captured.times_seen(0, seq) == 1),
        "every sequence number exactly once"
    );
    assert_eq!(counter(&program, "pass_cnt"), u64::from(FRAMES));
}

fn run_text(text: &str) -> ScenarioReport {
    let scenario = scenario::parse(text, Path::new("inline.toml")).expect("scenario parses");
    scenario::run::run(&scenario)
}

const MIXED: &str = r#"
schema-version = 1
name = "mixed"

[program]
object = "xdp_filter"
entry = "xdp_filter"
mode = "MODE"

[[rule]]
ip-proto = "udp"
dst-port = 53
action = "drop"

[[send]]
name = "dns-v4"
count = 300
ipv4 = {}
udp = { dst-port = 53 }
expect = "drop"

[[send]]
name = "udp-54"
count = 200
ipv4 = {}
udp = { dst-port = 54 }
expect = "pass"

[[send]]
name = "tcp6-80"
count = 100
ipv6 = {}
tcp = { dst-port = 80 }
expect = "pass"

[[send]]
name = "dns-v6-vlan"
count = 50
vlan = [{ id = 7 }]
ipv6 = {}
udp = { dst-port = 53 }
expect = "drop"

[[expect.map]]
map = "drop_cnt"
key = 0
value = 350

[[expect.map]]
map = "pass_cnt"
key = 0
value = 300
"#;

fn summary(report: &ScenarioReport) -> Vec<(String, Verdict, u64, u64, u64)> {
    report
        .groups
        .iter()
        .map(|g| (g.name.clone(), g.expect, g.sent, g.dropped, g.passed))
        .collect()
}

#[test]
fn privileged_filter_counts_exactly_on_mixed_traffic_in_both_modes() {
    if !privileges::gate("privileged_filter_counts_exactly_on_mixed_traffic_in_both_modes") {
        return;
    }
    let native = run_text(&MIXED.replace("MODE", "native"));
    assert_eq!(native.status, Status::Pass, "{}", native.human());
    let expected = vec![
        ("dns-v4".to_owned(), Verdict::Drop, 300, 300, 0),
        ("udp-54".to_owned(), Verdict::Pass, 200, 0, 200),
        ("tcp6-80".to_owned(), Verdict::Pass, 100, 0, 100),
        ("dns-v6-vlan".to_owned(), Verdict::Drop, 50, 50, 0),
    ];
    assert_eq!(summary(&native), expected);
    let xdp: Vec<_> = native
        .groups
        .iter()
        .map(|g| g.kernel.xdp.expect("native"))
        .collect();
    assert_eq!(
        xdp.iter()
            .map(|x| (x.drops, x.passed()))
            .collect::<Vec<_>>(),
        vec![(300, 0), (0, 200), (0, 100), (50, 0)],
        "kernel oracle per group"
    );
    assert!(native.counters.iter().all(|c| c.ok) && native.counters.len() == 2);

    let generic = run_text(&MIXED.replace("MODE", "generic"));
    assert_eq!(generic.status, Status::Pass, "{}", generic.human());
    assert_eq!(
        summary(&generic),
        summary(&native),
        "same verdicts in both modes"
    );
}

#[test]
fn privileged_wrong_expectation_fails_with_the_frames_named() {
    if !privileges::gate("privileged_wrong_expectation_fails_with_the_frames_named") {
        return;
    }
    let text = MIXED
        .replace("MODE", "native")
        .replace("value = 350", "value = 349");
    let text = text.replacen("expect = \"pass\"", "expect = \"drop\"", 1);
    let report = run_text(&text);
    assert_eq!(report.status, Status::Fail);
    let failures = report.failures.join("\n");
    assert!(
        failures.contains(
            "send \"udp-54\": expected drop, 200 of 200 frames went elsewhere: 200 pass (at receiver:"
        ),
        "{failures}"
    );
    assert!(failures.contains("seq 0, 1, 2"), "{failures}");
    assert!(
        failures.contains("map drop_cnt[0]: expected 349, got 350"),
        "{failures}"
    );
}

const SHORT_VLAN: &str = r#"
schema-version = 1
name = "short-vlan"

[program]
object = "xdp_pass"
entry = "xdp_pass"
mode = "MODE"

# 60 bytes, no room for a tag: matched by content, which needs the VLAN tag the kernel strips
# before taps put back.
[[send]]
name = "dot1q-by-content"
count = 20
raw = "02786c000002 02786c000001 8100 0064 88b5 000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
expect = "pass"

# 16 bytes, cut inside the tag: the kernel frees it before any tap, so only counters can tell.
[[send]]
name = "cut-in-tag"
count = 20
vlan = [{ id = 10 }]
ipv4 = {}
size = 16
truncate = true
expect = "EXPECT"
"#;

#[test]
fn privileged_frames_no_capture_can_see_are_judged_by_counters() {
    if !privileges::gate("privileged_frames_no_capture_can_see_are_judged_by_counters") {
        return;
    }
    for (mode, by) in [("native", "kernel"), ("generic", "program")] {
        let ok = run_text(&SHORT_VLAN.replace("MODE", mode).replace("EXPECT", "pass"));
        assert_eq!(ok.status, Status::Pass, "{}", ok.human());
        let by_group: Vec<_> = ok
            .groups
            .iter()
            .map(|g| (g.attributed_by, g.passed))
            .collect();
        assert_eq!(by_group, vec![("content", 20), (by, 20)], "{mode}");

        let wrong = run_text(&SHORT_VLAN.replace("MODE", mode).replace("EXPECT", "drop"));
        assert_eq!(
            wrong.status,
            Status::Fail,
            "{mode}: a passed frame must not look dropped"
        );
        assert!(
            wrong.failures[0].contains("expected drop, 20 of 20 frames went elsewhere: 20 pass"),
            "{mode}: {:?}",
            wrong.failures
        );
    }
}
