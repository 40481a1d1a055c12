//! Cleanup that survives signals: SIGINT and SIGTERM stop `xdplab run` and `xdplab bench`
//! cleanly (exit 130/143, nothing left), and after `xdplab run` is SIGKILLed at random moments
//! the next start leaves nothing the killed runs made: no bpffs mount or directory of theirs
//! under /run/xdplab, no namespace of theirs kept by a bind mount, no interface of theirs in
//! the host namespace, no bpf program or link of theirs.
//!
//! What a killed child made is read from its own `/proc/<pid>` just before the kill (the
//! namespaces its threads and descriptors hold, the bpf program and link ids in its fdinfo),
//! so other engineers' runs on the same machine, which come and go at the same time, cannot
//! make the check pass or fail.
//!
//! The tests of this file run one at a time (they share /run/xdplab: every `xdplab run` sweeps
//! it at start).

mod common;
use common::repo;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use xdplab::host::privileges;

/// One test at a time in this file.
static SERIAL: Mutex<()> = Mutex::new(());

/// A bound on every wait for a child: far above what any of them takes, so only a hang hits it.
const CHILD_BOUND: Duration = Duration::from_secs(120);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A scenario file in a directory of its own, removed on drop (also when the test fails).
struct TempScenario(PathBuf);

impl TempScenario {
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempScenario {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A scenario file of its own for this test: the seed dropper with `count` frames.
fn seed_scenario(tag: &str, count: u32) -> TempScenario {
    let text = std::fs::read_to_string(repo().join("scenarios/seed-drop-all.toml"))
        .expect("bundled seed scenario")
        .replace("count = 1000", &format!("count = {count}"))
        .replace("value = 1000", &format!("value = {count}"));
    assert!(text.contains(&format!("count = {count}")), "{text}");
    let dir = std::env::temp_dir().join(format!("xdplab-signals-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).expect("write scenario");
    TempScenario(path)
}

fn spawn(args: &[&str], stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("xdplab starts")
}

/// Waits for `child`, at most `bound`; kills it and fails the test past that.
fn wait_bounded(child: &mut Child, bound: Duration) -> ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xdplab (pid {}) did not end within {bound:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a process holds that xdplab makes: network namespaces (through its threads or its
/// descriptors) and bpf objects (through its descriptors).
#[derive(Debug, Default)]
struct Held {
    netns: BTreeSet<u64>,
    progs: BTreeSet<u32>,
    links: BTreeSet<u32>,
}

impl Held {
    fn extend(&mut self, other: Self) {
        self.netns.extend(other.netns);
        self.progs.extend(other.progs);
        self.links.extend(other.links);
    }
}

fn netns_inode(path: &Path) -> Option<u64> {
    let target = std::fs::read_link(path).ok()?;
    let text = target.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Reads `/proc/<pid>`: the namespaces of its threads and descriptors other than the host's,
/// and the ids of the bpf programs and links its descriptors hold.
fn held_by(pid: u32) -> Held {
    // The test never leaves the host namespace (reading pid 1's may be refused).
    let host = netns_inode(Path::new("/proc/self/ns/net"));
    let mut held = Held::default();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if let Ok(tasks) = std::fs::read_dir(proc.join("task")) {
        for task in tasks.flatten() {
            if let Some(ino) = netns_inode(&task.path().join("ns/net")) {
                held.netns.insert(ino);
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir(proc.join("fd")) {
        for fd in fds.flatten() {
            if let Some(ino) = netns_inode(&fd.path()) {
                held.netns.insert(ino);
            }
            let info = proc.join("fdinfo").join(fd.file_name());
            if let Ok(text) = std::fs::read_to_string(info) {
                let field = |name: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .and_then(|v| v.trim().parse::<u32>().ok())
                };
                if let Some(id) = field("link_id:") {
                    held.links.insert(id);
                } else if let Some(id) = field("prog_id:") {
                    held.progs.insert(id);
                }
            }
        }
    }
    if let Some(host) = host {
        held.netns.remove(&host);
    }
    held
}

/// Network namespaces bind-mounted anywhere (`ip netns add` does that): mount point and
/// namespace inode, from the nsfs mounts in /proc/self/mountinfo.
fn netns_mounts() -> BTreeSet<(String, u64)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            // Field 4 is the mount's root, `net:[<inode>]` for a namespace; field 5 where it is.
            let root = fields.nth(3)?;
            let mount_point = fields.next()?;
            let ino = root
                .strip_prefix("net:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((mount_point.to_owned(), ino))
        })
        .collect()
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;

/// Whether a bpf program or link with this id still exists (`bpf(BPF_*_GET_FD_BY_ID)`).
fn bpf_object_exists(cmd: libc::c_long, id: u32) -> bool {
    // union bpf_attr for *_GET_FD_BY_ID: { __u32 id; __u32 next_id; __u32 open_flags; }
    let mut attr = [0u32; 4];
    attr[0] = id;
    // SAFETY: bpf(2) reads size_of_val(&attr) bytes from a live buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd >= 0 {
        // SAFETY: a descriptor bpf(2) just returned to us.
        unsafe { libc::close(fd as libc::c_int) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
}

/// Mount points and directories under /run/xdplab that belong to `pid`.
fn run_dir_entries(pid: u32) -> Vec<String> {
    let prefix = format!("/run/xdplab/{pid}-");
    let mut found: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mount_point| mount_point.starts_with(&prefix))
        .map(|m| format!("mount {m}"))
        .collect();
    if let Ok(entries) = std::fs::read_dir("/run/xdplab") {
        for entry in entries.flatten() {
            let path = entry.path().display().to_string();
            if path.starts_with(&prefix) {
                found.push(format!("directory {path}"));
            }
        }
    }
    found
}

/// What the host had before the runs.
struct Before {
    interfaces: BTreeSet<String>,
    netns_mounts: BTreeSet<(String, u64)>,
}

impl Before {
    fn now() -> Self {
        Self {
            interfaces: host_interfaces(),
            netns_mounts: netns_mounts(),
        }
    }
}

/// Interfaces of the host namespace (this test's thread never leaves it).
fn host_interfaces() -> BTreeSet<String> {
    std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Checks that nothing `held` (made by the dead processes `pids`) remains, polling up to a
/// bound for what the kernel frees asynchronously (bpf objects are freed after an RCU grace
/// period).
///
/// A namespace outlives its last process only if something else holds it: a descriptor passed
/// to another process (xdplab passes none) or a bind mount, so no nsfs mount may have appeared
/// and none may hold a namespace the runs had. (Namespace inode numbers are reused once freed,
/// so a new namespace of some other process may carry one of `held`'s numbers: only mounts are
/// compared by number.)
fn assert_nothing_left(pids: &[u32], held: &Held, before: &Before) {
    for pid in pids {
        let left = run_dir_entries(*pid);
        assert!(left.is_empty(), "left by killed xdplab {pid}: {left:?}");
    }
    let mounts = netns_mounts();
    let new: Vec<_> = mounts.difference(&before.netns_mounts).collect();
    assert!(new.is_empty(), "network namespaces bind-mounted: {new:?}");
    let theirs: Vec<_> = mounts
        .iter()
        .filter(|(_, ino)| held.netns.contains(ino))
        .collect();
    assert!(
        theirs.is_empty(),
        "namespaces of the runs are still mounted: {theirs:?}"
    );
    let host_before = &before.interfaces;
    let host_after = host_interfaces();
    let new: Vec<_> = host_after.difference(host_before).collect();
    let ours: Vec<_> = new
        .iter()
        .filter(|name| name.starts_with("xl") || pids.iter().any(|p| name.contains(&p.to_string())))
        .collect();
    assert!(
        ours.is_empty(),
        "interfaces in the host namespace: {ours:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let progs: Vec<u32> = held
            .progs
            .iter()
            .copied()
            .filter(|id| bpf_object_exists(BPF_PROG_GET_FD_BY_ID, *id))
            .collect();
        let links: Vec<u32> = held
            .links
            .iter()
            .copied()
            .filter(|id| bpf_object_exists(BPF_LINK_GET_FD_BY_ID, *id))
            .collect();
        if progs.is_empty() && links.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bpf objects of killed runs still exist: programs {progs:?}, links {links:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the child holds a lab namespace (it is past argument parsing, has installed
/// its signal handlers and is running a scenario); what it holds then.
fn wait_for_lab(child: &mut Child) -> Held {
    let deadline = Instant::now() + CHILD_BOUND;
    loop {
        let held = held_by(child.id());
        if !held.netns.is_empty() {
            return held;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("xdplab ended ({status}) before it built a lab");
        }
        assert!(Instant::now() < deadline, "xdplab built no lab in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGINT or SIGTERM while a scenario runs: exit 128 + signal, the message, nothing left.
fn interrupt_run(signal: libc::c_int, name: &str, code: i32) {
    let before = Before::now();
    // Long enough that the signal lands while it sends: 200 groups' worth of frames.
    let scenario = seed_scenario(&format!("interrupt-{code}"), 400_000);
    let mut child = spawn(&["run", scenario.path()], Stdio::piped());
    let mut held = wait_for_lab(&mut child);
    std::thread::sleep(Duration::from_millis(50));
    held.extend(held_by(child.id()));
    // SAFETY: kill(2) on our own child, which has not been reaped (try_wait saw it running).
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let status = wait_bounded(&mut child, CHILD_BOUND);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("piped stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(code), "{status}; stderr: {stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {name}")),
        "stderr: {stderr}"
    );
    assert!(
        !held.netns.is_empty() && !held.progs.is_empty(),
        "the run held a lab and a program: {held:?}"
    );
    assert_nothing_left(&[child.id()], &held, &before);
}

#[test]
fn privileged_sigint_stops_run_with_130_and_cleans_up() {
    if !privileges::gate("privileged_sigint_stops_run_with_130_and_cleans_up") {
        return;
    }
    let _serial = serial();
    interrupt_run(libc::SIGINT, "SIGINT", 130);
}

#[test]
fn privileged_sigterm_stops_run_with_143_and_cleans_up() {
    if !privileges::gate("privileged_sigterm_stops_run_with_143_and_cleans_up") {
        return;
    }
    let _serial = serial();
    interrupt_run(libc::SIGTERM, "SIGTERM", 143);
}

#[test]
fn privileged_sigterm_stops_bench_mid_measurement() {
    if !privileges::gate("privileged_sigterm_stops_bench_mid_measurement") {
        return;
    }
    let _serial = serial();
    let before = Before::now();
    // One configuration of 60 s: ending well within the bound below means the send loop
    // itself stopped, not the run after it.
    let mut child = spawn(
        &[
            "bench",
            "--program",
            "drop",
            "--mode",
            "native",
            "--injector",
            "batched",
            "--size",
            "64",
            "--duration",
            "60s",
            "--no-save",
        ],
        Stdio::piped(),
    );
    let mut held = wait_for_lab(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    held.extend(held_by(child.id()));
    // SAFETY: kill(2) on our own, unreaped child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = wait_bounded(&mut child, Duration::from_secs(40));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("piped stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(143), "{status}; stderr: {stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_nothing_left(&[child.id()], &held, &before);
}

/// A tiny deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..=max`.
    fn below(&mut self, max: Duration) -> Duration {
        let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.next() % nanos.saturating_add(1))
    }
}

/// Mounts a bpffs at `path` as xdplab does for a run.
fn plant_bpffs(path: &Path) {
    std::fs::create_dir_all(path).expect("mkdir");
    nix::mount::mount(
        Some("bpf"),
        path,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        Some("mode=0700"),
    )
    .expect("mount bpffs");
}

/// The pid of a process that has ended and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn privileged_sigkill_at_random_moments_leaves_nothing_after_next_start() {
    if !privileges::gate("privileged_sigkill_at_random_moments_leaves_nothing_after_next_start") {
        return;
    }
    let _serial = serial();
    const KILLS: usize = 32;
    let seed = std::env::var("XDPLAB_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0006_u64);
    eprintln!("sigkill test seed {seed:#x} (XDPLAB_KILL_SEED to replay)");
    let mut rng = Rng(seed | 1);
    let before = Before::now();
    let scenario = seed_scenario("sigkill", 20_000);
    let args = ["run", scenario.path()];

    // How long an undisturbed run takes here, so kill times spread over all of it: start-up
    // and setup, traffic, the checks and teardown, and a little past the end.
    let started = Instant::now();
    let mut child = spawn(&args, Stdio::null());
    let status = wait_bounded(&mut child, CHILD_BOUND);
    assert!(status.success(), "an undisturbed run passes: {status}");
    let span = started.elapsed().mul_f64(1.1);

    let mut held = Held::default();
    let mut pids = Vec::new();
    let mut with_lab = 0;
    for _ in 0..KILLS {
        let delay = rng.below(span);
        let mut child = spawn(&args, Stdio::null());
        std::thread::sleep(delay);
        let now = held_by(child.id());
        with_lab += usize::from(!now.netns.is_empty());
        held.extend(now);
        // Kill even if it has already ended (then this does nothing).
        let _ = child.kill();
        wait_bounded(&mut child, CHILD_BOUND);
        pids.push(child.id());
    }
    eprintln!(
        "{KILLS} kills over {span:?}: {with_lab} while a lab was up; seen {} namespaces, {} \
         programs, {} links",
        held.netns.len(),
        held.progs.len(),
        held.links.len()
    );

    // What a killed run can leave: its bpffs mount, made here the way xdplab makes it, for a
    // process that is gone. The next start sweeps, says so in one line, and runs as usual.
    // Any xdplab starting elsewhere on the machine may sweep the planted mount first (it is
    // fair game for every sweeper); then the line is not ours to see, and we plant again.
    let mut swept_by_us = false;
    for _attempt in 0..3 {
        let dead = dead_pid();
        pids.push(dead);
        let planted = PathBuf::from(format!("/run/xdplab/{dead}-0"));
        plant_bpffs(&planted);
        let mut next = spawn(&args, Stdio::piped());
        let status = wait_bounded(&mut next, CHILD_BOUND);
        let mut stderr = String::new();
        std::io::Read::read_to_string(next.stderr.as_mut().expect("piped"), &mut stderr)
            .expect("stderr");
        assert!(status.success(), "the next run passes: {status}; {stderr}");
        assert!(!planted.exists(), "{} swept", planted.display());
        if stderr.contains(&format!(
            "xdplab: removed what killed runs left: bpffs mount {} of dead process {dead}",
            planted.display()
        )) {
            swept_by_us = true;
            break;
        }
        eprintln!(
            "{} was swept by another xdplab: planting again",
            planted.display()
        );
    }
    assert!(swept_by_us, "the next start says what it removed");
    assert_nothing_left(&pids, &held, &before);
}

/// Ends and reaps a child when dropped, also when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes a directory this test made, when dropped (also when the test fails).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
}

/// `xdplab ARGS`: exit code and stdout.
fn xdplab_out(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(args)
        .output()
        .expect("xdplab runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn privileged_clean_removes_dead_mounts_and_keeps_live_ones() {
    if !privileges::gate("privileged_clean_removes_dead_mounts_and_keeps_live_ones") {
        return;
    }
    let _serial = serial();
    // A live owner: a child that sleeps until we end it.
    let live = Reaped(
        Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep"),
    );
    let live_dir = PathBuf::from(format!("/run/xdplab/{}-0", live.0.id()));
    plant_bpffs(&live_dir);
    // Something that is not an xdplab mount directory, and must stay.
    let foreign = PathBuf::from(format!("/run/xdplab/notes-{}", std::process::id()));
    std::fs::create_dir_all(&foreign).expect("mkdir");
    let _remove_foreign = RemoveOnDrop(foreign.clone());

    // Leftovers of a dead process are fair game for every xdplab starting on the machine:
    // if another one swept ours first, the lines are not ours to see; plant again.
    let mut seen = false;
    for _attempt in 0..3 {
        let dead = dead_pid();
        let dead_dir = PathBuf::from(format!("/run/xdplab/{dead}-0"));
        let dead_empty = PathBuf::from(format!("/run/xdplab/{dead}-1"));
        plant_bpffs(&dead_dir);
        std::fs::create_dir_all(&dead_empty).expect("mkdir");

        let (code, dry) = xdplab_out(&["clean", "--dry-run"]);
        assert_eq!(code, Some(0), "{dry}");
        let listed = dry.contains(&format!("would remove bpffs mount {}", dead_dir.display()));
        assert!(
            !listed || is_bpffs(&dead_dir) || !dead_dir.exists(),
            "--dry-run removes nothing"
        );
        let (code, stdout) = xdplab_out(&["clean"]);
        assert_eq!(code, Some(0), "{stdout}");
        assert!(
            !dead_dir.exists() && !dead_empty.exists(),
            "dead owners' leftovers removed: {stdout}"
        );
        assert!(!dry.contains(&live_dir.display().to_string()), "{dry}");
        assert!(
            !stdout.contains(&live_dir.display().to_string()),
            "{stdout}"
        );
        assert!(is_bpffs(&live_dir), "a live process's mount is untouched");
        assert!(
            foreign.exists(),
            "a directory xdplab did not name is untouched"
        );
        let removed = stdout.contains(&format!("removed bpffs mount {}", dead_dir.display()))
            && stdout.contains(&format!(
                "removed empty mount directory {}",
                dead_empty.display()
            ));
        if listed && removed {
            seen = true;
            break;
        }
        eprintln!(
            "{} was swept by another xdplab: planting again",
            dead_dir.display()
        );
    }
    assert!(
        seen,
        "xdplab clean lists and removes the leftovers it finds"
    );

    // Once its owner is gone, the same mount is a leftover.
    drop(live);
    let (code, stdout) = xdplab_out(&["clean"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!live_dir.exists(), "{stdout}");
}

/// SIGINT while a flow pings for half a minute: the flow's loops watch for the signal like
/// the send groups do, so the run ends in seconds (exit 130), not when the stream would have.
#[test]
fn privileged_sigint_stops_a_long_flow() {
    if !privileges::gate("privileged_sigint_stops_a_long_flow") {
        return;
    }
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("xdplab-signals-{}-flow", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = TempScenario(dir.join("scenario.toml"));
    std::fs::write(
        &scenario.0,
        "schema-version = 1\nname = \"long-flow\"\n[program]\nobject = \"xdp_pass\"\n\
         entry = \"xdp_pass\"\n[[send]]\nname = \"one\"\ncount = 1\nipv4 = {}\nudp = {}\n\
         expect = \"pass\"\n[[flow]]\nname = \"long\"\nkind = \"ping\"\n\
         count = 1500\ninterval = \"20ms\"\nexpect = \"complete\"\n",
    )
    .expect("write scenario");
    let before = Before::now();
    let mut child = spawn(&["run", scenario.path()], Stdio::piped());
    let held = wait_for_lab(&mut child);
    // The send group takes well under this; the pings then go on.
    std::thread::sleep(Duration::from_secs(2));
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child, which has not been reaped (wait_for_lab saw it).
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    // Far below the pings' 30 s; a flow deaf to the signal would run into this bound.
    let status = wait_bounded(&mut child, Duration::from_secs(15));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("piped stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(130), "{status}; stderr: {stderr}");
    println!("ended {:?} after SIGINT", signalled.elapsed());
    assert_nothing_left(&[child.id()], &held, &before);
}
