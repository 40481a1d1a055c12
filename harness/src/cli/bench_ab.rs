//! `xdplab bench --object PATH ...`: the user's own objects measured in interleaved windows,
//! each one's cost per frame from the kernel, compared with the baseline, saved with a chart,
//! and, with `--max-slowdown`, a verdict in the exit code.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::{
    CliError, Format,
    args::{BenchArgs, InjectorArg},
    environment_ready, report_interrupt, start_run,
};
use crate::{
    bench::{
        BenchError, InjectorKind,
        ab::{self, AbConfig, AbPath, AbReport, BenchObject, Traffic, Verdict},
        results::{self, BenchResults},
    },
    exit::{Classify as _, Exit},
    interrupt,
    kernel::program::XdpMode,
};

/// Whether the arguments ask for an A/B run of the user's objects.
pub(super) fn wanted(args: &BenchArgs) -> bool {
    !args.objects.is_empty() || args.baseline.is_some()
}

/// `xdplab bench --object ...`.
pub(super) fn bench_objects(args: &BenchArgs) -> Result<Exit, CliError> {
    let config = match config(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("xdplab: {e}");
            return Ok(Exit::from(e.class()));
        }
    };
    let baseline_results = match super::bench::compared(args) {
        Ok(baseline) => baseline,
        Err(exit) => return Ok(exit),
    };
    if !environment_ready() {
        return Ok(Exit::Environment);
    }
    if let Err(exit) = start_run() {
        return Ok(exit);
    }
    eprintln!(
        "xdplab: {} object(s) on {}, {} round(s) of {:?} windows, traffic: {}",
        config.objects.len(),
        config.path,
        config.rounds,
        config.window,
        config.traffic.origin
    );
    let measured = ab::measure_ab(&config);
    if let Some(signal) = interrupt::requested() {
        report_interrupt(signal, "the A/B measurement", 0);
        return Ok(Exit::Interrupted(signal));
    }
    let report = match measured {
        Ok(report) => report,
        Err(e) => {
            eprintln!("xdplab: {e}");
            return Ok(Exit::from(e.class()));
        }
    };
    let results = BenchResults::new(super::bench::git_commit(), &report.measurements());
    let comparison = baseline_results
        .as_ref()
        .map(|(_, b)| results::compare(&results, b, args.tolerance));
    let mut exit = Exit::Pass;
    match args.format {
        Format::Human => {
            print!("{}", human(&report));
            println!("\n{}", results.describe());
            if let (Some(c), Some((path, b))) = (&comparison, &baseline_results) {
                println!("\ncompared with {} ({}):", path.display(), b.describe());
                print!("{}", c.human());
            }
        }
        Format::Json => {
            /// The results file's fields, then the A/B report and the comparison.
            #[derive(serde::Serialize)]
            struct Report<'a> {
                #[serde(flatten)]
                results: &'a BenchResults,
                ab: &'a AbReport,
                #[serde(skip_serializing_if = "Option::is_none")]
                comparison: Option<&'a results::Comparison>,
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Report {
                    results: &results,
                    ab: &report,
                    comparison: comparison.as_ref(),
                })?
            );
        }
    }
    if comparison
        .as_ref()
        .is_some_and(results::Comparison::has_regressions)
    {
        exit = Exit::Fail;
    }
    if report.has_slower() {
        exit = Exit::Fail;
    }
    if !args.no_save {
        let json = args.out.clone().unwrap_or_else(|| {
            args.save
                .clone()
                .unwrap_or_else(ab::default_results_dir)
                .join(ab::results_file_name(
                    &report,
                    &results::utc_stamp(SystemTime::now()),
                ))
        });
        let svg = json.with_extension("svg");
        let saved = save(&results, &report, &json).and_then(|()| results.save_svg(&svg));
        match saved {
            Ok(()) => eprintln!("xdplab: saved {} and {}", json.display(), svg.display()),
            Err(e) => {
                eprintln!("xdplab: {e}");
                exit = super::worst(exit, Exit::from(e.class()));
            }
        }
    }
    Ok(exit)
}

/// The results file of an A/B run: a [`BenchResults`] (one record per object, so `--compare`
/// reads it like any results file) with the whole A/B report under `ab`.
fn save(
    results: &BenchResults,
    report: &AbReport,
    path: &Path,
) -> Result<(), results::ResultsError> {
    let mut value = serde_json::to_value(results).expect("results serialize");
    value["ab"] = serde_json::to_value(report).expect("report serializes");
    let mut json = serde_json::to_string_pretty(&value).expect("json prints");
    json.push('\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| results::ResultsError::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    std::fs::write(path, json).map_err(|source| results::ResultsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The A/B run the arguments describe.
fn config(args: &BenchArgs) -> Result<AbConfig, BenchError> {
    let bad = |reason: String| BenchError::Config {
        config: "the objects".to_owned(),
        reason,
    };
    let mut paths: Vec<PathBuf> = args.objects.clone();
    let baseline = match &args.baseline {
        Some(b) => match paths.iter().position(|p| p == b) {
            Some(i) => i,
            None => {
                paths.insert(0, b.clone());
                0
            }
        },
        None => 0,
    };
    let threads = match args.threads.as_slice() {
        [one] => usize::from(*one),
        more => {
            return Err(bad(format!(
                "{} --threads values with --object: an A/B run measures one thread count",
                more.len()
            )));
        }
    };
    if args.flows != [1] {
        return Err(bad(
            "--flows with --object: an A/B run sends its traffic's own frames".to_owned(),
        ));
    }
    let entries: Vec<Option<&str>> = match args.entries.len() {
        0 => vec![None; paths.len()],
        1 => vec![Some(args.entries[0].as_str()); paths.len()],
        n if n == paths.len() => args.entries.iter().map(|e| Some(e.as_str())).collect(),
        n => {
            return Err(bad(format!(
                "{n} --entry for {} objects: give one for all, or one per object in order",
                paths.len()
            )));
        }
    };
    let mut objects = paths
        .iter()
        .zip(entries)
        .map(|(path, entry)| BenchObject::from_file(path, entry))
        .collect::<Result<Vec<_>, _>>()?;
    ab::unique_names(&mut objects);
    let one = |what: &str, n: usize| {
        if n > 1 {
            Err(bad(format!("with --object, give one {what}")))
        } else {
            Ok(())
        }
    };
    one("--injector", args.injectors.len())?;
    one("--mode", args.modes.len())?;
    one("--size", args.sizes.len())?;
    let mode = args.modes.first().copied().unwrap_or(XdpMode::Native);
    let path = match args.injectors.first().copied().unwrap_or(InjectorArg::Live) {
        InjectorArg::TestRun => AbPath::TestRun,
        InjectorArg::Pnet => AbPath::Lab {
            injector: InjectorKind::Pnet,
            mode,
        },
        InjectorArg::Batched => AbPath::Lab {
            injector: InjectorKind::Batched,
            mode,
        },
        InjectorArg::Live => AbPath::Lab {
            injector: InjectorKind::Live,
            mode,
        },
    };
    let traffic = match &args.traffic {
        None => Traffic::udp(args.sizes.first().copied().unwrap_or(64))?,
        Some(file) if file.extension().is_some_and(|e| e == "toml") => {
            let invalid = |reason: String| BenchError::Config {
                config: file.display().to_string(),
                reason,
            };
            let scenario = crate::scenario::load(file).map_err(|e| invalid(e.to_string()))?;
            let frames = crate::scenario::plan::send_frames(&scenario)
                .map_err(|e| invalid(e.to_string()))?;
            if frames.is_empty() {
                return Err(invalid("the scenario sends no frames".to_owned()));
            }
            Traffic {
                origin: format!("{} ({} frames)", file.display(), frames.len()),
                frames,
            }
        }
        Some(file) => Traffic::pcap(file)?,
    };
    Ok(AbConfig {
        objects,
        baseline,
        path,
        traffic,
        window: args.window,
        rounds: usize::from(args.rounds),
        threads,
        max_slowdown: args.max_slowdown,
    })
}

/// The report for people: one row per object, one row per comparison, then notes.
pub fn human(report: &AbReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} on {}, {} round(s) of {:.3}s windows (interleaved; kernel run-time statistics on)",
        report.traffic, report.path, report.rounds, report.window
    );
    let ns = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |n| format!("{n:.1}"));
    let test_run = report.path == AbPath::TestRun;
    let _ = writeln!(
        out,
        "\n{:<32} {:<18} {:>12} {:>14}{}",
        "object",
        "entry",
        "rx pps",
        "ns/frame",
        if test_run { "   test-run ns" } else { "" }
    );
    for o in &report.objects {
        let _ = writeln!(
            out,
            "{:<32} {:<18} {:>12} {:>14}{}{}",
            o.name,
            o.entry,
            results::format_pps(o.rx_pps),
            ns(o.ns_per_frame),
            if test_run {
                format!(" {:>14}", ns(o.test_run_ns))
            } else {
                String::new()
            },
            if o.baseline { "  (baseline)" } else { "" }
        );
    }
    if !report.ratios.is_empty() {
        let _ = writeln!(
            out,
            "\nagainst the baseline, median (min..max) of the per-round ratios:"
        );
        let _ = writeln!(
            out,
            "{:<32} {:>26} {:>26}  verdict",
            "object", "pps ratio", "ns/frame ratio"
        );
        for r in &report.ratios {
            let spread =
                |s: Option<ab::Spread>| s.map_or_else(|| "-".to_owned(), |s| s.to_string());
            let verdict = match r.verdict {
                None => format!(
                    "slowdown {:+.1}% (noise {:.1}%)",
                    r.slowdown * 100.0,
                    r.noise * 100.0
                ),
                Some(v) => format!(
                    "{} (slowdown {:+.1}%, noise {:.1}%, on {})",
                    match v {
                        Verdict::Ok => "ok",
                        Verdict::WithinNoise => "ok: within noise",
                        Verdict::Slower => "SLOWER",
                    },
                    r.slowdown * 100.0,
                    r.noise * 100.0,
                    match r.metric {
                        ab::CostMetric::NsPerFrame => "ns/frame",
                        ab::CostMetric::Pps => "pps",
                    }
                ),
            };
            let _ = writeln!(
                out,
                "{:<32} {:>26} {:>26}  {verdict}",
                r.object,
                spread(r.pps),
                spread(r.ns)
            );
        }
        if let Some(t) = report.max_slowdown {
            let slower = report
                .ratios
                .iter()
                .filter(|r| r.verdict == Some(Verdict::Slower))
                .count();
            let _ = writeln!(
                out,
                "{slower} of {} object(s) slower than the baseline beyond {:.1}% and the noise",
                report.ratios.len(),
                t * 100.0
            );
        }
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
