//! Running one scenario: load the program, build a lab, send each group, observe, compare.
//!
//! Every group's verdicts are checked three ways, and disagreement between them is a failure:
//! the capture after XDP (per frame, by tag), the kernel's counters (veth XDP statistics in
//! native mode, the device's receive counter in generic mode), and the program's own
//! `drop_cnt`/`pass_cnt` maps when it has them. Groups are sent one after another and the run
//! waits, with a deadline, until the kernel has accounted for every frame of a group before the
//! next one starts, so each group's kernel counts are its own.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MapBytes, MapExpect, ObjectRef, Scenario, SendGroup, XdpModeSpec};
use crate::{
    frame::{FrameError, FrameTemplate},
    inject::{InjectError, InjectStats, pnet::PnetInjector},
    lab::{Lab, LabConfig, LabError},
    maps::{MapError, MapKind, MapValue},
    observe::{
        Capture, Captured, DriverStats, LinkCounters, LinkStats, MIN_OBSERVABLE_VLAN_FRAME,
        ObserveError, XdpStats, observable_after_xdp,
    },
    program::{ObjectSource, Program, ProgramError, XdpMode},
    report::{
        CounterCheck, FailureKind, GroupReport, KernelView, MapCheck, RunFailure, ScenarioReport,
        Status, plain,
    },
    verdict::Verdict,
};

/// Where a group's pass/drop counts come from, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attribution {
    /// Each frame's tag, seen (or not) after XDP.
    Tag,
    /// Exact frame bytes seen after XDP (frames too small for a tag).
    Content,
    /// The veth driver's XDP counters over the group's window (frames no capture can see).
    Kernel,
    /// The program's own drop_cnt/pass_cnt over the group's window (generic mode, frames no
    /// capture can see).
    Program,
    /// Nothing can tell: the group fails.
    None,
}

impl Attribution {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Content => "content",
            Self::Kernel => "kernel",
            Self::Program => "program",
            Self::None => "none",
        }
    }
}

/// Sequence numbers listed per problem in a report; the count is always complete.
const LISTED: usize = 16;
/// How long counts must stay unchanged before a group that cannot reach its target is taken
/// as settled.
const QUIET: Duration = Duration::from_millis(100);

/// Why a scenario could not run.
#[derive(Debug)]
struct RunError {
    kind: FailureKind,
    message: String,
}

impl RunError {
    fn input(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Input,
            message: message.into(),
        }
    }
    fn environment(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Environment,
            message: message.into(),
        }
    }
}

impl From<ProgramError> for RunError {
    fn from(e: ProgramError) -> Self {
        if e.is_environment() {
            Self::environment(e.to_string())
        } else {
            Self::input(e.to_string())
        }
    }
}

impl From<LabError> for RunError {
    fn from(e: LabError) -> Self {
        let hint = if e.is_permission() {
            " (run as root: xdplab needs CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_BPF)"
        } else {
            ""
        };
        Self::environment(format!("{e}{hint}"))
    }
}

impl From<ObserveError> for RunError {
    fn from(e: ObserveError) -> Self {
        Self::environment(e.to_string())
    }
}

impl From<InjectError> for RunError {
    fn from(e: InjectError) -> Self {
        Self::environment(e.to_string())
    }
}

impl From<MapError> for RunError {
    fn from(e: MapError) -> Self {
        match e {
            MapError::NotFound { .. } | MapError::Size { .. } => Self::input(e.to_string()),
            MapError::Info { .. } | MapError::Syscall { .. } => Self::environment(e.to_string()),
        }
    }
}

/// Runs a scenario and reports what happened. Never panics on bad input: problems with the
/// scenario or the object, and missing privileges, become a failed report with
/// [`ScenarioReport::error`] set.
pub fn run(scenario: &Scenario) -> ScenarioReport {
    let start = Instant::now();
    let object = match &scenario.program.object {
        ObjectRef::Bundled(name) => name.clone(),
        ObjectRef::Path(path) => path.display().to_string(),
    };
    let mut report = ScenarioReport {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        status: Status::Pass,
        skip_reason: None,
        error: None,
        program: format!("{object}:{}", scenario.program.entry),
        mode: mode(scenario).to_string(),
        groups: Vec::new(),
        maps: Vec::new(),
        counters: Vec::new(),
        unattributed: 0,
        failures: Vec::new(),
        duration_ms: 0,
    };
    if let Some(reason) = &scenario.skip {
        report.status = Status::Skip;
        report.skip_reason = Some(reason.clone());
        return report;
    }
    match execute(scenario, &mut report) {
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

fn mode(scenario: &Scenario) -> XdpMode {
    match scenario.program.mode {
        XdpModeSpec::Native => XdpMode::Native,
        XdpModeSpec::Generic => XdpMode::Generic,
    }
}

/// Where a problem with a scenario item is: `file:line: send "name"`.
fn at(scenario: &Scenario, line: usize, what: &str) -> String {
    format!("{}:{line}: {what}", scenario.path.display())
}

/// The kernel's and the program's counts at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    xdp: XdpStats,
    rx: LinkCounters,
    tx: LinkCounters,
    captured: u64,
    drop_cnt: Option<u64>,
    pass_cnt: Option<u64>,
}

/// The observers of one run.
struct Observers<'a> {
    driver: DriverStats,
    rx: LinkStats,
    tx: LinkStats,
    capture: Capture,
    program: &'a Program,
    drop_cnt: bool,
    pass_cnt: bool,
}

impl Observers<'_> {
    fn snapshot(&self) -> Result<Snapshot, RunError> {
        Ok(Snapshot {
            xdp: self.driver.xdp()?,
            rx: self.rx.read()?,
            tx: self.tx.read()?,
            captured: self.capture.frames(),
            drop_cnt: self
                .drop_cnt
                .then(|| counter(self.program, "drop_cnt"))
                .transpose()?
                .flatten(),
            pass_cnt: self
                .pass_cnt
                .then(|| counter(self.program, "pass_cnt"))
                .transpose()?
                .flatten(),
        })
    }

    /// Polls until the kernel has accounted for `sent` frames since `before` and every frame
    /// it passed has reached the capture; or until counts stop moving; or the deadline.
    fn settle(&self, mode: XdpMode, before: &Snapshot, sent: u64) -> Result<Snapshot, RunError> {
        let deadline = Instant::now() + Duration::from_secs(3) + Duration::from_micros(sent * 5);
        let mut last = self.snapshot()?;
        let mut last_change = Instant::now();
        loop {
            let lost_at_sender = last.tx.since(&before.tx).tx_dropped;
            let captured = last.captured - before.captured;
            let (arrived, complete) = match mode {
                XdpMode::Native => {
                    let xdp = last.xdp.since(&before.xdp);
                    let arrived = xdp.packets + xdp.ring_drops + lost_at_sender >= sent;
                    (arrived, arrived && captured >= xdp.passed())
                }
                XdpMode::Generic => {
                    let received = last.rx.since(&before.rx).rx_packets;
                    let arrived = received + lost_at_sender >= sent;
                    let dropped = match (last.drop_cnt, before.drop_cnt) {
                        (Some(now), Some(then)) => Some(now - then),
                        _ => None,
                    };
                    // Without a drop counter, only "everything passed" is provably complete;
                    // otherwise the quiet period below decides.
                    let complete = captured + dropped.unwrap_or(0) >= received;
                    (arrived, arrived && complete)
                }
            };
            if complete || (arrived && last_change.elapsed() >= QUIET) || Instant::now() >= deadline
            {
                return Ok(last);
            }
            std::thread::sleep(crate::observe::POLL_INTERVAL);
            let now = self.snapshot()?;
            if now != last {
                last = now;
                last_change = Instant::now();
            }
        }
    }
}

/// A program's verdict counter by convention: a one-slot u64 array (or per-CPU array) at key 0.
fn counter(program: &Program, name: &str) -> Result<Option<u64>, RunError> {
    let map = program.map(name)?;
    Ok(map.lookup(&0u32.to_le_bytes())?.and_then(|v| v.sum_u64()))
}

fn has_counter(program: &Program, name: &str) -> bool {
    program.map(name).is_ok_and(|m| {
        matches!(m.kind(), MapKind::Array | MapKind::PerCpuArray)
            && m.key_size() == 4
            && m.value_size() == 8
    })
}

fn execute(scenario: &Scenario, report: &mut ScenarioReport) -> Result<(), RunError> {
    let source = match &scenario.program.object {
        ObjectRef::Bundled(name) => ObjectSource::Bundled(name.clone()),
        ObjectRef::Path(path) => ObjectSource::File(path.clone()),
    };
    let program = Program::load(&source, &scenario.program.entry)?;
    check_map_expectations(scenario, &program)?;
    write_rules(scenario, &program)?;
    let templates = build_frames(scenario)?;

    let mode = mode(scenario);
    let lab = Lab::new(&LabConfig {
        mtu: scenario.lab.mtu,
        ipv6: scenario.lab.ipv6,
    })?;
    let mut program = program;
    let attachment = program.attach(lab.receiver(), mode)?;
    let counts: Vec<u32> = scenario.sends.iter().map(|g| g.count).collect();
    let observers = Observers {
        driver: DriverStats::open(lab.receiver())?,
        rx: LinkStats::open(lab.receiver())?,
        tx: LinkStats::open(lab.sender())?,
        capture: Capture::start(lab.receiver(), lab.run_id(), &counts)?,
        drop_cnt: has_counter(&program, "drop_cnt"),
        pass_cnt: has_counter(&program, "pass_cnt"),
        program: &program,
    };
    let mut injector = PnetInjector::open(lab.sender())?;

    let first = observers.snapshot()?;
    let mut windows = Vec::with_capacity(scenario.sends.len());
    let mut before = first.clone();
    for (index, (group, template)) in scenario.sends.iter().zip(&templates).enumerate() {
        let group_id = u16::try_from(index)
            .map_err(|_| RunError::input("a scenario may have at most 65536 send groups"))?;
        let stats = injector.send(template, lab.run_id(), group_id, group.count);
        let after = observers.settle(mode, &before, stats.accepted)?;
        windows.push((stats, before, after.clone()));
        before = after;
    }
    let Observers { capture, .. } = observers;
    let mut captured = capture.finish()?;
    drop(injector);

    for (index, ((group, template), (stats, before, after))) in scenario
        .sends
        .iter()
        .zip(&templates)
        .zip(&windows)
        .enumerate()
    {
        let group_report = check_group(
            mode,
            index,
            group,
            template,
            stats,
            before,
            after,
            &mut captured,
        );
        report
            .failures
            .extend(group_failures(mode, &group_report, stats));
        report.groups.push(group_report);
    }
    report.unattributed = captured.stray_tagged
        + captured.untagged.values().sum::<u64>()
        + captured.untagged_overflow;
    if captured.socket_drops > 0 {
        report.failures.push(format!(
            "the capture socket dropped {} frame(s): the receiver-side counts are incomplete",
            captured.socket_drops
        ));
    }
    report.counters = check_counters(mode, &windows, &report.groups);
    for c in report.counters.iter().filter(|c| !c.ok) {
        report.failures.push(format!(
            "program counter {} = {} disagrees with {} = {}",
            c.map, c.program, c.source, c.kernel
        ));
    }
    for expect in &scenario.map_expects {
        let check = check_map(scenario, &program, expect)?;
        if !check.ok {
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
    attachment.detach()?;
    drop(lab);
    Ok(())
}

fn build_frames(scenario: &Scenario) -> Result<Vec<FrameTemplate>, RunError> {
    let endpoints = crate::lab::endpoints();
    scenario
        .sends
        .iter()
        .map(|group| {
            let max_len = scenario.lab.max_frame_len(&group.frame);
            FrameTemplate::build(&group.frame, &endpoints, max_len).map_err(|e: FrameError| {
                RunError::input(at(
                    scenario,
                    group.line,
                    &format!("send {:?}: {e}", group.name),
                ))
            })
        })
        .collect()
}

fn write_rules(scenario: &Scenario, program: &Program) -> Result<(), RunError> {
    if scenario.rules.is_empty() {
        return Ok(());
    }
    let map = program.map("filter_rules").map_err(|e| {
        RunError::input(format!(
            "{}: [[rule]] needs the xdp_filter rule map: {e}",
            scenario.path.display()
        ))
    })?;
    if map.kind() != MapKind::Array || map.value_size() != 8 || map.key_size() != 4 {
        return Err(RunError::input(format!(
            "{}: map filter_rules is a {} with {}-byte keys and {}-byte values, not the xdp_filter rule array",
            scenario.path.display(),
            map.kind(),
            map.key_size(),
            map.value_size()
        )));
    }
    if scenario.rules.len() > map.max_entries() as usize {
        return Err(RunError::input(format!(
            "{}: {} rules do not fit the {} slots of filter_rules",
            scenario.path.display(),
            scenario.rules.len(),
            map.max_entries()
        )));
    }
    for (index, rule) in scenario.rules.iter().enumerate() {
        map.update(&(index as u32).to_le_bytes(), &rule.encode())?;
    }
    Ok(())
}

fn check_map_expectations(scenario: &Scenario, program: &Program) -> Result<(), RunError> {
    for expect in &scenario.map_expects {
        let map = program
            .map(&expect.map)
            .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
        if map.kind() == MapKind::Other {
            return Err(RunError::input(at(
                scenario,
                expect.line,
                &format!(
                    "map {:?} is not an array, per-CPU array or hash map; it cannot be checked by key",
                    expect.map
                ),
            )));
        }
        expect.key.to_bytes(map.key_size()).map_err(|e| {
            RunError::input(at(
                scenario,
                expect.line,
                &format!("key of map {:?}: {e}", expect.map),
            ))
        })?;
        if let Some(value) = &expect.value {
            if map.kind().is_per_cpu() && matches!(value, MapBytes::Hex(_)) {
                return Err(RunError::input(at(
                    scenario,
                    expect.line,
                    &format!(
                        "map {:?} is per-CPU: give value as an integer (the sum) or per-cpu as a list",
                        expect.map
                    ),
                )));
            }
            if let MapBytes::Hex(_) = value {
                value.to_bytes(map.value_size()).map_err(|e| {
                    RunError::input(at(
                        scenario,
                        expect.line,
                        &format!("value of map {:?}: {e}", expect.map),
                    ))
                })?;
            } else if map.value_size() > 8 {
                return Err(RunError::input(at(
                    scenario,
                    expect.line,
                    &format!(
                        "map {:?} has {}-byte values: give value as hex bytes",
                        expect.map,
                        map.value_size()
                    ),
                )));
            }
        }
        if expect.per_cpu.is_some() && !map.kind().is_per_cpu() {
            return Err(RunError::input(at(
                scenario,
                expect.line,
                &format!(
                    "map {:?} is a {}, not per-CPU: use value",
                    expect.map,
                    map.kind()
                ),
            )));
        }
    }
    Ok(())
}

fn key_json(key: &MapBytes) -> Value {
    match key {
        MapBytes::Int(n) => json!(n),
        MapBytes::Hex(bytes) => json!(hex(bytes)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_map(
    scenario: &Scenario,
    program: &Program,
    expect: &MapExpect,
) -> Result<MapCheck, RunError> {
    let map = program.map(&expect.map)?;
    let key = expect
        .key
        .to_bytes(map.key_size())
        .map_err(|e| RunError::input(at(scenario, expect.line, &e)))?;
    let value = map.lookup(&key)?;
    let per_cpu = value.as_ref().and_then(MapValue::per_cpu_u64);
    let absent = json!("absent");
    let (expected, actual, ok) = if expect.absent {
        let actual = value.as_ref().map_or(absent.clone(), value_json);
        (absent, actual, value.is_none())
    } else if let Some(list) = &expect.per_cpu {
        let actual = per_cpu.as_ref().map_or(absent, |v| json!(v));
        let ok = per_cpu.as_deref() == Some(list.as_slice());
        (json!(list), actual, ok)
    } else {
        match (&expect.value, &value) {
            (Some(MapBytes::Int(n)), Some(v)) => {
                let sum = v.sum_u64();
                (json!(n), json!(sum), sum == Some(*n))
            }
            (Some(MapBytes::Hex(bytes)), Some(MapValue::Single(v))) => {
                (json!(hex(bytes)), json!(hex(v)), bytes == v)
            }
            (Some(expected), v) => {
                let expected = match expected {
                    MapBytes::Int(n) => json!(n),
                    MapBytes::Hex(b) => json!(hex(b)),
                };
                (expected, v.as_ref().map_or(absent, value_json), false)
            }
            (None, _) => unreachable!("the parser requires value, per-cpu or absent"),
        }
    };
    Ok(MapCheck {
        map: expect.map.clone(),
        key: key_json(&expect.key),
        expected,
        actual,
        per_cpu,
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

#[expect(
    clippy::too_many_arguments,
    reason = "one group's inputs and observations, used once"
)]
fn check_group(
    mode: XdpMode,
    index: usize,
    group: &SendGroup,
    template: &FrameTemplate,
    stats: &InjectStats,
    before: &Snapshot,
    after: &Snapshot,
    captured: &mut Captured,
) -> GroupReport {
    let sent = stats.accepted;
    let mut missing = Vec::new();
    let mut leaked = Vec::new();
    let mut duplicated = Vec::new();
    let captured_in_window = after.captured - before.captured;
    let (passed, attributed_by) = if template.is_tagged() {
        let seen = &captured.seen[index];
        let mut passed = 0;
        for (seq, &count) in seen.iter().enumerate() {
            let seq = seq as u32;
            if count > 0 {
                passed += 1;
                if group.expect == Verdict::Drop && leaked.len() < LISTED {
                    leaked.push(seq);
                }
                if count > 1 && duplicated.len() < LISTED {
                    duplicated.push(seq);
                }
            } else if group.expect == Verdict::Pass && missing.len() < LISTED {
                missing.push(seq);
            }
        }
        (passed, Attribution::Tag)
    } else if observable_after_xdp(template.bytes()) {
        // Too small for a tag: attribute by exact content, taking the frames so a later group
        // with the same bytes cannot count them again.
        let seen = captured.untagged.remove(template.bytes()).unwrap_or(0);
        let passed = seen.min(sent);
        if seen > passed {
            captured
                .untagged
                .insert(template.bytes().to_vec(), seen - passed);
        }
        (passed, Attribution::Content)
    } else {
        // The kernel frees these before any capture, so whatever was captured in this window
        // is background, and the verdicts must come from a counter.
        let background = captured_in_window;
        let delta = |now: Option<u64>, then: Option<u64>| Some(now? - then?);
        match mode {
            XdpMode::Native => (
                after
                    .xdp
                    .since(&before.xdp)
                    .passed()
                    .saturating_sub(background),
                Attribution::Kernel,
            ),
            XdpMode::Generic => match (
                delta(after.pass_cnt, before.pass_cnt),
                delta(after.drop_cnt, before.drop_cnt),
            ) {
                (Some(passed), _) => (passed, Attribution::Program),
                (None, Some(dropped)) => (sent.saturating_sub(dropped), Attribution::Program),
                (None, None) => (0, Attribution::None),
            },
        }
    };
    let tx = after.tx.since(&before.tx);
    GroupReport {
        name: group.name.clone(),
        expect: group.expect,
        offered: stats.offered,
        sent,
        dropped: sent.saturating_sub(passed),
        passed,
        attributed_by: attributed_by.as_str(),
        unattributed: captured_in_window.saturating_sub(passed),
        kernel: KernelView {
            received: after.rx.since(&before.rx).rx_packets,
            xdp: (mode == XdpMode::Native).then(|| after.xdp.since(&before.xdp)),
            sender_dropped: tx.tx_dropped,
        },
        missing,
        leaked,
        duplicated,
    }
}

fn list(seqs: &[u32], total: u64) -> String {
    let shown: Vec<String> = seqs.iter().map(u32::to_string).collect();
    let more = if total > seqs.len() as u64 {
        ", ..."
    } else {
        ""
    };
    format!("seq {}{more}", shown.join(", "))
}

/// How a group's pass/drop count is known, for failure messages.
fn evidence(g: &GroupReport, seqs: &[u32], total: u64) -> String {
    match g.attributed_by {
        "tag" => list(seqs, total),
        "content" => "untagged frames, counted by content".to_owned(),
        "kernel" => format!(
            "counted by the veth XDP counters: the kernel frees VLAN frames shorter than \
             {MIN_OBSERVABLE_VLAN_FRAME} bytes before any capture"
        ),
        _ => format!(
            "counted by the program's drop_cnt/pass_cnt: the kernel frees VLAN frames shorter \
             than {MIN_OBSERVABLE_VLAN_FRAME} bytes before any capture"
        ),
    }
}

fn group_failures(mode: XdpMode, g: &GroupReport, stats: &InjectStats) -> Vec<String> {
    let mut failures = Vec::new();
    let name = &g.name;
    if stats.accepted < stats.offered {
        failures.push(format!(
            "send {name:?}: the sender could not send {} of {} frames ({})",
            stats.offered - stats.accepted,
            stats.offered,
            stats.last_error.as_deref().unwrap_or("no error given")
        ));
    }
    if g.attributed_by == Attribution::None.as_str() {
        failures.push(format!(
            "send {name:?}: cannot observe the verdicts: the kernel frees VLAN-tagged frames \
             shorter than {MIN_OBSERVABLE_VLAN_FRAME} bytes before any capture, and generic mode \
             has no XDP counters; use native mode or give the program drop_cnt/pass_cnt maps"
        ));
        return failures;
    }
    match g.expect {
        Verdict::Pass if g.passed < g.sent => failures.push(format!(
            "send {name:?}: expected pass, {} of {} frames did not arrive at the receiver ({})",
            g.sent - g.passed,
            g.sent,
            evidence(g, &g.missing, g.sent - g.passed)
        )),
        Verdict::Drop if g.passed > 0 => failures.push(format!(
            "send {name:?}: expected drop, {} of {} frames arrived at the receiver ({})",
            g.passed,
            g.sent,
            evidence(g, &g.leaked, g.passed)
        )),
        _ => {}
    }
    if !g.duplicated.is_empty() {
        failures.push(format!(
            "send {name:?}: frames arrived more than once ({})",
            list(&g.duplicated, g.duplicated.len() as u64)
        ));
    }
    if g.kernel.sender_dropped > 0 {
        failures.push(format!(
            "send {name:?}: {} frames were lost between the sending veth and XDP",
            g.kernel.sender_dropped
        ));
    }
    // Background frames seen in this group's window passed XDP too: the kernel counted them.
    let background = g.unattributed;
    let also = if background > 0 {
        format!(" (+{background} background frame(s) seen at the receiver)")
    } else {
        String::new()
    };
    match (mode, &g.kernel.xdp) {
        (XdpMode::Native, Some(xdp)) => {
            if xdp.packets != g.sent + background {
                failures.push(format!(
                    "send {name:?}: kernel oracle: native XDP ran on {} frames, {} were sent{also}",
                    xdp.packets, g.sent
                ));
            }
            let not_passed = xdp.drops + xdp.tx + xdp.redirect;
            if xdp.passed() != g.passed + background || not_passed != g.dropped {
                failures.push(format!(
                    "send {name:?}: kernel oracle disagrees with the capture: veth counted {} passed and {not_passed} dropped, the receiver saw {} and missed {}{also}",
                    xdp.passed(),
                    g.passed,
                    g.dropped
                ));
            }
        }
        _ => {
            if g.kernel.received != g.sent + background {
                failures.push(format!(
                    "send {name:?}: kernel oracle: the receiving veth got {} frames, {} were sent{also}",
                    g.kernel.received, g.sent
                ));
            }
        }
    }
    failures
}

/// Compares `drop_cnt`/`pass_cnt` over the run with the kernel's count of the same verdict.
///
/// In native mode the veth XDP counters cover every frame. In generic mode the driver has no
/// XDP counters, so the kernel side is the device's receive count minus (for drops) or limited
/// to (for passes) what the capture saw; that only holds where passed frames can be captured,
/// so windows of groups the capture cannot see are left out (and said so in `source`).
fn check_counters(
    mode: XdpMode,
    windows: &[(InjectStats, Snapshot, Snapshot)],
    groups: &[GroupReport],
) -> Vec<CounterCheck> {
    let delta = |now: Option<u64>, then: Option<u64>| Some(now? - then?);
    let observable = |g: &GroupReport| matches!(g.attributed_by, "tag" | "content");
    let counted: Vec<&(InjectStats, Snapshot, Snapshot)> = windows
        .iter()
        .zip(groups)
        .filter(|(_, g)| mode == XdpMode::Native || observable(g))
        .map(|(w, _)| w)
        .collect();
    if counted.is_empty() {
        return Vec::new();
    }
    let skipped = windows.len() - counted.len();
    let sum = |f: &dyn Fn(&Snapshot, &Snapshot) -> Option<u64>| -> Option<u64> {
        counted
            .iter()
            .map(|(_, before, after)| f(before, after))
            .sum()
    };
    let xdp_drops = sum(&|b, a| Some(a.xdp.since(&b.xdp).drops));
    let xdp_passed = sum(&|b, a| Some(a.xdp.since(&b.xdp).passed()));
    let received = sum(&|b, a| Some(a.rx.since(&b.rx).rx_packets));
    let captured = sum(&|b, a| Some(a.captured - b.captured));
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
    let drop_cnt = sum(&|b, a| delta(a.drop_cnt, b.drop_cnt));
    if let Some(program) = drop_cnt {
        let (kernel, source) = match mode {
            XdpMode::Native => (xdp_drops.unwrap_or(0), note("veth rx_xdp_drops")),
            XdpMode::Generic => (
                received.unwrap_or(0).saturating_sub(captured.unwrap_or(0)),
                note("veth rx_packets - captured"),
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
    let pass_cnt = sum(&|b, a| delta(a.pass_cnt, b.pass_cnt));
    if let Some(program) = pass_cnt {
        let (kernel, source) = match mode {
            XdpMode::Native => (xdp_passed.unwrap_or(0), note("veth rx_xdp_packets - drops")),
            XdpMode::Generic => (captured.unwrap_or(0), note("captured after XDP")),
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
