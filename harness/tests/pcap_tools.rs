//! Capture files as Wireshark's own tools write them: the pcapng that a bundled scenario
//! replays (`scenarios/data/mixed.pcapng`) is what `tshark` writes for the classic capture beside
//! it, and xdplab reads the same frames from both.
//!
//! Needs `tshark` (Debian's package of that name); without it the test prints a SKIP line,
//! and fails instead when `XDPLAB_REQUIRE_WIRESHARK` is set (CI installs it).

mod common;

use std::process::Command;

use common::repo;

#[test]
fn tshark_pcapng_holds_the_frames_of_the_pcap_it_was_written_from() {
    let data = repo().join("scenarios/data");
    let classic = xdplab::frame::pcap::read(&data.join("mixed.pcap")).expect("the classic capture");
    let committed =
        xdplab::frame::pcap::read(&data.join("mixed.pcapng")).expect("the pcapng capture");
    assert_eq!(
        committed, classic,
        "the committed pcapng holds the pcap's frames"
    );

    let fresh = std::env::temp_dir().join(format!("xdplab-tshark-{}.pcapng", std::process::id()));
    let out = match Command::new("tshark")
        .arg("-r")
        .arg(data.join("mixed.pcap"))
        .arg("-w")
        .arg(&fresh)
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("XDPLAB_REQUIRE_WIRESHARK").is_some() => {
            panic!("XDPLAB_REQUIRE_WIRESHARK is set but tshark cannot run: {e}")
        }
        Err(e) => {
            println!("SKIP: tshark_pcapng_holds_the_frames_of_the_pcap_it_was_written_from: {e}");
            return;
        }
    };
    let written = std::fs::read(&fresh);
    let frames = xdplab::frame::pcap::read(&fresh);
    std::fs::remove_file(&fresh).ok();
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        written.expect("tshark wrote a file")[..4],
        [0x0a, 0x0d, 0x0d, 0x0a],
        "tshark writes pcapng by default"
    );
    assert_eq!(frames.expect("xdplab reads what tshark wrote"), classic);
}
