//! The functional tests' injector: pnet's datalink channel (an `AF_PACKET` socket, one
//! `sendto` per frame), opened inside the sending namespace.
//!
//! Why it is slower than a C loop of `sendto` on the same kind of socket (0.69 to 0.77x of
//! its frames per CPU second on the reference machine, see README "Benchmarks"): pnet's `DataLinkSender::send_to` (and `build_and_send`) calls `poll(POLLOUT)`
//! before every `sendto`, with the write timeout, so every frame costs two system calls.
//! Profiled with `perf record` on the reference machine, `poll` took 27% of the sending
//! process's samples and `sendto` 60%. pnet 0.35 has no way to send without that `poll`; the
//! batched injector is the one without it.

use std::{
    io,
    os::fd::{FromRawFd as _, IntoRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use pnet::datalink::{self, Channel, DataLinkSender};

use super::{Budget, InjectError, InjectStats, thread_cpu_time};
use crate::{
    frame::{FrameTemplate, Tag},
    kernel::veth::VethEnd,
};

/// How often one frame is retried after ENOBUFS/EAGAIN before it counts as an error.
const MAX_RETRIES_PER_FRAME: u32 = 1000;

/// A pnet datalink sender bound to a lab interface.
pub struct PnetInjector {
    tx: Box<dyn DataLinkSender>,
    interface: String,
}

impl std::fmt::Debug for PnetInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PnetInjector")
            .field("interface", &self.interface)
            .finish_non_exhaustive()
    }
}

impl PnetInjector {
    /// Opens a channel on `end` from inside its namespace.
    pub fn open(end: &VethEnd) -> Result<Self, InjectError> {
        let interface = end.name().to_owned();
        let tx = end.netns().run(|| {
            let iface = datalink::interfaces()
                .into_iter()
                .find(|i| i.name == interface)
                .ok_or_else(|| InjectError::NoInterface {
                    interface: interface.clone(),
                })?;
            // Our own socket, protocol 0, for pnet to bind and send on: pnet's own is bound
            // to ETH_P_ALL, so every frame arriving at the sending veth (frames a program
            // bounces with XDP_TX, the stack's answers) would be cloned into its receive
            // queue, which nobody reads. (Its own sent frames are not: the kernel skips the
            // sending socket.)
            let socket = send_only_socket().map_err(|source| InjectError::Channel {
                interface: interface.clone(),
                source,
            })?;
            let config = datalink::Config {
                // The receive half is unused; keep its buffer small.
                read_buffer_size: 4096,
                read_timeout: Some(Duration::from_millis(1)),
                // pnet polls for writability before every send and would wait forever
                // without this, past any send loop's deadline.
                write_timeout: Some(Duration::from_millis(100)),
                // Only the protocol pnet binds the socket with (0: no receive hook); a layer-3
                // channel sends the same bytes through the same `sendto` as a layer-2 one.
                channel_type: datalink::ChannelType::Layer3(0),
                // Nothing is received, so no promiscuous membership either.
                promiscuous: false,
                // pnet owns (and closes) it from here on, even when it fails.
                socket_fd: Some(socket.into_raw_fd()),
                ..datalink::Config::default()
            };
            match datalink::channel(&iface, config) {
                Ok(Channel::Ethernet(tx, _rx)) => Ok(tx),
                Ok(_) => Err(InjectError::Channel {
                    interface: interface.clone(),
                    source: std::io::Error::other("not an Ethernet channel"),
                }),
                Err(source) => Err(InjectError::Channel {
                    interface: interface.clone(),
                    source,
                }),
            }
        })??;
        Ok(Self {
            tx,
            interface: end.name().to_owned(),
        })
    }

    /// Sends `count` frames tagged `(run_id, group, 0..count)`; frame `seq` is built from
    /// `templates[seq % templates.len()]` (one template, or the frames of a pcap in order).
    ///
    /// Bounded: at most `count` frames and `MAX_RETRIES_PER_FRAME` retries each.
    pub fn send(
        &mut self,
        templates: &[FrameTemplate],
        run_id: u32,
        group: u16,
        count: u32,
    ) -> InjectStats {
        let mut stats = InjectStats::default();
        if templates.is_empty() {
            return stats;
        }
        let mut buf =
            Vec::with_capacity(templates.iter().map(FrameTemplate::len).max().unwrap_or(0));
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        for seq in 0..count {
            // SIGINT/SIGTERM: stop here; the caller abandons the run.
            if crate::interrupt::requested().is_some() {
                break;
            }
            let template = &templates[seq as usize % templates.len()];
            template.write(Tag { run_id, group, seq }, &mut buf);
            stats.offered += 1;
            let mut retries = 0;
            loop {
                match self.tx.send_to(&buf, None) {
                    Some(Ok(())) => {
                        stats.accepted += 1;
                        break;
                    }
                    Some(Err(e))
                        if retries < MAX_RETRIES_PER_FRAME
                            && matches!(
                                e.raw_os_error(),
                                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
                            ) =>
                    {
                        retries += 1;
                        stats.retries += 1;
                        std::thread::yield_now();
                    }
                    Some(Err(e)) => {
                        stats.errors += 1;
                        stats.last_error = Some(e.to_string());
                        break;
                    }
                    None => {
                        stats.errors += 1;
                        stats.last_error = Some("pnet sender refused the frame".into());
                        break;
                    }
                }
            }
        }
        stats.elapsed = start.elapsed();
        stats.cpu = thread_cpu_time().saturating_sub(cpu_start);
        stats
    }

    /// Sends the same frame over and over, one `sendto` each, until `budget` runs out: the
    /// throughput baseline. Transient errors (ENOBUFS, EAGAIN) are retried, bounded like
    /// [`Self::send`] and by the budget's duration.
    pub fn send_for(&mut self, frame: &[u8], budget: Budget) -> InjectStats {
        // Reading the clock costs about as much as a few percent of a send; every 64 frames
        // is often enough to end within microseconds of the deadline.
        const CLOCK_EVERY: u64 = 64;
        let mut stats = InjectStats::default();
        let cpu_start = thread_cpu_time();
        let start = Instant::now();
        let deadline = start + budget.duration;
        'frames: while stats.offered < budget.frames {
            if stats.offered.is_multiple_of(CLOCK_EVERY)
                && (Instant::now() >= deadline || crate::interrupt::requested().is_some())
            {
                break;
            }
            stats.offered += 1;
            let mut retries = 0;
            loop {
                match self.tx.send_to(frame, None) {
                    Some(Ok(())) => {
                        stats.accepted += 1;
                        break;
                    }
                    Some(Err(e))
                        if retries < MAX_RETRIES_PER_FRAME
                            && matches!(
                                e.raw_os_error(),
                                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
                            ) =>
                    {
                        retries += 1;
                        stats.retries += 1;
                        if Instant::now() >= deadline {
                            stats.errors += 1;
                            stats.last_error = Some(e.to_string());
                            break 'frames;
                        }
                        std::thread::yield_now();
                    }
                    Some(Err(e)) => {
                        stats.errors += 1;
                        stats.last_error = Some(e.to_string());
                        break;
                    }
                    None => {
                        stats.errors += 1;
                        stats.last_error = Some("pnet sender refused the frame".into());
                        break;
                    }
                }
            }
        }
        stats.elapsed = start.elapsed();
        stats.cpu = thread_cpu_time().saturating_sub(cpu_start);
        stats
    }
}

/// `socket(AF_PACKET, SOCK_RAW, 0)` in the calling thread's namespace: protocol 0 registers no
/// receive hook, so the socket only sends.
fn send_only_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned right below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
