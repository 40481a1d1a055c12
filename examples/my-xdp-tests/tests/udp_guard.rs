//! Tests of the user's own XDP program (`bpf/udp_guard.bpf.c`) through xdplab's library: the
//! scenario in `udp_guard.toml` on every execution path, and a wrong expectation that must
//! fail with xdplab's report. Run as root: `cargo test`. Without privileges each test prints a
//! SKIP line and passes; with `XDPLAB_REQUIRE_PRIVILEGES=1` (as in CI) it fails instead.

use std::path::{Path, PathBuf};

use xdplab::{
    privileges,
    report::Status,
    scenario::{
        self, Scenario,
        run::{ExecPath, RunOptions, run_paths},
    },
};

fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/udp_guard.toml")
}

/// The scenario with `from` replaced by `to`.
fn edited(from: &str, to: &str) -> Scenario {
    let text = std::fs::read_to_string(path()).expect("scenario file");
    assert!(text.contains(from));
    scenario::parse(&text.replace(from, to), &path()).expect("scenario parses")
}

#[test]
fn udp_guard_drops_the_configured_port_on_every_path() {
    if !privileges::gate("udp_guard_drops_the_configured_port_on_every_path") {
        return;
    }
    let guard = scenario::load(&path()).expect("scenario parses");
    let paths = [ExecPath::Native, ExecPath::Generic, ExecPath::TestRun];
    let (reports, differences) = run_paths(&guard, &paths, &RunOptions::default());
    assert_eq!(reports.len(), 3);
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", report.human());
    }
    assert!(differences.is_empty(), "{differences:?}");
}

#[test]
fn a_guard_configured_for_another_port_fails_with_the_report() {
    if !privileges::gate("a_guard_configured_for_another_port_fails_with_the_report") {
        return;
    }
    let report = scenario::run::run(&edited("blocked_port = 53", "blocked_port = 54"));
    assert_eq!(report.status, Status::Fail, "{}", report.human());
    let text = report.human();
    assert!(
        text.contains("send \"dns\"") && text.contains("expected drop"),
        "{text}"
    );
    assert!(text.contains("guard_stats[1]"), "{text}");
}

#[test]
fn a_missing_object_is_bad_input_not_a_failed_run() {
    let missing = edited("../bpf/udp_guard.bpf.o", "../bpf/no_such.bpf.o");
    let error = scenario::run::check_objects(&missing).expect_err("no such object");
    assert!(error.to_string().contains("no_such.bpf.o"), "{error}");
}
