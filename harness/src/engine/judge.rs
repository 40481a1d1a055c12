//! Judgement: what a group's observations mean against what the plan expected. Each check
//! turns observations into failure lines, the same text whichever front end (a scenario file
//! or a test through [`crate::api`]) made the plan; reports only render them.

use std::collections::BTreeMap;

use super::LISTED;
use super::failure::Failure;
use super::observation::{Attribution, Snapshot, Window};
use super::plan::GroupPlan;
use crate::{
    frame::{FrameTemplate, Tag},
    inject::InjectStats,
    kernel::program::XdpMode,
    observe::MIN_OBSERVABLE_VLAN_FRAME,
    report::{CounterCheck, GroupReport, Outcome},
    topology::EndName,
    verdict::Verdict,
    verdict::output::OutputSpec,
};

/// `nowhere: seq 0, 1, 2, ...; at ns:if: seq 7`
pub(crate) fn places_text(misplaced: &BTreeMap<String, Vec<u32>>) -> String {
    misplaced
        .iter()
        .map(|(place, seqs)| {
            let list: Vec<String> = seqs.iter().map(u32::to_string).collect();
            let more = if seqs.len() == LISTED { ", ..." } else { "" };
            format!("{place}: seq {}{more}", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a group's counts are known, for failure messages.
fn evidence(g: &GroupReport, attribution: Attribution) -> String {
    match attribution {
        Attribution::Tag | Attribution::TestRun => places_text(&g.misplaced),
        Attribution::TagAndContent => format!(
            "{}; frames without their tag attributed by content",
            places_text(&g.misplaced)
        ),
        Attribution::Content => "untagged frames, counted by content and window".to_owned(),
        Attribution::Kernel => format!(
            "counted by the veth XDP counters: the kernel frees VLAN frames shorter than \
             {MIN_OBSERVABLE_VLAN_FRAME} bytes before any capture"
        ),
        _ => format!(
            "counted by the program's drop_cnt/pass_cnt: the kernel frees VLAN frames shorter \
             than {MIN_OBSERVABLE_VLAN_FRAME} bytes before any capture"
        ),
    }
}

/// What is wrong with one live group: frames the sender could not send, frames that got
/// another verdict than expected, duplicates, losses before XDP, and disagreements with the
/// kernel's own counters (the second oracle).
pub(crate) fn group_failures(
    mode: XdpMode,
    g: &GroupReport,
    attribution: Attribution,
    stats: &InjectStats,
) -> Vec<Failure> {
    let mut failures = Vec::new();
    let name = &g.name;
    if stats.accepted < stats.offered {
        failures.push(Failure::Unsent {
            group: name.clone(),
            unsent: stats.offered - stats.accepted,
            offered: stats.offered,
            reason: stats
                .last_error
                .clone()
                .unwrap_or_else(|| "no error given".into()),
        });
    }
    if attribution == Attribution::None {
        failures.push(Failure::Unobservable {
            group: name.clone(),
        });
        return failures;
    }
    let got = |verdict: Verdict| match verdict {
        Verdict::Drop => g.dropped,
        Verdict::Aborted => g.aborted,
        Verdict::Pass => g.passed,
        Verdict::Tx => g.tx,
        Verdict::Redirect => g.redirected,
    };
    let right = if attribution == Attribution::Tag {
        g.outcomes
            .iter()
            .filter(|o| **o == expected_outcome(g.expect).comparable())
            .count() as u64
            - if matches!(g.expect, Verdict::Drop | Verdict::Aborted) {
                // "Nowhere" covers both; the tracepoint splits them.
                match g.expect {
                    Verdict::Drop => g.aborted,
                    _ => g.dropped,
                }
            } else {
                0
            }
    } else {
        got(g.expect)
    };
    if right < g.sent {
        let mut others: Vec<String> = [
            (Verdict::Drop, g.dropped),
            (Verdict::Aborted, g.aborted),
            (Verdict::Pass, g.passed),
            (Verdict::Tx, g.tx),
            (Verdict::Redirect, g.redirected),
        ]
        .iter()
        .filter(|(v, n)| *v != g.expect && *n > 0)
        .map(|(v, n)| format!("{n} {v}"))
        .collect();
        if others.is_empty() {
            others.push("unaccounted".into());
        }
        failures.push(Failure::WrongVerdict {
            group: name.clone(),
            expected: g.expect,
            wrong: g.sent - right,
            sent: g.sent,
            got: others.join(", "),
            evidence: evidence(g, attribution),
        });
    }
    if !g.duplicated.is_empty() {
        let seqs: Vec<String> = g.duplicated.iter().map(u32::to_string).collect();
        failures.push(Failure::Duplicated {
            group: name.clone(),
            seqs: seqs.join(", "),
        });
    }
    if g.kernel.sender_dropped > 0 {
        failures.push(Failure::LostBeforeXdp {
            group: name.clone(),
            lost: g.kernel.sender_dropped,
        });
    }
    // Background frames seen on the attach interface in this group's window passed XDP too:
    // the kernel counted them.
    let background = g.kernel.background;
    match (mode, &g.kernel.xdp) {
        (XdpMode::Native, Some(xdp)) => {
            if xdp.packets != g.sent + background {
                failures.push(Failure::XdpRan {
                    group: name.clone(),
                    ran: xdp.packets,
                    sent: g.sent,
                    background,
                });
            }
            let ours = (g.passed, g.dropped + g.aborted, g.tx, g.redirected);
            let kernel = (
                xdp.passed().saturating_sub(background),
                xdp.drops,
                xdp.tx,
                xdp.redirect,
            );
            if ours != kernel {
                failures.push(Failure::KernelDisagrees {
                    group: name.clone(),
                    kernel: kernel.into(),
                    captures: ours.into(),
                    background,
                });
            }
        }
        _ => {
            if g.kernel.received != g.sent + background {
                failures.push(Failure::Received {
                    group: name.clone(),
                    received: g.kernel.received,
                    sent: g.sent,
                    background,
                });
            }
        }
    }
    failures
}

/// Compares `drop_cnt`/`pass_cnt` over the run with the kernel's count of the same verdict.
///
/// In native mode the veth XDP counters cover every frame. In generic mode the driver has no
/// XDP counters, so the kernel side is the device's receive count minus what was captured
/// anywhere (and minus traced aborts) for drops, and what the capture saw on the attach
/// interface for passes; that only holds where frames can be captured, so windows of groups
/// the capture cannot see are left out (and said so in `source`).
pub(crate) fn check_counters(
    mode: XdpMode,
    attach: usize,
    windows: &[Window],
) -> Vec<CounterCheck> {
    let delta = |now: Option<u64>, then: Option<u64>| Some(now? - then?);
    let counted: Vec<&Window> = windows
        .iter()
        .filter(|w| mode == XdpMode::Native || w.attribution.sees_frames())
        .collect();
    if counted.is_empty() {
        return Vec::new();
    }
    let skipped = windows.len() - counted.len();
    let sum = |f: &dyn Fn(&Snapshot, &Snapshot) -> Option<u64>| -> Option<u64> {
        counted.iter().map(|w| f(&w.before, &w.after)).sum()
    };
    let at = |s: &Snapshot| s.ifaces[attach].clone();
    let xdp_drops = sum(&|b, a| Some(at(a).xdp.since(&at(b).xdp).drops));
    let xdp_passed = sum(&|b, a| Some(at(a).xdp.since(&at(b).xdp).passed()));
    let aborted = sum(&|b, a| Some(a.aborted - b.aborted));
    // Generic mode: everything the device received that was seen nowhere and not aborted.
    let unseen: u64 = counted
        .iter()
        .map(|w| {
            let g = &w.counts;
            (g.received - g.background.min(g.received))
                .saturating_sub(g.passed + g.tx + g.redirected + g.aborted)
        })
        .sum();
    let passed: u64 = counted.iter().map(|w| w.counts.passed).sum();
    let note = |source: &str| {
        if skipped > 0 {
            format!(
                "{source} (over the {} group(s) a capture can see)",
                counted.len()
            )
        } else {
            source.to_owned()
        }
    };
    let mut checks = Vec::new();
    if let Some(program) = sum(&|b, a| delta(a.drop_cnt, b.drop_cnt)) {
        let (kernel, source) = match mode {
            XdpMode::Native => (
                xdp_drops.unwrap_or(0).saturating_sub(aborted.unwrap_or(0)),
                note("veth rx_xdp_drops - traced aborts"),
            ),
            XdpMode::Generic => (
                unseen,
                note("veth rx_packets - frames seen anywhere - traced aborts"),
            ),
        };
        checks.push(CounterCheck {
            map: "drop_cnt".into(),
            program,
            kernel,
            source,
            ok: program == kernel,
        });
    }
    if let Some(program) = sum(&|b, a| delta(a.pass_cnt, b.pass_cnt)) {
        let (kernel, source) = match mode {
            XdpMode::Native => (xdp_passed.unwrap_or(0), note("veth rx_xdp_packets - drops")),
            XdpMode::Generic => (passed, note("captured after XDP")),
        };
        checks.push(CounterCheck {
            map: "pass_cnt".into(),
            program,
            kernel,
            source,
            ok: program == kernel,
        });
    }
    checks
}

/// Compares every frame that came out with what the group's `output` says of it, against the
/// frame as it was sent (tag included).
pub(crate) fn check_outputs(
    name: &str,
    output: Option<&OutputSpec>,
    templates: &[FrameTemplate],
    run_id: u32,
    index: u16,
    outputs: &BTreeMap<u32, Vec<u8>>,
) -> Vec<String> {
    let Some(spec) = output else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut sent = Vec::new();
    for (&seq, received) in outputs {
        let template = &templates[seq as usize % templates.len()];
        template.write(
            Tag {
                run_id,
                group: index,
                seq,
            },
            &mut sent,
        );
        // The tag where it sits in the frame that came out: headers pushed or popped in front
        // of it moved it.
        let tag_at = Tag::locate(received, run_id).map(|(at, _)| at);
        let mismatches = spec.check(&sent, received, tag_at);
        if !mismatches.is_empty() && problems.len() < LISTED {
            let fields: Vec<String> = mismatches
                .iter()
                .map(|m| format!("{} expected {}, got {}", m.field, m.expected, m.actual))
                .collect();
            problems.push(format!(
                "send {name:?} seq {seq}: output {}",
                fields.join("; ")
            ));
        }
    }
    problems
}

/// An output check that could not be made is a failure, never a silent pass: frames that came
/// out where the verdict puts them, `landed` of them, each need their bytes checked.
pub(crate) fn unchecked_outputs(
    plan: &GroupPlan,
    g: &GroupReport,
    attribution: Attribution,
    landed: u64,
    place: &EndName,
) -> Option<String> {
    plan.output.as_ref()?;
    let checked = g.outputs.len() as u64;
    if checked >= landed {
        return None;
    }
    let why = match attribution {
        Attribution::Kernel | Attribution::Program => format!(
            "the kernel frees VLAN frames shorter than {MIN_OBSERVABLE_VLAN_FRAME} bytes before \
             any capture, so only counters saw them"
        ),
        Attribution::Content => format!(
            "they carry no tag and the capture could not keep them in order (more than {} \
             untagged frames, or {} MiB per interface, {} MiB per session, in the run); send \
             fewer or larger frames",
            crate::observe::ARRIVALS_KEEP,
            crate::observe::ARRIVALS_KEEP_BYTES >> 20,
            super::plan::SESSION_KEEP_BYTES >> 20
        ),
        _ => "their bytes were not kept by the capture".to_owned(),
    };
    Some(format!(
        "send {:?}: output not checked for {} of {landed} frames that came out at {place}: {why}",
        plan.name,
        landed - checked
    ))
}

/// Says which content rules attributed a group's frames, for people (the JSON report has
/// `attribution_rules`). Frames matched by their exact bytes, the usual case for frames too
/// small for a tag, need no note.
pub(crate) fn content_note(g: &GroupReport, place: Option<&EndName>) -> Option<String> {
    if g.attribution_rules.keys().all(|rule| rule == "exact") {
        return None;
    }
    let rules: Vec<String> = g
        .attribution_rules
        .iter()
        .map(|(rule, n)| {
            let meaning = crate::observe::attribute::ContentRule::ALL
                .iter()
                .find(|r| r.as_str() == rule)
                .map_or_else(
                    || {
                        format!(
                            "untagged frames counted at {} in the group's window, taken in \
                             arrival order",
                            place.map_or_else(|| "-".to_owned(), ToString::to_string)
                        )
                    },
                    |r| r.describe().to_owned(),
                );
            format!("{n} by {rule}: {meaning}")
        })
        .collect();
    Some(format!(
        "send {:?}: frames without a tag of this run attributed by content: {}",
        g.name,
        rules.join("; ")
    ))
}

pub(crate) fn expected_outcome(verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Drop => Outcome::Drop,
        Verdict::Aborted => Outcome::Aborted,
        Verdict::Pass => Outcome::Pass,
        Verdict::Tx => Outcome::Tx,
        Verdict::Redirect => Outcome::Redirect,
    }
}
