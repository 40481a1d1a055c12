//! The operator's workflow under test: pinning in a private bpffs, atomic replacement under
//! load with a per-frame proof, rollback, restart from pins, detach and unpin, and the same
//! objects seen through bpftool. Needs root.

mod common;
use common::repo;

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use xdplab::{
    frame::{FrameSpec, FrameTemplate, Ipv4Spec, UdpSpec},
    host::privileges,
    inject::pnet::PnetInjector,
    kernel::link::XdpLink,
    kernel::maps::PinnedMap,
    kernel::pin::Bpffs,
    kernel::program::{LoadOptions, ObjectSource, PinnedProgram, Program, XdpMode},
    report::{ScenarioReport, Status},
    scenario::{self, run},
    topology::lab::{Lab, LabConfig},
};

fn run_file(path: &Path) -> ScenarioReport {
    let scenario = scenario::load(path).expect("scenario loads");
    run::run(&scenario)
}

/// The JSON of the trace check in the report's steps.
fn trace(report: &ScenarioReport) -> Value {
    report
        .steps
        .iter()
        .find_map(|s| s.data.as_ref().and_then(|d| d.get("trace")).cloned())
        .unwrap_or_else(|| panic!("no trace in {}", report.human()))
}

#[test]
fn privileged_replace_under_load_loses_no_frame() {
    if !privileges::gate("privileged_replace_under_load_loses_no_frame") {
        return;
    }
    let report = run_file(&repo().join("scenarios/lifecycle-replace-under-load.toml"));
    assert_eq!(report.status, Status::Pass, "{}", report.human());
    let t = trace(&report);
    assert_eq!(t["sent"], 400_000, "{t}");
    assert_eq!(t["lost"], 0, "{t}");
    assert_eq!(t["foreign"], 0, "{t}");
    let v1 = t["by_version"]["v1"].as_u64().expect("v1 handled frames");
    let v2 = t["by_version"]["v2"].as_u64().expect("v2 handled frames");
    assert_eq!(v1 + v2, 400_000, "{t}");
    // The replacement came after 150,000 frames were out: both versions handled some.
    assert!(v1 >= 150_000 && v2 > 0, "{t}");
    // One switch, forwards: every frame before it went to v1, every one after to v2.
    assert_eq!(t["switches"].as_array().map(Vec::len), Some(1), "{t}");
    assert_eq!(t["switches"][0]["seq"], v1, "{t}");
    assert_eq!(t["backwards"], 0, "{t}");
}

#[test]
fn privileged_a_replacement_with_a_gap_fails_and_names_the_frames() {
    if !privileges::gate("privileged_a_replacement_with_a_gap_fails_and_names_the_frames") {
        return;
    }
    let report = run_file(&repo().join("harness/tests/fixtures/scenarios/lifecycle-gap.toml"));
    assert_eq!(report.status, Status::Fail, "{}", report.human());
    assert!(report.error.is_none(), "it ran: {}", report.human());
    let t = trace(&report);
    let lost = t["lost"].as_u64().expect("lost");
    assert!(lost > 0, "the 20 ms gap let frames through: {t}");
    assert!(
        !t["lost_seq"].as_array().expect("list").is_empty(),
        "names the frames: {t}"
    );
    let handled =
        t["by_version"]["v1"].as_u64().unwrap_or(0) + t["by_version"]["v2"].as_u64().unwrap_or(0);
    assert_eq!(handled + lost, 200_000, "{t}");
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.contains("handled by no version (seq ")),
        "{:?}",
        report.failures
    );
}

#[test]
fn privileged_rollback_restart_and_pin_cleanup_scenarios_pass() {
    if !privileges::gate("privileged_rollback_restart_and_pin_cleanup_scenarios_pass") {
        return;
    }
    for name in [
        "lifecycle-rollback",
        "lifecycle-restart",
        "lifecycle-pin-cleanup",
    ] {
        let report = run_file(&repo().join(format!("scenarios/{name}.toml")));
        assert_eq!(report.status, Status::Pass, "{}", report.human());
        // The run's bpffs went with it.
        let mount = report
            .notes
            .iter()
            .find_map(|n| n.strip_prefix("pins in a private bpffs at "))
            .and_then(|n| n.split(',').next())
            .expect("the report names its bpffs");
        assert!(!Path::new(mount).exists(), "{mount} left behind");
        let verbs: Vec<&str> = report.steps.iter().map(|s| s.action.as_str()).collect();
        match name {
            "lifecycle-rollback" => assert!(verbs.contains(&"rollback"), "{verbs:?}"),
            "lifecycle-restart" => {
                assert_eq!(verbs.iter().filter(|v| **v == "restart").count(), 2);
                assert_eq!(trace(&report)["lost"], 0);
            }
            _ => {
                let unpin = report
                    .steps
                    .iter()
                    .find(|s| s.action == "unpin")
                    .expect("unpin step");
                assert!(
                    unpin
                        .detail
                        .contains("the kernel released all 1 programs, 4 maps, 1 links"),
                    "{}",
                    unpin.detail
                );
            }
        }
    }
}

/// bpftool on PATH, or why the interop test cannot run.
fn bpftool() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("bpftool"))
        .find(|p| p.is_file())
        .ok_or_else(|| "bpftool is not installed (apt-get install bpftool)".to_owned())
}

fn json_of(command: &mut Command) -> Value {
    let out = command.output().expect("run bpftool");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{command:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A u64 from bpftool's map dump: the BTF-formatted value, or its little-endian hex bytes.
fn dumped_value(entry: &Value) -> u64 {
    if let Some(v) = entry["formatted"]["value"].as_u64() {
        return v;
    }
    let bytes: Vec<u8> = entry["value"]
        .as_array()
        .expect("value bytes")
        .iter()
        .map(|b| {
            u8::from_str_radix(b.as_str().expect("hex").trim_start_matches("0x"), 16)
                .expect("hex byte")
        })
        .collect();
    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
}

#[test]
fn privileged_bpftool_sees_the_pinned_map_link_and_attachment() {
    if !privileges::gate("privileged_bpftool_sees_the_pinned_map_link_and_attachment") {
        return;
    }
    let bpftool = match bpftool() {
        Ok(path) => path,
        Err(reason) if std::env::var_os("XDPLAB_REQUIRE_BPFTOOL").is_some() => {
            panic!("XDPLAB_REQUIRE_BPFTOOL is set but {reason}")
        }
        Err(reason) => {
            println!("SKIP privileged_bpftool_sees_the_pinned_map_link_and_attachment: {reason}");
            return;
        }
    };
    let lab = Lab::new(&LabConfig::default()).expect("lab");
    let bpffs = Bpffs::mount().expect("bpffs");
    let maps = bpffs.pin_path("maps");
    std::fs::create_dir(&maps).expect("maps dir");
    let mut program = Program::load_with(
        &ObjectSource::Bundled("xdp_version".into()),
        "xdp_version",
        &LoadOptions {
            globals: vec![("version".into(), 7)],
            map_pin_dir: Some(maps.clone()),
            ..LoadOptions::default()
        },
    )
    .expect("load");
    let prog_pin = bpffs.pin_path("v7");
    program.pin(&prog_pin).expect("pin program");
    let prog_id = program.id().expect("id");
    drop(program);
    let mut pinned = PinnedProgram::open(&prog_pin).expect("reopen program");
    assert_eq!(pinned.id().expect("id"), prog_id);
    let attachment = pinned
        .attach(lab.receiver(), XdpMode::Native)
        .expect("attach");
    let link_pin = bpffs.pin_path("rx");
    let link = XdpLink::pin(attachment, &link_pin).expect("pin link");
    let info = link.info().expect("link info");
    assert_eq!(info.prog_id, prog_id);

    let spec = FrameSpec {
        ipv4: Some(Ipv4Spec::default()),
        udp: Some(UdpSpec::default()),
        ..FrameSpec::default()
    };
    let template = FrameTemplate::build(&spec, &lab.endpoints(), 1514).expect("frame");
    let mut injector = PnetInjector::open(lab.sender()).expect("injector");
    let stats = injector.send(&[template], lab.run_id(), 0, 321);
    assert_eq!(stats.accepted, 321);
    drop(injector);

    // Our reading of the pinned counter, once every frame is in.
    let counter = PinnedMap::open(&maps.join("pkt_cnt")).expect("pinned map");
    let ours = (0..300)
        .find_map(|_| {
            let v = counter
                .map()
                .expect("map")
                .lookup(&0u32.to_le_bytes())
                .expect("lookup")?
                .sum_u64()?;
            if v == 321 {
                Some(v)
            } else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            }
        })
        .expect("pkt_cnt reaches 321");

    // bpftool map dump pinned: the same value.
    let dump = json_of(
        Command::new(&bpftool)
            .args(["-j", "map", "dump", "pinned"])
            .arg(maps.join("pkt_cnt")),
    );
    let entries = dump.as_array().expect("dump is a list");
    assert_eq!(entries.len(), 1, "{dump}");
    assert_eq!(dumped_value(&entries[0]), ours, "{dump}");

    // bpftool link show pinned: the link runs our program.
    let shown = json_of(
        Command::new(&bpftool)
            .args(["-j", "link", "show", "pinned"])
            .arg(&link_pin),
    );
    assert_eq!(shown["id"], info.id, "{shown}");
    assert_eq!(shown["prog_id"], prog_id, "{shown}");
    assert_eq!(shown["type"], "xdp", "{shown}");

    // bpftool net, run inside the receiver's namespace (ifindexes are per namespace).
    let netns = lab.receiver_netns().as_fd().as_raw_fd();
    let mut net = Command::new(&bpftool);
    net.args(["-j", "net", "show"]);
    // SAFETY: setns(2) is async-signal-safe; the namespace fd stays open in the parent.
    unsafe {
        net.pre_exec(move || {
            if libc::setns(netns, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let net = json_of(&mut net);
    let xdp = net[0]["xdp"].as_array().expect("xdp list");
    assert!(
        xdp.iter().any(|e| e["devname"] == lab.receiver().name()
            && e["id"] == prog_id
            && e["mode"] == "driver"),
        "{net}"
    );

    // Removing the link pin and our handle detaches the program.
    link.unpin().expect("unpin link");
    let net = {
        let mut again = Command::new(&bpftool);
        again.args(["-j", "net", "show"]);
        // SAFETY: as above.
        unsafe {
            again.pre_exec(move || {
                if libc::setns(netns, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        json_of(&mut again)
    };
    assert!(
        net[0]["xdp"]
            .as_array()
            .is_none_or(|l| l.iter().all(|e| e["id"] != prog_id)),
        "detached after unpin: {net}"
    );
    drop(pinned);
    bpffs.unmount().expect("unmount");
}

#[test]
fn privileged_pin_option_pins_program_maps_and_link_and_removes_them() {
    if !privileges::gate("privileged_pin_option_pins_program_maps_and_link_and_removes_them") {
        return;
    }
    let path = repo().join("scenarios/seed-drop-all.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    let text = text.replacen("mode = \"native\"", "mode = \"native\"\npin = true", 1);
    let scenario = scenario::parse(&text, &path).expect("parses with pin = true");
    assert!(scenario.program.pin);
    let report = run::run(&scenario);
    assert_eq!(report.status, Status::Pass, "{}", report.human());
    let note = report
        .notes
        .iter()
        .find_map(|n| n.strip_prefix("pinned in a private bpffs at "))
        .unwrap_or_else(|| panic!("no pin note: {:?}", report.notes));
    let (mount, pins) = note.split_once(": ").expect("mount: pins");
    assert_eq!(pins, "links/program, maps/drop_cnt, progs/xdp_drop_all");
    assert!(!Path::new(mount).exists(), "{mount} removed at the end");
    // The counter read through the program is the pinned map's: 1000 frames dropped.
    assert!(
        report.maps.iter().any(|m| m.map == "drop_cnt" && m.ok),
        "{}",
        report.human()
    );
}
