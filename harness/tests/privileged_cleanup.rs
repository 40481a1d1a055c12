//! Nothing outlives a lab: no namespace handle, no thread in a lab namespace, no change to the
//! host's interfaces, also when the code using the lab panics. A test binary of its own, so no
//! other test's lab is alive while it counts.

mod common;
use common::host_links;

use std::{collections::BTreeSet, os::unix::fs::MetadataExt as _};

use xdplab::{
    host::privileges,
    kernel::program::{ObjectSource, Program, XdpMode},
    topology::lab::{Lab, LabConfig},
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
        links_before.iter().all(|l| !l.has_xdp()),
        "test precondition: no XDP on host interfaces: {links_before:?}"
    );
    let leaked: Vec<_> = host_links()
        .into_iter()
        .filter(|l| l.name.starts_with("xl-"))
        .collect();
    assert!(
        leaked.is_empty(),
        "lab links in the host namespace: {leaked:?}"
    );
}
