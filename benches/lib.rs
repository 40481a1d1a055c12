//! Shared settings of xdplab's criterion benchmarks (`throughput.rs`, `lab_setup.rs`): the
//! privilege gate, and how long each benchmark runs, normally or in smoke mode.
//!
//! Smoke mode (`XDPLAB_BENCH_SMOKE=1`) runs every benchmark with criterion's smallest sample
//! size and a 50 ms window, so CI can check that all of them still run in a minute or two.
//! Its numbers are not worth keeping.

use std::time::Duration;

/// The environment variable that turns smoke mode on (`1`).
pub const SMOKE_ENV: &str = "XDPLAB_BENCH_SMOKE";

/// Criterion's smallest sample size.
pub const MIN_SAMPLES: usize = 10;

/// Whether smoke mode is on.
pub fn smoke() -> bool {
    std::env::var(SMOKE_ENV).is_ok_and(|v| v == "1")
}

/// How criterion samples a benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Samples per benchmark.
    pub sample_size: usize,
    /// Criterion's warm-up time.
    pub warm_up: Duration,
    /// Criterion's target time for all samples together.
    pub measurement: Duration,
    /// How long one measurement sends (throughput only): each sample is one fresh lab and one
    /// window of traffic.
    pub window: Duration,
}

impl Timing {
    /// Throughput benchmarks: 10 samples of one 1 s window each (36 benchmarks, about 8
    /// minutes in all); smoke: 10 samples of 50 ms. Windows shorter than a second read low:
    /// each includes the injector's start.
    ///
    /// Every sample builds a lab and sends for one window whatever iteration count criterion
    /// asks for, so the warm-up is a single sample, and the target time is set to twice what
    /// the samples take (criterion warns whenever a sample gets a single iteration); its
    /// "estimated" time is therefore about twice the real one.
    pub fn throughput() -> Timing {
        // A sample's cost beyond its window: lab, program, settling, teardown.
        let (window, overhead) = if smoke() {
            (Duration::from_millis(50), Duration::from_millis(150))
        } else {
            (Duration::from_secs(1), Duration::from_millis(200))
        };
        Timing {
            sample_size: MIN_SAMPLES,
            warm_up: Duration::from_millis(1),
            measurement: (window + overhead) * 2 * MIN_SAMPLES as u32,
            window,
        }
    }

    /// Lab setup: 30 samples over 5 s after 1 s of warm-up; smoke: 10 samples over 500 ms
    /// (50 ms each, a few labs per sample).
    pub fn lab_setup() -> Timing {
        if smoke() {
            Timing {
                sample_size: MIN_SAMPLES,
                warm_up: Duration::from_millis(1),
                measurement: Duration::from_millis(50) * MIN_SAMPLES as u32,
                window: Duration::ZERO,
            }
        } else {
            Timing {
                sample_size: 30,
                warm_up: Duration::from_secs(1),
                measurement: Duration::from_secs(5),
                window: Duration::ZERO,
            }
        }
    }
}

/// Whether the benchmark may run: without the privileges a lab needs it prints
/// `SKIP: <bench>: <reason>` and returns `false` (and fails instead when
/// `XDPLAB_REQUIRE_PRIVILEGES=1`, as CI sets).
pub fn gate(bench: &str) -> bool {
    xdplab::host::privileges::gate(bench)
}
