//! Objects loaded the way libbpf loads them, through the `xdplab` binary: free section names
//! with `type = "xdp"`, maps pinned by name (never outside the run's own bpffs, fresh on every
//! path), `.rodata`/`.data` configuration set before load, loader-set map sizes and tail calls
//! through a PROG_ARRAY. Each behaviour has a twin scenario that must fail when it is not
//! applied, so a loader that silently ignores a setting cannot pass.

mod common;
use common::{repo, text};

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use nix::mount::{MntFlags, MsFlags};
use xdplab::{host::privileges, kernel::program::PinnedProgram};

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("xdplab-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// Writes a bundled scenario with `edit` applied, its bundled object replaced by the
    /// committed object file (so the scenario can live outside scenarios/).
    fn scenario(&self, bundled: &str, file: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(repo().join("scenarios").join(bundled))
            .expect("bundled scenario");
        let path = self.0.join(file);
        std::fs::write(&path, edit(text)).expect("write scenario");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// `xdplab run --format json --paths PATHS FILE`, with the child's pid.
fn run(paths: &str, file: &Path) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args([
            "run",
            "--format",
            "json",
            "--no-throughput",
            "--paths",
            paths,
        ])
        .arg(file)
        .current_dir(repo())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("xdplab runs");
    let pid = child.id();
    (child.wait_with_output().expect("xdplab exits"), pid)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Every path's report of a run, checked to have run `paths` paths.
fn reports(out: &Output, paths: usize) -> Vec<serde_json::Value> {
    let json = json(out);
    let scenarios = json["scenarios"].as_array().expect("scenarios").clone();
    assert_eq!(scenarios.len(), paths, "{json:#}");
    scenarios
}

const ALL: &str = "native,generic,test-run";

#[test]
fn privileged_libbpf_style_objects_pass_on_every_path() {
    if !privileges::gate("privileged_libbpf_style_objects_pass_on_every_path") {
        return;
    }
    for file in ["libbpf-port-guard.toml", "libbpf-tail-call.toml"] {
        let (out, pid) = run(ALL, &repo().join("scenarios").join(file));
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
        for s in reports(&out, 3) {
            assert_eq!(s["status"], "pass", "{s:#}");
            for m in s["maps"].as_array().expect("maps") {
                assert_eq!(m["expected"], m["actual"], "{file}: {m:#}");
            }
        }
        assert_no_bpffs_left(pid);
    }
}

#[test]
fn privileged_rodata_config_changes_the_verdicts_and_must_be_applied() {
    if !privileges::gate("privileged_rodata_config_changes_the_verdicts_and_must_be_applied") {
        return;
    }
    let scratch = Scratch::new("loader-config");
    // Without its configuration the guard blocks nothing: the scenario must fail on every
    // path, at the groups it expects dropped.
    let unconfigured = scratch.scenario("libbpf-port-guard.toml", "unconfigured.toml", |t| {
        t.replace("globals = { blocked_port = 5353 }\n", "")
    });
    let (out, _) = run(ALL, &unconfigured);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for s in reports(&out, 3) {
        assert_eq!(s["status"], "fail", "{s:#}");
        let failures = s["failures"].to_string();
        assert!(failures.contains("udp-to-blocked-port"), "{failures}");
        assert!(
            failures.contains("port_stats[1]: expected 140, got 0"),
            "{failures}"
        );
    }
    // Another port: the verdicts move with the value.
    let other = scratch.scenario("libbpf-port-guard.toml", "other-port.toml", |t| {
        t.replace("blocked_port = 5353", "blocked_port = 53")
    });
    let (out, _) = run("test-run,native", &other);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for s in reports(&out, 2) {
        let failures = s["failures"].to_string();
        assert!(failures.contains("udp-elsewhere"), "{failures}");
    }
    // A bool in .rodata and an integer in .data: count the blocked frames but pass them, and a
    // blocked verdict of XDP_PASS, each set by name.
    for (name, setting) in [
        ("count-only.toml", "count_only = true"),
        ("data-action.toml", "blocked_action = 2"),
    ] {
        let passing = scratch.scenario("libbpf-port-guard.toml", name, |t| {
            t.replace(
                "globals = { blocked_port = 5353 }",
                &format!("globals = {{ blocked_port = 5353, {setting} }}"),
            )
            .replace("expect = \"drop\"", "expect = \"pass\"")
        });
        let (out, _) = run(ALL, &passing);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{setting}: {}",
            text(&out.stdout)
        );
        for s in reports(&out, 3) {
            assert_eq!(s["status"], "pass", "{setting}: {s:#}");
        }
    }
}

#[test]
fn privileged_tail_calls_and_map_sizes_must_be_set_up() {
    if !privileges::gate("privileged_tail_calls_and_map_sizes_must_be_set_up") {
        return;
    }
    let scratch = Scratch::new("loader-tail");
    // Empty PROG_ARRAY slots: UDP falls through the dispatcher and passes.
    let unfilled = scratch.scenario("libbpf-tail-call.toml", "unfilled.toml", |t| {
        t.replace("program = \"xdp_stage_udp\"", "value = 0")
            .replace(
                "[[setup.map]]\nmap = \"jmp_table\"\nkey = 0\nvalue = 0\n",
                "",
            )
    });
    let (out, _) = run(ALL, &unfilled);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for s in reports(&out, 3) {
        let failures = s["failures"].to_string();
        assert!(failures.contains("udp-to-stage-udp"), "{failures}");
        assert!(
            failures.contains("stage_hits[0]: expected 100, got 0"),
            "{failures}"
        );
    }
    // No size for the loader-sized map: a located error that says which key gives it.
    let unsized_map = scratch.scenario("libbpf-tail-call.toml", "unsized.toml", |t| {
        t.replace("max-entries = { stage_hits = 2 }\n", "")
    });
    let (out, _) = run("test-run", &unsized_map);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unsized.toml:"), "{stderr}");
    assert!(
        stderr.contains("declares max_entries 0")
            && stderr.contains("max-entries = { stage_hits = N }"),
        "{stderr}"
    );
    // A slot given a program the object does not have.
    let unknown = scratch.scenario("libbpf-tail-call.toml", "unknown.toml", |t| {
        t.replace(
            "program = \"xdp_stage_tcp\"",
            "program = \"xdp_stage_icmp\"",
        )
    });
    let (out, _) = run("test-run", &unknown);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("xdp_stage_icmp"), "{stderr}");
}

#[test]
fn privileged_a_free_section_without_a_type_is_a_located_error_with_the_fix() {
    if !privileges::gate("privileged_a_free_section_without_a_type_is_a_located_error_with_the_fix")
    {
        return;
    }
    let scratch = Scratch::new("loader-type");
    let untyped = scratch.scenario("libbpf-port-guard.toml", "untyped.toml", |t| {
        t.replace("type = \"xdp\"\n", "")
    });
    let (out, _) = run("test-run", &untyped);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "untyped.toml:7:",
        "xdp_port_guard (section \"xdp_guard_ports\")",
        "xdp_port_guard_off (section \"xdp/off\")",
        "type = \"xdp\"",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    // The other program of the object is in an xdp/NAME section: it loads with no type.
    let off = scratch.scenario("libbpf-port-guard.toml", "off.toml", |t| {
        t.replace("type = \"xdp\"\n", "")
            .replace(
                "entry = \"xdp_port_guard\"",
                "entry = \"xdp_port_guard_off\"",
            )
            .replace("expect = \"drop\"", "expect = \"pass\"")
    });
    let (out, _) = run("test-run", &off);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let s = &reports(&out, 1)[0];
    assert!(s["error"].is_null(), "loaded: {s:#}");
    // It passes everything and counts nothing, so only the map expectations fail.
    let failures = s["failures"].to_string();
    assert!(
        failures.contains("port_stats[1]: expected 140, got 0"),
        "{failures}"
    );
    assert!(!failures.contains("udp-to-blocked-port"), "{failures}");
}

#[test]
fn privileged_a_verifier_rejection_leaves_no_pins() {
    if !privileges::gate("privileged_a_verifier_rejection_leaves_no_pins") {
        return;
    }
    let scratch = Scratch::new("loader-reject");
    // The guard object with its second program's exit instruction turned into a jump to the
    // next instruction: the verifier refuses it ("last insn is not an exit or jmp") after its
    // pin-by-name maps were created and pinned.
    let mut bytes = std::fs::read(repo().join("ebpf/obj/xdp_port_guard.bpf.o")).expect("object");
    let range = xdplab::kernel::elf::section_range(&bytes, "xdp/off").expect("xdp/off section");
    let exit = range.end - 8;
    assert_eq!(bytes[exit], 0x95, "the section ends with exit");
    bytes[exit] = 0x05;
    let object = scratch.0.join("broken.bpf.o");
    std::fs::write(&object, &bytes).expect("write object");
    let broken = scratch.scenario("libbpf-port-guard.toml", "broken.toml", |t| {
        t.replace(
            "object = \"xdp_port_guard\"",
            &format!("object = {:?}", object.display().to_string()),
        )
        .replace(
            "entry = \"xdp_port_guard\"",
            "entry = \"xdp_port_guard_off\"",
        )
    });
    let (out, pid) = run(ALL, &broken);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("xdp_port_guard_off"), "{stderr}");
    assert_no_bpffs_left(pid);
}

/// No bpffs directory of process `pid` is left under /run/xdplab.
fn assert_no_bpffs_left(pid: u32) {
    let left: Vec<String> = std::fs::read_dir(xdplab::kernel::pin::RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{pid}-")))
        .collect();
    assert!(
        left.is_empty(),
        "left in {}: {left:?}",
        xdplab::kernel::pin::RUN_DIR
    );
}

/// What a directory tree holds: each entry's path, inode, mode, size, mtime, and for a
/// pinned program its kernel id; for a plain file its bytes.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let mut what = format!(
                "ino {} mode {:o} size {} mtime {}.{}",
                meta.ino(),
                meta.mode(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec()
            );
            let preloaded = xdplab::kernel::pin::PRELOADED
                .iter()
                .any(|p| entry.file_name() == *p);
            if meta.is_dir() {
                stack.push(path.clone());
            } else if preloaded {
                // The kernel's iterators list every loaded program and map: their text
                // changes with any load anywhere, their entries do not.
            } else if let Ok(program) = PinnedProgram::open(&path) {
                what.push_str(&format!(" prog id {}", program.id().expect("id")));
            } else if let Ok(bytes) = std::fs::read(&path) {
                what.push_str(&format!(" bytes {bytes:?}"));
            }
            out.insert(path, what);
        }
    }
    out
}

/// Undoes a mount made by the test, on every exit.
struct Unmount(&'static str);

impl Drop for Unmount {
    fn drop(&mut self) {
        nix::mount::umount2(self.0, MntFlags::MNT_DETACH).ok();
    }
}

#[test]
fn privileged_sys_fs_bpf_is_never_touched() {
    if !privileges::gate("privileged_sys_fs_bpf_is_never_touched") {
        return;
    }
    // A thread of its own, in a private mount namespace: the bpffs and tmpfs mounted at
    // /sys/fs/bpf below exist for this thread and the processes it starts, never for the host.
    std::thread::spawn(sys_fs_bpf_in_a_private_namespace)
        .join()
        .expect("the private-namespace checks pass");
}

fn sys_fs_bpf_in_a_private_namespace() {
    const SYS_FS_BPF: &str = "/sys/fs/bpf";
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let scenarios = [
        repo().join("scenarios/libbpf-port-guard.toml"),
        repo().join("scenarios/libbpf-tail-call.toml"),
    ];

    // 1. A bpffs at /sys/fs/bpf holding other software's pins, one of them named like a map
    //    the guard pins by name.
    nix::mount::mount(
        Some("bpf"),
        SYS_FS_BPF,
        Some("bpf"),
        MsFlags::empty(),
        None::<&str>,
    )
    .expect("mount bpffs at /sys/fs/bpf");
    let guard = Unmount(SYS_FS_BPF);
    {
        let source = xdplab::kernel::program::ObjectSource::Bundled("xdp_pass".into());
        let mut program =
            xdplab::kernel::program::Program::load(&source, "xdp_pass").expect("load");
        program
            .pin(Path::new("/sys/fs/bpf/port_stats"))
            .expect("pin a program under a map's name");
        std::fs::create_dir("/sys/fs/bpf/tool").expect("mkdir");
        let mut program =
            xdplab::kernel::program::Program::load(&source, "xdp_pass").expect("load");
        program
            .pin(Path::new("/sys/fs/bpf/tool/prog"))
            .expect("pin another");
    }
    let before = snapshot(Path::new(SYS_FS_BPF));
    let pins = before
        .keys()
        .filter(|p| {
            !xdplab::kernel::pin::PRELOADED
                .iter()
                .any(|n| p.file_name().is_some_and(|f| f == *n))
        })
        .count();
    assert_eq!(pins, 3, "{before:#?}");
    for file in &scenarios {
        // Twice: a second run finds fresh maps, not the first run's counts.
        for _ in 0..2 {
            let (out, pid) = run(ALL, file);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}\n{}",
                file.display(),
                text(&out.stdout),
                text(&out.stderr)
            );
            assert_no_bpffs_left(pid);
        }
    }
    assert_eq!(
        snapshot(Path::new(SYS_FS_BPF)),
        before,
        "bpffs at /sys/fs/bpf"
    );
    drop(guard);

    // 2. Another file system at /sys/fs/bpf (a tmpfs with a file in it).
    nix::mount::mount(
        Some("tmpfs"),
        SYS_FS_BPF,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64k"),
    )
    .expect("mount tmpfs at /sys/fs/bpf");
    let guard = Unmount(SYS_FS_BPF);
    std::fs::write("/sys/fs/bpf/port_seen", b"not a map").expect("write");
    let before = snapshot(Path::new(SYS_FS_BPF));
    for file in &scenarios {
        let (out, pid) = run(ALL, file);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_no_bpffs_left(pid);
    }
    assert_eq!(
        snapshot(Path::new(SYS_FS_BPF)),
        before,
        "tmpfs at /sys/fs/bpf"
    );
    drop(guard);

    // 3. Nothing mounted there (sysfs's empty directory).
    let before = snapshot(Path::new(SYS_FS_BPF));
    let (out, pid) = run(ALL, &scenarios[0]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_no_bpffs_left(pid);
    assert_eq!(snapshot(Path::new(SYS_FS_BPF)), before, "bare /sys/fs/bpf");

    // 4. No /sys/fs/bpf at all (an empty tmpfs over /sys/fs hides it).
    nix::mount::mount(
        Some("tmpfs"),
        "/sys/fs",
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64k"),
    )
    .expect("mount tmpfs at /sys/fs");
    let _guard = Unmount("/sys/fs");
    assert!(!Path::new(SYS_FS_BPF).exists());
    let (out, pid) = run(ALL, &scenarios[0]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_no_bpffs_left(pid);
    assert!(!Path::new(SYS_FS_BPF).exists(), "nothing made /sys/fs/bpf");
}

#[test]
fn privileged_maps_of_attach_programs_are_set_up_and_checked() {
    if !privileges::gate("privileged_maps_of_attach_programs_are_set_up_and_checked") {
        return;
    }
    let scratch = Scratch::new("loader-attach");
    // xdp_tx reflects UDP to the sender, where an [[attach]] dispatcher (its PROG_ARRAY slot
    // 0 filled with the TCP stage, its map sized and seeded by the scenario) counts them in
    // stage_hits[1].
    let text = format!(
        r#"schema-version = 1
name = "attach-maps"

[program]
object = "xdp_tx"
entry = "xdp_tx"

[[attach]]
at = "sender"
object = {object:?}
entry = "xdp_dispatch"
max-entries = {{ stage_hits = 2 }}

[[setup.map]]
map = "jmp_table"
key = 0
program = "xdp_stage_tcp"
at = "sender"

[[setup.map]]
map = "stage_hits"
key = 0
value = 1000
at = "sender"

[[send]]
name = "udp"
count = 30
ipv4 = {{}}
udp = {{ dst-port = 7 }}
expect = "tx"

[[expect.map]]
map = "stage_hits"
key = 0
value = 1000
at = "sender"

[[expect.map]]
map = "stage_hits"
key = 1
value = 30
at = "sender"
"#,
        object = repo()
            .join("ebpf/obj/xdp_tail_call.bpf.o")
            .display()
            .to_string()
    );
    let good = scratch.0.join("attach-maps.toml");
    std::fs::write(&good, &text).expect("write");
    let (out, _) = run(ALL, &good);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let live = reports(&out, 3);
    for s in &live[..2] {
        let maps = s["maps"].as_array().expect("maps");
        assert_eq!(maps.len(), 2, "both [[attach]] checks ran live: {s:#}");
    }
    // test-run runs no [[attach]] program: its checks are listed as not checked.
    assert!(
        live[2]["notes"].to_string().contains("not checked"),
        "{:#}",
        live[2]
    );
    // The checks read the [[attach]] program's map, not the program under test's: a wrong
    // count fails on both live paths.
    let wrong = scratch.0.join("attach-maps-wrong.toml");
    std::fs::write(&wrong, text.replace("value = 30", "value = 31")).expect("write");
    let (out, _) = run("native,generic", &wrong);
    assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    for s in reports(&out, 2) {
        assert!(
            s["failures"]
                .to_string()
                .contains("stage_hits[1]: expected 31, got 30"),
            "{s:#}"
        );
    }
}

fn text_of(out: &Output) -> String {
    format!("{}\n{}", text(&out.stdout), text(&out.stderr))
}
