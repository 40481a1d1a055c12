//! Map values of any shape against a running program (the bundled `xdp_stats`: a per-CPU
//! array of `struct datarec` and a hash of nested structs keyed by a struct), on every
//! execution path: fields by name from BTF, sums over CPUs field by field, values per CPU,
//! zeros read as zeros, and a failure naming the field whenever the answer is wrong. Needs
//! root.

mod common;

use std::path::Path;

use common::{PATHS, bundled, edit, show};
use xdplab::{
    host::privileges,
    kernel::program::{ObjectSource, Program},
    report::{FailureKind, Status},
    scenario::{
        self, Scenario,
        run::{RunOptions, run_paths},
    },
};

const NAME: &str = "stats-datarec";

/// Runs `scenario` on every path; each report must fail with a failure containing every
/// fragment of `want`.
fn fails_with(scenario: &Scenario, want: &[&str]) {
    let (reports, _) = run_paths(scenario, &PATHS, &RunOptions::default());
    assert_eq!(reports.len(), 3);
    for report in &reports {
        assert_eq!(report.status, Status::Fail, "{}", report.human());
        assert!(
            report
                .failures
                .iter()
                .any(|f| want.iter().all(|w| f.contains(w))),
            "{}: no failure with {want:?}: {:#?}",
            report.mode,
            report.failures
        );
    }
}

/// Possible CPUs, as many as a per-CPU lookup returns.
fn cpus() -> usize {
    aya::util::nr_cpus().expect("possible CPUs")
}

#[test]
fn privileged_datarec_fields_pass_on_every_path() {
    if !privileges::gate("privileged_datarec_fields_pass_on_every_path") {
        return;
    }
    let (reports, differences) = run_paths(
        &scenario::load(&bundled(NAME)).expect("loads"),
        &PATHS,
        &RunOptions::default(),
    );
    assert_eq!(reports.len(), 3);
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        let drop = &report.maps[0];
        assert_eq!(
            drop.actual,
            serde_json::json!("{ rx_packets = 100, rx_bytes = 10000 }"),
            "{}",
            report.mode
        );
        assert!(drop.mismatches.is_empty());
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_per_cpu_zeros_read_as_zeros() {
    if !privileges::gate("privileged_per_cpu_zeros_read_as_zeros") {
        return;
    }
    // The report: `per-cpu = [0, 0]` on a datarec map said "got absent" while the
    // slot held zeros. One 0 per possible CPU, as integers (zero is all zero bytes).
    let zeros = vec!["0"; cpus()].join(", ");
    let s = edit(
        NAME,
        "per-cpu = [{ rx_packets = 0, rx_bytes = 0 }]",
        &format!("per-cpu = [{zeros}]"),
    );
    let (reports, _) = run_paths(&s, &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", report.human());
        let check = report
            .maps
            .iter()
            .find(|m| m.key == serde_json::json!(0))
            .expect("key 0 checked");
        assert!(
            !check.actual.to_string().contains("absent"),
            "{}: {}",
            report.mode,
            check.actual
        );
    }
}

#[test]
fn privileged_a_wrong_field_fails_naming_it() {
    if !privileges::gate("privileged_a_wrong_field_fails_naming_it") {
        return;
    }
    // A sum over CPUs, by name.
    fails_with(
        &edit(
            NAME,
            "value = { rx_packets = 100, rx_bytes = 10_000 }",
            "value = { rx_packets = 101, rx_bytes = 10_000 }",
        ),
        &["map xdp_stats_map[1]: rx_packets expected 101, got 100"],
    );
    // Both fields wrong, typed in order: each named from BTF.
    fails_with(
        &edit(
            NAME,
            "value = [{ u64 = 100 }, { u64 = 36_000 }]",
            "value = [{ u64 = 99 }, { u64 = 36_001 }]",
        ),
        &[
            "map xdp_stats_map[2]: rx_packets expected 99, got 100; rx_bytes expected 36001, \
             got 36000",
        ],
    );
    // A change across the run, field by field.
    fails_with(
        &edit(
            NAME,
            "delta = { rx_packets = 100, rx_bytes = 10_000 }",
            "delta = { rx_packets = 100, rx_bytes = 9_999 }",
        ),
        &["map xdp_stats_map[1]: rx_bytes expected a change of 9999, got +10000"],
    );
    // A nested struct's array member in a hash keyed by a struct.
    fails_with(
        &edit(NAME, "len_hist = [0, 60, 0, 0]", "len_hist = [60, 0, 0, 0]"),
        &[
            "map port_stats[{ dport = 53, proto = 17, action = 2 }]: len_hist[0] expected 60, \
             got 0; len_hist[1] expected 0, got 60",
        ],
    );
    // A struct key whose port is network order: port 9 written little-endian is another key.
    fails_with(
        &edit(
            NAME,
            "key = { dport = 9, proto = 17, action = 1 }",
            "key = [{ u16 = 9 }, { u8 = 17 }, { u8 = 1 }]",
        ),
        &[
            "map port_stats[",
            "expected { counts.rx_packets = 100",
            "got absent",
        ],
    );
}

#[test]
fn privileged_per_cpu_counts_fail_per_cpu() {
    if !privileges::gate("privileged_per_cpu_counts_fail_per_cpu") {
        return;
    }
    // XDP_PASS's slots are not all zero: the CPUs that ran the program are named.
    let s = edit(
        NAME,
        "key = 0\nper-cpu = [{ rx_packets = 0, rx_bytes = 0 }]",
        "key = 2\nper-cpu = [{ rx_packets = 0, rx_bytes = 0 }]",
    );
    fails_with(
        &s,
        &[
            "map xdp_stats_map[2]: cpu ",
            ": rx_packets expected 0, got ",
        ],
    );
    // And the sum of XDP_DROP's slots is not zero.
    fails_with(
        &edit(NAME, "key = 4\nvalue = 0", "key = 1\nvalue = 0"),
        &["map xdp_stats_map[1]: rx_packets expected 0, got 100; rx_bytes expected 0, got 10000"],
    );
}

#[test]
fn privileged_a_wrong_field_name_is_refused_before_any_lab() {
    if !privileges::gate("privileged_a_wrong_field_name_is_refused_before_any_lab") {
        return;
    }
    let s = edit(
        NAME,
        "value = { rx_bytes = 36_000 }",
        "value = { rx_byte = 36_000 }",
    );
    let (reports, _) = run_paths(&s, &PATHS, &RunOptions::default());
    for report in &reports {
        assert_eq!(report.status, Status::Fail, "{}", report.human());
        let error = report.error.as_ref().expect("an error, not a judged run");
        assert_eq!(error.kind, FailureKind::Input, "{}", report.mode);
        assert!(
            error.message.contains(
                "value of map \"xdp_stats_map\": struct datarec has no field \"rx_byte\"; its \
                 fields: rx_packets, rx_bytes"
            ),
            "{}: {}",
            report.mode,
            error.message
        );
        assert!(
            report.groups.iter().all(|g| g.sent == 0),
            "nothing was sent"
        );
    }
}

#[test]
fn privileged_a_loaded_map_tells_its_c_types() {
    if !privileges::gate("privileged_a_loaded_map_tells_its_c_types") {
        return;
    }
    // From the BTF the kernel holds for the map, as `bpftool map dump` reads it.
    let program = Program::load(&ObjectSource::Bundled("xdp_stats".into()), "xdp_stats")
        .expect("xdp_stats loads");
    let types = program
        .map("xdp_stats_map")
        .expect("map")
        .btf()
        .expect("readable")
        .expect("a BTF-defined map has BTF");
    assert_eq!(
        types.value.expect("value type").to_string(),
        "struct datarec { __u64 rx_packets; __u64 rx_bytes; } (16 bytes)"
    );
    assert_eq!(types.key.expect("key type").to_string(), "__u32 (4 bytes)");
    let port = program
        .map("port_stats")
        .expect("map")
        .btf()
        .expect("readable");
    assert_eq!(
        port.and_then(|t| t.key).map(|k| k.c_text()).as_deref(),
        Some("struct port_key { __be16 dport; __u8 proto; __u8 action; }")
    );
    // A legacy SEC("maps") definition carries no BTF.
    let object =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/objects/map_shapes.bpf.o");
    let legacy = Program::load(&ObjectSource::File(object), "xdp_map_shapes").expect("loads");
    assert_eq!(
        legacy
            .map("legacy_stats")
            .expect("map")
            .btf()
            .expect("readable"),
        None
    );
}
