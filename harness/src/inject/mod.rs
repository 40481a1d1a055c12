//! Injectors: ways to put crafted frames on a lab's sending interface.
//!
//! Each injector reports what it offered and what the kernel accepted; what the receiver got
//! is never taken from the sender, but from the observers in [`crate::observe`].
//!
//! Three injectors, from the most faithful to the fastest:
//! - [`pnet`]: pnet's datalink channel, one `sendto` per frame; the functional tests' injector
//!   (every frame its own tag) and the slowest throughput baseline.
//! - [`batched`]: an `AF_PACKET` socket that bypasses the qdisc and hands the kernel many frames
//!   per system call; frames still go through the sender's stack as skbs.
//! - [`live`]: `BPF_PROG_TEST_RUN` live frames redirected out of the sending veth; no skb, no
//!   socket, one system call per million frames.
//!
//! Every throughput send loop (`send_for`) is bounded by a [`Budget`]: a frame count and a
//! wall-clock duration, whichever runs out first.

pub mod batched;
pub mod live;
pub mod pnet;

use std::{io, time::Duration};

use thiserror::Error;

use crate::kernel::netns::NetNsError;

/// An error from opening an injector.
#[derive(Debug, Error)]
pub enum InjectError {
    /// Entering the namespace failed.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// The interface was not found from inside its namespace.
    #[error("failed to find veth {interface:?} for injection inside its namespace")]
    NoInterface {
        /// The interface.
        interface: String,
    },
    /// The datalink channel could not be opened.
    #[error("failed to open a datalink channel on veth {interface:?}: {source}")]
    Channel {
        /// The interface.
        interface: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A socket for the batched injector could not be created or set up.
    #[error("failed to {what} on veth {interface:?}: {source}")]
    Socket {
        /// The interface.
        interface: String,
        /// What was being done (`"open an AF_PACKET socket"`, `"turn PACKET_QDISC_BYPASS on"`).
        what: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The live generator could not be loaded or pointed at the sending interface.
    #[error(
        "failed to {what} for live injection on veth {interface:?}: {}",
        crate::kernel::program::chain(&**source)
    )]
    Load {
        /// The sending interface.
        interface: String,
        /// What was being done (`"load program xdp_live_tx"`, `"point tx_port[0] at the
        /// sending veth"`).
        what: &'static str,
        /// aya's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The injector was asked for something it cannot do.
    #[error("failed to open {injector} injector on veth {interface:?}: {reason}")]
    Config {
        /// `"live"`, `"batched"`, ...
        injector: &'static str,
        /// The interface.
        interface: String,
        /// Why.
        reason: String,
    },
}

/// Bounds of a send loop: whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// At most this many frames.
    pub frames: u64,
    /// At most this long (wall clock, from the start of the loop).
    pub duration: Duration,
}

/// What one injection did, from the sender's side.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InjectStats {
    /// Frames the injector tried to send.
    pub offered: u64,
    /// Frames the kernel took (the send call succeeded).
    pub accepted: u64,
    /// Frames given up on after an error (pnet), or failed send calls (batched: one
    /// `sendmmsg`; live: one `BPF_PROG_TEST_RUN`).
    pub errors: u64,
    /// Sends retried after a transient error (ENOBUFS, EAGAIN), or, batched, after a call
    /// the kernel took only in part.
    pub retries: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Wall time spent sending.
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
    /// CPU time (user + system) of the sending thread(s), summed over threads, from
    /// `getrusage(RUSAGE_THREAD)` taken inside each sending thread.
    #[serde(serialize_with = "as_secs")]
    pub cpu: Duration,
    /// Each sending CPU's share, in CPU order (the live injector; empty for the others, which
    /// send from one thread).
    pub threads: Vec<ThreadStats>,
}

/// What the sending thread(s) on one CPU did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadStats {
    /// The CPU the thread(s) were pinned to.
    pub cpu: usize,
    /// Frames the kernel took from them.
    pub accepted: u64,
    /// Their CPU time (user + system), as [`InjectStats::cpu`].
    #[serde(serialize_with = "as_secs")]
    pub cpu_time: Duration,
}

/// CPU time (user + system) the calling thread has used so far.
pub(crate) fn thread_cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid out pointer; it cannot fail with these arguments.
    let ret = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if ret != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
