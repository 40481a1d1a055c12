//! What this machine can and cannot do for xdplab, each finding with the fix (`xdplab doctor`).
//!
//! Every check gives a [`Check`]: a status (`ok`, `missing`, or `optional-missing` for what
//! xdplab can do without), one line on what was found, and the fix. [`up_front`] runs the
//! checks that take no lab (privileges, bpffs, kernel version, BTF), in a few milliseconds:
//! `xdplab run` and `xdplab bench` call it before building anything, so a machine that cannot
//! run labs is told why and how to fix it instead of seeing a raw errno halfway through.
//! [`all`] adds the checks that need a lab (veth native XDP, live frames) and the optional
//! tools. [`crate::host::privileges`] takes its verdict from [`privileges`] here, so tests, `run`
//! and `doctor` explain missing capabilities with the same words.
//!
//! Capabilities are read from the effective set (`CapEff` in `/proc/self/status`), never
//! inferred from uid 0: a root process in a container, or under `capsh --drop`, can lack them.

use std::{
    ffi::CStr,
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use nix::sys::statfs::{BPF_FS_MAGIC, statfs};
use serde::Serialize;

use crate::{
    exit::Exit,
    inject::{Budget, live::LiveInjector},
    kernel::pin::{self, Bpffs},
    kernel::program::{ObjectSource, Program, XdpMode},
    topology::lab::{self, Lab, LabConfig},
};

/// `CAP_NET_ADMIN` (`linux/capability.h`).
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_SYS_ADMIN`.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_BPF` (kernel 5.8+; before it, CAP_SYS_ADMIN covered BPF).
pub const CAP_BPF: u32 = 39;

/// The oldest kernel xdplab runs on: XDP attachments through a bpf_link came in 5.9.
pub const MIN_KERNEL: KernelVersion = KernelVersion::new(5, 9, 0);
/// The kernel that brought `BPF_F_TEST_XDP_LIVE_FRAMES` (the live injector, `[throughput]`).
pub const LIVE_FRAMES_KERNEL: KernelVersion = KernelVersion::new(5, 18, 0);

/// Where the kernel publishes its own BTF (`CONFIG_DEBUG_INFO_BTF`).
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// The conventional system-wide bpffs; xdplab never pins there.
pub const SYS_BPFFS: &str = "/sys/fs/bpf";

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Present and working.
    Ok,
    /// Missing, and xdplab needs it (exit 3).
    Missing,
    /// Missing, and xdplab works without it.
    OptionalMissing,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::OptionalMissing => "optional-missing",
        })
    }
}

/// One check: what was looked at, what was found, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`CAP_BPF`, `bpffs`, `kernel`, `btf`, ...).
    pub name: &'static str,
    /// Whether xdplab needs it (a missing required check makes `xdplab doctor` exit 3).
    pub required: bool,
    /// What was found.
    pub status: Status,
    /// One line on what was found.
    pub found: String,
    /// What to do about it; `None` when there is nothing to do.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, required: bool, found: impl Into<String>) -> Self {
        Self {
            name,
            required,
            status: Status::Ok,
            found: found.into(),
            fix: None,
        }
    }

    fn missing(name: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            required: true,
            status: Status::Missing,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    fn optional(name: &'static str, found: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            required: false,
            status: Status::OptionalMissing,
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    /// `NAME missing: FOUND; fix: FIX`, the line `xdplab run` prints for a missing check.
    pub fn explain(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{} {}: {}; fix: {fix}", self.name, self.status, self.found),
            None => format!("{} {}: {}", self.name, self.status, self.found),
        }
    }
}

/// The checks of one `doctor` run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every check made.
    pub checks: Vec<Check>,
}

impl Report {
    /// The required checks that failed.
    pub fn missing(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| c.required && c.status == Status::Missing)
    }

    /// Whether everything required is present.
    pub fn ready(&self) -> bool {
        self.missing().next().is_none()
    }

    /// 0 if everything required is present, 3 (environment) otherwise.
    pub fn exit(&self) -> Exit {
        if self.ready() {
            Exit::Pass
        } else {
            Exit::Environment
        }
    }

    /// The report as a table: one row per check, the fix under each row that needs one, and a
    /// summary line.
    pub fn table(&self) -> String {
        use fmt::Write as _;
        let name_width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .chain(["check".len()])
            .max()
            .unwrap_or(0);
        let status_width = "optional-missing".len();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:name_width$}  {:status_width$}  found",
            "check", "status"
        );
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{:name_width$}  {:status_width$}  {}",
                check.name,
                check.status.to_string(),
                check.found
            );
            if check.status != Status::Ok
                && let Some(fix) = &check.fix
            {
                let _ = writeln!(out, "{:name_width$}  {:status_width$}  fix: {fix}", "", "");
            }
        }
        let missing: Vec<&str> = self.missing().map(|c| c.name).collect();
        if missing.is_empty() {
            let _ = writeln!(out, "\nready: every required check passed");
        } else {
            let _ = writeln!(
                out,
                "\nnot ready: {} required check(s) missing: {}",
                missing.len(),
                missing.join(", ")
            );
        }
        out
    }
}

/// As one JSON document: `checks` (each `name`, `required`, `status`, `found`, `fix`),
/// `ready`, `missing` (the names of the required checks that failed) and `exit`.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            checks: &'a [Check],
            ready: bool,
            missing: Vec<&'static str>,
            exit: u8,
        }
        Json {
            checks: &self.checks,
            ready: self.ready(),
            missing: self.missing().map(|c| c.name).collect(),
            exit: self.exit().code(),
        }
        .serialize(serializer)
    }
}

/// The checks that need no lab, quick enough to run before every `xdplab run`: privileges,
/// bpffs, kernel version, BTF.
pub fn up_front() -> Report {
    let mut checks = privileges();
    checks.push(bpffs());
    checks.push(sys_bpffs());
    checks.push(kernel());
    checks.push(btf());
    Report { checks }
}

/// Every check: [`up_front`], then a lab with native XDP and live frames, then the optional
/// tools.
pub fn all() -> Report {
    let mut report = up_front();
    let privileged = report
        .checks
        .iter()
        .filter(|c| c.name.starts_with("CAP_"))
        .all(|c| c.status == Status::Ok);
    report.checks.extend(lab_checks(privileged));
    report.checks.push(tool(
        "bpftool",
        "install bpftool (apt-get install bpftool); optional: for inspecting programs and maps by hand",
    ));
    report.checks.push(tool(
        "clang",
        "install clang and libbpf-dev (apt-get install clang llvm libbpf-dev); optional: only for \
         building your own objects, the bundled ones are embedded in xdplab",
    ));
    report
}

// Privileges

/// A capability set, as the bits of `CapEff` in `/proc/PID/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// The effective set from the text of `/proc/PID/status` (`CapEff:\t000001ffffffffff`).
    pub fn from_status(status: &str) -> Option<Self> {
        status
            .lines()
            .find_map(|line| line.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .map(Self)
    }

    /// This process's effective set.
    pub fn current() -> Result<Self, String> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| format!("failed to read /proc/self/status: {e}"))?;
        Self::from_status(&status).ok_or_else(|| "no CapEff line in /proc/self/status".to_owned())
    }

    /// Whether capability number `cap` is in the set.
    pub fn has(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1u64 << cap) != 0
    }
}

/// The three capability checks (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) for this process.
pub fn privileges() -> Vec<Check> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    privilege_checks(Capabilities::current(), root)
}

/// The capability checks for an effective set (or the reason it could not be read); `root`
/// (euid 0) only changes the advice, never the verdict.
pub fn privilege_checks(caps: Result<Capabilities, String>, root: bool) -> Vec<Check> {
    let caps = match caps {
        Ok(caps) => caps,
        Err(reason) => {
            return [
                ("CAP_BPF", "BPF"),
                ("CAP_NET_ADMIN", "NET_ADMIN"),
                ("CAP_SYS_ADMIN", "SYS_ADMIN"),
            ]
            .into_iter()
            .map(|(name, short)| {
                Check::missing(
                    name,
                    format!("cannot tell whether this process has it: {reason}"),
                    cap_fix(short, root),
                )
            })
            .collect();
        }
    };
    let set = format!("CapEff {:016x}", caps.0);
    let has = |name: &'static str, short: &str, cap: u32, why: &str| {
        if caps.has(cap) {
            Check::ok(name, true, format!("in the effective set ({why})"))
        } else {
            Check::missing(
                name,
                format!("not in the effective set ({set}); needed for {why}"),
                cap_fix(short, root),
            )
        }
    };
    let bpf = if caps.has(CAP_BPF) {
        Check::ok(
            "CAP_BPF",
            true,
            "in the effective set (loading programs, creating maps)",
        )
    } else if caps.has(CAP_SYS_ADMIN) {
        Check::ok(
            "CAP_BPF",
            true,
            "not in the effective set, but CAP_SYS_ADMIN covers loading programs and creating maps",
        )
    } else {
        Check::missing(
            "CAP_BPF",
            format!(
                "not in the effective set ({set}), nor CAP_SYS_ADMIN; needed for loading \
                 programs and creating maps"
            ),
            cap_fix("BPF", root),
        )
    };
    vec![
        bpf,
        has(
            "CAP_NET_ADMIN",
            "NET_ADMIN",
            CAP_NET_ADMIN,
            "veth pairs, addresses, XDP attach",
        ),
        has(
            "CAP_SYS_ADMIN",
            "SYS_ADMIN",
            CAP_SYS_ADMIN,
            "network namespaces, the run's bpffs mount",
        ),
    ]
}

/// How to get capability `CAP_<short>`.
fn cap_fix(short: &str, root: bool) -> String {
    if root {
        format!(
            "this process runs as root but CAP_{short} was taken from it (a container, capsh \
             --drop, a systemd CapabilityBoundingSet): give it back, e.g. docker run \
             --cap-add={short} (or --privileged)"
        )
    } else {
        "run as root: sudo -E xdplab ...".to_owned()
    }
}

// bpffs

/// Whether this run can mount a private bpffs (mounts one under `/run/xdplab` and removes it).
pub fn bpffs() -> Check {
    const NAME: &str = "bpffs";
    match Bpffs::mount() {
        Ok(mount) => {
            let path = mount.path().display().to_string();
            match mount.unmount() {
                Ok(()) => Check::ok(
                    NAME,
                    true,
                    format!("mounted a private bpffs at {path} and removed it"),
                ),
                Err(e) => Check::missing(
                    NAME,
                    format!("mounted a private bpffs but could not remove it: {e}"),
                    format!("see what holds {path} (xdplab clean removes it once unused)"),
                ),
            }
        }
        Err(e) => {
            let fix = if e.is_permission() {
                "mounting a bpffs needs CAP_SYS_ADMIN (see the capability checks)".to_owned()
            } else if !filesystems().contains("\tbpf\n") {
                "the kernel has no bpf file system: boot one built with CONFIG_BPF_SYSCALL=y"
                    .to_owned()
            } else {
                format!(
                    "make {} creatable and writable by this process",
                    pin::RUN_DIR
                )
            };
            Check::missing(NAME, e.to_string(), fix)
        }
    }
}

/// `/proc/filesystems`, or nothing.
fn filesystems() -> String {
    let mut text = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    text.push('\n');
    text
}

/// Whether `/sys/fs/bpf` holds a bpffs. Informational: xdplab mounts its own.
pub fn sys_bpffs() -> Check {
    const NAME: &str = SYS_BPFFS;
    match statfs(SYS_BPFFS) {
        Ok(fs) if fs.filesystem_type() == BPF_FS_MAGIC => Check::ok(
            NAME,
            false,
            "a bpffs is mounted (xdplab does not use it: it pins only in its own)",
        ),
        Ok(_) => Check::optional(
            NAME,
            "no bpffs mounted there (xdplab does not need one: it mounts its own)",
            "only if other tools pin there (bpftool ... pin): mount -t bpf bpf /sys/fs/bpf",
        ),
        Err(e) => Check::optional(
            NAME,
            format!("cannot look at it: {e} (xdplab does not need it: it mounts its own)"),
            "only if other tools pin there (bpftool ... pin): mount -t bpf bpf /sys/fs/bpf",
        ),
    }
}

// Kernel

/// A kernel version, `major.minor.patch`, compared numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// The first number.
    pub major: u32,
    /// The second number.
    pub minor: u32,
    /// The third number (0 when the release has none).
    pub patch: u32,
}

impl KernelVersion {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// The version at the start of a release string (`uname -r`): `6.18.44-fc-v857` is 6.18.44,
    /// `5.10.0-28-amd64` is 5.10.0, `6.1` is 6.1.0, `6.8.0+` is 6.8.0.
    pub fn parse(release: &str) -> Option<Self> {
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse::<u32>().ok());
        let major = numbers.next()??;
        let minor = numbers.next()??;
        // A missing or non-numeric third part (`6.1-rc2`) counts as 0.
        let patch = numbers.next().flatten().unwrap_or(0);
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The running kernel's release, as `uname -r` prints it.
pub fn kernel_release() -> Result<String, String> {
    // SAFETY: utsname is plain old data; uname fills it and NUL-terminates every field.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(format!(
            "failed to call uname: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel NUL-terminates `release` within the array.
    let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) };
    Ok(release.to_string_lossy().into_owned())
}

/// The kernel version check for the running kernel.
pub fn kernel() -> Check {
    match kernel_release() {
        Ok(release) => kernel_check(&release),
        Err(e) => Check::optional(
            "kernel",
            format!("{e}: version not checked"),
            format!(
                "xdplab needs Linux {MIN_KERNEL}+ ({LIVE_FRAMES_KERNEL}+ for live frames): see uname -r"
            ),
        ),
    }
}

/// The kernel version check for a release string (`uname -r`).
pub fn kernel_check(release: &str) -> Check {
    const NAME: &str = "kernel";
    let Some(version) = KernelVersion::parse(release) else {
        return Check::optional(
            NAME,
            format!("Linux {release}: no version found in it, not checked"),
            format!("xdplab needs Linux {MIN_KERNEL}+ ({LIVE_FRAMES_KERNEL}+ for live frames)"),
        );
    };
    if version < MIN_KERNEL {
        Check::missing(
            NAME,
            format!(
                "Linux {release}: xdplab needs {MIN_KERNEL} or later (XDP attachments through a \
                 bpf_link)"
            ),
            format!(
                "boot Linux {MIN_KERNEL} or later ({LIVE_FRAMES_KERNEL}+ for the live injector \
                 and [throughput])"
            ),
        )
    } else if version < LIVE_FRAMES_KERNEL {
        Check::ok(
            NAME,
            true,
            format!(
                "Linux {release}: at least {MIN_KERNEL} (bpf_link XDP), but below \
                 {LIVE_FRAMES_KERNEL}, which live frames need (see live-frames)"
            ),
        )
    } else {
        Check::ok(
            NAME,
            true,
            format!(
                "Linux {release}: at least {MIN_KERNEL} (bpf_link XDP) and {LIVE_FRAMES_KERNEL} \
                 (live frames)"
            ),
        )
    }
}

/// Whether the kernel publishes its BTF, which the `tp_btf` counter of XDP_ABORTED needs.
pub fn btf() -> Check {
    btf_at(Path::new(VMLINUX_BTF))
}

fn btf_at(path: &Path) -> Check {
    const NAME: &str = "btf";
    let fix = "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (the default of Debian, Ubuntu \
               and Fedora kernels since 2020)";
    match std::fs::File::open(path).and_then(|f| f.metadata()) {
        Ok(meta) if meta.len() > 0 => Check::ok(
            NAME,
            true,
            format!(
                "{} is readable ({} KiB; the tp_btf counter of XDP_ABORTED needs it)",
                path.display(),
                meta.len() / 1024
            ),
        ),
        Ok(_) => Check::missing(NAME, format!("{} is empty", path.display()), fix),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Check::missing(
            NAME,
            format!(
                "{} does not exist: the kernel publishes no BTF, and the tp_btf counter of \
                 XDP_ABORTED needs it",
                path.display()
            ),
            fix,
        ),
        Err(e) => Check::missing(
            NAME,
            format!("failed to open {}: {e}", path.display()),
            format!("make {} readable by this process", path.display()),
        ),
    }
}

// Lab checks

/// The veth native XDP and live frames checks, on one small lab.
pub(crate) fn lab_checks(privileged: bool) -> Vec<Check> {
    const VETH: &str = "veth-native-xdp";
    const LIVE: &str = "live-frames";
    let live_fix = format!(
        "boot Linux {LIVE_FRAMES_KERNEL} or later; meanwhile use xdplab bench --injector \
         pnet,batched and [throughput] injector = \"batched\""
    );
    if !privileged {
        let not_tried = "not tried: building a lab needs the missing capabilities above";
        let fix = "fix the capability checks first";
        return vec![
            Check::missing(VETH, not_tried, fix),
            Check::optional(LIVE, not_tried, fix),
        ];
    }
    let lab = match Lab::new(&LabConfig::default()) {
        Ok(lab) => lab,
        Err(e) => {
            let found = format!("not tried: {e}");
            let fix = "a lab needs network namespaces and veth (CONFIG_NET_NS, CONFIG_VETH)";
            return vec![
                Check::missing(VETH, found.clone(), fix),
                Check::optional(LIVE, found, fix),
            ];
        }
    };
    vec![native_xdp(&lab), live_frames(&lab, live_fix)]
}

/// Loads the bundled `xdp_pass`, attaches it natively to the lab's receiver, detaches it.
fn native_xdp(lab: &Lab) -> Check {
    const NAME: &str = "veth-native-xdp";
    let fix = format!(
        "boot Linux {MIN_KERNEL} or later with CONFIG_VETH and CONFIG_BPF_JIT; meanwhile \
         scenarios can use mode = \"generic\""
    );
    let mut program = match Program::load(&ObjectSource::Bundled("xdp_pass".into()), "xdp_pass") {
        Ok(program) => program,
        Err(e) => return Check::missing(NAME, e.to_string(), fix),
    };
    let interface = lab.receiver().name().to_owned();
    match program
        .attach(lab.receiver(), XdpMode::Native)
        .and_then(|attachment| attachment.detach())
    {
        Ok(()) => Check::ok(
            NAME,
            true,
            format!("attached xdp_pass natively to a lab veth ({interface}) and detached it"),
        ),
        Err(e) => Check::missing(NAME, e.to_string(), fix),
    }
}

/// Frames for the live frames check: as many as one batch of the kernel's.
const LIVE_FRAMES: u64 = 64;

/// Sends [`LIVE_FRAMES`] live frames from the lab's sender, as the live injector does.
/// Optional: only the live injector needs them, and scenarios that use it declare
/// `requires = ["live-frames"]`, so they are skipped, with the reason, where it is missing.
fn live_frames(lab: &Lab, fix: String) -> Check {
    const NAME: &str = "live-frames";
    let mut injector = match LiveInjector::open(lab.sender(), 1) {
        Ok(injector) => injector,
        Err(e) => return Check::optional(NAME, e.to_string(), fix),
    };
    // An Ethernet frame from the sender to the receiver with the local experimental
    // EtherType, so no stack on the way does anything with it.
    let mut frame = vec![0u8; 60];
    frame[0..6].copy_from_slice(&lab::RECEIVER_MAC.octets());
    frame[6..12].copy_from_slice(&lab::SENDER_MAC.octets());
    frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    let stats = injector.send_for(
        &frame,
        Budget {
            frames: LIVE_FRAMES,
            duration: Duration::from_secs(2),
        },
    );
    if stats.errors == 0 && stats.accepted == LIVE_FRAMES {
        Check::ok(
            NAME,
            false,
            format!(
                "BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES sent {LIVE_FRAMES} frames \
                 on a lab veth"
            ),
        )
    } else {
        Check::optional(
            NAME,
            format!(
                "BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES ran {} of {LIVE_FRAMES} \
                 frames{}",
                stats.accepted,
                stats
                    .last_error
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            fix,
        )
    }
}

// Tools

/// Whether `program` is on PATH (optional).
fn tool(program: &'static str, fix: &str) -> Check {
    match find_on_path(program, std::env::var_os("PATH").as_deref()) {
        Some(path) => Check::ok(program, false, format!("{} (optional)", path.display())),
        None => Check::optional(program, "not on PATH (optional)", fix),
    }
}

/// The first executable file called `program` in the directories of `path`.
fn find_on_path(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcat\nUmask:\t0022\nState:\tR (running)\n\
        CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
        CapEff:\t0000008000001000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";

    #[test]
    fn cap_eff_is_read_from_its_own_line() {
        let caps = Capabilities::from_status(STATUS).expect("CapEff present");
        // Not CapPrm (the line before) nor CapBnd.
        assert_eq!(caps, Capabilities(0x0000_0080_0000_1000));
        assert!(caps.has(CAP_BPF), "bit 39");
        assert!(caps.has(CAP_NET_ADMIN), "bit 12");
        assert!(!caps.has(CAP_SYS_ADMIN), "bit 21");
        assert!(!caps.has(64), "out of range is absent, not a panic");
        assert_eq!(
            Capabilities::from_status("Name:\tcat\nCapPrm:\t1ff\n"),
            None
        );
        assert_eq!(Capabilities::from_status("CapEff:\tnot-hex\n"), None);
    }

    #[test]
    fn capability_checks_name_what_is_missing() {
        let status = |checks: &[Check], name: &str| {
            checks
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name} checked"))
                .status
        };
        let all = privilege_checks(Ok(Capabilities(0x0000_01ff_ffff_ffff)), true);
        assert!(all.iter().all(|c| c.status == Status::Ok), "{all:?}");

        // NET_ADMIN and BPF, no SYS_ADMIN.
        let checks = privilege_checks(Ok(Capabilities(0x0000_0080_0000_1000)), true);
        assert_eq!(status(&checks, "CAP_BPF"), Status::Ok);
        assert_eq!(status(&checks, "CAP_NET_ADMIN"), Status::Ok);
        assert_eq!(status(&checks, "CAP_SYS_ADMIN"), Status::Missing);
        let sys_admin = checks.iter().find(|c| c.name == "CAP_SYS_ADMIN").unwrap();
        let explained = sys_admin.explain();
        assert!(explained.contains("CapEff 0000008000001000"), "{explained}");
        assert!(explained.contains("--cap-add=SYS_ADMIN"), "{explained}");

        // SYS_ADMIN alone covers BPF (kernels before 5.8 have no CAP_BPF).
        let checks = privilege_checks(Ok(Capabilities(1 << CAP_SYS_ADMIN)), false);
        assert_eq!(status(&checks, "CAP_BPF"), Status::Ok);
        assert_eq!(status(&checks, "CAP_NET_ADMIN"), Status::Missing);

        // Nothing: all three missing, with the advice for a non-root user.
        let checks = privilege_checks(Ok(Capabilities(0)), false);
        assert!(checks.iter().all(|c| c.status == Status::Missing));
        assert!(
            checks
                .iter()
                .all(|c| c.fix.as_deref().unwrap().contains("sudo"))
        );

        let unreadable = privilege_checks(Err("no /proc".into()), false);
        assert_eq!(unreadable.len(), 3);
        assert!(unreadable.iter().all(|c| c.status == Status::Missing));
    }

    #[test]
    fn kernel_versions_compare_as_numbers() {
        let v = |s| KernelVersion::parse(s).unwrap_or_else(|| panic!("{s} parses"));
        assert_eq!(v("6.18.44-fc-v857"), KernelVersion::new(6, 18, 44));
        assert_eq!(v("5.10.0-28-amd64"), KernelVersion::new(5, 10, 0));
        assert_eq!(v("6.1"), KernelVersion::new(6, 1, 0));
        assert_eq!(v("6.8.0+"), KernelVersion::new(6, 8, 0));
        assert_eq!(v("6.12-rc3"), KernelVersion::new(6, 12, 0));
        assert_eq!(KernelVersion::parse("linux"), None);
        assert_eq!(KernelVersion::parse("6"), None);
        // 5.10 is newer than 5.9, which a string comparison gets wrong.
        assert!(v("5.10.0") > MIN_KERNEL);
        assert!(v("5.9.0") >= MIN_KERNEL);
        assert!(v("5.8.18") < MIN_KERNEL);
        assert!(v("4.19.300") < MIN_KERNEL);
        assert!(v("5.18.0") >= LIVE_FRAMES_KERNEL);
        assert!(v("5.17.15") < LIVE_FRAMES_KERNEL);
    }

    #[test]
    fn kernel_check_needs_5_9_and_mentions_live_frames() {
        let old = kernel_check("5.8.0-63-generic");
        assert_eq!(old.status, Status::Missing);
        assert!(old.required);
        assert!(old.found.contains("5.9.0"), "{old:?}");
        assert!(old.fix.as_deref().unwrap().contains("5.9.0"), "{old:?}");

        let middle = kernel_check("5.15.0-91-generic");
        assert_eq!(middle.status, Status::Ok);
        assert!(middle.found.contains("below 5.18.0"), "{middle:?}");

        // Compared as whole versions: 4.19 is older than 5.9 although 19 > 9, 6.1 newer
        // although 1 < 9.
        assert_eq!(kernel_check("4.19.0-26-amd64").status, Status::Missing);
        assert_eq!(kernel_check("6.1.0-18-amd64").status, Status::Ok);
        assert_eq!(kernel_check("5.10.0-28-amd64").status, Status::Ok);
        assert_eq!(kernel_check("6.18.44").status, Status::Ok);
        assert_eq!(kernel_check("mystery").status, Status::OptionalMissing);
    }

    #[test]
    fn missing_btf_is_explained() {
        let check = btf_at(Path::new("/nonexistent/xdplab/vmlinux"));
        assert_eq!(check.status, Status::Missing);
        assert!(
            check
                .fix
                .as_deref()
                .unwrap()
                .contains("CONFIG_DEBUG_INFO_BTF"),
            "{check:?}"
        );
    }

    #[test]
    fn tools_are_found_only_as_executables_on_path() {
        let dir = std::env::temp_dir().join(format!("xdplab-doctor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let exe = dir.join("fake-tool");
        let plain = dir.join("plain-file");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        std::fs::write(&plain, "").expect("write");
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        let path =
            std::env::join_paths(["/nonexistent/xdplab", dir.to_str().unwrap()]).expect("PATH");
        let found = find_on_path("fake-tool", Some(&path));
        let not_executable = find_on_path("plain-file", Some(&path));
        let absent = find_on_path("no-such-tool", Some(&path));
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(found, Some(exe));
        assert_eq!(not_executable, None);
        assert_eq!(absent, None);
        assert_eq!(find_on_path("fake-tool", None), None);
    }

    #[test]
    fn report_exit_and_table_follow_required_checks() {
        let mut report = Report {
            checks: vec![
                Check::ok("CAP_BPF", true, "in the effective set"),
                Check::optional("clang", "not on PATH (optional)", "install clang"),
            ],
        };
        assert!(report.ready());
        assert_eq!(report.exit(), Exit::Pass);
        assert!(
            report
                .table()
                .contains("ready: every required check passed")
        );
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["exit"], 0);
        assert_eq!(json["checks"][1]["status"], "optional-missing");
        assert_eq!(json["checks"][0]["fix"], serde_json::Value::Null);

        report
            .checks
            .push(Check::missing("btf", "absent", "boot a kernel with BTF"));
        assert!(!report.ready());
        assert_eq!(report.exit(), Exit::Environment);
        let table = report.table();
        assert!(table.contains("fix: boot a kernel with BTF"), "{table}");
        assert!(table.contains("fix: install clang"), "{table}");
        assert!(
            table.contains("not ready: 1 required check(s) missing: btf"),
            "{table}"
        );
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["missing"], serde_json::json!(["btf"]));
        assert_eq!(json["exit"], 3);
        assert_eq!(json["ready"], false);
    }
}
