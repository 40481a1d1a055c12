//! Observation: which frames of a group landed where, read from the captures after XDP on
//! every interface and from the kernel's counters. Frames are attributed by their tag where
//! it survives, by content ([`crate::observe::attribute`]'s rules) where the program changed or cut
//! them, and by counters only where no capture can see them.

use std::collections::BTreeMap;

use super::LISTED;
use super::observation::{Attribution, Snapshot, empty_group};
use super::plan::GroupPlan;
use crate::{
    frame::FrameTemplate,
    inject::InjectStats,
    kernel::program::XdpMode,
    observe::{Captured, observable_after_xdp},
    report::{GroupReport, KernelView, Outcome},
    topology::EndName,
};

/// Interfaces of a live run by index.
pub(crate) struct Places<'a> {
    pub(crate) names: &'a [EndName],
    pub(crate) attach: usize,
    pub(crate) peer: usize,
}

impl Places<'_> {
    fn outcome(&self, at: usize) -> Outcome {
        if at == self.attach {
            Outcome::Pass
        } else if at == self.peer {
            Outcome::Tx
        } else {
            Outcome::Redirect
        }
    }
}

/// Claims the untagged frames that arrived in `window` on `captured`'s interface and derive
/// from one of `templates` ([`crate::observe::attribute`]'s rules), at most `limit`, in arrival order;
/// claimed frames no longer count as background.
pub(crate) fn claim_content(
    captured: &mut Captured,
    window: std::ops::Range<u64>,
    templates: &[FrameTemplate],
    limit: usize,
) -> Vec<(Vec<u8>, &'static str)> {
    let sent: Vec<(&[u8], Vec<std::ops::Range<usize>>)> = templates
        .iter()
        .map(|t| (t.bytes(), t.per_copy()))
        .collect();
    let claims =
        crate::observe::attribute::claim(&captured.untagged_arrivals, window, &sent, limit);
    claims
        .into_iter()
        .map(|c| {
            let bytes = captured.untagged_arrivals[c.arrival].1.clone();
            forget_untagged(captured, &bytes);
            (bytes, c.rule.as_str())
        })
        .collect()
}

/// Takes one frame with these bytes out of the capture's background count.
pub(crate) fn forget_untagged(captured: &mut Captured, bytes: &[u8]) {
    if let Some(n) = captured.untagged.get_mut(bytes) {
        *n -= 1;
        if *n == 0 {
            captured.untagged.remove(bytes);
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one group's inputs and observations, used once"
)]
pub(crate) fn observe_group(
    mode: XdpMode,
    index: usize,
    group: &GroupPlan,
    stats: &InjectStats,
    before: &Snapshot,
    after: &Snapshot,
    from: usize,
    expected_at: Option<usize>,
    places: &Places<'_>,
    captured: &mut [(EndName, Captured)],
) -> (GroupReport, Attribution) {
    let templates = group.frames.as_slice();
    let sent = stats.accepted;
    let mut g = empty_group(&group.name, group.expect, stats);
    let window: Vec<u64> = after
        .ifaces
        .iter()
        .zip(&before.ifaces)
        .map(|(a, b)| a.captured - b.captured)
        .collect();
    let tagged = templates.iter().all(FrameTemplate::is_tagged);
    let mut seen_here = vec![0u64; places.names.len()];
    let arrived = |i: usize| before.ifaces[i].captured..after.ifaces[i].captured;
    let attribution = if tagged {
        // Frames that came out where expected without their tag (cut off by the program) are
        // claimed by content, in arrival order, for the sequence numbers no tag was seen of.
        let mut by_content: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        if let Some(e) = expected_at {
            let unseen: Vec<usize> = (0..group.count as usize)
                .filter(|&seq| captured.iter().all(|(_, c)| c.times_seen(index, seq) == 0))
                .collect();
            if !unseen.is_empty() {
                let claims = claim_content(&mut captured[e].1, arrived(e), templates, unseen.len());
                for (&seq, (bytes, rule)) in unseen.iter().zip(claims) {
                    *g.attribution_rules.entry(rule.into()).or_default() += 1;
                    by_content.insert(seq, bytes);
                }
            }
        }
        for seq in 0..group.count as usize {
            let at: Vec<usize> = match (by_content.contains_key(&seq), expected_at) {
                (true, Some(e)) => vec![e],
                _ => captured
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, c))| c.times_seen(index, seq) > 0)
                    .map(|(i, _)| i)
                    .collect(),
            };
            let outcome = match at.as_slice() {
                [] => Outcome::Nowhere,
                [i] => places.outcome(*i),
                _ => Outcome::Multiple,
            };
            for &i in &at {
                seen_here[i] += 1;
                if captured[i].1.times_seen(index, seq) > 1 && g.duplicated.len() < LISTED {
                    g.duplicated.push(seq as u32);
                }
            }
            let right = match (expected_at, at.as_slice()) {
                (None, []) => true,
                (Some(e), [i]) => *i == e,
                _ => false,
            };
            if !right {
                if expected_at.is_some_and(|e| !at.contains(&e)) && g.missing.len() < LISTED {
                    g.missing.push(seq as u32);
                }
                if !at.is_empty() && g.leaked.len() < LISTED {
                    g.leaked.push(seq as u32);
                }
                let place = if at.is_empty() {
                    "nowhere".to_owned()
                } else {
                    let wheres: Vec<String> =
                        at.iter().map(|i| places.names[*i].to_string()).collect();
                    format!("at {}", wheres.join(" and "))
                };
                let seqs = g.misplaced.entry(place).or_default();
                if seqs.len() < LISTED {
                    seqs.push(seq as u32);
                }
            }
            if group.output.is_some()
                && let Some(e) = expected_at
                && let Some(bytes) = captured[e]
                    .1
                    .kept
                    .get(&(index as u16, seq as u32))
                    .or_else(|| by_content.get(&seq))
            {
                g.outputs.insert(seq as u32, bytes.clone());
            }
            g.outcomes.push(outcome);
        }
        if by_content.is_empty() {
            Attribution::Tag
        } else {
            Attribution::TagAndContent
        }
    } else {
        g.outcomes = vec![Outcome::Unknown; group.count as usize];
        let observable = templates.iter().all(|t| observable_after_xdp(t.bytes()));
        if observable {
            // Without tags, frames that pass arrive unchanged at the attach interface, where
            // their exact bytes must match. Elsewhere only the group's window can count them,
            // and the lab's stacks answer some frames (ARP replies, TCP resets) into the same
            // window, so only the place the expectation names is counted there, bounded in
            // native mode by the kernel's own XDP_TX/XDP_REDIRECT counts. A frame that goes
            // elsewhere unexpectedly is then "nowhere", and the native kernel oracle, which
            // counts every action, still catches it.
            let xdp = after.ifaces[places.attach]
                .xdp
                .since(&before.ifaces[places.attach].xdp);
            if let Some(e) = expected_at
                && e != places.attach
            {
                seen_here[e] = match mode {
                    XdpMode::Native if e == places.peer => window[e].min(xdp.tx),
                    XdpMode::Native => window[e].min(xdp.redirect),
                    XdpMode::Generic => window[e],
                };
                // Their bytes, in arrival order, are what came out: the outputs to check.
                let c = &mut captured[e].1;
                let landed: Vec<Vec<u8>> = c
                    .untagged_arrivals
                    .iter()
                    .filter(|(at, _)| arrived(e).contains(at))
                    .take(seen_here[e] as usize)
                    .map(|(_, bytes)| bytes.clone())
                    .collect();
                for (seq, bytes) in landed.into_iter().enumerate() {
                    forget_untagged(c, &bytes);
                    *g.attribution_rules.entry("window".into()).or_default() += 1;
                    if group.output.is_some() {
                        g.outputs.insert(seq as u32, bytes);
                    }
                }
            }
            let c = &mut captured[places.attach].1;
            if c.arrivals_overflow == 0 {
                // Passed frames, changed or not, claimed by the content rules.
                let claims =
                    claim_content(c, arrived(places.attach), templates, group.count as usize);
                seen_here[places.attach] = claims.len() as u64;
                for (seq, (bytes, rule)) in claims.into_iter().enumerate() {
                    *g.attribution_rules.entry(rule.into()).or_default() += 1;
                    if expected_at == Some(places.attach) && group.output.is_some() {
                        g.outputs.insert(seq as u32, bytes);
                    }
                }
            } else {
                // Too many untagged frames to keep them in order: exact bytes only.
                let mut matched = 0;
                for t in templates {
                    if let Some(n) = c.untagged.remove(t.bytes()) {
                        matched += n;
                    }
                }
                seen_here[places.attach] = matched.min(window[places.attach]);
                if matched > 0 {
                    *g.attribution_rules.entry("exact".into()).or_default() += matched;
                }
            }
            Attribution::Content
        } else {
            // The kernel frees these before any capture; only counters can tell.
            let delta = |now: Option<u64>, then: Option<u64>| Some(now? - then?);
            let xdp = after.ifaces[places.attach]
                .xdp
                .since(&before.ifaces[places.attach].xdp);
            match mode {
                XdpMode::Native => {
                    seen_here[places.attach] = xdp.passed().saturating_sub(window[places.attach]);
                    seen_here[places.peer] = xdp.tx;
                    Attribution::Kernel
                }
                XdpMode::Generic => match (
                    delta(after.pass_cnt, before.pass_cnt),
                    delta(after.drop_cnt, before.drop_cnt),
                ) {
                    (Some(passed), _) => {
                        seen_here[places.attach] = passed;
                        Attribution::Program
                    }
                    (None, Some(dropped)) => {
                        seen_here[places.attach] = sent.saturating_sub(dropped);
                        Attribution::Program
                    }
                    (None, None) => Attribution::None,
                },
            }
        }
    };
    for (i, n) in seen_here.iter().enumerate() {
        if *n > 0 {
            g.landed.insert(places.names[i].to_string(), *n);
        }
        match places.outcome(i) {
            Outcome::Pass => g.passed += n,
            Outcome::Tx => g.tx += n,
            _ => g.redirected += n,
        }
    }
    let landed: u64 = seen_here.iter().sum();
    g.aborted = after.aborted - before.aborted;
    let nowhere = sent.saturating_sub(landed);
    g.dropped = nowhere.saturating_sub(g.aborted);
    g.attributed_by = attribution.as_str();
    g.unattributed = window
        .iter()
        .zip(&seen_here)
        .map(|(w, s)| w.saturating_sub(*s))
        .sum();
    let attach = places.attach;
    g.kernel = KernelView {
        received: after.ifaces[attach]
            .link
            .since(&before.ifaces[attach].link)
            .rx_packets,
        xdp: (mode == XdpMode::Native)
            .then(|| after.ifaces[attach].xdp.since(&before.ifaces[attach].xdp)),
        sender_dropped: after.ifaces[from]
            .link
            .since(&before.ifaces[from].link)
            .tx_dropped,
        background: window[attach].saturating_sub(seen_here[attach]),
    };
    (g, attribution)
}
