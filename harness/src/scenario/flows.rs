//! A scenario's `[[flow]]`s: after its send groups, with the program still attached, the lab's
//! own stacks talk through it ([`crate::flow`]); each flow is judged against its `expect`, and
//! reported per flow. The test-run path has no stacks to talk: flows are reported there as
//! skipped, with a note.

use crate::{
    engine::RunError,
    flow::{self, Ends, Flow, FlowReport, FlowStatus},
    report::ScenarioReport,
    scenario::{IfaceRef, Scenario},
    topology::{Topology, TopologySpec},
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

/// Runs the scenario's flows in `topology` and judges them into `report`.
pub(super) fn run(
    scenario: &Scenario,
    spec: &TopologySpec,
    topology: &Topology,
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
    // The same topology with no program, built for the first flow that compares with it, with
    // packet captures on every interface as the program's lab has (the session's): both
    // sides of a ratio pay for them.
    let mut baseline_lab: Option<(Topology, Vec<crate::observe::Capture>)> = None;
    for f in &scenario.flows {
        let mut measured = run_one(f, spec, topology)?;
        if f.flow.min_goodput_ratio.is_some() {
            if baseline_lab.is_none() {
                let lab = Topology::build(spec)?;
                full_checksums(&lab)?;
                warm_up(f, spec, &lab)?;
                let captures = lab
                    .interfaces()
                    .map(|(_, end)| {
                        crate::observe::Capture::start(
                            end,
                            lab.run_id(),
                            &crate::observe::CaptureOptions::default(),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| RunError::environment(e.to_string()))?;
                baseline_lab = Some((lab, captures));
            }
            let (lab, _) = baseline_lab.as_ref().expect("built above");
            let baseline = run_one(f, spec, lab)?;
            flow::with_baseline(&mut measured, baseline);
        }
        if let Some(failure) = flow::judge(&f.flow, &measured) {
            report
                .failures
                .push(format!("{}:{}: {failure}", scenario.path.display(), f.line));
        }
        report.flows.push(measured);
        crate::engine::error::interrupted()?;
    }
    if let Some((lab, captures)) = baseline_lab {
        // Closing packet sockets waits for RCU grace periods: in parallel.
        std::thread::scope(|scope| {
            for capture in captures {
                scope.spawn(move || drop(capture.finish()));
            }
        });
        drop(lab);
    }
    Ok(())
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
