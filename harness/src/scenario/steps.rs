//! Running a lifecycle scenario: the `[[step]]` sequence an operator follows with bpftool
//! (load, pin, attach, read maps, replace under load, roll back, restart, detach, unpin),
//! each step checked as it happens.
//!
//! Everything the steps make lives in a bpffs of the run's own ([`crate::kernel::pin::Bpffs`]):
//! `progs/<version>`, `maps/<map>` and `links/<link>`. The run keeps no handle it could not
//! get back from a pin: a version is pinned as soon as it is loaded and then held through its
//! pin, and a link is always a pinned [`XdpLink`]. A `restart` step drops every handle and
//! opens them again from the pins, as a restarted control plane would, and checks that the
//! kernel kept running what it ran.
//!
//! Background sends use the batched injector with one tag per frame, so a program that
//! traces sequence numbers (the bundled `xdp_version`) proves which version handled each
//! frame across a replacement.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::json;

use super::map_checks::{check_map, map_key};
use super::plan::{
    RunOptions, at, build_frames, group_plans, load_error, peer_name, resolve, topology_spec,
};
use super::values::Shape;
use crate::engine::{GroupPlan, LiveSession, Pending, SessionOptions};
use crate::engine::{RunError, error::interrupted};
use crate::{
    inject::{Budget, InjectStats, batched::BatchedInjector, pnet::PnetInjector},
    kernel::link::XdpLink,
    kernel::maps::{MapValue, PinnedMap},
    kernel::pin::Bpffs,
    kernel::program::{LoadOptions, ObjectSource, PinnedProgram, Program, XdpMode},
    kernel::veth::VethEnd,
    report::{ScenarioReport, StepReport},
    scenario::{
        MapExpect, Scenario, StepAction, StepExpect, TraceExpect,
        schema::{LinkExpect, Step},
    },
    topology::{EndName, Topology, TopologySpec},
};

/// The bpffs directories, one per kind of pinned object.
const PROGS: &str = "progs";
const MAPS: &str = "maps";
const LINKS: &str = "links";

/// How long a check waits for frames still in flight (a veth's backlog) to be accounted.
const SETTLE: Duration = Duration::from_secs(3);
/// How long counts must stay still to be final.
const QUIET: Duration = Duration::from_millis(50);
/// Sequence numbers listed in a message, at most.
const LIST: usize = 10;

/// A loaded version: what the kernel calls it and what it traces as.
struct Version {
    prog_id: u32,
    number: Option<u32>,
}

/// The handles a control plane holds; `restart` drops them all and reopens from the pins.
#[derive(Default)]
struct Handles {
    programs: BTreeMap<String, PinnedProgram>,
    links: BTreeMap<String, XdpLink>,
}

/// A send running on a thread of its own.
struct Background {
    group: usize,
    /// The group's window in its session, open while the frames go out.
    pending: Pending,
    progress: Arc<AtomicU64>,
    thread: JoinHandle<InjectStats>,
}

/// One run of a step sequence. Fields drop in declaration order: the background sender is
/// joined first (in `Drop`), then the handles, the bpffs (which takes the pins, and with
/// them the links and programs) and last the lab.
struct Lifecycle<'a> {
    scenario: &'a Scenario,
    mode: XdpMode,
    run_id: u32,
    background: Option<Background>,
    handles: Handles,
    /// Taken at the end to unmount it and see errors; `Drop` unmounts otherwise.
    bpffs: Option<Bpffs>,
    /// The engine's sessions, one per interface the groups arrive at.
    sessions: Vec<(EndName, LiveSession<'a>)>,
    topology: &'a Topology,
    spec: TopologySpec,
    plans: Vec<GroupPlan>,
    versions: BTreeMap<String, Version>,
    /// What each link should be running, by the steps so far (`None`: detached).
    expected: BTreeMap<String, Option<String>>,
    /// The interface of each link.
    link_at: BTreeMap<String, EndName>,
    /// Sender results per send group, once finished.
    sent: Vec<Option<InjectStats>>,
    /// Last value read per (map, key), for `delta`.
    baselines: HashMap<(String, Vec<u8>), MapValue>,
    /// Kernel ids of the maps and links the run made, by name, to see them released.
    map_ids: BTreeMap<String, u32>,
    link_ids: BTreeMap<String, u32>,
}

impl Drop for Lifecycle<'_> {
    fn drop(&mut self) {
        // A background send is bounded by its budget; never leave it sending into a lab that
        // is being torn down.
        if let Some(background) = self.background.take() {
            let _ = background.thread.join();
        }
    }
}

/// Runs a scenario's steps with every attachment in `mode`, filling `report`.
pub(super) fn execute(
    scenario: &Scenario,
    mode: XdpMode,
    options: &RunOptions,
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    let spec = topology_spec(scenario);
    let templates = build_frames(scenario, &spec)?;
    let bpffs = Bpffs::mount()?;
    for dir in [PROGS, MAPS, LINKS] {
        let path = bpffs.pin_path(dir);
        std::fs::create_dir(&path).map_err(|e| {
            RunError::environment(format!("failed to create {}: {e}", path.display()))
        })?;
    }
    let topology = Topology::build(&spec)?;
    let run_id = options.run_id.unwrap_or_else(|| topology.run_id());
    let plans = group_plans(scenario, &spec, templates)?;
    // One session per interface the groups' frames arrive at: the peer of where they leave.
    let mut sessions: Vec<(EndName, LiveSession<'_>)> = Vec::new();
    let session_options = SessionOptions {
        run_id: Some(run_id),
        keep_frames: 0,
    };
    for plan in &plans {
        let to = peer_name(&spec, &plan.from).expect("every end has a peer");
        if sessions.iter().any(|(n, _)| *n == to) {
            continue;
        }
        let session = LiveSession::observe(&topology, &to, mode, &session_options)?;
        sessions.push((to, session));
    }
    let mut run = Lifecycle {
        scenario,
        mode,
        run_id,
        background: None,
        handles: Handles::default(),
        bpffs: Some(bpffs),
        sessions,
        topology: &topology,
        spec,
        plans,
        versions: BTreeMap::new(),
        expected: BTreeMap::new(),
        link_at: BTreeMap::new(),
        sent: vec![None; scenario.sends.len()],
        baselines: HashMap::new(),
        map_ids: BTreeMap::new(),
        link_ids: BTreeMap::new(),
    };
    report.notes.push(format!(
        "pins in a private bpffs at {}, removed with it at the end",
        run.bpffs().path().display()
    ));
    for step in &scenario.steps {
        // SIGINT/SIGTERM: abandon between steps; the guards undo everything.
        interrupted()?;
        let outcome = run.step(step);
        let (ok, detail, data) = match outcome {
            Ok(Outcome { ok, detail, data }) => (ok, detail, data),
            Err(e) => {
                report.steps.push(StepReport {
                    line: step.line,
                    action: step.action.verb().to_owned(),
                    ok: false,
                    detail: e.message.clone(),
                    data: None,
                });
                return Err(RunError {
                    kind: e.kind,
                    message: format!(
                        "{} step at line {}: {}",
                        step.action.verb(),
                        step.line,
                        e.message
                    ),
                });
            }
        };
        if !ok {
            report.failures.push(format!(
                "{} step at line {}: {detail}",
                step.action.verb(),
                step.line
            ));
        }
        report.steps.push(StepReport {
            line: step.line,
            action: step.action.verb().to_owned(),
            ok,
            detail,
            data,
        });
    }
    if let Some(background) = run.background.take() {
        let group = background.group;
        let (_, stats) = join(background)?;
        report.notes.push(format!(
            "background send {:?} was still running after the last step; waited for it ({} frames)",
            scenario.sends[group].name, stats.accepted
        ));
        run.sent[group] = Some(stats);
    }
    for (index, stats) in run.sent.iter().enumerate() {
        if stats.is_none() {
            report
                .notes
                .push(format!("send {:?} never ran", scenario.sends[index].name));
        }
    }
    // Teardown in order: handles, then the bpffs (unpinning releases links and programs),
    // then the lab; errors here are the run's.
    run.handles = Handles::default();
    run.sessions.clear();
    if let Some(bpffs) = run.bpffs.take() {
        bpffs.unmount()?;
    }
    Ok(())
}

/// What a step did.
struct Outcome {
    ok: bool,
    detail: String,
    data: Option<serde_json::Value>,
}

impl Outcome {
    fn done(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
            data: None,
        }
    }
}

fn end<'t>(topology: &'t Topology, name: &EndName) -> &'t VethEnd {
    topology
        .interface(&name.netns, Some(&name.interface))
        .expect("resolved names exist")
        .1
}

fn join(background: Background) -> Result<(Pending, InjectStats), RunError> {
    let stats = background
        .thread
        .join()
        .map_err(|_| RunError::environment("the background sender panicked"))?;
    Ok((background.pending, stats))
}

impl<'a> Lifecycle<'a> {
    fn bpffs(&self) -> &Bpffs {
        self.bpffs
            .as_ref()
            .expect("mounted until the end of the run")
    }

    fn pin(&self, dir: &str, name: &str) -> PathBuf {
        self.bpffs().pin_path(dir).join(name)
    }

    fn step(&mut self, step: &Step) -> Result<Outcome, RunError> {
        match &step.action {
            StepAction::Load {
                version,
                object,
                entry,
                globals,
                object_line,
                entry_line,
            } => self.load(version, object, entry, globals, (*object_line, *entry_line)),
            StepAction::Attach {
                version,
                at,
                mode: _,
                link,
            } => {
                // The run's path decides the mode (`--paths`), like the program of a
                // [[send]] scenario; the file's mode is the default path.
                let name = resolve(&self.spec, at)?;
                self.program(version)?;
                let end = end(self.topology, &name);
                let attachment = self
                    .handles
                    .programs
                    .get_mut(version)
                    .expect("opened above")
                    .attach(end, self.mode)?;
                let path = self.pin(LINKS, link);
                let link_handle = XdpLink::pin(attachment, &path)?;
                let info = link_handle.info()?;
                self.link_ids.insert(link.clone(), info.id);
                self.handles.links.insert(link.clone(), link_handle);
                self.expected.insert(link.clone(), Some(version.clone()));
                self.link_at.insert(link.clone(), name.clone());
                Ok(Outcome::done(format!(
                    "{version} (prog id {}) attached to {name} in {} mode through link id {}, pinned at {LINKS}/{link}",
                    info.prog_id, self.mode, info.id
                )))
            }
            StepAction::Send { group, background } => self.send(*group, *background),
            StepAction::Wait {
                group,
                frames: Some(frames),
            } => {
                let background = self.background.as_ref().ok_or_else(|| {
                    RunError::input("no background send is running (the parser checks this)")
                })?;
                let started = Instant::now();
                // Bounded: the sender's own budget ends it, and a finished sender ends this.
                while background.progress.load(Ordering::Relaxed) < u64::from(*frames)
                    && !background.thread.is_finished()
                    && crate::interrupt::requested().is_none()
                {
                    std::thread::sleep(crate::observe::POLL_INTERVAL);
                }
                let reached = background.progress.load(Ordering::Relaxed);
                Ok(Outcome {
                    ok: reached >= u64::from(*frames),
                    detail: format!(
                        "{:?} has sent {reached} frames (waited {} ms for {frames})",
                        self.scenario.sends[*group].name,
                        started.elapsed().as_millis()
                    ),
                    data: None,
                })
            }
            StepAction::Wait {
                group,
                frames: None,
            } => {
                let background = self.background.take().ok_or_else(|| {
                    RunError::input("no background send is running (the parser checks this)")
                })?;
                debug_assert_eq!(background.group, *group);
                let (pending, stats) = join(background)?;
                let detail = self.arrived(*group, pending, &stats)?;
                self.sent[*group] = Some(stats);
                Ok(detail)
            }
            StepAction::Sleep { duration } => {
                // In slices, so SIGINT/SIGTERM need not wait for a long sleep.
                let end = Instant::now() + *duration;
                while Instant::now() < end {
                    interrupted()?;
                    std::thread::sleep((end - Instant::now()).min(QUIET));
                }
                Ok(Outcome::done(format!(
                    "slept {}",
                    super::format_duration(*duration)
                )))
            }
            StepAction::Replace { link, version } | StepAction::Rollback { link, version } => {
                self.replace(link, version)
            }
            StepAction::Detach { link } => {
                let handle = self.link(link)?;
                handle.detach()?;
                let info = handle.info()?;
                self.expected.insert(link.clone(), None);
                Ok(Outcome {
                    ok: !info.is_attached(),
                    detail: format!(
                        "link {link} (id {}) detached; its pin stays until unpinned",
                        info.id
                    ),
                    data: None,
                })
            }
            StepAction::Restart => self.restart(),
            StepAction::Unpin { pins } => self.unpin(pins.as_deref()),
            StepAction::Expect(expect) => self.expect(expect),
        }
    }

    fn load(
        &mut self,
        version: &str,
        object: &ObjectSource,
        entry: &str,
        globals: &[(String, u32)],
        (object_line, entry_line): (usize, usize),
    ) -> Result<Outcome, RunError> {
        let options = LoadOptions {
            globals: globals.to_vec(),
            map_pin_dir: Some(self.bpffs().pin_path(MAPS)),
            ..LoadOptions::default()
        };
        let before = self.bpffs_entries(MAPS)?;
        let mut program = Program::load_with(object, entry, &options)
            .map_err(|e| load_error(self.scenario, object_line, entry_line, &e))?;
        let path = self.pin(PROGS, version);
        program.pin(&path)?;
        let prog_id = program.id()?;
        // From here on the version is held through its pin, as after a restart.
        drop(program);
        let pinned = PinnedProgram::open(&path)?;
        self.handles.programs.insert(version.to_owned(), pinned);
        let after = self.bpffs_entries(MAPS)?;
        let (reused, created): (Vec<&String>, Vec<&String>) =
            after.iter().partition(|m| before.contains(m));
        for map in &created {
            let id = PinnedMap::open(&self.pin(MAPS, map))?.id()?;
            self.map_ids.insert((*map).clone(), id);
        }
        let number = globals
            .iter()
            .find(|(g, _)| g == "version")
            .map(|(_, v)| *v);
        self.versions
            .insert(version.to_owned(), Version { prog_id, number });
        Ok(Outcome::done(format!(
            "{version}: {}:{entry} loaded as prog id {prog_id}, pinned at {PROGS}/{version}; maps created {}, reused {}",
            object.name(),
            names(&created),
            names(&reused)
        )))
    }

    /// Pins in one of the run's directories, by name.
    fn bpffs_entries(&self, dir: &str) -> Result<Vec<String>, RunError> {
        let path = self.bpffs().pin_path(dir);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .map_err(|e| RunError::environment(format!("failed to list {}: {e}", path.display())))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn program(&mut self, version: &str) -> Result<&PinnedProgram, RunError> {
        if !self.handles.programs.contains_key(version) {
            let pinned = PinnedProgram::open(&self.pin(PROGS, version))?;
            self.handles.programs.insert(version.to_owned(), pinned);
        }
        Ok(&self.handles.programs[version])
    }

    fn link(&mut self, link: &str) -> Result<&XdpLink, RunError> {
        if !self.handles.links.contains_key(link) {
            let handle = XdpLink::open(&self.pin(LINKS, link))?;
            self.handles.links.insert(link.to_owned(), handle);
        }
        Ok(&self.handles.links[link])
    }

    fn send(&mut self, group: usize, background: Option<Duration>) -> Result<Outcome, RunError> {
        let send = &self.scenario.sends[group];
        let plan = self.plans[group].clone();
        let ids: Vec<u32> = self.versions.values().map(|v| v.prog_id).collect();
        let to = peer_name(&self.spec, &plan.from).expect("every end has a peer");
        let attached = self
            .link_at
            .iter()
            .any(|(link, at)| *at == to && self.expected.get(link).is_some_and(Option::is_some));
        let session = self.session(&plan.from)?;
        session.set_prog_ids(&ids);
        session.set_attached(attached);
        let pending = session.begin_numbered(&plan, group)?;
        match background {
            None => {
                let mut injector = PnetInjector::open(end(self.topology, &plan.from))?;
                let stats = injector.send(&plan.frames, self.run_id, pending.group_id, plan.count);
                drop(injector);
                let outcome = self.arrived(group, pending, &stats)?;
                self.sent[group] = Some(stats);
                Ok(outcome)
            }
            Some(duration) => {
                let mut injector = BatchedInjector::open(end(self.topology, &plan.from))?;
                let template = plan.frames[0].clone();
                let run_id = self.run_id;
                let group_id = pending.group_id;
                let budget = Budget {
                    frames: u64::from(send.count),
                    duration,
                };
                let progress = Arc::new(AtomicU64::new(0));
                let counter = Arc::clone(&progress);
                let thread = std::thread::Builder::new()
                    .name(format!("xl-bg-{group}"))
                    .spawn(move || {
                        injector.send_tagged(&template, run_id, group_id, budget, &counter)
                    })
                    .map_err(|e| {
                        RunError::environment(format!("failed to start a sender thread: {e}"))
                    })?;
                self.background = Some(Background {
                    group,
                    pending,
                    progress,
                    thread,
                });
                Ok(Outcome::done(format!(
                    "{:?}: sending from {} in the background for at most {} or {} frames",
                    send.name,
                    plan.from,
                    super::format_duration(duration),
                    send.count
                )))
            }
        }
    }

    /// The session that observes the interface frames from `from` arrive at.
    fn session(&mut self, from: &EndName) -> Result<&mut LiveSession<'a>, RunError> {
        let to = peer_name(&self.spec, from).expect("every end has a peer");
        self.sessions
            .iter_mut()
            .find(|(n, _)| *n == to)
            .map(|(_, session)| session)
            .ok_or_else(|| RunError::input(format!("no session observes {to}")))
    }

    /// Waits until a group's frames have been accounted for and judges where they went with
    /// the engine every scenario uses: a frame that reached the stack behind the program was
    /// passed, one seen nowhere was dropped (or aborted, told apart by the tracepoint).
    fn arrived(
        &mut self,
        group: usize,
        pending: Pending,
        stats: &InjectStats,
    ) -> Result<Outcome, RunError> {
        let send = &self.scenario.sends[group];
        let mut plan = self.plans[group].clone();
        // A background send stops at its duration: only the frames it sent are judged.
        plan.count = plan
            .count
            .min(u32::try_from(stats.accepted).unwrap_or(u32::MAX));
        let from = plan.from.clone();
        let to = peer_name(&self.spec, &from).expect("every end has a peer");
        let session = self.session(&from)?;
        // The engine's settle ends only once XDP has run on every frame (in generic mode:
        // the backlog drained), so a trace or counter read next sees them all.
        let judged = session.end(&plan, pending, stats.clone(), &mut || {})?;
        let g = &judged.report;
        let passed = g.passed;
        let accepted = stats.accepted;
        let dropped = accepted.saturating_sub(passed);
        let ok = judged.failures.is_empty() && stats.errors == 0;
        let mut detail = format!(
            "{:?}: {accepted} frames sent from {from} in {:.2} s ({:.2} Mpps), {passed} reached the stack at {to}, {dropped} did not (expected: every frame {})",
            send.name,
            stats.elapsed.as_secs_f64(),
            accepted as f64 / stats.elapsed.as_secs_f64().max(1e-9) / 1e6,
            send.expect
        );
        if stats.errors > 0 {
            detail.push_str(&format!(
                "; {} send errors, last: {}",
                stats.errors,
                stats.last_error.as_deref().unwrap_or("?")
            ));
        }
        for failure in &judged.failures {
            detail.push_str("; ");
            detail.push_str(&failure.to_string());
        }
        Ok(Outcome {
            ok,
            detail,
            data: Some(json!({
                "group": send.name,
                "accepted": accepted,
                "passed": passed,
                "not_passed": dropped,
                "aborted": g.aborted,
                "errors": stats.errors,
                "seconds": stats.elapsed.as_secs_f64(),
            })),
        })
    }

    fn replace(&mut self, link: &str, version: &str) -> Result<Outcome, RunError> {
        let current = self
            .expected
            .get(link)
            .cloned()
            .flatten()
            .ok_or_else(|| RunError::input(format!("link {link} runs nothing to replace")))?;
        self.program(version)?;
        self.program(&current)?;
        self.link(link)?;
        let new = &self.handles.programs[version];
        let old = &self.handles.programs[&current];
        let old_id = self.versions[&current].prog_id;
        let handle = &self.handles.links[link];
        let started = Instant::now();
        handle.update(new.fd()?, Some((old.fd()?, old_id)))?;
        let took = started.elapsed();
        let info = handle.info()?;
        let want = self.versions[version].prog_id;
        self.expected
            .insert(link.to_owned(), Some(version.to_owned()));
        Ok(Outcome {
            ok: info.prog_id == want,
            detail: format!(
                "link {link} (id {}): {current} (prog id {old_id}) -> {version} (prog id {want}) in {} us; the link now runs prog id {}",
                info.id,
                took.as_micros(),
                info.prog_id
            ),
            data: None,
        })
    }

    fn restart(&mut self) -> Result<Outcome, RunError> {
        let before: Vec<(String, u32)> = self
            .handles
            .links
            .iter()
            .map(|(name, l)| Ok((name.clone(), l.info()?.prog_id)))
            .collect::<Result<_, RunError>>()?;
        // Everything this process held goes, as if it had exited.
        let dropped = self.handles.programs.len() + self.handles.links.len();
        self.handles = Handles::default();
        let mut problems = Vec::new();
        let programs = self.bpffs_entries(PROGS)?;
        for version in &programs {
            let pinned = PinnedProgram::open(&self.pin(PROGS, version))?;
            if let Some(v) = self.versions.get(version) {
                let id = pinned.id()?;
                if id != v.prog_id {
                    problems.push(format!(
                        "{PROGS}/{version} is prog id {id}, not {}",
                        v.prog_id
                    ));
                }
            }
            self.handles.programs.insert(version.clone(), pinned);
        }
        let maps = self.bpffs_entries(MAPS)?;
        for map in &maps {
            PinnedMap::open(&self.pin(MAPS, map))?.map()?;
        }
        let links = self.bpffs_entries(LINKS)?;
        for link in &links {
            let handle = XdpLink::open(&self.pin(LINKS, link))?;
            let info = handle.info()?;
            let expected = self.expected.get(link).cloned().flatten();
            match &expected {
                Some(version) if self.versions[version].prog_id != info.prog_id => {
                    problems.push(format!(
                        "link {link} runs prog id {}, not {version} (prog id {})",
                        info.prog_id, self.versions[version].prog_id
                    ));
                }
                None if info.is_attached() => {
                    problems.push(format!("link {link} is attached, but was detached"));
                }
                _ => {}
            }
            self.handles.links.insert(link.clone(), handle);
        }
        for (name, prog_id) in &before {
            if !self.handles.links.contains_key(name) {
                problems.push(format!(
                    "link {name} (running prog id {prog_id}) has no pin to reopen it from"
                ));
            }
        }
        let ok = problems.is_empty();
        let mut detail = format!(
            "dropped {dropped} handles; reopened from pins {} programs ({}), {} maps ({}), {} links ({})",
            programs.len(),
            programs.join(", "),
            maps.len(),
            maps.join(", "),
            links.len(),
            links.join(", ")
        );
        if !ok {
            detail.push_str(&format!("; {}", problems.join("; ")));
        }
        Ok(Outcome {
            ok,
            detail,
            data: None,
        })
    }

    fn unpin(&mut self, pins: Option<&[String]>) -> Result<Outcome, RunError> {
        let pins_given = pins.is_some();
        let all: Vec<String>;
        let pins = match pins {
            Some(pins) => pins,
            None => {
                let mut list = Vec::new();
                for dir in [LINKS, PROGS, MAPS] {
                    for name in self.bpffs_entries(dir)? {
                        list.push(format!("{dir}/{name}"));
                    }
                }
                all = list;
                // Every handle goes too: after "all", nothing holds what the run made.
                self.handles = Handles::default();
                &all
            }
        };
        for pin in pins {
            let (dir, name) = pin.split_once('/').expect("the parser checks pin names");
            // Our handle goes with the pin: an unpinned object lives only while held.
            match dir {
                LINKS => {
                    self.handles.links.remove(name);
                    self.expected.insert(name.to_owned(), None);
                }
                PROGS => {
                    self.handles.programs.remove(name);
                }
                _ => {}
            }
            let path = self.bpffs().pin_path(dir).join(name);
            std::fs::remove_file(&path)
                .map_err(|e| RunError::input(format!("failed to unpin {}: {e}", path.display())))?;
        }
        if pins_given {
            return Ok(Outcome::done(format!("removed {}", pins.join(", "))));
        }
        // With every pin and handle gone, the kernel frees the programs, maps and links
        // (after an RCU grace period): see that nothing the run made outlives it.
        let started = Instant::now();
        let deadline = started + SETTLE;
        let mut left = loop {
            let left = self.still_loaded();
            if left.is_empty() || Instant::now() >= deadline {
                break left;
            }
            std::thread::sleep(QUIET);
        };
        left.sort();
        let released = format!(
            "{} programs, {} maps, {} links",
            self.versions.len(),
            self.map_ids.len(),
            self.link_ids.len()
        );
        Ok(Outcome {
            ok: left.is_empty(),
            detail: if left.is_empty() {
                format!(
                    "removed {}; the kernel released all {released} in {} ms",
                    pins.join(", "),
                    started.elapsed().as_millis()
                )
            } else {
                format!(
                    "removed {}; still loaded after {} ms: {}",
                    pins.join(", "),
                    started.elapsed().as_millis(),
                    left.join(", ")
                )
            },
            data: None,
        })
    }

    /// The run's programs, maps and links the kernel still has, by kind and id.
    fn still_loaded(&self) -> Vec<String> {
        let programs: Vec<u32> = aya::programs::loaded_programs()
            .flatten()
            .map(|p| p.id())
            .collect();
        let maps: Vec<u32> = aya::maps::loaded_maps().flatten().map(|m| m.id()).collect();
        let links: Vec<u32> = aya::programs::loaded_links()
            .flatten()
            .map(|l| l.id())
            .collect();
        let mut left = Vec::new();
        for (name, v) in &self.versions {
            if programs.contains(&v.prog_id) {
                left.push(format!("program {name} (id {})", v.prog_id));
            }
        }
        for (name, id) in &self.map_ids {
            if maps.contains(id) {
                left.push(format!("map {name} (id {id})"));
            }
        }
        for (name, id) in &self.link_ids {
            if links.contains(id) {
                left.push(format!("link {name} (id {id})"));
            }
        }
        left
    }

    fn expect(&mut self, expect: &StepExpect) -> Result<Outcome, RunError> {
        let mut failures = Vec::new();
        let mut found = Vec::new();
        let mut data = serde_json::Map::new();
        for m in &expect.maps {
            let (line, ok) = self.expect_map(m)?;
            if ok {
                found.push(line);
            } else {
                failures.push(line);
            }
        }
        if let Some(link) = &expect.link {
            let (line, ok) = self.expect_link(link)?;
            if ok {
                found.push(line);
            } else {
                failures.push(line);
            }
        }
        if let Some(pins) = &expect.pins {
            let mut actual = Vec::new();
            for dir in [PROGS, MAPS, LINKS] {
                for name in self.bpffs_entries(dir)? {
                    actual.push(format!("{dir}/{name}"));
                }
            }
            actual.sort();
            let line = format!("pins [{}]", actual.join(", "));
            if &actual == pins {
                found.push(line);
            } else {
                failures.push(format!("{line}, expected [{}]", pins.join(", ")));
            }
        }
        if let Some(trace) = &expect.trace {
            let (line, ok, value) = self.expect_trace(trace)?;
            data.insert("trace".into(), value);
            if ok {
                found.push(line);
            } else {
                failures.push(line);
            }
        }
        let ok = failures.is_empty();
        failures.extend(found);
        Ok(Outcome {
            ok,
            detail: failures.join("; "),
            data: (!data.is_empty()).then_some(serde_json::Value::Object(data)),
        })
    }

    fn expect_map(&mut self, expect: &MapExpect) -> Result<(String, bool), RunError> {
        let path = self.pin(MAPS, &expect.map);
        if !path.exists() {
            return Err(RunError::input(at(
                self.scenario,
                expect.line,
                &format!(
                    "no map {:?} is pinned (pinned: {})",
                    expect.map,
                    self.bpffs_entries(MAPS)?.join(", ")
                ),
            )));
        }
        let pinned = PinnedMap::open(&path)?;
        let map = pinned.map()?;
        let shape = Shape::of(&map)?;
        let key = map_key(self.scenario, expect.line, &shape, &expect.key, &|_| Ok(0))?;
        let slot = (expect.map.clone(), key.clone());
        let check = check_map(self.scenario, &map, expect, self.baselines.get(&slot))?;
        if let Some(now) = map.lookup(&key)? {
            self.baselines.insert(slot, now);
        }
        let plain = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let line = format!(
            "{}[{}] {} (expected {})",
            check.map,
            plain(&check.key),
            plain(&check.actual),
            plain(&check.expected)
        );
        Ok((line, check.ok))
    }

    fn expect_link(&mut self, expect: &LinkExpect) -> Result<(String, bool), RunError> {
        let info = self.link(&expect.link)?.info()?;
        let runs = self
            .versions
            .iter()
            .find(|(_, v)| v.prog_id == info.prog_id)
            .map_or_else(|| format!("prog id {}", info.prog_id), |(n, _)| n.clone());
        Ok(match &expect.runs {
            Some(version) => {
                let want = self.versions[version].prog_id;
                (
                    format!(
                        "link {} runs {runs}{} (expected {version})",
                        expect.link,
                        if info.is_attached() {
                            ""
                        } else {
                            " but is detached"
                        }
                    ),
                    info.prog_id == want && info.is_attached(),
                )
            }
            None => (
                format!(
                    "link {} is {} (expected detached)",
                    expect.link,
                    if info.is_attached() {
                        "attached"
                    } else {
                        "detached"
                    }
                ),
                !info.is_attached(),
            ),
        })
    }

    /// Reads the trace of a send group: which version handled each frame it sent.
    fn expect_trace(
        &mut self,
        trace: &TraceExpect,
    ) -> Result<(String, bool, serde_json::Value), RunError> {
        let send = &self.scenario.sends[trace.group];
        let Some(stats) = &self.sent[trace.group] else {
            return Err(RunError::input(format!(
                "send {:?} has not finished before this check",
                send.name
            )));
        };
        let sent = stats.accepted;
        let path = self.pin(MAPS, &trace.map);
        let pinned = PinnedMap::open(&path)?;
        let map = pinned.map()?;
        if sent > u64::from(map.max_entries()) {
            return Ok((
                format!(
                    "trace {}: send {:?} sent {sent} frames, the trace holds {}: cannot prove each",
                    trace.map,
                    send.name,
                    map.max_entries()
                ),
                false,
                json!(null),
            ));
        }
        let numbers: HashMap<u32, &str> = trace
            .versions
            .iter()
            .filter_map(|v| Some((self.versions.get(v)?.number?, v.as_str())))
            .collect();
        let group = u64::try_from(trace.group).unwrap_or(u64::MAX);
        let ours =
            |value: u64| value >> 32 == u64::from(self.run_id) && (value >> 16) & 0xffff == group;
        // Frames still in a veth's backlog are traced a moment later.
        let deadline = Instant::now() + SETTLE;
        let values = loop {
            let values = map.read_u64s(sent as usize)?;
            if values.iter().all(|v| ours(*v)) || Instant::now() >= deadline {
                break values;
            }
            std::thread::sleep(QUIET);
        };
        let mut by_version: BTreeMap<String, u64> = BTreeMap::new();
        let mut lost: Vec<u64> = Vec::new();
        let mut lost_count = 0u64;
        let mut foreign: Vec<(u64, u32)> = Vec::new();
        let mut switches: Vec<serde_json::Value> = Vec::new();
        let mut backwards = 0u64;
        let mut previous: Option<usize> = None;
        let order: HashMap<&str, usize> = trace
            .versions
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_str(), i))
            .collect();
        for (seq, value) in values.iter().enumerate() {
            let seq = seq as u64;
            if !ours(*value) {
                lost_count += 1;
                if lost.len() < LIST {
                    lost.push(seq);
                }
                continue;
            }
            let number = (*value & 0xffff) as u32;
            let Some(version) = numbers.get(&number) else {
                foreign.push((seq, number));
                continue;
            };
            *by_version.entry((*version).to_owned()).or_default() += 1;
            let rank = order[version];
            if let Some(p) = previous
                && p != rank
            {
                if rank < p {
                    backwards += 1;
                }
                switches.push(json!({
                    "seq": seq,
                    "from": trace.versions[p],
                    "to": version,
                }));
            }
            previous = Some(rank);
        }
        let ok = lost_count == 0 && foreign.is_empty() && sent > 0;
        let counts: Vec<String> = by_version.iter().map(|(v, n)| format!("{v} {n}")).collect();
        let mut line = format!(
            "trace of {:?}: {sent} frames sent, {} handled ({}), {lost_count} handled by no version",
            send.name,
            by_version.values().sum::<u64>(),
            counts.join(", ")
        );
        if lost_count > 0 {
            line.push_str(&format!(
                " (seq {}{})",
                lost.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if lost_count > lost.len() as u64 {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        if !foreign.is_empty() {
            line.push_str(&format!(
                "; {} handled by a version not listed (first: seq {} by version {})",
                foreign.len(),
                foreign[0].0,
                foreign[0].1
            ));
        }
        match switches.as_slice() {
            [] => {}
            [one] => line.push_str(&format!(
                "; switched {} -> {} at seq {}",
                one["from"].as_str().unwrap_or("?"),
                one["to"].as_str().unwrap_or("?"),
                one["seq"]
            )),
            many => line.push_str(&format!(
                "; {} switches between versions ({backwards} back to an earlier one)",
                many.len()
            )),
        }
        switches.truncate(LIST);
        let data = json!({
            "group": send.name,
            "sent": sent,
            "by_version": by_version,
            "lost": lost_count,
            "lost_seq": lost,
            "foreign": foreign.len(),
            "switches": switches,
            "backwards": backwards,
        });
        Ok((line, ok, data))
    }
}

fn names(list: &[&String]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lists_or_says_none() {
        let a = "a".to_owned();
        let b = "b".to_owned();
        assert_eq!(names(&[]), "none");
        assert_eq!(names(&[&a, &b]), "a, b");
    }

    #[test]
    fn pin_directories_are_plain_names() {
        for dir in [PROGS, MAPS, LINKS] {
            assert!(!dir.contains('/') && !dir.is_empty(), "{dir}");
        }
    }
}
