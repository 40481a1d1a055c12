//! Isolation: two `xdplab run` processes on the bundled scenarios at the same time both pass,
//! with the same per-scenario results as a run on its own. Each run's labs are its own
//! namespaces with names carrying its pid, so nothing the two do can meet.

mod common;
use common::repo;

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use xdplab::host::privileges;

fn start() -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_xdplab"))
        // Two runs side by side: each one's throughput floor would measure the other.
        .args(["run", "--format", "json", "--no-throughput"])
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xdplab starts")
}

/// What must not depend on what else runs on the machine: per scenario, its status and every
/// count the run attributed (per group, per map, per counter check), with the owner pid in
/// interface names (`xl-<pid>-tx`) written as `xl-PID-tx`. Left out: timings, per-CPU splits,
/// and frames of no group (the lab stacks' own replies, such as ARP replies to passed ARP
/// requests, which may land in the next group's window or after the last capture closes).
fn results(out: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let mut scenarios: Vec<Value> = json["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            let groups: Vec<Value> = s["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .map(|g| {
                    serde_json::json!({
                        "name": g["name"], "expect": g["expect"], "offered": g["offered"],
                        "sent": g["sent"], "dropped": g["dropped"], "passed": g["passed"],
                        "tx": g["tx"], "redirected": g["redirected"], "aborted": g["aborted"],
                        "landed": g["landed"], "misplaced": g["misplaced"],
                        "missing": g["missing"], "leaked": g["leaked"],
                    })
                })
                .collect();
            // Per CPU values say which CPU the kernel ran the program on, which no run
            // controls; the sum is what the scenario checks.
            let maps: Vec<Value> = s["maps"]
                .as_array()
                .expect("maps")
                .iter()
                .map(|m| {
                    let mut m = m.clone();
                    m.as_object_mut().expect("map check").remove("per_cpu");
                    m
                })
                .collect();
            serde_json::json!({
                "name": s["name"], "mode": s["mode"], "status": s["status"],
                "skip_reason": s["skip_reason"], "error": s["error"], "failures": s["failures"], "groups": groups,
                "maps": maps, "counters": s["counters"],
            })
        })
        .collect();
    for s in &mut scenarios {
        let text = s.to_string();
        let mut normal = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find("xl-") {
            normal.push_str(&rest[..at + 3]);
            rest = &rest[at + 3..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                normal.push_str("PID");
                rest = &rest[digits..];
            }
        }
        normal.push_str(rest);
        *s = serde_json::from_str(&normal).expect("still JSON");
    }
    scenarios
}

#[test]
fn privileged_two_runs_at_once_match_a_serial_run() {
    if !privileges::gate("privileged_two_runs_at_once_match_a_serial_run") {
        return;
    }
    let a = start();
    let b = start();
    // wait_with_output reads both pipes to the end, so neither child blocks on a full pipe;
    // each run is bounded by its scenarios' own deadlines.
    let a = a.wait_with_output().expect("first run");
    let b = b.wait_with_output().expect("second run");
    let serial = start().wait_with_output().expect("serial run");

    let (a, b, serial) = (results(&a), results(&b), results(&serial));
    assert!(
        serial.len() >= 10,
        "the bundled scenarios ran: {}",
        serial.len()
    );
    assert_eq!(a.len(), serial.len());
    assert_eq!(b.len(), serial.len());
    for ((x, y), s) in a.iter().zip(&b).zip(&serial) {
        // A scenario this kernel cannot run (`requires`) is skipped, the same way each time.
        assert!(
            x["status"] == "pass" || (x["status"] == "skip" && x["skip_reason"].is_string()),
            "{x:#}"
        );
        assert_eq!(x, s, "first parallel run differs from the serial run");
        assert_eq!(y, s, "second parallel run differs from the serial run");
    }
}
