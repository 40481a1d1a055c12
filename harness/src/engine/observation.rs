//! What the engine observes: counters at a moment, a group's window between two moments, and
//! what a group's counts rest on.

use std::collections::BTreeMap;

use crate::{
    inject::InjectStats,
    observe::{LinkCounters, XdpStats},
    report::{GroupReport, KernelView},
    verdict::Verdict,
};

/// How a group's frames were told apart: what its counts rest on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// Every frame by its tag, wherever it landed.
    Tag,
    /// Tags, and content for frames that lost theirs.
    TagAndContent,
    /// Untagged frames, by content and the group's window.
    Content,
    /// The veth's XDP counters (frames no capture can see, native mode).
    Kernel,
    /// The program's `drop_cnt`/`pass_cnt` (frames no capture can see, generic mode).
    Program,
    /// Nothing can tell.
    None,
    /// BPF_PROG_TEST_RUN's return code, frame by frame.
    TestRun,
}

impl Attribution {
    /// The name the reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::TagAndContent => "tag and content",
            Self::Content => "content",
            Self::Kernel => "kernel",
            Self::Program => "program",
            Self::None => "none",
            Self::TestRun => "test-run",
        }
    }

    /// Whether the counts rest on frames a capture saw.
    pub(crate) fn sees_frames(self) -> bool {
        matches!(self, Self::Tag | Self::TagAndContent | Self::Content)
    }
}

/// Everything observed on one interface at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IfaceSnapshot {
    pub(crate) xdp: XdpStats,
    pub(crate) link: LinkCounters,
    pub(crate) captured: u64,
}

/// The kernel's and the program's counts at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) ifaces: Vec<IfaceSnapshot>,
    pub(crate) drop_cnt: Option<u64>,
    pub(crate) pass_cnt: Option<u64>,
    pub(crate) aborted: u64,
}

/// The counts of one group that the session-wide counter check needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupCounts {
    pub(crate) received: u64,
    pub(crate) background: u64,
    pub(crate) passed: u64,
    pub(crate) tx: u64,
    pub(crate) redirected: u64,
    pub(crate) aborted: u64,
}

/// One group's window: the counts before and after it, and what its counts rest on.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub(crate) before: Snapshot,
    pub(crate) after: Snapshot,
    pub(crate) attribution: Attribution,
    pub(crate) counts: GroupCounts,
}

/// A group's report before anything was observed.
pub(crate) fn empty_group(name: &str, expect: Verdict, stats: &InjectStats) -> GroupReport {
    GroupReport {
        name: name.to_owned(),
        expect,
        offered: stats.offered,
        sent: stats.accepted,
        dropped: 0,
        passed: 0,
        tx: 0,
        redirected: 0,
        aborted: 0,
        landed: BTreeMap::new(),
        misplaced: BTreeMap::new(),
        output_mismatches: Vec::new(),
        outcomes: Vec::new(),
        outputs: BTreeMap::new(),
        attributed_by: "tag",
        attribution_rules: BTreeMap::new(),
        unattributed: 0,
        kernel: KernelView::default(),
        missing: Vec::new(),
        leaked: Vec::new(),
        duplicated: Vec::new(),
    }
}
