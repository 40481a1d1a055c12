//! The [`Classify`] impls of every area's error (but [`crate::kernel::program::ProgramError`], whose module uses
//! its own): whose fault each error is, by the rule in [`crate::exit`]. This module only
//! depends on the areas, and nothing but the front ends (the command line, the scenario
//! runner) depends on it, so it joins no import cycle.

use std::io;

use crate::{
    bench::BenchError,
    bench::results::ResultsError,
    exit::{Classify, ErrorClass, class_by_errno},
    frame::FrameError,
    frame::pcap::PcapError,
    host::requires::RequirementError,
    inject::InjectError,
    interrupt::InterruptError,
    kernel::btf::BtfError,
    kernel::elf::ElfError,
    kernel::link::LinkError,
    kernel::maps::MapError,
    kernel::netns::NetNsError,
    kernel::netstate::NetStateError,
    kernel::pin::PinError,
    kernel::veth::VethError,
    observe::ObserveError,
    report::FailureKind,
    scenario::{IfaceRefError, ScenarioError, run::RunError},
    topology::lab::LabError,
};

impl From<ErrorClass> for FailureKind {
    fn from(class: ErrorClass) -> Self {
        match class {
            ErrorClass::BadInput => FailureKind::Input,
            ErrorClass::Environment => FailureKind::Environment,
        }
    }
}

fn io_errno(error: &io::Error) -> Option<i32> {
    error.raw_os_error()
}

fn nix_errno(error: nix::Error) -> Option<i32> {
    Some(error as i32)
}

impl Classify for NetNsError {
    /// Namespaces are xdplab's own requests.
    fn class(&self) -> ErrorClass {
        ErrorClass::Environment
    }
}

impl Classify for VethError {
    /// Veths, their addresses and sysctls are xdplab's own requests.
    fn class(&self) -> ErrorClass {
        ErrorClass::Environment
    }
}

impl Classify for NetStateError {
    /// The `[[netns]]` tables are the user's: what the kernel refuses of them is bad input.
    fn class(&self) -> ErrorClass {
        match self {
            Self::NetNs(e) => e.class(),
            _ if self.is_input() => ErrorClass::BadInput,
            _ => ErrorClass::Environment,
        }
    }
}

impl Classify for LabError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::NetNs(e) => e.class(),
            Self::Veth(e) => e.class(),
            Self::State(e) => e.class(),
            // The topology asked for (link count, MTU, state of a namespace without links).
            Self::Config(_) => ErrorClass::BadInput,
            Self::Thread(_) => ErrorClass::Environment,
        }
    }
}

impl Classify for ObserveError {
    /// Captures and counters are xdplab's own requests.
    fn class(&self) -> ErrorClass {
        ErrorClass::Environment
    }
}

impl Classify for InjectError {
    /// Injectors are xdplab's own requests; one that cannot open lacks a kernel feature.
    fn class(&self) -> ErrorClass {
        ErrorClass::Environment
    }
}

impl Classify for MapError {
    fn class(&self) -> ErrorClass {
        match self {
            // The map the scenario names, the sizes of its keys and values, its pin.
            Self::NotFound { .. } | Self::Size { .. } | Self::Pin { .. } => ErrorClass::BadInput,
            // Syscalls on a map already found and checked.
            Self::Info { .. } => ErrorClass::Environment,
            Self::Syscall { source, .. } => {
                class_by_errno(io_errno(source), ErrorClass::Environment)
            }
        }
    }
}

impl Classify for PinError {
    fn class(&self) -> ErrorClass {
        use ErrorClass::{BadInput, Environment};
        match self {
            // The run's own bpffs.
            Self::Mount { source, .. } | Self::Unmount { source, .. } => {
                class_by_errno(nix_errno(*source), Environment)
            }
            Self::CreateDir { source, .. }
            | Self::List { source, .. }
            | Self::RemoveDir { source, .. } => class_by_errno(io_errno(source), Environment),
            // A pin a step names.
            Self::Unpin { source, .. } => class_by_errno(io_errno(source), BadInput),
            Self::Name { .. } | Self::Live { .. } => BadInput,
        }
    }
}

impl Classify for LinkError {
    fn class(&self) -> ErrorClass {
        match self {
            // The link a step names runs another program than the step expects.
            Self::Replaced { .. } => ErrorClass::BadInput,
            // The run's own pin holds something else.
            Self::NotXdp { .. } => ErrorClass::Environment,
            Self::Syscall { source, .. } => match io_errno(source) {
                // Link commands are built by xdplab: the kernel lacks what was asked.
                Some(libc::EINVAL) | None => ErrorClass::Environment,
                // A link or pin a step names that is not there, or is busy.
                errno => class_by_errno(errno, ErrorClass::BadInput),
            },
        }
    }
}

impl Classify for BenchError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Lab(e) => e.class(),
            Self::Program(e) => e.class(),
            Self::Observe(e) => e.class(),
            Self::Inject(e) => e.class(),
            // Needs CAP_SYS_ADMIN and Linux 5.8.
            Self::Stats(_) => ErrorClass::Environment,
            Self::Config { .. } => ErrorClass::BadInput,
        }
    }
}

impl Classify for InterruptError {
    /// The signal handlers could not be installed.
    fn class(&self) -> ErrorClass {
        ErrorClass::Environment
    }
}

impl Classify for RunError {
    fn class(&self) -> ErrorClass {
        match self.kind() {
            FailureKind::Input => ErrorClass::BadInput,
            FailureKind::Environment => ErrorClass::Environment,
        }
    }
}

/// Errors about what the user wrote or named, whatever the errno: scenario files and their
/// values, frames, objects' ELF and BTF, pcap files, results files.
macro_rules! bad_input {
    ($($error:ty),* $(,)?) => {$(
        impl Classify for $error {
            /// Always the user's input.
            fn class(&self) -> ErrorClass {
                ErrorClass::BadInput
            }
        }
    )*};
}

bad_input!(
    ScenarioError,
    IfaceRefError,
    RequirementError,
    FrameError,
    ElfError,
    BtfError,
    PcapError,
    ResultsError,
);

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{
        exit::{Exit, errno_class},
        kernel::program::ProgramError,
    };
    use ErrorClass::{BadInput, Environment};

    fn os(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    fn load(errno: Option<i32>) -> ProgramError {
        ProgramError::Load {
            object: "o".into(),
            entry: "e".into(),
            reason: "r".into(),
            log: String::new(),
            errno,
        }
    }

    fn pin(errno: i32) -> ProgramError {
        ProgramError::Pin {
            what: "pin",
            path: PathBuf::from("/p"),
            source: Box::new(os(errno)),
        }
    }

    fn link(errno: i32) -> LinkError {
        LinkError::Syscall {
            op: "update",
            path: PathBuf::from("/l"),
            source: os(errno),
        }
    }

    #[test]
    fn privilege_feature_and_resource_errnos_are_the_machines() {
        for errno in [
            libc::EPERM,
            libc::EACCES,
            libc::ENOSYS,
            libc::EOPNOTSUPP,
            libc::ENOMEM,
        ] {
            assert_eq!(errno_class(errno), Some(Environment), "errno {errno}");
            assert_eq!(pin(errno).class(), Environment, "errno {errno}");
            assert_eq!(link(errno).class(), Environment, "errno {errno}");
            let map = MapError::Syscall {
                name: "m".into(),
                op: "lookup",
                source: os(errno),
            };
            assert_eq!(map.class(), Environment, "errno {errno}");
            let unpin = PinError::Unpin {
                path: PathBuf::from("/p"),
                source: os(errno),
            };
            assert_eq!(unpin.class(), Environment, "errno {errno}");
        }
        for errno in [libc::EINVAL, libc::ENOENT, libc::EEXIST, libc::EBUSY, 0] {
            assert_eq!(errno_class(errno), None, "errno {errno}");
        }
    }

    #[test]
    fn the_verifier_and_the_object_are_bad_input() {
        // BPF_PROG_LOAD: EACCES and EINVAL are the verifier's verdict; EPERM is CAP_BPF.
        assert_eq!(load(Some(libc::EACCES)).class(), BadInput);
        assert_eq!(load(Some(libc::EINVAL)).class(), BadInput);
        assert_eq!(load(Some(libc::E2BIG)).class(), BadInput);
        assert_eq!(load(None).class(), BadInput);
        assert_eq!(load(Some(libc::EPERM)).class(), Environment);
        assert_eq!(load(Some(libc::ENOSYS)).class(), Environment);
        assert_eq!(load(Some(libc::ENOMEM)).class(), Environment);
        assert!(!load(Some(libc::EINVAL)).is_environment());
        assert!(load(Some(libc::EPERM)).is_environment());
        // A user file that is not there, or not an object.
        let read = ProgramError::Read {
            path: PathBuf::from("my.o"),
            source: os(libc::ENOENT),
        };
        assert_eq!(read.class(), BadInput);
        let elf = ProgramError::Elf {
            object: "my.o".into(),
            source: ElfError::Malformed("not ELF".into()),
        };
        assert_eq!(elf.class(), BadInput);
        assert_eq!(pin(libc::EEXIST).class(), BadInput);
        let no_link = ProgramError::NoBpfLink {
            entry: "e".into(),
            interface: "i".into(),
        };
        assert_eq!(no_link.class(), Environment);
        let netns = NetNsError::Create {
            label: "n".into(),
            source: nix::Error::EPERM,
        };
        assert_eq!(ProgramError::NetNs(netns).class(), Environment);
    }

    #[test]
    fn requests_xdplab_builds_are_the_machines() {
        // Link commands: EINVAL is a kernel without the command.
        assert_eq!(link(libc::EINVAL).class(), Environment);
        assert_eq!(link(libc::ENOENT).class(), BadInput);
        assert_eq!(link(libc::EBUSY).class(), BadInput);
        let replaced = LinkError::Replaced {
            path: PathBuf::from("/l"),
            expected: 1,
            actual: 2,
        };
        assert_eq!(replaced.class(), BadInput);
        // The run's own bpffs.
        let mount = |source| PinError::Mount {
            path: PathBuf::from("/run/xdplab/1-0"),
            source,
        };
        assert_eq!(mount(nix::Error::EPERM).class(), Environment);
        assert_eq!(mount(nix::Error::ENODEV).class(), Environment);
        let unpin = PinError::Unpin {
            path: PathBuf::from("/p"),
            source: os(libc::ENOENT),
        };
        assert_eq!(unpin.class(), BadInput);
        let name = PinError::Name { name: "..".into() };
        assert_eq!(name.class(), BadInput);
        // Maps: the scenario's names and sizes, then syscalls on checked maps.
        let missing = MapError::NotFound {
            name: "m".into(),
            object: "o".into(),
            available: Vec::new(),
        };
        assert_eq!(missing.class(), BadInput);
        let syscall = MapError::Syscall {
            name: "m".into(),
            op: "lookup",
            source: os(libc::ENOENT),
        };
        assert_eq!(syscall.class(), Environment);
    }

    #[test]
    fn labs_are_the_machines_except_what_the_scenario_asked_for() {
        let netns = |source| NetNsError::Enter {
            label: "n".into(),
            source,
        };
        assert_eq!(
            LabError::NetNs(netns(nix::Error::EPERM)).class(),
            Environment
        );
        assert_eq!(
            LabError::NetNs(netns(nix::Error::EINVAL)).class(),
            Environment
        );
        let veth = VethError::Lookup {
            name: "v".into(),
            ns: "n".into(),
            reason: "gone".into(),
        };
        assert_eq!(LabError::Veth(veth).class(), Environment);
        assert_eq!(LabError::Config("mtu 9".into()).class(), BadInput);
        let route = NetStateError::Route {
            netns: "n".into(),
            what: "route".into(),
            reason: "unreachable".into(),
        };
        assert_eq!(LabError::State(route).class(), BadInput);
        let sysctl = |errno| NetStateError::Sysctl {
            netns: "n".into(),
            key: "k".into(),
            value: "v".into(),
            source: os(errno),
        };
        assert_eq!(sysctl(libc::ENOENT).class(), BadInput);
        assert_eq!(sysctl(libc::EIO).class(), Environment);
        let observe = ObserveError::Protocol {
            what: "read",
            interface: "i".into(),
            reason: "r".into(),
        };
        assert_eq!(observe.class(), Environment);
        let inject = InjectError::NoInterface {
            interface: "i".into(),
        };
        assert_eq!(inject.class(), Environment);
    }

    #[test]
    fn classes_become_exits_and_failure_kinds() {
        assert_eq!(Exit::from(BadInput), Exit::BadInput);
        assert_eq!(Exit::from(Environment), Exit::Environment);
        assert_eq!(Exit::from(BadInput).code(), 2);
        assert_eq!(Exit::from(Environment).code(), 3);
        assert_eq!(FailureKind::from(BadInput), FailureKind::Input);
        assert_eq!(FailureKind::from(Environment), FailureKind::Environment);
        let config = BenchError::Config {
            config: "c".into(),
            reason: "r".into(),
        };
        assert_eq!(config.class(), BadInput);
        assert_eq!(
            BenchError::Program(load(Some(libc::EPERM))).class(),
            Environment
        );
        assert_eq!(
            BenchError::Program(load(Some(libc::EINVAL))).class(),
            BadInput
        );
        assert_eq!(FrameError::TruncateWithoutSize.class(), BadInput);
    }
}
