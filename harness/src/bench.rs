//! Throughput: how many frames per second a program absorbs, measured at the receiver.
//!
//! A measurement builds a fresh two-namespace lab, attaches the program (or none), and drives
//! one injector from the sending namespace for a bounded time and frame count. What the
//! receiver absorbed always comes from the kernel (the veth's native XDP counters, or its
//! receive counter) and from the program's own map, never from the sender; what the sender
//! offered is reported beside it, with the loss between them.

use std::{fmt, str::FromStr, time::Duration};

use serde::Serialize;
use thiserror::Error;

use crate::{
    inject::InjectError,
    lab::LabError,
    observe::ObserveError,
    program::{ObjectSource, ProgramError, XdpMode},
};

/// An error from a measurement.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The lab could not be built.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The program could not be loaded or attached.
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// An observer failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The injector could not be opened.
    #[error(transparent)]
    Inject(#[from] InjectError),
    /// The configuration cannot be measured.
    #[error("failed to measure {config}: {reason}")]
    Config {
        /// The configuration.
        config: String,
        /// Why.
        reason: String,
    },
}

/// How frames are put on the sending veth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectorKind {
    /// pnet's datalink channel: one `sendto` per frame.
    Pnet,
    /// `AF_PACKET` with batching and qdisc bypass.
    Batched,
    /// `BPF_PROG_TEST_RUN` live frames redirected out of the sending veth through a devmap.
    Live,
}

/// What runs on the receiving veth.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BenchProgram {
    /// Nothing: frames go to the stack.
    None,
    /// The seed dropper (`xdp_drop_all`).
    Drop,
    /// The pass baseline (`xdp_pass`): frames go on to the stack.
    Pass,
    /// Any program of any object.
    Object {
        /// The object.
        source: ObjectSource,
        /// The entry.
        entry: String,
    },
}

/// One configuration of the throughput matrix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BenchConfig {
    /// The injector.
    pub injector: InjectorKind,
    /// The attach mode (ignored for [`BenchProgram::None`]).
    pub mode: XdpMode,
    /// The program on the receiving veth.
    pub program: BenchProgram,
    /// Total frame length in bytes, without FCS (60..=1514).
    pub size: usize,
    /// How long to send.
    pub duration: Duration,
    /// Sending threads (the live injector runs one per CPU given here; others use one).
    pub threads: usize,
}

/// What one configuration measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// `pnet`, `batched` or `live`.
    pub injector: InjectorKind,
    /// `native` or `generic` (`-` without a program).
    pub mode: String,
    /// `drop`, `pass`, `none`, or `object:entry`.
    pub program: String,
    /// Frame length in bytes.
    pub size: usize,
    /// Sending threads.
    pub threads: usize,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Frames the injector tried to send.
    pub offered: u64,
    /// Frames the kernel took from the injector.
    pub accepted: u64,
    /// Send calls that failed (ENOBUFS and friends).
    pub errors: u64,
    /// Frames the receiver absorbed, from the kernel oracle.
    pub received: u64,
    /// Which kernel counter `received` is.
    pub oracle: &'static str,
    /// The program's own count (drop_cnt / pass_cnt), if it has one.
    pub map: Option<u64>,
    /// `offered / seconds`.
    pub offered_pps: f64,
    /// `received / seconds`.
    pub rx_pps: f64,
    /// `map / seconds`.
    pub map_pps: Option<f64>,
    /// CPU cores busy during the window, whole machine (0..=number of CPUs).
    pub cpu: f64,
    /// CPU cores used by the sending threads.
    pub sender_cpu: f64,
    /// Accepted but not received (negative: received more than accepted, e.g. background).
    pub loss: i64,
    /// Anything worth knowing about how the numbers were obtained.
    pub notes: Vec<String>,
}

impl fmt::Display for InjectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pnet => "pnet",
            Self::Batched => "batched",
            Self::Live => "live",
        })
    }
}

impl FromStr for InjectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pnet" => Ok(Self::Pnet),
            "batched" => Ok(Self::Batched),
            "live" => Ok(Self::Live),
            other => Err(format!(
                "unknown injector {other:?} (expected pnet, batched or live)"
            )),
        }
    }
}

impl fmt::Display for BenchProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Drop => f.write_str("drop"),
            Self::Pass => f.write_str("pass"),
            Self::Object { source, entry } => write!(f, "{source}:{entry}"),
        }
    }
}

impl FromStr for BenchProgram {
    type Err = String;
    /// `drop`, `pass` or `none` (objects come from scenarios, not from a string).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "drop" => Ok(Self::Drop),
            "pass" => Ok(Self::Pass),
            other => Err(format!(
                "unknown program {other:?} (expected drop, pass or none)"
            )),
        }
    }
}

impl fmt::Display for BenchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.program == BenchProgram::None {
            "-".to_owned()
        } else {
            self.mode.to_string()
        };
        write!(
            f,
            "{} {} {} {}B",
            self.injector, mode, self.program, self.size
        )?;
        if self.threads > 1 {
            write!(f, " x{}", self.threads)?;
        }
        Ok(())
    }
}

/// Which configurations a matrix run covers; `None` means all.
#[derive(Clone, Debug, Default)]
pub struct MatrixFilter {
    /// Programs (default: drop, pass, none).
    pub programs: Option<Vec<BenchProgram>>,
    /// Modes (default: native, generic).
    pub modes: Option<Vec<XdpMode>>,
    /// Injectors (default: pnet, batched, live).
    pub injectors: Option<Vec<InjectorKind>>,
    /// Sizes (default: 64, 512, 1500).
    pub sizes: Option<Vec<usize>>,
}

/// The configurations of the matrix that `filter` keeps: every injector, program and size,
/// native and generic for programs (a configuration without a program has no mode).
pub fn matrix(filter: &MatrixFilter, duration: Duration) -> Vec<BenchConfig> {
    let programs = filter
        .programs
        .clone()
        .unwrap_or_else(|| vec![BenchProgram::Drop, BenchProgram::Pass, BenchProgram::None]);
    let modes = filter
        .modes
        .clone()
        .unwrap_or_else(|| vec![XdpMode::Native, XdpMode::Generic]);
    let injectors = filter.injectors.clone().unwrap_or_else(|| {
        vec![
            InjectorKind::Pnet,
            InjectorKind::Batched,
            InjectorKind::Live,
        ]
    });
    let sizes = filter.sizes.clone().unwrap_or_else(|| vec![64, 512, 1500]);
    let mut configs = Vec::new();
    for &injector in &injectors {
        for program in &programs {
            let program_modes: &[XdpMode] = if *program == BenchProgram::None {
                &modes[..modes.len().min(1)]
            } else {
                &modes
            };
            for &mode in program_modes {
                for &size in &sizes {
                    configs.push(BenchConfig {
                        injector,
                        mode,
                        program: program.clone(),
                        size,
                        duration,
                        threads: 1,
                    });
                }
            }
        }
    }
    configs
}
