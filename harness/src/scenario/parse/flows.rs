//! `[[flow]]` tables: the raw form and its checks (a known kind, only the keys that kind
//! uses, values in range, two ends in different namespaces), each error at the key or table
//! it is about.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Source, Topo};
use crate::flow::{Compare, Flow, FlowExpect, FlowKind};
use crate::scenario::ScenarioError;
use crate::scenario::flows::FlowSpec;
use crate::scenario::schema::{self, IfaceRef, LabSpec, Side};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[flow]] table")]
pub(super) struct RawFlow {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    from: Option<Spanned<IfaceRef>>,
    to: Option<Spanned<IfaceRef>>,
    ipv6: Option<Spanned<bool>>,
    count: Option<Spanned<u32>>,
    interval: Option<Spanned<String>>,
    size: Option<Spanned<usize>>,
    port: Option<Spanned<u16>>,
    connections: Option<Spanned<u32>>,
    bytes: Option<Spanned<u64>>,
    duration: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    expect: Option<Spanned<String>>,
    max_loss: Option<Spanned<f64>>,
    min_goodput_ratio: Option<Spanned<f64>>,
    compare: Option<Spanned<Vec<Spanned<String>>>>,
    direction: Option<Spanned<String>>,
}

/// A duration key within `min..=max`.
fn duration(
    src: &Source<'_>,
    key: &str,
    value: &Spanned<String>,
    (min, max): (Duration, Duration),
) -> Result<Duration, ScenarioError> {
    let d = schema::parse_duration(value.get_ref()).map_err(|e| src.at_value(&value.span(), e))?;
    if !(min..=max).contains(&d) {
        return Err(src.at_value(
            &value.span(),
            format!(
                "{key} {:?} is out of range ({}..={})",
                value.get_ref(),
                schema::format_duration(min),
                schema::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

/// An integer key within `range`.
fn within<T: PartialOrd + Copy + std::fmt::Display>(
    src: &Source<'_>,
    key: &str,
    value: &Spanned<T>,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ScenarioError> {
    let v = *value.get_ref();
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(src.at_value(
            &value.span(),
            format!(
                "{key} {v} is out of range ({}..={})",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// An `[[expect.map]]`'s `plus-flow-frames`: only beside an integer `delta`, on the program
/// under test's map (the frames are counted at its interface).
pub(super) fn plus_flow_frames(
    src: &Source<'_>,
    map: &str,
    value: Option<&Spanned<bool>>,
    int_delta: bool,
    at: bool,
) -> Result<bool, ScenarioError> {
    let Some(value) = value.filter(|v| *v.get_ref()) else {
        return Ok(false);
    };
    if !int_delta {
        return Err(src.at_value(
            &value.span(),
            format!(
                "map {map:?}: plus-flow-frames adds the flows' frames to an integer delta; give \
                 delta = N (the send groups' share)"
            ),
        ));
    }
    if at {
        return Err(src.at_value(
            &value.span(),
            format!(
                "map {map:?}: plus-flow-frames counts the frames at the program under test's \
                 interface, not at an [[attach]] program's"
            ),
        ));
    }
    Ok(true)
}

/// A flow's `compare` list: known labs, each once, not empty, on a flow expected complete.
fn compare(
    src: &Source<'_>,
    what: &str,
    expect: FlowExpect,
    value: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<Compare>, ScenarioError> {
    if value.get_ref().is_empty() {
        return Err(src.at_value(
            &value.span(),
            format!(
                "{what} compare is empty (leave it out, or list \"{}\")",
                Compare::NAMES.join("\", \"")
            ),
        ));
    }
    if expect != FlowExpect::Complete {
        return Err(src.at_value(
            &value.span(),
            format!(
                "{what} compare measures a flow expected \"complete\", not \"{expect}\" (a \
                 blocked flow has no figure to compare)"
            ),
        ));
    }
    let mut labs = Vec::new();
    for lab in value.get_ref() {
        let parsed: Compare = lab
            .get_ref()
            .parse()
            .map_err(|e: String| src.at_value(&lab.span(), e))?;
        if labs.contains(&parsed) {
            return Err(src.at_value(
                &lab.span(),
                format!("{what} compare lists \"{parsed}\" twice"),
            ));
        }
        labs.push(parsed);
    }
    Ok(labs)
}

/// The other end of the link `iface` is on.
fn peer(topo: &Topo<'_>, end: schema::LinkEnd) -> IfaceRef {
    match topo.links.get(end.link) {
        Some(link) => IfaceRef::from(match end.side {
            Side::A => &link.b,
            Side::B => &link.a,
        }),
        None => IfaceRef::netns(match end.side {
            Side::A => LabSpec::RECEIVER,
            Side::B => LabSpec::SENDER,
        }),
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one check per key, in the order of the documentation's table"
)]
pub(super) fn flows(
    src: &Source<'_>,
    topo: &Topo<'_>,
    lab: &LabSpec,
    raw: Vec<Spanned<RawFlow>>,
) -> Result<Vec<FlowSpec>, ScenarioError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut flows = Vec::with_capacity(raw.len());
    for spanned in raw {
        let line = src.line(&spanned.span());
        let f = spanned.into_inner();
        let name = f.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(src.at_value(&f.name.span(), "flow name is empty"));
        }
        if let Some(first) = seen.insert(name.clone(), line) {
            return Err(src.invalid(
                line,
                format!("duplicate flow name {name:?} (first at line {first})"),
            ));
        }
        let what = format!("flow {name:?}:");
        let Some(kind_value) = &f.kind else {
            return Err(src.invalid(
                line,
                format!(
                    "{what} missing key \"kind\" (one of \"{}\")",
                    FlowKind::NAMES.join("\", \"")
                ),
            ));
        };
        let kind: FlowKind = kind_value
            .get_ref()
            .parse()
            .map_err(|e: String| src.at_value(&kind_value.span(), e))?;
        let Some(expect_value) = &f.expect else {
            return Err(src.invalid(
                line,
                format!("{what} missing key \"expect\" (\"complete\" or \"blocked\")"),
            ));
        };
        let expect = match expect_value.get_ref().as_str() {
            "complete" => FlowExpect::Complete,
            "blocked" => FlowExpect::Blocked,
            other => {
                return Err(src.at_value(
                    &expect_value.span(),
                    format!(
                        "unknown flow expectation {other:?} (expected \"complete\" or \"blocked\")"
                    ),
                ));
            }
        };
        // Keys that only some kinds read: anything else is a mistake worth saying.
        let uses = |key: &str| -> bool {
            match key {
                "count" => matches!(kind, FlowKind::Ping | FlowKind::UdpRr | FlowKind::TcpRr),
                "interval" => kind == FlowKind::Ping,
                "size" => kind != FlowKind::TcpConnect,
                "port" => kind != FlowKind::Ping,
                "connections" => kind == FlowKind::TcpConnect,
                "bytes" | "duration" => kind == FlowKind::TcpStream,
                "max-loss" => matches!(kind, FlowKind::Ping | FlowKind::UdpRr | FlowKind::TcpRr),
                "min-goodput-ratio" | "direction" => kind == FlowKind::TcpStream,
                _ => true,
            }
        };
        let given: [(&str, Option<Range<usize>>); 7] = [
            ("count", f.count.as_ref().map(Spanned::span)),
            ("interval", f.interval.as_ref().map(Spanned::span)),
            ("size", f.size.as_ref().map(Spanned::span)),
            ("port", f.port.as_ref().map(Spanned::span)),
            ("connections", f.connections.as_ref().map(Spanned::span)),
            ("bytes", f.bytes.as_ref().map(Spanned::span)),
            ("duration", f.duration.as_ref().map(Spanned::span)),
        ];
        let max_loss_span = f.max_loss.as_ref().map(Spanned::span);
        let ratio_span = f.min_goodput_ratio.as_ref().map(Spanned::span);
        let direction_span = f.direction.as_ref().map(Spanned::span);
        for (key, span) in given.into_iter().chain([
            ("max-loss", max_loss_span),
            ("min-goodput-ratio", ratio_span),
            ("direction", direction_span),
        ]) {
            if let Some(span) = span
                && !uses(key)
            {
                return Err(src.at_value(
                    &span,
                    format!("{what} {key} does not apply to a {kind} flow"),
                ));
            }
        }
        let mut flow = Flow::new(name.clone(), kind);
        flow.expect = expect;
        if let Some(v) = &f.count {
            flow.count = within(src, "count", v, 1..=Flow::MAX_COUNT)?;
        }
        if let Some(v) = &f.interval {
            flow.interval = duration(
                src,
                "interval",
                v,
                (Duration::from_millis(1), Flow::MAX_INTERVAL),
            )?;
        }
        if let Some(v) = &f.size {
            let min = match kind {
                FlowKind::Ping => 0,
                FlowKind::UdpRr | FlowKind::TcpRr => 4,
                _ => 1,
            };
            flow.size = within(src, "size", v, min..=Flow::MAX_SIZE)?;
        }
        if let Some(v) = &f.port {
            flow.port = within(src, "port", v, 1..=u16::MAX)?;
        }
        if let Some(v) = &f.connections {
            flow.connections = within(src, "connections", v, 1..=Flow::MAX_CONNECTIONS)?;
        }
        if let Some(v) = &f.bytes {
            flow.bytes = within(src, "bytes", v, 1..=Flow::MAX_BYTES)?;
        }
        if let Some(v) = &f.duration {
            flow.duration = Some(duration(
                src,
                "duration",
                v,
                (Duration::from_millis(100), Flow::MAX_DURATION),
            )?);
        }
        if let Some(v) = &f.timeout {
            flow.timeout = duration(
                src,
                "timeout",
                v,
                (Duration::from_millis(10), Duration::from_secs(10)),
            )?;
        }
        if kind == FlowKind::Ping && flow.interval.saturating_mul(flow.count) > Flow::MAX_PING_TIME
        {
            return Err(src.invalid(
                line,
                format!(
                    "{what} {} echoes {} apart take longer than {}: fewer or closer together",
                    flow.count,
                    schema::format_duration(flow.interval),
                    schema::format_duration(Flow::MAX_PING_TIME)
                ),
            ));
        }
        if let Some(v) = &f.max_loss {
            let loss = *v.get_ref();
            if !(0.0..=100.0).contains(&loss) {
                return Err(src.at_value(
                    &v.span(),
                    format!("max-loss {loss} is out of range (0..=100 percent)"),
                ));
            }
            if expect != FlowExpect::Complete {
                return Err(src.at_value(
                    &v.span(),
                    format!(
                        "{what} max-loss bounds a flow expected \"complete\", not \"{expect}\""
                    ),
                ));
            }
            flow.max_loss = Some(loss);
        }
        if let Some(v) = &f.min_goodput_ratio {
            let ratio = *v.get_ref();
            if !(ratio > 0.0 && ratio.is_finite()) {
                return Err(src.at_value(
                    &v.span(),
                    format!("min-goodput-ratio {ratio} must be a number greater than 0"),
                ));
            }
            if expect != FlowExpect::Complete {
                return Err(src.at_value(
                    &v.span(),
                    format!(
                        "{what} min-goodput-ratio bounds a flow expected \"complete\", not \"{expect}\""
                    ),
                ));
            }
            flow.min_goodput_ratio = Some(ratio);
        }
        if let Some(v) = &f.direction {
            flow.reverse = match v.get_ref().as_str() {
                "forward" => false,
                "reverse" => true,
                other => {
                    return Err(src.at_value(
                        &v.span(),
                        format!(
                            "unknown stream direction {other:?} (expected \"forward\" or \"reverse\")"
                        ),
                    ));
                }
            };
        }
        if let Some(v) = &f.compare {
            flow.compare = compare(src, &what, expect, v)?;
        }
        let ipv6 = f.ipv6.as_ref().is_some_and(|v| *v.get_ref());
        if ipv6 && !lab.ipv6 {
            let span = f.ipv6.as_ref().map(Spanned::span).unwrap_or_default();
            return Err(src.at_value(
                &span,
                format!(
                    "{what} ipv6 = true needs [lab] ipv6 = true (the lab turns IPv6 off otherwise)"
                ),
            ));
        }
        let (from, from_end) = topo.sender(src, line, f.from.as_ref(), &what)?;
        let to = match &f.to {
            Some(to) => {
                topo.find(src, to, &format!("{what} to"))?;
                to.get_ref().clone()
            }
            None => peer(topo, from_end),
        };
        if from.netns == to.netns {
            return Err(src.invalid(
                line,
                format!(
                    "{what} from \"{from}\" and to \"{to}\" are in the same namespace: a flow \
                     runs between two namespaces"
                ),
            ));
        }
        flows.push(FlowSpec {
            flow,
            from,
            to,
            ipv6,
            line,
        });
    }
    Ok(flows)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::flow::{Flow, FlowExpect, FlowKind};

    const HEAD: &str = "schema-version = 1\nname = \"t\"\n";
    const BODY: &str = "[program]\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n\n[[send]]\nname = \"one\"\ncount = 1\nipv4 = {}\nexpect = \"pass\"\n";

    fn parse(text: &str) -> Result<crate::scenario::Scenario, String> {
        crate::scenario::parse(text, Path::new("scenarios/t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_flow_takes_the_defaults_of_its_kind_and_goes_to_the_peer() {
        let s = parse(&format!(
            "{HEAD}{BODY}\n[[flow]]\nname = \"p\"\nkind = \"ping\"\nexpect = \"complete\"\n"
        ))
        .expect("parses");
        let f = &s.flows[0];
        assert_eq!(f.flow, Flow::new("p", FlowKind::Ping));
        assert_eq!(
            (f.from.to_string(), f.to.to_string()),
            ("sender".into(), "receiver".into())
        );
        assert_eq!(f.line, 13);
        assert!(!f.ipv6);
    }

    #[test]
    fn a_flow_in_a_topology_defaults_to_the_first_link() {
        let links = "[[link]]\na = \"client:eth0\"\nb = \"dut:in\"\n\n[[link]]\na = \"dut:out\"\nb = \"server:eth0\"\n\n";
        let s = parse(&format!(
            "{HEAD}{links}{BODY}\n[[flow]]\nname = \"s\"\nkind = \"tcp-stream\"\nbytes = 1000\nduration = \"1s\"\nexpect = \"blocked\"\n\n[[flow]]\nname = \"far\"\nkind = \"udp-rr\"\nto = \"server\"\ncount = 7\nmax-loss = 50\nexpect = \"complete\"\n"
        ))
        .expect("parses");
        let (s0, s1) = (&s.flows[0], &s.flows[1]);
        assert_eq!(
            (s0.from.to_string(), s0.to.to_string()),
            ("client:eth0".into(), "dut:in".into())
        );
        assert_eq!(s0.flow.bytes, 1000);
        assert_eq!(s0.flow.duration, Some(std::time::Duration::from_secs(1)));
        assert_eq!(s0.flow.expect, FlowExpect::Blocked);
        assert_eq!(s1.to.to_string(), "server");
        assert_eq!((s1.flow.count, s1.flow.max_loss), (7, Some(50.0)));
    }

    #[test]
    fn a_stream_goes_either_way() {
        let stream = |direction: &str| {
            parse(&format!(
                "{HEAD}{BODY}\n[[flow]]\nname = \"s\"\nkind = \"tcp-stream\"\nexpect = \"complete\"\n{direction}"
            ))
        };
        assert!(!stream("").expect("parses").flows[0].flow.reverse);
        assert!(
            !stream("direction = \"forward\"\n").expect("parses").flows[0]
                .flow
                .reverse
        );
        assert!(
            stream("direction = \"reverse\"\n").expect("parses").flows[0]
                .flow
                .reverse
        );
        let e = stream("direction = \"up\"\n").expect_err("refused");
        assert!(e.contains("unknown stream direction \"up\""), "{e}");
    }

    #[test]
    fn compare_lists_the_other_labs() {
        let s = parse(&format!(
            "{HEAD}{BODY}\n[[flow]]\nname = \"p\"\nkind = \"ping\"\nexpect = \"complete\"\ncompare = [\"xdp-pass\", \"no-program\"]\n"
        ))
        .expect("parses");
        assert_eq!(
            s.flows[0].flow.compare,
            [
                crate::flow::Compare::XdpPass,
                crate::flow::Compare::NoProgram
            ]
        );
        let e = parse(&format!(
            "{HEAD}{BODY}\n[[flow]]\nname = \"p\"\nkind = \"ping\"\nexpect = \"complete\"\ncompare = [\"none\"]\n"
        ))
        .expect_err("refused");
        assert!(e.contains("unknown comparison \"none\""), "{e}");
    }

    #[test]
    fn flows_are_refused_beside_steps() {
        let e = parse(&format!(
            "{HEAD}[[step]]\nload = \"v1\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n\n[[flow]]\nname = \"p\"\nkind = \"ping\"\nexpect = \"complete\"\n"
        ))
        .expect_err("refused");
        assert!(e.contains("move [[flow]] into"), "{e}");
    }
}
