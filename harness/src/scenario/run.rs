//! Running a scenario through an execution path, or several, and comparing them.
//!
//! Live paths (`native`, `generic`) build the scenario's topology, attach the program, send
//! each group from its interface and look for every frame everywhere: a capture after XDP on
//! every interface of the topology says where each tagged frame landed (the attach interface:
//! XDP_PASS; the attach interface's peer: XDP_TX; any other interface: XDP_REDIRECT; nowhere:
//! XDP_DROP or XDP_ABORTED, told apart by the `xdp:xdp_exception` tracepoint). The kernel's
//! own counters (veth XDP statistics in native mode, the device's receive counter in generic
//! mode) and the program's `drop_cnt`/`pass_cnt` maps are checked against the captures.
//! Groups are sent one after another, and the run waits, with a deadline, until the kernel has
//! accounted for every frame of a group before the next one starts, so each group's counts
//! are its own.
//!
//! The `test-run` path runs the same frames through `BPF_PROG_TEST_RUN`, one call per frame,
//! and reads the verdict from the return code and the output from `data_out`.
//!
//! [`run_paths`] runs several paths and reports every frame they treat differently.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Instant};

pub use super::plan::{Checked, RunOptions};

use super::live::{check_throughput, execute_live};
use super::test_run::execute_test_run;

use super::map_checks::check_before_lab;

use super::plan::{hex, load_error, resolve, topology_spec};

use super::{Scenario, StepAction};
pub use crate::engine::RunError;
use crate::engine::{LISTED, judge::expected_outcome};
use crate::host::requires::Gate;
use crate::{
    kernel::program::{LoadOptions, ObjectSource, Program, XdpMode},
    report::{GroupReport, Outcome, PathDifference, RunFailure, ScenarioReport, Status},
    scenario::loader::{MapOwners, load_attachment, load_program},
};

/// Where a scenario's frames meet the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecPath {
    /// Attached in driver mode on a veth, frames injected live.
    Native,
    /// Attached in skb mode, frames injected live.
    Generic,
    /// `BPF_PROG_TEST_RUN`, one call per frame, no interface.
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    TestRun,
}

impl ExecPath {
    /// The live mode, if this is a live path.
    pub fn mode(self) -> Option<XdpMode> {
        match self {
            Self::Native => Some(XdpMode::Native),
            Self::Generic => Some(XdpMode::Generic),
            Self::TestRun => None,
        }
    }
}

impl fmt::Display for ExecPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
            Self::TestRun => "test-run",
        })
    }
}

impl FromStr for ExecPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Self::Native),
            "generic" => Ok(Self::Generic),
            "test-run" => Ok(Self::TestRun),
            other => Err(format!(
                "unknown execution path {other:?} (expected native, generic or test-run)"
            )),
        }
    }
}

/// Runs a scenario in the mode it names (v1 behaviour).
pub fn run(scenario: &Scenario) -> ScenarioReport {
    run_path(scenario, scenario_path(scenario), &RunOptions::default())
}

/// The execution path a scenario names for itself.
pub fn scenario_path(scenario: &Scenario) -> ExecPath {
    match scenario.program.mode {
        XdpMode::Native => ExecPath::Native,
        XdpMode::Generic => ExecPath::Generic,
    }
}

/// Checks the scenario's objects before any lab is built: loads the program under test and
/// every `[[attach]]` program (so this needs CAP_BPF), and checks that each map the scenario
/// names exists with a type and key and value sizes its keys and values fit. Every error
/// names the scenario file and the line of the key at fault. A skipped scenario is not
/// checked, nor one whose declared `requires` this kernel predates (an `xdp.frags` program
/// cannot load before 5.18: the run reports that scenario SKIP with the reason).
/// [`run_path`] runs the same checks; `xdplab run` calls this for every scenario first, so an
/// unusable object stops the run before any traffic.
pub fn check_objects(scenario: &Scenario) -> Result<(), RunError> {
    check_and_keep(scenario).map(drop)
}

/// [`check_objects`], keeping what it loaded ([`Checked`]) for the scenario's run; `None`
/// where there is nothing to keep (a skipped scenario, a lifecycle, whose versions load as
/// its steps say).
pub fn check_and_keep(scenario: &Scenario) -> Result<Option<Checked>, RunError> {
    if scenario.skip.is_some() || crate::host::requires::check(&scenario.requires) != Gate::Met {
        return Ok(None);
    }
    if !scenario.steps.is_empty() {
        // Every version, with its globals; maps are checked when the steps read them.
        for step in &scenario.steps {
            if let StepAction::Load {
                object,
                entry,
                globals,
                object_line,
                entry_line,
                ..
            } = &step.action
            {
                let options = LoadOptions {
                    globals: globals.clone(),
                    ..LoadOptions::default()
                };
                Program::load_with(object, entry, &options)
                    .map_err(|e| load_error(scenario, *object_line, *entry_line, &e))?;
            }
        }
        return Ok(None);
    }
    let program = load_program(scenario, LoadOptions::default())?;
    let spec = topology_spec(scenario);
    let mut attached = Vec::new();
    for a in &scenario.attachments {
        let loaded = load_attachment(scenario, a, program.pin_root())?;
        attached.push((resolve(&spec, &a.at)?, loaded));
    }
    let owners = MapOwners::with(
        scenario,
        &program,
        attached.iter().map(|(n, p)| (n.clone(), p)),
    );
    check_before_lab(scenario, &owners)?;
    Ok(Some(Checked {
        program,
        attachments: attached.into_iter().map(|(_, p)| p).collect(),
    }))
}

/// Runs a scenario through one path. Never panics on bad input: problems with the scenario or
/// the object, and missing privileges, become a failed report with [`ScenarioReport::error`].
pub fn run_path(scenario: &Scenario, path: ExecPath, options: &RunOptions) -> ScenarioReport {
    run_path_with(scenario, path, options, None)
}

/// [`run_path`] with the programs a check loaded, if any.
fn run_path_with(
    scenario: &Scenario,
    path: ExecPath,
    options: &RunOptions,
    checked: Option<Checked>,
) -> ScenarioReport {
    let start = Instant::now();
    let object = match &scenario.program.object {
        ObjectSource::Bundled(name) => name.clone(),
        ObjectSource::File(path) => path.display().to_string(),
    };
    let mut report = ScenarioReport {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        status: Status::Pass,
        skip_reason: None,
        error: None,
        program: format!("{object}:{}", scenario.program.entry),
        mode: path.to_string(),
        groups: Vec::new(),
        maps: Vec::new(),
        counters: Vec::new(),
        unattributed: 0,
        unattributed_by_interface: BTreeMap::new(),
        failures: Vec::new(),
        throughput: None,
        notes: Vec::new(),
        captures: Vec::new(),
        duration_ms: 0,
        steps: Vec::new(),
        flows: Vec::new(),
    };
    if let Some(reason) = &scenario.skip {
        report.status = Status::Skip;
        report.skip_reason = Some(reason.clone());
        return report;
    }
    // Declared kernel features: missing on an older kernel is a skip, missing on a kernel
    // that should have them is a failure (crate::host::requires).
    let mut requires = scenario.requires.clone();
    if path == ExecPath::Generic && uses_redirect_map(scenario) {
        requires.push(crate::host::requires::Requirement::Feature(
            crate::host::requires::Feature::GenericDevmap,
        ));
    }
    if path.mode().is_none() && super::test_run::test_run_in_lab(scenario) {
        requires.push(crate::host::requires::Requirement::Feature(
            crate::host::requires::Feature::TestRunContext,
        ));
    }
    match crate::host::requires::check(&requires) {
        Gate::Met => {}
        Gate::Skip(reason) => {
            report.status = Status::Skip;
            report.skip_reason = Some(reason);
            return report;
        }
        Gate::Fail(reason) => {
            report.status = Status::Fail;
            report.failures.push(reason);
            return report;
        }
    }
    if !scenario.steps.is_empty() && path.mode().is_none() {
        report.status = Status::Skip;
        report.skip_reason = Some(
            "lifecycle steps attach, replace and detach programs on bpf_links, which test-run has none of"
                .into(),
        );
        return report;
    }
    let mut result = match path.mode() {
        Some(mode) if !scenario.steps.is_empty() => {
            super::steps::execute(scenario, mode, options, &mut report)
        }
        Some(mode) => execute_live(scenario, mode, options, checked, &mut report),
        None => execute_test_run(scenario, options, checked, &mut report),
    };
    if result.is_ok()
        && let Some(spec) = &scenario.throughput
    {
        match path.mode() {
            Some(_) if options.no_throughput => report.notes.push(format!(
                "[throughput] (line {}) not measured: --no-throughput",
                spec.line
            )),
            Some(mode) => result = check_throughput(scenario, spec, mode, &mut report),
            None => report
                .notes
                .push("[throughput] is measured on live paths only".into()),
        }
    }
    match result {
        Ok(()) if report.failures.is_empty() => report.status = Status::Pass,
        Ok(()) => report.status = Status::Fail,
        Err(e) => {
            report.status = Status::Fail;
            report.error = Some(RunFailure {
                kind: e.kind,
                message: e.message,
            });
        }
    }
    report.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// Whether an object of the scenario declares a redirect target map (DEVMAP, CPUMAP).
fn uses_redirect_map(scenario: &Scenario) -> bool {
    let loaded = scenario.steps.iter().filter_map(|s| match &s.action {
        StepAction::Load { object, .. } => Some(object),
        _ => None,
    });
    std::iter::once(&scenario.program.object)
        .chain(scenario.attachments.iter().map(|a| &a.object))
        .chain(loaded)
        .any(crate::kernel::program::declares_redirect_map)
}

/// Runs a scenario through each path and compares them frame by frame.
///
/// The reports come back in `paths` order; the differences name the frame, both paths and
/// what each did. A live path cannot tell XDP_DROP from XDP_ABORTED for one frame (neither
/// is seen anywhere), so those are compared per frame as "nowhere" and per group by count.
pub fn run_paths(
    scenario: &Scenario,
    paths: &[ExecPath],
    options: &RunOptions,
) -> (Vec<ScenarioReport>, Vec<PathDifference>) {
    run_paths_checked(scenario, paths, options, None)
}

/// [`run_paths`] with the programs [`check_and_keep`] loaded: the first path runs them, the
/// others load their own (each path starts from fresh maps).
pub fn run_paths_checked(
    scenario: &Scenario,
    paths: &[ExecPath],
    options: &RunOptions,
    mut checked: Option<Checked>,
) -> (Vec<ScenarioReport>, Vec<PathDifference>) {
    let options = RunOptions {
        run_id: Some(
            options
                .run_id
                .unwrap_or_else(crate::topology::lab::random_run_id),
        ),
        ..options.clone()
    };
    let reports: Vec<ScenarioReport> = paths
        .iter()
        .map(|&path| run_path_with(scenario, path, &options, checked.take()))
        .collect();
    let mut differences = Vec::new();
    let comparable: Vec<&ScenarioReport> = reports
        .iter()
        .filter(|r| r.error.is_none() && r.status != Status::Skip)
        .collect();
    if let Some((first, rest)) = comparable.split_first() {
        for other in rest {
            differences.extend(compare(scenario, first, other));
        }
    }
    (reports, differences)
}

fn compare(scenario: &Scenario, a: &ScenarioReport, b: &ScenarioReport) -> Vec<PathDifference> {
    let mut out = Vec::new();
    let diff = |what: String, x: String, y: String| PathDifference {
        scenario: scenario.name.clone(),
        what,
        a: (a.mode.clone(), x),
        b: (b.mode.clone(), y),
    };
    for (ga, gb) in a.groups.iter().zip(&b.groups) {
        let mut listed = 0;
        for (seq, (oa, ob)) in ga.outcomes.iter().zip(&gb.outcomes).enumerate() {
            if *oa == Outcome::Unknown || *ob == Outcome::Unknown {
                continue;
            }
            if oa.comparable() != ob.comparable() && listed < LISTED {
                listed += 1;
                out.push(diff(
                    format!("send {:?} seq {seq}", ga.name),
                    oa.as_str().into(),
                    ob.as_str().into(),
                ));
            }
        }
        let known = |g: &GroupReport| g.outcomes.iter().all(|o| *o != Outcome::Unknown);
        if !known(ga) || !known(gb) {
            // Frames not followed one by one (attributed by content or by counters): their
            // counts still have to agree.
            out.extend(count_differences(ga, gb).into_iter().map(|(what, x, y)| {
                diff(
                    format!("send {:?} frames {what}", ga.name),
                    x.to_string(),
                    y.to_string(),
                )
            }));
        }
        if known(ga) && known(gb) && ga.aborted != gb.aborted {
            out.push(diff(
                format!("send {:?} frames aborted", ga.name),
                ga.aborted.to_string(),
                gb.aborted.to_string(),
            ));
        }
        let mut listed = 0;
        for (seq, bytes) in &ga.outputs {
            if let Some(other) = gb.outputs.get(seq)
                && bytes != other
                && listed < LISTED
            {
                listed += 1;
                let (at, x, y) = first_difference(bytes, other);
                out.push(diff(
                    format!("send {:?} seq {seq} output byte {at}", ga.name),
                    x,
                    y,
                ));
            }
        }
        // A frame one path saw come out, and the other, with the same outcome, did not: the
        // output is missing there. Live paths keep outputs only where the group's verdict puts
        // them, so only frames that got that verdict on both paths are compared; a frame that
        // went elsewhere already fails the group. (Frames not followed one by one have the
        // expected outcome on both paths when the counts agree and every frame got it; when
        // the counts differ, the counts are the DIFF.)
        let expected = expected_outcome(ga.expect).comparable();
        let all_expected = count_differences(ga, gb).is_empty() && got_all(ga, expected);
        let same_outcome = |seq: u32| {
            let (oa, ob) = (ga.outcomes.get(seq as usize), gb.outcomes.get(seq as usize));
            match (oa, ob) {
                (Some(a), Some(b)) if *a == Outcome::Unknown || *b == Outcome::Unknown => {
                    all_expected
                }
                (Some(a), Some(b)) => {
                    a.comparable() == b.comparable() && a.comparable() == expected
                }
                _ => false,
            }
        };
        let one_sided: Vec<(u32, bool)> = ga
            .outputs
            .keys()
            .filter(|seq| !gb.outputs.contains_key(seq))
            .map(|seq| (*seq, true))
            .chain(
                gb.outputs
                    .keys()
                    .filter(|seq| !ga.outputs.contains_key(seq))
                    .map(|seq| (*seq, false)),
            )
            .filter(|(seq, _)| same_outcome(*seq))
            .take(LISTED)
            .collect();
        for (seq, in_a) in one_sided {
            let bytes = if in_a { &ga.outputs } else { &gb.outputs }[&seq].len();
            let (x, y) = if in_a {
                (format!("{bytes} bytes"), "no output seen".to_owned())
            } else {
                ("no output seen".to_owned(), format!("{bytes} bytes"))
            };
            out.push(diff(format!("send {:?} seq {seq} output", ga.name), x, y));
        }
    }
    out
}

/// Whether every frame a group sent got the verdict `expected` (an [`Outcome::comparable`]
/// class), by its counts.
fn got_all(g: &GroupReport, expected: Outcome) -> bool {
    let count = match expected {
        Outcome::Pass => g.passed,
        Outcome::Tx => g.tx,
        Outcome::Redirect => g.redirected,
        Outcome::Nowhere | Outcome::Drop | Outcome::Aborted => g.dropped + g.aborted,
        Outcome::Unknown | Outcome::Multiple => return false,
    };
    count == g.sent
}

/// The verdict counts of two reports of one group that differ: (what, a, b). Drops and
/// aborts are compared together and aborts apart (live paths count them at the
/// `xdp:xdp_exception` tracepoint).
fn count_differences(a: &GroupReport, b: &GroupReport) -> Vec<(&'static str, u64, u64)> {
    [
        (
            "dropped or aborted",
            a.dropped + a.aborted,
            b.dropped + b.aborted,
        ),
        ("aborted", a.aborted, b.aborted),
        ("passed", a.passed, b.passed),
        ("sent back (tx)", a.tx, b.tx),
        ("redirected", a.redirected, b.redirected),
    ]
    .into_iter()
    .filter(|(_, x, y)| x != y)
    .collect()
}

/// The first byte where two frames differ, and up to 8 bytes of each from there (or their
/// lengths, if one is a prefix of the other).
fn first_difference(a: &[u8], b: &[u8]) -> (usize, String, String) {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let show = |v: &[u8]| {
        if at >= v.len() {
            format!("end of frame ({} bytes)", v.len())
        } else {
            format!("{}...", hex(&v[at..v.len().min(at + 8)]))
        }
    };
    (at, show(a), show(b))
}

#[cfg(test)]
mod compare_tests {
    //! What [`compare`] turns into DIFF lines, without a lab.

    use super::*;
    use crate::engine::observation::empty_group;
    use crate::inject::InjectStats;
    use std::path::Path;

    fn scenario() -> Scenario {
        let text = "schema-version = 1\nname = \"s\"\n[program]\nobject = \"xdp_pass\"\n\
                    entry = \"xdp_pass\"\n[[send]]\nname = \"g\"\ncount = 3\nipv4 = {}\n\
                    expect = \"pass\"\noutput = { length = 60 }\n";
        crate::scenario::parse(text, Path::new("s.toml")).expect("parses")
    }

    fn report(mode: &str, group: GroupReport) -> ScenarioReport {
        ScenarioReport {
            name: "s".into(),
            path: "s.toml".into(),
            status: Status::Pass,
            skip_reason: None,
            error: None,
            program: "xdp_pass:xdp_pass".into(),
            mode: mode.into(),
            groups: vec![group],
            maps: Vec::new(),
            counters: Vec::new(),
            unattributed: 0,
            unattributed_by_interface: BTreeMap::new(),
            failures: Vec::new(),
            throughput: None,
            notes: Vec::new(),
            captures: Vec::new(),
            duration_ms: 0,
            steps: Vec::new(),
            flows: Vec::new(),
        }
    }

    fn group(s: &Scenario, outcome: Outcome, passed: u64, outputs: &[u32]) -> GroupReport {
        let stats = InjectStats {
            offered: 3,
            accepted: 3,
            ..InjectStats::default()
        };
        let mut g = empty_group(&s.sends[0].name, s.sends[0].expect, &stats);
        g.outcomes = vec![outcome; 3];
        g.passed = passed;
        g.dropped = 3 - passed;
        g.outputs = outputs.iter().map(|&seq| (seq, vec![0; 60])).collect();
        g
    }

    fn lines(a: &ScenarioReport, b: &ScenarioReport) -> Vec<String> {
        compare(&scenario(), a, b)
            .iter()
            .map(|d| format!("{}: {} {} / {} {}", d.what, d.a.0, d.a.1, d.b.0, d.b.1))
            .collect()
    }

    #[test]
    fn counts_differ_when_frames_were_not_followed_one_by_one() {
        let s = scenario();
        let live = report("native", group(&s, Outcome::Unknown, 3, &[0, 1, 2]));
        let test_run = report("test-run", group(&s, Outcome::Drop, 0, &[]));
        assert_eq!(
            lines(&live, &test_run),
            [
                "send \"g\" frames dropped or aborted: native 0 / test-run 3",
                "send \"g\" frames passed: native 3 / test-run 0",
            ]
        );
        // The same counts: nothing to say.
        let same = report("generic", group(&s, Outcome::Unknown, 3, &[0, 1, 2]));
        assert_eq!(lines(&live, &same), Vec::<String>::new());
    }

    #[test]
    fn an_output_one_path_saw_and_the_other_did_not_is_a_diff() {
        let s = scenario();
        let a = report("native", group(&s, Outcome::Pass, 3, &[0, 1, 2]));
        let b = report("test-run", group(&s, Outcome::Pass, 3, &[0, 2]));
        assert_eq!(
            lines(&a, &b),
            ["send \"g\" seq 1 output: native 60 bytes / test-run no output seen"]
        );
        assert_eq!(
            lines(&b, &a),
            ["send \"g\" seq 1 output: test-run no output seen / native 60 bytes"]
        );
        // Not followed one by one, with the same counts: still a DIFF.
        let counted = report("generic", group(&s, Outcome::Unknown, 3, &[0, 1]));
        assert_eq!(
            lines(&a, &counted),
            ["send \"g\" seq 2 output: native 60 bytes / generic no output seen"]
        );
        // Frames whose verdicts differ are a verdict DIFF, not an output one.
        let dropped = report("test-run", group(&s, Outcome::Drop, 0, &[]));
        assert!(
            lines(&a, &dropped).iter().all(|l| !l.contains("output")),
            "{:?}",
            lines(&a, &dropped)
        );
    }
}
