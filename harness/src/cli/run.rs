//! `xdplab run`: loads every scenario, checks every object, then runs each scenario through
//! its path (or every `--paths` path) and prints the report.

use super::{
    CliError, Format, args::RunArgs, environment_ready, load_all, report_interrupt, start_run,
    worst,
};
use crate::{
    exit::{Classify as _, Exit},
    interrupt,
    report::RunReport,
    scenario::run::{self, RunOptions},
};

/// Runs of up to this many scenarios keep the programs their checks loaded until each
/// scenario runs.
const KEEP_CHECKED: usize = 64;

/// Runs the scenarios `args` name; the exit is the worst of their outcomes.
pub(super) fn run(args: &RunArgs) -> Result<Exit, CliError> {
    let scenarios = match load_all(&args.files) {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    // Where the run writes is checked before it runs: an unwritable --junit or --capture
    // would otherwise be found after every scenario ran (and --capture only on a failure).
    check_outputs(args)?;
    if !environment_ready() {
        return Ok(Exit::Environment);
    }
    if let Err(exit) = start_run() {
        return Ok(exit);
    }
    // Objects too are checked before any lab is built, so an unusable one anywhere stops the
    // run with its location rather than after the scenarios before it.
    // What the checks loaded is kept for the scenario's run, so each object is loaded once;
    // a large run loads them again rather than hold every scenario's programs and maps at once.
    let keep = scenarios.len() <= KEEP_CHECKED;
    let mut unusable = Exit::Pass;
    let mut checked = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        match run::check_and_keep(scenario) {
            Ok(kept) => checked.push(kept.filter(|_| keep)),
            Err(e) => {
                eprintln!("xdplab: {e}");
                unusable = worst(unusable, Exit::from(e.class()));
                checked.push(None);
            }
        }
    }
    if unusable != Exit::Pass {
        return Ok(unusable);
    }
    let options = RunOptions {
        capture_dir: args.capture.clone(),
        capture_format: args.capture_format,
        run_id: None,
        no_throughput: args.no_throughput,
    };
    let mut report = RunReport::default();
    for (scenario, checked) in scenarios.iter().zip(checked) {
        let chosen = if args.paths.is_empty() {
            vec![run::scenario_path(scenario)]
        } else {
            args.paths.clone()
        };
        let (results, differences) = run::run_paths_checked(scenario, &chosen, &options, checked);
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
            if args.format == Format::Human {
                println!("{}", result.human());
            }
            environment |= result.exit() == Exit::Environment;
            report.scenarios.push(result);
        }
        for difference in differences {
            if args.format == Format::Human {
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
    match args.format {
        Format::Human => println!("{}", report.summary()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.json())?),
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit()).map_err(|source| CliError::Junit {
            path: path.clone(),
            source,
        })?;
    }
    Ok(report.exit())
}

/// Checks that `--junit FILE` and `--capture DIR` can be written, by writing: the directory is
/// made if missing and a probe file is created in it and removed; the report file is opened
/// for appending (so an existing one is not lost if the run stops) and removed again if the
/// probe made it.
fn check_outputs(args: &RunArgs) -> Result<(), CliError> {
    use std::fs;
    if let Some(dir) = &args.capture {
        let probe = || -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let file = dir.join(format!(".xdplab-probe-{}", std::process::id()));
            fs::File::create(&file)?;
            fs::remove_file(&file)
        };
        probe().map_err(|source| CliError::CaptureDir {
            path: dir.clone(),
            source,
        })?;
    }
    if let Some(path) = &args.junit {
        let existed = path.exists();
        fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|_| {
                if existed {
                    Ok(())
                } else {
                    fs::remove_file(path)
                }
            })
            .map_err(|source| CliError::Junit {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}
