//! The exit codes of the `xdplab` binary, in one place (README and `--help` list the same),
//! and the one rule that decides whether an error is the user's input (exit 2) or the
//! machine's (exit 3): [`ErrorClass`], given by each area's error through [`Classify`].
//!
//! # The rule
//!
//! 1. **Privileges, kernel features and kernel resources are the machine's**, whatever the
//!    request: `EPERM`, `EACCES`, `ENOSYS`, `EOPNOTSUPP`, and the exhausted resources
//!    `ENOMEM`, `ENOSPC` (a limit such as `user.max_net_namespaces`), `EMFILE` and `ENFILE` are
//!    [`ErrorClass::Environment`] ([`errno_class`]). One exception, because the kernel gives
//!    the errno a second meaning there: from `BPF_PROG_LOAD`, `EACCES` is the verifier
//!    rejecting the program, which is bad input ([`prog_load_errno_class`]; `EPERM` stays
//!    the missing `CAP_BPF`).
//! 2. **Any other failure belongs to whoever wrote what failed.** What the user wrote (a file
//!    they named, an object with its programs and maps, the program the verifier judged, a
//!    `[[netns]]` table, a pin or link a step names, a frame, a `requires` line) is
//!    [`ErrorClass::BadInput`]: `EINVAL` from the verifier, `ENOENT` of a user file, a bad
//!    ELF. A request xdplab builds by itself (namespaces, veths, captures, injectors, its own
//!    bpffs, link commands, syscalls on maps already checked) failing means the kernel cannot
//!    do it: [`ErrorClass::Environment`].
//!
//! Within an area the variant says which side wrote the request: the impls are in
//! `crate::classify` (and [`crate::kernel::program`] for its own error), with tests that pin each
//! decision.

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
       map, rejected by the verifier), a scenario naming an interface outside the lab, an
       unwritable --junit file
  3    environment: missing privileges or kernel features (xdplab doctor says which)
  130  interrupted by SIGINT (143: SIGTERM): the run was abandoned and cleaned up

SIGINT or SIGTERM abandons the current scenario, removes everything the run built and exits
130/143; a second signal ends xdplab at once. Each run first removes what killed xdplab
processes left behind (see `xdplab clean`).";

/// Whose fault an error is (see the module docs for the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The user's input: a scenario, an object, a file or a value they gave (exit 2).
    BadInput,
    /// The machine: privileges, kernel features or resources (exit 3).
    Environment,
}

/// An error that knows whose fault it is: implemented by every area's error type.
pub trait Classify {
    /// Whose fault it is.
    fn class(&self) -> ErrorClass;
}

impl From<ErrorClass> for Exit {
    fn from(class: ErrorClass) -> Self {
        match class {
            ErrorClass::BadInput => Exit::BadInput,
            ErrorClass::Environment => Exit::Environment,
        }
    }
}

/// Rule 1: `Some(Environment)` for the errnos that say the machine lacks a privilege, a
/// feature or a resource; `None` when the errno alone does not say (rule 2 decides).
pub fn errno_class(errno: i32) -> Option<ErrorClass> {
    matches!(
        errno,
        libc::EPERM
            | libc::EACCES
            | libc::ENOSYS
            | libc::EOPNOTSUPP
            | libc::ENOMEM
            | libc::ENOSPC
            | libc::EMFILE
            | libc::ENFILE
    )
    .then_some(ErrorClass::Environment)
}

/// Rule 1 for `BPF_PROG_LOAD`, where `EACCES` is the verifier rejecting the program.
pub fn prog_load_errno_class(errno: i32) -> Option<ErrorClass> {
    match errno {
        libc::EACCES => None,
        _ => errno_class(errno),
    }
}

/// Rule 1 for an errno when there is one, else `otherwise` (rule 2: who wrote the request).
pub fn class_by_errno(errno: Option<i32>, otherwise: ErrorClass) -> ErrorClass {
    errno.and_then(errno_class).unwrap_or(otherwise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_feature_and_resource_errnos_are_the_machines() {
        for errno in [
            libc::EPERM,
            libc::EACCES,
            libc::ENOSYS,
            libc::EOPNOTSUPP,
            libc::ENOMEM,
            libc::ENOSPC,
            libc::EMFILE,
            libc::ENFILE,
        ] {
            assert_eq!(errno_class(errno), Some(ErrorClass::Environment), "{errno}");
            let otherwise = class_by_errno(Some(errno), ErrorClass::BadInput);
            assert_eq!(otherwise, ErrorClass::Environment, "{errno}");
        }
        for errno in [
            libc::EINVAL,
            libc::ENOENT,
            libc::EEXIST,
            libc::EBUSY,
            libc::E2BIG,
        ] {
            assert_eq!(errno_class(errno), None, "{errno}");
            assert_eq!(prog_load_errno_class(errno), None, "{errno}");
        }
        assert_eq!(
            class_by_errno(None, ErrorClass::BadInput),
            ErrorClass::BadInput
        );
        assert_eq!(
            class_by_errno(Some(libc::ENOENT), ErrorClass::Environment),
            ErrorClass::Environment
        );
    }

    #[test]
    fn the_verifiers_eacces_is_not_a_missing_privilege() {
        assert_eq!(prog_load_errno_class(libc::EACCES), None);
        assert_eq!(
            prog_load_errno_class(libc::EPERM),
            Some(ErrorClass::Environment)
        );
    }

    #[test]
    fn classes_become_exit_codes_2_and_3() {
        assert_eq!(Exit::from(ErrorClass::BadInput), Exit::BadInput);
        assert_eq!(Exit::from(ErrorClass::BadInput).code(), 2);
        assert_eq!(Exit::from(ErrorClass::Environment).code(), 3);
    }
}
