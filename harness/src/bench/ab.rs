//! A/B: the user's own objects (versions of one program) measured in one run, in interleaved
//! windows, each one's own cost per frame counted by the kernel, and a verdict against a
//! baseline.
//!
//! [`measure_ab`] loads every object once, then measures them in turns: a round is one window
//! per object, in the order A B C, the next round C B A, and so on, so that whatever the
//! machine does meanwhile (another process, a frequency change, a slow drift) falls on each
//! alike. On a lab path each window attaches the object's program to the receiving veth,
//! sends the traffic for the window's length and detaches it; on the test-run path it runs the
//! traffic through `BPF_PROG_TEST_RUN` with a repeat count sized to fill the window. BPF
//! run-time statistics ([`RunTimeStats`]) are on for the whole measurement and off again when
//! it returns, however it returns: each window reads the program's `run_time_ns` and `run_cnt`
//! before and after, for its nanoseconds per frame.
//!
//! The verdict ([`Verdict`]) compares each object with the baseline round by round: the ratio
//! of their costs in the same round, so the machine's state cancels out of each ratio, and the
//! spread of those ratios says how much noise the run had. See [`AbRatio`] for the rule.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::{BenchError, InjectorKind, Measurement, counter, settled};
use crate::{
    inject::{
        Budget, InjectStats, batched::BatchedInjector, live::LiveInjector, pnet::PnetInjector,
    },
    kernel::{
        elf,
        program::{ObjectSource, Program, XdpMode},
        stats::{RunTime, RunTimeStats},
    },
    observe::{DriverStats, LinkStats},
    topology::lab::{Lab, LabConfig},
};

/// At most this many distinct frames of a traffic are sent on a lab path (each gets an equal
/// share of every window; a send call per frame has a fixed cost).
pub const MAX_LAB_FRAMES: usize = 16;

/// One object of an A/B run: a file, the XDP program of it that runs, and its name in reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchObject {
    /// The object.
    pub source: ObjectSource,
    /// The XDP program of it that is measured.
    pub entry: String,
    /// A short hash of the object's bytes (16 hex digits of FNV-1a 64), so two builds of one
    /// file name tell apart.
    pub hash: String,
    /// `file name@first 8 hex digits of the hash`, with `#2`, `#3` for a repeat.
    pub name: String,
}

impl BenchObject {
    /// The object at `path` with program `entry`, or its only XDP program when `entry` is
    /// `None` (an object with several needs one).
    pub fn from_file(path: &Path, entry: Option<&str>) -> Result<Self, BenchError> {
        Self::new(ObjectSource::File(path.to_owned()), entry)
    }

    /// Like [`Self::from_file`], for any [`ObjectSource`].
    pub fn new(source: ObjectSource, entry: Option<&str>) -> Result<Self, BenchError> {
        let invalid = |reason: String| BenchError::Config {
            config: source.name(),
            reason,
        };
        let bytes = source.bytes()?;
        let entry = match entry {
            Some(entry) => entry.to_owned(),
            None => {
                let programs = elf::programs(&bytes).map_err(|e| invalid(e.to_string()))?;
                let xdp: Vec<_> = programs
                    .iter()
                    .filter(|p| {
                        p.section == "xdp"
                            || p.section.starts_with("xdp/")
                            || p.section.starts_with("xdp.")
                    })
                    .collect();
                match xdp.as_slice() {
                    [one] => one.name.clone(),
                    [] => return Err(invalid("it has no XDP program".to_owned())),
                    several => {
                        return Err(invalid(format!(
                            "it has several XDP programs ({}): name one with --entry",
                            several
                                .iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
        };
        let hash = content_hash(&bytes);
        let file = match &source {
            ObjectSource::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |f| f.to_string_lossy().into(),
            ),
            ObjectSource::Bundled(name) => format!("{name}.bpf.o"),
        };
        Ok(Self {
            name: format!("{file}@{}", &hash[..8]),
            source,
            entry,
            hash,
        })
    }
}

/// FNV-1a 64 of `bytes`, as 16 hex digits: short, stable, not cryptographic (it names
/// versions; it does not defend against anyone).
pub fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Gives objects that share a name (one file given twice, or two identical copies with the
/// same file name) `#2`, `#3`... so every report line names one object.
pub fn unique_names(objects: &mut [BenchObject]) {
    for i in 1..objects.len() {
        let base = objects[i].name.clone();
        let mut n = 1;
        while objects[..i].iter().any(|o| o.name == objects[i].name) {
            n += 1;
            objects[i].name = format!("{base}#{n}");
        }
    }
}

/// Where the objects run during a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "path")]
pub enum AbPath {
    /// Attached to the receiving veth of a lab, with an injector sending from the other end.
    Lab {
        /// How frames are sent.
        injector: InjectorKind,
        /// The attach mode.
        mode: XdpMode,
    },
    /// `BPF_PROG_TEST_RUN` with a repeat count, no lab and no interface.
    TestRun,
}

impl fmt::Display for AbPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lab { injector, mode } => write!(f, "{injector} {mode}"),
            Self::TestRun => f.write_str("test-run"),
        }
    }
}

/// The frames a run sends, and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// The frames, in order (a lab path sends each for an equal share of the window; the
    /// test-run path runs each an equal number of times).
    pub frames: Vec<Vec<u8>>,
    /// Where they came from: `64-byte UDP frame`, `capture.pcap (12 frames)`.
    pub origin: String,
}

impl Traffic {
    /// The bench's default frame: UDP to port 9, `size` bytes long.
    pub fn udp(size: usize) -> Result<Self, BenchError> {
        let frame = super::udp_frame(size).map_err(|reason| BenchError::Config {
            config: format!("{size}-byte frame"),
            reason,
        })?;
        Ok(Self {
            frames: vec![frame],
            origin: format!("{size}-byte UDP frame"),
        })
    }

    /// The frames of a capture file (pcap or pcapng).
    pub fn pcap(path: &Path) -> Result<Self, BenchError> {
        let invalid = |reason: String| BenchError::Config {
            config: path.display().to_string(),
            reason,
        };
        let frames = crate::frame::pcap::read(path).map_err(|e| invalid(e.to_string()))?;
        if frames.is_empty() {
            return Err(invalid("the capture holds no frames".to_owned()));
        }
        if let Some(bad) = frames.iter().find(|f| !(14..=1514).contains(&f.len())) {
            return Err(invalid(format!(
                "a frame of {} bytes is outside 14..=1514",
                bad.len()
            )));
        }
        Ok(Self {
            origin: format!("{} ({} frames)", path.display(), frames.len()),
            frames,
        })
    }
}

/// An A/B run: which objects, which is the baseline, where they run, what they are sent, and
/// for how long.
#[derive(Clone, Debug)]
pub struct AbConfig {
    /// The objects, at least one.
    pub objects: Vec<BenchObject>,
    /// The index in `objects` of the one the others are compared with.
    pub baseline: usize,
    /// Where they run.
    pub path: AbPath,
    /// What they are sent.
    pub traffic: Traffic,
    /// How long each window lasts.
    pub window: Duration,
    /// Rounds: each object gets this many windows (at least 1; 3 or more for a spread).
    pub rounds: usize,
    /// Sending threads of the live injector.
    pub threads: usize,
    /// The slowdown beyond which an object fails (0.05: 5%), if any.
    pub max_slowdown: Option<f64>,
}

/// One window of one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbWindow {
    /// The round, from 0.
    pub round: usize,
    /// The object's name.
    pub object: String,
    /// How long the window lasted.
    pub seconds: f64,
    /// Frames sent (lab) or runs asked (test-run).
    pub offered: u64,
    /// Frames the receiver's kernel counted (lab) or runs made (test-run).
    pub received: u64,
    /// `received / seconds`.
    pub rx_pps: f64,
    /// The program's own run-time statistics over the window.
    pub run: RunTime,
    /// `run.run_time_ns / run.run_cnt`: the program's nanoseconds per frame.
    pub ns_per_frame: Option<f64>,
    /// Test-run only: `BPF_PROG_TEST_RUN`'s own mean duration per run.
    pub test_run_ns: Option<f64>,
    /// The program's `drop_cnt` or `pass_cnt` growth, if it has one.
    pub map: Option<u64>,
}

/// The smallest, middle and largest of a set of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The smallest.
    pub min: f64,
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none (NaNs are left out).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    /// Half the distance between the largest and the smallest.
    pub fn half_range(&self) -> f64 {
        (self.max - self.min) / 2.0
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} ({:.3}..{:.3})", self.median, self.min, self.max)
    }
}

/// What the verdict was decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CostMetric {
    /// The kernel's nanoseconds per frame (`run_time_ns / run_cnt`).
    NsPerFrame,
    /// Received packets per second, when a window has no run count.
    Pps,
}

/// The verdict on one object against the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Not slower than the threshold allows.
    Ok,
    /// Slower than the threshold, but no more than the run's noise.
    WithinNoise,
    /// Slower beyond both the threshold and the noise: `--max-slowdown` fails.
    Slower,
}

/// One object against the baseline, from the rounds both were measured in.
///
/// The rule: for every round, the *cost ratio* is the object's nanoseconds per frame divided
/// by the baseline's in that round (when some window has no run count, the baseline's rx pps
/// divided by the object's instead; either way above 1 means slower). `slowdown` is the median
/// cost ratio minus 1, `noise` half the range of the cost ratios ((max - min) / 2). With a
/// threshold `t`, the object is [`Verdict::Slower`] when `slowdown > t` and `slowdown >
/// noise`; [`Verdict::WithinNoise`] when only `slowdown > t` holds; [`Verdict::Ok`] otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbRatio {
    /// The object.
    pub object: String,
    /// The baseline.
    pub baseline: String,
    /// Rounds both were measured in.
    pub rounds: usize,
    /// Object rx pps / baseline rx pps, per round.
    pub pps: Option<Spread>,
    /// Object ns per frame / baseline ns per frame, per round.
    pub ns: Option<Spread>,
    /// What the verdict was decided on.
    pub metric: CostMetric,
    /// The median cost ratio minus 1 (0.25: 25% slower; negative: faster).
    pub slowdown: f64,
    /// Half the range of the cost ratios.
    pub noise: f64,
    /// With a threshold: the verdict.
    pub verdict: Option<Verdict>,
}

/// One object's medians over its windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbObject {
    /// Its name in the report.
    pub name: String,
    /// The object as given.
    pub object: String,
    /// The program measured.
    pub entry: String,
    /// The content hash.
    pub hash: String,
    /// Whether it is the baseline.
    pub baseline: bool,
    /// Median rx pps over its windows.
    pub rx_pps: f64,
    /// Median nanoseconds per frame (kernel) over its windows.
    pub ns_per_frame: Option<f64>,
    /// Test-run: median `BPF_PROG_TEST_RUN` duration per run.
    pub test_run_ns: Option<f64>,
}

/// What an A/B run measured and concluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbReport {
    /// Where the objects ran.
    pub path: AbPath,
    /// What they were sent.
    pub traffic: String,
    /// Length of the traffic's first frame, in bytes.
    pub frame_bytes: usize,
    /// Sending threads (live injector).
    pub threads: usize,
    /// Window length in seconds.
    pub window: f64,
    /// Rounds measured (fewer than asked when interrupted).
    pub rounds: usize,
    /// The threshold, if any.
    pub max_slowdown: Option<f64>,
    /// Per object.
    pub objects: Vec<AbObject>,
    /// Every window, in the order measured.
    pub windows: Vec<AbWindow>,
    /// Every object but the baseline against the baseline.
    pub ratios: Vec<AbRatio>,
    /// Anything worth knowing about how the numbers were obtained.
    pub notes: Vec<String>,
}

impl AbReport {
    /// Whether some object is [`Verdict::Slower`].
    pub fn has_slower(&self) -> bool {
        self.ratios
            .iter()
            .any(|r| r.verdict == Some(Verdict::Slower))
    }

    /// One [`Measurement`] per object (its median window), for results files and charts.
    pub fn measurements(&self) -> Vec<Measurement> {
        let (injector, mode) = match self.path {
            AbPath::Lab { injector, mode } => (injector, mode.to_string()),
            // The results file's injector field has no test-run: live is what it stands in for.
            AbPath::TestRun => (InjectorKind::Live, "test-run".to_owned()),
        };
        self.objects
            .iter()
            .map(|o| {
                let mine: Vec<&AbWindow> =
                    self.windows.iter().filter(|w| w.object == o.name).collect();
                let sum = |f: fn(&AbWindow) -> u64| mine.iter().map(|w| f(w)).sum::<u64>();
                let seconds: f64 = mine.iter().map(|w| w.seconds).sum();
                Measurement {
                    injector,
                    mode: mode.clone(),
                    program: o.name.clone(),
                    size: self.frame_bytes,
                    threads: self.threads,
                    flows: 1,
                    per_thread: Vec::new(),
                    seconds,
                    offered: sum(|w| w.offered),
                    accepted: sum(|w| w.offered),
                    errors: 0,
                    received: sum(|w| w.received),
                    oracle: "median of the windows".to_owned(),
                    map: None,
                    offered_pps: sum(|w| w.offered) as f64 / seconds.max(1e-9),
                    rx_pps: o.rx_pps,
                    map_pps: None,
                    // Not measured per window (JSON has no NaN).
                    cpu: 0.0,
                    sender_cpu: 0.0,
                    loss: 0,
                    notes: vec![format!(
                        "{} windows of {:.3}s; ns/frame {}",
                        mine.len(),
                        self.window,
                        o.ns_per_frame
                            .map_or_else(|| "-".to_owned(), |n| format!("{n:.1}"))
                    )],
                    ns_per_frame: o.ns_per_frame,
                }
            })
            .collect()
    }
}

/// Compares every object with the baseline from the windows measured (see [`AbRatio`]).
pub fn ratios(
    objects: &[String],
    baseline: usize,
    windows: &[AbWindow],
    max_slowdown: Option<f64>,
) -> Vec<AbRatio> {
    let base = &objects[baseline];
    let window = |object: &str, round: usize| {
        windows
            .iter()
            .find(|w| w.object == object && w.round == round)
    };
    let rounds: Vec<usize> = {
        let mut r: Vec<usize> = windows.iter().map(|w| w.round).collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let mut out = Vec::new();
    for (i, name) in objects.iter().enumerate() {
        if i == baseline {
            continue;
        }
        let pairs: Vec<(&AbWindow, &AbWindow)> = rounds
            .iter()
            .filter_map(|&r| Some((window(name, r)?, window(base, r)?)))
            .collect();
        let pps = Spread::of(
            pairs
                .iter()
                .filter(|(_, b)| b.rx_pps > 0.0)
                .map(|(o, b)| o.rx_pps / b.rx_pps),
        );
        let ns_ratios: Vec<f64> = pairs
            .iter()
            .filter_map(|(o, b)| Some(o.ns_per_frame? / b.ns_per_frame?))
            .collect();
        let all_ns = !pairs.is_empty() && ns_ratios.len() == pairs.len();
        let ns = Spread::of(ns_ratios);
        let (metric, cost) = if all_ns {
            (CostMetric::NsPerFrame, ns)
        } else {
            (
                CostMetric::Pps,
                Spread::of(
                    pairs
                        .iter()
                        .filter(|(o, _)| o.rx_pps > 0.0)
                        .map(|(o, b)| b.rx_pps / o.rx_pps),
                ),
            )
        };
        let (slowdown, noise) =
            cost.map_or((f64::NAN, f64::NAN), |c| (c.median - 1.0, c.half_range()));
        let verdict = max_slowdown.map(|t| {
            if slowdown.is_nan() {
                // Nothing comparable was measured: not a pass.
                Verdict::Slower
            } else if slowdown > t && slowdown > noise {
                Verdict::Slower
            } else if slowdown > t {
                Verdict::WithinNoise
            } else {
                Verdict::Ok
            }
        });
        out.push(AbRatio {
            object: name.clone(),
            baseline: base.clone(),
            rounds: pairs.len(),
            pps,
            ns,
            metric,
            slowdown,
            noise,
            verdict,
        });
    }
    out
}

/// Checks what an A/B run asks for.
fn check(config: &AbConfig) -> Result<(), String> {
    if config.objects.is_empty() {
        return Err("no object to measure".to_owned());
    }
    if config.baseline >= config.objects.len() {
        return Err("the baseline is not one of the objects".to_owned());
    }
    if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&config.window) {
        return Err(format!("window {:?} is outside 10ms..=1m", config.window));
    }
    if !(1..=1000).contains(&config.rounds) {
        return Err(format!("{} rounds is outside 1..=1000", config.rounds));
    }
    if config.traffic.frames.is_empty() {
        return Err("the traffic holds no frames".to_owned());
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if config.threads == 0 || config.threads > cpus {
        return Err(format!(
            "{} sending threads on a machine with {cpus} CPUs",
            config.threads
        ));
    }
    Ok(())
}

/// An opened injector of any kind.
enum Injector {
    Pnet(PnetInjector),
    Batched(BatchedInjector),
    Live(LiveInjector),
}

impl Injector {
    fn send_for(&mut self, frame: &[u8], budget: Budget) -> InjectStats {
        match self {
            Self::Pnet(i) => i.send_for(frame, budget),
            Self::Batched(i) => i.send_for(frame, budget),
            Self::Live(i) => i.send_for(frame, budget),
        }
    }
}

/// Runs an A/B measurement (see the module docs). Stops early, with the rounds measured so
/// far, when a SIGINT or SIGTERM was recorded ([`crate::interrupt::requested`]).
pub fn measure_ab(config: &AbConfig) -> Result<AbReport, BenchError> {
    check(config).map_err(|reason| BenchError::Config {
        config: "A/B run".to_owned(),
        reason,
    })?;
    let mut programs: Vec<Program> = config
        .objects
        .iter()
        .map(|o| Program::load(&o.source, &o.entry))
        .collect::<Result<_, _>>()?;
    // From here until this function returns, and only then, the kernel counts run time.
    let stats = RunTimeStats::enable()?;
    let mut notes = Vec::new();
    let windows = match config.path {
        AbPath::TestRun => test_run_windows(config, &programs)?,
        AbPath::Lab { injector, mode } => {
            lab_windows(config, &mut programs, injector, mode, &mut notes)?
        }
    };
    drop(stats);
    let names: Vec<String> = config.objects.iter().map(|o| o.name.clone()).collect();
    let rounds = windows.iter().map(|w| w.round + 1).max().unwrap_or(0);
    let objects = config
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mine = || windows.iter().filter(|w| w.object == o.name);
            AbObject {
                name: o.name.clone(),
                object: o.source.name(),
                entry: o.entry.clone(),
                hash: o.hash.clone(),
                baseline: i == config.baseline,
                rx_pps: Spread::of(mine().map(|w| w.rx_pps)).map_or(0.0, |s| s.median),
                ns_per_frame: Spread::of(mine().filter_map(|w| w.ns_per_frame)).map(|s| s.median),
                test_run_ns: Spread::of(mine().filter_map(|w| w.test_run_ns)).map(|s| s.median),
            }
        })
        .collect();
    if config.traffic.frames.len() > MAX_LAB_FRAMES && matches!(config.path, AbPath::Lab { .. }) {
        notes.push(format!(
            "the traffic has {} frames; a lab path sends the first {MAX_LAB_FRAMES}",
            config.traffic.frames.len()
        ));
    }
    Ok(AbReport {
        path: config.path,
        traffic: config.traffic.origin.clone(),
        frame_bytes: config.traffic.frames[0].len(),
        threads: config.threads,
        window: config.window.as_secs_f64(),
        rounds,
        max_slowdown: config.max_slowdown,
        objects,
        ratios: ratios(&names, config.baseline, &windows, config.max_slowdown),
        windows,
        notes,
    })
}

/// The order of the objects in round `round`: forwards in even rounds, backwards in odd ones.
fn order(round: usize, n: usize) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    }
}

fn test_run_windows(config: &AbConfig, programs: &[Program]) -> Result<Vec<AbWindow>, BenchError> {
    let frames = &config.traffic.frames;
    // A first guess of each program's time per run, to size the repeat counts: a short call
    // per frame (each call with repeat > 1 also waits for an RCU grace period, so calls are
    // few and long).
    let mut per_run_ns = Vec::new();
    for program in programs {
        let mut ns = 0.0;
        for frame in frames {
            let (_, d) = program.test_run_repeat(frame, 10_000)?;
            ns += d.as_nanos() as f64;
        }
        per_run_ns.push((ns / frames.len() as f64).max(1.0));
    }
    let mut windows = Vec::new();
    'rounds: for round in 0..config.rounds {
        for i in order(round, programs.len()) {
            if crate::interrupt::requested().is_some() {
                break 'rounds;
            }
            let program = &programs[i];
            let share = config.window.as_secs_f64() / frames.len() as f64;
            let repeat = ((share * 1e9 / per_run_ns[i]) as u64).clamp(1_000, 50_000_000);
            let repeat = u32::try_from(repeat).unwrap_or(u32::MAX);
            let before = program.run_time()?;
            let start = Instant::now();
            let mut kernel_ns = 0.0;
            for frame in frames {
                let (_, d) = program.test_run_repeat(frame, repeat)?;
                kernel_ns += d.as_nanos() as f64 * f64::from(repeat);
            }
            let seconds = start.elapsed().as_secs_f64();
            let run = program.run_time()?.since(before);
            let runs = u64::from(repeat) * frames.len() as u64;
            windows.push(AbWindow {
                round,
                object: config.objects[i].name.clone(),
                seconds,
                offered: runs,
                received: runs,
                rx_pps: runs as f64 / seconds.max(1e-9),
                run,
                ns_per_frame: run.ns_per_run(),
                test_run_ns: Some(kernel_ns / runs as f64),
                map: None,
            });
        }
    }
    Ok(windows)
}

fn lab_windows(
    config: &AbConfig,
    programs: &mut [Program],
    injector: InjectorKind,
    mode: XdpMode,
    notes: &mut Vec<String>,
) -> Result<Vec<AbWindow>, BenchError> {
    let invalid = |reason: String| BenchError::Config {
        config: format!("A/B run on {}", config.path),
        reason,
    };
    let lab = Lab::new(&LabConfig::default())?;
    let native = mode == XdpMode::Native;
    if injector == InjectorKind::Live && !native {
        crate::kernel::veth::set_gro(lab.receiver(), true).map_err(|e| invalid(e.to_string()))?;
        notes.push("GRO turned on at the receiver so live frames arrive (veth needs NAPI)".into());
    }
    let driver = DriverStats::open(lab.receiver())?;
    let link = LinkStats::open(lab.receiver())?;
    let oracle = || -> Result<u64, BenchError> {
        Ok(if native {
            driver.xdp()?.packets
        } else {
            link.read()?.rx_packets
        })
    };
    let mut sender = match injector {
        InjectorKind::Pnet => Injector::Pnet(PnetInjector::open(lab.sender())?),
        InjectorKind::Batched => Injector::Batched(BatchedInjector::open(lab.sender())?),
        InjectorKind::Live => Injector::Live(LiveInjector::open(lab.sender(), config.threads)?),
    };
    let frames: Vec<&[u8]> = config
        .traffic
        .frames
        .iter()
        .take(MAX_LAB_FRAMES)
        .map(Vec::as_slice)
        .collect();
    let share = config.window / u32::try_from(frames.len()).unwrap_or(1);
    let mut windows = Vec::new();
    'rounds: for round in 0..config.rounds {
        for i in order(round, programs.len()) {
            if crate::interrupt::requested().is_some() {
                break 'rounds;
            }
            let attachment = programs[i].attach(lab.receiver(), mode)?;
            let counter_name = ["drop_cnt", "pass_cnt"]
                .into_iter()
                .find(|name| counter(&programs[i], name).is_some());
            let map_before = counter_name.and_then(|n| counter(&programs[i], n));
            let rx_before = oracle()?;
            let run_before = programs[i].run_time()?;
            let mut stats = InjectStats::default();
            for frame in &frames {
                let budget = Budget {
                    frames: (share.as_secs_f64() * 200e6) as u64,
                    duration: share,
                };
                let s = sender.send_for(frame, budget);
                stats.offered += s.offered;
                stats.accepted += s.accepted;
                stats.errors += s.errors;
                stats.elapsed += s.elapsed;
            }
            let received = settled(oracle)? - rx_before;
            let run = programs[i].run_time()?.since(run_before);
            let map = match (
                counter_name.and_then(|n| counter(&programs[i], n)),
                map_before,
            ) {
                (Some(after), Some(before)) => Some(after - before),
                _ => None,
            };
            drop(attachment);
            let seconds = stats.elapsed.as_secs_f64().max(1e-9);
            windows.push(AbWindow {
                round,
                object: config.objects[i].name.clone(),
                seconds,
                offered: stats.offered,
                received,
                rx_pps: received as f64 / seconds,
                run,
                ns_per_frame: run.ns_per_run(),
                test_run_ns: None,
                map,
            });
        }
    }
    drop(lab);
    Ok(windows)
}

/// One object loaded for a benchmark harness that times iterations itself (criterion's
/// `iter_custom`): [`Self::time`] runs the traffic through `BPF_PROG_TEST_RUN` and returns the
/// program's own run time as the kernel counted it, with run-time statistics on only during
/// the call.
///
/// ```no_run
/// # use xdplab::bench::ab::{BenchObject, KernelTimer, Traffic};
/// let object = BenchObject::from_file("bpf/my_prog.bpf.o".as_ref(), None)?;
/// let timer = KernelTimer::new(&object, &Traffic::udp(64)?)?;
/// let spent = timer.time(1_000_000)?; // what a million frames cost the program
/// # Ok::<(), xdplab::bench::BenchError>(())
/// ```
#[derive(Debug)]
pub struct KernelTimer {
    program: Program,
    frames: Vec<Vec<u8>>,
}

impl KernelTimer {
    /// Loads `object`'s program, to be run on `traffic`'s frames (in turn).
    pub fn new(object: &BenchObject, traffic: &Traffic) -> Result<Self, BenchError> {
        if traffic.frames.is_empty() {
            return Err(BenchError::Config {
                config: object.name.clone(),
                reason: "the traffic holds no frames".to_owned(),
            });
        }
        Ok(Self {
            program: Program::load(&object.source, &object.entry)?,
            frames: traffic.frames.clone(),
        })
    }

    /// Runs the program `iters` times (the frames in turn, an equal share each; at least
    /// 10 000 runs per frame, scaled to `iters`) and returns the time the kernel counted inside
    /// the program (`run_time_ns`), not the time around it.
    pub fn time(&self, iters: u64) -> Result<Duration, BenchError> {
        let _stats = RunTimeStats::enable()?;
        let before = self.program.run_time()?;
        // A few runs read cold caches and the call's own cost; a measurement of fewer than
        // MIN_RUNS is made on MIN_RUNS and scaled down.
        const MIN_RUNS: u64 = 10_000;
        let per_frame = iters.div_ceil(self.frames.len() as u64).max(MIN_RUNS);
        for frame in &self.frames {
            let mut left = per_frame;
            while left > 0 {
                let repeat = u32::try_from(left).unwrap_or(u32::MAX);
                self.program.test_run_repeat(frame, repeat)?;
                left -= u64::from(repeat);
            }
        }
        let run = self.program.run_time()?.since(before);
        // Scaled to exactly `iters` runs.
        let ns = run.ns_per_run().unwrap_or(0.0) * iters as f64;
        Ok(Duration::from_nanos(ns as u64))
    }
}

/// The default results directory of an A/B run: `$CARGO_TARGET_DIR/xdplab-bench`, or
/// `target/xdplab-bench` under the current directory.
pub fn default_results_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("xdplab-bench")
}

/// The file name of an A/B run's results: `<UTC time>-<8 hex digits of each object's hash,
/// joined by ->.json`.
pub fn results_file_name(report: &AbReport, stamp: &str) -> String {
    let hashes: Vec<&str> = report.objects.iter().map(|o| &o.hash[..8]).collect();
    format!("{stamp}-{}.json", hashes.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(round: usize, object: &str, ns: f64, pps: f64) -> AbWindow {
        AbWindow {
            round,
            object: object.to_owned(),
            seconds: 1.0,
            offered: 0,
            received: 0,
            rx_pps: pps,
            run: RunTime::default(),
            ns_per_frame: Some(ns),
            test_run_ns: None,
            map: None,
        }
    }

    fn names() -> Vec<String> {
        vec!["a".to_owned(), "b".to_owned()]
    }

    #[test]
    fn spread_median_of_odd_and_even_counts() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of([1.0, 2.0, 3.0, 10.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn three_times_slower_fails_and_noise_alone_does_not() {
        let slow: Vec<AbWindow> = (0..4)
            .flat_map(|r| {
                [
                    window(r, "a", 10.0, 9e6),
                    window(r, "b", 30.0 + r as f64, 3e6),
                ]
            })
            .collect();
        let r = &ratios(&names(), 0, &slow, Some(0.05))[0];
        assert_eq!(r.metric, CostMetric::NsPerFrame);
        assert_eq!(r.verdict, Some(Verdict::Slower));
        assert!((r.slowdown - 2.15).abs() < 1e-9, "{r:?}");
        // Same program: ratios scatter around 1 by up to 20%.
        let same: Vec<AbWindow> = [0.8, 1.2, 1.0, 1.06]
            .iter()
            .enumerate()
            .flat_map(|(round, f)| {
                [
                    window(round, "a", 10.0, 9e6),
                    window(round, "b", 10.0 * f, 9e6),
                ]
            })
            .collect();
        let r = &ratios(&names(), 0, &same, Some(0.05))[0];
        // Median 1.03 is not above 5%.
        assert_eq!(r.verdict, Some(Verdict::Ok), "{r:?}");
        let noisy: Vec<AbWindow> = [0.9, 1.3, 1.1, 1.1]
            .iter()
            .enumerate()
            .flat_map(|(round, f)| {
                [
                    window(round, "a", 10.0, 9e6),
                    window(round, "b", 10.0 * f, 9e6),
                ]
            })
            .collect();
        let r = &ratios(&names(), 0, &noisy, Some(0.05))[0];
        assert_eq!(r.verdict, Some(Verdict::WithinNoise), "{r:?}");
        assert_eq!(ratios(&names(), 0, &noisy, None)[0].verdict, None);
    }

    #[test]
    fn without_run_counts_the_verdict_uses_pps() {
        let mut w = vec![window(0, "a", 10.0, 9e6), window(0, "b", 10.0, 3e6)];
        w[1].ns_per_frame = None;
        let r = &ratios(&names(), 0, &w, Some(0.05))[0];
        assert_eq!(r.metric, CostMetric::Pps);
        assert!((r.slowdown - 2.0).abs() < 1e-9);
        assert_eq!(r.verdict, Some(Verdict::Slower));
        // Nothing comparable: a threshold fails rather than passes.
        let r = &ratios(&names(), 0, &[window(0, "a", 1.0, 1.0)], Some(0.05))[0];
        assert_eq!(r.verdict, Some(Verdict::Slower));
    }

    #[test]
    fn names_carry_the_hash_and_repeats_are_numbered() {
        assert_eq!(content_hash(b""), "cbf29ce484222325");
        let object = |name: &str| BenchObject {
            source: ObjectSource::File(name.into()),
            entry: "x".into(),
            hash: "0".repeat(16),
            name: name.into(),
        };
        let mut objects = vec![object("a"), object("a"), object("b"), object("a")];
        unique_names(&mut objects);
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "a#2", "b", "a#3"]);
    }
}
