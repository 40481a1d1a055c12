//! The one error type of the public API: each area's error, wrapped as it is, plus the
//! failures only a test can have (a wrong verdict, a test that cannot run here).
//!
//! Every message reads well after "failed to", names what it is about, and keeps its source
//! error. Which exit code an error deserves is decided elsewhere ([`crate::exit`]); nothing
//! here classifies.

use thiserror::Error;

use crate::{
    frame::FrameError, kernel::link::LinkError, kernel::maps::MapError, kernel::pin::PinError,
    kernel::program::ProgramError, report::GroupReport, topology::lab::LabError,
};

/// `Result` with the API's [`Error`](enum@Error): what a test returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the public API can fail with.
///
/// Its `Debug` form is its message (which carries its causes): a test that returns `Err`
/// shows `Error: send "dns": expected drop, ...` rather than a struct dump.
#[derive(Error)]
#[non_exhaustive]
pub enum Error {
    /// This machine cannot run labs, and `XDPLAB_REQUIRE_PRIVILEGES=1` says a test must not
    /// skip (see [`crate::lab!`]).
    #[error("failed to run privileged test {test}: {reason}")]
    Privileges {
        /// The test, as the macro found it.
        test: String,
        /// The missing capabilities and the fix.
        reason: String,
    },
    /// The lab (namespaces, veth pairs, addresses) could not be built.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// An object could not be read, loaded, attached or run.
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// A map could not be found, read or written.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A link could not be pinned, updated or detached.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The lab's private bpffs could not be made or used.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The engine could not send or observe (injection, captures, kernel counters).
    #[error(transparent)]
    Engine(#[from] crate::engine::RunError),
    /// A frame description is invalid (conflicting layers, sizes, ranges).
    #[error("failed to build frame: {0}")]
    Frame(#[source] FrameError),
    /// A frame builder call that does not fit the frame (a port on a frame without UDP or
    /// TCP, an IPv6 address on an IPv4 frame).
    #[error("failed to build frame: {0}")]
    FrameUsage(String),
    /// A request that names something the lab does not have (an interface, a program at an
    /// interface), or asks for something its state does not allow.
    #[error("failed to {0}")]
    Usage(String),
    /// A map value could not be read the way it was asked for (size, type, field).
    #[error("failed to read map {map:?}: {reason}")]
    MapValue {
        /// The map.
        map: String,
        /// What does not fit.
        reason: String,
    },
    /// Frames did not get the expected verdict, or an oracle disagreed: the same failure text
    /// the `xdplab` CLI prints for a failing send group, one line per failure.
    #[error("{0}")]
    Expectation(Box<Failure>),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The area errors put their causes in their messages already ("failed to read object
        // x: No such file or directory"): the chain would repeat them.
        write!(f, "{self}")
    }
}

impl From<FrameError> for Error {
    fn from(error: FrameError) -> Self {
        Self::Frame(error)
    }
}

/// A send that did not meet its expectation: the failure lines and what was observed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// One sentence per failed check, exactly as the CLI prints them under a failing
    /// scenario (`send "dns": expected drop, 3 of 200 frames went elsewhere: ...`).
    pub failures: Vec<String>,
    /// What the engine observed for the group (counts, places, kernel counters).
    pub report: Option<GroupReport>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.failures.join("\n"))
    }
}

impl Error {
    /// The failure lines when this is a failed expectation, else `None`.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Expectation(failure) => Some(failure),
            _ => None,
        }
    }
}

/// A failed expectation as an error.
pub(crate) fn failed(failures: Vec<String>, report: Option<GroupReport>) -> Error {
    Error::Expectation(Box::new(Failure { failures, report }))
}
