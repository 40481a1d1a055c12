//! The live paths (`native`, `generic`): a [`LiveSession`] sends planned groups of frames
//! through a program attached in a built topology, waits until the kernel has accounted for
//! every frame, and observes and judges each group before the next one starts.
//!
//! Three oracles look at every group: captures after XDP on every interface of the topology
//! (where each tagged frame landed: the attach interface is XDP_PASS, its peer XDP_TX, any
//! other interface XDP_REDIRECT, nowhere XDP_DROP or XDP_ABORTED, told apart by the
//! `xdp:xdp_exception` tracepoint), the kernel's own counters (veth XDP statistics in native
//! mode, the device's receive counter in generic mode), and the program's `drop_cnt` and
//! `pass_cnt` maps when it has them.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime},
};

use super::attribution::{Places, observe_group};
use super::error::{RunError, interrupted};
use super::failure::Failure;
use super::judge;
use super::observation::{GroupCounts, IfaceSnapshot, Snapshot, Window};
use super::plan::{
    GroupOutcome, GroupPlan, SESSION_KEEP_BYTES, SessionOptions, SessionOutcome, UnderTest,
};
use crate::{
    frame::FrameTemplate,
    inject::{InjectStats, pnet::PnetInjector},
    kernel::maps::MapKind,
    kernel::program::{Attachment, ObjectSource, Program, XdpMode},
    kernel::veth::VethEnd,
    observe::{Capture, CaptureOptions, DriverStats, ExceptionCounter, KEEP_BYTES, LinkStats},
    topology::{EndName, Topology},
    verdict::Verdict,
};

/// How long counts must stay unchanged before a group whose frames cannot all be accounted
/// for (background frames in its window, or drops no counter reports) is taken as settled.
const QUIET: Duration = Duration::from_millis(100);

/// How long a group's window waits to open for a passed frame to reach its capture.
const OPENING_WAIT: Duration = Duration::from_secs(1);

/// The counters of one interface.
struct IfaceCounters {
    driver: DriverStats,
    link: LinkStats,
}

/// A group whose window is open: its frames may be sent.
#[derive(Debug)]
pub struct Pending {
    index: usize,
    /// The group number the frames' tags must carry.
    pub group_id: u16,
    from: usize,
    expected_at: Option<usize>,
    before: Snapshot,
}

/// A program attached in a topology, observed group by group. Groups are sent one after
/// another; each ends only when the kernel has accounted for its frames (or a deadline), so
/// each group's counts are its own.
pub struct LiveSession<'t> {
    topology: &'t Topology,
    names: Vec<EndName>,
    attach: usize,
    peer: usize,
    /// How frames are accounted for now ([`LiveSession::set_attached`]).
    mode: XdpMode,
    /// How the program is attached, when it is.
    attached_mode: XdpMode,
    /// The program whose `drop_cnt`/`pass_cnt` are read, if the session has one.
    program: Option<&'t Program>,
    /// The programs whose aborts count (every version a lifecycle loaded).
    prog_ids: Vec<u32>,
    exceptions: Result<&'static ExceptionCounter, String>,
    counters: Vec<IfaceCounters>,
    captures: Vec<Capture>,
    injectors: HashMap<EndName, PnetInjector>,
    run_id: u32,
    /// Groups begun so far.
    groups: usize,
    windows: Vec<Window>,
    unattributed: Vec<u64>,
    socket_drops: Vec<u64>,
    frames: Vec<Vec<(SystemTime, Vec<u8>)>>,
    /// When the session opened: no group begins past [`MAX_SESSION_TIME`].
    opened: Instant,
    /// The snapshot the last group's window closed on, when every frame XDP had passed at
    /// the attach interface had reached the capture there.
    closed: Option<Snapshot>,
}

/// How long one session (one scenario's groups on one path) may run before a new group is
/// refused: the caps on groups and frames bound the work, this bounds the time a scenario
/// whose frames never settle could take (each group waits for its frames up to 3 s + 5 µs a
/// frame).
pub const MAX_SESSION_TIME: Duration = Duration::from_secs(30 * 60);

impl std::fmt::Debug for LiveSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("interfaces", &self.names)
            .field("mode", &self.mode)
            .field("groups", &self.windows.len())
            .finish_non_exhaustive()
    }
}

impl<'t> LiveSession<'t> {
    /// Opens the observers of every interface of `topology` around `under_test`.
    pub fn open(
        topology: &'t Topology,
        under_test: UnderTest<'t>,
        options: &SessionOptions,
    ) -> Result<Self, RunError> {
        let mut session = Self::observe(topology, under_test.attach, under_test.mode, options)?;
        session.program = Some(under_test.program);
        session.prog_ids = vec![under_test.program.id()?];
        Ok(session)
    }

    /// Opens the observers of every interface of `topology` around whatever program runs on
    /// `attach` (a lifecycle replaces it under load): no program counters are read, and
    /// aborts count for the programs [`LiveSession::set_prog_ids`] names.
    pub fn observe(
        topology: &'t Topology,
        attach: &EndName,
        mode: XdpMode,
        options: &SessionOptions,
    ) -> Result<Self, RunError> {
        let names: Vec<EndName> = topology.interfaces().map(|(n, _)| n.clone()).collect();
        let place = |name: &EndName| {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| RunError::input(format!("{name} is not in the topology")))
        };
        let attach = place(attach)?;
        let (peer_name, _) = topology
            .peer(&names[attach])
            .ok_or_else(|| RunError::input(format!("{} has no peer", names[attach])))?;
        let peer = place(peer_name)?;
        let run_id = options.run_id.unwrap_or_else(|| topology.run_id());
        let capture_options = CaptureOptions {
            keep_all: options.keep_frames,
            // One budget for the session, shared by its interfaces: a topology of hundreds of
            // links holds no more than the default lab's pair.
            keep_bytes: Some((SESSION_KEEP_BYTES / names.len().max(1)).min(KEEP_BYTES)),
            ..CaptureOptions::default()
        };
        let mut counters = Vec::new();
        let mut captures = Vec::new();
        for name in &names {
            let end = end(topology, name)?;
            counters.push(IfaceCounters {
                driver: DriverStats::open(end)?,
                link: LinkStats::open(end)?,
            });
            captures.push(Capture::start(end, run_id, &capture_options)?);
        }
        let exceptions = ExceptionCounter::shared().map_err(|e| e.to_string());
        let n = names.len();
        Ok(Self {
            opened: Instant::now(),
            topology,
            names,
            attach,
            peer,
            mode,
            attached_mode: mode,
            program: None,
            prog_ids: Vec::new(),
            exceptions,
            counters,
            captures,
            injectors: HashMap::new(),
            run_id,
            groups: 0,
            windows: Vec::new(),
            unattributed: vec![0; n],
            socket_drops: vec![0; n],
            frames: vec![Vec::new(); n],
            closed: None,
        })
    }

    /// Says whether a program is attached at the session's interface now (a lifecycle
    /// detaches it): without one, frames are accounted for by the device's receive counter,
    /// as in generic mode, since the driver's XDP counters do not move.
    pub fn set_attached(&mut self, attached: bool) {
        self.mode = if attached {
            self.attached_mode
        } else {
            XdpMode::Generic
        };
    }

    /// The programs whose XDP_ABORTED the session counts.
    pub fn set_prog_ids(&mut self, ids: &[u32]) {
        self.prog_ids = ids.to_vec();
    }

    /// The id tagged into this session's frames.
    pub fn run_id(&self) -> u32 {
        self.run_id
    }

    /// Sends one group, waits until the kernel has accounted for its frames, and judges what
    /// became of them. `poll` runs while waiting (a scenario drains its ring buffers there).
    pub fn send(
        &mut self,
        plan: &GroupPlan,
        poll: &mut dyn FnMut(),
    ) -> Result<GroupOutcome, RunError> {
        let pending = self.begin(plan)?;
        let injector = match self.injectors.entry(plan.from.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(PnetInjector::open(end(self.topology, &plan.from)?)?)
            }
        };
        let stats = injector.send(&plan.frames, self.run_id, pending.group_id, plan.count);
        self.end(plan, pending, stats, poll)
    }

    /// Opens a group's window for frames someone else sends (a background sender), tagged
    /// with [`Pending::group_id`] and this session's run id; [`LiveSession::end`] closes it.
    pub fn begin(&mut self, plan: &GroupPlan) -> Result<Pending, RunError> {
        self.begin_numbered(plan, self.groups)
    }

    /// [`LiveSession::begin`] with the group number the frames' tags carry given, greater
    /// than any before: a lifecycle tags frames with the scenario's group index, which its
    /// trace expectations look for.
    pub fn begin_numbered(&mut self, plan: &GroupPlan, index: usize) -> Result<Pending, RunError> {
        interrupted()?;
        if self.opened.elapsed() > MAX_SESSION_TIME {
            return Err(RunError::input(format!(
                "send {:?}: the scenario has run for more than {} minutes, xdplab's cap on one \
                 run's groups: split it into several scenarios",
                plan.name,
                MAX_SESSION_TIME.as_secs() / 60
            )));
        }
        if index < self.groups {
            return Err(RunError::input(format!(
                "send {:?}: group {index} was already sent in this session",
                plan.name
            )));
        }
        let group_id = u16::try_from(index)
            .map_err(|_| RunError::input("a session may send at most 65536 groups"))?;
        if plan.frames.is_empty() {
            return Err(RunError::input(format!("send {:?}: no frames", plan.name)));
        }
        if plan.expect == Verdict::Aborted
            && let Err(e) = &self.exceptions
        {
            return Err(RunError::environment(format!(
                "cannot count XDP_ABORTED: {e}"
            )));
        }
        let from = self.place(&plan.from)?;
        let expected_at = match plan.expect {
            Verdict::Pass => Some(self.attach),
            Verdict::Tx => Some(self.peer),
            Verdict::Redirect => {
                let target = plan.redirect_to.as_ref().ok_or_else(|| {
                    RunError::input(format!(
                        "send {:?}: expecting redirect needs the interface redirected to",
                        plan.name
                    ))
                })?;
                let (landing, _) = self
                    .topology
                    .peer(target)
                    .ok_or_else(|| RunError::input(format!("{target} is not in the topology")))?;
                Some(self.place(landing)?)
            }
            Verdict::Drop | Verdict::Aborted => None,
        };

        for capture in &self.captures {
            // Numbers skipped are groups of no frames.
            for _ in self.groups..index {
                capture.add_group(0, false);
            }
            let group = capture.add_group(plan.count, plan.output.is_some());
            debug_assert_eq!(group, index, "every capture numbers groups alike");
        }
        self.groups = index + 1;
        Ok(Pending {
            index,
            group_id,
            from,
            expected_at,
            before: self.opening_snapshot()?,
        })
    }

    /// Closes a group's window once its sender is done: waits until the kernel has accounted
    /// for what `stats` says was sent, then observes and judges the group.
    pub fn end(
        &mut self,
        plan: &GroupPlan,
        pending: Pending,
        stats: InjectStats,
        poll: &mut dyn FnMut(),
    ) -> Result<GroupOutcome, RunError> {
        let Pending {
            index,
            group_id,
            from,
            expected_at,
            before,
        } = pending;
        let tagged = plan.frames.iter().all(FrameTemplate::is_tagged);
        let after = self.settle(from, index, tagged, &before, stats.accepted, poll)?;
        self.closed = Some(after.clone());
        let mut captured = Vec::with_capacity(self.names.len());
        for (name, capture) in self.names.iter().zip(&self.captures) {
            captured.push((name.clone(), capture.take()?));
        }

        let places = Places {
            names: &self.names,
            attach: self.attach,
            peer: self.peer,
        };
        let (mut g, attribution) = observe_group(
            self.mode,
            index,
            plan,
            &stats,
            &before,
            &after,
            from,
            expected_at,
            &places,
            &mut captured,
        );
        let mut notes = Vec::new();
        g.output_mismatches = judge::check_outputs(
            &plan.name,
            plan.output.as_ref(),
            &plan.frames,
            self.run_id,
            group_id,
            &g.outputs,
        );
        if let Some(e) = expected_at {
            let landed = g
                .landed
                .get(&self.names[e].to_string())
                .copied()
                .unwrap_or(0);
            g.output_mismatches.extend(judge::unchecked_outputs(
                plan,
                &g,
                attribution,
                landed,
                &self.names[e],
            ));
        }
        if let Some(note) = judge::content_note(&g, expected_at.map(|e| &self.names[e])) {
            notes.push(note);
        }
        let mut failures = judge::group_failures(self.mode, &g, attribution, &stats);
        failures.extend(g.output_mismatches.iter().cloned().map(Failure::Output));

        for (i, (_, c)) in captured.into_iter().enumerate() {
            self.unattributed[i] += c.unattributed();
            self.socket_drops[i] += c.socket_drops;
            self.frames[i].extend(c.all);
        }
        self.windows.push(Window {
            before,
            after,
            attribution,
            counts: GroupCounts {
                received: g.kernel.received,
                background: g.kernel.background,
                passed: g.passed,
                tx: g.tx,
                redirected: g.redirected,
                aborted: g.aborted,
            },
        });
        Ok(GroupOutcome {
            report: g,
            attribution,
            stats,
            failures,
            notes,
        })
    }

    /// Ends the session: the program's counters against the kernel's over every group, and
    /// the frames no group claimed.
    pub fn close(mut self) -> SessionOutcome {
        let captures = std::mem::take(&mut self.captures);
        let injectors = std::mem::take(&mut self.injectors);
        // Closing a packet socket waits for an RCU grace period: the captures and the
        // injectors close theirs in parallel.
        for capture in &captures {
            capture.stop();
        }
        let finished: Vec<_> = std::thread::scope(|scope| {
            for (_, injector) in injectors {
                scope.spawn(move || drop(injector));
            }
            captures.into_iter().map(Capture::finish).collect()
        });
        for (i, captured) in finished.into_iter().enumerate() {
            // What arrived after the last group belongs to none.
            if let Ok(c) = captured {
                self.unattributed[i] += c.unattributed();
                self.socket_drops[i] += c.socket_drops;
                self.frames[i].extend(c.all);
            }
        }
        let mut outcome = SessionOutcome {
            counters: judge::check_counters(self.mode, self.attach, &self.windows),
            ..SessionOutcome::default()
        };
        for c in outcome.counters.iter().filter(|c| !c.ok) {
            outcome.failures.push(Failure::Counter {
                map: c.map.clone(),
                program: c.program,
                source_name: c.source.clone(),
                kernel: c.kernel,
            });
        }
        for (i, name) in self.names.iter().enumerate() {
            if self.socket_drops[i] > 0 {
                outcome.failures.push(Failure::CaptureDropped {
                    interface: name.to_string(),
                    dropped: self.socket_drops[i],
                });
            }
            if self.unattributed[i] > 0 {
                outcome
                    .unattributed_by_interface
                    .insert(name.to_string(), self.unattributed[i]);
            }
        }
        if let Err(e) = &self.exceptions {
            outcome.notes.push(format!(
                "XDP_ABORTED cannot be told from XDP_DROP here: {e}"
            ));
        }
        outcome.frames = self.names.into_iter().zip(self.frames).collect();
        outcome
    }

    fn place(&self, name: &EndName) -> Result<usize, RunError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| RunError::input(format!("{name} is not in the topology")))
    }

    /// Whether the CPUs' backlogs are empty, and, if so, once the captures have read what the
    /// kernel delivered to them. Unknown (kernels before 5.10 lack the column) is "no": the
    /// quiet period decides then.
    fn drained(&self) -> Result<bool, RunError> {
        if crate::observe::softnet_backlog() != Some(0) {
            return Ok(false);
        }
        // The last frame leaves the queue just before the stack runs on it.
        std::thread::sleep(crate::observe::POLL_INTERVAL);
        for capture in &self.captures {
            capture.sync()?;
        }
        Ok(true)
    }

    fn counter(&self, name: &str) -> Result<Option<u64>, RunError> {
        match self.program {
            Some(program) => counter(program, name),
            None => Ok(None),
        }
    }

    fn snapshot(&self) -> Result<Snapshot, RunError> {
        let ifaces = self
            .counters
            .iter()
            .zip(&self.captures)
            .map(|(c, capture)| {
                Ok(IfaceSnapshot {
                    xdp: c.driver.xdp()?,
                    link: c.link.read()?,
                    captured: capture.frames(),
                })
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        Ok(Snapshot {
            ifaces,
            drop_cnt: self.counter("drop_cnt")?,
            pass_cnt: self.counter("pass_cnt")?,
            aborted: match &self.exceptions {
                Ok(e) => {
                    let mut aborted = 0;
                    for &id in &self.prog_ids {
                        aborted += e.count(id, Verdict::Aborted.xdp_action())?;
                    }
                    aborted
                }
                Err(_) => 0,
            },
        })
    }

    /// A snapshot to open a group's window on, taken once every frame XDP passed at the attach
    /// interface since the last window closed has reached the capture there (for at most
    /// [`OPENING_WAIT`]): a frame of the kernel's own in flight at the opening would otherwise
    /// be counted by the capture in this window and by XDP before it.
    fn opening_snapshot(&self) -> Result<Snapshot, RunError> {
        let deadline = Instant::now() + OPENING_WAIT;
        loop {
            let now = self.snapshot()?;
            let unseen = self
                .closed
                .as_ref()
                .is_some_and(|closed| passed_unseen(self.mode, self.attach, closed, &now));
            if !unseen || Instant::now() >= deadline || crate::interrupt::requested().is_some() {
                return Ok(now);
            }
            std::thread::sleep(crate::observe::POLL_INTERVAL);
        }
    }

    /// Polls until the kernel has accounted for `sent` frames at the attach interface since
    /// `before` and every frame it let through has reached a capture; or until counts stop
    /// moving once every frame arrived; or the deadline.
    fn settle(
        &self,
        from: usize,
        group: usize,
        tagged: bool,
        before: &Snapshot,
        sent: u64,
        poll: &mut dyn FnMut(),
    ) -> Result<Snapshot, RunError> {
        let (mode, attach) = (self.mode, self.attach);
        let deadline = Instant::now() + Duration::from_secs(3) + Duration::from_micros(sent * 5);
        let passed_unseen = |s: &Snapshot| passed_unseen(mode, attach, before, s);
        let mut last = self.snapshot()?;
        let mut last_change = Instant::now();
        loop {
            poll();
            let (now, then) = (&last.ifaces[attach], &before.ifaces[attach]);
            let lost_at_sender = last.ifaces[from]
                .link
                .since(&before.ifaces[from].link)
                .tx_dropped;
            // This group's own frames, wherever they landed. Untagged frames can only be
            // counted by what arrived since the group started: at the attach interface (where
            // the stack's own replies never land), and elsewhere only if the kernel says some
            // were bounced or redirected.
            let captured_at = |i: usize| last.ifaces[i].captured - before.ifaces[i].captured;
            let captured: u64 = if tagged {
                self.captures.iter().map(|c| c.group_frames(group)).sum()
            } else {
                let xdp = now.xdp.since(&then.xdp);
                if mode == XdpMode::Native && xdp.tx + xdp.redirect > 0 {
                    (0..last.ifaces.len()).map(captured_at).sum()
                } else {
                    captured_at(attach)
                }
            };
            let aborted = last.aborted - before.aborted;
            // Frames the program passed at the attach interface are on their way to its
            // capture: until it has them all, counts that stop moving are a capture thread
            // that has not run yet (seen under QEMU's TCG), not a settled group. Counting
            // them later would leave a passed frame that is not the group's (the kernel's
            // own traffic) outside the group's window, unexplained.
            let in_flight = passed_unseen(&last);
            let (arrived, complete) = match mode {
                XdpMode::Native => {
                    let xdp = now.xdp.since(&then.xdp);
                    let arrived = xdp.packets + xdp.ring_drops + lost_at_sender >= sent;
                    let visible = xdp.passed() + xdp.tx + xdp.redirect;
                    (arrived, arrived && captured >= visible)
                }
                XdpMode::Generic => {
                    let received = now.link.since(&then.link).rx_packets;
                    let arrived = received + lost_at_sender >= sent;
                    let dropped = match (last.drop_cnt, before.drop_cnt) {
                        (Some(now), Some(then)) => now - then,
                        _ => 0,
                    };
                    // Without a drop counter, "everything accounted for" is provably complete;
                    // so is an empty backlog once every frame arrived: generic XDP has then run
                    // on all of them, and what it passed is in the captures' sockets.
                    let counted = arrived && captured + dropped + aborted >= received;
                    (arrived, counted || (arrived && self.drained()?))
                }
            };
            if complete {
                // The group's frames counted as captured above are in the per-interface
                // counts from now on; `last` may predate some of them.
                let fresh = self.snapshot()?;
                // A frame of the kernel's own (an IPv6 listener report, say) that XDP passed
                // just now is in this snapshot's XDP counters before the capture has read it:
                // closing the window there counts it on the kernel's side only ("native XDP
                // ran on 101 frames, 100 were sent", seen once in a sid VM). Wait until the
                // capture has it too, so it is this window's background on both sides.
                if !passed_unseen(&fresh)
                    || Instant::now() >= deadline
                    || crate::interrupt::requested().is_some()
                {
                    return Ok(fresh);
                }
            }
            if (arrived && !in_flight && last_change.elapsed() >= QUIET)
                || Instant::now() >= deadline
                || crate::interrupt::requested().is_some()
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

/// Whether XDP passed frames at the attach interface between `since` and `now` that its
/// capture has not read by `now` (native mode: generic XDP has no counters of its own).
fn passed_unseen(mode: XdpMode, attach: usize, since: &Snapshot, now: &Snapshot) -> bool {
    mode == XdpMode::Native
        && now.ifaces[attach]
            .xdp
            .since(&since.ifaces[attach].xdp)
            .passed()
            > now.ifaces[attach].captured - since.ifaces[attach].captured
}

fn end<'t>(topology: &'t Topology, name: &EndName) -> Result<&'t VethEnd, RunError> {
    topology
        .interface(&name.netns, Some(&name.interface))
        .map(|(_, end)| end)
        .ok_or_else(|| RunError::input(format!("{name} is not in the topology")))
}

/// A one-slot u64 counter map of the program (`drop_cnt`, `pass_cnt`), if it has one.
pub(crate) fn counter(program: &Program, name: &str) -> Result<Option<u64>, RunError> {
    let Ok(map) = program.map(name) else {
        return Ok(None);
    };
    if !matches!(map.kind(), MapKind::Array | MapKind::PerCpuArray)
        || map.key_size() != 4
        || map.value_size() != 8
    {
        return Ok(None);
    }
    Ok(map.lookup(&0u32.to_le_bytes())?.and_then(|v| v.sum_u64()))
}

/// Attaches a program that passes everything (native) on `at`, so that frames sent there by
/// XDP_TX or XDP_REDIRECT arrive: a veth drops those xdp_frames unless its receiving end runs
/// NAPI, which an XDP program turns on. Above veth's MTU cap for programs without
/// `xdp.frags`, a frags program that passes everything does the same job.
pub fn enable_napi(
    topology: &Topology,
    at: &EndName,
    jumbo: bool,
) -> Result<(Program, Attachment), RunError> {
    let (object, entry) = if jumbo {
        ("xdp_frags", "xdp_frags_limit")
    } else {
        ("xdp_pass", "xdp_pass")
    };
    let mut helper = Program::load(&ObjectSource::Bundled(object.into()), entry)?;
    let attachment = helper.attach(end(topology, at)?, XdpMode::Native)?;
    Ok((helper, attachment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::XdpStats;

    /// A two-interface snapshot: at the attach interface (0), `packets` frames XDP ran on,
    /// `redirect` of them redirected, and `captured` frames its capture read.
    fn snapshot(packets: u64, redirect: u64, captured: u64) -> Snapshot {
        let iface = |xdp, captured| IfaceSnapshot {
            xdp,
            link: Default::default(),
            captured,
        };
        Snapshot {
            ifaces: vec![
                iface(
                    XdpStats {
                        packets,
                        redirect,
                        ..Default::default()
                    },
                    captured,
                ),
                iface(XdpStats::default(), 0),
            ],
            drop_cnt: None,
            pass_cnt: None,
            aborted: 0,
        }
    }

    #[test]
    fn a_passed_frame_the_capture_has_not_read_keeps_the_window_from_closing() {
        let before = snapshot(1000, 900, 40);
        // 100 redirected, and one frame of the kernel's own passed but not read yet.
        let counted_first = snapshot(1101, 1000, 40);
        assert!(passed_unseen(XdpMode::Native, 0, &before, &counted_first));
        // Read: the window may close, the frame counted on both sides.
        let read = snapshot(1101, 1000, 41);
        assert!(!passed_unseen(XdpMode::Native, 0, &before, &read));
        // Read since `before` but passed before it: nothing is in flight.
        let earlier = snapshot(1100, 1000, 41);
        assert!(!passed_unseen(XdpMode::Native, 0, &before, &earlier));
        // Generic XDP has no counters of its own to be ahead of the capture.
        assert!(!passed_unseen(XdpMode::Generic, 0, &before, &counted_first));
    }
}
