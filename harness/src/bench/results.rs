//! Benchmark results: the file `xdplab bench` writes (JSON), a chart of it (SVG), the ratios
//! inside one run, and the comparison of a run with an earlier one.
//!
//! A results file is one [`BenchResults`]: where it was measured (machine, kernel, commit,
//! date) and one [`MeasurementRecord`] per configuration, the JSON form of
//! [`Measurement`]. Absolute packet rates only compare on the same machine; the ratios of
//! [`in_run_ratios`] (a program against no program, native against generic, measured minutes
//! apart on one machine) are what compare across machines.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::{self, Write as _},
    io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bench::{InjectorKind, Measurement};
use crate::kernel::program::XdpMode;

/// An error from reading or writing a results file.
#[derive(Debug, Error)]
pub enum ResultsError {
    /// The file could not be read.
    #[error("failed to read results file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a results file.
    #[error("failed to read results file {}: not an xdplab bench results file: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// The file could not be written.
    #[error("failed to write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The machine a run was measured on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model, from `/proc/cpuinfo` (`model name`, or the architecture when absent).
    pub cpu: String,
    /// CPUs this process may run on (what `nproc` prints).
    pub cores: usize,
    /// Total memory in MiB, from `/proc/meminfo`.
    pub memory_mib: u64,
}

impl Machine {
    /// The machine this process runs on.
    pub fn current() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                matches!(key.trim(), "model name" | "Model" | "cpu model")
                    .then(|| value.trim().to_owned())
            })
            .filter(|model| !model.is_empty())
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_mib: memory_kib / 1024,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, {:.0} GiB",
            self.cpu,
            self.cores,
            self.memory_mib as f64 / 1024.0
        )
    }
}

/// The running kernel's release (`uname -r`).
#[doc(alias = "uname")]
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain bytes; uname fills it, and all-zero is a valid value.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live, writable utsname.
    if unsafe { libc::uname(&mut name) } != 0 {
        return "unknown".to_owned();
    }
    let bytes: Vec<u8> = name
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One measured configuration, as a results file holds it.
pub type MeasurementRecord = Measurement;

impl MeasurementRecord {
    /// What identifies the configuration across runs.
    pub fn key(&self) -> ConfigKey {
        ConfigKey {
            injector: self.injector,
            mode: self.mode.clone(),
            program: self.program.clone(),
            size: self.size,
            threads: self.threads,
            flows: self.flows,
        }
    }

    /// `loss` as a percentage of what the kernel accepted (0 when nothing was).
    pub fn loss_percent(&self) -> f64 {
        if self.accepted == 0 {
            0.0
        } else {
            self.loss as f64 * 100.0 / self.accepted as f64
        }
    }
}

/// A configuration, as runs are matched by: injector, mode, program, size and threads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ConfigKey {
    /// The injector.
    pub injector: InjectorKind,
    /// `native`, `generic` or `-`.
    pub mode: String,
    /// The program.
    pub program: String,
    /// Frame length in bytes.
    pub size: usize,
    /// Sending threads.
    pub threads: usize,
    /// Flows.
    pub flows: u32,
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}B",
            self.injector, self.mode, self.program, self.size
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

/// A results file: where and when the run was measured, and every configuration measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    /// The machine.
    pub machine: Machine,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// The xdplab commit (`git rev-parse --short HEAD`), or `"unknown"`.
    pub commit: String,
    /// When the run ended, UTC, RFC 3339 (`2026-11-25T11:46:28Z`).
    pub date: String,
    /// One per configuration, in the order measured.
    pub results: Vec<MeasurementRecord>,
}

impl BenchResults {
    /// Results measured now, on this machine and kernel, at `commit`.
    pub fn new(commit: impl Into<String>, measurements: &[Measurement]) -> BenchResults {
        BenchResults {
            machine: Machine::current(),
            kernel: kernel_release(),
            commit: commit.into(),
            date: utc_date(SystemTime::now()),
            results: measurements.to_vec(),
        }
    }

    /// Reads a results file.
    pub fn load(path: &Path) -> Result<BenchResults, ResultsError> {
        let text =
            crate::input::read_text(path, crate::input::InputKind::Results).map_err(|source| {
                ResultsError::Read {
                    path: path.to_owned(),
                    source,
                }
            })?;
        serde_json::from_str(&text).map_err(|source| ResultsError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the results as pretty JSON, creating the file's directory if needed.
    pub fn save(&self, path: &Path) -> Result<(), ResultsError> {
        let mut json = serde_json::to_string_pretty(self).expect("results serialize");
        json.push('\n');
        write_file(path, &json)
    }

    /// Writes [`svg_chart`] of the results, creating the file's directory if needed.
    pub fn save_svg(&self, path: &Path) -> Result<(), ResultsError> {
        write_file(path, &svg_chart(self))
    }

    /// One line: `Intel(R) Xeon(R) ..., 2 cores, 24 GiB; kernel 6.18.4; commit 205d0f6; 2026-...`.
    pub fn describe(&self) -> String {
        format!(
            "{}; kernel {}; commit {}; {}",
            self.machine, self.kernel, self.commit, self.date
        )
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), ResultsError> {
    let error = |source| ResultsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    std::fs::write(path, text).map_err(error)
}

/// `time` in UTC as RFC 3339 to the second: `2026-11-25T11:46:28Z`.
pub fn utc_date(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `time` in UTC for file names: `20261125T114628Z`.
pub fn utc_stamp(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_fields(time);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

fn utc_fields(time: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil, inverted: proleptic Gregorian from days since 1970.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let field = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        year,
        field(month),
        field(day),
        field(rem / 3600),
        field(rem % 3600 / 60),
        field(rem % 60),
    )
}

/// A packet rate for people: `950 pps`, `85.3 kpps`, `16.9 Mpps`.
pub fn format_pps(pps: f64) -> String {
    if !pps.is_finite() {
        return "-".to_owned();
    }
    let (value, unit) = if pps >= 1e9 {
        (pps / 1e9, "Gpps")
    } else if pps >= 1e6 {
        (pps / 1e6, "Mpps")
    } else if pps >= 1e3 {
        (pps / 1e3, "kpps")
    } else {
        return format!("{pps:.0} pps");
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// The results as a table for people, one row per configuration.
pub fn table(results: &[MeasurementRecord]) -> String {
    let header = [
        "injector",
        "mode",
        "program",
        "size",
        "offered pps",
        "rx pps (oracle)",
        "map pps",
        "ns/frame",
        "loss %",
        "cpu cores (tx)",
    ];
    let rows: Vec<[String; 10]> = results
        .iter()
        .map(|r| {
            let mut injector = if r.threads > 1 {
                format!("{} x{}", r.injector, r.threads)
            } else {
                r.injector.to_string()
            };
            if r.flows > 1 {
                injector.push_str(&format!(" {}fl", r.flows));
            }
            [
                injector,
                r.mode.clone(),
                r.program.clone(),
                format!("{}B", r.size),
                format_pps(r.offered_pps),
                format!("{} ({})", format_pps(r.rx_pps), r.oracle),
                r.map_pps.map_or_else(|| "-".to_owned(), format_pps),
                r.ns_per_frame
                    .map_or_else(|| "-".to_owned(), |ns| format!("{ns:.1}")),
                format!("{:.1}", r.loss_percent()),
                format!("{:.2} ({:.2})", r.cpu, r.sender_cpu),
            ]
        })
        .collect();
    render_table(&header, &rows)
}

/// Left-aligned text columns, right-aligned numbers (columns whose cells start with a digit).
fn render_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..N)
        .map(|i| {
            !rows.is_empty()
                && rows.iter().all(|row| {
                    row[i]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit() || c == '-')
                })
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if numeric[i] {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// A ratio between two configurations of the same run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InRunRatio {
    /// The injector both were sent with.
    pub injector: InjectorKind,
    /// Frame length of both.
    pub size: usize,
    /// Sending threads of both.
    pub threads: usize,
    /// The configuration on top: `drop native`.
    pub measured: String,
    /// The one below: `none`, or `drop generic`.
    pub against: String,
    /// `rx_pps` of `measured` / `rx_pps` of `against`.
    pub ratio: f64,
}

impl fmt::Display for InRunRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}B{}: {} / {} = {:.2}",
            self.injector,
            self.size,
            if self.threads > 1 {
                format!(" x{}", self.threads)
            } else {
                String::new()
            },
            self.measured,
            self.against,
            self.ratio
        )
    }
}

/// The ratios worth comparing across machines, for every pair measured in the run with the
/// same injector, size and threads: each program against no program (`drop native / none`),
/// and each program native against generic (`drop native / drop generic`). Pairs whose
/// denominator received nothing are left out.
pub fn in_run_ratios(results: &[MeasurementRecord]) -> Vec<InRunRatio> {
    let by_key: HashMap<ConfigKey, &MeasurementRecord> =
        results.iter().map(|r| (r.key(), r)).collect();
    let mut out = Vec::new();
    let mut push = |r: &MeasurementRecord, other: &ConfigKey, measured: String, against: String| {
        if let Some(o) = by_key.get(other)
            && o.rx_pps > 0.0
        {
            out.push(InRunRatio {
                injector: r.injector,
                size: r.size,
                threads: r.threads,
                measured,
                against,
                ratio: r.rx_pps / o.rx_pps,
            });
        }
    };
    for r in results.iter().filter(|r| r.program != "none") {
        let none = ConfigKey {
            mode: "-".to_owned(),
            program: "none".to_owned(),
            ..r.key()
        };
        push(
            r,
            &none,
            format!("{} {}", r.program, r.mode),
            "none".to_owned(),
        );
    }
    for r in results
        .iter()
        .filter(|r| r.mode == XdpMode::Native.as_str())
    {
        let generic = ConfigKey {
            mode: XdpMode::Generic.as_str().to_owned(),
            ..r.key()
        };
        push(
            r,
            &generic,
            format!("{} native", r.program),
            format!("{} generic", r.program),
        );
    }
    out
}

/// The ratios as a table for people: one row per injector, size and threads, one column per
/// pair (`drop native / none`, `drop native / drop generic`, ...), `-` where the run did not
/// measure both.
pub fn ratios_table(ratios: &[InRunRatio]) -> String {
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<(InjectorKind, usize, usize)> = Vec::new();
    for r in ratios {
        let column = format!("{} / {}", r.measured, r.against);
        if !columns.contains(&column) {
            columns.push(column);
        }
        if !rows.contains(&(r.injector, r.size, r.threads)) {
            rows.push((r.injector, r.size, r.threads));
        }
    }
    rows.sort();
    let mut out = String::new();
    let mut widths = vec![0usize; columns.len() + 1];
    let mut grid: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["injector size".to_owned()];
    head.extend(columns.iter().cloned());
    grid.push(head);
    for &(injector, size, threads) in &rows {
        let threads_text = if threads > 1 {
            format!(" x{threads}")
        } else {
            String::new()
        };
        let mut line = vec![format!("{injector} {size}B{threads_text}")];
        for column in &columns {
            let value = ratios.iter().find(|r| {
                (r.injector, r.size, r.threads) == (injector, size, threads)
                    && format!("{} / {}", r.measured, r.against) == *column
            });
            line.push(value.map_or_else(|| "-".to_owned(), |r| format!("{:.2}", r.ratio)));
        }
        grid.push(line);
    }
    for line in &grid {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for line in &grid {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i == 0 {
                text.push_str(cell);
                text.push_str(&pad);
            } else {
                text.push_str("  ");
                text.push_str(&pad);
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// One configuration measured in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareRow {
    /// The configuration.
    pub config: ConfigKey,
    /// `rx_pps` now.
    pub current: f64,
    /// `rx_pps` in the baseline.
    pub baseline: f64,
    /// `current / baseline`; `None` when the baseline received nothing.
    pub ratio: Option<f64>,
    /// `ratio < 1 - tolerance`.
    pub regression: bool,
}

/// How a run compares with a baseline run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The fraction a rate may fall before it is a regression (0.10: 10%).
    pub tolerance: f64,
    /// Configurations measured in both, in the current run's order.
    pub rows: Vec<CompareRow>,
    /// Configurations of the baseline not measured now.
    pub missing: Vec<ConfigKey>,
    /// Configurations measured now that the baseline does not have.
    pub new: Vec<ConfigKey>,
    /// Whether the baseline was measured on another machine or kernel (absolute rates then
    /// say little; compare [`in_run_ratios`] instead).
    pub other_machine: bool,
}

impl Comparison {
    /// The rows that fell by more than the tolerance.
    pub fn regressions(&self) -> impl Iterator<Item = &CompareRow> {
        self.rows.iter().filter(|row| row.regression)
    }

    /// Whether any configuration regressed.
    pub fn has_regressions(&self) -> bool {
        self.regressions().next().is_some()
    }

    /// The comparison for people: a table, then what is missing, then a verdict line.
    pub fn human(&self) -> String {
        let header = ["configuration", "baseline rx pps", "rx pps", "ratio", ""];
        let rows: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.config.to_string(),
                    format_pps(row.baseline),
                    format_pps(row.current),
                    row.ratio
                        .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")),
                    if row.regression {
                        "REGRESSION".to_owned()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        let mut out = render_table(&header, &rows);
        for key in &self.missing {
            let _ = writeln!(out, "missing: {key} (in the baseline, not measured now)");
        }
        for key in &self.new {
            let _ = writeln!(out, "new: {key} (not in the baseline)");
        }
        let regressions = self.regressions().count();
        let _ = writeln!(
            out,
            "{} of {} configurations regressed by more than {:.0}%",
            regressions,
            self.rows.len(),
            self.tolerance * 100.0
        );
        out
    }
}

/// Matches `current` against `baseline` by [`ConfigKey`] and compares `rx_pps`: a ratio below
/// `1 - tolerance` is a regression. A configuration measured twice in one file counts once,
/// by its last measurement.
pub fn compare(current: &BenchResults, baseline: &BenchResults, tolerance: f64) -> Comparison {
    let base: BTreeMap<ConfigKey, &MeasurementRecord> =
        baseline.results.iter().map(|r| (r.key(), r)).collect();
    let mut seen = BTreeMap::new();
    for r in &current.results {
        seen.insert(r.key(), r);
    }
    let mut rows = Vec::new();
    let mut new = Vec::new();
    let mut done = std::collections::HashSet::new();
    for r in &current.results {
        let key = r.key();
        if !done.insert(key.clone()) {
            continue;
        }
        let now = seen[&key];
        match base.get(&key) {
            Some(b) => {
                let ratio = (b.rx_pps > 0.0).then(|| now.rx_pps / b.rx_pps);
                rows.push(CompareRow {
                    config: key,
                    current: now.rx_pps,
                    baseline: b.rx_pps,
                    ratio,
                    regression: ratio.is_some_and(|r| r < 1.0 - tolerance),
                });
            }
            None => new.push(key),
        }
    }
    let missing = base
        .keys()
        .filter(|key| !seen.contains_key(*key))
        .cloned()
        .collect();
    Comparison {
        tolerance,
        rows,
        missing,
        new,
        other_machine: current.machine != baseline.machine || current.kernel != baseline.kernel,
    }
}

/// Escapes text for SVG (XML) content and attribute values.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How rates map to bar lengths.
#[derive(Clone, Copy, Debug)]
enum Scale {
    /// `0..=max`.
    Linear { max: f64 },
    /// `10^lo..=10^hi`.
    Log { lo: i32, hi: i32 },
}

impl Scale {
    /// Logarithmic when the positive rates span more than 30x, else linear from 0.
    fn for_values(values: impl Iterator<Item = f64>) -> Scale {
        let positive: Vec<f64> = values.filter(|v| v.is_finite() && *v > 0.0).collect();
        let max = positive.iter().copied().fold(0.0, f64::max);
        let min = positive.iter().copied().fold(f64::INFINITY, f64::min);
        if max <= 0.0 {
            return Scale::Linear { max: 1.0 };
        }
        if max / min > 30.0 {
            // Whole decades, so every grid line is a round number.
            let lo = min.log10().floor() as i32;
            let hi = (max.log10().ceil() as i32).max(lo + 1);
            Scale::Log { lo, hi }
        } else {
            Scale::Linear {
                max: nice_ceiling(max),
            }
        }
    }

    /// Where `value` sits, 0.0..=1.0 along the axis.
    fn position(self, value: f64) -> f64 {
        if !value.is_finite() || value <= 0.0 {
            return 0.0;
        }
        match self {
            Scale::Linear { max } => (value / max).clamp(0.0, 1.0),
            Scale::Log { lo, hi } => {
                ((value.log10() - f64::from(lo)) / f64::from(hi - lo)).clamp(0.0, 1.0)
            }
        }
    }

    /// Grid lines: values and whether each is a major (labelled) one.
    fn ticks(self) -> Vec<(f64, bool)> {
        match self {
            Scale::Linear { max } => {
                let step = max / 5.0;
                (0..=5).map(|i| (step * f64::from(i), true)).collect()
            }
            Scale::Log { lo, hi } => {
                let mut ticks = Vec::new();
                for decade in lo..=hi {
                    let base = 10f64.powi(decade);
                    ticks.push((base, true));
                    if decade < hi {
                        ticks.push((base * 2.0, false));
                        ticks.push((base * 5.0, false));
                    }
                }
                ticks
            }
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scale::Linear { .. } => "linear scale",
            Scale::Log { .. } => "logarithmic scale",
        }
    }
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= value)
        .unwrap_or(value)
}

/// A rate for an axis: `0`, `500`, `10k`, `2.5M`.
fn axis_label(value: f64) -> String {
    let (v, unit) = if value >= 1e9 {
        (value / 1e9, "G")
    } else if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = format!("{v:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{unit}")
}

/// Bar colour of a program.
fn program_colour(program: &str) -> &'static str {
    match program {
        "drop" => "#1f6fb4",
        "pass" => "#2a9d3c",
        "none" => "#7a7a7a",
        _ => "#8e4fb8",
    }
}

// The chart's geometry, in SVG user units.
const WIDTH: f64 = 980.0;
const LABEL_W: f64 = 190.0;
const PLOT_X: f64 = LABEL_W + 20.0;
const PLOT_W: f64 = 640.0;
const ROW_H: f64 = 20.0;
const BAR_H: f64 = 14.0;
const GROUP_GAP: f64 = 26.0;
const TOP: f64 = 92.0;

/// A horizontal bar chart of the run, one bar per configuration: received packets per second
/// (the kernel's count), grouped by injector, coloured by program, lighter for generic mode,
/// with the rate the sender offered as a black marker. Logarithmic when the rates span more
/// than 30x, and the axis says which. Self-contained SVG, no scripts or external fonts.
pub fn svg_chart(results: &BenchResults) -> String {
    let scale = Scale::for_values(
        results
            .results
            .iter()
            .flat_map(|r| [r.rx_pps, r.offered_pps]),
    );
    // Groups in order of first appearance.
    let mut groups: Vec<(InjectorKind, Vec<&MeasurementRecord>)> = Vec::new();
    for r in &results.results {
        match groups
            .iter_mut()
            .find(|(injector, _)| *injector == r.injector)
        {
            Some((_, rows)) => rows.push(r),
            None => groups.push((r.injector, vec![r])),
        }
    }
    let rows: usize = groups.iter().map(|(_, rows)| rows.len()).sum();
    let plot_h = rows as f64 * ROW_H + groups.len() as f64 * GROUP_GAP;
    let legend_y = TOP + plot_h + 40.0;
    let height = legend_y + 56.0;
    let x_of = |value: f64| PLOT_X + scale.position(value) * PLOT_W;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<title>xdplab bench: received packets per second</title>
<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>
<text x="16" y="26" font-size="17" font-weight="bold">xdplab bench: packets per second absorbed at the receiver</text>
<text x="16" y="46" fill="#333333">{}</text>
<text x="16" y="63" fill="#333333">kernel {} · commit {} · {}</text>"##,
        xml_escape(&results.machine.to_string()),
        xml_escape(&results.kernel),
        xml_escape(&results.commit),
        xml_escape(&results.date),
    );

    // Grid and axis labels (top and bottom).
    let _ = writeln!(svg, r#"<g class="grid">"#);
    for (value, major) in scale.ticks() {
        let x = x_of(value);
        let (stroke, dash) = if major {
            ("#bbbbbb", "")
        } else {
            ("#e2e2e2", r#" stroke-dasharray="3,3""#)
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{stroke}"{dash}/>"#,
            TOP - 6.0,
            TOP + plot_h
        );
        if major {
            for y in [TOP - 10.0, TOP + plot_h + 14.0] {
                let _ = writeln!(
                    svg,
                    r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="#444444">{}</text>"##,
                    axis_label(value)
                );
            }
        }
    }
    let _ = writeln!(svg, "</g>");
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222222">received packets per second ({}; from the receiver's kernel counters)</text>"##,
        PLOT_X + PLOT_W / 2.0,
        TOP + plot_h + 32.0,
        scale.label()
    );

    let mut y = TOP;
    for (injector, rows) in &groups {
        y += GROUP_GAP;
        let _ = writeln!(
            svg,
            r#"<g class="group"><text x="16" y="{:.1}" font-size="13" font-weight="bold">injector: {}</text>"#,
            y - 8.0,
            injector
        );
        for r in rows {
            svg_row(&mut svg, r, y, &x_of);
            y += ROW_H;
        }
        let _ = writeln!(svg, "</g>");
    }

    svg_legend(&mut svg, results, legend_y);
    let _ = writeln!(svg, "</svg>");
    svg
}

/// One configuration's bar at `y`: its label, the received rate as a bar, the offered rate
/// as a marker, and the received rate as text.
fn svg_row(svg: &mut String, r: &MeasurementRecord, y: f64, x_of: &impl Fn(f64) -> f64) {
    let what = if r.mode == "-" {
        "no program".to_owned()
    } else {
        format!("{} {}", r.mode, r.program)
    };
    let label = format!(
        "{what} {}B{}",
        r.size,
        if r.threads > 1 {
            format!(" x{}", r.threads)
        } else {
            String::new()
        }
    );
    let bar_y = y + (ROW_H - BAR_H) / 2.0;
    let bar_w = x_of(r.rx_pps) - PLOT_X;
    let opacity = if r.mode == XdpMode::Generic.as_str() {
        "0.45"
    } else {
        "1"
    };
    let _ = writeln!(
        svg,
        r#"<text x="{LABEL_W}" y="{:.1}" text-anchor="end">{}</text>"#,
        y + ROW_H / 2.0 + 4.0,
        xml_escape(&label)
    );
    let _ = writeln!(
        svg,
        r#"<rect class="bar" x="{PLOT_X}" y="{bar_y:.1}" width="{bar_w:.1}" height="{BAR_H}" fill="{}" fill-opacity="{opacity}"><title>{}: {} received, {} offered</title></rect>"#,
        program_colour(&r.program),
        xml_escape(&r.key().to_string()),
        format_pps(r.rx_pps),
        format_pps(r.offered_pps)
    );
    let offered_x = x_of(r.offered_pps);
    if r.offered_pps > 0.0 {
        let _ = writeln!(
            svg,
            r##"<path class="offered" d="M{offered_x:.1} {:.1} l4 {:.1} l-4 {:.1} l-4 {:.1} z" fill="#111111"/>"##,
            bar_y - 2.0,
            BAR_H / 2.0 + 2.0,
            BAR_H / 2.0 + 2.0,
            -(BAR_H / 2.0 + 2.0)
        );
    }
    let text_x = x_of(r.rx_pps).max(offered_x) + 8.0;
    // The program's own cost, from the kernel's run-time statistics, beside its rate.
    let cost = r
        .ns_per_frame
        .map(|ns| format!(" · {ns:.1} ns/frame"))
        .unwrap_or_default();
    let _ = writeln!(
        svg,
        r##"<text x="{text_x:.1}" y="{:.1}" fill="#222222">{}{cost}</text>"##,
        y + ROW_H / 2.0 + 4.0,
        format_pps(r.rx_pps)
    );
}

/// The legend below the plot: one colour per program, the generic shade, the offered marker.
fn svg_legend(svg: &mut String, results: &BenchResults, legend_y: f64) {
    let _ = writeln!(svg, r#"<g class="legend">"#);
    let mut x = 16.0;
    let mut programs: Vec<&str> = Vec::new();
    for r in &results.results {
        if !programs.contains(&r.program.as_str()) {
            programs.push(&r.program);
        }
    }
    for program in programs {
        let name = match program {
            "none" => "no program (stack)".to_owned(),
            "drop" => "xdp_drop".to_owned(),
            "pass" => "xdp_pass".to_owned(),
            other => other.to_owned(),
        };
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{:.1}" width="14" height="14" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
            legend_y,
            program_colour(program),
            x + 20.0,
            legend_y + 11.0,
            xml_escape(&name)
        );
        x += 28.0 + 7.5 * name.chars().count() as f64;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{x}" y="{:.1}" width="14" height="14" fill="#1f6fb4" fill-opacity="0.45"/><text x="{}" y="{:.1}">lighter: generic mode</text>"##,
        legend_y,
        x + 20.0,
        legend_y + 11.0
    );
    x += 190.0;
    let _ = writeln!(
        svg,
        r##"<path d="M{:.1} {:.1} l4 9 l-4 9 l-4 -9 z" fill="#111111"/><text x="{}" y="{:.1}">offered by the sender</text>"##,
        x + 6.0,
        legend_y - 2.0,
        x + 20.0,
        legend_y + 11.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="16" y="{:.1}" fill="#555555">Absolute rates compare only on one machine; across machines compare ratios within a run (program / none, native / generic).</text>"##,
        legend_y + 38.0
    );
    let _ = writeln!(svg, "</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        injector: InjectorKind,
        mode: &str,
        program: &str,
        size: usize,
        rx: f64,
    ) -> MeasurementRecord {
        MeasurementRecord {
            injector,
            mode: mode.to_owned(),
            program: program.to_owned(),
            size,
            threads: 1,
            flows: 1,
            seconds: 1.0,
            offered: (rx * 1.2) as u64,
            accepted: (rx * 1.1) as u64,
            errors: 0,
            received: rx as u64,
            oracle: "rx_xdp_drops".to_owned(),
            map: Some(rx as u64),
            offered_pps: rx * 1.2,
            rx_pps: rx,
            map_pps: Some(rx),
            cpu: 1.5,
            sender_cpu: 0.9,
            loss: (rx * 0.1) as i64,
            notes: vec!["a note".to_owned()],
            ns_per_frame: None,
            per_thread: Vec::new(),
        }
    }

    fn results(records: Vec<MeasurementRecord>) -> BenchResults {
        BenchResults {
            machine: Machine {
                cpu: "Test CPU <model> & \"friends\"".to_owned(),
                cores: 2,
                memory_mib: 24_000,
            },
            kernel: "6.18.0-test".to_owned(),
            commit: "abc1234".to_owned(),
            date: "2026-11-25T11:46:28Z".to_owned(),
            results: records,
        }
    }

    fn sample() -> BenchResults {
        use InjectorKind::*;
        results(vec![
            record(Pnet, "native", "drop", 64, 310_000.0),
            record(Pnet, "generic", "drop", 64, 290_000.0),
            record(Pnet, "-", "none", 64, 250_000.0),
            record(Live, "native", "drop", 64, 16_900_000.0),
            record(Live, "generic", "drop", 64, 4_200_000.0),
            record(Live, "native", "pass", 64, 2_100_000.0),
            record(Live, "-", "none", 64, 1_300_000.0),
            record(Live, "native", "drop", 1500, 0.0),
        ])
    }

    /// Checks that every tag is closed in order, text holds no stray `<` or `&`, and there is
    /// one root element.
    fn assert_well_formed(xml: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            let mut amp = text;
            while let Some(i) = amp.find('&') {
                let entity = &amp[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                        .iter()
                        .any(|e| entity.starts_with(e)),
                    "bare & in text: {entity:.30}"
                );
                amp = &amp[i + 1..];
            }
            assert!(!text.contains('>'), "stray > in text: {text:.40}");
            rest = &rest[open..];
            if let Some(body) = rest.strip_prefix("<?") {
                let end = body.find("?>").expect("closed declaration");
                assert!(stack.is_empty() && roots == 0, "declaration first");
                rest = &body[end + 2..];
                continue;
            }
            let end = rest.find('>').expect("closed tag");
            let tag = &rest[1..end];
            assert!(!tag.contains('<'), "< inside tag {tag}");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in {tag}"
            );
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "closing {name}");
            } else {
                let name = tag
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap();
                assert!(!name.is_empty(), "empty tag name");
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(rest.trim().is_empty(), "text after the root: {rest:.40}");
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert_eq!(roots, 1, "one root element");
    }

    #[test]
    fn chart_has_a_bar_per_result_and_is_well_formed() {
        let r = sample();
        let svg = svg_chart(&r);
        assert_well_formed(&svg);
        assert_eq!(svg.matches(r#"<rect class="bar""#).count(), r.results.len());
        // Every bar but the empty one has an offered marker.
        assert_eq!(
            svg.matches(r#"class="offered""#).count(),
            r.results.len() - 1
        );
        assert!(svg.contains("Test CPU &lt;model&gt; &amp; &quot;friends&quot;, 2 cores"));
        assert!(svg.contains("kernel 6.18.0-test · commit abc1234"));
        assert!(svg.contains("injector: pnet") && svg.contains("injector: live"));
        assert!(
            svg.contains("logarithmic scale"),
            "16.9M vs 250k spans > 30x"
        );
        assert!(svg.contains(">16.9 Mpps<"));
        assert!(svg.contains(">10M<") && svg.contains(">100k<"));
    }

    #[test]
    fn chart_scale_is_linear_for_close_rates_and_survives_empty_runs() {
        use InjectorKind::*;
        let r = results(vec![
            record(Batched, "native", "drop", 64, 1_000_000.0),
            record(Batched, "-", "none", 64, 700_000.0),
        ]);
        let svg = svg_chart(&r);
        assert_well_formed(&svg);
        assert!(svg.contains("linear scale"));
        assert!(svg.contains(">1.2M<"), "nice ticks up to 1.2M offered");
        let empty = svg_chart(&results(vec![]));
        assert_well_formed(&empty);
        assert_eq!(empty.matches(r#"class="bar""#).count(), 0);
    }

    #[test]
    fn scales() {
        let log = Scale::for_values([250_000.0, 16_900_000.0].into_iter());
        assert!(matches!(log, Scale::Log { lo: 5, hi: 8 }), "{log:?}");
        assert!((log.position(1e6) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(log.position(0.0), 0.0);
        let lin = Scale::for_values([900.0, 1100.0].into_iter());
        assert!(
            matches!(lin, Scale::Linear { max } if max == 2000.0),
            "{lin:?}"
        );
        assert_eq!(nice_ceiling(1.2e6), 2e6);
        assert_eq!(nice_ceiling(2.4e6), 2.5e6);
        assert_eq!(nice_ceiling(3e6), 5e6);
        assert_eq!(nice_ceiling(1e6), 1e6);
        assert_eq!(axis_label(2.5e6), "2.5M");
        assert_eq!(axis_label(1e5), "100k");
        assert_eq!(axis_label(0.0), "0");
    }

    #[test]
    fn compare_ratios_regressions_and_missing() {
        use InjectorKind::*;
        let baseline = sample();
        let mut current = sample();
        // 5% slower: within 10%.
        current.results[0].rx_pps = 310_000.0 * 0.95;
        // 20% slower: a regression.
        current.results[3].rx_pps = 16_900_000.0 * 0.8;
        // Faster is never a regression.
        current.results[4].rx_pps = 8_400_000.0;
        // Not measured now.
        current.results.remove(2);
        // Not in the baseline.
        current
            .results
            .push(record(Batched, "native", "drop", 512, 900_000.0));
        let c = compare(&current, &baseline, 0.10);
        assert_eq!(c.rows.len(), 7);
        let row = |key: &str| {
            c.rows
                .iter()
                .find(|r| r.config.to_string() == key)
                .unwrap_or_else(|| panic!("{key}"))
        };
        assert!((row("pnet native drop 64B").ratio.unwrap() - 0.95).abs() < 1e-9);
        assert!(!row("pnet native drop 64B").regression);
        assert!((row("live native drop 64B").ratio.unwrap() - 0.8).abs() < 1e-9);
        assert!(row("live native drop 64B").regression);
        assert!((row("live generic drop 64B").ratio.unwrap() - 2.0).abs() < 1e-9);
        assert!(!row("live generic drop 64B").regression);
        // The baseline received nothing: no ratio, no regression.
        assert_eq!(row("live native drop 1500B").ratio, None);
        assert!(!row("live native drop 1500B").regression);
        let regressions: Vec<String> = c.regressions().map(|r| r.config.to_string()).collect();
        assert_eq!(regressions, ["live native drop 64B"]);
        assert!(c.has_regressions());
        assert_eq!(
            c.missing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["pnet - none 64B"]
        );
        assert_eq!(
            c.new.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["batched native drop 512B"]
        );
        assert!(!c.other_machine);
        let human = c.human();
        assert!(human.contains("REGRESSION"), "{human}");
        assert!(human.contains("missing: pnet - none 64B"), "{human}");
        assert!(human.contains("1 of 7 configurations regressed by more than 10%"));
        // A wider tolerance lets 20% through; threads are part of the key.
        assert!(!compare(&current, &baseline, 0.25).has_regressions());
        let mut threaded = sample();
        threaded.results[3].threads = 2;
        let c = compare(&threaded, &baseline, 0.10);
        assert_eq!(c.missing.len(), 1);
        assert_eq!(c.new[0].to_string(), "live native drop 64B x2");
        let mut other = sample();
        other.kernel = "6.1.0".to_owned();
        assert!(compare(&other, &baseline, 0.1).other_machine);
    }

    #[test]
    fn in_run_ratios_pair_programs_with_none_and_native_with_generic() {
        let ratios: Vec<String> = in_run_ratios(&sample().results)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            ratios,
            [
                "pnet 64B: drop native / none = 1.24",
                "pnet 64B: drop generic / none = 1.16",
                "live 64B: drop native / none = 13.00",
                "live 64B: drop generic / none = 3.23",
                "live 64B: pass native / none = 1.62",
                "pnet 64B: drop native / drop generic = 1.07",
                "live 64B: drop native / drop generic = 4.02",
            ]
        );
    }

    #[test]
    fn ratios_table_has_a_row_per_injector_and_size() {
        let text = ratios_table(&in_run_ratios(&sample().results));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "injector size  drop native / none  drop generic / none  pass native / none  drop native / drop generic",
                "pnet 64B                     1.24                 1.16                   -                        1.07",
                "live 64B                    13.00                 3.23                1.62                        4.02",
            ]
        );
        assert_eq!(ratios_table(&[]), "injector size\n");
    }

    #[test]
    fn json_round_trip() {
        let r = sample();
        let dir = std::env::temp_dir().join(format!("xdplab-results-{}", std::process::id()));
        let path = dir.join("sub/run.json");
        r.save(&path).unwrap();
        assert_eq!(BenchResults::load(&path).unwrap(), r);
        r.save_svg(&path.with_extension("svg")).unwrap();
        assert!(
            std::fs::read_to_string(path.with_extension("svg"))
                .unwrap()
                .starts_with("<?xml")
        );
        std::fs::write(&path, "{\"machine\": 3}").unwrap();
        let e = BenchResults::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!(
            "failed to read results file {}: not an xdplab bench results file: ",
            path.display()
        )));
        let e = BenchResults::load(&dir.join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("No such file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The record mirrors [`Measurement`] field for field: a measurement's JSON reads back
    /// into a record and writes out the same.
    #[test]
    fn measurement_round_trips_through_json() {
        let m = Measurement {
            injector: InjectorKind::Batched,
            mode: "generic".to_owned(),
            program: "pass".to_owned(),
            size: 512,
            threads: 1,
            flows: 1,
            seconds: 1.002,
            offered: 1000,
            accepted: 990,
            errors: 10,
            received: 980,
            oracle: "rx_packets".into(),
            map: None,
            offered_pps: 998.0,
            rx_pps: 978.0,
            map_pps: None,
            cpu: 1.2,
            sender_cpu: 0.7,
            loss: 10,
            notes: vec!["x".to_owned()],
            ns_per_frame: Some(12.5),
            per_thread: Vec::new(),
        };
        let json = serde_json::to_value(&m).unwrap();
        let record: MeasurementRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(record, m);
        assert_eq!(serde_json::to_value(&record).unwrap(), json);
    }

    #[test]
    fn dates_and_rates() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_607_200);
        assert_eq!(utc_date(t), "2026-11-25T11:46:40Z");
        assert_eq!(utc_stamp(t), "20261125T114640Z");
        assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // A leap day.
        assert_eq!(
            utc_date(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(format_pps(950.0), "950 pps");
        assert_eq!(format_pps(85_300.0), "85.3 kpps");
        assert_eq!(format_pps(16_900_000.0), "16.9 Mpps");
        assert_eq!(format_pps(250_000.0), "250 kpps");
        assert_eq!(format_pps(f64::NAN), "-");
    }

    #[test]
    fn table_lists_every_result() {
        let text = table(&sample().results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 9);
        assert!(
            lines[0].starts_with("injector  mode     program   size  offered pps"),
            "{text}"
        );
        assert!(lines[4].contains("16.9 Mpps (rx_xdp_drops)"), "{text}");
        assert!(lines[4].contains("1.50 (0.90)"), "{text}");
    }

    #[test]
    fn machine_and_kernel_of_this_host() {
        let m = Machine::current();
        assert!(m.cores >= 1);
        assert!(!m.cpu.is_empty());
        assert!(!kernel_release().is_empty());
    }
}
