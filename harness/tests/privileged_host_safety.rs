//! Host safety: xdplab never touches an interface it did not create. A scenario naming a host
//! interface (`eth0`, `lo`, or any interface of the host namespace) is refused with exit 2 and
//! a message saying why, before any lab is built; and running every bundled scenario leaves
//! the host namespace's interfaces exactly as they were (the same names, indexes, flags, MTUs
//! and XDP state: `ip -d link`'s `xdp` line, read as IFLA_XDP over netlink), and the host's
//! values of the sysctls xdplab sets in its lab namespaces.
//!
//! The library side needs no test of its own: attaching ([`xdplab::kernel::program::Program::attach`]),
//! every injector's `open` and every observer's `open`/`start` take a
//! [`xdplab::kernel::veth::VethEnd`], which only a lab or topology xdplab built can hand out
//! (`privileged_lab.rs` checks it cannot be forged).

mod common;
use common::{HostLink, host_links, repo, xdplab};

use std::path::PathBuf;

use xdplab::host::privileges;

/// The test's scenario files, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scenario_with(dir: &TempDir, line: &str, after: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("scenarios/seed-drop-all.toml"))
        .expect("bundled seed scenario");
    assert!(text.contains(after), "{text}");
    let text = text.replacen(after, &format!("{after}\n{line}"), 1);
    let path = dir.0.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn scenarios_naming_host_interfaces_are_refused_with_exit_2() {
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        .collect();
    let dir =
        TempDir(std::env::temp_dir().join(format!("xdplab-host-safety-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let mut names = vec!["eth0".to_owned(), "lo".to_owned()];
    names.extend(host);
    names.dedup();
    for name in &names {
        // eth0 is refused also where the host has no eth0: a default-lab scenario has no
        // namespace of that name either.
        for (line, after, what) in [
            (
                format!("attach = \"{name}\""),
                "mode = \"native\"",
                "program attach",
            ),
            (format!("from = \"{name}\""), "expect = \"drop\"", "from"),
        ] {
            let path = scenario_with(&dir, &line, after, &format!("{name}-{}", what.len()));
            for command in ["run", "list"] {
                let out = xdplab(&[command, path.to_str().expect("utf-8")]);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{command} {line}: {stderr}");
                assert!(stderr.contains(&format!("{what} \"{name}\"")), "{stderr}");
                assert!(
                    stderr.contains(&format!("{name:?} is an interface of the host"))
                        || (name == "eth0"
                            && stderr.contains("no namespace \"eth0\" in the default lab")),
                    "{line}: {stderr}"
                );
            }
        }
    }
    let lo = scenario_with(&dir, "attach = \"lo\"", "mode = \"native\"", "lo-message");
    let out = xdplab(&["run", lo.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"lo\" is an interface of the host, not of the lab"),
        "lo is always a host interface: {stderr}"
    );
}

/// The host's values of the sysctls xdplab sets inside its lab namespaces
/// (`veth::configure_namespace`): written from a thread inside the lab, they must never reach
/// the host's.
fn host_sysctls() -> Vec<(String, String)> {
    [
        "net/ipv4/icmp_msgs_per_sec",
        "net/ipv4/icmp_msgs_burst",
        "net/ipv4/icmp_echo_ignore_all",
        "net/ipv6/icmp/echo_ignore_all",
        "net/ipv6/conf/default/addr_gen_mode",
        "net/ipv6/conf/default/accept_dad",
        "net/ipv6/conf/default/dad_transmits",
        "net/ipv6/conf/default/router_solicitations",
        "net/ipv6/conf/default/accept_ra",
        "net/ipv6/conf/all/disable_ipv6",
        "net/ipv6/conf/default/disable_ipv6",
    ]
    .iter()
    .map(|key| {
        let value = std::fs::read_to_string(format!("/proc/sys/{key}"))
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        ((*key).to_owned(), value.trim().to_owned())
    })
    .collect()
}

#[test]
fn privileged_bundled_suite_leaves_host_interfaces_unchanged() {
    if !privileges::gate("privileged_bundled_suite_leaves_host_interfaces_unchanged") {
        return;
    }
    let before = host_links();
    let sysctls_before = host_sysctls();
    assert!(
        before.iter().any(|l| l.name == "lo"),
        "test precondition: the dump sees the host namespace: {before:?}"
    );
    // --no-throughput: the other tests of this binary run labs at the same time.
    let out = xdplab(&["run", "--no-throughput", "scenarios"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = host_links();
    assert_eq!(
        host_sysctls(),
        sysctls_before,
        "the host's network sysctls changed"
    );
    assert_eq!(
        after, before,
        "the host namespace's interfaces, flags, MTUs or XDP state changed"
    );
    let xdp: Vec<&HostLink> = after.iter().filter(|l| l.has_xdp()).collect();
    assert!(xdp.is_empty(), "XDP attached to host interfaces: {xdp:?}");
}
