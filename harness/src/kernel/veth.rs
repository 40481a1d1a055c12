//! veth pairs whose two ends are created directly inside two lab namespaces.
//!
//! The pair is made by one `RTM_NEWLINK` request sent from the receiving namespace, with the
//! peer's `IFLA_NET_NS_FD` pointing at the sending namespace (`ip -n rx link add rx type veth peer
//! name tx netns tx`), so neither end ever exists in the host's namespace. Each end is up, has a
//! fixed MAC and addresses, and a permanent neighbour entry for the other end, so the kernel never
//! sends ARP or neighbour discovery onto the lab. The IPv6 stack is disabled unless asked for:
//! autoconfiguration, DAD and MLD would otherwise put frames on the wire that an XDP counter
//! counts.
//!
//! A pair lives exactly as long as its namespaces: the kernel deletes it when they go, so there is
//! no separate teardown that could be skipped.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd as _, AsRawFd as _},
    sync::Arc,
};

use futures::TryStreamExt as _;
use netlink_packet_route::{
    address::{AddressAttribute, AddressFlags},
    link::{InfoData, InfoVeth},
};
use pnet::util::MacAddr;
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use thiserror::Error;

use crate::kernel::netns::{NetNs, NetNsError};

/// The errno a netlink request came back with (netlink carries it negated).
pub(crate) fn netlink_errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.code.map(|code| code.get().abs()),
        _ => None,
    }
}

/// An error from building a veth pair.
#[derive(Debug, Error)]
pub enum VethError {
    /// Entering a namespace failed.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// `RTM_NEWLINK` for the pair failed.
    #[error(
        "failed to create veth pair {name:?} / {peer:?}: {source}{}",
        super::refusal::hint(super::refusal::Resource::Link, netlink_errno(source))
    )]
    Create {
        /// The first end's name.
        name: String,
        /// The second end's name.
        peer: String,
        /// The netlink error.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// An end was not found in its namespace right after creation.
    #[error("failed to find veth {name:?} in namespace {ns:?}: {reason}")]
    Lookup {
        /// The interface name.
        name: String,
        /// The namespace label.
        ns: String,
        /// What went wrong.
        reason: String,
    },
    /// Adding an address failed.
    #[error("failed to add address {addr} to veth {name:?}: {source}")]
    Address {
        /// The interface name.
        name: String,
        /// The address.
        addr: IpAddr,
        /// The netlink error.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// Adding a permanent neighbour entry failed.
    #[error("failed to add static neighbour {addr} on veth {name:?}: {source}")]
    Neighbour {
        /// The interface name.
        name: String,
        /// The neighbour's address.
        addr: IpAddr,
        /// The netlink error.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    /// An ethtool request (`SIOCETHTOOL`) on an interface failed.
    #[error("failed to {what} on veth {name:?}: {source}")]
    Ethtool {
        /// The interface name.
        name: String,
        /// What was being done (`"turn GRO on"`).
        what: &'static str,
        /// The errno, or what the kernel's answer lacked.
        #[source]
        source: std::io::Error,
    },
    /// Writing a sysctl inside a namespace failed.
    #[error("failed to set sysctl {path} in namespace {ns:?}: {source}")]
    Sysctl {
        /// The `/proc/sys` path.
        path: String,
        /// The namespace label.
        ns: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Addresses and settings of one end, chosen by the caller.
#[derive(Clone, Debug)]
pub struct EndConfig {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// Hardware address.
    pub mac: MacAddr,
    /// IPv4 address, in a /24 shared with the peer.
    pub ipv4: Ipv4Addr,
    /// IPv6 address, in a /64 shared with the peer (configured only with `ipv6`).
    pub ipv6: Ipv6Addr,
}

/// How to build a pair.
#[derive(Clone, Debug)]
pub struct VethConfig {
    /// One end (in the first namespace given to [`VethPair::create`]).
    pub a: EndConfig,
    /// The other end (in the second namespace).
    pub b: EndConfig,
    /// MTU of both ends.
    pub mtu: u32,
    /// Keep the IPv6 stack enabled (addresses without DAD, static neighbours).
    pub ipv6: bool,
}

/// One end of a lab veth pair. Only [`VethPair::create`] makes these, so every interface a
/// program can be attached to or frames sent on was created by xdplab inside its own namespace.
///
/// There is no way to name a host interface instead:
///
/// ```compile_fail
/// let eth0 = xdplab::kernel::veth::VethEnd { name: "eth0".into(), ifindex: 2 };
/// ```
#[derive(Clone)]
pub struct VethEnd {
    ns: Arc<NetNs>,
    name: String,
    ifindex: u32,
    mac: MacAddr,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
}

impl fmt::Debug for VethEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VethEnd")
            .field("ns", &self.ns.label())
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("mac", &self.mac)
            .finish()
    }
}

impl VethEnd {
    /// The namespace this end lives in.
    pub fn netns(&self) -> &Arc<NetNs> {
        &self.ns
    }
    /// The interface name inside its namespace.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The interface index, meaningful only inside [`Self::netns`].
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
    /// The hardware address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }
    /// The IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }
    /// The IPv6 address (configured on the interface only when the lab enables IPv6).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }
}

/// A veth pair with one end in each of two namespaces.
#[derive(Debug)]
pub struct VethPair {
    a: VethEnd,
    b: VethEnd,
}

impl VethPair {
    /// Creates the pair (`a` in `ns_a`, `b` in `ns_b`), brings it up, and configures addresses
    /// and static neighbours. Each namespace must have had [`configure_namespace`] applied
    /// before its first interface is created.
    pub fn create(
        ns_a: &Arc<NetNs>,
        ns_b: &Arc<NetNs>,
        config: &VethConfig,
    ) -> Result<Self, VethError> {
        create_pair(ns_a, ns_b, config)?;
        let a = configure_end(ns_a, &config.a, &config.b, config.ipv6)?;
        let b = configure_end(ns_b, &config.b, &config.a, config.ipv6)?;
        Ok(Self { a, b })
    }

    /// The end in the first namespace.
    pub fn a(&self) -> &VethEnd {
        &self.a
    }

    /// The end in the second namespace.
    pub fn b(&self) -> &VethEnd {
        &self.b
    }
}

/// Makes a fresh namespace's stack quiet before any interface exists, so every veth is born
/// that way: no IPv6 autoconfiguration, DAD or router solicitation (IPv6 off unless asked
/// for), no ICMP errors and no echo replies. The stack would otherwise answer passed frames
/// with "port unreachable" messages or echo replies that carry them, tag and all, back into
/// the lab, where they would look like frames the program sent back.
pub fn configure_namespace(ns: &NetNs, ipv6: bool) -> Result<(), VethError> {
    let quiet_icmp: &[(&str, &str)] = &[
        // Per namespace: the global ICMP error budget, and the per-peer rate limit.
        ("net/ipv4/icmp_msgs_per_sec", "0"),
        ("net/ipv4/icmp_msgs_burst", "0"),
        // Echo replies carry the request's payload, so they would carry its tag too.
        ("net/ipv4/icmp_echo_ignore_all", "1"),
        ("net/ipv6/icmp/echo_ignore_all", "1"),
    ];
    let ip_settings: &[(&str, &str)] = if ipv6 {
        // Stack on, but quiet: no link-local autoconfiguration, no DAD, no router solicitation.
        &[
            ("net/ipv6/conf/default/addr_gen_mode", "1"),
            ("net/ipv6/conf/default/accept_dad", "0"),
            ("net/ipv6/conf/default/dad_transmits", "0"),
            ("net/ipv6/conf/default/router_solicitations", "0"),
            ("net/ipv6/conf/default/accept_ra", "0"),
        ]
    } else {
        &[
            ("net/ipv6/conf/all/disable_ipv6", "1"),
            ("net/ipv6/conf/default/disable_ipv6", "1"),
        ]
    };
    let set = |key: &str, value: &str| {
        let path = format!("/proc/sys/{key}");
        std::fs::write(&path, value).map_err(|source| VethError::Sysctl {
            path,
            ns: ns.label().to_owned(),
            source,
        })
    };
    ns.run(|| {
        for (key, value) in quiet_icmp.iter().chain(ip_settings) {
            match set(key, value) {
                // Before Linux 6.0 the global ICMP budget is not per namespace (the files
                // exist only in the host's). The per-peer limit is: once a peer's 60 s of
                // tokens are worth less than one message, it gets no ICMP error at all.
                Err(VethError::Sysctl { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && key.starts_with("net/ipv4/icmp_msgs_") =>
                {
                    set("net/ipv4/icmp_ratelimit", "1000000")?;
                }
                other => other?,
            }
        }
        Ok(())
    })?
}

fn create_pair(ns_a: &NetNs, ns_b: &NetNs, config: &VethConfig) -> Result<(), VethError> {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(config.b.name.clone())
        .address(config.b.mac.octets().to_vec())
        .mtu(config.mtu)
        .setns_by_fd(ns_b.as_fd().as_raw_fd())
        // Not up here: veth opens the peer before pairing it and would refuse (ENOTCONN).
        .build();
    let message = LinkVeth::new(&config.a.name, &config.b.name)
        .address(config.a.mac.octets().to_vec())
        .mtu(config.mtu)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    ns_a.netlink(|handle| async move { handle.link().add(message).execute().await })?
        .map_err(|source| VethError::Create {
            name: config.a.name.clone(),
            peer: config.b.name.clone(),
            source: Box::new(source),
        })
}

/// Looks the end up inside its namespace, adds its addresses and a permanent neighbour entry
/// for the peer.
fn configure_end(
    ns: &Arc<NetNs>,
    end: &EndConfig,
    peer: &EndConfig,
    ipv6: bool,
) -> Result<VethEnd, VethError> {
    let lookup_error = |reason: String| VethError::Lookup {
        name: end.name.clone(),
        ns: ns.label().to_owned(),
        reason,
    };
    let ifindex = ns.netlink(|handle| async move {
        let mut links = handle.link().get().match_name(end.name.clone()).execute();
        let link = links
            .try_next()
            .await
            .map_err(|e| lookup_error(e.to_string()))?
            .ok_or_else(|| lookup_error("no such interface".into()))?;
        let ifindex = link.header.index;
        handle
            .link()
            .set(LinkUnspec::new_with_index(ifindex).up().build())
            .execute()
            .await
            .map_err(|e| lookup_error(format!("failed to bring it up: {e}")))?;

        let mut addresses = vec![(IpAddr::V4(end.ipv4), 24, IpAddr::V4(peer.ipv4))];
        if ipv6 {
            addresses.push((IpAddr::V6(end.ipv6), 64, IpAddr::V6(peer.ipv6)));
        }
        for (addr, prefix, peer_addr) in addresses {
            add_address(&handle, ifindex, addr, prefix)
                .await
                .map_err(|source| VethError::Address {
                    name: end.name.clone(),
                    addr,
                    source: Box::new(source),
                })?;
            handle
                .neighbours()
                .add(ifindex, peer_addr)
                .link_layer_address(&peer.mac.octets())
                .execute()
                .await
                .map_err(|source| VethError::Neighbour {
                    name: end.name.clone(),
                    addr: peer_addr,
                    source: Box::new(source),
                })?;
        }
        Ok::<u32, VethError>(ifindex)
    })??;
    Ok(VethEnd {
        ns: Arc::clone(ns),
        name: end.name.clone(),
        ifindex,
        mac: end.mac,
        ipv4: end.ipv4,
        ipv6: end.ipv6,
    })
}

// ---------------------------------------------------------------------------------------------
// ethtool -K IF gro on|off

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
/// The kernel's name of GRO in the features string set (`NETIF_F_GRO_BIT`).
const GRO_FEATURE: &str = "rx-gro";

/// Turns GRO on or off on a lab interface (`ip netns exec NS ethtool -K IF gro on|off`).
///
/// Sent as `ETHTOOL_SFEATURES` through `SIOCETHTOOL` on a socket made in the interface's
/// namespace; the feature's bit is looked up by name (`"rx-gro"`) in the `ETH_SS_FEATURES`
/// string set, since bit numbers change between kernels. Afterwards the feature is read back
/// (`ETHTOOL_GFEATURES`), and an interface that did not take the change is an error.
///
/// Why a lab needs this: a veth delivers frames that arrive as `xdp_frame`s (XDP_TX or
/// XDP_REDIRECT by a native program on the peer, `BPF_PROG_TEST_RUN` live frames redirected
/// to the peer) only to an end that runs NAPI, and drops them silently otherwise. Attaching
/// any native XDP program turns NAPI on; GRO turns it on without one, so such frames reach the
/// receiving stack unprocessed.
#[doc(alias = "ETHTOOL_SFEATURES")]
pub fn set_gro(end: &VethEnd, on: bool) -> Result<(), VethError> {
    let name = end.name().to_owned();
    let what = if on { "turn GRO on" } else { "turn GRO off" };
    let result = end.netns().run(|| set_feature(&name, GRO_FEATURE, on))?;
    result.map_err(|source| VethError::Ethtool { name, what, source })
}

/// Turns transmit checksum offload on or off on a lab interface (`ip netns exec NS ethtool -K
/// IF tx on|off`, the `tx-checksum-ip-generic` feature a veth has).
///
/// Why a lab needs this: with it on, a veth hands the peer TCP and UDP packets whose checksum
/// is still to be computed (`CHECKSUM_PARTIAL`), which no wire ever carries. Passed to the
/// stack they are accepted as they are; sent on by `XDP_REDIRECT` or `XDP_TX` in driver mode
/// they leave as `xdp_frame`s with the checksum never filled in, and the next stack drops
/// them. With it off, the sending stack computes every checksum, as a NIC would.
#[doc(alias = "ETHTOOL_SFEATURES")]
pub fn set_tx_checksum(end: &VethEnd, on: bool) -> Result<(), VethError> {
    let name = end.name().to_owned();
    let what = if on {
        "turn transmit checksum offload on"
    } else {
        "turn transmit checksum offload off"
    };
    let result = end
        .netns()
        .run(|| set_feature(&name, "tx-checksum-ip-generic", on))?;
    result.map_err(|source| VethError::Ethtool { name, what, source })
}

// ---------------------------------------------------------------------------------------------
// ethtool -l / -L IF rx N tx N

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_SCHANNELS: u32 = 0x3d;

/// The queues of a veth end (`ethtool -l IF`): how many it uses and how many it could.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queues {
    /// Receive queues in use (`real_num_rx_queues`).
    pub rx: u32,
    /// Transmit queues in use (`real_num_tx_queues`).
    pub tx: u32,
    /// The most receive queues the end was created with (veth: one per possible CPU).
    pub max_rx: u32,
    /// The most transmit queues.
    pub max_tx: u32,
}

/// Reads a lab interface's queue counts (`ip netns exec NS ethtool -l IF`).
#[doc(alias = "ETHTOOL_GCHANNELS")]
pub fn queues(end: &VethEnd) -> Result<Queues, VethError> {
    let name = end.name().to_owned();
    let result = end.netns().run(|| channels(&name, None))?;
    result.map_err(|source| VethError::Ethtool {
        name,
        what: "read the queue counts",
        source,
    })
}

/// Sets how many receive and transmit queues a lab interface uses (`ip netns exec NS ethtool
/// -L IF rx N tx N`), and reads them back.
///
/// A veth is created with one queue of each in use and room for one per possible CPU. Frames a
/// veth forwards as `xdp_frame`s land on the peer's receive queue `sending CPU % rx queues`,
/// each queue with its own ring and NAPI instance: with as many receive queues as sending
/// CPUs, each CPU fills and drains its own. The kernel refuses fewer receive queues than the
/// peer's transmit queues while native XDP runs on an end (and the other way round), so set
/// the receiving end first, before attaching programs.
#[doc(alias = "ETHTOOL_SCHANNELS")]
pub fn set_queues(end: &VethEnd, rx: u32, tx: u32) -> Result<Queues, VethError> {
    let name = end.name().to_owned();
    let result = end.netns().run(|| channels(&name, Some((rx, tx))))?;
    let queues = result.map_err(|source| VethError::Ethtool {
        name: name.clone(),
        what: "set the queue counts",
        source,
    })?;
    if (queues.rx, queues.tx) != (rx, tx) {
        return Err(VethError::Ethtool {
            name,
            what: "set the queue counts",
            source: std::io::Error::other(format!(
                "asked for {rx} rx and {tx} tx queues, the interface uses {} and {}",
                queues.rx, queues.tx
            )),
        });
    }
    Ok(queues)
}

/// `ETHTOOL_SCHANNELS` (when `set`), then `ETHTOOL_GCHANNELS`, on a socket of the calling
/// thread's namespace.
fn channels(interface: &str, set: Option<(u32, u32)>) -> std::io::Result<Queues> {
    use std::{
        io,
        os::fd::{FromRawFd as _, OwnedFd},
    };
    // SAFETY: plain socket(2); the descriptor is owned right below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // struct ethtool_channels { u32 cmd; u32 max_rx, max_tx, max_other, max_combined;
    //     u32 rx_count, tx_count, other_count, combined_count; }
    let mut get = [0u32; 9];
    get[0] = ETHTOOL_GCHANNELS;
    ethtool_ioctl(&fd, interface, get.as_mut_ptr().cast())?;
    if let Some((rx, tx)) = set {
        if rx > get[1] || tx > get[2] {
            return Err(io::Error::other(format!(
                "{rx} rx and {tx} tx queues asked for, the interface has room for {} and {}",
                get[1], get[2]
            )));
        }
        let mut request = get;
        request[0] = ETHTOOL_SCHANNELS;
        request[5] = rx;
        request[6] = tx;
        ethtool_ioctl(&fd, interface, request.as_mut_ptr().cast())?;
        get = [0u32; 9];
        get[0] = ETHTOOL_GCHANNELS;
        ethtool_ioctl(&fd, interface, get.as_mut_ptr().cast())?;
    }
    Ok(Queues {
        rx: get[5],
        tx: get[6],
        max_rx: get[1],
        max_tx: get[2],
    })
}

fn set_feature(interface: &str, feature: &str, on: bool) -> std::io::Result<()> {
    use std::{
        io,
        os::fd::{FromRawFd as _, OwnedFd},
    };
    // SAFETY: plain socket(2); the descriptor is owned right below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ethtool = |data: *mut u8| ethtool_ioctl(&fd, interface, data);

    // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[1]; }
    let mut info = [0u32; 5];
    info[0] = ETHTOOL_GSSET_INFO;
    info[2] = 1 << ETH_SS_FEATURES;
    ethtool(info.as_mut_ptr().cast())?;
    if info[2] & (1 << ETH_SS_FEATURES) == 0 {
        return Err(io::Error::other("the interface has no feature names"));
    }
    let count = info[4] as usize;
    // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
    let mut names = vec![0u8; 12 + count * ETH_GSTRING_LEN];
    names[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    names[4..8].copy_from_slice(&ETH_SS_FEATURES.to_ne_bytes());
    names[8..12].copy_from_slice(&(count as u32).to_ne_bytes());
    ethtool(names.as_mut_ptr())?;
    let bit = names[12..]
        .chunks(ETH_GSTRING_LEN)
        .position(|raw| raw.split(|&b| b == 0).next() == Some(feature.as_bytes()))
        .ok_or_else(|| io::Error::other(format!("the interface has no feature {feature:?}")))?;
    let (block, mask) = (bit / 32, 1u32 << (bit % 32));
    let blocks = count.div_ceil(32);

    // struct ethtool_sfeatures { u32 cmd; u32 size; struct { u32 valid, requested; } [size]; }
    let mut set = vec![0u32; 2 + 2 * blocks];
    set[0] = ETHTOOL_SFEATURES;
    set[1] = blocks as u32;
    set[2 + 2 * block] = mask;
    set[3 + 2 * block] = if on { mask } else { 0 };
    ethtool(set.as_mut_ptr().cast())?;

    // struct ethtool_gfeatures { u32 cmd; u32 size;
    //     struct { u32 available, requested, active, never_changed; } [size]; }
    let mut get = vec![0u32; 2 + 4 * blocks];
    get[0] = ETHTOOL_GFEATURES;
    get[1] = blocks as u32;
    ethtool(get.as_mut_ptr().cast())?;
    let active = get[2 + 4 * block + 2] & mask != 0;
    if active != on {
        return Err(io::Error::other(format!(
            "{feature:?} is still {} after the request",
            if active { "on" } else { "off" }
        )));
    }
    Ok(())
}

/// `ioctl(fd, SIOCETHTOOL, ifreq { name, data })`; `data` points at an ethtool command buffer
/// sized for that command. The one ethtool call of the crate (features, channels, statistics).
pub(crate) fn ethtool_ioctl(
    fd: &std::os::fd::OwnedFd,
    interface: &str,
    data: *mut u8,
) -> std::io::Result<libc::c_int> {
    use std::os::fd::AsRawFd as _;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut u8,
        _pad: [u8; 16],
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data,
        _pad: [0; 16],
    };
    let len = interface.len().min(libc::IFNAMSIZ - 1);
    req.name[..len].copy_from_slice(&interface.as_bytes()[..len]);
    // SAFETY: req is a valid ifreq whose data points at a buffer sized for its command.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCETHTOOL, &mut req) };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Adds `addr/prefix` to interface `ifindex` of the handle's namespace (`ip addr add ... dev
/// IF`); an IPv6 address skips duplicate address detection (`nodad`), so it is usable at once
/// and no probe reaches the lab's wire.
pub(crate) async fn add_address(
    handle: &rtnetlink::Handle,
    ifindex: u32,
    addr: IpAddr,
    prefix: u8,
) -> Result<(), rtnetlink::Error> {
    let mut request = handle.address().add(ifindex, addr, prefix);
    if addr.is_ipv6() {
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request.execute().await
}
