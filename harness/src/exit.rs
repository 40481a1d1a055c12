//! The exit codes of the `xdplab` binary, in one place (README and `--help` list the same).

/// How an `xdplab` invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: every scenario passed (or was skipped).
    Pass = 0,
    /// 1: at least one scenario failed its expectations.
    Fail = 1,
    /// 2: bad input: an unreadable or invalid scenario, or an unusable object (not ELF, no such
    /// program or map, rejected by the verifier).
    BadInput = 2,
    /// 3: the environment cannot run labs: missing privileges or kernel features.
    Environment = 3,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The exit-code table as printed in `--help`.
pub const HELP: &str = "Exit codes:
  0  all scenarios passed (skipped ones count as passed)
  1  a scenario failed its expectations
  2  bad input: unreadable or invalid scenario, unusable object (not ELF, missing program or
     map, rejected by the verifier)
  3  environment: missing privileges or kernel features (xdplab doctor says which)";
