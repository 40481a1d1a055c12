//! `xdplab doctor` as users run it, and `xdplab run`/`bench` on a machine that lacks what a lab
//! needs: with the capabilities taken away, they stop up front with exit 3 and the same
//! explanation and fix as `doctor`, before building anything.

mod common;
use common::{repo, text};

use std::{
    io,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Output},
};

use xdplab::{
    host::doctor::{CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN},
    host::privileges,
    host::requires::{self, Feature, Requirement},
};

/// Every check `doctor` makes, in order.
const CHECKS: &[&str] = &[
    "CAP_BPF",
    "CAP_NET_ADMIN",
    "CAP_SYS_ADMIN",
    "bpffs",
    "/sys/fs/bpf",
    "kernel",
    "btf",
    "veth-native-xdp",
    "live-frames",
    "bpftool",
    "clang",
];

/// What a ready machine needs from the kernel beyond xdplab's minimum.
const LIVE_FRAMES: &[Requirement] = &[Requirement::Feature(Feature::LiveFrames)];

/// The checks whose absence makes `doctor` exit 3.
const REQUIRED: &[&str] = &[
    "CAP_BPF",
    "CAP_NET_ADMIN",
    "CAP_SYS_ADMIN",
    "bpffs",
    "kernel",
    "btf",
    "veth-native-xdp",
];

fn xdplab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xdplab"));
    command.current_dir(repo());
    command
}

fn output(command: &mut Command) -> Output {
    command.output().expect("xdplab runs")
}

#[test]
fn privileged_doctor_finds_every_required_check_ok() {
    if !privileges::gate("privileged_doctor_finds_every_required_check_ok") {
        return;
    }
    // Before 5.18, doctor rightly reports live frames missing: not ready.
    if !requires::gate(
        "privileged_doctor_finds_every_required_check_ok",
        LIVE_FRAMES,
    ) {
        return;
    }
    let out = output(xdplab().arg("doctor"));
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for name in REQUIRED {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("a row for {name}: {stdout}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some("ok"),
            "{name} is ok on this machine: {row}"
        );
    }
    assert!(
        stdout.contains("ready: every required check passed"),
        "{stdout}"
    );
    assert!(!stdout.contains("not ready"), "{stdout}");
}

#[test]
fn privileged_doctor_json_has_every_check_and_field() {
    if !privileges::gate("privileged_doctor_json_has_every_check_and_field") {
        return;
    }
    // Before 5.18, doctor rightly reports live frames missing: not ready.
    if !requires::gate(
        "privileged_doctor_json_has_every_check_and_field",
        LIVE_FRAMES,
    ) {
        return;
    }
    let out = output(xdplab().args(["doctor", "--format", "json"]));
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(json["ready"], true, "{json:#}");
    assert_eq!(json["exit"], 0, "{json:#}");
    assert_eq!(json["missing"], serde_json::json!([]), "{json:#}");
    let checks = json["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["name"].as_str().expect("name is a string"))
        .collect();
    assert_eq!(names, CHECKS, "{json:#}");
    for check in checks {
        let name = check["name"].as_str().unwrap();
        let required = check["required"].as_bool().expect("required is a bool");
        assert_eq!(required, REQUIRED.contains(&name), "{check:#}");
        let status = check["status"].as_str().expect("status is a string");
        assert!(
            ["ok", "missing", "optional-missing"].contains(&status),
            "{check:#}"
        );
        assert!(
            !check["found"].as_str().expect("found").is_empty(),
            "{check:#}"
        );
        assert!(
            check["fix"].is_null() || check["fix"].is_string(),
            "{check:#}"
        );
        if required {
            assert_eq!(status, "ok", "{check:#}");
            assert!(check["fix"].is_null(), "nothing to fix: {check:#}");
        } else if status == "optional-missing" {
            assert!(check["fix"].is_string(), "{check:#}");
        }
    }
}

/// `capget`/`capset` header and data (`linux/capability.h`, version 3: two 32-bit words).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const DROPPED: [u32; 3] = [CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN];

/// Makes the child exec without CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN, even as root: they
/// leave the bounding set (root's permitted set after exec is the bounding set), the ambient
/// set, and the inheritable, permitted and effective sets (`capsh --drop=...`).
fn drop_lab_capabilities(command: &mut Command) -> &mut Command {
    // SAFETY: between fork and exec the closure only makes system calls (prctl, capget,
    // capset) on stack memory: no allocation, no locks.
    unsafe {
        command.pre_exec(|| {
            for cap in DROPPED {
                if libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let clear_all = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
            if libc::prctl(libc::PR_CAP_AMBIENT, clear_all, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut header = CapHeader {
                version: CAPABILITY_VERSION_3,
                pid: 0,
            };
            let mut data = [CapData::default(); 2];
            if libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            for cap in DROPPED {
                let word = &mut data[(cap / 32) as usize];
                let bit = !(1u32 << (cap % 32));
                word.effective &= bit;
                word.permitted &= bit;
                word.inheritable &= bit;
            }
            if libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Checks that `out` stopped up front, with exit 3, naming each dropped capability and its fix.
fn assert_stopped_for_capabilities(what: &str, out: &Output) {
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{what}: {stdout}\n{stderr}");
    for (name, short) in [
        ("CAP_BPF", "BPF"),
        ("CAP_NET_ADMIN", "NET_ADMIN"),
        ("CAP_SYS_ADMIN", "SYS_ADMIN"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!("{name} missing: not in the effective set")))
            .unwrap_or_else(|| panic!("{what}: a line for {name}: {stderr}"));
        assert!(
            line.contains("fix: ") && line.contains(&format!("--cap-add={short}")),
            "{what}: the fix for {name}: {line}"
        );
    }
    assert!(
        stderr.contains("`xdplab doctor` runs every check"),
        "{what}: {stderr}"
    );
    // Stopped before any lab: no scenario line, nothing measured, no raw errno from a lab.
    assert!(
        !stdout.contains("PASS") && !stdout.contains("FAIL"),
        "{what}: {stdout}"
    );
    assert!(!stderr.contains("failed to create"), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
}

#[test]
fn privileged_run_without_capabilities_exits_3_with_the_fix() {
    // Dropping capabilities from the bounding set needs CAP_SETPCAP, which root has.
    if !privileges::gate("privileged_run_without_capabilities_exits_3_with_the_fix") {
        return;
    }
    let out = output(drop_lab_capabilities(
        xdplab().args(["run", "scenarios/seed-drop-all.toml"]),
    ));
    assert_stopped_for_capabilities("xdplab run", &out);

    let out = output(drop_lab_capabilities(xdplab().args([
        "bench",
        "--program",
        "drop",
        "--mode",
        "native",
        "--injector",
        "live",
        "--size",
        "64",
        "--duration",
        "1s",
        "--no-save",
    ])));
    assert_stopped_for_capabilities("xdplab bench", &out);

    let out = output(drop_lab_capabilities(
        xdplab().args(["doctor", "--format", "json"]),
    ));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("JSON");
    assert_eq!(json["ready"], false);
    let missing = json["missing"].as_array().expect("missing");
    for name in [
        "CAP_BPF",
        "CAP_NET_ADMIN",
        "CAP_SYS_ADMIN",
        "veth-native-xdp",
    ] {
        assert!(missing.iter().any(|m| m == name), "{name}: {json:#}");
    }
}

#[test]
fn bad_scenario_wins_over_missing_capabilities() {
    // Exit 2 outranks 3: the scenarios are read before the environment is checked. Works with
    // or without privileges (without them, nothing needs dropping).
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/unknown-key.toml");
    let mut command = xdplab();
    command.args(["run", fixture.to_str().unwrap()]);
    if privileges::check().is_ok() {
        drop_lab_capabilities(&mut command);
    }
    let out = output(&mut command);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown-key.toml:10:1"), "{stderr}");
    assert!(!stderr.contains("cannot build labs"), "{stderr}");
}
