//! [`Lab`]: namespaces joined by veth pairs, and the programs loaded into it (objects are
//! loaded in [`super::program`], frames sent in [`super::send`]).

use std::{
    cell::{Cell, OnceCell, RefCell},
    path::{Path, PathBuf},
    rc::{Rc, Weak},
};

use crate::{
    kernel::pin::Bpffs,
    topology::lab::{Lab as TwoNamespaceLab, LabConfig, LabError},
    topology::{EndName, LinkDef, Topology, TopologySpec},
};

use super::{
    error::{Error, Result},
    slot::Slot,
};

/// How to build a [`Lab`]: its links (veth pairs between named namespaces), MTU and IPv6.
///
/// Without links it is the default lab: namespace `sender` joined to namespace `receiver`
/// by one veth pair. Interfaces are named `NAMESPACE:INTERFACE`, or `NAMESPACE` alone where the
/// namespace has one interface.
///
/// ```no_run
/// # fn main() -> xdplab::Result<()> {
/// // sender:eth0 <==> dut:in  [XDP]  dut:out <==> sink:eth0
/// let lab = xdplab::Lab::builder()
///     .link("sender:eth0", "dut:in")
///     .link("dut:out", "sink:eth0")
///     .build()?;
/// # let _ = lab;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct LabBuilder {
    links: Vec<(String, String)>,
    mtu: u32,
    ipv6: bool,
    test_run: bool,
}

impl Default for LabBuilder {
    fn default() -> Self {
        Self {
            links: Vec::new(),
            mtu: LabConfig::default().mtu,
            ipv6: false,
            test_run: false,
        }
    }
}

fn end_name(text: &str) -> Result<EndName> {
    match text.split_once(':') {
        Some((netns, interface)) if !netns.is_empty() && !interface.is_empty() => Ok(EndName {
            netns: netns.to_owned(),
            interface: interface.to_owned(),
        }),
        _ => Err(LabError::Config(format!("link end {text:?} is not NAMESPACE:INTERFACE")).into()),
    }
}

impl LabBuilder {
    /// Adds a veth pair between `a` and `b`, each `NAMESPACE:INTERFACE`; namespaces are made
    /// on first use. Link `L` (0-based) gives `a` 10.78.L.1/24 and `b` 10.78.L.2/24 (see
    /// [`crate::topology`]).
    pub fn link(mut self, a: &str, b: &str) -> Self {
        self.links.push((a.to_owned(), b.to_owned()));
        self
    }

    /// The MTU of every link (default 1500; native XDP on veth allows at most about 3498).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = mtu;
        self
    }

    /// Keeps the IPv6 stack on (quiet: no autoconfiguration, no DAD, static neighbours).
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Sends through `BPF_PROG_TEST_RUN` instead of the wire: every frame of a
    /// [`Lab::send`] is run once through the program under test (the one attached where the
    /// frames would arrive), and its return code is its verdict, judged as `xdplab run --paths
    /// test-run` does. The same test then runs on all three paths:
    ///
    /// ```no_run
    /// # use xdplab::{Frame, Lab, Verdict, XdpMode};
    /// # fn main() -> xdplab::Result<()> {
    /// for (builder, mode) in [
    ///     (Lab::builder(), XdpMode::Native),
    ///     (Lab::builder(), XdpMode::Generic),
    ///     (Lab::builder().test_run(), XdpMode::Native),
    /// ] {
    ///     let lab = builder.build()?;
    ///     let _prog = lab.load_bundled("xdp_drop")?.attach("xdp_drop_all", mode)?;
    ///     lab.send(Frame::ipv4().udp(), 100)?.expect(Verdict::Drop)?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Programs are still attached (attach errors still show); the test run happens in the
    /// test's own namespace, so programs that read the kernel's tables (`bpf_fib_lookup`) see
    /// the host's: test those on the live paths.
    pub fn test_run(mut self) -> Self {
        self.test_run = true;
        self
    }

    /// Builds the namespaces and links.
    pub fn build(self) -> Result<Lab> {
        let spec = if self.links.is_empty() {
            TwoNamespaceLab::spec(&LabConfig {
                mtu: self.mtu,
                ipv6: self.ipv6,
            })
        } else {
            TopologySpec {
                links: self
                    .links
                    .iter()
                    .map(|(a, b)| {
                        Ok(LinkDef {
                            a: end_name(a)?,
                            b: end_name(b)?,
                            mtu: self.mtu,
                        })
                    })
                    .collect::<Result<_>>()?,
                ipv6: self.ipv6,
                state: Vec::new(),
            }
        };
        let topology = Topology::build(&spec)?;
        Ok(Lab {
            programs: RefCell::new(Vec::new()),
            napi: RefCell::new(Vec::new()),
            bpffs: OnceCell::new(),
            pins: Cell::new(0),
            sends: Cell::new(0),
            test_run: self.test_run,
            spec,
            topology,
        })
    }
}

/// A lab: network namespaces joined by veth pairs, with the programs loaded into it.
/// Dropping it removes everything it made (namespaces, links, attachments, pins).
///
/// Build one with [`crate::lab!`] in a test (it skips without privileges), or with
/// [`Lab::new`] / [`Lab::builder`].
#[derive(Debug)]
pub struct Lab {
    /// Every program loaded into the lab, to find the one under test at an interface.
    programs: RefCell<Vec<Weak<Slot>>>,
    /// Programs that pass everything, attached (native) where frames sent by XDP_TX or
    /// XDP_REDIRECT land, so that the veth there runs NAPI and keeps them (see
    /// [`crate::engine::enable_napi`]); removed when a user's program attaches there.
    napi: RefCell<
        Vec<(
            EndName,
            crate::kernel::program::Program,
            crate::kernel::program::Attachment,
        )>,
    >,
    /// The private bpffs pins go to, mounted on first use; before `topology`, so it is
    /// removed first.
    bpffs: OnceCell<Bpffs>,
    pins: Cell<u32>,
    pub(crate) sends: Cell<u32>,
    /// Sends go through `BPF_PROG_TEST_RUN` ([`LabBuilder::test_run`]).
    test_run: bool,
    spec: TopologySpec,
    topology: Topology,
}

impl Lab {
    /// The default lab: namespace `sender` joined to namespace `receiver` by one veth pair.
    pub fn new() -> Result<Self> {
        LabBuilder::default().build()
    }

    /// A lab of any shape: see [`LabBuilder`].
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The built namespaces and links, for the lower-level modules.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether sends go through `BPF_PROG_TEST_RUN` instead of the wire
    /// ([`LabBuilder::test_run`]).
    pub fn is_test_run(&self) -> bool {
        self.test_run
    }

    /// Every interface, as `NAMESPACE:INTERFACE`, in link order.
    pub fn interfaces(&self) -> Vec<String> {
        self.topology
            .interfaces()
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The interface `name` (`NAMESPACE:INTERFACE`, or `NAMESPACE` when it has one): its
    /// index and addresses.
    pub fn interface(&self, name: &str) -> Result<Interface> {
        let end = self.end(name)?;
        let (_, veth) = self
            .topology
            .interface(&end.netns, Some(&end.interface))
            .ok_or_else(|| Error::Usage(format!("find interface {end} in the lab")))?;
        Ok(Interface {
            name: end.to_string(),
            ifindex: veth.ifindex(),
            mac: veth.mac(),
            ipv4: veth.ipv4(),
            ipv6: veth.ipv6(),
        })
    }

    /// The interface `name` (`NAMESPACE:INTERFACE`, or `NAMESPACE` when it has one).
    pub(crate) fn end(&self, name: &str) -> Result<EndName> {
        let (netns, interface) = match name.split_once(':') {
            Some((netns, interface)) => (netns, Some(interface)),
            None => (name, None),
        };
        self.topology
            .interface(netns, interface)
            .map(|(end, _)| end.clone())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "find interface {name:?} in the lab (it has: {}; a namespace alone names \
                     its only interface)",
                    self.interfaces().join(", ")
                ))
            })
    }

    /// Where programs attach unless told: end `b` of the first link (`receiver`).
    pub(crate) fn default_attach(&self) -> EndName {
        self.spec.links[0].b.clone()
    }

    /// Where frames come from unless told: end `a` of the first link (`sender`).
    pub(crate) fn default_from(&self) -> EndName {
        self.spec.links[0].a.clone()
    }

    pub(crate) fn mtu(&self, end: &EndName) -> u32 {
        self.spec
            .links
            .iter()
            .find(|l| &l.a == end || &l.b == end)
            .map_or(LabConfig::default().mtu, |l| l.mtu)
    }

    pub(crate) fn register(&self, slot: &Rc<Slot>) {
        let mut programs = self.programs.borrow_mut();
        programs.retain(|p| p.strong_count() > 0);
        programs.push(Rc::downgrade(slot));
    }

    /// The program attached at `end`, or the only attached one.
    pub(crate) fn under_test(&self, end: &EndName) -> Result<Rc<Slot>> {
        let attached: Vec<Rc<Slot>> = self
            .programs
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|slot| slot.attached_at().is_some())
            .collect();
        if let Some(slot) = attached
            .iter()
            .find(|s| s.attached_at().is_some_and(|(at, _)| &at == end))
        {
            return Ok(Rc::clone(slot));
        }
        match attached.as_slice() {
            [only] => Ok(Rc::clone(only)),
            [] => Err(Error::Usage(format!(
                "send to {end}: no program is attached in the lab (attach one first)"
            ))),
            _ => Err(Error::Usage(format!(
                "send to {end}: no program is attached there, and several are elsewhere"
            ))),
        }
    }

    /// Makes sure the veth end `at` runs NAPI (see [`Self::napi`]): nothing to do when a program
    /// of the lab is attached there.
    pub(crate) fn ensure_napi(&self, at: &EndName) -> Result<()> {
        if self.napi.borrow().iter().any(|(end, _, _)| end == at) || self.attached_at(at) {
            return Ok(());
        }
        let jumbo = self.mtu(at) > crate::scenario::LabSpec::MAX_NATIVE_MTU;
        let (helper, attachment) = crate::engine::enable_napi(&self.topology, at, jumbo)?;
        self.napi
            .borrow_mut()
            .push((at.clone(), helper, attachment));
        Ok(())
    }

    /// Removes the NAPI helper at `at`, if any, before a user's program attaches there.
    pub(crate) fn release_napi(&self, at: &EndName) {
        self.napi.borrow_mut().retain(|(end, _, _)| end != at);
    }

    fn attached_at(&self, at: &EndName) -> bool {
        self.programs
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .any(|slot| slot.attached_at().is_some_and(|(end, _)| &end == at))
    }

    /// The lab's private bpffs, mounted on first use (never `/sys/fs/bpf`), and a fresh pin
    /// path in it.
    pub(crate) fn pin_path(&self, name: Option<&str>) -> Result<PathBuf> {
        let bpffs = match self.bpffs.get() {
            Some(bpffs) => bpffs,
            None => {
                let mounted = Bpffs::mount()?;
                self.bpffs.get_or_init(|| mounted)
            }
        };
        let n = self.pins.get();
        self.pins.set(n + 1);
        let name = match name {
            Some(name) => name.to_owned(),
            None => format!("link{n}"),
        };
        Ok(bpffs.checked_pin_path(&name)?)
    }

    /// The lab's private bpffs, if anything was pinned.
    pub fn bpffs(&self) -> Option<&Path> {
        self.bpffs.get().map(Bpffs::path)
    }
}

/// One interface of a lab, as `ip -n NAMESPACE addr show INTERFACE` would show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// `NAMESPACE:INTERFACE`.
    pub name: String,
    /// Its index, inside its namespace (indexes repeat across namespaces).
    pub ifindex: u32,
    /// Its hardware address.
    pub mac: crate::frame::MacAddr,
    /// Its IPv4 address (/24).
    pub ipv4: std::net::Ipv4Addr,
    /// Its IPv6 address (/64).
    pub ipv6: std::net::Ipv6Addr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_end_without_a_namespace_is_an_error_before_anything_is_built() {
        let error = Lab::builder()
            .link("eth0", "dut:in")
            .build()
            .expect_err("not NAMESPACE:INTERFACE");
        assert_eq!(
            error.to_string(),
            "failed to build lab: link end \"eth0\" is not NAMESPACE:INTERFACE"
        );
    }

    #[test]
    fn the_macro_names_the_test_it_is_in() {
        fn marker() {}
        let name = std::any::type_name_of_val(&marker);
        assert!(name.ends_with("::marker"), "{name}");
        assert_eq!(
            crate::api::function_name("my_crate::tests::drops::__xdplab_marker"),
            "my_crate::tests::drops"
        );
    }
}
