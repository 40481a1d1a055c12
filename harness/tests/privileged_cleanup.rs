//! Nothing outlives a lab: no namespace handle, no thread in a lab namespace, no change to the
//! host's interfaces, also when the code using the lab panics. A test binary of its own, so no
//! other test's lab is alive while it counts.

use std::{collections::BTreeSet, os::unix::fs::MetadataExt as _};

use xdplab::{
    lab::{Lab, LabConfig},
    privileges,
    program::{ObjectSource, Program, XdpMode},
};

/// Network namespaces this process can reach: through its threads or its open descriptors.
fn reachable_netns() -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for task in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        if let Ok(meta) = std::fs::metadata(task.path().join("ns/net")) {
            inodes.insert(meta.ino());
        }
    }
    for fd in std::fs::read_dir("/proc/self/fd").expect("fds").flatten() {
        if let Ok(target) = std::fs::read_link(fd.path())
            && target.to_string_lossy().starts_with("net:[")
            && let Ok(meta) = std::fs::metadata(fd.path())
        {
            inodes.insert(meta.ino());
        }
    }
    inodes
}

/// The host namespace's interfaces with their XDP attachment state (`ip -o link` in the root
/// namespace), read over netlink from this test's thread, which never leaves the host namespace.
fn host_links() -> Vec<(String, String)> {
    use futures::TryStreamExt as _;
    use netlink_packet_route::link::{LinkAttribute, LinkXdp};
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
            let mut name = String::new();
            let mut xdp = String::from("none");
            for attr in &link.attributes {
                match attr {
                    LinkAttribute::IfName(n) => name.clone_from(n),
                    LinkAttribute::Xdp(list) => {
                        for x in list {
                            if let LinkXdp::Attached(mode) = x {
                                xdp = format!("{mode:?}");
                            }
                        }
                    }
                    _ => {}
                }
            }
            links.push((name, xdp));
        }
        links.sort();
        links
    })
}

#[test]
fn privileged_labs_leave_nothing_behind_even_on_panic() {
    if !privileges::gate("privileged_labs_leave_nothing_behind_even_on_panic") {
        return;
    }
    let netns_before = reachable_netns();
    let links_before = host_links();

    for mode in [XdpMode::Native, XdpMode::Generic] {
        let lab = Lab::new(&LabConfig::default()).expect("lab builds");
        let mut program =
            Program::load(&ObjectSource::Bundled("xdp_drop".into()), "xdp_drop_all").expect("load");
        let attachment = program.attach(lab.receiver(), mode).expect("attach");
        assert!(
            reachable_netns().len() > netns_before.len(),
            "a live lab holds its namespaces"
        );
        drop(attachment);
    }
    let panicked = std::panic::catch_unwind(|| {
        let lab = Lab::new(&LabConfig::default()).expect("lab builds");
        let mut program =
            Program::load(&ObjectSource::Bundled("xdp_pass".into()), "xdp_pass").expect("load");
        let _attachment = program
            .attach(lab.receiver(), XdpMode::Native)
            .expect("attach");
        panic!("a test using the lab fails");
    });
    assert!(panicked.is_err());

    assert_eq!(
        reachable_netns(),
        netns_before,
        "a lab namespace is still reachable"
    );
    assert_eq!(
        host_links(),
        links_before,
        "the host's interfaces or their XDP state changed"
    );
    assert!(
        links_before.iter().all(|(_, xdp)| xdp == "None"),
        "test precondition: no XDP on host interfaces: {links_before:?}"
    );
    let leaked: Vec<_> = host_links()
        .into_iter()
        .filter(|(name, _)| name.starts_with("xl-"))
        .collect();
    assert!(
        leaked.is_empty(),
        "lab links in the host namespace: {leaked:?}"
    );
}
