//! The public API for `cargo test`: a lab, programs, frames and expectations that read like a
//! sentence, on the same engine as `xdplab run`.
//!
//! ```rust,no_run,test_harness
//! use xdplab::{Frame, Verdict, XdpMode};
//!
//! #[test]
//! fn drops_udp_to_port_9() -> xdplab::Result<()> {
//!     let lab = xdplab::lab!()?;
//!     let prog = lab.load("tests/udp9.bpf.o")?.attach("xdp_udp9", XdpMode::Native)?;
//!     lab.send(Frame::ipv4().udp().dst_port(9), 1000)?.expect(Verdict::Drop)?;
//!     assert_eq!(prog.map("stats")?.get_u64(0)?, 1000);
//!     Ok(())
//! }
//! ```
//!
//! - [`Lab`] ([`LabBuilder`] for more than one veth pair): namespaces and links, made and
//!   removed by the lab; [`crate::lab!`] makes one for a test, or skips it.
//! - [`Object`] and [`Program`]: load, attach (native or generic), detach, replace atomically,
//!   pin in the lab's private bpffs, run once with `BPF_PROG_TEST_RUN` ([`TestRun`]).
//! - [`Map`]: typed reads and writes of a program's maps ([`Pod`] keys and values, per-CPU
//!   sums, struct fields by their C name).
//! - [`Frame`]: typed frames over [`crate::frame::FrameSpec`].
//! - [`Sending::expect`]: send, settle, observe and judge, as `xdplab run` does; a wrong
//!   verdict is an [`Error::Expectation`] with the CLI's failure text.

#![warn(missing_docs)]

mod error;
mod frame;
mod lab;
mod macros;
mod map;
mod program;
mod send;
mod slot;

pub use error::{Error, Failure, Result};
pub use frame::Frame;
pub use lab::{Interface, Lab, LabBuilder};
#[doc(hidden)]
pub use macros::{Gate, function_name, gate};
pub use map::{Map, Pod};
pub use program::{Object, Program, TestRun};
pub use send::{Outcome, Sending};

/// Everything a test usually names: `use xdplab::prelude::*;`.
pub mod prelude {
    pub use super::{Frame, Lab, Result, Verdict, XdpMode};
}

pub use crate::{kernel::program::XdpMode, verdict::Verdict, verdict::output::OutputSpec};
