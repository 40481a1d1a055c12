//! Every XDP verdict, observed where it lands, on every execution path (native, generic,
//! BPF_PROG_TEST_RUN), and failures when a verdict lands somewhere else. Needs root.

mod common;

use std::path::Path;

use common::{PATHS, edit, scenario, show};
use xdplab::{
    host::privileges,
    report::{ScenarioReport, Status},
    scenario::{
        self,
        run::{RunOptions, run_paths},
    },
};

/// A path this kernel predates (a `requires` feature, declared or added by the runner, such as
/// generic XDP with a devmap before 5.15): reported SKIP with a "needs ..." reason. On a kernel
/// that should have the feature the runner reports FAIL instead, so this cannot hide a
/// regression.
fn kernel_skip(name: &str, report: &ScenarioReport) -> bool {
    let skip = report.status == Status::Skip
        && report
            .skip_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("needs "));
    if skip {
        println!(
            "SKIP {name} on {}: {}",
            report.mode,
            report.skip_reason.as_deref().unwrap_or_default()
        );
    }
    skip
}

/// (scenario, per group: (dropped, passed, tx, redirected, aborted))
type Expected = (&'static str, &'static [(u64, u64, u64, u64, u64)]);

const VERDICTS: &[Expected] = &[
    ("seed-drop-all", &[(1000, 0, 0, 0, 0)]),
    (
        "pass-baseline-native",
        &[
            (0, 200, 0, 0, 0),
            (0, 100, 0, 0, 0),
            (0, 20, 0, 0, 0),
            (0, 50, 0, 0, 0),
        ],
    ),
    ("tx-reflector", &[(0, 0, 200, 0, 0), (0, 0, 100, 0, 0)]),
    (
        "redirect-forwarder",
        &[(0, 0, 0, 200, 0), (0, 0, 0, 100, 0)],
    ),
    (
        "aborted-udp7",
        &[
            (0, 0, 0, 0, 100),
            (0, 0, 0, 0, 50),
            (0, 100, 0, 0, 0),
            (0, 50, 0, 0, 0),
        ],
    ),
];

#[test]
fn privileged_every_verdict_lands_where_expected_on_every_path() {
    if !privileges::gate("privileged_every_verdict_lands_where_expected_on_every_path") {
        return;
    }
    for (name, groups) in VERDICTS {
        let (reports, differences) = run_paths(&scenario(name), &PATHS, &RunOptions::default());
        assert_eq!(reports.len(), 3);
        for report in &reports {
            if kernel_skip(name, report) {
                continue;
            }
            assert_eq!(report.status, Status::Pass, "{}", show(&reports));
            let counts: Vec<_> = report
                .groups
                .iter()
                .map(|g| (g.dropped, g.passed, g.tx, g.redirected, g.aborted))
                .collect();
            assert_eq!(&counts, groups, "{name} on {}", report.mode);
        }
        assert!(differences.is_empty(), "{name}: {differences:#?}");
    }
}

#[test]
fn privileged_outputs_are_checked_and_identical_across_paths() {
    if !privileges::gate("privileged_outputs_are_checked_and_identical_across_paths") {
        return;
    }
    // The reflector must swap MACs; claim it keeps them and every path must say so per field.
    let wrong = edit(
        "tx-reflector",
        "output = { swapped-macs = true, ipv4-src",
        "output = { eth-dst = \"02:78:6c:00:00:02\", ipv4-src",
    );
    let (reports, differences) = run_paths(&wrong, &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Fail, "{}", report.human());
        assert!(
            report.failures.iter().any(|f| f.contains(
                "send \"udp-v4\" seq 0: output eth-dst expected 02:78:6c:00:00:02, got 02:78:6c:00:00:01"
            )),
            "{}: {:#?}",
            report.mode,
            report.failures
        );
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_a_verdict_in_the_wrong_place_fails_on_every_path() {
    if !privileges::gate("privileged_a_verdict_in_the_wrong_place_fails_on_every_path") {
        return;
    }
    // (scenario, replace, with, what each live path must say, what test-run must say)
    let cases = [
        (
            "tx-reflector",
            "expect = \"tx\"",
            "expect = \"pass\"",
            "expected pass, 200 of 200 frames went elsewhere: 200 tx (at sender:",
            "returned tx (3)",
        ),
        (
            "redirect-forwarder",
            "expect = \"redirect\"\nredirect-to = \"dut:out\"",
            "expect = \"tx\"",
            "expected tx, 200 of 200 frames went elsewhere: 200 redirect (at sink:eth0",
            "returned redirect (4)",
        ),
        (
            "aborted-udp7",
            "expect = \"aborted\"",
            "expect = \"drop\"",
            "expected drop, 100 of 100 frames went elsewhere: 100 aborted",
            "returned aborted (0)",
        ),
        (
            "seed-drop-all",
            "expect = \"drop\"",
            "expect = \"aborted\"",
            "expected aborted, 1000 of 1000 frames went elsewhere: 1000 drop",
            "returned drop (1)",
        ),
        (
            "pass-baseline-native",
            "expect = \"pass\"",
            "expect = \"drop\"",
            "expected drop, 200 of 200 frames went elsewhere: 200 pass (at receiver:",
            "returned pass (2)",
        ),
    ];
    for (name, from, to, live, test_run) in cases {
        let (reports, _) = run_paths(&edit(name, from, to), &PATHS, &RunOptions::default());
        for report in &reports {
            if kernel_skip(name, report) {
                continue;
            }
            assert_eq!(report.status, Status::Fail, "{name}: {}", report.human());
            let want = if report.mode == "test-run" {
                test_run
            } else {
                live
            };
            assert!(
                report.failures.iter().any(|f| f.contains(want)),
                "{name} on {}: want {want:?} in {:#?}",
                report.mode,
                report.failures
            );
        }
    }
}

#[test]
fn privileged_paths_that_disagree_are_reported_frame_by_frame() {
    if !privileges::gate("privileged_paths_that_disagree_are_reported_frame_by_frame") {
        return;
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/path-divergence.toml");
    let divergent = scenario::load(&path).expect("fixture loads");
    let (reports, differences) = run_paths(&divergent, &PATHS, &RunOptions::default());
    let statuses: Vec<_> = reports
        .iter()
        .map(|r| (r.mode.as_str(), r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("native", Status::Pass),
            ("generic", Status::Pass),
            ("test-run", Status::Fail)
        ],
        "{}",
        show(&reports)
    );
    // native vs generic agree; native vs test-run differ on every frame (listed up to 16).
    assert_eq!(differences.len(), 16, "{differences:#?}");
    let first = &differences[0];
    assert_eq!(first.what, "send \"udp\" seq 0");
    assert_eq!(first.a, ("native".to_owned(), "pass".to_owned()));
    assert_eq!(first.b, ("test-run".to_owned(), "drop".to_owned()));
}
