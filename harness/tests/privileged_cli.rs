//! The `xdplab` binary as users run it: exit codes, reports, JUnit. Scenario runs need root;
//! parsing and listing do not.

mod common;
use common::{repo, text, xdplab};

use std::path::{Path, PathBuf};

use xdplab::host::privileges;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name)
}

#[test]
fn malformed_scenario_exits_2_with_its_location() {
    let path = fixture("unknown-key.toml");
    let out = xdplab(&["run", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("unknown-key.toml:10:1"), "{stderr}");
    assert!(stderr.contains("cout"), "{stderr}");
}

#[test]
fn list_shows_every_bundled_scenario_without_privileges() {
    let out = xdplab(&["list"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bundled = std::fs::read_dir(repo().join("scenarios"))
        .expect("scenarios/")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert!(bundled >= 2);
    assert_eq!(stdout.matches("    program ").count(), bundled, "{stdout}");
    assert!(stdout.contains("seed-drop-all"), "{stdout}");
    assert!(stdout.contains("expect map drop_cnt"), "{stdout}");
}

#[test]
fn privileged_bundled_scenarios_pass_with_json_and_junit() {
    if !privileges::gate("privileged_bundled_scenarios_pass_with_json_and_junit") {
        return;
    }
    let junit = std::env::temp_dir().join(format!("xdplab-junit-{}.xml", std::process::id()));
    // The other tests of this binary run labs side by side with this one: a throughput floor
    // would measure them as much as the program (speed is the benchmarks' and the main job's).
    let out = xdplab(&[
        "run",
        "--format",
        "json",
        "--no-throughput",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\n{}", text(&out.stderr)));
    let scenarios = json["scenarios"].as_array().expect("scenarios");
    // The whole report is long enough for a CI log to cut; the failing scenarios come first.
    let failing: Vec<String> = scenarios
        .iter()
        .filter(|s| s["status"] != "pass" && s["status"] != "skip")
        .map(|s| format!("{}: {:#}", s["name"], s["failures"]))
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "failing scenarios:\n{}\n\nstderr:\n{}\n\nthe whole report:\n{stdout}",
        failing.join("\n"),
        text(&out.stderr)
    );
    assert!(!scenarios.is_empty());
    for s in scenarios {
        // A scenario whose `requires` the kernel predates is skipped with the reason; one the
        // kernel should support but lacks fails (xdplab::host::requires).
        if s["status"] == "skip" {
            let reason = s["skip_reason"].as_str().unwrap_or_default();
            assert!(reason.starts_with("needs "), "{s:#}");
            continue;
        }
        assert_eq!(s["status"], "pass", "{s:#}");
        for g in s["groups"].as_array().expect("groups") {
            let sent = g["sent"].as_u64().expect("sent");
            let fates: u64 = ["dropped", "passed", "tx", "redirected", "aborted"]
                .iter()
                .map(|k| g[*k].as_u64().expect("count"))
                .sum();
            assert_eq!(fates, sent, "every frame has exactly one fate: {g:#}");
        }
    }
    // --no-throughput: the floor is named as not measured, and no rate is reported.
    let floor = scenarios
        .iter()
        .find(|s| s["name"] == "seed-drop-throughput")
        .expect("the throughput scenario ran");
    if floor["status"] == "pass" {
        assert!(floor["throughput"].is_null(), "{floor:#}");
        assert!(
            floor["notes"].as_array().expect("notes").iter().any(|n| n
                .as_str()
                .unwrap_or_default()
                .ends_with("not measured: --no-throughput")),
            "{floor:#}"
        );
    }
    let seed = scenarios
        .iter()
        .find(|s| s["name"] == "seed-drop-all")
        .expect("seed scenario ran");
    assert_eq!(seed["groups"][0]["sent"], 1000);
    assert_eq!(seed["groups"][0]["dropped"], 1000);
    assert_eq!(seed["maps"][0]["map"], "drop_cnt");
    assert_eq!(seed["maps"][0]["key"], 0);
    assert_eq!(seed["maps"][0]["expected"], 1000);
    assert_eq!(seed["maps"][0]["actual"], 1000);

    let xml = std::fs::read_to_string(&junit).expect("JUnit written");
    std::fs::remove_file(&junit).ok();
    assert_eq!(xml.matches("<testcase ").count(), scenarios.len(), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
}

#[test]
fn privileged_wrong_expectation_exits_1() {
    if !privileges::gate("privileged_wrong_expectation_exits_1") {
        return;
    }
    let out = xdplab(&["run", fixture("wrong-expect.toml").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.starts_with("FAIL wrong-expect"), "{stdout}");
    assert!(
        stdout.contains(
            "send \"udp-to-9\": expected pass, 100 of 100 frames went elsewhere: 100 drop (nowhere: seq 0, 1, 2,"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn privileged_unusable_objects_exit_2_with_one_cause() {
    if !privileges::gate("privileged_unusable_objects_exit_2_with_one_cause") {
        return;
    }
    for (file, cause) in [
        ("not-elf-object.toml", "failed to load object"),
        (
            "missing-entry.toml",
            "failed to find program \"no_such_program\"",
        ),
        ("missing-map.toml", "failed to find map \"no_such_map\""),
        (
            "wrong-program-type.toml",
            "failed to use program \"tc_pass\" in object",
        ),
        (
            "verifier-reject.toml",
            "rejected by the verifier\nverifier log (last",
        ),
        (
            "verifier-reject.toml",
            "invalid access to packet, off=12 size=1",
        ),
    ] {
        let out = xdplab(&["run", fixture(file).to_str().unwrap()]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{file}: {stdout}\n{stderr}");
        // Objects are checked before any scenario runs: no report, the cause on stderr.
        assert!(stdout.is_empty(), "{file}: {stdout}");
        assert!(stderr.contains(cause), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        assert!(
            !stderr.contains("os error"),
            "no raw errno: {file}: {stderr}"
        );
        // One cause: one line (only the verifier adds its log's tail).
        if file == "verifier-reject.toml" {
            assert!(
                stderr.contains("xdp_unchecked"),
                "names the program: {stderr}"
            );
        } else {
            assert_eq!(stderr.lines().count(), 1, "{file}: one line: {stderr}");
        }
    }
}

#[test]
fn privileged_paths_flag_reports_disagreements_and_exits_1() {
    if !privileges::gate("privileged_paths_flag_reports_disagreements_and_exits_1") {
        return;
    }
    let out = xdplab(&[
        "run",
        "--paths",
        "native,generic,test-run",
        fixture("path-divergence.toml").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert_eq!(
        stdout.matches("\nPASS path-divergence").count()
            + usize::from(stdout.starts_with("PASS path-divergence")),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "DIFF path-divergence: send \"udp\" seq 0: native says pass, test-run says drop"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("16 path difference(s)"), "{stdout}");
}

#[test]
fn privileged_capture_writes_a_pcap_per_interface_of_a_failing_scenario() {
    if !privileges::gate("privileged_capture_writes_a_pcap_per_interface_of_a_failing_scenario") {
        return;
    }
    for format in ["pcap", "pcapng"] {
        let dir =
            std::env::temp_dir().join(format!("xdplab-capture-{}-{format}", std::process::id()));
        let out = xdplab(&[
            "run",
            "--capture",
            dir.to_str().unwrap(),
            "--capture-format",
            format,
            fixture("wrong-expect-pass.toml").to_str().unwrap(),
        ]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        let files: Vec<PathBuf> = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("capture: "))
            .map(PathBuf::from)
            .collect();
        assert_eq!(files.len(), 2, "one {format} per interface: {stdout}");
        let receiver = files
            .iter()
            .find(|f| f.to_string_lossy().contains(".receiver-"))
            .expect("receiver capture");
        assert_eq!(
            receiver.extension().and_then(|e| e.to_str()),
            Some(format),
            "{stdout}"
        );
        let frames = xdplab::frame::pcap::read(receiver).expect("a readable capture");
        let independent = capinfos_packets(receiver);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(frames.len(), 10, "the 10 passed frames");
        assert!(
            frames
                .iter()
                .all(|f| f.len() >= 60 && f[12..14] == [0x08, 0x00])
        );
        if let Some(packets) = independent {
            assert_eq!(packets, 10, "capinfos reads the {format} file xdplab wrote");
        }
    }
}

/// The packet count Wireshark's `capinfos` reads from a capture file: an independent reader of
/// what xdplab writes. `None` (with a SKIP line) when it is not installed, unless
/// `XDPLAB_REQUIRE_WIRESHARK` is set (CI installs it), which makes its absence a failure.
fn capinfos_packets(file: &std::path::Path) -> Option<u64> {
    match std::process::Command::new("capinfos")
        .args(["-c", "-M", "-T"])
        .arg(file)
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "capinfos: {}", text(&out.stderr));
            // `-T`: a header line, then "file<TAB>count".
            let stdout = text(&out.stdout);
            let count = stdout
                .lines()
                .nth(1)
                .and_then(|l| l.split('\t').nth(1))
                .and_then(|c| c.trim().parse().ok());
            Some(count.unwrap_or_else(|| panic!("capinfos output: {stdout}")))
        }
        Err(e) if std::env::var_os("XDPLAB_REQUIRE_WIRESHARK").is_some() => {
            panic!("XDPLAB_REQUIRE_WIRESHARK is set but capinfos cannot run: {e}")
        }
        Err(e) => {
            println!("SKIP: capinfos cross-check of {}: {e}", file.display());
            None
        }
    }
}
