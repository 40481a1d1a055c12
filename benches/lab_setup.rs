//! Time to build and tear down the two-namespace lab (`xdplab::topology::lab::Lab::new`, then drop):
//! what every scenario and every throughput sample pays before its first frame. Target: a
//! median under 15 ms.
//!
//! Criterion reports the time per lab; after it, this bench prints the median and the 90th
//! percentile over every lab it built, and whether the median meets the target.
//!
//! ```text
//! cargo bench -p xdplab-benches --bench lab_setup      # as root, about 10 seconds
//! ```

use std::{
    hint::black_box,
    sync::Mutex,
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode};
use xdplab::topology::lab::{Lab, LabConfig};
use xdplab_benches::Timing;

/// The median a lab's build and teardown should stay under.
const TARGET: Duration = Duration::from_millis(15);

fn lab_setup(c: &mut Criterion, each: &Mutex<Vec<Duration>>) {
    let timing = Timing::lab_setup();
    let config = LabConfig::default();
    let mut group = c.benchmark_group("lab");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(timing.sample_size)
        .warm_up_time(timing.warm_up)
        .measurement_time(timing.measurement);
    group.bench_function("build-and-teardown", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut times = Vec::new();
            for _ in 0..iters {
                let start = Instant::now();
                let lab = Lab::new(&config).unwrap_or_else(|e| panic!("failed to build lab: {e}"));
                drop(black_box(lab));
                let took = start.elapsed();
                total += took;
                times.push(took);
            }
            each.lock().expect("not poisoned").extend(times);
            total
        });
    });
    group.finish();
}

/// The `q` quantile (0..=1) of sorted times.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at]
}

fn main() {
    if !xdplab_benches::gate("lab setup benchmark") {
        return;
    }
    let each = Mutex::new(Vec::new());
    let mut c = Criterion::default().configure_from_args();
    lab_setup(&mut c, &each);
    c.final_summary();
    let mut times = each.into_inner().expect("not poisoned");
    if times.is_empty() {
        return;
    }
    times.sort();
    let median = quantile(&times, 0.5);
    println!(
        "lab build + teardown: median {:.2} ms, p90 {:.2} ms over {} labs (target: median < {} ms): {}",
        median.as_secs_f64() * 1e3,
        quantile(&times, 0.9).as_secs_f64() * 1e3,
        times.len(),
        TARGET.as_millis(),
        if median < TARGET { "met" } else { "MISSED" }
    );
}
