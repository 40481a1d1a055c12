//! The scenario's maps: checked against the loaded program before a lab exists, set up
//! before traffic, and compared with the expectations after it.

use super::plan::{at, hex, resolve};
use super::values::{self, Check, Shape};
use super::{IfaceRef, MapBytes, MapExpect, Scenario};
use crate::engine::RunError;
use crate::{
    kernel::maps::{MapKind, MapValue, ProgramMap, RingBufReader},
    kernel::program::Program,
    report::{MapCheck, ScenarioReport, plain},
    scenario::loader::MapOwners,
    topology::{Topology, TopologySpec},
};
use serde_json::{Value, json};

/// Ring buffer records consumed per poll.
const EVENT_BATCH: usize = 4096;

/// Everything about the scenario's maps that the loaded program can tell before a lab
/// exists: each map named by `[[rule]]`, `[[setup.map]]`, `[[expect.map]]` and
/// `[[expect.events]]` exists, has a type the table can use, and fits its keys and values.
pub(super) fn check_before_lab(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
) -> Result<(), RunError> {
    if !scenario.rules.is_empty() {
        rules_map(scenario, owners.main)?;
    }
    for setup in &scenario.map_setup {
        // An [[attach]] program this path does not load (test-run) has nothing to set up.
        let Some(program) = owners.get(setup.at.as_ref())? else {
            continue;
        };
        let map = program
            .map(&setup.map)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
        if let Some(name) = &setup.program {
            program
                .program_fd(name)
                .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
            if map.key_size() != 4 || map.value_size() != 4 {
                return Err(RunError::input(at(
                    scenario,
                    setup.line,
                    &format!(
                        "map {:?} is not a PROG_ARRAY: program names a tail-call target for a \
                         PROG_ARRAY slot",
                        setup.map
                    ),
                )));
            }
            continue;
        }
        if map.kind() == MapKind::RingBuf {
            return Err(RunError::input(at(
                scenario,
                setup.line,
                &format!(
                    "map {:?} is a ring buffer: it has no keys to set up",
                    setup.map
                ),
            )));
        }
        // Only the shapes matter here; interface indexes are known once the lab is built.
        let shape = Shape::of(&map)?;
        map_key(scenario, setup.line, &shape, &setup.key, &|_| Ok(0))?;
        shape
            .value_bytes(&setup.value, &|_| Ok(0))
            .map_err(|e| RunError::input(at(scenario, setup.line, &e)))?;
    }
    check_map_expectations(scenario, owners)?;
    for expect in &scenario.event_expects {
        let map = owners
            .main
            .map(&expect.ringbuf)
            .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
        if map.kind() != MapKind::RingBuf {
            return Err(RunError::input(at(
                scenario,
                expect.line,
                &format!(
                    "map {:?} has type {}, not ringbuf: [[expect.events]] reads records from \
                     a BPF_MAP_TYPE_RINGBUF",
                    expect.ringbuf,
                    map.kind()
                ),
            )));
        }
    }
    Ok(())
}

pub(super) fn check_map_expectations(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
) -> Result<(), RunError> {
    for expect in &scenario.map_expects {
        let Some(program) = owners.get(expect.at.as_ref())? else {
            continue;
        };
        let map = program
            .map(&expect.map)
            .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
        if matches!(map.kind(), MapKind::Other | MapKind::RingBuf) {
            return Err(RunError::input(at(
                scenario,
                expect.line,
                &format!(
                    "map {:?} is not an array, per-CPU array or hash map; it cannot be checked by key",
                    expect.map
                ),
            )));
        }
        let shape = Shape::of(&map)?;
        map_key(scenario, expect.line, &shape, &expect.key, &|_| Ok(0))?;
        expected_checks(scenario, &shape, &map, expect)?;
    }
    Ok(())
}

/// The checks an expectation stands for (`value` or `per-cpu`; none for `delta` and
/// `absent`), or the located error that says why its value does not fit the map.
pub(super) fn expected_checks(
    scenario: &Scenario,
    shape: &Shape,
    map: &ProgramMap<'_>,
    expect: &MapExpect,
) -> Result<Expected, RunError> {
    let located = |e: String| RunError::input(at(scenario, expect.line, &e));
    if let Some(value) = &expect.value {
        let sum = map.kind().is_per_cpu();
        if sum && *value == MapBytes::Int(0) && shape.checks(value, sum, &|_| Ok(0)).is_err() {
            // A sum of zero is zero on every CPU, whatever the value's shape.
            let zero = MapBytes::Hex(vec![0; map.value_size()]);
            return Ok(Expected::PerCpu(
                shape
                    .per_cpu_checks(&[zero], map.cpus()?, &|_| Ok(0))
                    .map_err(located)?,
            ));
        }
        return Ok(Expected::Value(
            shape.checks(value, sum, &|_| Ok(0)).map_err(located)?,
        ));
    }
    if let Some(list) = &expect.per_cpu {
        let cpus = map.cpus()?;
        return Ok(Expected::PerCpu(
            shape
                .per_cpu_checks(list, cpus, &|_| Ok(0))
                .map_err(located)?,
        ));
    }
    if let Some(fields) = &expect.delta_fields {
        return Ok(Expected::Delta(
            shape.delta_checks(fields).map_err(located)?,
        ));
    }
    if expect.delta.is_some() && map.value_size() > 8 {
        return Err(located(format!(
            "delta of map {:?}: an integer change needs integer values of at most 8 bytes, \
             but the map holds {}; give the change of each field by name (delta = {{ field = \
             change, ... }}) or check the value after the run with value = ...",
            expect.map,
            shape.holds()
        )));
    }
    Ok(Expected::Nothing)
}

/// What an expectation compares, compiled against the map.
pub(super) enum Expected {
    /// `value`: one value, or the sum over CPUs of a per-CPU map.
    Value(Vec<Check>),
    /// `per-cpu`: each CPU's value.
    PerCpu(Vec<Vec<Check>>),
    /// `delta = { field = change, ... }`: each field's change across the run.
    Delta(Vec<Check>),
    /// `delta` as an integer, or `absent`.
    Nothing,
}

/// The bytes of a key, in any form (fields by name from the map's BTF).
pub(super) fn map_key(
    scenario: &Scenario,
    line: usize,
    shape: &Shape,
    key: &MapBytes,
    ifindex: &dyn Fn(&IfaceRef) -> Result<u32, String>,
) -> Result<Vec<u8>, RunError> {
    shape
        .key_bytes(key, ifindex)
        .map_err(|e| RunError::input(at(scenario, line, &e)))
}

/// The `xdp_filter` rule map that `[[rule]]`s are written to, checked; errors name the
/// first rule's line.
pub(super) fn rules_map<'a>(
    scenario: &Scenario,
    program: &'a Program,
) -> Result<ProgramMap<'a>, RunError> {
    let line = scenario.rules.first().map_or(1, |r| r.line);
    let map = program.map("filter_rules").map_err(|e| {
        RunError::input(at(
            scenario,
            line,
            &format!("[[rule]] needs the xdp_filter rule map: {e}"),
        ))
    })?;
    if map.kind() != MapKind::Array || map.value_size() != 8 || map.key_size() != 4 {
        return Err(RunError::input(at(
            scenario,
            line,
            &format!(
                "map filter_rules is a {} with {}-byte keys and {}-byte values, not the \
                 xdp_filter rule array",
                map.kind(),
                map.key_size(),
                map.value_size()
            ),
        )));
    }
    if scenario.rules.len() > map.max_entries() as usize {
        return Err(RunError::input(at(
            scenario,
            line,
            &format!(
                "{} rules do not fit the {} slots of filter_rules",
                scenario.rules.len(),
                map.max_entries()
            ),
        )));
    }
    Ok(map)
}

/// Writes `[[rule]]` and `[[setup.map]]` entries. Updates that name an interface (a devmap's
/// target) run inside that interface's namespace, where the kernel resolves the index.
pub(super) fn setup_maps(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
    topology: Option<(&TopologySpec, &Topology)>,
) -> Result<(), RunError> {
    if !scenario.rules.is_empty() {
        let map = rules_map(scenario, owners.main)?;
        for (index, rule) in scenario.rules.iter().enumerate() {
            map.update(&(index as u32).to_le_bytes(), &rule.encode())?;
        }
    }
    for setup in &scenario.map_setup {
        // Tail-call slots are filled by fill_tail_calls.
        if setup.program.is_some() {
            continue;
        }
        let Some(program) = owners.get(setup.at.as_ref())? else {
            continue;
        };
        let map = program
            .map(&setup.map)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
        let ifindex = |r: &IfaceRef| -> Result<u32, String> {
            let Some((spec, topology)) = topology else {
                return Err("needs the lab".into());
            };
            let end = resolve(spec, r).map_err(|e| e.message)?;
            topology
                .interface(&end.netns, Some(&end.interface))
                .map(|(_, e)| e.ifindex())
                .ok_or_else(|| format!("{r} is not in the topology"))
        };
        let shape = Shape::of(&map)?;
        let key = map_key(scenario, setup.line, &shape, &setup.key, &ifindex)?;
        let value = shape
            .value_bytes(&setup.value, &ifindex)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e)))?;
        let refs: Vec<&IfaceRef> = setup
            .key
            .ifaces()
            .into_iter()
            .chain(setup.value.ifaces())
            .collect();
        let netns = match (refs.first(), topology) {
            (Some(r), Some((spec, topology))) => {
                let end = resolve(spec, r)?;
                topology.netns(&end.netns).cloned()
            }
            _ => None,
        };
        let update = || map.update(&key, &value);
        match netns {
            Some(ns) => ns
                .run(update)
                .map_err(|e| RunError::environment(e.to_string()))??,
            None => update()?,
        }
    }
    Ok(())
}

/// Map values before traffic, for `delta` expectations.
pub(super) fn map_baselines(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
) -> Result<Vec<Option<MapValue>>, RunError> {
    scenario
        .map_expects
        .iter()
        .map(|e| {
            if e.delta.is_none() && e.delta_fields.is_none() {
                return Ok(None);
            }
            let Some(program) = owners.get(e.at.as_ref())? else {
                return Ok(None);
            };
            let map = program.map(&e.map)?;
            let key = map_key(scenario, e.line, &Shape::of(&map)?, &e.key, &|_| Ok(0))?;
            Ok(map.lookup(&key)?)
        })
        .collect()
}

pub(super) fn check_map(
    scenario: &Scenario,
    map: &ProgramMap<'_>,
    expect: &MapExpect,
    baseline: Option<&MapValue>,
) -> Result<MapCheck, RunError> {
    let shape = Shape::of(map)?;
    let key = map_key(scenario, expect.line, &shape, &expect.key, &|_| Ok(0))?;
    let expected_form = expected_checks(scenario, &shape, map, expect)?;
    let value = map.lookup(&key)?;
    let per_cpu = value.as_ref().and_then(MapValue::per_cpu_u64);
    let absent = json!("absent");
    let mut mismatches = Vec::new();
    let (expected, actual, ok) = if expect.absent {
        let actual = value.as_ref().map_or(absent.clone(), value_json);
        (absent, actual, value.is_none())
    } else if let Some(delta) = expect.delta {
        let now = value.as_ref().and_then(MapValue::sum_u64).unwrap_or(0);
        let then = baseline.and_then(MapValue::sum_u64).unwrap_or(0);
        let change = i128::from(now) - i128::from(then);
        (
            json!(format!("delta {delta}")),
            json!(format!("delta {change}")),
            change == i128::from(delta),
        )
    } else {
        match (&expected_form, &value) {
            (Expected::Value(checks), Some(MapValue::Single(v))) => {
                let (actual, bad) = values::judge(checks, v);
                mismatches = bad;
                (values::expected_json(checks), actual, mismatches.is_empty())
            }
            (Expected::Value(checks), Some(MapValue::PerCpu(v))) => {
                let (actual, bad) = values::judge_sum(checks, v);
                mismatches = bad;
                (values::expected_json(checks), actual, mismatches.is_empty())
            }
            (Expected::PerCpu(cpus), Some(MapValue::PerCpu(v))) => {
                let mut actual = Vec::new();
                for (cpu, (checks, value)) in cpus.iter().zip(v).enumerate() {
                    let (got, bad) = values::judge(checks, value);
                    actual.push(got);
                    mismatches.extend(bad.into_iter().map(|mut m| {
                        m.path = if m.path.is_empty() {
                            format!("cpu {cpu}:")
                        } else {
                            format!("cpu {cpu}: {}", m.path)
                        };
                        m
                    }));
                }
                let expected: Vec<Value> = cpus.iter().map(|c| values::expected_json(c)).collect();
                (
                    values::per_cpu_json(&expected),
                    values::per_cpu_json(&actual),
                    mismatches.is_empty(),
                )
            }
            (Expected::Value(checks), None) => (values::expected_json(checks), absent, false),
            (Expected::PerCpu(cpus), _) => {
                let expected: Vec<Value> = cpus.iter().map(|c| values::expected_json(c)).collect();
                (
                    values::per_cpu_json(&expected),
                    value.as_ref().map_or(absent, value_json),
                    false,
                )
            }
            (Expected::Delta(checks), now) => {
                let each = |v: &MapValue| match v {
                    MapValue::Single(bytes) => vec![bytes.clone()],
                    MapValue::PerCpu(all) => all.clone(),
                };
                let zero = vec![vec![0u8; map.value_size()]];
                let now = now.as_ref().map_or(zero, each);
                let before = baseline.map(each);
                let (actual, bad) = values::judge_delta(checks, &now, before.as_deref());
                mismatches = bad;
                let delta = |v: Value| json!(format!("delta {}", plain(&v)));
                (
                    delta(values::expected_json(checks)),
                    delta(actual),
                    mismatches.is_empty(),
                )
            }
            (Expected::Nothing, _) => {
                unreachable!("the parser requires value, per-cpu, absent or delta")
            }
        }
    };
    Ok(MapCheck {
        map: expect.map.clone(),
        key: match &expect.key {
            MapBytes::Int(n) => json!(n),
            fields @ MapBytes::Fields(_) => json!(fields.to_string()),
            _ => json!(hex(&key)),
        },
        expected,
        actual,
        per_cpu,
        mismatches: mismatches.iter().map(ToString::to_string).collect(),
        ok,
    })
}

pub(super) fn value_json(value: &MapValue) -> Value {
    match value.sum_u64() {
        Some(n) => json!(n),
        None => match value {
            MapValue::Single(bytes) => json!(hex(bytes)),
            MapValue::PerCpu(values) => json!(values.iter().map(|v| hex(v)).collect::<Vec<_>>()),
        },
    }
}

/// The ring buffers the scenario's event expectations read, with the records seen so far.
pub(super) struct Events {
    readers: Vec<(RingBufReader, Vec<Vec<u8>>)>,
}

impl Events {
    pub(super) fn open(scenario: &Scenario, program: &mut Program) -> Result<Self, RunError> {
        let mut readers: Vec<(RingBufReader, Vec<Vec<u8>>)> = Vec::new();
        for expect in &scenario.event_expects {
            if readers.iter().any(|(r, _)| r.name() == expect.ringbuf) {
                continue;
            }
            let reader = program
                .take_ringbuf(&expect.ringbuf)
                .map_err(|e| RunError::input(at(scenario, expect.line, &e.to_string())))?;
            readers.push((reader, Vec::new()));
        }
        Ok(Self { readers })
    }

    /// Consumes what the ring buffers hold now, in batches.
    pub(super) fn poll(&mut self) {
        for (reader, records) in &mut self.readers {
            while reader.drain(EVENT_BATCH, |r| records.push(r.to_vec())) == EVENT_BATCH {}
        }
    }

    pub(super) fn check(&mut self, scenario: &Scenario, failures: &mut Vec<String>) {
        self.poll();
        for expect in &scenario.event_expects {
            let records = self
                .readers
                .iter()
                .find(|(r, _)| r.name() == expect.ringbuf)
                .map(|(_, records)| records.as_slice())
                .unwrap_or_default();
            let matching = records.iter().filter(|r| expect.matches(r)).count() as u64;
            if matching != expect.count {
                let filter: Vec<String> = expect
                    .filter
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                failures.push(format!(
                    "ring buffer {}: expected {} event(s){}, got {matching} (of {} read)",
                    expect.ringbuf,
                    expect.count,
                    if filter.is_empty() {
                        String::new()
                    } else {
                        format!(" with {}", filter.join(", "))
                    },
                    records.len()
                ));
            }
        }
    }
}

// test-run

pub(super) fn check_maps(
    scenario: &Scenario,
    owners: &MapOwners<'_>,
    baselines: &[Option<MapValue>],
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    // What the kernel says the program ran on during the flows (none where they do not run).
    let flow_frames: u64 = report
        .flows
        .iter()
        .filter_map(|f| f.frames.as_ref())
        .map(|f| f.seen)
        .sum();
    for (expect, baseline) in scenario.map_expects.iter().zip(baselines) {
        let with_flows;
        // The send groups' share, and what the flows add to it.
        let (expect, flows_share) = match expect.delta {
            Some(delta) if expect.plus_flow_frames => {
                let added = i64::try_from(flow_frames).unwrap_or(i64::MAX);
                report.notes.push(format!(
                    "{}: delta {delta} plus {added} frame(s) of the flows the program ran on \
                     (the kernel's count at its interface)",
                    expect.describe()
                ));
                with_flows = MapExpect {
                    delta: Some(delta.saturating_add(added)),
                    ..expect.clone()
                };
                (&with_flows, Some((delta, added)))
            }
            _ => (expect, None),
        };
        let Some(program) = owners.get(expect.at.as_ref())? else {
            report.notes.push(format!(
                "{} not checked: its [[attach]] program does not run on this path",
                expect.describe()
            ));
            continue;
        };
        let mut check = check_map(
            scenario,
            &program.map(&expect.map)?,
            expect,
            baseline.as_ref(),
        )?;
        // Reported as the send groups' share (the flows' frames, which vary from run to run,
        // are in the note above), so that the same scenario reports the same figures.
        if let Some((delta, added)) = flows_share
            && let Some(change) = check
                .actual
                .as_str()
                .and_then(|a| a.strip_prefix("delta "))
                .and_then(|n| n.parse::<i128>().ok())
        {
            check.expected = json!(format!("delta {delta}"));
            check.actual = json!(format!("delta {}", change - i128::from(added)));
        }
        if !check.ok && !check.mismatches.is_empty() {
            report.failures.push(format!(
                "map {}[{}]: {}",
                check.map,
                plain(&check.key),
                check.mismatches.join("; ")
            ));
        } else if !check.ok {
            report.failures.push(format!(
                "map {}[{}]: expected {}, got {}",
                check.map,
                plain(&check.key),
                plain(&check.expected),
                plain(&check.actual)
            ));
        }
        report.maps.push(check);
    }
    Ok(())
}
