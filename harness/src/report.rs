//! Results of a run and how they are shown: one line per scenario for people, JSON for
//! machines, JUnit XML for CI systems.

use std::{fmt::Write as _, path::PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{exit::Exit, observe::XdpStats, verdict::Verdict};

/// How a scenario ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation held.
    Pass,
    /// An expectation failed, or the scenario could not run (see [`ScenarioReport::error`]).
    Fail,
    /// Not run, for the stated reason.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// Why a scenario could not run at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunFailure {
    /// `"input"` (exit 2) or `"environment"` (exit 3).
    pub kind: FailureKind,
    /// The error, with its causes.
    pub message: String,
}

/// Whose fault a [`RunFailure`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The scenario or the object is unusable.
    Input,
    /// The machine cannot run labs (privileges, kernel features).
    Environment,
}

/// The result of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// The outcome.
    pub status: Status,
    /// Skip reason, or why the scenario could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Set when the scenario could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunFailure>,
    /// `object:entry` of the program.
    pub program: String,
    /// `native` or `generic`.
    pub mode: String,
    /// Per send group.
    pub groups: Vec<GroupReport>,
    /// Map expectations.
    pub maps: Vec<MapCheck>,
    /// Cross-checks of the program's verdict counters against the kernel.
    pub counters: Vec<CounterCheck>,
    /// Frames seen in the lab that belong to no send group (background traffic), summed over
    /// the interfaces.
    pub unattributed: u64,
    /// The same by interface (`ns:if`), interfaces with none left out.
    pub unattributed_by_interface: std::collections::BTreeMap<String, u64>,
    /// Every failed expectation, one sentence each.
    pub failures: Vec<String>,
    /// The `[throughput]` check, when the scenario has one and the path is live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<ThroughputCheck>,
    /// What the harness set up beyond the scenario (NAPI helpers and the like).
    pub notes: Vec<String>,
    /// pcap files written for this scenario (`--capture DIR`, on failure).
    pub captures: Vec<PathBuf>,
    /// Wall time of the scenario, in milliseconds.
    pub duration_ms: u64,
    /// What each `[[step]]` of a lifecycle scenario did, in order (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    /// What each `[[flow]]` came to, in file order (left out of the JSON when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<crate::flow::FlowReport>,
}

/// What one `[[step]]` did.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// Line of the step in the scenario file.
    pub line: usize,
    /// The verb (`load`, `replace`, ...).
    pub action: String,
    /// Whether its checks held (steps that check nothing: whether it ran).
    pub ok: bool,
    /// What it did or found, in one line.
    pub detail: String,
    /// Machine-readable details (a trace's counts per version, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// What happened to one send group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub name: String,
    /// The expected verdict.
    pub expect: Verdict,
    /// Frames the sender tried to send.
    pub offered: u64,
    /// Frames the kernel accepted from the sender.
    pub sent: u64,
    /// Frames seen nowhere, and not counted as aborted: XDP_DROP.
    pub dropped: u64,
    /// Frames seen after XDP on the interface the program is attached to: XDP_PASS.
    pub passed: u64,
    /// Frames that came back out of the attach interface's peer: XDP_TX.
    pub tx: u64,
    /// Frames that arrived anywhere else in the topology: XDP_REDIRECT.
    pub redirected: u64,
    /// Frames the `xdp:xdp_exception` tracepoint counted as XDP_ABORTED (test-run: the
    /// return code).
    pub aborted: u64,
    /// Where frames landed, by interface (`ns:if`), for frames seen anywhere.
    pub landed: std::collections::BTreeMap<String, u64>,
    /// Frames that landed where the expectation does not put them, by place (`nowhere`,
    /// `at ns:if`, `at ns:if and ns:if`; for test-run, `returned <verdict>`): the first
    /// sequence numbers of each.
    pub misplaced: std::collections::BTreeMap<String, Vec<u32>>,
    /// Output checks that failed, field by field (first frames only).
    pub output_mismatches: Vec<String>,
    /// Per frame, what happened to it (for comparing execution paths).
    #[serde(skip)]
    pub outcomes: Vec<Outcome>,
    /// Per frame, the bytes that left the program (for groups with output checks).
    #[serde(skip)]
    pub outputs: std::collections::BTreeMap<u32, Vec<u8>>,
    /// How the capture attributed frames: `"tag"`, `"content"` (frame too small for a tag),
    /// `"tag and content"` (some frames lost their tag on the way), `"kernel"`, `"program"`
    /// or `"test-run"`.
    pub attributed_by: &'static str,
    /// Frames attributed by content, by the rule that claimed them (`"exact"`, `"vlan"`,
    /// `"cut"`, `"extended"`, `"decapsulated"`, `"encapsulated"`: see
    /// [`crate::observe::attribute`]; `"window"`: untagged frames counted in the group's window at
    /// the place its verdict names). Empty when no frame was.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attribution_rules: std::collections::BTreeMap<String, u64>,
    /// Frames seen at the receiver while this group was sent that belong to no group
    /// (background traffic); the kernel counted them too.
    pub unattributed: u64,
    /// The kernel's own counters for this group.
    pub kernel: KernelView,
    /// Sequence numbers that should have arrived and did not (first ones only).
    pub missing: Vec<u32>,
    /// Sequence numbers that should have been dropped and arrived (first ones only).
    pub leaked: Vec<u32>,
    /// Sequence numbers that arrived more than once (first ones only).
    pub duplicated: Vec<u32>,
}

/// What happened to one frame, as comparable across execution paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Not observed (too small for a tag and not matched individually).
    Unknown,
    /// Seen nowhere: dropped or aborted.
    Nowhere,
    /// Returned XDP_DROP (test-run only; live paths see [`Outcome::Nowhere`]).
    Drop,
    /// Returned XDP_ABORTED (test-run only).
    Aborted,
    /// Passed to the stack of the attach interface.
    Pass,
    /// Sent back out of the attach interface.
    Tx,
    /// Redirected elsewhere.
    Redirect,
    /// Seen at more than one place.
    Multiple,
}

impl Outcome {
    /// The class used to compare a live path (which cannot tell drop from aborted per frame)
    /// with test-run.
    pub fn comparable(self) -> Self {
        match self {
            Self::Drop | Self::Aborted => Self::Nowhere,
            other => other,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Nowhere => "nowhere (drop or aborted)",
            Self::Drop => "drop",
            Self::Aborted => "aborted",
            Self::Pass => "pass",
            Self::Tx => "tx",
            Self::Redirect => "redirect",
            Self::Multiple => "several places",
        }
    }
}

/// The kernel's view of a group, independent of the program.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KernelView {
    /// Frames the receiving veth got (`ip -s link`), counted before XDP.
    pub received: u64,
    /// veth native XDP counters (`ethtool -S`); absent in generic mode, where the driver
    /// does not run the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp: Option<XdpStats>,
    /// Frames the sending veth could not hand to its peer.
    pub sender_dropped: u64,
    /// Frames seen after XDP on the attach interface during this group that belong to no
    /// group (background traffic the kernel counted too).
    pub background: u64,
}

/// One map expectation and what was found.
#[derive(Clone, Debug, Serialize)]
pub struct MapCheck {
    /// The map.
    pub map: String,
    /// The key as written in the scenario (integer or hex).
    pub key: Value,
    /// The expected value (integer, hex string, list per CPU, or "absent").
    pub expected: Value,
    /// What was read (same forms, or "absent").
    pub actual: Value,
    /// Per-CPU values, for per-CPU maps of integer values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_cpu: Option<Vec<u64>>,
    /// Each field that differs, `rx_packets expected 100, got 99` (per CPU: `cpu 1:
    /// rx_packets ...`); empty when the value matched or was absent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<String>,
    /// Whether it matched.
    pub ok: bool,
}

/// The scenario's program against a baseline, measured in the same run (`[throughput]`).
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputCheck {
    /// The program's measurement.
    pub program: crate::bench::Measurement,
    /// The baseline's measurement.
    pub baseline: crate::bench::Measurement,
    /// `program.rx_pps / baseline.rx_pps`.
    pub ratio: f64,
    /// The lowest acceptable ratio.
    pub min_ratio: f64,
    /// Whether `ratio >= min_ratio`.
    pub ok: bool,
}

/// A program counter compared with the kernel's count of the same verdict.
#[derive(Clone, Debug, Serialize)]
pub struct CounterCheck {
    /// The map (`drop_cnt` or `pass_cnt`).
    pub map: String,
    /// The program's count over the run.
    pub program: u64,
    /// The kernel's (or, where the kernel has no counter, the capture's) count.
    pub kernel: u64,
    /// Where the kernel figure comes from.
    pub source: String,
    /// Whether they agree.
    pub ok: bool,
}

impl ScenarioReport {
    /// The exit status this scenario alone would give.
    pub fn exit(&self) -> Exit {
        match (&self.error, self.status) {
            (
                Some(RunFailure {
                    kind: FailureKind::Input,
                    ..
                }),
                _,
            ) => Exit::BadInput,
            (
                Some(RunFailure {
                    kind: FailureKind::Environment,
                    ..
                }),
                _,
            ) => Exit::Environment,
            (None, Status::Fail) => Exit::Fail,
            (None, Status::Pass | Status::Skip) => Exit::Pass,
        }
    }

    /// The one-line summary, plus indented detail lines for failures.
    pub fn human(&self) -> String {
        let mut out = format!("{} {}", self.status.label(), self.name);
        match self.status {
            Status::Skip => {
                let _ = write!(
                    out,
                    ": {}",
                    self.skip_reason.as_deref().unwrap_or("skipped")
                );
            }
            _ if self.error.is_some() => {
                let error = self.error.as_ref().expect("checked");
                let _ = write!(out, ": {}", error.message.replace('\n', "\n    "));
            }
            _ if !self.steps.is_empty() => {
                let _ = write!(
                    out,
                    " ({}, {}): {} steps [{} ms]",
                    self.program,
                    self.mode,
                    self.steps.len(),
                    self.duration_ms
                );
                for step in &self.steps {
                    let _ = write!(
                        out,
                        "\n    {} line {} {}: {}",
                        if step.ok { "ok  " } else { "FAIL" },
                        step.line,
                        step.action,
                        step.detail
                    );
                }
                for failure in &self.failures {
                    let _ = write!(out, "\n    {failure}");
                }
                for note in &self.notes {
                    let _ = write!(out, "\n    note: {note}");
                }
            }
            _ => {
                let total = |f: fn(&GroupReport) -> u64| self.groups.iter().map(f).sum::<u64>();
                let _ = write!(
                    out,
                    " ({}, {}): {} sent, {} dropped, {} passed",
                    self.program,
                    self.mode,
                    total(|g| g.sent),
                    total(|g| g.dropped),
                    total(|g| g.passed)
                );
                for (label, n) in [
                    ("tx", total(|g| g.tx)),
                    ("redirected", total(|g| g.redirected)),
                    ("aborted", total(|g| g.aborted)),
                ] {
                    if n > 0 {
                        let _ = write!(out, ", {n} {label}");
                    }
                }
                for c in &self.counters {
                    let _ = write!(out, "; {} {} = {} {}", c.map, c.program, c.source, c.kernel);
                }
                if let Some(t) = &self.throughput {
                    let _ = write!(
                        out,
                        "; throughput {:.2} Mpps = {:.2} x {} ({:.2} Mpps, {} injector)",
                        t.program.rx_pps / 1e6,
                        t.ratio,
                        t.baseline.program,
                        t.baseline.rx_pps / 1e6,
                        t.program.injector
                    );
                    // The programs' own cost from the kernel's run-time statistics.
                    let ns = |m: &crate::bench::Measurement| {
                        m.ns_per_frame
                            .map_or_else(|| "-".to_owned(), |ns| format!("{ns:.1}"))
                    };
                    if t.program.ns_per_frame.is_some() {
                        let _ = write!(out, ", {} vs {} ns/frame", ns(&t.program), ns(&t.baseline));
                    }
                }
                for m in &self.maps {
                    let _ = write!(out, "; {}[{}] = {}", m.map, plain(&m.key), plain(&m.actual));
                }
                let _ = write!(out, " [{} ms]", self.duration_ms);
                // Skipped flows are summed up in a note.
                for f in self
                    .flows
                    .iter()
                    .filter(|f| f.status != crate::flow::FlowStatus::Skip)
                {
                    let _ = write!(
                        out,
                        "\n    flow {} ({}, expect {}): {}; {}",
                        f.name,
                        f.kind,
                        f.expect,
                        f.status,
                        f.summary()
                    );
                    for line in f.comparison.iter().flat_map(crate::flow::Comparison::lines) {
                        let _ = write!(out, "\n        {line}");
                    }
                }
                for failure in &self.failures {
                    let _ = write!(out, "\n    {failure}");
                }
                for note in &self.notes {
                    let _ = write!(out, "\n    note: {note}");
                }
                for file in &self.captures {
                    let _ = write!(out, "\n    capture: {}", file.display());
                }
                if self.unattributed > 0 {
                    let at: Vec<String> = self
                        .unattributed_by_interface
                        .iter()
                        .map(|(interface, n)| format!("{n} at {interface}"))
                        .collect();
                    let _ = write!(
                        out,
                        "\n    note: {} frame(s) seen in the lab belong to no send group ({}); \
                         counted in no group",
                        self.unattributed,
                        at.join(", ")
                    );
                }
            }
        }
        out
    }

    /// The machine-readable form.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).expect("report types serialise")
    }
}

/// Two execution paths that treated the same frame differently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathDifference {
    /// The scenario.
    pub scenario: String,
    /// What differs: `send "g" seq 3` or `send "g" aborted count`.
    pub what: String,
    /// First path and what it did.
    pub a: (String, String),
    /// Second path and what it did.
    pub b: (String, String),
}

impl std::fmt::Display for PathDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {} says {}, {} says {}",
            self.scenario, self.what, self.a.0, self.a.1, self.b.0, self.b.1
        )
    }
}

/// The version of the JSON document [`RunReport::json`] prints (its `schema-version` key). It
/// changes when a key is removed or changes meaning; new keys may appear without a change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// All scenarios of one `xdplab run`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// In the order they ran (one per scenario and execution path).
    pub scenarios: Vec<ScenarioReport>,
    /// Disagreements between execution paths (`--paths`); any is a failure.
    pub differences: Vec<PathDifference>,
}

impl RunReport {
    /// The exit status of the whole run: bad input beats environment beats failure.
    pub fn exit(&self) -> Exit {
        let differ = (!self.differences.is_empty()).then_some(Exit::Fail);
        let exits = self
            .scenarios
            .iter()
            .map(ScenarioReport::exit)
            .chain(differ);
        [Exit::BadInput, Exit::Environment, Exit::Fail]
            .into_iter()
            .find(|e| exits.clone().any(|x| x == *e))
            .unwrap_or(Exit::Pass)
    }

    fn count(&self, status: Status) -> usize {
        self.scenarios.iter().filter(|s| s.status == status).count()
    }

    /// The closing line: `N passed, N failed, N skipped` (and path differences, if any).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} passed, {} failed, {} skipped",
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip)
        );
        if !self.differences.is_empty() {
            let _ = write!(line, ", {} path difference(s)", self.differences.len());
        }
        line
    }

    /// The JSON document printed by `--format json`.
    pub fn json(&self) -> Value {
        json!({
            "schema-version": REPORT_SCHEMA_VERSION,
            "scenarios": self.scenarios.iter().map(ScenarioReport::json).collect::<Vec<_>>(),
            "passed": self.count(Status::Pass),
            "failed": self.count(Status::Fail),
            "skipped": self.count(Status::Skip),
            "differences": self.differences,
            "exit": self.exit().code(),
        })
    }

    /// JUnit XML, one test case per scenario and execution path, named `scenario (path)` so
    /// that `--paths` gives each path a test case of its own.
    pub fn junit(&self) -> String {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total_ms: u64 = self.scenarios.iter().map(|s| s.duration_ms).sum();
        let _ = writeln!(
            xml,
            "<testsuites name=\"xdplab\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.scenarios.len(),
            self.count(Status::Fail),
            self.count(Status::Skip),
            total_ms as f64 / 1000.0
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"xdplab run\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.scenarios.len(),
            self.count(Status::Fail),
            self.count(Status::Skip),
            total_ms as f64 / 1000.0
        );
        for s in &self.scenarios {
            let _ = write!(
                xml,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                escape(&format!("{} ({})", s.name, s.mode)),
                escape(&s.path.display().to_string()),
                s.duration_ms as f64 / 1000.0
            );
            match s.status {
                Status::Pass => xml.push_str("/>\n"),
                Status::Skip => {
                    let _ = writeln!(
                        xml,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(s.skip_reason.as_deref().unwrap_or(""))
                    );
                }
                Status::Fail => {
                    let message = s.error.as_ref().map_or_else(
                        || s.failures.first().cloned().unwrap_or_default(),
                        |e| e.message.clone(),
                    );
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(message.lines().next().unwrap_or("")),
                        escape(&s.human())
                    );
                }
            }
        }
        if !self.differences.is_empty() {
            let lines: Vec<String> = self.differences.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                xml,
                "    <testcase name=\"execution paths agree\" classname=\"xdplab\">\n      <failure message=\"{} path difference(s)\">{}</failure>\n    </testcase>",
                self.differences.len(),
                escape(&lines.join("\n"))
            );
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }
}

/// A JSON value as a person reads it: strings without quotes.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status, error: Option<RunFailure>) -> ScenarioReport {
        ScenarioReport {
            name: "s<1>".into(),
            path: "scenarios/s.toml".into(),
            status,
            skip_reason: None,
            error,
            program: "xdp_drop:xdp_drop_all".into(),
            mode: "native".into(),
            groups: vec![GroupReport {
                name: "g".into(),
                expect: Verdict::Drop,
                offered: 10,
                sent: 10,
                dropped: 9,
                passed: 1,
                tx: 0,
                redirected: 0,
                aborted: 0,
                landed: Default::default(),
                misplaced: Default::default(),
                output_mismatches: vec![],
                outcomes: vec![],
                outputs: Default::default(),
                attributed_by: "tag",
                attribution_rules: Default::default(),
                unattributed: 0,
                kernel: KernelView::default(),
                missing: vec![],
                leaked: vec![3],
                duplicated: vec![],
            }],
            maps: vec![MapCheck {
                map: "drop_cnt".into(),
                key: json!(0),
                expected: json!(10),
                actual: json!(9),
                per_cpu: None,
                mismatches: Vec::new(),
                ok: false,
            }],
            counters: vec![],
            unattributed: 0,
            unattributed_by_interface: Default::default(),
            throughput: None,
            notes: vec![],
            captures: vec![],
            failures: vec!["send \"g\": expected drop, 1 of 10 frames arrived (seq 3)".into()],
            duration_ms: 5,
            steps: Vec::new(),
            flows: Vec::new(),
        }
    }

    #[test]
    fn unattributed_frames_are_reported_by_interface_and_counted_in_no_group() {
        let mut r = report(Status::Pass, None);
        let in_groups: u64 = r.groups.iter().map(|g| g.passed + g.dropped).sum();
        r.unattributed = 7;
        r.unattributed_by_interface = [
            ("receiver:xl-1-rx".to_owned(), 5),
            ("sender:xl-1-tx".to_owned(), 2),
        ]
        .into_iter()
        .collect();
        let human = r.human();
        assert!(
            human.contains(
                "7 frame(s) seen in the lab belong to no send group (5 at receiver:xl-1-rx, 2 at \
                 sender:xl-1-tx); counted in no group"
            ),
            "{human}"
        );
        let json = r.json();
        assert_eq!(json["unattributed"], 7);
        assert_eq!(json["unattributed_by_interface"]["receiver:xl-1-rx"], 5);
        assert_eq!(
            r.groups.iter().map(|g| g.passed + g.dropped).sum::<u64>(),
            in_groups
        );
    }

    #[test]
    fn exit_precedence_is_input_then_environment_then_fail() {
        let fail = report(Status::Fail, None);
        let env = report(
            Status::Fail,
            Some(RunFailure {
                kind: FailureKind::Environment,
                message: "no".into(),
            }),
        );
        let input = report(
            Status::Fail,
            Some(RunFailure {
                kind: FailureKind::Input,
                message: "bad".into(),
            }),
        );
        let pass = report(Status::Pass, None);
        let run = |s: Vec<ScenarioReport>| {
            RunReport {
                scenarios: s,
                differences: vec![],
            }
            .exit()
        };
        assert_eq!(run(vec![pass.clone()]), Exit::Pass);
        assert_eq!(run(vec![pass.clone(), fail.clone()]), Exit::Fail);
        assert_eq!(run(vec![fail.clone(), env.clone()]), Exit::Environment);
        assert_eq!(run(vec![env, input, fail]), Exit::BadInput);
    }

    #[test]
    fn json_has_the_documented_fields() {
        let json = RunReport {
            scenarios: vec![report(Status::Fail, None)],
            differences: vec![],
        }
        .json();
        let s = &json["scenarios"][0];
        assert_eq!(s["name"], "s<1>");
        assert_eq!(s["status"], "fail");
        assert_eq!(s["groups"][0]["name"], "g");
        assert_eq!(s["groups"][0]["sent"], 10);
        assert_eq!(s["groups"][0]["dropped"], 9);
        assert_eq!(s["groups"][0]["passed"], 1);
        assert_eq!(s["maps"][0]["map"], "drop_cnt");
        assert_eq!(s["maps"][0]["key"], 0);
        assert_eq!(s["maps"][0]["expected"], 10);
        assert_eq!(s["maps"][0]["actual"], 9);
        assert_eq!(json["exit"], 1);
        assert_eq!(json["schema-version"], REPORT_SCHEMA_VERSION);
    }

    #[test]
    fn junit_names_each_execution_path_apart() {
        let mut native = report(Status::Pass, None);
        native.mode = "native".to_owned();
        let mut test_run = report(Status::Pass, None);
        test_run.mode = "test-run".to_owned();
        let xml = RunReport {
            scenarios: vec![native, test_run],
            differences: vec![],
        }
        .junit();
        assert!(xml.contains("name=\"s&lt;1&gt; (native)\""), "{xml}");
        assert!(xml.contains("name=\"s&lt;1&gt; (test-run)\""), "{xml}");
    }

    #[test]
    fn junit_escapes_and_marks_failures() {
        let xml = RunReport {
            scenarios: vec![report(Status::Fail, None), report(Status::Pass, None)],
            differences: vec![],
        }
        .junit();
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("name=\"s&lt;1&gt; ("), "{xml}");
        assert!(
            xml.contains("<failure message=\"send &quot;g&quot;"),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase").count(), 2);
    }

    #[test]
    fn summary_counts_statuses() {
        let run = RunReport {
            scenarios: vec![
                report(Status::Pass, None),
                report(Status::Fail, None),
                report(Status::Skip, None),
            ],
            differences: vec![],
        };
        assert_eq!(run.summary(), "1 passed, 1 failed, 1 skipped");
    }
}
