//! Throughput: how many frames per second a program absorbs, measured at the receiver.
//!
//! A measurement builds a fresh two-namespace lab, attaches the program (or none), and drives
//! one injector from the sending namespace for a bounded time and frame count. What the
//! receiver absorbed always comes from the kernel (the veth's native XDP counters, or its
//! receive counter) and from the program's own map, never from the sender; what the sender
//! offered is reported beside it, with the loss between them.

pub mod ab;
pub mod results;

use std::{
    fmt,
    str::FromStr,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    frame::{FrameSpec, FrameTemplate},
    inject::{
        Budget, InjectError, batched::BatchedInjector, live::LiveInjector, pnet::PnetInjector,
    },
    kernel::program::{ObjectSource, Program, ProgramError, XdpMode},
    observe::{DriverStats, LinkStats, ObserveError},
    topology::lab::{Lab, LabConfig, LabError},
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
    /// BPF run-time statistics could not be turned on.
    #[error(transparent)]
    Stats(#[from] crate::kernel::stats::StatsError),
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Flows the live injector's frames are spread over (addresses and ports vary per frame,
    /// see [`LiveInjector::send_flows_for`]); 1 sends one frame over and over. The other
    /// injectors take only 1.
    pub flows: u32,
}

/// What one configuration measured (also the form results files hold).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Flows the frames were spread over (1 in files written before flow mixes).
    #[serde(default = "one_flow")]
    pub flows: u32,
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
    pub oracle: String,
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
    /// The program's own nanoseconds per frame over the window, from the kernel's BPF
    /// run-time statistics (`run_time_ns / run_cnt`); `None` without a program or a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_per_frame: Option<f64>,
    /// Each sending CPU's share (the live injector), with what its receive queue absorbed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_thread: Vec<ThreadRate>,
}

/// One sending CPU of a measurement and the receive queue its frames land on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadRate {
    /// The CPU the sending thread(s) were pinned to.
    pub cpu: usize,
    /// The receiving veth's queue its frames land on (`cpu % queues`).
    pub queue: usize,
    /// Frames per second the kernel took from it.
    pub accepted_pps: f64,
    /// Frames per second its receive queue absorbed (`rx_queue_N_xdp_packets`): all of it is
    /// this CPU's when no other sending CPU maps to the same queue.
    pub queue_rx_pps: f64,
    /// CPU cores its thread(s) used.
    pub sender_cpu: f64,
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
        if self.flows > 1 {
            write!(f, " {} flows", self.flows)?;
        }
        Ok(())
    }
}

fn one_flow() -> u32 {
    1
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
        .unwrap_or_else(|| XdpMode::ALL.to_vec());
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
                        flows: 1,
                    });
                }
            }
        }
    }
    configs
}

/// Runs one configuration: a fresh lab, the program, the injector for `config.duration`.
pub fn measure(config: &BenchConfig) -> Result<Measurement, BenchError> {
    let invalid = |reason: String| BenchError::Config {
        config: config.to_string(),
        reason,
    };
    let cpus = check_config(config).map_err(invalid)?;
    let lab = Lab::new(&LabConfig::default())?;
    // One receive queue per sending CPU (set before any program is attached: the kernel
    // refuses fewer receive queues than the peer's transmit queues under native XDP).
    let queues = if config.injector == InjectorKind::Live {
        config.threads
    } else {
        1
    };
    if queues > 1 {
        let n = u32::try_from(queues).map_err(|e| invalid(e.to_string()))?;
        crate::kernel::veth::set_queues(lab.receiver(), n, n)
            .and_then(|_| crate::kernel::veth::set_queues(lab.sender(), n, n))
            .map_err(LabError::from)?;
    }
    let mut notes = Vec::new();
    let mut program = match config.program.source() {
        Some((source, entry)) => Some(Program::load(&source, &entry)?),
        None => None,
    };
    let attachment = match &mut program {
        Some(p) => Some(p.attach(lab.receiver(), config.mode)?),
        None => None,
    };
    let native = program.is_some() && config.mode == XdpMode::Native;
    if config.injector == InjectorKind::Live && !native {
        // Live frames reach a veth as xdp_frames, which it drops unless the receiving end
        // runs NAPI: a native program turns it on, otherwise GRO does.
        crate::kernel::veth::set_gro(lab.receiver(), true).map_err(|e| invalid(e.to_string()))?;
        notes.push("GRO turned on at the receiver so live frames arrive (veth needs NAPI)".into());
    }
    let frame = udp_frame(config.size).map_err(invalid)?;
    let driver = DriverStats::open(lab.receiver())?;
    let link = LinkStats::open(lab.receiver())?;
    let counter_name = match &config.program {
        BenchProgram::Drop => Some("drop_cnt"),
        BenchProgram::Pass => Some("pass_cnt"),
        BenchProgram::Object { .. } => ["drop_cnt", "pass_cnt"]
            .into_iter()
            .find(|name| program.as_ref().is_some_and(|p| counter(p, name).is_some())),
        BenchProgram::None => None,
    };
    let read_map = || -> Option<u64> {
        let name = counter_name?;
        counter(program.as_ref()?, name)
    };
    let oracle = || -> Result<u64, BenchError> {
        Ok(if native {
            driver.xdp()?.packets
        } else {
            link.read()?.rx_packets
        })
    };
    // A generous bound: no injector here comes near 200 Mpps.
    let budget = Budget {
        frames: (config.duration.as_secs_f64() * 200e6) as u64,
        duration: config.duration,
    };

    // The kernel counts the program's run time only while this is held: for this window.
    let run_stats = match &program {
        Some(_) => Some(crate::kernel::stats::RunTimeStats::enable()?),
        None => None,
    };
    let read_run = || program.as_ref().map(Program::run_time).transpose();
    let run_before = read_run()?;
    let queue_rx = || -> Result<Vec<u64>, BenchError> { Ok(queue_packets(&driver.read()?)) };
    let queues_before = queue_rx()?;
    let rx_before = oracle()?;
    let map_before = read_map();
    let cpu_before = cpu_ticks();
    let stats = match config.injector {
        InjectorKind::Pnet => PnetInjector::open(lab.sender())?.send_for(&frame, budget),
        InjectorKind::Batched => BatchedInjector::open(lab.sender())?.send_for(&frame, budget),
        InjectorKind::Live => LiveInjector::open(lab.sender(), config.threads)?.send_flows_for(
            &frame,
            config.flows,
            budget,
        ),
    };
    let cpu_after = cpu_ticks();
    let received = settled(oracle)? - rx_before;
    let queues_after = queue_rx()?;
    let map = match (read_map(), map_before) {
        (Some(after), Some(before)) => Some(after - before),
        _ => None,
    };
    let ns_per_frame = match (read_run()?, run_before) {
        (Some(after), Some(before)) => after.since(before).ns_per_run(),
        _ => None,
    };
    drop(run_stats);
    drop(attachment);
    drop(lab);

    let seconds = stats.elapsed.as_secs_f64().max(1e-9);
    let cpu = match (cpu_before, cpu_after) {
        (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
            (busy1 - busy0) as f64 / (total1 - total0) as f64 * cpus as f64
        }
        _ => f64::NAN,
    };
    let per_thread: Vec<ThreadRate> = stats
        .threads
        .iter()
        .map(|t| {
            let queue = t.cpu % queues;
            let queue_rx = queues_after
                .get(queue)
                .zip(queues_before.get(queue))
                .map_or(0, |(after, before)| after.saturating_sub(*before));
            ThreadRate {
                cpu: t.cpu,
                queue,
                accepted_pps: t.accepted as f64 / seconds,
                queue_rx_pps: queue_rx as f64 / seconds,
                sender_cpu: t.cpu_time.as_secs_f64() / seconds,
            }
        })
        .collect();
    let mut used: Vec<usize> = per_thread.iter().map(|t| t.queue).collect();
    used.sort_unstable();
    used.dedup();
    if used.len() < per_thread.len() {
        notes.push(format!(
            "sending CPUs {:?} share receive queues ({queues} queues): those queues' rates are \
             several threads'",
            per_thread.iter().map(|t| t.cpu).collect::<Vec<_>>()
        ));
    }
    if stats.errors > 0 {
        notes.push(format!(
            "{} send call(s) failed{}",
            stats.errors,
            stats
                .last_error
                .as_deref()
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        ));
    }
    Ok(Measurement {
        injector: config.injector,
        mode: if config.program == BenchProgram::None {
            "-".into()
        } else {
            config.mode.to_string()
        },
        program: config.program.to_string(),
        size: config.size,
        threads: config.threads,
        flows: config.flows,
        seconds,
        offered: stats.offered,
        accepted: stats.accepted,
        errors: stats.errors,
        received,
        oracle: if native {
            "veth rx_queue_*_xdp_packets"
        } else {
            "veth rx_packets"
        }
        .to_owned(),
        map,
        offered_pps: stats.offered as f64 / seconds,
        rx_pps: received as f64 / seconds,
        map_pps: map.map(|m| m as f64 / seconds),
        cpu,
        sender_cpu: stats.cpu.as_secs_f64() / seconds,
        loss: stats.accepted as i64 - received as i64,
        notes,
        ns_per_frame,
        per_thread,
    })
}

/// The sending CPUs of every multi-threaded measurement, for people: per CPU what the kernel
/// took from it and what its receive queue absorbed, then the total and, when the same
/// configuration was measured with one thread in the run, the scaling ratio
/// (`x2 / x1 rx pps`). Empty when no measurement has several threads.
pub fn threads_table(measurements: &[Measurement]) -> String {
    use std::fmt::Write as _;
    let pps = results::format_pps;
    let mut out = String::new();
    for m in measurements.iter().filter(|m| m.threads > 1) {
        let mut name = format!(
            "{} {} {} {}B x{}",
            m.injector, m.mode, m.program, m.size, m.threads
        );
        if m.flows > 1 {
            name.push_str(&format!(" {} flows", m.flows));
        }
        let _ = writeln!(out, "{name}:");
        for t in &m.per_thread {
            let _ = writeln!(
                out,
                "  cpu {} -> rx queue {}: {} sent, {} absorbed by the queue, {:.2} sender cores",
                t.cpu,
                t.queue,
                pps(t.accepted_pps),
                pps(t.queue_rx_pps),
                t.sender_cpu
            );
        }
        let one = measurements.iter().find(|o| {
            o.threads == 1
                && (o.injector, &o.mode, &o.program, o.size, o.flows)
                    == (m.injector, &m.mode, &m.program, m.size, m.flows)
        });
        let _ = write!(out, "  total: {} absorbed", pps(m.rx_pps));
        if let Some(one) = one.filter(|o| o.rx_pps > 0.0) {
            let _ = write!(
                out,
                ", {:.2}x the one-thread rate ({}) of this run",
                m.rx_pps / one.rx_pps,
                pps(one.rx_pps)
            );
        }
        out.push('\n');
    }
    out
}

/// Checks what a configuration asks for; returns the CPUs the machine has.
fn check_config(config: &BenchConfig) -> Result<usize, String> {
    if !(60..=1514).contains(&config.size) {
        return Err(format!("frame size {} is outside 60..=1514", config.size));
    }
    if !(Duration::from_millis(10)..=Duration::from_secs(600)).contains(&config.duration) {
        return Err(format!(
            "duration {:?} is outside 10ms..=10min",
            config.duration
        ));
    }
    if config.flows == 0 || config.flows > crate::inject::live::MAX_FLOWS {
        return Err(format!(
            "{} flows asked for: give 1..={}",
            config.flows,
            crate::inject::live::MAX_FLOWS
        ));
    }
    if config.flows > 1 && config.injector != InjectorKind::Live {
        return Err(format!(
            "{} flows asked for: only the live injector spreads frames over flows",
            config.flows
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if config.threads == 0 || config.threads > cpus {
        return Err(format!(
            "{} sending threads on a machine with {cpus} CPUs",
            config.threads
        ));
    }
    Ok(cpus)
}

impl BenchProgram {
    /// The object and entry it loads; `None` for no program.
    fn source(&self) -> Option<(ObjectSource, String)> {
        match self {
            Self::None => None,
            Self::Drop => Some((
                ObjectSource::Bundled("xdp_drop".into()),
                "xdp_drop_all".to_owned(),
            )),
            Self::Pass => Some((
                ObjectSource::Bundled("xdp_pass".into()),
                "xdp_pass".to_owned(),
            )),
            Self::Object { source, entry } => Some((source.clone(), entry.clone())),
        }
    }
}

/// The frame every configuration sends: UDP to port 9, `size` bytes long.
fn udp_frame(size: usize) -> Result<Vec<u8>, String> {
    let spec: FrameSpec = FrameSpec {
        ipv4: Some(Default::default()),
        udp: Some(crate::frame::UdpSpec {
            dst_port: 9,
            ..Default::default()
        }),
        size: Some(size),
        ..FrameSpec::default()
    };
    Ok(
        FrameTemplate::build(&spec, &crate::topology::lab::endpoints(), 1514)
            .map_err(|e| e.to_string())?
            .bytes()
            .to_vec(),
    )
}

/// The oracle's count once it stops moving: frames still in flight when the sender stopped
/// are the receiver's too. Bounded to 2 s.
fn settled(oracle: impl Fn() -> Result<u64, BenchError>) -> Result<u64, BenchError> {
    let mut received = oracle()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = oracle()?;
        if now == received || Instant::now() >= deadline {
            return Ok(now);
        }
        received = now;
    }
}

/// `rx_queue_N_xdp_packets` of every receive queue, by queue.
fn queue_packets(counters: &crate::observe::DriverCounters) -> Vec<u64> {
    let mut queues = Vec::new();
    for (name, &value) in counters {
        let Some((queue, "xdp_packets")) = name
            .strip_prefix("rx_queue_")
            .and_then(|rest| rest.split_once('_'))
        else {
            continue;
        };
        let Ok(queue) = queue.parse::<usize>() else {
            continue;
        };
        if queues.len() <= queue {
            queues.resize(queue + 1, 0);
        }
        queues[queue] = value;
    }
    queues
}

/// A one-slot u64 counter at key 0, if the program has one by that name.
fn counter(program: &Program, name: &str) -> Option<u64> {
    program
        .map(name)
        .ok()?
        .lookup(&0u32.to_le_bytes())
        .ok()??
        .sum_u64()
}

/// Busy and total jiffies of all CPUs (`/proc/stat`), for the machine's CPU use.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle + iowait
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}
