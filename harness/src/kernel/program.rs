//! XDP programs: loading an ELF object with aya and attaching an entry to a lab interface.
//!
//! Attachment goes through [`crate::kernel::veth::VethEnd`], which only the lab can create, so a program
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

use crate::{
    exit::{Classify, ErrorClass, class_by_errno, prog_load_errno_class},
    kernel::elf::{self, ElfError, ProgramEntry, ProgramType},
    kernel::netns::NetNsError,
    kernel::pin::{Bpffs, PinError},
    kernel::veth::VethEnd,
};

/// The objects built from `ebpf/*.bpf.c` and embedded in the binary, by name.
pub const BUNDLED: &[(&str, &[u8])] = &[
    (
        "xdp_drop",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_drop.bpf.o"),
    ),
    (
        "xdp_filter",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_filter.bpf.o"),
    ),
    (
        "xdp_pass",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_pass.bpf.o"),
    ),
    (
        "xdp_tx",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_tx.bpf.o"),
    ),
    (
        "xdp_redirect",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_redirect.bpf.o"),
    ),
    (
        "xdp_aborted",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_aborted.bpf.o"),
    ),
    (
        "xdp_count",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_count.bpf.o"),
    ),
    (
        "xdp_version",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_version.bpf.o"),
    ),
    (
        "xdp_port_guard",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_port_guard.bpf.o"),
    ),
    (
        "xdp_tail_call",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_tail_call.bpf.o"),
    ),
    (
        "xdp_stats",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_stats.bpf.o"),
    ),
    (
        "xdp_fib_router",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_fib_router.bpf.o"),
    ),
    (
        "xdp_frags",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_frags.bpf.o"),
    ),
    (
        "xdp_vlan",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_vlan.bpf.o"),
    ),
    (
        "xdp_icmp_echo",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_icmp_echo.bpf.o"),
    ),
    (
        "xdp_synack_drop",
        aya::include_bytes_aligned!("../../ebpf-obj/xdp_synack_drop.bpf.o"),
    ),
];

/// An environment variable naming a directory of `<name>.bpf.o` files that stand in for the
/// embedded [`BUNDLED`] objects: `ci/build-ebpf.sh --check` sets it to its fresh builds when
/// this machine's clang is not the one that built `ebpf/obj/`, so the fresh objects are judged
/// by the bundled scenarios rather than compared byte for byte.
pub const BUNDLED_OVERRIDE_ENV: &str = "XDPLAB_BUNDLED_OBJECTS";

/// The bytes of a [`BUNDLED`] object, by name, at compile time.
///
/// # Panics
///
/// If no bundled object has that name.
pub const fn bundled_bytes(name: &str) -> &'static [u8] {
    let mut i = 0;
    while i < BUNDLED.len() {
        if BUNDLED[i].0.len() == name.len() {
            let (a, b) = (BUNDLED[i].0.as_bytes(), name.as_bytes());
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return BUNDLED[i].1;
            }
        }
        i += 1;
    }
    panic!("no bundled object by that name");
}

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
    /// An object named in a scenario file: a bundled name stays one; anything else is a path,
    /// relative to `dir` (the scenario file's directory) unless absolute.
    pub fn resolve(text: &str, dir: &Path) -> Self {
        if is_bundled(text) {
            Self::Bundled(text.to_owned())
        } else {
            Self::File(dir.join(text))
        }
    }

    /// The object as a scenario names it: the bundled name or the path, without the
    /// `(bundled)` that [`Display`](fmt::Display) adds for error messages.
    pub fn name(&self) -> String {
        match self {
            Self::Bundled(name) => name.clone(),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// Reads the object's bytes.
    pub fn bytes(&self) -> Result<Cow<'static, [u8]>, ProgramError> {
        match self {
            Self::Bundled(name) => {
                let embedded = BUNDLED
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, bytes)| *bytes)
                    .ok_or_else(|| ProgramError::UnknownBundled {
                        name: name.clone(),
                        available: BUNDLED.iter().map(|(n, _)| *n).collect(),
                    })?;
                // ci/build-ebpf.sh --check on a machine whose clang differs from the one that
                // built ebpf/obj/ runs the bundled scenarios on its own fresh builds.
                match std::env::var_os(BUNDLED_OVERRIDE_ENV) {
                    Some(dir) => {
                        let path = Path::new(&dir).join(format!("{name}.bpf.o"));
                        crate::input::read(&path, crate::input::InputKind::Object)
                            .map(Cow::Owned)
                            .map_err(|source| ProgramError::Read { path, source })
                    }
                    None => Ok(Cow::Borrowed(embedded)),
                }
            }
            Self::File(path) => crate::input::read(path, crate::input::InputKind::Object)
                .map(Cow::Owned)
                .map_err(|source| ProgramError::Read {
                    path: path.clone(),
                    source,
                }),
        }
    }
}

/// Where the program runs when a frame arrives: the one spelling of the attach mode, for the
/// library, the scenario files (`mode = "native"` / `"generic"`, default native) and the
/// command line (`--mode native,generic`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver, before an skb exists (veth's native XDP).
    #[doc(alias = "XDP_FLAGS_DRV_MODE")]
    #[default]
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

impl XdpMode {
    /// Every mode, in the order listings and the bench matrix use.
    pub const ALL: [Self; 2] = [Self::Native, Self::Generic];

    /// The name used in scenario files, on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--mode native,generic`: the same names as the scenario files. Written by hand rather than
/// derived so the variants' doc comments do not become command-line help.
#[cfg(feature = "cli")]
impl clap::ValueEnum for XdpMode {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
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
    #[error(
        "failed to load object {object}: {}{}",
        chain(source),
        super::refusal::hint(super::refusal::Resource::Map, errno_in(&**source))
    )]
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
        /// The programs the object has, with their sections.
        available: Vec<String>,
    },
    /// The object's ELF could not be read to find its programs.
    #[error("failed to load object {object}: {source}")]
    Elf {
        /// The object.
        object: String,
        /// What is wrong with it.
        #[source]
        source: ElfError,
    },
    /// A program the scenario needs is in a section that neither aya nor libbpf reads as XDP.
    #[error(
        "failed to load program {entry:?} from object {object}: its section {section:?} does \
         not say XDP to libbpf (the object has: {}); load it as XDP as bpftool's `type xdp` \
         does, with `type = \"xdp\"` (or \"xdp.frags\") in the scenario's [program] or \
         [[attach]] table",
        list(available)
    )]
    UnknownSection {
        /// The object.
        object: String,
        /// The entry.
        entry: String,
        /// Its section.
        section: String,
        /// The programs the object has, with their sections.
        available: Vec<String>,
    },
    /// The private bpffs for maps pinned by name could not be made.
    #[error("failed to pin the maps of object {object} by name in a private bpffs: {source}")]
    PinRoot {
        /// The object.
        object: String,
        /// The bpffs error.
        #[source]
        source: PinError,
    },
    /// A global given at load time is not in the object, or its value does not fit.
    #[error("failed to set global {name:?} in object {object}: {reason}")]
    GlobalValue {
        /// The object.
        object: String,
        /// The global.
        name: String,
        /// Why.
        reason: String,
    },
    /// A map given a size at load time is not in the object.
    #[error(
        "failed to set max-entries of map {name:?} in object {object}: it has no such map (it has: {})",
        list(available)
    )]
    NoMap {
        /// The object.
        object: String,
        /// The map.
        name: String,
        /// The maps it has.
        available: Vec<String>,
    },
    /// The object's maps, at the sizes asked for, could take more kernel memory than the cap.
    #[error(
        "failed to create map {name:?} of object {object}: it could take {bytes} bytes of kernel \
         memory ({entries} entries of {entry_bytes} bytes), more than xdplab's cap of {cap} bytes \
         for an object's maps; give it fewer entries (max-entries), or raise the cap with \
         {MAP_BYTES_ENV}"
    )]
    MapTooLarge {
        /// The object.
        object: String,
        /// The largest map.
        name: String,
        /// Its entries.
        entries: u64,
        /// Bytes per entry (key and value, the value once per CPU for per-CPU maps).
        entry_bytes: u64,
        /// What the object's maps could take in all.
        bytes: u64,
        /// The cap.
        cap: u64,
    },
    /// A map of the object has `max_entries` 0 and nothing gave it a size.
    #[error(
        "failed to create map {name:?} of object {object}: it declares max_entries 0, which its \
         loader is meant to set (libbpf's bpf_map__set_max_entries); give it in the scenario: \
         max-entries = {{ {name} = N }} in [program]"
    )]
    ZeroEntries {
        /// The object.
        object: String,
        /// The map.
        name: String,
    },
    /// A PROG_ARRAY slot could not be filled.
    #[error("failed to put program {program:?} in slot {index} of map {map:?}: {reason}")]
    TailCall {
        /// The PROG_ARRAY.
        map: String,
        /// The slot.
        index: u32,
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// The named program is not an XDP program.
    #[error(
        "failed to use program {entry:?} in object {object}: it is a {kind} program, not XDP \
         (to load it as XDP as bpftool's `type xdp` does: `type = \"xdp\"` in the scenario)"
    )]
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
        "failed to load program {entry:?} from object {object}: {reason}{}{}",
        super::refusal::hint(super::refusal::Resource::Program, *errno),
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
    /// object or the request: [`Classify::class`] is [`ErrorClass::Environment`].
    pub fn is_environment(&self) -> bool {
        self.class() == ErrorClass::Environment
    }
}

/// The object, its programs, maps and globals, the program the verifier judges and the pins
/// a step names are the user's; see [`crate::exit`] for the rule.
impl Classify for ProgramError {
    fn class(&self) -> ErrorClass {
        use ErrorClass::{BadInput, Environment};
        match self {
            Self::Read { .. }
            | Self::UnknownBundled { .. }
            | Self::NoProgram { .. }
            | Self::Elf { .. }
            | Self::UnknownSection { .. }
            | Self::GlobalValue { .. }
            | Self::NoMap { .. }
            | Self::ZeroEntries { .. }
            | Self::MapTooLarge { .. }
            | Self::TailCall { .. }
            | Self::NotXdp { .. }
            | Self::Global { .. }
            | Self::PinnedMapMismatch { .. } => BadInput,
            Self::Load { errno, .. } => errno.and_then(prog_load_errno_class).unwrap_or(BadInput),
            // aya's parse of the object and creation of its maps, attaching and running the
            // user's program, pinning it where the user's steps say.
            Self::Object { source, .. } => class_by_errno(errno_in(source), BadInput),
            Self::Attach { source, .. } | Self::TestRun { source, .. } => {
                class_by_errno(errno_in(source), BadInput)
            }
            Self::Pin { source, .. } => class_by_errno(errno_in(&**source), BadInput),
            // The private bpffs is xdplab's own request (as in `crate::classify` for
            // PinError's mount); entering a namespace too.
            Self::PinRoot { .. } | Self::NetNs(_) => Environment,
            // Attached through netlink: the kernel predates XDP bpf_links (5.9).
            Self::NoBpfLink { .. } => Environment,
        }
    }
}

/// An object loaded into the kernel, with its maps created and one XDP entry loaded.
pub struct Program {
    ebpf: Ebpf,
    object: String,
    entry: String,
    /// The private bpffs the object's pin-by-name maps went to when the caller gave none;
    /// declared after `ebpf` so the maps close before it is unmounted.
    pin_root: Option<Bpffs>,
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
        let original = source.bytes()?;
        let elf_error = |source| ProgramError::Elf {
            object: object.clone(),
            source,
        };
        let bytes = prepare_sections(&object, &original, entry, options)?;
        let object_error = |source| ProgramError::Object {
            object: object.clone(),
            source: Box::new(source),
        };
        let mut loader = EbpfLoader::new();
        let symbols = elf::globals(&bytes).map_err(elf_error)?;
        let globals = global_bytes(&object, &symbols, options)?;
        for (name, value) in &globals {
            loader.override_global(name.as_str(), value.as_slice(), true);
        }
        let parsed = aya_obj::Object::parse(&bytes).map_err(|e| ProgramError::Object {
            object: object.clone(),
            source: Box::new(aya::EbpfError::ParseError(e)),
        })?;
        check_map_sizes(&object, &parsed, options)?;
        for (name, size) in &options.max_entries {
            loader.map_max_entries(name.as_str(), *size);
        }
        let pins = match &options.map_pin_dir {
            Some(dir) => pinned_maps(&object, &bytes, dir)?,
            None => Vec::new(),
        };
        for (name, path) in &pins {
            loader.map_pin_path(name.as_str(), path.as_path());
        }
        // Maps pinned by name (LIBBPF_PIN_BY_NAME) never go to /sys/fs/bpf, aya's default:
        // they go to the caller's bpffs, or to one of this program's own.
        let by_name = parsed
            .maps
            .values()
            .any(|m| m.pinning() == aya_obj::maps::PinningType::ByName);
        let pin_root = match (
            options.pin_root.as_ref().or(options.map_pin_dir.as_ref()),
            by_name,
        ) {
            (Some(dir), _) => {
                loader.default_map_pin_directory(dir);
                None
            }
            (None, true) => {
                let bpffs = Bpffs::mount().map_err(|source| ProgramError::PinRoot {
                    object: object.clone(),
                    source,
                })?;
                loader.default_map_pin_directory(bpffs.path());
                Some(bpffs)
            }
            (None, false) => None,
        };
        drop(parsed);
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
        let available = described_programs(&original);
        let mut names: Vec<&str> = vec![entry];
        names.extend(
            options
                .also_load
                .iter()
                .map(String::as_str)
                .filter(|n| *n != entry),
        );
        for name in names {
            let program = ebpf
                .program_mut(name)
                .ok_or_else(|| ProgramError::NoProgram {
                    object: object.clone(),
                    entry: name.to_owned(),
                    available: available.clone(),
                })?;
            let kind = format!("{:?}", program.prog_type());
            let xdp: &mut Xdp = program.try_into().map_err(|_| ProgramError::NotXdp {
                object: object.clone(),
                entry: name.to_owned(),
                kind,
            })?;
            xdp.load().map_err(|e| load_error(&object, name, e))?;
        }
        Ok(Self {
            ebpf,
            object,
            entry: entry.to_owned(),
            pin_root,
        })
    }

    /// The program file descriptor of `name`, one of the object's programs loaded with it
    /// (the entry or one of [`LoadOptions::also_load`]), for a PROG_ARRAY slot.
    pub fn program_fd(&self, name: &str) -> Result<&aya::programs::ProgramFd, ProgramError> {
        let not_loaded = || ProgramError::NoProgram {
            object: self.object.clone(),
            entry: name.to_owned(),
            available: self
                .ebpf
                .programs()
                .filter(|(_, p)| p.fd().is_ok())
                .map(|(n, _)| format!("{n} (loaded)"))
                .collect(),
        };
        let program = self.ebpf.program(name).ok_or_else(not_loaded)?;
        program.fd().map_err(|_| not_loaded())
    }

    /// Puts program `name` of this object in slot `index` of its PROG_ARRAY `map` (a
    /// tail-call target), as a libbpf loader does with `bpf_map_update_elem(map_fd, &index,
    /// &prog_fd)`. `name` must have been loaded ([`LoadOptions::also_load`]).
    #[doc(alias = "BPF_MAP_TYPE_PROG_ARRAY")]
    pub fn set_tail_call(&mut self, map: &str, index: u32, name: &str) -> Result<(), ProgramError> {
        let fd = self
            .program_fd(name)?
            .try_clone()
            .map_err(|source| ProgramError::TailCall {
                map: map.to_owned(),
                index,
                program: name.to_owned(),
                reason: format!("failed to duplicate the program's descriptor: {source}"),
            })?;
        let tail_error = |reason: String| ProgramError::TailCall {
            map: map.to_owned(),
            index,
            program: name.to_owned(),
            reason,
        };
        let available: Vec<String> = self.ebpf.maps().map(|(n, _)| n.to_owned()).collect();
        let data = self.ebpf.map_mut(map).ok_or_else(|| {
            tail_error(format!(
                "the object has no such map (it has: {})",
                list(&available)
            ))
        })?;
        let mut array = aya::maps::ProgramArray::try_from(data)
            .map_err(|e| tail_error(format!("it is not a PROG_ARRAY ({e})")))?;
        array.set(index, &fd, 0).map_err(|e| tail_error(chain(&e)))
    }

    /// The private bpffs this program's maps pinned by name went to, when the caller gave
    /// none ([`LoadOptions::pin_root`]).
    pub fn pin_root(&self) -> Option<&Path> {
        self.pin_root.as_ref().map(Bpffs::path)
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
        self.test_run_ctx(frame, None)
    }

    /// Runs the program once on `frame` with `BPF_PROG_TEST_RUN` as if it arrived on `end`:
    /// from a thread inside `end`'s namespace, with the `xdp_md` context's `ingress_ifindex`
    /// set to `end` (receive queue 0). Helpers that read the kernel's tables
    /// (`bpf_fib_lookup`) then use that namespace's routes, neighbours and sysctls, and the
    /// ingress device's forwarding setting, as they do when the frame arrives there live.
    pub fn test_run_at(&self, frame: &[u8], end: &VethEnd) -> Result<TestRunOutput, ProgramError> {
        let ifindex = end.ifindex();
        end.netns()
            .run(|| self.test_run_ctx(frame, Some(ifindex)))?
    }

    /// `BPF_PROG_TEST_RUN` with an `xdp_md` context naming `ingress_ifindex` in the calling
    /// thread's namespace, or with no context (the namespace's loopback device) for `None`.
    fn test_run_ctx(
        &self,
        frame: &[u8],
        ingress_ifindex: Option<u32>,
    ) -> Result<TestRunOutput, ProgramError> {
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex }: data is the metadata length (none), data_end the frame's length.
        let ctx: Option<Vec<u8>> = ingress_ifindex.map(|ifindex| {
            let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            [0, len, 0, ifindex, 0, 0]
                .iter()
                .flat_map(|v: &u32| v.to_ne_bytes())
                .collect()
        });
        // Room for growth through bpf_xdp_adjust_head/tail.
        let mut out = vec![0u8; frame.len() + 4096];
        let result = self
            .xdp()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: ctx.as_deref(),
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

    /// Runs `frame` through the program `repeat` times in one `BPF_PROG_TEST_RUN` (no
    /// interface, no namespace; the frame is reset before each run): the action of the last
    /// run and the kernel's own mean time per run (the call's `duration`).
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    pub fn test_run_repeat(
        &self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), ProgramError> {
        let result = self
            .xdp()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat: repeat.max(1),
                ..TestRunOptions::default()
            })
            .map_err(|source| ProgramError::TestRun {
                entry: self.entry.clone(),
                source: Box::new(source),
            })?;
        Ok((result.return_value, result.duration))
    }

    /// The program's run-time statistics now (`run_time_ns`, `run_cnt` from
    /// `BPF_OBJ_GET_INFO_BY_FD`, as `bpftool prog show` prints them); they only move while
    /// [`crate::kernel::stats::RunTimeStats`] is held.
    #[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
    pub fn run_time(&self) -> Result<crate::kernel::stats::RunTime, ProgramError> {
        self.xdp()
            .info()
            .map(|info| crate::kernel::stats::RunTime {
                run_time_ns: u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX),
                run_cnt: info.run_count(),
            })
            .map_err(|source| ProgramError::TestRun {
                entry: self.entry.clone(),
                source: Box::new(source),
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
/// generic XDP refuses before Linux 5.15 (see [`crate::host::requires::Feature::GenericDevmap`]).
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

/// Whether any function of the object calls `bpf_fib_lookup`, which reads the routing and
/// neighbour tables (and forwarding sysctls) of the namespace the program runs in. `false` when
/// the object cannot be read or parsed (loading it reports why).
#[doc(alias = "BPF_FUNC_fib_lookup")]
pub fn calls_fib_lookup(source: &ObjectSource) -> bool {
    // BPF_JMP | BPF_CALL with src_reg 0 is a helper call; imm is the helper's id.
    const CALL: u8 = 0x85;
    const BPF_FUNC_FIB_LOOKUP: i32 = 69;
    // Read with xdplab's own ELF reader, not aya's parser: that refuses the free section
    // names libbpf users write, and a router in `SEC("xdp_router")` must be found too.
    let Ok(bytes) = source.bytes() else {
        return false;
    };
    let Ok(programs) = elf::programs(&bytes) else {
        return false;
    };
    let mut sections: Vec<&str> = programs.iter().map(|p| p.section.as_str()).collect();
    // Functions called BPF-to-BPF live in .text.
    sections.push(".text");
    sections.sort_unstable();
    sections.dedup();
    sections.iter().any(|section| {
        elf::section_range(&bytes, section).is_some_and(|range| {
            bytes[range].chunks_exact(8).any(|insn| {
                insn[0] == CALL
                    && insn[1] >> 4 == 0
                    && i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]])
                        == BPF_FUNC_FIB_LOOKUP
            })
        })
    })
}

/// Whether `entry` of the object is an `xdp.frags` program (loaded with
/// `BPF_F_XDP_HAS_FRAGS`, so it takes frames larger than a page: veth lets it run natively
/// under an MTU up to 9000 and more): its section as libbpf reads it (`xdp.frags`,
/// `xdp.frags/...`), or `forced` when the scenario gives the program type (`type = ...`).
/// `None` when the object cannot be read or has no such program.
#[doc(alias = "BPF_F_XDP_HAS_FRAGS")]
pub fn entry_has_frags(
    source: &ObjectSource,
    entry: &str,
    forced: Option<ProgramType>,
) -> Option<bool> {
    let bytes = source.bytes().ok()?;
    let programs = elf::programs(&bytes).ok()?;
    let program = programs.iter().find(|p| p.name == entry)?;
    match forced {
        Some(kind) => Some(kind == ProgramType::XdpFrags),
        None => elf::libbpf_xdp_section(&program.section)
            .map(|section| section == "xdp.frags" || section.starts_with("xdp.frags/")),
    }
}

/// How to load an object beyond the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Integer globals to set, by name (lifecycle steps' `globals`): each must exist, and
    /// its value fit the variable's size; the same path as [`Self::global_values`].
    pub globals: Vec<(String, u32)>,
    /// Pin every map the object declares (not its `.rodata`, `.data` or `.bss`) by name in
    /// this bpffs directory, reusing a map already pinned there under the same name, as
    /// libbpf does for `LIBBPF_PIN_BY_NAME`. A pinned map that does not match the object's
    /// definition is refused rather than shared.
    pub map_pin_dir: Option<PathBuf>,
    /// Where maps the object pins by name (`__uint(pinning, LIBBPF_PIN_BY_NAME)`) go: a
    /// bpffs directory the caller owns, shared by every object it loads with it, as libbpf's
    /// pin root is. `None`: a private bpffs the [`Program`] mounts and removes (never
    /// `/sys/fs/bpf`, aya's and libbpf's default).
    pub pin_root: Option<PathBuf>,
    /// Globals of any size in `.rodata`, `.data` or `.bss`, set by name before load.
    pub global_values: Vec<(String, GlobalValue)>,
    /// Map sizes set before the maps are created, by map name (libbpf's
    /// `bpf_map__set_max_entries`).
    pub max_entries: Vec<(String, u32)>,
    /// Read every program section as this type, as bpftool's `prog load ... type xdp` does.
    pub program_type: Option<ProgramType>,
    /// Other programs of the object to load with the entry (tail-call targets).
    pub also_load: Vec<String>,
}

/// A value for a global variable, fitted to the variable's size in the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobalValue {
    /// An integer, written in the variable's size (1, 2, 4 or 8 bytes), native byte order.
    Int(i64),
    /// A boolean: 1 or 0 in the variable's size.
    Bool(bool),
    /// The variable's bytes, exactly as many as it has.
    Bytes(Vec<u8>),
}

impl GlobalValue {
    /// The bytes for a variable of `size` bytes.
    pub fn to_bytes(&self, size: usize) -> Result<Vec<u8>, String> {
        match self {
            Self::Int(n) => {
                if !matches!(size, 1 | 2 | 4 | 8) {
                    return Err(format!(
                        "an integer fits variables of 1, 2, 4 or 8 bytes; give {size} hex bytes"
                    ));
                }
                let bits = size * 8;
                let fits = bits == 64 || (*n >= -(1i64 << (bits - 1)) && *n < (1i64 << bits));
                if !fits {
                    return Err(format!("{n} does not fit in {size} bytes"));
                }
                Ok(n.to_ne_bytes()[..size].to_vec())
            }
            Self::Bool(b) => Self::Int(i64::from(*b)).to_bytes(size),
            Self::Bytes(bytes) if bytes.len() == size => Ok(bytes.clone()),
            Self::Bytes(bytes) => Err(format!("{} bytes given", bytes.len())),
        }
    }
}

/// The object's bytes with its section names rewritten for aya ([`crate::kernel::elf`]), after
/// checking that the programs the load needs are in sections aya will read.
fn prepare_sections(
    object: &str,
    bytes: &[u8],
    entry: &str,
    options: &LoadOptions,
) -> Result<Cow<'static, [u8]>, ProgramError> {
    let elf_error = |source| ProgramError::Elf {
        object: object.to_owned(),
        source,
    };
    let programs = elf::programs(bytes).map_err(elf_error)?;
    let mut needed: Vec<&str> = vec![entry];
    needed.extend(options.also_load.iter().map(String::as_str));
    let plan = elf::plan(&programs, &needed, options.program_type);
    if let Some(refused) = plan.refused.first() {
        return Err(ProgramError::UnknownSection {
            object: object.to_owned(),
            entry: refused.name.clone(),
            section: refused.section.clone(),
            available: describe_programs(&programs),
        });
    }
    let rewritten = elf::rewrite(bytes, &plan).map_err(elf_error)?;
    Ok(Cow::Owned(rewritten))
}

fn describe_programs(programs: &[ProgramEntry]) -> Vec<String> {
    programs
        .iter()
        .map(|p| format!("{} (section {:?})", p.name, p.section))
        .collect()
}

/// The object's programs with their sections, for error messages.
fn described_programs(bytes: &[u8]) -> Vec<String> {
    elf::programs(bytes)
        .map(|p| describe_programs(&p))
        .unwrap_or_default()
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

    /// The bpf_link, for pinning it (see [`crate::kernel::link::XdpLink::pin`]).
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

/// The bytes of each global the options set (lifecycle steps' integers and `[program]`
/// globals take one path): sized by the object's symbol, checked against its variables.
fn global_bytes(
    object: &str,
    symbols: &[elf::GlobalSymbol],
    options: &LoadOptions,
) -> Result<Vec<(String, Vec<u8>)>, ProgramError> {
    let mut globals: Vec<(String, Vec<u8>)> = Vec::new();
    let values = options
        .globals
        .iter()
        .map(|(name, value)| (name.clone(), GlobalValue::Int(i64::from(*value))))
        .chain(options.global_values.iter().cloned());
    for (name, value) in values {
        let name = &name;
        let symbol =
            symbols
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| ProgramError::GlobalValue {
                    object: object.to_owned(),
                    name: name.clone(),
                    reason: format!(
                        "the object has no such global in .rodata, .data or .bss (it has: {})",
                        list(
                            &symbols
                                .iter()
                                .map(|s| format!("{} ({}, {} bytes)", s.name, s.section, s.size))
                                .collect::<Vec<_>>()
                        )
                    ),
                })?;
        let bytes = value
            .to_bytes(symbol.size)
            .map_err(|reason| ProgramError::GlobalValue {
                object: object.to_owned(),
                name: name.clone(),
                reason: format!(
                    "{reason} ({} is {} bytes in {})",
                    name, symbol.size, symbol.section
                ),
            })?;
        globals.push((name.clone(), bytes));
    }
    Ok(globals)
}

/// Every map `max-entries` names is in the object, and every map that asks its loader for a
/// size (`max_entries` 0) gets one: said here, before the kernel answers a bare EINVAL.
fn check_map_sizes(
    object: &str,
    parsed: &aya_obj::Object,
    options: &LoadOptions,
) -> Result<(), ProgramError> {
    for (name, _) in &options.max_entries {
        if !parsed.maps.contains_key(name) {
            let mut available: Vec<String> = parsed.maps.keys().cloned().collect();
            available.sort();
            return Err(ProgramError::NoMap {
                object: object.to_owned(),
                name: name.clone(),
                available,
            });
        }
    }
    check_map_memory(object, parsed, options)?;
    // Perf event arrays and ring buffers are sized by aya.
    let mut zero: Vec<&String> = parsed
        .maps
        .iter()
        .filter(|(name, map)| {
            map.max_entries() == 0
                && !matches!(map.map_type(), 4 | 27)
                && !options.max_entries.iter().any(|(n, _)| n == *name)
        })
        .map(|(name, _)| name)
        .collect();
    zero.sort();
    match zero.first() {
        Some(name) => Err(ProgramError::ZeroEntries {
            object: object.to_owned(),
            name: (*name).clone(),
        }),
        None => Ok(()),
    }
}

/// The environment variable that sets [`DEFAULT_MAP_BYTES`] otherwise.
pub const MAP_BYTES_ENV: &str = "XDPLAB_MAX_MAP_BYTES";
/// What an object's maps may take of kernel memory at most, in bytes, unless
/// [`MAP_BYTES_ENV`] says otherwise: a scenario's `max-entries` could otherwise ask the kernel
/// for more memory than the machine has (a per-CPU array of 400 million entries had the
/// kernel's OOM killer end xdplab).
pub const DEFAULT_MAP_BYTES: u64 = 1 << 30;

/// The most kernel memory the object's maps can take at the sizes asked for (hash maps
/// counted full), against the cap; the error names the largest map.
fn check_map_memory(
    object: &str,
    parsed: &aya_obj::Object,
    options: &LoadOptions,
) -> Result<(), ProgramError> {
    // BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE.
    const PER_CPU: [u32; 4] = [5, 6, 10, 21];
    // BPF_MAP_TYPE_RINGBUF and USER_RINGBUF: max_entries is the ring's size in bytes.
    const RING: [u32; 2] = [27, 31];
    let cap = std::env::var(MAP_BYTES_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAP_BYTES);
    let cpus = aya::util::nr_cpus().map_or(1, |n| n as u64).max(1);
    let mut total: u64 = 0;
    let mut largest: Option<(&String, u64, u64, u64)> = None;
    for (name, map) in &parsed.maps {
        let entries = options
            .max_entries
            .iter()
            .find(|(n, _)| n == name)
            .map_or(map.max_entries(), |(_, size)| *size);
        let (entries, entry_bytes) = if RING.contains(&map.map_type()) {
            (1, u64::from(entries))
        } else {
            let value = u64::from(map.value_size());
            let value = if PER_CPU.contains(&map.map_type()) {
                // The kernel rounds each CPU's value up to 8 bytes.
                value.div_ceil(8) * 8 * cpus
            } else {
                value
            };
            (u64::from(entries), u64::from(map.key_size()) + value)
        };
        let bytes = entries.saturating_mul(entry_bytes);
        total = total.saturating_add(bytes);
        if largest.is_none_or(|(_, _, _, most)| bytes > most) {
            largest = Some((name, entries, entry_bytes, bytes));
        }
    }
    match largest {
        Some((name, entries, entry_bytes, _)) if total > cap => Err(ProgramError::MapTooLarge {
            object: object.to_owned(),
            name: name.clone(),
            entries,
            entry_bytes,
            bytes: total,
            cap,
        }),
        _ => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled(name: &str) -> ObjectSource {
        ObjectSource::Bundled(name.into())
    }

    #[test]
    fn maps_larger_than_the_cap_are_refused_before_the_kernel_is_asked() {
        // No privileges needed: the check runs on the parsed object, before any bpf() call.
        let huge = LoadOptions {
            max_entries: vec![("xdp_stats_map".into(), 400_000_000)],
            ..LoadOptions::default()
        };
        let Err(e) = Program::load_with(&bundled("xdp_stats"), "xdp_stats", &huge) else {
            panic!("a 14 GB per-CPU array was not refused");
        };
        let ProgramError::MapTooLarge {
            name,
            entries,
            bytes,
            cap,
            ..
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!((name.as_str(), *entries), ("xdp_stats_map", 400_000_000));
        assert!(*bytes > *cap, "{e}");
        assert_eq!(e.class(), ErrorClass::BadInput);
        assert!(e.to_string().contains(MAP_BYTES_ENV), "{e}");
    }

    #[test]
    fn fib_lookup_calls_are_found_in_the_object() {
        assert!(calls_fib_lookup(&bundled("xdp_fib_router")));
        assert!(!calls_fib_lookup(&bundled("xdp_redirect")));
        assert!(!calls_fib_lookup(&bundled("xdp_frags")));
        assert!(!calls_fib_lookup(&bundled("no_such_object")));
    }

    #[test]
    fn frags_entries_are_told_apart_by_section() {
        assert_eq!(
            entry_has_frags(&bundled("xdp_frags"), "xdp_frags_limit", None),
            Some(true)
        );
        assert_eq!(
            entry_has_frags(&bundled("xdp_fib_router"), "xdp_fib_router", None),
            Some(false)
        );
        assert_eq!(
            entry_has_frags(&bundled("xdp_fib_router"), "xdp_fib_router_frags", None),
            Some(true)
        );
        assert_eq!(
            entry_has_frags(&bundled("xdp_pass"), "no_such_entry", None),
            None
        );
        assert_eq!(entry_has_frags(&bundled("no_such_object"), "x", None), None);
        // A free section read as the type the scenario gives.
        assert_eq!(
            entry_has_frags(
                &bundled("xdp_port_guard"),
                "xdp_port_guard",
                Some(ProgramType::XdpFrags)
            ),
            Some(true)
        );
        assert_eq!(
            entry_has_frags(&bundled("xdp_port_guard"), "xdp_port_guard", None),
            None,
            "a free section is no XDP program without a type"
        );
    }

    #[test]
    fn global_values_take_the_variables_size() {
        assert_eq!(GlobalValue::Int(5353).to_bytes(2), Ok(vec![0xe9, 0x14]));
        assert_eq!(GlobalValue::Int(-1).to_bytes(1), Ok(vec![0xff]));
        assert_eq!(GlobalValue::Int(255).to_bytes(1), Ok(vec![0xff]));
        assert_eq!(
            GlobalValue::Int(7).to_bytes(8),
            Ok(7u64.to_ne_bytes().to_vec())
        );
        assert_eq!(GlobalValue::Bool(true).to_bytes(1), Ok(vec![1]));
        assert_eq!(GlobalValue::Bool(true).to_bytes(4), Ok(vec![1, 0, 0, 0]));
        assert_eq!(
            GlobalValue::Bytes(vec![1, 2, 3]).to_bytes(3),
            Ok(vec![1, 2, 3])
        );
        for (value, size, why) in [
            (GlobalValue::Int(70000), 2, "does not fit in 2 bytes"),
            (GlobalValue::Int(256), 1, "does not fit in 1 bytes"),
            (GlobalValue::Int(-129), 1, "does not fit in 1 bytes"),
            (GlobalValue::Int(1), 3, "give 3 hex bytes"),
            (GlobalValue::Bytes(vec![1, 2]), 4, "2 bytes given"),
        ] {
            let e = value.to_bytes(size).expect_err("refused");
            assert!(e.contains(why), "{value:?} in {size}: {e}");
        }
    }
}
