//! Flows through the program under test: the lab's own stacks ping, connect, stream and
//! exchange transactions through `xdp_pass` (everything completes), the seed dropper
//! (everything is blocked) and `xdp_filter` (what its rules block is blocked, the rest
//! completes); and the judgement fails when a flow does not come to what it should. Needs root.

mod common;

use xdplab::{
    flow::{self, Ends, Flow, FlowKind, FlowStatus},
    host::privileges,
    kernel::program::{ObjectSource, Program, XdpMode},
    topology::lab::{Lab, LabConfig},
};

fn all_kinds() -> Vec<Flow> {
    [
        FlowKind::Ping,
        FlowKind::TcpConnect,
        FlowKind::TcpStream,
        FlowKind::UdpRr,
        FlowKind::TcpRr,
    ]
    .into_iter()
    .map(|kind| Flow::new(kind.to_string(), kind))
    .collect()
}

fn run_all(lab: &Lab, flows: &[Flow]) -> Vec<flow::FlowReport> {
    let ends = Ends {
        from: lab.sender_netns(),
        to: lab.receiver_netns(),
        dst: lab.receiver().ipv4().into(),
    };
    flows
        .iter()
        .map(|f| flow::run(f, &ends).expect("flow runs"))
        .collect()
}

#[test]
fn privileged_flows_library_pass_and_drop() {
    if !privileges::gate("privileged_flows_library_pass_and_drop") {
        return;
    }
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let lab = Lab::new(&LabConfig::default()).expect("lab");
        let flows = all_kinds();
        for (entry, object, want) in [
            ("xdp_pass", "xdp_pass", FlowStatus::Complete),
            ("xdp_drop_all", "xdp_drop", FlowStatus::Blocked),
        ] {
            let mut program =
                Program::load(&ObjectSource::Bundled(object.into()), entry).expect("load");
            let attachment = program.attach(lab.receiver(), mode).expect("attach");
            for report in run_all(&lab, &flows) {
                println!(
                    "{mode:?} {entry}: {} {}: {}",
                    report.name,
                    report.status,
                    report.summary()
                );
                assert_eq!(report.status, want, "{mode:?} {entry}: {report:?}");
            }
            attachment.detach().expect("detach");
        }
    }
}

use common::{mutated, scenario, show};
use xdplab::{
    report::{ScenarioReport, Status},
    scenario::run::{ExecPath, RunOptions, run_path},
};

const LIVE: [ExecPath; 2] = [ExecPath::Native, ExecPath::Generic];

fn run_live(s: &xdplab::scenario::Scenario) -> Vec<ScenarioReport> {
    LIVE.iter()
        .map(|path| run_path(s, *path, &RunOptions::default()))
        .collect()
}

/// The status of each flow by name.
fn statuses(report: &ScenarioReport) -> Vec<(String, FlowStatus)> {
    report
        .flows
        .iter()
        .map(|f| (f.name.clone(), f.status))
        .collect()
}

/// Runs a bundled flows scenario on both live paths: it passes and every flow comes to
/// `want(name)`.
fn bundled_passes(name: &str, want: impl Fn(&str) -> FlowStatus) {
    for report in run_live(&scenario(name)) {
        let shown = show(std::slice::from_ref(&report));
        println!("{shown}");
        assert_eq!(report.status, Status::Pass, "{shown}");
        assert!(!report.flows.is_empty(), "{shown}");
        for (flow, status) in statuses(&report) {
            assert_eq!(status, want(&flow), "{}: flow {flow}\n{shown}", report.mode);
        }
    }
}

#[test]
fn privileged_flows_through_xdp_pass_all_complete() {
    if !privileges::gate("privileged_flows_through_xdp_pass_all_complete") {
        return;
    }
    bundled_passes("flows-pass", |_| FlowStatus::Complete);
}

#[test]
fn privileged_flows_through_the_seed_dropper_are_all_blocked() {
    if !privileges::gate("privileged_flows_through_the_seed_dropper_are_all_blocked") {
        return;
    }
    bundled_passes("flows-drop", |_| FlowStatus::Blocked);
}

#[test]
fn privileged_flows_through_the_filter_blocked_only_where_its_rule_says() {
    if !privileges::gate("privileged_flows_through_the_filter_blocked_only_where_its_rule_says") {
        return;
    }
    bundled_passes("flows-filter", |name| {
        if name.ends_with("-8080") && !name.starts_with("udp") {
            FlowStatus::Blocked
        } else {
            FlowStatus::Complete
        }
    });
}

/// The filter's rule moved from port 8080 to 5201: the flows to 5201, expected to complete,
/// are blocked, and those to 8080, expected blocked, get through. Each is a failure line.
#[test]
fn privileged_flows_that_do_not_come_to_their_expectation_fail() {
    if !privileges::gate("privileged_flows_that_do_not_come_to_their_expectation_fail") {
        return;
    }
    let broken = mutated(
        "flows-filter",
        &[(
            "[[rule]]\nip-proto = \"tcp\"\ndst-port = 8080",
            "[[rule]]\nip-proto = \"tcp\"\ndst-port = 5201",
        )],
    );
    for report in run_live(&broken) {
        let shown = show(std::slice::from_ref(&report));
        assert_eq!(report.status, Status::Fail, "{shown}");
        let failed = |needle: &str| report.failures.iter().any(|f| f.contains(needle));
        for needle in [
            "flow \"connect-5201\" (tcp-connect): expected complete, got blocked",
            "flow \"stream-5201\" (tcp-stream): expected complete, got blocked",
            "flow \"connect-8080\" (tcp-connect): expected blocked, got complete",
            "flow \"stream-8080\" (tcp-stream): expected blocked, got complete",
        ] {
            assert!(
                failed(needle),
                "{}: no failure {needle:?}\n{shown}",
                report.mode
            );
        }
        // The flows the rule does not concern still pass, and say nothing.
        for quiet in ["\"ping\"", "\"tcp-rr-5202\"", "\"udp-rr-8080\""] {
            assert!(!failed(quiet), "{}: {quiet} failed\n{shown}", report.mode);
        }
        // Exactly those four flows fail (the send groups fail too: their verdicts moved with
        // the rule).
        let flow_failures = report
            .failures
            .iter()
            .filter(|f| f.contains("flow \""))
            .count();
        assert_eq!(flow_failures, 4, "{shown}");
    }
}

/// The seed dropper under a scenario that expects its flows to complete: every one fails.
#[test]
fn privileged_flows_blocked_where_expected_complete_fail() {
    if !privileges::gate("privileged_flows_blocked_where_expected_complete_fail") {
        return;
    }
    let text = std::fs::read_to_string(common::bundled("flows-drop")).expect("read");
    let broken = xdplab::scenario::parse(
        &text.replace("expect = \"blocked\"", "expect = \"complete\""),
        &common::bundled("flows-drop"),
    )
    .expect("parses");
    for report in run_live(&broken) {
        let shown = show(std::slice::from_ref(&report));
        assert_eq!(report.status, Status::Fail, "{shown}");
        let flow_failures = report
            .failures
            .iter()
            .filter(|f| f.contains("expected complete, got blocked"))
            .count();
        assert_eq!(flow_failures, report.flows.len(), "{shown}");
    }
}

/// The issue's own example: a firewall that drops every SYN-ACK (`xdp_synack_drop`) passes
/// its send groups frame by frame (SYNs and data segments pass) and lets ping and UDP flows
/// complete, but a scenario that expects its TCP connections and streams to complete fails,
/// each with a line saying what it got.
#[test]
fn privileged_a_synack_dropper_fails_tcp_flows_expected_complete() {
    if !privileges::gate("privileged_a_synack_dropper_fails_tcp_flows_expected_complete") {
        return;
    }
    bundled_passes("flows-synack-drop", |name| {
        if name.starts_with("connect") || name.starts_with("stream") {
            FlowStatus::Blocked
        } else {
            FlowStatus::Complete
        }
    });
    let broken = mutated(
        "flows-synack-drop",
        &[
            (
                "connections = 5\ntimeout = \"300ms\"\nexpect = \"blocked\"",
                "connections = 5\ntimeout = \"300ms\"\nexpect = \"complete\"",
            ),
            (
                "kind = \"tcp-stream\"\nfrom = \"receiver\"\ntimeout = \"300ms\"\nexpect = \"blocked\"",
                "kind = \"tcp-stream\"\nfrom = \"receiver\"\ntimeout = \"300ms\"\nexpect = \"complete\"",
            ),
        ],
    );
    for report in run_live(&broken) {
        let shown = show(std::slice::from_ref(&report));
        println!("{shown}");
        assert_eq!(report.status, Status::Fail, "{shown}");
        let failed = |needle: &str| report.failures.iter().any(|f| f.contains(needle));
        for needle in [
            "flows-synack-drop.toml:",
            "flow \"connect\" (tcp-connect): expected complete, got blocked: 0 established, \
             0 refused, 5 timed out",
            "flow \"stream\" (tcp-stream): expected complete, got blocked: 0 B",
        ] {
            assert!(
                failed(needle),
                "{}: no failure {needle:?}\n{shown}",
                report.mode
            );
        }
        assert!(!failed("\"ping\""), "{}: ping failed\n{shown}", report.mode);
        assert!(
            !failed("\"udp-rr\""),
            "{}: udp-rr failed\n{shown}",
            report.mode
        );
        assert_eq!(report.failures.len(), 2, "{shown}");
        let ping = report
            .flows
            .iter()
            .find(|f| f.name == "ping")
            .expect("ping");
        assert_eq!(ping.status, FlowStatus::Complete, "{shown}");
    }
}

/// `flows-compare`: every flow is measured with the program, with no program and with
/// `xdp_pass`, in one run, on both live paths; the human report has a table per flow and the
/// JSON the three figures and their ratios. Sane, not absolute: every figure and ratio is
/// positive and finite, and the other labs' reports are whole flows of their own.
#[test]
fn privileged_flows_compare_three_labs() {
    if !privileges::gate("privileged_flows_compare_three_labs") {
        return;
    }
    for report in run_live(&scenario("flows-compare")) {
        let shown = show(std::slice::from_ref(&report));
        println!("{shown}");
        assert_eq!(report.status, Status::Pass, "{shown}");
        assert_eq!(report.flows.len(), 3, "{shown}");
        for flow in &report.flows {
            let c = flow.comparison.as_ref().expect("a comparison");
            let want = match flow.kind {
                FlowKind::Ping => "rtt_p50_us",
                FlowKind::TcpStream => "goodput_bps",
                _ => "tps",
            };
            assert_eq!(c.figure, want, "{shown}");
            for (what, v) in [
                ("program", c.program),
                ("no_program", c.no_program),
                ("xdp_pass", c.xdp_pass),
                ("ratio_no_program", c.ratio_no_program),
                ("ratio_xdp_pass", c.ratio_xdp_pass),
            ] {
                let v = v.unwrap_or_else(|| panic!("{}: no {what}\n{shown}", flow.name));
                assert!(
                    v > 0.0 && v.is_finite(),
                    "{}: {what} {v}\n{shown}",
                    flow.name
                );
            }
            let (base, pass) = (
                flow.baseline.as_ref().expect("baseline"),
                flow.xdp_pass.as_ref().expect("xdp_pass"),
            );
            assert_eq!(base.status, FlowStatus::Complete, "{shown}");
            assert_eq!(pass.status, FlowStatus::Complete, "{shown}");
            // The ratios are of the figures shown.
            let (p, n, x) = (
                c.program.unwrap_or_default(),
                c.no_program.unwrap_or_default(),
                c.xdp_pass.unwrap_or_default(),
            );
            assert!((c.ratio_no_program.unwrap_or_default() - p / n).abs() < 1e-9);
            assert!((c.ratio_xdp_pass.unwrap_or_default() - p / x).abs() < 1e-9);
        }
        for line in ["no program", "xdp_pass", "under test", "under test / lab"] {
            assert!(shown.contains(line), "no {line:?}\n{shown}");
        }
        let json = report.json();
        let stream = json["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .find(|f| f["name"] == "stream")
            .expect("stream");
        for key in ["baseline", "xdp_pass", "comparison"] {
            assert!(stream.get(key).is_some(), "no {key} in {stream}");
        }
        assert!(
            stream["xdp_pass"]["goodput_bps"]
                .as_f64()
                .is_some_and(|g| g > 0.0)
        );
        assert!(
            stream["comparison"]["ratio_xdp_pass"]
                .as_f64()
                .is_some_and(|r| r > 0.0)
        );
    }
}

/// `direction = "reverse"`: the listener sends the stream back to the connecting end. Through
/// a program on the receiver's veth that drops every frame longer than 200 bytes
/// (`xdp_frags_limit`), a stream from the sender (its data segments go through the program)
/// is blocked after its handshake, while the same stream reversed (only the connecting end's
/// ACKs go through the program) arrives whole, and ping completes. Each stream comes to
/// what it should on both live paths; with the directions swapped, both fail.
#[test]
fn privileged_a_stream_goes_either_way() {
    let test = "privileged_a_stream_goes_either_way";
    // xdp_frags_limit is an `xdp.frags` program: the kernel loads those from 5.18.
    let frags: xdplab::host::requires::Requirement = "kernel>=5.18".parse().expect("requirement");
    if !privileges::gate(test) || !xdplab::host::requires::gate(test, &[frags]) {
        return;
    }
    let text = |forward: &str, reverse: &str| {
        format!(
            "schema-version = 1\nname = \"stream-directions\"\n\n[program]\nobject = \"xdp_frags\"\n\
             entry = \"xdp_frags_limit\"\n\n[[setup.map]]\nmap = \"len_limit\"\nkey = 0\nvalue = 200\n\n\
             [[send]]\nname = \"small\"\ncount = 10\nipv4 = {{}}\nudp = {{ dst-port = 9 }}\nexpect = \"pass\"\n\n\
             [[flow]]\nname = \"ping\"\nkind = \"ping\"\ncount = 5\nexpect = \"complete\"\n\n\
             [[flow]]\nname = \"forward\"\nkind = \"tcp-stream\"\nbytes = 1048576\ntimeout = \"300ms\"\n\
             expect = \"{forward}\"\n\n\
             [[flow]]\nname = \"reverse\"\nkind = \"tcp-stream\"\nport = 5202\nbytes = 1048576\n\
             timeout = \"300ms\"\ndirection = \"reverse\"\nexpect = \"{reverse}\"\n"
        )
    };
    let parse = |t: &str| {
        xdplab::scenario::parse(t, &common::bundled("stream-directions")).expect("parses")
    };
    for report in run_live(&parse(&text("blocked", "complete"))) {
        let shown = show(std::slice::from_ref(&report));
        println!("{shown}");
        assert_eq!(report.status, Status::Pass, "{shown}");
        let reverse = report
            .flows
            .iter()
            .find(|f| f.name == "reverse")
            .expect("reverse");
        assert_eq!(reverse.bytes, Some(1_048_576), "{shown}");
        assert_eq!(reverse.intact, Some(true), "{shown}");
    }
    for report in run_live(&parse(&text("complete", "blocked"))) {
        let shown = show(std::slice::from_ref(&report));
        assert_eq!(report.status, Status::Fail, "{shown}");
        for needle in [
            "flow \"forward\" (tcp-stream): expected complete, got blocked",
            "flow \"reverse\" (tcp-stream): expected blocked, got complete",
        ] {
            assert!(
                report.failures.iter().any(|f| f.contains(needle)),
                "no {needle:?}\n{shown}"
            );
        }
    }
}

/// The JSON of a flow carries the keys the README documents, for its kind.
#[test]
fn privileged_flow_json_has_the_documented_keys() {
    if !privileges::gate("privileged_flow_json_has_the_documented_keys") {
        return;
    }
    let report = run_path(
        &scenario("flows-pass"),
        ExecPath::Generic,
        &RunOptions::default(),
    );
    let json = report.json();
    let flows = json["flows"].as_array().expect("flows array");
    let keys = |name: &str| -> Vec<String> {
        let flow = flows
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("flow {name}"));
        let mut k: Vec<String> = flow.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |k: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = k.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    };
    let common = ["name", "kind", "expect", "status", "duration_ms", "frames"];
    assert_eq!(
        keys("ping"),
        sorted(&[&common[..], &["sent", "received", "loss_pct", "rtt_us"]].concat())
    );
    assert_eq!(
        keys("connect"),
        sorted(&[&common[..], &["connections"]].concat())
    );
    assert_eq!(
        keys("stream"),
        sorted(
            &[
                &common[..],
                &[
                    "bytes",
                    "intact",
                    "goodput_bps",
                    "retransmits",
                    "baseline",
                    "goodput_ratio"
                ]
            ]
            .concat()
        )
    );
    assert_eq!(
        keys("udp-rr"),
        sorted(
            &[
                &common[..],
                &[
                    "sent",
                    "transactions",
                    "tps",
                    "latency_us",
                    "errors",
                    "loss_pct"
                ]
            ]
            .concat()
        )
    );
    let ping = flows.iter().find(|f| f["name"] == "ping").expect("ping");
    assert_eq!(ping["status"], "complete");
    assert_eq!(ping["sent"], 20);
    assert!(
        ping["rtt_us"]["p99"].as_u64().expect("p99")
            >= ping["rtt_us"]["p50"].as_u64().expect("p50")
    );
    let connect = flows
        .iter()
        .find(|f| f["name"] == "connect")
        .expect("connect");
    assert_eq!(connect["connections"]["established"], 20);
    let stream = flows
        .iter()
        .find(|f| f["name"] == "stream")
        .expect("stream");
    assert_eq!(stream["baseline"]["status"], "complete", "{stream}");
    assert_eq!(stream["baseline"]["bytes"], 4_194_304, "{stream}");
    assert!(
        stream["goodput_ratio"].as_f64().is_some_and(|r| r > 0.0),
        "{stream}"
    );
    let rr = flows
        .iter()
        .find(|f| f["name"] == "udp-rr")
        .expect("udp-rr");
    assert!(rr["latency_us"]["p999"].is_u64(), "{rr}");
    let mut frame_keys: Vec<&str> = rr["frames"]
        .as_object()
        .expect("frames")
        .keys()
        .map(String::as_str)
        .collect();
    frame_keys.sort_unstable();
    assert_eq!(
        frame_keys,
        [
            "at",
            "counted",
            "direction",
            "ring_drops",
            "seen",
            "sockets_sent"
        ],
        "{rr}"
    );
}

/// `flows-counted`: on both live paths each flow's frames at the program are at least what
/// its sockets sent toward it (exactly, for echo requests and UDP requests, one frame each,
/// in the first two flows: a TCP flow's late ACK would count for the flow after it),
/// and `pass_cnt` grew by the send group's frames plus the flows' (`plus-flow-frames`); on
/// test-run the flows do not run and add nothing. Without `plus-flow-frames` the same map
/// check fails on the live paths: the map sees the flows' packets.
#[test]
fn privileged_flows_frames_are_counted_and_reconciled() {
    if !privileges::gate("privileged_flows_frames_are_counted_and_reconciled") {
        return;
    }
    for report in run_live(&scenario("flows-counted")) {
        let shown = show(std::slice::from_ref(&report));
        println!("{shown}");
        assert_eq!(report.status, Status::Pass, "{shown}");
        let mut total = 0;
        for flow in &report.flows {
            let frames = flow.frames.as_ref().expect("frames on a live path");
            assert_eq!(frames.direction, "forward", "{shown}");
            assert!(frames.sockets_sent > 0, "{shown}");
            assert!(
                frames.seen + frames.ring_drops >= frames.sockets_sent,
                "{}: {frames:?}\n{shown}",
                flow.name
            );
            if matches!(flow.kind, FlowKind::Ping | FlowKind::UdpRr) {
                assert_eq!(frames.seen, frames.sockets_sent, "{}\n{shown}", flow.name);
            }
            total += frames.seen;
        }
        let check = report
            .maps
            .iter()
            .find(|m| m.map == "pass_cnt")
            .expect("pass_cnt checked");
        // Reported as the send group's share; the flows' frames are in a note.
        assert_eq!(check.actual, serde_json::json!("delta 100"), "{shown}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains(&format!("delta 100 plus {total} frame(s) of the flows"))),
            "{shown}"
        );
    }
    let test_run = run_path(
        &scenario("flows-counted"),
        ExecPath::TestRun,
        &RunOptions::default(),
    );
    assert_eq!(
        test_run.status,
        Status::Pass,
        "{}",
        show(std::slice::from_ref(&test_run))
    );
    let without = mutated("flows-counted", &[("plus-flow-frames = true\n", "")]);
    for report in run_live(&without) {
        let shown = show(std::slice::from_ref(&report));
        assert_eq!(report.status, Status::Fail, "{shown}");
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.starts_with("map pass_cnt[0]: expected delta 100, got delta ")),
            "{shown}"
        );
    }
}

/// The test-run path has no stacks: every flow is reported skipped, with a note, and the
/// scenario is judged on its frames alone.
#[test]
fn privileged_flows_are_skipped_on_test_run() {
    if !privileges::gate("privileged_flows_are_skipped_on_test_run") {
        return;
    }
    let report = run_path(
        &scenario("flows-drop"),
        ExecPath::TestRun,
        &RunOptions::default(),
    );
    let shown = show(std::slice::from_ref(&report));
    assert_eq!(report.status, Status::Pass, "{shown}");
    assert!(
        report.flows.iter().all(|f| f.status == FlowStatus::Skip),
        "{shown}"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("flow(s) not run")),
        "{shown}"
    );
}

/// ICMPv6 echo in a lab that keeps IPv6: through `xdp_pass` it completes, through the dropper
/// it is blocked.
#[test]
fn privileged_ping6_through_pass_and_drop() {
    if !privileges::gate("privileged_ping6_through_pass_and_drop") {
        return;
    }
    let lab = Lab::new(&LabConfig {
        ipv6: true,
        ..LabConfig::default()
    })
    .expect("lab");
    let ends = Ends {
        from: lab.sender_netns(),
        to: lab.receiver_netns(),
        dst: lab.receiver().ipv6().into(),
    };
    let mut ping = Flow::new("ping6", FlowKind::Ping);
    ping.count = 10;
    for (object, entry, want) in [
        ("xdp_pass", "xdp_pass", FlowStatus::Complete),
        ("xdp_drop", "xdp_drop_all", FlowStatus::Blocked),
    ] {
        let mut program =
            Program::load(&ObjectSource::Bundled(object.into()), entry).expect("load");
        let attachment = program
            .attach(lab.receiver(), XdpMode::Generic)
            .expect("attach");
        let report = flow::run(&ping, &ends).expect("flow runs");
        println!("{entry}: {}", report.summary());
        assert_eq!(report.status, want, "{entry}: {report:?}");
        attachment.detach().expect("detach");
    }
}

/// A goodput floor no program can reach (100 times the same stream with no program) fails the
/// scenario with a located line, on both live paths.
#[test]
fn privileged_a_goodput_below_the_floor_fails() {
    if !privileges::gate("privileged_a_goodput_below_the_floor_fails") {
        return;
    }
    let broken = mutated(
        "flows-pass",
        &[("min-goodput-ratio = 0.05", "min-goodput-ratio = 100.0")],
    );
    for report in run_live(&broken) {
        let shown = show(std::slice::from_ref(&report));
        assert_eq!(report.status, Status::Fail, "{shown}");
        assert!(
            report.failures.iter().any(
                |f| f.contains("flows-pass.toml:") && f.contains("below min-goodput-ratio 100")
            ),
            "{shown}"
        );
    }
}

/// Flows routed through a forwarding program (`xdp_fib_router` redirects them from
/// `router:in` to `router:out`; the router's stack forwards the answers): all complete, in
/// driver mode too, which needs full checksums on the lab's veths.
#[test]
fn privileged_flows_through_a_router_complete() {
    if !privileges::gate("privileged_flows_through_a_router_complete") {
        return;
    }
    bundled_passes("flows-router", |_| FlowStatus::Complete);
}

/// Runs `program ARGS` in the network namespace `ns` (`ip netns exec`): the child enters it
/// between fork and exec, so this process's threads never move.
fn in_netns(
    ns: &xdplab::kernel::netns::NetNs,
    program: &str,
    args: &[&str],
) -> std::process::Command {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    use std::os::unix::process::CommandExt as _;
    let mut command = std::process::Command::new(program);
    command.args(args);
    let fd = ns.as_fd().as_raw_fd();
    // SAFETY: setns(2) is async-signal-safe, and the namespace's descriptor stays open in the
    // parent (so in the child) until the command has run.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command
}

/// Whether `tool` runs here (`tool --version` or `-V`).
fn have(tool: &str, flag: &str) -> bool {
    std::process::Command::new(tool)
        .arg(flag)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The tools people check a program with agree with xdplab's flows in the same lab: iputils'
/// `ping` loses exactly what the ping flow loses (nothing through `xdp_pass`, everything
/// through the dropper), and `iperf3`'s goodput of a 4 MiB stream is within a factor of 10 of
/// the tcp-stream flow's (both short streams on a shared machine: the factor bounds gross
/// disagreement such as a unit error, not noise). SKIP when the tools are missing.
#[test]
fn privileged_flows_agree_with_ping_and_iperf3() {
    if !privileges::gate("privileged_flows_agree_with_ping_and_iperf3") {
        return;
    }
    let (ping, iperf3) = (have("ping", "-V"), have("iperf3", "--version"));
    if !ping && !iperf3 {
        eprintln!(
            "SKIP: privileged_flows_agree_with_ping_and_iperf3: neither ping (iputils) nor iperf3 is installed"
        );
        return;
    }
    let lab = Lab::new(&LabConfig::default()).expect("lab");
    let dst = lab.receiver().ipv4().to_string();
    let ends = Ends {
        from: lab.sender_netns(),
        to: lab.receiver_netns(),
        dst: lab.receiver().ipv4().into(),
    };
    for (object, entry, blocked) in [
        ("xdp_pass", "xdp_pass", false),
        ("xdp_drop", "xdp_drop_all", true),
    ] {
        let mut program =
            Program::load(&ObjectSource::Bundled(object.into()), entry).expect("load");
        let attachment = program
            .attach(lab.receiver(), XdpMode::Generic)
            .expect("attach");
        if ping {
            let mut flow = Flow::new("ping", FlowKind::Ping);
            flow.count = 20;
            let ours = flow::run(&flow, &ends).expect("ping flow");
            // The lab keeps echo replies off; the ping flow turns them on only for itself.
            lab.receiver_netns()
                .run(|| std::fs::write("/proc/sys/net/ipv4/icmp_echo_ignore_all", "0"))
                .expect("enter")
                .expect("echo replies on");
            let out = in_netns(
                lab.sender_netns(),
                "ping",
                &["-c", "20", "-i", "0.01", "-W", "1", "-q", &dst],
            )
            .output()
            .expect("ping runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let summary = text
                .lines()
                .find(|l| l.contains("packets transmitted"))
                .unwrap_or_else(|| panic!("ping printed no summary: {text}"));
            let number = |before: &str| -> u64 {
                let words: Vec<&str> = summary
                    .split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .collect();
                let i = words
                    .iter()
                    .position(|w| *w == before)
                    .unwrap_or_else(|| panic!("{summary}"));
                words[i - 1].parse().unwrap_or_else(|_| panic!("{summary}"))
            };
            let (sent, received) = (number("packets"), number("received"));
            println!("{entry}: ping {received}/{sent}; xdplab {}", ours.summary());
            assert_eq!(Some(sent), ours.sent, "{entry}: {summary} vs {ours:?}");
            assert_eq!(
                Some(received),
                ours.received,
                "{entry}: {summary} vs {ours:?}"
            );
            assert_eq!(received == 0, blocked, "{entry}: {summary}");
        }
        if iperf3 && !blocked {
            let mut flow = Flow::new("stream", FlowKind::TcpStream);
            flow.port = 5301;
            let ours = flow::run(&flow, &ends).expect("stream flow");
            let mut server = in_netns(
                lab.receiver_netns(),
                "iperf3",
                &["-s", "-1", "-p", "5302", "-B", &dst],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("iperf3 server starts");
            // The server listens within a moment; the client retries until then, bounded.
            let mut result = None;
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let out = in_netns(
                    lab.sender_netns(),
                    "iperf3",
                    &["-c", &dst, "-p", "5302", "-n", "4M", "-J"],
                )
                .output()
                .expect("iperf3 client runs");
                if out.status.success() {
                    result = Some(out.stdout);
                    break;
                }
            }
            // Bounded: the server serves one client (-1); if none came, it is stopped here.
            let _ = server.kill();
            let _ = server.wait();
            let json: serde_json::Value =
                serde_json::from_slice(&result.expect("iperf3 ran within 2 s")).expect("iperf3 -J");
            let theirs = json["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .expect("bits_per_second");
            let ours_bps = ours.goodput_bps.expect("goodput");
            println!(
                "{entry}: iperf3 {:.1} Mbit/s; xdplab {:.1} Mbit/s",
                theirs / 1e6,
                ours_bps / 1e6
            );
            let ratio = ours_bps / theirs;
            assert!(
                (0.1..=10.0).contains(&ratio),
                "goodput ratio {ratio}: xdplab {ours_bps} vs iperf3 {theirs}"
            );
        }
        attachment.detach().expect("detach");
    }
}
