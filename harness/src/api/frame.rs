//! [`Frame`]: a typed builder over [`FrameSpec`], the frame description scenario files use.
//!
//! A frame starts from its L3 layer (`Frame::ipv4()`, `ipv6()`, `arp()`, `ethernet()`) or
//! its bytes (`Frame::raw`), adds layers (`.udp()`, `.tcp()`, `.icmp()`, `.icmpv6()`,
//! `.vlan(id)`) and sets fields. Whatever is left out comes from the interfaces the frame is
//! sent between, or from the defaults `docs/scenario-format.md` lists (UDP to port 9, TTL 64,
//! ...). A call that does not fit the frame (a port on a frame without UDP or TCP) is kept and
//! reported when the frame is built, as an [`Error`](super::Error): builder calls never panic.

use std::net::{IpAddr, Ipv4Addr};

use crate::frame::{
    ArpOp, ArpSpec, Endpoints, EthSpec, FrameSpec, FrameTemplate, HexBytes, IcmpSpec, Icmpv6Spec,
    Ipv4Spec, Ipv6Spec, MacAddr, TcpFlags, TcpSpec, UdpSpec, VlanSpec,
};

use super::error::{Error, Result};

/// A test frame, built layer by layer.
///
/// ```
/// use xdplab::Frame;
///
/// let dns = Frame::ipv4().udp().dst_port(53);
/// let syn = Frame::ipv6().tcp().dst_port(443).tcp_flags("S");
/// let tagged = Frame::ipv4().vlan(100).icmp().size(128);
/// assert_eq!(dns.spec().udp.as_ref().map(|u| u.dst_port), Some(53));
/// # let _ = (syn, tagged);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    spec: FrameSpec,
    /// The first builder call that did not fit, reported when the frame is built.
    problem: Option<String>,
}

impl From<FrameSpec> for Frame {
    fn from(spec: FrameSpec) -> Self {
        Self::from_spec(spec)
    }
}

impl Frame {
    /// An Ethernet frame with nothing after the header (EtherType 0x88b5, local experimental).
    pub fn ethernet() -> Self {
        Self::default()
    }

    /// An IPv4 packet from the sending interface to its peer (protocol 253 until a layer is
    /// added).
    pub fn ipv4() -> Self {
        Self::from_spec(FrameSpec {
            ipv4: Some(Ipv4Spec::default()),
            ..FrameSpec::default()
        })
    }

    /// An IPv6 packet from the sending interface to its peer (next header 253 until a layer is
    /// added).
    pub fn ipv6() -> Self {
        Self::from_spec(FrameSpec {
            ipv6: Some(Ipv6Spec::default()),
            ..FrameSpec::default()
        })
    }

    /// An ARP request from the sending interface for its peer's address.
    pub fn arp() -> Self {
        Self::from_spec(FrameSpec {
            arp: Some(ArpSpec::default()),
            ..FrameSpec::default()
        })
    }

    /// These exact bytes, sent as they are (never tagged, so attributed by content).
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self::from_spec(FrameSpec {
            raw: Some(HexBytes(bytes.into())),
            ..FrameSpec::default()
        })
    }

    /// A frame from a spec written out in full, as a scenario file's `[[send]]` table holds it.
    pub fn from_spec(spec: FrameSpec) -> Self {
        Self {
            spec,
            problem: None,
        }
    }

    /// The spec the builder has made so far.
    pub fn spec(&self) -> &FrameSpec {
        &self.spec
    }

    /// Lays the frame out for a send from an interface with these addresses, frames at most
    /// `max_len` bytes: the first builder call that did not fit, or the spec's own checks
    /// (conflicting layers, sizes, ranges), is an error.
    pub fn template(&self, endpoints: &Endpoints, max_len: usize) -> Result<FrameTemplate> {
        if let Some(problem) = &self.problem {
            return Err(Error::FrameUsage(problem.clone()));
        }
        Ok(FrameTemplate::build(&self.spec, endpoints, max_len)?)
    }

    /// The frame's bytes as sent from the default lab's sender to its receiver, with a zero
    /// tag area (what [`Program::test_run`](super::Program::test_run) runs, tag aside).
    pub fn bytes(&self) -> Result<Vec<u8>> {
        Ok(self
            .template(&crate::topology::lab::endpoints(), usize::from(u16::MAX))?
            .bytes()
            .to_vec())
    }

    fn fail(mut self, problem: String) -> Self {
        self.problem.get_or_insert(problem);
        self
    }

    // Layers.

    /// Adds a UDP header (source port 40000, destination port 9 unless set).
    pub fn udp(mut self) -> Self {
        self.spec.udp.get_or_insert_with(UdpSpec::default);
        self
    }

    /// Adds a TCP header without options (source port 40000, destination port 80, SYN,
    /// window 65535 unless set).
    pub fn tcp(mut self) -> Self {
        self.spec.tcp.get_or_insert_with(TcpSpec::default);
        self
    }

    /// Adds an ICMP header (an echo request unless set); needs IPv4.
    pub fn icmp(mut self) -> Self {
        self.spec.icmp.get_or_insert_with(IcmpSpec::default);
        self
    }

    /// Adds an ICMPv6 header (an echo request unless set); needs IPv6.
    pub fn icmpv6(mut self) -> Self {
        self.spec.icmpv6.get_or_insert_with(Icmpv6Spec::default);
        self
    }

    /// Adds an 802.1Q tag with this VLAN id inside the tags added so far (the first call
    /// gives the outermost tag).
    pub fn vlan(self, id: u16) -> Self {
        self.vlan_tag(VlanSpec {
            id,
            ..VlanSpec::default()
        })
    }

    /// Adds a VLAN tag with every field given (priority, DEI, TPID for 802.1ad).
    pub fn vlan_tag(mut self, tag: VlanSpec) -> Self {
        self.spec.vlan.push(tag);
        self
    }

    // Ethernet.

    fn eth(&mut self) -> &mut EthSpec {
        self.spec.eth.get_or_insert_with(EthSpec::default)
    }

    /// The source MAC (default: the sending interface's).
    pub fn src_mac(mut self, mac: MacAddr) -> Self {
        self.eth().src = Some(mac);
        self
    }

    /// The destination MAC (default: the peer's).
    pub fn dst_mac(mut self, mac: MacAddr) -> Self {
        self.eth().dst = Some(mac);
        self
    }

    /// The EtherType after the VLAN tags (default: the L3 layer's).
    pub fn ethertype(mut self, ethertype: u16) -> Self {
        self.eth().ethertype = Some(ethertype);
        self
    }

    // IP.

    /// The source address (default: the sending interface's); its family must match the
    /// frame's IP layer.
    pub fn src_ip(self, address: impl Into<IpAddr>) -> Self {
        self.ip_address(address.into(), true)
    }

    /// The destination address (default: the peer's); its family must match the frame's IP
    /// layer.
    pub fn dst_ip(self, address: impl Into<IpAddr>) -> Self {
        self.ip_address(address.into(), false)
    }

    fn ip_address(mut self, address: IpAddr, source: bool) -> Self {
        let which = if source { "src_ip" } else { "dst_ip" };
        match (address, &mut self.spec.ipv4, &mut self.spec.ipv6) {
            (IpAddr::V4(a), Some(ip), _) => {
                *(if source { &mut ip.src } else { &mut ip.dst }) = Some(a)
            }
            (IpAddr::V6(a), _, Some(ip)) => {
                *(if source { &mut ip.src } else { &mut ip.dst }) = Some(a)
            }
            (address, _, _) => {
                return self.fail(format!(
                    "{which}({address}) needs an {} layer (Frame::{}())",
                    if address.is_ipv4() { "ipv4" } else { "ipv6" },
                    if address.is_ipv4() { "ipv4" } else { "ipv6" },
                ));
            }
        }
        self
    }

    /// The IPv4 TTL or IPv6 hop limit (default 64).
    pub fn ttl(mut self, ttl: u8) -> Self {
        match (&mut self.spec.ipv4, &mut self.spec.ipv6) {
            (Some(ip), _) => ip.ttl = ttl,
            (_, Some(ip)) => ip.hop_limit = ttl,
            _ => return self.fail(format!("ttl({ttl}) needs an ipv4 or ipv6 layer")),
        }
        self
    }

    /// The IPv4 TOS byte or IPv6 traffic class (DSCP << 2 | ECN; default 0).
    pub fn tos(mut self, tos: u8) -> Self {
        match (&mut self.spec.ipv4, &mut self.spec.ipv6) {
            (Some(ip), _) => ip.tos = tos,
            (_, Some(ip)) => ip.traffic_class = tos,
            _ => return self.fail(format!("tos({tos}) needs an ipv4 or ipv6 layer")),
        }
        self
    }

    /// The IP protocol (IPv4) or next header (IPv6) field (default: the L4 layer's).
    pub fn protocol(mut self, protocol: u8) -> Self {
        match (&mut self.spec.ipv4, &mut self.spec.ipv6) {
            (Some(ip), _) => ip.protocol = Some(protocol),
            (_, Some(ip)) => ip.next_header = Some(protocol),
            _ => return self.fail(format!("protocol({protocol}) needs an ipv4 or ipv6 layer")),
        }
        self
    }

    fn ipv4_field(self, call: &str, set: impl FnOnce(&mut Ipv4Spec)) -> Self {
        let mut frame = self;
        match &mut frame.spec.ipv4 {
            Some(ip) => {
                set(ip);
                frame
            }
            None => frame.fail(format!("{call} needs an ipv4 layer (Frame::ipv4())")),
        }
    }

    /// The IPv4 identification field (default 0).
    pub fn ip_id(self, id: u16) -> Self {
        self.ipv4_field("ip_id", |ip| ip.id = id)
    }

    /// Sets the IPv4 don't-fragment flag.
    pub fn dont_fragment(self) -> Self {
        self.ipv4_field("dont_fragment", |ip| ip.dont_fragment = true)
    }

    /// Makes the IPv4 packet a fragment: offset in 8-byte units, and whether more follow.
    pub fn fragment(self, offset: u16, more: bool) -> Self {
        self.ipv4_field("fragment", |ip| {
            ip.fragment_offset = offset;
            ip.more_fragments = more;
        })
    }

    /// IPv4 option bytes (a multiple of 4, at most 40).
    pub fn ipv4_options(self, options: impl Into<Vec<u8>>) -> Self {
        let options = HexBytes(options.into());
        self.ipv4_field("ipv4_options", |ip| ip.options = options)
    }

    /// The IPv6 flow label (default 0).
    pub fn flow_label(mut self, label: u32) -> Self {
        match &mut self.spec.ipv6 {
            Some(ip) => ip.flow_label = label,
            None => return self.fail(format!("flow_label({label}) needs an ipv6 layer")),
        }
        self
    }

    // L4.

    /// The UDP or TCP source port.
    pub fn src_port(mut self, port: u16) -> Self {
        match (&mut self.spec.udp, &mut self.spec.tcp) {
            (Some(udp), _) => udp.src_port = port,
            (_, Some(tcp)) => tcp.src_port = port,
            _ => return self.fail(format!("src_port({port}) needs a udp or tcp layer")),
        }
        self
    }

    /// The UDP or TCP destination port.
    pub fn dst_port(mut self, port: u16) -> Self {
        match (&mut self.spec.udp, &mut self.spec.tcp) {
            (Some(udp), _) => udp.dst_port = port,
            (_, Some(tcp)) => tcp.dst_port = port,
            _ => return self.fail(format!("dst_port({port}) needs a udp or tcp layer")),
        }
        self
    }

    fn tcp_field(self, call: &str, set: impl FnOnce(&mut TcpSpec)) -> Self {
        let mut frame = self;
        match &mut frame.spec.tcp {
            Some(tcp) => {
                set(tcp);
                frame
            }
            None => frame.fail(format!("{call} needs a tcp layer (.tcp())")),
        }
    }

    /// TCP flags as letters from `FSRPAUEC` (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR): `"SA"`,
    /// `""` for none.
    pub fn tcp_flags(self, flags: &str) -> Self {
        match flags.parse::<TcpFlags>() {
            Ok(flags) => self.tcp_field("tcp_flags", |tcp| tcp.flags = flags),
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// The TCP sequence and acknowledgement numbers.
    pub fn tcp_seq(self, seq: u32, ack: u32) -> Self {
        self.tcp_field("tcp_seq", |tcp| {
            tcp.seq = seq;
            tcp.ack = ack;
        })
    }

    /// The TCP window (default 65535).
    pub fn tcp_window(self, window: u16) -> Self {
        self.tcp_field("tcp_window", |tcp| tcp.window = window)
    }

    /// The ICMP or ICMPv6 type and code (default: echo request, code 0).
    pub fn icmp_type(mut self, icmp_type: u8, code: u8) -> Self {
        match (&mut self.spec.icmp, &mut self.spec.icmpv6) {
            (Some(icmp), _) => (icmp.icmp_type, icmp.code) = (icmp_type, code),
            (_, Some(icmp)) => (icmp.icmp_type, icmp.code) = (icmp_type, code),
            _ => {
                return self.fail(format!(
                    "icmp_type({icmp_type}, {code}) needs an icmp or icmpv6 layer"
                ));
            }
        }
        self
    }

    /// The ICMP or ICMPv6 echo identifier and sequence number.
    pub fn echo(mut self, id: u16, seq: u16) -> Self {
        match (&mut self.spec.icmp, &mut self.spec.icmpv6) {
            (Some(icmp), _) => (icmp.id, icmp.seq) = (id, seq),
            (_, Some(icmp)) => (icmp.id, icmp.seq) = (id, seq),
            _ => return self.fail(format!("echo({id}, {seq}) needs an icmp or icmpv6 layer")),
        }
        self
    }

    /// The ICMP or ICMPv6 checksum, sent as given, right or wrong (default: computed).
    pub fn icmp_checksum(mut self, checksum: u16) -> Self {
        match (&mut self.spec.icmp, &mut self.spec.icmpv6) {
            (Some(icmp), _) => icmp.checksum = Some(checksum),
            (_, Some(icmp)) => icmp.checksum = Some(checksum),
            _ => {
                return self.fail(format!(
                    "icmp_checksum({checksum}) needs an icmp or icmpv6 layer"
                ));
            }
        }
        self
    }

    // ARP.

    fn arp_field(self, call: &str, set: impl FnOnce(&mut ArpSpec)) -> Self {
        let mut frame = self;
        match &mut frame.spec.arp {
            Some(arp) => {
                set(arp);
                frame
            }
            None => frame.fail(format!("{call} needs an arp layer (Frame::arp())")),
        }
    }

    /// Makes the ARP frame a reply instead of a request.
    pub fn arp_reply(self) -> Self {
        self.arp_field("arp_reply", |arp| arp.op = ArpOp::REPLY)
    }

    /// The ARP sender hardware and protocol addresses (default: the sending interface's).
    pub fn arp_sender(self, mac: MacAddr, ip: Ipv4Addr) -> Self {
        self.arp_field("arp_sender", |arp| {
            arp.sender_mac = Some(mac);
            arp.sender_ip = Some(ip);
        })
    }

    /// The ARP target protocol address (default: the peer's).
    pub fn arp_target(self, ip: Ipv4Addr) -> Self {
        self.arp_field("arp_target", |arp| arp.target_ip = Some(ip))
    }

    // Body and size.

    /// Bytes after the innermost header, before the tag.
    pub fn payload(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.spec.payload = Some(HexBytes(bytes.into()));
        self
    }

    /// The exact frame length without FCS (default: headers, payload and tag, at least 60).
    pub fn size(mut self, len: usize) -> Self {
        self.spec.size = Some(len);
        self
    }

    /// Allows a [`size`](Self::size) below the headers (the frame is cut) or below 60.
    pub fn truncate(mut self) -> Self {
        self.spec.truncate = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn bytes(frame: &Frame) -> Vec<u8> {
        frame.bytes().expect("frame builds")
    }

    #[test]
    fn ipv4_udp_to_a_port() {
        let b = bytes(&Frame::ipv4().udp().dst_port(9).src_port(1234));
        assert_eq!(&b[12..14], &[0x08, 0x00], "ethertype ipv4");
        assert_eq!(b[23], 17, "protocol udp");
        assert_eq!(&b[34..36], &1234u16.to_be_bytes());
        assert_eq!(&b[36..38], &9u16.to_be_bytes());
        assert_eq!(&b[26..30], &crate::topology::lab::SENDER_IPV4.octets());
        assert!(b.len() >= 60);
    }

    #[test]
    fn the_builder_equals_the_spec_a_scenario_writes() {
        let built = Frame::ipv6().tcp().dst_port(443).tcp_flags("SA").ttl(7);
        let spec = FrameSpec {
            ipv6: Some(Ipv6Spec {
                hop_limit: 7,
                ..Ipv6Spec::default()
            }),
            tcp: Some(TcpSpec {
                dst_port: 443,
                flags: "SA".parse().unwrap(),
                ..TcpSpec::default()
            }),
            ..FrameSpec::default()
        };
        assert_eq!(built.spec(), &spec);
        assert_eq!(bytes(&built), bytes(&Frame::from_spec(spec)));
    }

    #[test]
    fn vlan_icmp_arp_and_raw() {
        let b = bytes(&Frame::ipv4().vlan(100).icmp().echo(7, 1).size(128));
        assert_eq!(b.len(), 128);
        assert_eq!(&b[12..14], &[0x81, 0x00]);
        assert_eq!(u16::from_be_bytes([b[14], b[15]]) & 0x0fff, 100);
        let arp = bytes(&Frame::arp().arp_reply());
        assert_eq!(&arp[12..14], &[0x08, 0x06]);
        assert_eq!(&arp[20..22], &2u16.to_be_bytes());
        assert_eq!(bytes(&Frame::raw(vec![1u8; 60])), vec![1u8; 60]);
        let v6 = bytes(&Frame::ipv6().icmpv6().dst_ip(Ipv6Addr::LOCALHOST));
        assert_eq!(&v6[38..54], &Ipv6Addr::LOCALHOST.octets());
        let payload = bytes(&Frame::ipv4().udp().payload(*b"hello"));
        assert_eq!(&payload[42..47], b"hello");
    }

    #[test]
    fn calls_that_do_not_fit_are_errors_not_panics() {
        for (frame, words) in [
            (
                Frame::ipv4().dst_port(9),
                "dst_port(9) needs a udp or tcp layer",
            ),
            (
                Frame::ipv4().dst_ip(Ipv6Addr::LOCALHOST),
                "needs an ipv6 layer",
            ),
            (Frame::ipv4().udp().tcp_flags("S"), "needs a tcp layer"),
            (Frame::ipv4().tcp().tcp_flags("Z"), "Z"),
            (Frame::arp().udp(), "udp"),
            (Frame::ipv4().udp().tcp(), "conflicting layers"),
            (Frame::ipv4().size(10), "size"),
        ] {
            let error = frame.bytes().expect_err("invalid frame");
            let text = error.to_string();
            assert!(text.starts_with("failed to build frame: "), "{text}");
            assert!(text.contains(words), "{text} lacks {words:?}");
        }
    }
}
