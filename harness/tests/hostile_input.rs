//! Paths that are not what they claim to be: each must cost a clear error (exit 2, naming the
//! file and what is wrong with it), never unbounded reading. `[program] object = "/dev/zero"`
//! once read until the OOM killer ended xdplab.
//!
//! Every file is read and checked before any lab is built; only objects, which `xdplab run`
//! reads after its environment checks, need the privileges a run needs.

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::{text, xdplab};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("xdplab-hostile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `xdplab ARGS`, which must exit 2 with `expected` in its stderr, and not hang.
fn refused(args: &[&str], expected: &str) {
    let start = Instant::now();
    let out = xdplab(args);
    let took = start.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "xdplab {args:?}: {stderr}");
    assert!(stderr.contains(expected), "xdplab {args:?}: {stderr}");
    // Reading stopped at once; no timing assertion on the machine's speed beyond "not a hang"
    // (parsing 65,537 send groups takes about 20 s in a debug build, a minute under QEMU's TCG).
    assert!(
        took < Duration::from_secs(300),
        "xdplab {args:?} took {took:?}"
    );
}

fn scenario_with(program_object: &str, send: &str) -> String {
    format!(
        "schema-version = 1\nname = \"hostile\"\n[program]\nobject = \"{program_object}\"\n\
         entry = \"xdp_drop_all\"\n[[send]]\nname = \"g\"\n{send}\nexpect = \"drop\"\n"
    )
}

#[test]
fn special_files_as_scenarios_are_refused() {
    for device in ["/dev/zero", "/dev/null", "/dev/urandom"] {
        refused(
            &["list", device],
            &format!(
                "{device}: cannot read scenario file: it is a character device, not a regular \
                 file or a pipe"
            ),
        );
    }
}

#[test]
fn an_object_or_a_capture_that_is_a_device_is_refused() {
    let dir = TempDir::new("devices");
    let object = dir.write(
        "object.toml",
        &scenario_with("/dev/zero", "count = 1\nipv4 = {}"),
    );
    refused(
        &["run", object.to_str().unwrap()],
        "failed to read object /dev/zero: it is a character device, not a regular file or a pipe \
         (an object file must be one)",
    );
    let pcap = dir.write(
        "pcap.toml",
        &scenario_with("xdp_drop", "pcap = \"/dev/zero\""),
    );
    refused(
        &["list", pcap.to_str().unwrap()],
        "cannot read pcap file /dev/zero: it is a character device, not a regular file or a pipe \
         (a capture file must be one)",
    );
}

#[test]
fn a_huge_scenario_is_refused_by_its_size() {
    let dir = TempDir::new("huge");
    let huge = dir.0.join("huge.toml");
    // Sparse: 8 GiB claimed, nothing written.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    refused(
        &["list", huge.to_str().unwrap()],
        "it is larger than the 4 MiB a scenario file may have (set XDPLAB_MAX_SCENARIO_BYTES=BYTES \
         to change the cap)",
    );
}

#[test]
fn a_symlink_loop_is_refused() {
    let dir = TempDir::new("loop");
    let a = dir.0.join("a.toml");
    let b = dir.0.join("b.toml");
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    refused(
        &["list", a.to_str().unwrap()],
        "a.toml: cannot read scenario file: ",
    );
}

#[test]
fn a_pipe_is_read_on_purpose() {
    // What `xdplab list <(cat scenario.toml)` hands over: a pipe, read to its end.
    let dir = TempDir::new("pipe");
    let fifo = dir.0.join("scenario.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let source = common::repo().join("scenarios/seed-drop-all.toml");
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(&fifo, std::fs::read(&source).unwrap()))
    };
    let out = xdplab(&["list", fifo.to_str().unwrap()]);
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("seed-drop-all"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_capture_cap_can_be_lowered_and_names_its_variable() {
    let dir = TempDir::new("cap");
    let scenario = dir.write(
        "pcap.toml",
        &scenario_with(
            "xdp_drop",
            &format!(
                "pcap = \"{}\"",
                common::repo().join("scenarios/data/mixed.pcap").display()
            ),
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(["list", scenario.to_str().unwrap()])
        .env("XDPLAB_MAX_CAPTURE_BYTES", "100")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "it is larger than the 100 bytes a capture file may have (set \
             XDPLAB_MAX_CAPTURE_BYTES=BYTES to change the cap)"
        ),
        "{stderr}"
    );
    assert!(Path::new(&scenario).exists());
}

/// A scenario of the bundled dropper with `body` after its `[program]`.
fn dropper_with(body: &str) -> String {
    format!(
        "schema-version = 1\nname = \"caps\"\n[program]\nobject = \"xdp_drop\"\n\
         entry = \"xdp_drop_all\"\n{body}"
    )
}

fn send_group(name: &str, count: u64, extra: &str) -> String {
    format!(
        "[[send]]\nname = \"{name}\"\ncount = {count}\nipv4 = {{}}\nudp = {{}}\n{extra}\
         expect = \"drop\"\n"
    )
}

/// Every cap on the work of one scenario, plus one: exit 2 at the table that crosses it,
/// before anything is built (so without privileges too).
#[test]
fn each_cap_on_a_scenarios_work_plus_one_is_refused() {
    use xdplab::scenario::caps;
    let dir = TempDir::new("caps");
    let mut cases: Vec<(&str, String, String)> = Vec::new();
    // Frames over all groups.
    cases.push((
        "frames",
        dropper_with(&format!(
            "{}{}",
            send_group("a", caps::MAX_FRAMES, ""),
            send_group("b", 1, "")
        )),
        format!("at most {} in one scenario", caps::MAX_FRAMES),
    ));
    // Send groups.
    let groups: String = (0..=caps::MAX_SEND_GROUPS)
        .map(|i| format!("[[send]]\nname = \"g{i}\"\ncount = 1\nexpect = \"drop\"\nipv4 = {{}}\n"))
        .collect();
    cases.push((
        "groups",
        dropper_with(&groups),
        format!("too many send groups: at most {}", caps::MAX_SEND_GROUPS),
    ));
    // Frames kept for output checks: 256 MiB at 64 bytes a frame is 4 Mi frames.
    let keep = caps::MAX_KEPT_BYTES / 64 + 1;
    cases.push((
        "kept",
        dropper_with(&send_group(
            "out",
            keep,
            "size = 64\noutput = { ipv4-ttl = 64 }\n",
        ))
        .replace("expect = \"drop\"", "expect = \"pass\""),
        "output checks keep every frame".to_owned(),
    ));
    // Flows.
    let flows: String = (0..=caps::MAX_FLOWS)
        .map(|i| format!("[[flow]]\nname = \"f{i}\"\nkind = \"ping\"\ncount = 1\n"))
        .collect();
    cases.push((
        "flows",
        dropper_with(&format!("{}{flows}", send_group("a", 1, ""))),
        format!("too many flows: at most {}", caps::MAX_FLOWS),
    ));
    // Map checks.
    let checks: String = (0..=caps::MAX_MAP_CHECKS)
        .map(|_| "[[expect.map]]\nmap = \"drop_cnt\"\nkey = 0\nvalue = 1\n".to_owned())
        .collect();
    cases.push((
        "map-checks",
        dropper_with(&format!("{}{checks}", send_group("a", 1, ""))),
        format!("at most {}", caps::MAX_MAP_CHECKS),
    ));
    // Declared time: tcp streams of 30 s against a baseline, each counted twice.
    let streams: String = (0..20)
        .map(|i| {
            format!(
                "[[flow]]\nname = \"s{i}\"\nkind = \"tcp-stream\"\nduration = \"30s\"\n\
                 expect = \"complete\"\nmin-goodput-ratio = 0.1\n"
            )
        })
        .collect();
    cases.push((
        "time",
        dropper_with(&format!("{}{streams}", send_group("a", 1, ""))),
        "may take".to_owned(),
    ));
    // Steps.
    let mut steps = String::from(
        "schema-version = 1\nname = \"caps\"\n[[step]]\nload = \"v1\"\nobject = \"xdp_drop\"\n\
         entry = \"xdp_drop_all\"\n",
    );
    for _ in 0..caps::MAX_STEPS {
        steps.push_str("[[step]]\nsleep = \"1ms\"\n");
    }
    cases.push((
        "steps",
        steps,
        format!("too many steps: at most {}", caps::MAX_STEPS),
    ));
    for (name, text, expected) in cases {
        let path = dir.write(&format!("{name}.toml"), &text);
        refused(&["run", path.to_str().unwrap()], &expected);
    }
}

/// Files cut short: a scenario inside a string, a pcap inside a record, an object inside its
/// section headers. Each is bad input at the place it breaks.
#[test]
fn truncated_files_are_refused_where_they_break() {
    let dir = TempDir::new("truncated");
    let repo = common::repo();
    let scenario = std::fs::read_to_string(repo.join("scenarios/seed-drop-all.toml")).unwrap();
    let cut = dir.write("cut.toml", &scenario[..150]);
    refused(&["list", cut.to_str().unwrap()], "cut.toml:6:");
    let pcap = std::fs::read(repo.join("scenarios/data/mixed.pcap")).unwrap();
    std::fs::write(dir.0.join("cut.pcap"), &pcap[..60]).unwrap();
    let uses_pcap = dir.write(
        "pcap.toml",
        &scenario_with("xdp_drop", "pcap = \"cut.pcap\""),
    );
    refused(
        &["list", uses_pcap.to_str().unwrap()],
        "cut.pcap: record 1 is truncated (the file ends inside it)",
    );
    // Objects are read after the environment checks of a run.
    if !xdplab::host::privileges::gate("truncated_files_are_refused_where_they_break (object)") {
        return;
    }
    let object = std::fs::read(repo.join("ebpf/obj/xdp_drop.bpf.o")).unwrap();
    std::fs::write(dir.0.join("cut.o"), &object[..1000]).unwrap();
    let uses_object = dir.write(
        "object.toml",
        &scenario_with("cut.o", "count = 1\nipv4 = {}"),
    );
    refused(
        &["run", uses_object.to_str().unwrap()],
        "cut.o: error parsing ELF data: section header table runs past the end",
    );
}

/// Outputs that cannot be written are refused before anything runs (exit 2), not found after
/// every scenario ran (or, for `--capture`, only when one fails).
#[test]
fn unwritable_outputs_are_refused_before_the_run() {
    let dir = TempDir::new("outputs");
    let file = dir.write("a-file", "");
    let scenario = common::repo().join("scenarios/seed-drop-all.toml");
    let scenario = scenario.to_str().unwrap();
    refused(
        &["run", "--capture", file.to_str().unwrap(), scenario],
        "failed to use capture directory",
    );
    let under_file = file.join("report.xml");
    refused(
        &["run", "--junit", under_file.to_str().unwrap(), scenario],
        "failed to write JUnit report",
    );
    assert!(
        std::fs::read(&file).unwrap().is_empty(),
        "the probe wrote nothing into the file"
    );
}
