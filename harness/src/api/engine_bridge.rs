//! The one place the API calls the engine ([`crate::engine`]), the code `xdplab run` uses
//! for live sends: each [`Sending::expect`](super::Sending::expect) is one group of a
//! [`LiveSession`] (send, settle, observe with the three oracles, judge), and the session's
//! closing checks (program counters against the kernel's, incomplete captures) count as the
//! group's too; in a test-run lab each is one group of [`crate::engine::test_run`]. Nothing is
//! judged here: the failure lines are the engine's, word for word.

use crate::{
    engine::{LiveSession, SessionOptions, UnderTest},
    program::XdpMode,
    report::GroupReport,
    topology::EndName,
    verdict::Verdict,
};

use super::{
    error::{Error, Result},
    lab::{Lab, Outcome, Sending, failed},
    program::Slot,
};

/// Sends one group through the engine and turns its judgement into a result.
pub(crate) fn send_group(
    lab: &Lab,
    slot: &Slot,
    sending: &Sending<'_>,
    verdict: Verdict,
) -> Result<Outcome> {
    let plan = sending.plan(verdict);
    let name = &plan.name;
    let redirect_to = plan.redirect_to.as_ref();
    let (attach, mode) = slot.attached_at().ok_or_else(|| {
        Error::Usage(format!(
            "send {name:?}: the program under test is not attached"
        ))
    })?;
    if lab.is_test_run() {
        let program = slot.program()?;
        let outcome = crate::engine::test_run::run_group(
            &program,
            &plan,
            crate::lab::random_run_id(),
            0,
            None,
        )?;
        return judged(outcome.failures, outcome.report);
    }
    if verdict == Verdict::Redirect && redirect_to.is_none() {
        return Err(Error::Usage(format!(
            "send {name:?}: expecting redirect needs the interface the program redirects to: \
             .redirect_to(\"NAMESPACE:INTERFACE\") before .expect(Verdict::Redirect)"
        )));
    }
    if mode == XdpMode::Native {
        // Frames leaving by XDP_TX or XDP_REDIRECT in driver mode are dropped by the veth they
        // reach unless its receiving end runs NAPI, which an XDP program there turns on.
        let topology = lab.topology();
        let landing: Option<(&EndName, &str)> = match verdict {
            Verdict::Tx => topology.peer(&attach).map(|(end, _)| (end, "XDP_TX")),
            Verdict::Redirect => redirect_to
                .and_then(|target| topology.peer(target))
                .map(|(end, _)| (end, "XDP_REDIRECT")),
            _ => None,
        };
        if let Some((at, _why)) = landing {
            lab.ensure_napi(at)?;
        }
    }
    let program = slot.program()?;
    let under_test = UnderTest {
        program: &program,
        attach: &attach,
        mode,
    };
    let options = SessionOptions {
        // A fresh id per send: a late frame of an earlier send in the same lab can never be
        // counted into this one.
        run_id: Some(crate::lab::random_run_id()),
        keep_frames: 0,
    };
    let mut session = LiveSession::open(lab.topology(), under_test, &options)?;
    let outcome = session.send(&plan, &mut || {})?;
    let closed = session.close();
    let mut failures = outcome.failures;
    failures.extend(closed.failures);
    judged(failures, outcome.report)
}

/// The engine's judgement as a result: no failure lines, or all of them.
fn judged(failures: Vec<String>, report: GroupReport) -> Result<Outcome> {
    if failures.is_empty() {
        Ok(Outcome { report })
    } else {
        Err(failed(failures, Some(report)))
    }
}
