//! The public API as a user's `cargo test` meets it: `lab!`, load, attach, send and expect on
//! both modes, `BPF_PROG_TEST_RUN`, typed map reads, bad input as errors, lifecycle actions,
//! topologies, and cleanup after a failing test. Each test goes through the `lab!` gate (SKIP
//! without privileges, failure with `XDPLAB_REQUIRE_PRIVILEGES=1`).

use std::{
    path::{Path, PathBuf},
    sync::Weak,
};

use xdplab::{
    Error, Frame, Lab, OutputSpec, Pod, Verdict, XdpMode,
    host::requires::{self, Feature, Requirement},
};

/// `struct datarec` of the bundled `xdp_stats` program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
struct Datarec {
    rx_packets: u64,
    rx_bytes: u64,
}
// SAFETY: repr(C), two u64, no padding.
unsafe impl Pod for Datarec {}

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

#[test]
fn test_run_gives_verdict_and_output_and_maps_read_typed() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let prog = lab.load_bundled("xdp_stats")?.program("xdp_stats")?;
    let nine = prog.test_run(&Frame::ipv4().udp().dst_port(9))?;
    nine.expect(Verdict::Drop)?;
    let other = prog.test_run(&Frame::ipv4().udp().dst_port(53).size(100))?;
    other.expect(Verdict::Pass)?;
    assert_eq!(other.data.len(), 100, "the frame as it left the program");
    for _ in 0..2 {
        prog.test_run(&Frame::ipv4().tcp())?.expect(Verdict::Pass)?;
    }

    let stats = prog.map("xdp_stats_map")?;
    assert_eq!(stats.field(XDP_DROP, "rx_packets")?, 1);
    assert_eq!(stats.field(XDP_PASS, "rx_packets")?, 3);
    let per_cpu: Vec<Datarec> = stats
        .get_per_cpu::<u32, Datarec>(XDP_PASS)?
        .expect("arrays hold every index");
    assert_eq!(per_cpu.iter().map(|d| d.rx_packets).sum::<u64>(), 3);
    assert_eq!(
        per_cpu.iter().map(|d| d.rx_bytes).sum::<u64>(),
        stats.field(XDP_PASS, "rx_bytes")?
    );
    assert_eq!(stats.keys::<u32>()?, vec![0, 1, 2, 3, 4]);

    // A wrong expectation is an error with the CLI's words.
    let wrong = nine
        .expect(Verdict::Pass)
        .expect_err("the program dropped it");
    assert!(wrong.failure().is_some());
    let text = wrong.to_string();
    assert!(text.contains("expected pass"), "{text}");
    assert!(text.contains("returned drop"), "{text}");

    // Typed misuse is an error, not a panic.
    let error = stats.get::<u32, u64>(0).expect_err("per-CPU map");
    assert!(
        error.to_string().starts_with("failed to read map"),
        "{error}"
    );
    let error = stats
        .get_u64(0u64)
        .expect_err("8-byte key on a 4-byte-key map");
    assert!(error.to_string().contains("8-byte key"), "{error}");
    let error = stats.field(0, "no_such_field").expect_err("no such field");
    assert!(error.to_string().contains("rx_packets"), "{error}");
    Ok(())
}

#[test]
fn bad_input_is_an_error_that_says_what_failed() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let missing = lab
        .load("/nonexistent/no_such.bpf.o")
        .expect_err("no such file");
    let text = missing.to_string();
    assert!(
        text.starts_with("failed to read object /nonexistent/no_such.bpf.o"),
        "{text}"
    );
    assert!(matches!(missing, Error::Program(_)));

    let no_program = lab
        .load_bundled("xdp_drop")?
        .attach("no_such_entry", XdpMode::Native)
        .expect_err("no such program");
    let text = no_program.to_string();
    assert!(
        text.starts_with("failed to find program \"no_such_entry\""),
        "{text}"
    );
    assert!(text.contains("xdp_drop_all"), "lists what it has: {text}");

    let prog = lab.load_bundled("xdp_drop")?.program("xdp_drop_all")?;
    let no_map = prog.map("no_such_map").expect_err("no such map");
    let text = no_map.to_string();
    assert!(
        text.starts_with("failed to find map \"no_such_map\""),
        "{text}"
    );
    assert!(text.contains("drop_cnt"), "lists what it has: {text}");

    let no_interface = lab
        .load_bundled("xdp_pass")?
        .attach_to("nowhere:eth0", "xdp_pass", XdpMode::Generic)
        .expect_err("no such interface");
    let text = no_interface.to_string();
    assert!(text.starts_with("failed to find interface"), "{text}");

    let bad_frame = lab
        .send(Frame::ipv4().dst_port(9), 1)
        .expect_err("no L4 layer for a port");
    assert!(
        bad_frame.to_string().starts_with("failed to build frame"),
        "{bad_frame}"
    );
    Ok(())
}

#[test]
fn a_file_object_attaches_detaches_and_reattaches() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("ebpf-obj/xdp_pass.bpf.o");
    let prog = lab.load(&here)?.attach("xdp_pass", XdpMode::Generic)?;
    assert_eq!(
        prog.attached().map(|(_, mode)| mode),
        Some(XdpMode::Generic)
    );
    prog.detach()?;
    assert_eq!(prog.attached(), None);
    assert!(prog.detach().is_err(), "detaching twice is an error");
    Ok(())
}

/// A user's test that fails half way, with the lab's namespaces handed out for checking.
fn failing_user_test(
    namespaces: &mut Vec<Weak<xdplab::kernel::netns::NetNs>>,
    pins: &mut Vec<PathBuf>,
) -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    for name in ["sender", "receiver"] {
        let ns = lab.topology().netns(name).expect("default lab namespaces");
        namespaces.push(std::sync::Arc::downgrade(ns));
    }
    let prog = lab
        .load_bundled("xdp_drop")?
        .attach("xdp_drop_all", XdpMode::Native)?;
    pins.push(prog.pin_link("held")?);
    pins.extend(lab.bpffs().map(Path::to_path_buf));
    lab.load("/nonexistent/object.bpf.o")?;
    unreachable!("the load above fails");
}

#[test]
fn a_failing_test_leaves_no_namespace_link_or_pin() -> xdplab::Result<()> {
    if !xdplab::host::privileges::gate("a_failing_test_leaves_no_namespace_link_or_pin") {
        return Ok(());
    }
    let (mut namespaces, mut pins) = (Vec::new(), Vec::new());
    let error = failing_user_test(&mut namespaces, &mut pins).expect_err("the user's test fails");
    assert!(error.to_string().contains("object.bpf.o"), "{error}");
    assert_eq!(namespaces.len(), 2);
    assert_eq!(pins.len(), 2, "the link pin and the lab's bpffs");
    for pin in &pins {
        assert!(!pin.exists(), "{} is left behind", pin.display());
    }
    for ns in &namespaces {
        assert_eq!(ns.strong_count(), 0, "a lab namespace is still held");
    }
    // A panicking test unwinds through the same drops.
    let mut namespaces = Vec::new();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new().expect("lab");
        namespaces.push(std::sync::Arc::downgrade(
            lab.topology().netns("receiver").expect("receiver"),
        ));
        let _prog = lab
            .load_bundled("xdp_drop")
            .and_then(|o| o.attach("xdp_drop_all", XdpMode::Generic))
            .expect("attach");
        panic!("a test using the lab fails");
    }));
    assert!(panicked.is_err());
    assert_eq!(
        namespaces[0].strong_count(),
        0,
        "a lab namespace is still held"
    );
    Ok(())
}

#[test]
fn drops_udp_to_port_9_on_both_modes() -> xdplab::Result<()> {
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let lab = xdplab::lab!()?;
        let prog = lab.load_bundled("xdp_stats")?.attach("xdp_stats", mode)?;
        lab.send(Frame::ipv4().udp().dst_port(9), 200)?
            .expect(Verdict::Drop)?;
        let passed = lab
            .send(Frame::ipv4().udp().dst_port(53), 100)?
            .expect(Verdict::Pass)?;
        assert_eq!(passed.sent(), 100);
        assert_eq!(passed.count(Verdict::Pass), 100);
        let stats = prog.map("xdp_stats_map")?;
        assert_eq!(stats.field(XDP_DROP, "rx_packets")?, 200, "{mode}");
        assert_eq!(stats.field(XDP_PASS, "rx_packets")?, 100, "{mode}");
    }
    Ok(())
}

#[test]
fn the_quick_start_reads_like_a_sentence() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let prog = lab
        .load_bundled("xdp_drop")?
        .attach("xdp_drop_all", XdpMode::Native)?;
    lab.send(Frame::ipv4().udp().dst_port(9), 1000)?
        .expect(Verdict::Drop)?;
    assert_eq!(prog.map("drop_cnt")?.get_u64(0)?, 1000);
    Ok(())
}

/// The scenario the API test below sends, as a file would say it.
const WRONG: &str = r#"
schema-version = 1
name = "wrong"

[program]
object = "xdp_stats"
entry = "xdp_stats"
mode = "MODE"

[[send]]
name = "udp9"
count = 50
ipv4 = {}
udp = { dst-port = 9 }
expect = "pass"
"#;

#[test]
fn a_wrong_verdict_fails_with_the_clis_text() -> xdplab::Result<()> {
    use xdplab::scenario::run::{ExecPath, RunOptions, run_path};
    for path in [ExecPath::Native, ExecPath::Generic, ExecPath::TestRun] {
        let (builder, mode) = match path {
            ExecPath::Native => (Lab::builder(), XdpMode::Native),
            ExecPath::Generic => (Lab::builder(), XdpMode::Generic),
            ExecPath::TestRun => (Lab::builder().test_run(), XdpMode::Native),
        };
        let lab = xdplab::lab!(builder)?;
        let _prog = lab.load_bundled("xdp_stats")?.attach("xdp_stats", mode)?;
        let error = lab
            .send(Frame::ipv4().udp().dst_port(9), 50)?
            .named("udp9")
            .expect(Verdict::Pass)
            .expect_err("the program drops UDP to port 9");
        let failure = error.failure().expect("a failed expectation");
        let text = error.to_string();
        let words = if path == ExecPath::TestRun {
            "send \"udp9\": expected pass, 50 of 50 frames returned something else (returned drop (1): seq 0, 1,"
        } else {
            "send \"udp9\": expected pass, 50 of 50 frames went elsewhere: 50 drop"
        };
        assert!(text.starts_with(words), "{path}: {text}");
        assert_eq!(failure.report.as_ref().map(|r| r.dropped), Some(50));

        // The same group as a scenario file, through the CLI's runner: the same lines.
        let scenario = xdplab::scenario::parse(
            &WRONG.replace("MODE", &mode.to_string()),
            Path::new("wrong.toml"),
        )
        .expect("scenario parses");
        let report = run_path(&scenario, path, &RunOptions::default());
        assert_eq!(report.failures, failure.failures, "{}", report.human());
    }
    Ok(())
}

#[test]
fn one_test_on_all_three_paths() -> xdplab::Result<()> {
    for (builder, mode) in [
        (Lab::builder(), XdpMode::Native),
        (Lab::builder(), XdpMode::Generic),
        (Lab::builder().test_run(), XdpMode::Native),
    ] {
        let lab = xdplab::lab!(builder)?;
        let prog = lab.load_bundled("xdp_tx")?.attach("xdp_tx", mode)?;
        let out = lab
            .send(Frame::ipv4().udp().dst_port(7), 100)?
            .output(OutputSpec {
                swapped_macs: true,
                dst_port: Some(7),
                ..OutputSpec::default()
            })
            .expect(Verdict::Tx)?;
        assert_eq!(out.count(Verdict::Tx), 100, "{mode} {}", lab.is_test_run());
        assert_eq!(prog.map("tx_cnt")?.get_u64(0)?, 100);
    }
    Ok(())
}

#[test]
fn tx_and_redirect_in_a_two_link_topology() -> xdplab::Result<()> {
    for mode in [XdpMode::Native, XdpMode::Generic] {
        // sender:eth0 <==> dut:in [XDP]  dut:out <==> sink:eth0
        let lab = xdplab::lab!(
            Lab::builder()
                .link("sender:eth0", "dut:in")
                .link("dut:out", "sink:eth0")
        )?;
        assert_eq!(
            lab.interfaces(),
            ["sender:eth0", "dut:in", "dut:out", "sink:eth0"]
        );
        // Generic XDP refuses a program with a DEVMAP before Linux 5.15 (generic-devmap).
        let devmap = [Requirement::Feature(Feature::GenericDevmap)];
        if mode == XdpMode::Native
            || requires::gate("tx_and_redirect_in_a_two_link_topology (generic)", &devmap)
        {
            let redirect =
                lab.load_bundled("xdp_redirect")?
                    .attach_to("dut:in", "xdp_redirect", mode)?;
            redirect.map("tx_port")?.set_interface(0u32, "dut:out")?;
            lab.send_from("sender:eth0", Frame::ipv4().udp().dst_port(53), 100)?
                .redirect_to("dut:out")?
                .expect(Verdict::Redirect)?;
            assert_eq!(redirect.map("redirect_cnt")?.get_u64(0)?, 100, "{mode}");
            // Expecting redirect without saying where is a usage error, not a failed send.
            let error = lab
                .send(Frame::ipv4().udp(), 1)?
                .expect(Verdict::Redirect)
                .expect_err("no target");
            assert!(error.to_string().contains("redirect_to"), "{error}");
            // Swap in the reflector at the same place: frames come back to the sender.
            redirect.detach()?;
        }
        let tx = lab
            .load_bundled("xdp_tx")?
            .attach_to("dut:in", "xdp_tx", mode)?;
        let reflected = OutputSpec {
            swapped_macs: true,
            dst_port: Some(7),
            length: Some(200),
            ..OutputSpec::default()
        };
        lab.send(Frame::ipv6().udp().dst_port(7).size(200), 50)?
            .output(reflected.clone())
            .expect(Verdict::Tx)?;
        // An output check that does not hold fails, field by field.
        let error = lab
            .send(Frame::ipv6().udp().dst_port(7).size(200), 5)?
            .named("short")
            .output(OutputSpec {
                length: Some(199),
                ..reflected
            })
            .expect(Verdict::Tx)
            .expect_err("the frames are 200 bytes");
        assert!(error.to_string().contains("send \"short\""), "{error}");
        assert!(error.to_string().contains("199"), "{error}");
        assert_eq!(tx.map("tx_cnt")?.get_u64(0)?, 55, "{mode}");
    }
    Ok(())
}

#[test]
fn replace_is_atomic_and_pins_stay_in_the_labs_bpffs() -> xdplab::Result<()> {
    let lab = xdplab::lab!()?;
    let dropper = lab
        .load_bundled("xdp_drop")?
        .attach("xdp_drop_all", XdpMode::Native)?;
    lab.send(Frame::ipv4().udp(), 100)?.expect(Verdict::Drop)?;
    let link = dropper.pin_link("guard")?;
    let bpffs = lab.bpffs().expect("mounted for the pin").to_path_buf();
    assert!(link.starts_with(&bpffs), "{}", link.display());
    assert!(!bpffs.starts_with("/sys/fs/bpf"));
    assert!(link.exists());

    let passer = lab.load_bundled("xdp_pass")?.program("xdp_pass")?;
    dropper.replace_with(&passer)?;
    assert_eq!(dropper.attached(), None);
    assert_eq!(
        passer.attached().map(|(_, mode)| mode),
        Some(XdpMode::Native)
    );
    lab.send(Frame::ipv4().udp(), 100)?.expect(Verdict::Pass)?;
    assert_eq!(
        dropper.map("drop_cnt")?.get_u64(0)?,
        100,
        "the old one saw no more"
    );
    let pinned = passer.pin("passer")?;
    assert!(pinned.starts_with(&bpffs));

    // Detached: frames reach the stack without any program.
    passer.detach()?;
    assert!(!link.exists(), "detaching removes the link's pin");
    dropper.attach_to("receiver", XdpMode::Generic)?;
    lab.send(Frame::ipv4().udp(), 10)?.expect(Verdict::Drop)?;
    Ok(())
}

/// `lab!` without privileges: this test binary re-run with every capability dropped
/// (`setpriv`), once as a developer runs it (SKIP line, pass) and once as CI does
/// (`XDPLAB_REQUIRE_PRIVILEGES=1`: the test fails with the reason).
#[test]
fn lab_macro_skips_or_fails_without_privileges() -> xdplab::Result<()> {
    if std::env::var_os("XDPLAB_API_CHILD").is_some() {
        return Ok(());
    }
    let Ok(setpriv) = which("setpriv") else {
        xdplab::host::privileges::print_skip(
            "lab_macro_skips_or_fails_without_privileges: setpriv (util-linux) is not installed",
        );
        return Ok(());
    };
    let me = std::env::current_exe().expect("test binary");
    let run = |require: bool| {
        let mut command = std::process::Command::new(&setpriv);
        command
            .args([
                "--bounding-set=-all",
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--",
            ])
            .arg(&me)
            .args(["--exact", "the_quick_start_reads_like_a_sentence"])
            .env("XDPLAB_API_CHILD", "1")
            .env_remove("XDPLAB_REQUIRE_PRIVILEGES");
        if require {
            command.env("XDPLAB_REQUIRE_PRIVILEGES", "1");
        }
        let out = command.output().expect("setpriv runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (passed, text) = run(false);
    assert!(passed, "{text}");
    assert!(
        text.contains("SKIP: privileged_api::the_quick_start_reads_like_a_sentence: "),
        "{text}"
    );
    let (passed, text) = run(true);
    assert!(!passed, "{text}");
    assert!(
        text.contains(
            "Error: failed to run privileged test \
             privileged_api::the_quick_start_reads_like_a_sentence: "
        ),
        "{text}"
    );
    Ok(())
}

fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .ok_or(())
}
