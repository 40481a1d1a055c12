//! Property tests of the scenario parser: generated valid scenarios, written as TOML, are
//! accepted and read back to the values written; and no text, whether arbitrary or a seeded
//! mutation of a bundled or malformed scenario (the `fuzz_scenario` example's mutations),
//! makes the parser panic or return an error that does not start with the file's path.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use proptest::prelude::*;
use xdplab::{
    frame::FrameSpec,
    kernel::program::{ObjectSource, XdpMode},
    scenario::{self, FrameSource},
    verdict::Verdict,
};

#[path = "../examples/fuzz_scenario/mutate.rs"]
mod mutate;

/// A TOML string literal of `text`, escaped by the toml crate itself.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[derive(Clone, Debug)]
enum L3 {
    None,
    V4,
    V6,
}

#[derive(Clone, Debug)]
enum L4 {
    None,
    Udp(u16, u16),
    Tcp(u16, u16),
}

#[derive(Clone, Debug)]
struct Group {
    count: u32,
    expect: Verdict,
    vlans: Vec<u16>,
    l3: L3,
    l4: L4,
    /// Picks a size between the headers and the MTU; `None` leaves `size` out.
    size: Option<u16>,
}

#[derive(Clone, Debug)]
struct Generated {
    name: String,
    description: Option<String>,
    object: &'static str,
    entry: String,
    mode: Option<XdpMode>,
    mtu: Option<u32>,
    ipv6: Option<bool>,
    groups: Vec<Group>,
    /// (map, key, value)
    maps: Vec<(String, u32, u64)>,
}

fn group() -> impl Strategy<Value = Group> {
    let l3_l4 = prop_oneof![
        Just((L3::None, L4::None)),
        prop_oneof![Just(L3::V4), Just(L3::V6)].prop_flat_map(|l3| {
            (
                Just(l3),
                prop_oneof![
                    Just(L4::None),
                    (any::<u16>(), any::<u16>()).prop_map(|(s, d)| L4::Udp(s, d)),
                    (any::<u16>(), any::<u16>()).prop_map(|(s, d)| L4::Tcp(s, d)),
                ],
            )
        }),
    ];
    (
        // Up to 4 groups: each at most a quarter of the scenario's cap on frames.
        1u32..=2_500_000,
        prop::sample::select(vec![
            Verdict::Drop,
            Verdict::Pass,
            Verdict::Tx,
            Verdict::Aborted,
        ]),
        prop::collection::vec(0u16..=4095, 0..=2),
        l3_l4,
        any::<Option<u16>>(),
    )
        .prop_map(|(count, expect, vlans, (l3, l4), size)| Group {
            count,
            expect,
            vlans,
            l3,
            l4,
            size,
        })
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        "[A-Za-z0-9][A-Za-z0-9 _.\"\\\\\u{e9}-]{0,20}[A-Za-z0-9]",
        prop::option::of("\\PC{0,40}"),
        prop::sample::select(vec!["xdp_drop", "xdp_pass", "xdp_tx", "xdp_aborted"]),
        "[a-z_][a-z0-9_]{0,20}",
        prop::option::of(prop::sample::select(vec![
            XdpMode::Native,
            XdpMode::Generic,
        ])),
        prop::option::of(576u32..=3498),
        any::<Option<bool>>(),
        prop::collection::vec(group(), 1..=4),
        prop::collection::vec(
            (
                "[a-z_][a-z0-9_]{0,14}",
                any::<u32>(),
                0u64..=i64::MAX as u64,
            ),
            0..=3,
        ),
    )
        .prop_map(
            |(name, description, object, entry, mode, mtu, ipv6, groups, maps)| Generated {
                name,
                description,
                object,
                entry,
                mode,
                mtu,
                ipv6,
                groups,
                maps,
            },
        )
}

impl Group {
    fn natural(&self) -> usize {
        14 + 4 * self.vlans.len()
            + match self.l3 {
                L3::None => 0,
                L3::V4 => 20,
                L3::V6 => 40,
            }
            + match self.l4 {
                L4::None => 0,
                L4::Udp(..) => 8,
                L4::Tcp(..) => 20,
            }
    }

    /// The size written, if any: between the headers (and the Ethernet minimum) and the MTU.
    fn size(&self, mtu: u32) -> Option<usize> {
        let min = self.natural().max(60);
        let max = mtu as usize + 14;
        self.size
            .map(|pick| min + usize::from(pick) % (max - min + 1))
    }
}

impl Generated {
    fn mtu(&self) -> u32 {
        self.mtu.unwrap_or(1500)
    }

    fn toml(&self) -> String {
        let mut t = format!("schema-version = 1\nname = {}\n", quoted(&self.name));
        if let Some(d) = &self.description {
            t += &format!("description = {}\n", quoted(d));
        }
        if self.mtu.is_some() || self.ipv6.is_some() {
            t += "\n[lab]\n";
            if let Some(mtu) = self.mtu {
                t += &format!("mtu = {mtu}\n");
            }
            if let Some(ipv6) = self.ipv6 {
                t += &format!("ipv6 = {ipv6}\n");
            }
        }
        t += &format!(
            "\n[program]\nobject = {}\nentry = {}\n",
            quoted(self.object),
            quoted(&self.entry)
        );
        if let Some(mode) = self.mode {
            t += &format!("mode = \"{mode}\"\n");
        }
        for (i, g) in self.groups.iter().enumerate() {
            t += &format!(
                "\n[[send]]\nname = \"group-{i}\"\ncount = {}\nexpect = \"{}\"\n",
                g.count, g.expect
            );
            if !g.vlans.is_empty() {
                let tags: Vec<String> = g
                    .vlans
                    .iter()
                    .map(|id| format!("{{ id = {id} }}"))
                    .collect();
                t += &format!("vlan = [{}]\n", tags.join(", "));
            }
            match g.l3 {
                L3::None => {}
                L3::V4 => t += "ipv4 = {}\n",
                L3::V6 => t += "ipv6 = {}\n",
            }
            match g.l4 {
                L4::None => {}
                L4::Udp(s, d) => t += &format!("udp = {{ src-port = {s}, dst-port = {d} }}\n"),
                L4::Tcp(s, d) => t += &format!("tcp = {{ src-port = {s}, dst-port = {d} }}\n"),
            }
            if let Some(size) = g.size(self.mtu()) {
                t += &format!("size = {size}\n");
            }
        }
        for (map, key, value) in &self.maps {
            t += &format!(
                "\n[[expect.map]]\nmap = {}\nkey = {key}\nvalue = {value}\n",
                quoted(map)
            );
        }
        t
    }
}

fn ports(spec: &FrameSpec) -> L4 {
    match (&spec.udp, &spec.tcp) {
        (Some(u), None) => L4::Udp(u.src_port, u.dst_port),
        (None, Some(t)) => L4::Tcp(t.src_port, t.dst_port),
        _ => L4::None,
    }
}

/// The scenario files the mutations start from: the bundled ones and the malformed corpus,
/// read once.
fn seed_files() -> &'static [(PathBuf, Vec<u8>)] {
    static FILES: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(read_seed_files)
}

fn read_seed_files() -> Vec<(PathBuf, Vec<u8>)> {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        harness
            .parent()
            .expect("the workspace root")
            .join("scenarios"),
        harness.join("tests/fixtures/malformed"),
    ] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("a scenario directory")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).expect("a readable scenario");
            files.push((path, bytes));
        }
    }
    files
}

/// Parses `text` as `path`: any error must be a [`scenario::ScenarioError`] whose message
/// starts with the path (a panic fails the test by itself).
fn parses_or_locates(text: &str, path: &Path) -> Result<(), TestCaseError> {
    if let Err(e) = scenario::parse(text, path) {
        let message = e.to_string();
        prop_assert!(
            message.starts_with(&path.display().to_string()),
            "error does not start with {}: {message}\n--- input:\n{text}",
            path.display()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_scenarios_parse_and_round_trip(g in generated()) {
        let text = g.toml();
        let path = Path::new("generated/scenario.toml");
        let s = scenario::parse(&text, path)
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- input:\n{text}")))?;
        prop_assert_eq!(&s.path, path);
        prop_assert_eq!(&s.name, g.name.trim());
        prop_assert_eq!(&s.description, &g.description);
        prop_assert_eq!(&s.program.object, &ObjectSource::Bundled(g.object.to_owned()));
        prop_assert_eq!(&s.program.entry, &g.entry);
        prop_assert_eq!(s.program.mode, g.mode.unwrap_or_default());
        prop_assert_eq!(s.lab.mtu, g.mtu());
        prop_assert_eq!(s.lab.ipv6, g.ipv6.unwrap_or(false));
        prop_assert_eq!(s.sends.len(), g.groups.len());
        for (i, (sent, want)) in s.sends.iter().zip(&g.groups).enumerate() {
            prop_assert_eq!(&sent.name, &format!("group-{i}"));
            prop_assert_eq!(sent.count, want.count);
            prop_assert_eq!(sent.expect, want.expect);
            let FrameSource::Spec(spec) = &sent.frames else {
                return Err(TestCaseError::fail("frames from a pcap file"));
            };
            let vlans: Vec<u16> = spec.vlan.iter().map(|v| v.id).collect();
            prop_assert_eq!(&vlans, &want.vlans);
            prop_assert_eq!(spec.ipv4.is_some(), matches!(want.l3, L3::V4));
            prop_assert_eq!(spec.ipv6.is_some(), matches!(want.l3, L3::V6));
            prop_assert_eq!(format!("{:?}", ports(spec)), format!("{:?}", want.l4));
            prop_assert_eq!(spec.size, want.size(g.mtu()));
        }
        prop_assert_eq!(s.map_expects.len(), g.maps.len());
        for (m, (map, key, value)) in s.map_expects.iter().zip(&g.maps) {
            prop_assert_eq!(&m.map, map);
            prop_assert_eq!(&m.key, &scenario::MapBytes::Int(u64::from(*key)));
            prop_assert_eq!(&m.value, &Some(scenario::MapBytes::Int(*value)));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        parses_or_locates(&text, Path::new("arbitrary.toml"))?;
    }

    #[test]
    fn toml_like_text_never_panics(text in "[\\[\\]{}=\"'#,.:a-z0-9 \n-]{0,300}") {
        parses_or_locates(&text, Path::new("toml-like.toml"))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_scenarios_never_panic(seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        let files = seed_files();
        let (path, bytes) = &files[pick.index(files.len())];
        let others: Vec<Vec<u8>> = files.iter().map(|(_, b)| b.clone()).collect();
        let mutated = mutate::mutate(&mut mutate::Rng::new(seed), bytes, &others);
        parses_or_locates(&String::from_utf8_lossy(&mutated), path)?;
    }
}
