//! A scenario's `[[flow]]`s: after its send groups, with the program still attached, the lab's
//! own stacks talk through it ([`crate::flow`]); each flow is judged against its `expect`, and
//! reported per flow. The test-run path has no stacks to talk: flows are reported there as
//! skipped, with a note.

use crate::{
    engine::RunError,
    flow::{self, Compare, Ends, Flow, FlowReport, FlowStatus},
    kernel::program::{Attachment, ObjectSource, Program, XdpMode},
    observe::{DriverStats, LinkStats},
    report::ScenarioReport,
    scenario::{IfaceRef, Scenario},
    topology::{EndName, Topology, TopologySpec},
};

/// One `[[flow]]` table, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowSpec {
    /// What to send and what it should come to.
    pub flow: Flow,
    /// The interface whose namespace sends (pings, connects, streams, requests); default the
    /// interface `[[send]]` groups send from.
    pub from: IfaceRef,
    /// The interface whose address the flow goes to, in the namespace that answers; default
    /// the peer of `from`.
    pub to: IfaceRef,
    /// Over IPv6 (the `to` interface's IPv6 address) rather than IPv4.
    pub ipv6: bool,
    /// Line of the `[[flow]]` header.
    pub line: usize,
}

/// Runs the scenario's flows in `topology` (the program under test attached at `attach` in
/// `mode`) and judges them into `report`.
pub(super) fn run(
    scenario: &Scenario,
    spec: &TopologySpec,
    topology: &Topology,
    under_test: (&EndName, XdpMode),
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    if scenario.flows.is_empty() {
        return Ok(());
    }
    report.notes.push(
        "the flows' own frames carry no tag: the frames counted in no group include them".into(),
    );
    full_checksums(topology)?;
    report.notes.push(
        "transmit checksum offload turned off on the lab's interfaces for the flows, so that \
         their packets carry full checksums as on a wire"
            .into(),
    );
    // The same topology with no program, and with xdp_pass, each built for the first flow
    // that compares with it.
    let mut no_program: Option<OtherLab> = None;
    let mut xdp_pass: Option<OtherLab> = None;
    let seen = SeenAt::open(topology, under_test)?;
    // The windows are contiguous: a frame that comes late (a delayed ACK) counts for the
    // next flow, or, after the last, for the last (below), so that the flows' frames add up
    // to every frame the program ran on after the send groups (the warm-up burst below
    // included: it counts for the first flow).
    let mut last = seen.read()?;
    // The comparison labs are warmed up before their first flow: so is this one, or the
    // program would pay alone for what a fresh lab's first packets cost.
    if let Some(f) = scenario.flows.iter().find(|f| !f.flow.compare.is_empty()) {
        settle(f, spec, topology)?;
    }
    for f in &scenario.flows {
        let before = last;
        let mut measured = run_one(f, spec, topology)?;
        last = seen.settled()?;
        measured.frames = Some(seen.frames(f, spec, &measured, before, last)?);
        if f.flow.min_goodput_ratio.is_some() || f.flow.compare.contains(&Compare::NoProgram) {
            if no_program.is_none() {
                no_program = Some(OtherLab::build(f, spec, None)?);
            }
            let lab = no_program.as_ref().expect("built above");
            let baseline = run_one(f, spec, &lab.topology)?;
            flow::with_baseline(&mut measured, baseline);
        }
        if f.flow.compare.contains(&Compare::XdpPass) {
            if xdp_pass.is_none() {
                xdp_pass = Some(OtherLab::build(f, spec, Some(under_test))?);
            }
            let lab = xdp_pass.as_ref().expect("built above");
            let passed = run_one(f, spec, &lab.topology)?;
            flow::with_xdp_pass(&mut measured, passed);
        }
        if !f.flow.compare.is_empty() {
            flow::compare(&mut measured);
        }
        for failure in [
            flow::judge(&f.flow, &measured),
            flow::reconcile(&f.flow, &measured),
        ]
        .into_iter()
        .flatten()
        {
            report
                .failures
                .push(format!("{}:{}: {failure}", scenario.path.display(), f.line));
        }
        report.flows.push(measured);
        crate::engine::error::interrupted()?;
    }
    let tail = seen.quiet()?;
    if let Some(frames) = report.flows.last_mut().and_then(|f| f.frames.as_mut()) {
        frames.seen += tail.0.saturating_sub(last.0);
        frames.ring_drops += tail.1.saturating_sub(last.1);
    }
    std::thread::scope(|scope| {
        for lab in [no_program, xdp_pass].into_iter().flatten() {
            scope.spawn(move || lab.finish());
        }
    });
    Ok(())
}

/// The kernel's count of the frames the program under test ran on, at its interface: the
/// veth's `rx_xdp_packets` (and the ring's drops before XDP) in native mode, its `rx_packets`
/// in generic mode (a veth counts a frame there as its peer hands it over, and generic XDP
/// runs on every frame it receives). Flows run one at a time in a lab that sends nothing
/// else (static neighbours), so the change across a flow is that flow's frames.
struct SeenAt<'t> {
    at: &'t EndName,
    peer: &'t EndName,
    mode: XdpMode,
    driver: DriverStats,
    link: LinkStats,
}

impl<'t> SeenAt<'t> {
    fn open(topology: &'t Topology, (at, mode): (&'t EndName, XdpMode)) -> Result<Self, RunError> {
        let environment = |e: crate::observe::ObserveError| RunError::environment(e.to_string());
        let end = topology
            .interface(&at.netns, Some(&at.interface))
            .map(|(_, end)| end)
            .ok_or_else(|| RunError::input(format!("{at} is not in the topology")))?;
        let (peer, _) = topology
            .peer(at)
            .ok_or_else(|| RunError::input(format!("{at} has no peer")))?;
        Ok(Self {
            at,
            peer,
            mode,
            driver: DriverStats::open(end).map_err(environment)?,
            link: LinkStats::open(end).map_err(environment)?,
        })
    }

    /// Frames the program ran on so far, and frames the veth dropped before it.
    fn read(&self) -> Result<(u64, u64), RunError> {
        let environment = |e: crate::observe::ObserveError| RunError::environment(e.to_string());
        if self.mode == XdpMode::Native {
            let x = self.driver.xdp().map_err(environment)?;
            Ok((x.packets, x.ring_drops))
        } else {
            Ok((self.link.read().map_err(environment)?.rx_packets, 0))
        }
    }

    /// [`SeenAt::read`] once it stopped moving (at most 200 ms): in native mode XDP runs in
    /// the veth's NAPI poll, after the sender's socket call returned.
    fn settled(&self) -> Result<(u64, u64), RunError> {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
        let mut last = self.read()?;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(2));
            let now = self.read()?;
            if now == last || std::time::Instant::now() >= until {
                return Ok(now);
            }
            last = now;
        }
    }

    /// [`SeenAt::read`] once nothing moved for 60 ms (at most 500 ms): after the last flow,
    /// past a delayed ACK's 40 ms.
    fn quiet(&self) -> Result<(u64, u64), RunError> {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
        let mut last = self.read()?;
        let mut still_since = std::time::Instant::now();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let now = self.read()?;
            if now != last {
                last = now;
                still_since = std::time::Instant::now();
            }
            if still_since.elapsed() >= std::time::Duration::from_millis(60)
                || std::time::Instant::now() >= until
            {
                return Ok(last);
            }
        }
    }

    /// The flow's frames between two readings, against what its sockets sent toward the
    /// program (which way: by the namespace of the program's interface's peer).
    fn frames(
        &self,
        f: &FlowSpec,
        spec: &TopologySpec,
        report: &FlowReport,
        before: (u64, u64),
        after: (u64, u64),
    ) -> Result<flow::FlowFrames, RunError> {
        let from = super::plan::resolve(spec, &f.from)?;
        let to = super::plan::resolve(spec, &f.to)?;
        let (direction, sockets_sent, counted) = if self.peer.netns == from.netns {
            ("forward", report.wire.forward, report.wire.forward_what)
        } else if self.peer.netns == to.netns {
            ("reverse", report.wire.reverse, report.wire.reverse_what)
        } else {
            (
                "none",
                0,
                "nothing: the program's interface is on neither end's side",
            )
        };
        Ok(flow::FlowFrames {
            at: self.at.to_string(),
            seen: after.0.saturating_sub(before.0),
            ring_drops: after.1.saturating_sub(before.1),
            direction,
            sockets_sent,
            counted,
        })
    }
}

/// A lab built only for flows to compare with: the same topology, with no program or with the
/// bundled `xdp_pass` where the program under test is, and packet captures on every interface
/// as the program's lab has (the session's): every side of a ratio pays for them.
struct OtherLab {
    // Dropped in this order if a flow fails on the way: detached, captures closed, lab
    // removed.
    program: Option<(Program, Attachment)>,
    captures: Vec<crate::observe::Capture>,
    topology: Topology,
}

impl OtherLab {
    /// Builds it for `f` (warmed up for its ends), with `xdp_pass` at `pass_at` if given.
    fn build(
        f: &FlowSpec,
        spec: &TopologySpec,
        pass_at: Option<(&EndName, XdpMode)>,
    ) -> Result<Self, RunError> {
        let topology = Topology::build(spec)?;
        full_checksums(&topology)?;
        let program = match pass_at {
            Some((at, mode)) => {
                let end = topology
                    .interface(&at.netns, Some(&at.interface))
                    .map(|(_, end)| end)
                    .ok_or_else(|| RunError::input(format!("{at} is not in the topology")))?;
                let mut program =
                    Program::load(&ObjectSource::Bundled("xdp_pass".into()), "xdp_pass")?;
                let attachment = program.attach(end, mode)?;
                Some((program, attachment))
            }
            None => None,
        };
        warm_up(f, spec, &topology)?;
        settle(f, spec, &topology)?;
        let captures = topology
            .interfaces()
            .map(|(_, end)| {
                crate::observe::Capture::start(
                    end,
                    topology.run_id(),
                    &crate::observe::CaptureOptions::default(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RunError::environment(e.to_string()))?;
        Ok(Self {
            program,
            captures,
            topology,
        })
    }

    /// Closes its captures (in parallel: closing a packet socket waits for an RCU grace
    /// period), detaches `xdp_pass` and removes the lab.
    fn finish(self) {
        std::thread::scope(|scope| {
            for capture in self.captures {
                scope.spawn(move || drop(capture.finish()));
            }
        });
        if let Some((program, attachment)) = self.program {
            if let Err(e) = attachment.detach() {
                eprintln!("failed to detach xdp_pass from a comparison lab: {e}");
            }
            drop(program);
        }
        drop(self.topology);
    }
}

/// Turns transmit checksum offload off on every interface of `topology`: a veth otherwise
/// hands over TCP and UDP packets with their checksum still to compute, which a program that
/// redirects or sends back in driver mode passes on unfinished (see
/// [`crate::kernel::veth::set_tx_checksum`]).
fn full_checksums(topology: &Topology) -> Result<(), RunError> {
    for (_, end) in topology.interfaces() {
        crate::kernel::veth::set_tx_checksum(end, false)
            .map_err(|e| RunError::environment(e.to_string()))?;
    }
    Ok(())
}

/// Waits (at most 2 s) until `f`'s ends in a fresh `topology` answer a ping: a veth that was
/// just brought up drops what it is given until the kernel has activated its queue, and a
/// SYN lost there costs TCP a one-second retransmission, which would be measured as the
/// baseline's goodput.
fn warm_up(f: &FlowSpec, spec: &TopologySpec, topology: &Topology) -> Result<(), RunError> {
    let mut ping = FlowSpec {
        flow: Flow::new("warm-up", flow::FlowKind::Ping),
        ..f.clone()
    };
    ping.flow.count = 1;
    ping.flow.timeout = std::time::Duration::from_millis(50);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < until {
        if run_one(&ping, spec, topology)?.status == FlowStatus::Complete {
            break;
        }
    }
    Ok(())
}

/// Runs an unmeasured burst of 50 pings 1 ms apart between `f`'s ends, in every lab a flow
/// is compared in, before its first compared flow: the first flow after a lab was built (or
/// after its send groups) measured round trips two to three times longer than the next one
/// in the same lab, which a ratio would have charged to the program.
fn settle(f: &FlowSpec, spec: &TopologySpec, topology: &Topology) -> Result<(), RunError> {
    let mut ping = FlowSpec {
        flow: Flow::new("settle", flow::FlowKind::Ping),
        ..f.clone()
    };
    ping.flow.count = 50;
    ping.flow.interval = std::time::Duration::from_millis(1);
    ping.flow.timeout = std::time::Duration::from_millis(50);
    run_one(&ping, spec, topology).map(drop)
}

/// Runs one flow in `topology`.
fn run_one(f: &FlowSpec, spec: &TopologySpec, topology: &Topology) -> Result<FlowReport, RunError> {
    let end = |r: &IfaceRef| {
        let name = super::plan::resolve(spec, r)?;
        topology
            .interface(&name.netns, Some(&name.interface))
            .map(|(_, end)| end)
            .ok_or_else(|| RunError::input(format!("{name} is not in the topology")))
    };
    let (from, to) = (end(&f.from)?, end(&f.to)?);
    let dst = if f.ipv6 {
        to.ipv6().into()
    } else {
        to.ipv4().into()
    };
    let ends = Ends {
        from: from.netns(),
        to: to.netns(),
        dst,
    };
    flow::run(&f.flow, &ends).map_err(|e| RunError::environment(e.to_string()))
}

/// Reports every flow as skipped on a path without stacks (test-run).
pub(super) fn skip(scenario: &Scenario, report: &mut ScenarioReport) {
    if scenario.flows.is_empty() {
        return;
    }
    report.notes.push(format!(
        "{} flow(s) not run: BPF_PROG_TEST_RUN has no network stacks to talk through the program",
        scenario.flows.len()
    ));
    report.flows.extend(
        scenario
            .flows
            .iter()
            .map(|f| FlowReport::empty(&f.flow, FlowStatus::Skip)),
    );
}
