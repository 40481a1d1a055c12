//! Stopping cleanly on SIGINT and SIGTERM.
//!
//! [`install`] gives both signals a handler that only records which one arrived, in an atomic:
//! nothing is cleaned up inside the handler. The run loop of `xdplab run` and `xdplab bench`,
//! the scenario runner between send groups and while it waits for counters, and every
//! injector's bounded send loop poll [`requested`] and return early, so the current scenario
//! or measurement is abandoned by ordinary returns and every RAII guard (namespace, veth,
//! attachment, bpffs mount) runs on the way out. The binary then exits with
//! [`crate::exit::interrupted`] (128 + the signal number: 130 for SIGINT, 143 for SIGTERM).
//!
//! A second SIGINT or SIGTERM while the first is being handled ends the process at once, with
//! the signal's default action, for a run that does not stop quickly enough: namespaces and
//! attachments still go with the process (they are owned by its file descriptors), and what
//! can outlive it (a bpffs mount) is removed by `xdplab clean` or the next run's sweep.
//!
//! Without [`install`] (the library used from tests or other programs) [`requested`] is always
//! `None` and nothing changes.

use std::sync::atomic::{AtomicI32, Ordering};

pub use nix::sys::signal::Signal;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
use thiserror::Error;

/// The signal that asked the process to stop, 0 while none has.
static REQUESTED: AtomicI32 = AtomicI32::new(0);

/// The signals that stop a run cleanly.
pub const SIGNALS: [Signal; 2] = [Signal::SIGINT, Signal::SIGTERM];

/// An error from installing the handlers.
#[derive(Debug, Error)]
#[error("failed to install the {signal} handler: {source}")]
pub struct InterruptError {
    /// The signal.
    pub signal: Signal,
    /// The errno from `sigaction(2)`.
    #[source]
    pub source: nix::Error,
}

/// Records the first signal; a second one gets the default action (the process ends).
extern "C" fn record(signal: libc::c_int) {
    if REQUESTED
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers (`sigaction(2)` with `SA_RESTART`, so system
/// calls in flight resume instead of failing with EINTR; the loops notice the flag on their
/// next turn).
#[doc(alias = "sigaction")]
pub fn install() -> Result<(), InterruptError> {
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in SIGNALS {
        // SAFETY: the handler only touches an atomic and calls async-signal-safe functions.
        unsafe { sigaction(signal, &action) }
            .map_err(|source| InterruptError { signal, source })?;
    }
    Ok(())
}

/// The signal that asked the process to stop, if one has.
pub fn requested() -> Option<Signal> {
    match REQUESTED.load(Ordering::Relaxed) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Forgets the signal recorded so far, so that the next run starts again: for a process that
/// goes on after abandoning a run (a test binary that interrupts runs on purpose, a service
/// that runs scenarios on request). A second signal before this call still ends the process.
pub fn clear() {
    REQUESTED.store(0, Ordering::SeqCst);
}
