use std::path::{Path, PathBuf};

use super::*;
use crate::frame::{FrameSpec, Ipv4Spec, Ipv6Spec, TcpFlags, TcpSpec, UdpSpec};
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
            lab: LabSpec {
                mtu: 1500,
                ipv6: false
            },
            program: ProgramSpec {
                object: ObjectRef::Bundled("xdp_drop".into()),
                entry: "xdp_drop_all".into(),
                mode: XdpModeSpec::Native,
            },
            rules: vec![],
            sends: vec![SendGroup {
                name: "udp-to-9".into(),
                count: 1000,
                frame: FrameSpec {
                    ipv4: Some(Ipv4Spec::default()),
                    udp: Some(UdpSpec {
                        src_port: 40000,
                        dst_port: 9
                    }),
                    size: Some(64),
                    ..FrameSpec::default()
                },
                expect: Verdict::Drop,
                line: 10,
            }],
            map_expects: vec![MapExpect {
                map: "drop_cnt".into(),
                key: MapBytes::Int(0),
                value: Some(MapBytes::Int(1000)),
                per_cpu: None,
                absent: false,
                line: 18,
            }],
        }
    );
}

#[test]
fn pass_baseline_generic_parses_as_written() {
    let s = parse(PASS_BASELINE_GENERIC, Path::new("pass.toml")).unwrap();
    assert_eq!(s.name, "pass-baseline-generic");
    assert_eq!(s.description, None);
    assert_eq!(s.program.object, ObjectRef::Bundled("xdp_pass".into()));
    assert_eq!(s.program.entry, "xdp_pass");
    assert_eq!(s.program.mode, XdpModeSpec::Generic);
    assert_eq!(s.lab, LabSpec::default());
    assert!(s.map_expects.is_empty());
    assert_eq!(
        s.sends,
        vec![SendGroup {
            name: "tcp-syn".into(),
            count: 200,
            frame: FrameSpec {
                ipv6: Some(Ipv6Spec::default()),
                tcp: Some(TcpSpec {
                    dst_port: 80,
                    flags: TcpFlags(0x02),
                    ..TcpSpec::default()
                }),
                ..FrameSpec::default()
            },
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
         \"name\", \"description\", \"skip\", \"lab\", \"program\", \"rule\", \"send\", \"expect\""
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
        "scenarios/t.toml:11:10: unknown variant \"dropped\", expected \"drop\" or \"pass\""
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
        "scenarios/t.toml:1:1: missing field \"program\""
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
        "scenarios/t.toml:18:1: duplicate key"
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
    let frame = &s.sends[0].frame;
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
    assert_eq!(raw.sends[0].frame.raw.as_ref().unwrap().0, vec![0xff; 60]);
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
    assert_eq!(s.map_expects[0].per_cpu, Some(vec![1, 0, 2]));
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
    let one_of =
        "scenarios/t.toml:14: map \"m\": give exactly one of value, per-cpu or absent = true";
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
        ObjectRef::Path("scenarios/obj/my.o".into())
    );
    assert_eq!(s.program.mode, XdpModeSpec::Native);
    let s = parse(
        &format!("{HEAD}{SEND}").replace("\"xdp_filter\"\nentry", "\"my.o\"\nentry"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(s.program.object, ObjectRef::Path("my.o".into()));
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
    assert_eq!(s.sends[0].frame.udp.as_ref().map(|u| u.dst_port), Some(53));
    assert_eq!(s.sends[1].frame.udp, None);
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
    assert_eq!(examples, 2);
}
