//! Test frames: what a send group puts on the wire, crafted with pnet.
//!
//! A [`FrameSpec`] describes a frame layer by layer, the way a scenario file
//! writes it; every field it leaves out comes from the lab's [`Endpoints`] or a
//! documented default. [`FrameTemplate::build`] checks the spec and lays the
//! frame out once; [`FrameTemplate::write`] then stamps each copy with a
//! [`Tag`] (run, send group, sequence number) so the harness can tell which
//! frames arrived, and patches the one checksum that covers the tag instead of
//! recomputing it, because injectors call it for every frame they send.
//!
//! Frame layout: Ethernet, VLAN tags, L3 (ARP, IPv4 or IPv6 with its extension
//! headers), L4 (UDP, TCP, ICMP or ICMPv6), the user payload, the 16-byte tag,
//! then zero padding up to the requested size. Length fields cover everything
//! through the padding, so a padded frame is still a consistent one.

pub mod pcap;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use pnet::packet::arp::{ArpHardwareTypes, ArpOperation, MutableArpPacket};
use pnet::packet::ethernet::{EtherType, EtherTypes, MutableEthernetPacket};
use pnet::packet::icmp::{IcmpCode, IcmpPacket, IcmpType, MutableIcmpPacket};
use pnet::packet::icmpv6::{Icmpv6Code, Icmpv6Packet, Icmpv6Type, MutableIcmpv6Packet};
use pnet::packet::ip::IpNextHeaderProtocol;
use pnet::packet::ipv4::MutableIpv4Packet;
use pnet::packet::ipv6::{
    MutableExtensionPacket, MutableFragmentPacket, MutableIpv6Packet, MutableRoutingPacket,
};
use pnet::packet::tcp::{MutableTcpPacket, TcpPacket};
use pnet::packet::udp::{MutableUdpPacket, UdpPacket};
use pnet::packet::vlan::{ClassOfService, MutableVlanPacket};
use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

pub use pnet::util::MacAddr;

/// Smallest Ethernet frame without its FCS; shorter frames are runts.
pub const ETH_MIN_LEN: usize = 60;
/// Ethernet header without VLAN tags: two addresses and an EtherType.
pub const ETH_HEADER_LEN: usize = 14;
/// One 802.1Q/802.1ad tag: TPID and TCI.
pub const VLAN_TAG_LEN: usize = 4;
/// EtherType for frames with nothing after Ethernet: IEEE "local experimental 1".
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88b5;
/// IP protocol / next header for IP packets without an L4 layer: RFC 3692
/// "use for experimentation and testing".
pub const IP_PROTO_EXPERIMENTAL: u8 = 253;

const ARP_LEN: usize = 28;
const IPV4_HEADER_LEN: usize = 20;
const IPV4_MAX_OPTIONS: usize = 40;
const IPV6_HEADER_LEN: usize = 40;
const IPV6_EXT_LEN: usize = 8;
const UDP_HEADER_LEN: usize = 8;
const TCP_HEADER_LEN: usize = 20;
const ICMP_HEADER_LEN: usize = 8;
const MAX_FRAGMENT_OFFSET: u16 = 0x1fff;
const MAX_FLOW_LABEL: u32 = 0xf_ffff;
const MAX_VLAN_ID: u16 = 4095;
const MAX_PCP: u8 = 7;
const MAX_IHL: u8 = 15;

/// Everything that can be wrong with a frame spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Two layers that cannot share a frame, e.g. ipv4 and ipv6.
    #[error("conflicting layers: {first} and {second}")]
    ConflictingLayers {
        /// The first layer, in spec order.
        first: &'static str,
        /// The layer that conflicts with it.
        second: &'static str,
    },
    /// `raw` together with a key it replaces.
    #[error("conflicting keys: raw and {other} (raw is the whole frame)")]
    RawConflict {
        /// The key given alongside `raw`.
        other: &'static str,
    },
    /// An L4 layer without the L3 layer it rides on.
    #[error("layer {layer} needs {needs} layer under it")]
    MissingLayer {
        /// The L4 layer.
        layer: &'static str,
        /// The L3 layer(s) it needs, with an article ("an ipv4").
        needs: &'static str,
    },
    /// A number outside the range its field can hold.
    #[error("{field} {value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The field, e.g. `vlan[1].id`.
        field: String,
        /// The value given.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// IPv4 options that are not whole 32-bit words.
    #[error("ipv4 options are {len} bytes long, not a multiple of 4")]
    Ipv4OptionsAlignment {
        /// Length of the options given.
        len: usize,
    },
    /// IPv4 options longer than a header can carry.
    #[error(
        "ipv4 options are {len} bytes long, more than the {IPV4_MAX_OPTIONS} an ipv4 header can carry"
    )]
    Ipv4OptionsTooLong {
        /// Length of the options given.
        len: usize,
    },
    /// A fragment-only field on another kind of IPv6 extension header.
    #[error("ipv6.ext[{index}]: {field} is only valid for kind = \"fragment\", not \"{kind}\"")]
    NotFragment {
        /// Position in the `ext` list.
        index: usize,
        /// The offending field.
        field: &'static str,
        /// The kind that was given.
        kind: Ipv6ExtKind,
    },
    /// `truncate = true` without a `size` to cut to.
    #[error("truncate = true needs a size to cut the frame to")]
    TruncateWithoutSize,
    /// A size smaller than the layers the spec asks for.
    #[error(
        "frame size {size} is smaller than its {natural} bytes of {what} (set truncate = true to cut it)"
    )]
    SizeBelowHeaders {
        /// The size asked for.
        size: usize,
        /// Bytes of headers (and payload) the spec describes.
        natural: usize,
        /// "headers" or "headers and payload".
        what: &'static str,
    },
    /// A size under the Ethernet minimum without `truncate`.
    #[error(
        "frame size {size} is below the ethernet minimum of {ETH_MIN_LEN} bytes (set truncate = true to send a runt)"
    )]
    SizeBelowMinimum {
        /// The size asked for.
        size: usize,
    },
    /// A frame too short to hold an Ethernet header.
    #[error("frame {what} {len} is shorter than an ethernet header ({ETH_HEADER_LEN} bytes)")]
    ShorterThanEthernet {
        /// "size" or "raw length".
        what: &'static str,
        /// The length given.
        len: usize,
    },
    /// A frame longer than the lab carries.
    #[error("frame of {len} bytes is longer than the maximum of {max} bytes")]
    TooLong {
        /// Length of the frame the spec describes.
        len: usize,
        /// Largest frame the caller accepts.
        max: usize,
    },
    /// An IP packet whose length does not fit its 16-bit length field.
    #[error("{layer} packet of {len} bytes does not fit its 16-bit length field")]
    IpTooLong {
        /// "ipv4" or "ipv6".
        layer: &'static str,
        /// The length that would go in the field.
        len: usize,
    },
    /// A character that is neither a hex digit nor a separator.
    #[error("invalid hex character {character:?} at position {position}")]
    HexCharacter {
        /// The character.
        character: char,
        /// Its position (in characters, from 0).
        position: usize,
    },
    /// A separator between the two digits of a byte.
    #[error("separator {character:?} at position {position} splits a byte")]
    HexSplitByte {
        /// The separator.
        character: char,
        /// Its position (in characters, from 0).
        position: usize,
    },
    /// Hex text ending in half a byte.
    #[error("odd number of hex digits ({digits}): every byte needs two")]
    HexOddDigits {
        /// How many digits were given.
        digits: usize,
    },
    /// An address string that does not parse.
    #[error("invalid {kind} address {text:?}")]
    Address {
        /// "mac", "ipv4" or "ipv6".
        kind: &'static str,
        /// The text given.
        text: String,
    },
    /// A TCP flags string with a letter outside FSRPAUEC.
    #[error("unknown tcp flag {flag:?} in {flags:?} (expected letters from {TCP_FLAG_LETTERS})")]
    TcpFlag {
        /// The unknown letter.
        flag: char,
        /// The whole flags string.
        flags: String,
    },
}

/// Addresses of the lab's two ends, used for every field a spec leaves out.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The sending interface's MAC: default Ethernet source and ARP sender.
    pub src_mac: MacAddr,
    /// The receiving interface's MAC: default Ethernet destination.
    pub dst_mac: MacAddr,
    /// Default IPv4 source and ARP sender address.
    pub src_ipv4: Ipv4Addr,
    /// Default IPv4 destination and ARP target address.
    pub dst_ipv4: Ipv4Addr,
    /// Default IPv6 source.
    pub src_ipv6: Ipv6Addr,
    /// Default IPv6 destination.
    pub dst_ipv6: Ipv6Addr,
}

/// Attribution tag carried in the payload: 16 bytes = magic b"XLAB" | run_id
/// u32 BE | group u16 BE | reserved u16 (0) | seq u32 BE.
///
/// The run id keeps frames of an earlier or concurrent run from being counted;
/// the group and sequence number say which send group sent the frame and which
/// of its frames it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Identifies one harness run.
    pub run_id: u32,
    /// Index of the send group within its scenario.
    pub group: u16,
    /// Frame number within the send group, from 0.
    pub seq: u32,
}

impl Tag {
    /// Bytes a tag takes in a frame.
    pub const LEN: usize = 16;
    /// First four bytes of every tag.
    pub const MAGIC: [u8; 4] = *b"XLAB";

    /// The tag as it appears in a frame.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..4].copy_from_slice(&Self::MAGIC);
        out[4..8].copy_from_slice(&self.run_id.to_be_bytes());
        out[8..10].copy_from_slice(&self.group.to_be_bytes());
        // 10..12 stays zero: reserved.
        out[12..16].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    /// Reads a tag from its 16 bytes, if they hold one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Tag> {
        let bytes: &[u8; Self::LEN] = bytes.get(..Self::LEN)?.try_into().ok()?;
        if bytes[0..4] != Self::MAGIC || bytes[10..12] != [0, 0] {
            return None;
        }
        Some(Tag {
            run_id: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
            group: u16::from_be_bytes([bytes[8], bytes[9]]),
            seq: u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]),
        })
    }

    /// The first tag of this run anywhere in the frame.
    ///
    /// Searches the whole frame rather than a fixed offset so that frames the
    /// program under test rewrote (added or removed headers) are still found.
    pub fn find(frame: &[u8], run_id: u32) -> Option<Tag> {
        Self::locate(frame, run_id).map(|(_, tag)| tag)
    }

    /// The first tag of this run anywhere in the frame, with its offset (for
    /// [`OutputSpec::check`](crate::scenario::OutputSpec::check)).
    pub fn locate(frame: &[u8], run_id: u32) -> Option<(usize, Tag)> {
        let run = run_id.to_be_bytes();
        frame
            .windows(Self::LEN)
            .enumerate()
            .filter(|(_, w)| w[0..4] == Self::MAGIC && w[4..8] == run)
            .find_map(|(at, w)| Tag::from_bytes(w).map(|tag| (at, tag)))
    }
}

/// Bytes written as hex text: `"deadbeef"`, `"de ad be ef"` or `"de:ad:be:ef"`.
///
/// Spaces, tabs, newlines, `:`, `-` and `_` may separate bytes; they may not
/// split one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for HexBytes {
    type Err = FrameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut out = Vec::with_capacity(text.len() / 2);
        let mut high: Option<u8> = None;
        let mut digits = 0;
        for (position, character) in text.chars().enumerate() {
            if let Some(value) = character.to_digit(16) {
                // to_digit(16) is below 16, so the cast cannot truncate.
                let value = value as u8;
                digits += 1;
                match high.take() {
                    Some(h) => out.push(h << 4 | value),
                    None => high = Some(value),
                }
            } else if character.is_whitespace() || matches!(character, ':' | '-' | '_') {
                if high.is_some() {
                    return Err(FrameError::HexSplitByte {
                        character,
                        position,
                    });
                }
            } else {
                return Err(FrameError::HexCharacter {
                    character,
                    position,
                });
            }
        }
        if high.is_some() {
            return Err(FrameError::HexOddDigits { digits });
        }
        Ok(HexBytes(out))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Description of one test frame, layer by layer; see `docs/scenario-format.md`.
///
/// Every field is optional. Addresses left out come from the lab's
/// [`Endpoints`]; other defaults are on each layer's fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a frame table")]
pub struct FrameSpec {
    /// Ethernet addresses and EtherType; default: all derived.
    pub eth: Option<EthSpec>,
    /// VLAN tags, outermost first; default none.
    pub vlan: Vec<VlanSpec>,
    /// An ARP body (excludes ipv4/ipv6).
    pub arp: Option<ArpSpec>,
    /// An IPv4 header (excludes arp/ipv6).
    pub ipv4: Option<Ipv4Spec>,
    /// An IPv6 header and extension headers (excludes arp/ipv4).
    pub ipv6: Option<Ipv6Spec>,
    /// A UDP header (needs ipv4 or ipv6).
    pub udp: Option<UdpSpec>,
    /// A TCP header without options (needs ipv4 or ipv6).
    pub tcp: Option<TcpSpec>,
    /// An ICMP header (needs ipv4).
    pub icmp: Option<IcmpSpec>,
    /// An ICMPv6 header (needs ipv6).
    pub icmpv6: Option<Icmpv6Spec>,
    /// Bytes after the innermost header, before the tag; default none.
    pub payload: Option<HexBytes>,
    /// Exact frame length without FCS; default: natural length + tag, at
    /// least 60.
    pub size: Option<usize>,
    /// Allows a `size` below the headers (cutting the frame) or below 60;
    /// default false.
    pub truncate: bool,
    /// The whole frame, verbatim; excludes every other key. Never tagged.
    pub raw: Option<HexBytes>,
}

/// Ethernet header fields.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an eth table (src, dst, ethertype)")]
pub struct EthSpec {
    /// Source MAC; default: the sender's.
    #[serde(deserialize_with = "de_mac")]
    pub src: Option<MacAddr>,
    /// Destination MAC; default: the receiver's.
    #[serde(deserialize_with = "de_mac")]
    pub dst: Option<MacAddr>,
    /// EtherType naming the L3 layer (after the VLAN tags, if any); default:
    /// derived from the L3 layer, or 0x88b5 when there is none.
    pub ethertype: Option<u16>,
}

/// One 802.1Q/802.1ad tag.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a vlan tag table (id, pcp, dei, tpid)")]
pub struct VlanSpec {
    /// VLAN id, 0..=4095; default 0 (a priority tag).
    pub id: u16,
    /// Priority code point, 0..=7; default 0.
    pub pcp: u8,
    /// Drop eligible indicator; default false.
    pub dei: bool,
    /// Tag protocol identifier; default 0x8100 (802.1Q). Use 0x88a8 for an
    /// 802.1ad outer tag.
    pub tpid: u16,
}

impl Default for VlanSpec {
    fn default() -> Self {
        VlanSpec {
            id: 0,
            pcp: 0,
            dei: false,
            tpid: 0x8100,
        }
    }
}

/// ARP operation: `"request"` (1), `"reply"` (2) or any number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpOp(pub u16);

impl ArpOp {
    /// Who has target-ip?
    pub const REQUEST: ArpOp = ArpOp(1);
    /// Sender-ip is at sender-mac.
    pub const REPLY: ArpOp = ArpOp(2);
}

impl Default for ArpOp {
    fn default() -> Self {
        ArpOp::REQUEST
    }
}

impl<'de> Deserialize<'de> for ArpOp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OpVisitor;
        impl Visitor<'_> for OpVisitor {
            type Value = ArpOp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"request\", \"reply\" or an integer in 0..=65535")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ArpOp, E> {
                match v {
                    "request" => Ok(ArpOp::REQUEST),
                    "reply" => Ok(ArpOp::REPLY),
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ArpOp, E> {
                u16::try_from(v)
                    .map(ArpOp)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ArpOp, E> {
                u16::try_from(v)
                    .map(ArpOp)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_any(OpVisitor)
    }
}

/// ARP body (Ethernet/IPv4, 28 bytes).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an arp table")]
pub struct ArpSpec {
    /// Operation; default request.
    pub op: ArpOp,
    /// Default: the sender's MAC.
    #[serde(deserialize_with = "de_mac")]
    pub sender_mac: Option<MacAddr>,
    /// Default: the sender's IPv4 address.
    #[serde(deserialize_with = "de_ipv4")]
    pub sender_ip: Option<Ipv4Addr>,
    /// Default: 00:00:00:00:00:00 for a request, the receiver's MAC otherwise.
    #[serde(deserialize_with = "de_mac")]
    pub target_mac: Option<MacAddr>,
    /// Default: the receiver's IPv4 address.
    #[serde(deserialize_with = "de_ipv4")]
    pub target_ip: Option<Ipv4Addr>,
}

/// IPv4 header fields.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an ipv4 table")]
pub struct Ipv4Spec {
    /// Default: the sender's IPv4 address.
    #[serde(deserialize_with = "de_ipv4")]
    pub src: Option<Ipv4Addr>,
    /// Default: the receiver's IPv4 address.
    #[serde(deserialize_with = "de_ipv4")]
    pub dst: Option<Ipv4Addr>,
    /// Default 64.
    pub ttl: u8,
    /// Type of service byte (DSCP << 2 | ECN); default 0.
    pub tos: u8,
    /// Identification; default 0.
    pub id: u16,
    /// DF flag; default false.
    pub dont_fragment: bool,
    /// MF flag; default false.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units, 0..=8191; default 0.
    pub fragment_offset: u16,
    /// Protocol field; default: derived from the L4 layer, or 253 without one.
    pub protocol: Option<u8>,
    /// Option bytes, a multiple of 4 and at most 40; default none.
    pub options: HexBytes,
    /// Header length field in 32-bit words, 0..=15; default: the real length.
    /// Only the field changes (for malformed-header tests): the header still
    /// has its real length and checksum.
    pub ihl: Option<u8>,
}

impl Default for Ipv4Spec {
    fn default() -> Self {
        Ipv4Spec {
            src: None,
            dst: None,
            ttl: 64,
            tos: 0,
            id: 0,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            protocol: None,
            options: HexBytes::default(),
            ihl: None,
        }
    }
}

/// IPv6 header fields and extension headers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an ipv6 table")]
pub struct Ipv6Spec {
    /// Default: the sender's IPv6 address.
    #[serde(deserialize_with = "de_ipv6")]
    pub src: Option<Ipv6Addr>,
    /// Default: the receiver's IPv6 address.
    #[serde(deserialize_with = "de_ipv6")]
    pub dst: Option<Ipv6Addr>,
    /// Default 64.
    pub hop_limit: u8,
    /// Default 0.
    pub traffic_class: u8,
    /// 0..=0xfffff; default 0.
    pub flow_label: u32,
    /// Next header naming the layer after the IPv6 headers (the last one in
    /// the extension chain); default: derived from the L4 layer, or 253.
    pub next_header: Option<u8>,
    /// Extension headers in wire order; default none.
    pub ext: Vec<Ipv6ExtSpec>,
}

impl Default for Ipv6Spec {
    fn default() -> Self {
        Ipv6Spec {
            src: None,
            dst: None,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            next_header: None,
            ext: Vec::new(),
        }
    }
}

/// Kind of an IPv6 extension header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6ExtKind {
    /// Hop-by-hop options (0), padded with PadN to 8 bytes.
    HopByHop,
    /// Routing header (43), type 0 with 0 segments left, 8 bytes.
    Routing,
    /// Destination options (60), padded with PadN to 8 bytes.
    Destination,
    /// Fragment header (44), 8 bytes.
    Fragment,
}

impl Ipv6ExtKind {
    /// The next-header value that names this header.
    pub fn protocol(self) -> u8 {
        match self {
            Ipv6ExtKind::HopByHop => 0,
            Ipv6ExtKind::Routing => 43,
            Ipv6ExtKind::Destination => 60,
            Ipv6ExtKind::Fragment => 44,
        }
    }

    /// The name used in scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Ipv6ExtKind::HopByHop => "hop-by-hop",
            Ipv6ExtKind::Routing => "routing",
            Ipv6ExtKind::Destination => "destination",
            Ipv6ExtKind::Fragment => "fragment",
        }
    }
}

impl fmt::Display for Ipv6ExtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One IPv6 extension header; `offset`, `more-fragments` and `id` are for
/// `kind = "fragment"` only.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an ipv6 extension header table (kind, ...)")]
pub struct Ipv6ExtSpec {
    /// Which header (required).
    pub kind: Ipv6ExtKind,
    /// Fragment offset in 8-byte units, 0..=8191; default 0.
    pub offset: Option<u16>,
    /// M flag; default false.
    pub more_fragments: Option<bool>,
    /// Identification; default 0.
    pub id: Option<u32>,
}

/// UDP header fields.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a udp table (src-port, dst-port)")]
pub struct UdpSpec {
    /// Default 40000.
    pub src_port: u16,
    /// Default 9 (discard).
    pub dst_port: u16,
}

impl Default for UdpSpec {
    fn default() -> Self {
        UdpSpec {
            src_port: 40000,
            dst_port: 9,
        }
    }
}

/// Letters for TCP flags, lowest bit first.
const TCP_FLAG_LETTERS: &str = "FSRPAUEC";

/// TCP flags written as letters from `FSRPAUEC` (FIN, SYN, RST, PSH, ACK, URG,
/// ECE, CWR): `"S"`, `"SA"`, `""` for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl Default for TcpFlags {
    fn default() -> Self {
        TcpFlags(pnet::packet::tcp::TcpFlags::SYN)
    }
}

impl FromStr for TcpFlags {
    type Err = FrameError;

    fn from_str(flags: &str) -> Result<Self, Self::Err> {
        let mut bits = 0u8;
        for flag in flags.chars() {
            let Some(bit) = TCP_FLAG_LETTERS.chars().position(|l| l == flag) else {
                return Err(FrameError::TcpFlag {
                    flag,
                    flags: flags.to_owned(),
                });
            };
            bits |= 1 << bit;
        }
        Ok(TcpFlags(bits))
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in TCP_FLAG_LETTERS.chars().enumerate() {
            if self.0 & (1 << bit) != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TcpFlags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// TCP header fields (no options).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a tcp table")]
pub struct TcpSpec {
    /// Default 40000.
    pub src_port: u16,
    /// Default 80.
    pub dst_port: u16,
    /// Default "S".
    pub flags: TcpFlags,
    /// Sequence number; default 0.
    pub seq: u32,
    /// Acknowledgement number; default 0.
    pub ack: u32,
    /// Default 65535.
    pub window: u16,
}

impl Default for TcpSpec {
    fn default() -> Self {
        TcpSpec {
            src_port: 40000,
            dst_port: 80,
            flags: TcpFlags::default(),
            seq: 0,
            ack: 0,
            window: 65535,
        }
    }
}

/// ICMP header; the 4 rest-of-header bytes are the echo identifier and
/// sequence number, big-endian (zero unless given).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an icmp table (type, code, id, seq, checksum)")]
pub struct IcmpSpec {
    /// Default 8 (echo request).
    #[serde(rename = "type")]
    pub icmp_type: u8,
    /// Default 0.
    pub code: u8,
    /// Echo identifier (rest-of-header bytes 0..2); default 0.
    pub id: u16,
    /// Echo sequence number (rest-of-header bytes 2..4); default 0.
    pub seq: u16,
    /// The checksum sent as is, right or wrong; default: computed (and kept
    /// right for every tagged copy).
    pub checksum: Option<u16>,
}

impl Default for IcmpSpec {
    fn default() -> Self {
        IcmpSpec {
            icmp_type: 8,
            code: 0,
            id: 0,
            seq: 0,
            checksum: None,
        }
    }
}

/// ICMPv6 header; the 4 rest-of-header bytes are the echo identifier and
/// sequence number, big-endian (zero unless given).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an icmpv6 table (type, code, id, seq, checksum)")]
pub struct Icmpv6Spec {
    /// Default 128 (echo request).
    #[serde(rename = "type")]
    pub icmp_type: u8,
    /// Default 0.
    pub code: u8,
    /// Echo identifier; default 0.
    pub id: u16,
    /// Echo sequence number; default 0.
    pub seq: u16,
    /// The checksum sent as is; default: computed.
    pub checksum: Option<u16>,
}

impl Default for Icmpv6Spec {
    fn default() -> Self {
        Icmpv6Spec {
            icmp_type: 128,
            code: 0,
            id: 0,
            seq: 0,
            checksum: None,
        }
    }
}

/// Length and tagging of the frame a spec describes, known before any
/// address is filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameShape {
    /// Bytes on the wire, without FCS.
    pub len: usize,
    /// Whether the frame carries a [`Tag`].
    pub tagged: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L3 {
    None,
    Arp,
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    None,
    Udp,
    Tcp,
    Icmp,
    Icmpv6,
}

impl L4 {
    fn header_len(self) -> usize {
        match self {
            L4::None => 0,
            L4::Udp => UDP_HEADER_LEN,
            L4::Tcp => TCP_HEADER_LEN,
            L4::Icmp | L4::Icmpv6 => ICMP_HEADER_LEN,
        }
    }

    fn protocol(self) -> u8 {
        match self {
            L4::None => IP_PROTO_EXPERIMENTAL,
            L4::Udp => 17,
            L4::Tcp => 6,
            L4::Icmp => 1,
            L4::Icmpv6 => 58,
        }
    }
}

/// Where every part of the frame goes.
#[derive(Clone, Copy, Debug)]
struct Plan {
    l3: L3,
    l4: L4,
    l3_off: usize,
    l4_off: usize,
    payload_off: usize,
    /// End of the payload: headers plus payload.
    natural: usize,
    tagged: bool,
    /// Length before truncation.
    full_len: usize,
    /// Length on the wire.
    len: usize,
}

impl FrameSpec {
    /// Checks the spec without addresses: conflicting layers, ranges, sizes
    /// against `max_len`. [`FrameTemplate::build`] runs the same checks.
    pub fn validate(&self, max_len: usize) -> Result<FrameShape, FrameError> {
        let plan = self.plan(max_len)?;
        Ok(FrameShape {
            len: plan.len,
            tagged: plan.tagged,
        })
    }

    /// Whether the frame starts with an 802.1Q tag (TPID 0x8100), which a
    /// packet socket lets exceed the MTU by the tag's 4 bytes.
    pub fn outer_8021q(&self) -> bool {
        match &self.raw {
            Some(raw) => starts_with_8021q(&raw.0),
            None => self.vlan.first().is_some_and(|v| v.tpid == 0x8100),
        }
    }

    /// The keys this spec sets, for conflict messages, in spec order.
    fn layers(&self) -> [(&'static str, bool); 9] {
        [
            ("eth", self.eth.is_some()),
            ("vlan", !self.vlan.is_empty()),
            ("arp", self.arp.is_some()),
            ("ipv4", self.ipv4.is_some()),
            ("ipv6", self.ipv6.is_some()),
            ("udp", self.udp.is_some()),
            ("tcp", self.tcp.is_some()),
            ("icmp", self.icmp.is_some()),
            ("icmpv6", self.icmpv6.is_some()),
        ]
    }

    fn plan(&self, max_len: usize) -> Result<Plan, FrameError> {
        if let Some(raw) = &self.raw {
            return self.plan_raw(raw, max_len);
        }
        let layers = self.layers();
        let l3 = pick_one(&layers[2..5])?;
        let l4 = pick_one(&layers[5..9])?;
        let l3 = match l3 {
            None => L3::None,
            Some("arp") => L3::Arp,
            Some("ipv4") => L3::Ipv4,
            Some(_) => L3::Ipv6,
        };
        let l4 = match l4 {
            None => L4::None,
            Some("udp") => L4::Udp,
            Some("tcp") => L4::Tcp,
            Some("icmp") => L4::Icmp,
            Some(_) => L4::Icmpv6,
        };
        match (l4, l3) {
            (L4::Udp | L4::Tcp, L3::Ipv4 | L3::Ipv6)
            | (L4::Icmp, L3::Ipv4)
            | (L4::Icmpv6, L3::Ipv6)
            | (L4::None, _) => {}
            (L4::Udp, _) => return Err(missing("udp", "an ipv4 or ipv6")),
            (L4::Tcp, _) => return Err(missing("tcp", "an ipv4 or ipv6")),
            (L4::Icmp, _) => return Err(missing("icmp", "an ipv4")),
            (L4::Icmpv6, _) => return Err(missing("icmpv6", "an ipv6")),
        }
        self.check_ranges()?;

        let l3_off = ETH_HEADER_LEN + VLAN_TAG_LEN * self.vlan.len();
        let l3_len = match l3 {
            L3::None => 0,
            L3::Arp => ARP_LEN,
            L3::Ipv4 => IPV4_HEADER_LEN + self.ipv4.as_ref().map_or(0, |ip| ip.options.len()),
            L3::Ipv6 => {
                IPV6_HEADER_LEN + IPV6_EXT_LEN * self.ipv6.as_ref().map_or(0, |ip| ip.ext.len())
            }
        };
        let l4_off = l3_off + l3_len;
        let payload_off = l4_off + l4.header_len();
        let payload_len = self.payload.as_ref().map_or(0, HexBytes::len);
        let natural = payload_off + payload_len;
        let (tagged, full_len, len) = match self.size {
            None => {
                if self.truncate {
                    return Err(FrameError::TruncateWithoutSize);
                }
                (true, (natural + Tag::LEN).max(ETH_MIN_LEN), None)
            }
            Some(size) => {
                if size < ETH_HEADER_LEN {
                    return Err(FrameError::ShorterThanEthernet {
                        what: "size",
                        len: size,
                    });
                }
                if size < natural && !self.truncate {
                    return Err(FrameError::SizeBelowHeaders {
                        size,
                        natural,
                        what: if payload_len == 0 {
                            "headers"
                        } else {
                            "headers and payload"
                        },
                    });
                }
                if size < ETH_MIN_LEN && !self.truncate {
                    return Err(FrameError::SizeBelowMinimum { size });
                }
                // Checked before any arithmetic on `size` so a huge size
                // cannot overflow below.
                if size > max_len {
                    return Err(FrameError::TooLong {
                        len: size,
                        max: max_len,
                    });
                }
                (size >= natural + Tag::LEN, size.max(natural), Some(size))
            }
        };
        if full_len > max_len {
            return Err(FrameError::TooLong {
                len: full_len,
                max: max_len,
            });
        }
        match l3 {
            L3::Ipv4 if full_len - l3_off > usize::from(u16::MAX) => {
                return Err(FrameError::IpTooLong {
                    layer: "ipv4",
                    len: full_len - l3_off,
                });
            }
            L3::Ipv6 if full_len - l3_off - IPV6_HEADER_LEN > usize::from(u16::MAX) => {
                return Err(FrameError::IpTooLong {
                    layer: "ipv6",
                    len: full_len - l3_off - IPV6_HEADER_LEN,
                });
            }
            _ => {}
        }
        Ok(Plan {
            l3,
            l4,
            l3_off,
            l4_off,
            payload_off,
            natural,
            tagged,
            full_len,
            len: len.unwrap_or(full_len),
        })
    }

    fn plan_raw(&self, raw: &HexBytes, max_len: usize) -> Result<Plan, FrameError> {
        let layers = self.layers();
        let others = [
            ("payload", self.payload.is_some()),
            ("size", self.size.is_some()),
            ("truncate", self.truncate),
        ];
        if let Some((other, _)) = layers.iter().chain(&others).find(|(_, set)| *set) {
            return Err(FrameError::RawConflict { other });
        }
        if raw.len() < ETH_HEADER_LEN {
            return Err(FrameError::ShorterThanEthernet {
                what: "raw length",
                len: raw.len(),
            });
        }
        if raw.len() > max_len {
            return Err(FrameError::TooLong {
                len: raw.len(),
                max: max_len,
            });
        }
        Ok(Plan {
            l3: L3::None,
            l4: L4::None,
            l3_off: ETH_HEADER_LEN,
            l4_off: ETH_HEADER_LEN,
            payload_off: ETH_HEADER_LEN,
            natural: raw.len(),
            tagged: false,
            full_len: raw.len(),
            len: raw.len(),
        })
    }

    fn check_ranges(&self) -> Result<(), FrameError> {
        for (i, vlan) in self.vlan.iter().enumerate() {
            check_range(format!("vlan[{i}].id"), vlan.id, MAX_VLAN_ID)?;
            check_range(format!("vlan[{i}].pcp"), vlan.pcp, MAX_PCP)?;
        }
        if let Some(ip) = &self.ipv4 {
            check_range(
                "ipv4.fragment-offset".into(),
                ip.fragment_offset,
                MAX_FRAGMENT_OFFSET,
            )?;
            if let Some(ihl) = ip.ihl {
                check_range("ipv4.ihl".into(), ihl, MAX_IHL)?;
            }
            let len = ip.options.len();
            if len % 4 != 0 {
                return Err(FrameError::Ipv4OptionsAlignment { len });
            }
            if len > IPV4_MAX_OPTIONS {
                return Err(FrameError::Ipv4OptionsTooLong { len });
            }
        }
        if let Some(ip) = &self.ipv6 {
            check_range("ipv6.flow-label".into(), ip.flow_label, MAX_FLOW_LABEL)?;
            for (index, ext) in ip.ext.iter().enumerate() {
                if ext.kind != Ipv6ExtKind::Fragment {
                    let fields = [
                        ("offset", ext.offset.is_some()),
                        ("more-fragments", ext.more_fragments.is_some()),
                        ("id", ext.id.is_some()),
                    ];
                    if let Some((field, _)) = fields.iter().find(|(_, set)| *set) {
                        return Err(FrameError::NotFragment {
                            index,
                            field,
                            kind: ext.kind,
                        });
                    }
                }
                if let Some(offset) = ext.offset {
                    check_range(
                        format!("ipv6.ext[{index}].offset"),
                        offset,
                        MAX_FRAGMENT_OFFSET,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Whether `frame`'s outermost EtherType is 802.1Q (0x8100).
pub fn starts_with_8021q(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x81, 0x00])
}

/// The one layer set among `layers`, or the first conflicting pair.
fn pick_one(layers: &[(&'static str, bool)]) -> Result<Option<&'static str>, FrameError> {
    let mut set = layers.iter().filter(|(_, set)| *set).map(|(name, _)| *name);
    let first = set.next();
    match (first, set.next()) {
        (Some(first), Some(second)) => Err(FrameError::ConflictingLayers { first, second }),
        _ => Ok(first),
    }
}

fn missing(layer: &'static str, needs: &'static str) -> FrameError {
    FrameError::MissingLayer { layer, needs }
}

fn check_range(
    field: String,
    value: impl Into<u64>,
    max: impl Into<u64>,
) -> Result<(), FrameError> {
    let (value, max) = (value.into(), max.into());
    if value > max {
        return Err(FrameError::OutOfRange {
            field,
            value,
            min: 0,
            max,
        });
    }
    Ok(())
}

/// How to patch the checksum covering the tag without recomputing it.
#[derive(Clone, Copy, Debug)]
struct TagChecksum {
    /// Offset of the 16-bit checksum field in the frame.
    field: usize,
    /// Ones' complement sum of everything the checksum covers, tag area zero.
    base: u16,
    /// Whether the tag starts at an odd offset from the checksummed data, so
    /// its bytes pair up the other way round in 16-bit words.
    odd: bool,
    /// UDP sends a computed 0 as 0xffff, since 0 means "no checksum".
    zero_is_ffff: bool,
}

/// A frame laid out once from a [`FrameSpec`], ready to be stamped with tags.
#[derive(Clone, Debug)]
pub struct FrameTemplate {
    bytes: Vec<u8>,
    tag_at: Option<usize>,
    checksum: Option<TagChecksum>,
}

impl FrameTemplate {
    /// Checks the spec (conflicting layers, sizes, ranges) and lays the frame
    /// out once. `max_len` is the longest frame the caller can send.
    pub fn build(
        spec: &FrameSpec,
        endpoints: &Endpoints,
        max_len: usize,
    ) -> Result<FrameTemplate, FrameError> {
        let plan = spec.plan(max_len)?;
        if let Some(raw) = &spec.raw {
            return Ok(FrameTemplate {
                bytes: raw.0.clone(),
                tag_at: None,
                checksum: None,
            });
        }
        // Laid out at full length, so length fields and checksums describe
        // the whole frame even when it is cut short afterwards.
        let mut buf = vec![0u8; plan.full_len];
        write_link(spec, endpoints, &plan, &mut buf);
        if let Some(payload) = &spec.payload {
            buf[plan.payload_off..plan.natural].copy_from_slice(&payload.0);
        }
        let tag_at = plan.tagged.then_some(plan.natural);
        let checksum = match plan.l3 {
            L3::None => None,
            L3::Arp => {
                write_arp(spec.arp.as_ref(), endpoints, &mut buf[plan.l3_off..]);
                None
            }
            L3::Ipv4 => {
                let ip = spec.ipv4.as_ref().expect("plan found ipv4");
                let (src, dst) = write_ipv4(ip, endpoints, &plan, &mut buf);
                write_l4(spec, &plan, &mut buf);
                let l4 = &buf[plan.l4_off..];
                let sum = match plan.l4 {
                    L4::None | L4::Icmpv6 => None,
                    L4::Udp => Some(pnet::packet::udp::ipv4_checksum(&udp_view(l4), &src, &dst)),
                    L4::Tcp => Some(pnet::packet::tcp::ipv4_checksum(&tcp_view(l4), &src, &dst)),
                    L4::Icmp => Some(pnet::packet::icmp::checksum(
                        &IcmpPacket::new(l4).expect("plan sized the icmp header"),
                    )),
                };
                sum.map(|sum| finish_checksum(&plan, tag_at, sum, &mut buf))
            }
            L3::Ipv6 => {
                let ip = spec.ipv6.as_ref().expect("plan found ipv6");
                let (src, dst) = write_ipv6(ip, endpoints, &plan, &mut buf);
                write_l4(spec, &plan, &mut buf);
                let l4 = &buf[plan.l4_off..];
                let sum = match plan.l4 {
                    L4::None | L4::Icmp => None,
                    L4::Udp => Some(pnet::packet::udp::ipv6_checksum(&udp_view(l4), &src, &dst)),
                    L4::Tcp => Some(pnet::packet::tcp::ipv6_checksum(&tcp_view(l4), &src, &dst)),
                    L4::Icmpv6 => Some(pnet::packet::icmpv6::checksum(
                        &Icmpv6Packet::new(l4).expect("plan sized the icmpv6 header"),
                        &src,
                        &dst,
                    )),
                };
                sum.map(|sum| finish_checksum(&plan, tag_at, sum, &mut buf))
            }
        };
        // A checksum the scenario gives is sent as is, in every copy: no
        // patching for the tag.
        let given = match plan.l4 {
            L4::Icmp => spec.icmp.as_ref().and_then(|icmp| icmp.checksum),
            L4::Icmpv6 => spec.icmpv6.as_ref().and_then(|icmp| icmp.checksum),
            _ => None,
        };
        let checksum = match given {
            Some(value) => {
                let field = plan.l4_off + 2;
                buf[field..field + 2].copy_from_slice(&value.to_be_bytes());
                None
            }
            None => checksum.flatten(),
        };
        buf.truncate(plan.len);
        Ok(FrameTemplate {
            bytes: buf,
            tag_at,
            checksum,
        })
    }

    /// Frame length on the wire, without FCS.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a frame has at least an Ethernet header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether frames carry a [`Tag`].
    pub fn is_tagged(&self) -> bool {
        self.tag_at.is_some()
    }

    /// Offset of the tag in the frame, if it has one.
    pub fn tag_offset(&self) -> Option<usize> {
        self.tag_at
    }

    /// The byte ranges that differ from copy to copy: the tag, and the
    /// checksum field patched for it. Empty for an untagged frame.
    pub fn per_copy(&self) -> Vec<std::ops::Range<usize>> {
        let mut ranges: Vec<std::ops::Range<usize>> = self
            .tag_at
            .map(|at| at..at + Tag::LEN)
            .into_iter()
            .collect();
        if let Some(fix) = self.checksum {
            ranges.push(fix.field..fix.field + 2);
        }
        ranges
    }

    /// The frame with a zero tag area: exactly what an untagged frame looks
    /// like.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes the frame carrying `tag` into `buf` (cleared first) and fixes
    /// every checksum that covers the tag. An untagged frame is copied as is.
    pub fn write(&self, tag: Tag, buf: &mut Vec<u8>) {
        buf.clear();
        buf.extend_from_slice(&self.bytes);
        let Some(at) = self.tag_at else {
            return;
        };
        let tag = tag.to_bytes();
        buf[at..at + Tag::LEN].copy_from_slice(&tag);
        if let Some(fix) = self.checksum {
            let mut tag_sum = ones_sum(&tag);
            // The ones' complement sum is byte-order independent (RFC 1071
            // 2(B)): data shifted by one byte sums to the byte-swapped sum.
            if fix.odd {
                tag_sum = tag_sum.swap_bytes();
            }
            let mut value = !ones_add(fix.base, tag_sum);
            if value == 0 && fix.zero_is_ffff {
                value = 0xffff;
            }
            buf[fix.field..fix.field + 2].copy_from_slice(&value.to_be_bytes());
        }
    }
}

/// Ones' complement sum of `data` as big-endian 16-bit words (even length).
fn ones_sum(data: &[u8]) -> u16 {
    data.chunks_exact(2)
        .fold(0, |sum, w| ones_add(sum, u16::from_be_bytes([w[0], w[1]])))
}

fn ones_add(a: u16, b: u16) -> u16 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u16::from(carry)
}

/// Writes the L4 checksum `sum` (computed with a zero tag area) and returns
/// how to patch it for a tag.
fn finish_checksum(
    plan: &Plan,
    tag_at: Option<usize>,
    sum: u16,
    buf: &mut [u8],
) -> Option<TagChecksum> {
    let zero_is_ffff = plan.l4 == L4::Udp;
    let field = plan.l4_off
        + match plan.l4 {
            L4::Udp => 6,
            L4::Tcp => 16,
            _ => 2,
        };
    let value = if sum == 0 && zero_is_ffff {
        0xffff
    } else {
        sum
    };
    buf[field..field + 2].copy_from_slice(&value.to_be_bytes());
    tag_at.map(|at| TagChecksum {
        field,
        base: !sum,
        odd: (at - plan.l4_off) % 2 == 1,
        zero_is_ffff,
    })
}

fn udp_view(l4: &[u8]) -> UdpPacket<'_> {
    UdpPacket::new(l4).expect("plan sized the udp header")
}

fn tcp_view(l4: &[u8]) -> TcpPacket<'_> {
    TcpPacket::new(l4).expect("plan sized the tcp header")
}

/// The EtherType naming the L3 layer.
fn l3_ethertype(spec: &FrameSpec, plan: &Plan) -> u16 {
    if let Some(ethertype) = spec.eth.as_ref().and_then(|eth| eth.ethertype) {
        return ethertype;
    }
    match plan.l3 {
        L3::None => ETHERTYPE_EXPERIMENTAL,
        L3::Arp => EtherTypes::Arp.0,
        L3::Ipv4 => EtherTypes::Ipv4.0,
        L3::Ipv6 => EtherTypes::Ipv6.0,
    }
}

fn write_link(spec: &FrameSpec, endpoints: &Endpoints, plan: &Plan, buf: &mut [u8]) {
    let eth = spec.eth.clone().unwrap_or_default();
    let l3_type = l3_ethertype(spec, plan);
    // Each EtherType field names what follows it: the next tag's TPID, or the
    // L3 layer after the last tag.
    let first_type = spec.vlan.first().map_or(l3_type, |v| v.tpid);
    let mut frame = MutableEthernetPacket::new(buf).expect("plan sized the ethernet header");
    frame.set_destination(eth.dst.unwrap_or(endpoints.dst_mac));
    frame.set_source(eth.src.unwrap_or(endpoints.src_mac));
    frame.set_ethertype(EtherType(first_type));
    for (i, vlan) in spec.vlan.iter().enumerate() {
        let next_type = spec.vlan.get(i + 1).map_or(l3_type, |v| v.tpid);
        let at = ETH_HEADER_LEN + VLAN_TAG_LEN * i;
        let mut tag = MutableVlanPacket::new(&mut buf[at..]).expect("plan sized the vlan tag");
        tag.set_priority_code_point(ClassOfService(vlan.pcp));
        tag.set_drop_eligible_indicator(u8::from(vlan.dei));
        tag.set_vlan_identifier(vlan.id);
        tag.set_ethertype(EtherType(next_type));
    }
}

fn write_arp(spec: Option<&ArpSpec>, endpoints: &Endpoints, buf: &mut [u8]) {
    let spec = spec.cloned().unwrap_or_default();
    let mut arp = MutableArpPacket::new(buf).expect("plan sized the arp body");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperation(spec.op.0));
    arp.set_sender_hw_addr(spec.sender_mac.unwrap_or(endpoints.src_mac));
    arp.set_sender_proto_addr(spec.sender_ip.unwrap_or(endpoints.src_ipv4));
    let default_target = if spec.op == ArpOp::REQUEST {
        MacAddr::zero()
    } else {
        endpoints.dst_mac
    };
    arp.set_target_hw_addr(spec.target_mac.unwrap_or(default_target));
    arp.set_target_proto_addr(spec.target_ip.unwrap_or(endpoints.dst_ipv4));
}

fn write_ipv4(
    spec: &Ipv4Spec,
    endpoints: &Endpoints,
    plan: &Plan,
    buf: &mut [u8],
) -> (Ipv4Addr, Ipv4Addr) {
    let src = spec.src.unwrap_or(endpoints.src_ipv4);
    let dst = spec.dst.unwrap_or(endpoints.dst_ipv4);
    let header_len = plan.l4_off - plan.l3_off;
    // Plan checked both fit: options at most 40 bytes, length at most 65535.
    let words = (header_len / 4) as u8;
    let total_len = (plan.full_len - plan.l3_off) as u16;
    let header = &mut buf[plan.l3_off..plan.l4_off];
    let mut ip = MutableIpv4Packet::new(header).expect("plan sized the ipv4 header");
    ip.set_version(4);
    ip.set_header_length(spec.ihl.unwrap_or(words));
    ip.set_dscp(spec.tos >> 2);
    ip.set_ecn(spec.tos & 0b11);
    ip.set_total_length(total_len);
    ip.set_identification(spec.id);
    ip.set_flags(u8::from(spec.dont_fragment) << 1 | u8::from(spec.more_fragments));
    ip.set_fragment_offset(spec.fragment_offset);
    ip.set_ttl(spec.ttl);
    ip.set_next_level_protocol(IpNextHeaderProtocol(
        spec.protocol.unwrap_or(plan.l4.protocol()),
    ));
    ip.set_source(src);
    ip.set_destination(dst);
    header[IPV4_HEADER_LEN..].copy_from_slice(&spec.options.0);
    // Over the real header, not the one `ihl` may claim: pnet's
    // ipv4::checksum would trust the field.
    let sum = pnet::util::checksum(header, 5);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    (src, dst)
}

fn write_ipv6(
    spec: &Ipv6Spec,
    endpoints: &Endpoints,
    plan: &Plan,
    buf: &mut [u8],
) -> (Ipv6Addr, Ipv6Addr) {
    let src = spec.src.unwrap_or(endpoints.src_ipv6);
    let dst = spec.dst.unwrap_or(endpoints.dst_ipv6);
    let upper = spec.next_header.unwrap_or(plan.l4.protocol());
    let first = spec.ext.first().map_or(upper, |ext| ext.kind.protocol());
    // Plan checked it fits.
    let payload_len = (plan.full_len - plan.l3_off - IPV6_HEADER_LEN) as u16;
    let mut ip = MutableIpv6Packet::new(&mut buf[plan.l3_off..]).expect("plan sized ipv6");
    ip.set_version(6);
    ip.set_traffic_class(spec.traffic_class);
    ip.set_flow_label(spec.flow_label);
    ip.set_payload_length(payload_len);
    ip.set_next_header(IpNextHeaderProtocol(first));
    ip.set_hop_limit(spec.hop_limit);
    ip.set_source(src);
    ip.set_destination(dst);
    for (i, ext) in spec.ext.iter().enumerate() {
        let next =
            IpNextHeaderProtocol(spec.ext.get(i + 1).map_or(upper, |ext| ext.kind.protocol()));
        let at = plan.l3_off + IPV6_HEADER_LEN + IPV6_EXT_LEN * i;
        let slot = &mut buf[at..at + IPV6_EXT_LEN];
        match ext.kind {
            Ipv6ExtKind::HopByHop | Ipv6ExtKind::Destination => {
                let mut hdr = MutableExtensionPacket::new(slot).expect("8-byte slot");
                hdr.set_next_header(next);
                hdr.set_hdr_ext_len(0);
                // One PadN option filling the 6 bytes after the first two.
                hdr.set_options(&[1, 4, 0, 0, 0, 0]);
            }
            Ipv6ExtKind::Routing => {
                let mut hdr = MutableRoutingPacket::new(slot).expect("8-byte slot");
                hdr.set_next_header(next);
                hdr.set_hdr_ext_len(0);
                hdr.set_routing_type(0);
                hdr.set_segments_left(0);
            }
            Ipv6ExtKind::Fragment => {
                let mut hdr = MutableFragmentPacket::new(slot).expect("8-byte slot");
                hdr.set_next_header(next);
                hdr.set_fragment_offset_with_flags(
                    ext.offset.unwrap_or(0) << 3 | u16::from(ext.more_fragments.unwrap_or(false)),
                );
                hdr.set_id(ext.id.unwrap_or(0));
            }
        }
    }
    (src, dst)
}

/// Writes the L4 header, checksum left zero.
fn write_l4(spec: &FrameSpec, plan: &Plan, buf: &mut [u8]) {
    let l4 = &mut buf[plan.l4_off..];
    match plan.l4 {
        L4::None => {}
        L4::Udp => {
            let udp_spec = spec.udp.clone().unwrap_or_default();
            // Plan checked the IP length fits 16 bits; UDP's is shorter.
            let len = (plan.full_len - plan.l4_off) as u16;
            let mut udp = MutableUdpPacket::new(l4).expect("plan sized the udp header");
            udp.set_source(udp_spec.src_port);
            udp.set_destination(udp_spec.dst_port);
            udp.set_length(len);
        }
        L4::Tcp => {
            let tcp_spec = spec.tcp.clone().unwrap_or_default();
            let mut tcp = MutableTcpPacket::new(l4).expect("plan sized the tcp header");
            tcp.set_source(tcp_spec.src_port);
            tcp.set_destination(tcp_spec.dst_port);
            tcp.set_sequence(tcp_spec.seq);
            tcp.set_acknowledgement(tcp_spec.ack);
            tcp.set_data_offset((TCP_HEADER_LEN / 4) as u8);
            tcp.set_flags(tcp_spec.flags.0);
            tcp.set_window(tcp_spec.window);
        }
        L4::Icmp => {
            let icmp_spec = spec.icmp.clone().unwrap_or_default();
            let mut icmp = MutableIcmpPacket::new(l4).expect("plan sized the icmp header");
            icmp.set_icmp_type(IcmpType(icmp_spec.icmp_type));
            icmp.set_icmp_code(IcmpCode(icmp_spec.code));
            l4[4..6].copy_from_slice(&icmp_spec.id.to_be_bytes());
            l4[6..8].copy_from_slice(&icmp_spec.seq.to_be_bytes());
        }
        L4::Icmpv6 => {
            let icmp_spec = spec.icmpv6.clone().unwrap_or_default();
            let mut icmp = MutableIcmpv6Packet::new(l4).expect("plan sized the icmpv6 header");
            icmp.set_icmpv6_type(Icmpv6Type(icmp_spec.icmp_type));
            icmp.set_icmpv6_code(Icmpv6Code(icmp_spec.code));
            l4[4..6].copy_from_slice(&icmp_spec.id.to_be_bytes());
            l4[6..8].copy_from_slice(&icmp_spec.seq.to_be_bytes());
        }
    }
}

pub(crate) fn parse_mac(text: &str) -> Result<MacAddr, FrameError> {
    let bad = || FrameError::Address {
        kind: "mac",
        text: text.to_owned(),
    };
    let mut octets = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for octet in &mut octets {
        let part = parts.next().ok_or_else(bad)?;
        if part.len() != 2 || !part.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        *octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(MacAddr::from(octets))
}

pub(crate) fn de_mac<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<MacAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_mac(&text).map(Some).map_err(de::Error::custom)
}

pub(crate) fn de_ipv4<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Ipv4Addr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|_| de::Error::custom(FrameError::Address { kind: "ipv4", text }))
}

pub(crate) fn de_ipv6<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Ipv6Addr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map(Some)
        .map_err(|_| de::Error::custom(FrameError::Address { kind: "ipv6", text }))
}

#[cfg(test)]
mod tests {
    use pnet::packet::Packet;
    use pnet::packet::arp::ArpPacket;
    use pnet::packet::ethernet::EthernetPacket;
    use pnet::packet::ipv4::Ipv4Packet;
    use pnet::packet::ipv6::{ExtensionPacket, FragmentPacket, Ipv6Packet, RoutingPacket};
    use pnet::packet::vlan::VlanPacket;
    use proptest::prelude::*;

    use super::*;

    const MAX: usize = 1518;

    fn ends() -> Endpoints {
        Endpoints {
            src_mac: MacAddr::new(2, 0, 0, 0, 0, 1),
            dst_mac: MacAddr::new(2, 0, 0, 0, 0, 2),
            src_ipv4: Ipv4Addr::new(10, 0, 0, 1),
            dst_ipv4: Ipv4Addr::new(10, 0, 0, 2),
            src_ipv6: "fd00::1".parse().unwrap(),
            dst_ipv6: "fd00::2".parse().unwrap(),
        }
    }

    fn spec(text: &str) -> FrameSpec {
        toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn build(text: &str) -> FrameTemplate {
        FrameTemplate::build(&spec(text), &ends(), MAX).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn build_err(text: &str) -> String {
        FrameTemplate::build(&spec(text), &ends(), MAX)
            .expect_err(text)
            .to_string()
    }

    const TAG: Tag = Tag {
        run_id: 0xdead_beef,
        group: 3,
        seq: 77,
    };

    /// One VLAN tag as parsed back: TPID, id, PCP, DEI.
    type ParsedTag = (u16, u16, u8, u8);

    /// The VLAN tags and the offset and EtherType of L3.
    fn walk_link(frame: &[u8]) -> (Vec<ParsedTag>, usize, u16) {
        let eth = EthernetPacket::new(frame).unwrap();
        let mut ethertype = eth.get_ethertype().0;
        let mut at = ETH_HEADER_LEN;
        let mut tags = Vec::new();
        while matches!(ethertype, 0x8100 | 0x88a8) {
            let vlan = VlanPacket::new(&frame[at..]).unwrap();
            tags.push((
                ethertype,
                vlan.get_vlan_identifier(),
                vlan.get_priority_code_point().0,
                vlan.get_drop_eligible_indicator(),
            ));
            ethertype = vlan.get_ethertype().0;
            at += VLAN_TAG_LEN;
        }
        (tags, at, ethertype)
    }

    /// Checks the IPv4 header checksum over `header_len` bytes.
    fn assert_ipv4_checksum(ip: &[u8], header_len: usize) {
        let field = u16::from_be_bytes([ip[10], ip[11]]);
        assert_eq!(pnet::util::checksum(&ip[..header_len], 5), field);
    }

    /// Checks a transmitted L4 checksum against pnet's computation.
    fn assert_l4_checksum(field: u16, computed: u16, udp: bool) {
        if udp && computed == 0 {
            assert_eq!(field, 0xffff);
        } else {
            assert_eq!(field, computed);
        }
    }

    /// Parses an IPv4 or IPv6 frame back and verifies every checksum.
    fn assert_checksums(frame: &[u8]) {
        let (_, l3, ethertype) = walk_link(frame);
        match ethertype {
            0x0800 => {
                let ip = Ipv4Packet::new(&frame[l3..]).unwrap();
                assert_ipv4_checksum(&frame[l3..], usize::from(ip.get_header_length()) * 4);
                let (src, dst) = (ip.get_source(), ip.get_destination());
                let l4 = &frame[l3 + usize::from(ip.get_header_length()) * 4..];
                match ip.get_next_level_protocol().0 {
                    17 => {
                        let udp = UdpPacket::new(l4).unwrap();
                        let sum = pnet::packet::udp::ipv4_checksum(&udp, &src, &dst);
                        assert_l4_checksum(udp.get_checksum(), sum, true);
                    }
                    6 => {
                        let tcp = TcpPacket::new(l4).unwrap();
                        let sum = pnet::packet::tcp::ipv4_checksum(&tcp, &src, &dst);
                        assert_l4_checksum(tcp.get_checksum(), sum, false);
                    }
                    1 => {
                        let icmp = IcmpPacket::new(l4).unwrap();
                        let sum = pnet::packet::icmp::checksum(&icmp);
                        assert_l4_checksum(icmp.get_checksum(), sum, false);
                    }
                    _ => {}
                }
            }
            0x86dd => {
                let ip = Ipv6Packet::new(&frame[l3..]).unwrap();
                let (src, dst) = (ip.get_source(), ip.get_destination());
                let (upper, l4_off) = walk_ipv6_ext(&frame[l3..]);
                let l4 = &frame[l3 + l4_off..];
                match upper {
                    17 => {
                        let udp = UdpPacket::new(l4).unwrap();
                        let sum = pnet::packet::udp::ipv6_checksum(&udp, &src, &dst);
                        assert_l4_checksum(udp.get_checksum(), sum, true);
                    }
                    6 => {
                        let tcp = TcpPacket::new(l4).unwrap();
                        let sum = pnet::packet::tcp::ipv6_checksum(&tcp, &src, &dst);
                        assert_l4_checksum(tcp.get_checksum(), sum, false);
                    }
                    58 => {
                        let icmp = Icmpv6Packet::new(l4).unwrap();
                        let sum = pnet::packet::icmpv6::checksum(&icmp, &src, &dst);
                        assert_l4_checksum(icmp.get_checksum(), sum, false);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Follows the IPv6 extension chain: the upper-layer protocol and its
    /// offset from the start of the IPv6 header.
    fn walk_ipv6_ext(ip: &[u8]) -> (u8, usize) {
        let mut next = Ipv6Packet::new(ip).unwrap().get_next_header().0;
        let mut at = IPV6_HEADER_LEN;
        while matches!(next, 0 | 43 | 44 | 60) {
            let ext = ExtensionPacket::new(&ip[at..]).unwrap();
            next = ext.get_next_header().0;
            at += usize::from(ext.get_hdr_ext_len()) * 8 + 8;
        }
        (next, at)
    }

    fn be16(frame: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([frame[at], frame[at + 1]])
    }

    #[test]
    fn tag_round_trips_and_is_found_by_run() {
        let bytes = TAG.to_bytes();
        assert_eq!(&bytes[..4], b"XLAB");
        assert_eq!(&bytes[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&bytes[8..12], &[0, 3, 0, 0]);
        assert_eq!(&bytes[12..], &[0, 0, 0, 77]);
        assert_eq!(Tag::from_bytes(&bytes), Some(TAG));

        let mut frame = vec![0x58; 7];
        frame.extend_from_slice(&Tag { run_id: 1, ..TAG }.to_bytes());
        frame.extend_from_slice(&bytes);
        frame.extend_from_slice(&Tag { seq: 78, ..TAG }.to_bytes());
        assert_eq!(Tag::find(&frame, TAG.run_id), Some(TAG));
        assert_eq!(Tag::find(&frame, 1), Some(Tag { run_id: 1, ..TAG }));
        assert_eq!(Tag::find(&frame, 2), None);
        assert_eq!(Tag::find(&frame[..20], TAG.run_id), None);
        assert_eq!(Tag::locate(&frame, TAG.run_id), Some((23, TAG)));
        assert_eq!(Tag::locate(&frame, 1), Some((7, Tag { run_id: 1, ..TAG })));
        assert_eq!(Tag::locate(&frame, 2), None);

        let mut reserved = bytes;
        reserved[11] = 1;
        assert_eq!(Tag::from_bytes(&reserved), None);
        assert_eq!(Tag::find(&reserved, TAG.run_id), None);
    }

    #[test]
    fn hex_accepts_separators_between_bytes() {
        for text in [
            "deadbeef",
            "de ad be ef",
            "de:ad:be:ef",
            "DE-AD_BE\nEF",
            " de ad ",
        ] {
            let bytes: HexBytes = text.parse().unwrap();
            let want: &[u8] = if text.trim() == "de ad" {
                &[0xde, 0xad]
            } else {
                &[0xde, 0xad, 0xbe, 0xef]
            };
            assert_eq!(bytes.0, want, "{text:?}");
        }
        assert!("".parse::<HexBytes>().unwrap().is_empty());
    }

    #[test]
    fn hex_errors_name_the_problem() {
        let err = |text: &str| text.parse::<HexBytes>().unwrap_err().to_string();
        assert_eq!(err("dexd"), "invalid hex character 'x' at position 2");
        assert_eq!(err("0xff"), "invalid hex character 'x' at position 1");
        assert_eq!(err("d ead"), "separator ' ' at position 1 splits a byte");
        assert_eq!(
            err("dea"),
            "odd number of hex digits (3): every byte needs two"
        );
    }

    #[test]
    fn eth_only_frame_is_padded_to_minimum_and_tagged() {
        let frame = build("");
        assert_eq!(frame.len(), ETH_MIN_LEN);
        assert!(frame.is_tagged());
        assert_eq!(frame.tag_offset(), Some(ETH_HEADER_LEN));
        let eth = EthernetPacket::new(frame.bytes()).unwrap();
        assert_eq!(eth.get_source(), ends().src_mac);
        assert_eq!(eth.get_destination(), ends().dst_mac);
        assert_eq!(eth.get_ethertype().0, ETHERTYPE_EXPERIMENTAL);
        assert!(frame.bytes()[ETH_HEADER_LEN..].iter().all(|b| *b == 0));

        let frame = build(
            r#"eth = { src = "02:aa:bb:cc:dd:ee", dst = "ff-ff-ff-ff-ff-ff", ethertype = 0x1234 }
               payload = "01 02 03""#,
        );
        let mut buf = Vec::new();
        frame.write(TAG, &mut buf);
        let eth = EthernetPacket::new(&buf).unwrap();
        assert_eq!(
            eth.get_source(),
            MacAddr::new(2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee)
        );
        assert_eq!(eth.get_destination(), MacAddr::broadcast());
        assert_eq!(eth.get_ethertype().0, 0x1234);
        assert_eq!(&buf[14..17], &[1, 2, 3]);
        assert_eq!(frame.tag_offset(), Some(17));
        assert_eq!(Tag::find(&buf, TAG.run_id), Some(TAG));
    }

    #[test]
    fn ipv4_udp_defaults() {
        let frame = build("ipv4 = {}\nudp = {}");
        // 14 + 20 + 8 + 16 = 58, padded to 60.
        assert_eq!(frame.len(), 60);
        assert_eq!(frame.tag_offset(), Some(42));
        let bytes = frame.bytes();
        let (tags, l3, ethertype) = walk_link(bytes);
        assert!(tags.is_empty());
        assert_eq!((l3, ethertype), (14, 0x0800));
        let ip = Ipv4Packet::new(&bytes[l3..]).unwrap();
        assert_eq!(ip.get_version(), 4);
        assert_eq!(ip.get_header_length(), 5);
        assert_eq!(ip.get_total_length(), 46);
        assert_eq!(ip.get_ttl(), 64);
        assert_eq!(ip.get_flags(), 0);
        assert_eq!(ip.get_next_level_protocol().0, 17);
        assert_eq!(ip.get_source(), ends().src_ipv4);
        assert_eq!(ip.get_destination(), ends().dst_ipv4);
        let udp = UdpPacket::new(ip.payload()).unwrap();
        assert_eq!(udp.get_source(), 40000);
        assert_eq!(udp.get_destination(), 9);
        assert_eq!(udp.get_length(), 26);
        assert_checksums(bytes);
    }

    #[test]
    fn ipv4_fields_and_options() {
        let frame = build(
            r#"ipv4 = { src = "192.0.2.1", dst = "198.51.100.7", ttl = 1, tos = 0xb9, id = 4242,
                        dont-fragment = true, more-fragments = true, fragment-offset = 185,
                        options = "01 01 01 00" }
               udp = { src-port = 1234, dst-port = 53 }
               payload = "aabbccdd"
               size = 128"#,
        );
        assert_eq!(frame.len(), 128);
        let bytes = frame.bytes();
        let ip = Ipv4Packet::new(&bytes[14..]).unwrap();
        assert_eq!(ip.get_source(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ip.get_destination(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(
            (ip.get_ttl(), ip.get_dscp(), ip.get_ecn()),
            (1, 0xb9 >> 2, 1)
        );
        assert_eq!(ip.get_identification(), 4242);
        assert_eq!(ip.get_flags(), 0b011);
        assert_eq!(ip.get_fragment_offset(), 185);
        assert_eq!(ip.get_header_length(), 6);
        assert_eq!(&bytes[34..38], &[1, 1, 1, 0]);
        assert_eq!(ip.get_total_length(), 128 - 14);
        let udp = UdpPacket::new(ip.payload()).unwrap();
        assert_eq!((udp.get_source(), udp.get_destination()), (1234, 53));
        assert_eq!(udp.get_length(), 128 - 38);
        assert_eq!(&udp.payload()[..4], &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(frame.tag_offset(), Some(38 + 8 + 4));
        assert_checksums(bytes);
    }

    #[test]
    fn ipv4_overrides_keep_a_real_checksum() {
        let frame = build("ipv4 = { ihl = 15, protocol = 99 }\nudp = {}");
        let bytes = frame.bytes();
        assert_eq!(bytes[14], 0x4f);
        assert_eq!(bytes[14 + 9], 99);
        assert_ipv4_checksum(&bytes[14..], 20);
        // The UDP checksum uses UDP's own pseudo-header protocol.
        let udp = UdpPacket::new(&bytes[34..]).unwrap();
        let sum = pnet::packet::udp::ipv4_checksum(&udp, &ends().src_ipv4, &ends().dst_ipv4);
        assert_l4_checksum(udp.get_checksum(), sum, true);

        let bare = build("ipv4 = {}");
        assert_eq!(bare.bytes()[14 + 9], IP_PROTO_EXPERIMENTAL);
        assert_eq!(bare.tag_offset(), Some(34));
    }

    #[test]
    fn ipv6_tcp_fields() {
        let frame = build(
            r#"ipv6 = { src = "2001:db8::1", dst = "2001:db8::2", hop-limit = 3, traffic-class = 0x2e, flow-label = 0xabcde }
               tcp = { src-port = 5555, dst-port = 443, flags = "SAC", seq = 1000, ack = 2000, window = 1024 }"#,
        );
        let bytes = frame.bytes();
        // 14 + 40 + 20 + 16 = 90.
        assert_eq!(frame.len(), 90);
        let (_, l3, ethertype) = walk_link(bytes);
        assert_eq!(ethertype, 0x86dd);
        let ip = Ipv6Packet::new(&bytes[l3..]).unwrap();
        assert_eq!(ip.get_version(), 6);
        assert_eq!(ip.get_source(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            ip.get_destination(),
            "2001:db8::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ip.get_hop_limit(), 3);
        assert_eq!(ip.get_traffic_class(), 0x2e);
        assert_eq!(ip.get_flow_label(), 0xabcde);
        assert_eq!(ip.get_payload_length(), 36);
        assert_eq!(ip.get_next_header().0, 6);
        let tcp = TcpPacket::new(ip.payload()).unwrap();
        assert_eq!((tcp.get_source(), tcp.get_destination()), (5555, 443));
        assert_eq!(tcp.get_flags(), 0x02 | 0x10 | 0x80);
        assert_eq!(
            (tcp.get_sequence(), tcp.get_acknowledgement()),
            (1000, 2000)
        );
        assert_eq!(tcp.get_window(), 1024);
        assert_eq!(tcp.get_data_offset(), 5);
        assert_checksums(bytes);

        let default = build("ipv6 = {}\ntcp = {}");
        let tcp = TcpPacket::new(&default.bytes()[54..]).unwrap();
        assert_eq!(tcp.get_flags(), 0x02);
        assert_eq!((tcp.get_source(), tcp.get_destination()), (40000, 80));
        assert_eq!(tcp.get_window(), 65535);
        let ip = Ipv6Packet::new(&default.bytes()[14..]).unwrap();
        assert_eq!(ip.get_source(), ends().src_ipv6);
        assert_eq!(ip.get_destination(), ends().dst_ipv6);
        assert_eq!(ip.get_hop_limit(), 64);
    }

    #[test]
    fn icmp_and_icmpv6() {
        let frame = build("ipv4 = {}\nicmp = {}");
        let bytes = frame.bytes();
        assert_eq!(bytes[14 + 9], 1);
        let icmp = IcmpPacket::new(&bytes[34..]).unwrap();
        assert_eq!((icmp.get_icmp_type().0, icmp.get_icmp_code().0), (8, 0));
        assert_eq!(&bytes[38..42], &[0, 0, 0, 0]);
        assert_eq!(frame.tag_offset(), Some(42));
        assert_checksums(bytes);

        let frame = build("ipv4 = {}\nicmp = { type = 3, code = 4 }");
        assert_eq!(&frame.bytes()[34..36], &[3, 4]);

        let frame = build("ipv6 = {}\nicmpv6 = { type = 135 }");
        let bytes = frame.bytes();
        assert_eq!(bytes[14 + 6], 58);
        let icmp = Icmpv6Packet::new(&bytes[54..]).unwrap();
        assert_eq!(
            (icmp.get_icmpv6_type().0, icmp.get_icmpv6_code().0),
            (135, 0)
        );
        assert_checksums(bytes);
        assert_eq!(build("ipv6 = {}\nicmpv6 = {}").bytes()[54], 128);
    }

    #[test]
    fn icmp_echo_id_seq_and_given_checksum() {
        let frame = build("ipv4 = {}\nicmp = { type = 8, id = 0x1234, seq = 7 }");
        let bytes = frame.bytes();
        assert_eq!(&bytes[38..42], &[0x12, 0x34, 0, 7]);
        assert_checksums(bytes);
        let mut buf = Vec::new();
        frame.write(TAG, &mut buf);
        assert_checksums(&buf);

        let frame = build("ipv6 = {}\nicmpv6 = { type = 129, id = 1, seq = 0xfffe }");
        assert_eq!(&frame.bytes()[58..62], &[0, 1, 0xff, 0xfe]);
        assert_checksums(frame.bytes());
        frame.write(TAG, &mut buf);
        assert_checksums(&buf);

        // A given checksum is sent as is, in every tagged copy.
        for text in [
            "ipv4 = {}\nicmp = { checksum = 0x1234 }",
            "ipv6 = {}\nicmpv6 = { checksum = 0x1234 }",
        ] {
            let frame = build(text);
            let at = if text.starts_with("ipv4") { 36 } else { 56 };
            assert_eq!(&frame.bytes()[at..at + 2], &[0x12, 0x34], "{text}");
            frame.write(TAG, &mut buf);
            assert_eq!(&buf[at..at + 2], &[0x12, 0x34], "{text}");
            frame.write(Tag { seq: 9, ..TAG }, &mut buf);
            assert_eq!(&buf[at..at + 2], &[0x12, 0x34], "{text}");
        }
    }

    #[test]
    fn arp_request_and_reply() {
        let frame = build("arp = {}");
        let bytes = frame.bytes();
        assert_eq!(frame.len(), 60);
        assert_eq!(frame.tag_offset(), Some(42));
        assert_eq!(walk_link(bytes).2, 0x0806);
        let arp = ArpPacket::new(&bytes[14..]).unwrap();
        assert_eq!(arp.get_hardware_type(), ArpHardwareTypes::Ethernet);
        assert_eq!(arp.get_protocol_type(), EtherTypes::Ipv4);
        assert_eq!((arp.get_hw_addr_len(), arp.get_proto_addr_len()), (6, 4));
        assert_eq!(arp.get_operation().0, 1);
        assert_eq!(arp.get_sender_hw_addr(), ends().src_mac);
        assert_eq!(arp.get_sender_proto_addr(), ends().src_ipv4);
        assert_eq!(arp.get_target_hw_addr(), MacAddr::zero());
        assert_eq!(arp.get_target_proto_addr(), ends().dst_ipv4);

        let frame = build(
            r#"arp = { op = "reply", sender-ip = "10.9.9.9", target-mac = "02:00:00:00:00:99" }"#,
        );
        let arp = ArpPacket::new(&frame.bytes()[14..]).unwrap();
        assert_eq!(arp.get_operation().0, 2);
        assert_eq!(arp.get_sender_proto_addr(), Ipv4Addr::new(10, 9, 9, 9));
        assert_eq!(arp.get_target_hw_addr(), MacAddr::new(2, 0, 0, 0, 0, 0x99));

        let frame = build("arp = { op = 2 }");
        let arp = ArpPacket::new(&frame.bytes()[14..]).unwrap();
        assert_eq!(arp.get_target_hw_addr(), ends().dst_mac);
        assert_eq!(build("arp = { op = 9 }").bytes()[21], 9);
        assert!(toml::from_str::<FrameSpec>("arp = { op = \"ask\" }").is_err());
        assert!(toml::from_str::<FrameSpec>("arp = { op = 70000 }").is_err());
    }

    #[test]
    fn vlan_single_qinq_and_three_tags() {
        let frame = build("vlan = [{ id = 100, pcp = 5, dei = true }]\nipv4 = {}\nudp = {}");
        let (tags, l3, ethertype) = walk_link(frame.bytes());
        assert_eq!(tags, vec![(0x8100, 100, 5, 1)]);
        assert_eq!((l3, ethertype), (18, 0x0800));
        assert_eq!(frame.len(), 62);
        assert_checksums(frame.bytes());

        let frame = build(
            "vlan = [{ id = 10, tpid = 0x88a8 }, { id = 20 }]\nipv6 = {}\nudp = { dst-port = 7 }",
        );
        let (tags, l3, ethertype) = walk_link(frame.bytes());
        assert_eq!(tags, vec![(0x88a8, 10, 0, 0), (0x8100, 20, 0, 0)]);
        assert_eq!((l3, ethertype), (22, 0x86dd));
        assert_eq!(be16(frame.bytes(), l3 + 40 + 2), 7);
        assert_checksums(frame.bytes());

        let frame = build(
            "vlan = [{ id = 1 }, { id = 2 }, { id = 4095 }]\neth = { ethertype = 0x0801 }\nipv4 = {}",
        );
        let (tags, l3, ethertype) = walk_link(frame.bytes());
        assert_eq!(
            tags.iter().map(|t| t.1).collect::<Vec<_>>(),
            vec![1, 2, 4095]
        );
        // eth.ethertype names the L3 layer, after the tags.
        assert_eq!((l3, ethertype), (26, 0x0801));
        assert_eq!(frame.tag_offset(), Some(26 + 20));

        let frame = build("vlan = [{}]");
        assert_eq!(
            walk_link(frame.bytes()),
            (vec![(0x8100, 0, 0, 0)], 18, 0x88b5)
        );
    }

    #[test]
    fn ipv6_extension_chain() {
        let frame = build(
            r#"ipv6 = { ext = [
                   { kind = "hop-by-hop" },
                   { kind = "routing" },
                   { kind = "fragment", offset = 3, more-fragments = true, id = 0x01020304 },
                   { kind = "destination" },
               ] }
               udp = {}
               payload = "ff""#,
        );
        let bytes = frame.bytes();
        let ip = &bytes[14..];
        assert_eq!(ip[6], 0);
        let hbh = ExtensionPacket::new(&ip[40..]).unwrap();
        assert_eq!((hbh.get_next_header().0, hbh.get_hdr_ext_len()), (43, 0));
        assert_eq!(&ip[42..48], &[1, 4, 0, 0, 0, 0]);
        let routing = RoutingPacket::new(&ip[48..]).unwrap();
        assert_eq!(routing.get_next_header().0, 44);
        assert_eq!(
            (routing.get_routing_type(), routing.get_segments_left()),
            (0, 0)
        );
        let fragment = FragmentPacket::new(&ip[56..]).unwrap();
        assert_eq!(fragment.get_next_header().0, 60);
        assert_eq!(fragment.get_fragment_offset_with_flags(), 3 << 3 | 1);
        assert_eq!(fragment.get_id(), 0x0102_0304);
        let dest = ExtensionPacket::new(&ip[64..]).unwrap();
        assert_eq!(dest.get_next_header().0, 17);
        assert_eq!(walk_ipv6_ext(ip), (17, 72));
        let ipv6 = Ipv6Packet::new(ip).unwrap();
        assert_eq!(
            usize::from(ipv6.get_payload_length()),
            frame.len() - 14 - 40
        );
        // 14 + 40 + 32 + 8 + 1 = 95, then the tag.
        assert_eq!(frame.tag_offset(), Some(95));
        assert_eq!(frame.len(), 111);
        assert_checksums(bytes);
        let mut buf = Vec::new();
        frame.write(TAG, &mut buf);
        assert_checksums(&buf);

        let frame =
            build("ipv6 = { next-header = 250, ext = [{ kind = \"fragment\" }] }\nudp = {}");
        assert_eq!(frame.bytes()[14 + 6], 44);
        assert_eq!(frame.bytes()[54], 250);
        assert_eq!(build("ipv6 = {}").bytes()[20], IP_PROTO_EXPERIMENTAL);
    }

    #[test]
    fn write_stamps_tags_and_keeps_checksums_valid() {
        let specs = [
            "ipv4 = {}\nudp = {}",
            "ipv4 = {}\nudp = {}\npayload = \"01\"",
            "ipv4 = {}\ntcp = {}\npayload = \"010203\"\nsize = 300",
            "ipv4 = {}\nicmp = {}\npayload = \"01\"",
            "ipv6 = {}\nudp = {}\npayload = \"01\"",
            "ipv6 = {}\ntcp = {}",
            "ipv6 = {}\nicmpv6 = {}\npayload = \"0102030405\"",
            "vlan = [{ id = 5 }]\nipv6 = { ext = [{ kind = \"hop-by-hop\" }] }\nudp = {}",
        ];
        let mut buf = vec![0xee; 3];
        for text in specs {
            let frame = build(text);
            assert_checksums(frame.bytes());
            for (i, tag) in [
                TAG,
                Tag { seq: 0, ..TAG },
                Tag {
                    run_id: u32::MAX,
                    group: u16::MAX,
                    seq: u32::MAX,
                },
                Tag {
                    run_id: 0,
                    group: 0,
                    seq: 0,
                },
            ]
            .into_iter()
            .enumerate()
            {
                frame.write(tag, &mut buf);
                assert_eq!(buf.len(), frame.len(), "{text}");
                assert_checksums(&buf);
                assert_eq!(Tag::find(&buf, tag.run_id), Some(tag), "{text} #{i}");
                let at = frame.tag_offset().unwrap();
                assert_eq!(&buf[at..at + Tag::LEN], &tag.to_bytes());
            }
        }
    }

    #[test]
    fn udp_checksum_of_zero_goes_out_as_ffff() {
        // Picks a sequence number that makes the sum come out as 0xffff, so
        // the computed checksum is 0 and must be sent as 0xffff.
        for text in ["ipv4 = {}\nudp = {}", "ipv6 = {}\nudp = {}"] {
            let frame = build(text);
            // No payload: the tag directly follows the UDP header.
            let field = frame.tag_offset().unwrap() - UDP_HEADER_LEN + 6;
            let base = !be16(frame.bytes(), field);
            let partial = ones_sum(&Tag { seq: 0, ..TAG }.to_bytes());
            let word = !ones_add(base, partial);
            let tag = Tag {
                seq: u32::from(word),
                ..TAG
            };
            let mut buf = Vec::new();
            frame.write(tag, &mut buf);
            assert_eq!(be16(&buf, field), 0xffff, "{text}");
            assert_checksums(&buf);
        }
    }

    #[test]
    fn size_edges() {
        // ipv4 + udp: 42 bytes of headers.
        let shape = |size: usize| {
            spec(&format!("ipv4 = {{}}\nudp = {{}}\nsize = {size}"))
                .validate(MAX)
                .map(|s| (s.len, s.tagged))
        };
        assert_eq!(shape(60), Ok((60, true)));
        assert_eq!(shape(58), Err(FrameError::SizeBelowMinimum { size: 58 }));
        let untagged =
            build("ipv4 = {}\nudp = {}\npayload = \"00 00 00 00 00 00 00 00 00 00\"\nsize = 67");
        // 52 bytes of headers and payload: 67 leaves room for 15 bytes only.
        assert!(!untagged.is_tagged());
        assert_eq!(untagged.len(), 67);
        assert_checksums(untagged.bytes());
        let mut buf = Vec::new();
        untagged.write(TAG, &mut buf);
        assert_eq!(buf, untagged.bytes());
        let tagged =
            build("ipv4 = {}\nudp = {}\npayload = \"00 00 00 00 00 00 00 00 00 00\"\nsize = 68");
        assert!(tagged.is_tagged());
        assert_eq!(tagged.tag_offset(), Some(52));

        let ipv6 = "vlan = [{}, {}]\nipv6 = {}\ntcp = {}";
        // 14 + 8 + 40 + 20 = 82.
        let exact = build(&format!("{ipv6}\nsize = 82"));
        assert_eq!((exact.len(), exact.is_tagged()), (82, false));
        assert_eq!(
            build_err(&format!("{ipv6}\nsize = 81")),
            "frame size 81 is smaller than its 82 bytes of headers (set truncate = true to cut it)"
        );
        assert_eq!(
            build_err("ipv4 = {}\nudp = {}\npayload = \"00\"\nsize = 40"),
            "frame size 40 is smaller than its 43 bytes of headers and payload (set truncate = true to cut it)"
        );
        assert_eq!(
            build_err("size = 59"),
            "frame size 59 is below the ethernet minimum of 60 bytes (set truncate = true to send a runt)"
        );
        assert_eq!(
            build_err("size = 13\ntruncate = true"),
            "frame size 13 is shorter than an ethernet header (14 bytes)"
        );
        assert_eq!(
            build_err("size = 1519"),
            "frame of 1519 bytes is longer than the maximum of 1518 bytes"
        );
        assert_eq!(
            build_err(&format!("size = {}", usize::MAX)),
            format!(
                "frame of {} bytes is longer than the maximum of 1518 bytes",
                usize::MAX
            )
        );
        assert_eq!(
            build_err(
                "payload = \"00\"\nipv4 = { options = \"00000000\" }\nudp = {}\ntruncate = true"
            ),
            "truncate = true needs a size to cut the frame to"
        );
        let long = format!("payload = \"{}\"", "00".repeat(1500));
        assert_eq!(
            build_err(&long),
            "frame of 1530 bytes is longer than the maximum of 1518 bytes"
        );
        let runt = build("size = 20\ntruncate = true");
        assert_eq!((runt.len(), runt.is_tagged()), (20, false));
        let full = build("size = 1518\nipv4 = {}");
        assert_eq!(
            u16::from_be_bytes([full.bytes()[16], full.bytes()[17]]),
            1504
        );
    }

    #[test]
    fn truncation_cuts_a_consistent_frame() {
        let whole = build("ipv6 = {}\ntcp = { dst-port = 22 }\nsize = 74");
        assert!(!whole.is_tagged());
        let cut = build("ipv6 = {}\ntcp = { dst-port = 22 }\nsize = 60\ntruncate = true");
        assert_eq!(cut.len(), 60);
        assert!(!cut.is_tagged());
        // The headers still describe the whole 74-byte frame.
        assert_eq!(cut.bytes(), &whole.bytes()[..60]);
        assert_eq!(be16(cut.bytes(), 18), 20);
        let mut buf = Vec::new();
        cut.write(TAG, &mut buf);
        assert_eq!(buf, cut.bytes());
    }

    #[test]
    fn raw_frames_are_verbatim_and_untagged() {
        let text = format!("raw = \"{}\"", "ab ".repeat(20));
        let frame = build(&text);
        assert_eq!(frame.bytes(), &[0xab; 20]);
        assert!(!frame.is_tagged());
        assert_eq!(
            build_err("raw = \"00 11\""),
            "frame raw length 2 is shorter than an ethernet header (14 bytes)"
        );
        let long = format!("raw = \"{}\"", "00".repeat(MAX + 1));
        assert_eq!(
            build_err(&long),
            "frame of 1519 bytes is longer than the maximum of 1518 bytes"
        );
        let raw = format!("raw = \"{}\"", "00".repeat(60));
        assert_eq!(
            build_err(&format!("{raw}\nudp = {{}}")),
            "conflicting keys: raw and udp (raw is the whole frame)"
        );
        assert_eq!(
            build_err(&format!("{raw}\nsize = 60")),
            "conflicting keys: raw and size (raw is the whole frame)"
        );
    }

    #[test]
    fn outer_8021q_looks_at_the_first_tag_or_raw_bytes() {
        assert!(!spec("ipv4 = {}").outer_8021q());
        assert!(spec("vlan = [{ id = 1 }, { id = 2, tpid = 0x88a8 }]").outer_8021q());
        assert!(!spec("vlan = [{ id = 1, tpid = 0x88a8 }, { id = 2 }]").outer_8021q());
        let mut raw = vec![0u8; 14];
        assert!(!spec(&format!("raw = \"{}\"", hex(&raw))).outer_8021q());
        raw[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(spec(&format!("raw = \"{}\"", hex(&raw))).outer_8021q());
        assert!(starts_with_8021q(&raw));
        assert!(!starts_with_8021q(&raw[..13]));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn layer_errors() {
        assert_eq!(
            build_err("ipv4 = {}\nipv6 = {}"),
            "conflicting layers: ipv4 and ipv6"
        );
        assert_eq!(
            build_err("arp = {}\nipv6 = {}"),
            "conflicting layers: arp and ipv6"
        );
        assert_eq!(
            build_err("ipv4 = {}\nudp = {}\ntcp = {}"),
            "conflicting layers: udp and tcp"
        );
        assert_eq!(
            build_err("udp = {}"),
            "layer udp needs an ipv4 or ipv6 layer under it"
        );
        assert_eq!(
            build_err("arp = {}\ntcp = {}"),
            "layer tcp needs an ipv4 or ipv6 layer under it"
        );
        assert_eq!(
            build_err("ipv6 = {}\nicmp = {}"),
            "layer icmp needs an ipv4 layer under it"
        );
        assert_eq!(
            build_err("ipv4 = {}\nicmpv6 = {}"),
            "layer icmpv6 needs an ipv6 layer under it"
        );
    }

    #[test]
    fn range_errors() {
        assert_eq!(
            build_err("vlan = [{}, { id = 4096 }]"),
            "vlan[1].id 4096 is out of range (0..=4095)"
        );
        assert_eq!(
            build_err("vlan = [{ pcp = 8 }]"),
            "vlan[0].pcp 8 is out of range (0..=7)"
        );
        assert_eq!(
            build_err("ipv4 = { ihl = 16 }"),
            "ipv4.ihl 16 is out of range (0..=15)"
        );
        assert_eq!(
            build_err("ipv4 = { fragment-offset = 8192 }"),
            "ipv4.fragment-offset 8192 is out of range (0..=8191)"
        );
        assert_eq!(
            build_err("ipv6 = { flow-label = 0x100000 }"),
            "ipv6.flow-label 1048576 is out of range (0..=1048575)"
        );
        assert_eq!(
            build_err("ipv6 = { ext = [{ kind = \"fragment\", offset = 9000 }] }"),
            "ipv6.ext[0].offset 9000 is out of range (0..=8191)"
        );
        assert_eq!(
            build_err("ipv6 = { ext = [{ kind = \"routing\", id = 1 }] }"),
            "ipv6.ext[0]: id is only valid for kind = \"fragment\", not \"routing\""
        );
        assert_eq!(
            build_err("ipv4 = { options = \"01 02\" }"),
            "ipv4 options are 2 bytes long, not a multiple of 4"
        );
        assert_eq!(
            build_err(&format!("ipv4 = {{ options = \"{}\" }}", "01".repeat(44))),
            "ipv4 options are 44 bytes long, more than the 40 an ipv4 header can carry"
        );
    }

    #[test]
    fn deserialize_errors_name_the_value() {
        let err = |text: &str| {
            toml::from_str::<FrameSpec>(text)
                .unwrap_err()
                .message()
                .to_owned()
        };
        assert_eq!(
            err("eth = { src = \"02:00:00:00:00\" }"),
            "invalid mac address \"02:00:00:00:00\""
        );
        assert_eq!(
            err("ipv4 = { dst = \"10.0.0.300\" }"),
            "invalid ipv4 address \"10.0.0.300\""
        );
        assert_eq!(
            err("ipv6 = { dst = \"fd00::g\" }"),
            "invalid ipv6 address \"fd00::g\""
        );
        assert_eq!(
            err("ipv4 = {}\ntcp = { flags = \"SX\" }"),
            "unknown tcp flag 'X' in \"SX\" (expected letters from FSRPAUEC)"
        );
        assert_eq!(
            err("payload = \"zz\""),
            "invalid hex character 'z' at position 0"
        );
        assert!(err("udp = { dport = 1 }").starts_with("unknown field `dport`"));
        assert!(err("udp = { dst-port = 70000 }").contains("70000"));
        assert!(err("ipv6 = { ext = [{}] }").contains("missing field `kind`"));
        assert!(err("ipv6 = { ext = [{ kind = \"jumbo\" }] }").contains("unknown variant `jumbo`"));
    }

    #[test]
    fn tcp_flags_display_in_bit_order() {
        assert_eq!("CA".parse::<TcpFlags>().unwrap().to_string(), "AC");
        assert_eq!("".parse::<TcpFlags>().unwrap(), TcpFlags(0));
        assert_eq!("FSRPAUEC".parse::<TcpFlags>().unwrap(), TcpFlags(0xff));
    }

    #[derive(Clone, Debug)]
    struct Random {
        vlans: Vec<u16>,
        ipv6: bool,
        tcp: bool,
        src_port: u16,
        dst_port: u16,
        payload: Vec<u8>,
        size: usize,
    }

    fn random_spec() -> impl Strategy<Value = Random> {
        (
            prop::collection::vec(0u16..=4095, 0..=2),
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..=40),
            60usize..=1514,
        )
            .prop_map(
                |(vlans, ipv6, tcp, src_port, dst_port, payload, size)| Random {
                    vlans,
                    ipv6,
                    tcp,
                    src_port,
                    dst_port,
                    payload,
                    size,
                },
            )
    }

    impl Random {
        fn spec(&self) -> FrameSpec {
            FrameSpec {
                vlan: self
                    .vlans
                    .iter()
                    .map(|&id| VlanSpec {
                        id,
                        ..VlanSpec::default()
                    })
                    .collect(),
                ipv4: (!self.ipv6).then(Ipv4Spec::default),
                ipv6: self.ipv6.then(Ipv6Spec::default),
                udp: (!self.tcp).then_some(UdpSpec {
                    src_port: self.src_port,
                    dst_port: self.dst_port,
                }),
                tcp: self.tcp.then_some(TcpSpec {
                    src_port: self.src_port,
                    dst_port: self.dst_port,
                    ..TcpSpec::default()
                }),
                payload: Some(HexBytes(self.payload.clone())),
                size: Some(self.size),
                ..FrameSpec::default()
            }
        }

        fn natural(&self) -> usize {
            14 + 4 * self.vlans.len()
                + if self.ipv6 { 40 } else { 20 }
                + if self.tcp { 20 } else { 8 }
                + self.payload.len()
        }
    }

    proptest! {
        #[test]
        fn random_specs_parse_back(r in random_spec(), tag_seq in any::<u32>()) {
            let natural = r.natural();
            let built = FrameTemplate::build(&r.spec(), &ends(), 1514);
            if r.size < natural {
                prop_assert!(
                    matches!(built, Err(FrameError::SizeBelowHeaders { .. })),
                    "expected an error, got {built:?}"
                );
                return Ok(());
            }
            let frame = built.unwrap();
            prop_assert_eq!(frame.len(), r.size);
            prop_assert_eq!(frame.is_tagged(), r.size >= natural + Tag::LEN);
            let tag = Tag { seq: tag_seq, ..TAG };
            let mut buf = Vec::new();
            frame.write(tag, &mut buf);
            for bytes in [frame.bytes(), &buf[..]] {
                prop_assert_eq!(bytes.len(), r.size);
                let (tags, l3, ethertype) = walk_link(bytes);
                prop_assert_eq!(tags.iter().map(|t| t.1).collect::<Vec<_>>(), r.vlans.clone());
                let l4 = if r.ipv6 {
                    prop_assert_eq!(ethertype, 0x86dd);
                    let ip = Ipv6Packet::new(&bytes[l3..]).unwrap();
                    prop_assert_eq!(usize::from(ip.get_payload_length()), r.size - l3 - 40);
                    prop_assert_eq!(ip.get_next_header().0, if r.tcp { 6 } else { 17 });
                    l3 + 40
                } else {
                    prop_assert_eq!(ethertype, 0x0800);
                    let ip = Ipv4Packet::new(&bytes[l3..]).unwrap();
                    prop_assert_eq!(usize::from(ip.get_total_length()), r.size - l3);
                    prop_assert_eq!(ip.get_next_level_protocol().0, if r.tcp { 6 } else { 17 });
                    l3 + 20
                };
                let payload_at = if r.tcp {
                    let tcp = TcpPacket::new(&bytes[l4..]).unwrap();
                    prop_assert_eq!((tcp.get_source(), tcp.get_destination()), (r.src_port, r.dst_port));
                    l4 + 20
                } else {
                    let udp = UdpPacket::new(&bytes[l4..]).unwrap();
                    prop_assert_eq!((udp.get_source(), udp.get_destination()), (r.src_port, r.dst_port));
                    prop_assert_eq!(usize::from(udp.get_length()), r.size - l4);
                    l4 + 8
                };
                prop_assert_eq!(&bytes[payload_at..payload_at + r.payload.len()], &r.payload[..]);
                assert_checksums(bytes);
            }
            if frame.is_tagged() {
                prop_assert_eq!(Tag::find(&buf, TAG.run_id), Some(tag));
            } else {
                prop_assert_eq!(&buf[..], frame.bytes());
            }
        }
    }
}
