//! `[[step]]` sequences: each step checked as it would run (names defined before use, one
//! verb per step with only its own keys, rollbacks to versions the link ran, at most one
//! background send at a time), one function per verb.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use toml::Spanned;

use super::{
    RawSend, RawStep, RawStepExpect, RawTrace, Source, Topo, map_expect, object_and_entry, sends,
};
use crate::kernel::program::{ObjectSource, XdpMode};
use crate::scenario::schema::{
    self, FrameSource, IfaceRef, LabSpec, LinkExpect, ProgramSpec, SendGroup, Step, StepAction,
    StepExpect, TraceExpect,
};
use crate::scenario::{LoaderSpec, ScenarioError};
use crate::verdict::Verdict;

/// The largest trace a send step may need: the bundled `xdp_version` traces
/// this many sequence numbers.
const MAX_TRACED: u32 = 1 << 21;

const VERBS: [&str; 11] = [
    "load", "attach", "send", "wait", "sleep", "replace", "rollback", "detach", "restart", "unpin",
    "expect",
];

/// What the step checker knows of a link at some point of the sequence.
struct LinkState {
    at: IfaceRef,
    runs: Option<String>,
    history: Vec<String>,
}

/// A loaded version: where it was loaded and what from.
struct Version {
    line: usize,
    object: ObjectSource,
    entry: String,
    /// Lines of its `object` and `entry` keys.
    lines: (usize, usize),
    /// Its `version` global, which tells its frames apart in a trace.
    number: Option<u32>,
}

/// The program the first attach step attaches: the scenario's program under test.
struct FirstProgram {
    object: ObjectSource,
    entry: String,
    mode: XdpMode,
    at: IfaceRef,
    lines: (usize, usize),
}

/// Checks a `[[step]]` sequence as it would run: names defined before use,
/// one verb per step with only its own keys, rollbacks to versions the link
/// ran, at most one background send at a time.
pub(super) fn steps(
    src: &Source<'_>,
    topo: &Topo<'_>,
    lab: &LabSpec,
    raw: Vec<Spanned<RawStep>>,
) -> Result<(ProgramSpec, Vec<SendGroup>, Vec<Step>), ScenarioError> {
    let mut checker = Checker::new(src, topo);
    let mut out = Vec::new();
    for spanned in raw {
        let line = src.line(&spanned.span());
        let step = spanned.into_inner();
        let verb = verb(src, &step, line)?;
        let action = checker.action(verb, step, line)?;
        out.push(Step { action, line });
    }
    checker.finish(lab, out)
}

/// The step's one verb, after checking it has exactly one and no key of another verb.
fn verb(src: &Source<'_>, step: &RawStep, line: usize) -> Result<&'static str, ScenarioError> {
    let given: Vec<&str> = [
        step.load.is_some(),
        step.attach.is_some(),
        step.send.is_some(),
        step.wait.is_some(),
        step.sleep.is_some(),
        step.replace.is_some(),
        step.rollback.is_some(),
        step.detach.is_some(),
        step.restart.is_some(),
        step.unpin.is_some(),
        step.expect.is_some(),
    ]
    .into_iter()
    .zip(VERBS)
    .filter(|(set, _)| *set)
    .map(|(_, verb)| verb)
    .collect();
    let verb = match given.as_slice() {
        [verb] => *verb,
        [] => {
            return Err(src.invalid(
                line,
                format!("step does nothing: give one of {}", VERBS.join(", ")),
            ));
        }
        many => {
            return Err(src.invalid(
                line,
                format!(
                    "step has {} verbs ({}): one per [[step]]",
                    many.len(),
                    many.join(", ")
                ),
            ));
        }
    };
    // Keys that belong to other verbs.
    let allowed: &[&str] = match verb {
        "load" => &["object", "entry", "globals"],
        "attach" => &["to", "mode", "link"],
        "send" => &["background"],
        "wait" => &["frames"],
        "replace" | "rollback" | "detach" => &["link"],
        _ => &[],
    };
    for (key, set) in [
        ("object", step.object.is_some()),
        ("entry", step.entry.is_some()),
        ("globals", step.globals.is_some()),
        ("to", step.to.is_some()),
        ("mode", step.mode.is_some()),
        ("link", step.link.is_some()),
        ("background", step.background.is_some()),
        ("frames", step.frames.is_some()),
    ] {
        if set && !allowed.contains(&key) {
            return Err(src.invalid(line, format!("a {verb} step takes no key {key:?}")));
        }
    }
    Ok(verb)
}

/// The state of the sequence so far, as a run would have it.
struct Checker<'s, 'a> {
    src: &'s Source<'a>,
    topo: &'s Topo<'a>,
    /// Where an attach step without `to` attaches.
    default_to: IfaceRef,
    versions: BTreeMap<String, Version>,
    links: BTreeMap<String, LinkState>,
    first_program: Option<FirstProgram>,
    raw_sends: Vec<Spanned<RawSend>>,
    /// Per send group: its step's line and its background duration.
    send_steps: Vec<(usize, Option<Duration>)>,
    group_index: HashMap<String, usize>,
    /// The background send running, with its step's line.
    running: Option<(String, usize)>,
    /// Per send group: whether it has ended (a foreground send, or waited for).
    waited: Vec<bool>,
}

impl<'s, 'a> Checker<'s, 'a> {
    fn new(src: &'s Source<'a>, topo: &'s Topo<'a>) -> Self {
        let default_to = match topo.links.first() {
            Some(link) => IfaceRef::from(&link.b),
            None => IfaceRef::netns(LabSpec::RECEIVER),
        };
        Self {
            src,
            topo,
            default_to,
            versions: BTreeMap::new(),
            links: BTreeMap::new(),
            first_program: None,
            raw_sends: Vec::new(),
            send_steps: Vec::new(),
            group_index: HashMap::new(),
            running: None,
            waited: Vec::new(),
        }
    }

    /// The step's action, with the sequence's state moved past it.
    fn action(
        &mut self,
        verb: &'static str,
        step: RawStep,
        line: usize,
    ) -> Result<StepAction, ScenarioError> {
        match verb {
            "load" => self.load(step, line),
            "attach" => self.attach(step, line),
            "send" => self.send(step, line),
            "wait" => self.wait(&step),
            "sleep" => self.sleep(step),
            "replace" | "rollback" => self.replace(verb, &step, line),
            "detach" => self.detach(&step, line),
            "restart" => self.restart(step),
            "unpin" => self.unpin(step),
            "expect" => self.expect(step, line),
            _ => unreachable!("verbs are listed above"),
        }
    }

    /// A version or link name, which names a pin file.
    fn plain(&self, line: usize, what: &str, name: &str) -> Result<(), ScenarioError> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(self.src.invalid(
                line,
                format!("{what} {name:?} is not a plain name (it names a pin file)"),
            ));
        }
        Ok(())
    }

    /// The link a replace, rollback, detach or expect is about: named, or the only one.
    fn which_link(
        &self,
        verb: &str,
        named: Option<&Spanned<String>>,
        line: usize,
    ) -> Result<String, ScenarioError> {
        let src = self.src;
        match named {
            Some(link) => {
                let at = src.line(&link.span());
                if self.links.contains_key(link.get_ref()) {
                    Ok(link.get_ref().clone())
                } else {
                    Err(src.invalid(
                        at,
                        format!(
                            "{verb}: no link {:?} is attached before this step",
                            link.get_ref()
                        ),
                    ))
                }
            }
            None => match self.links.keys().collect::<Vec<_>>().as_slice() {
                [only] => Ok((*only).clone()),
                [] => Err(src.invalid(
                    line,
                    format!("{verb}: no link is attached before this step"),
                )),
                many => Err(src.invalid(
                    line,
                    format!(
                        "{verb}: {} links exist ({}): say which with link = \"...\"",
                        many.len(),
                        many.iter()
                            .map(|l| format!("{l:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            },
        }
    }

    /// A version loaded before this step.
    fn known_version(&self, verb: &str, name: &Spanned<String>) -> Result<String, ScenarioError> {
        if self.versions.contains_key(name.get_ref()) {
            Ok(name.get_ref().clone())
        } else {
            Err(self.src.invalid(
                self.src.line(&name.span()),
                format!(
                    "{verb}: version {:?} is not loaded before this step (loaded: {})",
                    name.get_ref(),
                    if self.versions.is_empty() {
                        "none".to_owned()
                    } else {
                        self.versions
                            .keys()
                            .map(|v| format!("{v:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ))
        }
    }

    /// `load = "v1"`, with `object`, `entry` and `globals`.
    fn load(&mut self, step: RawStep, line: usize) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        let version = step.load.expect("verb");
        let name = version.get_ref().clone();
        self.plain(src.line(&version.span()), "version", &name)?;
        if let Some(first) = self.versions.get(&name) {
            return Err(src.invalid(
                src.line(&version.span()),
                format!(
                    "version {name:?} is loaded twice (first at line {})",
                    first.line
                ),
            ));
        }
        let (Some(object), Some(entry)) = (&step.object, &step.entry) else {
            return Err(src.invalid(line, format!("load {name:?}: needs object and entry")));
        };
        let lines = (src.line(&object.span()), src.line(&entry.span()));
        let (object, entry) = object_and_entry(src, object, entry, "load")?;
        let globals: Vec<(String, u32)> = step
            .globals
            .map(|g| g.into_inner().into_iter().collect())
            .unwrap_or_default();
        let number = globals
            .iter()
            .find(|(g, _)| g == "version")
            .map(|(_, v)| *v);
        self.versions.insert(
            name.clone(),
            Version {
                line,
                object: object.clone(),
                entry: entry.clone(),
                lines,
                number,
            },
        );
        Ok(StepAction::Load {
            version: name,
            object,
            entry,
            globals,
            object_line: lines.0,
            entry_line: lines.1,
        })
    }

    /// `attach = "v1"`, with `to`, `mode` and `link`.
    fn attach(&mut self, step: RawStep, line: usize) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        let version = self.known_version("attach", step.attach.as_ref().expect("verb"))?;
        let at = match &step.to {
            Some(to) => {
                self.topo.find(src, to, "attach to")?;
                to.get_ref().clone()
            }
            None => {
                self.topo
                    .find_at(src, line, &self.default_to, "attach to")?;
                self.default_to.clone()
            }
        };
        let mode = step.mode.map(Spanned::into_inner).unwrap_or_default();
        let link = match &step.link {
            Some(link) => {
                self.plain(src.line(&link.span()), "link", link.get_ref())?;
                link.get_ref().clone()
            }
            None => at.to_string().replace(':', "-"),
        };
        if self.links.contains_key(&link) {
            return Err(src.invalid(
                line,
                format!("attach: link {link:?} exists already (name this one with link = \"...\")"),
            ));
        }
        if self.links.values().any(|l| l.runs.is_some() && l.at == at) {
            return Err(src.invalid(
                line,
                format!("attach: \"{at}\" has a program attached already; replace it instead"),
            ));
        }
        if self.first_program.is_none() {
            let loaded = &self.versions[&version];
            self.first_program = Some(FirstProgram {
                object: loaded.object.clone(),
                entry: loaded.entry.clone(),
                mode,
                at: at.clone(),
                lines: loaded.lines,
            });
        }
        self.links.insert(
            link.clone(),
            LinkState {
                at: at.clone(),
                runs: Some(version.clone()),
                history: vec![version.clone()],
            },
        );
        Ok(StepAction::Attach {
            version,
            at,
            mode,
            link,
        })
    }

    /// `send = { ... }`, perhaps with `background`.
    fn send(&mut self, step: RawStep, line: usize) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        if let Some((name, at)) = &self.running {
            return Err(src.invalid(
                line,
                format!(
                    "send: background send {name:?} (line {at}) is still running; wait for it first"
                ),
            ));
        }
        let background = step
            .background
            .as_ref()
            .map(|b| {
                schema::parse_duration(b.get_ref())
                    .map_err(|e| src.at_value(&b.span(), format!("background: {e}")))
            })
            .transpose()?;
        let send = step.send.expect("verb");
        let name = send.get_ref().name.trim().to_owned();
        let index = self.raw_sends.len();
        if let Some(first) = self.group_index.insert(name.clone(), index) {
            let first_line = self.send_steps[first].0;
            return Err(src.invalid(
                src.line(&send.span()),
                format!("duplicate send group name {name:?} (first at line {first_line})"),
            ));
        }
        if background.is_some() {
            self.running = Some((name, line));
        }
        self.send_steps.push((line, background));
        self.waited.push(background.is_none());
        self.raw_sends.push(send);
        Ok(StepAction::Send {
            group: index,
            background,
        })
    }

    /// `wait = "group"`, for its end or for `frames` of it.
    fn wait(&mut self, step: &RawStep) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        let name = step.wait.as_ref().expect("verb");
        let group = match (self.group_index.get(name.get_ref()), &self.running) {
            (Some(&g), Some((r, _))) if r == name.get_ref() => g,
            (Some(_), _) => {
                return Err(src.invalid(
                    src.line(&name.span()),
                    format!(
                        "wait: send {:?} is not running in the background here",
                        name.get_ref()
                    ),
                ));
            }
            (None, _) => {
                return Err(src.invalid(
                    src.line(&name.span()),
                    format!("wait: no send group {:?} before this step", name.get_ref()),
                ));
            }
        };
        let frames = match &step.frames {
            Some(f) => {
                let count = self.raw_sends[group].get_ref().count.unwrap_or(u32::MAX);
                if *f.get_ref() == 0 || *f.get_ref() >= count {
                    return Err(src.at_value(
                        &f.span(),
                        format!("wait: frames must be in 1..{count} (the group's count), or left out to wait for the end"),
                    ));
                }
                Some(*f.get_ref())
            }
            None => {
                self.running = None;
                self.waited[group] = true;
                None
            }
        };
        Ok(StepAction::Wait { group, frames })
    }

    /// `sleep = "500ms"`, at most a minute.
    fn sleep(&self, step: RawStep) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        let text = step.sleep.expect("verb");
        let duration = schema::parse_duration(text.get_ref())
            .map_err(|e| src.at_value(&text.span(), format!("sleep: {e}")))?;
        if duration > Duration::from_secs(60) {
            return Err(src.at_value(&text.span(), "sleep: at most 60s"));
        }
        Ok(StepAction::Sleep { duration })
    }

    /// `replace = "v2"` or `rollback = "v1"` (a version the link ran), on `link`.
    fn replace(
        &mut self,
        verb: &str,
        step: &RawStep,
        line: usize,
    ) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        let target = if verb == "replace" {
            step.replace.as_ref()
        } else {
            step.rollback.as_ref()
        }
        .expect("verb");
        let version = self.known_version(verb, target)?;
        let link = self.which_link(verb, step.link.as_ref(), line)?;
        let state = self.links.get_mut(&link).expect("checked");
        match &state.runs {
            None => {
                return Err(src.invalid(
                    line,
                    format!("{verb}: link {link:?} is detached; attach a new link instead"),
                ));
            }
            Some(current) if *current == version => {
                return Err(src.invalid(
                    line,
                    format!("{verb}: link {link:?} runs {version:?} already"),
                ));
            }
            Some(_) => {}
        }
        if verb == "rollback" && !state.history.contains(&version) {
            return Err(src.invalid(
                line,
                format!(
                    "rollback: link {link:?} never ran {version:?} (it ran {}); use replace",
                    state
                        .history
                        .iter()
                        .map(|v| format!("{v:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        state.runs = Some(version.clone());
        state.history.push(version.clone());
        Ok(if verb == "replace" {
            StepAction::Replace { link, version }
        } else {
            StepAction::Rollback { link, version }
        })
    }

    /// `detach = "link"`.
    fn detach(&mut self, step: &RawStep, line: usize) -> Result<StepAction, ScenarioError> {
        let named = step.detach.as_ref().expect("verb");
        let link = self.which_link("detach", Some(named), line)?;
        let state = self.links.get_mut(&link).expect("checked");
        if state.runs.is_none() {
            return Err(self
                .src
                .invalid(line, format!("detach: link {link:?} is detached already")));
        }
        state.runs = None;
        Ok(StepAction::Detach { link })
    }

    /// `restart = true`.
    fn restart(&self, step: RawStep) -> Result<StepAction, ScenarioError> {
        let restart = step.restart.expect("verb");
        if !*restart.get_ref() {
            return Err(self.src.at_value(
                &restart.span(),
                "restart = false does nothing: leave the step out",
            ));
        }
        Ok(StepAction::Restart)
    }

    /// `unpin = ["progs/v1", "links/rx", ...]` or `["all"]`.
    fn unpin(&mut self, step: RawStep) -> Result<StepAction, ScenarioError> {
        let src = self.src;
        let list = step.unpin.expect("verb");
        let at = src.line(&list.span());
        let list = list.into_inner();
        if list.is_empty() {
            return Err(src.invalid(at, "unpin lists no pins (use [\"all\"] for every pin)"));
        }
        if list.iter().any(|p| p == "all") {
            if list.len() > 1 {
                return Err(src.invalid(at, "unpin: \"all\" goes alone"));
            }
            self.links.clear();
            return Ok(StepAction::Unpin { pins: None });
        }
        for pin in &list {
            let ok = match pin.split_once('/') {
                Some(("progs", name)) => self.versions.contains_key(name),
                Some(("links", name)) => self.links.remove(name).is_some(),
                Some(("maps", name)) => !name.is_empty() && !name.contains('/'),
                _ => false,
            };
            if !ok {
                return Err(src.invalid(
                    at,
                    format!(
                        "unpin: {pin:?} is not a pin of this run (progs/<version>, maps/<map> or links/<link>, made before this step)"
                    ),
                ));
            }
        }
        Ok(StepAction::Unpin { pins: Some(list) })
    }

    /// `expect = { map, link/runs/attached, pins, trace }`.
    fn expect(&self, step: RawStep, line: usize) -> Result<StepAction, ScenarioError> {
        let raw: RawStepExpect = step.expect.expect("verb").into_inner();
        let maps = raw
            .map
            .into_iter()
            .map(|m| map_expect(self.src, self.topo, m, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let link = self.expect_link(raw.link, raw.runs, raw.attached, line)?;
        let pins = raw.pins.map(|p| {
            let mut p = p.into_inner();
            p.sort();
            p
        });
        let trace = raw.trace.map(|t| self.expect_trace(t)).transpose()?;
        let expect = StepExpect {
            maps,
            link,
            pins,
            trace,
        };
        if expect == StepExpect::default() {
            return Err(self.src.invalid(
                line,
                "expect step checks nothing: give map, link/runs/attached, pins or trace",
            ));
        }
        Ok(StepAction::Expect(expect))
    }

    /// An expect step's `link`, `runs` and `attached`.
    fn expect_link(
        &self,
        link: Option<Spanned<String>>,
        runs: Option<Spanned<String>>,
        attached: Option<Spanned<bool>>,
        line: usize,
    ) -> Result<Option<LinkExpect>, ScenarioError> {
        if link.is_none() && runs.is_none() && attached.is_none() {
            return Ok(None);
        }
        let name = self.which_link("expect", link.as_ref(), line)?;
        let runs = match (runs, attached) {
            (Some(_), Some(a)) if !*a.get_ref() => {
                return Err(self
                    .src
                    .at_value(&a.span(), "expect: runs and attached = false contradict"));
            }
            (Some(runs), _) => Some(self.known_version("expect", &runs)?),
            (None, Some(a)) if *a.get_ref() => {
                return Err(self.src.at_value(
                    &a.span(),
                    "expect: attached = true needs runs = \"<version>\"",
                ));
            }
            (None, _) => None,
        };
        Ok(Some(LinkExpect { link: name, runs }))
    }

    /// An expect step's `trace`: a finished send group, and versions its frames tell apart.
    fn expect_trace(&self, t: Spanned<RawTrace>) -> Result<TraceExpect, ScenarioError> {
        let src = self.src;
        let at = src.line(&t.span());
        let t = t.into_inner();
        let Some(&group) = self.group_index.get(&t.group) else {
            return Err(src.invalid(
                at,
                format!("expect trace: no send group {:?} before this step", t.group),
            ));
        };
        if !self.waited[group] {
            return Err(src.invalid(
                at,
                format!(
                    "expect trace: send {:?} is still running; wait for it first",
                    t.group
                ),
            ));
        }
        if t.versions.is_empty() {
            return Err(src.invalid(at, "expect trace: versions lists none"));
        }
        let mut numbers: HashMap<u32, &str> = HashMap::new();
        for v in &t.versions {
            let Some(version) = self.versions.get(v) else {
                return Err(src.invalid(
                    at,
                    format!("expect trace: version {v:?} is not loaded before this step"),
                ));
            };
            let Some(number) = version.number else {
                return Err(src.invalid(
                    at,
                    format!("expect trace: version {v:?} sets no globals.version, so its frames cannot be told apart"),
                ));
            };
            if let Some(other) = numbers.insert(number, v) {
                return Err(src.invalid(
                    at,
                    format!("expect trace: versions {other:?} and {v:?} both set globals.version = {number}"),
                ));
            }
        }
        Ok(TraceExpect {
            group,
            versions: t.versions,
            map: t.map.unwrap_or_else(|| "trace".to_owned()),
        })
    }

    /// The program under test (the first attached), the send groups, checked as a send step
    /// sends them, and the steps.
    fn finish(
        self,
        lab: &LabSpec,
        steps: Vec<Step>,
    ) -> Result<(ProgramSpec, Vec<SendGroup>, Vec<Step>), ScenarioError> {
        let src = self.src;
        let Some(first) = self.first_program else {
            return Err(src.invalid(1, "the steps attach no program: add an attach step"));
        };
        let program = ProgramSpec {
            object: first.object,
            entry: first.entry,
            mode: first.mode,
            attach: first.at.clone(),
            object_line: first.lines.0,
            entry_line: first.lines.1,
            pin: true,
            loader: LoaderSpec::default(),
        };
        let program_end = self.topo.find_at(src, 1, &first.at, "attach to")?;
        let sends = if self.raw_sends.is_empty() {
            Vec::new()
        } else {
            sends(src, self.topo, self.raw_sends, lab, &program, program_end)?
        };
        for (group, (line, background)) in sends.iter().zip(&self.send_steps) {
            check_step_send(src, group, *line, background.is_some())?;
        }
        Ok((program, sends, steps))
    }
}

/// What a send step can send and judge: drop or pass; in the background, one frame spec of at
/// most [`MAX_TRACED`] frames.
fn check_step_send(
    src: &Source<'_>,
    group: &SendGroup,
    line: usize,
    background: bool,
) -> Result<(), ScenarioError> {
    if !matches!(group.expect, Verdict::Drop | Verdict::Pass) {
        return Err(src.invalid(
            line,
            format!(
                "send group {:?}: a send step expects drop or pass (tx, redirect and aborted are checked by [[send]] scenarios)",
                group.name
            ),
        ));
    }
    if background {
        if group.count > MAX_TRACED {
            return Err(src.invalid(
                line,
                format!(
                    "send group {:?}: a background send sends at most {MAX_TRACED} frames (the trace's size)",
                    group.name
                ),
            ));
        }
        if !matches!(group.frames, FrameSource::Spec(_)) {
            return Err(src.invalid(
                line,
                format!(
                    "send group {:?}: a background send sends one frame spec, not a pcap",
                    group.name
                ),
            ));
        }
    }
    Ok(())
}
