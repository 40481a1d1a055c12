//! The live injector's flow mix: N flows arrive as N distinct 5-tuples, every frame with valid
//! IPv4 and UDP/TCP checksums (needs root; see `privileges::gate`).

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use pnet::packet::{
    Packet as _, ethernet::EthernetPacket, ipv4::Ipv4Packet, tcp::TcpPacket, udp::UdpPacket,
};
use xdplab::{
    frame::{FrameSpec, FrameTemplate, TcpSpec, UdpSpec},
    host::privileges,
    host::requires::{self, Feature, Requirement},
    inject::{Budget, live::LiveInjector},
    kernel::veth,
    topology::lab::{Lab, LabConfig},
};

type FiveTuple = (Ipv4Addr, Ipv4Addr, u8, u16, u16);

/// An `AF_PACKET` socket receiving every frame of the receiving end, with a receive buffer
/// large enough for the whole burst.
fn capture_socket(lab: &Lab) -> OwnedFd {
    let ifindex = lab.receiver().ifindex();
    lab.receiver_netns()
        .run(|| {
            let protocol = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2), owned right below.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_NONBLOCK,
                    i32::from(protocol),
                )
            };
            assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
            // SAFETY: a fresh descriptor.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let size: libc::c_int = 32 << 20;
            // SAFETY: an int option of the size given.
            let ret = unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&raw const size).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(
                ret,
                0,
                "SO_RCVBUFFORCE: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: an all-zero sockaddr_ll is valid.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = protocol;
            addr.sll_ifindex = ifindex as i32;
            // SAFETY: a sockaddr_ll of the size given.
            let ret = unsafe {
                libc::bind(
                    raw,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            assert_eq!(ret, 0, "bind: {}", std::io::Error::last_os_error());
            fd
        })
        .expect("enter the receiving namespace")
}

/// Reads frames until `count` arrived or 3 s passed.
fn receive(fd: &OwnedFd, count: u64) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = vec![0u8; 2048];
    while (frames.len() as u64) < count && Instant::now() < deadline {
        // SAFETY: an all-zero sockaddr_ll is valid.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf and from are writable for the lengths given.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        // The receiver's own answers (a TCP reset for the flow to its address) go out here.
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            frames.push(buf[..n as usize].to_vec());
        }
    }
    frames
}

/// The 5-tuple of a frame whose checksums are all valid; panics otherwise.
fn checked_tuple(frame: &[u8]) -> FiveTuple {
    let eth = EthernetPacket::new(frame).expect("ethernet");
    let ip = Ipv4Packet::new(eth.payload()).expect("ipv4");
    assert_eq!(
        ip.get_checksum(),
        pnet::packet::ipv4::checksum(&ip),
        "IPv4 header checksum of {frame:02x?}"
    );
    let (src, dst) = (ip.get_source(), ip.get_destination());
    let l4 = &ip.payload()[..usize::from(ip.get_total_length()) - 20];
    let (sport, dport) = match ip.get_next_level_protocol().0 {
        17 => {
            let udp = UdpPacket::new(l4).expect("udp");
            assert_ne!(udp.get_checksum(), 0, "the template has a UDP checksum");
            assert_eq!(
                udp.get_checksum(),
                pnet::packet::udp::ipv4_checksum(&udp, &src, &dst),
                "UDP checksum of {frame:02x?}"
            );
            (udp.get_source(), udp.get_destination())
        }
        6 => {
            let tcp = TcpPacket::new(l4).expect("tcp");
            assert_eq!(
                tcp.get_checksum(),
                pnet::packet::tcp::ipv4_checksum(&tcp, &src, &dst),
                "TCP checksum of {frame:02x?}"
            );
            (tcp.get_source(), tcp.get_destination())
        }
        other => panic!("IP protocol {other} in {frame:02x?}"),
    };
    (src, dst, ip.get_next_level_protocol().0, sport, dport)
}

/// Sends `frames` frames of `flows` flows from one CPU and returns how often each 5-tuple
/// arrived.
fn mix(spec: FrameSpec, size: usize, flows: u32, frames: u64) -> BTreeMap<FiveTuple, u64> {
    let lab = Lab::new(&LabConfig::default()).expect("lab");
    // No program: GRO gives the receiver NAPI, so live frames reach the stack and its taps.
    veth::set_gro(lab.receiver(), true).expect("gro");
    let socket = capture_socket(&lab);
    let frame = FrameTemplate::build(
        &FrameSpec {
            size: Some(size),
            ..spec
        },
        &lab.endpoints(),
        1500,
    )
    .expect("frame")
    .bytes()
    .to_vec();
    let stats = LiveInjector::open(lab.sender(), 1)
        .expect("live injector")
        .send_flows_for(
            &frame,
            flows,
            Budget {
                frames,
                duration: Duration::from_secs(10),
            },
        );
    assert_eq!(stats.errors, 0, "{stats:?}");
    assert_eq!(stats.accepted, frames, "{stats:?}");
    let received = receive(&socket, frames);
    assert_eq!(received.len() as u64, frames, "every frame arrives");
    let mut tuples = BTreeMap::new();
    for frame in &received {
        assert_eq!(frame.len(), size, "the frame keeps its size");
        *tuples.entry(checked_tuple(frame)).or_insert(0) += 1;
    }
    tuples
}

fn gate(test: &str) -> bool {
    privileges::gate(test) && requires::gate(test, &[Requirement::Feature(Feature::LiveFrames)])
}

#[test]
fn a_mix_of_n_flows_arrives_as_n_five_tuples_with_valid_checksums() {
    if !gate("a_mix_of_n_flows_arrives_as_n_five_tuples_with_valid_checksums") {
        return;
    }
    let udp = FrameSpec {
        ipv4: Some(Default::default()),
        udp: Some(UdpSpec {
            src_port: 65530,
            dst_port: 9,
        }),
        ..FrameSpec::default()
    };
    let tcp = FrameSpec {
        ipv4: Some(Default::default()),
        tcp: Some(TcpSpec::default()),
        ..FrameSpec::default()
    };
    // 100 flows, 10 frames each; the UDP source port wraps past 65535 on the way.
    for (spec, size) in [(udp.clone(), 64), (udp, 1000), (tcp, 128)] {
        let tuples = mix(spec, size, 100, 1000);
        assert_eq!(tuples.len(), 100, "{tuples:?}");
        assert!(tuples.values().all(|&n| n == 10), "{tuples:?}");
        // Flow i is the template's fields plus i.
        let first = *tuples
            .keys()
            .find(|t| t.0 == Ipv4Addr::new(10, 78, 0, 1))
            .expect("flow 0");
        let last = tuples
            .keys()
            .find(|t| t.0 == Ipv4Addr::new(10, 78, 0, 100))
            .expect("flow 99");
        assert_eq!(last.1, Ipv4Addr::from(u32::from(first.1) + 99), "{last:?}");
        assert_eq!(last.3, first.3.wrapping_add(99), "{last:?}");
        assert_eq!(last.4, first.4.wrapping_add(99), "{last:?}");
    }
}

#[test]
fn one_flow_sends_the_frame_as_it_is() {
    if !gate("one_flow_sends_the_frame_as_it_is") {
        return;
    }
    let spec = FrameSpec {
        ipv4: Some(Default::default()),
        udp: Some(UdpSpec {
            src_port: 40000,
            dst_port: 9,
        }),
        ..FrameSpec::default()
    };
    let tuples = mix(spec, 64, 1, 256);
    assert_eq!(tuples.len(), 1, "{tuples:?}");
}
