//! Helpers the integration tests share: where the repository is, and running the `xdplab`
//! binary as a user would.

// Each test crate compiles this module and uses only part of it.
#![allow(
    dead_code,
    reason = "each test file uses a different part of these helpers"
)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The workspace root (scenarios/, ebpf/, ...).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `xdplab ARGS` from the workspace root and waits for it.
pub fn xdplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("xdplab runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One host interface as `ip -d link` shows what matters here.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostLink {
    pub index: u32,
    pub name: String,
    /// IFF_* flags, without IFF_RUNNING and IFF_LOWER_UP (carrier, which the host's own
    /// network can change).
    pub flags: u32,
    pub mtu: u32,
    /// IFLA_XDP: the attach mode and program ids, `Attached(None)` when nothing is attached.
    pub xdp: Vec<String>,
}

impl HostLink {
    /// Whether an XDP program is attached (IFLA_XDP_ATTACHED other than none).
    pub fn has_xdp(&self) -> bool {
        self.xdp
            .iter()
            .any(|x| x.starts_with("Attached(") && x != "Attached(None)")
    }
}

/// The host namespace's interfaces, read over netlink from this test's thread, which never
/// leaves the host namespace.
pub fn host_links() -> Vec<HostLink> {
    use futures::TryStreamExt as _;
    use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkXdp};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection().expect("netlink");
        tokio::spawn(connection);
        let mut links = Vec::new();
        let mut stream = handle.link().get().execute();
        while let Some(link) = stream.try_next().await.expect("dump links") {
            let mut host = HostLink {
                index: link.header.index,
                name: String::new(),
                flags: (link.header.flags - LinkFlags::Running - LinkFlags::LowerUp).bits(),
                mtu: 0,
                xdp: Vec::new(),
            };
            for attr in &link.attributes {
                match attr {
                    LinkAttribute::IfName(n) => host.name.clone_from(n),
                    LinkAttribute::Mtu(m) => host.mtu = *m,
                    LinkAttribute::Xdp(list) => {
                        host.xdp = list.iter().map(|x: &LinkXdp| format!("{x:?}")).collect();
                    }
                    _ => {}
                }
            }
            links.push(host);
        }
        links.sort();
        links
    })
}

/// Every execution path, in the order `--paths native,generic,test-run` runs them.
pub const PATHS: [xdplab::scenario::run::ExecPath; 3] = [
    xdplab::scenario::run::ExecPath::Native,
    xdplab::scenario::run::ExecPath::Generic,
    xdplab::scenario::run::ExecPath::TestRun,
];

/// The file of bundled scenario `name` (`scenarios/NAME.toml`).
pub fn bundled(name: &str) -> PathBuf {
    repo().join("scenarios").join(format!("{name}.toml"))
}

/// Bundled scenario `name`, read and checked.
pub fn scenario(name: &str) -> xdplab::scenario::Scenario {
    xdplab::scenario::load(&bundled(name)).expect("bundled scenario loads")
}

/// Bundled scenario `name` with each `(from, to)` replaced once, parsed as if it were the
/// file: a scenario one edit away from a passing one, to show a check fails.
pub fn mutated(name: &str, edits: &[(&str, &str)]) -> xdplab::scenario::Scenario {
    let path = bundled(name);
    let mut text = std::fs::read_to_string(&path).expect("read");
    for (from, to) in edits {
        assert!(text.contains(from), "{name} has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    xdplab::scenario::parse(&text, &path).expect("mutated scenario parses")
}

/// [`mutated`] with one edit.
pub fn edit(name: &str, from: &str, to: &str) -> xdplab::scenario::Scenario {
    mutated(name, &[(from, to)])
}

/// Reports as the CLI prints them, for assertion messages.
pub fn show(reports: &[xdplab::report::ScenarioReport]) -> String {
    reports
        .iter()
        .map(xdplab::report::ScenarioReport::human)
        .collect::<Vec<_>>()
        .join("\n")
}
