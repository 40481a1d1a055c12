//! Network namespaces owned by file descriptors.
//!
//! A lab namespace is never bind-mounted under `/run/netns`: it exists exactly as long as
//! something holds it (the [`NetNs`] file descriptor, a socket created inside it, a thread set
//! into it). When the process ends, however it ends, the kernel destroys the namespace and every
//! veth in it, so a killed run cannot leave a namespace behind.
//!
//! `setns(2)` changes only the calling thread. Work that must happen inside a namespace
//! (creating sockets, resolving or attaching to interfaces) therefore runs on a fresh thread set
//! into it by [`NetNs::run`], never on a pooled thread that a later task would reuse in the wrong
//! namespace. Sockets keep the namespace they were created in, so once created they can be used
//! from any thread.

use std::{
    fs::File,
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
};

use nix::sched::{CloneFlags, setns, unshare};
use thiserror::Error;

/// An error from creating or entering a network namespace.
#[derive(Debug, Error)]
pub enum NetNsError {
    /// `unshare(CLONE_NEWNET)` failed, usually for lack of CAP_SYS_ADMIN.
    #[error(
        "failed to create network namespace {label:?}: {source}{}",
        super::refusal::hint(super::refusal::Resource::NetNs, Some(*source as i32))
    )]
    Create {
        /// The namespace's label.
        label: String,
        /// The errno from `unshare(2)`.
        #[source]
        source: nix::Error,
    },
    /// Opening the new namespace's handle failed.
    #[error("failed to open the handle of network namespace {label:?}: {source}")]
    Open {
        /// The namespace's label.
        label: String,
        /// The error from opening `/proc/thread-self/ns/net`.
        #[source]
        source: io::Error,
    },
    /// `setns(2)` into the namespace failed.
    #[error("failed to enter network namespace {label:?}: {source}")]
    Enter {
        /// The namespace's label.
        label: String,
        /// The errno from `setns(2)`.
        #[source]
        source: nix::Error,
    },
    /// A route netlink socket could not be opened or driven inside the namespace.
    #[error("failed to open a route netlink socket in network namespace {label:?}: {source}")]
    Netlink {
        /// The namespace's label.
        label: String,
        /// The error from creating the socket or its runtime.
        #[source]
        source: io::Error,
    },
    /// The thread that works inside the namespace could not be started.
    #[error("failed to start a thread for network namespace {label:?}: {source}")]
    Thread {
        /// The namespace's label.
        label: String,
        /// The error from spawning the thread.
        #[source]
        source: io::Error,
    },
}

impl NetNsError {
    /// Whether the failure comes from missing privileges rather than from xdplab.
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            Self::Create { source, .. } | Self::Enter { source, .. }
                if matches!(source, nix::Error::EPERM | nix::Error::EACCES)
        )
    }
}

/// A network namespace, alive while this value (or a socket made inside it) exists.
///
/// Equivalent to `ip netns add`, without the bind mount that would outlive the process.
#[derive(Debug)]
#[doc(alias = "CLONE_NEWNET")]
pub struct NetNs {
    fd: OwnedFd,
    label: String,
}

impl NetNs {
    /// Creates a new, empty network namespace (only `lo`, down).
    ///
    /// The namespace is made on a dedicated thread that exits afterwards, so the calling
    /// thread never changes namespace.
    pub fn new(label: impl Into<String>) -> Result<Self, NetNsError> {
        let label = label.into();
        let fd = spawn_named(&label, || {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetNsError::Create {
                label: label.clone(),
                source,
            })?;
            File::open("/proc/thread-self/ns/net")
                .map(OwnedFd::from)
                .map_err(|source| NetNsError::Open {
                    label: label.clone(),
                    source,
                })
        })??;
        Ok(Self { fd, label })
    }

    /// The label used in thread names and error messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `f` on a new thread set into this namespace and returns its result.
    ///
    /// A panic in `f` is resumed on the calling thread.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetNsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        spawn_named(&self.label, || {
            setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(|source| NetNsError::Enter {
                label: self.label.clone(),
                source,
            })?;
            Ok(f())
        })?
    }

    /// Runs `f` with an rtnetlink handle whose socket lives in this namespace.
    ///
    /// The requests run on a current-thread runtime owned by the namespace's thread, so no
    /// pooled runtime thread is ever moved into the namespace.
    pub fn netlink<T, F, Fut>(&self, f: F) -> Result<T, NetNsError>
    where
        T: Send,
        F: FnOnce(rtnetlink::Handle) -> Fut + Send,
        Fut: Future<Output = T>,
    {
        let netlink_error = |source| NetNsError::Netlink {
            label: self.label.clone(),
            source,
        };
        self.run(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(netlink_error)?;
            let _guard = runtime.enter();
            let (connection, handle, _) = rtnetlink::new_connection().map_err(netlink_error)?;
            runtime.spawn(connection);
            Ok(runtime.block_on(f(handle)))
        })?
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Runs `f` on a scoped thread named after the namespace and waits for it.
fn spawn_named<T, F>(label: &str, f: F) -> Result<T, NetNsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name(format!("netns-{label}"))
            .spawn_scoped(scope, f)
            .map_err(|source| NetNsError::Thread {
                label: label.to_owned(),
                source,
            })?;
        match handle.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_netns_inode() -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/thread-self/ns/net")
            .expect("stat own netns")
            .ino()
    }

    #[test]
    fn run_happens_inside_and_leaves_caller_alone() {
        let before = current_netns_inode();
        let ns = match NetNs::new("unit") {
            Ok(ns) => ns,
            Err(e) if e.is_permission() => {
                crate::host::privileges::skip_or_fail(&format!(
                    "cannot create a network namespace: {e}"
                ));
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let inside = ns.run(current_netns_inode).expect("run in netns");
        assert_ne!(inside, before, "closure must run in the new namespace");
        assert_eq!(
            current_netns_inode(),
            before,
            "caller's namespace must not change"
        );
        assert_eq!(ns.run(current_netns_inode).expect("run again"), inside);
    }
}
