//! What the engine is asked to do: the program under test and where it is, and each group of
//! frames planned once (from where, which frames, how many, what should become of them); and
//! what it answers.

use std::{collections::BTreeMap, time::SystemTime};

use super::failure::Failure;
use super::observation::Attribution;
use crate::{
    frame::FrameTemplate,
    inject::InjectStats,
    kernel::program::{Program, XdpMode},
    report::{CounterCheck, GroupReport},
    topology::EndName,
    verdict::Verdict,
    verdict::output::OutputSpec,
};

/// What the captures of one session may keep of frame bytes, together, per store (see
/// [`crate::observe::CaptureOptions::keep_bytes`]): each interface keeps
/// [`crate::observe::KEEP_BYTES`] up to 16 interfaces, a share of this beyond.
pub const SESSION_KEEP_BYTES: usize = 256 << 20;

/// A frame kept for a capture file, with the time it arrived.
pub type KeptFrame = (SystemTime, Vec<u8>);

/// The program under test in a live session, and where it is attached.
#[derive(Clone, Copy, Debug)]
pub struct UnderTest<'p> {
    /// The loaded, attached program; its `drop_cnt`/`pass_cnt` maps, if any, are read.
    pub program: &'p Program,
    /// The interface it is attached to.
    pub attach: &'p EndName,
    /// How it is attached there.
    pub mode: XdpMode,
}

/// Options of a live session.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// The id tagged into every frame (default: the topology's).
    pub run_id: Option<u32>,
    /// Frames kept per interface, whatever they are, for capture files (0: none).
    pub keep_frames: usize,
}

/// One group of frames to send, planned once: from where, which frames, how many, and what
/// should become of them.
#[derive(Clone, Debug)]
pub struct GroupPlan {
    /// The group's name in reports and failure lines.
    pub name: String,
    /// The interface the frames are sent from.
    pub from: EndName,
    /// The frames, laid out; copy `seq` is `frames[seq % frames.len()]`.
    pub frames: Vec<FrameTemplate>,
    /// How many frames to send.
    pub count: u32,
    /// The verdict every frame should get.
    pub expect: Verdict,
    /// For [`Verdict::Redirect`]: the interface the program redirects to (frames land at its
    /// peer).
    pub redirect_to: Option<EndName>,
    /// What the frames that come out should look like.
    pub output: Option<OutputSpec>,
}

/// What became of one group, judged.
#[derive(Clone, Debug)]
pub struct GroupOutcome {
    /// Where its frames landed and what the kernel counted.
    pub report: GroupReport,
    /// What its counts rest on.
    pub attribution: Attribution,
    /// What the sender managed.
    pub stats: InjectStats,
    /// Every way the group failed its expectation; empty when it passed.
    pub failures: Vec<Failure>,
    /// Things worth saying that are not failures (content attribution rules used).
    pub notes: Vec<String>,
}

/// What a whole session adds to its groups' outcomes.
#[derive(Debug, Default)]
pub struct SessionOutcome {
    /// The program's counters against the kernel's, over every group.
    pub counters: Vec<CounterCheck>,
    /// Counter disagreements and incomplete captures.
    pub failures: Vec<Failure>,
    /// Frames no group claimed, by interface.
    pub unattributed_by_interface: BTreeMap<String, u64>,
    /// Frames kept for capture files ([`SessionOptions::keep_frames`]), by interface.
    pub frames: Vec<(EndName, Vec<KeptFrame>)>,
    /// Things worth saying about the session.
    pub notes: Vec<String>,
}
