//! A program loaded into a lab and how it is attached: shared by the user's
//! [`Program`](super::Program) handle and the lab, which finds the program under test
//! through it.

use std::cell::{Ref, RefCell};

use crate::{
    kernel::link::XdpLink,
    kernel::program::{Attachment, Program as LoadedProgram, XdpMode},
    topology::EndName,
};

use super::error::{Error, Result};

/// How a program is attached.
pub(crate) enum Link {
    /// The bpf_link as aya made it: detached when dropped.
    Fd(Attachment),
    /// Pinned in the lab's bpffs (to be updated in place, or by request).
    Pinned(PinnedLink),
}

/// A link pinned in the lab's bpffs: detached and unpinned when dropped, since the pin alone
/// would keep the program attached.
pub(crate) struct PinnedLink(pub(crate) XdpLink);

impl Drop for PinnedLink {
    fn drop(&mut self) {
        // Errors are printed, never raised, also while a failing test unwinds.
        if let Err(e) = self.0.detach() {
            eprintln!("xdplab: {e}");
        }
        if let Err(e) = std::fs::remove_file(self.0.path()) {
            eprintln!("xdplab: failed to unpin {}: {e}", self.0.path().display());
        }
    }
}

pub(crate) struct Attached {
    pub(crate) end: EndName,
    pub(crate) mode: XdpMode,
    pub(crate) link: Link,
}

/// A program loaded into a lab, shared between the user's handle and the lab (which finds the
/// program under test through it).
pub(crate) struct Slot {
    /// Before `program`: the link goes first.
    pub(crate) attached: RefCell<Option<Attached>>,
    pub(crate) program: RefCell<LoadedProgram>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("program", &self.program)
            .field("attached", &self.attached_at())
            .finish()
    }
}

impl Slot {
    /// Where and how the program is attached.
    pub(crate) fn attached_at(&self) -> Option<(EndName, XdpMode)> {
        self.attached
            .borrow()
            .as_ref()
            .map(|a| (a.end.clone(), a.mode))
    }

    /// The loaded program, for the engine.
    pub(crate) fn program(&self) -> Result<Ref<'_, LoadedProgram>> {
        self.program.try_borrow().map_err(|_| busy())
    }
}

pub(crate) fn busy() -> Error {
    Error::Usage("use the program: it is being changed (attach, pin) at the same time".into())
}
