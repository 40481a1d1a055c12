//! [`Map`]: a program's map read and written with Rust types instead of bytes.
//!
//! Keys and values are plain-old-data types ([`Pod`]): integers, arrays of them, and the
//! user's `#[repr(C)]` structs that mirror the program's. Per-CPU maps are summed
//! ([`Map::get_u64`], [`Map::field`]) or read one value per CPU ([`Map::get_per_cpu`]). A field
//! of a struct value can be read by its C name, from the BTF the kernel holds for the map
//! ([`Map::field`]), without a Rust mirror of the struct.

use std::cell::Ref;

use crate::{
    kernel::btf::CType,
    kernel::maps::{MapKind, MapValue, ProgramMap},
    kernel::program::Program as LoadedProgram,
};

use super::{
    error::{Error, Result},
    lab::Lab,
};

/// A plain-old-data type: any bit pattern of its size is a valid value, and it has no
/// padding, so it can be copied to and from a map's key or value bytes.
///
/// Implemented for the integer types and arrays of them. For a struct mirroring the
/// program's (every field an integer or array, no padding, `#[repr(C)]`), implement it:
///
/// ```
/// #[derive(Clone, Copy, Debug, Default)]
/// #[repr(C)]
/// struct VerdictStats {
///     packets: u64,
///     bytes: u64,
/// }
/// // SAFETY: repr(C), two u64 fields, no padding; every bit pattern is a value.
/// unsafe impl xdplab::Pod for VerdictStats {}
/// ```
///
/// # Safety
///
/// The type must be `#[repr(C)]` (or a primitive), have no padding bytes, and accept any bit
/// pattern of its size.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: integers have no padding and accept every bit pattern.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);
// SAFETY: an array of Pod elements has no padding between them.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

fn to_bytes<T: Pod>(value: &T) -> Vec<u8> {
    // SAFETY: Pod types have no padding, so all size_of::<T>() bytes are initialised.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn from_bytes<T: Pod>(bytes: &[u8]) -> Option<T> {
    (bytes.len() >= size_of::<T>()).then(|| {
        // SAFETY: at least size_of::<T>() bytes are read, unaligned; any bit pattern is a T.
        unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
    })
}

/// One map of a loaded program, by name (see [`Program::map`](super::Program::map)).
///
/// ```no_run
/// # fn main() -> xdplab::Result<()> {
/// # let lab = xdplab::Lab::new()?;
/// # let prog = lab.load("prog.bpf.o")?.program("xdp_prog")?;
/// let stats = prog.map("stats")?;
/// let total: u64 = stats.get_u64(0)?; // summed over CPUs for a per-CPU map
/// let packets = stats.field(1, "packets")?; // a struct value's field, by its C name
/// let entries: Vec<(u32, u64)> = stats.entries()?;
/// # let _ = (total, packets, entries);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Map<'p> {
    program: Ref<'p, LoadedProgram>,
    name: String,
    lab: &'p Lab,
}

impl<'p> Map<'p> {
    /// The map `name` of `program`, checked to exist.
    pub(crate) fn open(lab: &'p Lab, program: Ref<'p, LoadedProgram>, name: &str) -> Result<Self> {
        program.map(name)?;
        Ok(Self {
            program,
            name: name.to_owned(),
            lab,
        })
    }

    fn handle(&self) -> Result<ProgramMap<'_>> {
        Ok(self.program.map(&self.name)?)
    }

    fn value_error(&self, reason: impl Into<String>) -> Error {
        Error::MapValue {
            map: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The map's type.
    pub fn kind(&self) -> Result<MapKind> {
        Ok(self.handle()?.kind())
    }

    /// The lower-level handle, with keys and values as bytes.
    pub fn raw(&self) -> Result<ProgramMap<'_>> {
        self.handle()
    }

    fn key_bytes<K: Pod>(&self, map: &ProgramMap<'_>, key: &K) -> Result<Vec<u8>> {
        if size_of::<K>() != map.key_size() {
            return Err(self.value_error(format!(
                "a {}-byte key was given ({}), the map's keys are {} bytes",
                size_of::<K>(),
                std::any::type_name::<K>(),
                map.key_size()
            )));
        }
        Ok(to_bytes(key))
    }

    fn lookup<K: Pod>(&self, key: &K) -> Result<Option<MapValue>> {
        let map = self.handle()?;
        let bytes = self.key_bytes(&map, key)?;
        Ok(map.lookup(&bytes)?)
    }

    fn present<K: Pod>(&self, key: &K) -> Result<MapValue> {
        self.lookup(key)?
            .ok_or_else(|| self.value_error(format!("key {} is absent", hex(&to_bytes(key)))))
    }

    /// The value at `key` as an unsigned integer (of up to 8 bytes, little-endian), summed
    /// over CPUs for a per-CPU map. An absent key is an error; [`Self::get`] returns `None`.
    pub fn get_u64<K: Pod>(&self, key: K) -> Result<u64> {
        let value = self.present(&key)?;
        value
            .sum_u64()
            .ok_or_else(|| self.value_error("its values are wider than 8 bytes; use get::<K, V>"))
    }

    /// The value at `key` on each possible CPU, as unsigned integers (a per-CPU map).
    pub fn per_cpu_u64<K: Pod>(&self, key: K) -> Result<Vec<u64>> {
        match self.present(&key)? {
            MapValue::PerCpu(values) => values
                .iter()
                .map(|v| crate::kernel::maps::le_u64(v))
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| self.value_error("its values are wider than 8 bytes")),
            MapValue::Single(_) => Err(self.value_error("it is not a per-CPU map")),
        }
    }

    /// The value at `key`, `None` if absent. Not for per-CPU maps: see
    /// [`Self::get_per_cpu`].
    pub fn get<K: Pod, V: Pod>(&self, key: K) -> Result<Option<V>> {
        match self.lookup(&key)? {
            None => Ok(None),
            Some(MapValue::Single(bytes)) => self.decode(&bytes).map(Some),
            Some(MapValue::PerCpu(_)) => Err(self.value_error(
                "it is a per-CPU map: read it with get_per_cpu, get_u64 (summed) or field (summed)",
            )),
        }
    }

    /// The value at `key` on each possible CPU, `None` if absent (a per-CPU map).
    pub fn get_per_cpu<K: Pod, V: Pod>(&self, key: K) -> Result<Option<Vec<V>>> {
        match self.lookup(&key)? {
            None => Ok(None),
            Some(MapValue::PerCpu(values)) => values
                .iter()
                .map(|v| self.decode(v))
                .collect::<Result<Vec<V>>>()
                .map(Some),
            Some(MapValue::Single(_)) => Err(self.value_error("it is not a per-CPU map; use get")),
        }
    }

    fn decode<V: Pod>(&self, bytes: &[u8]) -> Result<V> {
        if bytes.len() != size_of::<V>() {
            return Err(self.value_error(format!(
                "its values are {} bytes, {} is {}",
                bytes.len(),
                std::any::type_name::<V>(),
                size_of::<V>()
            )));
        }
        from_bytes(bytes).ok_or_else(|| self.value_error("value too short"))
    }

    /// The field `field` of the struct value at `key`, found by its C name in the map's BTF,
    /// as an unsigned integer (`__be*` fields in host order), summed over CPUs for a per-CPU
    /// map.
    pub fn field<K: Pod>(&self, key: K, field: &str) -> Result<u64> {
        let map = self.handle()?;
        let types = map
            .btf()?
            .ok_or_else(|| self.value_error("it has no BTF (build the object with -g)"))?;
        let ty = types
            .value
            .ok_or_else(|| self.value_error("its BTF does not describe its values"))?;
        let fields = ty.fields();
        let member = fields.iter().find(|m| m.name == field).ok_or_else(|| {
            let names: Vec<&str> = fields.iter().map(|m| m.name.as_str()).collect();
            self.value_error(format!(
                "its values ({}) have no field {field:?} (they have: {})",
                ty.c_text(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })?;
        let CType::Int {
            size, big_endian, ..
        } = member.ty
        else {
            return Err(self.value_error(format!(
                "field {field:?} is {}, not an integer",
                member.ty.c_text()
            )));
        };
        if member.bitfield || size > 8 {
            return Err(self.value_error(format!(
                "field {field:?} is a bitfield or wider than 8 bytes"
            )));
        }
        let read = |value: &[u8]| -> Result<u64> {
            let bytes = value
                .get(member.offset..member.offset + size)
                .ok_or_else(|| {
                    self.value_error(format!("field {field:?} lies outside the value"))
                })?;
            let mut ordered = bytes.to_vec();
            if big_endian {
                ordered.reverse();
            }
            Ok(crate::kernel::maps::le_u64(&ordered).unwrap_or(0))
        };
        match self.present(&key)? {
            MapValue::Single(bytes) => read(&bytes),
            MapValue::PerCpu(values) => values
                .iter()
                .try_fold(0u64, |sum, v| Ok(sum.wrapping_add(read(v)?))),
        }
    }

    /// Writes `value` at `key` (`bpftool map update`); for a per-CPU map, on every CPU.
    pub fn set<K: Pod, V: Pod>(&self, key: K, value: V) -> Result<()> {
        let map = self.handle()?;
        let key = self.key_bytes(&map, &key)?;
        if size_of::<V>() != map.value_size() {
            return Err(self.value_error(format!(
                "a {}-byte value was given ({}), the map's values are {} bytes",
                size_of::<V>(),
                std::any::type_name::<V>(),
                map.value_size()
            )));
        }
        Ok(map.update(&key, &to_bytes(&value))?)
    }

    /// Writes the ifindex of the lab's `interface` (`NAMESPACE:INTERFACE`) at `key`, from
    /// inside that interface's namespace: a `DEVMAP` resolves the ifindex in the namespace of
    /// the process that writes it (the redirect target of `bpf_redirect_map`). A value wider
    /// than 4 bytes (`struct bpf_devmap_val`) gets the ifindex first and zeros after it.
    #[doc(alias = "BPF_MAP_TYPE_DEVMAP")]
    pub fn set_interface<K: Pod>(&self, key: K, interface: &str) -> Result<()> {
        let end = self.lab.end(interface)?;
        let (_, veth) = self
            .lab
            .topology()
            .interface(&end.netns, Some(&end.interface))
            .ok_or_else(|| Error::Usage(format!("find interface {end} in the lab")))?;
        let map = self.handle()?;
        let key = self.key_bytes(&map, &key)?;
        if map.value_size() < 4 {
            return Err(self.value_error(format!(
                "its values are {} bytes, too small for an ifindex",
                map.value_size()
            )));
        }
        let mut value = vec![0u8; map.value_size()];
        value[..4].copy_from_slice(&veth.ifindex().to_ne_bytes());
        let netns = veth.netns();
        netns
            .run(|| map.update(&key, &value))
            .map_err(|e| Error::Usage(format!("enter the namespace of {end}: {e}")))??;
        Ok(())
    }

    /// Every key in the map (arrays: every index), in the kernel's order.
    pub fn keys<K: Pod>(&self) -> Result<Vec<K>> {
        let map = self.handle()?;
        if size_of::<K>() != map.key_size() {
            return Err(self.value_error(format!(
                "{} is {} bytes, the map's keys are {}",
                std::any::type_name::<K>(),
                size_of::<K>(),
                map.key_size()
            )));
        }
        map.keys()?
            .iter()
            .map(|k| from_bytes(k).ok_or_else(|| self.value_error("key too short")))
            .collect()
    }

    /// Every entry as `(key, value)`, values as unsigned integers summed over CPUs for a
    /// per-CPU map (counters keyed by protocol, port, ...).
    pub fn entries<K: Pod>(&self) -> Result<Vec<(K, u64)>> {
        self.keys::<K>()?
            .into_iter()
            .map(|k| Ok((k, self.get_u64(k)?)))
            .collect()
    }

    /// Every entry as `(key, value)` with typed values. Not for per-CPU maps.
    pub fn entries_as<K: Pod, V: Pod>(&self) -> Result<Vec<(K, V)>> {
        let mut out = Vec::new();
        for key in self.keys::<K>()? {
            // A key deleted between listing and reading is skipped, as bpftool does.
            if let Some(value) = self.get::<K, V>(key)? {
                out.push((key, value));
            }
        }
        Ok(out)
    }
}

fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits} (bytes as in memory)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_round_trips_through_bytes() {
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[repr(C)]
        struct Stats {
            packets: u64,
            bytes: u64,
        }
        // SAFETY: repr(C), two u64, no padding.
        unsafe impl Pod for Stats {}
        let stats = Stats {
            packets: 3,
            bytes: 180,
        };
        let bytes = to_bytes(&stats);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..8], &3u64.to_ne_bytes());
        assert_eq!(from_bytes::<Stats>(&bytes), Some(stats));
        assert_eq!(from_bytes::<u32>(&[1, 0]), None);
        assert_eq!(
            to_bytes(&[1u16, 2]),
            [1u16.to_ne_bytes(), 2u16.to_ne_bytes()].concat()
        );
    }
}
