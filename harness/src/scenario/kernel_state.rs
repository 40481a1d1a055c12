//! A scenario's `[[netns]]` tables: the kernel state of lab namespaces (sysctls, extra
//! addresses, routes, neighbours), as parsed and checked, and as the topology applies it.

use std::net::IpAddr;

use super::iface::IfaceRef;
use crate::frame::MacAddr;
use crate::kernel::netstate::{AddressDef, Cidr, NeighbourDef, NetnsState, RouteDef};
use crate::topology::TopologySpec;

/// One `[[netns]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetnsSpec {
    /// The namespace (one of the topology's).
    pub name: String,
    /// Line of the `[[netns]]` header.
    pub line: usize,
    /// `sysctl`: (`/proc/sys` path, value) in file order, e.g. (`"net/ipv4/ip_forward"`,
    /// `"1"`).
    pub sysctls: Vec<(String, String)>,
    /// `[[netns.address]]`, in file order.
    pub addresses: Vec<AddressSpec>,
    /// `[[netns.route]]`, in file order.
    pub routes: Vec<RouteSpec>,
    /// `[[netns.neigh]]`, in file order.
    pub neighbours: Vec<NeighSpec>,
}

impl NetnsSpec {
    /// One line for `xdplab list`, in `ip` words: `"router": net.ipv4.ip_forward = 1; route
    /// 10.99.0.0/24 via 10.78.1.2; neigh 10.98.0.7 lladdr 02:78:6c:98:00:07 dev router:out`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .sysctls
            .iter()
            .map(|(path, value)| format!("{} = {value}", path.replace('/', ".")))
            .collect();
        parts.extend(
            self.addresses
                .iter()
                .map(|a| format!("address {} dev {}", a.ip, a.dev)),
        );
        parts.extend(
            self.neighbours
                .iter()
                .map(|n| format!("neigh {} lladdr {} dev {}", n.ip, n.mac, n.dev)),
        );
        parts.extend(self.routes.iter().map(|r| {
            let mut text = format!("route {}", r.to);
            if let Some(via) = r.via {
                text.push_str(&format!(" via {via}"));
            }
            if let Some(dev) = &r.dev {
                text.push_str(&format!(" dev {dev}"));
            }
            text
        }));
        format!("{:?}: {}", self.name, parts.join("; "))
    }
}

/// `[[netns.address]]`: an extra address on an interface of the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSpec {
    /// The interface.
    pub dev: IfaceRef,
    /// Address and prefix length.
    pub ip: Cidr,
}

/// `[[netns.route]]`: a route in the namespace's main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network (`"default"` is `0.0.0.0/0`).
    pub to: Cidr,
    /// Gateway.
    pub via: Option<IpAddr>,
    /// Output interface.
    pub dev: Option<IfaceRef>,
}

/// `[[netns.neigh]]`: a permanent neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighSpec {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its hardware address.
    pub mac: MacAddr,
    /// The interface it is reached through.
    pub dev: IfaceRef,
}

/// The `[[netns]]` tables as the topology applies them, with interface references resolved to
/// the names the topology gives them (the default lab's interfaces carry the process id).
pub(super) fn states(netns: &[NetnsSpec], spec: &TopologySpec) -> Vec<NetnsState> {
    let name = |r: &IfaceRef| {
        // Parse checked every reference; a miss here names the interface as written, and
        // applying the state then fails with "no such interface".
        spec.resolve(&r.netns, r.interface.as_deref())
            .map(|end| end.interface)
            .unwrap_or_else(|_| r.interface.clone().unwrap_or_else(|| r.netns.clone()))
    };
    netns
        .iter()
        .map(|n| NetnsState {
            netns: n.name.clone(),
            sysctls: n.sysctls.clone(),
            addresses: n
                .addresses
                .iter()
                .map(|a| AddressDef {
                    interface: name(&a.dev),
                    cidr: a.ip,
                })
                .collect(),
            neighbours: n
                .neighbours
                .iter()
                .map(|x| NeighbourDef {
                    interface: name(&x.dev),
                    ip: x.ip,
                    mac: x.mac,
                })
                .collect(),
            routes: n
                .routes
                .iter()
                .map(|r| RouteDef {
                    to: r.to,
                    via: r.via,
                    interface: r.dev.as_ref().map(name),
                })
                .collect(),
        })
        .collect()
}
