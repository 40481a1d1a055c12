//! Packets per second the receiving veth absorbs: native XDP_DROP, generic XDP_DROP, native
//! XDP_PASS and no program at all, for each injector, at 64, 512 and 1500 bytes.
//!
//! Each sample is one [`xdplab::bench::measure`]: a fresh lab, the program, and one window of
//! traffic. The received count comes from the receiver's kernel counters. Criterion times
//! "iterations", so an iteration here is one received frame: a sample of `iters` iterations
//! reports the time those frames take at the measured rate, `iters * seconds / received`, and
//! with `Throughput::Elements(1)` criterion's `thrpt` reads as received packets per second.
//!
//! ```text
//! cargo bench -p xdplab-benches --bench throughput               # about 8 minutes, as root
//! cargo bench -p xdplab-benches --bench throughput -- throughput-live   # one injector
//! XDPLAB_BENCH_SMOKE=1 cargo bench -p xdplab-benches             # every bench, quickly
//! ```

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use xdplab::{
    bench::{self, BenchConfig, BenchProgram, InjectorKind},
    kernel::program::XdpMode,
};
use xdplab_benches::Timing;

const SIZES: [usize; 3] = [64, 512, 1500];

/// The configurations per injector and size: (name, program, mode).
fn programs() -> [(&'static str, BenchProgram, XdpMode); 4] {
    [
        ("native-drop", BenchProgram::Drop, XdpMode::Native),
        ("generic-drop", BenchProgram::Drop, XdpMode::Generic),
        ("native-pass", BenchProgram::Pass, XdpMode::Native),
        ("none", BenchProgram::None, XdpMode::Native),
    ]
}

/// Measures `config` once and returns the time `iters` received frames take at its rate.
fn time_per_frames(config: &BenchConfig, iters: u64) -> Duration {
    let m = bench::measure(config).unwrap_or_else(|e| panic!("failed to measure {config}: {e}"));
    assert!(
        m.received > 0,
        "failed to measure {config}: the receiver counted no frames in {:.3} s ({} offered, {} \
         accepted, {} send errors)",
        m.seconds,
        m.offered,
        m.accepted,
        m.errors
    );
    Duration::from_secs_f64(iters as f64 * m.seconds / m.received as f64)
}

fn throughput(c: &mut Criterion) {
    let timing = Timing::throughput();
    for injector in [
        InjectorKind::Pnet,
        InjectorKind::Batched,
        InjectorKind::Live,
    ] {
        let mut group = c.benchmark_group(format!("throughput-{injector}"));
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(timing.sample_size)
            .warm_up_time(timing.warm_up)
            .measurement_time(timing.measurement)
            .throughput(Throughput::Elements(1));
        for (name, program, mode) in programs() {
            for size in SIZES {
                let config = BenchConfig {
                    injector,
                    mode,
                    program: program.clone(),
                    size,
                    duration: timing.window,
                    threads: 1,
                    flows: 1,
                };
                group.bench_with_input(BenchmarkId::new(name, size), &config, |b, config| {
                    b.iter_custom(|iters| time_per_frames(config, iters));
                });
            }
        }
        group.finish();
    }
}

fn main() {
    if !xdplab_benches::gate("throughput benchmarks") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
