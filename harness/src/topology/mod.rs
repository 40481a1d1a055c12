//! Topologies: named network namespaces joined by veth pairs.
//!
//! ```text
//!   sender:eth0 <==veth==> dut:in   [XDP]   dut:out <==veth==> sink:eth0
//!   10.78.0.1               10.78.0.2        10.78.1.1          10.78.1.2
//! ```
//!
//! Link `L` (0-based, in declaration order) joins end `a` (10.78.L.1/24, fd78:6c:0:L::1/64,
//! MAC 02:78:6c:L:00:01) and end `b` (.2, ::2, 02:78:6c:L:00:02). Every namespace is created
//! once, with its IPv6 defaults set before its first interface exists. Once every link exists,
//! each namespace gets the kernel state the spec gives it ([`crate::kernel::netstate`]: sysctls,
//! addresses, neighbours, routes). The topology owns everything; dropping it drops the
//! namespaces, and the kernel deletes the links, routes and the rest with them.

pub mod lab;

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
};

use pnet::util::MacAddr;
use thiserror::Error;

use crate::{
    frame::Endpoints,
    kernel::netns::{NetNs, NetNsError},
    kernel::netstate::{self, NetnsState},
    kernel::veth::{EndConfig, VethConfig, VethEnd, VethError, VethPair, configure_namespace},
};

/// An error from building a lab: any topology, the two-namespace [`crate::topology::lab::Lab`] too.
#[derive(Debug, Error)]
pub enum LabError {
    /// A namespace could not be created.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// The veth pair could not be built.
    #[error(transparent)]
    Veth(#[from] VethError),
    /// A namespace's kernel state (sysctls, addresses, neighbours, routes) could not be applied.
    #[error(transparent)]
    State(#[from] netstate::NetStateError),
    /// The configuration is out of range.
    #[error("failed to build lab: {0}")]
    Config(String),
    /// No thread could be started to build it.
    #[error("failed to start a thread to build the lab: {0}")]
    Thread(String),
}

impl LabError {
    /// Whether the failure comes from missing privileges.
    pub fn is_permission(&self) -> bool {
        match self {
            Self::NetNs(e)
            | Self::Veth(VethError::NetNs(e))
            | Self::State(netstate::NetStateError::NetNs(e)) => e.is_permission(),
            _ => false,
        }
    }
}

/// One end of a link: an interface name inside a named namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndName {
    /// The namespace's name within the topology.
    pub netns: String,
    /// The interface name inside it.
    pub interface: String,
}

impl std::fmt::Display for EndName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.netns, self.interface)
    }
}

/// A veth pair to create.
#[derive(Clone, Debug)]
pub struct LinkDef {
    /// First end.
    pub a: EndName,
    /// Second end.
    pub b: EndName,
    /// MTU of both ends.
    pub mtu: u32,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct TopologySpec {
    /// The links, in order (their index sets their addresses).
    pub links: Vec<LinkDef>,
    /// Keep the IPv6 stack on (quiet: no autoconfiguration, no DAD, static neighbours).
    pub ipv6: bool,
    /// Kernel state (sysctls, addresses, neighbours, routes) per namespace, applied once every
    /// link exists; a namespace not listed keeps what the links gave it.
    pub state: Vec<NetnsState>,
}

/// Why an interface reference names no interface of a topology.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// Nothing in the topology matches.
    #[error("{0} is not in the topology")]
    Missing(String),
    /// The namespace has several interfaces and the reference says none.
    #[error("{0} names a namespace with several interfaces: say which (ns:if)")]
    Ambiguous(String),
}

/// The one way an interface reference (`ns`, or `ns:if`) is resolved, over any list of link
/// ends: a namespace alone names its only interface.
fn resolve_among<'e, T>(
    ends: impl Iterator<Item = (&'e EndName, T)>,
    netns: &str,
    interface: Option<&str>,
) -> Result<(&'e EndName, T), ResolveError> {
    let shown = || match interface {
        Some(i) => format!("{netns}:{i}"),
        None => netns.to_owned(),
    };
    let mut matches = ends
        .filter(|(e, _)| e.netns == netns)
        .filter(|(e, _)| interface.is_none_or(|i| e.interface == i));
    match (matches.next(), matches.next()) {
        (Some(end), None) => Ok(end),
        (Some(_), Some(_)) => Err(ResolveError::Ambiguous(shown())),
        (None, _) => Err(ResolveError::Missing(shown())),
    }
}

impl TopologySpec {
    /// The link end `netns` (and `interface`, if given) names.
    pub fn resolve(&self, netns: &str, interface: Option<&str>) -> Result<EndName, ResolveError> {
        let ends = self.links.iter().flat_map(|l| [(&l.a, ()), (&l.b, ())]);
        resolve_among(ends, netns, interface).map(|(end, ())| end.clone())
    }

    /// The other end of `end`'s link.
    pub fn peer(&self, end: &EndName) -> Option<&EndName> {
        self.links.iter().find_map(|l| {
            if &l.a == end {
                Some(&l.b)
            } else if &l.b == end {
                Some(&l.a)
            } else {
                None
            }
        })
    }

    /// The index of `end`'s link and whether `end` is its `a` end.
    pub fn link_of(&self, end: &EndName) -> Option<(usize, bool)> {
        self.links.iter().enumerate().find_map(|(i, l)| {
            if &l.a == end {
                Some((i, true))
            } else if &l.b == end {
                Some((i, false))
            } else {
                None
            }
        })
    }
}

/// Addresses of end `a` (`side` 1) or `b` (`side` 2) of link `index`.
fn end_config(index: usize, side: u8, interface: &str) -> EndConfig {
    let l = u8::try_from(index).expect("at most 256 links");
    EndConfig {
        name: interface.to_owned(),
        mac: MacAddr(0x02, 0x78, 0x6c, l, 0, side),
        ipv4: Ipv4Addr::new(10, 78, l, side),
        ipv6: Ipv6Addr::new(0xfd78, 0x6c, 0, u16::from(l), 0, 0, 0, u16::from(side)),
    }
}

/// A built topology.
#[derive(Debug)]
pub struct Topology {
    run_id: u32,
    // Links before namespaces: each end also holds its namespace, so the order only makes the
    // intent explicit.
    links: Vec<(LinkDef, VethPair)>,
    namespaces: BTreeMap<String, Arc<NetNs>>,
}

/// A topology being built on a thread of its own while the caller does other work (loads
/// programs): [`Building::wait`] gives it; dropped unwaited, it waits for the build and tears
/// the topology down, so nothing outlives an early return.
#[derive(Debug)]
pub struct Building {
    thread: Option<std::thread::JoinHandle<Result<Topology, LabError>>>,
}

impl Building {
    /// The topology, once built.
    pub fn wait(mut self) -> Result<Topology, LabError> {
        self.join()
    }

    fn join(&mut self) -> Result<Topology, LabError> {
        let thread = self.thread.take().expect("joined once");
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Built or not, it is torn down here (Topology's own Drop).
            let _ = self.join();
        }
    }
}

impl Topology {
    /// Starts building `spec` on a thread of its own (see [`Building`]).
    pub fn build_in_background(spec: TopologySpec) -> Result<Building, LabError> {
        let thread = std::thread::Builder::new()
            .name("xdplab-topology".into())
            .spawn(move || Topology::build(&spec))
            .map_err(|e| LabError::Thread(e.to_string()))?;
        Ok(Building {
            thread: Some(thread),
        })
    }

    /// Creates the namespaces and links.
    pub fn build(spec: &TopologySpec) -> Result<Self, LabError> {
        if spec.links.is_empty() || spec.links.len() > 256 {
            return Err(LabError::Config(format!(
                "a topology needs 1..=256 links, not {}",
                spec.links.len()
            )));
        }
        static TOPOLOGIES: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = TOPOLOGIES.fetch_add(1, Ordering::Relaxed);
        let mut namespaces: BTreeMap<String, Arc<NetNs>> = BTreeMap::new();
        for link in &spec.links {
            if !(68..=65535).contains(&link.mtu) {
                return Err(LabError::Config(format!(
                    "mtu {} of link {} <-> {} is outside 68..=65535",
                    link.mtu, link.a, link.b
                )));
            }
            for end in [&link.a, &link.b] {
                if !namespaces.contains_key(&end.netns) {
                    let ns = Arc::new(NetNs::new(format!("xl{pid}-{n}-{}", end.netns))?);
                    configure_namespace(&ns, spec.ipv6)?;
                    namespaces.insert(end.netns.clone(), ns);
                }
            }
        }
        let mut links = Vec::with_capacity(spec.links.len());
        for (index, link) in spec.links.iter().enumerate() {
            let config = VethConfig {
                a: end_config(index, 1, &link.a.interface),
                b: end_config(index, 2, &link.b.interface),
                mtu: link.mtu,
                ipv6: spec.ipv6,
            };
            let pair = VethPair::create(
                &namespaces[&link.a.netns],
                &namespaces[&link.b.netns],
                &config,
            )?;
            links.push((link.clone(), pair));
        }
        for state in &spec.state {
            let ns = namespaces.get(&state.netns).ok_or_else(|| {
                LabError::Config(format!(
                    "kernel state for namespace {:?}, which no link has",
                    state.netns
                ))
            })?;
            netstate::apply(ns, state)?;
        }
        Ok(Self {
            run_id: random_run_id(),
            links,
            namespaces,
        })
    }

    /// The id carried in every frame's tag.
    pub fn run_id(&self) -> u32 {
        self.run_id
    }

    /// A namespace by name.
    pub fn netns(&self, name: &str) -> Option<&Arc<NetNs>> {
        self.namespaces.get(name)
    }

    /// Every interface with its name in the topology, in link order (`a` then `b`).
    pub fn interfaces(&self) -> impl Iterator<Item = (&EndName, &VethEnd)> {
        self.links
            .iter()
            .flat_map(|(def, pair)| [(&def.a, pair.a()), (&def.b, pair.b())])
    }

    /// The interface `netns:interface`, or the only interface of `netns` when `interface` is
    /// `None`.
    pub fn interface(&self, netns: &str, interface: Option<&str>) -> Option<(&EndName, &VethEnd)> {
        resolve_among(self.interfaces(), netns, interface).ok()
    }

    /// The other end of the link `end` belongs to.
    pub fn peer(&self, end: &EndName) -> Option<(&EndName, &VethEnd)> {
        self.links.iter().find_map(|(def, pair)| {
            if &def.a == end {
                Some((&def.b, pair.b()))
            } else if &def.b == end {
                Some((&def.a, pair.a()))
            } else {
                None
            }
        })
    }

    /// Addresses for frames sent from `from` to its peer.
    pub fn endpoints(&self, from: &EndName) -> Option<Endpoints> {
        let (_, src) = self.interface(&from.netns, Some(&from.interface))?;
        let (_, dst) = self.peer(from)?;
        Some(Endpoints {
            src_mac: src.mac(),
            dst_mac: dst.mac(),
            src_ipv4: src.ipv4(),
            dst_ipv4: dst.ipv4(),
            src_ipv6: src.ipv6(),
            dst_ipv6: dst.ipv6(),
        })
    }
}

/// The addresses a frame sent from end `a` of link `index` would carry, without building
/// anything: frames can be laid out and checked before a topology exists.
pub fn link_endpoints(index: usize, from_a: bool) -> Endpoints {
    let (src, dst) = if from_a {
        (end_config(index, 1, ""), end_config(index, 2, ""))
    } else {
        (end_config(index, 2, ""), end_config(index, 1, ""))
    };
    Endpoints {
        src_mac: src.mac,
        dst_mac: dst.mac,
        src_ipv4: src.ipv4,
        dst_ipv4: dst.ipv4,
        src_ipv6: src.ipv6,
        dst_ipv6: dst.ipv6,
    }
}

/// A random id for frame tags.
pub fn random_run_id() -> u32 {
    let mut bytes = [0u8; 4];
    // SAFETY: the buffer is valid for writes of its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == 4 {
        u32::from_ne_bytes(bytes)
    } else {
        // getrandom cannot fail for 4 bytes after boot; fall back to something unique enough.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    }
}
