//! The live injector: frames made by the kernel itself, with `BPF_PROG_TEST_RUN` live frames.
//!
//! What xdp-trafficgen does, from a lab namespace: the bundled generator
//! (`ebpf/xdp_live_tx.bpf.c`, program `xdp_live_tx`) returns
//! `bpf_redirect_map(&tx_port, 0, 0)`, and `tx_port[0]` holds the sending veth. Run through
//! `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`, the kernel builds a real `xdp_frame`
//! from `data_in` for every repetition, runs the program on it and carries out the redirect,
//! in batches of 64 (one devmap flush each). Each frame leaves the sending veth through its
//! `ndo_xdp_xmit` and lands in the receiving end's XDP ring: no socket, no skb, one system call
//! per up to a million frames. It is an order of magnitude faster than any socket injector.
//!
//! Three things about it that the numbers depend on:
//!
//! - **The receiver must run NAPI.** veth takes `xdp_frame`s only into an end whose NAPI is on:
//!   an end with a native XDP program, or with GRO on ([`crate::kernel::veth::set_gro`]). Otherwise
//!   the kernel drops them at transmit, silently as far as the receiver is concerned.
//! - **Two calls in flight per CPU.** With `repeat > 1`, each call installs the program in the
//!   kernel's XDP dispatcher when it starts and removes it when it ends, and each of those
//!   changes waits for an RCU grace period (`bpf_dispatcher_change_prog` ->
//!   `synchronize_rcu`): about 20 to 40 ms of sleep per call on a 2-vCPU VM, a third of the time
//!   at a million frames per call. The dispatcher counts users per program, so a change only
//!   happens when the first user arrives or the last leaves. Every CPU therefore runs two
//!   workers, pinned to it, each issuing its own calls: while one sits in a call the other's
//!   calls start and end without any grace period, and the CPU never idles. Only the very
//!   first and very last call of a [`LiveInjector::send_for`] pay the wait (so
//!   [`InjectStats::elapsed`] runs a few tens of milliseconds past the frames).
//! - **One receive queue per sending CPU.** veth puts a frame on receive queue `sending CPU %
//!   rx queues` of the peer (`veth_select_rxq`), and each queue has its own ring and NAPI
//!   instance, scheduled on the CPU that filled it. A lab's veth uses one queue: threads on
//!   several CPUs then fill one ring that one NAPI instance drains, the ring overflows (the
//!   overflow shows as the sending veth's `tx_dropped`) and the total rate falls (on a 2-vCPU
//!   VM into native `xdp_drop`, two threads delivered 6 to 14 Mpps where one delivered 20).
//!   [`crate::bench::measure`] therefore gives the receiving veth as many receive queues as
//!   there are sending CPUs ([`crate::kernel::veth::set_queues`]), so each CPU fills and drains
//!   its own queue; [`InjectStats::threads`] says what each CPU sent.
//!
//! Bounds: the frame budget is shared by all workers (each call claims its repeat count from
//! it), and each call's repeat count is sized from the worker's own rate so that the call lasts
//! about 100 ms, or ends at the deadline if that comes first.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMap},
    programs::{TestRun as _, TestRunAttrs, TestRunOptions, Xdp},
};
use nix::{sched::CpuSet, unistd::Pid};

use super::{Budget, InjectError, InjectStats, ThreadStats, thread_cpu_time};
use crate::{kernel::program::errno_in, kernel::veth::VethEnd};

/// The generator, built from `ebpf/xdp_live_tx.bpf.c` by `ci/build-ebpf.sh`. Private to this
/// injector: it is not a program under test, so it is not among [`crate::kernel::program::BUNDLED`].
const OBJECT: &[u8] = aya::include_bytes_aligned!("../../ebpf-obj/xdp_live_tx.bpf.o");
const PROGRAM: &str = "xdp_live_tx";
const TX_PORT: &str = "tx_port";

/// The generator that makes each frame one of N flows before redirecting it.
const FLOWS_PROGRAM: &str = "xdp_live_tx_flows";
const FLOW_CONFIG: &str = "flow_config";
/// The most flows a mix may have: ports wrap after 65536, so more would repeat 5-tuples.
pub const MAX_FLOWS: u32 = 65536;

/// `struct flow_config` of `ebpf/xdp_live_tx.bpf.c`: the template's fields as they are in the
/// frame (network byte order, read as native integers).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FlowConfig {
    flows: u32,
    saddr: u32,
    daddr: u32,
    sport: u16,
    dport: u16,
    ip_csum: u16,
    l4_csum: u16,
    l4_off: u16,
    l4_proto: u8,
    pad: u8,
}

// SAFETY: plain integers, no padding (24 bytes, as the C struct).
unsafe impl aya::Pod for FlowConfig {}

impl FlowConfig {
    /// The template's fields, if `frame` is Ethernet + IPv4 + UDP or TCP.
    fn parse(frame: &[u8], flows: u32) -> Result<Self, String> {
        if flows > MAX_FLOWS {
            return Err(format!("{flows} flows asked for, at most {MAX_FLOWS}"));
        }
        let bytes2 = |at: usize| -> Option<[u8; 2]> { frame.get(at..at + 2)?.try_into().ok() };
        let bytes4 = |at: usize| -> Option<[u8; 4]> { frame.get(at..at + 4)?.try_into().ok() };
        let need = "an Ethernet + IPv4 (no VLAN tag) + UDP or TCP frame";
        if bytes2(12) != Some([0x08, 0x00]) || frame.get(14).map(|b| b >> 4) != Some(4) {
            return Err(format!("a flow mix needs {need}"));
        }
        let l4_off = 14 + usize::from(frame[14] & 0x0f) * 4;
        let l4_proto = frame.get(23).copied().unwrap_or(0);
        let csum_at = match l4_proto {
            17 => l4_off + 6,
            6 => l4_off + 16,
            _ => {
                return Err(format!(
                    "a flow mix needs {need}, not IP protocol {l4_proto}"
                ));
            }
        };
        // The program checks 18 bytes of transport header (TCP's checksum) whatever the
        // protocol, and bounds the offset to 127.
        if frame.len() < l4_off + 18 || l4_off > 127 {
            return Err(format!(
                "a flow mix needs {need}: {} bytes are too short",
                frame.len()
            ));
        }
        let too_short = || format!("a flow mix needs {need}");
        let u16_at = |at| bytes2(at).map(u16::from_ne_bytes).ok_or_else(too_short);
        let u32_at = |at| bytes4(at).map(u32::from_ne_bytes).ok_or_else(too_short);
        Ok(Self {
            flows,
            saddr: u32_at(26)?,
            daddr: u32_at(30)?,
            sport: u16_at(l4_off)?,
            dport: u16_at(l4_off + 2)?,
            ip_csum: u16_at(24)?,
            l4_csum: u16_at(csum_at)?,
            l4_off: u16::try_from(l4_off).expect("at most 127"),
            l4_proto,
            pad: 0,
        })
    }
}

/// Frames per batch: the kernel runs the program on this many, then flushes the devmap once.
const BATCH: u32 = 64;
/// The first call's repeat count, before the worker knows its rate (a few milliseconds).
const FIRST_REPEAT: u32 = 1 << 16;
/// The rate the first call assumes when the budget is too short for [`FIRST_REPEAT`] frames:
/// a rate every receiving path reaches, so a short budget is not overshot by much.
const FIRST_RATE: f64 = 1e6;
/// No call runs more frames than this (about 50 ms of one CPU at 20 Mpps).
const MAX_REPEAT: u32 = 1 << 20;
/// How long a call should last: short enough to stop close to the deadline, long enough that
/// the system call's own cost is nothing.
const CALL_TARGET: Duration = Duration::from_millis(100);
/// Workers per CPU, so a call is always in flight on each CPU (see the module docs).
const WORKERS_PER_CPU: usize = 2;

/// The live frames generator, loaded and pointed at a lab's sending veth.
#[doc(alias = "BPF_F_TEST_XDP_LIVE_FRAMES")]
pub struct LiveInjector {
    ebpf: Ebpf,
    end: VethEnd,
    cpus: Vec<usize>,
}

impl fmt::Debug for LiveInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveInjector")
            .field("interface", &self.end.name())
            .field("cpus", &self.cpus)
            .finish_non_exhaustive()
    }
}

impl LiveInjector {
    /// Loads the bundled generator (`xdp_live_tx`) and points its `tx_port[0]` at `end`, the
    /// sending veth; frames will then run on `threads` CPUs (the first `threads` CPUs this
    /// process may use).
    ///
    /// The devmap entry is written from inside `end`'s namespace, because the kernel resolves
    /// the ifindex in the caller's namespace.
    pub fn open(end: &VethEnd, threads: usize) -> Result<Self, InjectError> {
        let allowed = allowed_cpus().map_err(|e| InjectError::Config {
            injector: "live",
            interface: end.name().to_owned(),
            reason: format!("failed to read the CPUs this process may use: {e}"),
        })?;
        if threads == 0 || threads > allowed.len() {
            return Err(InjectError::Config {
                injector: "live",
                interface: end.name().to_owned(),
                reason: format!(
                    "{threads} sending threads asked for, {} CPUs available",
                    allowed.len()
                ),
            });
        }
        Self::open_on(end, &allowed[..threads])
    }

    /// As [`Self::open`], on exactly these CPUs (each must be one this process may use, none
    /// twice): a frame sent from CPU `c` lands on the receiving veth's queue `c % rx queues`.
    pub fn open_on(end: &VethEnd, cpus: &[usize]) -> Result<Self, InjectError> {
        let interface = end.name().to_owned();
        let config = |reason: String| InjectError::Config {
            injector: "live",
            interface: interface.clone(),
            reason,
        };
        let allowed = allowed_cpus()
            .map_err(|e| config(format!("failed to read the CPUs this process may use: {e}")))?;
        let mut unique = cpus.to_vec();
        unique.sort_unstable();
        unique.dedup();
        if cpus.is_empty() || unique.len() != cpus.len() {
            return Err(config(format!(
                "CPUs {cpus:?} asked for: give at least one, each once"
            )));
        }
        if let Some(cpu) = cpus.iter().find(|cpu| !allowed.contains(cpu)) {
            return Err(config(format!(
                "CPU {cpu} asked for, this process may use {allowed:?}"
            )));
        }
        let load = |what: &'static str| {
            let interface = interface.clone();
            move |source: Box<dyn std::error::Error + Send + Sync>| InjectError::Load {
                interface,
                what,
                source,
            }
        };
        let mut ebpf = EbpfLoader::new()
            .load(OBJECT)
            .map_err(|e| load("load object xdp_live_tx")(Box::new(e)))?;
        let xdp: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .expect("the bundled generator has program xdp_live_tx")
            .try_into()
            .expect("xdp_live_tx is an XDP program");
        xdp.load()
            .map_err(|e| load("load program xdp_live_tx")(Box::new(e)))?;
        let flows: &mut Xdp = ebpf
            .program_mut(FLOWS_PROGRAM)
            .expect("the bundled generator has program xdp_live_tx_flows")
            .try_into()
            .expect("xdp_live_tx_flows is an XDP program");
        flows
            .load()
            .map_err(|e| load("load program xdp_live_tx_flows")(Box::new(e)))?;
        {
            let map = ebpf
                .map_mut(TX_PORT)
                .expect("the bundled generator has map tx_port");
            let mut tx_port =
                DevMap::try_from(map).map_err(|e| load("open map tx_port")(Box::new(e)))?;
            let ifindex = end.ifindex();
            end.netns()
                .run(|| tx_port.set(0, ifindex, None, 0))?
                .map_err(|e| load("point tx_port[0] at the sending veth")(Box::new(e)))?;
        }
        Ok(Self {
            ebpf,
            end: end.clone(),
            cpus: cpus.to_vec(),
        })
    }

    /// The CPUs frames are sent from, one thread group each.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Runs `frame` as live frames until `budget` runs out, on every CPU given to
    /// [`Self::open`] at once.
    ///
    /// `accepted` is the frames the kernel ran (the repeat counts of successful calls),
    /// `offered` the same including failed calls, `errors` the failed calls (a call
    /// interrupted by a signal is retried; any other failure stops that worker), `cpu` the CPU
    /// time of all workers.
    #[doc(alias = "BPF_PROG_TEST_RUN")]
    pub fn send_for(&mut self, frame: &[u8], budget: Budget) -> InjectStats {
        self.run(PROGRAM, frame, budget)
    }

    /// As [`Self::send_for`], with every frame made one of `flows` flows, as traffic
    /// generators do: a CPU's `k`-th frame belongs to flow `i = k % flows`, whose IPv4
    /// source and destination addresses and UDP/TCP source and destination ports are
    /// `frame`'s plus `i` (each wrapping on its own width), with the IPv4 and UDP/TCP
    /// checksums updated to match. The kernel rewrites each frame as it runs
    /// (`xdp_live_tx_flows`), so the injector stays as fast as with one flow.
    ///
    /// `frame` must be Ethernet + IPv4 (no VLAN tag) + UDP or TCP, and `flows` at most
    /// [`MAX_FLOWS`]; otherwise nothing is sent and the error is in `last_error`. One flow is
    /// [`Self::send_for`].
    pub fn send_flows_for(&mut self, frame: &[u8], flows: u32, budget: Budget) -> InjectStats {
        if flows <= 1 {
            return self.send_for(frame, budget);
        }
        if let Err(e) = self.configure_flows(frame, flows) {
            return failed(format!(
                "failed to send a mix of {flows} flows on veth {:?}: {e}",
                self.end.name()
            ));
        }
        self.run(FLOWS_PROGRAM, frame, budget)
    }

    /// Writes `flow_config[0]` for `frame` and `flows`.
    fn configure_flows(&mut self, frame: &[u8], flows: u32) -> Result<(), String> {
        let config = FlowConfig::parse(frame, flows)?;
        let map = self
            .ebpf
            .map_mut(FLOW_CONFIG)
            .expect("the bundled generator has map flow_config");
        let mut array: Array<_, FlowConfig> =
            Array::try_from(map).map_err(|e| format!("failed to open map flow_config: {e}"))?;
        array
            .set(0, config, 0)
            .map_err(|e| format!("failed to write map flow_config: {e}"))
    }

    fn run(&mut self, program: &str, frame: &[u8], budget: Budget) -> InjectStats {
        let xdp: &Xdp = self
            .ebpf
            .program(program)
            .expect("loaded in open")
            .try_into()
            .expect("an XDP program");
        let netns = self.end.netns();
        let frames_left = AtomicU64::new(budget.frames);
        let start = Instant::now();
        let deadline = start + budget.duration;
        let mut total = InjectStats::default();
        let workers: Vec<(usize, InjectStats)> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .cpus
                .iter()
                .flat_map(|&cpu| std::iter::repeat_n(cpu, WORKERS_PER_CPU))
                .map(|cpu| {
                    let frames_left = &frames_left;
                    std::thread::Builder::new()
                        .name(format!("xl-live-{cpu}"))
                        .spawn_scoped(scope, move || {
                            // Inside the lab namespace: the kernel gives live frames the
                            // caller's namespace's loopback as their receiving device.
                            netns.run(|| worker(xdp, frame, cpu, frames_left, deadline))
                        })
                })
                .collect();
            let cpus = self
                .cpus
                .iter()
                .flat_map(|&cpu| std::iter::repeat_n(cpu, WORKERS_PER_CPU));
            handles
                .into_iter()
                .zip(cpus)
                .map(|(handle, cpu)| {
                    let stats = match handle {
                        Ok(handle) => match handle.join() {
                            Ok(Ok(stats)) => stats,
                            Ok(Err(e)) => failed(e.to_string()),
                            Err(panic) => std::panic::resume_unwind(panic),
                        },
                        Err(e) => failed(format!("failed to start a sending thread: {e}")),
                    };
                    (cpu, stats)
                })
                .collect()
        });
        total.threads = self
            .cpus
            .iter()
            .map(|&cpu| ThreadStats {
                cpu,
                ..ThreadStats::default()
            })
            .collect();
        for (cpu, stats) in workers {
            if let Some(thread) = total.threads.iter_mut().find(|t| t.cpu == cpu) {
                thread.accepted += stats.accepted;
                thread.cpu_time += stats.cpu;
            }
            total.offered += stats.offered;
            total.accepted += stats.accepted;
            total.errors += stats.errors;
            total.retries += stats.retries;
            total.cpu += stats.cpu;
            if stats.last_error.is_some() {
                total.last_error = stats.last_error;
            }
        }
        total.elapsed = start.elapsed();
        total
    }
}

/// A worker that could not run at all.
fn failed(error: String) -> InjectStats {
    InjectStats {
        errors: 1,
        last_error: Some(error),
        ..InjectStats::default()
    }
}

/// One worker: pinned to `cpu`, calls `BPF_PROG_TEST_RUN` until the deadline or the shared
/// frame budget runs out.
fn worker(
    xdp: &Xdp,
    frame: &[u8],
    cpu: usize,
    frames_left: &AtomicU64,
    deadline: Instant,
) -> InjectStats {
    let mut stats = InjectStats::default();
    let cpu_start = thread_cpu_time();
    if let Err(e) = pin_to(cpu) {
        return failed(format!("failed to pin a sending thread to CPU {cpu}: {e}"));
    }
    // Frames per second this worker got through in its last call, sharing the CPU as it does.
    let mut rate: Option<f64> = None;
    while let Some(time_left) = deadline.checked_duration_since(Instant::now()) {
        let want = match rate {
            None => ((FIRST_RATE * time_left.as_secs_f64()) as u64).min(u64::from(FIRST_REPEAT)),
            Some(rate) => (rate * time_left.min(CALL_TARGET).as_secs_f64()) as u64,
        }
        .min(u64::from(MAX_REPEAT));
        // CALL_TARGET bounds how long a SIGINT/SIGTERM waits for the call in flight.
        if want < u64::from(BATCH) || crate::interrupt::requested().is_some() {
            // Less than one batch's worth of time left.
            break;
        }
        let repeat = claim(frames_left, want);
        if repeat == 0 {
            break;
        }
        let repeat_u32 = u32::try_from(repeat).expect("at most MAX_REPEAT");
        let call_start = Instant::now();
        let result = xdp.test_run(TestRunOptions {
            data_in: Some(frame),
            repeat: repeat_u32,
            attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
            ..TestRunOptions::default()
        });
        let took = call_start.elapsed();
        stats.offered += repeat;
        match result {
            Ok(_) => {
                stats.accepted += repeat;
                rate = Some(repeat as f64 / took.as_secs_f64().max(1e-6));
            }
            Err(e) => {
                stats.errors += 1;
                stats.last_error = Some(crate::kernel::program::chain(&e));
                if errno_in(&e) == Some(libc::EINTR) {
                    stats.retries += 1;
                } else {
                    break;
                }
            }
        }
    }
    stats.cpu = thread_cpu_time().saturating_sub(cpu_start);
    stats
}

/// Takes up to `want` frames from the shared budget; how many it got.
fn claim(frames_left: &AtomicU64, want: u64) -> u64 {
    match frames_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        (left > 0).then(|| left - left.min(want))
    }) {
        Ok(before) => before.min(want),
        Err(_) => 0,
    }
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> nix::Result<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pins the calling thread to one CPU.
fn pin_to(cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(Pid::from_raw(0), &set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_mixes_take_ipv4_udp_and_tcp_frames_only() {
        use crate::frame::{FrameSpec, FrameTemplate, TcpSpec, UdpSpec};
        let build = |spec: FrameSpec| {
            FrameTemplate::build(&spec, &crate::topology::lab::endpoints(), 1514)
                .unwrap()
                .bytes()
                .to_vec()
        };
        let udp = build(FrameSpec {
            ipv4: Some(Default::default()),
            udp: Some(UdpSpec {
                src_port: 1000,
                dst_port: 9,
            }),
            ..FrameSpec::default()
        });
        let config = FlowConfig::parse(&udp, 8).unwrap();
        assert_eq!((config.flows, config.l4_off, config.l4_proto), (8, 34, 17));
        assert_eq!(config.sport, 1000u16.to_be());
        assert_eq!(config.dport, 9u16.to_be());
        assert_eq!(config.saddr.to_ne_bytes(), [10, 78, 0, 1]);
        let tcp = build(FrameSpec {
            ipv4: Some(Default::default()),
            tcp: Some(TcpSpec::default()),
            ..FrameSpec::default()
        });
        assert_eq!(FlowConfig::parse(&tcp, 2).unwrap().l4_proto, 6);
        let ipv6 = build(FrameSpec {
            ipv6: Some(Default::default()),
            udp: Some(UdpSpec::default()),
            ..FrameSpec::default()
        });
        assert!(FlowConfig::parse(&ipv6, 2).unwrap_err().contains("IPv4"));
        assert!(FlowConfig::parse(&udp, MAX_FLOWS + 1).is_err());
        assert!(FlowConfig::parse(&udp[..40], 2).is_err());
    }

    #[test]
    fn claims_never_exceed_the_budget() {
        let left = AtomicU64::new(100);
        assert_eq!(claim(&left, 64), 64);
        assert_eq!(claim(&left, 64), 36);
        assert_eq!(claim(&left, 64), 0);
        assert_eq!(left.load(Ordering::Relaxed), 0);
    }
}
