//! Sends: [`Lab::send`] plans a group of frames, and [`Sending::expect`] runs it through the
//! engine ([`crate::engine`]), the code `xdplab run` uses. On the live paths each expectation
//! is one group of a [`LiveSession`] (send, settle, observe with the three oracles, judge),
//! and the session's closing checks (program counters against the kernel's, incomplete
//! captures) count as the group's too; in a test-run lab each is one group of
//! [`crate::engine::test_run`]. Nothing is judged here: the failure lines are the engine's,
//! word for word.

use crate::{
    engine::{Failure, GroupPlan, LiveSession, SessionOptions, UnderTest},
    frame::FrameTemplate,
    kernel::program::XdpMode,
    report::GroupReport,
    topology::EndName,
    verdict::Verdict,
    verdict::output::OutputSpec,
};

use super::{
    error::{Error, Result, failed},
    frame::Frame,
    lab::Lab,
    slot::Slot,
};

impl Lab {
    /// Sends `count` copies of `frame` from the default sender to its peer (`sender` ->
    /// `receiver` in the default lab). Nothing is sent until the expectation is given:
    /// [`Sending::expect`].
    pub fn send(&self, frame: Frame, count: u32) -> Result<Sending<'_>> {
        self.send_from_end(self.default_from(), frame, count)
    }

    /// Sends from the interface `from` (`NAMESPACE:INTERFACE`) to its peer.
    pub fn send_from(&self, from: &str, frame: Frame, count: u32) -> Result<Sending<'_>> {
        let from = self.end(from)?;
        self.send_from_end(from, frame, count)
    }

    fn send_from_end(&self, from: EndName, frame: Frame, count: u32) -> Result<Sending<'_>> {
        if count == 0 {
            return Err(Error::Usage(
                "send 0 frames: give a count of at least 1".into(),
            ));
        }
        let endpoints = self.topology().endpoints(&from).ok_or_else(|| {
            Error::Usage(format!(
                "send from {from}: it is not an interface of the lab"
            ))
        })?;
        let outer_8021q = frame.spec().outer_8021q();
        let max_len = self.mtu(&from) as usize
            + crate::frame::ETH_HEADER_LEN
            + if outer_8021q {
                crate::frame::VLAN_TAG_LEN
            } else {
                0
            };
        let template = frame.template(&endpoints, max_len)?;
        let n = self.sends.get() + 1;
        self.sends.set(n);
        Ok(Sending {
            lab: self,
            from,
            template,
            count,
            name: format!("send-{n}"),
            redirect_to: None,
            output: None,
        })
    }
}

/// Frames about to be sent: give the verdict they must get with [`Sending::expect`], which
/// sends them, waits until the kernel has accounted for every one, and judges them the way
/// `xdplab run` does.
#[derive(Debug)]
pub struct Sending<'l> {
    lab: &'l Lab,
    from: EndName,
    template: FrameTemplate,
    count: u32,
    name: String,
    redirect_to: Option<EndName>,
    output: Option<OutputSpec>,
}

impl Sending<'_> {
    /// The group's name in failure messages (`send "dns": expected drop, ...`); default
    /// `send-N`, N counting the lab's sends from 1.
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// Where redirected frames must arrive (the interface the program redirects out of), for
    /// `expect(Verdict::Redirect)`; default: anywhere but the sender and the attach interface.
    pub fn redirect_to(mut self, interface: &str) -> Result<Self> {
        self.redirect_to = Some(self.lab.end(interface)?);
        Ok(self)
    }

    /// What the frames must look like where they come out of the program (for pass, tx and
    /// redirect), each field given compared, field by field in the failure text:
    ///
    /// ```no_run
    /// # use xdplab::{Frame, OutputSpec, Verdict};
    /// # fn main() -> xdplab::Result<()> {
    /// # let lab = xdplab::Lab::new()?;
    /// lab.send(Frame::ipv4().udp().dst_port(7), 100)?
    ///     .output(OutputSpec { swapped_macs: true, dst_port: Some(7), ..OutputSpec::default() })
    ///     .expect(Verdict::Tx)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn output(mut self, output: OutputSpec) -> Self {
        self.output = Some(output);
        self
    }

    /// Sends the frames and checks every one got `verdict`, by the three oracles (the
    /// program's counters where it has them, captures after XDP, the kernel's veth counters).
    /// A frame with another verdict, or an oracle that disagrees, is an
    /// [`Error::Expectation`] whose text is the CLI's.
    pub fn expect(self, verdict: Verdict) -> Result<Outcome> {
        let peer = self
            .lab
            .topology()
            .peer(&self.from)
            .map(|(end, _)| end.clone())
            .ok_or_else(|| Error::Usage(format!("send from {}: it has no peer", self.from)))?;
        let slot = self.lab.under_test(&peer)?;
        send_group(self.lab, &slot, &self, verdict)
    }

    /// The group as the engine plans it.
    pub(crate) fn plan(&self, verdict: Verdict) -> GroupPlan {
        GroupPlan {
            name: self.name.clone(),
            from: self.from.clone(),
            frames: vec![self.template.clone()],
            count: self.count,
            expect: verdict,
            redirect_to: self.redirect_to.clone(),
            output: self.output.clone(),
        }
    }
}

/// What a send that met its expectation observed.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub(crate) report: GroupReport,
}

impl Outcome {
    /// The full observation, as the JSON report carries it.
    pub fn report(&self) -> &GroupReport {
        &self.report
    }

    /// Frames the kernel accepted from the sender.
    pub fn sent(&self) -> u64 {
        self.report.sent
    }

    /// Frames that got `verdict`, by the engine's count.
    pub fn count(&self, verdict: Verdict) -> u64 {
        match verdict {
            Verdict::Aborted => self.report.aborted,
            Verdict::Drop => self.report.dropped,
            Verdict::Pass => self.report.passed,
            Verdict::Tx => self.report.tx,
            Verdict::Redirect => self.report.redirected,
        }
    }
}

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
            crate::topology::lab::random_run_id(),
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
        run_id: Some(crate::topology::lab::random_run_id()),
        keep_frames: 0,
    };
    let mut session = LiveSession::open(lab.topology(), under_test, &options)?;
    let outcome = session.send(&plan, &mut || {})?;
    let closed = session.close();
    let mut failures = outcome.failures;
    failures.extend(closed.failures);
    judged(failures, outcome.report)
}

/// The engine's judgement as a result: no failures, or all of them in their one text.
fn judged(failures: Vec<Failure>, report: GroupReport) -> Result<Outcome> {
    if failures.is_empty() {
        Ok(Outcome { report })
    } else {
        Err(failed(
            failures.iter().map(ToString::to_string).collect(),
            Some(report),
        ))
    }
}
