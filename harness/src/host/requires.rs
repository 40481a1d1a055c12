//! What a scenario needs from the kernel (`requires = [...]`), declared and probed at run time.
//!
//! A requirement is a kernel feature ([`Feature`]: `live-frames`, `bpf-link-xdp`, `ringbuf`,
//! `mmapable-array`) or a minimum release (`kernel>=5.18`). Before a scenario runs, each of
//! its features is probed on the running kernel (once per process) and its minimum release
//! compared with `uname -r`. A missing requirement skips the scenario and says why; but a
//! feature missing on a kernel at least as new as the release that brought it is a failure,
//! not a skip: a regression (or a broken probe) must not hide behind a skip. This is
//! cilium/ebpf's rule for its feature-gated tests.
//!
//! The probes are those of `xdplab doctor` where it has one (live frames, native XDP through a
//! bpf_link on a lab veth), and map creations for the map features, as bpftool's feature
//! probes do.

use std::{fmt, str::FromStr, sync::OnceLock};

use thiserror::Error;

use crate::host::doctor::{self, KernelVersion};

/// A kernel feature a scenario can require.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` (the live injector, `[throughput]`).
    #[doc(alias = "BPF_F_TEST_XDP_LIVE_FRAMES")]
    LiveFrames,
    /// XDP attachments through a bpf_link (`BPF_LINK_CREATE` with `BPF_XDP`): lifecycle steps
    /// pin, update and detach them.
    #[doc(alias = "BPF_XDP")]
    BpfLinkXdp,
    /// `BPF_MAP_TYPE_RINGBUF` (`[[expect.events]]`).
    #[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
    Ringbuf,
    /// Arrays created with `BPF_F_MMAPABLE` (`xdp_version`'s frame trace).
    #[doc(alias = "BPF_F_MMAPABLE")]
    MmapableArray,
    /// Generic (skb) XDP for a program with a DEVMAP or CPUMAP. aya 0.14 creates those maps
    /// with room for a program per entry (8-byte values) wherever the kernel supports that,
    /// and before Linux 5.15 generic XDP refuses such programs (`EINVAL`). The runner requires
    /// it by itself for the generic path of a scenario whose objects declare such a map.
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP")]
    GenericDevmap,
    /// `BPF_PROG_TEST_RUN` with an `xdp_md` context in (`ctx_in`, Linux 5.15): the test-run
    /// path runs a program that reads the kernel's tables "as if" it arrived on a lab
    /// interface by naming it in `ingress_ifindex`; before 5.15 the kernel refuses any context
    /// (`EINVAL`). The runner requires it by itself for such scenarios' test-run path.
    #[doc(alias = "ingress_ifindex")]
    TestRunContext,
}

impl Feature {
    /// Every feature, in the order the docs list them.
    pub const ALL: [Self; 6] = [
        Self::LiveFrames,
        Self::BpfLinkXdp,
        Self::Ringbuf,
        Self::MmapableArray,
        Self::GenericDevmap,
        Self::TestRunContext,
    ];

    /// The name a scenario writes in `requires`.
    pub fn key(self) -> &'static str {
        match self {
            Self::LiveFrames => "live-frames",
            Self::BpfLinkXdp => "bpf-link-xdp",
            Self::Ringbuf => "ringbuf",
            Self::MmapableArray => "mmapable-array",
            Self::GenericDevmap => "generic-devmap",
            Self::TestRunContext => "test-run-context",
        }
    }

    /// The mainline release that brought the feature: on this release or a later one, the
    /// feature missing is a failure.
    pub fn since(self) -> KernelVersion {
        match self {
            Self::LiveFrames => doctor::LIVE_FRAMES_KERNEL,
            Self::BpfLinkXdp => doctor::MIN_KERNEL,
            Self::Ringbuf => KernelVersion::new(5, 8, 0),
            Self::MmapableArray => KernelVersion::new(5, 5, 0),
            Self::GenericDevmap | Self::TestRunContext => KernelVersion::new(5, 15, 0),
        }
    }

    /// Probes the running kernel (once per process; the answer is cached).
    pub fn probe(self) -> Result<(), String> {
        static LAB: OnceLock<(Result<(), String>, Result<(), String>)> = OnceLock::new();
        static RINGBUF: OnceLock<Result<(), String>> = OnceLock::new();
        static MMAPABLE: OnceLock<Result<(), String>> = OnceLock::new();
        static GENERIC_DEVMAP: OnceLock<Result<(), String>> = OnceLock::new();
        static TEST_RUN_CONTEXT: OnceLock<Result<(), String>> = OnceLock::new();
        match self {
            Self::LiveFrames | Self::BpfLinkXdp => {
                let (link, live) = LAB.get_or_init(|| {
                    let checks = doctor::lab_checks(crate::host::privileges::check().is_ok());
                    let found = |name: &str| {
                        checks.iter().find(|c| c.name == name).map_or_else(
                            || Err(format!("xdplab doctor has no {name} check")),
                            |c| match c.status {
                                doctor::Status::Ok => Ok(()),
                                _ => Err(c.found.clone()),
                            },
                        )
                    };
                    (found("veth-native-xdp"), found("live-frames"))
                });
                if self == Self::LiveFrames {
                    live.clone()
                } else {
                    link.clone()
                }
            }
            Self::Ringbuf => RINGBUF
                .get_or_init(|| {
                    let page = u32::try_from(page_size()).unwrap_or(4096);
                    map_create("BPF_MAP_TYPE_RINGBUF", MAP_TYPE_RINGBUF, 0, 0, page, 0)
                })
                .clone(),
            Self::MmapableArray => MMAPABLE
                .get_or_init(|| {
                    map_create(
                        "BPF_MAP_TYPE_ARRAY with BPF_F_MMAPABLE",
                        MAP_TYPE_ARRAY,
                        4,
                        8,
                        1,
                        F_MMAPABLE,
                    )
                })
                .clone(),
            Self::GenericDevmap => GENERIC_DEVMAP.get_or_init(generic_devmap).clone(),
            Self::TestRunContext => TEST_RUN_CONTEXT.get_or_init(test_run_context).clone(),
        }
    }
}

/// Attaches the bundled `xdp_redirect` (a DEVMAP user) in generic mode to a small lab's veth.
fn generic_devmap() -> Result<(), String> {
    use crate::{
        kernel::program::{ObjectSource, Program, XdpMode},
        topology::lab::{Lab, LabConfig},
    };
    let lab = Lab::new(&LabConfig::default()).map_err(|e| format!("not tried: {e}"))?;
    let mut program = Program::load(
        &ObjectSource::Bundled("xdp_redirect".into()),
        "xdp_redirect",
    )
    .map_err(|e| format!("not tried: {e}"))?;
    program
        .attach(lab.receiver(), XdpMode::Generic)
        .map(drop)
        .map_err(|e| format!("generic XDP refused a program with a DEVMAP: {e}"))
}

/// Runs the bundled `xdp_pass` through `BPF_PROG_TEST_RUN` with an `xdp_md` context naming a
/// lab veth as the ingress interface, from inside the lab's namespace.
fn test_run_context() -> Result<(), String> {
    use crate::{
        kernel::program::{ObjectSource, Program},
        topology::lab::{Lab, LabConfig},
    };
    let lab = Lab::new(&LabConfig::default()).map_err(|e| format!("not tried: {e}"))?;
    let program = Program::load(&ObjectSource::Bundled("xdp_pass".into()), "xdp_pass")
        .map_err(|e| format!("not tried: {e}"))?;
    let frame = [0u8; 64];
    program
        .test_run_at(&frame, lab.receiver())
        .map(drop)
        .map_err(|e| format!("BPF_PROG_TEST_RUN refused an xdp_md context: {e}"))
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One entry of a scenario's `requires`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// A feature, probed.
    Feature(Feature),
    /// A minimum release (`kernel>=5.18`), compared with `uname -r`.
    Kernel(KernelVersion),
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Feature(feature) => feature.fmt(f),
            Self::Kernel(v) if v.patch == 0 => write!(f, "kernel>={}.{}", v.major, v.minor),
            Self::Kernel(v) => write!(f, "kernel>={v}"),
        }
    }
}

/// A `requires` entry that names nothing xdplab knows.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequirementError {
    /// Neither a feature nor `kernel>=`.
    #[error(
        "failed to read requirement {0:?}: expected one of \"live-frames\", \"bpf-link-xdp\", \
         \"ringbuf\", \"mmapable-array\", \"generic-devmap\", \"test-run-context\" or \"kernel>=X.Y\""
    )]
    Unknown(String),
    /// `kernel>=` without a version.
    #[error(
        "failed to read requirement {0:?}: \"kernel>=\" needs a version, as in \"kernel>=5.18\""
    )]
    Version(String),
}

impl FromStr for Requirement {
    type Err = RequirementError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(feature) = Feature::ALL.into_iter().find(|f| f.key() == s) {
            return Ok(Self::Feature(feature));
        }
        let Some(version) = s.strip_prefix("kernel>=") else {
            return Err(RequirementError::Unknown(s.to_owned()));
        };
        // Only digits and dots: KernelVersion::parse reads `uname -r`, which has suffixes.
        let parts: Vec<&str> = version.split('.').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(RequirementError::Version(s.to_owned()));
        }
        KernelVersion::parse(version)
            .map(Self::Kernel)
            .ok_or_else(|| RequirementError::Version(s.to_owned()))
    }
}

/// Whether a scenario may run on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Every requirement is met.
    Met,
    /// A requirement is missing on a kernel older than it needs: report SKIP with this reason.
    Skip(String),
    /// A feature is missing on a kernel that should have it: report FAIL with this reason.
    Fail(String),
}

/// The rule for one requirement, given the running kernel's version (`None` if `uname -r`
/// has none) and, for a feature, what its probe found.
pub fn judge(
    requirement: Requirement,
    kernel: Option<KernelVersion>,
    probe: impl FnOnce(Feature) -> Result<(), String>,
) -> Gate {
    match requirement {
        Requirement::Kernel(min) => match kernel {
            Some(kernel) if kernel >= min => Gate::Met,
            Some(kernel) => Gate::Skip(format!("needs {requirement}; this is Linux {kernel}")),
            None => Gate::Skip(format!(
                "needs {requirement}; the running kernel's version is unknown"
            )),
        },
        Requirement::Feature(feature) => match probe(feature) {
            Ok(()) => Gate::Met,
            Err(why) => match kernel {
                Some(kernel) if kernel >= feature.since() => Gate::Fail(format!(
                    "requires {feature}, which Linux {} brought, but it is missing on Linux \
                     {kernel} (a regression, or a broken probe; not skipped): {why}",
                    feature.since()
                )),
                Some(kernel) => Gate::Skip(format!(
                    "needs {feature} (Linux {}+); this is Linux {kernel}: {why}",
                    feature.since()
                )),
                None => Gate::Skip(format!("needs {feature}: {why}")),
            },
        },
    }
}

/// Judges every requirement: the first failure wins; otherwise every skip reason, joined.
pub fn judge_all(
    requirements: &[Requirement],
    kernel: Option<KernelVersion>,
    mut probe: impl FnMut(Feature) -> Result<(), String>,
) -> Gate {
    let mut skips = Vec::new();
    for &requirement in requirements {
        match judge(requirement, kernel, &mut probe) {
            Gate::Met => {}
            Gate::Skip(reason) => skips.push(reason),
            fail @ Gate::Fail(_) => return fail,
        }
    }
    if skips.is_empty() {
        Gate::Met
    } else {
        Gate::Skip(skips.join("; "))
    }
}

/// Judges `requirements` on the running kernel, probing each feature they name.
pub fn check(requirements: &[Requirement]) -> Gate {
    if requirements.is_empty() {
        return Gate::Met;
    }
    let kernel = doctor::kernel_release()
        .ok()
        .and_then(|r| KernelVersion::parse(&r));
    judge_all(requirements, kernel, Feature::probe)
}

/// The gate for tests that need kernel features, next to [`crate::host::privileges::gate`]: `true`
/// if the test may run. A requirement missing on a kernel older than it needs prints
/// `SKIP: <test>: <reason>` and returns `false`, even with `XDPLAB_REQUIRE_PRIVILEGES=1` (the
/// kernel, not the set-up, lacks it); a feature missing on a kernel that should have it
/// panics, so the skip cannot hide a regression.
///
/// ```no_run
/// use xdplab::host::requires::{Feature, Requirement};
/// if !xdplab::host::requires::gate("bench_live", &[Requirement::Feature(Feature::LiveFrames)]) {
///     return;
/// }
/// ```
pub fn gate(test: &str, requirements: &[Requirement]) -> bool {
    match check(requirements) {
        Gate::Met => true,
        Gate::Skip(reason) => {
            // Straight to the descriptor, as privileges::skip_or_fail does: libtest captures
            // eprint! of passing tests, and a skip must be seen.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIP: {test}: {reason}");
            false
        }
        Gate::Fail(reason) => panic!("{test}: {reason}"),
    }
}

// Map creation probes. The constants are those of linux/bpf.h.

/// `BPF_MAP_CREATE`.
const CMD_MAP_CREATE: libc::c_long = 0;
/// `BPF_MAP_TYPE_ARRAY`.
const MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_RINGBUF`.
const MAP_TYPE_RINGBUF: u32 = 27;
/// `BPF_F_MMAPABLE`.
const F_MMAPABLE: u32 = 1 << 10;

/// The leading fields of `union bpf_attr` for `BPF_MAP_CREATE`; the kernel reads the fields
/// we do not pass as zero.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// Creates a map and closes it: `Ok` if the kernel accepts it.
fn map_create(
    what: &str,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> Result<(), String> {
    let attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
    };
    // SAFETY: a valid pointer to an initialised attribute block of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            CMD_MAP_CREATE,
            &raw const attr,
            std::mem::size_of::<MapCreateAttr>(),
        )
    };
    if fd < 0 {
        return Err(format!(
            "failed to create a {what} map (bpf BPF_MAP_CREATE): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just returned this descriptor to us, and nothing else holds it.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5_10: KernelVersion = KernelVersion::new(5, 10, 0);
    const V6_1: KernelVersion = KernelVersion::new(6, 1, 0);

    fn req(s: &str) -> Requirement {
        s.parse().unwrap()
    }

    #[test]
    fn generic_devmap_is_needed_for_redirect_objects_only_and_came_with_5_15() {
        use crate::kernel::program::{ObjectSource, declares_redirect_map};
        assert_eq!(
            "generic-devmap".parse(),
            Ok(Requirement::Feature(Feature::GenericDevmap))
        );
        assert_eq!(Feature::GenericDevmap.since(), KernelVersion::new(5, 15, 0));
        let bundled = |name: &str| declares_redirect_map(&ObjectSource::Bundled(name.into()));
        assert!(bundled("xdp_redirect"));
        for name in ["xdp_drop", "xdp_pass", "xdp_filter", "xdp_version"] {
            assert!(!bundled(name), "{name}");
        }
        // On 5.10 a refused generic attach is a skip; on 5.15 and later a failure.
        let refused = |_| Err("EINVAL".to_owned());
        let need = Requirement::Feature(Feature::GenericDevmap);
        assert!(matches!(judge(need, Some(V5_10), refused), Gate::Skip(_)));
        assert!(matches!(
            judge(need, Some(KernelVersion::new(6, 1, 0)), refused),
            Gate::Fail(_)
        ));
    }

    #[test]
    fn requirements_parse_and_print_back() {
        for feature in Feature::ALL {
            assert_eq!(req(feature.key()), Requirement::Feature(feature));
            assert_eq!(req(feature.key()).to_string(), feature.key());
        }
        assert_eq!(
            req("kernel>=5.18"),
            Requirement::Kernel(KernelVersion::new(5, 18, 0))
        );
        assert_eq!(req("kernel>=5.18").to_string(), "kernel>=5.18");
        assert_eq!(
            req("kernel>=6.1.12"),
            Requirement::Kernel(KernelVersion::new(6, 1, 12))
        );
        assert_eq!(req("kernel>=6.1.12").to_string(), "kernel>=6.1.12");
    }

    #[test]
    fn bad_requirements_are_named() {
        assert_eq!(
            "live_frames".parse::<Requirement>(),
            Err(RequirementError::Unknown("live_frames".into()))
        );
        for bad in [
            "kernel>=",
            "kernel>=6",
            "kernel>=6.x",
            "kernel>=6.1-rc2",
            "kernel>=1.2.3.4",
        ] {
            assert_eq!(
                bad.parse::<Requirement>(),
                Err(RequirementError::Version(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(
            RequirementError::Unknown("xdp.frags".into()).to_string(),
            "failed to read requirement \"xdp.frags\": expected one of \"live-frames\", \
             \"bpf-link-xdp\", \"ringbuf\", \"mmapable-array\", \"generic-devmap\", \"test-run-context\" or \"kernel>=X.Y\""
        );
    }

    #[test]
    fn a_minimum_kernel_skips_older_kernels_only() {
        let never = |_: Feature| -> Result<(), String> { panic!("no feature to probe") };
        assert_eq!(judge(req("kernel>=5.18"), Some(V6_1), never), Gate::Met);
        assert_eq!(
            judge(req("kernel>=5.18"), Some(V5_10), never),
            Gate::Skip("needs kernel>=5.18; this is Linux 5.10.0".into())
        );
        assert!(matches!(
            judge(req("kernel>=5.18"), None, never),
            Gate::Skip(_)
        ));
    }

    #[test]
    fn a_missing_feature_skips_before_its_release_and_fails_from_it() {
        let missing = |_: Feature| Err("EINVAL".to_owned());
        // Live frames came in 5.18: missing on 5.10 is expected, missing on 6.1 is a bug.
        assert_eq!(
            judge(req("live-frames"), Some(V5_10), missing),
            Gate::Skip("needs live-frames (Linux 5.18.0+); this is Linux 5.10.0: EINVAL".into())
        );
        let Gate::Fail(reason) = judge(req("live-frames"), Some(V6_1), missing) else {
            panic!("a feature missing on a kernel that has it must fail");
        };
        assert!(reason.contains("Linux 5.18.0 brought") && reason.contains("Linux 6.1.0"));
        // Exactly the release that brought it counts as having it.
        assert!(matches!(
            judge(req("ringbuf"), Some(KernelVersion::new(5, 8, 0)), missing),
            Gate::Fail(_)
        ));
        assert!(matches!(
            judge(req("ringbuf"), Some(KernelVersion::new(5, 7, 19)), missing),
            Gate::Skip(_)
        ));
        // Present is present, whatever the version says.
        assert_eq!(judge(req("ringbuf"), Some(V5_10), |_| Ok(())), Gate::Met);
        assert_eq!(
            judge(
                req("live-frames"),
                Some(KernelVersion::new(5, 4, 0)),
                |_| Ok(())
            ),
            Gate::Met
        );
    }

    #[test]
    fn a_failure_outweighs_skips_and_skips_are_joined() {
        let probe = |f: Feature| match f {
            Feature::LiveFrames | Feature::Ringbuf => Err("no".to_owned()),
            _ => Ok(()),
        };
        let all = [req("kernel>=6.0"), req("live-frames"), req("bpf-link-xdp")];
        let Gate::Skip(reason) = judge_all(&all, Some(V5_10), probe) else {
            panic!("two skips");
        };
        assert_eq!(
            reason,
            "needs kernel>=6.0; this is Linux 5.10.0; needs live-frames (Linux 5.18.0+); this \
             is Linux 5.10.0: no"
        );
        let all = [req("live-frames"), req("ringbuf")];
        assert!(matches!(
            judge_all(&all, Some(V5_10), probe),
            Gate::Fail(r) if r.contains("ringbuf")
        ));
        assert_eq!(judge_all(&[], Some(V5_10), probe), Gate::Met);
    }
}
