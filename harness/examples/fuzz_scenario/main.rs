//! A fuzzer for the scenario parser that needs only stable Rust: it mutates the bundled
//! scenarios and the malformed corpus with a seeded PRNG (see `mutate.rs`) and feeds each
//! result to `xdplab::scenario::parse` under `catch_unwind`. A panic, or an error whose message
//! does not start with the scenario's path, is a finding: the input is saved to `--out` and
//! the run exits 1.
//!
//! ```sh
//! cargo run --release --example fuzz_scenario -- --seconds 20
//! cargo run --release --example fuzz_scenario -- --seed 42 --iterations 100000
//! ```
//!
//! Both bounds always apply: the run stops at whichever of `--iterations` and `--seconds`
//! comes first. The same seed gives the same inputs, so a finding can be replayed.

use std::{
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant, SystemTime},
};

use clap::Parser;

mod mutate;

#[derive(Parser)]
#[command(about = "Fuzz the scenario parser with seeded mutations of known scenarios")]
struct Args {
    /// Stop after this many inputs.
    #[arg(long, default_value_t = 1_000_000)]
    iterations: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// PRNG seed [default: from the clock; printed, so the run can be replayed]
    #[arg(long)]
    seed: Option<u64>,
    /// Where inputs that crash the parser are written.
    #[arg(long, default_value = "target/fuzz-scenario")]
    out: PathBuf,
}

/// A file the mutations start from.
struct Seed {
    path: PathBuf,
    bytes: Vec<u8>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        eprintln!("fuzz_scenario: --seconds must be a positive number");
        return ExitCode::from(2);
    }
    let seeds = match seeds() {
        Ok(seeds) if !seeds.is_empty() => seeds,
        Ok(_) => {
            eprintln!("fuzz_scenario: no seed scenarios found");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("fuzz_scenario: failed to read the seed scenarios: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let others: Vec<Vec<u8>> = seeds.iter().map(|s| s.bytes.clone()).collect();
    // A panic is reported once, by the loop, with the input that caused it.
    panic::set_hook(Box::new(|_| {}));

    let limit = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut rng = mutate::Rng::new(seed);
    let mut done = 0u64;
    let mut findings = 0u64;
    let mut accepted = 0u64;
    while done < args.iterations && start.elapsed() < limit {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate::mutate(&mut rng, &base.bytes, &others);
        let text = String::from_utf8_lossy(&input);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            xdplab::scenario::parse(&text, &base.path)
        }));
        let finding = match outcome {
            Err(payload) => Some(format!("parser panicked: {}", panic_message(&payload))),
            Ok(Err(e)) if !e.to_string().starts_with(&base.path.display().to_string()) => Some(
                format!("error does not start with the scenario's path: {e}"),
            ),
            Ok(Ok(_)) => {
                accepted += 1;
                None
            }
            Ok(Err(_)) => None,
        };
        if let Some(finding) = finding {
            findings += 1;
            let saved = save(&args.out, seed, done, &input);
            eprintln!(
                "fuzz_scenario: input {done} (seed {seed}, from {}): {finding}; saved to {saved}",
                base.path.display()
            );
        }
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz_scenario: {done} inputs in {secs:.1} s ({:.0}/s) from {} seed files, seed {seed}: \
         {accepted} accepted, {findings} finding(s)",
        done as f64 / secs.max(1e-9),
        seeds.len()
    );
    if findings > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The bundled scenarios and the malformed corpus, with the paths they are parsed as (so
/// relative pcap and object paths resolve as in the originals).
fn seeds() -> std::io::Result<Vec<Seed>> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in [
        harness
            .parent()
            .expect("the workspace root")
            .join("scenarios"),
        harness.join("tests/fixtures/malformed"),
        harness.join("tests/fixtures/scenarios"),
    ] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path)?;
            seeds.push(Seed { path, bytes });
        }
    }
    Ok(seeds)
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Writes a finding to `dir`; returns where, or why it could not be saved.
fn save(dir: &Path, seed: u64, index: u64, input: &[u8]) -> String {
    let path = dir.join(format!("crash-{seed}-{index}.toml"));
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("nowhere ({}: {e})", path.display()),
    }
}
