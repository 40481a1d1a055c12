//! Why a run could not go on, and whose fault that is: the scenario's or object's (exit 2) or
//! the machine's (exit 3). Every area's error converts into [`RunError`] here, in one place.

use crate::{
    inject::InjectError, lab::LabError, link::LinkError, maps::MapError, observe::ObserveError,
    pin::PinError, program::ProgramError, report::FailureKind,
};

/// Why a scenario could not run: its message names the file and line where there is one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

impl RunError {
    /// Whose fault it is: the scenario's or object's (exit 2), or the machine's (exit 3).
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Input,
            message: message.into(),
        }
    }
    pub(crate) fn environment(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Environment,
            message: message.into(),
        }
    }
}

impl From<ProgramError> for RunError {
    fn from(e: ProgramError) -> Self {
        if e.is_environment() {
            Self::environment(e.to_string())
        } else {
            Self::input(e.to_string())
        }
    }
}

impl From<LabError> for RunError {
    fn from(e: LabError) -> Self {
        if let LabError::State(state) = &e
            && state.is_input()
        {
            // The scenario's [[netns]] asked for something the kernel refuses.
            return Self::input(format!("{e} (check the [[netns]] tables)"));
        }
        let hint = if e.is_permission() {
            " (run as root: xdplab needs CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_BPF)"
        } else {
            ""
        };
        Self::environment(format!("{e}{hint}"))
    }
}

impl From<ObserveError> for RunError {
    fn from(e: ObserveError) -> Self {
        Self::environment(e.to_string())
    }
}

impl From<InjectError> for RunError {
    fn from(e: InjectError) -> Self {
        Self::environment(e.to_string())
    }
}

impl From<MapError> for RunError {
    fn from(e: MapError) -> Self {
        match e {
            MapError::NotFound { .. } | MapError::Size { .. } | MapError::Pin { .. } => {
                Self::input(e.to_string())
            }
            MapError::Info { .. } | MapError::Syscall { .. } => Self::environment(e.to_string()),
        }
    }
}

impl From<PinError> for RunError {
    fn from(e: PinError) -> Self {
        if e.is_permission() {
            Self::environment(e.to_string())
        } else {
            Self::input(e.to_string())
        }
    }
}

impl From<LinkError> for RunError {
    fn from(e: LinkError) -> Self {
        match e.errno() {
            Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) | None
                if !matches!(e, LinkError::Replaced { .. }) =>
            {
                Self::environment(e.to_string())
            }
            _ => Self::input(e.to_string()),
        }
    }
}

/// An error once SIGINT or SIGTERM asked the run to stop (see [`crate::interrupt`]): the
/// scenario is abandoned by returning it, so every guard of the run is dropped on the way out.
pub(crate) fn interrupted() -> Result<(), RunError> {
    match crate::interrupt::requested() {
        Some(signal) => Err(RunError::environment(format!(
            "interrupted by {signal}: the scenario was abandoned"
        ))),
        None => Ok(()),
    }
}
