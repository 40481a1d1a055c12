//! xdplab: a test and benchmark harness for XDP programs.
//!
//! It builds its own lab (network namespaces joined by a veth pair, made over netlink), loads
//! and attaches XDP programs with aya, injects frames crafted with pnet from the peer namespace,
//! and checks each frame's verdict three ways: the program's maps, what arrives after XDP, and
//! the kernel's own veth counters. Scenario files say what to send and what to expect.
//!
//! One module per kernel concept: [`netns`], [`veth`], [`lab`] (the two put together),
//! [`program`], [`maps`] (with [`btf`] for the C types of their keys and values), [`frame`],
//! [`inject`], [`observe`], [`scenario`], [`report`].
//! [`bench`] measures throughput; [`results`] saves, charts and compares the measurements.
//! [`doctor`] says what the machine lacks for any of it, and how to fix it; [`requires`] gates a
//! scenario on the kernel features it declares.
//! [`input`] reads the files a user names with a type check and a size cap.
//! [`interrupt`] turns SIGINT/SIGTERM into a clean stop; [`clean`] removes what killed runs
//! left behind.

pub mod api;
pub mod attribute;
pub mod bench;
pub mod btf;
pub mod clean;
pub mod doctor;
pub mod elf;
pub mod engine;
pub mod exit;
pub mod frame;
pub mod inject;
pub mod input;
pub mod interrupt;
pub mod lab;
pub mod link;
pub mod maps;
pub mod netns;
pub mod netstate;
pub mod observe;
pub mod output;
pub mod pcap;
pub mod pin;
pub mod privileges;
pub mod program;
pub mod report;
pub mod requires;
pub mod results;
pub mod scenario;
pub mod topology;
pub mod verdict;
pub mod veth;

pub use api::{
    Error, Failure, Frame, Interface, Lab, LabBuilder, Map, Object, Outcome, Pod, Program, Result,
    Sending, TestRun,
};
pub use program::XdpMode;
pub use verdict::Verdict;
