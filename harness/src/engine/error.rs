//! Why a run could not go on, and whose fault that is: the scenario's or object's (exit 2) or
//! the machine's (exit 3). Every area's error converts into [`RunError`] here, in one place.

use crate::exit::Classify;
use crate::{
    inject::InjectError, kernel::link::LinkError, kernel::maps::MapError, kernel::pin::PinError,
    kernel::program::ProgramError, observe::ObserveError, report::FailureKind,
    topology::lab::LabError,
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

impl RunError {
    /// The error of any area, classified by the one rule in [`crate::exit`].
    pub(crate) fn classified(e: &(impl Classify + std::fmt::Display)) -> Self {
        Self {
            kind: e.class().into(),
            message: e.to_string(),
        }
    }
}

/// Every area's error becomes a [`RunError`] through the one classification ([`Classify`]).
macro_rules! classified {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for RunError {
            fn from(e: $error) -> Self {
                Self::classified(&e)
            }
        })*
    };
}

classified!(
    ProgramError,
    ObserveError,
    InjectError,
    MapError,
    PinError,
    LinkError
);

impl From<LabError> for RunError {
    fn from(e: LabError) -> Self {
        let mut error = Self::classified(&e);
        if matches!(e, LabError::State(_)) && error.kind == FailureKind::Input {
            error.message.push_str(" (check the [[netns]] tables)");
        } else if e.is_permission() {
            error
                .message
                .push_str(" (run as root: xdplab needs CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_BPF)");
        }
        error
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
