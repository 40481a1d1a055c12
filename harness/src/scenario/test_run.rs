//! The `test-run` path: the scenario's frames through `BPF_PROG_TEST_RUN`, one call per
//! frame, the verdict read from the return code and the output from `data_out`.

use super::Scenario;
use super::map_checks::{Events, check_before_lab, check_maps, map_baselines, setup_maps};
use super::plan::{Checked, RunOptions, build_frames, group_plans, resolve, topology_spec};
use crate::engine::{RunError, live::counter};
use crate::{
    kernel::program::LoadOptions,
    report::{CounterCheck, ScenarioReport},
    scenario::loader::{MapOwners, fill_tail_calls, load_program},
    topology::Topology,
};

/// Runs the scenario's groups through the engine's test-run path, then checks the program's
/// counters against the verdicts it returned, and its maps.
pub(super) fn execute_test_run(
    scenario: &Scenario,
    options: &RunOptions,
    checked: Option<Checked>,
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    let mut program = match checked {
        Some(checked) => checked.program,
        None => load_program(scenario, LoadOptions::default())?,
    };
    fill_tail_calls(scenario, &mut program, &mut [])?;
    check_before_lab(scenario, &MapOwners::main(scenario, &program))?;
    let spec = topology_spec(scenario);
    let templates = build_frames(scenario, &spec)?;
    // Map setup that names an interface (a devmap target) needs a lab to resolve it; a
    // program that reads the kernel's tables needs one to run in (see `test_run_in_lab`).
    let in_lab = test_run_in_lab(scenario);
    let needs_lab = scenario
        .map_setup
        .iter()
        .any(|s| !s.key.ifaces().is_empty() || !s.value.ifaces().is_empty());
    let topology = if needs_lab || in_lab {
        if !in_lab {
            report
                .notes
                .push("built the topology only to resolve the interfaces map setup names".into());
        }
        Some(Topology::build(&spec)?)
    } else {
        None
    };
    let ingress = match (&topology, in_lab) {
        (Some(topology), true) => {
            let end = resolve(&spec, &scenario.program.attach)?;
            let (_, veth) = topology
                .interface(&end.netns, Some(&end.interface))
                .ok_or_else(|| RunError::input(format!("{end} is not in the topology")))?;
            report.notes.push(format!(
                "ran BPF_PROG_TEST_RUN inside lab namespace {:?} with ingress interface {end} \
                 (the scenario sets kernel state or the program calls bpf_fib_lookup)",
                end.netns
            ));
            Some(veth.clone())
        }
        _ => None,
    };
    let owners = MapOwners::main(scenario, &program);
    setup_maps(scenario, &owners, topology.as_ref().map(|t| (&spec, t)))?;
    let baselines = map_baselines(scenario, &owners)?;
    let counter_before = (
        counter(&program, "drop_cnt")?,
        counter(&program, "pass_cnt")?,
    );
    let mut events = Events::open(scenario, &mut program)?;
    // Tags carry an id, as on the wire, so outputs compare byte for byte with live paths.
    let run_id = options
        .run_id
        .unwrap_or_else(crate::topology::lab::random_run_id);
    let plans = group_plans(scenario, &spec, templates)?;
    let (mut drops, mut passes) = (0u64, 0u64);
    for (index, plan) in plans.iter().enumerate() {
        let group_id = u16::try_from(index)
            .map_err(|_| RunError::input("a scenario may have at most 65536 send groups"))?;
        let outcome =
            crate::engine::test_run::run_group(&program, plan, run_id, group_id, ingress.as_ref())?;
        drops += outcome.report.dropped;
        passes += outcome.report.passed;
        report
            .failures
            .extend(outcome.failures.iter().map(ToString::to_string));
        events.poll();
        report.groups.push(outcome.report);
    }
    let counter_after = (
        counter(&program, "drop_cnt")?,
        counter(&program, "pass_cnt")?,
    );
    for (name, before, after, returned) in [
        ("drop_cnt", counter_before.0, counter_after.0, drops),
        ("pass_cnt", counter_before.1, counter_after.1, passes),
    ] {
        if let (Some(before), Some(after)) = (before, after) {
            let program_count = after - before;
            let check = CounterCheck {
                map: name.into(),
                program: program_count,
                kernel: returned,
                source: "frames the program returned the verdict for".into(),
                ok: program_count == returned,
            };
            if !check.ok {
                report.failures.push(format!(
                    "program counter {name} = {program_count} disagrees with {returned} frames the program returned the verdict for"
                ));
            }
            report.counters.push(check);
        }
    }
    super::flows::skip(scenario, report);
    events.check(scenario, &mut report.failures);
    check_maps(
        scenario,
        &MapOwners::main(scenario, &program),
        &baselines,
        report,
    )?;
    drop(topology);
    Ok(())
}

/// Whether the test-run path runs inside the lab: when the scenario gives lab namespaces
/// kernel state (`[[netns]]`), or the program calls `bpf_fib_lookup`. Such a program reads the
/// routing tables, neighbours and forwarding sysctls of the namespace it runs in; run from the
/// host's namespace it would read the host's and disagree with the live paths. Other programs
/// keep the plain run, with no lab to build.
pub(super) fn test_run_in_lab(scenario: &Scenario) -> bool {
    !scenario.netns.is_empty() || crate::kernel::program::calls_fib_lookup(&scenario.program.object)
}
