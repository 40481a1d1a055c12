//! [`Object`] (an object file read, with the knobs a loader sets before load) and
//! [`Program`] (one of its programs loaded into a lab: attached, detached, replaced, pinned,
//! run once with `BPF_PROG_TEST_RUN`, its maps read).

use std::{cell::RefCell, os::fd::AsFd as _, path::PathBuf, rc::Rc};

use crate::{
    kernel::elf::ProgramType,
    kernel::link::XdpLink,
    kernel::program::{GlobalValue, LoadOptions, ObjectSource, Program as LoadedProgram, XdpMode},
    topology::EndName,
    verdict::Verdict,
};

use super::{
    error::{Error, Result, failed},
    frame::Frame,
    lab::Lab,
    map::Map,
    slot::{Attached, Link, PinnedLink, Slot, busy},
};

impl Lab {
    /// Reads the object at `path` (a BPF ELF file, for example from `clang -O2 -g -target
    /// bpf`); its programs are loaded by [`Object::attach`] or [`Object::program`]. A file that
    /// cannot be read is an error here.
    pub fn load(&self, path: impl AsRef<std::path::Path>) -> Result<Object<'_>> {
        Object::new(self, ObjectSource::File(path.as_ref().to_owned()))
    }

    /// One of the objects bundled with xdplab ([`crate::kernel::program::BUNDLED`]), by name.
    pub fn load_bundled(&self, name: &str) -> Result<Object<'_>> {
        Object::new(self, ObjectSource::Bundled(name.to_owned()))
    }
}

/// An object file read into a lab, not loaded yet: set globals and map sizes, then load one
/// of its programs with [`Object::attach`] (loaded and attached) or [`Object::program`]
/// (loaded only: for [`Program::test_run`], or to attach later).
///
/// ```no_run
/// # use xdplab::{XdpMode};
/// # fn main() -> xdplab::Result<()> {
/// # let lab = xdplab::Lab::new()?;
/// let prog = lab
///     .load("bpf/udp_guard.bpf.o")?
///     .global("blocked_port", 53) // a `const volatile` in .rodata, set before load
///     .xdp_section()              // its section is a free name: load it as XDP
///     .attach("udp_guard", XdpMode::Native)?;
/// # let _ = prog;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Object<'l> {
    lab: &'l Lab,
    source: ObjectSource,
    options: LoadOptions,
}

impl<'l> Object<'l> {
    pub(crate) fn new(lab: &'l Lab, source: ObjectSource) -> Result<Self> {
        // Read now, so a missing or unreadable file is an error at `load`.
        source.bytes()?;
        Ok(Self {
            lab,
            source,
            options: LoadOptions::default(),
        })
    }

    /// Sets a global (`const volatile` in `.rodata`, or in `.data`/`.bss`) to an integer
    /// before load, in the variable's own size.
    pub fn global(mut self, name: &str, value: i64) -> Self {
        self.options
            .global_values
            .push((name.to_owned(), GlobalValue::Int(value)));
        self
    }

    /// Sets a global to these exact bytes before load.
    pub fn global_bytes(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.options
            .global_values
            .push((name.to_owned(), GlobalValue::Bytes(bytes.into())));
        self
    }

    /// Sets a map's `max_entries` before the maps are created (libbpf's
    /// `bpf_map__set_max_entries`).
    pub fn max_entries(mut self, map: &str, entries: u32) -> Self {
        self.options.max_entries.push((map.to_owned(), entries));
        self
    }

    /// Reads every program section as XDP, as `bpftool prog load ... type xdp` does: for
    /// programs in sections with free names (`SEC("xdp_udp_guard")`).
    pub fn xdp_section(mut self) -> Self {
        self.options.program_type = Some(ProgramType::Xdp);
        self
    }

    /// Reads every program section as XDP with multi-buffer frames (`xdp.frags`).
    pub fn xdp_frags_section(mut self) -> Self {
        self.options.program_type = Some(ProgramType::XdpFrags);
        self
    }

    /// Loads the program `entry` (its function name), without attaching it.
    pub fn program(self, entry: &str) -> Result<Program<'l>> {
        let loaded = LoadedProgram::load_with(&self.source, entry, &self.options)?;
        let slot = Rc::new(Slot {
            attached: RefCell::new(None),
            program: RefCell::new(loaded),
        });
        self.lab.register(&slot);
        Ok(Program {
            lab: self.lab,
            slot,
        })
    }

    /// Loads the program `entry` and attaches it, in `mode`, to the lab's receiving
    /// interface (`receiver` in the default lab; end `b` of the first link otherwise).
    pub fn attach(self, entry: &str, mode: XdpMode) -> Result<Program<'l>> {
        let at = self.lab.default_attach();
        let program = self.program(entry)?;
        program.attach_end(at, mode)?;
        Ok(program)
    }

    /// Loads the program `entry` and attaches it, in `mode`, to `interface`
    /// (`NAMESPACE:INTERFACE`).
    pub fn attach_to(self, interface: &str, entry: &str, mode: XdpMode) -> Result<Program<'l>> {
        let at = self.lab.end(interface)?;
        let program = self.program(entry)?;
        program.attach_end(at, mode)?;
        Ok(program)
    }
}

/// One program loaded into a lab (see [`Object`]). Dropping it detaches and unloads it.
pub struct Program<'l> {
    lab: &'l Lab,
    slot: Rc<Slot>,
}

impl std::fmt::Debug for Program<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.slot.fmt(f)
    }
}

/// What one `BPF_PROG_TEST_RUN` of one frame gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The action the program returned (`XDP_ABORTED` = 0 ... `XDP_REDIRECT` = 4).
    pub action: u32,
    /// The verdict for that action; `None` for a code outside the kernel's enum (which it
    /// treats as an abort).
    pub verdict: Option<Verdict>,
    /// The frame as it left the program (rewritten, grown or shrunk).
    pub data: Vec<u8>,
}

impl TestRun {
    /// Checks the program returned `verdict`; the error's text has the form of the CLI's
    /// test-run failure for a group.
    pub fn expect(&self, verdict: Verdict) -> Result<&Self> {
        if self.verdict == Some(verdict) {
            return Ok(self);
        }
        let got = self.verdict.map_or("aborted", Verdict::as_str);
        Err(failed(
            vec![format!(
                "send \"test-run\": expected {verdict}, 1 of 1 frames returned something else \
                 (returned {got} ({}): seq 0)",
                self.action
            )],
            None,
        ))
    }
}

impl<'l> Program<'l> {
    /// The program's function name.
    pub fn entry(&self) -> String {
        self.slot.program.borrow().entry().to_owned()
    }

    /// The object it came from.
    pub fn object(&self) -> String {
        self.slot.program.borrow().object().to_owned()
    }

    /// The map `name` of the program's object; a name the object lacks is an error that lists
    /// the maps it has.
    pub fn map(&self, name: &str) -> Result<Map<'_>> {
        Map::open(self.lab, self.slot.program()?, name)
    }

    /// The interface the program is attached to (`NAMESPACE:INTERFACE`) and its mode, if it
    /// is attached.
    pub fn attached(&self) -> Option<(String, XdpMode)> {
        self.slot
            .attached_at()
            .map(|(end, mode)| (end.to_string(), mode))
    }

    pub(crate) fn attach_end(&self, end: EndName, mode: XdpMode) -> Result<()> {
        if let Some((at, _)) = self.slot.attached_at() {
            return Err(Error::Usage(format!(
                "attach {} to {end}: it is attached to {at} already (detach it first)",
                self.entry()
            )));
        }
        let (_, veth) = self
            .lab
            .topology()
            .interface(&end.netns, Some(&end.interface))
            .ok_or_else(|| Error::Usage(format!("find interface {end} in the lab")))?;
        self.lab.release_napi(&end);
        let attachment = self
            .slot
            .program
            .try_borrow_mut()
            .map_err(|_| busy())?
            .attach(veth, mode)?;
        *self.slot.attached.borrow_mut() = Some(Attached {
            end,
            mode,
            link: Link::Fd(attachment),
        });
        Ok(())
    }

    /// Attaches the (detached) program to `interface` (`NAMESPACE:INTERFACE`) in `mode`.
    pub fn attach_to(&self, interface: &str, mode: XdpMode) -> Result<()> {
        self.attach_end(self.lab.end(interface)?, mode)
    }

    /// Detaches the program now; it stays loaded (its maps keep their values) and can be
    /// attached again.
    pub fn detach(&self) -> Result<()> {
        let attached =
            self.slot.attached.borrow_mut().take().ok_or_else(|| {
                Error::Usage(format!("detach {}: it is not attached", self.entry()))
            })?;
        match attached.link {
            Link::Pinned(link) => drop(link),
            Link::Fd(attachment) => attachment.detach()?,
        }
        Ok(())
    }

    /// The link pinned in the lab's bpffs, pinning it first if it is not.
    fn pinned_link(&self, name: Option<&str>) -> Result<PathBuf> {
        let mut attached = self.slot.attached.borrow_mut();
        let current = attached.take().ok_or_else(|| {
            Error::Usage(format!(
                "pin the link of {}: it is not attached",
                self.entry()
            ))
        })?;
        let Attached { end, mode, link } = current;
        let attachment = match link {
            Link::Pinned(link) => {
                let path = link.0.path().to_owned();
                *attached = Some(Attached {
                    end,
                    mode,
                    link: Link::Pinned(link),
                });
                return Ok(path);
            }
            Link::Fd(attachment) => attachment,
        };
        let path = match self.lab.pin_path(name) {
            Ok(path) => path,
            Err(e) => {
                *attached = Some(Attached {
                    end,
                    mode,
                    link: Link::Fd(attachment),
                });
                return Err(e);
            }
        };
        // On failure the attachment is gone with the error (aya closes the link): the program
        // is detached, which the error says.
        let link = XdpLink::pin(attachment, &path)?;
        *attached = Some(Attached {
            end,
            mode,
            link: Link::Pinned(PinnedLink(link)),
        });
        Ok(path)
    }

    /// Pins the program's bpf_link in the lab's private bpffs under `name` (`bpftool link
    /// pin`) and returns the pin; the lab removes it when the program or the lab goes.
    pub fn pin_link(&self, name: &str) -> Result<PathBuf> {
        self.pinned_link(Some(name))
    }

    /// Pins the program itself in the lab's private bpffs under `name` (`bpftool prog pin`).
    pub fn pin(&self, name: &str) -> Result<PathBuf> {
        let path = self.lab.pin_path(Some(name))?;
        self.slot
            .program
            .try_borrow_mut()
            .map_err(|_| busy())?
            .pin(&path)?;
        Ok(path)
    }

    /// Replaces this attached program with `new` atomically (`BPF_LINK_UPDATE` on its link):
    /// every frame meets one or the other, none meets neither. Afterwards `new` is attached
    /// where this one was, and this one is detached (still loaded).
    pub fn replace_with(&self, new: &Program<'_>) -> Result<()> {
        if new.slot.attached_at().is_some() {
            return Err(Error::Usage(format!(
                "replace {} with {}: the new program is attached already",
                self.entry(),
                new.entry()
            )));
        }
        self.pinned_link(None)?;
        let attached =
            self.slot.attached.borrow_mut().take().ok_or_else(|| {
                Error::Usage(format!("replace {}: it is not attached", self.entry()))
            })?;
        let Link::Pinned(PinnedLink(link)) = &attached.link else {
            return Err(Error::Usage(format!(
                "replace {}: its link could not be pinned",
                self.entry()
            )));
        };
        let result = (|| -> Result<()> {
            let old = self.slot.program()?;
            let new_program = new.slot.program()?;
            let old_fd = old.program_fd(old.entry())?;
            let new_fd = new_program.program_fd(new_program.entry())?;
            link.update(new_fd.as_fd(), Some((old_fd.as_fd(), old.id()?)))?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                *new.slot.attached.borrow_mut() = Some(attached);
                Ok(())
            }
            Err(e) => {
                *self.slot.attached.borrow_mut() = Some(attached);
                Err(e)
            }
        }
    }

    /// Runs `frame` through the program once with `BPF_PROG_TEST_RUN` (no interface): the
    /// action it returned and the frame it left. The frame is addressed as if sent from the
    /// default sender to the interface the program is attached to.
    pub fn test_run(&self, frame: &Frame) -> Result<TestRun> {
        let bytes = self.frame_bytes(frame)?;
        let out = self.slot.program()?.test_run(&bytes)?;
        Ok(TestRun {
            action: out.action,
            verdict: Verdict::from_xdp_action(out.action),
            data: out.data,
        })
    }

    /// Runs `frame` once with `BPF_PROG_TEST_RUN` as if it arrived on `interface`: inside its
    /// namespace, with `ingress_ifindex` set (helpers such as `bpf_fib_lookup` then read that
    /// namespace's tables).
    pub fn test_run_at(&self, interface: &str, frame: &Frame) -> Result<TestRun> {
        let end = self.lab.end(interface)?;
        let bytes = self.frame_bytes(frame)?;
        let (_, veth) = self
            .lab
            .topology()
            .interface(&end.netns, Some(&end.interface))
            .ok_or_else(|| Error::Usage(format!("find interface {end} in the lab")))?;
        let out = self.slot.program()?.test_run_at(&bytes, veth)?;
        Ok(TestRun {
            action: out.action,
            verdict: Verdict::from_xdp_action(out.action),
            data: out.data,
        })
    }

    fn frame_bytes(&self, frame: &Frame) -> Result<Vec<u8>> {
        let topology = self.lab.topology();
        let endpoints = self
            .slot
            .attached_at()
            .and_then(|(end, _)| topology.peer(&end).map(|(from, _)| from.clone()))
            .and_then(|from| topology.endpoints(&from))
            .unwrap_or_else(crate::topology::lab::endpoints);
        Ok(frame
            .template(&endpoints, usize::from(u16::MAX))?
            .bytes()
            .to_vec())
    }
}
