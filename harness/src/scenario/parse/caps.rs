//! The caps on the work one scenario may ask for, checked once the file is parsed: how many
//! frames, groups, flows, steps and map checks, how much of it is held in memory, and how long
//! its declared waits add up to. Each key already has its own range; these caps bound the
//! totals, so that the memory and time a run of any scenario takes are bounded by what they
//! allow (docs/scenario-format.md, "Caps", states the worst case).
//!
//! A scenario over a cap is bad input (exit 2), reported at the line of the table that crosses
//! it, before anything is built.

use std::time::Duration;

use super::super::schema::{FrameSource, Scenario, StepAction, format_duration};
use super::{ScenarioError, Source};
use crate::input::InputKind;

/// Send groups in one scenario (`[[send]]` tables or send steps): the tag's group field is 16
/// bits.
pub const MAX_SEND_GROUPS: usize = 1 << 16;
/// Frames one scenario sends over all its groups (a group alone: `count` up to the same).
pub const MAX_FRAMES: u64 = 10_000_000;
/// Bytes of the frames kept for output checks: a group with `output` keeps the first copy of
/// every frame it sends, so `count` × the frame's length may not exceed this, over all groups.
pub const MAX_KEPT_BYTES: u64 = 256 << 20;
/// `[[flow]]` tables.
pub const MAX_FLOWS: usize = 64;
/// `[[step]]` tables.
pub const MAX_STEPS: usize = 1024;
/// `[[setup.map]]` and `[[expect.map]]` entries together, and `[[expect.event]]` entries.
pub const MAX_MAP_CHECKS: usize = 4096;
/// Entries of the `[[netns]]` tables together (sysctls, addresses, routes, neighbours).
pub const MAX_NETNS_ENTRIES: usize = 4096;
/// What the scenario's own durations add up to: sleeps, every flow's deadline (twice with a
/// baseline: the flow runs again with no program) and the throughput window (six times: three
/// interleaved rounds of the program and its baseline).
pub const MAX_DECLARED_TIME: Duration = Duration::from_secs(15 * 60);

/// Checks `scenario` against every cap.
pub(super) fn check(src: &Source<'_>, scenario: &Scenario) -> Result<(), ScenarioError> {
    if let Some(extra) = scenario.sends.get(MAX_SEND_GROUPS) {
        return Err(src.invalid(
            extra.line,
            format!("too many send groups: at most {MAX_SEND_GROUPS}"),
        ));
    }
    let (mut frames, mut kept, mut pcap_bytes) = (0u64, 0u64, 0u64);
    let pcap_cap = InputKind::Capture.cap();
    for group in &scenario.sends {
        frames += u64::from(group.count);
        if frames > MAX_FRAMES {
            return Err(src.invalid(
                group.line,
                format!(
                    "send group {:?}: the scenario's groups send {frames} frames up to here, at \
                     most {MAX_FRAMES} in one scenario",
                    group.name
                ),
            ));
        }
        let longest = match &group.frames {
            FrameSource::Spec(spec) => spec.validate(usize::MAX).map_or(0, |s| s.len as u64),
            FrameSource::Pcap { frames, .. } => {
                // Each group holds its own copy of the file's frames.
                pcap_bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
                if pcap_bytes > pcap_cap {
                    return Err(src.invalid(
                        group.line,
                        format!(
                            "send group {:?}: the frames read from pcap files come to {pcap_bytes} \
                             bytes up to here, at most {pcap_cap} in one scenario (set {}=BYTES \
                             to change the cap)",
                            group.name,
                            InputKind::Capture.env()
                        ),
                    ));
                }
                frames.iter().map(|f| f.len() as u64).max().unwrap_or(0)
            }
        };
        if group.output.is_some() {
            kept += u64::from(group.count) * longest;
            if kept > MAX_KEPT_BYTES {
                return Err(src.invalid(
                    group.line,
                    format!(
                        "send group {:?}: output checks keep every frame they check, {kept} bytes \
                         up to here, at most {MAX_KEPT_BYTES} in one scenario (send fewer frames \
                         in groups with `output`)",
                        group.name
                    ),
                ));
            }
        }
    }
    if let Some(extra) = scenario.flows.get(MAX_FLOWS) {
        return Err(src.invalid(extra.line, format!("too many flows: at most {MAX_FLOWS}")));
    }
    if let Some(extra) = scenario.steps.get(MAX_STEPS) {
        return Err(src.invalid(extra.line, format!("too many steps: at most {MAX_STEPS}")));
    }
    let map_checks = scenario.map_setup.len() + scenario.map_expects.len();
    if map_checks > MAX_MAP_CHECKS {
        let line = scenario
            .map_expects
            .last()
            .map(|e| e.line)
            .or_else(|| scenario.map_setup.last().map(|s| s.line))
            .unwrap_or(1);
        return Err(src.invalid(
            line,
            format!(
                "too many map entries to set up and check ({map_checks}): at most {MAX_MAP_CHECKS}"
            ),
        ));
    }
    if let Some(extra) = scenario.event_expects.get(MAX_MAP_CHECKS) {
        return Err(src.invalid(
            extra.line,
            format!("too many event expectations: at most {MAX_MAP_CHECKS}"),
        ));
    }
    let mut entries = 0;
    for ns in &scenario.netns {
        entries += ns.sysctls.len() + ns.addresses.len() + ns.routes.len() + ns.neighbours.len();
        if entries > MAX_NETNS_ENTRIES {
            return Err(src.invalid(
                ns.line,
                format!(
                    "[[netns]] {:?}: the namespaces' sysctls, addresses, routes and neighbours \
                     come to {entries} up to here, at most {MAX_NETNS_ENTRIES}",
                    ns.name
                ),
            ));
        }
    }
    let mut time = Duration::ZERO;
    let over = |time: Duration, line: usize, what: &str| {
        (time > MAX_DECLARED_TIME).then(|| {
            src.invalid(
                line,
                format!(
                    "{what}: the scenario's sleeps, flows and throughput windows may take {} up to \
                     here, at most {} in one scenario",
                    format_duration(time),
                    format_duration(MAX_DECLARED_TIME)
                ),
            )
        })
    };
    for step in &scenario.steps {
        if let StepAction::Sleep { duration } = step.action {
            time += duration;
            if let Some(e) = over(time, step.line, "sleep") {
                return Err(e);
            }
        }
    }
    for spec in &scenario.flows {
        let runs = if spec.flow.min_goodput_ratio.is_some() {
            2
        } else {
            1
        };
        time += spec.flow.deadline() * runs;
        if let Some(e) = over(time, spec.line, &format!("flow {:?}", spec.flow.name)) {
            return Err(e);
        }
    }
    if let Some(t) = &scenario.throughput {
        time += t.duration * 6;
        if let Some(e) = over(time, t.line, "[throughput]") {
            return Err(e);
        }
    }
    Ok(())
}
