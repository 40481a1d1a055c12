//! Leftovers of killed xdplab runs, and their removal (`xdplab clean`, and the sweep every
//! `xdplab run` and `xdplab bench` does at start).
//!
//! What a run builds and what survives a SIGKILL:
//! - network namespaces and the veths in them: anonymous, held by the process's file
//!   descriptors and threads; the kernel destroys them when the process dies;
//! - programs, maps and XDP attachments (bpf_links), the `xdp:xdp_exception` counter's
//!   tracing link: file descriptors too, released with the process;
//! - threads (senders, captures, namespace workers): gone with the process;
//! - nothing in the host's namespace: veths are created directly inside the lab namespaces,
//!   and nothing is written under `/tmp` (`--capture`, `--junit` and `xdplab bench --out` write
//!   only where the user points them, and those files are the user's);
//! - **bpffs mounts** under [`crate::kernel::pin::RUN_DIR`] (`/run/xdplab/<pid>-<n>`): a mount outlives
//!   its process, and so do the pins in it. This is the one leftover, and the directory name
//!   says whose it is.
//!
//! So a sweep removes the mount directories whose process is gone ([`crate::kernel::pin::stale`]),
//! and nothing else: never a mount of a live process, never anything outside
//! `/run/xdplab/<pid>-<n>`. A pid taken again by an unrelated process keeps its old
//! directory until that process ends too: the sweep errs on the side of leaving things. The privileged SIGKILL test (`tests/privileged_signals.rs`) checks
//! that nothing else is left.

use std::{fmt, path::PathBuf};

use crate::kernel::pin::{self, PinError};

/// One thing a killed run left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// The mount directory, `/run/xdplab/<pid>-<n>`.
    pub path: PathBuf,
    /// The process that made it, now gone.
    pub pid: i32,
    /// Whether a bpffs is mounted there (a run killed between `mkdir` and `mount` leaves only
    /// the directory).
    pub mounted: bool,
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.mounted {
            "bpffs mount"
        } else {
            "empty mount directory"
        };
        write!(
            f,
            "{what} {} of dead process {}",
            self.path.display(),
            self.pid
        )
    }
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Leftovers removed (with `dry_run`: found, left in place).
    pub removed: Vec<Leftover>,
    /// Leftovers that could not be removed, and why.
    pub failed: Vec<(Leftover, PinError)>,
}

/// The leftovers of dead xdplab processes on this machine.
pub fn find() -> Vec<Leftover> {
    let mut found: Vec<Leftover> = pin::stale()
        .into_iter()
        .filter_map(|path| {
            let pid = pin::stale_owner(&path)?;
            let mounted = nix::sys::statfs::statfs(&path)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC);
            Some(Leftover { path, pid, mounted })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Finds the leftovers of dead xdplab processes and removes them (with `dry_run`, only lists
/// them). Each is checked again just before removal, so a live process's mount is never
/// touched, also when its pid was free when the list was made.
pub fn sweep(dry_run: bool) -> Sweep {
    let mut sweep = Sweep::default();
    for leftover in find() {
        if dry_run {
            sweep.removed.push(leftover);
            continue;
        }
        match pin::remove_stale(&leftover.path) {
            Ok(()) => sweep.removed.push(leftover),
            // Its pid came back to life (reused) between the listing and now: not ours.
            Err(PinError::Live { .. }) => {}
            Err(e) => sweep.failed.push((leftover, e)),
        }
    }
    sweep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_or_foreign_directory_is_never_stale() {
        let own = PathBuf::from(pin::RUN_DIR).join(format!("{}-0", std::process::id()));
        assert_eq!(pin::stale_owner(&own), None, "this process is alive");
        assert!(matches!(
            pin::remove_stale(&own),
            Err(PinError::Live { .. })
        ));
        for foreign in [
            "/tmp/1-0",
            "/run/xdplab/x-0",
            "/run/xdplab/0-0",
            "/run/xdplab/12",
            "/run/xdplab/1-0/inner",
            "/sys/fs/bpf",
        ] {
            assert_eq!(pin::stale_owner(foreign.as_ref()), None, "{foreign}");
            assert!(
                matches!(
                    pin::remove_stale(foreign.as_ref()),
                    Err(PinError::Live { .. })
                ),
                "{foreign} must be refused"
            );
        }
    }

    #[test]
    fn a_dead_process_directory_is_stale() {
        // A child that has exited and been reaped: its pid names no process (until reused,
        // which the kernel does only after cycling through pid_max).
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        let path = PathBuf::from(pin::RUN_DIR).join(format!("{pid}-3"));
        assert_eq!(pin::stale_owner(&path), Some(pid as i32));
    }
}
