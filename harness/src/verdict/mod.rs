//! The XDP action a scenario expects a frame to get.
//!
//! Scenario files name verdicts in lowercase (`expect = "drop"`); reports print
//! them the same way. Every action an XDP program can return is here, each
//! observed in its own place: a dropped frame is seen nowhere, a passed one
//! after XDP on the interface the program is attached to, a transmitted one
//! back at the interface that sent it, a redirected one at the peer of the
//! redirect target, and an aborted one only by the `xdp:xdp_exception`
//! tracepoint.

pub mod output;

use std::fmt;

use serde::{Deserialize, Serialize};

/// The XDP action a frame is expected to get.
///
/// The variants are in the kernel's order (`enum xdp_action`), so
/// [`Verdict::xdp_action`] and [`Verdict::from_xdp_action`] are a plain
/// numbering.
#[doc(alias = "xdp_action")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The program failed; the kernel drops the frame and fires the
    /// `xdp:xdp_exception` tracepoint. Seen nowhere else.
    #[doc(alias = "XDP_ABORTED")]
    Aborted,
    /// The program drops the frame; nothing sees it.
    #[doc(alias = "XDP_DROP")]
    Drop,
    /// The program hands the frame to the kernel stack; it is seen after XDP
    /// on the interface the program is attached to.
    #[doc(alias = "XDP_PASS")]
    Pass,
    /// The program sends the frame back out of the interface it arrived on;
    /// it comes back to the interface that sent it.
    #[doc(alias = "XDP_TX")]
    Tx,
    /// The program sends the frame out of another interface (a devmap
    /// target); it arrives at that interface's peer.
    #[doc(alias = "XDP_REDIRECT")]
    Redirect,
}

impl Verdict {
    /// Every verdict, in the kernel's order.
    pub const ALL: [Verdict; 5] = [
        Verdict::Aborted,
        Verdict::Drop,
        Verdict::Pass,
        Verdict::Tx,
        Verdict::Redirect,
    ];

    /// The name used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Aborted => "aborted",
            Verdict::Drop => "drop",
            Verdict::Pass => "pass",
            Verdict::Tx => "tx",
            Verdict::Redirect => "redirect",
        }
    }

    /// The verdict for a program's return code (`XDP_ABORTED` = 0 ..
    /// `XDP_REDIRECT` = 4); `None` for any other code (which the kernel
    /// treats as an exception).
    pub fn from_xdp_action(code: u32) -> Option<Verdict> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }

    /// The program return code for this verdict.
    pub fn xdp_action(self) -> u32 {
        match self {
            Verdict::Aborted => 0,
            Verdict::Drop => 1,
            Verdict::Pass => 2,
            Verdict::Tx => 3,
            Verdict::Redirect => 4,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Holder {
        v: Verdict,
    }

    #[test]
    fn serde_uses_lowercase_names() {
        for (verdict, name) in [
            (Verdict::Aborted, "aborted"),
            (Verdict::Drop, "drop"),
            (Verdict::Pass, "pass"),
            (Verdict::Tx, "tx"),
            (Verdict::Redirect, "redirect"),
        ] {
            let text = format!("v = \"{name}\"\n");
            let parsed: Holder = toml::from_str(&text).unwrap();
            assert_eq!(parsed.v, verdict);
            assert_eq!(toml::to_string(&Holder { v: verdict }).unwrap(), text);
            assert_eq!(verdict.to_string(), name);
            assert_eq!(
                serde_json::to_string(&verdict).unwrap(),
                format!("\"{name}\"")
            );
        }
    }

    #[test]
    fn unknown_verdict_is_rejected() {
        assert!(toml::from_str::<Holder>("v = \"DROP\"").is_err());
        assert!(toml::from_str::<Holder>("v = \"xdp_tx\"").is_err());
        assert!(toml::from_str::<Holder>("v = 1").is_err());
    }

    #[test]
    fn xdp_action_codes_follow_the_kernel() {
        // enum xdp_action in include/uapi/linux/bpf.h.
        let codes = [
            (0, Verdict::Aborted),
            (1, Verdict::Drop),
            (2, Verdict::Pass),
            (3, Verdict::Tx),
            (4, Verdict::Redirect),
        ];
        for (code, verdict) in codes {
            assert_eq!(verdict.xdp_action(), code);
            assert_eq!(Verdict::from_xdp_action(code), Some(verdict));
        }
        assert_eq!(Verdict::from_xdp_action(5), None);
        assert_eq!(Verdict::from_xdp_action(u32::MAX), None);
        for (i, verdict) in Verdict::ALL.iter().enumerate() {
            assert_eq!(verdict.xdp_action() as usize, i);
        }
    }
}
