//! The command line's shape: clap's derive structs for `xdplab` and its subcommands, their
//! help texts, and the value parsers they need. Nothing here runs anything.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    exit, frame::pcap::CaptureFormat, kernel::program::XdpMode, scenario, scenario::run::ExecPath,
};

/// `xdplab`: what the binary parses and [`super::dispatch`] runs.
#[derive(Debug, Parser)]
#[command(
    name = "xdplab",
    version,
    about = "Test XDP programs on veth labs: verdicts, map counters and kernel counters, from scenario files",
    after_help = exit::HELP
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one module of [`crate::cli`] each.
#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only move a few hundred bytes"
)]
pub enum Command {
    /// Run scenarios: one PASS/FAIL/SKIP line each (needs root).
    #[command(after_help = exit::HELP)]
    Run(RunArgs),
    /// List scenarios and what each checks (no privileges needed).
    #[command(after_help = exit::HELP)]
    List(ListArgs),
    /// Measure throughput: frames per second the receiver absorbs, for each injector, mode,
    /// program and frame size (needs root).
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// Check what xdplab needs on this machine, with the fix for whatever is missing.
    ///
    /// Privileges, bpffs, kernel version, BTF, veth native XDP, live frames; bpftool and clang
    /// are optional.
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Remove what killed xdplab processes left behind (bpffs mounts under /run/xdplab of
    /// processes that are gone); never anything of a live process (needs root).
    #[command(after_help = CLEAN_HELP)]
    Clean(CleanArgs),
}

/// `xdplab run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files or directories of *.toml files.
    #[arg(default_value = "scenarios")]
    pub files: Vec<PathBuf>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run every scenario through each of these execution paths and compare them frame
    /// by frame (default: the mode each scenario names).
    #[arg(long, value_delimiter = ',', value_name = "PATH,...")]
    pub paths: Vec<ExecPath>,
    /// Write a capture file per interface of every failing scenario into DIR.
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,
    /// The format of those files: pcap (tcpdump's) or pcapng (Wireshark's default).
    #[arg(long, value_name = "FORMAT", default_value = "pcap")]
    pub capture_format: CaptureFormat,
    /// Do not measure `[throughput]` floors (frames, maps and flows are still judged): for a
    /// machine shared with other runs, where rates are the neighbours' as much as the
    /// program's.
    #[arg(long)]
    pub no_throughput: bool,
}

/// `xdplab list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Scenario files or directories of *.toml files.
    #[arg(default_value = "scenarios")]
    pub files: Vec<PathBuf>,
}

/// `xdplab doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `xdplab clean`.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

const DOCTOR_HELP: &str =
    "Checks, each ok, missing (required) or optional-missing, with what was found and the fix:
  CAP_BPF         in the effective set (CapEff), not assumed from uid 0; CAP_SYS_ADMIN
  CAP_NET_ADMIN   stands in for CAP_BPF
  CAP_SYS_ADMIN
  bpffs           a private bpffs can be mounted under /run/xdplab (and is removed again)
  /sys/fs/bpf     whether a bpffs is mounted there (informational: xdplab mounts its own)
  kernel          Linux 5.9+ (XDP through bpf_link); live frames need 5.18+
  btf             /sys/kernel/btf/vmlinux (the tp_btf counter of XDP_ABORTED)
  veth-native-xdp xdp_pass attached natively to a veth of a small lab, then detached
  live-frames     BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, 64 frames in that lab
                  (optional: only the live injector needs it)
  bpftool, clang  on PATH or not (optional)

xdplab run and xdplab bench make the checks that need no lab (capabilities, bpffs, kernel,
BTF) before anything else, and stop with exit 3 and the same explanation and fix when one is
missing.

Exit codes:
  0  everything required is present
  3  environment: something required is missing";

const CLEAN_HELP: &str =
    "A run killed with SIGKILL cannot clean up after itself. Its namespaces, veths, programs and
attachments go with the process (they are held by its file descriptors); only its bpffs mount
(/run/xdplab/<pid>-<n>, named after the process) can remain. `xdplab clean` unmounts and
removes those whose process is gone, and prints each. `xdplab run` and `xdplab bench` do the
same at start, with one line on stderr when they removed something.

Exit codes:
  0  nothing left, or everything found was removed
  3  environment: missing privileges, or a leftover could not be removed";

const BENCH_HELP: &str =
    "Each configuration builds a fresh lab, attaches the program (or none) to the
receiving veth and sends UDP frames from the other end for --duration. The received count
comes from the receiver's kernel counters, never from the sender.

Examples:
  xdplab bench                                   the whole matrix, 3s per configuration
  xdplab bench --injector live --program drop,none --size 64 --duration 1s
  xdplab bench --compare results/20261125T114628Z-205d0f6.json --tolerance 0.05
  xdplab bench --baseline v1/prog.bpf.o --object v2/prog.bpf.o --max-slowdown 5%

With --object (or --baseline), your objects are measured instead of the matrix: one lab (or
BPF_PROG_TEST_RUN with --injector test-run), --rounds rounds of one --window per object, in
the order A B, then B A, with BPF run-time statistics on for the measurement only; each
object's ns/frame (the kernel's run_time_ns / run_cnt) and rx pps, and per-round ratios
against the baseline. An object is SLOWER when its median ns/frame ratio minus 1 exceeds both
--max-slowdown and the noise (half the range of its per-round ratios).

Exit codes:
  0    measured (and, with --compare, nothing regressed)
  1    with --compare: a configuration's rx pps fell by more than --tolerance; with
       --max-slowdown: an object is slower than the baseline beyond the threshold and the noise
  2    bad input: unreadable --compare file, unusable configuration, unwritable --out
  3    environment: missing privileges or kernel features (xdplab doctor says which)
  130  interrupted by SIGINT (143: SIGTERM): the measurement in progress was abandoned, nothing
       was saved, and everything it built was removed";

/// `xdplab bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Programs on the receiving veth: xdp_drop, xdp_pass, or none (frames go to the stack)
    /// [default: drop,pass,none]
    #[arg(
        long = "program",
        value_enum,
        value_delimiter = ',',
        value_name = "PROGRAM"
    )]
    pub programs: Vec<ProgramArg>,
    /// Attach modes of the programs [default: native,generic]
    #[arg(long = "mode", value_enum, value_delimiter = ',', value_name = "MODE")]
    pub modes: Vec<XdpMode>,
    /// How frames are sent [default: pnet,batched,live]
    #[arg(
        long = "injector",
        value_enum,
        value_delimiter = ',',
        value_name = "INJECTOR"
    )]
    pub injectors: Vec<InjectorArg>,
    /// Frame sizes in bytes, without FCS, 60..=1514 [default: 64,512,1500]
    #[arg(long = "size", value_delimiter = ',', value_name = "BYTES", value_parser = parse_size)]
    pub sizes: Vec<usize>,
    /// How long each configuration sends: "500ms", "3s", "1m"
    #[arg(long, default_value = "3s", value_parser = scenario::parse_duration)]
    pub duration: Duration,
    /// CPUs the live injector sends from, one receive queue each; several values measure
    /// each in turn ("1,2") (the other injectors always use one)
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "1",
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub threads: Vec<u16>,
    /// Flows the live injector spreads its frames over: frame k is flow k % N, its IPv4
    /// addresses and UDP ports the template's plus k % N, checksums updated; several values
    /// measure each in turn ("1,1000") (the other injectors always send one flow)
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "1",
        value_parser = clap::value_parser!(u32).range(1..=65536)
    )]
    pub flows: Vec<u32>,
    /// Report format on stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Where to save the results (the help text is the `help` attribute: rustdoc would read
    /// its `<UTC time>` as HTML).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "no_save",
        help = "Save the results here (JSON), and a chart beside it (.svg) [default: results/<UTC time>-<commit>.json]"
    )]
    pub out: Option<PathBuf>,
    /// Do not save the results
    #[arg(long)]
    pub no_save: bool,
    /// Compare with an earlier results file, configuration by configuration
    #[arg(long, value_name = "FILE")]
    pub compare: Option<PathBuf>,
    /// With --compare: the fraction a configuration's rx pps may fall before it is a
    /// regression
    #[arg(long, default_value_t = 0.10, value_parser = parse_tolerance, requires = "compare")]
    pub tolerance: f64,
    /// Your own object (repeatable): the objects are measured in interleaved windows and
    /// compared with the baseline, instead of the matrix
    #[arg(long = "object", value_name = "PATH", conflicts_with = "programs")]
    pub objects: Vec<PathBuf>,
    /// The XDP program of the objects: once for all, or once per --object in order (needed
    /// only for an object with several XDP programs)
    #[arg(long = "entry", value_name = "NAME")]
    pub entries: Vec<String>,
    /// The object the others are compared with: one of --object, or one more object measured
    /// first [default: the first --object]
    #[arg(long, value_name = "PATH", conflicts_with = "programs")]
    pub baseline: Option<PathBuf>,
    /// What the objects are sent: a capture (.pcap, .pcapng) or a scenario's send groups
    /// (.toml) [default: one UDP frame of --size]
    #[arg(long, value_name = "FILE")]
    pub traffic: Option<PathBuf>,
    /// With --object: how long each window lasts
    #[arg(long, default_value = "500ms", value_parser = scenario::parse_duration)]
    pub window: Duration,
    /// With --object: rounds of windows (each object gets one window per round)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 6,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    pub rounds: u16,
    /// With --object: exit 1 when an object is slower than the baseline by more than this
    /// ("5%" or 0.05) and by more than the run's noise
    #[arg(long, value_name = "PERCENT", value_parser = parse_slowdown)]
    pub max_slowdown: Option<f64>,
    /// With --object: save the results in DIR [default: $CARGO_TARGET_DIR or target, under
    /// xdplab-bench/]
    #[arg(long, value_name = "DIR", conflicts_with_all = ["no_save", "out"])]
    pub save: Option<PathBuf>,
}

/// `--max-slowdown`: `5%` or `0.05`, in 0..10 (0% to 1000%).
fn parse_slowdown(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    };
    match value {
        Ok(v) if (0.0..10.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "invalid slowdown {text:?}: write a percentage (\"5%\") or a fraction (0.05)"
        )),
    }
}

/// `--program`: the bench's programs by their command-line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[expect(
    missing_docs,
    reason = "clap would print the variants' docs under \"Possible values\" in --help"
)]
pub enum ProgramArg {
    // No `///` on the variants of these value enums: clap would print them under
    // "Possible values" in --help.
    Drop,
    Pass,
    #[value(name = "none")]
    NoProgram,
}

/// `--injector`: the bench's injectors by their command-line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[expect(
    missing_docs,
    reason = "clap would print the variants' docs under \"Possible values\" in --help"
)]
pub enum InjectorArg {
    Pnet,
    Batched,
    Live,
    // With --object only: BPF_PROG_TEST_RUN, no lab.
    TestRun,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let size: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid frame size {text:?}: write a number of bytes"))?;
    if (60..=1514).contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "frame size {size} is out of range (60..=1514 bytes, without FCS)"
        ))
    }
}

fn parse_tolerance(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(t) if (0.0..1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "invalid tolerance {text:?}: write a fraction in 0..1 (0.10 lets rates fall 10%)"
        )),
    }
}

/// `--format`: the report on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[expect(
    missing_docs,
    reason = "clap would print the variants' docs under \"Possible values\" in --help"
)]
pub enum Format {
    Human,
    Json,
}
