use std::path::{Path, PathBuf};

use super::*;
use crate::frame::{FrameSpec, Ipv4Spec, Ipv6Spec, TcpFlags, TcpSpec, UdpSpec};
use crate::kernel::program::{ObjectSource, XdpMode};
use crate::verdict::Verdict;

const SEED_DROP_ALL: &str = r#"schema-version = 1
name = "seed-drop-all"
description = "The classic dropper: every frame is dropped and counted in drop_cnt."

[program]
object = "xdp_drop"        # a bundled object, or a path to any clang-built ELF object
entry = "xdp_drop_all"
mode = "native"            # native | generic

[[send]]
name = "udp-to-9"
count = 1000
ipv4 = {}                  # defaults: the lab's sender -> receiver addresses
udp = { dst-port = 9 }     # src-port defaults too
size = 64                  # total frame bytes, padded with the tag and zeros
expect = "drop"

[[expect.map]]
map = "drop_cnt"
key = 0
value = 1000
"#;

const PASS_BASELINE_GENERIC: &str = r#"schema-version = 1
name = "pass-baseline-generic"

[program]
object = "xdp_pass"
entry = "xdp_pass"
mode = "generic"

[[send]]
name = "tcp-syn"
count = 200
ipv6 = {}
tcp = { dst-port = 80, flags = "S" }
expect = "pass"
"#;

/// A valid head to build test files on: version, name and program.
const HEAD: &str = r#"schema-version = 1
name = "t"

[program]
object = "xdp_filter"
entry = "xdp_filter"
"#;

/// The `[program]` table of [`HEAD`], for files that need top-level keys
/// after the name.
const PROGRAM: &str = r#"
[program]
object = "xdp_filter"
entry = "xdp_filter"
"#;

/// A valid send group.
const SEND: &str = r#"
[[send]]
name = "a"
count = 1
ipv4 = {}
expect = "pass"
"#;

fn path() -> &'static Path {
    Path::new("scenarios/t.toml")
}

fn ok(text: &str) -> Scenario {
    parse(text, path()).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// The frame spec of send group `i`.
fn spec(s: &Scenario, i: usize) -> &FrameSpec {
    s.sends[i]
        .frames
        .spec()
        .expect("a frame spec, not a pcap file")
}

fn err(text: &str) -> String {
    match parse(text, path()) {
        Ok(s) => panic!("parsed, expected an error: {s:?}\n---\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn seed_drop_all_parses_as_written() {
    let s = parse(SEED_DROP_ALL, Path::new("scenarios/seed-drop-all.toml")).unwrap();
    assert_eq!(
        s,
        Scenario {
            path: "scenarios/seed-drop-all.toml".into(),
            name: "seed-drop-all".into(),
            description: Some(
                "The classic dropper: every frame is dropped and counted in drop_cnt.".into()
            ),
            skip: None,
            requires: vec![],
            lab: LabSpec {
                mtu: 1500,
                ipv6: false
            },
            links: vec![],
            netns: vec![],
            program: ProgramSpec {
                object: ObjectSource::Bundled("xdp_drop".into()),
                entry: "xdp_drop_all".into(),
                mode: XdpMode::Native,
                attach: IfaceRef::netns("receiver"),
                object_line: 6,
                entry_line: 7,
                pin: false,
                loader: LoaderSpec::default(),
            },
            attachments: vec![],
            rules: vec![],
            sends: vec![SendGroup {
                name: "udp-to-9".into(),
                count: 1000,
                from: IfaceRef::netns("sender"),
                redirect_to: None,
                output: None,
                frames: FrameSource::Spec(FrameSpec {
                    ipv4: Some(Ipv4Spec::default()),
                    udp: Some(UdpSpec {
                        src_port: 40000,
                        dst_port: 9
                    }),
                    size: Some(64),
                    ..FrameSpec::default()
                }),
                expect: Verdict::Drop,
                line: 10,
            }],
            map_setup: vec![],
            map_expects: vec![MapExpect {
                map: "drop_cnt".into(),
                key: MapBytes::Int(0),
                value: Some(MapBytes::Int(1000)),
                per_cpu: None,
                absent: false,
                delta: None,
                delta_fields: None,
                line: 18,
                at: None,
                plus_flow_frames: false,
            }],
            event_expects: vec![],
            throughput: None,
            steps: Vec::new(),
            flows: Vec::new(),
        }
    );
}

#[test]
fn pass_baseline_generic_parses_as_written() {
    let s = parse(PASS_BASELINE_GENERIC, Path::new("pass.toml")).unwrap();
    assert_eq!(s.name, "pass-baseline-generic");
    assert_eq!(s.description, None);
    assert_eq!(s.program.object, ObjectSource::Bundled("xdp_pass".into()));
    assert_eq!(s.program.entry, "xdp_pass");
    assert_eq!(s.program.mode, XdpMode::Generic);
    assert_eq!(s.lab, LabSpec::default());
    assert!(s.map_expects.is_empty());
    assert_eq!(
        s.sends,
        vec![SendGroup {
            name: "tcp-syn".into(),
            count: 200,
            from: IfaceRef::netns("sender"),
            redirect_to: None,
            output: None,
            frames: FrameSource::Spec(FrameSpec {
                ipv6: Some(Ipv6Spec::default()),
                tcp: Some(TcpSpec {
                    dst_port: 80,
                    flags: TcpFlags(0x02),
                    ..TcpSpec::default()
                }),
                ..FrameSpec::default()
            }),
            expect: Verdict::Pass,
            line: 9,
        }]
    );
}

#[test]
fn unknown_keys_are_located() {
    assert_eq!(
        err(&format!(
            "schema-version = 1\nname = \"t\"\ncout = 3\n{}{SEND}",
            PROGRAM
        )),
        "scenarios/t.toml:3:1: unknown field \"cout\", expected one of \"schema-version\", \
         \"name\", \"description\", \"skip\", \"requires\", \"lab\", \"link\", \"netns\", \"program\", \
         \"attach\", \"rule\", \"send\", \"setup\", \"expect\", \"throughput\", \"step\", \
         \"flow\""
    );
    // Keys after a table header belong to that table.
    let e = err(&format!("{HEAD}{SEND}cout = 3\n"));
    assert!(e.starts_with("scenarios/t.toml:13:1: unknown field \"cout\", expected one of \"name\", \"count\", \"expect\""), "{e}");
    let e = err(&format!(
        "{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\nexpect = \"pass\"\nipv4 = {{}}\nudp = {{ dport = 9 }}\n"
    ));
    assert_eq!(
        e,
        "scenarios/t.toml:13:9: unknown field \"dport\", expected \"src-port\" or \"dst-port\""
    );
    let e = err(&format!("{HEAD}mode = \"native\"\nbpffs = true\n{SEND}"));
    assert!(
        e.starts_with("scenarios/t.toml:8:1: unknown field \"bpffs\""),
        "{e}"
    );
    let e = err(&format!("{HEAD}{SEND}\n[lab]\nmtu = 1500\nveth = \"x\"\n"));
    assert!(
        e.starts_with("scenarios/t.toml:16:1: unknown field \"veth\""),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nkey = 0\nvalue = 1\ncount = 1\n"
    ));
    assert!(
        e.starts_with("scenarios/t.toml:18:1: unknown field \"count\""),
        "{e}"
    );
    let e = err(&format!("{HEAD}{SEND}\n[expect]\nmaps = []\n"));
    assert!(
        e.starts_with("scenarios/t.toml:15:1: unknown field \"maps\""),
        "{e}"
    );
}

#[test]
fn wrong_types_are_located() {
    let e = err(&format!(
        "{HEAD}\n[[send]]\nname = \"a\"\ncount = \"many\"\nexpect = \"pass\"\n"
    ));
    assert_eq!(
        e,
        "scenarios/t.toml:10:9: invalid type: string \"many\", expected u32"
    );
    let e = err(&format!(
        "{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\nexpect = \"dropped\"\n"
    ));
    assert_eq!(
        e,
        "scenarios/t.toml:11:10: unknown variant \"dropped\", expected one of \"aborted\", \
         \"drop\", \"pass\", \"tx\", \"redirect\""
    );
    let e = err(&format!("{HEAD}mode = \"offload\"\n{SEND}"));
    assert!(
        e.starts_with("scenarios/t.toml:7:8: unknown variant \"offload\""),
        "{e}"
    );
    let e = err(&format!("{HEAD}{SEND}size = -5\n"));
    assert!(
        e.starts_with("scenarios/t.toml:13:8: invalid value: integer \"-5\", expected usize"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\nexpect = \"pass\"\nipv4 = {{ dst = \"10.0.0\" }}\n"
    ));
    assert_eq!(e, "scenarios/t.toml:12:16: invalid ipv4 address \"10.0.0\"");
    // Not TOML at all.
    assert_eq!(
        err("schema-version = 1\nname = = \"x\"\n"),
        "scenarios/t.toml:2:8: extra \"=\", expected nothing"
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        err(&format!(
            "schema-version = 1\n\n[program]\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n{SEND}"
        )),
        "scenarios/t.toml:1:1: missing field \"name\""
    );
    assert_eq!(
        err(&format!(
            "schema-version = 1\nname = \"t\"\n\n[program]\nobject = \"xdp_pass\"\n{SEND}"
        )),
        "scenarios/t.toml:4:1: missing field \"entry\""
    );
    assert_eq!(
        err(&format!("schema-version = 1\nname = \"t\"\n{SEND}")),
        "scenarios/t.toml:1: missing table [program] (or a [[step]] sequence that loads and attaches programs)"
    );
    assert_eq!(
        err(&format!("{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\n")),
        "scenarios/t.toml:8:1: missing field \"expect\""
    );
    assert_eq!(
        err(HEAD),
        "scenarios/t.toml:1: no [[send]] groups: a scenario sends at least one"
    );
    assert_eq!(
        err(&format!(
            "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nvalue = 1\n"
        )),
        "scenarios/t.toml:14:1: missing field \"key\""
    );
    assert_eq!(
        err(&format!("{HEAD}{SEND}\n[[rule]]\nethertype = \"ipv4\"\n")),
        "scenarios/t.toml:14:1: missing field \"action\""
    );
}

#[test]
fn schema_version_must_be_1() {
    let text = format!("{HEAD}{SEND}").replace("schema-version = 1", "schema-version = 2");
    assert_eq!(
        err(&text),
        "scenarios/t.toml:1: schema-version 2 is not supported (this xdplab reads schema-version = 1)"
    );
    // A newer schema's keys do not hide the version error.
    let text = format!("{text}\n[future]\nkey = 1\n");
    assert!(err(&text).contains("schema-version 2 is not supported"));
    let text = format!("{HEAD}{SEND}").replace("schema-version = 1", "schema-version = \"1\"");
    assert_eq!(
        err(&text),
        "scenarios/t.toml:1: schema-version \"1\" is not supported (this xdplab reads schema-version = 1)"
    );
    let text = format!("{HEAD}{SEND}").replace("schema-version = 1\n", "");
    assert_eq!(
        err(&text),
        "scenarios/t.toml:1:1: missing key \"schema-version\" (this xdplab reads schema-version = 1)"
    );
}

#[test]
fn send_group_checks_are_located_at_the_group() {
    let bad = |body: &str| err(&format!("{HEAD}{SEND}\n[[send]]\nname = \"b\"\n{body}"));
    assert_eq!(
        bad("count = 0\nexpect = \"drop\"\n"),
        "scenarios/t.toml:14: send group \"b\": count 0 is out of range (1..=10000000)"
    );
    assert_eq!(
        bad("count = 10000001\nexpect = \"drop\"\n"),
        "scenarios/t.toml:14: send group \"b\": count 10000001 is out of range (1..=10000000)"
    );
    assert_eq!(
        bad("count = 1\nexpect = \"drop\"\nipv4 = {}\nipv6 = {}\n"),
        "scenarios/t.toml:14: send group \"b\": conflicting layers: ipv4 and ipv6"
    );
    assert_eq!(
        bad("count = 1\nexpect = \"drop\"\nipv6 = {}\nicmp = {}\n"),
        "scenarios/t.toml:14: send group \"b\": layer icmp needs an ipv4 layer under it"
    );
    assert_eq!(
        bad("count = 1\nexpect = \"drop\"\nipv4 = {}\nsize = 20\n"),
        "scenarios/t.toml:14: send group \"b\": frame size 20 is smaller than its 34 bytes \
         of headers (set truncate = true to cut it)"
    );
    // The default MTU of 1500 allows 1514-byte frames, 1518 with a VLAN tag.
    assert_eq!(
        bad("count = 1\nexpect = \"drop\"\nsize = 1515\n"),
        "scenarios/t.toml:14: send group \"b\": frame of 1515 bytes is longer than the maximum of 1514 bytes"
    );
    ok(&format!("{HEAD}{SEND}size = 1514\n"));
    ok(&format!("{HEAD}{SEND}vlan = [{{ id = 1 }}]\nsize = 1518\n"));
    ok(&format!("{HEAD}{SEND}size = 3512\n\n[lab]\nmtu = 3498\n"));
    assert_eq!(
        bad("count = 1\nexpect = \"drop\"\npayload = \"0g\"\n"),
        "scenarios/t.toml:18:11: invalid hex character 'g' at position 1"
    );
    assert_eq!(
        bad("count = 1\nexpect = \"drop\"\nname = \"c\"\n"),
        "scenarios/t.toml:18:1: duplicate key \"name\""
    );
    assert_eq!(
        err(&format!("{HEAD}{SEND}{SEND}")),
        "scenarios/t.toml:14: duplicate send group name \"a\" (first at line 8)"
    );
    ok(&format!(
        "{HEAD}{SEND}\n[[send]]\nname = \"b\"\ncount = 1\nexpect = \"drop\"\n"
    ));
}

#[test]
fn full_send_group() {
    let s = ok(&format!(
        r#"{HEAD}
[[send]]
name = "everything"
count = 5
expect = "drop"
eth = {{ src = "02:00:00:00:00:0a", ethertype = 0x0800 }}
vlan = [{{ id = 10, tpid = 0x88a8 }}, {{ id = 20, pcp = 3 }}]
ipv4 = {{ ttl = 1, options = "01010100" }}
udp = {{ src-port = 1, dst-port = 2 }}
payload = "de ad be ef"
size = 200
"#
    ));
    let frame = spec(&s, 0);
    assert_eq!(frame.vlan.len(), 2);
    assert_eq!(frame.vlan[0].tpid, 0x88a8);
    assert_eq!(frame.ipv4.as_ref().unwrap().ttl, 1);
    assert_eq!(
        frame.payload.as_ref().unwrap().0,
        vec![0xde, 0xad, 0xbe, 0xef]
    );
    assert_eq!(frame.size, Some(200));
    let raw = ok(&format!(
        "{HEAD}\n[[send]]\nname = \"r\"\ncount = 1\nexpect = \"pass\"\nraw = \"{}\"\n",
        "ff".repeat(60)
    ));
    assert_eq!(spec(&raw, 0).raw.as_ref().unwrap().0, vec![0xff; 60]);
}

#[test]
fn rules() {
    let s = ok(&format!(
        r#"{HEAD}{SEND}
[[rule]]
ethertype = "ipv4"
ip-proto = "udp"
dst-port = 53
action = "drop"

[[rule]]
ethertype = 0x88b5
action = "pass"

[[rule]]
ip-proto = 132
dst-port = 9
action = "drop"
"#
    ));
    assert_eq!(
        s.rules,
        vec![
            FilterRule {
                ethertype: Some(0x0800),
                ip_proto: Some(17),
                dst_port: Some(53),
                action: Verdict::Drop,
                line: 14,
            },
            FilterRule {
                ethertype: Some(0x88b5),
                ip_proto: None,
                dst_port: None,
                action: Verdict::Pass,
                line: 20,
            },
            FilterRule {
                ethertype: None,
                ip_proto: Some(132),
                dst_port: Some(9),
                action: Verdict::Drop,
                line: 24,
            },
        ]
    );
    assert_eq!(s.rules[0].encode(), [0x00, 0x08, 17, 0x1f, 53, 0, 0, 0]);
    assert_eq!(s.rules[1].encode(), [0xb5, 0x88, 0, 0x03, 0, 0, 0, 0]);
    assert_eq!(s.rules[2].encode(), [0, 0, 132, 0x1d, 9, 0, 0, 0]);

    let bad = |body: &str| err(&format!("{HEAD}{SEND}\n[[rule]]\n{body}"));
    assert_eq!(
        bad("action = \"drop\"\n"),
        "scenarios/t.toml:14: rule 1 matches nothing: set ethertype, ip-proto or dst-port"
    );
    assert_eq!(
        bad("dst-port = 80\naction = \"drop\"\n"),
        "scenarios/t.toml:14: rule 1: dst-port needs ip-proto \"tcp\", \"udp\", \"sctp\" or \"udplite\""
    );
    assert_eq!(
        bad("ip-proto = \"icmp\"\ndst-port = 80\naction = \"drop\"\n"),
        "scenarios/t.toml:14: rule 1: dst-port needs ip-proto \"tcp\", \"udp\", \"sctp\" or \"udplite\""
    );
    assert_eq!(
        bad("ethertype = \"arp\"\nip-proto = \"udp\"\naction = \"drop\"\n"),
        "scenarios/t.toml:14: rule 1: ip-proto needs ethertype \"ipv4\" or \"ipv6\" (or none)"
    );
    assert_eq!(
        bad("ethertype = \"ipx\"\naction = \"drop\"\n"),
        "scenarios/t.toml:15:13: invalid value: string \"ipx\", expected \"ipv4\", \"ipv6\", \
         \"arp\" or an integer in 0..=65535"
    );
    assert_eq!(
        bad("ip-proto = 256\naction = \"drop\"\n"),
        "scenarios/t.toml:15:12: invalid value: integer \"256\", expected \"icmp\", \"tcp\", \
         \"udp\", \"icmpv6\", \"sctp\", \"udplite\" or an integer in 0..=255"
    );
    let many: String = (0..33)
        .map(|i| format!("\n[[rule]]\ndst-port = {i}\nip-proto = \"tcp\"\naction = \"drop\"\n"))
        .collect();
    let e = err(&format!("{HEAD}{SEND}{many}"));
    assert_eq!(
        e,
        format!(
            "scenarios/t.toml:{}: too many rules (33): xdp_filter holds at most 32",
            13 + 32 * 5 + 1
        )
    );
    let drop = format!("{HEAD}{SEND}\n[[rule]]\nethertype = \"arp\"\naction = \"drop\"\n")
        .replace("object = \"xdp_filter\"", "object = \"xdp_drop\"");
    assert_eq!(
        err(&drop),
        "scenarios/t.toml:14: [[rule]] is for the bundled xdp_filter program; xdp_drop has no rules"
    );
    // A user's own object may read the same rules map.
    ok(&drop.replace("object = \"xdp_drop\"", "object = \"my_filter.o\""));
}

#[test]
fn map_expectations() {
    let s = ok(&format!(
        r#"{HEAD}{SEND}
[[expect.map]]
map = "stats"
key = "0a 00 00 01"
per-cpu = [1, 0, 2]

[[expect.map]]
map = "seen"
key = 0x10
absent = true

[[expect.map]]
map = "last"
key = 1
value = "ff ff"
"#
    ));
    assert_eq!(s.map_expects.len(), 3);
    assert_eq!(s.map_expects[0].key, MapBytes::Hex(vec![10, 0, 0, 1]));
    assert_eq!(
        s.map_expects[0].per_cpu,
        Some(vec![MapBytes::Int(1), MapBytes::Int(0), MapBytes::Int(2)])
    );
    assert_eq!(s.map_expects[0].line, 14);
    assert_eq!(
        s.map_expects[0].describe(),
        "stats[\"0a 00 00 01\"] == per-cpu [1, 0, 2]"
    );
    assert!(s.map_expects[1].absent);
    assert_eq!(s.map_expects[1].key, MapBytes::Int(16));
    assert_eq!(s.map_expects[1].describe(), "seen[16] absent");
    assert_eq!(
        s.map_expects[2].value,
        Some(MapBytes::Hex(vec![0xff, 0xff]))
    );
    assert_eq!(s.map_expects[2].describe(), "last[1] == \"ff ff\"");

    let bad = |body: &str| {
        err(&format!(
            "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nkey = 0\n{body}"
        ))
    };
    let one_of = "scenarios/t.toml:14: map \"m\": give exactly one of value, per-cpu, delta or absent = true";
    assert_eq!(bad(""), one_of);
    assert_eq!(bad("absent = false\n"), one_of);
    assert_eq!(bad("value = 1\nabsent = true\n"), one_of);
    assert_eq!(bad("value = 1\nper-cpu = [1]\n"), one_of);
    assert_eq!(
        bad("per-cpu = []\n"),
        "scenarios/t.toml:14: map \"m\": per-cpu lists no values"
    );
    assert!(
        bad("value = -1\n").starts_with("scenarios/t.toml:17:9: invalid value: integer \"-1\"")
    );
    assert_eq!(
        bad("value = \"abc\"\n"),
        "scenarios/t.toml:17:9: odd number of hex digits (3): every byte needs two"
    );
}

#[test]
fn lab_and_program() {
    let s = ok(&format!("{HEAD}{SEND}\n[lab]\nmtu = 9000\n").replace("9000", "3000"));
    assert_eq!(
        s.lab,
        LabSpec {
            mtu: 3000,
            ipv6: false
        }
    );
    let s = ok(&format!("{HEAD}{SEND}\n[lab]\nipv6 = true\n"));
    assert_eq!(
        s.lab,
        LabSpec {
            mtu: 1500,
            ipv6: true
        }
    );
    assert_eq!(
        err(&format!("{HEAD}{SEND}\n[lab]\nmtu = 9000\n")),
        "scenarios/t.toml:15: lab mtu 9000 is too large for native XDP on veth (at most 3498 \
         without xdp.frags); use a smaller mtu or mode = \"generic\""
    );
    assert_eq!(
        err(&format!("{HEAD}{SEND}\n[lab]\nmtu = 65536\n")),
        "scenarios/t.toml:15: lab mtu 65536 is out of range (68..=65535)"
    );
    let s = ok(&format!("{HEAD}{SEND}\n[lab]\nmtu = 9000\n").replace(
        "entry = \"xdp_filter\"",
        "entry = \"xdp_filter\"\nmode = \"generic\"",
    ));
    assert_eq!(s.lab.mtu, 9000);
    assert_eq!(
        err(&format!("{HEAD}{SEND}\n[lab]\nmtu = 67\n")),
        "scenarios/t.toml:15: lab mtu 67 is out of range (68..=65535)"
    );
    let s = ok(&format!("{HEAD}{SEND}").replace("\"xdp_filter\"\nentry", "\"obj/my.o\"\nentry"));
    assert_eq!(
        s.program.object,
        ObjectSource::File("scenarios/obj/my.o".into())
    );
    assert_eq!(s.program.mode, XdpMode::Native);
    let s = parse(
        &format!("{HEAD}{SEND}").replace("\"xdp_filter\"\nentry", "\"my.o\"\nentry"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(s.program.object, ObjectSource::File("my.o".into()));
    assert_eq!(
        err(&format!("{HEAD}{SEND}").replace("entry = \"xdp_filter\"", "entry = \"\"")),
        "scenarios/t.toml:6: program entry is empty"
    );
    assert_eq!(
        err(&format!("{HEAD}{SEND}").replace("name = \"t\"", "name = \" \"")),
        "scenarios/t.toml:2: scenario name is empty"
    );
    let s = ok(&format!(
        "schema-version = 1\nname = \"t\"\nskip = \"needs kernel 6.9\"\n{}{SEND}",
        PROGRAM
    ));
    assert_eq!(s.skip.as_deref(), Some("needs kernel 6.9"));
}

#[test]
fn requires_lists_features_and_minimum_kernels() {
    use crate::host::doctor::KernelVersion;
    use crate::host::requires::{Feature, Requirement};
    let s = ok(&format!(
        "schema-version = 1\nname = \"t\"\nrequires = [\"live-frames\", \"kernel>=6.1\"]\n{}{SEND}",
        PROGRAM
    ));
    assert_eq!(
        s.requires,
        vec![
            Requirement::Feature(Feature::LiveFrames),
            Requirement::Kernel(KernelVersion::new(6, 1, 0))
        ]
    );
    assert_eq!(ok(&format!("{HEAD}{SEND}")).requires, vec![]);
    assert_eq!(
        err(&format!(
            "schema-version = 1\nname = \"t\"\nrequires = [\n  \"ringbuf\",\n  \"xdp.frags\",\n]\n{}{SEND}",
            PROGRAM
        )),
        "scenarios/t.toml:5: failed to read requirement \"xdp.frags\": expected one of \
         \"live-frames\", \"bpf-link-xdp\", \"ringbuf\", \"mmapable-array\", \"generic-devmap\", \"test-run-context\" or \"kernel>=X.Y\""
    );
    assert_eq!(
        err(&format!(
            "schema-version = 1\nname = \"t\"\nrequires = [\"kernel>=6\"]\n{}{SEND}",
            PROGRAM
        )),
        "scenarios/t.toml:3: failed to read requirement \"kernel>=6\": \"kernel>=\" needs a \
         version, as in \"kernel>=5.18\""
    );
}

#[test]
fn bundled_scenarios_declare_the_features_they_use() {
    use crate::host::requires::{Feature, Requirement};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let s = parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        let has = |f| s.requires.contains(&Requirement::Feature(f));
        if s.throughput
            .as_ref()
            .is_some_and(|t| t.injector == crate::bench::InjectorKind::Live)
        {
            assert!(
                has(Feature::LiveFrames),
                "{}: live injector",
                path.display()
            );
        }
        if !s.event_expects.is_empty() {
            assert!(
                has(Feature::Ringbuf),
                "{}: [[expect.events]]",
                path.display()
            );
        }
        if !s.steps.is_empty() {
            assert!(has(Feature::BpfLinkXdp), "{}: [[step]]", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} bundled scenarios");
}

#[test]
fn skip_needs_a_reason() {
    let text = format!("schema-version = 1\nname = \"t\"\nskip = \"\"\n{}", PROGRAM);
    assert_eq!(
        err(&format!("{text}{SEND}")),
        "scenarios/t.toml:3: skip gives no reason (say why the scenario is skipped)"
    );
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("xdplab-scenario-{}-{name}", std::process::id()));
        // Left over from an aborted run of this same process id: start clean.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn discover_files_and_directories() {
    let tmp = TempDir::new("discover");
    let dir = &tmp.0;
    for name in ["b.toml", "a.toml", "notes.txt"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    std::fs::create_dir(dir.join("sub.toml")).unwrap();
    std::fs::write(dir.join("sub.toml").join("c.toml"), "").unwrap();
    let other = dir.join("notes.txt");
    assert_eq!(
        discover(&[dir.clone(), other.clone()]).unwrap(),
        vec![dir.join("a.toml"), dir.join("b.toml"), other]
    );

    let missing = dir.join("missing");
    let e = discover(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: no such file or directory", missing.display())
    );

    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = discover(std::slice::from_ref(&empty)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: directory holds no *.toml scenario files",
            empty.display()
        )
    );
}

#[test]
fn load_reads_and_locates() {
    let tmp = TempDir::new("load");
    let file = tmp.0.join("seed.toml");
    std::fs::write(&file, SEED_DROP_ALL).unwrap();
    let s = load(&file).unwrap();
    assert_eq!(s.path, file);
    assert_eq!(s.name, "seed-drop-all");

    let missing = tmp.0.join("nope.toml");
    assert_eq!(
        load(&missing).unwrap_err().to_string(),
        format!("{}: no such file or directory", missing.display())
    );
    let e = load(&tmp.0).unwrap_err();
    assert!(matches!(e, ScenarioError::Read { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read scenario file: ", tmp.0.display()))
    );

    // Columns count characters, not bytes: "é" is two bytes.
    std::fs::write(
        &file,
        format!(
            "schema-version = 1\nname = \"t\"\n\
             expect = {{ map = [ {{ map = \"caf\u{e9}\", key = -1, value = 1 }} ] }}\n{}{SEND}",
            PROGRAM
        ),
    )
    .unwrap();
    let e = load(&file).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:3:42: invalid value", file.display())),
        "{e}"
    );
    std::fs::write(&file, format!("{HEAD}{SEND}payload = \"\u{e9}\u{e9}zz\"\n")).unwrap();
    let e = load(&file).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:13:11: invalid hex character 'é' at position 0",
            file.display()
        )
    );
}

#[test]
fn layer_sub_tables_belong_to_the_last_send() {
    let s = ok(&format!(
        "{HEAD}{SEND}\n[send.udp]\ndst-port = 53\n\n[[send]]\nname = \"b\"\ncount = 1\nexpect = \"drop\"\n"
    ));
    assert_eq!(spec(&s, 0).udp.as_ref().map(|u| u.dst_port), Some(53));
    assert_eq!(spec(&s, 1).udp, None);
}

#[test]
fn documented_examples_parse() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/scenario-format.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    assert!(
        doc.contains(SEED_DROP_ALL),
        "the doc shows seed-drop-all as tested here"
    );
    let mut examples = 0;
    for block in doc.split("```toml\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        if block.starts_with("schema-version") {
            parse(block, &doc_path).unwrap_or_else(|e| panic!("{e}\n{block}"));
            examples += 1;
        } else {
            // Fragments: each must be valid TOML at least.
            toml::from_str::<toml::Table>(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        }
    }
    assert_eq!(examples, 8);
}

/// A three-namespace topology: sender -> dut (program on "in") -> sink.
const TOPO: &str = r#"schema-version = 1
name = "fwd"

[[link]]
a = "sender:eth0"
b = "dut:in"

[[link]]
a = "dut:out"
b = "sink:eth0"
mtu = 3000

[program]
object = "xdp_redirect"
entry = "xdp_redirect"
attach = "dut:in"
"#;

/// A send group for [`TOPO`], starting at line 19.
const TOPO_SEND: &str = r#"
[[send]]
name = "fwd"
count = 10
ipv4 = {}
udp = { dst-port = 53 }
expect = "redirect"
redirect-to = "dut:out"
"#;

fn iface(text: &str) -> IfaceRef {
    text.parse().unwrap()
}

fn endpoint(text: &str) -> Endpoint {
    text.parse().unwrap()
}

#[test]
fn topology_parses() {
    let s = ok(&format!("{TOPO}{TOPO_SEND}"));
    assert_eq!(
        s.links,
        vec![
            LinkSpec {
                a: endpoint("sender:eth0"),
                b: endpoint("dut:in"),
                mtu: None,
                line: 4,
            },
            LinkSpec {
                a: endpoint("dut:out"),
                b: endpoint("sink:eth0"),
                mtu: Some(3000),
                line: 8,
            },
        ]
    );
    assert_eq!(s.links[0].to_string(), "sender:eth0 <-> dut:in");
    assert_eq!(s.program.attach, iface("dut:in"));
    assert_eq!(
        s.program.object,
        ObjectSource::Bundled("xdp_redirect".into())
    );
    let send = &s.sends[0];
    // `from` defaults to the first link's a end.
    assert_eq!(send.from, iface("sender:eth0"));
    assert_eq!(send.redirect_to, Some(iface("dut:out")));
    assert_eq!(send.expect, Verdict::Redirect);

    // Helpers for the runner.
    let end = |text: &str| s.link_end(&iface(text));
    assert_eq!(
        end("sender"),
        Some(LinkEnd {
            link: 0,
            side: Side::A
        })
    );
    assert_eq!(
        end("dut:out"),
        Some(
            LinkEnd {
                link: 1,
                side: Side::B
            }
            .with_side(Side::A)
        )
    );
    assert_eq!(
        end("sink"),
        Some(LinkEnd {
            link: 1,
            side: Side::B
        })
    );
    assert_eq!(end("dut"), None);
    assert_eq!(end("nowhere"), None);
    assert_eq!(s.resolve(&iface("sink")), Some(&endpoint("sink:eth0")));
    assert_eq!(s.resolve(&iface("dut")), None);
    assert_eq!(s.mtu_at(&iface("sender")), 1500);
    assert_eq!(s.mtu_at(&iface("sink:eth0")), 3000);
    assert_eq!(s.max_frame_len(&iface("dut:out"), false), 3014);
    assert_eq!(s.max_frame_len(&iface("sender:eth0"), true), 1518);
}

impl LinkEnd {
    fn with_side(self, side: Side) -> LinkEnd {
        LinkEnd { side, ..self }
    }
}

#[test]
fn default_lab_references() {
    let s = ok(&format!("{HEAD}{SEND}"));
    assert!(s.links.is_empty());
    assert_eq!(s.program.attach, IfaceRef::netns("receiver"));
    assert_eq!(s.sends[0].from, IfaceRef::netns("sender"));
    assert_eq!(
        s.link_end(&IfaceRef::netns("sender")),
        Some(LinkEnd {
            link: 0,
            side: Side::A
        })
    );
    assert_eq!(
        s.link_end(&IfaceRef::netns("receiver")),
        Some(LinkEnd {
            link: 0,
            side: Side::B
        })
    );
    assert_eq!(s.resolve(&IfaceRef::netns("receiver")), None);
    assert_eq!(s.mtu_at(&IfaceRef::netns("sender")), 1500);
    assert_eq!(s.max_frame_len(&IfaceRef::netns("sender"), true), 1518);

    // Both may be written out; the program may sit on the sender.
    let s = ok(&format!(
        "{HEAD}attach = \"sender\"\n{SEND}from = \"receiver\"\n"
    ));
    assert_eq!(s.program.attach, IfaceRef::netns("sender"));
    assert_eq!(s.sends[0].from, IfaceRef::netns("receiver"));

    assert_eq!(
        err(&format!("{HEAD}attach = \"dut\"\n{SEND}")),
        "scenarios/t.toml:7: program attach \"dut\": no namespace \"dut\" in the default lab \
         (it has \"sender\" and \"receiver\"; declare [[link]]s for others)"
    );
    assert_eq!(
        err(&format!("{HEAD}attach = \"receiver:eth0\"\n{SEND}")),
        "scenarios/t.toml:7: program attach \"receiver:eth0\": the default lab's interfaces \
         have no names: write \"receiver\""
    );
    assert_eq!(
        err(&format!("{HEAD}{SEND}from = \"dut\"\n")),
        "scenarios/t.toml:13: send group \"a\": from \"dut\": no namespace \"dut\" in the \
         default lab (it has \"sender\" and \"receiver\"; declare [[link]]s for others)"
    );
}

#[test]
fn topology_defaults_come_from_the_first_link() {
    let text = TOPO.replace("attach = \"dut:in\"\n", "");
    let s = ok(&format!("{text}{TOPO_SEND}"));
    assert_eq!(s.program.attach, iface("dut:in"));
    assert_eq!(s.sends[0].from, iface("sender:eth0"));
}

#[test]
fn interface_references_are_checked_against_the_topology() {
    let bad = |attach: &str| {
        err(&format!(
            "{}{TOPO_SEND}",
            TOPO.replace("attach = \"dut:in\"\n", &format!("attach = {attach}"))
        ))
    };
    assert_eq!(
        bad("\"dut\"\n"),
        "scenarios/t.toml:16: program attach \"dut\": namespace \"dut\" has 2 interfaces: \
         write one of \"dut:in\", \"dut:out\""
    );
    assert_eq!(
        bad("\"dut:eth9\"\n"),
        "scenarios/t.toml:16: program attach \"dut:eth9\": no interface \"eth9\" in namespace \
         \"dut\" (it has \"in\", \"out\")"
    );
    assert_eq!(
        bad("\"router\"\n"),
        "scenarios/t.toml:16: program attach \"router\": no namespace \"router\" in the \
         topology (it has \"sender\", \"dut\", \"sink\")"
    );
    // Syntax errors come with a column.
    assert_eq!(
        bad("\"Dut:in\"\n"),
        "scenarios/t.toml:16:10: invalid namespace name \"Dut\" in \"Dut:in\": use 1..=15 \
         characters from a-z, 0-9, \"_\" and \"-\""
    );
    assert_eq!(
        bad("\"dut:a b\"\n"),
        "scenarios/t.toml:16:10: invalid interface name \"a b\" in \"dut:a b\": use 1..=15 \
         bytes without \"/\", \":\" or whitespace, not \".\" or \"..\""
    );
    assert!(bad("\"dut:\"\n").starts_with("scenarios/t.toml:16:10: invalid interface name \"\""));
    assert!(bad("\"\"\n").starts_with("scenarios/t.toml:16:10: invalid namespace name \"\""));
    assert!(bad("\"dut:in:x\"\n").contains("invalid interface name \"in:x\""));
    assert!(bad("\"a-very-long-name-here\"\n").contains("invalid namespace name"));
    assert!(bad("\"dut:sixteen-bytes-xx\"\n").contains("invalid interface name"));
    assert!(bad("\"dut:..\"\n").contains("invalid interface name \"..\""));
    assert!(bad("\"dut:a/b\"\n").contains("invalid interface name \"a/b\""));
}

#[test]
fn names_parse_and_display() {
    assert_eq!(
        iface("ns_1-a:veth.0@x"),
        IfaceRef {
            netns: "ns_1-a".into(),
            interface: Some("veth.0@x".into())
        }
    );
    assert_eq!(iface("ns").to_string(), "ns");
    assert_eq!(iface("ns:if").to_string(), "ns:if");
    assert_eq!(endpoint("a:b").to_string(), "a:b");
    assert_eq!(IfaceRef::from(&endpoint("a:b")), iface("a:b"));
    assert_eq!(
        "ns".parse::<Endpoint>().unwrap_err().to_string(),
        "\"ns\" names no interface: a link end is \"namespace:interface\""
    );
    assert!(
        "fifteen-chars-x:fifteen-bytes-x"
            .parse::<Endpoint>()
            .is_ok()
    );
    assert!("sixteen-chars-xx:i".parse::<Endpoint>().is_err());
    assert!("n:sixteen-bytes-xx".parse::<Endpoint>().is_err());
    assert!("n:.".parse::<Endpoint>().is_err());
    assert!("n:...".parse::<Endpoint>().is_ok());
    assert!("n:a\tb".parse::<Endpoint>().is_err());
    assert!("N:a".parse::<Endpoint>().is_err());
}

#[test]
fn link_errors() {
    let link = |body: &str| err(&format!("{HEAD}{SEND}\n[[link]]\n{body}"));
    assert_eq!(
        link("a = \"x\"\nb = \"y:eth0\"\n"),
        "scenarios/t.toml:15:5: \"x\" names no interface: a link end is \"namespace:interface\""
    );
    assert_eq!(
        link("a = \"x:eth0\"\n"),
        "scenarios/t.toml:14:1: missing field \"b\""
    );
    assert!(
        link("a = \"x:eth0\"\nb = \"y:eth0\"\nmtu = 1500\nname = \"l\"\n").starts_with(
            "scenarios/t.toml:18:1: unknown field \"name\", expected one of \"a\", \"b\", \"mtu\""
        )
    );
    assert_eq!(
        link("a = \"x:eth0\"\nb = \"x:eth1\"\n"),
        "scenarios/t.toml:14: link x:eth0 <-> x:eth1 joins namespace \"x\" to itself: the ends \
         of a link are in different namespaces"
    );
    assert_eq!(
        link("a = \"x:eth0\"\nb = \"y:eth0\"\nmtu = 67\n"),
        "scenarios/t.toml:17: link mtu 67 is out of range (68..=65535)"
    );
    let text = format!("{TOPO}{TOPO_SEND}\n[[link]]\na = \"dut:in\"\nb = \"other:eth0\"\n");
    assert_eq!(
        err(&text),
        "scenarios/t.toml:26: interface \"dut:in\" is already an end of the link at line 4"
    );
    // The same interface name in two namespaces is two interfaces.
    ok(&format!(
        "{TOPO}{TOPO_SEND}\n[[link]]\na = \"sender:eth1\"\nb = \"other:eth0\"\n"
    ));
    let many: String = (0..257)
        .map(|i| format!("\n[[link]]\na = \"a:e{i}\"\nb = \"b:e{i}\"\n"))
        .collect();
    let e = err(&format!(
        "{HEAD}attach = \"b:e0\"\n{SEND}from = \"a:e0\"\n{many}"
    ));
    assert_eq!(
        e,
        format!(
            "scenarios/t.toml:{}: too many links (257): at most 256",
            16 + 256 * 4
        )
    );
}

#[test]
fn native_mtu_cap_follows_the_programs() {
    // The program's link inherits [lab] mtu.
    let text = format!("{TOPO}{TOPO_SEND}\n[lab]\nmtu = 4000\n");
    assert_eq!(
        err(&text),
        "scenarios/t.toml:27: lab mtu 4000 is too large for native XDP on veth (at most 3498 \
         without xdp.frags), and link sender:eth0 <-> dut:in has no mtu of its own while \
         \"dut:in\" runs a native program; give the link a smaller mtu or use mode = \"generic\""
    );
    let big = TOPO.replace("mtu = 3000", "mtu = 9000");
    // A native redirect's target: the runner puts a program that fits the MTU on its peer
    // (xdp.frags above 3498).
    ok(&format!("{big}{TOPO_SEND}"));
    ok(&format!(
        "{}{TOPO_SEND}",
        big.replace(
            "attach = \"dut:in\"",
            "attach = \"dut:in\"\nmode = \"generic\""
        )
    ));
    // A native program on either end of the link.
    let pass = TOPO_SEND.replace(
        "expect = \"redirect\"\nredirect-to = \"dut:out\"\n",
        "expect = \"pass\"\n",
    );
    ok(&format!("{big}{pass}"));
    let attach = |at: &str, mode: &str| {
        format!(
            "{big}{pass}\n[[attach]]\nat = \"{at}\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\nmode = \"{mode}\"\n"
        )
    };
    assert_eq!(
        err(&attach("sink", "native")),
        "scenarios/t.toml:8: link mtu 9000 is too large for native XDP on veth (at most 3498 \
         without xdp.frags), and \"sink:eth0\" runs a native program; use a smaller mtu or \
         mode = \"generic\""
    );
    assert!(
        err(&attach("dut:out", "native"))
            .starts_with("scenarios/t.toml:8: link mtu 9000 is too large")
    );
    ok(&attach("sink", "generic"));
    ok(&format!(
        "{}{TOPO_SEND}\n[lab]\nmtu = 9000\n",
        TOPO.replace("b = \"dut:in\"\n", "b = \"dut:in\"\nmtu = 3498\n")
    ));
    assert_eq!(
        err(&format!(
            "{}{TOPO_SEND}\n[lab]\nmtu = 9000\n",
            TOPO.replace("b = \"dut:in\"\n", "b = \"dut:in\"\nmtu = 3499\n")
        )),
        "scenarios/t.toml:4: link mtu 3499 is too large for native XDP on veth (at most 3498 \
         without xdp.frags), and \"dut:in\" runs a native program; use a smaller mtu or mode = \
         \"generic\""
    );
    // The default lab: an attachment on the sender counts too.
    let text = format!(
        "{HEAD}mode = \"generic\"\n{SEND}\n[lab]\nmtu = 9000\n\n[[attach]]\nat = \"sender\"\n\
         object = \"xdp_pass\"\nentry = \"xdp_pass\"\n"
    );
    assert_eq!(
        err(&text),
        "scenarios/t.toml:16: lab mtu 9000 is too large for native XDP on veth (at most 3498 \
         without xdp.frags); use a smaller mtu or mode = \"generic\""
    );
    ok(&text.replace(
        "entry = \"xdp_pass\"\n",
        "entry = \"xdp_pass\"\nmode = \"generic\"\n",
    ));
}

#[test]
fn frames_must_fit_the_sending_link() {
    // dut:out is on the 3000-byte link.
    let big = TOPO_SEND.replace("ipv4 = {}", "ipv4 = {}\nsize = 3014");
    assert_eq!(
        err(&format!("{TOPO}{big}")),
        "scenarios/t.toml:18: send group \"fwd\": frame of 3014 bytes is longer than the \
         maximum of 1514 bytes"
    );
    let s = ok(&format!(
        "{TOPO}{}",
        big.replace(
            "expect = \"redirect\"\nredirect-to = \"dut:out\"\n",
            "expect = \"pass\"\nfrom = \"dut:out\"\n"
        )
    ));
    assert_eq!(s.sends[0].from, iface("dut:out"));
    assert_eq!(spec(&s, 0).size, Some(3014));
}

#[test]
fn attachments() {
    let s = ok(&format!(
        "{TOPO}{TOPO_SEND}\n[[attach]]\nat = \"dut:out\"\nobject = \"obj/helper.o\"\nentry = \"helper\"\nmode = \"generic\"\n\n[[attach]]\nat = \"sender\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"
    ));
    assert_eq!(
        s.attachments,
        vec![
            AttachSpec {
                at: iface("dut:out"),
                object: ObjectSource::File("scenarios/obj/helper.o".into()),
                entry: "helper".into(),
                mode: XdpMode::Generic,
                line: 26,
                loader: LoaderSpec::default(),
            },
            AttachSpec {
                at: iface("sender"),
                object: ObjectSource::Bundled("xdp_pass".into()),
                entry: "xdp_pass".into(),
                mode: XdpMode::Native,
                line: 32,
                loader: LoaderSpec::default(),
            },
        ]
    );
    let attach = |body: &str| err(&format!("{TOPO}{TOPO_SEND}\n[[attach]]\n{body}"));
    assert_eq!(
        attach("at = \"dut:in\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"),
        "scenarios/t.toml:27: interface \"dut:in\" already has a program ([program]): at most \
         one per interface"
    );
    assert_eq!(
        err(&format!(
            "{TOPO}{TOPO_SEND}\n[[attach]]\nat = \"sender\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n\n[[attach]]\nat = \"sender:eth0\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"
        )),
        "scenarios/t.toml:32: interface \"sender:eth0\" already has a program (the [[attach]] \
         at line 26): at most one per interface"
    );
    assert_eq!(
        attach("at = \"dut\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"),
        "scenarios/t.toml:27: [[attach]] at \"dut\": namespace \"dut\" has 2 interfaces: write \
         one of \"dut:in\", \"dut:out\""
    );
    assert_eq!(
        attach("at = \"sender\"\nobject = \"\"\nentry = \"xdp_pass\"\n"),
        "scenarios/t.toml:28: [[attach]] object is empty"
    );
    assert_eq!(
        attach("at = \"sender\"\nobject = \"xdp_pass\"\n"),
        "scenarios/t.toml:26:1: missing field \"entry\""
    );
    assert!(
        attach("at = \"sender\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\nrules = []\n")
            .starts_with("scenarios/t.toml:30:1: unknown field \"rules\"")
    );
    // In the default lab.
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[attach]]\nat = \"sender\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"
    ));
    assert_eq!(s.attachments[0].at, IfaceRef::netns("sender"));
    assert_eq!(
        err(&format!(
            "{HEAD}{SEND}\n[[attach]]\nat = \"receiver\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"
        )),
        "scenarios/t.toml:15: interface \"receiver\" already has a program ([program]): at most \
         one per interface"
    );
}

#[test]
fn verdicts_tx_redirect_and_aborted() {
    let with = |expect: &str, extra: &str| {
        format!(
            "{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\nipv4 = {{}}\nexpect = \"{expect}\"\n{extra}"
        )
    };
    assert_eq!(ok(&with("tx", "")).sends[0].expect, Verdict::Tx);
    assert_eq!(ok(&with("aborted", "")).sends[0].expect, Verdict::Aborted);
    assert_eq!(
        err(&with("redirect", "")),
        "scenarios/t.toml:8: send group \"a\": expect = \"redirect\" needs redirect-to: the \
         interface the program redirects to"
    );
    assert_eq!(
        err(&with("pass", "redirect-to = \"receiver\"\n")),
        "scenarios/t.toml:13: send group \"a\": redirect-to is only for expect = \"redirect\""
    );
    // In the default lab the receiver's only interface is the attach interface.
    assert_eq!(
        err(&with("redirect", "redirect-to = \"receiver\"\n")),
        "scenarios/t.toml:13: send group \"a\": redirect-to \"receiver\" is the interface the \
         program is attached to; frames sent back out of it are expect = \"tx\""
    );
    let redirect = |target: &str| {
        err(&format!(
            "{TOPO}{}",
            TOPO_SEND.replace("\"dut:out\"", &format!("\"{target}\""))
        ))
    };
    assert_eq!(
        redirect("dut:in"),
        "scenarios/t.toml:24: send group \"fwd\": redirect-to \"dut:in\" is the interface the \
         program is attached to; frames sent back out of it are expect = \"tx\""
    );
    assert_eq!(
        redirect("sink"),
        "scenarios/t.toml:24: send group \"fwd\": redirect-to \"sink\" is in namespace \"sink\", \
         not \"dut\" where the program is attached: a devmap only reaches interfaces of the \
         program's namespace"
    );
    assert_eq!(
        redirect("dut"),
        "scenarios/t.toml:24: send group \"fwd\": redirect-to \"dut\": namespace \"dut\" has 2 \
         interfaces: write one of \"dut:in\", \"dut:out\""
    );
    assert_eq!(
        redirect("Dut"),
        "scenarios/t.toml:24:15: invalid namespace name \"Dut\" in \"Dut\": use 1..=15 \
         characters from a-z, 0-9, \"_\" and \"-\""
    );
}

#[test]
fn rules_take_only_drop_and_pass() {
    let e = err(&format!(
        "{HEAD}{SEND}\n[[rule]]\nethertype = \"arp\"\naction = \"tx\"\n"
    ));
    assert_eq!(
        e,
        "scenarios/t.toml:14: rule 1: action \"tx\" is not one xdp_filter takes: use \"drop\" \
         or \"pass\""
    );
}

#[test]
fn output_checks() {
    let s = ok(&format!(
        r#"{TOPO}{TOPO_SEND}output = {{ swapped-macs = true, eth-src = "02:00:00:00:00:01", eth-dst = "02:00:00:00:00:02", ipv4-src = "10.0.0.1", ipv4-dst = "10.0.0.2", ipv4-ttl = 63, ipv6-src = "fd00::1", ipv6-dst = "fd00::2", ipv6-hop-limit = 1, src-port = 1, dst-port = 2, length = 60, bytes = "00 11" }}
"#
    ));
    let output = s.sends[0].output.as_ref().unwrap();
    assert_eq!(
        output,
        &OutputSpec {
            swapped_macs: true,
            eth_src: Some(crate::frame::MacAddr::new(2, 0, 0, 0, 0, 1)),
            eth_dst: Some(crate::frame::MacAddr::new(2, 0, 0, 0, 0, 2)),
            ipv4_src: Some("10.0.0.1".parse().unwrap()),
            ipv4_dst: Some("10.0.0.2".parse().unwrap()),
            ipv4_ttl: Some(63),
            ipv6_src: Some("fd00::1".parse().unwrap()),
            ipv6_dst: Some("fd00::2".parse().unwrap()),
            ipv6_hop_limit: Some(1),
            src_port: Some(1),
            dst_port: Some(2),
            length: Some(60),
            bytes: Some(crate::frame::HexBytes(vec![0, 0x11])),
            ..OutputSpec::default()
        }
    );
    assert_eq!(
        output.checks(),
        [
            "swapped-macs",
            "eth-src 02:00:00:00:00:01",
            "eth-dst 02:00:00:00:00:02",
            "ipv4-src 10.0.0.1",
            "ipv4-dst 10.0.0.2",
            "ipv4-ttl 63",
            "ipv6-src fd00::1",
            "ipv6-dst fd00::2",
            "ipv6-hop-limit 1",
            "src-port 1",
            "dst-port 2",
            "length 60",
            "bytes (2 bytes)"
        ]
    );
    // As a sub-table, with tx.
    let s = ok(
        &format!("{HEAD}{SEND}\n[send.output]\nswapped-macs = true\n")
            .replace("\"pass\"", "\"tx\""),
    );
    assert!(s.sends[0].output.as_ref().unwrap().swapped_macs);

    let bad = |output: &str, expect: &str| {
        err(&format!(
            "{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\nexpect = \"{expect}\"\noutput = {output}\n"
        ))
    };
    assert_eq!(
        bad("{ ipv4-ttl = 63 }", "drop"),
        "scenarios/t.toml:8: send group \"a\": output checks the frames that come out, and \
         expect = \"drop\" lets none out"
    );
    assert!(bad("{ ipv4-ttl = 63 }", "aborted").contains("expect = \"aborted\" lets none out"));
    assert_eq!(
        bad("{}", "pass"),
        "scenarios/t.toml:8: send group \"a\": output checks nothing: set swapped-macs = true or \
         a field"
    );
    assert_eq!(
        bad("{ swapped-macs = false }", "pass"),
        "scenarios/t.toml:8: send group \"a\": output checks nothing: set swapped-macs = true or \
         a field"
    );
    assert!(
        bad("{ ttl = 63 }", "pass")
            .starts_with("scenarios/t.toml:12:12: unknown field \"ttl\", expected one of"),
    );
    assert_eq!(
        bad("{ ipv4-ttl = 256 }", "pass"),
        "scenarios/t.toml:12:23: invalid value: integer \"256\", expected u8"
    );
    assert_eq!(
        bad("{ eth-src = \"02:00\" }", "pass"),
        "scenarios/t.toml:12:22: invalid mac address \"02:00\""
    );
    ok(&format!(
        "{HEAD}\n[[send]]\nname = \"a\"\ncount = 1\nexpect = \"pass\"\noutput = {{ length = 60 }}\n"
    ));
}

/// The committed pcap fixture's directory, as a scenario file's path in it.
fn in_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pcap/t.toml")
}

#[test]
fn pcap_sends() {
    let text =
        format!("{HEAD}\n[[send]]\nname = \"replay\"\npcap = \"mixed.pcap\"\nexpect = \"pass\"\n");
    let s = parse(&text, &in_fixtures()).unwrap();
    let group = &s.sends[0];
    assert_eq!(group.count, 3);
    assert_eq!(group.frames.spec(), None);
    match &group.frames {
        FrameSource::Pcap { path, frames } => {
            assert_eq!(path, &in_fixtures().with_file_name("mixed.pcap"));
            assert_eq!(frames, &crate::frame::pcap::tests::mixed_frames());
        }
        other => panic!("{other:?}"),
    }
    let s = parse(
        &text.replace("pcap = ", "count = 10\npcap = "),
        &in_fixtures(),
    )
    .unwrap();
    assert_eq!(s.sends[0].count, 10);

    let bad = |extra: &str| {
        parse(&format!("{text}{extra}"), &in_fixtures())
            .unwrap_err()
            .to_string()
    };
    let at = |rest: &str| {
        format!(
            "{}:8: send group \"replay\": {rest}",
            in_fixtures().display()
        )
    };
    assert_eq!(
        bad("udp = {}\n"),
        at("conflicting keys: pcap and udp (the frames come from the file)")
    );
    assert_eq!(
        bad("truncate = true\n"),
        at("conflicting keys: pcap and truncate (the frames come from the file)")
    );
    assert_eq!(
        bad("raw = \"00\"\n"),
        at("conflicting keys: pcap and raw (the frames come from the file)")
    );
    assert_eq!(
        bad("count = 0\n"),
        at("count 0 is out of range (1..=10000000)")
    );
    let e = parse(&text.replace("mixed.pcap", "missing.pcap"), &in_fixtures())
        .unwrap_err()
        .to_string();
    let missing = in_fixtures().with_file_name("missing.pcap");
    assert!(
        e.starts_with(&at(&format!(
            "cannot read pcap file {}: ",
            missing.display()
        ))),
        "{e}"
    );
    assert_eq!(
        parse(&text.replace("\"mixed.pcap\"", "\" \""), &in_fixtures())
            .unwrap_err()
            .to_string(),
        at("pcap names no file")
    );
    assert_eq!(
        err(&format!(
            "{HEAD}\n[[send]]\nname = \"a\"\nexpect = \"pass\"\n"
        )),
        "scenarios/t.toml:8: send group \"a\": missing key \"count\" (only a group with pcap may \
         leave it out)"
    );
}

/// A fresh directory under the system temp dir, removed on drop, holding
/// pcap files written by the test.
fn pcap_dir(name: &str, files: &[(&str, &[u8])]) -> TempDir {
    let tmp = TempDir::new(name);
    for (file, bytes) in files {
        std::fs::write(tmp.0.join(file), bytes).unwrap();
    }
    tmp
}

fn pcap_file(frames: &[Vec<u8>]) -> Vec<u8> {
    let tmp = TempDir::new("pcap-file");
    let path = tmp.0.join("x.pcap");
    let mut writer = crate::frame::pcap::PcapWriter::create(&path).unwrap();
    for frame in frames {
        writer.write(frame, std::time::SystemTime::now()).unwrap();
    }
    writer.finish().unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn pcap_file_errors() {
    let mut vlan = vec![0u8; 1518];
    vlan[12..14].copy_from_slice(&[0x81, 0x00]);
    let mut qinq = vlan.clone();
    qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
    let empty = pcap_file(&[]);
    let short = pcap_file(&[vec![0; 60], vec![0; 13]]);
    let long = pcap_file(&[vlan.clone(), qinq]);
    let fits = pcap_file(&[vlan, vec![0; 1514]]);
    let mut linktype = pcap_file(&[vec![0; 60]]);
    linktype[20] = 113;
    let tmp = pcap_dir(
        "pcap-errors",
        &[
            ("empty.pcap", &empty),
            ("short.pcap", &short),
            ("long.pcap", &long),
            ("fits.pcap", &fits),
            ("sll.pcap", &linktype),
            ("text.pcap", b"not a capture at all, just some text"),
        ],
    );
    let file = tmp.0.join("t.toml");
    let run = |pcap: &str| {
        parse(
            &format!("{HEAD}\n[[send]]\nname = \"p\"\npcap = \"{pcap}\"\nexpect = \"drop\"\n"),
            &file,
        )
    };
    let e = |pcap: &str| run(pcap).unwrap_err().to_string();
    let at = |rest: String| format!("{}:8: send group \"p\": {rest}", file.display());
    let path = |name: &str| tmp.0.join(name).display().to_string();
    assert_eq!(
        e("empty.pcap"),
        at(format!("pcap file {} holds no frames", path("empty.pcap")))
    );
    assert_eq!(
        e("short.pcap"),
        at(format!(
            "frame 2 of pcap file {} is 13 bytes, shorter than an ethernet header (14 bytes)",
            path("short.pcap")
        ))
    );
    // 1518 bytes fit with an outer 802.1Q tag, not with an 802.1ad one.
    assert_eq!(
        e("long.pcap"),
        at(format!(
            "frame 2 of pcap file {} is 1518 bytes, longer than the maximum of 1514 bytes",
            path("long.pcap")
        ))
    );
    assert_eq!(run("fits.pcap").unwrap().sends[0].count, 2);
    assert_eq!(
        e("sll.pcap"),
        at(format!(
            "{}: link type 113 is not ethernet (1)",
            path("sll.pcap")
        ))
    );
    assert!(e("text.pcap").starts_with(&at(format!(
        "{} is not a pcap or pcapng file (unknown magic number",
        path("text.pcap")
    ))),);
    // Relative to the scenario file's directory, not the working directory.
    let sub = tmp.0.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let s = parse(
        &format!("{HEAD}\n[[send]]\nname = \"p\"\npcap = \"../fits.pcap\"\nexpect = \"drop\"\n"),
        &sub.join("t.toml"),
    )
    .unwrap();
    assert!(
        matches!(&s.sends[0].frames, FrameSource::Pcap { path, .. } if path == &sub.join("../fits.pcap"))
    );
}

#[test]
fn struct_values() {
    let s = ok(&format!(
        r#"{TOPO}{TOPO_SEND}
[[setup.map]]
map = "tx_port"
key = [{{ u32 = 0 }}]
value = [{{ ifindex = "dut:out" }}]

[[setup.map]]
map = "all"
key = "00 01"
value = [
  {{ u8 = 1 }}, {{ u16 = 0x0203 }}, {{ u32 = 4 }}, {{ u64 = 5 }},
  {{ be16 = 0x0607 }}, {{ be32 = 8 }}, {{ be64 = 9 }},
  {{ ipv4 = "10.0.0.1" }}, {{ ipv6 = "fd00::1" }}, {{ mac = "02:00:00:00:00:0a" }},
  {{ bytes = "de ad" }}, {{ pad = 3 }},
]
"#
    ));
    assert_eq!(
        s.map_setup[0],
        MapSetup {
            map: "tx_port".into(),
            key: MapBytes::Struct(vec![StructField::U32(0)]),
            value: MapBytes::Struct(vec![StructField::Ifindex(iface("dut:out"))]),
            line: 26,
            program: None,
            at: None,
        }
    );
    assert_eq!(
        s.map_setup[0].describe(),
        "tx_port[[{ u32 = 0 }]] = [{ ifindex = \"dut:out\" }]"
    );
    let value = &s.map_setup[1].value;
    let MapBytes::Struct(fields) = value else {
        panic!("{value:?}")
    };
    assert_eq!(
        fields,
        &vec![
            StructField::U8(1),
            StructField::U16(0x0203),
            StructField::U32(4),
            StructField::U64(5),
            StructField::Be16(0x0607),
            StructField::Be32(8),
            StructField::Be64(9),
            StructField::Ipv4("10.0.0.1".parse().unwrap()),
            StructField::Ipv6("fd00::1".parse().unwrap()),
            StructField::Mac(crate::frame::MacAddr::new(2, 0, 0, 0, 0, 10)),
            StructField::Bytes(vec![0xde, 0xad]),
            StructField::Pad(3),
        ]
    );
    let bytes = value.to_bytes(60).unwrap();
    let want: Vec<u8> = [
        &[1u8][..],
        &[3, 2],
        &[4, 0, 0, 0],
        &[5, 0, 0, 0, 0, 0, 0, 0],
        &[6, 7],
        &[0, 0, 0, 8],
        &[0, 0, 0, 0, 0, 0, 0, 9],
        &[10, 0, 0, 1],
        &[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[2, 0, 0, 0, 0, 10],
        &[0xde, 0xad],
        &[0, 0, 0],
    ]
    .concat();
    assert_eq!(bytes, want);
    assert_eq!(
        value.to_bytes(61),
        Err("struct value is 60 bytes long, the map's field is 61".to_owned())
    );
    assert_eq!(
        value.to_string(),
        "[{ u8 = 1 }, { u16 = 515 }, { u32 = 4 }, { u64 = 5 }, { be16 = 1543 }, { be32 = 8 }, \
         { be64 = 9 }, { ipv4 = \"10.0.0.1\" }, { ipv6 = \"fd00::1\" }, \
         { mac = \"02:00:00:00:00:0a\" }, { bytes = \"de ad\" }, { pad = 3 }]"
    );
    assert!(value.ifaces().is_empty());

    let devmap = &s.map_setup[0].value;
    assert_eq!(devmap.ifaces(), vec![&iface("dut:out")]);
    assert_eq!(
        devmap.to_bytes(4),
        Err(
            "ifindex of \"dut:out\" needs the lab: the value is only known once it is built"
                .to_owned()
        )
    );
    let lookup = |i: &IfaceRef| {
        if i == &iface("dut:out") {
            Ok(0x0102_0304)
        } else {
            Err(format!("no {i}"))
        }
    };
    assert_eq!(devmap.to_bytes_with(4, &lookup), Ok(vec![4, 3, 2, 1]));
    assert_eq!(
        MapBytes::Struct(vec![StructField::Pad(1), StructField::Ifindex(iface("x"))])
            .to_bytes_with(5, &lookup),
        Err("no x".to_owned())
    );
    // Integers and hex ignore the lookup.
    assert_eq!(MapBytes::Int(7).to_bytes_with(2, &lookup), Ok(vec![7, 0]));
    assert_eq!(
        MapBytes::Struct(vec![StructField::Pad(usize::MAX), StructField::U8(1)]).to_bytes(4),
        Err("struct value is too many bytes long, the map's field is 4".to_owned())
    );
}

#[test]
fn struct_value_errors() {
    let bad = |value: &str| {
        err(&format!(
            "{HEAD}{SEND}\n[[setup.map]]\nmap = \"m\"\nkey = 0\nvalue = {value}\n"
        ))
    };
    assert_eq!(
        bad("[]"),
        "scenarios/t.toml:17:9: a struct value lists no fields (write e.g. [{ u32 = 5 }])"
    );
    assert_eq!(
        bad("[{ u24 = 1 }]"),
        "scenarios/t.toml:17:10: unknown field \"u24\", expected one of \"u8\", \"u16\", \
         \"u32\", \"u64\", \"be16\", \"be32\", \"be64\", \"ipv4\", \"ipv6\", \"mac\", \"bytes\", \
         \"pad\", \"ifindex\""
    );
    assert_eq!(
        bad("[{ u8 = 256 }]"),
        "scenarios/t.toml:17:17: invalid value: integer \"256\", expected u8"
    );
    assert_eq!(
        bad("[{ u8 = 1, u16 = 2 }]"),
        "scenarios/t.toml:17:10: a struct field is a table with one key, but this one has \"u8\" \
         and \"u16\": write [{ u8 = ... }, { u16 = ... }]"
    );
    assert!(
        bad("[{}]")
            .starts_with("scenarios/t.toml:17:10: invalid length 0, expected a table with one key")
    );
    assert!(
        bad("[1]")
            .starts_with("scenarios/t.toml:17:10: invalid type: integer \"1\", expected a table")
    );
    assert_eq!(
        bad("[{ ipv4 = \"10.0.0\" }]"),
        "scenarios/t.toml:17:19: invalid ipv4 address \"10.0.0\""
    );
    assert_eq!(
        bad("[{ ipv6 = \"fd00::x\" }]"),
        "scenarios/t.toml:17:19: invalid ipv6 address \"fd00::x\""
    );
    assert_eq!(
        bad("[{ mac = \"02\" }]"),
        "scenarios/t.toml:17:18: invalid mac address \"02\""
    );
    assert_eq!(
        bad("[{ bytes = \"0\" }]"),
        "scenarios/t.toml:17:20: odd number of hex digits (1): every byte needs two"
    );
    assert_eq!(
        bad("[{ pad = -1 }]"),
        "scenarios/t.toml:17:18: invalid value: integer \"-1\", expected usize"
    );
    assert_eq!(
        bad("[{ ifindex = \"Dut\" }]"),
        "scenarios/t.toml:17:22: invalid namespace name \"Dut\" in \"Dut\": use 1..=15 \
         characters from a-z, 0-9, \"_\" and \"-\""
    );
    // Checked against the topology, at the value's line.
    assert_eq!(
        bad("[\n  { ifindex = \"dut\" },\n]"),
        "scenarios/t.toml:17: map \"m\": ifindex \"dut\": no namespace \"dut\" in the default \
         lab (it has \"sender\" and \"receiver\"; declare [[link]]s for others)"
    );
    assert_eq!(
        err(&format!(
            "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nkey = [{{ ifindex = \"sender:x\" }}]\nabsent = true\n"
        )),
        "scenarios/t.toml:16: map \"m\": ifindex \"sender:x\": the default lab's interfaces have \
         no names: write \"sender\""
    );
    assert_eq!(
        err(&format!(
            "{TOPO}{TOPO_SEND}\n[[expect.map]]\nmap = \"m\"\nkey = 0\nvalue = [{{ ifindex = \"dut\" }}]\n"
        )),
        "scenarios/t.toml:29: map \"m\": ifindex \"dut\": namespace \"dut\" has 2 interfaces: \
         write one of \"dut:in\", \"dut:out\""
    );
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nkey = [{{ ifindex = \"sender\" }}]\nvalue = [{{ be16 = 1 }}]\n"
    ));
    assert_eq!(
        s.map_expects[0].describe(),
        "m[[{ ifindex = \"sender\" }]] == [{ be16 = 1 }]"
    );
}

#[test]
fn map_delta() {
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[expect.map]]\nmap = \"pass_cnt\"\nkey = 0\ndelta = 100\n\n\
         [[expect.map]]\nmap = \"budget\"\nkey = 1\ndelta = -5\n"
    ));
    assert_eq!(s.map_expects[0].delta, Some(100));
    assert_eq!(s.map_expects[0].value, None);
    assert_eq!(s.map_expects[0].describe(), "pass_cnt[0] changes by +100");
    assert_eq!(s.map_expects[1].describe(), "budget[1] changes by -5");
    let one_of = "scenarios/t.toml:14: map \"m\": give exactly one of value, per-cpu, delta or absent = true";
    let bad = |body: &str| {
        err(&format!(
            "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nkey = 0\n{body}"
        ))
    };
    assert_eq!(bad("delta = 1\nvalue = 1\n"), one_of);
    assert_eq!(bad("delta = 1\nabsent = true\n"), one_of);
    assert_eq!(bad("delta = 1\nper-cpu = [1]\n"), one_of);
    assert_eq!(
        bad("delta = 1.5\n"),
        "scenarios/t.toml:17:9: invalid type: floating point \"1.5\", expected an integer or \
         a table of field names (e.g. { rx_packets = 100 })"
    );
}

#[test]
fn map_values_by_field_name() {
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[expect.map]]\nmap = \"stats\"\nkey = {{ dport = 53, proto = 17 }}\n\
         value = {{ rx_packets = 100, counts = {{ rx_bytes = -1 }}, hist = [1, \"0a\"] }}\n\n\
         [[expect.map]]\nmap = \"stats\"\nkey = 2\nper-cpu = [0, {{ rx_packets = 1 }}, \"00\"]\n\n\
         [[expect.map]]\nmap = \"stats\"\nkey = 2\ndelta = {{ rx_packets = 100 }}\n"
    ));
    let named = |name: &str, value: FieldValue| NamedField {
        name: name.into(),
        value,
    };
    assert_eq!(
        s.map_expects[0].key,
        MapBytes::Fields(vec![
            named("dport", FieldValue::Int(53)),
            named("proto", FieldValue::Int(17))
        ])
    );
    // In file order, whatever order toml hands the keys over in.
    assert_eq!(
        s.map_expects[0].value,
        Some(MapBytes::Fields(vec![
            named("rx_packets", FieldValue::Int(100)),
            named(
                "counts",
                FieldValue::Fields(vec![named("rx_bytes", FieldValue::Int(-1))])
            ),
            named(
                "hist",
                FieldValue::List(vec![FieldValue::Int(1), FieldValue::Text("0a".into())])
            ),
        ]))
    );
    assert_eq!(
        s.map_expects[0].describe(),
        "stats[{ dport = 53, proto = 17 }] == { rx_packets = 100, counts = { rx_bytes = -1 }, \
         hist = [1, \"0a\"] }"
    );
    assert_eq!(
        s.map_expects[1].per_cpu,
        Some(vec![
            MapBytes::Int(0),
            MapBytes::Fields(vec![named("rx_packets", FieldValue::Int(1))]),
            MapBytes::Hex(vec![0]),
        ])
    );
    assert_eq!(s.map_expects[2].delta, None);
    assert_eq!(
        s.map_expects[2].delta_fields,
        Some(vec![named("rx_packets", FieldValue::Int(100))])
    );
    assert_eq!(
        s.map_expects[2].describe(),
        "stats[2] changes by { rx_packets = 100 }"
    );
    let bad = |body: &str| {
        err(&format!(
            "{HEAD}{SEND}\n[[expect.map]]\nmap = \"m\"\nkey = 0\n{body}"
        ))
    };
    assert!(
        bad("value = {}\n").contains("names no field"),
        "{}",
        bad("value = {}\n")
    );
    assert!(
        bad("value = { a = 1.5 }\n").contains("17:"),
        "located at the value"
    );
}

#[test]
fn setup_maps() {
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[setup.map]]\nmap = \"filter_config\"\nkey = 0\nvalue = 1\n\n\
         [[setup.map]]\nmap = \"filter_config\"\nkey = 0\nvalue = \"01 00 00 00\"\n"
    ));
    assert_eq!(
        s.map_setup,
        vec![
            MapSetup {
                map: "filter_config".into(),
                key: MapBytes::Int(0),
                value: MapBytes::Int(1),
                line: 14,
                program: None,
                at: None,
            },
            MapSetup {
                map: "filter_config".into(),
                key: MapBytes::Int(0),
                value: MapBytes::Hex(vec![1, 0, 0, 0]),
                line: 19,
                program: None,
                at: None,
            },
        ]
    );
    assert_eq!(s.map_setup[0].describe(), "filter_config[0] = 1");
    let bad = |body: &str| err(&format!("{HEAD}{SEND}\n{body}"));
    assert_eq!(
        bad("[[setup.map]]\nmap = \"m\"\nkey = 0\n"),
        "scenarios/t.toml:14: map \"m\": give exactly one of value or program (a program of \
         the same object, for a PROG_ARRAY slot)"
    );
    assert_eq!(
        bad("[[setup.map]]\nmap = \" \"\nkey = 0\nvalue = 0\n"),
        "scenarios/t.toml:14: map setup names no map"
    );
    assert!(
        bad("[[setup.map]]\nmap = \"m\"\nkey = 0\nvalue = 0\nper-cpu = [1]\n")
            .starts_with("scenarios/t.toml:18:1: unknown field \"per-cpu\", expected one of \"map\", \"key\", \"value\"")
    );
    assert_eq!(
        bad("[setup]\nmaps = []\n"),
        "scenarios/t.toml:15:1: unknown field \"maps\", expected \"map\""
    );
    // An empty [setup] is allowed.
    assert!(ok(&format!("{HEAD}{SEND}\n[setup]\n")).map_setup.is_empty());
}

const EVENTS: &str = r#"
[[expect.events]]
ringbuf = "drop_events"
layout = ["rule:u32", "ethertype:u16", "ip-proto:u8", "reason:u8", "dst-port:u16", "len:u16"]
where = { reason = 1, dst-port = 53 }
count = 350
"#;

#[test]
fn event_expectations() {
    let s = ok(&format!("{HEAD}{SEND}{EVENTS}"));
    let e = &s.event_expects[0];
    assert_eq!(
        e,
        &EventExpect {
            ringbuf: "drop_events".into(),
            layout: vec![
                ("rule".into(), FieldKind::U32),
                ("ethertype".into(), FieldKind::U16),
                ("ip-proto".into(), FieldKind::U8),
                ("reason".into(), FieldKind::U8),
                ("dst-port".into(), FieldKind::U16),
                ("len".into(), FieldKind::U16),
            ],
            filter: vec![("reason".into(), 1), ("dst-port".into(), 53)],
            count: 350,
            line: 14,
        }
    );
    assert_eq!(e.record_len(), 12);
    assert_eq!(
        e.describe(),
        "drop_events: 350 records with { reason = 1, dst-port = 53 }"
    );
    // struct drop_event { u32 rule; u16 ethertype; u8 ip_proto; u8 reason; u16 dst_port; u16 len; }
    let record = [2, 0, 0, 0, 0x00, 0x08, 17, 1, 53, 0, 64, 0];
    assert_eq!(
        e.decode(&record),
        Some(vec![
            ("rule".into(), 2),
            ("ethertype".into(), 0x0800),
            ("ip-proto".into(), 17),
            ("reason".into(), 1),
            ("dst-port".into(), 53),
            ("len".into(), 64),
        ])
    );
    assert!(e.matches(&record));
    // Longer records are fine; shorter ones never match.
    assert!(e.matches(&[&record[..], &[0xff; 4]].concat()));
    assert_eq!(e.decode(&record[..11]), None);
    assert!(!e.matches(&record[..11]));
    let mut other = record;
    other[7] = 2;
    assert!(!e.matches(&other));
    let mut other = record;
    other[8] = 54;
    assert!(!e.matches(&other));

    // No where: every record counts; pads, "_" and big-endian fields.
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[expect.events]]\nringbuf = \"rb\"\n\
         layout = [\"a:u8\", \"_:pad3\", \"port:be16\", \"_:u16\", \"b:be32\", \"c:u64\", \"d:be64\"]\n\
         count = 0\n"
    ));
    let e = &s.event_expects[0];
    assert_eq!(e.filter, vec![]);
    assert_eq!(e.count, 0);
    assert_eq!(e.record_len(), 28);
    assert_eq!(e.describe(), "rb: 0 records");
    let record: Vec<u8> = [
        &[7u8, 0xee, 0xee, 0xee][..],
        &[0x01, 0xbb],
        &[0xff, 0xff],
        &[0, 0, 1, 0],
        &[1, 0, 0, 0, 0, 0, 0, 2],
        &[1, 0, 0, 0, 0, 0, 0, 2],
    ]
    .concat();
    assert_eq!(
        e.decode(&record),
        Some(vec![
            ("a".into(), 7),
            ("port".into(), 443),
            ("b".into(), 256),
            ("c".into(), 0x0200_0000_0000_0001),
            ("d".into(), 0x0100_0000_0000_0002),
        ])
    );
    assert!(e.matches(&record));
    assert!(!e.matches(&record[..27]));
}

#[test]
fn event_expectation_errors() {
    let bad = |layout: &str, rest: &str| {
        err(&format!(
            "{HEAD}{SEND}\n[[expect.events]]\nringbuf = \"rb\"\nlayout = {layout}\n{rest}count = 1\n"
        ))
    };
    assert_eq!(
        bad("[\"a:u24\"]", ""),
        "scenarios/t.toml:16:11: unknown field type \"u24\": expected u8, u16, u32, u64, be16, \
         be32, be64 or padN (N bytes, N >= 1)"
    );
    for kind in ["pad0", "pad", "pad+2", "pad-1", "Pad2", "u8 "] {
        assert!(
            bad(&format!("[\"a:{kind}\"]"), "").contains("unknown field type"),
            "{kind}"
        );
    }
    assert_eq!(
        bad("[\"a\"]", ""),
        "scenarios/t.toml:16:11: layout field \"a\" has no type: write \"name:type\", e.g. \
         \"len:u16\""
    );
    assert_eq!(
        bad("[\"a b:u8\"]", ""),
        "scenarios/t.toml:16:11: invalid layout field name \"a b\": use letters, digits, \"_\" \
         and \"-\""
    );
    assert!(bad("[\":u8\"]", "").contains("invalid layout field name \"\""));
    assert_eq!(
        bad("[]", ""),
        "scenarios/t.toml:16: ring buffer \"rb\": layout lists no fields"
    );
    assert_eq!(
        bad("[\"a:u8\", \"b:u8\", \"a:u16\"]", ""),
        "scenarios/t.toml:16: ring buffer \"rb\": layout names field \"a\" twice"
    );
    assert_eq!(
        bad("[\"a:u8\", \"p:pad2\", \"_:u8\"]", "where = { b = 1 }\n"),
        "scenarios/t.toml:17: ring buffer \"rb\": where names \"b\", which is not a field of the \
         layout (fields: \"a\")"
    );
    assert_eq!(
        bad("[\"a:u8\", \"_:u8\"]", "where = { _ = 1 }\n"),
        "scenarios/t.toml:17: ring buffer \"rb\": where names \"_\", which is not a field of the \
         layout (fields: \"a\")"
    );
    assert_eq!(
        bad("[\"a:u8\", \"p:pad2\"]", "where = { p = 0 }\n"),
        "scenarios/t.toml:17: ring buffer \"rb\": where names \"p\", which is padding (pad2)"
    );
    assert_eq!(
        bad("[\"a:u8\", \"b:be16\"]", "where = { a = 1, b = 65536 }\n"),
        "scenarios/t.toml:17: ring buffer \"rb\": where b = 65536 does not fit its type (be16)"
    );
    assert_eq!(
        bad("[\"a:u8\"]", "where = { a = -1 }\n"),
        "scenarios/t.toml:17:15: invalid value: integer \"-1\", expected u64"
    );
    assert_eq!(
        bad("[\"a:u8\"]", "where = { a = \"x\" }\n"),
        "scenarios/t.toml:17:15: invalid type: string \"x\", expected u64"
    );
    assert!(
        bad("[\"a:u8\"]", "filter = {}\n")
            .starts_with("scenarios/t.toml:17:1: unknown field \"filter\", expected one of \"ringbuf\", \"layout\", \"where\", \"count\"")
    );
    assert_eq!(
        err(&format!(
            "{HEAD}{SEND}\n[[expect.events]]\nringbuf = \"\"\nlayout = [\"a:u8\"]\ncount = 1\n"
        )),
        "scenarios/t.toml:14: event expectation names no ring buffer"
    );
    assert_eq!(
        err(&format!(
            "{HEAD}{SEND}\n[[expect.events]]\nringbuf = \"rb\"\nlayout = [\"a:u8\"]\n"
        )),
        "scenarios/t.toml:14:1: missing field \"count\""
    );
    // Repeated "_" names are fine; so is a where sub-table.
    let s = ok(&format!(
        "{HEAD}{SEND}\n[[expect.events]]\nringbuf = \"rb\"\nlayout = [\"_:u8\", \"_:pad1\", \"x:u16\"]\ncount = 1\n\n[expect.events.where]\nx = 5\n"
    ));
    assert_eq!(s.event_expects[0].filter, vec![("x".to_owned(), 5)]);
}

#[test]
fn field_kinds() {
    for (text, kind, len) in [
        ("u8", FieldKind::U8, 1),
        ("u16", FieldKind::U16, 2),
        ("u32", FieldKind::U32, 4),
        ("u64", FieldKind::U64, 8),
        ("be16", FieldKind::Be16, 2),
        ("be32", FieldKind::Be32, 4),
        ("be64", FieldKind::Be64, 8),
        ("pad7", FieldKind::Pad(7), 7),
    ] {
        assert_eq!(text.parse::<FieldKind>(), Ok(kind));
        assert_eq!(kind.len(), len);
        assert_eq!(kind.to_string(), text);
    }
    assert_eq!(FieldKind::Be16.max(), Some(65535));
    assert_eq!(FieldKind::Pad(1).max(), None);
}

/// Every scenario shipped with xdplab still parses (schema v1 only grew).
#[test]
fn bundled_scenarios_still_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut parsed = 0;
    for dir in ["scenarios", "harness/tests/fixtures/scenarios"] {
        for file in discover(&[root.join(dir)]).unwrap() {
            let text = std::fs::read_to_string(&file).unwrap();
            // A fixture made to fail parsing says so in its name.
            if file.ends_with("unknown-key.toml") {
                assert!(parse(&text, &file).is_err());
                continue;
            }
            let s = parse(&text, &file).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.sends.is_empty());
            parsed += 1;
        }
    }
    assert!(parsed >= 10, "{parsed}");
}

#[test]
fn throughput_parses_with_defaults() {
    let s = ok(&format!("{HEAD}{SEND}\n[throughput]\nmin-ratio = 0.5\n"));
    assert_eq!(
        s.throughput,
        Some(ThroughputSpec {
            injector: crate::bench::InjectorKind::Live,
            duration: std::time::Duration::from_secs(2),
            size: 64,
            threads: 1,
            baseline: crate::bench::BenchProgram::None,
            min_ratio: 0.5,
            line: 14,
        })
    );
    assert_eq!(
        s.throughput.unwrap().describe(),
        "throughput: live, 64 B, 2s: rx pps >= 0.5 x none"
    );
    assert_eq!(ok(&format!("{HEAD}{SEND}")).throughput, None);
}

#[test]
fn throughput_parses_every_key() {
    let s = ok(&format!(
        "{HEAD}{SEND}\n[throughput]\ninjector = \"batched\"\nduration = \"500ms\"\nsize = 1514\n\
         threads = 2\nbaseline = \"pass\"\nmin-ratio = 1\n"
    ));
    let t = s.throughput.unwrap();
    assert_eq!(t.injector, crate::bench::InjectorKind::Batched);
    assert_eq!(t.duration, std::time::Duration::from_millis(500));
    assert_eq!((t.size, t.threads), (1514, 2));
    assert_eq!(t.baseline, crate::bench::BenchProgram::Pass);
    assert_eq!(t.min_ratio, 1.0);
    assert_eq!(
        t.describe(),
        "throughput: batched x2, 1514 B, 500ms: rx pps >= 1 x pass"
    );
}

#[test]
fn throughput_errors_are_located() {
    let t = |body: &str| err(&format!("{HEAD}{SEND}\n[throughput]\n{body}"));
    // The [throughput] header is line 14; its keys start on line 15.
    assert_eq!(
        t("min-ratio = 0.5\nratio = 1\n"),
        "scenarios/t.toml:16:1: unknown field \"ratio\", expected one of \"injector\", \
         \"duration\", \"size\", \"threads\", \"baseline\", \"min-ratio\""
    );
    assert_eq!(
        t("injector = \"dpdk\"\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:12: unknown injector \"dpdk\" (expected pnet, batched or live)"
    );
    assert_eq!(
        t("duration = \"2\"\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:12: invalid duration \"2\": write a number and a unit (ms, s or \
         m), e.g. \"500ms\", \"3s\" or \"1m\""
    );
    assert_eq!(
        t("duration = \"50ms\"\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:12: duration \"50ms\" is out of range (100ms..=1m)"
    );
    assert_eq!(
        t("duration = \"61s\"\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:12: duration \"61s\" is out of range (100ms..=1m)"
    );
    assert!(
        ok(&format!(
            "{HEAD}{SEND}\n[throughput]\nduration = \"1m\"\nmin-ratio = 1\n"
        ))
        .throughput
        .is_some()
    );
    assert!(
        ok(&format!(
            "{HEAD}{SEND}\n[throughput]\nduration = \"100ms\"\nmin-ratio = 1\n"
        ))
        .throughput
        .is_some()
    );
    assert_eq!(
        t("size = 59\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:8: size 59 is out of range (60..=1514 bytes, without FCS)"
    );
    assert_eq!(
        t("size = 1515\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:8: size 1515 is out of range (60..=1514 bytes, without FCS)"
    );
    assert!(t("size = -1\nmin-ratio = 0.5\n").starts_with("scenarios/t.toml:15:8: "));
    assert_eq!(
        t("threads = 0\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:11: threads 0 is out of range (1..=256)"
    );
    assert_eq!(
        t("baseline = \"xdp_pass\"\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:12: unknown baseline \"xdp_pass\" (expected \"none\", \"drop\", \
         \"pass\" or \"object:PATH\")"
    );
    assert_eq!(
        t("baseline = \"object: \"\nmin-ratio = 0.5\n"),
        "scenarios/t.toml:15:12: baseline \"object:\" names no object (write \"object:PATH\", \
         relative to this file)"
    );
    let scenario = ok(&format!(
        "{HEAD}{SEND}\n[throughput]\nbaseline = \"object:v1/xdp_drop.bpf.o\"\nmin-ratio = 0.5\n"
    ));
    assert_eq!(
        scenario.throughput.expect("throughput").baseline,
        crate::bench::BenchProgram::Object {
            source: crate::kernel::program::ObjectSource::File(
                "scenarios/v1/xdp_drop.bpf.o".into()
            ),
            entry: scenario.program.entry.clone(),
        }
    );
    assert_eq!(
        t("injector = \"live\"\n"),
        "scenarios/t.toml:14: [throughput] needs min-ratio: the lowest acceptable program rx pps \
         / baseline rx pps"
    );
    for bad in ["0", "-0.5", "0.0", "nan", "inf"] {
        assert_eq!(
            t(&format!("min-ratio = {bad}\n")),
            format!(
                "scenarios/t.toml:15:13: min-ratio {} must be a number greater than 0",
                bad.parse::<f64>().unwrap()
            ),
            "{bad}"
        );
    }
    assert!(t("min-ratio = \"0.5\"\n").starts_with("scenarios/t.toml:15:13: "));
}

#[test]
fn throughput_needs_the_default_lab() {
    let e = err(&format!(
        "{TOPO}{TOPO_SEND}\n[throughput]\nmin-ratio = 0.5\n"
    ));
    assert_eq!(
        e,
        "scenarios/t.toml:26: [throughput] measures the program in the default two-namespace \
         lab, and this scenario declares its own topology ([[link]] at line 4): measure it in a \
         scenario without [[link]]s"
    );
}

#[test]
fn durations() {
    use std::time::Duration;
    for (text, want) in [
        ("500ms", Duration::from_millis(500)),
        ("3s", Duration::from_secs(3)),
        ("1.5s", Duration::from_millis(1500)),
        ("1m", Duration::from_secs(60)),
        (" 2 s ", Duration::from_secs(2)),
        ("0.25m", Duration::from_secs(15)),
        (".5s", Duration::from_millis(500)),
    ] {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
    for bad in [
        "", "3", "s", "3x", "3 ms s", "1.2.3s", "-1s", "1h", "3S", "1e3ms", ".s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    for (duration, text) in [
        (Duration::from_millis(500), "500ms"),
        (Duration::from_secs(2), "2s"),
        (Duration::from_millis(1500), "1500ms"),
        (Duration::from_secs(120), "2m"),
        (Duration::ZERO, "0ms"),
    ] {
        assert_eq!(format_duration(duration), text);
        assert_eq!(parse_duration(text), Ok(duration));
    }
}

const STEPS_HEAD: &str = "schema-version = 1\nname = \"t\"\n\n\
[[step]]\nload = \"v1\"\nobject = \"xdp_version\"\nentry = \"xdp_version\"\nglobals = { version = 1 }\n\n\
[[step]]\nload = \"v2\"\nobject = \"xdp_version\"\nentry = \"xdp_version\"\nglobals = { version = 2 }\n\n\
[[step]]\nattach = \"v1\"\nlink = \"rx\"\n";

const BG: &str = "\n[[step]]\nsend = { name = \"bg\", count = 1000, ipv4 = {}, udp = { dst-port = 9 }, expect = \"drop\" }\nbackground = \"5s\"\n";

#[test]
fn steps_parse_into_a_sequence() {
    let text = format!(
        "{STEPS_HEAD}{BG}\n[[step]]\nwait = \"bg\"\nframes = 10\n\n[[step]]\nreplace = \"v2\"\n\n\
         [[step]]\nwait = \"bg\"\n\n[[step]]\nrollback = \"v1\"\n\n[[step]]\nrestart = true\n\n\
         [[step]]\ndetach = \"rx\"\n\n[[step]]\nunpin = [\"all\"]\n\n\
         [[step]]\n[step.expect]\npins = []\ntrace = {{ group = \"bg\", versions = [\"v1\", \"v2\"] }}\n"
    );
    let s = super::parse(&text, Path::new("scenarios/t.toml")).expect("parses");
    let verbs: Vec<&str> = s.steps.iter().map(|st| st.action.verb()).collect();
    assert_eq!(
        verbs,
        [
            "load", "load", "attach", "send", "wait", "replace", "wait", "rollback", "restart",
            "detach", "unpin", "expect"
        ]
    );
    assert_eq!(s.sends.len(), 1);
    assert_eq!(s.sends[0].name, "bg");
    assert_eq!(s.program.entry, "xdp_version");
    assert_eq!(s.steps[0].line, 4);
    match &s.steps[0].action {
        StepAction::Load {
            version, globals, ..
        } => {
            assert_eq!(version, "v1");
            assert_eq!(globals, &[("version".to_owned(), 1)]);
        }
        other => panic!("{other:?}"),
    }
    match &s.steps[3].action {
        StepAction::Send { group, background } => {
            assert_eq!(*group, 0);
            assert_eq!(*background, Some(std::time::Duration::from_secs(5)));
        }
        other => panic!("{other:?}"),
    }
    match &s.steps[11].action {
        StepAction::Expect(e) => {
            assert_eq!(e.pins, Some(Vec::new()));
            let t = e.trace.as_ref().expect("trace");
            assert_eq!((t.group, t.map.as_str()), (0, "trace"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn step_sequences_that_cannot_run_are_refused_at_their_line() {
    let cases: [(String, &str); 12] = [
        (
            format!("{STEPS_HEAD}\n[[step]]\nreplace = \"v3\"\n"),
            "scenarios/t.toml:21: replace: version \"v3\" is not loaded before this step (loaded: \"v1\", \"v2\")",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\nrollback = \"v2\"\n"),
            "scenarios/t.toml:20: rollback: link \"rx\" never ran \"v2\" (it ran \"v1\"); use replace",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\nreplace = \"v1\"\n"),
            "scenarios/t.toml:20: replace: link \"rx\" runs \"v1\" already",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\nreplace = \"v2\"\nrestart = true\n"),
            "scenarios/t.toml:20: step has 2 verbs (replace, restart): one per [[step]]",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\nreplace = \"v2\"\nobject = \"x\"\n"),
            "scenarios/t.toml:20: a replace step takes no key \"object\"",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\nwait = \"bg\"\n"),
            "scenarios/t.toml:21: wait: no send group \"bg\" before this step",
        ),
        (
            format!("{STEPS_HEAD}{BG}{BG}"),
            "scenarios/t.toml:24: send: background send \"bg\" (line 20) is still running; wait for it first",
        ),
        (
            format!(
                "{STEPS_HEAD}{BG}\n[[step]]\nexpect = {{ trace = {{ group = \"bg\", versions = [\"v1\"] }} }}\n"
            ),
            "scenarios/t.toml:25: expect trace: send \"bg\" is still running; wait for it first",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\ndetach = \"rx\"\n\n[[step]]\nreplace = \"v2\"\n"),
            "scenarios/t.toml:23: replace: link \"rx\" is detached; attach a new link instead",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\nunpin = [\"progs/v9\"]\n"),
            "scenarios/t.toml:21: unpin: \"progs/v9\" is not a pin of this run (progs/<version>, maps/<map> or links/<link>, made before this step)",
        ),
        (
            format!("{STEPS_HEAD}\n[[step]]\n"),
            "scenarios/t.toml:20: step does nothing: give one of load, attach, send, wait, sleep, replace, rollback, detach, restart, unpin, expect",
        ),
        (
            format!("{STEPS_HEAD}\n[program]\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n"),
            "scenarios/t.toml:4: a scenario with [[step]] says everything in its steps: move [program] into load, attach, send and expect steps",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(&text), want, "{text}");
    }
}

#[test]
fn a_trace_needs_versions_that_can_be_told_apart() {
    let text = STEPS_HEAD.replace("globals = { version = 2 }\n", "");
    let e = err(&format!(
        "{text}\n[[step]]\nsend = {{ name = \"a\", count = 5, ipv4 = {{}}, udp = {{}}, expect = \"drop\" }}\n\n\
         [[step]]\nexpect = {{ trace = {{ group = \"a\", versions = [\"v1\", \"v2\"] }} }}\n"
    ));
    assert!(
        e.ends_with("expect trace: version \"v2\" sets no globals.version, so its frames cannot be told apart"),
        "{e}"
    );
}

#[test]
fn loader_keys() {
    use crate::{kernel::elf::ProgramType, kernel::program::GlobalValue};
    let s = ok(&format!(
        "{HEAD}type = \"xdp\"\nglobals = {{ port = 53, on = true, key = \"0a0b\" }}\n\
         max-entries = {{ rx_cnt = 64 }}\n{SEND}\n[[setup.map]]\nmap = \"jmp\"\nkey = 1\n\
         program = \"stage\"\n"
    ));
    let loader = &s.program.loader;
    assert_eq!(loader.program_type, Some(ProgramType::Xdp));
    assert_eq!(
        loader.globals,
        [
            ("key".to_owned(), GlobalValue::Bytes(vec![0x0a, 0x0b])),
            ("on".to_owned(), GlobalValue::Bool(true)),
            ("port".to_owned(), GlobalValue::Int(53)),
        ]
    );
    assert_eq!((loader.globals_line, loader.max_entries_line), (8, 9));
    assert_eq!(loader.max_entries, [("rx_cnt".to_owned(), 64)]);
    assert_eq!(s.map_setup[0].program.as_deref(), Some("stage"));
    assert_eq!(s.map_setup[0].describe(), "jmp[1] = program stage");
    assert_eq!(
        super::loader::tail_call_programs(&s.map_setup),
        ["stage".to_owned()]
    );
    let frags = ok(&format!("{HEAD}type = \"xdp.frags\"\n{SEND}"));
    assert_eq!(
        frags.program.loader.program_type,
        Some(ProgramType::XdpFrags)
    );
    assert_eq!(
        ok(&format!("{HEAD}{SEND}")).program.loader,
        LoaderSpec::default()
    );
    assert_eq!(
        err(&format!("{HEAD}type = \"tc\"\n{SEND}")),
        "scenarios/t.toml:7: type: unknown program type \"tc\" (expected \"xdp\" or \"xdp.frags\")"
    );
    assert!(
        err(&format!("{HEAD}max-entries = {{ m = -1 }}\n{SEND}"))
            .starts_with("scenarios/t.toml:7:"),
    );
}

#[test]
fn map_tables_name_attach_programs_by_interface() {
    let s = ok(&format!(
        "{TOPO}{TOPO_SEND}\n[[attach]]\nat = \"dut:out\"\nobject = \"xdp_count\"\nentry = \"xdp_count\"\n\
         type = \"xdp\"\n\n[[setup.map]]\nmap = \"by_proto\"\nkey = 17\nvalue = 0\nat = \"dut:out\"\n\n\
         [[expect.map]]\nmap = \"pass_cnt\"\nkey = 0\nvalue = 10\nat = \"dut:out\"\n"
    ));
    assert_eq!(
        s.attachments[0].loader.program_type,
        Some(crate::kernel::elf::ProgramType::Xdp)
    );
    assert_eq!(s.map_setup[0].at, Some(iface("dut:out")));
    assert_eq!(s.map_expects[0].at, Some(iface("dut:out")));
    let e = err(&format!(
        "{TOPO}{TOPO_SEND}\n[[expect.map]]\nmap = \"pass_cnt\"\nkey = 0\nvalue = 10\nat = \"dut:out\"\n"
    ));
    assert!(e.contains("has no [[attach]] program"), "{e}");
}

#[test]
fn frags_programs_run_natively_above_the_veth_cap() {
    // xdp.frags (multi-buffer): veth runs it natively at a jumbo MTU.
    let frags = "schema-version = 1\nname = \"t\"\n\n[lab]\nmtu = 9000\n\n[program]\n\
                 object = \"xdp_frags\"\nentry = \"xdp_frags_limit\"\n\n[[send]]\nname = \"a\"\n\
                 count = 1\nipv4 = {}\nsize = 9014\nexpect = \"pass\"\n";
    assert_eq!(ok(frags).lab.mtu, 9000);
    // The same lab with a program that is not frags keeps the cap.
    let plain = frags
        .replace("\"xdp_frags\"", "\"xdp_pass\"")
        .replace("xdp_frags_limit", "xdp_pass");
    assert!(
        err(&plain).starts_with("scenarios/t.toml:5: lab mtu 9000 is too large for native XDP"),
        "{}",
        err(&plain)
    );
}

#[test]
fn netns_tables_parse_into_kernel_state() {
    use super::kernel_state::{NeighSpec, RouteSpec};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/fib-router.toml");
    let s = parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    assert_eq!(s.netns.len(), 1);
    let router = &s.netns[0];
    assert_eq!(router.name, "router");
    assert_eq!(
        router.sysctls,
        [
            ("net/ipv4/ip_forward".to_owned(), "1".to_owned()),
            ("net/ipv6/conf/all/forwarding".to_owned(), "1".to_owned()),
        ]
    );
    assert_eq!(
        router.routes,
        [
            RouteSpec {
                to: "10.99.0.0/24".parse().unwrap(),
                via: Some("10.78.1.2".parse().unwrap()),
                dev: None,
            },
            RouteSpec {
                to: "10.98.0.0/24".parse().unwrap(),
                via: None,
                dev: Some("router:out".parse().unwrap()),
            },
            RouteSpec {
                to: "10.96.0.0/24".parse().unwrap(),
                via: Some("10.78.0.1".parse().unwrap()),
                dev: None,
            },
        ]
    );
    assert_eq!(
        router.neighbours,
        [NeighSpec {
            ip: "10.98.0.7".parse().unwrap(),
            mac: crate::frame::MacAddr(0x02, 0x78, 0x6c, 0x98, 0, 0x07),
            dev: "router:out".parse().unwrap(),
        }]
    );
    // As the topology applies it: interface names as the lab gives them.
    let spec = super::plan::topology_spec(&s);
    assert_eq!(spec.state.len(), 1);
    assert_eq!(spec.state[0].routes[1].interface.as_deref(), Some("out"));
    assert_eq!(spec.state[0].neighbours[0].interface, "out");
    // The default lab's interfaces carry the process id.
    let default_lab = format!(
        "{HEAD}{SEND}\n[[netns]]\nname = \"receiver\"\n\n[[netns.address]]\ndev = \"receiver\"\nip = \"10.78.9.1/24\"\n"
    );
    let spec = super::plan::topology_spec(&ok(&default_lab));
    assert_eq!(
        spec.state[0].addresses[0].interface,
        format!("xl-{}-rx", std::process::id())
    );
}

#[test]
fn objects_of_a_scenario_this_kernel_predates_are_not_checked() {
    // An xdp.frags object cannot even load before 5.18: a scenario that declares the kernel
    // it needs is reported SKIP by the run, so its objects must not stop the run up front.
    let text = format!(
        "schema-version = 1\nname = \"t\"\nrequires = [\"kernel>=99.0\"]\n\n[program]\n\
         object = \"no-such-object.bpf.o\"\nentry = \"x\"\n{SEND}"
    );
    assert!(super::run::check_objects(&ok(&text)).is_ok());
    let unguarded = text.replace("requires = [\"kernel>=99.0\"]\n", "");
    let e = super::run::check_objects(&ok(&unguarded)).expect_err("a missing object");
    assert!(e.to_string().contains("no-such-object.bpf.o"), "{e}");
}
