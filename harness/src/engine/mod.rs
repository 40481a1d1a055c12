//! The one engine every front end runs: scenario files ([`crate::scenario`]) and tests written
//! against the library's API both plan groups of frames, execute them, observe what became of
//! each frame, and judge it with the same code, so a failure reads the same wherever it came
//! from.
//!
//! - [`plan`]: what the engine is asked to do, planned once, and what it answers.
//! - [`observation`]: counters at a moment, a group's window, what counts rest on.
//! - [`live`]: a program attached in a built topology, groups sent, settled, observed and
//!   judged one by one ([`LiveSession`]).
//! - [`attribution`]: which frames landed where, by tag, by content or by counters.
//! - `judge`: observations against expectations, as failure lines.
//! - [`failure`]: every way a run fails its expectations, typed, with one text.
//! - [`test_run`]: the test-run path for one group (`BPF_PROG_TEST_RUN`, frame by frame).
//! - [`error`]: why a run could not go on, and whose fault that is.

pub mod attribution;
pub mod error;
pub mod failure;
pub(crate) mod judge;
pub mod live;
pub mod observation;
pub mod plan;
pub mod test_run;

pub use error::RunError;
pub use failure::Failure;
pub use live::{LiveSession, Pending, enable_napi};
pub use observation::Attribution;
pub use plan::{GroupOutcome, GroupPlan, SessionOptions, SessionOutcome, UnderTest};

/// Frames listed per problem in a report; counts are always complete.
pub(crate) const LISTED: usize = 16;
