//! Property test of the frame builder: for any requested Ethernet addresses, VLAN tags, IPv4
//! or IPv6 header fields, UDP or TCP header fields, payload and size within the limits, the
//! built frame (stamped with a tag) parses back with pnet to exactly those fields, has exactly
//! the requested length, and carries valid checksums.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet::packet::{
    Packet as _,
    ethernet::EthernetPacket,
    ipv4::{self, Ipv4Packet},
    ipv6::Ipv6Packet,
    tcp::{self, TcpPacket},
    udp::{self, UdpPacket},
    vlan::VlanPacket,
};
use proptest::prelude::*;
use xdplab::frame::{
    ETH_HEADER_LEN, ETH_MIN_LEN, Endpoints, EthSpec, FrameSpec, FrameTemplate, HexBytes, Ipv4Spec,
    Ipv6Spec, MacAddr, Tag, TcpFlags, TcpSpec, UdpSpec, VLAN_TAG_LEN, VlanSpec,
};

/// The longest frame on a 1500-byte MTU, without FCS (one 802.1Q tag may add 4).
const MAX_LEN: usize = 1514;

fn endpoints() -> Endpoints {
    Endpoints {
        src_mac: MacAddr::new(0x02, 0x78, 0x6c, 0, 0, 1),
        dst_mac: MacAddr::new(0x02, 0x78, 0x6c, 0, 0, 2),
        src_ipv4: Ipv4Addr::new(10, 78, 0, 1),
        dst_ipv4: Ipv4Addr::new(10, 78, 0, 2),
        src_ipv6: "fd78::1".parse().expect("an address"),
        dst_ipv6: "fd78::2".parse().expect("an address"),
    }
}

#[derive(Clone, Debug)]
enum L3 {
    V4 {
        src: Option<Ipv4Addr>,
        dst: Option<Ipv4Addr>,
        ttl: u8,
        tos: u8,
        id: u16,
    },
    V6 {
        src: Option<Ipv6Addr>,
        dst: Option<Ipv6Addr>,
        hop_limit: u8,
        traffic_class: u8,
        flow_label: u32,
    },
}

#[derive(Clone, Debug)]
enum L4 {
    Udp(u16, u16),
    Tcp {
        src: u16,
        dst: u16,
        seq: u32,
        ack: u32,
        window: u16,
        flags: u8,
    },
}

/// What a frame is asked to be.
#[derive(Clone, Debug)]
struct Request {
    src_mac: Option<[u8; 6]>,
    dst_mac: Option<[u8; 6]>,
    /// (tpid, id, pcp, dei), outermost first.
    vlans: Vec<(u16, u16, u8, bool)>,
    l3: L3,
    l4: L4,
    payload: Vec<u8>,
    /// `None`: the natural length; else picks a size between the headers and the maximum.
    size: Option<u16>,
}

fn l3() -> impl Strategy<Value = L3> {
    prop_oneof![
        (
            any::<Option<[u8; 4]>>(),
            any::<Option<[u8; 4]>>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>()
        )
            .prop_map(|(src, dst, ttl, tos, id)| L3::V4 {
                src: src.map(Ipv4Addr::from),
                dst: dst.map(Ipv4Addr::from),
                ttl,
                tos,
                id,
            }),
        (
            any::<Option<[u8; 16]>>(),
            any::<Option<[u8; 16]>>(),
            any::<u8>(),
            any::<u8>(),
            0u32..=0xf_ffff
        )
            .prop_map(|(src, dst, hop_limit, traffic_class, flow_label)| L3::V6 {
                src: src.map(Ipv6Addr::from),
                dst: dst.map(Ipv6Addr::from),
                hop_limit,
                traffic_class,
                flow_label,
            }),
    ]
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(s, d)| L4::Udp(s, d)),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u8>()
        )
            .prop_map(|(src, dst, seq, ack, window, flags)| L4::Tcp {
                src,
                dst,
                seq,
                ack,
                window,
                flags,
            }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<Option<[u8; 6]>>(),
        any::<Option<[u8; 6]>>(),
        prop::collection::vec(
            (
                prop::sample::select(vec![0x8100u16, 0x88a8]),
                0u16..=4095,
                0u8..=7,
                any::<bool>(),
            ),
            0..=3,
        ),
        l3(),
        l4(),
        prop::collection::vec(any::<u8>(), 0..=64),
        any::<Option<u16>>(),
    )
        .prop_map(|(src_mac, dst_mac, vlans, l3, l4, payload, size)| Request {
            src_mac,
            dst_mac,
            vlans,
            l3,
            l4,
            payload,
            size,
        })
}

impl Request {
    fn l3_len(&self) -> usize {
        match self.l3 {
            L3::V4 { .. } => 20,
            L3::V6 { .. } => 40,
        }
    }

    fn l4_len(&self) -> usize {
        match self.l4 {
            L4::Udp(..) => 8,
            L4::Tcp { .. } => 20,
        }
    }

    fn natural(&self) -> usize {
        ETH_HEADER_LEN
            + VLAN_TAG_LEN * self.vlans.len()
            + self.l3_len()
            + self.l4_len()
            + self.payload.len()
    }

    /// The exact length the frame must have.
    fn expected_len(&self) -> usize {
        let natural = self.natural();
        match self.size {
            None => (natural + Tag::LEN).max(ETH_MIN_LEN),
            Some(pick) => {
                let min = natural.max(ETH_MIN_LEN);
                min + usize::from(pick) % (MAX_LEN - min + 1)
            }
        }
    }

    fn spec(&self) -> FrameSpec {
        let mut spec = FrameSpec {
            eth: Some(EthSpec {
                src: self.src_mac.map(MacAddr::from),
                dst: self.dst_mac.map(MacAddr::from),
                ethertype: None,
            }),
            vlan: self
                .vlans
                .iter()
                .map(|&(tpid, id, pcp, dei)| VlanSpec { id, pcp, dei, tpid })
                .collect(),
            payload: Some(HexBytes(self.payload.clone())),
            size: self.size.map(|_| self.expected_len()),
            ..FrameSpec::default()
        };
        match self.l3 {
            L3::V4 {
                src,
                dst,
                ttl,
                tos,
                id,
            } => {
                spec.ipv4 = Some(Ipv4Spec {
                    src,
                    dst,
                    ttl,
                    tos,
                    id,
                    ..Ipv4Spec::default()
                });
            }
            L3::V6 {
                src,
                dst,
                hop_limit,
                traffic_class,
                flow_label,
            } => {
                spec.ipv6 = Some(Ipv6Spec {
                    src,
                    dst,
                    hop_limit,
                    traffic_class,
                    flow_label,
                    ..Ipv6Spec::default()
                });
            }
        }
        match self.l4 {
            L4::Udp(src_port, dst_port) => spec.udp = Some(UdpSpec { src_port, dst_port }),
            L4::Tcp {
                src,
                dst,
                seq,
                ack,
                window,
                flags,
            } => {
                spec.tcp = Some(TcpSpec {
                    src_port: src,
                    dst_port: dst,
                    flags: TcpFlags(flags),
                    seq,
                    ack,
                    window,
                });
            }
        }
        spec
    }
}

/// A UDP checksum of 0 is sent as 0xffff (0 means "none").
fn udp_field(computed: u16) -> u16 {
    if computed == 0 { 0xffff } else { computed }
}

/// Parses `frame` with pnet and compares every field with `r`.
fn check(r: &Request, frame: &[u8]) -> Result<(), TestCaseError> {
    let ends = endpoints();
    prop_assert_eq!(frame.len(), r.expected_len());
    let eth = EthernetPacket::new(frame).expect("14 bytes or more");
    prop_assert_eq!(
        eth.get_source(),
        r.src_mac.map_or(ends.src_mac, MacAddr::from)
    );
    prop_assert_eq!(
        eth.get_destination(),
        r.dst_mac.map_or(ends.dst_mac, MacAddr::from)
    );
    let mut ethertype = eth.get_ethertype().0;
    let mut at = ETH_HEADER_LEN;
    for &(tpid, id, pcp, dei) in &r.vlans {
        prop_assert_eq!(ethertype, tpid);
        let tag = VlanPacket::new(&frame[at..]).expect("a whole tag");
        prop_assert_eq!(tag.get_vlan_identifier(), id);
        prop_assert_eq!(tag.get_priority_code_point().0, pcp);
        prop_assert_eq!(tag.get_drop_eligible_indicator(), u8::from(dei));
        ethertype = tag.get_ethertype().0;
        at += VLAN_TAG_LEN;
    }
    let l4_proto = match r.l4 {
        L4::Udp(..) => 17,
        L4::Tcp { .. } => 6,
    };
    let l4_at = at + r.l3_len();
    let l4 = &frame[l4_at..];
    let (src, dst) = match r.l3 {
        L3::V4 {
            src,
            dst,
            ttl,
            tos,
            id,
        } => {
            prop_assert_eq!(ethertype, 0x0800);
            let ip = Ipv4Packet::new(&frame[at..]).expect("a whole header");
            let (src, dst) = (src.unwrap_or(ends.src_ipv4), dst.unwrap_or(ends.dst_ipv4));
            prop_assert_eq!(ip.get_version(), 4);
            prop_assert_eq!(ip.get_header_length(), 5);
            prop_assert_eq!(ip.get_source(), src);
            prop_assert_eq!(ip.get_destination(), dst);
            prop_assert_eq!(ip.get_ttl(), ttl);
            prop_assert_eq!((ip.get_dscp() << 2) | ip.get_ecn(), tos);
            prop_assert_eq!(ip.get_identification(), id);
            prop_assert_eq!(ip.get_next_level_protocol().0, l4_proto);
            prop_assert_eq!(usize::from(ip.get_total_length()), frame.len() - at);
            prop_assert_eq!(ip.get_checksum(), ipv4::checksum(&ip));
            let (s, d) = (src, dst);
            match r.l4 {
                L4::Udp(..) => {
                    let u = UdpPacket::new(l4).expect("a whole header");
                    prop_assert_eq!(u.get_checksum(), udp_field(udp::ipv4_checksum(&u, &s, &d)));
                }
                L4::Tcp { .. } => {
                    let t = TcpPacket::new(l4).expect("a whole header");
                    prop_assert_eq!(t.get_checksum(), tcp::ipv4_checksum(&t, &s, &d));
                }
            }
            (src.to_string(), dst.to_string())
        }
        L3::V6 {
            src,
            dst,
            hop_limit,
            traffic_class,
            flow_label,
        } => {
            prop_assert_eq!(ethertype, 0x86dd);
            let ip = Ipv6Packet::new(&frame[at..]).expect("a whole header");
            let (src, dst) = (src.unwrap_or(ends.src_ipv6), dst.unwrap_or(ends.dst_ipv6));
            prop_assert_eq!(ip.get_version(), 6);
            prop_assert_eq!(ip.get_source(), src);
            prop_assert_eq!(ip.get_destination(), dst);
            prop_assert_eq!(ip.get_hop_limit(), hop_limit);
            prop_assert_eq!(ip.get_traffic_class(), traffic_class);
            prop_assert_eq!(ip.get_flow_label(), flow_label);
            prop_assert_eq!(ip.get_next_header().0, l4_proto);
            prop_assert_eq!(usize::from(ip.get_payload_length()), frame.len() - at - 40);
            match r.l4 {
                L4::Udp(..) => {
                    let u = UdpPacket::new(l4).expect("a whole header");
                    prop_assert_eq!(
                        u.get_checksum(),
                        udp_field(udp::ipv6_checksum(&u, &src, &dst))
                    );
                }
                L4::Tcp { .. } => {
                    let t = TcpPacket::new(l4).expect("a whole header");
                    prop_assert_eq!(t.get_checksum(), tcp::ipv6_checksum(&t, &src, &dst));
                }
            }
            (src.to_string(), dst.to_string())
        }
    };
    match r.l4 {
        L4::Udp(src_port, dst_port) => {
            let u = UdpPacket::new(l4).expect("a whole header");
            prop_assert_eq!(u.get_source(), src_port);
            prop_assert_eq!(u.get_destination(), dst_port);
            prop_assert_eq!(usize::from(u.get_length()), frame.len() - l4_at);
        }
        L4::Tcp {
            src: src_port,
            dst: dst_port,
            seq,
            ack,
            window,
            flags,
        } => {
            let t = TcpPacket::new(l4).expect("a whole header");
            prop_assert_eq!(t.get_source(), src_port);
            prop_assert_eq!(t.get_destination(), dst_port);
            prop_assert_eq!(t.get_sequence(), seq);
            prop_assert_eq!(t.get_acknowledgement(), ack);
            prop_assert_eq!(t.get_window(), window);
            prop_assert_eq!(t.get_flags(), flags);
            prop_assert_eq!(t.get_data_offset(), 5);
            prop_assert_eq!(t.payload().len(), frame.len() - l4_at - 20);
        }
    }
    let payload_at = l4_at + r.l4_len();
    prop_assert_eq!(
        &frame[payload_at..payload_at + r.payload.len()],
        &r.payload[..],
        "payload between {} and {}",
        src,
        dst
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn built_frames_parse_back_to_the_requested_fields(r in request(), seq in any::<u32>()) {
        let max_len = MAX_LEN + if r.vlans.first().is_some_and(|v| v.0 == 0x8100) { 4 } else { 0 };
        let template = FrameTemplate::build(&r.spec(), &endpoints(), max_len)
            .map_err(|e| TestCaseError::fail(format!("refused a valid request: {e}")))?;
        prop_assert_eq!(template.len(), r.expected_len());
        prop_assert_eq!(template.is_tagged(), r.expected_len() >= r.natural() + Tag::LEN);
        let tag = Tag { run_id: 0x1234_5678, group: 3, seq };
        let mut frame = Vec::new();
        template.write(tag, &mut frame);
        check(&r, &frame)?;
        if template.is_tagged() {
            prop_assert_eq!(Tag::find(&frame, tag.run_id), Some(tag));
        } else {
            prop_assert_eq!(&frame[..], template.bytes());
        }
    }
}
