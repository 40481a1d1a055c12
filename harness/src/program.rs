//! XDP programs: loading an ELF object with aya and attaching an entry to a lab interface.
//!
//! Attachment goes through [`crate::veth::VethEnd`], which only the lab can create, so a program
//! can never be attached to an interface xdplab did not make. The attach itself runs on a thread
//! inside the interface's namespace, because interface indexes are per namespace: index 2 there
//! is some other device here.
//!
//! Only `bpf_link` attachments are kept (kernel 5.9+): closing the link's file descriptor
//! detaches the program whichever thread or namespace closes it. aya's netlink fallback would
//! detach by interface index in the namespace of the thread that drops it, which could be the
//! host's, so it is refused.

use std::{
    borrow::Cow,
    fmt,
    os::fd::{AsFd as _, BorrowedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::MapData,
    programs::{
        Link as _, ProgramError as AyaProgramError, TestRun as _, TestRunOptions, Xdp,
        XdpMode as AyaXdpMode, links::FdLink,
    },
};
use aya_obj::{EbpfSectionKind, programs::XdpAttachType};
use thiserror::Error;

use crate::{netns::NetNsError, veth::VethEnd};

/// The objects built from `ebpf/*.bpf.c` and embedded in the binary, by name.
pub const BUNDLED: &[(&str, &[u8])] = &[
    (
        "xdp_drop",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_drop.bpf.o"),
    ),
    (
        "xdp_filter",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_filter.bpf.o"),
    ),
    (
        "xdp_pass",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_pass.bpf.o"),
    ),
    (
        "xdp_tx",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_tx.bpf.o"),
    ),
    (
        "xdp_redirect",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_redirect.bpf.o"),
    ),
    (
        "xdp_aborted",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_aborted.bpf.o"),
    ),
    (
        "xdp_count",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_count.bpf.o"),
    ),
    (
        "xdp_version",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_version.bpf.o"),
    ),
    (
        "xdp_vlan",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_vlan.bpf.o"),
    ),
    (
        "xdp_icmp_echo",
        aya::include_bytes_aligned!("../../ebpf/obj/xdp_icmp_echo.bpf.o"),
    ),
];

/// Whether `name` is one of the [`BUNDLED`] objects.
pub fn is_bundled(name: &str) -> bool {
    BUNDLED.iter().any(|(n, _)| *n == name)
}

/// Where an object comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectSource {
    /// One of [`BUNDLED`], by name.
    Bundled(String),
    /// An ELF file built by the user (for example with `clang -O2 -g -target bpf`).
    File(PathBuf),
}

impl fmt::Display for ObjectSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bundled(name) => write!(f, "{name} (bundled)"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl ObjectSource {
    /// Reads the object's bytes.
    pub fn bytes(&self) -> Result<Cow<'static, [u8]>, ProgramError> {
        match self {
            Self::Bundled(name) => BUNDLED
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, bytes)| Cow::Borrowed(*bytes))
                .ok_or_else(|| ProgramError::UnknownBundled {
                    name: name.clone(),
                    available: BUNDLED.iter().map(|(n, _)| *n).collect(),
                }),
            Self::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| ProgramError::Read {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }
}

/// Where the program runs when a frame arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// In the driver, before an skb exists (veth's native XDP).
    #[doc(alias = "XDP_FLAGS_DRV_MODE")]
    Native,
    /// In the core network stack, on the skb (works on any interface, slower).
    #[doc(alias = "XDP_FLAGS_SKB_MODE")]
    Generic,
}

impl XdpMode {
    fn aya(self) -> AyaXdpMode {
        match self {
            Self::Native => AyaXdpMode::Driver,
            Self::Generic => AyaXdpMode::Skb,
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

/// An error from loading or attaching a program.
#[derive(Debug, Error)]
pub enum ProgramError {
    /// The object file could not be read.
    #[error("failed to read object {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No bundled object has this name.
    #[error("failed to find bundled object {name:?} (bundled: {})", available.join(", "))]
    UnknownBundled {
        /// The requested name.
        name: String,
        /// The bundled names.
        available: Vec<&'static str>,
    },
    /// The object is not a BPF ELF object aya can parse, or its maps could not be created.
    #[error("failed to load object {object}: {}", chain(source))]
    Object {
        /// The object.
        object: String,
        /// aya's error.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// The object has no program by that name.
    #[error(
        "failed to find program {entry:?} in object {object} (it has: {})",
        list(available)
    )]
    NoProgram {
        /// The object.
        object: String,
        /// The requested entry.
        entry: String,
        /// The programs the object has.
        available: Vec<String>,
    },
    /// The named program is not an XDP program.
    #[error("failed to use program {entry:?} in object {object}: it is a {kind} program, not XDP")]
    NotXdp {
        /// The object.
        object: String,
        /// The entry.
        entry: String,
        /// The program's actual kind.
        kind: String,
    },
    /// The kernel refused the program (verifier or syscall failure).
    #[error(
        "failed to load program {entry:?} from object {object}: {reason}{}",
        verifier_tail(log)
    )]
    Load {
        /// The object.
        object: String,
        /// The entry.
        entry: String,
        /// The syscall error.
        reason: String,
        /// The verifier log (may be empty).
        log: String,
        /// The errno, for classification.
        errno: Option<i32>,
    },
    /// Entering the interface's namespace failed.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// Attaching failed.
    #[error(
        "failed to attach xdp program {entry:?} to veth {interface:?} in {mode} mode: {}",
        chain(source)
    )]
    Attach {
        /// The entry.
        entry: String,
        /// The interface.
        interface: String,
        /// The mode.
        mode: XdpMode,
        /// aya's error.
        #[source]
        source: Box<AyaProgramError>,
    },
    /// `BPF_PROG_TEST_RUN` or a program query failed.
    #[error(
        "failed to run program {entry:?} through BPF_PROG_TEST_RUN: {}",
        chain(source)
    )]
    TestRun {
        /// The entry.
        entry: String,
        /// aya's error.
        #[source]
        source: Box<AyaProgramError>,
    },
    /// A global given at load time is not in the object, or not 4 bytes.
    #[error("failed to set global {name:?} in object {object}: {}", chain(&**source))]
    Global {
        /// The object.
        object: String,
        /// The global.
        name: String,
        /// aya's error.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// A map already pinned under the name the object uses is not the object's map.
    #[error(
        "failed to reuse pinned map {}: it is {found}, object {object} declares {declared}",
        path.display()
    )]
    PinnedMapMismatch {
        /// The object.
        object: String,
        /// The pin.
        path: PathBuf,
        /// What the object declares (type, key and value sizes, entries, flags).
        declared: String,
        /// What the pinned map is.
        found: String,
    },
    /// Pinning the program, or opening a pinned one, failed.
    #[error("failed to {what} program {}: {}", path.display(), chain(&**source))]
    Pin {
        /// `"pin"` or `"open pinned"`.
        what: &'static str,
        /// The pin.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The kernel attached through netlink instead of a bpf_link.
    #[error(
        "failed to attach xdp program {entry:?} to veth {interface:?} through a bpf_link (kernel 5.9 or later is needed)"
    )]
    NoBpfLink {
        /// The entry.
        entry: String,
        /// The interface.
        interface: String,
    },
}

impl ProgramError {
    /// Whether the failure lies in the machine (privileges, kernel features) rather than in the
    /// object or the request.
    pub fn is_environment(&self) -> bool {
        let env_errno = |errno: i32| {
            matches!(
                errno,
                libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::ENOMEM
            )
        };
        match self {
            Self::NetNs(_) | Self::NoBpfLink { .. } => true,
            Self::Pin { source, .. } => errno_in(&**source).is_some_and(env_errno),
            Self::Load { errno, .. } => errno.is_some_and(env_errno),
            Self::Object { source, .. } => errno_in(source).is_some_and(env_errno),
            Self::Attach { source, .. } | Self::TestRun { source, .. } => {
                errno_in(source).is_some_and(env_errno)
            }
            _ => false,
        }
    }
}

/// An object loaded into the kernel, with its maps created and one XDP entry loaded.
pub struct Program {
    ebpf: Ebpf,
    object: String,
    entry: String,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("object", &self.object)
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// Loads `entry` from the object (`bpftool prog load OBJ ... type xdp`).
    pub fn load(source: &ObjectSource, entry: &str) -> Result<Self, ProgramError> {
        Self::load_with(source, entry, &LoadOptions::default())
    }

    /// Loads `entry` with globals set and maps pinned (`bpftool prog load OBJ PATH type xdp
    /// pinmaps DIR`, with libbpf's pin-by-name reuse of maps already pinned there).
    pub fn load_with(
        source: &ObjectSource,
        entry: &str,
        options: &LoadOptions,
    ) -> Result<Self, ProgramError> {
        let object = source.to_string();
        let bytes = source.bytes()?;
        let object_error = |source| ProgramError::Object {
            object: object.clone(),
            source: Box::new(source),
        };
        let mut loader = EbpfLoader::new();
        let globals: Vec<(String, [u8; 4])> = options
            .globals
            .iter()
            .map(|(name, value)| (name.clone(), value.to_ne_bytes()))
            .collect();
        for (name, value) in &globals {
            loader.override_global(name.as_str(), value.as_slice(), true);
        }
        let pins = match &options.map_pin_dir {
            Some(dir) => pinned_maps(&object, &bytes, dir)?,
            None => Vec::new(),
        };
        for (name, path) in &pins {
            loader.map_pin_path(name.as_str(), path.as_path());
        }
        // aya loads without a log first and retries with the verifier's log on failure.
        let mut ebpf = loader.load(&bytes).map_err(|e| match e {
            aya::EbpfError::ParseError(aya_obj::ParseError::SymbolNotFound { ref name })
            | aya::EbpfError::ParseError(aya_obj::ParseError::InvalidGlobalData {
                ref name, ..
            }) => ProgramError::Global {
                object: object.clone(),
                name: name.clone(),
                source: Box::new(e),
            },
            e => object_error(e),
        })?;
        let available: Vec<String> = ebpf.programs().map(|(name, _)| name.to_owned()).collect();
        let program = ebpf
            .program_mut(entry)
            .ok_or_else(|| ProgramError::NoProgram {
                object: object.clone(),
                entry: entry.to_owned(),
                available,
            })?;
        let kind = format!("{:?}", program.prog_type());
        let xdp: &mut Xdp = program.try_into().map_err(|_| ProgramError::NotXdp {
            object: object.clone(),
            entry: entry.to_owned(),
            kind,
        })?;
        xdp.load().map_err(|e| load_error(&object, entry, e))?;
        Ok(Self {
            ebpf,
            object,
            entry: entry.to_owned(),
        })
    }

    /// Pins the program at `path` in a bpffs (`bpftool prog pin`): it stays loaded until the
    /// pin is removed.
    pub fn pin(&mut self, path: &Path) -> Result<(), ProgramError> {
        self.xdp_mut()
            .pin(path)
            .map_err(|source| ProgramError::Pin {
                what: "pin",
                path: path.to_owned(),
                source: Box::new(source),
            })
    }

    /// The object this program came from.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The entry (program function) name.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Attaches the program to a lab interface; detached when the [`Attachment`] drops.
    ///
    /// Equivalent to `ip -n NS link set dev IF xdpdrv|xdpgeneric ...`, through a bpf_link.
    pub fn attach(&mut self, end: &VethEnd, mode: XdpMode) -> Result<Attachment, ProgramError> {
        let entry = self.entry.clone();
        attach_xdp(self.xdp_mut(), &entry, end, mode)
    }

    /// Runs one frame through the program with `BPF_PROG_TEST_RUN` (no interface, no
    /// namespace): the action it returned and the frame as it left the program.
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    pub fn test_run(&self, frame: &[u8]) -> Result<TestRunOutput, ProgramError> {
        // Room for growth through bpf_xdp_adjust_head/tail.
        let mut out = vec![0u8; frame.len() + 4096];
        let result = self
            .xdp()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::default()
            })
            .map_err(|source| ProgramError::TestRun {
                entry: self.entry.clone(),
                source: Box::new(source),
            })?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunOutput {
            action: result.return_value,
            data: out,
        })
    }

    /// The kernel's id of the loaded program (`bpftool prog show id N`).
    pub fn id(&self) -> Result<u32, ProgramError> {
        self.xdp()
            .info()
            .map(|info| info.id())
            .map_err(|source| ProgramError::TestRun {
                entry: self.entry.clone(),
                source: Box::new(source),
            })
    }

    /// aya's view of the loaded object, for map access.
    pub(crate) fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// aya's view of the loaded object, for taking maps out of it (ring buffers).
    pub(crate) fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    fn xdp(&self) -> &Xdp {
        let program = self
            .ebpf
            .program(&self.entry)
            .expect("entry was found at load time");
        program.try_into().expect("entry was checked to be XDP")
    }

    fn xdp_mut(&mut self) -> &mut Xdp {
        let program = self
            .ebpf
            .program_mut(&self.entry)
            .expect("entry was found at load time");
        program.try_into().expect("entry was checked to be XDP")
    }
}

/// Attaches a loaded XDP program to a lab interface through a bpf_link, from inside the
/// interface's namespace.
fn attach_xdp(
    xdp: &mut Xdp,
    entry: &str,
    end: &VethEnd,
    mode: XdpMode,
) -> Result<Attachment, ProgramError> {
    let ifindex = end.ifindex();
    let attach_error = |source| ProgramError::Attach {
        entry: entry.to_owned(),
        interface: end.name().to_owned(),
        mode,
        source: Box::new(source),
    };
    let link = end.netns().run(|| {
        let id = xdp
            .attach_to_if_index(ifindex, mode.aya())
            .map_err(attach_error)?;
        let link = xdp.take_link(id).map_err(attach_error)?;
        // A netlink attachment dropped here detaches inside the lab namespace, which is
        // the only safe place for it.
        FdLink::try_from(link).map_err(|_| ProgramError::NoBpfLink {
            entry: entry.to_owned(),
            interface: end.name().to_owned(),
        })
    })??;
    Ok(Attachment {
        link,
        interface: end.name().to_owned(),
        entry: entry.to_owned(),
        mode,
    })
}

/// Whether the object declares a DEVMAP, DEVMAP_HASH or CPUMAP (a redirect target map), which
/// generic XDP refuses before Linux 5.15 (see [`crate::requires::Feature::GenericDevmap`]).
pub fn declares_redirect_map(source: &ObjectSource) -> bool {
    const DEVMAP: u32 = 14;
    const CPUMAP: u32 = 16;
    const DEVMAP_HASH: u32 = 25;
    source
        .bytes()
        .ok()
        .and_then(|bytes| aya_obj::Object::parse(&bytes).ok())
        .is_some_and(|object| {
            object
                .maps
                .values()
                .any(|m| matches!(m.map_type(), DEVMAP | CPUMAP | DEVMAP_HASH))
        })
}

/// How to load an object beyond the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// `const volatile __u32` globals to set, by name (each must exist and be 4 bytes).
    pub globals: Vec<(String, u32)>,
    /// Pin every map the object declares (not its `.rodata`, `.data` or `.bss`) by name in
    /// this bpffs directory, reusing a map already pinned there under the same name, as
    /// libbpf does for `LIBBPF_PIN_BY_NAME`. A pinned map that does not match the object's
    /// definition is refused rather than shared.
    pub map_pin_dir: Option<PathBuf>,
}

/// The maps of an object that would be pinned in `dir`, checking that any already pinned
/// there match the object's definitions.
fn pinned_maps(
    object: &str,
    bytes: &[u8],
    dir: &Path,
) -> Result<Vec<(String, PathBuf)>, ProgramError> {
    let parsed = aya_obj::Object::parse(bytes).map_err(|e| ProgramError::Object {
        object: object.to_owned(),
        source: Box::new(aya::EbpfError::ParseError(e)),
    })?;
    let mut pins = Vec::new();
    for (name, map) in &parsed.maps {
        if !matches!(
            map.section_kind(),
            EbpfSectionKind::Maps | EbpfSectionKind::BtfMaps
        ) {
            continue;
        }
        let path = dir.join(name);
        if path.exists() {
            let declared = describe_map(
                map.map_type(),
                map.key_size(),
                map.value_size(),
                map.max_entries(),
                map.map_flags(),
            );
            let found = MapData::from_pin(&path)
                .and_then(|m| m.info())
                .map(|info| {
                    describe_map(
                        info.map_type().map_or(u32::MAX, |t| t as u32),
                        info.key_size(),
                        info.value_size(),
                        info.max_entries(),
                        info.map_flags(),
                    )
                })
                .map_err(|source| ProgramError::Pin {
                    what: "open pinned map for",
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            if found != declared {
                return Err(ProgramError::PinnedMapMismatch {
                    object: object.to_owned(),
                    path,
                    declared,
                    found,
                });
            }
        }
        pins.push((name.clone(), path));
    }
    pins.sort();
    Ok(pins)
}

fn describe_map(kind: u32, key: u32, value: u32, entries: u32, flags: u32) -> String {
    format!(
        "map type {kind}, {key}-byte keys, {value}-byte values, {entries} entries, flags {flags:#x}"
    )
}

/// An XDP program reopened from its pin in a bpffs, as a restarted control plane finds it
/// (`bpftool prog show pinned PATH`). Closing it leaves the program loaded while the pin
/// exists.
pub struct PinnedProgram {
    xdp: Xdp,
    path: PathBuf,
}

impl fmt::Debug for PinnedProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedProgram")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PinnedProgram {
    /// Opens the program pinned at `path` (`BPF_OBJ_GET`).
    pub fn open(path: &Path) -> Result<Self, ProgramError> {
        let xdp =
            Xdp::from_pin(path, XdpAttachType::Interface).map_err(|source| ProgramError::Pin {
                what: "open pinned",
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self {
            xdp,
            path: path.to_owned(),
        })
    }

    /// The pin.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kernel's id of the program.
    pub fn id(&self) -> Result<u32, ProgramError> {
        self.xdp
            .info()
            .map(|info| info.id())
            .map_err(|source| ProgramError::Pin {
                what: "read the id of pinned",
                path: self.path.clone(),
                source: Box::new(source),
            })
    }

    /// The program's file descriptor, for `BPF_LINK_UPDATE`.
    pub fn fd(&self) -> Result<BorrowedFd<'_>, ProgramError> {
        self.xdp
            .fd()
            .map(|fd| fd.as_fd())
            .map_err(|source| ProgramError::Pin {
                what: "use pinned",
                path: self.path.clone(),
                source: Box::new(source),
            })
    }

    /// Attaches the program to a lab interface through a new bpf_link.
    pub fn attach(&mut self, end: &VethEnd, mode: XdpMode) -> Result<Attachment, ProgramError> {
        let entry = self.path.display().to_string();
        attach_xdp(&mut self.xdp, &entry, end, mode)
    }
}

/// What one `BPF_PROG_TEST_RUN` of one frame gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The XDP action the program returned (`XDP_ABORTED` = 0 ... `XDP_REDIRECT` = 4).
    pub action: u32,
    /// The frame after the program (it may have rewritten, grown or shrunk it).
    pub data: Vec<u8>,
}

/// A program attached to a lab interface. Dropping it detaches the program.
pub struct Attachment {
    link: FdLink,
    interface: String,
    entry: String,
    mode: XdpMode,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("interface", &self.interface)
            .field("entry", &self.entry)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Attachment {
    /// The mode the program runs in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The interface it is attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The bpf_link, for pinning it (see [`crate::link::XdpLink::pin`]).
    pub(crate) fn into_link(self) -> FdLink {
        self.link
    }

    /// Detaches now, reporting an error instead of printing it.
    pub fn detach(self) -> Result<(), ProgramError> {
        let Self {
            link,
            interface,
            entry,
            mode,
        } = self;
        link.detach().map_err(|source| ProgramError::Attach {
            entry,
            interface,
            mode,
            source: Box::new(source),
        })
    }
}

fn load_error(object: &str, entry: &str, error: AyaProgramError) -> ProgramError {
    match error {
        AyaProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            // The kernel answers a verifier rejection with EACCES, whose text ("permission
            // denied") reads like a privilege problem; the log says what really went wrong.
            let reason = match io_error.raw_os_error() {
                Some(libc::EACCES) if !log.trim().is_empty() => {
                    "rejected by the verifier".to_owned()
                }
                _ => io_error.to_string(),
            };
            ProgramError::Load {
                object: object.to_owned(),
                entry: entry.to_owned(),
                errno: io_error.raw_os_error(),
                reason,
                log,
            }
        }
        other => ProgramError::Load {
            object: object.to_owned(),
            entry: entry.to_owned(),
            errno: errno_in(&other),
            reason: chain(&other),
            log: String::new(),
        },
    }
}

/// The last lines of a verifier log, which name the instruction that failed.
fn verifier_tail(log: &str) -> String {
    const LINES: usize = 12;
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(LINES)..];
    format!(
        "\nverifier log (last {} lines):\n  {}",
        tail.len(),
        tail.join("\n  ")
    )
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no programs".to_owned()
    } else {
        names.join(", ")
    }
}

/// An error and its sources on one line, since aya's top-level messages often hide the errno.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// The first errno found in an error's source chain.
pub(crate) fn errno_in(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(errno) = io.raw_os_error()
        {
            return Some(errno);
        }
        current = e.source();
    }
    None
}
