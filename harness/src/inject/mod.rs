//! Injectors: ways to put crafted frames on a lab's sending interface.
//!
//! Each injector reports what it offered and what the kernel accepted; what the receiver got
//! is never taken from the sender, but from the observers in [`crate::observe`].

pub mod pnet;

use std::time::Duration;

use thiserror::Error;

use crate::netns::NetNsError;

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
}

/// What one injection did, from the sender's side.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InjectStats {
    /// Frames the injector tried to send.
    pub offered: u64,
    /// Frames the kernel took (the send call succeeded).
    pub accepted: u64,
    /// Frames given up on after an error.
    pub errors: u64,
    /// Sends retried after a transient error (ENOBUFS, EAGAIN).
    pub retries: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Wall time spent sending.
    #[serde(serialize_with = "as_secs")]
    pub elapsed: Duration,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
