//! Reading a scenario file: TOML into raw tables that mirror the file, then
//! checks that need more than one key, each located at the table it is about.
//!
//! The raw tables deny unknown keys and use no `untagged` or `flatten`, so
//! every serde error comes back from toml with a span that points at the
//! offending key or value.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::ScenarioError;
use super::schema::{
    EtherTypeValue, FilterRule, IpProtoValue, LabSpec, MapBytes, MapExpect, ObjectRef, PORT_PROTOS,
    ProgramSpec, SCHEMA_VERSION, Scenario, SendGroup, XdpModeSpec,
};
use crate::frame::{
    ArpSpec, EthSpec, FrameSpec, HexBytes, IcmpSpec, Icmpv6Spec, Ipv4Spec, Ipv6Spec, TcpSpec,
    UdpSpec, VlanSpec,
};
use crate::verdict::Verdict;

/// Only the version, read first so a file written for a newer schema gets
/// "unsupported version" rather than complaints about keys it does not know.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(rename = "schema-version")]
    schema_version: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    /// Checked by [`VersionProbe`]; listed so it is not an unknown key.
    #[serde(rename = "schema-version")]
    _schema_version: IgnoredAny,
    name: Spanned<String>,
    description: Option<String>,
    skip: Option<Spanned<String>>,
    lab: Option<RawLab>,
    program: RawProgram,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    send: Vec<Spanned<RawSend>>,
    expect: Option<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLab {
    mtu: Option<Spanned<u32>>,
    ipv6: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProgram {
    object: Spanned<String>,
    entry: Spanned<String>,
    mode: Option<XdpModeSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRule {
    ethertype: Option<EtherTypeValue>,
    ip_proto: Option<IpProtoValue>,
    dst_port: Option<u16>,
    action: Verdict,
}

/// A `[[send]]` table: the group's own keys and the [`FrameSpec`] keys side
/// by side, spelled out rather than flattened so unknown keys are caught.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSend {
    name: String,
    count: u32,
    expect: Verdict,
    eth: Option<EthSpec>,
    #[serde(default)]
    vlan: Vec<VlanSpec>,
    arp: Option<ArpSpec>,
    ipv4: Option<Ipv4Spec>,
    ipv6: Option<Ipv6Spec>,
    udp: Option<UdpSpec>,
    tcp: Option<TcpSpec>,
    icmp: Option<IcmpSpec>,
    icmpv6: Option<Icmpv6Spec>,
    payload: Option<HexBytes>,
    size: Option<usize>,
    #[serde(default)]
    truncate: bool,
    raw: Option<HexBytes>,
}

impl RawSend {
    fn frame(&self) -> FrameSpec {
        FrameSpec {
            eth: self.eth.clone(),
            vlan: self.vlan.clone(),
            arp: self.arp.clone(),
            ipv4: self.ipv4.clone(),
            ipv6: self.ipv6.clone(),
            udp: self.udp.clone(),
            tcp: self.tcp.clone(),
            icmp: self.icmp.clone(),
            icmpv6: self.icmpv6.clone(),
            payload: self.payload.clone(),
            size: self.size,
            truncate: self.truncate,
            raw: self.raw.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawExpect {
    #[serde(default)]
    map: Vec<Spanned<RawMapExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMapExpect {
    map: String,
    key: MapBytes,
    value: Option<MapBytes>,
    per_cpu: Option<Vec<u64>>,
    absent: Option<bool>,
}

/// Most send groups: the tag's group field is 16 bits.
const MAX_SEND_GROUPS: usize = 1 << 16;

/// The file being parsed, for locating errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.line_col(span.start).0
    }

    fn parse_error(&self, error: &toml::de::Error) -> ScenarioError {
        let (line, col) = self.line_col(error.span().map_or(0, |s| s.start));
        ScenarioError::Parse {
            path: self.path.to_owned(),
            line,
            col,
            // serde quotes names with backticks; the rest of xdplab's
            // messages use double quotes.
            message: error.message().replace('`', "\""),
        }
    }

    fn invalid(&self, line: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_owned(),
            line,
            message: message.into(),
        }
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let src = Source { path, text };
    let probe: VersionProbe = toml::from_str(text).map_err(|e| src.parse_error(&e))?;
    let Some(version) = probe.schema_version else {
        return Err(ScenarioError::Parse {
            path: path.to_owned(),
            line: 1,
            col: 1,
            message: format!(
                "missing key \"schema-version\" (this xdplab reads schema-version = {SCHEMA_VERSION})"
            ),
        });
    };
    if version.get_ref().as_integer() != Some(SCHEMA_VERSION) {
        return Err(src.invalid(
            src.line(&version.span()),
            format!(
                "schema-version {} is not supported (this xdplab reads schema-version = {SCHEMA_VERSION})",
                version.get_ref()
            ),
        ));
    }
    let raw: RawScenario = toml::from_str(text).map_err(|e| src.parse_error(&e))?;

    let name = raw.name.get_ref().trim();
    if name.is_empty() {
        return Err(src.invalid(src.line(&raw.name.span()), "scenario name is empty"));
    }
    if let Some(skip) = &raw.skip
        && skip.get_ref().trim().is_empty()
    {
        return Err(src.invalid(
            src.line(&skip.span()),
            "skip gives no reason (say why the scenario is skipped)",
        ));
    }

    let program = program(&src, raw.program)?;
    let lab = lab(&src, raw.lab, program.mode)?;
    let rules = rules(&src, &raw.rule, &program)?;
    let sends = sends(&src, raw.send, &lab)?;
    let map_expects = map_expects(&src, raw.expect)?;

    Ok(Scenario {
        path: path.to_owned(),
        name: name.to_owned(),
        description: raw.description,
        skip: raw.skip.map(Spanned::into_inner),
        lab,
        program,
        rules,
        sends,
        map_expects,
    })
}

fn lab(src: &Source<'_>, raw: Option<RawLab>, mode: XdpModeSpec) -> Result<LabSpec, ScenarioError> {
    let mut lab = LabSpec::default();
    let Some(raw) = raw else {
        return Ok(lab);
    };
    if let Some(mtu) = raw.mtu {
        let value = *mtu.get_ref();
        if !(LabSpec::MIN_MTU..=LabSpec::MAX_MTU).contains(&value) {
            return Err(src.invalid(
                src.line(&mtu.span()),
                format!(
                    "lab mtu {value} is out of range ({}..={})",
                    LabSpec::MIN_MTU,
                    LabSpec::MAX_MTU
                ),
            ));
        }
        if mode == XdpModeSpec::Native && value > LabSpec::MAX_NATIVE_MTU {
            return Err(src.invalid(
                src.line(&mtu.span()),
                format!(
                    "lab mtu {value} is too large for native XDP on veth (at most {} without \
                     xdp.frags); use a smaller mtu or mode = \"generic\"",
                    LabSpec::MAX_NATIVE_MTU
                ),
            ));
        }
        lab.mtu = value;
    }
    if let Some(ipv6) = raw.ipv6 {
        lab.ipv6 = ipv6;
    }
    Ok(lab)
}

fn program(src: &Source<'_>, raw: RawProgram) -> Result<ProgramSpec, ScenarioError> {
    let object = raw.object.get_ref();
    if object.trim().is_empty() {
        return Err(src.invalid(src.line(&raw.object.span()), "program object is empty"));
    }
    let entry = raw.entry.get_ref();
    if entry.trim().is_empty() {
        return Err(src.invalid(src.line(&raw.entry.span()), "program entry is empty"));
    }
    // An empty parent means the file is in the working directory.
    let dir = src.path.parent().unwrap_or(Path::new(""));
    Ok(ProgramSpec {
        object: ObjectRef::resolve(object, dir),
        entry: entry.clone(),
        mode: raw.mode.unwrap_or_default(),
    })
}

fn rules(
    src: &Source<'_>,
    raw: &[Spanned<RawRule>],
    program: &ProgramSpec,
) -> Result<Vec<FilterRule>, ScenarioError> {
    if let (Some(first), ObjectRef::Bundled(name)) = (raw.first(), &program.object)
        && name != "xdp_filter"
    {
        return Err(src.invalid(
            src.line(&first.span()),
            format!("[[rule]] is for the bundled xdp_filter program; {name} has no rules"),
        ));
    }
    if let Some(extra) = raw.get(FilterRule::MAX) {
        return Err(src.invalid(
            src.line(&extra.span()),
            format!(
                "too many rules ({}): xdp_filter holds at most {}",
                raw.len(),
                FilterRule::MAX
            ),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, spanned)| {
            let line = src.line(&spanned.span());
            let rule = spanned.get_ref();
            let number = i + 1;
            if rule.ethertype.is_none() && rule.ip_proto.is_none() && rule.dst_port.is_none() {
                return Err(src.invalid(
                    line,
                    format!("rule {number} matches nothing: set ethertype, ip-proto or dst-port"),
                ));
            }
            if rule.dst_port.is_some() && !rule.ip_proto.is_some_and(|p| PORT_PROTOS.contains(&p.0))
            {
                return Err(src.invalid(
                    line,
                    format!(
                        "rule {number}: dst-port needs ip-proto \"tcp\", \"udp\", \"sctp\" or \"udplite\""
                    ),
                ));
            }
            if rule.ip_proto.is_some()
                && rule
                    .ethertype
                    .is_some_and(|e| !matches!(e.0, 0x0800 | 0x86dd))
            {
                return Err(src.invalid(
                    line,
                    format!(
                        "rule {number}: ip-proto needs ethertype \"ipv4\" or \"ipv6\" (or none)"
                    ),
                ));
            }
            Ok(FilterRule {
                ethertype: rule.ethertype.map(|e| e.0),
                ip_proto: rule.ip_proto.map(|p| p.0),
                dst_port: rule.dst_port,
                action: rule.action,
                line,
            })
        })
        .collect()
}

fn sends(
    src: &Source<'_>,
    raw: Vec<Spanned<RawSend>>,
    lab: &LabSpec,
) -> Result<Vec<SendGroup>, ScenarioError> {
    if raw.is_empty() {
        return Err(src.invalid(1, "no [[send]] groups: a scenario sends at least one"));
    }
    if let Some(extra) = raw.get(MAX_SEND_GROUPS) {
        return Err(src.invalid(
            src.line(&extra.span()),
            format!("too many send groups: at most {MAX_SEND_GROUPS}"),
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut groups = Vec::with_capacity(raw.len());
    for spanned in raw {
        let line = src.line(&spanned.span());
        let send = spanned.into_inner();
        let name = send.name.trim();
        if name.is_empty() {
            return Err(src.invalid(line, "send group name is empty"));
        }
        if let Some(first) = seen.insert(name.to_owned(), line) {
            return Err(src.invalid(
                line,
                format!("duplicate send group name {name:?} (first at line {first})"),
            ));
        }
        let group = |message: String| src.invalid(line, format!("send group {name:?}: {message}"));
        if !(1..=SendGroup::MAX_COUNT).contains(&send.count) {
            return Err(group(format!(
                "count {} is out of range (1..={})",
                send.count,
                SendGroup::MAX_COUNT
            )));
        }
        let frame = send.frame();
        frame
            .validate(lab.max_frame_len(&frame))
            .map_err(|e| group(e.to_string()))?;
        groups.push(SendGroup {
            name: name.to_owned(),
            count: send.count,
            frame,
            expect: send.expect,
            line,
        });
    }
    Ok(groups)
}

fn map_expects(src: &Source<'_>, raw: Option<RawExpect>) -> Result<Vec<MapExpect>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.map
        .into_iter()
        .map(|spanned| {
            let line = src.line(&spanned.span());
            let m = spanned.into_inner();
            if m.map.trim().is_empty() {
                return Err(src.invalid(line, "map expectation names no map"));
            }
            let absent = m.absent.unwrap_or(false);
            let given = usize::from(m.value.is_some())
                + usize::from(m.per_cpu.is_some())
                + usize::from(absent);
            if given != 1 {
                return Err(src.invalid(
                    line,
                    format!(
                        "map {:?}: give exactly one of value, per-cpu or absent = true",
                        m.map
                    ),
                ));
            }
            if m.per_cpu.as_ref().is_some_and(Vec::is_empty) {
                return Err(src.invalid(line, format!("map {:?}: per-cpu lists no values", m.map)));
            }
            Ok(MapExpect {
                map: m.map,
                key: m.key,
                value: m.value,
                per_cpu: m.per_cpu,
                absent,
                line,
            })
        })
        .collect()
}
