//! The `xdplab` command: parses arguments, runs the library, maps outcomes to exit codes.

use std::{
    io::{IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use xdplab::{
    bench::{self, BenchConfig, BenchError, BenchProgram, InjectorKind, MatrixFilter, Measurement},
    clean, doctor,
    exit::{self, Exit},
    interrupt,
    pcap::CaptureFormat,
    privileges,
    program::XdpMode,
    report::{FailureKind, RunReport},
    results::{self, BenchResults},
    scenario::{
        self, Scenario,
        run::{self, ExecPath, RunOptions},
    },
};

#[derive(Parser)]
#[command(
    name = "xdplab",
    version,
    about = "Test XDP programs on veth labs: verdicts, map counters and kernel counters, from scenario files",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios: one PASS/FAIL/SKIP line each (needs root).
    #[command(after_help = exit::HELP)]
    Run {
        /// Scenario files or directories of *.toml files.
        #[arg(default_value = "scenarios")]
        files: Vec<PathBuf>,
        /// Report format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Also write a JUnit XML report to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Run every scenario through each of these execution paths and compare them frame
        /// by frame (default: the mode each scenario names).
        #[arg(long, value_delimiter = ',', value_name = "PATH,...")]
        paths: Vec<ExecPath>,
        /// Write a capture file per interface of every failing scenario into DIR.
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
        /// The format of those files: pcap (tcpdump's) or pcapng (Wireshark's default).
        #[arg(long, value_name = "FORMAT", default_value = "pcap")]
        capture_format: CaptureFormat,
    },
    /// List scenarios and what each checks (no privileges needed).
    #[command(after_help = exit::HELP)]
    List {
        /// Scenario files or directories of *.toml files.
        #[arg(default_value = "scenarios")]
        files: Vec<PathBuf>,
    },
    /// Measure throughput: frames per second the receiver absorbs, for each injector, mode,
    /// program and frame size (needs root).
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// Check what xdplab needs on this machine, with the fix for whatever is missing.
    ///
    /// Privileges, bpffs, kernel version, BTF, veth native XDP, live frames; bpftool and clang
    /// are optional.
    #[command(after_help = DOCTOR_HELP)]
    Doctor {
        /// Report format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Remove what killed xdplab processes left behind (bpffs mounts under /run/xdplab of
    /// processes that are gone); never anything of a live process (needs root).
    #[command(after_help = CLEAN_HELP)]
    Clean {
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
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

Exit codes:
  0    measured (and, with --compare, nothing regressed)
  1    with --compare: a configuration's rx pps fell by more than --tolerance
  2    bad input: unreadable --compare file, unusable configuration, unwritable --out
  3    environment: missing privileges or kernel features (xdplab doctor says which)
  130  interrupted by SIGINT (143: SIGTERM): the measurement in progress was abandoned, nothing
       was saved, and everything it built was removed";

#[derive(clap::Args)]
struct BenchArgs {
    /// Programs on the receiving veth: xdp_drop, xdp_pass, or none (frames go to the stack)
    /// [default: drop,pass,none]
    #[arg(
        long = "program",
        value_enum,
        value_delimiter = ',',
        value_name = "PROGRAM"
    )]
    programs: Vec<ProgramArg>,
    /// Attach modes of the programs [default: native,generic]
    #[arg(long = "mode", value_enum, value_delimiter = ',', value_name = "MODE")]
    modes: Vec<XdpMode>,
    /// How frames are sent [default: pnet,batched,live]
    #[arg(
        long = "injector",
        value_enum,
        value_delimiter = ',',
        value_name = "INJECTOR"
    )]
    injectors: Vec<InjectorArg>,
    /// Frame sizes in bytes, without FCS, 60..=1514 [default: 64,512,1500]
    #[arg(long = "size", value_delimiter = ',', value_name = "BYTES", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// How long each configuration sends: "500ms", "3s", "1m"
    #[arg(long, default_value = "3s", value_parser = scenario::parse_duration)]
    duration: Duration,
    /// CPUs the live injector sends from (the others always use one)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    threads: u16,
    /// Report format on stdout
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Save the results here (JSON), and a chart beside it (.svg)
    /// [default: results/<UTC time>-<commit>.json]
    #[arg(long, value_name = "FILE", conflicts_with = "no_save")]
    out: Option<PathBuf>,
    /// Do not save the results
    #[arg(long)]
    no_save: bool,
    /// Compare with an earlier results file, configuration by configuration
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// With --compare: the fraction a configuration's rx pps may fall before it is a
    /// regression
    #[arg(long, default_value_t = 0.10, value_parser = parse_tolerance, requires = "compare")]
    tolerance: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgramArg {
    Drop,
    Pass,
    #[value(name = "none")]
    NoProgram,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InjectorArg {
    Pnet,
    Batched,
    Live,
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    // Behave like other Unix tools under `| head`: end quietly on a closed pipe instead of
    // panicking in println!.
    // SAFETY: resetting a signal disposition to its default before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            eprintln!("xdplab: {error:#}");
            ExitCode::from(Exit::Environment.code())
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Run {
            files,
            format,
            junit,
            paths,
            capture,
            capture_format,
        } => run(
            &files,
            format,
            junit.as_deref(),
            &paths,
            capture,
            capture_format,
        ),
        Command::List { files } => Ok(list(&files)),
        Command::Bench(args) => bench(&args),
        Command::Doctor { format } => doctor(format),
        Command::Clean { dry_run } => Ok(clean(dry_run)),
    }
}

/// `xdplab doctor`: every check, as a table or JSON.
fn doctor(format: Format) -> anyhow::Result<Exit> {
    let report = doctor::all();
    match format {
        Format::Human => print!("{}", report.table()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(report.exit())
}

/// The checks `run` and `bench` make before anything else (no lab: a few milliseconds). Prints
/// each missing one with its fix; `false` if the machine cannot run labs.
fn environment_ready() -> bool {
    let report = doctor::up_front();
    for check in report.missing() {
        eprintln!("xdplab: cannot build labs: {}", check.explain());
    }
    if report.ready() {
        true
    } else {
        eprintln!("xdplab: `xdplab doctor` runs every check");
        false
    }
}

/// `xdplab clean`: removes (or lists) the leftovers of dead xdplab processes.
fn clean(dry_run: bool) -> Exit {
    if !dry_run && let Err(reason) = privileges::check() {
        eprintln!("xdplab: cannot remove leftovers: {reason}");
        return Exit::Environment;
    }
    let sweep = clean::sweep(dry_run);
    let verb = if dry_run { "would remove" } else { "removed" };
    for leftover in &sweep.removed {
        println!("{verb} {leftover}");
    }
    for (leftover, error) in &sweep.failed {
        eprintln!("xdplab: failed to remove {leftover}: {error}");
    }
    if sweep.removed.is_empty() && sweep.failed.is_empty() {
        println!("nothing to clean");
    }
    if sweep.failed.is_empty() {
        Exit::Pass
    } else {
        Exit::Environment
    }
}

/// What every `run` and `bench` does first: installs the SIGINT/SIGTERM handlers and removes
/// the leftovers of killed runs, with one line on stderr if there were any.
fn start_run() -> Result<(), Exit> {
    if let Err(e) = interrupt::install() {
        eprintln!("xdplab: {e}");
        return Err(Exit::Environment);
    }
    let sweep = clean::sweep(false);
    if !sweep.removed.is_empty() {
        let what: Vec<String> = sweep.removed.iter().map(ToString::to_string).collect();
        eprintln!("xdplab: removed what killed runs left: {}", what.join(", "));
    }
    for (leftover, error) in &sweep.failed {
        eprintln!("xdplab: failed to remove {leftover}: {error}");
    }
    Ok(())
}

/// Says that a signal stopped the run and what was abandoned; the caller exits with
/// [`exit::interrupted`].
fn report_interrupt(signal: interrupt::Signal, abandoned: &str, completed: usize) {
    eprintln!(
        "xdplab: interrupted by {signal}: abandoned {abandoned} and removed everything it \
         built; {completed} completed before"
    );
}

/// Loads every scenario first, so a typo anywhere stops the run before any lab is built.
fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, Exit> {
    let files = scenario::discover(paths).map_err(|e| {
        eprintln!("xdplab: {e}");
        Exit::BadInput
    })?;
    let mut scenarios = Vec::new();
    let mut bad = false;
    for file in files {
        match scenario::load(&file) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("xdplab: {e}");
                bad = true;
            }
        }
    }
    if bad {
        Err(Exit::BadInput)
    } else {
        Ok(scenarios)
    }
}

fn run(
    files: &[PathBuf],
    format: Format,
    junit: Option<&Path>,
    paths: &[ExecPath],
    capture: Option<PathBuf>,
    capture_format: CaptureFormat,
) -> anyhow::Result<Exit> {
    let scenarios = match load_all(files) {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    if !environment_ready() {
        return Ok(Exit::Environment);
    }
    if let Err(exit) = start_run() {
        return Ok(exit);
    }
    // Objects too are checked before any lab is built, so an unusable one anywhere stops the
    // run with its location rather than after the scenarios before it.
    let mut unusable = Exit::Pass;
    for scenario in &scenarios {
        if let Err(e) = run::check_objects(scenario) {
            eprintln!("xdplab: {e}");
            unusable = worst(
                unusable,
                match e.kind() {
                    FailureKind::Input => Exit::BadInput,
                    FailureKind::Environment => Exit::Environment,
                },
            );
        }
    }
    if unusable != Exit::Pass {
        return Ok(unusable);
    }
    let options = RunOptions {
        capture_dir: capture,
        capture_format,
        run_id: None,
    };
    let mut report = RunReport::default();
    for scenario in &scenarios {
        let chosen = if paths.is_empty() {
            vec![run::scenario_path(scenario)]
        } else {
            paths.to_vec()
        };
        let (results, differences) = run::run_paths(scenario, &chosen, &options);
        if let Some(signal) = interrupt::requested() {
            // Its results are partial: drop them, and report nothing as if it had run.
            report_interrupt(
                signal,
                &format!("scenario {:?}", scenario.name),
                report.scenarios.len(),
            );
            return Ok(Exit::Interrupted(signal));
        }
        let mut environment = false;
        for result in results {
            if format == Format::Human {
                println!("{}", result.human());
            }
            environment |= result.exit() == Exit::Environment;
            report.scenarios.push(result);
        }
        for difference in differences {
            if format == Format::Human {
                println!("DIFF {difference}");
            }
            report.differences.push(difference);
        }
        if environment {
            // The machine will not get better for the next scenario.
            eprintln!("xdplab: stopping: the environment cannot run labs");
            break;
        }
    }
    match format {
        Format::Human => println!("{}", report.summary()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.json())?),
    }
    if let Some(path) = junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("failed to write JUnit report {}", path.display()))?;
    }
    Ok(report.exit())
}

fn list(paths: &[PathBuf]) -> Exit {
    let scenarios = match load_all(paths) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    for s in &scenarios {
        println!("{}  ({})", s.name, s.path.display());
        if let Some(description) = &s.description {
            println!("    {description}");
        }
        if let Some(reason) = &s.skip {
            println!("    skipped: {reason}");
        }
        if !s.requires.is_empty() {
            let requires: Vec<String> = s.requires.iter().map(ToString::to_string).collect();
            println!("    requires: {}", requires.join(", "));
        }
        let object = s.program.object.name();
        let mode = s.program.mode;
        for netns in &s.netns {
            println!("    netns {}", netns.describe());
        }
        println!("    program {object}:{} in {mode} mode", s.program.entry);
        for rule in &s.rules {
            println!("    rule: {}", rule.describe());
        }
        for g in &s.sends {
            println!(
                "    send {:?}: {} frame(s), expect {}",
                g.name, g.count, g.expect
            );
        }
        for m in &s.map_expects {
            println!("    expect map {}", m.describe());
        }
        if let Some(t) = &s.throughput {
            println!("    {}", t.describe());
        }
        for step in &s.steps {
            println!(
                "    step (line {}): {}",
                step.line,
                step.action.describe(&s.sends)
            );
        }
    }
    Exit::Pass
}

/// `xdplab bench`: measures the chosen configurations, prints them, saves them, compares them.
fn bench(args: &BenchArgs) -> anyhow::Result<Exit> {
    let baseline = match &args.compare {
        Some(path) => match BenchResults::load(path) {
            Ok(baseline) => Some((path, baseline)),
            Err(e) => {
                eprintln!("xdplab: {e}");
                return Ok(Exit::BadInput);
            }
        },
        None => None,
    };
    if !environment_ready() {
        return Ok(Exit::Environment);
    }
    if let Err(exit) = start_run() {
        return Ok(exit);
    }
    let (measurements, mut exit) = measure_all(&configs(args));
    if let Some(signal) = interrupt::requested() {
        report_interrupt(signal, "the measurement in progress", measurements.len());
        return Ok(Exit::Interrupted(signal));
    }
    if measurements.is_empty() {
        eprintln!("xdplab: nothing was measured");
        return Ok(worst(exit, Exit::Environment));
    }
    let results = BenchResults::new(git_commit(), &measurements);
    let ratios = results::in_run_ratios(&results.results);
    let comparison = baseline
        .as_ref()
        .map(|(_, b)| results::compare(&results, b, args.tolerance));

    match args.format {
        Format::Human => {
            print!("{}", results::table(&results.results));
            println!("\n{}", results.describe());
            if !ratios.is_empty() {
                println!("\nrx pps ratios within this run (compare these across machines):");
                print!("{}", results::ratios_table(&ratios));
            }
            if let (Some(c), Some((path, b))) = (&comparison, &baseline) {
                println!("\ncompared with {} ({}):", path.display(), b.describe());
                print!("{}", c.human());
            }
        }
        Format::Json => {
            /// The results file's fields, then the ratios and the comparison.
            #[derive(serde::Serialize)]
            struct Report<'a> {
                #[serde(flatten)]
                results: &'a BenchResults,
                ratios: &'a [results::InRunRatio],
                #[serde(skip_serializing_if = "Option::is_none")]
                comparison: Option<&'a results::Comparison>,
            }
            let report = Report {
                results: &results,
                ratios: &ratios,
                comparison: comparison.as_ref(),
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    if let Some(c) = &comparison {
        if c.other_machine {
            eprintln!(
                "xdplab: the baseline was measured on another machine or kernel: absolute rates \
                 differ for that alone; compare the ratios within each run"
            );
        }
        if c.has_regressions() {
            exit = worst(exit, Exit::Fail);
        }
    }
    if !args.no_save {
        let json = args.out.clone().unwrap_or_else(|| {
            PathBuf::from("results").join(format!(
                "{}-{}.json",
                results::utc_stamp(SystemTime::now()),
                results.commit
            ))
        });
        let svg = json.with_extension("svg");
        match results.save(&json).and_then(|()| results.save_svg(&svg)) {
            Ok(()) => eprintln!("xdplab: saved {} and {}", json.display(), svg.display()),
            Err(e) => {
                eprintln!("xdplab: {e}");
                exit = worst(exit, Exit::BadInput);
            }
        }
    }
    Ok(exit)
}

/// The configurations `args` select, in matrix order.
fn configs(args: &BenchArgs) -> Vec<BenchConfig> {
    fn chosen<A: Copy, T>(values: &[A], map: impl Fn(A) -> T) -> Option<Vec<T>> {
        (!values.is_empty()).then(|| values.iter().copied().map(map).collect())
    }
    let filter = MatrixFilter {
        programs: chosen(&args.programs, |p| match p {
            ProgramArg::Drop => BenchProgram::Drop,
            ProgramArg::Pass => BenchProgram::Pass,
            ProgramArg::NoProgram => BenchProgram::None,
        }),
        modes: chosen(&args.modes, |m| m),
        injectors: chosen(&args.injectors, |i| match i {
            InjectorArg::Pnet => InjectorKind::Pnet,
            InjectorArg::Batched => InjectorKind::Batched,
            InjectorArg::Live => InjectorKind::Live,
        }),
        sizes: (!args.sizes.is_empty()).then(|| args.sizes.clone()),
    };
    let mut configs = bench::matrix(&filter, args.duration);
    for config in &mut configs {
        if config.injector == InjectorKind::Live {
            config.threads = usize::from(args.threads);
        }
    }
    // A value given twice (--size 64,64) is measured once.
    let mut seen = std::collections::HashSet::new();
    configs.retain(|c| seen.insert(c.clone()));
    configs
}

/// Measures each configuration in turn, with a progress line on stderr. A failed
/// configuration is reported and skipped; one that no later configuration can get past (the
/// lab cannot be built, the configuration is unusable) ends the run.
fn measure_all(configs: &[BenchConfig]) -> (Vec<Measurement>, Exit) {
    let mut progress = Progress::new(configs.len());
    let mut measurements = Vec::new();
    let mut exit = Exit::Pass;
    for (i, config) in configs.iter().enumerate() {
        progress.start(i, config);
        let measured = bench::measure(config);
        if interrupt::requested().is_some() {
            // Cut short by the signal: not a measurement of the configuration.
            progress.interrupt();
            break;
        }
        match measured {
            Ok(m) => {
                progress.done(i, config, &m);
                measurements.push(m);
            }
            Err(e) => {
                progress.interrupt();
                match &e {
                    BenchError::Config { .. } => eprintln!("xdplab: {e}"),
                    _ => eprintln!("xdplab: failed to measure {config}: {e}"),
                }
                exit = worst(exit, bench_exit(&e));
                if matches!(e, BenchError::Lab(_) | BenchError::Config { .. }) {
                    eprintln!("xdplab: stopping: no other configuration can be measured either");
                    break;
                }
            }
        }
    }
    progress.finish();
    (measurements, exit)
}

/// The exit code a measurement error stands for.
fn bench_exit(error: &BenchError) -> Exit {
    match error {
        BenchError::Config { .. } => Exit::BadInput,
        BenchError::Program(e) if !e.is_environment() => Exit::BadInput,
        _ => Exit::Environment,
    }
}

/// The higher-priority of two exits: bad input, then environment, then failure.
fn worst(a: Exit, b: Exit) -> Exit {
    let rank = |e: Exit| match e {
        Exit::Pass => 0,
        Exit::Fail => 1,
        Exit::Environment => 2,
        Exit::BadInput => 3,
        // Never combined: an interrupted run returns at once.
        Exit::Interrupted(_) => 4,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// `[3/18] live native drop 64B ... 16.9 Mpps` on stderr: rewritten in place on a terminal,
/// one line per configuration otherwise.
struct Progress {
    total: usize,
    terminal: bool,
    open: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            terminal: std::io::stderr().is_terminal(),
            open: false,
        }
    }

    fn prefix(&self, i: usize, config: &BenchConfig) -> String {
        format!("[{}/{}] {config} ...", i + 1, self.total)
    }

    fn start(&mut self, i: usize, config: &BenchConfig) {
        if self.terminal {
            eprint!("\r\x1b[K{}", self.prefix(i, config));
            let _ = std::io::stderr().flush();
            self.open = true;
        }
    }

    fn done(&mut self, i: usize, config: &BenchConfig, m: &Measurement) {
        let line = format!(
            "{} {}",
            self.prefix(i, config),
            results::format_pps(m.rx_pps)
        );
        if self.terminal {
            eprint!("\r\x1b[K{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }

    /// Ends the line in place so a message can follow.
    fn interrupt(&mut self) {
        if self.open {
            eprintln!();
            self.open = false;
        }
    }

    fn finish(&mut self) {
        self.interrupt();
    }
}

/// The xdplab commit the binary was built from, `git rev-parse --short HEAD` in its source
/// tree, with `-dirty` when tracked files differ from it; `unknown` without git or a tree.
fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"])
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|hash| !hash.is_empty())
    else {
        return "unknown".to_owned();
    };
    let dirty =
        git(&["diff", "--quiet", "HEAD", "--"]).is_some_and(|out| out.status.code() == Some(1));
    if dirty { format!("{head}-dirty") } else { head }
}
