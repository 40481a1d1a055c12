//! `xdplab bench`: measures the configurations the arguments select, one fresh lab each,
//! prints them, saves them with a chart, and compares them with an earlier results file.

use std::{
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    time::SystemTime,
};

use super::{
    CliError, Format,
    args::{BenchArgs, InjectorArg, ProgramArg},
    environment_ready, report_interrupt, start_run, worst,
};
use crate::{
    bench::results::{self, BenchResults},
    bench::{self, BenchConfig, BenchError, BenchProgram, InjectorKind, MatrixFilter, Measurement},
    exit::{Classify as _, Exit},
    interrupt,
};

/// The results file `--compare` names, read before anything is measured; the exit when it
/// cannot be (said on stderr).
pub(super) fn compared(args: &BenchArgs) -> Result<Option<(&PathBuf, BenchResults)>, Exit> {
    args.compare
        .as_ref()
        .map(|path| {
            BenchResults::load(path).map(|b| (path, b)).map_err(|e| {
                eprintln!("xdplab: {e}");
                Exit::from(e.class())
            })
        })
        .transpose()
}

/// `xdplab bench`: measures the chosen configurations, prints them, saves them, compares them.
pub(super) fn bench(args: &BenchArgs) -> Result<Exit, CliError> {
    if let Some(message) = misplaced(args) {
        eprintln!("xdplab: {message}");
        return Ok(Exit::BadInput);
    }
    let baseline = match compared(args) {
        Ok(baseline) => baseline,
        Err(exit) => return Ok(exit),
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
            let threads = bench::threads_table(&measurements);
            if !threads.is_empty() {
                println!("\nper sending CPU (one receive queue each):");
                print!("{threads}");
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
                exit = worst(exit, Exit::from(e.class()));
            }
        }
    }
    Ok(exit)
}

/// Flags that only mean something with `--object`, given without it: the message.
fn misplaced(args: &BenchArgs) -> Option<String> {
    let mut given = Vec::new();
    if !args.entries.is_empty() {
        given.push("--entry");
    }
    if args.traffic.is_some() {
        given.push("--traffic");
    }
    if args.max_slowdown.is_some() {
        given.push("--max-slowdown");
    }
    if args.save.is_some() {
        given.push("--save");
    }
    if args.injectors.contains(&InjectorArg::TestRun) {
        given.push("--injector test-run");
    }
    (!given.is_empty()).then(|| {
        format!(
            "{} only apply to your own objects: add --object PATH",
            given.join(", ")
        )
    })
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
            InjectorArg::TestRun => unreachable!("refused without --object in bench()"),
        }),
        sizes: (!args.sizes.is_empty()).then(|| args.sizes.clone()),
    };
    // Each live configuration once per flow and thread count, side by side.
    let configs = bench::matrix(&filter, args.duration)
        .into_iter()
        .flat_map(|config| {
            let (flows, threads): (Vec<u32>, Vec<usize>) = if config.injector == InjectorKind::Live
            {
                (
                    args.flows.clone(),
                    args.threads.iter().map(|&n| usize::from(n)).collect(),
                )
            } else {
                (vec![1], vec![1])
            };
            flows
                .into_iter()
                .flat_map(|flows| threads.clone().into_iter().map(move |t| (flows, t)))
                .map(move |(flows, threads)| BenchConfig {
                    threads,
                    flows,
                    ..config.clone()
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    let mut configs = configs;
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
                exit = worst(exit, Exit::from(e.class()));
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
pub(super) fn git_commit() -> String {
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
