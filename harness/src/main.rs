//! The `xdplab` command: parses arguments, runs the library, maps outcomes to exit codes.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use xdplab::{
    exit::{self, Exit},
    privileges,
    report::RunReport,
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
        /// Write a pcap per interface of every failing scenario into DIR.
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
    },
    /// List scenarios and what each checks (no privileges needed).
    #[command(after_help = exit::HELP)]
    List {
        /// Scenario files or directories of *.toml files.
        #[arg(default_value = "scenarios")]
        files: Vec<PathBuf>,
    },
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
        } => run(&files, format, junit.as_deref(), &paths, capture),
        Command::List { files } => Ok(list(&files)),
    }
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
) -> anyhow::Result<Exit> {
    let scenarios = match load_all(files) {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    if let Err(reason) = privileges::check() {
        eprintln!("xdplab: cannot build labs: {reason}");
        return Ok(Exit::Environment);
    }
    let options = RunOptions {
        capture_dir: capture,
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
        let object = match &s.program.object {
            scenario::ObjectRef::Bundled(name) => name.clone(),
            scenario::ObjectRef::Path(path) => path.display().to_string(),
        };
        let mode = match s.program.mode {
            scenario::XdpModeSpec::Native => "native",
            scenario::XdpModeSpec::Generic => "generic",
        };
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
    }
    Exit::Pass
}
