//! The malformed-scenario corpus (`tests/fixtures/malformed/`, described in its README): every
//! file holds one problem, and `xdplab run FILE` must exit 2 with exactly one message on
//! stderr that names `FILE:LINE` and the problem, print no report, never panic, and leave
//! nothing behind.
//!
//! Each file starts with four comment lines: `# problem:` (what is wrong), `# expect:` (a
//! fragment the message must contain), `# line:` (the line the message must name) and
//! `# level:`. `parse` files are refused while the file is read, before privileges are even
//! checked, so that test runs anywhere; `runtime` files parse (`xdplab list` accepts them) and
//! are refused when their object is loaded, before any lab is built, which needs privileges.

mod common;
use common::text;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use xdplab::host::privileges;

/// Where a problem is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// While the file is read and checked.
    Parse,
    /// When the object is loaded and its maps checked.
    Runtime,
}

#[derive(Debug)]
struct Case {
    path: PathBuf,
    problem: String,
    expect: String,
    line: usize,
    level: Level,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/malformed")
}

/// Every `*.toml` file of the corpus with its header, sorted by name.
fn cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory exists")
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.into_iter().map(|path| case(&path)).collect()
}

fn case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).expect("a readable corpus file");
    let header = |key: &str| -> String {
        text.lines()
            .take(4)
            .find_map(|l| l.strip_prefix(&format!("# {key}:")))
            .unwrap_or_else(|| panic!("{}: no \"# {key}:\" header line", path.display()))
            .trim()
            .to_owned()
    };
    Case {
        path: path.to_owned(),
        problem: header("problem"),
        expect: header("expect"),
        line: header("line")
            .parse()
            .unwrap_or_else(|e| panic!("{}: bad line header: {e}", path.display())),
        level: match header("level").as_str() {
            "parse" => Level::Parse,
            "runtime" => Level::Runtime,
            other => panic!("{}: unknown level {other:?}", path.display()),
        },
    }
}

/// Runs `xdplab ARGS...` and returns its output and process id.
fn xdplab(args: &[&str]) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xdplab starts");
    let pid = child.id();
    (child.wait_with_output().expect("xdplab ends"), pid)
}

/// What a run of `pid` could have left: bpffs directories and mounts under /run/xdplab and
/// lab links in this namespace, all named after the process id (other processes' are not
/// looked at: they may be live tests of other engineers).
fn leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("{pid}-");
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(xdplab::kernel::pin::RUN_DIR) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                found.push(format!("{}/{name}", xdplab::kernel::pin::RUN_DIR));
            }
        }
    }
    let mount = format!("{}/{prefix}", xdplab::kernel::pin::RUN_DIR);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&mount))
            .map(|l| format!("mount: {l}")),
    );
    let link = format!("xl-{pid}-");
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&link) {
                found.push(format!("link {name}"));
            }
        }
    }
    found
}

/// Every way `out` can fall short of "exit 2, one located message, nothing else"; empty if
/// it does not.
fn problems(case: &Case, command: &str, out: &Output, pid: u32) -> Vec<String> {
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    let mut bad = Vec::new();
    if out.status.code() != Some(2) {
        bad.push(format!("exit {:?}, not 2", out.status.code()));
    }
    if stdout.contains("panicked") || stderr.contains("panicked") {
        bad.push("panicked".to_owned());
    }
    if !stdout.is_empty() {
        bad.push("printed a report on stdout".to_owned());
    }
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.len() != 1 {
        bad.push(format!("{} lines on stderr, not one", lines.len()));
    }
    let location = format!("xdplab: {}:{}:", case.path.display(), case.line);
    if !stderr.starts_with(&location) {
        bad.push(format!("stderr does not start with {location:?}"));
    }
    if !stderr.contains(&case.expect) {
        bad.push(format!("stderr does not contain {:?}", case.expect));
    }
    bad.extend(
        leftovers(pid)
            .into_iter()
            .map(|l| format!("left behind {l}")),
    );
    if bad.is_empty() {
        return bad;
    }
    vec![format!(
        "{} ({}): `xdplab {command}`: {}\n  stdout: {stdout:?}\n  stderr: {stderr:?}",
        case.path.display(),
        case.problem,
        bad.join("; ")
    )]
}

#[test]
fn corpus_has_at_least_40_annotated_files() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} corpus files", cases.len());
    for c in &cases {
        assert!(!c.problem.is_empty(), "{}: empty problem", c.path.display());
        assert!(!c.expect.is_empty(), "{}: empty expect", c.path.display());
        assert!(c.line >= 1, "{}: line 0", c.path.display());
    }
    assert!(cases.iter().any(|c| c.level == Level::Parse));
    assert!(cases.iter().any(|c| c.level == Level::Runtime));
}

#[test]
fn parse_level_files_exit_2_with_one_located_message() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().iter().filter(|c| c.level == Level::Parse) {
        let file = case.path.to_str().expect("a UTF-8 path");
        // `list` needs no privileges and builds nothing: the file is refused while it is read.
        for command in ["run", "list"] {
            let (out, pid) = xdplab(&[command, file]);
            failures.extend(problems(case, command, &out, pid));
        }
        checked += 1;
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} files:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn privileged_runtime_level_files_exit_2_before_any_lab() {
    if !privileges::gate("privileged_runtime_level_files_exit_2_before_any_lab") {
        return;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().iter().filter(|c| c.level == Level::Runtime) {
        let file = case.path.to_str().expect("a UTF-8 path");
        // The file itself is fine: the problem only shows once the object is loaded.
        let (listed, _) = xdplab(&["list", file]);
        if listed.status.code() != Some(0) {
            failures.push(format!(
                "{}: `xdplab list` refused a runtime-level file: {}",
                case.path.display(),
                text(&listed.stderr)
            ));
            continue;
        }
        let (out, pid) = xdplab(&["run", file]);
        // No report on stdout (checked in `problems`) means no scenario ran: the object was
        // refused before any lab was built.
        failures.extend(problems(case, "run", &out, pid));
        checked += 1;
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} files:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
