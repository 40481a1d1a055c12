//! A private BPF file system (bpffs) per run, where programs, maps and links are pinned.
//!
//! Pins outlive the file descriptors that made them, which is the point of pinning (a
//! restarted control plane finds its program, maps and link again) and the danger of it (a
//! pin nobody removes keeps a program attached forever). xdplab never pins in `/sys/fs/bpf`,
//! where other software keeps its pins: each run mounts a bpffs of its own under
//! `/run/xdplab/<pid>-<n>` (`mount -t bpf bpf DIR`), pins only there, and on drop removes
//! every pin in it, unmounts it and removes the directory. Unmounting alone would release the
//! pins too (they live in the mount's superblock), so even a pin that cannot be unlinked is
//! gone once the last user of the mount goes.
//!
//! The directory name carries the process id, so a sweeper can tell a stale mount (its
//! process is gone) from a live one: see [`stale`].

use std::{
    fs::DirBuilder,
    io,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use nix::{
    mount::{MntFlags, MsFlags},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};
use thiserror::Error;

/// Where the run's bpffs mounts are made.
pub const RUN_DIR: &str = "/run/xdplab";

/// How many directory names one process tries before giving up (a stale directory left by
/// an earlier process with the same pid is skipped, never reused or removed).
const NAME_ATTEMPTS: u32 = 64;

/// Entries the kernel itself puts in every new bpffs (`bpf_preload`, `CONFIG_BPF_PRELOAD`):
/// iterators that print the loaded programs and maps. They cannot be unlinked and are not
/// ours to remove; unmounting takes them away.
pub const PRELOADED: &[&str] = &["maps.debug", "progs.debug"];

/// Entries removed from a bpffs on teardown; a bound, so a file system that keeps growing
/// cannot keep the teardown going.
const MAX_PINS: usize = 4096;

/// An error from the run's bpffs.
#[derive(Debug, Error)]
pub enum PinError {
    /// The directory for the mount could not be created.
    #[error("failed to create bpffs directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `mount(2)` of the bpffs failed (CAP_SYS_ADMIN is needed).
    #[error("failed to mount bpffs at {}: {source}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// Listing the pins failed.
    #[error("failed to list pins in bpffs {}: {source}", path.display())]
    List {
        /// The mount point.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A pin could not be removed.
    #[error("failed to unpin {}: {source}", path.display())]
    Unpin {
        /// The pin.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `umount2(2)` failed.
    #[error("failed to unmount bpffs {}: {source}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The mount point could not be removed.
    #[error("failed to remove bpffs directory {}: {source}", path.display())]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// [`remove_stale`] was asked to remove a directory whose process is alive, or one that is
    /// not an xdplab mount directory.
    #[error("failed to remove bpffs {}: not a mount of a dead xdplab process", path.display())]
    Live {
        /// The directory.
        path: PathBuf,
    },
    /// A pin name is empty, has a `/`, or is `.` or `..`.
    #[error("failed to use pin name {name:?}: it must be a plain file name")]
    Name {
        /// The name.
        name: String,
    },
}

impl PinError {
    /// Whether the failure comes from missing privileges.
    pub fn is_permission(&self) -> bool {
        match self {
            Self::Mount { source, .. } | Self::Unmount { source, .. } => {
                matches!(source, nix::Error::EPERM | nix::Error::EACCES)
            }
            Self::CreateDir { source, .. } => source.kind() == io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }
}

/// A bpffs mounted by this run at `/run/xdplab/<pid>-<n>` (mode 0700), unmounted on drop.
///
/// Equivalent to `mkdir -m 0700 DIR && mount -t bpf -o mode=0700,nosuid,nodev,noexec bpf DIR`;
/// dropping it is `rm DIR/*; umount -l DIR; rmdir DIR`. Errors on drop are printed, never
/// raised (also while a panic unwinds).
#[derive(Debug)]
#[doc(alias = "BPF_FS_MAGIC")]
pub struct Bpffs {
    path: PathBuf,
    mounted: bool,
}

impl Bpffs {
    /// Creates the directory and mounts a fresh bpffs on it.
    pub fn mount() -> Result<Self, PinError> {
        Self::mount_in(Path::new(RUN_DIR))
    }

    fn mount_in(parent: &Path) -> Result<Self, PinError> {
        static MOUNTS: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| PinError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
        let mut attempt = 0;
        let path = loop {
            let n = MOUNTS.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("{pid}-{n}"));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => break path,
                // Left by an earlier process that had our pid: not ours, leave it alone.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < NAME_ATTEMPTS => {
                    attempt += 1;
                }
                Err(source) => return Err(PinError::CreateDir { path, source }),
            }
        };
        // From here on the directory is ours; Drop removes it (and unmounts only if mounted).
        let mut bpffs = Self {
            path,
            mounted: false,
        };
        nix::mount::mount(
            Some("bpf"),
            &bpffs.path,
            Some("bpf"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=0700"),
        )
        .map_err(|source| PinError::Mount {
            path: bpffs.path.clone(),
            source,
        })?;
        bpffs.mounted = true;
        Ok(bpffs)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a pin called `name` goes (`<mount>/<name>`).
    ///
    /// # Panics
    ///
    /// If `name` is not a plain file name; use [`Self::checked_pin_path`] for names from input.
    pub fn pin_path(&self, name: &str) -> PathBuf {
        self.checked_pin_path(name)
            .expect("pin names chosen by xdplab are plain file names")
    }

    /// Where a pin called `name` goes, refusing names that would leave the mount.
    pub fn checked_pin_path(&self, name: &str) -> Result<PathBuf, PinError> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(PinError::Name {
                name: name.to_owned(),
            });
        }
        Ok(self.path.join(name))
    }

    /// The pins in the mount, by name, sorted (`ls DIR`, without [`PRELOADED`]).
    pub fn list(&self) -> Result<Vec<String>, PinError> {
        let list_error = |source| PinError::List {
            path: self.path.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !PRELOADED.contains(&name.as_str()) {
                names.push(name);
            }
            if names.len() >= MAX_PINS {
                break;
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes every pin, unmounts and removes the directory, reporting the first error.
    /// Dropping does the same and prints errors instead.
    pub fn unmount(mut self) -> Result<(), PinError> {
        let mut errors = self.teardown();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Whether the directory still holds our bpffs (not unmounted behind our back).
    fn is_bpffs(&self) -> bool {
        statfs(&self.path).is_ok_and(|s| s.filesystem_type() == BPF_FS_MAGIC)
    }

    fn teardown(&mut self) -> Vec<PinError> {
        let mut errors = Vec::new();
        if self.mounted {
            // Only ever unlink inside our own bpffs: if something unmounted it, the directory
            // is a plain one and holds nothing of ours.
            if self.is_bpffs() {
                let mut budget = MAX_PINS;
                remove_tree(&self.path, true, &mut budget, &mut errors);
            }
            // Lazy: a descriptor still open on the mount (a bpftool someone started) cannot
            // keep it mounted; the kernel frees it, and any pin left in it, when it is unused.
            match nix::mount::umount2(&self.path, MntFlags::MNT_DETACH) {
                Ok(()) => self.mounted = false,
                Err(source) => errors.push(PinError::Unmount {
                    path: self.path.clone(),
                    source,
                }),
            }
        }
        if !self.mounted
            && let Err(source) = std::fs::remove_dir(&self.path)
            && source.kind() != io::ErrorKind::NotFound
        {
            errors.push(PinError::RemoveDir {
                path: self.path.clone(),
                source,
            });
        }
        errors
    }
}

/// Removes what `dir` holds, depth first (pins in sub-directories first, then the
/// directories), at most `budget` entries; the kernel's [`PRELOADED`] entries at the top
/// stay for the unmount.
fn remove_tree(dir: &Path, top: bool, budget: &mut usize, errors: &mut Vec<PinError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(PinError::List {
                path: dir.to_owned(),
                source,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        if top && PRELOADED.iter().any(|p| entry.file_name() == *p) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&path, false, budget, errors);
            std::fs::remove_dir(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(source) = removed {
            errors.push(PinError::Unpin { path, source });
        }
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        for error in self.teardown() {
            eprintln!("xdplab: {error}");
        }
    }
}

/// Mount directories under [`RUN_DIR`] whose process is gone (`<pid>-<n>` with no process
/// `pid`), for a sweeper to unmount and remove. Nothing is changed here.
pub fn stale() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(RUN_DIR) else {
        return Vec::new();
    };
    entries
        .flatten()
        .take(MAX_PINS)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (pid, n) = name.split_once('-')?;
            let pid: i32 = pid.parse().ok()?;
            n.parse::<u32>().ok()?;
            let alive = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
                Ok(()) | Err(nix::Error::EPERM) => true,
                Err(_) => false,
            };
            (!alive).then(|| entry.path())
        })
        .collect()
}

/// Removes one stale mount directory that [`stale`] listed: unmounts it (lazily, as many
/// times as a bpffs is mounted there, bounded) and removes the directory. Equivalent to
/// `umount -l DIR; rmdir DIR`.
///
/// Refused (with [`PinError::Live`]) unless `path` is `/run/xdplab/<pid>-<n>` and process
/// `pid` is gone: a live run's mount is never touched. Pins are not unlinked one by one:
/// unmounting frees the file system and every pin in it once nothing uses it.
pub fn remove_stale(path: &Path) -> Result<(), PinError> {
    if stale_owner(path).is_none() {
        return Err(PinError::Live {
            path: path.to_owned(),
        });
    }
    // A run killed between mkdir and mount left a plain directory; one mounted twice (never
    // by xdplab, but cheap to handle) needs two unmounts.
    for _ in 0..8 {
        if !statfs(path).is_ok_and(|s| s.filesystem_type() == BPF_FS_MAGIC) {
            break;
        }
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            // Another sweep (a run starting at the same time) unmounted it first.
            Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
            Err(source) => {
                return Err(PinError::Unmount {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    match std::fs::remove_dir(path) {
        Err(source) if source.kind() != io::ErrorKind::NotFound => Err(PinError::RemoveDir {
            path: path.to_owned(),
            source,
        }),
        _ => Ok(()),
    }
}

/// The dead owner's pid of `path`, if it is a mount directory under [`RUN_DIR`] whose
/// process is gone.
pub fn stale_owner(path: &Path) -> Option<i32> {
    if path.parent() != Some(Path::new(RUN_DIR)) {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let (pid, n) = name.split_once('-')?;
    let pid: i32 = pid.parse().ok().filter(|pid| *pid > 0)?;
    n.parse::<u32>().ok()?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::Error::EPERM) => None,
        Err(_) => Some(pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_names_stay_inside_the_mount() {
        let bpffs = Bpffs {
            path: PathBuf::from("/nonexistent/xdplab-test"),
            mounted: false,
        };
        assert_eq!(
            bpffs.checked_pin_path("prog-v1").expect("plain name"),
            Path::new("/nonexistent/xdplab-test/prog-v1")
        );
        for bad in ["", ".", "..", "a/b", "../x", "a\0b"] {
            assert!(
                matches!(bpffs.checked_pin_path(bad), Err(PinError::Name { .. })),
                "{bad:?} must be refused"
            );
        }
        // Nothing was mounted or created: dropping must not touch anything.
        drop(bpffs);
    }

    #[test]
    fn mount_lists_and_cleans_up() {
        if crate::host::privileges::check().is_err() {
            crate::host::privileges::skip_or_fail("mount_lists_and_cleans_up: needs CAP_SYS_ADMIN");
            return;
        }
        let bpffs = Bpffs::mount().expect("mount bpffs");
        let path = bpffs.path().to_owned();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&format!("{}-", std::process::id())),
            "{name} carries the pid"
        );
        assert!(bpffs.is_bpffs(), "{} is a bpffs", path.display());
        assert!(bpffs.list().expect("list").is_empty());
        assert!(!stale().contains(&path), "a live mount is not stale");
        bpffs.unmount().expect("unmount");
        assert!(!path.exists(), "{} removed", path.display());
    }
}
