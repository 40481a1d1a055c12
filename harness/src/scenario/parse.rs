//! Reading a scenario file: TOML into raw tables that mirror the file, then
//! checks that need more than one key, each located at the table or value it
//! is about.
//!
//! The raw tables deny unknown keys and use no `untagged` or `flatten`, so
//! every serde error comes back from toml with a span that points at the
//! offending key or value.
//!
//! Checks run in dependency order: the topology first (`[[link]]`), then
//! everything that names an interface in it (`[program] attach`,
//! `[[attach]]`, `from`, `redirect-to`, `ifindex` struct fields), then the
//! MTU rules that depend on where native programs sit.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::schema::{
    self, AttachSpec, Endpoint, EtherTypeValue, EventExpect, FilterRule, FrameSource, IfaceRef,
    IpProtoValue, LabSpec, LinkEnd, LinkSpec, MapBytes, MapDelta, MapExpect, MapSetup, PORT_PROTOS,
    ProgramSpec, SCHEMA_VERSION, Scenario, SendGroup, ThroughputSpec, WhereTable,
};
use super::{LoaderSpec, ScenarioError};
use crate::bench::{BenchProgram, InjectorKind};
use crate::frame::{
    ArpSpec, ETH_HEADER_LEN, EthSpec, FrameSpec, HexBytes, IcmpSpec, Icmpv6Spec, Ipv4Spec,
    Ipv6Spec, TcpSpec, UdpSpec, VlanSpec, starts_with_8021q,
};
use crate::host::requires::Requirement;
use crate::kernel::program::{GlobalValue, ObjectSource, XdpMode};
use crate::verdict::Verdict;
use crate::verdict::output::OutputSpec;

pub mod caps;
mod flows;
mod kernel_state;
mod steps;

use caps::{MAX_FLOWS, MAX_SEND_GROUPS, MAX_STEPS};

/// Only the version, read first so a file written for a newer schema gets
/// "unsupported version" rather than complaints about keys it does not know.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(rename = "schema-version")]
    schema_version: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a scenario file")]
struct RawScenario {
    /// Checked by [`VersionProbe`]; listed so it is not an unknown key.
    #[serde(rename = "schema-version")]
    _schema_version: IgnoredAny,
    name: Spanned<String>,
    description: Option<String>,
    skip: Option<Spanned<String>>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    lab: Option<RawLab>,
    #[serde(default)]
    link: Vec<Spanned<RawLink>>,
    #[serde(default)]
    netns: Vec<Spanned<kernel_state::RawNetns>>,
    program: Option<Spanned<RawProgram>>,
    #[serde(default)]
    attach: Vec<Spanned<RawAttach>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    send: Vec<Spanned<RawSend>>,
    setup: Option<RawSetup>,
    expect: Option<RawExpect>,
    throughput: Option<Spanned<RawThroughput>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
    #[serde(default)]
    flow: Vec<Spanned<flows::RawFlow>>,
}

/// A `[[step]]` table: one verb key (`load`, `attach`, `send`, ...) and the
/// keys that go with it, checked per verb in [`steps`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    load: Option<Spanned<String>>,
    attach: Option<Spanned<String>>,
    send: Option<Spanned<RawSend>>,
    wait: Option<Spanned<String>>,
    sleep: Option<Spanned<String>>,
    replace: Option<Spanned<String>>,
    rollback: Option<Spanned<String>>,
    detach: Option<Spanned<String>>,
    restart: Option<Spanned<bool>>,
    unpin: Option<Spanned<Vec<String>>>,
    expect: Option<Spanned<RawStepExpect>>,
    object: Option<Spanned<String>>,
    entry: Option<Spanned<String>>,
    globals: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
    to: Option<Spanned<IfaceRef>>,
    mode: Option<Spanned<XdpMode>>,
    link: Option<Spanned<String>>,
    background: Option<Spanned<String>>,
    frames: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStepExpect {
    #[serde(default)]
    map: Vec<Spanned<RawMapExpect>>,
    link: Option<Spanned<String>>,
    runs: Option<Spanned<String>>,
    attached: Option<Spanned<bool>>,
    pins: Option<Spanned<Vec<String>>>,
    trace: Option<Spanned<RawTrace>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTrace {
    group: String,
    versions: Vec<String>,
    map: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [lab] table")]
struct RawLab {
    mtu: Option<Spanned<u32>>,
    ipv6: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[link]] table")]
struct RawLink {
    a: Spanned<Endpoint>,
    b: Spanned<Endpoint>,
    mtu: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [program] table")]
struct RawProgram {
    object: Spanned<String>,
    entry: Spanned<String>,
    mode: Option<XdpMode>,
    attach: Option<Spanned<IfaceRef>>,
    pin: Option<bool>,
    #[serde(rename = "type")]
    program_type: Option<Spanned<String>>,
    globals: Option<Spanned<std::collections::BTreeMap<String, toml::Value>>>,
    max_entries: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an [[attach]] table")]
struct RawAttach {
    at: Spanned<IfaceRef>,
    object: Spanned<String>,
    entry: Spanned<String>,
    mode: Option<XdpMode>,
    #[serde(rename = "type")]
    program_type: Option<Spanned<String>>,
    globals: Option<Spanned<std::collections::BTreeMap<String, toml::Value>>>,
    max_entries: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[rule]] table")]
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
#[serde(expecting = "a [[send]] table")]
struct RawSend {
    name: String,
    count: Option<u32>,
    expect: Verdict,
    from: Option<Spanned<IfaceRef>>,
    redirect_to: Option<Spanned<IfaceRef>>,
    output: Option<OutputSpec>,
    pcap: Option<String>,
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

    /// The first frame key given, in table order, for conflicts with `pcap`.
    fn first_frame_key(&self) -> Option<&'static str> {
        [
            ("eth", self.eth.is_some()),
            ("vlan", !self.vlan.is_empty()),
            ("arp", self.arp.is_some()),
            ("ipv4", self.ipv4.is_some()),
            ("ipv6", self.ipv6.is_some()),
            ("udp", self.udp.is_some()),
            ("tcp", self.tcp.is_some()),
            ("icmp", self.icmp.is_some()),
            ("icmpv6", self.icmpv6.is_some()),
            ("payload", self.payload.is_some()),
            ("size", self.size.is_some()),
            ("truncate", self.truncate),
            ("raw", self.raw.is_some()),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(key, _)| key)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [setup] table")]
struct RawSetup {
    #[serde(default)]
    map: Vec<Spanned<RawMapSetup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [[setup.map]] table")]
struct RawMapSetup {
    map: String,
    key: Spanned<MapBytes>,
    value: Option<Spanned<MapBytes>>,
    program: Option<Spanned<String>>,
    at: Option<Spanned<IfaceRef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an [expect] table")]
struct RawExpect {
    #[serde(default)]
    map: Vec<Spanned<RawMapExpect>>,
    #[serde(default)]
    events: Vec<Spanned<RawEvents>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an [[expect.map]] table")]
struct RawMapExpect {
    map: String,
    key: Spanned<MapBytes>,
    value: Option<Spanned<MapBytes>>,
    per_cpu: Option<Vec<Spanned<MapBytes>>>,
    absent: Option<bool>,
    delta: Option<MapDelta>,
    at: Option<Spanned<IfaceRef>>,
    plus_flow_frames: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "an [[expect.events]] table")]
struct RawEvents {
    ringbuf: String,
    layout: Spanned<Vec<Spanned<String>>>,
    #[serde(rename = "where")]
    filter: Option<Spanned<WhereTable>>,
    count: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a [throughput] table")]
struct RawThroughput {
    injector: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    size: Option<Spanned<usize>>,
    threads: Option<Spanned<usize>>,
    baseline: Option<Spanned<String>>,
    min_ratio: Option<Spanned<f64>>,
}

/// The file being parsed, for locating errors.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    /// Byte offset of each line's start: located errors and the line of every table are
    /// looked up here, not counted from the start of the file each time (which made a file of
    /// 65536 send groups take minutes to read).
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(path: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before the offset.
        let index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[index];
        (index + 1, self.text[line_start..offset].chars().count() + 1)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.line_col(span.start).0
    }

    fn parse_error(&self, error: &toml::de::Error) -> ScenarioError {
        let (line, col) = self.line_col(error.span().map_or(0, |s| s.start));
        // serde quotes names with backticks; the rest of xdplab's
        // messages use double quotes.
        let mut message = error.message().replace('`', "\"");
        // toml says only "duplicate key"; its span covers the key, so name it.
        if message == "duplicate key"
            && let Some(key) = error.span().and_then(|s| self.text.get(s))
            && !key.trim().is_empty()
        {
            message = format!("duplicate key {:?}", key.trim());
        }
        ScenarioError::Parse {
            path: self.path.to_owned(),
            line,
            col,
            message,
        }
    }

    /// An error about one value, at its line and column.
    fn at_value(&self, span: &Range<usize>, message: impl Into<String>) -> ScenarioError {
        let (line, col) = self.line_col(span.start);
        ScenarioError::Parse {
            path: self.path.to_owned(),
            line,
            col,
            message: message.into(),
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

/// The topology, for resolving interface references.
struct Topo<'a> {
    links: &'a [LinkSpec],
}

impl Topo<'_> {
    /// Where groups and flows send from unless they say: the first link's `a` end, or the
    /// default lab's sender.
    fn default_from(&self) -> IfaceRef {
        match self.links.first() {
            Some(link) => IfaceRef::from(&link.a),
            None => IfaceRef::netns(LabSpec::SENDER),
        }
    }

    /// The interface a group or flow sends from (`from`, else [`Topo::default_from`]) and
    /// where it sits; an error at `from`'s line, else the table's `line`.
    fn sender(
        &self,
        src: &Source<'_>,
        line: usize,
        from: Option<&Spanned<IfaceRef>>,
        what: &str,
    ) -> Result<(IfaceRef, LinkEnd), ScenarioError> {
        let what = format!("{what} from");
        match from {
            Some(from) => Ok((from.get_ref().clone(), self.find(src, from, &what)?)),
            None => {
                let from = self.default_from();
                let end = self.find_at(src, line, &from, &what)?;
                Ok((from, end))
            }
        }
    }

    /// Where `iface` sits, or an error at its line naming `what` refers to it.
    fn find(
        &self,
        src: &Source<'_>,
        iface: &Spanned<IfaceRef>,
        what: &str,
    ) -> Result<LinkEnd, ScenarioError> {
        self.find_at(src, src.line(&iface.span()), iface.get_ref(), what)
    }

    fn find_at(
        &self,
        src: &Source<'_>,
        line: usize,
        iface: &IfaceRef,
        what: &str,
    ) -> Result<LinkEnd, ScenarioError> {
        schema::resolve(self.links, iface)
            .map_err(|message| src.invalid(line, format!("{what} \"{iface}\": {message}")))
    }

    /// The interface's full name for messages: `"dut:in"`, or `"receiver"`
    /// in the default lab.
    fn name(&self, end: LinkEnd) -> String {
        match self.links.get(end.link) {
            Some(link) => match end.side {
                schema::Side::A => link.a.to_string(),
                schema::Side::B => link.b.to_string(),
            },
            None => match end.side {
                schema::Side::A => LabSpec::SENDER.to_owned(),
                schema::Side::B => LabSpec::RECEIVER.to_owned(),
            },
        }
    }

    /// Checks every `ifindex` in a map key or value.
    fn check_map_bytes(
        &self,
        src: &Source<'_>,
        bytes: &Spanned<MapBytes>,
        map: &str,
    ) -> Result<(), ScenarioError> {
        for iface in bytes.get_ref().ifaces() {
            self.find_at(
                src,
                src.line(&bytes.span()),
                iface,
                &format!("map {map:?}: ifindex"),
            )?;
        }
        Ok(())
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let src = Source::new(path, text);
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

    let requires = raw
        .requires
        .iter()
        .map(|r| {
            r.get_ref()
                .parse::<Requirement>()
                .map_err(|e| src.invalid(src.line(&r.span()), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (lab, lab_mtu_line) = lab(&src, raw.lab)?;
    let links = links(&src, raw.link)?;
    let topo = Topo { links: &links };
    let netns = kernel_state::netns(&src, &topo, &lab, raw.netns)?;
    if !raw.step.is_empty() {
        let first = src.line(&raw.step[0].span());
        let tables: [(&str, bool); 8] = [
            ("[program]", raw.program.is_some()),
            ("[[attach]]", !raw.attach.is_empty()),
            ("[[rule]]", !raw.rule.is_empty()),
            ("[[send]]", !raw.send.is_empty()),
            ("[setup]", raw.setup.is_some()),
            ("[expect]", raw.expect.is_some()),
            ("[throughput]", raw.throughput.is_some()),
            ("[[flow]]", !raw.flow.is_empty()),
        ];
        if let Some((table, _)) = tables.iter().find(|(_, given)| *given) {
            return Err(src.invalid(
                first,
                format!(
                    "a scenario with [[step]] says everything in its steps: move {table} into \
                     load, attach, send and expect steps"
                ),
            ));
        }
        if let Some(extra) = raw.step.get(MAX_STEPS) {
            return Err(src.invalid(
                src.line(&extra.span()),
                format!("too many steps: at most {MAX_STEPS}"),
            ));
        }
        let (program, sends, steps) = steps::steps(&src, &topo, &lab, raw.step)?;
        let scenario = Scenario {
            path: path.to_owned(),
            name: name.to_owned(),
            description: raw.description,
            skip: raw.skip.map(Spanned::into_inner),
            requires,
            lab,
            links,
            netns,
            program,
            attachments: Vec::new(),
            rules: Vec::new(),
            sends,
            map_setup: Vec::new(),
            map_expects: Vec::new(),
            event_expects: Vec::new(),
            throughput: None,
            steps,
            flows: Vec::new(),
        };
        caps::check(&src, &scenario)?;
        return Ok(scenario);
    }
    let Some(raw_program) = raw.program else {
        return Err(src.invalid(
            1,
            "missing table [program] (or a [[step]] sequence that loads and attaches programs)",
        ));
    };
    let (program, program_end) = program(&src, &topo, raw_program.into_inner())?;
    let attachments = attachments(&src, &topo, raw.attach, program_end)?;
    let rules = rules(&src, &raw.rule, &program)?;
    let sends = sends(&src, &topo, raw.send, &lab, &program, program_end)?;
    native_mtus(
        &src,
        &topo,
        &lab,
        lab_mtu_line,
        &program,
        program_end,
        &attachments,
    )?;
    let owners: Vec<LinkEnd> = attachments.iter().map(|(_, end)| *end).collect();
    let map_setup = map_setup(&src, &topo, raw.setup, &owners)?;
    let (map_expects, event_expects) = expects(&src, &topo, raw.expect, &owners)?;
    let throughput = raw
        .throughput
        .map(|t| throughput(&src, &links, &program.entry, t))
        .transpose()?;
    if let Some(extra) = raw.flow.get(MAX_FLOWS) {
        return Err(src.invalid(
            src.line(&extra.span()),
            format!("too many flows: at most {MAX_FLOWS}"),
        ));
    }
    let flows = flows::flows(&src, &topo, &lab, raw.flow)?;

    let scenario = Scenario {
        path: path.to_owned(),
        name: name.to_owned(),
        description: raw.description,
        skip: raw.skip.map(Spanned::into_inner),
        requires,
        lab,
        links,
        netns,
        program,
        attachments: attachments.into_iter().map(|(a, _)| a).collect(),
        rules,
        sends,
        map_setup,
        map_expects,
        event_expects,
        throughput,
        steps: Vec::new(),
        flows,
    };
    caps::check(&src, &scenario)?;
    Ok(scenario)
}

/// The lab settings, and the line of `mtu` when the file gives one.
fn lab(src: &Source<'_>, raw: Option<RawLab>) -> Result<(LabSpec, Option<usize>), ScenarioError> {
    let mut lab = LabSpec::default();
    let Some(raw) = raw else {
        return Ok((lab, None));
    };
    let mut mtu_line = None;
    if let Some(mtu) = raw.mtu {
        let line = src.line(&mtu.span());
        lab.mtu = check_mtu(src, line, "lab", *mtu.get_ref())?;
        mtu_line = Some(line);
    }
    if let Some(ipv6) = raw.ipv6 {
        lab.ipv6 = ipv6;
    }
    Ok((lab, mtu_line))
}

fn check_mtu(src: &Source<'_>, line: usize, what: &str, value: u32) -> Result<u32, ScenarioError> {
    if !(LabSpec::MIN_MTU..=LabSpec::MAX_MTU).contains(&value) {
        return Err(src.invalid(
            line,
            format!(
                "{what} mtu {value} is out of range ({}..={})",
                LabSpec::MIN_MTU,
                LabSpec::MAX_MTU
            ),
        ));
    }
    Ok(value)
}

fn links(src: &Source<'_>, raw: Vec<Spanned<RawLink>>) -> Result<Vec<LinkSpec>, ScenarioError> {
    if let Some(extra) = raw.get(LabSpec::MAX_LINKS) {
        return Err(src.invalid(
            src.line(&extra.span()),
            format!(
                "too many links ({}): at most {}",
                raw.len(),
                LabSpec::MAX_LINKS
            ),
        ));
    }
    let mut seen: HashMap<Endpoint, usize> = HashMap::new();
    let mut links = Vec::with_capacity(raw.len());
    for spanned in raw {
        let line = src.line(&spanned.span());
        let link = spanned.into_inner();
        let (a, b) = (link.a.into_inner(), link.b.into_inner());
        if a.netns == b.netns {
            return Err(src.invalid(
                line,
                format!(
                    "link {a} <-> {b} joins namespace {:?} to itself: the ends of a link are in \
                     different namespaces",
                    a.netns
                ),
            ));
        }
        for end in [&a, &b] {
            if let Some(first) = seen.insert(end.clone(), line) {
                return Err(src.invalid(
                    line,
                    format!("interface \"{end}\" is already an end of the link at line {first}"),
                ));
            }
        }
        let mtu = link
            .mtu
            .map(|mtu| check_mtu(src, src.line(&mtu.span()), "link", *mtu.get_ref()))
            .transpose()?;
        links.push(LinkSpec { a, b, mtu, line });
    }
    Ok(links)
}

/// An object and entry, checked: neither empty.
fn object_and_entry(
    src: &Source<'_>,
    object: &Spanned<String>,
    entry: &Spanned<String>,
    what: &str,
) -> Result<(ObjectSource, String), ScenarioError> {
    if object.get_ref().trim().is_empty() {
        return Err(src.invalid(src.line(&object.span()), format!("{what} object is empty")));
    }
    if entry.get_ref().trim().is_empty() {
        return Err(src.invalid(src.line(&entry.span()), format!("{what} entry is empty")));
    }
    // An empty parent means the file is in the working directory.
    let dir = src.path.parent().unwrap_or(Path::new(""));
    Ok((
        ObjectSource::resolve(object.get_ref(), dir),
        entry.get_ref().clone(),
    ))
}

fn program(
    src: &Source<'_>,
    topo: &Topo<'_>,
    raw: RawProgram,
) -> Result<(ProgramSpec, LinkEnd), ScenarioError> {
    let (object, entry) = object_and_entry(src, &raw.object, &raw.entry, "program")?;
    let (attach, end) = match raw.attach {
        Some(attach) => {
            let end = topo.find(src, &attach, "program attach")?;
            (attach.into_inner(), end)
        }
        None => {
            let attach = match topo.links.first() {
                Some(link) => IfaceRef::from(&link.b),
                None => IfaceRef::netns(LabSpec::RECEIVER),
            };
            let end = topo.find_at(src, 1, &attach, "program attach")?;
            (attach, end)
        }
    };
    Ok((
        ProgramSpec {
            object,
            entry,
            mode: raw.mode.unwrap_or_default(),
            attach,
            object_line: src.line(&raw.object.span()),
            entry_line: src.line(&raw.entry.span()),
            pin: raw.pin.unwrap_or(false),
            loader: loader_spec(src, raw.program_type, raw.globals, raw.max_entries)?,
        },
        end,
    ))
}

fn attachments(
    src: &Source<'_>,
    topo: &Topo<'_>,
    raw: Vec<Spanned<RawAttach>>,
    program_end: LinkEnd,
) -> Result<Vec<(AttachSpec, LinkEnd)>, ScenarioError> {
    let mut taken: HashMap<LinkEnd, String> = HashMap::new();
    taken.insert(program_end, "[program]".to_owned());
    let mut out = Vec::with_capacity(raw.len());
    for spanned in raw {
        let line = src.line(&spanned.span());
        let raw = spanned.into_inner();
        let end = topo.find(src, &raw.at, "[[attach]] at")?;
        let name = topo.name(end);
        if let Some(other) = taken.insert(end, format!("the [[attach]] at line {line}")) {
            return Err(src.invalid(
                src.line(&raw.at.span()),
                format!(
                    "interface \"{name}\" already has a program ({other}): at most one per \
                     interface"
                ),
            ));
        }
        let (object, entry) = object_and_entry(src, &raw.object, &raw.entry, "[[attach]]")?;
        out.push((
            AttachSpec {
                at: raw.at.into_inner(),
                object,
                entry,
                mode: raw.mode.unwrap_or_default(),
                line,
                loader: loader_spec(src, raw.program_type, raw.globals, raw.max_entries)?,
            },
            end,
        ));
    }
    Ok(out)
}

/// veth takes at most [`LabSpec::MAX_NATIVE_MTU`] on a link with a native
/// program on either end, unless the program is `xdp.frags` (multi-buffer: veth
/// then takes any MTU). The landing end of a native redirect or XDP_TX needs
/// XDP too (a veth drops the `xdp_frame`s it is handed unless it runs NAPI),
/// but the runner puts a program there that fits the link: `xdp_pass`, or
/// the frags `xdp_frags_limit` above the cap.
fn native_mtus(
    src: &Source<'_>,
    topo: &Topo<'_>,
    lab: &LabSpec,
    lab_mtu_line: Option<usize>,
    program: &ProgramSpec,
    program_end: LinkEnd,
    attachments: &[(AttachSpec, LinkEnd)],
) -> Result<(), ScenarioError> {
    let mut needs: Vec<(LinkEnd, String)> = Vec::new();
    let runs = |end: LinkEnd| format!("\"{}\" runs a native program", topo.name(end));
    if program.mode == XdpMode::Native
        && !frags(&program.object, &program.entry, program.loader.program_type)
    {
        needs.push((program_end, runs(program_end)));
    }
    for (attach, end) in attachments {
        if attach.mode == XdpMode::Native
            && !frags(&attach.object, &attach.entry, attach.loader.program_type)
        {
            needs.push((*end, runs(*end)));
        }
    }
    let max = LabSpec::MAX_NATIVE_MTU;
    for (end, why) in needs {
        let Some(link) = topo.links.get(end.link) else {
            // The default lab: the lab's MTU is the link's.
            if lab.mtu > max {
                return Err(src.invalid(
                    lab_mtu_line.unwrap_or(1),
                    format!(
                        "lab mtu {} is too large for native XDP on veth (at most {max} without \
                         xdp.frags); use a smaller mtu or mode = \"generic\"",
                        lab.mtu
                    ),
                ));
            }
            continue;
        };
        match link.mtu {
            Some(mtu) if mtu > max => {
                return Err(src.invalid(
                    link.line,
                    format!(
                        "link mtu {mtu} is too large for native XDP on veth (at most {max} \
                         without xdp.frags), and {why}; use a smaller mtu or mode = \"generic\""
                    ),
                ));
            }
            None if lab.mtu > max => {
                return Err(src.invalid(
                    lab_mtu_line.unwrap_or(link.line),
                    format!(
                        "lab mtu {} is too large for native XDP on veth (at most {max} without \
                         xdp.frags), and link {link} has no mtu of its own while {why}; give \
                         the link a smaller mtu or use mode = \"generic\"",
                        lab.mtu
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `entry` is an `xdp.frags` program, which veth runs natively under any MTU (it takes
/// frames in several buffers). An object that cannot be read here counts as not frags: loading
/// it reports why.
fn frags(
    object: &ObjectSource,
    entry: &str,
    forced: Option<crate::kernel::elf::ProgramType>,
) -> bool {
    crate::kernel::program::entry_has_frags(object, entry, forced) == Some(true)
}

fn rules(
    src: &Source<'_>,
    raw: &[Spanned<RawRule>],
    program: &ProgramSpec,
) -> Result<Vec<FilterRule>, ScenarioError> {
    if let (Some(first), ObjectSource::Bundled(name)) = (raw.first(), &program.object)
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
            if !matches!(rule.action, Verdict::Drop | Verdict::Pass) {
                return Err(src.invalid(
                    line,
                    format!(
                        "rule {number}: action \"{}\" is not one xdp_filter takes: use \"drop\" \
                         or \"pass\"",
                        rule.action
                    ),
                ));
            }
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
    topo: &Topo<'_>,
    raw: Vec<Spanned<RawSend>>,
    lab: &LabSpec,
    program: &ProgramSpec,
    program_end: LinkEnd,
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
        let what = format!("send group {name:?}:");
        let group = |message: String| src.invalid(line, format!("{what} {message}"));

        let (from, from_end) = topo.sender(src, line, send.from.as_ref(), &what)?;
        let mtu = topo
            .links
            .get(from_end.link)
            .map_or(lab.mtu, |link| link.mtu(lab));

        let frames = match &send.pcap {
            Some(pcap) => pcap_frames(src, &send, pcap, mtu).map_err(group)?,
            None => {
                let frame = send.frame();
                frame
                    .validate(schema::max_frame_len(mtu, frame.outer_8021q()))
                    .map_err(|e| group(e.to_string()))?;
                FrameSource::Spec(frame)
            }
        };
        let count = group_count(send.count, &frames).map_err(group)?;
        let redirect_to = redirect_target(
            src,
            topo,
            (line, &what),
            send.expect,
            send.redirect_to,
            (program, program_end),
        )?;
        if let Some(problem) = output_problem(send.expect, send.output.as_ref()) {
            return Err(group(problem));
        }

        groups.push(SendGroup {
            name: name.to_owned(),
            count,
            from,
            redirect_to,
            output: send.output,
            frames,
            expect: send.expect,
            line,
        });
    }
    Ok(groups)
}

/// A send group's `count`: given, or the frames of its pcap file; the error is the message
/// after the group's name.
fn group_count(count: Option<u32>, frames: &FrameSource) -> Result<u32, String> {
    let count = match (count, frames) {
        (Some(count), _) => count,
        (None, FrameSource::Pcap { path, frames }) => u32::try_from(frames.len())
            .ok()
            .filter(|n| *n <= SendGroup::MAX_COUNT)
            .ok_or_else(|| {
                format!(
                    "pcap file {} holds {} frames, more than the most a group sends \
                         ({}): set count",
                    path.display(),
                    frames.len(),
                    SendGroup::MAX_COUNT
                )
            })?,
        (None, FrameSource::Spec(_)) => {
            return Err(
                "missing key \"count\" (only a group with pcap may leave it out)".to_owned(),
            );
        }
    };
    if !(1..=SendGroup::MAX_COUNT).contains(&count) {
        return Err(format!(
            "count {count} is out of range (1..={})",
            SendGroup::MAX_COUNT
        ));
    }
    Ok(count)
}

/// A send group's `redirect-to`: required with expect = "redirect" and only then, another
/// interface than the program's, in the program's namespace. `group` is the group's line and
/// the `send group "name":` its messages start with.
fn redirect_target(
    src: &Source<'_>,
    topo: &Topo<'_>,
    (line, what): (usize, &str),
    expect: Verdict,
    redirect_to: Option<Spanned<IfaceRef>>,
    (program, program_end): (&ProgramSpec, LinkEnd),
) -> Result<Option<IfaceRef>, ScenarioError> {
    match (expect, redirect_to) {
        (Verdict::Redirect, None) => Err(src.invalid(
            line,
            format!(
                "{what} expect = \"redirect\" needs redirect-to: the interface the program \
                 redirects to"
            ),
        )),
        (Verdict::Redirect, Some(target)) => {
            let at = src.line(&target.span());
            let end = topo.find(src, &target, &format!("{what} redirect-to"))?;
            let target = target.into_inner();
            if end == program_end {
                return Err(src.invalid(
                    at,
                    format!(
                        "{what} redirect-to \"{target}\" is the interface the program is \
                         attached to; frames sent back out of it are expect = \"tx\""
                    ),
                ));
            }
            if target.netns != program.attach.netns {
                return Err(src.invalid(
                    at,
                    format!(
                        "{what} redirect-to \"{target}\" is in namespace {:?}, not {:?} \
                         where the program is attached: a devmap only reaches interfaces \
                         of the program's namespace",
                        target.netns, program.attach.netns
                    ),
                ));
            }
            Ok(Some(target))
        }
        (_, Some(target)) => Err(src.invalid(
            src.line(&target.span()),
            format!("{what} redirect-to is only for expect = \"redirect\""),
        )),
        (_, None) => Ok(None),
    }
}

/// What is wrong with a send group's `output`, if anything: the message after the group's
/// name.
fn output_problem(expect: Verdict, output: Option<&OutputSpec>) -> Option<String> {
    let output = output?;
    if matches!(expect, Verdict::Drop | Verdict::Aborted) {
        return Some(format!(
            "output checks the frames that come out, and expect = \"{expect}\" lets none out"
        ));
    }
    if output.is_empty() {
        return Some("output checks nothing: set swapped-macs = true or a field".to_owned());
    }
    output
        .vlan
        .iter()
        .flatten()
        .find(|id| **id > 4095)
        .map(|id| format!("output vlan id {id} is out of range 0..=4095"))
}

/// Reads a send group's pcap file; the error is the message after the
/// group's name.
fn pcap_frames(
    src: &Source<'_>,
    send: &RawSend,
    pcap: &str,
    mtu: u32,
) -> Result<FrameSource, String> {
    if let Some(key) = send.first_frame_key() {
        return Err(format!(
            "conflicting keys: pcap and {key} (the frames come from the file)"
        ));
    }
    if pcap.trim().is_empty() {
        return Err("pcap names no file".to_owned());
    }
    let dir = src.path.parent().unwrap_or(Path::new(""));
    let path: PathBuf = dir.join(pcap);
    let frames = crate::frame::pcap::read(&path).map_err(|e| e.to_string())?;
    if frames.is_empty() {
        return Err(format!("pcap file {} holds no frames", path.display()));
    }
    for (i, frame) in frames.iter().enumerate() {
        let max = schema::max_frame_len(mtu, starts_with_8021q(frame));
        if frame.len() < ETH_HEADER_LEN {
            return Err(format!(
                "frame {} of pcap file {} is {} bytes, shorter than an ethernet header \
                 ({ETH_HEADER_LEN} bytes)",
                i + 1,
                path.display(),
                frame.len()
            ));
        }
        if frame.len() > max {
            return Err(format!(
                "frame {} of pcap file {} is {} bytes, longer than the maximum of {max} bytes",
                i + 1,
                path.display(),
                frame.len()
            ));
        }
    }
    Ok(FrameSource::Pcap { path, frames })
}

fn map_setup(
    src: &Source<'_>,
    topo: &Topo<'_>,
    raw: Option<RawSetup>,
    owners: &[LinkEnd],
) -> Result<Vec<MapSetup>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.map
        .into_iter()
        .map(|spanned| {
            let line = src.line(&spanned.span());
            let m = spanned.into_inner();
            if m.map.trim().is_empty() {
                return Err(src.invalid(line, "map setup names no map"));
            }
            topo.check_map_bytes(src, &m.key, &m.map)?;
            let at = map_owner(src, topo, m.at, owners)?;
            let (value, program) = match (m.value, m.program) {
                (Some(value), None) => {
                    topo.check_map_bytes(src, &value, &m.map)?;
                    (value.into_inner(), None)
                }
                (None, Some(program)) if !program.get_ref().trim().is_empty() => {
                    (MapBytes::Int(0), Some(program.into_inner()))
                }
                (None, Some(program)) => {
                    return Err(src.invalid(
                        src.line(&program.span()),
                        format!("map {:?}: program is empty", m.map),
                    ));
                }
                _ => {
                    return Err(src.invalid(
                        line,
                        format!(
                            "map {:?}: give exactly one of value or program (a program of the \
                             same object, for a PROG_ARRAY slot)",
                            m.map
                        ),
                    ));
                }
            };
            Ok(MapSetup {
                map: m.map,
                key: m.key.into_inner(),
                value,
                line,
                program,
                at,
            })
        })
        .collect()
}

fn expects(
    src: &Source<'_>,
    topo: &Topo<'_>,
    raw: Option<RawExpect>,
    owners: &[LinkEnd],
) -> Result<(Vec<MapExpect>, Vec<EventExpect>), ScenarioError> {
    let Some(raw) = raw else {
        return Ok((Vec::new(), Vec::new()));
    };
    let maps = raw
        .map
        .into_iter()
        .map(|spanned| map_expect(src, topo, spanned, owners))
        .collect::<Result<_, _>>()?;
    let events = raw
        .events
        .into_iter()
        .map(|spanned| event_expect(src, spanned))
        .collect::<Result<_, _>>()?;
    Ok((maps, events))
}

fn map_expect(
    src: &Source<'_>,
    topo: &Topo<'_>,
    spanned: Spanned<RawMapExpect>,
    owners: &[LinkEnd],
) -> Result<MapExpect, ScenarioError> {
    let line = src.line(&spanned.span());
    let m = spanned.into_inner();
    if m.map.trim().is_empty() {
        return Err(src.invalid(line, "map expectation names no map"));
    }
    let absent = m.absent.unwrap_or(false);
    let given = usize::from(m.value.is_some())
        + usize::from(m.per_cpu.is_some())
        + usize::from(m.delta.is_some())
        + usize::from(absent);
    if given != 1 {
        return Err(src.invalid(
            line,
            format!(
                "map {:?}: give exactly one of value, per-cpu, delta or absent = true",
                m.map
            ),
        ));
    }
    if m.per_cpu.as_ref().is_some_and(Vec::is_empty) {
        return Err(src.invalid(line, format!("map {:?}: per-cpu lists no values", m.map)));
    }
    topo.check_map_bytes(src, &m.key, &m.map)?;
    for value in m.value.iter().chain(m.per_cpu.iter().flatten()) {
        topo.check_map_bytes(src, value, &m.map)?;
    }
    let plus_flow_frames = flows::plus_flow_frames(
        src,
        &m.map,
        m.plus_flow_frames.as_ref(),
        matches!(m.delta, Some(MapDelta::Int(_))),
        m.at.is_some(),
    )?;
    let at = map_owner(src, topo, m.at, owners)?;
    Ok(MapExpect {
        map: m.map,
        key: m.key.into_inner(),
        value: m.value.map(Spanned::into_inner),
        per_cpu: m
            .per_cpu
            .map(|list| list.into_iter().map(Spanned::into_inner).collect()),
        absent,
        delta: match &m.delta {
            Some(MapDelta::Int(n)) => Some(*n),
            _ => None,
        },
        delta_fields: match m.delta {
            Some(MapDelta::Fields(fields)) => Some(fields),
            _ => None,
        },
        line,
        at,
        plus_flow_frames,
    })
}

/// The `[[attach]]` interface a map table's `at` names, checked.
fn map_owner(
    src: &Source<'_>,
    topo: &Topo<'_>,
    at: Option<Spanned<IfaceRef>>,
    owners: &[LinkEnd],
) -> Result<Option<IfaceRef>, ScenarioError> {
    let Some(at) = at else {
        return Ok(None);
    };
    let end = topo.find(src, &at, "map at")?;
    if !owners.contains(&end) {
        return Err(src.invalid(
            src.line(&at.span()),
            format!(
                "at = \"{}\" has no [[attach]] program: at names the interface of an \
                 [[attach]] table (leave it out for the program under test)",
                at.get_ref()
            ),
        ));
    }
    Ok(Some(at.into_inner()))
}

/// `type`, `globals` and `max-entries` of a `[program]` (or the `type` of an `[[attach]]`).
fn loader_spec(
    src: &Source<'_>,
    program_type: Option<Spanned<String>>,
    globals: Option<Spanned<std::collections::BTreeMap<String, toml::Value>>>,
    max_entries: Option<Spanned<std::collections::BTreeMap<String, u32>>>,
) -> Result<LoaderSpec, ScenarioError> {
    let mut spec = LoaderSpec::default();
    if let Some(t) = program_type {
        spec.program_type = Some(
            t.get_ref()
                .parse()
                .map_err(|e: String| src.invalid(src.line(&t.span()), format!("type: {e}")))?,
        );
    }
    if let Some(globals) = globals {
        let line = src.line(&globals.span());
        spec.globals_line = line;
        for (name, value) in globals.into_inner() {
            let value = match value {
                toml::Value::Integer(n) => GlobalValue::Int(n),
                toml::Value::Boolean(b) => GlobalValue::Bool(b),
                toml::Value::String(text) => GlobalValue::Bytes(
                    text.parse::<crate::frame::HexBytes>()
                        .map_err(|e| src.invalid(line, format!("globals.{name}: {e}")))?
                        .0,
                ),
                other => {
                    return Err(src.invalid(
                        line,
                        format!(
                            "globals.{name}: expected an integer, true or false, or hex bytes \
                             in a string, found {}",
                            other.type_str()
                        ),
                    ));
                }
            };
            spec.globals.push((name, value));
        }
    }
    if let Some(max_entries) = max_entries {
        let line = src.line(&max_entries.span());
        spec.max_entries_line = line;
        for (name, n) in max_entries.into_inner() {
            if n == 0 {
                return Err(src.invalid(line, format!("max-entries.{name}: must be at least 1")));
            }
            spec.max_entries.push((name, n));
        }
    }
    Ok(spec)
}

fn event_expect(
    src: &Source<'_>,
    spanned: Spanned<RawEvents>,
) -> Result<EventExpect, ScenarioError> {
    let line = src.line(&spanned.span());
    let e = spanned.into_inner();
    if e.ringbuf.trim().is_empty() {
        return Err(src.invalid(line, "event expectation names no ring buffer"));
    }
    let what = format!("ring buffer {:?}:", e.ringbuf);
    let layout_line = src.line(&e.layout.span());
    let layout = e
        .layout
        .into_inner()
        .into_iter()
        .map(|field| {
            schema::layout_field(field.get_ref()).map_err(|message| {
                let (line, col) = src.line_col(field.span().start);
                ScenarioError::Parse {
                    path: src.path.to_owned(),
                    line,
                    col,
                    message,
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if layout.is_empty() {
        return Err(src.invalid(layout_line, format!("{what} layout lists no fields")));
    }
    for (i, (name, _)) in layout.iter().enumerate() {
        if name != "_" && layout[..i].iter().any(|(other, _)| other == name) {
            return Err(src.invalid(
                layout_line,
                format!("{what} layout names field {name:?} twice"),
            ));
        }
    }
    let mut filter = Vec::new();
    if let Some(table) = e.filter {
        let where_line = src.line(&table.span());
        for (name, value) in table.into_inner().0 {
            let field = layout
                .iter()
                .find(|(field, _)| *field == name && name != "_");
            let Some((_, kind)) = field else {
                let names: Vec<String> = layout
                    .iter()
                    .filter(|(field, kind)| field != "_" && kind.max().is_some())
                    .map(|(field, _)| format!("{field:?}"))
                    .collect();
                return Err(src.invalid(
                    where_line,
                    format!(
                        "{what} where names {name:?}, which is not a field of the layout \
                         (fields: {})",
                        names.join(", ")
                    ),
                ));
            };
            let Some(max) = kind.max() else {
                return Err(src.invalid(
                    where_line,
                    format!("{what} where names {name:?}, which is padding ({kind})"),
                ));
            };
            if value > max {
                return Err(src.invalid(
                    where_line,
                    format!("{what} where {name} = {value} does not fit its type ({kind})"),
                ));
            }
            filter.push((name, value));
        }
    }
    Ok(EventExpect {
        ringbuf: e.ringbuf,
        layout,
        filter,
        count: e.count,
        line,
    })
}

fn throughput(
    src: &Source<'_>,
    links: &[LinkSpec],
    entry: &str,
    spanned: Spanned<RawThroughput>,
) -> Result<ThroughputSpec, ScenarioError> {
    let line = src.line(&spanned.span());
    if let Some(link) = links.first() {
        return Err(src.invalid(
            line,
            format!(
                "[throughput] measures the program in the default two-namespace lab, and this \
                 scenario declares its own topology ([[link]] at line {}): measure it in a \
                 scenario without [[link]]s",
                link.line
            ),
        ));
    }
    let t = spanned.into_inner();
    let injector = match t.injector {
        Some(value) => value
            .get_ref()
            .parse::<InjectorKind>()
            .map_err(|e| src.at_value(&value.span(), e))?,
        None => ThroughputSpec::DEFAULT_INJECTOR,
    };
    let duration = match t.duration {
        Some(value) => {
            let duration = schema::parse_duration(value.get_ref())
                .map_err(|e| src.at_value(&value.span(), e))?;
            let (min, max) = (ThroughputSpec::MIN_DURATION, ThroughputSpec::MAX_DURATION);
            if !(min..=max).contains(&duration) {
                return Err(src.at_value(
                    &value.span(),
                    format!(
                        "duration {:?} is out of range ({}..={})",
                        value.get_ref(),
                        schema::format_duration(min),
                        schema::format_duration(max)
                    ),
                ));
            }
            duration
        }
        None => ThroughputSpec::DEFAULT_DURATION,
    };
    let size = match t.size {
        Some(value) => {
            let (min, max) = (ThroughputSpec::MIN_SIZE, ThroughputSpec::MAX_SIZE);
            if !(min..=max).contains(value.get_ref()) {
                return Err(src.at_value(
                    &value.span(),
                    format!(
                        "size {} is out of range ({min}..={max} bytes, without FCS)",
                        value.get_ref()
                    ),
                ));
            }
            *value.get_ref()
        }
        None => ThroughputSpec::DEFAULT_SIZE,
    };
    let threads = match t.threads {
        Some(value) => {
            if !(1..=ThroughputSpec::MAX_THREADS).contains(value.get_ref()) {
                return Err(src.at_value(
                    &value.span(),
                    format!(
                        "threads {} is out of range (1..={})",
                        value.get_ref(),
                        ThroughputSpec::MAX_THREADS
                    ),
                ));
            }
            *value.get_ref()
        }
        None => 1,
    };
    let baseline = match t.baseline {
        // Another build of the program (version 1 of it, say): the same entry from that
        // object, the path relative to the scenario file.
        Some(value) if value.get_ref().starts_with("object:") => {
            let path = value.get_ref()["object:".len()..].trim();
            if path.is_empty() {
                return Err(src.at_value(
                    &value.span(),
                    "baseline \"object:\" names no object (write \"object:PATH\", relative to \
                     this file)",
                ));
            }
            let dir = src.path.parent().unwrap_or(Path::new(""));
            BenchProgram::Object {
                source: ObjectSource::resolve(path, dir),
                entry: entry.to_owned(),
            }
        }
        Some(value) => value.get_ref().parse::<BenchProgram>().map_err(|_| {
            src.at_value(
                &value.span(),
                format!(
                    "unknown baseline {:?} (expected \"none\", \"drop\", \"pass\" or \
                     \"object:PATH\")",
                    value.get_ref()
                ),
            )
        })?,
        None => BenchProgram::None,
    };
    let Some(min_ratio) = t.min_ratio else {
        return Err(src.invalid(
            line,
            "[throughput] needs min-ratio: the lowest acceptable program rx pps / baseline rx pps",
        ));
    };
    let ratio = *min_ratio.get_ref();
    if !(ratio > 0.0 && ratio.is_finite()) {
        return Err(src.at_value(
            &min_ratio.span(),
            format!("min-ratio {ratio} must be a number greater than 0"),
        ));
    }
    Ok(ThroughputSpec {
        injector,
        duration,
        size,
        threads,
        baseline,
        min_ratio: ratio,
        line,
    })
}
