//! Time per scenario, next to the lab's own build-and-teardown time measured in the same run:
//! how much a simple scenario costs beyond the namespaces and veth pair it needs.
//!
//! The scenarios are the bundled ones that are neither lifecycle sequences (`[[step]]`), flows
//! (`[[flow]]`) nor throughput measurements (`[throughput]`): frames sent, verdicts judged,
//! maps checked. Each round builds and tears down one bare lab, measures the kernel's floor
//! (the same lab with a program loaded, attached in native mode and detached), and then runs
//! every scenario once through `xdplab::scenario::run::run` (the path `xdplab run` takes), so
//! machine noise falls on all alike. After the rounds it prints each scenario's median, the
//! median of those medians, the lab's median, their ratio against the target (a scenario's
//! median at most 4 times the lab's), and the scenarios' median against the floor.
//!
//! ```text
//! cargo bench -p xdplab-benches --bench scenario_time   # as root, about a minute
//! ```
//!
//! A scenario that does not pass is reported and fails the bench: its time would not mean
//! what the others mean.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use xdplab::kernel::program::{ObjectSource, Program, XdpMode};
use xdplab::{
    report::Status,
    scenario::{self, Scenario},
    topology::lab::{Lab, LabConfig},
};

/// The ratio of median scenario time to median lab time the engine should stay under.
const TARGET_RATIO: f64 = 4.0;

/// Rounds of (one lab, every scenario once); smoke mode runs two.
fn rounds() -> usize {
    if xdplab_benches::smoke() { 2 } else { 7 }
}

/// The bundled scenarios this benchmark times, in file order.
fn simple_scenarios() -> Vec<Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("scenarios");
    let files = scenario::discover(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    files
        .iter()
        .map(|f| scenario::load(f).unwrap_or_else(|e| panic!("{e}")))
        .filter(|s| {
            s.steps.is_empty() && s.flows.is_empty() && s.throughput.is_none() && s.skip.is_none()
        })
        .collect()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, selects scenarios by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if !xdplab_benches::gate("scenario time benchmark") {
        return;
    }
    let scenarios: Vec<Scenario> = simple_scenarios()
        .into_iter()
        .filter(|s| filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    assert!(!scenarios.is_empty(), "no bundled scenario to time");
    let config = LabConfig::default();
    let mut lab_times = Vec::new();
    let mut floor_times = Vec::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); scenarios.len()];
    let mut failed: Vec<(PathBuf, String)> = Vec::new();
    for _ in 0..rounds() {
        let start = Instant::now();
        drop(Lab::new(&config).unwrap_or_else(|e| panic!("failed to build lab: {e}")));
        lab_times.push(start.elapsed());
        floor_times.push(floor(&config));
        for (s, times) in scenarios.iter().zip(&mut times) {
            let start = Instant::now();
            let report = scenario::run::run(s);
            times.push(start.elapsed());
            if report.status == Status::Fail {
                failed.push((s.path.clone(), report.human()));
            }
        }
    }
    let lab = median(&mut lab_times);
    let floor = median(&mut floor_times);
    let mut medians = Vec::new();
    for (s, times) in scenarios.iter().zip(&mut times) {
        let m = median(times);
        println!(
            "scenario {:<28} median {:>7.1} ms ({:.1}x the lab)",
            s.name,
            ms(m),
            ms(m) / ms(lab)
        );
        medians.push(m);
    }
    let scenario_median = median(&mut medians);
    let ratio = ms(scenario_median) / ms(lab);
    println!(
        "lab build + teardown: median {:.2} ms over {} labs",
        ms(lab),
        lab_times.len()
    );
    println!(
        "scenario: median of {} scenario medians {:.1} ms = {:.1}x the lab's median \
         (target: at most {TARGET_RATIO}x): {}",
        scenarios.len(),
        ms(scenario_median),
        ratio,
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "kernel floor (the same lab, xdp_drop loaded, attached in native mode and detached): \
         median {:.1} ms = {:.1}x the lab; the scenarios' median is {:.1}x that floor",
        ms(floor),
        ms(floor) / ms(lab),
        ms(scenario_median) / ms(floor)
    );
    if !failed.is_empty() {
        for (path, text) in &failed {
            eprintln!("{}: failed while timed:\n{text}", path.display());
        }
        panic!("{} scenario run(s) failed while timed", failed.len());
    }
}

/// What any live scenario costs the kernel before it sends a frame: a lab, a program loaded
/// (the verifier), attached in native mode and detached (veth waits for an RCU grace period
/// at each); the engine's own cost is what a scenario takes beyond it.
fn floor(config: &LabConfig) -> Duration {
    let start = Instant::now();
    let lab = Lab::new(config).unwrap_or_else(|e| panic!("failed to build lab: {e}"));
    let mut program = Program::load(&ObjectSource::Bundled("xdp_drop".into()), "xdp_drop_all")
        .unwrap_or_else(|e| panic!("{e}"));
    let attachment = program
        .attach(lab.receiver(), XdpMode::Native)
        .unwrap_or_else(|e| panic!("{e}"));
    attachment.detach().unwrap_or_else(|e| panic!("{e}"));
    drop(program);
    drop(lab);
    start.elapsed()
}
