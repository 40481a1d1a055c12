//! C types of map keys and values, read from BTF, so scenario files can name struct fields
//! (`value = { rx_packets = 100 }`) and errors can say what a map holds
//! (`struct datarec { __u64 rx_packets; __u64 rx_bytes; }`, 16 bytes).
//!
//! aya-obj parses BTF but keeps its type table to itself, so this is a small reader of the
//! format the kernel documents in `Documentation/bpf/btf.rst`: a header, a table of types
//! (each a 12-byte `struct btf_type` and a kind-specific tail), and a string table. It reads
//! the BTF the kernel holds for a loaded map (see [`crate::kernel::maps::ProgramMap::btf`]) or the
//! `.BTF` section of an object, and resolves one type into a [`CType`] tree: integers, enums,
//! structs and unions with member names and byte offsets, arrays, and everything else as
//! opaque bytes of a known size.

use std::fmt;

use thiserror::Error;

/// An error reading BTF.
#[derive(Debug, Error)]
pub enum BtfError {
    /// The data is not BTF or is cut short.
    #[error("failed to read BTF: {0}")]
    Malformed(String),
    /// A type id that the table does not hold.
    #[error("failed to read BTF: type id {0} is not in the type table")]
    NoType(u32),
    /// Types nested deeper than a C program would (or a loop).
    #[error("failed to read BTF: type id {0} nests more than {MAX_DEPTH} levels deep")]
    TooDeep(u32),
}

/// How deep typedefs, qualifiers, structs and arrays may nest before the type is refused.
const MAX_DEPTH: usize = 32;

const BTF_MAGIC: u16 = 0xeb9f;

/// BTF kinds (`BTF_KIND_*`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// One entry of the type table, as stored.
#[derive(Clone, Debug)]
struct RawType {
    name: String,
    kind: u32,
    kind_flag: bool,
    /// `size` for sized kinds, the referenced type for the others.
    size_or_type: u32,
    tail: Tail,
}

#[derive(Clone, Debug)]
enum Tail {
    None,
    Int {
        signed: bool,
        bit_offset: u32,
        bits: u32,
    },
    Array {
        elem: u32,
        len: u32,
    },
    Members(Vec<RawMember>),
    EnumSigned(bool),
    DataSec(Vec<(u32, u32, u32)>),
}

#[derive(Clone, Debug)]
struct RawMember {
    name: String,
    ty: u32,
    /// Bit offset, and the bitfield size when the struct has `kind_flag` set.
    offset: u32,
}

/// A parsed BTF blob: the type table (id 0 is `void`) and the names in it.
#[derive(Clone, Debug)]
pub struct Btf {
    types: Vec<RawType>,
}

impl Btf {
    /// Parses raw BTF (a `.BTF` section, or what the kernel returns for a BTF object), in
    /// the byte order of this machine.
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        let mut r = Reader { data, at: 0 };
        let magic = r.u16()?;
        if magic != BTF_MAGIC {
            return Err(BtfError::Malformed(format!(
                "bad magic {magic:#06x} (want {BTF_MAGIC:#06x}, in this machine's byte order)"
            )));
        }
        let _version = r.u8()?;
        let _flags = r.u8()?;
        let hdr_len = r.u32()? as usize;
        let type_off = r.u32()? as usize;
        let type_len = r.u32()? as usize;
        let str_off = r.u32()? as usize;
        let str_len = r.u32()? as usize;
        let section = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|start| Some((start, start.checked_add(len)?)))
                .filter(|(_, end)| *end <= data.len())
                .map(|(start, end)| &data[start..end])
                .ok_or_else(|| BtfError::Malformed(format!("the {what} section runs past the end")))
        };
        let strings = section(str_off, str_len, "string")?;
        let string = |off: u32| -> Result<String, BtfError> {
            let rest = strings
                .get(off as usize..)
                .ok_or_else(|| BtfError::Malformed(format!("string offset {off} out of range")))?;
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        };
        let mut r = Reader {
            data: section(type_off, type_len, "type")?,
            at: 0,
        };
        let mut types = vec![RawType {
            name: "void".into(),
            kind: 0,
            kind_flag: false,
            size_or_type: 0,
            tail: Tail::None,
        }];
        while r.at < r.data.len() {
            let name = string(r.u32()?)?;
            let info = r.u32()?;
            let size_or_type = r.u32()?;
            let vlen = info & 0xffff;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let tail = match kind {
                kind::INT => {
                    let enc = r.u32()?;
                    Tail::Int {
                        signed: (enc >> 24) & 1 == 1,
                        bit_offset: (enc >> 16) & 0xff,
                        bits: enc & 0xff,
                    }
                }
                kind::ARRAY => {
                    let elem = r.u32()?;
                    let _index = r.u32()?;
                    let len = r.u32()?;
                    Tail::Array { elem, len }
                }
                kind::STRUCT | kind::UNION => {
                    let mut members = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        let name = string(r.u32()?)?;
                        let ty = r.u32()?;
                        let offset = r.u32()?;
                        members.push(RawMember { name, ty, offset });
                    }
                    Tail::Members(members)
                }
                kind::ENUM => {
                    r.skip(8 * vlen as usize)?;
                    Tail::EnumSigned(kind_flag)
                }
                kind::ENUM64 => {
                    r.skip(12 * vlen as usize)?;
                    Tail::EnumSigned(kind_flag)
                }
                kind::FUNC_PROTO => {
                    r.skip(8 * vlen as usize)?;
                    Tail::None
                }
                kind::VAR | kind::DECL_TAG => {
                    r.skip(4)?;
                    Tail::None
                }
                kind::DATASEC => {
                    let mut vars = Vec::with_capacity(vlen as usize);
                    for _ in 0..vlen {
                        vars.push((r.u32()?, r.u32()?, r.u32()?));
                    }
                    Tail::DataSec(vars)
                }
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => Tail::None,
                other => {
                    return Err(BtfError::Malformed(format!(
                        "type id {} has unknown kind {other}",
                        types.len()
                    )));
                }
            };
            types.push(RawType {
                name,
                kind,
                kind_flag,
                size_or_type,
                tail,
            });
        }
        Ok(Self { types })
    }

    fn raw(&self, id: u32) -> Result<&RawType, BtfError> {
        self.types.get(id as usize).ok_or(BtfError::NoType(id))
    }

    /// The key and value type ids of the map `name` of a BTF-defined map section (`.maps`):
    /// the types behind its `__type(key, ...)` and `__type(value, ...)`. `None` if no such
    /// map is declared there; an id is `None` when the map gives only a size.
    pub fn map_type_ids(&self, name: &str) -> Option<(Option<u32>, Option<u32>)> {
        let sec = self
            .types
            .iter()
            .find(|t| t.kind == kind::DATASEC && t.name == ".maps")?;
        let Tail::DataSec(vars) = &sec.tail else {
            return None;
        };
        let var = vars.iter().find_map(|(id, _, _)| {
            let t = self.raw(*id).ok()?;
            (t.kind == kind::VAR && t.name == name).then_some(t.size_or_type)
        })?;
        let def = self.raw(self.skip_modifiers(var).ok()?).ok()?;
        let Tail::Members(members) = &def.tail else {
            return None;
        };
        let pointee = |field: &str| {
            let m = members.iter().find(|m| m.name == field)?;
            let ptr = self.raw(m.ty).ok()?;
            (ptr.kind == kind::PTR).then_some(ptr.size_or_type)
        };
        Some((pointee("key"), pointee("value")))
    }

    fn skip_modifiers(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            let t = self.raw(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type;
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// The C type with this id, resolved through typedefs and qualifiers.
    pub fn resolve(&self, id: u32) -> Result<CType, BtfError> {
        self.resolve_at(id, 0)
    }

    fn resolve_at(&self, id: u32, depth: usize) -> Result<CType, BtfError> {
        if depth > MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        // The outermost name is the one the C source wrote (`__u64`, `__be16`).
        let first = self.raw(id)?;
        let spelled = (first.kind == kind::TYPEDEF).then(|| first.name.clone());
        let mut typedefs = Vec::new();
        let mut cur = id;
        for _ in 0..MAX_DEPTH {
            let t = self.raw(cur)?;
            match t.kind {
                kind::TYPEDEF => {
                    typedefs.push(t.name.clone());
                    cur = t.size_or_type;
                }
                kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    cur = t.size_or_type;
                }
                _ => break,
            }
        }
        let t = self.raw(cur)?;
        let tagged = |word: &str| {
            if t.name.is_empty() {
                format!("{word} (anon)")
            } else {
                format!("{word} {}", t.name)
            }
        };
        let ty = match (&t.tail, t.kind) {
            (
                Tail::Int {
                    signed,
                    bits,
                    bit_offset,
                },
                kind::INT,
            ) => {
                // The kernel's network-order typedefs are the only record of byte order.
                let big_endian = typedefs.iter().any(|n| n.starts_with("__be"));
                CType::Int {
                    name: spelled.unwrap_or_else(|| t.name.clone()),
                    size: t.size_or_type as usize,
                    signed: *signed,
                    big_endian,
                    bitfield: *bits != t.size_or_type * 8 || *bit_offset != 0,
                }
            }
            (Tail::EnumSigned(signed), kind::ENUM | kind::ENUM64) => CType::Int {
                name: spelled.unwrap_or_else(|| tagged("enum")),
                size: t.size_or_type as usize,
                signed: *signed,
                big_endian: false,
                bitfield: false,
            },
            (Tail::Array { elem, len }, kind::ARRAY) => {
                let elem = self.resolve_at(*elem, depth + 1)?;
                CType::Array {
                    elem: Box::new(elem),
                    len: *len as usize,
                }
            }
            (Tail::Members(members), kind::STRUCT | kind::UNION) => {
                let union = t.kind == kind::UNION;
                let mut out = Vec::with_capacity(members.len());
                for m in members {
                    let (bit_offset, bitfield_bits) = if t.kind_flag {
                        (m.offset & 0x00ff_ffff, m.offset >> 24)
                    } else {
                        (m.offset, 0)
                    };
                    let ty = self.resolve_at(m.ty, depth + 1)?;
                    let bitfield = bitfield_bits != 0
                        || bit_offset % 8 != 0
                        || matches!(ty, CType::Int { bitfield: true, .. });
                    out.push(Member {
                        name: m.name.clone(),
                        offset: (bit_offset / 8) as usize,
                        bitfield,
                        ty,
                    });
                }
                CType::Struct {
                    name: spelled.unwrap_or_else(|| tagged(if union { "union" } else { "struct" })),
                    size: t.size_or_type as usize,
                    union,
                    members: out,
                }
            }
            _ => {
                let size = match t.kind {
                    kind::PTR => 8,
                    kind::FLOAT => t.size_or_type as usize,
                    _ => 0,
                };
                let name = match t.kind {
                    kind::PTR => "void *".to_owned(),
                    _ if t.name.is_empty() => "(anon)".to_owned(),
                    _ => t.name.clone(),
                };
                CType::Opaque {
                    name: spelled.unwrap_or(name),
                    size,
                }
            }
        };
        Ok(ty)
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BtfError> {
        let bytes = self
            .data
            .get(self.at..self.at + N)
            .ok_or_else(|| BtfError::Malformed(format!("cut short at byte {}", self.at)))?;
        self.at += N;
        Ok(bytes.try_into().expect("slice of N bytes"))
    }
    fn u8(&mut self) -> Result<u8, BtfError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, BtfError> {
        Ok(u16::from_ne_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, BtfError> {
        Ok(u32::from_ne_bytes(self.take()?))
    }
    fn skip(&mut self, n: usize) -> Result<(), BtfError> {
        if self.data.len() - self.at < n {
            return Err(BtfError::Malformed(format!(
                "cut short at byte {}",
                self.at
            )));
        }
        self.at += n;
        Ok(())
    }
}

/// A C type as a map key or value holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CType {
    /// An integer, enum or `_Bool`, `size` bytes.
    Int {
        /// As the source spelled it (`__u64`, `__be16`, `unsigned int`, `enum xdp_action`).
        name: String,
        /// Bytes.
        size: usize,
        /// Signed.
        signed: bool,
        /// Network byte order: the type is, or goes through, a `__be*` typedef.
        big_endian: bool,
        /// Fewer bits than its bytes hold (a bitfield's type).
        bitfield: bool,
    },
    /// A struct or union.
    Struct {
        /// `struct datarec`, or the typedef it was spelled with.
        name: String,
        /// Bytes.
        size: usize,
        /// A union: every member at offset 0.
        union: bool,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// `elem[len]`.
    Array {
        /// The element type.
        elem: Box<CType>,
        /// Elements.
        len: usize,
    },
    /// Anything else (pointers, floats): bytes of a known size, compared as bytes.
    Opaque {
        /// The type's name.
        name: String,
        /// Bytes.
        size: usize,
    },
}

/// A member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name (empty for an anonymous struct or union member).
    pub name: String,
    /// Byte offset in the struct.
    pub offset: usize,
    /// A bitfield (or at a bit offset that is not a byte boundary).
    pub bitfield: bool,
    /// Its type.
    pub ty: CType,
}

impl CType {
    /// Bytes the type takes.
    pub fn size(&self) -> usize {
        match self {
            CType::Int { size, .. } | CType::Struct { size, .. } | CType::Opaque { size, .. } => {
                *size
            }
            CType::Array { elem, len } => elem.size() * len,
        }
    }

    /// The members of a struct or union, anonymous members' members brought up a level as C
    /// does; empty for other types.
    pub fn fields(&self) -> Vec<Member> {
        let CType::Struct { members, .. } = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in members {
            if m.name.is_empty() {
                for inner in m.ty.fields() {
                    out.push(Member {
                        offset: m.offset + inner.offset,
                        ..inner
                    });
                }
            } else {
                out.push(m.clone());
            }
        }
        out
    }

    /// The declaration of `name` with this type: `__u64 rx_packets`, `__u64 len_hist[4]`.
    fn declare(&self, name: &str) -> String {
        match self {
            CType::Array { elem, len } => elem.declare(&format!("{name}[{len}]")),
            CType::Int { name: ty, .. } | CType::Opaque { name: ty, .. } => format!("{ty} {name}"),
            CType::Struct { name: ty, .. } => format!("{ty} {name}"),
        }
    }

    /// The type spelled as C: `__u32`, `struct datarec { __u64 rx_packets; __u64 rx_bytes; }`
    /// (struct members one level deep; nested structs by name).
    pub fn c_text(&self) -> String {
        match self {
            CType::Struct { name, members, .. } => {
                let body: Vec<String> = members
                    .iter()
                    .map(|m| format!("{};", m.ty.declare(&m.name)))
                    .collect();
                format!("{name} {{ {} }}", body.join(" "))
            }
            CType::Array { .. } => self.declare("").trim_start().to_owned(),
            CType::Int { name, .. } | CType::Opaque { name, .. } => name.clone(),
        }
    }
}

impl fmt::Display for CType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.c_text(), self.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `.BTF` of a bundled object, as aya-obj read it from the ELF file.
    fn object_btf(name: &str) -> Btf {
        let bytes = crate::kernel::program::ObjectSource::Bundled(name.into())
            .bytes()
            .expect("bundled object");
        let object = aya_obj::Object::parse(&bytes).expect("object parses");
        Btf::parse(&object.btf.expect("object has BTF").to_bytes()).expect("BTF parses")
    }

    #[test]
    fn datarec_of_xdp_stats() {
        let btf = object_btf("xdp_stats");
        let (key, value) = btf.map_type_ids("xdp_stats_map").expect("map declared");
        let key = btf.resolve(key.expect("key type")).expect("key resolves");
        let value = btf
            .resolve(value.expect("value type"))
            .expect("value resolves");
        assert_eq!(key.to_string(), "__u32 (4 bytes)");
        assert_eq!(
            value.to_string(),
            "struct datarec { __u64 rx_packets; __u64 rx_bytes; } (16 bytes)"
        );
        let fields = value.fields();
        assert_eq!(fields[1].name, "rx_bytes");
        assert_eq!(fields[1].offset, 8);
        assert!(btf.map_type_ids("no_such_map").is_none());
    }

    #[test]
    fn nested_struct_array_and_network_order() {
        let btf = object_btf("xdp_stats");
        let (key, value) = btf.map_type_ids("port_stats").expect("map declared");
        let key = btf.resolve(key.expect("key type")).expect("key resolves");
        assert_eq!(
            key.to_string(),
            "struct port_key { __be16 dport; __u8 proto; __u8 action; } (4 bytes)"
        );
        let CType::Int { big_endian, .. } = &key.fields()[0].ty else {
            panic!("dport is an integer");
        };
        assert!(big_endian, "__be16 is network order");
        let value = btf
            .resolve(value.expect("value type"))
            .expect("value resolves");
        assert_eq!(
            value.c_text(),
            "struct port_rec { struct datarec counts; __u64 len_hist[4]; }"
        );
        assert_eq!(value.size(), 48);
        assert_eq!(value.fields()[1].offset, 16);
    }

    #[test]
    fn anonymous_members_are_named_directly() {
        let int = |name: &str| CType::Int {
            name: name.into(),
            size: 4,
            signed: false,
            big_endian: false,
            bitfield: false,
        };
        let member = |name: &str, offset, ty| Member {
            name: name.into(),
            offset,
            bitfield: false,
            ty,
        };
        let inner = CType::Struct {
            name: "union (anon)".into(),
            size: 4,
            union: true,
            members: vec![member("a", 0, int("__u32")), member("b", 0, int("__u32"))],
        };
        let outer = CType::Struct {
            name: "struct s".into(),
            size: 8,
            union: false,
            members: vec![member("x", 0, int("__u32")), member("", 4, inner)],
        };
        let names: Vec<(String, usize)> = outer
            .fields()
            .into_iter()
            .map(|m| (m.name, m.offset))
            .collect();
        assert_eq!(names, [("x".into(), 0), ("a".into(), 4), ("b".into(), 4)]);
    }

    #[test]
    fn refuses_what_is_not_btf() {
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(&[0u8; 24]).is_err());
        let btf = object_btf("xdp_count");
        let mut bytes = aya_obj::Object::parse(
            &crate::kernel::program::ObjectSource::Bundled("xdp_count".into())
                .bytes()
                .expect("bundled"),
        )
        .expect("parses")
        .btf
        .expect("BTF")
        .to_bytes();
        bytes.truncate(bytes.len() / 2);
        assert!(Btf::parse(&bytes).is_err(), "a cut blob is refused");
        assert!(btf.resolve(100_000).is_err());
    }
}
