//! Reading and writing a loaded program's maps by name, with keys and values as bytes.
//!
//! aya finds the maps, owns their file descriptors and reports their kind and sizes; the
//! element operations here are the plain `bpf(2)` commands on those descriptors
//! (`BPF_MAP_LOOKUP_ELEM`, `BPF_MAP_UPDATE_ELEM`, `BPF_MAP_GET_NEXT_KEY`), because scenario
//! files name keys and values whose sizes are only known at run time, while aya's typed maps
//! fix them at compile time. Per-CPU maps return one value per possible CPU, which callers sum
//! or compare one by one (`bpftool map lookup` prints both).

use std::{fmt, os::fd::AsFd as _, os::fd::AsRawFd as _, path::Path};

use aya::maps::{Map, MapData, MapType};
use thiserror::Error;

use crate::{kernel::btf::CType, kernel::program::Program};

/// An error from map access.
#[derive(Debug, Error)]
pub enum MapError {
    /// No map by this name in the program's object.
    #[error("failed to find map {name:?} in object {object} (it has: {})", available.join(", "))]
    NotFound {
        /// The requested map.
        name: String,
        /// The object.
        object: String,
        /// The maps the object has.
        available: Vec<String>,
    },
    /// The map's info could not be read.
    #[error("failed to read info of map {name:?}: {reason}")]
    Info {
        /// The map.
        name: String,
        /// aya's error.
        reason: String,
    },
    /// A key or value has the wrong size for the map.
    #[error("failed to use map {name:?}: {what} is {got} bytes, the map's is {want}")]
    Size {
        /// The map.
        name: String,
        /// "key" or "value".
        what: &'static str,
        /// Size given.
        got: usize,
        /// Size the map has.
        want: usize,
    },
    /// A pinned map could not be opened.
    #[error("failed to open pinned map {path}: {reason}")]
    Pin {
        /// The pin.
        path: String,
        /// aya's error.
        reason: String,
    },
    /// A `bpf(2)` element command failed.
    #[error("failed to {op} map {name:?}: {source}")]
    Syscall {
        /// The map.
        name: String,
        /// The operation ("look up key in", "update", ...).
        op: &'static str,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
}

/// The map types xdplab reads and writes, named after the kernel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// `BPF_MAP_TYPE_ARRAY`.
    #[doc(alias = "BPF_MAP_TYPE_ARRAY")]
    Array,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_ARRAY")]
    PerCpuArray,
    /// `BPF_MAP_TYPE_HASH`.
    #[doc(alias = "BPF_MAP_TYPE_HASH")]
    Hash,
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    #[doc(alias = "BPF_MAP_TYPE_PERCPU_HASH")]
    PerCpuHash,
    /// `BPF_MAP_TYPE_LRU_HASH`.
    #[doc(alias = "BPF_MAP_TYPE_LRU_HASH")]
    LruHash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    #[doc(alias = "BPF_MAP_TYPE_LRU_PERCPU_HASH")]
    LruPerCpuHash,
    /// `BPF_MAP_TYPE_RINGBUF`: records are read with [`Program::take_ringbuf`], never by key.
    #[doc(alias = "BPF_MAP_TYPE_RINGBUF")]
    RingBuf,
    /// Any other type: readable with the same commands if the kernel allows, not interpreted.
    Other,
}

impl MapKind {
    /// Whether values are stored once per possible CPU.
    pub fn is_per_cpu(self) -> bool {
        matches!(
            self,
            Self::PerCpuArray | Self::PerCpuHash | Self::LruPerCpuHash
        )
    }
}

impl fmt::Display for MapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Array => "array",
            Self::PerCpuArray => "percpu_array",
            Self::Hash => "hash",
            Self::PerCpuHash => "percpu_hash",
            Self::LruHash => "lru_hash",
            Self::LruPerCpuHash => "lru_percpu_hash",
            Self::RingBuf => "ringbuf",
            Self::Other => "other",
        })
    }
}

/// A value read from a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapValue {
    /// One value (non-per-CPU maps).
    Single(Vec<u8>),
    /// One value per possible CPU, in CPU order.
    PerCpu(Vec<Vec<u8>>),
}

impl MapValue {
    /// The value as a little-endian unsigned integer, summed over CPUs for per-CPU maps.
    /// `None` if a value is wider than 8 bytes.
    pub fn sum_u64(&self) -> Option<u64> {
        match self {
            Self::Single(bytes) => le_u64(bytes),
            Self::PerCpu(values) => values
                .iter()
                .try_fold(0u64, |sum, v| Some(sum.wrapping_add(le_u64(v)?))),
        }
    }

    /// Per-CPU values as integers (`None` for non-per-CPU maps or values wider than 8 bytes).
    pub fn per_cpu_u64(&self) -> Option<Vec<u64>> {
        match self {
            Self::Single(_) => None,
            Self::PerCpu(values) => values.iter().map(|v| le_u64(v)).collect(),
        }
    }
}

/// Reads a little-endian unsigned integer of up to 8 bytes.
pub fn le_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(u64::from_le_bytes(buf))
}

/// The C types of a map's key and value, from its BTF; a type is `None` when the map
/// declares only its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapTypes {
    /// The key's type.
    pub key: Option<CType>,
    /// The value's type (one CPU's, for per-CPU maps).
    pub value: Option<CType>,
}

/// A handle on one map of a loaded program.
#[derive(Debug)]
pub struct ProgramMap<'a> {
    name: String,
    data: &'a MapData,
    kind: MapKind,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    flags: u32,
}

impl Program {
    /// The map called `name` in this program's object.
    pub fn map(&self, name: &str) -> Result<ProgramMap<'_>, MapError> {
        find_map(self.ebpf(), name, self.object())
    }
}

/// The map called `name` in a loaded object.
pub(crate) fn find_map<'a>(
    ebpf: &'a aya::Ebpf,
    name: &str,
    object: &str,
) -> Result<ProgramMap<'a>, MapError> {
    {
        let map = ebpf.map(name).ok_or_else(|| MapError::NotFound {
            name: name.to_owned(),
            object: object.to_owned(),
            available: ebpf.maps().map(|(n, _)| n.to_owned()).collect(),
        })?;
        let (kind, data) = match map {
            Map::Array(d) => (MapKind::Array, d),
            Map::PerCpuArray(d) => (MapKind::PerCpuArray, d),
            Map::HashMap(d) => (MapKind::Hash, d),
            Map::PerCpuHashMap(d) => (MapKind::PerCpuHash, d),
            Map::LruHashMap(d) => (MapKind::LruHash, d),
            Map::PerCpuLruHashMap(d) => (MapKind::LruPerCpuHash, d),
            Map::RingBuf(d) => (MapKind::RingBuf, d),
            other => (MapKind::Other, map_data(other)),
        };
        describe(name, data, Some(kind))
    }
}

/// A handle on `data`; the kind is read from the kernel unless given.
fn describe<'a>(
    name: &str,
    data: &'a MapData,
    kind: Option<MapKind>,
) -> Result<ProgramMap<'a>, MapError> {
    let info = data.info().map_err(|e| MapError::Info {
        name: name.to_owned(),
        reason: e.to_string(),
    })?;
    let kind = kind.unwrap_or_else(|| match info.map_type() {
        Ok(MapType::Array) => MapKind::Array,
        Ok(MapType::PerCpuArray) => MapKind::PerCpuArray,
        Ok(MapType::Hash) => MapKind::Hash,
        Ok(MapType::PerCpuHash) => MapKind::PerCpuHash,
        Ok(MapType::LruHash) => MapKind::LruHash,
        Ok(MapType::LruPerCpuHash) => MapKind::LruPerCpuHash,
        _ => MapKind::Other,
    });
    Ok(ProgramMap {
        name: name.to_owned(),
        data,
        kind,
        key_size: info.key_size() as usize,
        value_size: info.value_size() as usize,
        max_entries: info.max_entries(),
        flags: info.map_flags(),
    })
}

/// A map opened from its pin in a bpffs, as another process finds it
/// (`bpftool map dump pinned PATH`). Closing it leaves the map in place while the pin exists.
#[derive(Debug)]
pub struct PinnedMap {
    name: String,
    data: MapData,
}

impl PinnedMap {
    /// Opens the map pinned at `path`; its name for messages is the pin's file name.
    pub fn open(path: &Path) -> Result<Self, MapError> {
        let data = MapData::from_pin(path).map_err(|e| MapError::Pin {
            path: path.display().to_string(),
            reason: crate::kernel::program::chain(&e),
        })?;
        Ok(Self {
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            data,
        })
    }

    /// The map, for lookups and updates.
    pub fn map(&self) -> Result<ProgramMap<'_>, MapError> {
        describe(&self.name, &self.data, None)
    }

    /// The kernel's id of the map.
    pub fn id(&self) -> Result<u32, MapError> {
        self.data
            .info()
            .map(|info| info.id())
            .map_err(|e| MapError::Info {
                name: self.name.clone(),
                reason: e.to_string(),
            })
    }
}

impl ProgramMap<'_> {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The map's type.
    pub fn kind(&self) -> MapKind {
        self.kind
    }
    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.key_size
    }
    /// Value size in bytes (per CPU, for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size
    }
    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Looks `key` up (`bpftool map lookup`); `None` if the key is absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<MapValue>, MapError> {
        self.check_size("key", key.len(), self.key_size)?;
        let cpus = self.cpus()?;
        let stride = if self.kind.is_per_cpu() {
            self.value_size.next_multiple_of(8)
        } else {
            self.value_size
        };
        let mut value = vec![0u8; stride * cpus];
        let fd = self.data.fd().as_fd().as_raw_fd();
        match sys::lookup(fd, key, &mut value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(source) => {
                return Err(MapError::Syscall {
                    name: self.name.clone(),
                    op: "look up a key in",
                    source,
                });
            }
        }
        Ok(Some(if self.kind.is_per_cpu() {
            MapValue::PerCpu(
                value
                    .chunks(stride)
                    .map(|c| c[..self.value_size].to_vec())
                    .collect(),
            )
        } else {
            value.truncate(self.value_size);
            MapValue::Single(value)
        }))
    }

    /// Writes `value` at `key` (`bpftool map update`). For per-CPU maps the value is written on
    /// every CPU.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), MapError> {
        self.check_size("key", key.len(), self.key_size)?;
        self.check_size("value", value.len(), self.value_size)?;
        let buffer = if self.kind.is_per_cpu() {
            let stride = self.value_size.next_multiple_of(8);
            let mut all = vec![0u8; stride * self.cpus()?];
            for chunk in all.chunks_mut(stride) {
                chunk[..value.len()].copy_from_slice(value);
            }
            all
        } else {
            value.to_vec()
        };
        let fd = self.data.fd().as_fd().as_raw_fd();
        sys::update(fd, key, &buffer).map_err(|source| MapError::Syscall {
            name: self.name.clone(),
            op: "update",
            source,
        })
    }

    /// Every key in the map (`bpftool map dump`, keys only). Arrays list every index.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, MapError> {
        let fd = self.data.fd().as_fd().as_raw_fd();
        let mut keys = Vec::new();
        let mut current: Option<Vec<u8>> = None;
        // Bounded by the map's capacity, so a map changing underneath cannot loop forever.
        for _ in 0..=self.max_entries {
            let mut next = vec![0u8; self.key_size];
            match sys::next_key(fd, current.as_deref(), &mut next) {
                Ok(()) => {
                    keys.push(next.clone());
                    current = Some(next);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                Err(source) => {
                    return Err(MapError::Syscall {
                        name: self.name.clone(),
                        op: "iterate",
                        source,
                    });
                }
            }
        }
        Ok(keys)
    }

    /// The first `count` values of an ARRAY of 8-byte values, in index order. A map created
    /// with `BPF_F_MMAPABLE` is read through a read-only mapping of its memory, so millions
    /// of values cost one copy instead of one system call each.
    pub fn read_u64s(&self, count: usize) -> Result<Vec<u64>, MapError> {
        const BPF_F_MMAPABLE: u32 = 1 << 10;
        if self.kind != MapKind::Array || self.value_size != 8 || self.key_size != 4 {
            return Err(MapError::Info {
                name: self.name.clone(),
                reason: format!(
                    "it is a {} with {}-byte keys and {}-byte values, not an array of 8-byte values",
                    self.kind, self.key_size, self.value_size
                ),
            });
        }
        let count = count.min(self.max_entries as usize);
        if self.flags & BPF_F_MMAPABLE == 0 {
            return (0..count as u32)
                .map(|i| {
                    Ok(self
                        .lookup(&i.to_le_bytes())?
                        .and_then(|v| v.sum_u64())
                        .unwrap_or(0))
                })
                .collect();
        }
        let len = (count * 8).max(1);
        let fd = self.data.fd().as_fd().as_raw_fd();
        // SAFETY: a read-only shared mapping of the map's own memory, of at most its size
        // (count <= max_entries, 8 bytes each); unmapped below before returning.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(MapError::Syscall {
                name: self.name.clone(),
                op: "mmap",
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: the mapping holds `count` u64 values and is 8-aligned (page-aligned);
        // the program may write them concurrently, which for a snapshot of counters is fine.
        let values = unsafe { std::slice::from_raw_parts(addr.cast::<u64>(), count) }.to_vec();
        // SAFETY: unmapping exactly what was mapped above.
        unsafe { libc::munmap(addr, len) };
        Ok(values)
    }

    /// The C types of the map's key and value, from the BTF the kernel holds for it (what
    /// `bpftool map dump` prints fields with). `None` when the map was created without BTF
    /// (a legacy `SEC("maps")` definition, or an object built without `-g`).
    pub fn btf(&self) -> Result<Option<MapTypes>, MapError> {
        let btf_error = |op: &'static str| {
            let name = self.name.clone();
            move |source| MapError::Syscall { name, op, source }
        };
        // struct bpf_map_info up to btf_value_type_id (offsets 64, 68, 72).
        let mut info = [0u8; 80];
        let fd = self.data.fd().as_fd().as_raw_fd();
        sys::obj_info(fd, &mut info).map_err(btf_error("read the info of"))?;
        let word = |at: usize| u32::from_ne_bytes(info[at..at + 4].try_into().expect("4 bytes"));
        let (btf_id, key_id, value_id) = (word(64), word(68), word(72));
        if btf_id == 0 || (key_id == 0 && value_id == 0) {
            return Ok(None);
        }
        let btf_fd = sys::btf_fd(btf_id).map_err(btf_error("open the BTF of"))?;
        // struct bpf_btf_info: btf (u64 pointer), btf_size (u32), id, name, name_len, kernel_btf.
        let mut btf_info = [0u8; 32];
        sys::obj_info(btf_fd.as_raw_fd(), &mut btf_info).map_err(btf_error("read the BTF of"))?;
        let size = u32::from_ne_bytes(btf_info[8..12].try_into().expect("4 bytes")) as usize;
        let mut raw = vec![0u8; size];
        btf_info[..8].copy_from_slice(&(raw.as_mut_ptr() as u64).to_ne_bytes());
        sys::obj_info(btf_fd.as_raw_fd(), &mut btf_info).map_err(btf_error("read the BTF of"))?;
        let btf = crate::kernel::btf::Btf::parse(&raw).map_err(|e| MapError::Info {
            name: self.name.clone(),
            reason: e.to_string(),
        })?;
        let resolve = |id: u32| -> Result<Option<CType>, MapError> {
            if id == 0 {
                return Ok(None);
            }
            btf.resolve(id).map(Some).map_err(|e| MapError::Info {
                name: self.name.clone(),
                reason: e.to_string(),
            })
        };
        Ok(Some(MapTypes {
            key: resolve(key_id)?,
            value: resolve(value_id)?,
        }))
    }

    /// How many values a lookup returns: the possible CPUs for a per-CPU map, else 1.
    pub fn cpus(&self) -> Result<usize, MapError> {
        if !self.kind.is_per_cpu() {
            return Ok(1);
        }
        aya::util::nr_cpus().map_err(|(what, e)| MapError::Info {
            name: self.name.clone(),
            reason: format!("{what}: {e}"),
        })
    }

    fn check_size(&self, what: &'static str, got: usize, want: usize) -> Result<(), MapError> {
        if got == want {
            Ok(())
        } else {
            Err(MapError::Size {
                name: self.name.clone(),
                what,
                got,
                want,
            })
        }
    }
}

fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(d)
        | Map::ArrayOfMaps(d)
        | Map::BloomFilter(d)
        | Map::CgroupArray(d)
        | Map::CgroupStorage(d)
        | Map::CgrpStorage(d)
        | Map::CpuMap(d)
        | Map::DevMap(d)
        | Map::DevMapHash(d)
        | Map::HashMap(d)
        | Map::HashOfMaps(d)
        | Map::InodeStorage(d)
        | Map::LpmTrie(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuCgroupStorage(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerfEventArray(d)
        | Map::ProgramArray(d)
        | Map::ReusePortSockArray(d)
        | Map::Queue(d)
        | Map::RingBuf(d)
        | Map::SkStorage(d)
        | Map::SockHash(d)
        | Map::SockMap(d)
        | Map::Stack(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d)
        | Map::XskMap(d) => d,
    }
}

/// The `bpf(2)` element commands, on raw byte buffers.
mod sys {
    use std::{io, os::fd::RawFd};

    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
    const BPF_ANY: u64 = 0;

    /// The `map_elem` member of `union bpf_attr`.
    #[repr(C)]
    #[derive(Default)]
    struct MapElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value_or_next_key: u64,
        flags: u64,
    }

    fn bpf(cmd: libc::c_long, attr: &MapElemAttr) -> io::Result<()> {
        // SAFETY: attr is a valid, fully initialised bpf_attr prefix; the kernel reads exactly
        // size_of::<MapElemAttr>() bytes and the pointers in it outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                std::ptr::from_ref(attr),
                std::mem::size_of::<MapElemAttr>(),
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    pub(super) fn lookup(fd: RawFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
        bpf(
            BPF_MAP_LOOKUP_ELEM,
            &MapElemAttr {
                map_fd: fd as u32,
                key: key.as_ptr() as u64,
                value_or_next_key: value.as_mut_ptr() as u64,
                ..Default::default()
            },
        )
    }

    pub(super) fn update(fd: RawFd, key: &[u8], value: &[u8]) -> io::Result<()> {
        bpf(
            BPF_MAP_UPDATE_ELEM,
            &MapElemAttr {
                map_fd: fd as u32,
                key: key.as_ptr() as u64,
                value_or_next_key: value.as_ptr() as u64,
                flags: BPF_ANY,
                ..Default::default()
            },
        )
    }

    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;

    /// The `info` member of `union bpf_attr`.
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }

    /// The `BPF_*_GET_FD_BY_ID` members of `union bpf_attr`.
    #[repr(C)]
    struct GetFdAttr {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }

    /// `BPF_OBJ_GET_INFO_BY_FD` into `info`; the kernel fills at most `info.len()` bytes.
    pub(super) fn obj_info(fd: RawFd, info: &mut [u8]) -> io::Result<()> {
        let attr = InfoAttr {
            bpf_fd: fd as u32,
            info_len: info.len() as u32,
            info: info.as_mut_ptr() as u64,
        };
        // SAFETY: attr is a valid bpf_attr prefix; `info` outlives the call and the kernel
        // writes at most info_len bytes into it.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_OBJ_GET_INFO_BY_FD,
                std::ptr::from_ref(&attr),
                std::mem::size_of::<InfoAttr>(),
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// A file descriptor of the BTF object with this id.
    pub(super) fn btf_fd(id: u32) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd as _;
        let attr = GetFdAttr {
            id,
            next_id: 0,
            open_flags: 0,
        };
        // SAFETY: attr is a valid bpf_attr prefix of the size given.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_BTF_GET_FD_BY_ID,
                std::ptr::from_ref(&attr),
                std::mem::size_of::<GetFdAttr>(),
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor to us, and nothing else owns it.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(ret as RawFd) })
    }

    pub(super) fn next_key(fd: RawFd, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<()> {
        bpf(
            BPF_MAP_GET_NEXT_KEY,
            &MapElemAttr {
                map_fd: fd as u32,
                key: key.map_or(0, |k| k.as_ptr() as u64),
                value_or_next_key: next.as_mut_ptr() as u64,
                ..Default::default()
            },
        )
    }
}

/// A ring buffer taken out of a loaded program, consumed in batches.
pub struct RingBufReader {
    name: String,
    ring: aya::maps::RingBuf<MapData>,
}

impl fmt::Debug for RingBufReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBufReader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// Takes the `BPF_MAP_TYPE_RINGBUF` called `name` out of the program, for reading events.
    pub fn take_ringbuf(&mut self, name: &str) -> Result<RingBufReader, MapError> {
        let object = self.object().to_owned();
        let ebpf = self.ebpf_mut();
        let available: Vec<String> = ebpf.maps().map(|(n, _)| n.to_owned()).collect();
        let map = ebpf.take_map(name).ok_or(MapError::NotFound {
            name: name.to_owned(),
            object,
            available,
        })?;
        let ring = aya::maps::RingBuf::try_from(map).map_err(|e| MapError::Info {
            name: name.to_owned(),
            reason: format!("not a ring buffer: {e}"),
        })?;
        Ok(RingBufReader {
            name: name.to_owned(),
            ring,
        })
    }
}

impl RingBufReader {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands every record available now to `f`, and returns how many there were. Bounded by
    /// `max` so a producer that never stops cannot keep the caller here.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next() else {
                break;
            };
            f(&item);
            n += 1;
        }
        n
    }
}
