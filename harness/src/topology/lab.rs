//! The two-namespace lab: a sender namespace and a receiver namespace joined by one veth pair.
//!
//! ```text
//!   netns "sender"                      netns "receiver"
//!   xl-<pid>-tx  10.78.0.1/24  <==veth==>  xl-<pid>-rx  10.78.0.2/24   <- XDP program here
//!   02:78:6c:00:00:01                      02:78:6c:00:00:02
//! ```
//!
//! Every lab has its own namespaces, so labs in one process (parallel tests) or in several
//! processes never see each other, even though they use the same names and addresses. Dropping
//! the lab drops the namespaces, and the kernel deletes the pair with them.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use pnet::util::MacAddr;

// The lab is one topology, so it reports the topology's errors and tags with its run ids; both
// live in `topology`, which does not depend on the lab.
pub use crate::topology::{LabError, random_run_id};
use crate::{
    frame::Endpoints,
    kernel::netns::NetNs,
    kernel::veth::VethEnd,
    topology::{EndName, LinkDef, Topology, TopologySpec},
};

/// How to build a lab.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// MTU of both veth ends (68..=65535; native XDP on veth needs at most about 3500).
    pub mtu: u32,
    /// Keep the IPv6 stack on (quiet: no autoconfiguration, no DAD, static neighbours).
    pub ipv6: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            mtu: 1500,
            ipv6: false,
        }
    }
}

/// Addresses of the lab's ends. Fixed, because every lab has namespaces of its own.
pub const SENDER_MAC: MacAddr = MacAddr(0x02, 0x78, 0x6c, 0, 0, 0x01);
/// The receiving end's hardware address.
pub const RECEIVER_MAC: MacAddr = MacAddr(0x02, 0x78, 0x6c, 0, 0, 0x02);
/// The sending end's IPv4 address.
pub const SENDER_IPV4: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 1);
/// The receiving end's IPv4 address.
pub const RECEIVER_IPV4: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 2);
/// The sending end's IPv6 address.
pub const SENDER_IPV6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0x6c, 0, 0, 0, 0, 0, 1);
/// The receiving end's IPv6 address.
pub const RECEIVER_IPV6: Ipv6Addr = Ipv6Addr::new(0xfd78, 0x6c, 0, 0, 0, 0, 0, 2);

/// A built lab. Drop it to tear everything down.
#[derive(Debug)]
pub struct Lab {
    topology: Topology,
}

/// The name of the sending namespace in the default lab.
pub const SENDER: &str = "sender";
/// The name of the receiving namespace in the default lab.
pub const RECEIVER: &str = "receiver";

impl Lab {
    /// The default lab as a topology: one link from `sender` to `receiver`.
    pub fn spec(config: &LabConfig) -> TopologySpec {
        let pid = std::process::id();
        TopologySpec {
            links: vec![LinkDef {
                a: EndName {
                    netns: SENDER.into(),
                    interface: format!("xl-{pid}-tx"),
                },
                b: EndName {
                    netns: RECEIVER.into(),
                    interface: format!("xl-{pid}-rx"),
                },
                mtu: config.mtu,
            }],
            ipv6: config.ipv6,
            state: Vec::new(),
        }
    }

    /// Builds the two namespaces and the veth pair between them.
    pub fn new(config: &LabConfig) -> Result<Self, LabError> {
        Ok(Self {
            topology: Topology::build(&Self::spec(config))?,
        })
    }

    /// The id carried in every frame's tag, unique per lab with high probability.
    pub fn run_id(&self) -> u32 {
        self.topology.run_id()
    }

    /// The end where programs are attached and frames arrive.
    pub fn receiver(&self) -> &VethEnd {
        self.topology.interface(RECEIVER, None).expect("built").1
    }

    /// The end frames are injected from.
    pub fn sender(&self) -> &VethEnd {
        self.topology.interface(SENDER, None).expect("built").1
    }

    /// The receiving namespace.
    pub fn receiver_netns(&self) -> &Arc<NetNs> {
        self.topology.netns(RECEIVER).expect("built")
    }

    /// The sending namespace.
    pub fn sender_netns(&self) -> &Arc<NetNs> {
        self.topology.netns(SENDER).expect("built")
    }

    /// The lab as a topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Addresses for frames sent from the sender to the receiver.
    pub fn endpoints(&self) -> Endpoints {
        endpoints()
    }
}

/// Addresses for frames sent from a lab's sender to its receiver. The same for every lab, so
/// frames can be built and checked before a lab exists.
pub fn endpoints() -> Endpoints {
    Endpoints {
        src_mac: SENDER_MAC,
        dst_mac: RECEIVER_MAC,
        src_ipv4: SENDER_IPV4,
        dst_ipv4: RECEIVER_IPV4,
        src_ipv6: SENDER_IPV6,
        dst_ipv6: RECEIVER_IPV6,
    }
}
