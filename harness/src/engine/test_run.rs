//! The test-run path for one group: every frame run once through the program with
//! `BPF_PROG_TEST_RUN`, its verdict read from the return code, judged in the words of the
//! CLI's test-run path (`send "g": expected drop, 3 of 100 frames returned something else
//! (returned pass (2): seq 0, 1, 2)`).
//!
//! Added for the public API's test-run labs ([`crate::LabBuilder::test_run`]); it is the
//! per-group body of `scenario::run`'s test-run path, which can call it in turn.

use super::{
    Attribution, GroupOutcome, GroupPlan, LISTED, RunError,
    error::interrupted,
    failure::Failure,
    judge::{check_outputs, expected_outcome, places_text},
    observation::empty_group,
};
use crate::{
    frame::Tag, inject::InjectStats, kernel::program::Program, kernel::veth::VethEnd,
    report::Outcome, verdict::Verdict,
};

/// Runs every frame of `plan` through `program` (as arriving on `ingress`, inside its
/// namespace, when given) and judges the return codes against `plan.expect`.
pub fn run_group(
    program: &Program,
    plan: &GroupPlan,
    run_id: u32,
    group_id: u16,
    ingress: Option<&VethEnd>,
) -> Result<GroupOutcome, RunError> {
    interrupted()?;
    if plan.frames.is_empty() {
        return Err(RunError::input(format!("send {:?}: no frames", plan.name)));
    }
    let stats = InjectStats {
        offered: u64::from(plan.count),
        accepted: u64::from(plan.count),
        ..InjectStats::default()
    };
    let mut g = empty_group(&plan.name, plan.expect, &stats);
    g.attributed_by = Attribution::TestRun.as_str();
    let expected = expected_outcome(plan.expect);
    let mut buf = Vec::new();
    for seq in 0..plan.count {
        let template = &plan.frames[seq as usize % plan.frames.len()];
        template.write(
            Tag {
                run_id,
                group: group_id,
                seq,
            },
            &mut buf,
        );
        let out = match ingress {
            Some(end) => program.test_run_at(&buf, end)?,
            None => program.test_run(&buf)?,
        };
        let outcome = match Verdict::from_xdp_action(out.action) {
            Some(Verdict::Drop) => {
                g.dropped += 1;
                Outcome::Drop
            }
            Some(Verdict::Pass) => {
                g.passed += 1;
                Outcome::Pass
            }
            Some(Verdict::Tx) => {
                g.tx += 1;
                Outcome::Tx
            }
            Some(Verdict::Redirect) => {
                g.redirected += 1;
                Outcome::Redirect
            }
            // The kernel treats an unknown action as XDP_ABORTED (with a warning).
            Some(Verdict::Aborted) | None => {
                g.aborted += 1;
                Outcome::Aborted
            }
        };
        if outcome != expected {
            let seqs = g
                .misplaced
                .entry(format!("returned {} ({})", outcome.as_str(), out.action))
                .or_default();
            if seqs.len() < LISTED {
                seqs.push(seq);
            }
        }
        if plan.output.is_some()
            && matches!(outcome, Outcome::Pass | Outcome::Tx | Outcome::Redirect)
        {
            g.outputs.insert(seq, out.data);
        }
        g.outcomes.push(outcome);
    }
    g.output_mismatches = check_outputs(
        &plan.name,
        plan.output.as_ref(),
        &plan.frames,
        run_id,
        group_id,
        &g.outputs,
    );
    let mut failures = Vec::new();
    let wrong = g.outcomes.iter().filter(|o| **o != expected).count();
    if wrong > 0 {
        failures.push(Failure::Returned {
            group: plan.name.clone(),
            expected: plan.expect,
            wrong: wrong as u64,
            sent: u64::from(plan.count),
            places: places_text(&g.misplaced),
        });
    }
    failures.extend(g.output_mismatches.iter().cloned().map(Failure::Output));
    Ok(GroupOutcome {
        report: g,
        attribution: Attribution::TestRun,
        stats,
        failures,
        notes: Vec::new(),
    })
}
