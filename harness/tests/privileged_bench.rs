//! `xdplab bench` as users run it: a short measurement, the results file and chart it saves,
//! `--compare` and its exit codes. Measuring needs root; argument and baseline checks do not.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use xdplab::{
    bench::results::BenchResults,
    host::privileges,
    host::requires::{self, Feature, Requirement},
};

fn xdplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(args)
        .output()
        .expect("xdplab runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("xdplab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn bad_arguments_and_baselines_exit_2_before_measuring() {
    for args in [
        &["bench", "--size", "59"][..],
        &["bench", "--duration", "3"],
        &["bench", "--program", "xdp_drop"],
        &["bench", "--tolerance", "0.2"],
        &["bench", "--compare", "x.json", "--tolerance", "1.5"],
        &["bench", "--no-save", "--out", "x.json"],
        &["bench", "--flows", "0"],
        &["bench", "--flows", "65537"],
        &["bench", "--threads", "0"],
    ] {
        let out = xdplab(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let dir = TempDir::new("bench-args");
    let missing = dir.path("missing.json");
    let out = xdplab(&["bench", "--compare", &missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("failed to read results file {missing}")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bench_saves_charts_and_compares() {
    if !privileges::gate("bench_saves_charts_and_compares") {
        return;
    }
    // It measures with the live injector.
    if !requires::gate(
        "bench_saves_charts_and_compares",
        &[Requirement::Feature(Feature::LiveFrames)],
    ) {
        return;
    }
    let dir = TempDir::new("bench");
    let json = dir.path("run.json");
    let one = [
        "bench",
        "--injector",
        "live",
        "--program",
        "drop,none",
        "--mode",
        "native",
        "--size",
        "64",
        "--duration",
        "200ms",
    ];
    let out = xdplab(&[&one[..], &["--out", &json]].concat());
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("[1/2] live native drop 64B ... "),
        "{stderr}"
    );
    assert!(stderr.contains("[2/2] live - none 64B ... "), "{stderr}");
    assert!(stdout.starts_with("injector  mode"), "{stdout}");
    assert!(stdout.contains("live 64B"), "the ratios: {stdout}");
    let saved = BenchResults::load(Path::new(&json)).expect("results file");
    assert_eq!(saved.results.len(), 2);
    assert!(saved.results.iter().all(|r| r.received > 0), "{saved:?}");
    let svg = std::fs::read_to_string(dir.path("run.svg")).expect("chart beside the file");
    assert_eq!(svg.matches(r#"<rect class="bar""#).count(), 2);

    // Against itself made ten times faster: every configuration regressed, exit 1.
    let mut faster = saved.clone();
    for r in &mut faster.results {
        r.rx_pps *= 10.0;
    }
    let baseline = dir.path("faster.json");
    faster.save(Path::new(&baseline)).unwrap();
    let out = xdplab(&[&one[..], &["--no-save", "--compare", &baseline]].concat());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("REGRESSION"), "{stdout}");
    assert!(
        stdout.contains("2 of 2 configurations regressed by more than 10%"),
        "{stdout}"
    );

    // JSON on stdout: the results file's fields, the ratios, the comparison.
    let out = xdplab(
        &[
            &one[..],
            &[
                "--no-save",
                "--format",
                "json",
                "--compare",
                &json,
                "--tolerance",
                "0.9",
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["ratios"][0]["measured"], "drop native");
    assert_eq!(doc["comparison"]["rows"].as_array().map(Vec::len), Some(2));
}
