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

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    time::Instant,
};

use serde_json::{Value, json};

use super::values::{self, Check, Shape};
use super::{FrameSource, IfaceRef, MapBytes, MapExpect, Scenario, StepAction};
pub use crate::engine::RunError;
pub(super) use crate::engine::error::interrupted;
use crate::engine::{
    GroupPlan, LISTED, LiveSession, SessionOptions, UnderTest,
    judge::{check_outputs, expected_outcome, places_text},
    live::counter,
    observation::empty_group,
};
use crate::requires::Gate;
use crate::{
    frame::{FrameError, FrameSpec, FrameTemplate, HexBytes, Tag},
    inject::InjectStats,
    link::XdpLink,
    maps::{MapKind, MapValue, ProgramMap, RingBufReader},
    pin::Bpffs,
    program::{Attachment, LoadOptions, ObjectSource, Program, ProgramError, XdpMode},
    report::{
        CounterCheck, GroupReport, MapCheck, Outcome, PathDifference, RunFailure, ScenarioReport,
        Status, plain,
    },
    scenario::loader::{MapOwners, fill_tail_calls, load_attachment, load_program},
    topology::{EndName, LinkDef, Topology, TopologySpec, link_endpoints},
    verdict::Verdict,
    veth::VethEnd,
};

/// Frames kept per interface for `--capture` pcaps.
const CAPTURE_KEEP: usize = 100_000;
/// Ring buffer records consumed per poll.
const EVENT_BATCH: usize = 4096;

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

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Write a capture file per interface of a failing scenario here.
    pub capture_dir: Option<PathBuf>,
    /// The format of those files (default: classic pcap).
    pub capture_format: crate::pcap::CaptureFormat,
    /// The id tagged into every frame (default: the lab's random one). [`run_paths`] gives
    /// all paths the same id, so the frames, and so their outputs, are byte for byte equal.
    pub run_id: Option<u32>,
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

/// The programs [`check_and_keep`] loaded, kept for the run that follows so that each object
/// is loaded into the kernel once: [`run_paths_checked`] hands them to its first path.
#[derive(Debug)]
pub struct Checked {
    program: Program,
    attachments: Vec<Program>,
}

/// [`check_objects`], keeping what it loaded ([`Checked`]) for the scenario's run; `None`
/// where there is nothing to keep (a skipped scenario, a lifecycle, whose versions load as
/// its steps say).
pub fn check_and_keep(scenario: &Scenario) -> Result<Option<Checked>, RunError> {
    if scenario.skip.is_some() || crate::requires::check(&scenario.requires) != Gate::Met {
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
    };
    if let Some(reason) = &scenario.skip {
        report.status = Status::Skip;
        report.skip_reason = Some(reason.clone());
        return report;
    }
    // Declared kernel features: missing on an older kernel is a skip, missing on a kernel
    // that should have them is a failure (crate::requires).
    let mut requires = scenario.requires.clone();
    if path == ExecPath::Generic && uses_redirect_map(scenario) {
        requires.push(crate::requires::Requirement::Feature(
            crate::requires::Feature::GenericDevmap,
        ));
    }
    match crate::requires::check(&requires) {
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
        .any(crate::program::declares_redirect_map)
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
        run_id: Some(options.run_id.unwrap_or_else(crate::lab::random_run_id)),
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

/// Where a problem with a scenario item is: `file:line: ...`.
pub(super) fn at(scenario: &Scenario, line: usize, what: &str) -> String {
    format!("{}:{line}: {what}", scenario.path.display())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenario's topology, resolved before anything is built

/// The scenario's links as a topology to build.
pub(super) fn topology_spec(scenario: &Scenario) -> TopologySpec {
    let mut spec = links_spec(scenario);
    spec.state = super::kernel_state::states(&scenario.netns, &spec);
    spec
}

/// The scenario's links, without the kernel state of `[[netns]]`.
fn links_spec(scenario: &Scenario) -> TopologySpec {
    if scenario.links.is_empty() {
        return crate::lab::Lab::spec(&crate::lab::LabConfig {
            mtu: scenario.lab.mtu,
            ipv6: scenario.lab.ipv6,
        });
    }
    TopologySpec {
        links: scenario
            .links
            .iter()
            .map(|l| LinkDef {
                a: EndName {
                    netns: l.a.netns.clone(),
                    interface: l.a.interface.clone(),
                },
                b: EndName {
                    netns: l.b.netns.clone(),
                    interface: l.b.interface.clone(),
                },
                mtu: l.mtu.unwrap_or(scenario.lab.mtu),
            })
            .collect(),
        ipv6: scenario.lab.ipv6,
        state: Vec::new(),
    }
}

/// The interface a reference names (the only one of its namespace without `:if`).
pub(super) fn resolve(spec: &TopologySpec, r: &IfaceRef) -> Result<EndName, RunError> {
    let mut ends = spec
        .links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|e| e.netns == r.netns)
        .filter(|e| r.interface.as_ref().is_none_or(|i| &e.interface == i));
    match (ends.next(), ends.next()) {
        (Some(end), None) => Ok(end.clone()),
        (Some(_), Some(_)) => Err(RunError::input(format!(
            "{r} names a namespace with several interfaces: say which (ns:if)"
        ))),
        (None, _) => Err(RunError::input(format!("{r} is not in the topology"))),
    }
}

/// The link index of `end` and whether it is the link's `a` end.
fn link_of(spec: &TopologySpec, end: &EndName) -> Option<(usize, bool)> {
    spec.links.iter().enumerate().find_map(|(i, l)| {
        if &l.a == end {
            Some((i, true))
        } else if &l.b == end {
            Some((i, false))
        } else {
            None
        }
    })
}

pub(super) fn peer_name(spec: &TopologySpec, end: &EndName) -> Option<EndName> {
    let (i, is_a) = link_of(spec, end)?;
    Some(if is_a {
        spec.links[i].b.clone()
    } else {
        spec.links[i].a.clone()
    })
}

/// The frames of each group, laid out once.
pub(super) fn build_frames(
    scenario: &Scenario,
    spec: &TopologySpec,
) -> Result<Vec<Vec<FrameTemplate>>, RunError> {
    scenario
        .sends
        .iter()
        .map(|group| {
            let from = resolve(spec, &group.from)?;
            let (index, is_a) = link_of(spec, &from).expect("resolved ends are in a link");
            let endpoints = link_endpoints(index, is_a);
            let mtu = spec.links[index].mtu;
            let error = |e: FrameError| {
                RunError::input(at(
                    scenario,
                    group.line,
                    &format!("send {:?}: {e}", group.name),
                ))
            };
            match &group.frames {
                FrameSource::Spec(frame) => {
                    let lab = crate::scenario::LabSpec {
                        mtu,
                        ..scenario.lab.clone()
                    };
                    let max_len = lab.max_frame_len(frame);
                    Ok(vec![
                        FrameTemplate::build(frame, &endpoints, max_len).map_err(error)?,
                    ])
                }
                FrameSource::Pcap { frames, .. } => frames
                    .iter()
                    .map(|bytes| {
                        let frame = FrameSpec {
                            raw: Some(HexBytes(bytes.clone())),
                            ..FrameSpec::default()
                        };
                        let lab = crate::scenario::LabSpec {
                            mtu,
                            ..scenario.lab.clone()
                        };
                        FrameTemplate::build(&frame, &endpoints, lab.max_frame_len(&frame))
                            .map_err(error)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Each send group as the engine runs it: interfaces resolved, frames laid out.
pub(super) fn group_plans(
    scenario: &Scenario,
    spec: &TopologySpec,
    templates: Vec<Vec<FrameTemplate>>,
) -> Result<Vec<GroupPlan>, RunError> {
    scenario
        .sends
        .iter()
        .zip(templates)
        .map(|(group, frames)| {
            Ok(GroupPlan {
                name: group.name.clone(),
                from: resolve(spec, &group.from)?,
                frames,
                count: group.count,
                expect: group.expect,
                redirect_to: group
                    .redirect_to
                    .as_ref()
                    .map(|r| resolve(spec, r))
                    .transpose()?,
                output: group.output.clone(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checks that need the program but no lab

/// A load error located at the object's line (the file or its ELF is at fault) or the
/// entry's (the program is), without the raw errno of a missing or unreadable file.
pub(super) fn load_error(
    scenario: &Scenario,
    object_line: usize,
    entry_line: usize,
    e: &ProgramError,
) -> RunError {
    let (line, message) = match e {
        ProgramError::Read { path, source } => {
            let why = match source.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                std::io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
                _ => source.to_string(),
            };
            (
                object_line,
                format!("failed to read object {}: {why}", path.display()),
            )
        }
        ProgramError::UnknownBundled { .. }
        | ProgramError::Object { .. }
        | ProgramError::Elf { .. } => (object_line, e.to_string()),
        _ => (entry_line, e.to_string()),
    };
    let message = at(scenario, line, &message);
    if e.is_environment() {
        RunError::environment(message)
    } else {
        RunError::input(message)
    }
}

/// Everything about the scenario's maps that the loaded program can tell before a lab
/// exists: each map named by `[[rule]]`, `[[setup.map]]`, `[[expect.map]]` and
/// `[[expect.events]]` exists, has a type the table can use, and fits its keys and values.
fn check_before_lab(scenario: &Scenario, owners: &MapOwners<'_>) -> Result<(), RunError> {
    if !scenario.rules.is_empty() {
        rules_map(scenario, owners.main)?;
    }
    for setup in &scenario.map_setup {
        // An [[attach]] program this path does not load (test-run) has nothing to set up.
        let Some(program) = owners.get(setup.at.as_ref())? else {
            continue;
        };
        let map = program
            .map(&setup.map)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
        if let Some(name) = &setup.program {
            program
                .program_fd(name)
                .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
            if map.key_size() != 4 || map.value_size() != 4 {
                return Err(RunError::input(at(
                    scenario,
                    setup.line,
                    &format!(
                        "map {:?} is not a PROG_ARRAY: program names a tail-call target for a \
                         PROG_ARRAY slot",
                        setup.map
                    ),
                )));
            }
            continue;
        }
        if map.kind() == MapKind::RingBuf {
            return Err(RunError::input(at(
                scenario,
                setup.line,
                &format!(
                    "map {:?} is a ring buffer: it has no keys to set up",
                    setup.map
                ),
            )));
        }
        // Only the shapes matter here; interface indexes are known once the lab is built.
        let shape = Shape::of(&map)?;
        map_key(scenario, setup.line, &shape, &setup.key, &|_| Ok(0))?;
        shape
            .value_bytes(&setup.value, &|_| Ok(0))
            .map_err(|e| RunError::input(at(scenario, setup.line, &e)))?;
    }
    check_map_expectations(scenario, owners)?;
    for expect in &scenario.event_expects {
        let map = owners
            .main
            .map(&expect.ringbuf)
            .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
        if map.kind() != MapKind::RingBuf {
            return Err(RunError::input(at(
                scenario,
                expect.line,
                &format!(
                    "map {:?} has type {}, not ringbuf: [[expect.events]] reads records from \
                     a BPF_MAP_TYPE_RINGBUF",
                    expect.ringbuf,
                    map.kind()
                ),
            )));
        }
    }
    Ok(())
}

fn check_map_expectations(scenario: &Scenario, owners: &MapOwners<'_>) -> Result<(), RunError> {
    for expect in &scenario.map_expects {
        let Some(program) = owners.get(expect.at.as_ref())? else {
            continue;
        };
        let map = program
            .map(&expect.map)
            .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
        if matches!(map.kind(), MapKind::Other | MapKind::RingBuf) {
            return Err(RunError::input(at(
                scenario,
                expect.line,
                &format!(
                    "map {:?} is not an array, per-CPU array or hash map; it cannot be checked by key",
                    expect.map
                ),
            )));
        }
        let shape = Shape::of(&map)?;
        map_key(scenario, expect.line, &shape, &expect.key, &|_| Ok(0))?;
        expected_checks(scenario, &shape, &map, expect)?;
    }
    Ok(())
}

/// The checks an expectation stands for (`value` or `per-cpu`; none for `delta` and
/// `absent`), or the located error that says why its value does not fit the map.
fn expected_checks(
    scenario: &Scenario,
    shape: &Shape,
    map: &ProgramMap<'_>,
    expect: &MapExpect,
) -> Result<Expected, RunError> {
    let located = |e: String| RunError::input(at(scenario, expect.line, &e));
    if let Some(value) = &expect.value {
        let sum = map.kind().is_per_cpu();
        if sum && *value == MapBytes::Int(0) && shape.checks(value, sum, &|_| Ok(0)).is_err() {
            // A sum of zero is zero on every CPU, whatever the value's shape.
            let zero = MapBytes::Hex(vec![0; map.value_size()]);
            return Ok(Expected::PerCpu(
                shape
                    .per_cpu_checks(&[zero], map.cpus()?, &|_| Ok(0))
                    .map_err(located)?,
            ));
        }
        return Ok(Expected::Value(
            shape.checks(value, sum, &|_| Ok(0)).map_err(located)?,
        ));
    }
    if let Some(list) = &expect.per_cpu {
        let cpus = map.cpus()?;
        return Ok(Expected::PerCpu(
            shape
                .per_cpu_checks(list, cpus, &|_| Ok(0))
                .map_err(located)?,
        ));
    }
    if let Some(fields) = &expect.delta_fields {
        return Ok(Expected::Delta(
            shape.delta_checks(fields).map_err(located)?,
        ));
    }
    if expect.delta.is_some() && map.value_size() > 8 {
        return Err(located(format!(
            "delta of map {:?}: an integer change needs integer values of at most 8 bytes, \
             but the map holds {}; give the change of each field by name (delta = {{ field = \
             change, ... }}) or check the value after the run with value = ...",
            expect.map,
            shape.holds()
        )));
    }
    Ok(Expected::Nothing)
}

/// What an expectation compares, compiled against the map.
enum Expected {
    /// `value`: one value, or the sum over CPUs of a per-CPU map.
    Value(Vec<Check>),
    /// `per-cpu`: each CPU's value.
    PerCpu(Vec<Vec<Check>>),
    /// `delta = { field = change, ... }`: each field's change across the run.
    Delta(Vec<Check>),
    /// `delta` as an integer, or `absent`.
    Nothing,
}

/// The bytes of a key, in any form (fields by name from the map's BTF).
pub(super) fn map_key(
    scenario: &Scenario,
    line: usize,
    shape: &Shape,
    key: &MapBytes,
    ifindex: &dyn Fn(&IfaceRef) -> Result<u32, String>,
) -> Result<Vec<u8>, RunError> {
    shape
        .key_bytes(key, ifindex)
        .map_err(|e| RunError::input(at(scenario, line, &e)))
}

/// The `xdp_filter` rule map that `[[rule]]`s are written to, checked; errors name the
/// first rule's line.
fn rules_map<'a>(scenario: &Scenario, program: &'a Program) -> Result<ProgramMap<'a>, RunError> {
    let line = scenario.rules.first().map_or(1, |r| r.line);
    let map = program.map("filter_rules").map_err(|e| {
        RunError::input(at(
            scenario,
            line,
            &format!("[[rule]] needs the xdp_filter rule map: {e}"),
        ))
    })?;
    if map.kind() != MapKind::Array || map.value_size() != 8 || map.key_size() != 4 {
        return Err(RunError::input(at(
            scenario,
            line,
            &format!(
                "map filter_rules is a {} with {}-byte keys and {}-byte values, not the \
                 xdp_filter rule array",
                map.kind(),
                map.key_size(),
                map.value_size()
            ),
        )));
    }
    if scenario.rules.len() > map.max_entries() as usize {
        return Err(RunError::input(at(
            scenario,
            line,
            &format!(
                "{} rules do not fit the {} slots of filter_rules",
                scenario.rules.len(),
                map.max_entries()
            ),
        )));
    }
    Ok(map)
}

/// Writes `[[rule]]` and `[[setup.map]]` entries. Updates that name an interface (a devmap's
/// target) run inside that interface's namespace, where the kernel resolves the index.
fn setup_maps(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
    topology: Option<(&TopologySpec, &Topology)>,
) -> Result<(), RunError> {
    if !scenario.rules.is_empty() {
        let map = rules_map(scenario, owners.main)?;
        for (index, rule) in scenario.rules.iter().enumerate() {
            map.update(&(index as u32).to_le_bytes(), &rule.encode())?;
        }
    }
    for setup in &scenario.map_setup {
        // Tail-call slots are filled by fill_tail_calls.
        if setup.program.is_some() {
            continue;
        }
        let Some(program) = owners.get(setup.at.as_ref())? else {
            continue;
        };
        let map = program
            .map(&setup.map)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
        let ifindex = |r: &IfaceRef| -> Result<u32, String> {
            let Some((spec, topology)) = topology else {
                return Err("needs the lab".into());
            };
            let end = resolve(spec, r).map_err(|e| e.message)?;
            topology
                .interface(&end.netns, Some(&end.interface))
                .map(|(_, e)| e.ifindex())
                .ok_or_else(|| format!("{r} is not in the topology"))
        };
        let shape = Shape::of(&map)?;
        let key = map_key(scenario, setup.line, &shape, &setup.key, &ifindex)?;
        let value = shape
            .value_bytes(&setup.value, &ifindex)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e)))?;
        let refs: Vec<&IfaceRef> = setup
            .key
            .ifaces()
            .into_iter()
            .chain(setup.value.ifaces())
            .collect();
        let netns = match (refs.first(), topology) {
            (Some(r), Some((spec, topology))) => {
                let end = resolve(spec, r)?;
                topology.netns(&end.netns).cloned()
            }
            _ => None,
        };
        let update = || map.update(&key, &value);
        match netns {
            Some(ns) => ns
                .run(update)
                .map_err(|e| RunError::environment(e.to_string()))??,
            None => update()?,
        }
    }
    Ok(())
}

/// Map values before traffic, for `delta` expectations.
fn map_baselines(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
) -> Result<Vec<Option<MapValue>>, RunError> {
    scenario
        .map_expects
        .iter()
        .map(|e| {
            if e.delta.is_none() && e.delta_fields.is_none() {
                return Ok(None);
            }
            let Some(program) = owners.get(e.at.as_ref())? else {
                return Ok(None);
            };
            let map = program.map(&e.map)?;
            let key = map_key(scenario, e.line, &Shape::of(&map)?, &e.key, &|_| Ok(0))?;
            Ok(map.lookup(&key)?)
        })
        .collect()
}

pub(super) fn check_map(
    scenario: &Scenario,
    map: &ProgramMap<'_>,
    expect: &MapExpect,
    baseline: Option<&MapValue>,
) -> Result<MapCheck, RunError> {
    let shape = Shape::of(map)?;
    let key = map_key(scenario, expect.line, &shape, &expect.key, &|_| Ok(0))?;
    let expected_form = expected_checks(scenario, &shape, map, expect)?;
    let value = map.lookup(&key)?;
    let per_cpu = value.as_ref().and_then(MapValue::per_cpu_u64);
    let absent = json!("absent");
    let mut mismatches = Vec::new();
    let (expected, actual, ok) = if expect.absent {
        let actual = value.as_ref().map_or(absent.clone(), value_json);
        (absent, actual, value.is_none())
    } else if let Some(delta) = expect.delta {
        let now = value.as_ref().and_then(MapValue::sum_u64).unwrap_or(0);
        let then = baseline.and_then(MapValue::sum_u64).unwrap_or(0);
        let change = i128::from(now) - i128::from(then);
        (
            json!(format!("delta {delta}")),
            json!(format!("delta {change}")),
            change == i128::from(delta),
        )
    } else {
        match (&expected_form, &value) {
            (Expected::Value(checks), Some(MapValue::Single(v))) => {
                let (actual, bad) = values::judge(checks, v);
                mismatches = bad;
                (values::expected_json(checks), actual, mismatches.is_empty())
            }
            (Expected::Value(checks), Some(MapValue::PerCpu(v))) => {
                let (actual, bad) = values::judge_sum(checks, v);
                mismatches = bad;
                (values::expected_json(checks), actual, mismatches.is_empty())
            }
            (Expected::PerCpu(cpus), Some(MapValue::PerCpu(v))) => {
                let mut actual = Vec::new();
                for (cpu, (checks, value)) in cpus.iter().zip(v).enumerate() {
                    let (got, bad) = values::judge(checks, value);
                    actual.push(got);
                    mismatches.extend(bad.into_iter().map(|mut m| {
                        m.path = if m.path.is_empty() {
                            format!("cpu {cpu}:")
                        } else {
                            format!("cpu {cpu}: {}", m.path)
                        };
                        m
                    }));
                }
                let expected: Vec<Value> = cpus.iter().map(|c| values::expected_json(c)).collect();
                (
                    values::per_cpu_json(&expected),
                    values::per_cpu_json(&actual),
                    mismatches.is_empty(),
                )
            }
            (Expected::Value(checks), None) => (values::expected_json(checks), absent, false),
            (Expected::PerCpu(cpus), _) => {
                let expected: Vec<Value> = cpus.iter().map(|c| values::expected_json(c)).collect();
                (
                    values::per_cpu_json(&expected),
                    value.as_ref().map_or(absent, value_json),
                    false,
                )
            }
            (Expected::Delta(checks), now) => {
                let each = |v: &MapValue| match v {
                    MapValue::Single(bytes) => vec![bytes.clone()],
                    MapValue::PerCpu(all) => all.clone(),
                };
                let zero = vec![vec![0u8; map.value_size()]];
                let now = now.as_ref().map_or(zero, each);
                let before = baseline.map(each);
                let (actual, bad) = values::judge_delta(checks, &now, before.as_deref());
                mismatches = bad;
                let delta = |v: Value| json!(format!("delta {}", plain(&v)));
                (
                    delta(values::expected_json(checks)),
                    delta(actual),
                    mismatches.is_empty(),
                )
            }
            (Expected::Nothing, _) => {
                unreachable!("the parser requires value, per-cpu, absent or delta")
            }
        }
    };
    Ok(MapCheck {
        map: expect.map.clone(),
        key: match &expect.key {
            MapBytes::Int(n) => json!(n),
            fields @ MapBytes::Fields(_) => json!(fields.to_string()),
            _ => json!(hex(&key)),
        },
        expected,
        actual,
        per_cpu,
        mismatches: mismatches.iter().map(ToString::to_string).collect(),
        ok,
    })
}

fn value_json(value: &MapValue) -> Value {
    match value.sum_u64() {
        Some(n) => json!(n),
        None => match value {
            MapValue::Single(bytes) => json!(hex(bytes)),
            MapValue::PerCpu(values) => json!(values.iter().map(|v| hex(v)).collect::<Vec<_>>()),
        },
    }
}

/// The ring buffers the scenario's event expectations read, with the records seen so far.
struct Events {
    readers: Vec<(RingBufReader, Vec<Vec<u8>>)>,
}

impl Events {
    fn open(scenario: &Scenario, program: &mut Program) -> Result<Self, RunError> {
        let mut readers: Vec<(RingBufReader, Vec<Vec<u8>>)> = Vec::new();
        for expect in &scenario.event_expects {
            if readers.iter().any(|(r, _)| r.name() == expect.ringbuf) {
                continue;
            }
            let reader = program
                .take_ringbuf(&expect.ringbuf)
                .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
            readers.push((reader, Vec::new()));
        }
        Ok(Self { readers })
    }

    /// Consumes what the ring buffers hold now, in batches.
    fn poll(&mut self) {
        for (reader, records) in &mut self.readers {
            while reader.drain(EVENT_BATCH, |r| records.push(r.to_vec())) == EVENT_BATCH {}
        }
    }

    fn check(&mut self, scenario: &Scenario, failures: &mut Vec<String>) {
        self.poll();
        for expect in &scenario.event_expects {
            let records = self
                .readers
                .iter()
                .find(|(r, _)| r.name() == expect.ringbuf)
                .map(|(_, records)| records.as_slice())
                .unwrap_or_default();
            let matching = records.iter().filter(|r| expect.matches(r)).count() as u64;
            if matching != expect.count {
                let filter: Vec<String> = expect
                    .filter
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                failures.push(format!(
                    "ring buffer {}: expected {} event(s){}, got {matching} (of {} read)",
                    expect.ringbuf,
                    expect.count,
                    if filter.is_empty() {
                        String::new()
                    } else {
                        format!(" with {}", filter.join(", "))
                    },
                    records.len()
                ));
            }
        }
    }
}

// test-run

fn execute_test_run(
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
    let run_id = options.run_id.unwrap_or_else(crate::lab::random_run_id);
    let mut buf = Vec::new();
    let (mut drops, mut passes) = (0u64, 0u64);
    for (index, (group, templates)) in scenario.sends.iter().zip(&templates).enumerate() {
        interrupted()?;
        let group_id = u16::try_from(index)
            .map_err(|_| RunError::input("a scenario may have at most 65536 send groups"))?;
        let stats = InjectStats {
            offered: u64::from(group.count),
            accepted: u64::from(group.count),
            ..InjectStats::default()
        };
        let mut g = empty_group(&group.name, group.expect, &stats);
        g.attributed_by = "test-run";
        let expected = expected_outcome(group.expect);
        for seq in 0..group.count {
            let template = &templates[seq as usize % templates.len()];
            template.write(
                Tag {
                    run_id,
                    group: group_id,
                    seq,
                },
                &mut buf,
            );
            let out = match &ingress {
                Some(end) => program.test_run_at(&buf, end)?,
                None => program.test_run(&buf)?,
            };
            let outcome = match Verdict::from_xdp_action(out.action) {
                Some(Verdict::Drop) => {
                    g.dropped += 1;
                    Outcome::Drop
                }
                Some(Verdict::Aborted) => {
                    g.aborted += 1;
                    Outcome::Aborted
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
                None => {
                    // The kernel treats an unknown action as XDP_ABORTED (with a warning).
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
            if group.output.is_some()
                && matches!(outcome, Outcome::Pass | Outcome::Tx | Outcome::Redirect)
            {
                g.outputs.insert(seq, out.data);
            }
            g.outcomes.push(outcome);
        }
        drops += g.dropped;
        passes += g.passed;
        g.output_mismatches = check_outputs(
            &group.name,
            group.output.as_ref(),
            templates,
            run_id,
            group_id,
            &g.outputs,
        );
        let wrong = g.outcomes.iter().filter(|o| **o != expected).count();
        if wrong > 0 {
            report.failures.push(format!(
                "send {:?}: expected {}, {wrong} of {} frames returned something else ({})",
                group.name,
                group.expect,
                group.count,
                places_text(&g.misplaced)
            ));
        }
        report.failures.extend(g.output_mismatches.iter().cloned());
        events.poll();
        report.groups.push(g);
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
fn test_run_in_lab(scenario: &Scenario) -> bool {
    !scenario.netns.is_empty() || crate::program::calls_fib_lookup(&scenario.program.object)
}

fn check_maps(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
    baselines: &[Option<MapValue>],
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    for (expect, baseline) in scenario.map_expects.iter().zip(baselines) {
        let Some(program) = owners.get(expect.at.as_ref())? else {
            report.notes.push(format!(
                "{} not checked: its [[attach]] program does not run on this path",
                expect.describe()
            ));
            continue;
        };
        let check = check_map(
            scenario,
            &program.map(&expect.map)?,
            expect,
            baseline.as_ref(),
        )?;
        if !check.ok && !check.mismatches.is_empty() {
            report.failures.push(format!(
                "map {}[{}]: {}",
                check.map,
                plain(&check.key),
                check.mismatches.join("; ")
            ));
        } else if !check.ok {
            report.failures.push(format!(
                "map {}[{}]: expected {}, got {}",
                check.map,
                plain(&check.key),
                plain(&check.expected),
                plain(&check.actual)
            ));
        }
        report.maps.push(check);
    }
    Ok(())
}

/// A program's verdict counter by convention: a one-slot u64 array (or per-CPU array) at key 0.
/// Programs the run attached, kept alive until the end (dropped in reverse order).
struct Attached {
    programs: Vec<(Program, Attachment)>,
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear run: setup, traffic, evaluation; split further it reads worse"
)]
fn execute_live(
    scenario: &Scenario,
    mode: XdpMode,
    options: &RunOptions,
    checked: Option<Checked>,
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    // `pin = true`: the run's own bpffs, with the layout of lifecycle steps.
    let bpffs = if scenario.program.pin {
        let bpffs = Bpffs::mount()?;
        for dir in ["progs", "maps", "links"] {
            std::fs::create_dir(bpffs.pin_path(dir)).map_err(|e| {
                RunError::environment(format!("failed to create {dir} in the run's bpffs: {e}"))
            })?;
        }
        Some(bpffs)
    } else {
        None
    };
    let mut preloaded = None;
    let mut program = match &bpffs {
        None if let Some(checked) = checked => {
            preloaded = Some(checked.attachments.into_iter());
            checked.program
        }
        Some(bpffs) => {
            let p = &scenario.program;
            let options = LoadOptions {
                map_pin_dir: Some(bpffs.pin_path("maps")),
                ..LoadOptions::default()
            };
            let mut program = load_program(scenario, options)?;
            program.pin(&bpffs.pin_path("progs").join(&p.entry))?;
            program
        }
        None => load_program(scenario, LoadOptions::default())?,
    };
    let spec = topology_spec(scenario);
    let mut extra = Vec::new();
    for a in &scenario.attachments {
        // Maps pinned by name are shared with the program under test, as under one pin root.
        let pin_root = bpffs
            .as_ref()
            .map(|b| b.pin_path("maps"))
            .or_else(|| program.pin_root().map(Path::to_owned));
        let program = match preloaded.as_mut().and_then(Iterator::next) {
            Some(program) => program,
            None => load_attachment(scenario, a, pin_root.as_deref())?,
        };
        extra.push((resolve(&spec, &a.at)?, program, a.mode));
    }
    {
        let mut targets: Vec<(EndName, &mut Program)> =
            extra.iter_mut().map(|(n, p, _)| (n.clone(), p)).collect();
        fill_tail_calls(scenario, &mut program, &mut targets)?;
    }
    check_before_lab(
        scenario,
        &MapOwners::with(
            scenario,
            &program,
            extra.iter().map(|(n, p, _)| (n.clone(), p)),
        ),
    )?;
    let templates = build_frames(scenario, &spec)?;
    let attach_name = resolve(&spec, &scenario.program.attach)?;
    let attach_peer = peer_name(&spec, &attach_name).expect("every end has a peer");
    if mode == XdpMode::Native
        && let Some(link) = spec
            .links
            .iter()
            .find(|l| l.a == attach_name || l.b == attach_name)
        && link.mtu > crate::scenario::LabSpec::MAX_NATIVE_MTU
        // An xdp.frags program takes frames in several buffers: veth allows any MTU.
        && crate::program::entry_has_frags(
            &scenario.program.object,
            &scenario.program.entry,
            scenario.program.loader.program_type,
        ) != Some(true)
    {
        return Err(RunError::input(format!(
            "{}: native XDP on {attach_name} needs an mtu of at most {} (the link has {}); \
             use the generic path",
            scenario.path.display(),
            crate::scenario::LabSpec::MAX_NATIVE_MTU,
            link.mtu
        )));
    }

    let topology = Topology::build(&spec)?;
    let end = |name: &EndName| -> &VethEnd {
        topology
            .interface(&name.netns, Some(&name.interface))
            .expect("resolved names exist")
            .1
    };
    let (setup_result, baselines) = {
        let owners = MapOwners::with(
            scenario,
            &program,
            extra.iter().map(|(n, p, _)| (n.clone(), p)),
        );
        (
            setup_maps(scenario, &owners, Some((&spec, &topology))),
            map_baselines(scenario, &owners),
        )
    };
    setup_result?;
    let baselines = baselines?;
    let mut events = Events::open(scenario, &mut program)?;

    let mut attached = Attached {
        programs: Vec::new(),
    };
    let mut taken: Vec<EndName> = vec![attach_name.clone()];
    let mut owner_names = Vec::new();
    for (at, mut program, mode) in extra {
        let attachment = program.attach(end(&at), mode)?;
        taken.push(at.clone());
        owner_names.push(at);
        attached.programs.push((program, attachment));
    }
    // Frames that leave by XDP_TX or XDP_REDIRECT in driver mode are xdp_frames, which a
    // veth drops unless the receiving end runs NAPI; an XDP program on it turns NAPI on.
    if mode == XdpMode::Native {
        let mut landing: Vec<(EndName, &str)> = Vec::new();
        for group in &scenario.sends {
            match group.expect {
                Verdict::Tx => landing.push((attach_peer.clone(), "XDP_TX")),
                Verdict::Redirect => {
                    if let Some(target) = &group.redirect_to {
                        let target = resolve(&spec, target)?;
                        landing.push((
                            peer_name(&spec, &target).expect("every end has a peer"),
                            "XDP_REDIRECT",
                        ));
                    }
                }
                _ => {}
            }
        }
        for (at, why) in landing {
            if taken.contains(&at) {
                continue;
            }
            // Above veth's cap for programs without xdp.frags, a frags program that passes
            // everything (xdp_frags_limit with no limit set) does the same job.
            let jumbo = link_of(&spec, &at)
                .is_some_and(|(i, _)| spec.links[i].mtu > crate::scenario::LabSpec::MAX_NATIVE_MTU);
            let (helper, attachment) = crate::engine::enable_napi(&topology, &at, jumbo)?;
            let entry = helper.entry().to_owned();
            report.notes.push(format!(
                "attached {entry} (native) to {at} so that frames sent by {why} can arrive (a veth drops them unless its receiving end runs NAPI)"
            ));
            taken.push(at);
            attached.programs.push((helper, attachment));
        }
    }
    let attachment = program.attach(end(&attach_name), mode)?;
    let attachment = match &bpffs {
        Some(bpffs) => {
            let link = XdpLink::pin(attachment, &bpffs.pin_path("links").join("program"))?;
            let mut pins = Vec::new();
            for dir in ["progs", "maps", "links"] {
                for entry in std::fs::read_dir(bpffs.pin_path(dir))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    pins.push(format!("{dir}/{}", entry.file_name().to_string_lossy()));
                }
            }
            pins.sort();
            report.notes.push(format!(
                "pinned in a private bpffs at {}: {}",
                bpffs.path().display(),
                pins.join(", ")
            ));
            Held::Pinned(link)
        }
        None => Held::Attached(attachment),
    };
    let plans = group_plans(scenario, &spec, templates)?;
    let session_options = SessionOptions {
        run_id: options.run_id,
        keep_frames: if options.capture_dir.is_some() {
            CAPTURE_KEEP
        } else {
            0
        },
    };
    let under_test = UnderTest {
        program: &program,
        attach: &attach_name,
        mode,
    };
    let mut session = LiveSession::open(&topology, under_test, &session_options)?;
    for plan in &plans {
        let outcome = session.send(plan, &mut || events.poll())?;
        report.notes.extend(outcome.notes);
        report.failures.extend(outcome.failures);
        report.groups.push(outcome.report);
    }
    interrupted()?;
    let closed = session.close();
    report.notes.extend(closed.notes);
    report.unattributed_by_interface = closed.unattributed_by_interface;
    report.unattributed = report.unattributed_by_interface.values().sum();
    report.failures.extend(closed.failures);
    report.counters = closed.counters;
    let kept_frames = closed.frames;
    events.check(scenario, &mut report.failures);
    let owners = MapOwners::with(
        scenario,
        &program,
        owner_names
            .iter()
            .cloned()
            .zip(attached.programs.iter().map(|(p, _)| p)),
    );
    check_maps(scenario, &owners, &baselines, report)?;
    if !report.failures.is_empty()
        && let Some(dir) = &options.capture_dir
    {
        report.captures = write_captures(
            dir,
            options.capture_format,
            scenario,
            &report.mode,
            &kept_frames,
        )?;
    }
    match attachment {
        Held::Attached(attachment) => attachment.detach()?,
        // Unpinning and closing the link detaches the program.
        Held::Pinned(link) => link
            .unpin()
            .map_err(|e| RunError::environment(e.to_string()))?,
    }
    drop(attached);
    drop(topology);
    if let Some(bpffs) = bpffs {
        drop(program);
        bpffs
            .unmount()
            .map_err(|e| RunError::environment(e.to_string()))?;
    }
    Ok(())
}

/// How the program under test is held on its interface.
enum Held {
    /// By its bpf_link's descriptor.
    Attached(Attachment),
    /// By the link's pin in the run's bpffs (`pin = true`).
    Pinned(XdpLink),
}

/// Measures the scenario's program and the `[throughput]` baseline, one after the other, in
/// the same run, and fails the scenario if the ratio is below the floor.
fn check_throughput(
    scenario: &Scenario,
    spec: &crate::scenario::ThroughputSpec,
    mode: XdpMode,
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    use crate::bench::{BenchConfig, BenchProgram, measure};
    let config = |program: BenchProgram| BenchConfig {
        injector: spec.injector,
        mode,
        program,
        size: spec.size,
        duration: spec.duration,
        threads: spec.threads,
    };
    let error = |e: crate::bench::BenchError| RunError::environment(e.to_string());
    let program = measure(&config(BenchProgram::Object {
        source: scenario.program.object.clone(),
        entry: scenario.program.entry.clone(),
    }))
    .map_err(error)?;
    let baseline = measure(&config(spec.baseline.clone())).map_err(error)?;
    let ratio = if baseline.rx_pps > 0.0 {
        program.rx_pps / baseline.rx_pps
    } else {
        0.0
    };
    let ok = ratio >= spec.min_ratio;
    if !ok {
        report.failures.push(format!(
            "{}:{}: throughput {:.3} Mpps is {ratio:.2} x {} ({:.3} Mpps), below the floor of {} (both {}, {} B, {} injector, {:?})",
            scenario.path.display(),
            spec.line,
            program.rx_pps / 1e6,
            baseline.program,
            baseline.rx_pps / 1e6,
            spec.min_ratio,
            mode,
            spec.size,
            spec.injector,
            spec.duration
        ));
    }
    report.throughput = Some(crate::report::ThroughputCheck {
        program,
        baseline,
        ratio,
        min_ratio: spec.min_ratio,
        ok,
    });
    Ok(())
}

/// Writes one pcap per interface; returns the files.
fn write_captures(
    dir: &Path,
    format: crate::pcap::CaptureFormat,
    scenario: &Scenario,
    path: &str,
    captured: &[(EndName, Vec<(std::time::SystemTime, Vec<u8>)>)],
) -> Result<Vec<PathBuf>, RunError> {
    let io = |e: crate::pcap::PcapError| RunError::environment(e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| {
        RunError::environment(format!(
            "failed to create capture directory {}: {e}",
            dir.display()
        ))
    })?;
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut files = Vec::new();
    for (name, frames) in captured {
        let file = dir.join(format!(
            "{}.{}.{}-{}.{}",
            safe(&scenario.name),
            safe(path),
            safe(&name.netns),
            safe(&name.interface),
            format.extension()
        ));
        let interface = format!("{}:{}", name.netns, name.interface);
        let mut writer =
            crate::pcap::PcapWriter::create_as(&file, format, &interface).map_err(io)?;
        for (time, frame) in frames {
            writer.write(frame, *time).map_err(io)?;
        }
        writer.finish().map_err(io)?;
        files.push(file);
    }
    Ok(files)
}

#[cfg(test)]
mod compare_tests {
    //! What [`compare`] turns into DIFF lines, without a lab.

    use super::*;

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
