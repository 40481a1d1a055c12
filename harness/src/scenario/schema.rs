//! What a scenario file says, once parsed and checked: the types the runner
//! works from. Every default written here is the one documented in
//! `docs/scenario-format.md`.

pub use super::iface::{IfaceRef, IfaceRefError, MAX_NAME_LEN};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

use crate::bench::{BenchProgram, InjectorKind};
use crate::frame::{
    ETH_HEADER_LEN, FrameError, FrameSpec, HexBytes, MacAddr, VLAN_TAG_LEN, parse_mac,
};
use crate::host::requires::Requirement;
use crate::kernel::program::{ObjectSource, XdpMode};
use crate::verdict::Verdict;
use crate::verdict::output::OutputSpec;

/// The only `schema-version` this build reads.
pub const SCHEMA_VERSION: i64 = 1;

/// A scenario: one lab, the program under test (and perhaps helpers on
/// other interfaces), frames to send and what should happen to them.
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
    /// What it needs from the kernel (`requires`), in file order: checked before the lab is
    /// built, see [`crate::host::requires`].
    pub requires: Vec<Requirement>,
    /// Lab-wide settings.
    pub lab: LabSpec,
    /// The topology's veth pairs, in file order; empty for the default lab
    /// (namespaces [`LabSpec::SENDER`] and [`LabSpec::RECEIVER`] joined by
    /// one pair).
    pub links: Vec<LinkSpec>,
    /// Kernel state of lab namespaces (`[[netns]]`: sysctls, addresses, routes, neighbours),
    /// in file order; empty when the links' own addresses are all the lab needs.
    pub netns: Vec<super::kernel_state::NetnsSpec>,
    /// The program under test.
    pub program: ProgramSpec,
    /// More programs, each on an interface of its own, in file order.
    pub attachments: Vec<AttachSpec>,
    /// Rules for the bundled `xdp_filter` program, in match order.
    pub rules: Vec<FilterRule>,
    /// Send groups, in file order; at least one.
    pub sends: Vec<SendGroup>,
    /// Map entries written before any frame is sent, in file order.
    pub map_setup: Vec<MapSetup>,
    /// Map contents expected after every frame was sent.
    pub map_expects: Vec<MapExpect>,
    /// Ring buffer events expected after every frame was sent.
    pub event_expects: Vec<EventExpect>,
    /// A throughput floor for the program (`[throughput]`), measured after
    /// the functional checks.
    pub throughput: Option<ThroughputSpec>,
    /// A lifecycle sequence (`[[step]]`), in file order; empty for a scenario
    /// that attaches one program and sends. With steps, [`Self::program`]
    /// is the first loaded version at the first attached interface (for
    /// listings), and [`Self::sends`] holds the groups of the send steps.
    pub steps: Vec<Step>,
    /// Traffic of the lab's own stacks through the program (`[[flow]]`), in file order, run
    /// after the send groups; see [`crate::flow`].
    pub flows: Vec<super::flows::FlowSpec>,
}

impl Scenario {
    /// Where `iface` sits in the topology: which link, which end. The
    /// default lab is one link, [`LabSpec::SENDER`] its `a` end and
    /// [`LabSpec::RECEIVER`] its `b` end. `None` if it names nothing, or
    /// names a namespace with several interfaces (parse rejects both).
    pub fn link_end(&self, iface: &IfaceRef) -> Option<LinkEnd> {
        resolve(&self.links, iface).ok()
    }

    /// The link end `iface` names; `None` in the default lab, whose ends
    /// have no interface names, and wherever [`Scenario::link_end`] is `None`.
    pub fn resolve(&self, iface: &IfaceRef) -> Option<&Endpoint> {
        let end = self.link_end(iface)?;
        let link = self.links.get(end.link)?;
        Some(match end.side {
            Side::A => &link.a,
            Side::B => &link.b,
        })
    }

    /// MTU of the link holding `iface`: its own `mtu`, else `[lab] mtu`.
    pub fn mtu_at(&self, iface: &IfaceRef) -> u32 {
        self.link_end(iface)
            .and_then(|end| self.links.get(end.link))
            .map_or(self.lab.mtu, |link| link.mtu(&self.lab))
    }

    /// Longest frame (without FCS) that can be sent from `from`: its link's
    /// MTU plus the Ethernet header, plus 4 when the frame starts with an
    /// 802.1Q tag (see [`FrameSpec::outer_8021q`]), which is what a packet
    /// socket allows (`packet_extra_vlan_len_allowed`).
    pub fn max_frame_len(&self, from: &IfaceRef, outer_8021q: bool) -> usize {
        max_frame_len(self.mtu_at(from), outer_8021q)
    }
}

/// Longest frame for an MTU; see [`Scenario::max_frame_len`].
pub(super) fn max_frame_len(mtu: u32, outer_8021q: bool) -> usize {
    // u32 always fits usize on the targets xdplab builds for (Linux).
    mtu as usize + ETH_HEADER_LEN + if outer_8021q { VLAN_TAG_LEN } else { 0 }
}

/// Lab-wide settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// MTU of every link without an `mtu` of its own (of both ends of the
    /// default lab's pair), 68..=65535 (at most 3498 on a link with a native
    /// program that is not xdp.frags); default 1500. 3498 is the largest that
    /// veth accepts with a native XDP program attached (4 KiB pages, no
    /// xdp.frags).
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
    /// The default lab's sending namespace (one interface, the `a` end).
    pub const SENDER: &'static str = "sender";
    /// The default lab's receiving namespace (one interface, the `b` end).
    pub const RECEIVER: &'static str = "receiver";
    /// Most `[[link]]`s: the link index is one byte of every address.
    pub const MAX_LINKS: usize = 256;

    /// Longest frame (without FCS) a link of this MTU carries for `spec`:
    /// the MTU plus the Ethernet header, plus one 802.1Q tag when the frame
    /// starts with one, which is what a packet socket allows
    /// (`packet_extra_vlan_len_allowed`). For a topology, use
    /// [`Scenario::max_frame_len`], which takes the sending link's MTU.
    pub fn max_frame_len(&self, spec: &FrameSpec) -> usize {
        max_frame_len(self.mtu, spec.outer_8021q())
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

/// One veth pair of the topology (`[[link]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    /// First end; frames are sent from it by default when this is the first link.
    pub a: Endpoint,
    /// Second end; the program is attached to it by default when this is the first link.
    pub b: Endpoint,
    /// MTU of both ends, 68..=65535 (at most 3498 with a native program that
    /// is not xdp.frags on either end); default `[lab] mtu`.
    pub mtu: Option<u32>,
    /// Line of the `[[link]]` header in the scenario file.
    pub line: usize,
}

impl LinkSpec {
    /// The link's MTU: its own, else the lab's.
    pub fn mtu(&self, lab: &LabSpec) -> u32 {
        self.mtu.unwrap_or(lab.mtu)
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <-> {}", self.a, self.b)
    }
}

/// Which end of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The `a` end.
    A,
    /// The `b` end.
    B,
}

/// Where an interface sits in the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkEnd {
    /// Index of its link in [`Scenario::links`] (0 for the default lab's pair).
    pub link: usize,
    /// Which end of it.
    pub side: Side,
}

/// A named interface in a named namespace, written `"ns:if"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Namespace name: 1..=15 characters from `a-z`, `0-9`, `_`, `-`.
    pub netns: String,
    /// Interface name in it: 1..=15 bytes, no `/`, `:` or whitespace, not
    /// `.` or `..` (what the kernel accepts, minus `:`).
    pub interface: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.netns, self.interface)
    }
}

impl FromStr for Endpoint {
    type Err = IfaceRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let iface: IfaceRef = text.parse()?;
        match iface.interface {
            Some(interface) => Ok(Endpoint {
                netns: iface.netns,
                interface,
            }),
            None => Err(IfaceRefError::NoInterface {
                text: text.to_owned(),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl From<&Endpoint> for IfaceRef {
    fn from(end: &Endpoint) -> Self {
        IfaceRef {
            netns: end.netns.clone(),
            interface: Some(end.interface.clone()),
        }
    }
}

/// Whether `name` is an interface of the namespace this process runs in (`lo`, or an entry
/// of `/sys/class/net`: `eth0` and the like on the host), so a reference to it can be refused
/// with a message saying so. `lo` and `eth0` are refused on every machine, so a scenario that
/// names them fails the same way everywhere (a VM or container may have no `eth0`).
fn is_host_interface(name: &str) -> bool {
    // Names reaching here passed the namespace-name check (a-z, 0-9, "_", "-"): no "/" or "..".
    name == "lo"
        || name == "eth0"
        || (!name.is_empty()
            && !name.contains(['/', '.'])
            && std::path::Path::new("/sys/class/net").join(name).exists())
}

/// Finds what `iface` names among `links` (the default lab when empty), or
/// says why it names nothing.
pub(super) fn resolve(links: &[LinkSpec], iface: &IfaceRef) -> Result<LinkEnd, String> {
    if iface.interface.is_none() && is_host_interface(&iface.netns) {
        // Read as a namespace, it would only be "not in the topology"; say what is wrong.
        return Err(format!(
            "{:?} is an interface of the host, not of the lab: xdplab only attaches to and \
             sends on the interfaces it creates in its own namespaces (write a lab interface, \
             \"ns\" or \"ns:if\")",
            iface.netns
        ));
    }
    if links.is_empty() {
        let side = match iface.netns.as_str() {
            LabSpec::SENDER => Side::A,
            LabSpec::RECEIVER => Side::B,
            other => {
                return Err(format!(
                    "no namespace {other:?} in the default lab (it has {:?} and {:?}; declare \
                     [[link]]s for others)",
                    LabSpec::SENDER,
                    LabSpec::RECEIVER
                ));
            }
        };
        if iface.interface.is_some() {
            return Err(format!(
                "the default lab's interfaces have no names: write {:?}",
                iface.netns
            ));
        }
        return Ok(LinkEnd { link: 0, side });
    }
    let ends = || {
        links.iter().enumerate().flat_map(|(link, spec)| {
            [
                (
                    LinkEnd {
                        link,
                        side: Side::A,
                    },
                    &spec.a,
                ),
                (
                    LinkEnd {
                        link,
                        side: Side::B,
                    },
                    &spec.b,
                ),
            ]
        })
    };
    let in_netns: Vec<(LinkEnd, &Endpoint)> =
        ends().filter(|(_, end)| end.netns == iface.netns).collect();
    if in_netns.is_empty() {
        let mut namespaces: Vec<&str> = Vec::new();
        for (_, end) in ends() {
            if !namespaces.contains(&end.netns.as_str()) {
                namespaces.push(&end.netns);
            }
        }
        return Err(format!(
            "no namespace {:?} in the topology (it has {})",
            iface.netns,
            quoted_list(namespaces)
        ));
    }
    match &iface.interface {
        Some(interface) => in_netns
            .iter()
            .find(|(_, end)| &end.interface == interface)
            .map(|(at, _)| *at)
            .ok_or_else(|| {
                format!(
                    "no interface {interface:?} in namespace {:?} (it has {})",
                    iface.netns,
                    quoted_list(in_netns.iter().map(|(_, end)| end.interface.as_str()))
                )
            }),
        None if in_netns.len() == 1 => Ok(in_netns[0].0),
        None => Err(format!(
            "namespace {:?} has {} interfaces: write one of {}",
            iface.netns,
            in_netns.len(),
            quoted_list(in_netns.iter().map(|(_, end)| end.to_string()))
        )),
    }
}

/// `"a", "b", "c"`.
fn quoted_list<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The program under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The ELF object holding it.
    pub object: ObjectSource,
    /// Name of the XDP program (its ELF section function) in the object.
    pub entry: String,
    /// How to attach it; default native.
    pub mode: XdpMode,
    /// The interface to attach it to; default [`LabSpec::RECEIVER`] in the
    /// default lab, else the `b` end of the first link.
    pub attach: IfaceRef,
    /// Line of `object` in the scenario file, for errors about the object.
    pub object_line: usize,
    /// Line of `entry` in the scenario file, for errors about the program.
    pub entry_line: usize,
    /// Pin the program, its maps and its link in the run's own bpffs (`pin = true`), as an
    /// operator's control plane would; always true for `[[step]]` scenarios.
    pub pin: bool,
    /// What the loader sets before load (`type`, `globals`, `max-entries`).
    pub loader: super::LoaderSpec,
}

/// Another program, on an interface of its own (`[[attach]]`): a helper
/// such as the far side of a redirect, not the program under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachSpec {
    /// The interface.
    pub at: IfaceRef,
    /// The ELF object holding the program.
    pub object: ObjectSource,
    /// Name of the XDP program in the object.
    pub entry: String,
    /// How to attach it; default native.
    pub mode: XdpMode,
    /// Line of the `[[attach]]` header in the scenario file.
    pub line: usize,
    /// What the loader sets before load (`type`, `globals`, `max-entries`).
    pub loader: super::LoaderSpec,
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

/// A send group: `count` frames from one interface, each expected to get
/// `expect`.
#[derive(Clone, Debug, PartialEq)]
pub struct SendGroup {
    /// Unique within the scenario.
    pub name: String,
    /// Frames to send, 1..=10_000_000. With a pcap file and no `count` in
    /// the scenario: the number of frames in the file.
    pub count: u32,
    /// The interface the frames are sent from, towards its peer; default
    /// [`LabSpec::SENDER`] in the default lab, else the `a` end of the
    /// first link.
    pub from: IfaceRef,
    /// With `expect = Redirect` (and only then): the interface the program
    /// redirects to (its devmap target), in the namespace of
    /// [`ProgramSpec::attach`] and not that interface itself. Redirected
    /// frames arrive at its peer.
    pub redirect_to: Option<IfaceRef>,
    /// What every frame must look like where it comes out (not with drop or
    /// aborted).
    pub output: Option<OutputSpec>,
    /// The frames.
    pub frames: FrameSource,
    /// The verdict every frame should get.
    pub expect: Verdict,
    /// Line of the `[[send]]` header in the scenario file.
    pub line: usize,
}

impl SendGroup {
    /// Largest `count`.
    pub const MAX_COUNT: u32 = 10_000_000;
}

/// Where a send group's frames come from.
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per send group, built once; a Box would only complicate matching"
)]
pub enum FrameSource {
    /// One frame described key by key, sent `count` times (each copy tagged
    /// when it has room for the tag).
    Spec(FrameSpec),
    /// Frames read from a pcap file at parse time, sent in file order,
    /// cycling until `count` frames went out; sent byte for byte.
    Pcap {
        /// The file, resolved against the scenario file's directory.
        path: PathBuf,
        /// Its frames, at least one, each 14 bytes or more and no longer
        /// than the sending link allows.
        frames: Vec<Vec<u8>>,
    },
}

impl FrameSource {
    /// The frame spec, unless the frames come from a pcap file.
    pub fn spec(&self) -> Option<&FrameSpec> {
        match self {
            FrameSource::Spec(spec) => Some(spec),
            FrameSource::Pcap { .. } => None,
        }
    }
}

/// What one map entry should hold after the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapExpect {
    /// Map name in the object.
    pub map: String,
    /// The key.
    pub key: MapBytes,
    /// Expected value (plain maps); exclusive with the other three.
    pub value: Option<MapBytes>,
    /// Expected value on each CPU, in CPU order (per-CPU maps), in any form
    /// `value` takes; one entry stands for every CPU. Exclusive with the other
    /// three.
    pub per_cpu: Option<Vec<MapBytes>>,
    /// The key must not be in the map; exclusive with the other three.
    pub absent: bool,
    /// Expected change of the value across the run (after minus before,
    /// values read as unsigned little-endian integers, summed over CPUs for
    /// per-CPU maps; a key missing before counts as 0); exclusive with the
    /// other three.
    pub delta: Option<i64>,
    /// `delta` given by field names (`delta = { rx_packets = 100 }`): each
    /// named integer field's change across the run, summed over CPUs for
    /// per-CPU maps; fields not named are not checked. Set instead of `delta`.
    pub delta_fields: Option<Vec<NamedField>>,
    /// Line of the `[[expect.map]]` header in the scenario file.
    pub line: usize,
    /// `at`: the map belongs to the `[[attach]]` program on this interface; default the
    /// program under test.
    pub at: Option<IfaceRef>,
    /// `plus-flow-frames = true`: `delta` is the change the send groups make, and the frames
    /// of the scenario's flows the program ran on (the kernel's count, each flow's
    /// `frames.seen`) are added to it before comparing; 0 where flows do not run (test-run).
    pub plus_flow_frames: bool,
}

impl MapExpect {
    /// One line for listings: `drop_cnt[0] == 1000`, `hits[1] changes by +5`.
    pub fn describe(&self) -> String {
        let what = if self.absent {
            "absent".to_owned()
        } else if let Some(value) = &self.value {
            format!("== {value}")
        } else if let Some(per_cpu) = &self.per_cpu {
            let values: Vec<String> = per_cpu.iter().map(MapBytes::to_string).collect();
            format!("== per-cpu [{}]", values.join(", "))
        } else if let Some(delta) = self.delta {
            format!("changes by {delta:+}")
        } else if let Some(fields) = &self.delta_fields {
            format!("changes by {}", MapBytes::Fields(fields.clone()))
        } else {
            // parse() lets no expectation through without one of the four.
            "(nothing expected)".to_owned()
        };
        match &self.at {
            Some(at) => format!("{}[{}] {what} (at {at})", self.map, self.key),
            None => format!("{}[{}] {what}", self.map, self.key),
        }
    }
}

/// One map entry written before any frame is sent (`[[setup.map]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSetup {
    /// Map name in the object of the program under test.
    pub map: String,
    /// The key.
    pub key: MapBytes,
    /// The value (for a per-CPU map, written on every CPU); unused with `program`.
    pub value: MapBytes,
    /// Line of the `[[setup.map]]` header in the scenario file.
    pub line: usize,
    /// `program`: the slot of a PROG_ARRAY gets this program of the same object (a tail-call
    /// target), instead of a `value`.
    pub program: Option<String>,
    /// `at`: the map belongs to the `[[attach]]` program on this interface; default the
    /// program under test.
    pub at: Option<IfaceRef>,
}

impl MapSetup {
    /// One line for listings: `filter_config[0] = 1`.
    pub fn describe(&self) -> String {
        let line = match &self.program {
            Some(program) => format!("{}[{}] = program {program}", self.map, self.key),
            None => format!("{}[{}] = {}", self.map, self.key, self.value),
        };
        match &self.at {
            Some(at) => format!("{line} (at {at})"),
            None => line,
        }
    }
}

/// A map key or value: an integer (stored little-endian in the map's size),
/// exact bytes written as hex text, or a C struct written field by field,
/// either typed in order or by name from the map's BTF.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapBytes {
    /// A non-negative integer, e.g. `key = 0`.
    Int(u64),
    /// Bytes in map order, e.g. `key = "0a 00 00 01"`.
    Hex(Vec<u8>),
    /// Fields in order, e.g. `value = [{ u32 = 5 }, { pad = 4 }]`; at least
    /// one. Padding is explicit: nothing is aligned for you.
    Struct(Vec<StructField>),
    /// Fields by name, e.g. `value = { rx_packets = 100 }`; at least one.
    /// Their types and offsets come from the map's BTF (see
    /// [`crate::scenario::run`]); fields not named are not checked, and are
    /// zero when written.
    Fields(Vec<NamedField>),
}

/// One field of a struct named as its C member: `rx_packets = 100`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NamedField {
    /// The member's name.
    pub name: String,
    /// Its value.
    pub value: FieldValue,
}

/// The value of a [`NamedField`], interpreted by the member's C type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldValue {
    /// An integer (may be negative for signed members).
    Int(i128),
    /// A string: an address (IPv4, IPv6, MAC) for a member of that size, else
    /// hex bytes of the member's size.
    Text(String),
    /// A nested struct's fields.
    Fields(Vec<NamedField>),
    /// An array's elements, in order.
    List(Vec<FieldValue>),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Int(n) => write!(f, "{n}"),
            FieldValue::Text(text) => write!(f, "{text:?}"),
            FieldValue::Fields(fields) => write_fields(f, fields),
            FieldValue::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn write_fields(f: &mut fmt::Formatter<'_>, fields: &[NamedField]) -> fmt::Result {
    f.write_str("{ ")?;
    for (i, field) in fields.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        write!(f, "{sep}{} = {}", field.name, field.value)?;
    }
    f.write_str(" }")
}

/// `delta` as written: an integer, or a table of field names (see
/// [`MapExpect::delta_fields`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapDelta {
    /// The change of the whole value, read as an integer.
    Int(i64),
    /// The change of each named field.
    Fields(Vec<NamedField>),
}

impl<'de> Deserialize<'de> for MapDelta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeltaVisitor;
        impl<'de> Visitor<'de> for DeltaVisitor {
            type Value = MapDelta;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a table of field names (e.g. { rx_packets = 100 })")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MapDelta, E> {
                Ok(MapDelta::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MapDelta, E> {
                i64::try_from(v)
                    .map(MapDelta::Int)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MapDelta, A::Error> {
                named_fields(map).map(MapDelta::Fields)
            }
        }
        deserializer.deserialize_any(DeltaVisitor)
    }
}

/// Reads the named fields of a TOML table, in file order.
fn named_fields<'de, A: MapAccess<'de>>(mut map: A) -> Result<Vec<NamedField>, A::Error> {
    let mut fields: Vec<(usize, NamedField)> = Vec::new();
    while let Some(name) = map.next_key::<toml::Spanned<String>>()? {
        let at = name.span().start;
        fields.push((
            at,
            NamedField {
                name: name.into_inner(),
                value: map.next_value()?,
            },
        ));
    }
    if fields.is_empty() {
        return Err(de::Error::custom(
            "a struct given by field names names no field (write e.g. { rx_packets = 100 })",
        ));
    }
    // toml hands keys over sorted; keep them in file order.
    fields.sort_by_key(|(at, _)| *at);
    Ok(fields.into_iter().map(|(_, field)| field).collect())
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FieldValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an integer, a string (address or hex), a table (a nested struct) or an \
                     array (an array member)",
                )
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Int(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Int(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(FieldValue::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FieldValue, A::Error> {
                named_fields(map).map(FieldValue::Fields)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl MapBytes {
    /// The bytes for a map field of `size` bytes: an integer little-endian,
    /// zero-extended; hex as is; a struct field by field. Fails if the
    /// integer does not fit, the hex or struct is not exactly `size` bytes,
    /// or the struct holds an `ifindex` (which needs the lab: use
    /// [`MapBytes::to_bytes_with`]).
    pub fn to_bytes(&self, size: usize) -> Result<Vec<u8>, String> {
        self.to_bytes_with(size, &|iface| {
            Err(format!(
                "ifindex of \"{iface}\" needs the lab: the value is only known once it is built"
            ))
        })
    }

    /// Like [`MapBytes::to_bytes`], with `ifindex` giving the index of each
    /// interface a struct's `ifindex` fields name (stored as a
    /// little-endian `u32`); its errors are passed on.
    pub fn to_bytes_with(
        &self,
        size: usize,
        ifindex: &dyn Fn(&IfaceRef) -> Result<u32, String>,
    ) -> Result<Vec<u8>, String> {
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
            MapBytes::Struct(fields) => {
                let len = fields
                    .iter()
                    .try_fold(0usize, |sum, field| sum.checked_add(field.len()));
                if len != Some(size) {
                    let len = len.map_or_else(|| "too many".to_owned(), |l| l.to_string());
                    return Err(format!(
                        "struct value is {len} bytes long, the map's field is {size}"
                    ));
                }
                let mut out = Vec::with_capacity(size);
                for field in fields {
                    field.write(&mut out, ifindex)?;
                }
                Ok(out)
            }
            MapBytes::Fields(_) => Err(
                "fields by name need the map's BTF (the C type of its key and value)".to_owned(),
            ),
        }
    }

    /// The interfaces a struct's `ifindex` fields name, in order.
    pub fn ifaces(&self) -> Vec<&IfaceRef> {
        match self {
            MapBytes::Struct(fields) => fields
                .iter()
                .filter_map(|field| match field {
                    StructField::Ifindex(iface) => Some(iface),
                    _ => None,
                })
                .collect(),
            MapBytes::Int(_) | MapBytes::Hex(_) | MapBytes::Fields(_) => Vec::new(),
        }
    }
}

impl fmt::Display for MapBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapBytes::Int(value) => write!(f, "{value}"),
            MapBytes::Hex(bytes) => write!(f, "\"{}\"", spaced_hex(bytes)),
            MapBytes::Struct(fields) => {
                f.write_str("[")?;
                for (i, field) in fields.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{field}")?;
                }
                f.write_str("]")
            }
            MapBytes::Fields(fields) => write_fields(f, fields),
        }
    }
}

/// `"0a 00 00 01"` without the quotes.
fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl<'de> Deserialize<'de> for MapBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = MapBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a non-negative integer, a hex string, an array of one-key tables (a \
                     struct, typed) or a table of field names (a struct, by its BTF)",
                )
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
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MapBytes, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = seq.next_element::<StructField>()? {
                    fields.push(field);
                }
                if fields.is_empty() {
                    return Err(de::Error::custom(
                        "a struct value lists no fields (write e.g. [{ u32 = 5 }])",
                    ));
                }
                Ok(MapBytes::Struct(fields))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MapBytes, A::Error> {
                named_fields(map).map(MapBytes::Fields)
            }
        }
        deserializer.deserialize_any(BytesVisitor)
    }
}

/// One field of a struct map key or value, written as a one-key table whose
/// key names the type: `{ u32 = 5 }`, `{ be16 = 53 }`, `{ pad = 2 }`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StructField {
    /// 1 byte.
    U8(u8),
    /// 2 bytes, little-endian (host order on x86-64 and arm64).
    U16(u16),
    /// 4 bytes, little-endian.
    U32(u32),
    /// 8 bytes, little-endian.
    U64(u64),
    /// 2 bytes, big-endian (network order, `__be16`).
    Be16(u16),
    /// 4 bytes, big-endian.
    Be32(u32),
    /// 8 bytes, big-endian.
    Be64(u64),
    /// An IPv4 address, 4 bytes in network order.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, 16 bytes in network order.
    Ipv6(Ipv6Addr),
    /// A MAC address, 6 bytes.
    Mac(MacAddr),
    /// Bytes as given (hex text).
    Bytes(Vec<u8>),
    /// This many zero bytes.
    Pad(usize),
    /// The index of an interface of the lab (in its own namespace), 4 bytes
    /// little-endian: a devmap value, a redirect target.
    Ifindex(IfaceRef),
}

/// The type keys of [`StructField`], in its order.
const STRUCT_FIELD_KEYS: &[&str] = &[
    "u8", "u16", "u32", "u64", "be16", "be32", "be64", "ipv4", "ipv6", "mac", "bytes", "pad",
    "ifindex",
];

impl StructField {
    /// Bytes the field takes.
    pub fn len(&self) -> usize {
        match self {
            StructField::U8(_) => 1,
            StructField::U16(_) | StructField::Be16(_) => 2,
            StructField::U32(_)
            | StructField::Be32(_)
            | StructField::Ipv4(_)
            | StructField::Ifindex(_) => 4,
            StructField::U64(_) | StructField::Be64(_) => 8,
            StructField::Ipv6(_) => 16,
            StructField::Mac(_) => 6,
            StructField::Bytes(bytes) => bytes.len(),
            StructField::Pad(n) => *n,
        }
    }

    /// Whether the field takes no bytes (`pad = 0`, `bytes = ""`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        ifindex: &dyn Fn(&IfaceRef) -> Result<u32, String>,
    ) -> Result<(), String> {
        match self {
            StructField::U8(v) => out.push(*v),
            StructField::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            StructField::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            StructField::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            StructField::Be16(v) => out.extend_from_slice(&v.to_be_bytes()),
            StructField::Be32(v) => out.extend_from_slice(&v.to_be_bytes()),
            StructField::Be64(v) => out.extend_from_slice(&v.to_be_bytes()),
            StructField::Ipv4(v) => out.extend_from_slice(&v.octets()),
            StructField::Ipv6(v) => out.extend_from_slice(&v.octets()),
            StructField::Mac(v) => out.extend_from_slice(&v.octets()),
            StructField::Bytes(v) => out.extend_from_slice(v),
            StructField::Pad(n) => out.resize(out.len() + n, 0),
            StructField::Ifindex(iface) => out.extend_from_slice(&ifindex(iface)?.to_le_bytes()),
        }
        Ok(())
    }
}

impl fmt::Display for StructField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StructField::U8(v) => write!(f, "{{ u8 = {v} }}"),
            StructField::U16(v) => write!(f, "{{ u16 = {v} }}"),
            StructField::U32(v) => write!(f, "{{ u32 = {v} }}"),
            StructField::U64(v) => write!(f, "{{ u64 = {v} }}"),
            StructField::Be16(v) => write!(f, "{{ be16 = {v} }}"),
            StructField::Be32(v) => write!(f, "{{ be32 = {v} }}"),
            StructField::Be64(v) => write!(f, "{{ be64 = {v} }}"),
            StructField::Ipv4(v) => write!(f, "{{ ipv4 = \"{v}\" }}"),
            StructField::Ipv6(v) => write!(f, "{{ ipv6 = \"{v}\" }}"),
            StructField::Mac(v) => write!(f, "{{ mac = \"{v}\" }}"),
            StructField::Bytes(v) => write!(f, "{{ bytes = \"{}\" }}", spaced_hex(v)),
            StructField::Pad(n) => write!(f, "{{ pad = {n} }}"),
            StructField::Ifindex(iface) => write!(f, "{{ ifindex = \"{iface}\" }}"),
        }
    }
}

impl<'de> Deserialize<'de> for StructField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = StructField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table with one key naming the field's type, e.g. { u32 = 5 }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StructField, A::Error> {
                let Some(key) = map.next_key::<toml::Spanned<String>>()? else {
                    return Err(de::Error::invalid_length(0, &self));
                };
                let kind = key.get_ref();
                let field = match kind.as_str() {
                    "u8" => StructField::U8(map.next_value()?),
                    "u16" => StructField::U16(map.next_value()?),
                    "u32" => StructField::U32(map.next_value()?),
                    "u64" => StructField::U64(map.next_value()?),
                    "be16" => StructField::Be16(map.next_value()?),
                    "be32" => StructField::Be32(map.next_value()?),
                    "be64" => StructField::Be64(map.next_value()?),
                    "ipv4" => StructField::Ipv4(map.next_value::<Addr<Ipv4Addr>>()?.0),
                    "ipv6" => StructField::Ipv6(map.next_value::<Addr<Ipv6Addr>>()?.0),
                    "mac" => StructField::Mac(map.next_value::<Addr<MacAddr>>()?.0),
                    "bytes" => StructField::Bytes(map.next_value::<HexBytes>()?.0),
                    "pad" => StructField::Pad(map.next_value()?),
                    "ifindex" => StructField::Ifindex(map.next_value()?),
                    other => return Err(de::Error::unknown_field(other, STRUCT_FIELD_KEYS)),
                };
                if let Some(extra) = map.next_key::<toml::Spanned<String>>()? {
                    // toml hands keys over sorted; name them in file order.
                    let (first, second) = if extra.span().start < key.span().start {
                        (extra.get_ref(), kind)
                    } else {
                        (kind, extra.get_ref())
                    };
                    return Err(de::Error::custom(format!(
                        "a struct field is a table with one key, but this one has {first:?} \
                         and {second:?}: write [{{ {first} = ... }}, {{ {second} = ... }}]"
                    )));
                }
                Ok(field)
            }
        }
        deserializer.deserialize_map(FieldVisitor)
    }
}

/// An address written as a string, failing inside its own value so toml
/// locates the error at it.
struct Addr<T>(T);

impl<'de> Deserialize<'de> for Addr<Ipv4Addr> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Addr)
            .map_err(|_| de::Error::custom(FrameError::Address { kind: "ipv4", text }))
    }
}

impl<'de> Deserialize<'de> for Addr<Ipv6Addr> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Addr)
            .map_err(|_| de::Error::custom(FrameError::Address { kind: "ipv6", text }))
    }
}

impl<'de> Deserialize<'de> for Addr<MacAddr> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_mac(&text).map(Addr).map_err(de::Error::custom)
    }
}

/// A throughput check (`[throughput]`): the scenario's program, in its
/// mode, is measured with `injector` in the default two-namespace lab, then
/// `baseline` in the same run and the same way; the scenario fails if the
/// program's receive rate is less than `min_ratio` times the baseline's.
///
/// Rates come from the receiver's kernel counters (see [`crate::bench`]),
/// so the check holds on any machine: it compares two numbers measured on
/// the same one, moments apart.
#[derive(Clone, Debug, PartialEq)]
pub struct ThroughputSpec {
    /// How frames are sent; default [`InjectorKind::Live`].
    pub injector: InjectorKind,
    /// How long each of the two measurements sends,
    /// [`ThroughputSpec::MIN_DURATION`]..=[`ThroughputSpec::MAX_DURATION`];
    /// default [`ThroughputSpec::DEFAULT_DURATION`].
    pub duration: Duration,
    /// Frame length in bytes, without FCS, 60..=1514; default 64.
    pub size: usize,
    /// CPUs the live injector sends from (the others always use one),
    /// 1..=256; default 1.
    pub threads: usize,
    /// What the program is compared with: [`BenchProgram::None`] (no
    /// program: frames go to the stack), [`BenchProgram::Drop`] or
    /// [`BenchProgram::Pass`]; default none.
    pub baseline: BenchProgram,
    /// Lowest acceptable `program rx_pps / baseline rx_pps`; greater than 0.
    pub min_ratio: f64,
    /// Line of the `[throughput]` header in the scenario file.
    pub line: usize,
}

impl ThroughputSpec {
    /// Default injector.
    pub const DEFAULT_INJECTOR: InjectorKind = InjectorKind::Live;
    /// Default measuring time.
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(2);
    /// Shortest measuring time.
    pub const MIN_DURATION: Duration = Duration::from_millis(100);
    /// Longest measuring time.
    pub const MAX_DURATION: Duration = Duration::from_secs(60);
    /// Default frame length.
    pub const DEFAULT_SIZE: usize = 64;
    /// Shortest frame: the Ethernet minimum without FCS.
    pub const MIN_SIZE: usize = 60;
    /// Longest frame: a 1500-byte MTU plus the Ethernet header.
    pub const MAX_SIZE: usize = 1514;
    /// Most sending threads.
    pub const MAX_THREADS: usize = 256;

    /// One line for listings: `throughput: live, 64 B, 2s: rx pps >= 0.5 x none`.
    pub fn describe(&self) -> String {
        let threads = if self.threads > 1 {
            format!(" x{}", self.threads)
        } else {
            String::new()
        };
        format!(
            "throughput: {}{threads}, {} B, {}: rx pps >= {} x {}",
            self.injector,
            self.size,
            format_duration(self.duration),
            self.min_ratio,
            self.baseline
        )
    }
}

/// Reads a duration written as a number and a unit: `"500ms"`, `"3s"`,
/// `"1.5s"`, `"1m"` (units `ms`, `s`, `m`). The same syntax serves
/// `[throughput] duration` and `xdplab bench --duration`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: write a number and a unit (ms, s or m), e.g. \"500ms\", \
             \"3s\" or \"1m\""
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(invalid)?;
    let (number, unit) = trimmed.split_at(split);
    // A number is digits with at most one dot, and at least one digit.
    if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit.trim_start() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| invalid())
}

/// `"500ms"`, `"2s"`, `"1.5s"`, `"2m"`: the shortest way [`parse_duration`]
/// reads back.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}s", duration.as_secs_f64())
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// What a ring buffer should have received during the run
/// (`[[expect.events]]`): `count` records that match `filter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventExpect {
    /// Name of the `BPF_MAP_TYPE_RINGBUF` map in the program's object.
    pub ringbuf: String,
    /// The record's fields in order, each with its name; names are unique
    /// except `_`, which may repeat and is never decoded.
    pub layout: Vec<(String, FieldKind)>,
    /// Field values a record must have to count (all of them); empty: every
    /// record counts. In file order.
    pub filter: Vec<(String, u64)>,
    /// How many matching records are expected, exactly.
    pub count: u64,
    /// Line of the `[[expect.events]]` header in the scenario file.
    pub line: usize,
}

impl EventExpect {
    /// Bytes the layout covers: records must be at least this long.
    pub fn record_len(&self) -> usize {
        self.layout
            .iter()
            .fold(0usize, |sum, (_, kind)| sum.saturating_add(kind.len()))
    }

    /// The record's named fields in layout order (padding and fields named
    /// `_` left out); `None` if the record is shorter than the layout.
    /// Bytes after the layout are ignored.
    pub fn decode(&self, record: &[u8]) -> Option<Vec<(String, u64)>> {
        if record.len() < self.record_len() {
            return None;
        }
        let mut at = 0;
        let mut out = Vec::new();
        for (name, kind) in &self.layout {
            let bytes = &record[at..at + kind.len()];
            at += kind.len();
            if let (Some(value), false) = (kind.read(bytes), name == "_") {
                out.push((name.clone(), value));
            }
        }
        Some(out)
    }

    /// Whether the record is long enough and has every value of `filter`.
    pub fn matches(&self, record: &[u8]) -> bool {
        let Some(fields) = self.decode(record) else {
            return false;
        };
        self.filter.iter().all(|(name, want)| {
            fields
                .iter()
                .any(|(field, value)| field == name && value == want)
        })
    }

    /// One line for listings: `drop_events: 350 x { reason = 1, dst-port = 53 }`.
    pub fn describe(&self) -> String {
        if self.filter.is_empty() {
            return format!("{}: {} records", self.ringbuf, self.count);
        }
        let filter: Vec<String> = self
            .filter
            .iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect();
        format!(
            "{}: {} records with {{ {} }}",
            self.ringbuf,
            self.count,
            filter.join(", ")
        )
    }
}

/// Type of one ring buffer record field, written after the name:
/// `"len:u16"`, `"port:be16"`, `"_:pad2"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// 1 byte.
    U8,
    /// 2 bytes, little-endian (host order on x86-64 and arm64).
    U16,
    /// 4 bytes, little-endian.
    U32,
    /// 8 bytes, little-endian.
    U64,
    /// 2 bytes, big-endian (network order).
    Be16,
    /// 4 bytes, big-endian.
    Be32,
    /// 8 bytes, big-endian.
    Be64,
    /// This many bytes skipped (`padN`, N >= 1).
    Pad(usize),
}

impl FieldKind {
    /// Bytes the field takes.
    pub fn len(self) -> usize {
        match self {
            FieldKind::U8 => 1,
            FieldKind::U16 | FieldKind::Be16 => 2,
            FieldKind::U32 | FieldKind::Be32 => 4,
            FieldKind::U64 | FieldKind::Be64 => 8,
            FieldKind::Pad(n) => n,
        }
    }

    /// Whether the field takes no bytes (never, for a parsed layout).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Largest value the field holds; `None` for padding.
    pub fn max(self) -> Option<u64> {
        match self {
            FieldKind::U8 => Some(u8::MAX.into()),
            FieldKind::U16 | FieldKind::Be16 => Some(u16::MAX.into()),
            FieldKind::U32 | FieldKind::Be32 => Some(u32::MAX.into()),
            FieldKind::U64 | FieldKind::Be64 => Some(u64::MAX),
            FieldKind::Pad(_) => None,
        }
    }

    /// The value in `bytes` (exactly [`FieldKind::len`] of them); `None`
    /// for padding.
    fn read(self, bytes: &[u8]) -> Option<u64> {
        let mut buf = [0u8; 8];
        match self {
            FieldKind::Pad(_) => None,
            FieldKind::U8 | FieldKind::U16 | FieldKind::U32 | FieldKind::U64 => {
                buf[..bytes.len()].copy_from_slice(bytes);
                Some(u64::from_le_bytes(buf))
            }
            FieldKind::Be16 | FieldKind::Be32 | FieldKind::Be64 => {
                buf[8 - bytes.len()..].copy_from_slice(bytes);
                Some(u64::from_be_bytes(buf))
            }
        }
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldKind::U8 => f.write_str("u8"),
            FieldKind::U16 => f.write_str("u16"),
            FieldKind::U32 => f.write_str("u32"),
            FieldKind::U64 => f.write_str("u64"),
            FieldKind::Be16 => f.write_str("be16"),
            FieldKind::Be32 => f.write_str("be32"),
            FieldKind::Be64 => f.write_str("be64"),
            FieldKind::Pad(n) => write!(f, "pad{n}"),
        }
    }
}

impl FromStr for FieldKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "u8" => FieldKind::U8,
            "u16" => FieldKind::U16,
            "u32" => FieldKind::U32,
            "u64" => FieldKind::U64,
            "be16" => FieldKind::Be16,
            "be32" => FieldKind::Be32,
            "be64" => FieldKind::Be64,
            _ => match text.strip_prefix("pad").map(|n| (n, n.parse::<usize>())) {
                Some((digits, Ok(n))) if n >= 1 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    FieldKind::Pad(n)
                }
                _ => {
                    return Err(format!(
                        "unknown field type {text:?}: expected u8, u16, u32, u64, be16, be32, \
                         be64 or padN (N bytes, N >= 1)"
                    ));
                }
            },
        })
    }
}

/// Reads one `layout` entry of `[[expect.events]]`: `"name:type"`.
pub(super) fn layout_field(text: &str) -> Result<(String, FieldKind), String> {
    let Some((name, kind)) = text.split_once(':') else {
        return Err(format!(
            "layout field {text:?} has no type: write \"name:type\", e.g. \"len:u16\""
        ));
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "invalid layout field name {name:?}: use letters, digits, \"_\" and \"-\""
        ));
    }
    Ok((name.to_owned(), kind.parse()?))
}

/// The `where` table of `[[expect.events]]`, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct WhereTable(pub Vec<(String, u64)>);

impl<'de> Deserialize<'de> for WhereTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WhereVisitor;
        impl<'de> Visitor<'de> for WhereVisitor {
            type Value = WhereTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of field names and non-negative integers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WhereTable, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<toml::Spanned<String>>()? {
                    let value: u64 = map.next_value()?;
                    out.push((name, value));
                }
                // toml hands keys over sorted; their spans give the file order.
                out.sort_by_key(|(name, _)| name.span().start);
                Ok(WhereTable(
                    out.into_iter()
                        .map(|(name, value)| (name.into_inner(), value))
                        .collect(),
                ))
            }
        }
        deserializer.deserialize_map(WhereVisitor)
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
            ObjectSource::resolve("xdp_filter", dir),
            ObjectSource::Bundled("xdp_filter".into())
        );
        assert_eq!(
            ObjectSource::resolve("obj/mine.o", dir),
            ObjectSource::File("scenarios/obj/mine.o".into())
        );
        assert_eq!(
            ObjectSource::resolve("/abs/x.o", dir),
            ObjectSource::File("/abs/x.o".into())
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

/// One step of a lifecycle scenario (`[[step]]`), run in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What the step does.
    pub action: StepAction,
    /// Line of the `[[step]]` header in the scenario file.
    pub line: usize,
}

/// What a `[[step]]` does; one verb per step. Programs, maps and links live in the run's own
/// bpffs: `progs/<version>`, `maps/<map>` (shared by name by every version that declares
/// the map), `links/<link>`.
#[derive(Clone, Debug, PartialEq)]
pub enum StepAction {
    /// `load = "v1"`: load an object's XDP entry as a named version, pin it at
    /// `progs/<version>` and its maps by name under `maps/`, reusing maps already pinned
    /// there (`bpftool prog load OBJ PIN type xdp pinmaps DIR`).
    Load {
        /// The version's name.
        version: String,
        /// The object.
        object: ObjectSource,
        /// The XDP entry in it.
        entry: String,
        /// `const volatile __u32` globals set at load time.
        globals: Vec<(String, u32)>,
        /// Line of `object` (an unusable file is reported there).
        object_line: usize,
        /// Line of `entry` (a missing or rejected program is reported there).
        entry_line: usize,
    },
    /// `attach = "v1"`: attach a loaded version through a new bpf_link pinned at
    /// `links/<link>` (`bpftool net attach xdp PIN dev IF` + `bpftool link pin`).
    Attach {
        /// The version.
        version: String,
        /// The interface.
        at: IfaceRef,
        /// Native or generic.
        mode: XdpMode,
        /// The link's name.
        link: String,
    },
    /// `send = { ... }`: send a group of frames (index into [`Scenario::sends`]); with
    /// `background`, the frames go out from a thread of their own, for at most that long,
    /// while the next steps run.
    Send {
        /// Index of the group in [`Scenario::sends`].
        group: usize,
        /// Send in the background for at most this long.
        background: Option<Duration>,
    },
    /// `wait = "group"`: wait for a background send to finish; with `frames = N`, only until
    /// it has sent N frames (it keeps sending), so the next step happens mid-stream whatever
    /// the machine's speed.
    Wait {
        /// Index of the group in [`Scenario::sends`].
        group: usize,
        /// Wait only until this many frames went out.
        frames: Option<u32>,
    },
    /// `sleep = "200ms"`: let time pass (a background send keeps sending).
    Sleep {
        /// How long.
        duration: Duration,
    },
    /// `replace = "v2"`: swap the program on a link for another version atomically
    /// (`BPF_LINK_UPDATE` with `BPF_F_REPLACE`, libbpf's `bpf_link_update`).
    Replace {
        /// The link.
        link: String,
        /// The version to run.
        version: String,
    },
    /// `rollback = "v1"`: replace back to a version the link ran before.
    Rollback {
        /// The link.
        link: String,
        /// The earlier version.
        version: String,
    },
    /// `detach = "link"`: take the link's program off its interface (`BPF_LINK_DETACH`); the
    /// link's pin stays until unpinned.
    Detach {
        /// The link.
        link: String,
    },
    /// `restart = true`: drop every handle the run holds (programs, maps, links) and reopen
    /// them from their pins, as a restarted control plane would.
    Restart,
    /// `unpin = ["links/rx", ...]` or `unpin = ["all"]`: remove pins (`rm PIN`); a program or
    /// map whose last pin and handle go is unloaded by the kernel.
    Unpin {
        /// Pins relative to the run's bpffs; `None` for all.
        pins: Option<Vec<String>>,
    },
    /// `[step.expect]`: checks at this point of the sequence.
    Expect(StepExpect),
}

impl StepAction {
    /// One line for listings: `replace link rx with v2`.
    pub fn describe(&self, sends: &[SendGroup]) -> String {
        let group = |g: &usize| sends.get(*g).map_or("?", |s| s.name.as_str()).to_owned();
        match self {
            Self::Load {
                version,
                object,
                entry,
                ..
            } => format!("load {version} = {}:{entry}", object.name()),
            Self::Attach {
                version, at, link, ..
            } => format!("attach {version} to {at} as link {link}"),
            Self::Send {
                group: g,
                background,
            } => match background {
                Some(d) => format!(
                    "send {:?} in the background (at most {})",
                    group(g),
                    format_duration(*d)
                ),
                None => format!("send {:?}", group(g)),
            },
            Self::Wait { group: g, frames } => match frames {
                Some(n) => format!("wait until {:?} sent {n} frames", group(g)),
                None => format!("wait for {:?}", group(g)),
            },
            Self::Sleep { duration } => format!("sleep {}", format_duration(*duration)),
            Self::Replace { link, version } => format!("replace link {link} with {version}"),
            Self::Rollback { link, version } => format!("roll link {link} back to {version}"),
            Self::Detach { link } => format!("detach link {link}"),
            Self::Restart => "restart from the pins".to_owned(),
            Self::Unpin { pins: None } => "unpin all".to_owned(),
            Self::Unpin { pins: Some(p) } => format!("unpin {}", p.join(", ")),
            Self::Expect(_) => "expect".to_owned(),
        }
    }

    /// The verb, as written in the file.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Load { .. } => "load",
            Self::Attach { .. } => "attach",
            Self::Send { .. } => "send",
            Self::Wait { .. } => "wait",
            Self::Sleep { .. } => "sleep",
            Self::Replace { .. } => "replace",
            Self::Rollback { .. } => "rollback",
            Self::Detach { .. } => "detach",
            Self::Restart => "restart",
            Self::Unpin { .. } => "unpin",
            Self::Expect(_) => "expect",
        }
    }
}

/// The checks of an `expect` step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepExpect {
    /// Map entries, read through the maps' pins; `delta` is the change since the previous
    /// `expect` step that read the same entry (or since the map was created).
    pub maps: Vec<MapExpect>,
    /// The state of a link.
    pub link: Option<LinkExpect>,
    /// The exact pins the run's bpffs holds, sorted (`progs/v1`, `maps/pkt_cnt`, ...).
    pub pins: Option<Vec<String>>,
    /// Which version handled each frame of a send group.
    pub trace: Option<TraceExpect>,
}

/// What a link should be doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkExpect {
    /// The link.
    pub link: String,
    /// The version it runs; `None` when it should be detached.
    pub runs: Option<String>,
}

/// Per-frame proof that every frame of a send group was handled by one of `versions`:
/// the program writes `(run_id << 32) | (group << 16) | version` at index `seq` of an array
/// (`trace` in the bundled `xdp_version`), and each version's number is its `version`
/// global.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceExpect {
    /// Index of the group in [`Scenario::sends`].
    pub group: usize,
    /// The versions allowed to handle its frames, in the order they should have.
    pub versions: Vec<String>,
    /// The trace map.
    pub map: String,
}
