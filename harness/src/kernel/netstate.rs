//! The kernel state of a lab namespace beyond its links: sysctls, extra addresses, routes and
//! neighbours, so programs that ask the kernel's tables (`bpf_fib_lookup`) find a router's
//! tables inside the lab and never the host's.
//!
//! Everything is made over netlink (and `/proc/sys/net` for sysctls) from a thread inside the
//! namespace ([`NetNs::netlink`], [`NetNs::run`]), after the namespace's interfaces exist, so
//! interface names resolve there. Nothing here outlives the namespace: the kernel removes its
//! addresses, routes, neighbours and sysctls with it.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use futures::TryStreamExt as _;
use netlink_packet_route::route::RouteScope;
use pnet::util::MacAddr;
use rtnetlink::RouteMessageBuilder;
use thiserror::Error;

use crate::kernel::netns::{NetNs, NetNsError};

/// An address with a prefix length: `10.78.9.1/24`, `fd78:6c:9::1/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address (host bits may be set for an interface address).
    pub addr: IpAddr,
    /// The prefix length, 0..=32 (IPv4) or 0..=128 (IPv6).
    pub prefix: u8,
}

impl Cidr {
    /// Whether the bits after the prefix are all zero (what a route's destination needs).
    pub fn is_network(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                self.prefix >= 32 || bits & (u32::MAX >> self.prefix) == 0
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                self.prefix >= 128 || bits & (u128::MAX >> self.prefix) == 0
            }
        }
    }

    /// The network with the host bits cleared, for messages.
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) if self.prefix < 32 => {
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & !(u32::MAX >> self.prefix)))
            }
            IpAddr::V6(a) if self.prefix < 128 => {
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & !(u128::MAX >> self.prefix)))
            }
            other => other,
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDR/LEN`; `"default"` is `0.0.0.0/0`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "default" {
            return Ok(Cidr {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            });
        }
        let (addr, prefix) = text.split_once('/').ok_or_else(|| {
            format!("{text:?} is not ADDRESS/PREFIX-LENGTH (e.g. \"10.78.9.0/24\")")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} in {text:?} is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| {
                format!("prefix length {prefix:?} in {text:?} is not a number in 0..={max}")
            })?;
        Ok(Cidr { addr, prefix })
    }
}

/// An address to add to an interface (`ip addr add CIDR dev IF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressDef {
    /// The interface's name in the namespace.
    pub interface: String,
    /// The address and its prefix length.
    pub cidr: Cidr,
}

/// A route to add to the main table (`ip route add TO [via VIA] [dev IF]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDef {
    /// The destination network.
    pub to: Cidr,
    /// The gateway, if any.
    pub via: Option<IpAddr>,
    /// The output interface's name; without `via` the route is on-link (scope link).
    pub interface: Option<String>,
}

/// A permanent neighbour entry (`ip neigh add IP lladdr MAC dev IF nud permanent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourDef {
    /// The interface's name in the namespace.
    pub interface: String,
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its hardware address.
    pub mac: MacAddr,
}

/// What one lab namespace gets once its interfaces exist, applied in this order: sysctls,
/// addresses, neighbours, routes (a gateway must be reachable through an address first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetnsState {
    /// The namespace's name within the topology.
    pub netns: String,
    /// `net.*` sysctls as (`/proc/sys` path below `net/`, value), e.g.
    /// (`"net/ipv4/ip_forward"`, `"1"`).
    pub sysctls: Vec<(String, String)>,
    /// Extra addresses.
    pub addresses: Vec<AddressDef>,
    /// Permanent neighbour entries.
    pub neighbours: Vec<NeighbourDef>,
    /// Routes in the main table.
    pub routes: Vec<RouteDef>,
}

impl NetnsState {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.sysctls.is_empty()
            && self.addresses.is_empty()
            && self.neighbours.is_empty()
            && self.routes.is_empty()
    }
}

/// The `/proc/sys` path of a `net.*` sysctl key written with dots (`net.ipv4.ip_forward`) or
/// slashes (`net/ipv4/conf/eth0.5/forwarding`, for interface names with dots), or why it is
/// refused. Only keys under `net` are taken: the kernel shows each namespace its own copy of
/// those, so a write inside a lab namespace never changes the host.
pub fn sysctl_path(key: &str) -> Result<String, String> {
    let path = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    let mut parts = path.split('/');
    if parts.next() != Some("net") {
        return Err(format!(
            "sysctl {key:?} is not a net.* key: a lab namespace has its own copy of the \
             net.* sysctls only"
        ));
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty()
        || rest.iter().any(|p| {
            p.is_empty()
                || *p == "."
                || *p == ".."
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b))
        })
    {
        return Err(format!(
            "sysctl {key:?} is not a sysctl name (write e.g. \"net.ipv4.ip_forward\", or \
             \"net/ipv4/conf/eth0.5/forwarding\" for an interface name with dots)"
        ));
    }
    Ok(path)
}

/// An error from applying a namespace's kernel state.
#[derive(Debug, Error)]
pub enum NetStateError {
    /// Entering the namespace failed.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// A sysctl could not be written.
    #[error("failed to set sysctl {key} = {value:?} in lab namespace {netns:?}: {source}")]
    Sysctl {
        /// The namespace's name in the topology.
        netns: String,
        /// The key, dotted.
        key: String,
        /// The value.
        value: String,
        /// The I/O error (not found: the kernel has no such per-namespace key).
        #[source]
        source: std::io::Error,
    },
    /// An interface named by the state is not in the namespace.
    #[error("failed to find interface {interface:?} in lab namespace {netns:?}: {reason}")]
    Interface {
        /// The namespace's name in the topology.
        netns: String,
        /// The interface's name.
        interface: String,
        /// What went wrong.
        reason: String,
    },
    /// A route that cannot be written as a netlink message (mixed address families).
    #[error("failed to add {what} in lab namespace {netns:?}: {reason}")]
    Route {
        /// The namespace's name in the topology.
        netns: String,
        /// The route.
        what: String,
        /// Why it cannot be written.
        reason: String,
    },
    /// A netlink request was refused.
    #[error("failed to add {what} in lab namespace {netns:?}: {source}")]
    Netlink {
        /// The namespace's name in the topology.
        netns: String,
        /// What was being added (`"route 10.78.9.0/24 via 10.78.1.2"`).
        what: String,
        /// The netlink error.
        #[source]
        source: Box<rtnetlink::Error>,
    },
}

impl NetStateError {
    /// Whether the scenario asked for something the kernel refuses (a sysctl the namespace
    /// does not have or a value it rejects, a route whose gateway is unreachable, an entry
    /// that exists already), rather than the machine failing.
    pub fn is_input(&self) -> bool {
        match self {
            Self::Sysctl { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidInput
            ),
            Self::Route { .. } | Self::Interface { .. } => true,
            Self::Netlink { source, .. } => match source.as_ref() {
                rtnetlink::Error::NetlinkError(message) => message.code.is_some_and(|code| {
                    [
                        libc::EINVAL,
                        libc::EEXIST,
                        libc::ENETUNREACH,
                        libc::ENODEV,
                        libc::ERANGE,
                    ]
                    .contains(&-code.get())
                }),
                _ => false,
            },
            Self::NetNs(_) => false,
        }
    }
}

/// Applies `state` inside `ns` (whose interfaces must exist).
pub fn apply(ns: &NetNs, state: &NetnsState) -> Result<(), NetStateError> {
    if state.is_empty() {
        return Ok(());
    }
    ns.run(|| {
        for (path, value) in &state.sysctls {
            std::fs::write(format!("/proc/sys/{path}"), value).map_err(|source| {
                NetStateError::Sysctl {
                    netns: state.netns.clone(),
                    key: path.replace('/', "."),
                    value: value.clone(),
                    source,
                }
            })?;
        }
        Ok::<(), NetStateError>(())
    })??;
    ns.netlink(|handle| async move { apply_netlink(&handle, state).await })?
}

async fn apply_netlink(
    handle: &rtnetlink::Handle,
    state: &NetnsState,
) -> Result<(), NetStateError> {
    let netns = &state.netns;
    let failed = |what: String| {
        move |source| NetStateError::Netlink {
            netns: netns.clone(),
            what,
            source: Box::new(source),
        }
    };
    for a in &state.addresses {
        let index = ifindex(handle, netns, &a.interface).await?;
        crate::kernel::veth::add_address(handle, index, a.cidr.addr, a.cidr.prefix)
            .await
            .map_err(failed(format!("address {} on {:?}", a.cidr, a.interface)))?;
    }
    for n in &state.neighbours {
        let index = ifindex(handle, netns, &n.interface).await?;
        handle
            .neighbours()
            .add(index, n.ip)
            .link_layer_address(&n.mac.octets())
            .execute()
            .await
            .map_err(failed(format!(
                "neighbour {} lladdr {} on {:?}",
                n.ip, n.mac, n.interface
            )))?;
    }
    for r in &state.routes {
        let mut what = format!("route {}", r.to);
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(r.to.addr, r.to.prefix)
            .map_err(|e| invalid_route(netns, &what, e))?;
        if let Some(via) = r.via {
            what.push_str(&format!(" via {via}"));
            builder = builder
                .gateway(via)
                .map_err(|e| invalid_route(netns, &what, e))?;
        } else {
            builder = builder.scope(RouteScope::Link);
        }
        if let Some(interface) = &r.interface {
            what.push_str(&format!(" dev {interface}"));
            builder = builder.output_interface(ifindex(handle, netns, interface).await?);
        }
        handle
            .route()
            .add(builder.build())
            .execute()
            .await
            .map_err(failed(what))?;
    }
    Ok(())
}

fn invalid_route(netns: &str, what: &str, e: impl fmt::Display) -> NetStateError {
    NetStateError::Route {
        netns: netns.to_owned(),
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

async fn ifindex(
    handle: &rtnetlink::Handle,
    netns: &str,
    interface: &str,
) -> Result<u32, NetStateError> {
    let error = |reason: String| NetStateError::Interface {
        netns: netns.to_owned(),
        interface: interface.to_owned(),
        reason,
    };
    let mut links = handle
        .link()
        .get()
        .match_name(interface.to_owned())
        .execute();
    links
        .try_next()
        .await
        .map_err(|e| error(e.to_string()))?
        .map(|link| link.header.index)
        .ok_or_else(|| error("no such interface".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_check_host_bits() {
        let c: Cidr = "10.78.9.0/24".parse().unwrap();
        assert!(c.is_network());
        let c: Cidr = "10.78.9.1/24".parse().unwrap();
        assert!(!c.is_network());
        assert_eq!(c.network().to_string(), "10.78.9.0/24");
        let c: Cidr = "default".parse().unwrap();
        assert_eq!(c.to_string(), "0.0.0.0/0");
        assert!(c.is_network());
        let c: Cidr = "fd78:6c:9::/64".parse().unwrap();
        assert!(c.is_network());
        assert!("10.78.9.0/33".parse::<Cidr>().is_err());
        assert!("10.78.9.0".parse::<Cidr>().is_err());
        assert!("10.78.300.0/24".parse::<Cidr>().is_err());
        assert!("fd78::/129".parse::<Cidr>().is_err());
    }

    #[test]
    fn sysctl_keys_stay_under_net() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            "net/ipv4/ip_forward"
        );
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.5/forwarding").unwrap(),
            "net/ipv4/conf/eth0.5/forwarding"
        );
        assert!(sysctl_path("kernel.panic").is_err());
        assert!(sysctl_path("net").is_err());
        assert!(sysctl_path("net/../kernel/panic").is_err());
        assert!(sysctl_path("net..ipv4").is_err());
        assert!(sysctl_path("net.ipv4.ip forward").is_err());
    }
}
