//! `requires` through the `xdplab` binary: a scenario whose requirement the kernel predates is
//! reported SKIP with the reason (and the run passes); one whose requirements the kernel has
//! runs. The rule that a feature missing on a kernel that should have it fails is unit-tested
//! in `xdplab::host::requires`, where the probe can be replaced.

mod common;
use common::{text, xdplab};

use std::path::{Path, PathBuf};

use xdplab::{host::doctor::KernelVersion, host::privileges, host::requires};

fn fixture(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name);
    path.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn privileged_requirement_the_kernel_predates_is_a_skip_with_the_reason() {
    if !privileges::gate("privileged_requirement_the_kernel_predates_is_a_skip_with_the_reason") {
        return;
    }
    let out = xdplab(&[
        "run",
        "--format",
        "json",
        &fixture("requires-future-kernel.toml"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let s = &json["scenarios"][0];
    assert_eq!(s["status"], "skip", "{s:#}");
    let release = xdplab::host::doctor::kernel_release().expect("uname");
    let version = KernelVersion::parse(&release).expect("a version in uname -r");
    assert_eq!(
        s["skip_reason"],
        format!("needs kernel>=99.0; this is Linux {version}"),
        "{s:#}"
    );
    assert_eq!(
        s["groups"],
        serde_json::json!([]),
        "nothing was sent: {s:#}"
    );
    assert_eq!(json["skipped"], 1);

    let out = xdplab(&["run", &fixture("requires-future-kernel.toml")]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("SKIP requires-future-kernel") && stdout.contains("needs kernel>=99.0"),
        "{stdout}"
    );
}

#[test]
fn privileged_requirements_the_kernel_has_let_the_scenario_run() {
    if !privileges::gate("privileged_requirements_the_kernel_has_let_the_scenario_run") {
        return;
    }
    // On a kernel before 5.8 this scenario is rightly skipped; from 5.8 it must run.
    let needs: Vec<requires::Requirement> = ["ringbuf", "mmapable-array", "bpf-link-xdp"]
        .iter()
        .map(|r| r.parse().expect("a requirement"))
        .collect();
    if !requires::gate(
        "privileged_requirements_the_kernel_has_let_the_scenario_run",
        &needs,
    ) {
        return;
    }
    let out = xdplab(&["run", "--format", "json", &fixture("requires-ringbuf.toml")]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let s = &json["scenarios"][0];
    assert_eq!(s["status"], "pass", "{s:#}");
    assert_eq!(s["groups"][0]["dropped"], 10, "{s:#}");
}

#[test]
fn list_shows_requirements_without_privileges() {
    let out = xdplab(&["list", &fixture("requires-future-kernel.toml")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("    requires: ringbuf, kernel>=99.0"),
        "{stdout}"
    );
}
