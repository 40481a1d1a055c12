//! The XDP action a scenario expects a frame to get.
//!
//! Scenario files name verdicts in lowercase (`expect = "drop"`); reports print
//! them the same way. Only the actions the harness can observe today are here:
//! a dropped frame never reaches the receiver, a passed one does.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The XDP action a frame is expected to get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The program drops the frame; the receiver never sees it.
    #[doc(alias = "XDP_DROP")]
    Drop,
    /// The program hands the frame to the kernel stack; the receiver sees it.
    #[doc(alias = "XDP_PASS")]
    Pass,
}

impl Verdict {
    /// The name used in scenario files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Drop => "drop",
            Verdict::Pass => "pass",
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
        for (verdict, name) in [(Verdict::Drop, "drop"), (Verdict::Pass, "pass")] {
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
        assert!(toml::from_str::<Holder>("v = \"tx\"").is_err());
    }
}
