//! The one place the API calls the engine (`crate::engine`), the code `xdplab run` uses for
//! live sends: send, settle, observe, judge one group, and the session's closing checks.

use std::rc::Rc;

use crate::verdict::Verdict;

use super::{
    error::{Error, Result},
    lab::{Lab, Outcome, Sending},
    program::Slot,
};

/// Sends one group through the engine and turns its judgement into a result.
pub(crate) fn send_group(
    _lab: &Lab,
    _slot: &Rc<Slot>,
    _sending: &Sending<'_>,
    _verdict: Verdict,
) -> Result<Outcome> {
    Err(Error::Usage(
        "send frames: the engine is not wired in yet".into(),
    ))
}
