//! The exit codes of the `xdplab` binary, in one place (README and `--help` list the same).

/// How an `xdplab` invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: every scenario passed (or was skipped).
    Pass,
    /// 1: at least one scenario failed its expectations.
    Fail,
    /// 2: bad input: an unreadable or invalid scenario, or an unusable object (not ELF, no such
    /// program or map, rejected by the verifier).
    BadInput,
    /// 3: the environment cannot run labs: missing privileges or kernel features.
    Environment,
    /// 128 + the signal: SIGINT or SIGTERM stopped the run (see [`interrupted`]).
    Interrupted(crate::interrupt::Signal),
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Fail => 1,
            Self::BadInput => 2,
            Self::Environment => 3,
            Self::Interrupted(signal) => interrupted(signal),
        }
    }
}

/// The exit status after SIGINT or SIGTERM stopped a run (see [`crate::interrupt`]): 128 +
/// the signal number, as shells report a process the signal ended (130 for SIGINT, 143 for
/// SIGTERM). The run was abandoned and everything it built was removed.
pub fn interrupted(signal: crate::interrupt::Signal) -> u8 {
    // Signal numbers are below 65 on Linux.
    128 + signal as u8
}

/// The exit-code table as printed in `--help`.
pub const HELP: &str = "Exit codes:
  0    all scenarios passed (skipped ones count as passed)
  1    a scenario failed its expectations
  2    bad input: unreadable or invalid scenario, unusable object (not ELF, missing program or
       map, rejected by the verifier), a scenario naming an interface outside the lab
  3    environment: missing privileges or kernel features (xdplab doctor says which)
  130  interrupted by SIGINT (143: SIGTERM): the run was abandoned and cleaned up

SIGINT or SIGTERM abandons the current scenario, removes everything the run built and exits
130/143; a second signal ends xdplab at once. Each run first removes what killed xdplab
processes left behind (see `xdplab clean`).";
