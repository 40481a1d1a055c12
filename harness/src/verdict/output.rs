//! Output checks: whether a frame that came out of the program under test
//! (sent back with XDP_TX, redirected, or passed to the stack) looks the way
//! a send group's `output` says.
//!
//! The frame is read with pnet: Ethernet, up to two VLAN tags (0x8100 or
//! 0x88a8, in any order), IPv4 or IPv6 (IPv6 extension headers are walked),
//! then the TCP or UDP ports, or the ICMP/ICMPv6 header, of a first fragment.
//! Checksums (IPv4 header, UDP, TCP, ICMP, ICMPv6) are verified over the
//! lengths the IP header gives. Each field the [`OutputSpec`] states is
//! compared; a field the frame does not have is a mismatch whose actual value
//! is `absent`, and a checksum that cannot be verified (the frame is cut, or
//! is a fragment) is a mismatch that says why.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use pnet::packet::ethernet::EthernetPacket;
use pnet::packet::ipv4::Ipv4Packet;
use pnet::packet::ipv6::Ipv6Packet;
use pnet::packet::tcp::TcpPacket;
use pnet::packet::udp::UdpPacket;
use pnet::packet::vlan::VlanPacket;
use pnet::util::MacAddr;
use serde::Deserialize;

use crate::frame::{ETH_HEADER_LEN, HexBytes, Tag, VLAN_TAG_LEN, de_ipv4, de_ipv6, de_mac};

/// What a frame must look like where it comes out of the program: each
/// field given is compared, the others are not; see [`OutputSpec::check`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an output table")]
pub struct OutputSpec {
    /// The Ethernet addresses are the sent frame's, swapped.
    pub swapped_macs: bool,
    /// Ethernet source.
    #[serde(deserialize_with = "de_mac")]
    pub eth_src: Option<MacAddr>,
    /// Ethernet destination.
    #[serde(deserialize_with = "de_mac")]
    pub eth_dst: Option<MacAddr>,
    /// IPv4 source (the frame must be IPv4).
    #[serde(deserialize_with = "de_ipv4")]
    pub ipv4_src: Option<Ipv4Addr>,
    /// IPv4 destination.
    #[serde(deserialize_with = "de_ipv4")]
    pub ipv4_dst: Option<Ipv4Addr>,
    /// IPv4 TTL.
    pub ipv4_ttl: Option<u8>,
    /// IPv6 source (the frame must be IPv6).
    #[serde(deserialize_with = "de_ipv6")]
    pub ipv6_src: Option<Ipv6Addr>,
    /// IPv6 destination.
    #[serde(deserialize_with = "de_ipv6")]
    pub ipv6_dst: Option<Ipv6Addr>,
    /// IPv6 hop limit.
    pub ipv6_hop_limit: Option<u8>,
    /// TCP or UDP source port.
    pub src_port: Option<u16>,
    /// TCP or UDP destination port.
    pub dst_port: Option<u16>,
    /// VLAN ids, outermost first; empty: no tag.
    pub vlan: Option<Vec<u16>>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// ICMP or ICMPv6 echo identifier.
    pub icmp_id: Option<u16>,
    /// ICMP or ICMPv6 echo sequence number.
    pub icmp_seq: Option<u16>,
    /// Every checksum the frame carries.
    pub checksums: Option<ChecksumState>,
    /// The IPv4 header checksum.
    pub ipv4_checksum: Option<ChecksumState>,
    /// The UDP checksum.
    pub udp_checksum: Option<ChecksumState>,
    /// The TCP checksum.
    pub tcp_checksum: Option<ChecksumState>,
    /// The ICMP checksum.
    pub icmp_checksum: Option<ChecksumState>,
    /// The ICMPv6 checksum.
    pub icmpv6_checksum: Option<ChecksumState>,
    /// Frame length in bytes, without FCS.
    pub length: Option<usize>,
    /// The whole frame (the per-frame tag excepted).
    pub bytes: Option<HexBytes>,
}

impl OutputSpec {
    /// The stated checks, by key: `["swapped-macs", "ipv4-ttl 63"]`.
    pub fn checks(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.swapped_macs {
            out.push("swapped-macs".to_owned());
        }
        let mut field = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                out.push(format!("{name} {value}"));
            }
        };
        field("eth-src", self.eth_src.map(|v| v.to_string()));
        field("eth-dst", self.eth_dst.map(|v| v.to_string()));
        field("ipv4-src", self.ipv4_src.map(|v| v.to_string()));
        field("ipv4-dst", self.ipv4_dst.map(|v| v.to_string()));
        field("ipv4-ttl", self.ipv4_ttl.map(|v| v.to_string()));
        field("ipv6-src", self.ipv6_src.map(|v| v.to_string()));
        field("ipv6-dst", self.ipv6_dst.map(|v| v.to_string()));
        field("ipv6-hop-limit", self.ipv6_hop_limit.map(|v| v.to_string()));
        field("src-port", self.src_port.map(|v| v.to_string()));
        field("dst-port", self.dst_port.map(|v| v.to_string()));
        field("vlan", self.vlan.as_ref().map(|ids| format!("{ids:?}")));
        field("icmp-type", self.icmp_type.map(|v| v.to_string()));
        field("icmp-code", self.icmp_code.map(|v| v.to_string()));
        field("icmp-id", self.icmp_id.map(|v| v.to_string()));
        field("icmp-seq", self.icmp_seq.map(|v| v.to_string()));
        field("checksums", self.checksums.map(|v| v.to_string()));
        field("ipv4-checksum", self.ipv4_checksum.map(|v| v.to_string()));
        field("udp-checksum", self.udp_checksum.map(|v| v.to_string()));
        field("tcp-checksum", self.tcp_checksum.map(|v| v.to_string()));
        field("icmp-checksum", self.icmp_checksum.map(|v| v.to_string()));
        field(
            "icmpv6-checksum",
            self.icmpv6_checksum.map(|v| v.to_string()),
        );
        field("length", self.length.map(|v| v.to_string()));
        field(
            "bytes",
            self.bytes.as_ref().map(|b| format!("({} bytes)", b.len())),
        );
        out
    }

    /// Whether it checks nothing (parse rejects such an `output`).
    pub fn is_empty(&self) -> bool {
        self.checks().is_empty()
    }
}

/// What [`FieldMismatch::actual`] says for a field the frame does not have.
pub const ABSENT: &str = "absent";

/// Most VLAN tags read before the EtherType (as `xdp_filter` does).
const MAX_VLAN_TAGS: usize = 2;
/// Most VLAN tags listed for the `vlan` key.
const MAX_VLAN_LIST: usize = 8;
/// Most IPv6 extension headers walked before the upper layer.
const MAX_IPV6_EXT: usize = 8;
/// Bytes of context shown on each side of the first difference in `bytes`.
const BYTES_CONTEXT: usize = 8;

/// One stated field that the frame does not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldMismatch {
    /// The `output` key: `"ipv4-ttl"`, `"swapped-macs"`, ...
    pub field: &'static str,
    /// What the scenario says, as text.
    pub expected: String,
    /// What the frame has, as text; [`ABSENT`] if it has no such field.
    pub actual: String,
}

impl fmt::Display for FieldMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.field, self.expected, self.actual
        )
    }
}

/// `checksums`, `ipv4-checksum`, ...: whether a checksum is right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[serde(expecting = "\"valid\" or \"invalid\"")]
pub enum ChecksumState {
    /// The checksum is right (a zero UDP checksum over IPv4, "none", counts as right).
    Valid,
    /// The checksum is wrong.
    Invalid,
}

impl ChecksumState {
    /// `"valid"` or `"invalid"`, as the scenario writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
        }
    }
}

impl fmt::Display for ChecksumState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One checksum the frame carries, as verified.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Checksum {
    /// Right.
    Valid,
    /// Wrong: what the frame has and what it should have.
    Invalid { found: u16, should: u16 },
    /// Present but not verifiable, and why.
    Unverifiable(String),
}

impl Checksum {
    /// The text compared with `"valid"` / `"invalid"`.
    fn text(&self) -> String {
        match self {
            Self::Valid => "valid".into(),
            Self::Invalid { found, should } => {
                format!("invalid (0x{found:04x}, should be 0x{should:04x})")
            }
            Self::Unverifiable(why) => format!("unverifiable ({why})"),
        }
    }

    fn state(&self) -> Option<ChecksumState> {
        match self {
            Self::Valid => Some(ChecksumState::Valid),
            Self::Invalid { .. } => Some(ChecksumState::Invalid),
            Self::Unverifiable(_) => None,
        }
    }
}

/// The fields of a received frame that output checks read.
#[derive(Debug, Default)]
struct Fields {
    eth_src: Option<MacAddr>,
    eth_dst: Option<MacAddr>,
    /// VLAN ids, outermost first (every 0x8100/0x88a8 tag, up to [`MAX_VLAN_LIST`]).
    vlan: Option<Vec<u16>>,
    ipv4: Option<Ip<std::net::Ipv4Addr>>,
    ipv6: Option<Ip<std::net::Ipv6Addr>>,
    ports: Option<(u16, u16)>,
    /// ICMP or ICMPv6 type, code, and echo id and sequence (echo types only).
    icmp: Option<Icmp>,
    /// Each checksum the frame carries, by layer name (`"ipv4"`, `"udp"`, ...), in frame order.
    checksums: Vec<(&'static str, Checksum)>,
}

#[derive(Debug)]
struct Icmp {
    kind: u8,
    code: u8,
    echo: Option<(u16, u16)>,
}

#[derive(Debug)]
struct Ip<A> {
    src: A,
    dst: A,
    /// TTL or hop limit.
    ttl: u8,
}

impl Fields {
    fn read(frame: &[u8]) -> Fields {
        let mut fields = Fields::default();
        let Some(eth) = EthernetPacket::new(frame) else {
            return fields;
        };
        fields.eth_src = Some(eth.get_source());
        fields.eth_dst = Some(eth.get_destination());
        fields.vlan = Some(vlan_ids(frame));
        let mut ethertype = eth.get_ethertype().0;
        let mut at = ETH_HEADER_LEN;
        for _ in 0..MAX_VLAN_TAGS {
            if !matches!(ethertype, 0x8100 | 0x88a8) {
                break;
            }
            let Some(tag) = frame.get(at..).and_then(VlanPacket::new) else {
                return fields;
            };
            ethertype = tag.get_ethertype().0;
            at += VLAN_TAG_LEN;
        }
        let l3 = &frame[at..];
        // The upper-layer protocol, its bytes as far as the frame has them, and
        // the pseudo-header sum and the length its checksum covers, when known.
        let (protocol, l4, pseudo) = match ethertype {
            0x0800 => {
                let Some(ip) = Ipv4Packet::new(l3) else {
                    return fields;
                };
                fields.ipv4 = Some(Ip {
                    src: ip.get_source(),
                    dst: ip.get_destination(),
                    ttl: ip.get_ttl(),
                });
                let header_len = usize::from(ip.get_header_length()) * 4;
                if ip.get_version() != 4 || header_len < 20 {
                    return fields;
                }
                fields
                    .checksums
                    .push(("ipv4", ipv4_header_checksum(l3, header_len)));
                let protocol = ip.get_next_level_protocol().0;
                if ip.get_fragment_offset() != 0 {
                    return fields;
                }
                let total = usize::from(ip.get_total_length());
                let pseudo = if ip.get_flags() & 1 != 0 {
                    Err("a fragment: the checksum covers the whole datagram".to_owned())
                } else if total < header_len {
                    Err(format!(
                        "ipv4 total length {total} is shorter than its header"
                    ))
                } else {
                    let len = total - header_len;
                    let mut sum = sum_words(0, &ip.get_source().octets());
                    sum = sum_words(sum, &ip.get_destination().octets());
                    sum += u32::from(protocol) + len as u32;
                    // ICMP over IPv4 has no pseudo-header.
                    Ok((if protocol == 1 { 0 } else { sum }, len))
                };
                (protocol, l3.get(header_len..), pseudo)
            }
            0x86dd => {
                let Some(ip) = Ipv6Packet::new(l3) else {
                    return fields;
                };
                fields.ipv6 = Some(Ip {
                    src: ip.get_source(),
                    dst: ip.get_destination(),
                    ttl: ip.get_hop_limit(),
                });
                if ip.get_version() != 6 {
                    return fields;
                }
                let Some((protocol, l4, more)) = ipv6_walk(ip.get_next_header().0, &l3[40..])
                else {
                    return fields;
                };
                let ext = l3.len() - 40 - l4.len();
                let payload = usize::from(ip.get_payload_length());
                let pseudo = if more {
                    Err("a fragment: the checksum covers the whole datagram".to_owned())
                } else if payload < ext {
                    Err(format!(
                        "ipv6 payload length {payload} is shorter than its extension headers"
                    ))
                } else {
                    let len = payload - ext;
                    let mut sum = sum_words(0, &ip.get_source().octets());
                    sum = sum_words(sum, &ip.get_destination().octets());
                    sum += u32::from(protocol) + (len as u32 >> 16) + (len as u32 & 0xffff);
                    Ok((sum, len))
                };
                (protocol, Some(l4), pseudo)
            }
            _ => return fields,
        };
        let l4 = l4.unwrap_or_default();
        fields.ports = match protocol {
            6 => TcpPacket::new(l4).map(|tcp| (tcp.get_source(), tcp.get_destination())),
            17 => UdpPacket::new(l4).map(|udp| (udp.get_source(), udp.get_destination())),
            _ => None,
        };
        let icmp_protocol = if fields.ipv4.is_some() { 1 } else { 58 };
        if protocol == icmp_protocol && l4.len() >= 4 {
            let echo_types: [u8; 2] = if protocol == 1 { [0, 8] } else { [128, 129] };
            fields.icmp = Some(Icmp {
                kind: l4[0],
                code: l4[1],
                echo: (echo_types.contains(&l4[0]) && l4.len() >= 8).then(|| {
                    (
                        u16::from_be_bytes([l4[4], l4[5]]),
                        u16::from_be_bytes([l4[6], l4[7]]),
                    )
                }),
            });
        }
        let layer = match (protocol, fields.ipv4.is_some()) {
            (6, _) => Some(("tcp", 16)),
            (17, _) => Some(("udp", 6)),
            (1, true) => Some(("icmp", 2)),
            (58, false) => Some(("icmpv6", 2)),
            _ => None,
        };
        if let Some((name, field)) = layer {
            let checksum = match pseudo {
                Err(why) => Checksum::Unverifiable(why),
                Ok((sum, len)) => l4_checksum(name, l4, (field, sum, len), fields.ipv4.is_some()),
            };
            fields.checksums.push((name, checksum));
        }
        fields
    }
}

/// Every VLAN id before the EtherType, outermost first.
fn vlan_ids(frame: &[u8]) -> Vec<u16> {
    let mut ids = Vec::new();
    let mut at = 12;
    while ids.len() < MAX_VLAN_LIST
        && let Some([a, b, c, d]) = frame.get(at..at + 4).map(|w| [w[0], w[1], w[2], w[3]])
        && matches!(u16::from_be_bytes([a, b]), 0x8100 | 0x88a8)
    {
        ids.push(u16::from_be_bytes([c, d]) & 0x0fff);
        at += VLAN_TAG_LEN;
    }
    ids
}

/// Adds `data` to a ones' complement sum as big-endian 16-bit words (an odd
/// last byte padded with zero); the carries are folded by [`fold`].
fn sum_words(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Verifies a checksum at `field` over `data` (checksum included) plus `pseudo`.
fn verify(data: &[u8], field: usize, pseudo: u32) -> Checksum {
    let found = u16::from_be_bytes([data[field], data[field + 1]]);
    if fold(sum_words(pseudo, data)) == 0xffff {
        return Checksum::Valid;
    }
    let without = sum_words(pseudo, data) + u32::from(!found);
    Checksum::Invalid {
        found,
        should: !fold(without),
    }
}

fn ipv4_header_checksum(l3: &[u8], header_len: usize) -> Checksum {
    match l3.get(..header_len) {
        Some(header) => verify(header, 10, 0),
        None => Checksum::Unverifiable(format!(
            "the frame ends {} bytes into a {header_len}-byte ipv4 header",
            l3.len()
        )),
    }
}

/// The L4 checksum of `name` at `field`, over `len` bytes from `l4`; `over_ipv4`
/// lets a zero UDP checksum mean "none".
fn l4_checksum(
    name: &str,
    l4: &[u8],
    (field, pseudo, len): (usize, u32, usize),
    over_ipv4: bool,
) -> Checksum {
    if len < field + 2 {
        return Checksum::Unverifiable(format!(
            "the ip header gives {name} {len} bytes, too few for its checksum"
        ));
    }
    let Some(data) = l4.get(..len) else {
        return Checksum::Unverifiable(format!(
            "the frame holds {} of the {len} {name} bytes the ip header gives",
            l4.len()
        ));
    };
    // UDP over IPv4 may leave the checksum out (zero).
    if name == "udp" && over_ipv4 && data[6..8] == [0, 0] {
        return Checksum::Valid;
    }
    verify(data, field, pseudo)
}

/// Walks IPv6 extension headers from `next` over `rest`: the upper-layer
/// protocol and its bytes, or `None` for a non-first fragment or a chain
/// that is cut or too long.
/// The third value says whether a (first) fragment header says more fragments follow.
fn ipv6_walk(mut next: u8, mut rest: &[u8]) -> Option<(u8, &[u8], bool)> {
    let mut more = false;
    for _ in 0..=MAX_IPV6_EXT {
        let len = match next {
            // Hop-by-hop, routing, destination options: (len + 1) * 8.
            0 | 43 | 60 => (usize::from(*rest.get(1)?) + 1) * 8,
            // Fragment: 8 bytes; a later fragment has no upper-layer header.
            44 => {
                let offset = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]) >> 3;
                if offset != 0 {
                    return None;
                }
                more |= rest.get(3)? & 1 != 0;
                8
            }
            // Authentication header: (len + 2) * 4.
            51 => (usize::from(*rest.get(1)?) + 2) * 4,
            upper => return Some((upper, rest, more)),
        };
        next = *rest.first()?;
        rest = rest.get(len..)?;
    }
    None
}

fn show<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| ABSENT.to_owned(), |v| v.to_string())
}

fn text<T: ToString>(value: Option<T>) -> Option<String> {
    value.map(|v| v.to_string())
}

impl OutputSpec {
    /// Compares `received`, a frame that came out of the program, with every
    /// field this spec states; `sent` is the frame as it was sent (for
    /// `swapped-macs`). Returns the mismatches, in key order; empty when the
    /// frame matches.
    ///
    /// `bytes` is compared exactly, with one exception: when `tag_offset` is
    /// `Some(o)` and the expected bytes reach past `o + 16`, their bytes
    /// `o..o + 16` are taken from `received`, because they hold the
    /// per-frame [`Tag`] (run, group, sequence number), which no scenario can
    /// know. Pass the tag's offset in the received frame
    /// ([`Tag::locate`]), or `None` for untagged frames. Checksums that
    /// cover the tag still differ from frame to frame: compare such frames
    /// field by field, or send them untagged.
    pub fn check(
        &self,
        sent: &[u8],
        received: &[u8],
        tag_offset: Option<usize>,
    ) -> Vec<FieldMismatch> {
        let got = Fields::read(received);
        let mut out = Vec::new();
        let mut compare =
            |field: &'static str, expected: Option<String>, actual: Option<String>| {
                if let Some(expected) = expected {
                    let actual = actual.unwrap_or_else(|| ABSENT.to_owned());
                    if expected != actual {
                        out.push(FieldMismatch {
                            field,
                            expected,
                            actual,
                        });
                    }
                }
            };
        if self.swapped_macs {
            let (expected, actual) = swapped_macs(sent, &got);
            compare("swapped-macs", Some(expected), actual);
        }
        compare("eth-src", text(self.eth_src), text(got.eth_src));
        compare("eth-dst", text(self.eth_dst), text(got.eth_dst));
        let v4 = got.ipv4.as_ref();
        compare(
            "ipv4-src",
            self.ipv4_src.map(|v| v.to_string()),
            v4.map(|ip| ip.src.to_string()),
        );
        compare(
            "ipv4-dst",
            self.ipv4_dst.map(|v| v.to_string()),
            v4.map(|ip| ip.dst.to_string()),
        );
        compare(
            "ipv4-ttl",
            self.ipv4_ttl.map(|v| v.to_string()),
            v4.map(|ip| ip.ttl.to_string()),
        );
        let v6 = got.ipv6.as_ref();
        compare(
            "ipv6-src",
            self.ipv6_src.map(|v| v.to_string()),
            v6.map(|ip| ip.src.to_string()),
        );
        compare(
            "ipv6-dst",
            self.ipv6_dst.map(|v| v.to_string()),
            v6.map(|ip| ip.dst.to_string()),
        );
        compare(
            "ipv6-hop-limit",
            self.ipv6_hop_limit.map(|v| v.to_string()),
            v6.map(|ip| ip.ttl.to_string()),
        );
        compare(
            "src-port",
            self.src_port.map(|v| v.to_string()),
            got.ports.map(|p| p.0.to_string()),
        );
        compare(
            "dst-port",
            self.dst_port.map(|v| v.to_string()),
            got.ports.map(|p| p.1.to_string()),
        );
        compare(
            "vlan",
            self.vlan.as_ref().map(|ids| format!("{ids:?}")),
            got.vlan.as_ref().map(|ids| format!("{ids:?}")),
        );
        let icmp = got.icmp.as_ref();
        compare(
            "icmp-type",
            text(self.icmp_type),
            text(icmp.map(|i| i.kind)),
        );
        compare(
            "icmp-code",
            text(self.icmp_code),
            text(icmp.map(|i| i.code)),
        );
        compare(
            "icmp-id",
            text(self.icmp_id),
            text(icmp.and_then(|i| i.echo).map(|e| e.0)),
        );
        compare(
            "icmp-seq",
            text(self.icmp_seq),
            text(icmp.and_then(|i| i.echo).map(|e| e.1)),
        );
        for (field, layer, want) in [
            ("ipv4-checksum", "ipv4", self.ipv4_checksum),
            ("udp-checksum", "udp", self.udp_checksum),
            ("tcp-checksum", "tcp", self.tcp_checksum),
            ("icmp-checksum", "icmp", self.icmp_checksum),
            ("icmpv6-checksum", "icmpv6", self.icmpv6_checksum),
        ] {
            let found = got.checksums.iter().find(|(l, _)| *l == layer);
            // "invalid" matches any wrong value; the text says which.
            let actual = match found {
                Some((_, c)) if c.state() == want => want.map(|w| w.to_string()),
                Some((_, c)) => Some(c.text()),
                None => None,
            };
            compare(field, text(want), actual);
        }
        compare(
            "length",
            self.length.map(|v| v.to_string()),
            Some(received.len().to_string()),
        );
        if let Some(want) = self.checksums
            && let Some(mismatch) = checksums_mismatch(want, &got.checksums)
        {
            out.push(mismatch);
        }
        if let Some(bytes) = &self.bytes
            && let Some(mismatch) = compare_bytes(&bytes.0, received, tag_offset)
        {
            out.push(mismatch);
        }
        out
    }
}

/// `swapped-macs`: the sent frame's addresses swapped, and the received frame's.
fn swapped_macs(sent: &[u8], got: &Fields) -> (String, Option<String>) {
    let sent = EthernetPacket::new(sent);
    let expected = format!(
        "dst {}, src {}",
        show(sent.as_ref().map(EthernetPacket::get_source)),
        show(sent.as_ref().map(EthernetPacket::get_destination)),
    );
    let actual = got
        .eth_dst
        .zip(got.eth_src)
        .map(|(dst, src)| format!("dst {dst}, src {src}"));
    (expected, actual)
}

/// `checksums`: every checksum of the frame valid, or one of them invalid; a frame without a
/// checksum, or with one that cannot be verified, matches neither.
fn checksums_mismatch(
    want: ChecksumState,
    checksums: &[(&'static str, Checksum)],
) -> Option<FieldMismatch> {
    let all: Vec<String> = checksums
        .iter()
        .map(|(layer, c)| format!("{layer} {}", c.text()))
        .collect();
    let states: Vec<Option<ChecksumState>> = checksums.iter().map(|(_, c)| c.state()).collect();
    let holds = !states.is_empty()
        && states.iter().all(Option::is_some)
        && match want {
            ChecksumState::Valid => states.iter().all(|s| *s == Some(want)),
            ChecksumState::Invalid => states.contains(&Some(want)),
        };
    (!holds).then(|| FieldMismatch {
        field: "checksums",
        expected: match want {
            ChecksumState::Valid => "all valid".to_owned(),
            ChecksumState::Invalid => "one invalid".to_owned(),
        },
        actual: if all.is_empty() {
            format!("{ABSENT} (no checksum in the frame)")
        } else {
            all.join(", ")
        },
    })
}

/// `bytes`: exact, the tag area taken from `received`; a mismatch shows the
/// lengths and the bytes around the first difference.
fn compare_bytes(
    expected: &[u8],
    received: &[u8],
    tag_offset: Option<usize>,
) -> Option<FieldMismatch> {
    let mut expected = expected.to_vec();
    if let Some(at) = tag_offset
        && let Some(end) = at.checked_add(Tag::LEN)
        && end <= expected.len()
        && let Some(tag) = received.get(at..end)
    {
        expected[at..end].copy_from_slice(tag);
    }
    if expected == received {
        return None;
    }
    let first = expected
        .iter()
        .zip(received)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(received.len()));
    let window = |bytes: &[u8]| {
        let from = first.saturating_sub(BYTES_CONTEXT);
        let to = (first + BYTES_CONTEXT).min(bytes.len()).max(from);
        let hex: Vec<String> = bytes
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let shown = if hex.is_empty() {
            "(end)".to_owned()
        } else {
            hex.join(" ")
        };
        format!(
            "{} bytes, first difference at offset {first}; bytes {from}..{to}: {shown}",
            bytes.len()
        )
    };
    Some(FieldMismatch {
        field: "bytes",
        expected: window(&expected),
        actual: window(received),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Endpoints, FrameSpec, FrameTemplate, HexBytes};

    fn ends() -> Endpoints {
        Endpoints {
            src_mac: MacAddr::new(2, 0, 0, 0, 0, 1),
            dst_mac: MacAddr::new(2, 0, 0, 0, 0, 2),
            src_ipv4: "10.0.0.1".parse().unwrap(),
            dst_ipv4: "10.0.0.2".parse().unwrap(),
            src_ipv6: "fd00::1".parse().unwrap(),
            dst_ipv6: "fd00::2".parse().unwrap(),
        }
    }

    fn template(text: &str) -> FrameTemplate {
        let spec: FrameSpec = toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        FrameTemplate::build(&spec, &ends(), 1518).unwrap()
    }

    fn frame(text: &str) -> Vec<u8> {
        template(text).bytes().to_vec()
    }

    fn output(text: &str) -> OutputSpec {
        toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The mismatches as "field: expected X, got Y" lines.
    fn check(spec: &str, sent: &[u8], received: &[u8]) -> Vec<String> {
        output(spec)
            .check(sent, received, None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const V4_UDP: &str = "ipv4 = { ttl = 9 }\nudp = { src-port = 1000, dst-port = 53 }";
    const V6_TCP: &str = "ipv6 = { hop-limit = 7 }\ntcp = { src-port = 2000, dst-port = 80 }";

    #[test]
    fn matching_frames_have_no_mismatches() {
        let v4 = frame(V4_UDP);
        let all_v4 = r#"
            eth-src = "02:00:00:00:00:01"
            eth-dst = "02:00:00:00:00:02"
            ipv4-src = "10.0.0.1"
            ipv4-dst = "10.0.0.2"
            ipv4-ttl = 9
            src-port = 1000
            dst-port = 53
            length = 60
        "#;
        assert_eq!(check(all_v4, &v4, &v4), Vec::<String>::new());
        let v6 = frame(V6_TCP);
        let all_v6 = r#"
            ipv6-src = "fd00::1"
            ipv6-dst = "fd00::2"
            ipv6-hop-limit = 7
            src-port = 2000
            dst-port = 80
        "#;
        assert_eq!(check(all_v6, &v6, &v6), Vec::<String>::new());
    }

    #[test]
    fn each_field_reports_its_mismatch() {
        let v4 = frame(V4_UDP);
        let cases = [
            (
                "eth-src = \"02:00:00:00:00:09\"",
                "eth-src: expected 02:00:00:00:00:09, got 02:00:00:00:00:01",
            ),
            (
                "eth-dst = \"02:00:00:00:00:09\"",
                "eth-dst: expected 02:00:00:00:00:09, got 02:00:00:00:00:02",
            ),
            (
                "ipv4-src = \"10.0.0.9\"",
                "ipv4-src: expected 10.0.0.9, got 10.0.0.1",
            ),
            (
                "ipv4-dst = \"10.0.0.9\"",
                "ipv4-dst: expected 10.0.0.9, got 10.0.0.2",
            ),
            ("ipv4-ttl = 8", "ipv4-ttl: expected 8, got 9"),
            ("src-port = 1", "src-port: expected 1, got 1000"),
            ("dst-port = 54", "dst-port: expected 54, got 53"),
            ("length = 61", "length: expected 61, got 60"),
        ];
        for (spec, want) in cases {
            assert_eq!(check(spec, &v4, &v4), vec![want.to_owned()], "{spec}");
        }
        let v6 = frame(V6_TCP);
        let cases = [
            (
                "ipv6-src = \"fd00::9\"",
                "ipv6-src: expected fd00::9, got fd00::1",
            ),
            (
                "ipv6-dst = \"fd00::9\"",
                "ipv6-dst: expected fd00::9, got fd00::2",
            ),
            ("ipv6-hop-limit = 6", "ipv6-hop-limit: expected 6, got 7"),
            ("src-port = 1", "src-port: expected 1, got 2000"),
            ("dst-port = 1", "dst-port: expected 1, got 80"),
        ];
        for (spec, want) in cases {
            assert_eq!(check(spec, &v6, &v6), vec![want.to_owned()], "{spec}");
        }
    }

    #[test]
    fn several_mismatches_come_in_key_order() {
        let v4 = frame(V4_UDP);
        assert_eq!(
            check(
                "dst-port = 1\nipv4-ttl = 1\neth-src = \"02:00:00:00:00:01\"",
                &v4,
                &v4
            ),
            vec![
                "ipv4-ttl: expected 1, got 9",
                "dst-port: expected 1, got 53"
            ]
        );
    }

    #[test]
    fn missing_layers_are_absent() {
        let v4 = frame(V4_UDP);
        let v6 = frame(V6_TCP);
        let arp = frame("arp = {}");
        assert_eq!(
            check("ipv6-src = \"fd00::1\"\nipv6-hop-limit = 64", &v4, &v4),
            vec![
                "ipv6-src: expected fd00::1, got absent",
                "ipv6-hop-limit: expected 64, got absent"
            ]
        );
        assert_eq!(
            check("ipv4-dst = \"10.0.0.2\"\nipv4-ttl = 64", &v6, &v6),
            vec![
                "ipv4-dst: expected 10.0.0.2, got absent",
                "ipv4-ttl: expected 64, got absent"
            ]
        );
        assert_eq!(
            check("src-port = 1\ndst-port = 2", &arp, &arp),
            vec![
                "src-port: expected 1, got absent",
                "dst-port: expected 2, got absent"
            ]
        );
        let icmp = frame("ipv4 = {}\nicmp = {}");
        assert_eq!(
            check("dst-port = 2", &icmp, &icmp),
            vec!["dst-port: expected 2, got absent"]
        );
        // A later fragment has no ports; the IPv4 header is still read.
        let fragment = frame("ipv4 = { fragment-offset = 1 }\nudp = {}");
        assert_eq!(
            check("dst-port = 9\nipv4-ttl = 64", &fragment, &fragment),
            vec!["dst-port: expected 9, got absent"]
        );
        // Cut inside the UDP header: no ports.
        let cut = frame("ipv4 = {}\nudp = {}\nsize = 38\ntruncate = true");
        assert_eq!(
            check("dst-port = 9", &cut, &cut),
            vec!["dst-port: expected 9, got absent"]
        );
        // Shorter than Ethernet: nothing but the length.
        let runt = [0u8; 10];
        assert_eq!(
            check("eth-dst = \"02:00:00:00:00:02\"\nlength = 10", &runt, &runt),
            vec!["eth-dst: expected 02:00:00:00:00:02, got absent"]
        );
    }

    #[test]
    fn vlan_tags_and_ipv6_extension_headers_are_skipped() {
        let qinq = frame(&format!(
            "vlan = [{{ id = 1, tpid = 0x88a8 }}, {{ id = 2 }}]\n{V4_UDP}"
        ));
        assert_eq!(
            check("ipv4-ttl = 9\ndst-port = 53", &qinq, &qinq),
            Vec::<String>::new()
        );
        // A third tag is not read through.
        let three = frame(&format!(
            "vlan = [{{ id = 1 }}, {{ id = 2 }}, {{ id = 3 }}]\n{V4_UDP}"
        ));
        assert_eq!(
            check("ipv4-ttl = 9", &three, &three),
            vec!["ipv4-ttl: expected 9, got absent"]
        );
        let ext = frame(
            "ipv6 = { ext = [{ kind = \"hop-by-hop\" }, { kind = \"routing\" }, \
             { kind = \"fragment\" }, { kind = \"destination\" }] }\nudp = { dst-port = 7 }",
        );
        assert_eq!(check("dst-port = 7", &ext, &ext), Vec::<String>::new());
        let later =
            frame("ipv6 = { ext = [{ kind = \"fragment\", offset = 3 }] }\nudp = { dst-port = 7 }");
        assert_eq!(
            check("dst-port = 7\nipv6-hop-limit = 64", &later, &later),
            vec!["dst-port: expected 7, got absent"]
        );
        let nine: Vec<String> = (0..9)
            .map(|_| "{ kind = \"destination\" }".to_owned())
            .collect();
        let deep = frame(&format!(
            "ipv6 = {{ ext = [{}] }}\nudp = {{ dst-port = 7 }}",
            nine.join(", ")
        ));
        assert_eq!(
            check("dst-port = 7", &deep, &deep),
            vec!["dst-port: expected 7, got absent"]
        );
    }

    #[test]
    fn swapped_macs() {
        let sent = frame(V4_UDP);
        let mut back = sent.clone();
        back[..6].copy_from_slice(&sent[6..12]);
        back[6..12].copy_from_slice(&sent[..6]);
        assert_eq!(
            check("swapped-macs = true", &sent, &back),
            Vec::<String>::new()
        );
        assert_eq!(
            check("swapped-macs = true", &sent, &sent),
            vec![
                "swapped-macs: expected dst 02:00:00:00:00:01, src 02:00:00:00:00:02, \
                 got dst 02:00:00:00:00:02, src 02:00:00:00:00:01"
            ]
        );
        assert_eq!(
            check("swapped-macs = true", &sent, &back[..8]),
            vec![
                "swapped-macs: expected dst 02:00:00:00:00:01, src 02:00:00:00:00:02, \
                 got absent"
            ]
        );
        // Not asked for: not checked.
        assert_eq!(
            check("swapped-macs = false\nlength = 60", &sent, &sent),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bytes_compare_exactly_and_show_the_first_difference() {
        let sent = frame("raw = \"00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13\"");
        let spec = |bytes: &[u8]| OutputSpec {
            bytes: Some(HexBytes(bytes.to_vec())),
            ..OutputSpec::default()
        };
        assert_eq!(spec(&sent).check(&sent, &sent, None), vec![]);
        let mut other = sent.clone();
        other[12] = 0xff;
        assert_eq!(
            spec(&sent).check(&sent, &other, None),
            vec![FieldMismatch {
                field: "bytes",
                expected: "20 bytes, first difference at offset 12; bytes 4..20: \
                           04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13"
                    .to_owned(),
                actual: "20 bytes, first difference at offset 12; bytes 4..20: \
                         04 05 06 07 08 09 0a 0b ff 0d 0e 0f 10 11 12 13"
                    .to_owned(),
            }]
        );
        let longer = [&sent[..], &[0xee]].concat();
        assert_eq!(
            spec(&sent).check(&sent, &longer, None)[0].to_string(),
            "bytes: expected 20 bytes, first difference at offset 20; bytes 12..20: \
             0c 0d 0e 0f 10 11 12 13, got 21 bytes, first difference at offset 20; \
             bytes 12..21: 0c 0d 0e 0f 10 11 12 13 ee"
        );
        assert_eq!(
            spec(&sent).check(&sent, &[], None)[0].actual,
            "0 bytes, first difference at offset 0; bytes 0..0: (end)"
        );
    }

    #[test]
    fn bytes_take_the_tag_from_the_received_frame() {
        // An untagged-looking expectation (zero tag area) matches every
        // tagged copy once the tag is taken from the frame.
        let template = template("eth = { ethertype = 0x88b5 }");
        let expected = template.bytes().to_vec();
        let at = template.tag_offset().unwrap();
        let mut received = Vec::new();
        let tag = Tag {
            run_id: 7,
            group: 1,
            seq: 99,
        };
        template.write(tag, &mut received);
        let spec = OutputSpec {
            bytes: Some(HexBytes(expected.clone())),
            ..OutputSpec::default()
        };
        assert_eq!(Tag::locate(&received, 7), Some((at, tag)));
        assert_eq!(spec.check(&expected, &received, Some(at)), vec![]);
        // Without the offset the tag is a difference.
        let without = spec.check(&expected, &received, None);
        assert_eq!(without.len(), 1);
        assert!(
            without[0]
                .expected
                .contains(&format!("first difference at offset {at};")),
            "{without:?}"
        );
        // Only the 16 tag bytes are excused.
        let mut changed = received.clone();
        changed[at + Tag::LEN] ^= 1;
        assert_eq!(spec.check(&expected, &changed, Some(at)).len(), 1);
        // Expected bytes that end inside the tag area are compared as given.
        let short = OutputSpec {
            bytes: Some(HexBytes(expected[..at + 4].to_vec())),
            ..OutputSpec::default()
        };
        assert_eq!(short.check(&expected, &received, Some(at)).len(), 1);
        // A tag offset past the received frame cannot be honoured.
        assert_eq!(
            spec.check(&expected, &received[..at + 8], Some(at)).len(),
            1
        );
        assert_eq!(spec.check(&expected, &received, Some(usize::MAX)).len(), 1);
    }

    #[test]
    fn vlan_ids_outer_first() {
        let qinq = frame(&format!(
            "vlan = [{{ id = 100, tpid = 0x88a8 }}, {{ id = 200, pcp = 5 }}]\n{V4_UDP}"
        ));
        assert_eq!(
            check("vlan = [100, 200]", &qinq, &qinq),
            Vec::<String>::new()
        );
        assert_eq!(
            check("vlan = [100]", &qinq, &qinq),
            vec!["vlan: expected [100], got [100, 200]"]
        );
        let plain = frame(V4_UDP);
        assert_eq!(check("vlan = []", &plain, &plain), Vec::<String>::new());
        assert_eq!(
            check("vlan = [7]", &plain, &plain),
            vec!["vlan: expected [7], got []"]
        );
        assert_eq!(
            check("vlan = []", &plain, &plain[..8]),
            vec!["vlan: expected [], got absent"]
        );
    }

    #[test]
    fn icmp_and_icmpv6_fields() {
        let ping = frame("ipv4 = {}\nicmp = { type = 8, id = 7, seq = 3 }");
        assert_eq!(
            check(
                "icmp-type = 8\nicmp-code = 0\nicmp-id = 7\nicmp-seq = 3",
                &ping,
                &ping
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            check("icmp-type = 0\nicmp-id = 8\nicmp-seq = 4", &ping, &ping),
            vec![
                "icmp-type: expected 0, got 8",
                "icmp-id: expected 8, got 7",
                "icmp-seq: expected 4, got 3"
            ]
        );
        let ping6 = frame("ipv6 = {}\nicmpv6 = { type = 129, id = 1, seq = 2 }");
        assert_eq!(
            check("icmp-type = 129\nicmp-id = 1\nicmp-seq = 2", &ping6, &ping6),
            Vec::<String>::new()
        );
        // Not an echo: no id or sequence; not ICMP: no type.
        let unreachable = frame("ipv4 = {}\nicmp = { type = 3, code = 1 }");
        assert_eq!(
            check("icmp-code = 1\nicmp-id = 0", &unreachable, &unreachable),
            vec!["icmp-id: expected 0, got absent"]
        );
        let udp = frame(V4_UDP);
        assert_eq!(
            check("icmp-type = 8", &udp, &udp),
            vec!["icmp-type: expected 8, got absent"]
        );
    }

    #[test]
    fn checksums_are_verified_per_layer() {
        let mut buf = Vec::new();
        let tag = Tag {
            run_id: 3,
            group: 0,
            seq: 5,
        };
        for text in [
            V4_UDP,
            V6_TCP,
            "ipv4 = {}\ntcp = {}\npayload = \"01 02 03\"",
            "ipv6 = {}\nudp = {}\npayload = \"01\"",
            "ipv4 = { options = \"01 01 01 01\" }\nicmp = { id = 9 }",
            "ipv6 = {}\nicmpv6 = { seq = 9 }\nsize = 300",
        ] {
            template(text).write(tag, &mut buf);
            assert_eq!(
                check("checksums = \"valid\"", &buf, &buf),
                Vec::<String>::new(),
                "{text}"
            );
        }
        let ping = frame("ipv4 = {}\nicmp = { checksum = 0x1234 }");
        let right = frame("ipv4 = {}\nicmp = {}");
        let should = u16::from_be_bytes([right[36], right[37]]);
        assert_eq!(
            check("checksums = \"valid\"", &ping, &ping),
            vec![format!(
                "checksums: expected all valid, got ipv4 valid, icmp invalid (0x1234, should be \
                 0x{should:04x})"
            )]
        );
        assert_eq!(
            check(
                "icmp-checksum = \"valid\"\nipv4-checksum = \"valid\"",
                &ping,
                &ping
            ),
            vec![format!(
                "icmp-checksum: expected valid, got invalid (0x1234, should be 0x{should:04x})"
            )]
        );
        assert_eq!(
            check(
                "icmp-checksum = \"invalid\"\nchecksums = \"invalid\"",
                &ping,
                &ping
            ),
            Vec::<String>::new()
        );
        // A broken IPv4 header checksum; a layer the frame lacks is absent.
        let mut bad_ip = frame(V4_UDP);
        bad_ip[24] ^= 0xff;
        assert_eq!(
            check(
                "ipv4-checksum = \"valid\"\ntcp-checksum = \"valid\"\nudp-checksum = \"valid\"",
                &bad_ip,
                &bad_ip
            )
            .len(),
            2
        );
        // UDP over IPv4 may carry no checksum; over IPv6 zero is wrong.
        let mut none = frame(V4_UDP);
        none[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(
            check("udp-checksum = \"valid\"", &none, &none),
            Vec::<String>::new()
        );
        let mut none6 = frame("ipv6 = {}\nudp = {}");
        none6[60..62].copy_from_slice(&[0, 0]);
        assert_eq!(check("udp-checksum = \"valid\"", &none6, &none6).len(), 1);
        // A cut frame cannot be verified: that is a mismatch with the reason.
        let cut = frame("ipv4 = {}\nudp = {}\npayload = \"00 00 00 00 00 00 00 00\"");
        assert_eq!(
            check("checksums = \"valid\"", &cut, &cut[..46]),
            vec![
                "checksums: expected all valid, got ipv4 valid, udp unverifiable (the frame \
                 holds 12 of the 32 udp bytes the ip header gives)"
            ]
        );
        assert_eq!(
            check("checksums = \"valid\"", &cut, &cut[..12]),
            vec!["checksums: expected all valid, got absent (no checksum in the frame)"]
        );
        // A first fragment: the L4 checksum covers the whole datagram.
        let fragment = frame("ipv4 = { more-fragments = true }\nudp = {}");
        assert_eq!(
            check(
                "udp-checksum = \"valid\"\nipv4-checksum = \"valid\"",
                &fragment,
                &fragment
            ),
            vec![
                "udp-checksum: expected valid, got unverifiable (a fragment: the checksum covers \
                 the whole datagram)"
            ]
        );
    }

    #[test]
    fn mismatch_display() {
        let m = FieldMismatch {
            field: "ipv4-ttl",
            expected: "63".into(),
            actual: ABSENT.into(),
        };
        assert_eq!(m.to_string(), "ipv4-ttl: expected 63, got absent");
    }
}
