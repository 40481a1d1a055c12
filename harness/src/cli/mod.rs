//! The `xdplab` command line as a library front end: `main.rs` parses [`Cli`] and hands it to
//! [`dispatch`], which returns the [`Exit`] the process ends with. One module per subcommand
//! (`run`, `list`, `bench`, `doctor`, `clean`), each calling the same public API a library
//! user has; the arguments' shape is in [`args`].
//!
//! Reports go to stdout, diagnostics to stderr, each prefixed `xdplab: `.

pub mod args;
mod bench;
mod bench_ab;
mod clean;
mod doctor;
mod list;
mod run;

use std::path::PathBuf;

pub use args::{BenchArgs, Cli, Command, Format};
use thiserror::Error;

use crate::{
    exit::{Classify, ErrorClass, Exit},
    host::clean as sweeper,
    host::doctor as checks,
    interrupt,
    scenario::{self, Scenario},
};

/// What stops a subcommand before it can decide its own exit: its report could not be
/// written. Everything else a subcommand meets ends as an [`Exit`].
#[derive(Debug, Error)]
pub enum CliError {
    /// `--junit FILE` could not be written.
    #[error("failed to write JUnit report {}: {source}", path.display())]
    Junit {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--capture DIR` is not a directory xdplab can write into.
    #[error("failed to use capture directory {}: {source}", path.display())]
    CaptureDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be serialized as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// An unwritable `--junit` file is the user's, like bench's `--out`; a report that cannot
/// be serialized is not.
impl Classify for CliError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Junit { .. } | Self::CaptureDir { .. } => ErrorClass::BadInput,
            Self::Json(_) => ErrorClass::Environment,
        }
    }
}

/// Runs the subcommand `cli` names, printing its report and diagnostics.
pub fn dispatch(cli: Cli) -> Result<Exit, CliError> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::List(args) => Ok(list::list(&args.files)),
        Command::Bench(args) if bench_ab::wanted(&args) => bench_ab::bench_objects(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Doctor(args) => doctor::doctor(args.format),
        Command::Clean(args) => Ok(clean::clean(args.dry_run)),
    }
}

/// The checks `run` and `bench` make before anything else (no lab: a few milliseconds). Prints
/// each missing one with its fix; `false` if the machine cannot run labs.
fn environment_ready() -> bool {
    let report = checks::up_front();
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

/// What every `run` and `bench` does first: installs the SIGINT/SIGTERM handlers and removes
/// the leftovers of killed runs, with one line on stderr if there were any.
fn start_run() -> Result<(), Exit> {
    if let Err(e) = interrupt::install() {
        eprintln!("xdplab: {e}");
        return Err(Exit::from(e.class()));
    }
    let sweep = sweeper::sweep(false);
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
/// [`crate::exit::interrupted`].
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
        Exit::from(e.class())
    })?;
    let mut scenarios = Vec::new();
    let mut exit = Exit::Pass;
    for file in files {
        match scenario::load(&file) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("xdplab: {e}");
                exit = worst(exit, Exit::from(e.class()));
            }
        }
    }
    if exit == Exit::Pass {
        Ok(scenarios)
    } else {
        Err(exit)
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
