//! Tests of the user's own XDP program (`bpf/udp_guard.bpf.c`) through xdplab's public API:
//! its verdicts on both attach modes and under `BPF_PROG_TEST_RUN` (a whole lab of sends, and
//! one frame at a time), its per-CPU stats map read
//! as typed values, a misconfigured guard that must fail with xdplab's report, and bad input
//! that is an error. Run as root: `cargo test`. Without privileges each test prints a SKIP line
//! and passes; with `XDPLAB_REQUIRE_PRIVILEGES=1` (as in CI) it fails instead.

use std::path::{Path, PathBuf};

use xdplab::{Frame, Lab, Pod, Program, Verdict, XdpMode};

/// The program's `struct verdict_stats`, one per CPU in `guard_stats`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct VerdictStats {
    packets: u64,
    bytes: u64,
}
// SAFETY: repr(C), two u64 fields, no padding; any bit pattern is a value.
unsafe impl Pod for VerdictStats {}

/// `guard_stats` keys.
const PASSED: u32 = 0;
const DROPPED: u32 = 1;

fn object() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf/udp_guard.bpf.o")
}

/// The guard, blocking `port`, attached to the lab's receiver.
fn guard(lab: &Lab, port: u16, mode: XdpMode) -> xdplab::Result<Program<'_>> {
    lab.load(object())?
        .global("blocked_port", port.into()) // const volatile __u16 in .rodata
        .xdp_section() // SEC("xdp_udp_guard") is a free name: load it as XDP
        .attach("udp_guard", mode)
}

#[test]
fn drops_the_blocked_port_and_passes_the_rest() -> xdplab::Result<()> {
    // Native, generic, and BPF_PROG_TEST_RUN: the same sends, the same judgement.
    for (builder, mode) in [
        (Lab::builder(), XdpMode::Native),
        (Lab::builder(), XdpMode::Generic),
        (Lab::builder().test_run(), XdpMode::Native),
    ] {
        let lab = xdplab::lab!(builder)?;
        let prog = guard(&lab, 53, mode)?;
        lab.send(Frame::ipv4().udp().dst_port(53), 200)?
            .named("dns")
            .expect(Verdict::Drop)?;
        lab.send(Frame::ipv4().udp().dst_port(123), 100)?
            .named("ntp")
            .expect(Verdict::Pass)?;
        lab.send(Frame::ipv4().tcp().dst_port(53), 50)?
            .named("dns over tcp")
            .expect(Verdict::Pass)?;

        let stats = prog.map("guard_stats")?;
        // By field name, from the map's BTF, summed over CPUs...
        let path = if lab.is_test_run() {
            "test-run"
        } else {
            "live"
        };
        assert_eq!(stats.field(DROPPED, "packets")?, 200, "{mode} {path}");
        assert_eq!(stats.field(PASSED, "packets")?, 150, "{mode} {path}");
        // ...or as the program's own struct, one per CPU.
        let per_cpu = stats
            .get_per_cpu::<u32, VerdictStats>(DROPPED)?
            .unwrap_or_default();
        assert_eq!(per_cpu.iter().map(|s| s.packets).sum::<u64>(), 200);
        assert_eq!(per_cpu.iter().map(|s| s.bytes).sum::<u64>(), 200 * 60);
    }
    Ok(())
}

#[test]
fn test_run_returns_the_verdict_and_the_frame() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let prog = lab
        .load(object())?
        .global("blocked_port", 53)
        .xdp_section()
        .program("udp_guard")?;
    prog.test_run(&Frame::ipv4().udp().dst_port(53))?
        .expect(Verdict::Drop)?;
    let ntp = prog.test_run(&Frame::ipv4().udp().dst_port(123).size(90))?;
    ntp.expect(Verdict::Pass)?;
    assert_eq!(ntp.data.len(), 90, "passed unchanged");
    // IPv6 is not the guard's business.
    prog.test_run(&Frame::ipv6().udp().dst_port(53))?
        .expect(Verdict::Pass)?;
    assert_eq!(prog.map("guard_stats")?.field(PASSED, "packets")?, 2);
    Ok(())
}

#[test]
fn a_guard_configured_for_another_port_fails_with_the_report() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let _prog = guard(&lab, 54, XdpMode::Native)?;
    let error = lab
        .send(Frame::ipv4().udp().dst_port(53), 200)?
        .named("dns")
        .expect(Verdict::Drop)
        .expect_err("port 53 is not blocked");
    let text = error.to_string();
    assert!(
        text.starts_with("send \"dns\": expected drop, 200 of 200 frames went elsewhere: 200 pass"),
        "{text}"
    );
    Ok(())
}

#[test]
fn bad_input_is_an_error_not_a_failed_run() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let missing = lab
        .load(object().with_file_name("no_such.bpf.o"))
        .expect_err("no such object");
    assert!(missing.to_string().contains("no_such.bpf.o"), "{missing}");
    let entry = lab
        .load(object())?
        .xdp_section()
        .program("no_such_entry")
        .expect_err("no such program");
    assert!(entry.to_string().contains("udp_guard"), "{entry}");
    let prog = guard(&lab, 53, XdpMode::Generic)?;
    let map = prog.map("no_such_map").expect_err("no such map");
    assert!(map.to_string().contains("guard_stats"), "{map}");
    Ok(())
}

/// The same expectations as a scenario file, run on every execution path by the runner
/// `xdplab run` uses, and compared frame by frame.
#[test]
fn the_scenario_file_passes_on_every_path() -> xdplab::Result<()> {
    use xdplab::{
        report::Status,
        scenario::run::{ExecPath, RunOptions, run_paths}};
    let _lab = xdplab::lab!()?; // the gate: skip or fail like the other tests
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/udp_guard.toml");
    let scenario = xdplab::scenario::load(&path)
        .map_err(|e| xdplab::Error::Usage(format!("load {}: {e}", path.display())))?;
    let paths = [ExecPath::Native, ExecPath::Generic, ExecPath::TestRun];
    let (reports, differences) = run_paths(&scenario, &paths, &RunOptions::default());
    assert_eq!(reports.len(), 3);
    for report in &reports {
        assert_eq!(report.status, Status::Pass, "{}", report.human());
    }
    assert!(differences.is_empty(), "{differences:?}");
    Ok(())
}
