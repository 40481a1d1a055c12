//! xdplab: test XDP programs with `cargo test`, in labs of network namespaces and veth pairs.
//!
//! xdplab builds its own lab (network namespaces joined by veth pairs, made over netlink), loads
//! and attaches XDP programs with aya (native or generic mode, or runs them with
//! `BPF_PROG_TEST_RUN`), sends frames crafted with pnet, and checks every frame's verdict three
//! ways: the program's counters, what arrives after XDP anywhere in the lab (each frame carries a
//! tag), and the kernel's own veth counters. Nothing touches the host's interfaces.
//!
//! # Quick start
//!
//! In your crate's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! xdplab = { version = "0.1", default-features = false }  # the library, without the CLI
//! ```
//!
//! and a test (`tests/udp9.rs`), run as root with `cargo test`:
//!
//! ```rust,no_run,test_harness
//! use xdplab::{Frame, Verdict, XdpMode};
//!
//! #[test]
//! fn drops_udp_to_port_9() -> xdplab::Result<()> {
//!     let lab = xdplab::lab!()?; // SKIP without privileges; an error under XDPLAB_REQUIRE_PRIVILEGES=1
//!     let prog = lab.load("tests/udp9.bpf.o")?.attach("xdp_udp9", XdpMode::Native)?;
//!     lab.send(Frame::ipv4().udp().dst_port(9), 1000)?.expect(Verdict::Drop)?;
//!     assert_eq!(prog.map("stats")?.get_u64(0)?, 1000);
//!     Ok(())
//! }
//! ```
//!
//! [`lab!`] makes the default lab (namespace `sender` joined to namespace `receiver`);
//! [`Lab::load`] reads an object and [`Object::attach`] loads one of its programs and attaches
//! it to the receiver; [`Lab::send`] plans frames ([`Frame`]) and [`Sending::expect`] sends
//! them, waits until the kernel has accounted for every one, and judges them with the engine
//! `xdplab run` uses. A wrong verdict is an [`Error::Expectation`] whose text is the CLI's
//! (`send "send-1": expected drop, 1000 of 1000 frames went elsewhere: 1000 pass (at
//! receiver:...: seq 0, 1, ...)`); a missing object, program, map or interface is an error that
//! says which and lists what there is. `examples/my-xdp-tests` in the repository is a complete
//! user crate.
//!
//! Beyond the quick start, from the same types:
//! - topologies: [`Lab::builder`] with several [`LabBuilder::link`]s, programs attached to named
//!   interfaces ([`Object::attach_to`]), frames sent from any interface ([`Lab::send_from`]),
//!   redirects checked at their target ([`Sending::redirect_to`]);
//! - modes and paths: [`XdpMode::Native`] and [`XdpMode::Generic`]; the test-run path for
//!   every send of a lab ([`LabBuilder::test_run`]), or one frame at a time
//!   ([`Program::test_run`]: the verdict and the output frame); output checks
//!   ([`Sending::output`]);
//! - lifecycle: [`Program::detach`], [`Program::attach_to`], [`Program::replace_with`]
//!   (atomic, `BPF_LINK_UPDATE`), [`Program::pin`] and [`Program::pin_link`] in the lab's
//!   private bpffs (never `/sys/fs/bpf`);
//! - maps: [`Map::get_u64`] (per-CPU maps summed), [`Map::get`] and [`Map::get_per_cpu`] for
//!   [`Pod`] types, [`Map::field`] for a struct field by its C name (from BTF),
//!   [`Map::keys`] and [`Map::entries`], [`Map::set`] and [`Map::set_interface`] (devmaps).
//!
//! # Scenarios
//!
//! The same checks can be written as TOML files (`docs/scenario-format.md`) and run with the
//! `xdplab` command (`xdplab run scenarios/`), or from a test with [`scenario::load`] and
//! [`scenario::run::run`]. Scenario files and the API share one engine ([`engine`]), so a
//! failure reads the same from both.
//!
//! # Modules
//!
//! The folders follow the architecture, from the kernel up:
//!
//! - [`kernel`]: the kernel objects a lab is made of, one module per concept: namespaces
//!   ([`kernel::netns`], [`kernel::netstate`]), veth pairs ([`kernel::veth`]), programs
//!   ([`kernel::program`], with [`kernel::elf`] and [`kernel::btf`]), maps ([`kernel::maps`]),
//!   bpf_links ([`kernel::link`]) and the run's bpffs ([`kernel::pin`]).
//! - [`topology`]: namespaces and veth pairs put together ([`topology::lab`] is the default
//!   two-namespace lab).
//! - [`frame`]: frames crafted from a spec, tagged, and read from and written to capture files
//!   ([`frame::pcap`]).
//! - [`inject`]: the injectors that send them.
//! - [`observe`]: captures after XDP, the kernel's counters and the `xdp:xdp_exception`
//!   tracepoint; [`observe::attribute`] tells changed frames apart by content.
//! - [`verdict`]: XDP actions, and [`verdict::output`], what a frame that came out should
//!   look like.
//! - [`engine`]: the one engine: groups planned once, sent, settled, observed and judged into
//!   typed failures ([`engine::Failure`]).
//! - [`api`]: the public API above, on the engine; [`scenario`]: scenario files, resolved into
//!   the engine's plans and run on it.
//! - [`flow`]: traffic of the lab's own stacks through the program (ping, TCP connections and
//!   streams, UDP and TCP request/response), with kernel sockets on both ends.
//! - [`report`]: renders results (human, JSON, JUnit); [`exit`] maps them to exit codes, with
//!   the one rule that says whether an error is bad input or the machine's
//!   ([`exit::Classify`], implemented for every area's error in [`classify`]).
//! - [`bench`](mod@bench): throughput measurements; [`bench::results`] saves, charts and
//!   compares them.
//! - [`host`]: the machine: privileges ([`host::privileges`], the gate of privileged tests),
//!   what it lacks ([`host::doctor`]), the kernel features scenarios declare
//!   ([`host::requires`]) and leftovers of killed runs ([`host::clean`]).
//! - [`input`] reads the files a user names with a type check and a size cap; [`interrupt`]
//!   turns SIGINT/SIGTERM into a clean stop.
//!
//! With the default `cli` feature, `cli` is the `xdplab` command itself; `main.rs` only
//! parses its arguments and exits.

#![warn(missing_docs)]

pub mod api;
pub mod bench;
pub mod classify;
#[cfg(feature = "cli")]
pub mod cli;
pub mod engine;
pub mod exit;
pub mod flow;
pub mod frame;
pub mod host;
pub mod inject;
pub mod input;
pub mod interrupt;
pub mod kernel;
pub mod observe;
pub mod report;
pub mod scenario;
pub mod topology;
pub mod verdict;

pub use api::{
    Error, Failure, Frame, Interface, Lab, LabBuilder, Map, Object, Outcome, Pod, Program, Result,
    Sending, TestRun,
};
pub use kernel::program::XdpMode;
pub use verdict::Verdict;
pub use verdict::output::OutputSpec;
