//! The one engine every front end runs: scenario files ([`crate::scenario`]) and tests written
//! against the library's API both plan groups of frames, execute them, observe what became of
//! each frame, and judge it with the same code, so a failure reads the same wherever it came
//! from.
//!
//! - [`live`]: a program attached in a built topology, groups sent, settled, observed and
//!   judged one by one ([`LiveSession`]).
//! - [`attribution`]: which frames landed where, by tag, by content or by counters.
//! - `judge`: observations against expectations, as failure lines.
//! - [`error`]: why a run could not go on, and whose fault that is.

pub mod attribution;
pub mod error;
pub(crate) mod judge;
pub mod live;
pub mod test_run;

pub use attribution::Attribution;
pub use error::RunError;
pub use live::{
    GroupOutcome, GroupPlan, LiveSession, SessionOptions, SessionOutcome, UnderTest, enable_napi,
};

/// Frames listed per problem in a report; counts are always complete.
pub(crate) const LISTED: usize = 16;
