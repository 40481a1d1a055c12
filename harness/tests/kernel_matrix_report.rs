//! The kernel matrix's reports, without booting a VM: `ci/kernel-matrix-report.py --merge`
//! (a run of some kernels merged into the committed table keeps every other kernel's column,
//! with the run it came from) and `--flakes` (pass counts over `--repeat` rounds, a VM death
//! counted apart from a failed step, with its last step and what its kernel said last), and
//! the refusals of `ci/kernel-matrix.sh --resume` (a run continues only as it began, on its
//! commit).
//!
//! Needs `python3` (the script is Python); without it the tests print a SKIP line.

mod common;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use common::{repo, text};

/// Runs the report script with ARGS; None (after a SKIP line) when python3 is missing.
fn report(test: &str, args: &[&str]) -> Option<String> {
    let out = match Command::new("python3")
        .arg(repo().join("ci/kernel-matrix-report.py"))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            println!("SKIP: {test}: python3: {e}");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "kernel-matrix-report.py {args:?} failed: {}",
        text(&out.stderr)
    );
    Some(text(&out.stdout))
}

fn fixture(name: &str) -> PathBuf {
    repo()
        .join("harness/tests/fixtures/kernel-matrix")
        .join(name)
}

/// Every table of a kernels.md: section heading -> row label -> kernel -> cell.
type Tables = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

fn tables(md: &str) -> Tables {
    let mut out = Tables::new();
    let mut heading = String::new();
    let mut kernels: Vec<String> = Vec::new();
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.to_string();
            kernels.clear();
            continue;
        }
        if !line.starts_with('|') || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if cells[0].is_empty() {
            kernels = cells[1..]
                .iter()
                .map(|k| k.trim_matches('*').into())
                .collect();
            continue;
        }
        let row = out
            .entry(heading.clone())
            .or_default()
            .entry(cells[0].clone())
            .or_default();
        for (k, v) in kernels.iter().zip(&cells[1..]) {
            row.insert(k.clone(), v.clone());
        }
    }
    out
}

#[test]
fn a_one_kernel_run_merged_into_the_table_keeps_every_other_column() {
    let test = "a_one_kernel_run_merged_into_the_table_keeps_every_other_column";
    let (old, new) = (fixture("old.md"), fixture("new-5.10.md"));
    let Some(merged) = report(
        test,
        &[
            "--merge",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "5.10",
        ],
    ) else {
        return;
    };
    let (old_t, new_t, merged_t) = (
        tables(&fs::read_to_string(&old).unwrap()),
        tables(&fs::read_to_string(&new).unwrap()),
        tables(&merged),
    );
    assert!(old_t.len() >= 4, "the fixture parses: {old_t:?}");
    for (section, rows) in &old_t {
        for (label, cells) in rows {
            for k in ["6.1", "6.12", "sid"] {
                assert_eq!(
                    merged_t[section][label].get(k),
                    cells.get(k),
                    "{section} / {label} / {k}: a kernel this run did not boot keeps its cell"
                );
            }
        }
    }
    for (section, rows) in &new_t {
        for (label, cells) in rows {
            assert_eq!(
                merged_t[section][label].get("5.10"),
                cells.get("5.10"),
                "{section} / {label}: the kernel this run booted takes the run's cell"
            );
            // (`run` is new too, but filled from the old table's first paragraph: below.)
            if !old_t[section].contains_key(label) && label != "run" {
                for k in ["6.1", "6.12", "sid"] {
                    assert_eq!(merged_t[section][label][k], "-", "{label}: a new row");
                }
            }
        }
    }
    // Each column names its run: the old table's (from its first paragraph) or the new one.
    let run = &merged_t["Kernels"]["run"];
    assert_eq!(run["5.10"], "20261203T102954Z (quick)");
    for k in ["6.1", "6.12", "sid"] {
        assert_eq!(run[k], "20261130T070916Z (quick)", "{k}'s run");
    }
    assert!(
        !merged.contains("not run"),
        "no kernel of the merged table is 'not run':\n{merged}"
    );
    assert!(!merged.contains("## Not run"), "{merged}");
    // The same columns, in the same order.
    assert!(merged.contains("| | **5.10** | **6.1** | **6.12** | **sid** |"));

    // Merging the same run again changes nothing.
    let once = std::env::temp_dir().join(format!("xdplab-merge-{}.md", std::process::id()));
    fs::write(&once, &merged).unwrap();
    let twice = report(
        test,
        &[
            "--merge",
            once.to_str().unwrap(),
            new.to_str().unwrap(),
            "5.10",
        ],
    );
    let _ = fs::remove_file(&once);
    assert_eq!(
        twice.as_deref(),
        Some(merged.as_str()),
        "merging is idempotent"
    );
}

#[test]
fn a_merge_into_no_table_is_the_runs_table() {
    let test = "a_merge_into_no_table_is_the_runs_table";
    let new = fixture("new-5.10.md");
    let Some(merged) = report(
        test,
        &[
            "--merge",
            "/nonexistent/kernels.md",
            new.to_str().unwrap(),
            "5.10",
        ],
    ) else {
        return;
    };
    assert_eq!(merged, fs::read_to_string(&new).unwrap());
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, contents: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), contents).unwrap();
}

/// One kernel's VM in one round: its steps (name, exit code) and whether it finished.
fn vm(dir: &Path, steps: &[(&str, i32)], died_in: Option<&str>) {
    let tsv: String = steps
        .iter()
        .map(|(name, rc)| format!("{name}\t{rc}\t10\n"))
        .collect();
    write(dir, "steps.tsv", &tsv);
    write(
        dir,
        "tests.txt",
        "test-privileged_lab\t/bin/true\ntest-privileged_verdicts\t/bin/true\ntest-privileged_flat\t/bin/true\n",
    );
    write(dir, "release", "5.10.0-46-amd64\n");
    write(dir, "seconds", "900\n");
    write(dir, "vm.txt", "cpus 2\nmemory 2G\naccel tcg\nhost_cpus 2\n");
    write(
        dir,
        "health.tsv",
        "uptime_s\twhen\tmem_available_kib\n900.1\tduring test-privileged_verdicts\t51200\n",
    );
    write(dir, "kernel.log", "veth: entered promiscuous mode\n");
    match died_in {
        Some(step) => {
            write(dir, "vm-exit", "255\n");
            write(dir, "current", &format!("{step}\n"));
            write(
                dir,
                "console.log",
                "== test-privileged_verdicts: /bin/true\n[  900.5] Kernel panic - not syncing: System is deadlocked on memory\n",
            );
        }
        None => {
            write(dir, "vm-exit", "0\n");
            write(dir, "done", "2026-12-03T10:00:00Z\n");
            write(dir, "console.log", "");
        }
    }
    for (name, rc) in steps {
        let log = if *rc == 0 {
            "test result: ok. 4 passed; 0 failed; 0 ignored\n".to_string()
        } else {
            "failures:\n    privileged_paths_disagree\n\ntest result: FAILED. 3 passed; 1 failed; 0 ignored\n"
                .to_string()
        };
        write(dir, &format!("{name}.log"), &log);
    }
}

#[test]
fn flake_counts_tell_a_failed_step_from_a_vm_that_died() {
    let test = "flake_counts_tell_a_failed_step_from_a_vm_that_died";
    let root = TempDir(std::env::temp_dir().join(format!(
        "xdplab-flakes-{}/20261203T140000Z",
        std::process::id()
    )));
    let steps_ok = [
        ("scenarios", 0),
        ("test-privileged_lab", 0),
        ("test-privileged_verdicts", 0),
        ("test-privileged_flat", 0),
    ];
    vm(&root.0.join("run-1/5.10"), &steps_ok, None);
    let mut failing = steps_ok;
    failing[2].1 = 101;
    vm(&root.0.join("run-2/5.10"), &failing, None);
    vm(
        &root.0.join("run-3/5.10"),
        &steps_ok[..2],
        Some("test-privileged_verdicts"),
    );
    // Round 2's first VM, stopped midway with the run's host process and booted again by
    // --resume: listed, not counted.
    let stopped = root.0.join("interrupted/run-2-5.10-20261203T150000Z");
    write(
        &stopped,
        "steps.tsv",
        "scenarios\t0\t60\ntest-privileged_lab\t0\t20\n",
    );
    write(&stopped, "current", "test-privileged_verdicts\n");
    write(
        &root.0,
        "run.txt",
        "commit 0123456789abcdef0123456789abcdef01234567\nmode full\nrepeat 3\n",
    );
    let rounds: Vec<String> = (1..=3)
        .map(|i| root.0.join(format!("run-{i}")).display().to_string())
        .collect();
    let mut args = vec!["--flakes", "full", "3"];
    args.extend(rounds.iter().map(String::as_str));
    args.push("5.10");
    let Some(md) = report(test, &args) else {
        return;
    };
    let _ = fs::remove_dir_all(root.0.parent().unwrap());
    let line = |step: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| `{step}` |")))
            .unwrap_or_else(|| panic!("no row for {step}:\n{md}"))
            .to_string()
    };
    assert!(
        md.contains("**2 finished, 1 died, 0 timed out**"),
        "VMs counted:\n{md}"
    );
    assert!(
        md.contains("Run `20261203T140000Z` (commit `0123456789ab`): 3 VM(s)"),
        "the section names the run and the commit it measured:\n{md}"
    );
    // Every VM ran these to their end.
    assert!(
        line("scenarios").starts_with("| `scenarios` | 3/3 |"),
        "{md}"
    );
    // Failed once, passed once; the VM that died in it is not a failure of the step.
    let verdicts = line("test-privileged_verdicts");
    assert!(verdicts.contains("| 1/2 |"), "{verdicts}");
    assert!(
        verdicts.contains("run-2 (exit 101: privileged_paths_disagree)"),
        "{verdicts}"
    );
    assert!(verdicts.contains("run-3 (VM died in it)"), "{verdicts}");
    let flat = line("test-privileged_flat");
    assert!(flat.contains("| 2/2 |"), "{flat}");
    assert!(flat.contains("run-3 (VM died before it)"), "{flat}");
    // The death: its step, its cause as the kernel said it, its last health line.
    let deaths = &md[md.find("### VM deaths").expect("a deaths section")..];
    assert!(deaths.contains("**run-3**"), "{deaths}");
    assert!(
        deaths.contains("in step `test-privileged_verdicts`"),
        "{deaths}"
    );
    assert!(
        deaths.contains("Cause: guest kernel panic: System is deadlocked on memory"),
        "{deaths}"
    );
    assert!(
        deaths.contains("during test-privileged_verdicts\t51200"),
        "{deaths}"
    );
    assert!(!deaths.contains("**run-2**"), "a failed step is no death");
    assert!(
        md.contains(
            "run-2 after 2 steps, in step `test-privileged_verdicts` (`interrupted/run-2-5.10-20261203T150000Z`)"
        ),
        "the VM stopped with the run is listed:\n{md}"
    );
}

#[test]
fn a_vm_death_is_named_by_what_its_console_and_qemu_said() {
    let test = "a_vm_death_is_named_by_what_its_console_and_qemu_said";
    let root = TempDir(std::env::temp_dir().join(format!(
        "xdplab-deaths-{}/20261204T090000Z",
        std::process::id()
    )));
    let boot =
        "[    0.000000] Linux version 7.2.13+deb14-amd64\n== test-privileged_lab: /bin/true\n";
    // (console, qemu.log, qemu-exit) of each round's VM, each dead in test-privileged_lab.
    let logs = [
        (
            format!(
                "{boot}[  900.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
                 [  900.2] Oops: 0000 [#1] SMP NOPTI\n[  900.3] Kernel panic - not syncing: Fatal exception\n"
            ),
            "CPU Reset (CPU 0)\n",
            "exit 0\n",
        ),
        (
            boot.to_string(),
            "CPU Reset (CPU 0)\nTriple fault\n",
            "exit 0\n",
        ),
        (
            format!("{boot}[  900.1] reboot: Power down\n"),
            "",
            "exit 0\n",
        ),
        (boot.to_string(), "CPU Reset (CPU 0)\n", "exit 0\n"),
        (boot.to_string(), "CPU Reset (CPU 0)\n", "signal 9\n"),
    ];
    for (i, (console, qemu, qemu_exit)) in logs.iter().enumerate() {
        let dir = root.0.join(format!("run-{}/sid", i + 1));
        vm(&dir, &[("scenarios", 0)], Some("test-privileged_lab"));
        write(&dir, "console.log", console);
        write(&dir, "qemu.log", qemu);
        write(&dir, "qemu-exit", qemu_exit);
        write(&dir, "vm.txt", "cpus 2\nmemory 2G\nwatchdog_action debug\n");
    }
    let rounds: Vec<String> = (1..=logs.len())
        .map(|i| root.0.join(format!("run-{i}")).display().to_string())
        .collect();
    let n = logs.len().to_string();
    let mut args = vec!["--flakes", "full", n.as_str()];
    args.extend(rounds.iter().map(String::as_str));
    args.push("sid");
    let Some(md) = report(test, &args) else {
        return;
    };
    let _ = fs::remove_dir_all(root.0.parent().unwrap());
    let cause = |round: usize| {
        let at = md
            .find(&format!("- **run-{round}**"))
            .unwrap_or_else(|| panic!("no death of run-{round}:\n{md}"));
        let line = md[at..].lines().next().unwrap();
        line[line.find("Cause: ").expect("a cause") + 7..].to_string()
    };
    assert!(md.contains("**0 finished, 5 died, 0 timed out**"), "{md}");
    assert_eq!(
        cause(1),
        "guest kernel panic: Fatal exception (first report: BUG: kernel NULL pointer \
         dereference, address: 0000000000000008)."
    );
    assert!(cause(2).starts_with("triple fault:"), "{}", cause(2));
    assert!(
        cause(3).starts_with("the guest powered itself off (reboot: Power down)"),
        "{}",
        cause(3)
    );
    // A console kept from boot that ends in nothing is said to be so, not "no console".
    assert!(
        cause(4).starts_with(
            "no message: the guest's console (console.log, its kernel from boot) ends"
        ),
        "{}",
        cause(4)
    );
    assert!(
        cause(4).contains("QEMU ended with exit 0 (qemu-exit)"),
        "{}",
        cause(4)
    );
    // QEMU's end by a signal outranks the console's silence: it came from outside the guest.
    assert!(
        cause(5).starts_with("QEMU was killed by signal 9 (qemu-exit)"),
        "{}",
        cause(5)
    );
}

/// Runs `ci/kernel-matrix.sh --prepare-only ARGS` and returns its exit code and stderr.
/// `--prepare-only`: should a refusal below ever let a run through, it installs and builds
/// but boots nothing.
fn matrix(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("bash")
        .arg(repo().join("ci/kernel-matrix.sh"))
        .arg("--prepare-only")
        .args(args)
        .output()
        .expect("bash runs");
    (out.status.code(), text(&out.stderr))
}

#[test]
fn a_run_is_resumed_only_as_it_began_and_on_its_commit() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("xdplab-matrix-resume-{}", std::process::id())));
    fs::create_dir_all(&dir.0).unwrap();
    let run = dir.0.display().to_string();
    // Everything below is refused before anything is installed or booted (and so also
    // without privileges).
    let (code, err) = matrix(&["--resume", &run]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("run.txt does not exist"), "{err}");

    let settings = "mode full\nrepeat 3\nkernels 5.10 sid\nvm_cpus 2\nvm_memory 2G\nwatchdog debug\naccel tcg\n";
    write(
        &dir.0,
        "run.txt",
        &format!("commit {}\n{settings}", "0".repeat(40)),
    );
    // A kernel or a round count would be another run than the one it continues.
    for extra in [&["5.10"][..], &["--repeat", "2"], &["--quick"]] {
        let mut args = vec!["--resume", run.as_str()];
        args.extend_from_slice(extra);
        let (code, err) = matrix(&args);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(&format!("drop {}", extra[0])),
            "{extra:?}: {err}"
        );
    }
    // Another commit: the rounds would test other code.
    let (code, err) = matrix(&["--resume", &run]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("began on {}, the checkout is at", "0".repeat(40))),
        "{err}"
    );
    // A run begun with uncommitted changes cannot be continued on the same code.
    write(
        &dir.0,
        "run.txt",
        &format!("commit {}+dirty\n{settings}", "0".repeat(40)),
    );
    let (code, err) = matrix(&["--resume", &run]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be checked out again"), "{err}");
}

#[test]
fn merged_flake_sections_replace_only_the_kernels_run() {
    let test = "merged_flake_sections_replace_only_the_kernels_run";
    let dir =
        TempDir(std::env::temp_dir().join(format!("xdplab-flakes-merge-{}", std::process::id())));
    write(
        &dir.0,
        "old.md",
        "# Kernel matrix: flake counts\n\nold preamble\n\n## 5.10 (full)\n\nold 5.10\n\n## sid (full)\n\nold sid\n",
    );
    write(
        &dir.0,
        "new.md",
        "# Kernel matrix: flake counts\n\nnew preamble\n\n## 5.10 (full)\n\nnew 5.10\n",
    );
    let Some(md) = report(
        test,
        &[
            "--merge-flakes",
            dir.0.join("old.md").to_str().unwrap(),
            dir.0.join("new.md").to_str().unwrap(),
        ],
    ) else {
        return;
    };
    assert_eq!(
        md,
        "# Kernel matrix: flake counts\n\nnew preamble\n\n## 5.10 (full)\n\nnew 5.10\n\n## sid (full)\n\nold sid\n"
    );
}

#[test]
fn a_call_of_no_known_form_prints_the_forms_and_exits_2() {
    let test = "a_call_of_no_known_form_prints_the_forms_and_exits_2";
    let Some(help) = report(test, &["--help"]) else {
        return;
    };
    for form in [
        "--merge OLD NEW",
        "--flakes MODE N",
        "--merge-flakes OLD NEW",
    ] {
        assert!(help.contains(form), "--help names {form}:\n{help}");
    }
    // A wrong call is the caller's mistake (exit 2 with the forms), not a Python traceback.
    for args in [
        &[][..],
        &["target/kernel-matrix/x"][..],
        &["--merge", "old.md"][..],
        &["--flakes", "full", "three", "run-1", "5.10"][..],
        &["--flakes", "full", "3", "run-1", "run-2", "5.10"][..],
        &["--merge-flakes", "old.md"][..],
    ] {
        let out = Command::new("python3")
            .arg(repo().join("ci/kernel-matrix-report.py"))
            .args(args)
            .output()
            .expect("python3 ran above");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains("--merge-flakes OLD NEW") && !stderr.contains("Traceback"),
            "{args:?}: the forms, no traceback:\n{stderr}"
        );
    }
}
