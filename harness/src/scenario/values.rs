//! Map keys and values of any shape, checked against what the map holds.
//!
//! A scenario's key or value ([`MapBytes`]) is turned into bytes (to write or look up) or
//! into a list of [`Check`]s (to judge what was read): one per integer field, compared as an
//! integer; one per byte run (hex, addresses, padding), compared as bytes. Field names come
//! from the map's BTF ([`crate::kernel::maps::ProgramMap::btf`]); typed fields and hex need none.
//!
//! On a per-CPU map, `value` is judged on the sum over CPUs, field by field (so every field
//! it names must be an integer), and `per-cpu` judges each CPU's value like a plain map's.
//! Errors say what the map holds (its C type and size, from BTF) and which forms it takes.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::schema::{FieldValue, IfaceRef, MapBytes, NamedField, StructField};
use crate::kernel::btf::CType;
use crate::kernel::maps::{MapKind, MapTypes, ProgramMap};

/// What a map holds: its kind, sizes and, when it has BTF, the C types of key and value.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    name: String,
    kind: MapKind,
    key_size: usize,
    value_size: usize,
    types: Option<MapTypes>,
    /// Why the map's BTF could not be read, if it could not: a map with unreadable BTF is
    /// still checked in the forms that need none.
    btf_error: Option<String>,
}

/// How a [`Check`] reads its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum How {
    /// An integer of the check's size.
    Int { signed: bool, big_endian: bool },
    /// Bytes, compared as they are (never summed).
    Bytes,
}

/// One thing to compare: `size` bytes at `offset`, read as `how`, must equal `want`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Check {
    /// The field's name for messages (`rx_packets`, `counts.rx_bytes`, `len_hist[2]`);
    /// empty for a whole value.
    path: String,
    offset: usize,
    size: usize,
    how: How,
    want: Want,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    Int(i128),
    Bytes(Vec<u8>),
}

/// A field whose value differed: `rx_packets expected 100, got 99`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The field (empty for the whole value).
    pub path: String,
    /// Expected, as text.
    pub want: String,
    /// Found, as text.
    pub got: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "expected {}, got {}", self.want, self.got)
        } else {
            write!(f, "{} expected {}, got {}", self.path, self.want, self.got)
        }
    }
}

type Ifindex<'a> = &'a dyn Fn(&IfaceRef) -> Result<u32, String>;

impl Shape {
    /// The shape of `map`, with its BTF types when the kernel holds them.
    pub(crate) fn of(map: &ProgramMap<'_>) -> Result<Self, crate::kernel::maps::MapError> {
        let (types, btf_error) = match map.btf() {
            Ok(types) => (types, None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(Self {
            name: map.name().to_owned(),
            kind: map.kind(),
            key_size: map.key_size(),
            value_size: map.value_size(),
            types,
            btf_error,
        })
    }

    /// ` (reading it failed: ...)` when the BTF could not be read, else nothing.
    fn btf_failure(&self) -> String {
        self.btf_error
            .as_ref()
            .map_or_else(String::new, |e| format!(" (reading it failed: {e})"))
    }

    fn value_type(&self) -> Option<&CType> {
        self.types.as_ref().and_then(|t| t.value.as_ref())
    }

    fn key_type(&self) -> Option<&CType> {
        self.types.as_ref().and_then(|t| t.key.as_ref())
    }

    /// What the map's values are: `struct datarec { __u64 rx_packets; __u64 rx_bytes; }
    /// (16 bytes) per CPU`, or `16-byte values (no BTF)`.
    pub(crate) fn holds(&self) -> String {
        let per_cpu = if self.kind.is_per_cpu() {
            " per CPU"
        } else {
            ""
        };
        match self.value_type() {
            Some(ty) => format!("{ty}{per_cpu}"),
            None => format!("{}-byte values (no BTF){per_cpu}", self.value_size),
        }
    }

    /// The forms a value of this map takes, for error messages.
    fn forms(&self, sum: bool) -> String {
        let named = match self.value_type() {
            Some(ty @ CType::Struct { .. }) => Some(example(ty)),
            _ => None,
        };
        let mut forms = Vec::new();
        if let Some(named) = &named {
            forms.push(if sum {
                format!("fields by name, each summed over CPUs ({named})")
            } else {
                format!("fields by name ({named})")
            });
        }
        if self.value_size <= 8 {
            forms.push(if sum {
                "an integer (the sum over CPUs)".to_owned()
            } else {
                "an integer".to_owned()
            });
        }
        forms.push("typed fields in order ([{ u64 = ... }, ...])".to_owned());
        if !sum {
            forms.push(format!("{} hex bytes", self.value_size));
        }
        let mut text = forms.join(", ");
        if sum {
            text.push_str(
                "; or per-cpu = [...], one value per CPU in any of these forms or as hex",
            );
        }
        text
    }

    fn error(&self, what: &str, message: impl std::fmt::Display) -> String {
        format!("{what} of map {:?}: {message}", self.name)
    }

    /// The key's bytes.
    pub(crate) fn key_bytes(
        &self,
        key: &MapBytes,
        ifindex: Ifindex<'_>,
    ) -> Result<Vec<u8>, String> {
        match key {
            MapBytes::Fields(fields) => {
                let ty = self.key_type().ok_or_else(|| {
                    self.error(
                        "key",
                        format!(
                            "field names need the map's BTF, and it has none for its key{} (a \
                             legacy SEC(\"maps\") definition, or an object built without clang \
                             -g; a map defined with __type(key, struct ...) has it): it has \
                             {}-byte keys; give the key as typed fields [{{ u32 = ... }}, ...] \
                             or hex bytes",
                            self.btf_failure(),
                            self.key_size
                        ),
                    )
                })?;
                if !matches!(ty, CType::Struct { .. }) {
                    return Err(self.error(
                        "key",
                        format!(
                            "given by field names, but the map's key is {ty}, not a struct; \
                             give it as an integer, hex bytes or typed fields"
                        ),
                    ));
                }
                let mut checks = Vec::new();
                named(ty, 0, "", fields, true, &mut checks).map_err(|e| self.error("key", e))?;
                Ok(encode(&checks, self.key_size))
            }
            other => other
                .to_bytes_with(self.key_size, ifindex)
                .map_err(|e| self.error("key", e)),
        }
    }

    /// The bytes to write for `value` (`[[setup.map]]`); unnamed fields are zero.
    pub(crate) fn value_bytes(
        &self,
        value: &MapBytes,
        ifindex: Ifindex<'_>,
    ) -> Result<Vec<u8>, String> {
        match value {
            MapBytes::Fields(_) => Ok(encode(
                &self.checks(value, false, ifindex)?,
                self.value_size,
            )),
            MapBytes::Int(n) if *n != 0 && self.value_size > 8 => {
                Err(self.wrong_shape("an integer", false))
            }
            other => other
                .to_bytes_with(self.value_size, ifindex)
                .map_err(|e| self.error("value", format!("{e}; the map holds {}", self.holds()))),
        }
    }

    fn wrong_shape(&self, given: &str, sum: bool) -> String {
        self.error(
            "value",
            format!(
                "given as {given}, but the map holds {}; give {}",
                self.holds(),
                self.forms(sum)
            ),
        )
    }

    /// The checks `value` stands for: on one value (`sum` false), or on the sum over CPUs of
    /// a per-CPU map (`sum` true, integers only).
    pub(crate) fn checks(
        &self,
        value: &MapBytes,
        sum: bool,
        ifindex: Ifindex<'_>,
    ) -> Result<Vec<Check>, String> {
        let checks = match value {
            MapBytes::Int(n) if self.value_size <= 8 => {
                // The sum over CPUs may be wider than one value: only one CPU's must fit.
                if !sum {
                    value
                        .to_bytes(self.value_size)
                        .map_err(|e| self.error("value", e))?;
                }
                vec![Check {
                    path: String::new(),
                    offset: 0,
                    size: self.value_size,
                    how: How::Int {
                        signed: false,
                        big_endian: false,
                    },
                    want: Want::Int((*n).into()),
                }]
            }
            // Zero is every field zero, whatever the value's shape.
            MapBytes::Int(0) if self.value_type().is_some() => {
                let mut checks = Vec::new();
                if let Some(ty) = self.value_type() {
                    zeros(ty, 0, "", &mut checks);
                }
                checks
            }
            MapBytes::Int(0) if !sum => vec![Check {
                path: String::new(),
                offset: 0,
                size: self.value_size,
                how: How::Bytes,
                want: Want::Bytes(vec![0; self.value_size]),
            }],
            MapBytes::Int(_) => return Err(self.wrong_shape("an integer", sum)),
            MapBytes::Hex(_) if sum => {
                return Err(self.wrong_shape("hex bytes, which are not summed over CPUs", sum));
            }
            MapBytes::Hex(bytes) => {
                if bytes.len() != self.value_size {
                    return Err(self.wrong_shape(&format!("hex of {} bytes", bytes.len()), sum));
                }
                vec![Check {
                    path: String::new(),
                    offset: 0,
                    size: self.value_size,
                    how: How::Bytes,
                    want: Want::Bytes(bytes.clone()),
                }]
            }
            MapBytes::Struct(fields) => self.typed(fields, sum, ifindex)?,
            MapBytes::Fields(fields) => {
                let Some(ty) = self.value_type() else {
                    return Err(self.error(
                        "value",
                        format!(
                            "field names need the map's BTF, and it has none{} (a legacy \
                             SEC(\"maps\") definition, or an object built without clang -g; \
                             a map defined with __type(value, struct ...) has it): it holds \
                             {}-byte values{}; give the value as typed fields \
                             [{{ u64 = ... }}, ...]{}",
                            self.btf_failure(),
                            self.value_size,
                            if self.kind.is_per_cpu() {
                                " per CPU"
                            } else {
                                ""
                            },
                            if sum { "" } else { " or hex bytes" }
                        ),
                    ));
                };
                if !matches!(ty, CType::Struct { .. }) {
                    return Err(self.wrong_shape("fields by name", sum));
                }
                let mut checks = Vec::new();
                named(ty, 0, "", fields, true, &mut checks).map_err(|e| self.error("value", e))?;
                checks
            }
        };
        if sum && let Some(bytes) = checks.iter().find(|c| c.how == How::Bytes) {
            return Err(self.error(
                "value",
                format!(
                    "{} is bytes, not an integer: a per-CPU map's value is summed over CPUs, \
                         which only integers can be; check it per CPU with per-cpu = [...]",
                    if bytes.path.is_empty() {
                        "the value".to_owned()
                    } else {
                        format!("field {}", bytes.path)
                    }
                ),
            ));
        }
        Ok(checks)
    }

    /// The checks of `delta = { field = change, ... }`: each named integer field's change
    /// across the run (summed over CPUs for a per-CPU map).
    pub(crate) fn delta_checks(&self, fields: &[NamedField]) -> Result<Vec<Check>, String> {
        let Some(ty @ CType::Struct { .. }) = self.value_type() else {
            return Err(self.error(
                "delta",
                format!(
                    "fields by name need a struct value from the map's BTF, but the map holds \
                     {}{}; give delta as an integer (values of at most 8 bytes)",
                    self.holds(),
                    self.btf_failure()
                ),
            ));
        };
        let mut checks = Vec::new();
        named(ty, 0, "", fields, false, &mut checks).map_err(|e| self.error("delta", e))?;
        if let Some(bytes) = checks.iter().find(|c| c.how == How::Bytes) {
            return Err(self.error(
                "delta",
                format!(
                    "field {} is bytes, not an integer: only integers change by an amount",
                    bytes.path
                ),
            ));
        }
        Ok(checks)
    }

    /// Checks for typed fields in order; a field's name is the BTF member at its offset.
    fn typed(
        &self,
        fields: &[StructField],
        sum: bool,
        ifindex: Ifindex<'_>,
    ) -> Result<Vec<Check>, String> {
        let total = fields
            .iter()
            .try_fold(0usize, |sum, field| sum.checked_add(field.len()));
        if total != Some(self.value_size) {
            let len = total.map_or_else(|| "too many".to_owned(), |l| l.to_string());
            return Err(self.wrong_shape(&format!("a struct of {len} bytes"), sum));
        }
        let members = self.value_type().map(CType::fields).unwrap_or_default();
        let mut checks = Vec::new();
        let mut offset = 0;
        for field in fields {
            let size = field.len();
            let path = members
                .iter()
                .find(|m| m.offset == offset && m.ty.size() == size)
                .map_or_else(
                    || format!("bytes {offset}..{}", offset + size),
                    |m| m.name.clone(),
                );
            let int = |signed, big_endian, v: u64| Check {
                path: path.clone(),
                offset,
                size,
                how: How::Int { signed, big_endian },
                want: Want::Int(v.into()),
            };
            let check = match field {
                StructField::U8(v) => int(false, false, (*v).into()),
                StructField::U16(v) => int(false, false, (*v).into()),
                StructField::U32(v) => int(false, false, (*v).into()),
                StructField::U64(v) => int(false, false, *v),
                StructField::Be16(v) => int(false, true, (*v).into()),
                StructField::Be32(v) => int(false, true, (*v).into()),
                StructField::Be64(v) => int(false, true, *v),
                // Padding is not a field: a sum skips it.
                StructField::Pad(_) if sum => {
                    offset += size;
                    continue;
                }
                other => {
                    let mut bytes = Vec::with_capacity(size);
                    let one = MapBytes::Struct(vec![other.clone()]);
                    bytes.extend(
                        one.to_bytes_with(size, ifindex)
                            .map_err(|e| self.error("value", e))?,
                    );
                    Check {
                        path: path.clone(),
                        offset,
                        size,
                        how: How::Bytes,
                        want: Want::Bytes(bytes),
                    }
                }
            };
            checks.push(check);
            offset += size;
        }
        Ok(checks)
    }

    /// The checks of each CPU for `per-cpu = [...]`: one entry is every CPU's.
    pub(crate) fn per_cpu_checks(
        &self,
        list: &[MapBytes],
        cpus: usize,
        ifindex: Ifindex<'_>,
    ) -> Result<Vec<Vec<Check>>, String> {
        if !self.kind.is_per_cpu() {
            return Err(format!(
                "map {:?} has type {}, not per-CPU: use value",
                self.name, self.kind
            ));
        }
        if list.len() != 1 && list.len() != cpus {
            return Err(self.error(
                "per-cpu",
                format!(
                    "{} values given for {cpus} CPUs: give one value per possible CPU, or one \
                     value for every CPU",
                    list.len()
                ),
            ));
        }
        (0..cpus)
            .map(|cpu| self.checks(&list[if list.len() == 1 { 0 } else { cpu }], false, ifindex))
            .collect()
    }
}

/// `{ rx_packets = ..., rx_bytes = ... }` for a struct's first members.
fn example(ty: &CType) -> String {
    let names: Vec<String> = ty
        .fields()
        .iter()
        .filter(|m| !m.bitfield)
        .take(3)
        .map(|m| format!("{} = ...", m.name))
        .collect();
    format!("value = {{ {} }}", names.join(", "))
}

/// Checks for named `fields` of the struct `ty` at `base`; integers must fit their member
/// when `ranged` (values), not otherwise (changes, which may be negative).
fn named(
    ty: &CType,
    base: usize,
    prefix: &str,
    fields: &[NamedField],
    ranged: bool,
    out: &mut Vec<Check>,
) -> Result<(), String> {
    let members = ty.fields();
    let name = match ty {
        CType::Struct { name, .. } => name.clone(),
        other => other.c_text(),
    };
    for field in fields {
        let path = format!("{prefix}{}", field.name);
        let Some(member) = members.iter().find(|m| m.name == field.name) else {
            let list: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            let hint = if STRUCT_TYPES.contains(&field.name.as_str()) {
                format!(
                    " (typed fields are an array of tables: [{{ {} = ... }}, ...])",
                    field.name
                )
            } else {
                String::new()
            };
            return Err(format!(
                "{name} has no field {path:?}; its fields: {}{hint}",
                list.join(", ")
            ));
        };
        if member.bitfield {
            return Err(format!(
                "field {path} of {name} is a bitfield, which cannot be given by name; give the \
                 whole value as hex bytes"
            ));
        }
        value(
            &member.ty,
            base + member.offset,
            &path,
            &field.value,
            ranged,
            out,
        )?;
    }
    Ok(())
}

/// Checks that every member of `ty` at `offset` is zero: integers as integers (so a sum over
/// CPUs can check them), anything else as zero bytes.
fn zeros(ty: &CType, offset: usize, path: &str, out: &mut Vec<Check>) {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match ty {
        CType::Int {
            size,
            signed,
            big_endian,
            bitfield: false,
            ..
        } => out.push(Check {
            path: path.to_owned(),
            offset,
            size: *size,
            how: How::Int {
                signed: *signed,
                big_endian: *big_endian,
            },
            want: Want::Int(0),
        }),
        CType::Struct {
            union: false,
            members,
            ..
        } if members.iter().all(|m| !m.bitfield && !m.name.is_empty()) => {
            for m in members {
                zeros(&m.ty, offset + m.offset, &join(&m.name), out);
            }
        }
        CType::Array { elem, len } => {
            for i in 0..*len {
                zeros(elem, offset + i * elem.size(), &format!("{path}[{i}]"), out);
            }
        }
        other => out.push(Check {
            path: path.to_owned(),
            offset,
            size: other.size(),
            how: How::Bytes,
            want: Want::Bytes(vec![0; other.size()]),
        }),
    }
}

/// The type keys of typed struct fields, to recognise one written where a name was expected.
const STRUCT_TYPES: &[&str] = &[
    "u8", "u16", "u32", "u64", "be16", "be32", "be64", "ipv4", "ipv6", "mac", "bytes", "pad",
    "ifindex",
];

/// Checks for `given` as a value of type `ty` at `offset`.
fn value(
    ty: &CType,
    offset: usize,
    path: &str,
    given: &FieldValue,
    ranged: bool,
    out: &mut Vec<Check>,
) -> Result<(), String> {
    let size = ty.size();
    match (given, ty) {
        (
            FieldValue::Int(n),
            CType::Int {
                signed, big_endian, ..
            },
        ) => {
            let bits = 8 * size as u32;
            let (lo, hi) = if *signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            if ranged && (*n < lo || *n > hi) {
                return Err(format!(
                    "field {path} is {}: {n} is out of its range {lo}..={hi}",
                    ty.c_text()
                ));
            }
            out.push(Check {
                path: path.to_owned(),
                offset,
                size,
                how: How::Int {
                    signed: *signed,
                    big_endian: *big_endian,
                },
                want: Want::Int(*n),
            });
        }
        (FieldValue::Int(n), CType::Opaque { .. }) if size <= 8 && *n >= 0 => {
            out.push(Check {
                path: path.to_owned(),
                offset,
                size,
                how: How::Int {
                    signed: false,
                    big_endian: false,
                },
                want: Want::Int(*n),
            });
        }
        (FieldValue::Text(text), _) => {
            let bytes = text_bytes(text, size)
                .map_err(|e| format!("field {path} is {} ({size} bytes): {e}", ty.c_text()))?;
            out.push(Check {
                path: path.to_owned(),
                offset,
                size,
                how: How::Bytes,
                want: Want::Bytes(bytes),
            });
        }
        (FieldValue::Fields(fields), CType::Struct { .. }) => {
            named(ty, offset, &format!("{path}."), fields, ranged, out)?;
        }
        (FieldValue::List(items), CType::Array { elem, len }) => {
            if items.len() != *len {
                return Err(format!(
                    "field {path} is {} with {len} elements, {} given",
                    ty.c_text(),
                    items.len()
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let at = offset + i * elem.size();
                value(elem, at, &format!("{path}[{i}]"), item, ranged, out)?;
            }
        }
        (given, ty) => {
            let want = match ty {
                CType::Struct { .. } => "a table of its fields ({ name = ... })",
                CType::Array { .. } => "an array of its elements ([...])",
                CType::Int { .. } => "an integer",
                CType::Opaque { .. } => "hex bytes (a string)",
            };
            let what = match given {
                FieldValue::Int(_) => "an integer",
                FieldValue::Text(_) => "a string",
                FieldValue::Fields(_) => "a table",
                FieldValue::List(_) => "an array",
            };
            return Err(format!(
                "field {path} is {} ({size} bytes): give {want}, not {what}",
                ty.c_text()
            ));
        }
    }
    Ok(())
}

/// A string member value: an address of the member's size, or hex bytes of exactly it.
fn text_bytes(text: &str, size: usize) -> Result<Vec<u8>, String> {
    if size == 4
        && let Ok(addr) = text.parse::<Ipv4Addr>()
    {
        return Ok(addr.octets().to_vec());
    }
    if size == 16
        && let Ok(addr) = text.parse::<Ipv6Addr>()
    {
        return Ok(addr.octets().to_vec());
    }
    if size == 6
        && let Ok(mac) = text.parse::<crate::frame::MacAddr>()
    {
        return Ok(mac.octets().to_vec());
    }
    let bytes = text
        .parse::<crate::frame::HexBytes>()
        .map_err(|e| format!("{text:?} is neither an address of that size nor hex: {e}"))?
        .0;
    if bytes.len() != size {
        return Err(format!("hex {text:?} is {} bytes long", bytes.len()));
    }
    Ok(bytes)
}

/// Bytes holding every check's expected value; zero elsewhere.
fn encode(checks: &[Check], size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    for check in checks {
        let field = &mut out[check.offset..check.offset + check.size];
        match (&check.want, &check.how) {
            (Want::Int(n), How::Int { big_endian, .. }) => {
                let le = n.to_le_bytes();
                field.copy_from_slice(&le[..check.size]);
                if *big_endian {
                    field.reverse();
                }
            }
            (Want::Bytes(bytes), _) => field.copy_from_slice(bytes),
            (Want::Int(_), How::Bytes) => {}
        }
    }
    out
}

impl Check {
    /// The field as read from `value`: an integer, or hex bytes.
    fn read(&self, value: &[u8]) -> Option<Value> {
        let bytes = value.get(self.offset..self.offset + self.size)?;
        Some(match self.how {
            How::Int { .. } => json!(self.int(bytes)?),
            How::Bytes => json!(super::plan::hex(bytes)),
        })
    }

    fn int(&self, bytes: &[u8]) -> Option<i128> {
        let How::Int { signed, big_endian } = self.how else {
            return None;
        };
        if bytes.len() > 16 {
            return None;
        }
        let mut buf = [0u8; 16];
        let mut ordered = bytes.to_vec();
        if big_endian {
            ordered.reverse();
        }
        buf[..ordered.len()].copy_from_slice(&ordered);
        let n = i128::from_le_bytes(buf);
        let bits = 8 * bytes.len() as u32;
        if signed && bits < 128 && n >> (bits - 1) & 1 == 1 {
            Some(n - (1i128 << bits))
        } else {
            Some(n)
        }
    }

    fn want(&self) -> Value {
        match &self.want {
            Want::Int(n) => json!(n),
            Want::Bytes(bytes) => json!(super::plan::hex(bytes)),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The checks' expected values as a report value: one number or hex string for a whole
/// value, else an object of fields.
pub(crate) fn expected_json(checks: &[Check]) -> Value {
    as_json(checks, Check::want)
}

/// One number or hex string for a whole value; else the fields in struct order, written as
/// the scenario writes them (TOML, dotted keys for nested members, arrays gathered):
/// `{ rx_packets = 100, rx_bytes = 6400 }`, `{ counts.rx_packets = 1, len_hist = [1, 0] }`.
fn as_json(checks: &[Check], f: impl Fn(&Check) -> Value) -> Value {
    if let [only] = checks
        && only.path.is_empty()
    {
        return f(only);
    }
    let mut parts: Vec<(String, Vec<String>)> = Vec::new();
    for check in checks {
        let value = match f(check) {
            Value::String(hex) => format!("{hex:?}"),
            other => other.to_string(),
        };
        // `len_hist[2]` right after `len_hist[1]` joins its array.
        if let Some((base, index)) = check
            .path
            .strip_suffix(']')
            .and_then(|p| p.rsplit_once('['))
            .filter(|(base, _)| !base.contains('['))
        {
            if let Some((last, items)) = parts.last_mut()
                && last == base
                && index.parse() == Ok(items.len())
            {
                items.push(value);
                continue;
            }
            if index == "0" {
                parts.push((base.to_owned(), vec![value]));
                continue;
            }
        }
        parts.push((check.path.clone(), vec![value]));
    }
    let fields: Vec<String> = parts
        .into_iter()
        .map(|(path, items)| {
            if path.ends_with(']') || items.len() == 1 && !is_array_start(checks, &path) {
                format!("{path} = {}", items[0])
            } else {
                format!("{path} = [{}]", items.join(", "))
            }
        })
        .collect();
    Value::String(format!("{{ {} }}", fields.join(", ")))
}

/// Whether `base` was gathered from `base[0]` (an array of one element).
fn is_array_start(checks: &[Check], base: &str) -> bool {
    checks.iter().any(|c| c.path == format!("{base}[0]"))
}

/// One value per CPU: a list of integers as a JSON array (as before struct values), else one
/// line, `[{ rx_packets = 0, rx_bytes = 0 }, { ... }]`.
pub(crate) fn per_cpu_json(values: &[Value]) -> Value {
    if values.iter().all(Value::is_number) {
        return json!(values);
    }
    let items: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) if s.starts_with('{') => s.clone(),
            other => other.to_string(),
        })
        .collect();
    Value::String(format!("[{}]", items.join(", ")))
}

/// Judges one value: what was read (in the checks' form) and the fields that differ.
pub(crate) fn judge(checks: &[Check], value: &[u8]) -> (Value, Vec<Mismatch>) {
    let read = |c: &Check| c.read(value).unwrap_or(Value::Null);
    let mismatches = checks
        .iter()
        .filter(|c| {
            let got = c.read(value);
            got.is_none() || got != Some(c.want())
        })
        .map(|c| Mismatch {
            path: c.path.clone(),
            want: text(&c.want()),
            got: text(&read(c)),
        })
        .collect();
    (as_json(checks, read), mismatches)
}

/// Judges each (integer) check's change: its sum over `now`'s values minus its sum over
/// `before`'s (a key missing before counts as zero).
pub(crate) fn judge_delta(
    checks: &[Check],
    now: &[Vec<u8>],
    before: Option<&[Vec<u8>]>,
) -> (Value, Vec<Mismatch>) {
    let sum = |c: &Check, values: &[Vec<u8>]| -> Option<i128> {
        values.iter().try_fold(0i128, |sum, v| {
            Some(sum + c.int(v.get(c.offset..c.offset + c.size)?)?)
        })
    };
    let change = |c: &Check| Some(sum(c, now)? - before.map_or(Some(0), |b| sum(c, b))?);
    let mismatches = checks
        .iter()
        .filter(|c| change(c).map(|n| json!(n)) != Some(c.want()))
        .map(|c| Mismatch {
            path: c.path.clone(),
            want: format!("a change of {}", text(&c.want())),
            got: change(c).map_or_else(|| "unreadable".to_owned(), |n| format!("{n:+}")),
        })
        .collect();
    (
        as_json(checks, |c| change(c).map_or(Value::Null, |n| json!(n))),
        mismatches,
    )
}

/// Judges the sum over CPUs of each (integer) check.
pub(crate) fn judge_sum(checks: &[Check], values: &[Vec<u8>]) -> (Value, Vec<Mismatch>) {
    let sum = |c: &Check| -> Option<i128> {
        values.iter().try_fold(0i128, |sum, v| {
            let bytes = v.get(c.offset..c.offset + c.size)?;
            Some(sum + c.int(bytes)?)
        })
    };
    let mismatches = checks
        .iter()
        .filter(|c| sum(c).map(|n| json!(n)) != Some(c.want()))
        .map(|c| Mismatch {
            path: c.path.clone(),
            want: text(&c.want()),
            got: sum(c).map_or_else(|| "unreadable".to_owned(), |n| n.to_string()),
        })
        .collect();
    (
        as_json(checks, |c| sum(c).map_or(Value::Null, |n| json!(n))),
        mismatches,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::btf::Member;

    fn u64_member(name: &str, offset: usize) -> Member {
        Member {
            name: name.into(),
            offset,
            bitfield: false,
            ty: CType::Int {
                name: "__u64".into(),
                size: 8,
                signed: false,
                big_endian: false,
                bitfield: false,
            },
        }
    }

    fn datarec() -> CType {
        CType::Struct {
            name: "struct datarec".into(),
            size: 16,
            union: false,
            members: vec![u64_member("rx_packets", 0), u64_member("rx_bytes", 8)],
        }
    }

    fn shape(kind: MapKind, value: Option<CType>) -> Shape {
        Shape {
            name: "xdp_stats_map".into(),
            kind,
            key_size: 4,
            value_size: 16,
            types: value.map(|v| MapTypes {
                key: None,
                value: Some(v),
            }),
            btf_error: None,
        }
    }

    fn fields(pairs: &[(&str, i128)]) -> MapBytes {
        MapBytes::Fields(
            pairs
                .iter()
                .map(|(name, n)| NamedField {
                    name: (*name).into(),
                    value: FieldValue::Int(*n),
                })
                .collect(),
        )
    }

    fn no_ifindex(_: &IfaceRef) -> Result<u32, String> {
        Ok(0)
    }

    fn rec(packets: u64, bytes: u64) -> Vec<u8> {
        [packets.to_le_bytes(), bytes.to_le_bytes()].concat()
    }

    #[test]
    fn fields_summed_over_cpus() {
        let s = shape(MapKind::PerCpuArray, Some(datarec()));
        let checks = s
            .checks(
                &fields(&[("rx_packets", 30), ("rx_bytes", 1920)]),
                true,
                &no_ifindex,
            )
            .expect("compiles");
        let (got, bad) = judge_sum(&checks, &[rec(10, 640), rec(20, 1280)]);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(got, json!("{ rx_packets = 30, rx_bytes = 1920 }"));
        let (_, bad) = judge_sum(&checks, &[rec(10, 640), rec(19, 1280)]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].to_string(), "rx_packets expected 30, got 29");
    }

    #[test]
    fn unnamed_fields_are_not_checked_and_zero_when_written() {
        let s = shape(MapKind::Array, Some(datarec()));
        let value = fields(&[("rx_bytes", 7)]);
        let checks = s.checks(&value, false, &no_ifindex).expect("compiles");
        assert!(judge(&checks, &rec(99, 7)).1.is_empty());
        assert_eq!(
            s.value_bytes(&value, &no_ifindex).expect("encodes"),
            rec(0, 7)
        );
    }

    #[test]
    fn changes_field_by_field() {
        let s = shape(MapKind::PerCpuArray, Some(datarec()));
        let delta = [
            NamedField {
                name: "rx_packets".into(),
                value: FieldValue::Int(-1),
            },
            NamedField {
                name: "rx_bytes".into(),
                value: FieldValue::Int(100),
            },
        ];
        let checks = s.delta_checks(&delta).expect("compiles");
        let before = [rec(5, 0), rec(0, 0)];
        let (got, bad) = judge_delta(&checks, &[rec(2, 100), rec(2, 0)], Some(&before));
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(got, json!("{ rx_packets = -1, rx_bytes = 100 }"));
        let (_, bad) = judge_delta(&checks, &[rec(2, 100), rec(2, 0)], None);
        assert_eq!(
            bad.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["rx_packets expected a change of -1, got +4"],
            "a key missing before counts as zero"
        );
        assert!(
            shape(MapKind::PerCpuArray, None)
                .delta_checks(&delta)
                .is_err()
        );
    }

    #[test]
    fn zeros_read_as_zeros_per_cpu() {
        let s = shape(MapKind::PerCpuArray, Some(datarec()));
        let per_cpu = s
            .per_cpu_checks(&[MapBytes::Hex(vec![0; 16])], 2, &no_ifindex)
            .expect("compiles");
        assert_eq!(per_cpu.len(), 2);
        for checks in &per_cpu {
            assert!(judge(checks, &rec(0, 0)).1.is_empty());
        }
        let bad = judge(&per_cpu[1], &rec(1, 0)).1;
        assert_eq!(bad.len(), 1, "a non-zero CPU is a mismatch");
        assert!(
            s.per_cpu_checks(
                &[MapBytes::Int(0), MapBytes::Int(0), MapBytes::Int(0)],
                2,
                &no_ifindex
            )
            .is_err(),
            "three values for two CPUs"
        );
    }

    #[test]
    fn one_error_per_mistake_with_what_the_map_holds() {
        let s = shape(MapKind::PerCpuArray, Some(datarec()));
        let err = s
            .checks(&fields(&[("rx_packet", 1)]), true, &no_ifindex)
            .unwrap_err();
        assert_eq!(
            err,
            "value of map \"xdp_stats_map\": struct datarec has no field \"rx_packet\"; its \
             fields: rx_packets, rx_bytes"
        );
        let err = s.checks(&MapBytes::Int(5), true, &no_ifindex).unwrap_err();
        assert!(
            err.contains("struct datarec { __u64 rx_packets; __u64 rx_bytes; } (16 bytes) per CPU"),
            "{err}"
        );
        assert!(
            err.contains("value = { rx_packets = ..., rx_bytes = ... }"),
            "{err}"
        );
        let err = s
            .checks(&MapBytes::Hex(vec![0; 16]), true, &no_ifindex)
            .unwrap_err();
        assert!(err.contains("not summed"), "{err}");
        let bare = shape(MapKind::PerCpuArray, None);
        let err = bare
            .checks(&fields(&[("rx_packets", 1)]), true, &no_ifindex)
            .unwrap_err();
        assert!(
            err.contains("field names need the map's BTF, and it has none"),
            "{err}"
        );
        let err = s
            .checks(&fields(&[("rx_packets", -1)]), true, &no_ifindex)
            .unwrap_err();
        assert!(err.contains("out of its range"), "{err}");
    }

    #[test]
    fn key_fields_need_a_struct_key() {
        let mut s = shape(MapKind::PerCpuArray, Some(datarec()));
        let err = s
            .key_bytes(&fields(&[("index", 2)]), &no_ifindex)
            .unwrap_err();
        assert!(err.contains("field names need the map's BTF"), "{err}");
        s.types = Some(MapTypes {
            key: Some(CType::Int {
                name: "__u32".into(),
                size: 4,
                signed: false,
                big_endian: false,
                bitfield: false,
            }),
            value: Some(datarec()),
        });
        let err = s
            .key_bytes(&fields(&[("index", 2)]), &no_ifindex)
            .unwrap_err();
        assert_eq!(
            err,
            "key of map \"xdp_stats_map\": given by field names, but the map's key is __u32 (4 \
             bytes), not a struct; give it as an integer, hex bytes or typed fields"
        );
        assert_eq!(
            s.key_bytes(&MapBytes::Int(2), &no_ifindex),
            Ok(vec![2, 0, 0, 0])
        );
    }

    #[test]
    fn typed_fields_take_their_names_from_btf() {
        let s = shape(MapKind::PerCpuArray, Some(datarec()));
        let typed = MapBytes::Struct(vec![StructField::U64(3), StructField::U64(192)]);
        let checks = s.checks(&typed, true, &no_ifindex).expect("compiles");
        let (_, bad) = judge_sum(&checks, &[rec(1, 64), rec(1, 64)]);
        assert_eq!(
            bad.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "rx_packets expected 3, got 2",
                "rx_bytes expected 192, got 128"
            ]
        );
    }

    #[test]
    fn nested_structs_arrays_and_network_order() {
        let be16 = CType::Int {
            name: "__be16".into(),
            size: 2,
            signed: false,
            big_endian: true,
            bitfield: false,
        };
        let key = CType::Struct {
            name: "struct port_key".into(),
            size: 4,
            union: false,
            members: vec![Member {
                name: "dport".into(),
                offset: 0,
                bitfield: false,
                ty: be16,
            }],
        };
        let rec = CType::Struct {
            name: "struct port_rec".into(),
            size: 48,
            union: false,
            members: vec![
                Member {
                    name: "counts".into(),
                    offset: 0,
                    bitfield: false,
                    ty: datarec(),
                },
                Member {
                    name: "len_hist".into(),
                    offset: 16,
                    bitfield: false,
                    ty: CType::Array {
                        elem: Box::new(u64_member("", 0).ty),
                        len: 4,
                    },
                },
            ],
        };
        let s = Shape {
            name: "port_stats".into(),
            kind: MapKind::Hash,
            key_size: 4,
            value_size: 48,
            btf_error: None,
            types: Some(MapTypes {
                key: Some(key),
                value: Some(rec),
            }),
        };
        assert_eq!(
            s.key_bytes(&fields(&[("dport", 9)]), &no_ifindex),
            Ok(vec![0, 9, 0, 0])
        );
        let value = MapBytes::Fields(vec![
            NamedField {
                name: "counts".into(),
                value: FieldValue::Fields(vec![NamedField {
                    name: "rx_packets".into(),
                    value: FieldValue::Int(2),
                }]),
            },
            NamedField {
                name: "len_hist".into(),
                value: FieldValue::List(vec![
                    FieldValue::Int(2),
                    FieldValue::Int(0),
                    FieldValue::Int(0),
                    FieldValue::Int(0),
                ]),
            },
        ]);
        let checks = s.checks(&value, false, &no_ifindex).expect("compiles");
        let mut actual = vec![0u8; 48];
        actual[0] = 2;
        actual[16] = 2;
        actual[24] = 1;
        let (_, bad) = judge(&checks, &actual);
        assert_eq!(
            bad.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["len_hist[1] expected 0, got 1"]
        );
        let err = s
            .checks(
                &MapBytes::Fields(vec![NamedField {
                    name: "len_hist".into(),
                    value: FieldValue::List(vec![FieldValue::Int(1)]),
                }]),
                false,
                &no_ifindex,
            )
            .unwrap_err();
        assert!(
            err.contains("__u64 [4] with 4 elements, 1 given")
                || err.contains("with 4 elements, 1 given"),
            "{err}"
        );
    }
}
