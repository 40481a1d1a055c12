//! What a scenario file says, once parsed and checked: the types the runner
//! works from. Every default written here is the one documented in
//! `docs/scenario-format.md`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

use crate::frame::{ETH_HEADER_LEN, FrameSpec, HexBytes, VLAN_TAG_LEN};
use crate::verdict::Verdict;

/// The only `schema-version` this build reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Objects built into xdplab, named by `program.object`.
pub const BUNDLED: &[&str] = &["xdp_drop", "xdp_filter", "xdp_pass"];

/// A scenario: one lab, one program, frames to send and what should happen
/// to them.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file it came from.
    pub path: PathBuf,
    /// Name for reports.
    pub name: String,
    /// One line for `xdplab list`.
    pub description: Option<String>,
    /// When set, the scenario is reported SKIP with this reason and not run.
    pub skip: Option<String>,
    /// The lab to build.
    pub lab: LabSpec,
    /// The program to attach.
    pub program: ProgramSpec,
    /// Rules for the bundled `xdp_filter` program, in match order.
    pub rules: Vec<FilterRule>,
    /// Send groups, in file order; at least one.
    pub sends: Vec<SendGroup>,
    /// Map contents expected after every frame was sent.
    pub map_expects: Vec<MapExpect>,
}

/// The lab: a veth pair between two namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// MTU of both veth ends, 68..=65535 (at most 3498 in native mode); default
    /// 1500. 3498 is the largest that veth accepts with a native XDP program
    /// attached (4 KiB pages, no xdp.frags).
    pub mtu: u32,
    /// Whether the veths keep their IPv6 stack; default false (disabled, so
    /// the kernel sends no router solicitations or DAD probes of its own).
    pub ipv6: bool,
}

impl LabSpec {
    /// Default MTU.
    pub const DEFAULT_MTU: u32 = 1500;
    /// Smallest MTU (IPv4's minimum).
    pub const MIN_MTU: u32 = 68;
    /// Largest MTU of a veth.
    pub const MAX_MTU: u32 = 65535;
    /// Largest MTU veth takes with a native XDP program (4 KiB pages, no xdp.frags).
    pub const MAX_NATIVE_MTU: u32 = 3498;

    /// Longest frame (without FCS) the lab can carry for `spec`: the MTU plus
    /// the Ethernet header, plus one 802.1Q tag when the frame starts with
    /// one, which is what a packet socket allows
    /// (`packet_extra_vlan_len_allowed`).
    pub fn max_frame_len(&self, spec: &FrameSpec) -> usize {
        let outer_8021q = match &spec.raw {
            Some(raw) => raw.0.get(12..14) == Some(&[0x81, 0x00]),
            None => spec.vlan.first().is_some_and(|v| v.tpid == 0x8100),
        };
        // u32 always fits usize on the targets xdplab builds for (Linux).
        self.mtu as usize + ETH_HEADER_LEN + if outer_8021q { VLAN_TAG_LEN } else { 0 }
    }
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            mtu: Self::DEFAULT_MTU,
            ipv6: false,
        }
    }
}

/// The program under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The ELF object holding it.
    pub object: ObjectRef,
    /// Name of the XDP program (its ELF section function) in the object.
    pub entry: String,
    /// How to attach it; default native.
    pub mode: XdpModeSpec,
}

/// Where a program's object comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectRef {
    /// One of [`BUNDLED`], by name.
    Bundled(String),
    /// A file, already resolved against the scenario file's directory.
    Path(PathBuf),
}

impl ObjectRef {
    /// Objects built into xdplab (same as [`BUNDLED`]).
    pub const BUNDLED: &'static [&'static str] = BUNDLED;

    /// A bundled name stays one; anything else is a path, relative to `dir`
    /// (the scenario file's directory) unless absolute.
    pub fn resolve(text: &str, dir: &std::path::Path) -> ObjectRef {
        if BUNDLED.contains(&text) {
            ObjectRef::Bundled(text.to_owned())
        } else {
            ObjectRef::Path(dir.join(text))
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Bundled(name) => f.write_str(name),
            ObjectRef::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// XDP attach mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeSpec {
    /// In the driver (veth supports it).
    #[doc(alias = "XDP_FLAGS_DRV_MODE")]
    #[default]
    Native,
    /// In the generic network stack path, for any interface.
    #[doc(alias = "XDP_FLAGS_SKB_MODE")]
    Generic,
}

impl XdpModeSpec {
    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpModeSpec::Native => "native",
            XdpModeSpec::Generic => "generic",
        }
    }
}

impl fmt::Display for XdpModeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule for the bundled `xdp_filter` program. The program tries rules in
/// order; the first that matches decides, and a frame no rule matches passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRule {
    /// EtherType after up to two VLAN tags; `None` matches any.
    pub ethertype: Option<u16>,
    /// IPv4 protocol / IPv6 next header; `None` matches any.
    pub ip_proto: Option<u8>,
    /// TCP, UDP, SCTP or UDP-Lite destination port; `None` matches any.
    pub dst_port: Option<u16>,
    /// What a matching frame gets.
    pub action: Verdict,
    /// Line of the `[[rule]]` header in the scenario file.
    pub line: usize,
}

impl FilterRule {
    /// Most rules the `xdp_filter` rules map holds.
    pub const MAX: usize = 32;
    /// Flag: the slot holds a rule.
    pub const ENABLED: u8 = 1 << 0;
    /// Flag: compare the EtherType.
    pub const MATCH_ETHERTYPE: u8 = 1 << 1;
    /// Flag: compare the IP protocol.
    pub const MATCH_PROTO: u8 = 1 << 2;
    /// Flag: compare the destination port.
    pub const MATCH_PORT: u8 = 1 << 3;
    /// Flag: drop on match (else pass).
    pub const ACTION_DROP: u8 = 1 << 4;

    /// The rule as an `xdp_filter` map value: the little-endian C struct
    /// `{ u16 ethertype; u8 ip_proto; u8 flags; u16 dst_port; u16 reserved; }`.
    /// EtherType and port are plain numbers (0x0800, 53), not network order.
    pub fn encode(&self) -> [u8; 8] {
        let mut flags = Self::ENABLED;
        if self.ethertype.is_some() {
            flags |= Self::MATCH_ETHERTYPE;
        }
        if self.ip_proto.is_some() {
            flags |= Self::MATCH_PROTO;
        }
        if self.dst_port.is_some() {
            flags |= Self::MATCH_PORT;
        }
        if self.action == Verdict::Drop {
            flags |= Self::ACTION_DROP;
        }
        let ethertype = self.ethertype.unwrap_or(0).to_le_bytes();
        let port = self.dst_port.unwrap_or(0).to_le_bytes();
        [
            ethertype[0],
            ethertype[1],
            self.ip_proto.unwrap_or(0),
            flags,
            port[0],
            port[1],
            0,
            0,
        ]
    }

    /// One line for listings: `ethertype ipv4, ip-proto udp, dst-port 53 -> drop`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ethertype) = self.ethertype {
            parts.push(format!("ethertype {}", ethertype_name(ethertype)));
        }
        if let Some(proto) = self.ip_proto {
            parts.push(format!("ip-proto {}", ip_proto_name(proto)));
        }
        if let Some(port) = self.dst_port {
            parts.push(format!("dst-port {port}"));
        }
        format!("{} -> {}", parts.join(", "), self.action)
    }
}

const ETHERTYPE_NAMES: &[(&str, u16)] = &[("ipv4", 0x0800), ("ipv6", 0x86dd), ("arp", 0x0806)];
const IP_PROTO_NAMES: &[(&str, u8)] = &[
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("icmpv6", 58),
    ("sctp", 132),
    ("udplite", 136),
];
/// Protocols whose destination port `xdp_filter` reads (all at L4 offset 2).
pub(super) const PORT_PROTOS: &[u8] = &[6, 17, 132, 136];

fn ethertype_name(value: u16) -> String {
    ETHERTYPE_NAMES
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| format!("{value:#06x}"), |(name, _)| (*name).to_owned())
}

fn ip_proto_name(value: u8) -> String {
    IP_PROTO_NAMES
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| value.to_string(), |(name, _)| (*name).to_owned())
}

/// Deserializes a name from `names` or an integer that fits `T`.
struct NameOrInt<T: 'static> {
    names: &'static [(&'static str, T)],
    what: &'static str,
}

impl<T: Copy + TryFrom<i64> + TryFrom<u64>> Visitor<'_> for NameOrInt<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.names.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        write!(f, "{} or an integer {}", names.join(", "), self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        self.names
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, value)| *value)
            .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }
}

/// `ethertype` in a rule: `"ipv4"`, `"ipv6"`, `"arp"` or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct EtherTypeValue(pub u16);

impl<'de> Deserialize<'de> for EtherTypeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NameOrInt {
                names: ETHERTYPE_NAMES,
                what: "in 0..=65535",
            })
            .map(EtherTypeValue)
    }
}

/// `ip-proto` in a rule: `"tcp"`, `"udp"`, `"icmp"`, `"icmpv6"`, `"sctp"`,
/// `"udplite"` or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IpProtoValue(pub u8);

impl<'de> Deserialize<'de> for IpProtoValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NameOrInt {
                names: IP_PROTO_NAMES,
                what: "in 0..=255",
            })
            .map(IpProtoValue)
    }
}

/// A send group: `count` copies of one frame, each expected to get `expect`.
#[derive(Clone, Debug, PartialEq)]
pub struct SendGroup {
    /// Unique within the scenario.
    pub name: String,
    /// Frames to send, 1..=10_000_000.
    pub count: u32,
    /// The frame.
    pub frame: FrameSpec,
    /// The verdict every frame should get.
    pub expect: Verdict,
    /// Line of the `[[send]]` header in the scenario file.
    pub line: usize,
}

impl SendGroup {
    /// Largest `count`.
    pub const MAX_COUNT: u32 = 10_000_000;
}

/// What one map entry should hold after the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapExpect {
    /// Map name in the object.
    pub map: String,
    /// The key.
    pub key: MapBytes,
    /// Expected value (plain maps); exclusive with `per_cpu` and `absent`.
    pub value: Option<MapBytes>,
    /// Expected value on each CPU, as integers of the value size (per-CPU
    /// maps); exclusive with `value` and `absent`.
    pub per_cpu: Option<Vec<u64>>,
    /// The key must not be in the map; exclusive with `value` and `per_cpu`.
    pub absent: bool,
    /// Line of the `[[expect.map]]` header in the scenario file.
    pub line: usize,
}

impl MapExpect {
    /// One line for listings: `drop_cnt[0] == 1000`.
    pub fn describe(&self) -> String {
        let what = if self.absent {
            "absent".to_owned()
        } else if let Some(value) = &self.value {
            format!("== {value}")
        } else if let Some(per_cpu) = &self.per_cpu {
            let values: Vec<String> = per_cpu.iter().map(u64::to_string).collect();
            format!("== per-cpu [{}]", values.join(", "))
        } else {
            // parse() lets no expectation through without one of the three.
            "(nothing expected)".to_owned()
        };
        format!("{}[{}] {what}", self.map, self.key)
    }
}

/// A map key or value: an integer (stored little-endian in the map's size)
/// or exact bytes written as hex text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapBytes {
    /// A non-negative integer, e.g. `key = 0`.
    Int(u64),
    /// Bytes in map order, e.g. `key = "0a 00 00 01"`.
    Hex(Vec<u8>),
}

impl MapBytes {
    /// The bytes for a map field of `size` bytes: an integer little-endian,
    /// zero-extended; hex as is. Fails if the integer does not fit or the hex
    /// is not exactly `size` bytes.
    pub fn to_bytes(&self, size: usize) -> Result<Vec<u8>, String> {
        match self {
            MapBytes::Int(value) => {
                let le = value.to_le_bytes();
                let needed = le.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                if needed > size {
                    return Err(format!("integer {value} does not fit in {size} bytes"));
                }
                let mut out = vec![0u8; size];
                out[..needed].copy_from_slice(&le[..needed]);
                Ok(out)
            }
            MapBytes::Hex(bytes) if bytes.len() == size => Ok(bytes.clone()),
            MapBytes::Hex(bytes) => Err(format!(
                "hex value is {} bytes long, the map's field is {size}",
                bytes.len()
            )),
        }
    }
}

impl fmt::Display for MapBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapBytes::Int(value) => write!(f, "{value}"),
            MapBytes::Hex(bytes) => {
                f.write_str("\"")?;
                for (i, byte) in bytes.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(f, "{sep}{byte:02x}")?;
                }
                f.write_str("\"")
            }
        }
    }
}

impl<'de> Deserialize<'de> for MapBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = MapBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or a hex string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MapBytes, E> {
                u64::try_from(v)
                    .map(MapBytes::Int)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MapBytes, E> {
                Ok(MapBytes::Int(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MapBytes, E> {
                v.parse::<HexBytes>()
                    .map(|hex| MapBytes::Hex(hex.0))
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ethertype: Option<u16>, ip_proto: Option<u8>, dst_port: Option<u16>) -> FilterRule {
        FilterRule {
            ethertype,
            ip_proto,
            dst_port,
            action: Verdict::Drop,
            line: 1,
        }
    }

    #[test]
    fn rule_encoding() {
        assert_eq!(
            rule(Some(0x0800), Some(17), Some(53)).encode(),
            [0x00, 0x08, 17, 0b11111, 53, 0, 0, 0]
        );
        assert_eq!(
            FilterRule {
                action: Verdict::Pass,
                ..rule(Some(0x86dd), None, None)
            }
            .encode(),
            [0xdd, 0x86, 0, 0b00011, 0, 0, 0, 0]
        );
        assert_eq!(
            rule(None, Some(6), Some(0x1f90)).encode(),
            [0, 0, 6, 0b11101, 0x90, 0x1f, 0, 0]
        );
    }

    #[test]
    fn rule_describe() {
        assert_eq!(
            rule(Some(0x0800), Some(17), Some(53)).describe(),
            "ethertype ipv4, ip-proto udp, dst-port 53 -> drop"
        );
        assert_eq!(
            rule(Some(0x1234), Some(99), None).describe(),
            "ethertype 0x1234, ip-proto 99 -> drop"
        );
    }

    #[test]
    fn map_bytes_sizing() {
        assert_eq!(MapBytes::Int(1000).to_bytes(4), Ok(vec![0xe8, 0x03, 0, 0]));
        assert_eq!(MapBytes::Int(1000).to_bytes(2), Ok(vec![0xe8, 0x03]));
        assert_eq!(
            MapBytes::Int(1000).to_bytes(1),
            Err("integer 1000 does not fit in 1 bytes".to_owned())
        );
        assert_eq!(MapBytes::Int(0).to_bytes(0), Ok(vec![]));
        assert_eq!(MapBytes::Int(u64::MAX).to_bytes(8), Ok(vec![0xff; 8]));
        assert_eq!(
            MapBytes::Int(7).to_bytes(12),
            Ok([&[7][..], &[0; 11]].concat())
        );
        assert_eq!(MapBytes::Hex(vec![1, 2]).to_bytes(2), Ok(vec![1, 2]));
        assert_eq!(
            MapBytes::Hex(vec![1, 2]).to_bytes(4),
            Err("hex value is 2 bytes long, the map's field is 4".to_owned())
        );
    }

    #[derive(Debug, Deserialize)]
    struct Holder {
        v: MapBytes,
    }

    #[test]
    fn map_bytes_from_toml() {
        let v = |text: &str| toml::from_str::<Holder>(text).map(|h| h.v);
        assert_eq!(v("v = 0x10").unwrap(), MapBytes::Int(16));
        assert_eq!(
            v("v = \"0a:00:00:01\"").unwrap(),
            MapBytes::Hex(vec![10, 0, 0, 1])
        );
        assert!(v("v = -1").unwrap_err().message().contains("integer `-1`"));
        assert_eq!(
            v("v = \"0q\"").unwrap_err().message(),
            "invalid hex character 'q' at position 1"
        );
        assert_eq!(
            MapBytes::Hex(vec![10, 0, 0, 1]).to_string(),
            "\"0a 00 00 01\""
        );
    }

    #[test]
    fn object_resolution() {
        let dir = std::path::Path::new("scenarios");
        assert_eq!(
            ObjectRef::resolve("xdp_filter", dir),
            ObjectRef::Bundled("xdp_filter".into())
        );
        assert_eq!(
            ObjectRef::resolve("obj/mine.o", dir),
            ObjectRef::Path("scenarios/obj/mine.o".into())
        );
        assert_eq!(
            ObjectRef::resolve("/abs/x.o", dir),
            ObjectRef::Path("/abs/x.o".into())
        );
    }

    #[test]
    fn max_frame_len_allows_one_8021q_tag() {
        let lab = LabSpec::default();
        let mut spec = FrameSpec::default();
        assert_eq!(lab.max_frame_len(&spec), 1514);
        spec.vlan.push(Default::default());
        assert_eq!(lab.max_frame_len(&spec), 1518);
        spec.vlan[0].tpid = 0x88a8;
        assert_eq!(lab.max_frame_len(&spec), 1514);
    }
}
