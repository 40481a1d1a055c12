//! BPF run-time statistics: the kernel's own count of how often and how long each program ran.
//!
//! The kernel only counts while someone holds a `BPF_ENABLE_STATS` file descriptor (type
//! `BPF_STATS_RUN_TIME`) or has written 1 to `/proc/sys/kernel/bpf_stats_enabled`: each open
//! descriptor, and the sysctl, is one reference on a static key. The sysctl reads back only
//! what was written to it, never the descriptors' references, so xdplab never writes it (a
//! crash would leave it on) and it keeps its value across any run. [`RunTimeStats`] is that
//! descriptor in an owner: dropping it (on success, on an error's early return, while a panic
//! unwinds, or when the process ends on a signal and the kernel closes its files) turns the
//! counting off again unless someone else still holds a reference, so a measurement never
//! leaves it on. Counting costs two clock reads per program run, for every program on the
//! machine, which is why it is off by default and on only for a measurement.
//!
//! [`RunTime`] is what `BPF_OBJ_GET_INFO_BY_FD` reports for one program (`run_time_ns`,
//! `run_cnt`, what `bpftool prog show` prints); read it before and after a window and
//! subtract ([`RunTime::since`]) for the program's own nanoseconds per run.

use std::{io, os::fd::OwnedFd, path::Path};

use thiserror::Error;

/// The sysctl that says whether run-time statistics are being counted.
pub const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// An error from turning run-time statistics on.
#[derive(Debug, Error)]
#[error("failed to enable bpf run-time statistics (BPF_ENABLE_STATS): {source}")]
pub struct StatsError {
    /// The system call's error.
    #[source]
    pub source: io::Error,
}

/// BPF run-time statistics, counted while this value lives (`BPF_ENABLE_STATS` with
/// `BPF_STATS_RUN_TIME`; the descriptor is closed on drop).
#[doc(alias = "BPF_ENABLE_STATS")]
#[doc(alias = "BPF_STATS_RUN_TIME")]
#[derive(Debug)]
pub struct RunTimeStats {
    _fd: OwnedFd,
}

impl RunTimeStats {
    /// Turns the counting on until the value is dropped (Linux 5.8+, CAP_SYS_ADMIN).
    pub fn enable() -> Result<Self, StatsError> {
        aya::sys::enable_stats(aya::sys::Stats::RunTime)
            .map(|fd| Self { _fd: fd })
            .map_err(|e| StatsError { source: e.io_error })
    }
}

/// What `/proc/sys/kernel/bpf_stats_enabled` reads (whether someone turned the counting on
/// through the sysctl; descriptors of [`RunTimeStats`] do not show there), or `None` when the
/// file cannot be read. Whether the kernel counts at all shows in a program's own
/// [`RunTime`] moving when it runs.
pub fn enabled() -> Option<bool> {
    read_flag(Path::new(STATS_SYSCTL))
}

fn read_flag(path: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(path).ok()?;
    match text.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

/// A program's run-time statistics (`run_time_ns`, `run_cnt` of `struct bpf_prog_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunTime {
    /// Nanoseconds the program ran, summed over its runs while statistics were counted.
    pub run_time_ns: u64,
    /// Runs counted.
    pub run_cnt: u64,
}

impl RunTime {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: RunTime) -> RunTime {
        RunTime {
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(earlier.run_cnt),
        }
    }

    /// Nanoseconds per run; `None` when nothing ran.
    pub fn ns_per_run(self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_ns_per_run() {
        let a = RunTime {
            run_time_ns: 1_000,
            run_cnt: 10,
        };
        let b = RunTime {
            run_time_ns: 4_000,
            run_cnt: 40,
        };
        assert_eq!(b.since(a).ns_per_run(), Some(100.0));
        assert_eq!(a.since(a).ns_per_run(), None);
        assert_eq!(a.since(b), RunTime::default());
    }

    #[test]
    fn flag_reads_zero_one_or_nothing() {
        let dir = std::env::temp_dir().join(format!("xdplab-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("flag");
        for (text, want) in [("0\n", Some(false)), ("1\n", Some(true)), ("x", None)] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(read_flag(&file), want);
        }
        assert_eq!(read_flag(&dir.join("missing")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
