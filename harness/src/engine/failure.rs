//! Typed failures: every way a run can fail its expectations, with the one text people read
//! (human reports, JSON, JUnit, and the library's errors print the same words).

use std::fmt;

use crate::{observe::MIN_OBSERVABLE_VLAN_FRAME, verdict::Verdict};

/// Verdict counts of one group, in the order the kernel oracle lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictCounts {
    /// XDP_PASS.
    pub passed: u64,
    /// XDP_DROP and XDP_ABORTED.
    pub dropped_or_aborted: u64,
    /// XDP_TX.
    pub tx: u64,
    /// XDP_REDIRECT.
    pub redirected: u64,
}

impl From<(u64, u64, u64, u64)> for VerdictCounts {
    fn from((passed, dropped_or_aborted, tx, redirected): (u64, u64, u64, u64)) -> Self {
        Self {
            passed,
            dropped_or_aborted,
            tx,
            redirected,
        }
    }
}

/// One way a run failed what it expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The sender could not send every frame of a group.
    #[error("send {group:?}: the sender could not send {unsent} of {offered} frames ({reason})")]
    Unsent {
        /// The group.
        group: String,
        /// Frames not sent.
        unsent: u64,
        /// Frames the group had.
        offered: u64,
        /// The sender's last error.
        reason: String,
    },
    /// Nothing can see where the group's frames went.
    #[error(
        "send {group:?}: cannot observe the verdicts: the kernel frees VLAN-tagged frames \
         shorter than {MIN_OBSERVABLE_VLAN_FRAME} bytes before any capture, and generic mode \
         has no XDP counters; use native mode or give the program drop_cnt/pass_cnt maps"
    )]
    Unobservable {
        /// The group.
        group: String,
    },
    /// Frames got another verdict than expected.
    #[error(
        "send {group:?}: expected {expected}, {wrong} of {sent} frames went elsewhere: {got} ({evidence})"
    )]
    WrongVerdict {
        /// The group.
        group: String,
        /// The verdict every frame should have got.
        expected: Verdict,
        /// Frames that did not get it.
        wrong: u64,
        /// Frames sent.
        sent: u64,
        /// What they got instead (`"3 pass, 1 drop"`).
        got: String,
        /// How that is known (where frames landed, by sequence number, or which counters).
        evidence: String,
    },
    /// On the test-run path: frames for which the program returned another verdict than
    /// expected (added with [`crate::engine::test_run`]).
    #[error(
        "send {group:?}: expected {expected}, {wrong} of {sent} frames returned something else ({places})"
    )]
    Returned {
        /// The group.
        group: String,
        /// The verdict every frame should have got.
        expected: Verdict,
        /// Frames that did not get it.
        wrong: u64,
        /// Frames run.
        sent: u64,
        /// What they returned, with their first sequence numbers.
        places: String,
    },
    /// Frames arrived more than once.
    #[error("send {group:?}: frames arrived more than once (seq {seqs})")]
    Duplicated {
        /// The group.
        group: String,
        /// The sequence numbers, listed.
        seqs: String,
    },
    /// Frames were lost between the sending veth and XDP.
    #[error("send {group:?}: {lost} frames were lost between the sending veth and XDP")]
    LostBeforeXdp {
        /// The group.
        group: String,
        /// Frames lost.
        lost: u64,
    },
    /// Native XDP ran on another number of frames than were sent.
    #[error(
        "send {group:?}: kernel oracle: native XDP ran on {ran} frames, {sent} were sent{}",
        background_seen(*background)
    )]
    XdpRan {
        /// The group.
        group: String,
        /// Frames the veth's XDP counters saw.
        ran: u64,
        /// Frames sent.
        sent: u64,
        /// Background frames seen in the group's window.
        background: u64,
    },
    /// The veth's XDP counters and the captures disagree on the verdicts.
    #[error(
        "send {group:?}: kernel oracle disagrees: veth counted {} passed, {} dropped or aborted, {} tx, {} redirected; the captures saw {}, {}, {}, {}{}",
        kernel.passed, kernel.dropped_or_aborted, kernel.tx, kernel.redirected,
        captures.passed, captures.dropped_or_aborted, captures.tx, captures.redirected,
        background_seen(*background)
    )]
    KernelDisagrees {
        /// The group.
        group: String,
        /// What the veth's XDP counters say.
        kernel: VerdictCounts,
        /// What the captures saw.
        captures: VerdictCounts,
        /// Background frames seen in the group's window.
        background: u64,
    },
    /// The receiving veth got another number of frames than were sent.
    #[error(
        "send {group:?}: kernel oracle: the receiving veth got {received} frames, {sent} were sent{}",
        background_seen(*background)
    )]
    Received {
        /// The group.
        group: String,
        /// Frames the veth received.
        received: u64,
        /// Frames sent.
        sent: u64,
        /// Background frames seen in the group's window.
        background: u64,
    },
    /// A frame that came out does not look as the group's `output` says, or could not be
    /// checked (the text says which field, or why).
    #[error("{0}")]
    Output(String),
    /// A program counter disagrees with the kernel's count of the same verdict.
    #[error("program counter {map} = {program} disagrees with {source_name} = {kernel}")]
    Counter {
        /// The map (`drop_cnt`, `pass_cnt`).
        map: String,
        /// Its count.
        program: u64,
        /// Which kernel counters were compared.
        source_name: String,
        /// Their count.
        kernel: u64,
    },
    /// A capture dropped frames: the counts seen there are incomplete.
    #[error(
        "the capture on {interface} dropped {dropped} frame(s): the counts seen there are incomplete"
    )]
    CaptureDropped {
        /// The interface.
        interface: String,
        /// Frames the capture socket dropped.
        dropped: u64,
    },
}

impl Failure {
    /// The send group the failure is about, if it is about one.
    pub fn group(&self) -> Option<&str> {
        match self {
            Self::Unsent { group, .. }
            | Self::Unobservable { group }
            | Self::WrongVerdict { group, .. }
            | Self::Returned { group, .. }
            | Self::Duplicated { group, .. }
            | Self::LostBeforeXdp { group, .. }
            | Self::XdpRan { group, .. }
            | Self::KernelDisagrees { group, .. }
            | Self::Received { group, .. } => Some(group),
            Self::Output(_) | Self::Counter { .. } | Self::CaptureDropped { .. } => None,
        }
    }
}

fn background_seen(background: u64) -> Background {
    Background(background)
}

/// ` (+N background frame(s) seen)`, or nothing.
struct Background(u64);

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, " (+{} background frame(s) seen)", self.0)
        } else {
            Ok(())
        }
    }
}
