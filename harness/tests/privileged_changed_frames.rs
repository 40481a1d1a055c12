//! Frames the program changes (VLAN pop and push with bpf_xdp_adjust_head, ICMP echo replies)
//! are judged right on every execution path: popped frames count as passed however they are
//! attributed, an output check that finds a wrong checksum fails everywhere, a `bytes` check
//! on a frame whose length changed compares the frame as it left, an output check that cannot
//! be made fails, and paths that disagree on frames attributed by content print DIFF lines.
//! Needs root.

mod common;

use std::path::Path;

use common::{PATHS, edit, scenario, show};
use xdplab::{
    host::privileges,
    report::Status,
    scenario::{
        self,
        run::{ExecPath, RunOptions, run_paths},
    },
};

#[test]
fn privileged_popped_vlan_frames_are_counted_as_passed() {
    if !privileges::gate("privileged_popped_vlan_frames_are_counted_as_passed") {
        return;
    }
    let (reports, differences) = run_paths(&scenario("vlan-pop"), &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        let groups: Vec<_> = report
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.passed,
                    g.dropped,
                    g.output_mismatches.len(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("one-tag-v4", 50, 0, 0),
                ("qinq-v6", 50, 0, 0),
                ("untagged-60", 50, 0, 0),
                ("bytes", 50, 0, 0),
                ("no-tag", 20, 0, 0),
            ],
            "{}",
            report.human()
        );
        // Every frame that passed had its output checked.
        for g in &report.groups {
            assert_eq!(
                g.outputs.len() as u64,
                g.passed,
                "{} on {}",
                g.name,
                report.mode
            );
        }
        assert_eq!(report.unattributed, 0, "{}", report.human());
        if report.mode != "test-run" {
            // Tagged frames by their tag (now 4 bytes nearer the front); the 60-byte frames,
            // too small for one, by content: the sent bytes without their VLAN tag.
            assert_eq!(report.groups[0].attributed_by, "tag");
            let small = &report.groups[2];
            assert_eq!(small.attributed_by, "content");
            assert_eq!(
                small.attribution_rules.iter().collect::<Vec<_>>(),
                [(&"vlan".to_owned(), &50)]
            );
            let json = serde_json::to_value(small).expect("json");
            assert_eq!(json["attribution_rules"]["vlan"], 50, "{json}");
            assert!(
                report
                    .notes
                    .iter()
                    .any(|n| n.contains("\"untagged-60\"") && n.contains("50 by vlan")),
                "{:#?}",
                report.notes
            );
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_pushed_vlan_tags_are_seen_and_checked() {
    if !privileges::gate("privileged_pushed_vlan_tags_are_seen_and_checked") {
        return;
    }
    let (reports, differences) = run_paths(&scenario("vlan-push"), &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        let passed: Vec<u64> = report.groups.iter().map(|g| g.passed).collect();
        assert_eq!(passed, [50, 50, 20, 30], "{}", report.human());
    }
    assert!(differences.is_empty(), "{differences:#?}");
    // The wrong id is caught in every output.
    let wrong = edit("vlan-push", "value = 100", "value = 101");
    let (reports, _) = run_paths(&wrong, &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Fail, "{}", report.human());
        for group in ["udp-v4", "tcp-v6", "untagged-60"] {
            assert!(
                report.failures.iter().any(|f| f.contains(&format!(
                    "send \"{group}\" seq 0: output vlan expected [100], got [101]"
                ))),
                "{group} on {}: {:#?}",
                report.mode,
                report.failures
            );
        }
    }
}

#[test]
fn privileged_echo_reflector_passes_and_its_broken_twin_fails_on_every_path() {
    if !privileges::gate("privileged_echo_reflector_passes_and_its_broken_twin_fails_on_every_path")
    {
        return;
    }
    let (reports, differences) = run_paths(&scenario("icmp-echo"), &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        let counts: Vec<_> = report.groups.iter().map(|g| (g.tx, g.passed)).collect();
        assert_eq!(
            counts,
            [(20, 0), (20, 0), (20, 0), (0, 20), (0, 20)],
            "{}",
            report.human()
        );
        for g in &report.groups[..3] {
            assert_eq!(g.outputs.len(), 20, "{} on {}", g.name, report.mode);
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");

    // The same replies with the request's checksum: every path, every group, says which
    // checksum is wrong and what it should be; the untagged group too (once silently passed).
    let broken = edit(
        "icmp-echo",
        "entry = \"xdp_icmp_echo\"",
        "entry = \"xdp_icmp_echo_bad_csum\"",
    );
    let (reports, _) = run_paths(&broken, &PATHS, &RunOptions::default());
    assert_eq!(reports.len(), 3);
    for report in &reports {
        assert_eq!(report.status, Status::Fail, "{}", report.human());
        for (group, want) in [
            (
                "ping",
                "output checksums expected all valid, got ipv4 valid, icmp invalid (0x",
            ),
            (
                "ping6",
                "output icmpv6-checksum expected valid, got invalid (0x",
            ),
            (
                "ping-untagged",
                "output checksums expected all valid, got ipv4 valid, icmp invalid (0x",
            ),
        ] {
            let failing = report
                .failures
                .iter()
                .filter(|f| f.starts_with(&format!("send \"{group}\" seq ")) && f.contains(want))
                .count();
            assert_eq!(
                failing, 16,
                "{group} on {}: want {want:?} in {:#?}",
                report.mode, report.failures
            );
        }
    }
}

#[test]
fn privileged_bytes_compare_the_frame_as_it_left() {
    if !privileges::gate("privileged_bytes_compare_the_frame_as_it_left") {
        return;
    }
    // One byte after the tag area wrong (the last padding byte): every frame of the group
    // fails, on every path, at that offset (the tag area itself is excused where it sits).
    let wrong = edit(
        "vlan-pop",
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\" }",
        "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01\" }",
    );
    let (reports, _) = run_paths(&wrong, &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Fail, "{}", report.human());
        let bytes = &report.groups[3];
        assert_eq!(bytes.name, "bytes");
        assert_eq!(bytes.output_mismatches.len(), 16, "{}", report.human());
        assert!(
            bytes.output_mismatches.iter().all(
                |m| m.contains("output bytes expected 56 bytes, first difference at offset 55")
            ),
            "{} {:#?}",
            report.mode,
            bytes.output_mismatches
        );
        let others: usize = report
            .groups
            .iter()
            .filter(|g| g.name != "bytes")
            .map(|g| g.output_mismatches.len())
            .sum();
        assert_eq!(others, 0, "{}", report.human());
    }
}

#[test]
fn privileged_an_output_check_that_cannot_be_made_fails() {
    if !privileges::gate("privileged_an_output_check_that_cannot_be_made_fails") {
        return;
    }
    // 18-byte VLAN frames are freed by the kernel before any capture: native mode counts
    // them with the veth XDP counters, but their bytes are never seen.
    let text = r#"
schema-version = 1
name = "unseen-output"

[program]
object = "xdp_pass"
entry = "xdp_pass"
mode = "native"

[[send]]
name = "runt"
count = 10
vlan = [{ id = 1 }]
size = 18
truncate = true
expect = "pass"
output = { length = 18 }
"#;
    let scenario = scenario::parse(text, Path::new("unseen-output.toml")).expect("parses");
    let (reports, _) = run_paths(&scenario, &[ExecPath::Native], &RunOptions::default());
    let report = &reports[0];
    assert_eq!(report.status, Status::Fail, "{}", report.human());
    assert_eq!(report.groups[0].passed, 10, "{}", report.human());
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains(
                "send \"runt\": output not checked for 10 of 10 frames that came out at receiver:"
            ) && f.contains("the kernel frees VLAN frames shorter than 20 bytes")),
        "{:#?}",
        report.failures
    );
}

#[test]
fn privileged_paths_that_disagree_on_untagged_frames_print_diff_lines() {
    if !privileges::gate("privileged_paths_that_disagree_on_untagged_frames_print_diff_lines") {
        return;
    }
    // The divergence fixture (passes live, drops under test-run) with frames too small for a
    // tag: no frame can be followed by sequence number, and the counts must still differ.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/path-divergence.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    let text = text.replacen(
        "udp = { dst-port = 9 }",
        "udp = { dst-port = 9 }\nsize = 50\ntruncate = true",
        1,
    );
    let divergent = scenario::parse(&text, &path).expect("parses");
    let (reports, differences) = run_paths(&divergent, &PATHS, &RunOptions::default());
    assert_eq!(
        reports[0].groups[0].attributed_by,
        "content",
        "{}",
        show(&reports)
    );
    let lines: Vec<String> = differences
        .iter()
        .map(|d| format!("{}: {} {} / {} {}", d.what, d.a.0, d.a.1, d.b.0, d.b.1))
        .collect();
    assert_eq!(
        lines,
        [
            "send \"udp\" frames dropped or aborted: native 0 / test-run 20",
            "send \"udp\" frames passed: native 20 / test-run 0",
        ],
        "{}",
        show(&reports)
    );
}

/// A group's name, `attributed_by`, and frames per content rule.
type Attributed<'a> = (&'a str, &'a str, Vec<(&'a str, u64)>);

#[test]
fn privileged_cut_encapsulated_and_decapsulated_frames_are_attributed() {
    if !privileges::gate("privileged_cut_encapsulated_and_decapsulated_frames_are_attributed") {
        return;
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/changed-frames.toml");
    let changed = scenario::load(&path).expect("fixture loads");
    let (reports, differences) = run_paths(&changed, &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        for g in &report.groups {
            assert_eq!(
                (g.passed, g.outputs.len()),
                (20, 20),
                "{} on {}",
                g.name,
                report.mode
            );
        }
        assert_eq!(report.unattributed, 0, "{}", report.human());
        if report.mode == "test-run" {
            continue;
        }
        let how: Vec<Attributed<'_>> = report
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.attributed_by,
                    g.attribution_rules
                        .iter()
                        .map(|(rule, n)| (rule.as_str(), *n))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            how,
            [
                // The tag was cut off with the tail: the 42 bytes left are claimed by content.
                ("cut-tagged", "tag and content", vec![("cut", 20)]),
                ("cut-untagged", "content", vec![("cut", 20)]),
                // The tag, 14 bytes further back, is found where it is.
                ("encap-tagged", "tag", vec![]),
                ("encap-untagged", "content", vec![("encapsulated", 20)]),
                // The tag, 42 bytes nearer the front, likewise.
                ("decap-tagged", "tag", vec![]),
                ("decap-untagged", "content", vec![("decapsulated", 20)]),
            ],
            "{}",
            report.mode
        );
    }
    assert!(differences.is_empty(), "{differences:#?}");
}
