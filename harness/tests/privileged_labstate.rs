//! The lab's kernel state (`[[netns]]`: sysctls, addresses, routes, neighbours) and programs
//! that read it (`bpf_fib_lookup`), and multi-buffer (`xdp.frags`) programs at a jumbo MTU, on
//! every execution path. Needs root.

mod common;

use common::{PATHS, bundled, mutated, show};
use xdplab::{
    host::privileges,
    kernel::netstate::{AddressDef, Cidr, NeighbourDef, NetnsState, RouteDef},
    report::{ScenarioReport, Status},
    scenario::{
        self,
        run::{RunOptions, run_paths},
    },
    topology::{EndName, LinkDef, Topology, TopologySpec},
};

/// (dropped, passed, tx, redirected, aborted) of each group.
fn counts(report: &ScenarioReport) -> Vec<(u64, u64, u64, u64, u64)> {
    report
        .groups
        .iter()
        .map(|g| (g.dropped, g.passed, g.tx, g.redirected, g.aborted))
        .collect()
}

/// Whether the IPv4 header after a plain Ethernet header sums to 0xffff (RFC 1071).
fn ipv4_header_checksum_ok(frame: &[u8]) -> bool {
    let Some(ip) = frame.get(14..) else {
        return false;
    };
    let Some(&first) = ip.first() else {
        return false;
    };
    let len = usize::from(first & 0x0f) * 4;
    let Some(header) = ip.get(..len) else {
        return false;
    };
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[test]
fn privileged_fib_router_routes_by_the_lab_tables_on_every_path() {
    if !privileges::gate("privileged_fib_router_routes_by_the_lab_tables_on_every_path") {
        return;
    }
    let scenario = scenario::load(&bundled("fib-router")).expect("bundled scenario loads");
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        assert_eq!(
            counts(report),
            [
                (0, 0, 0, 100, 0),
                (0, 0, 0, 100, 0),
                (0, 0, 0, 50, 0),
                (0, 0, 0, 50, 0),
                (0, 0, 40, 0, 0),
                (0, 30, 0, 0, 0),
                (0, 20, 0, 0, 0),
            ],
            "on {}",
            report.mode
        );
    }
    // The program rewrote the TTL and kept the IPv4 header checksum valid (the output keys
    // compare the TTL, not the checksum): check every forwarded IPv4 frame, on every path.
    for report in reports.iter().filter(|r| r.status != Status::Skip) {
        let mut checked = 0;
        for group in report.groups.iter().filter(|g| g.name != "v6-to-sink") {
            for (seq, frame) in &group.outputs {
                checked += 1;
                assert!(
                    ipv4_header_checksum_ok(frame),
                    "{} on {}: frame {seq} has a bad IPv4 header checksum",
                    group.name,
                    report.mode
                );
            }
        }
        assert!(
            checked >= 290,
            "{checked} frames checked on {}",
            report.mode
        );
    }
    // The test-run path ran inside the router's namespace, not the host's (before Linux 5.15
    // it cannot name an ingress interface and is SKIP: test-run-context).
    assert!(
        reports[2].status == Status::Skip
            || reports[2]
                .notes
                .iter()
                .any(|n| n.contains("inside lab namespace \"router\"")),
        "{}",
        show(&reports)
    );
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_fib_router_without_forwarding_fails_on_every_path() {
    if !privileges::gate("privileged_fib_router_without_forwarding_fails_on_every_path") {
        return;
    }
    // Forwarding off in the router: bpf_fib_lookup answers FWD_DISABLED, the program passes
    // everything, and a scenario expecting redirects must fail on each path, alike.
    let scenario = mutated(
        "fib-router",
        &[(
            r#"sysctl = { "net.ipv4.ip_forward" = "1", "net.ipv6.conf.all.forwarding" = "1" }"#,
            r#"sysctl = { "net.ipv4.ip_forward" = "0", "net.ipv6.conf.all.forwarding" = "0" }"#,
        )],
    );
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Fail, "{}", show(&reports));
        assert!(report.error.is_none(), "{}", show(&reports));
        assert_eq!(
            counts(report),
            [
                (0, 100, 0, 0, 0),
                (0, 100, 0, 0, 0),
                (0, 50, 0, 0, 0),
                (0, 50, 0, 0, 0),
                (0, 40, 0, 0, 0),
                (0, 30, 0, 0, 0),
                (0, 20, 0, 0, 0),
            ],
            "on {}",
            report.mode
        );
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.starts_with("map fib_results[5]")),
            "{}",
            show(&reports)
        );
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_fib_router_needs_the_scenario_neighbour() {
    if !privileges::gate("privileged_fib_router_needs_the_scenario_neighbour") {
        return;
    }
    // The neighbour entry for another address: 10.98.0.7 has none, the lookup answers
    // NO_NEIGH and those frames pass.
    let scenario = mutated(
        "fib-router",
        &[("ip = \"10.98.0.7\"", "ip = \"10.98.0.8\"")],
    );
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Fail, "{}", show(&reports));
        // A run that stopped before its groups (an error) has none: say so, not an index panic.
        let group = report
            .groups
            .iter()
            .find(|g| g.name == "onlink-neigh")
            .unwrap_or_else(|| {
                panic!(
                    "no onlink-neigh group on {}: {}",
                    report.mode,
                    show(&reports)
                )
            });
        assert_eq!(
            (group.passed, group.redirected),
            (50, 0),
            "on {}",
            report.mode
        );
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

/// `ip ARGS` run inside `topology`'s namespace `netns`.
fn ip_in(topology: &Topology, netns: &str, args: &[&str]) -> String {
    let output = topology
        .netns(netns)
        .expect("namespace")
        .run(|| std::process::Command::new("ip").args(args).output())
        .expect("enter namespace")
        .expect("run ip");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn privileged_kernel_state_is_made_inside_the_namespace_only() {
    if !privileges::gate("privileged_kernel_state_is_made_inside_the_namespace_only") {
        return;
    }
    let host_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
    let end = |netns: &str, interface: &str| EndName {
        netns: netns.into(),
        interface: interface.into(),
    };
    let spec = TopologySpec {
        links: vec![
            LinkDef {
                a: end("left", "l0"),
                b: end("mid", "m0"),
                mtu: 1500,
            },
            LinkDef {
                a: end("mid", "m1"),
                b: end("right", "r0"),
                mtu: 1500,
            },
        ],
        ipv6: false,
        state: vec![NetnsState {
            netns: "mid".into(),
            sysctls: vec![("net/ipv4/ip_forward".into(), "1".into())],
            addresses: vec![AddressDef {
                interface: "m1".into(),
                cidr: "10.77.5.1/24".parse::<Cidr>().expect("cidr"),
            }],
            neighbours: vec![NeighbourDef {
                interface: "m1".into(),
                ip: "10.77.5.9".parse().expect("ip"),
                mac: xdplab::frame::MacAddr(2, 0x77, 5, 0, 0, 9),
            }],
            routes: vec![RouteDef {
                to: "10.66.0.0/16".parse().expect("cidr"),
                via: Some("10.77.5.9".parse().expect("ip")),
                interface: None,
            }],
        }],
    };
    let topology = Topology::build(&spec).expect("build the topology");
    let forward_in = |netns: &str| {
        topology
            .netns(netns)
            .expect("namespace")
            .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read"))
            .expect("enter namespace")
    };
    assert_eq!(forward_in("mid").trim(), "1");
    assert_eq!(
        forward_in("left").trim(),
        "0",
        "other namespaces keep theirs"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read"),
        host_forward,
        "the host's sysctl is untouched"
    );
    let addresses = ip_in(&topology, "mid", &["-4", "addr", "show", "dev", "m1"]);
    assert!(addresses.contains("10.77.5.1/24"), "{addresses}");
    let neighbours = ip_in(&topology, "mid", &["neigh", "show", "dev", "m1"]);
    assert!(
        neighbours.contains("10.77.5.9 lladdr 02:77:05:00:00:09 PERMANENT"),
        "{neighbours}"
    );
    let routes = ip_in(&topology, "mid", &["-4", "route", "show"]);
    assert!(
        routes.contains("10.66.0.0/16 via 10.77.5.9 dev m1"),
        "{routes}"
    );
    let host_routes = std::process::Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .expect("ip on the host");
    assert!(
        !String::from_utf8_lossy(&host_routes.stdout).contains("10.66.0.0/16"),
        "the host's table is untouched"
    );

    // A state that cannot be applied fails the build with the namespace and key named.
    let mut bad = spec.clone();
    bad.state[0].sysctls = vec![("net/ipv4/no_such_key".into(), "1".into())];
    let error = Topology::build(&bad)
        .expect_err("an unknown sysctl fails")
        .to_string();
    assert!(
        error.contains("net.ipv4.no_such_key") && error.contains("\"mid\""),
        "{error}"
    );
}

/// A report reported SKIP because this kernel predates a declared requirement.
fn kernel_skip(report: &ScenarioReport) -> bool {
    let skip = report.status == Status::Skip
        && report
            .skip_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("needs "));
    if skip {
        println!(
            "SKIP on {}: {}",
            report.mode,
            report.skip_reason.as_deref().unwrap_or_default()
        );
    }
    skip
}

#[test]
fn privileged_frags_program_judges_9000_byte_frames_on_every_path() {
    if !privileges::gate("privileged_frags_program_judges_9000_byte_frames_on_every_path") {
        return;
    }
    let scenario = scenario::load(&bundled("frags-jumbo")).expect("bundled scenario loads");
    assert_eq!(scenario.lab.mtu, 9000);
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        assert_eq!(
            counts(report),
            [
                (0, 50, 0, 0, 0),
                (0, 50, 0, 0, 0),
                (0, 50, 0, 0, 0),
                (50, 0, 0, 0, 0),
                (50, 0, 0, 0, 0),
            ],
            "on {}",
            report.mode
        );
        // The program saw the frames whole, in several buffers (multi_cnt), on every path.
        let multi = report
            .maps
            .iter()
            .find(|m| m.map == "multi_cnt")
            .expect("multi_cnt is checked");
        assert!(multi.ok, "{}", show(&reports));
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_frags_program_with_a_wrong_limit_fails_on_every_path() {
    if !privileges::gate("privileged_frags_program_with_a_wrong_limit_fails_on_every_path") {
        return;
    }
    // A limit above every frame: the program passes the 9001- and 9014-byte frames the
    // scenario expects dropped, on every path.
    let scenario = mutated("frags-jumbo", &[("value = 9000", "value = 9014")]);
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Fail, "{}", show(&reports));
        assert!(report.error.is_none(), "{}", show(&reports));
        assert_eq!(
            (report.groups[3].passed, report.groups[4].passed),
            (50, 50),
            "on {}",
            report.mode
        );
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn privileged_frags_router_routes_jumbo_frames_on_every_path() {
    if !privileges::gate("privileged_frags_router_routes_jumbo_frames_on_every_path") {
        return;
    }
    let scenario = scenario::load(&bundled("fib-router-jumbo")).expect("bundled scenario loads");
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Pass, "{}", show(&reports));
        assert_eq!(
            counts(report),
            [
                (0, 0, 0, 100, 0),
                (0, 0, 0, 50, 0),
                (0, 0, 0, 50, 0),
                (0, 0, 40, 0, 0),
                (0, 0, 0, 50, 0),
                (0, 30, 0, 0, 0),
            ],
            "on {}",
            report.mode
        );
        // 9014-byte frames arrived whole, with a valid IPv4 header after the TTL rewrite.
        let jumbo = &report.groups[0];
        assert_eq!(jumbo.outputs.len(), 100, "on {}", report.mode);
        for frame in jumbo.outputs.values() {
            assert_eq!(frame.len(), 9014, "on {}", report.mode);
            assert!(ipv4_header_checksum_ok(frame), "on {}", report.mode);
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");

    // Without forwarding the jumbo frames pass to the router's stack: a failure on every path.
    let scenario = mutated(
        "fib-router-jumbo",
        &[(
            r#""net.ipv4.ip_forward" = "1""#,
            r#""net.ipv4.ip_forward" = "0""#,
        )],
    );
    let (reports, differences) = run_paths(&scenario, &PATHS, &RunOptions::default());
    for report in &reports {
        if kernel_skip(report) {
            continue;
        }
        assert_eq!(report.status, Status::Fail, "{}", show(&reports));
        assert_eq!(
            (report.groups[0].passed, report.groups[0].redirected),
            (100, 0),
            "on {}",
            report.mode
        );
    }
    assert!(differences.is_empty(), "{differences:#?}");
}
