//! What the kernel saw, independently of the program under test.
//!
//! Three observers, each opened inside the lab namespace and then usable from any thread
//! (sockets keep their namespace):
//! - [`DriverStats`]: the veth driver's own counters (`ethtool -S`), read with the
//!   `ETHTOOL_GSTATS` ioctl. With a native XDP program these count every frame XDP ran on and
//!   every XDP_DROP/TX/REDIRECT, whatever the program's maps say.
//! - [`LinkStats`]: the interface counters (`ip -s link`), read with `RTM_GETLINK`. veth counts
//!   a received frame before any XDP runs, so in generic mode this is the count of frames that
//!   reached the device.
//! - [`Capture`]: an `AF_PACKET` socket on the receiving interface. Taps run after XDP (native
//!   and generic), so it sees the frames XDP passed, each attributed by its tag (or, for frames
//!   too small for one, by content). The kernel moves the outer VLAN tag into the skb before
//!   taps run; the capture puts it back (`PACKET_AUXDATA`). One kind of passed frame never
//!   reaches a tap: a VLAN-tagged frame shorter than [`MIN_OBSERVABLE_VLAN_FRAME`] bytes, which
//!   `skb_vlan_untag` frees; see [`observable_after_xdp`].

pub mod attribute;

use std::{
    collections::{BTreeMap, HashMap},
    io,
    mem::size_of,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime},
};

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
};
use rtnetlink::sys::{Socket, protocols::NETLINK_ROUTE};
use thiserror::Error;

use crate::{frame::Tag, kernel::netns::NetNsError, kernel::veth::VethEnd};

/// An error from an observer.
#[derive(Debug, Error)]
pub enum ObserveError {
    /// Entering the namespace failed.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// A socket, ioctl or netlink request failed.
    #[error("failed to {what} on veth {interface:?}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The interface.
        interface: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel's answer could not be understood.
    #[error("failed to {what} on veth {interface:?}: {reason}")]
    Protocol {
        /// What was being done.
        what: &'static str,
        /// The interface.
        interface: String,
        /// Why.
        reason: String,
    },
}

fn io_error<'a>(what: &'static str, end: &'a str) -> impl FnOnce(io::Error) -> ObserveError + 'a {
    move |source| ObserveError::Io {
        what,
        interface: end.to_owned(),
        source,
    }
}

fn socket(domain: libc::c_int, kind: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the returned descriptor is owned below.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fd is a fresh, valid descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

// ---------------------------------------------------------------------------------------------
// ethtool -S

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// The driver's statistics of one interface (`ethtool -S IF`).
#[derive(Debug)]
pub struct DriverStats {
    fd: OwnedFd,
    interface: String,
    names: Vec<String>,
}

/// One reading of [`DriverStats`], by counter name.
pub type DriverCounters = BTreeMap<String, u64>;

impl DriverStats {
    /// Opens the counters of a lab interface (a socket made inside its namespace).
    pub fn open(end: &VethEnd) -> Result<Self, ObserveError> {
        let interface = end.name().to_owned();
        let fd = end
            .netns()
            .run(|| socket(libc::AF_INET, libc::SOCK_DGRAM, 0))?
            .map_err(io_error("open an ethtool socket", &interface))?;
        let mut stats = Self {
            fd,
            interface,
            names: Vec::new(),
        };
        stats.names = stats.read_names()?;
        Ok(stats)
    }

    fn ioctl(&self, data: *mut u8) -> io::Result<()> {
        crate::kernel::veth::ethtool_ioctl(&self.fd, &self.interface, data).map(drop)
    }

    fn read_names(&self) -> Result<Vec<String>, ObserveError> {
        // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[1]; }
        let mut info = [0u32; 5];
        info[0] = ETHTOOL_GSSET_INFO;
        info[2] = 1 << ETH_SS_STATS;
        self.ioctl(info.as_mut_ptr().cast())
            .map_err(io_error("count ethtool statistics", &self.interface))?;
        let count = if info[2] & (1 << ETH_SS_STATS) != 0 {
            info[4] as usize
        } else {
            0
        };
        // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[]; }
        let mut buf = vec![0u8; 12 + count * ETH_GSTRING_LEN];
        buf[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
        buf[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
        buf[8..12].copy_from_slice(&(count as u32).to_ne_bytes());
        self.ioctl(buf.as_mut_ptr())
            .map_err(io_error("read ethtool statistic names", &self.interface))?;
        Ok(buf[12..]
            .chunks(ETH_GSTRING_LEN)
            .map(|raw| {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                String::from_utf8_lossy(&raw[..end]).into_owned()
            })
            .collect())
    }

    /// Reads every counter now.
    pub fn read(&self) -> Result<DriverCounters, ObserveError> {
        // struct ethtool_stats { u32 cmd; u32 n_stats; u64 data[]; }
        let mut buf = vec![0u64; 1 + self.names.len()];
        let head = u64::from(ETHTOOL_GSTATS) | ((self.names.len() as u64) << 32);
        buf[0] = if cfg!(target_endian = "little") {
            head
        } else {
            head.rotate_left(32)
        };
        self.ioctl(buf.as_mut_ptr().cast())
            .map_err(io_error("read ethtool statistics", &self.interface))?;
        Ok(self
            .names
            .iter()
            .cloned()
            .zip(buf[1..].iter().copied())
            .collect())
    }

    /// Reads the veth XDP counters, summed over queues.
    pub fn xdp(&self) -> Result<XdpStats, ObserveError> {
        Ok(XdpStats::from_counters(&self.read()?))
    }
}

/// The veth driver's native-XDP counters, summed over rx queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct XdpStats {
    /// Frames native XDP ran on (`rx_queue_N_xdp_packets`).
    pub packets: u64,
    /// XDP_DROP and XDP_ABORTED (`rx_queue_N_xdp_drops`).
    pub drops: u64,
    /// XDP_TX (`rx_queue_N_xdp_tx`).
    pub tx: u64,
    /// XDP_REDIRECT (`rx_queue_N_xdp_redirect`).
    pub redirect: u64,
    /// Frames dropped by the receive ring before XDP (`rx_queue_N_drops`).
    pub ring_drops: u64,
}

impl XdpStats {
    /// Sums the per-queue veth counters.
    pub fn from_counters(counters: &DriverCounters) -> Self {
        let mut stats = Self::default();
        for (name, value) in counters {
            let Some(rest) = name.strip_prefix("rx_queue_") else {
                continue;
            };
            let Some((_queue, counter)) = rest.split_once('_') else {
                continue;
            };
            match counter {
                "xdp_packets" => stats.packets += value,
                "xdp_drops" => stats.drops += value,
                "xdp_tx" => stats.tx += value,
                "xdp_redirect" => stats.redirect += value,
                "drops" => stats.ring_drops += value,
                _ => {}
            }
        }
        stats
    }

    /// Frames XDP_PASSed: every frame XDP ran on that it did not drop, bounce or redirect.
    pub fn passed(&self) -> u64 {
        self.packets
            .saturating_sub(self.drops + self.tx + self.redirect)
    }

    /// The change from `before` to `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            packets: self.packets.saturating_sub(before.packets),
            drops: self.drops.saturating_sub(before.drops),
            tx: self.tx.saturating_sub(before.tx),
            redirect: self.redirect.saturating_sub(before.redirect),
            ring_drops: self.ring_drops.saturating_sub(before.ring_drops),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ip -s link

/// Interface counters (`ip -s link show IF`), read over a route netlink socket made in the lab
/// namespace.
#[derive(Debug)]
pub struct LinkStats {
    socket: Socket,
    interface: String,
    ifindex: u32,
}

/// One reading of [`LinkStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// Frames received by the device (veth counts before XDP runs).
    pub rx_packets: u64,
    /// Frames the device dropped on receive.
    pub rx_dropped: u64,
    /// Frames sent by the device.
    pub tx_packets: u64,
    /// Frames the device dropped on transmit (for veth: the peer could not take them).
    pub tx_dropped: u64,
}

impl LinkCounters {
    /// The change from `before` to `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            rx_packets: self.rx_packets.saturating_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(before.rx_dropped),
            tx_packets: self.tx_packets.saturating_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.saturating_sub(before.tx_dropped),
        }
    }
}

impl LinkStats {
    /// Opens the counters of a lab interface.
    pub fn open(end: &VethEnd) -> Result<Self, ObserveError> {
        let interface = end.name().to_owned();
        let socket = end
            .netns()
            .run(|| {
                let mut socket = Socket::new(NETLINK_ROUTE)?;
                socket.bind_auto()?;
                Ok::<_, io::Error>(socket)
            })?
            .map_err(io_error("open a route netlink socket", &interface))?;
        Ok(Self {
            socket,
            interface,
            ifindex: end.ifindex(),
        })
    }

    /// Reads the counters now.
    pub fn read(&self) -> Result<LinkCounters, ObserveError> {
        let mut link = LinkMessage::default();
        link.header.index = self.ifindex;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        let mut request = NetlinkMessage::new(
            header,
            NetlinkPayload::from(RouteNetlinkMessage::GetLink(link)),
        );
        request.finalize();
        let mut buf = vec![0u8; request.buffer_len()];
        request.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(io_error("request link statistics", &self.interface))?;
        let protocol = |reason: String| ObserveError::Protocol {
            what: "read link statistics",
            interface: self.interface.clone(),
            reason,
        };
        let (reply, _) = self
            .socket
            .recv_from_full()
            .map_err(io_error("read link statistics", &self.interface))?;
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
            .map_err(|e| protocol(e.to_string()))?;
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => link
                .attributes
                .iter()
                .find_map(|attr| match attr {
                    LinkAttribute::Stats64(s) => Some(LinkCounters {
                        rx_packets: s.rx_packets,
                        rx_dropped: s.rx_dropped,
                        tx_packets: s.tx_packets,
                        tx_dropped: s.tx_dropped,
                    }),
                    _ => None,
                })
                .ok_or_else(|| protocol("no IFLA_STATS64 in the reply".into())),
            NetlinkPayload::Error(e) => Err(protocol(e.to_string())),
            other => Err(protocol(format!("unexpected reply {other:?}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// capture

/// Frames captured after XDP on the receiving interface, attributed by tag.
#[derive(Debug)]
pub struct Capture {
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    /// Per group: distinct tagged frames seen so far.
    groups: Arc<std::sync::Mutex<Vec<Arc<AtomicU64>>>>,
    /// Written by [`Capture::stop`] and with every command, so that the thread stops waiting
    /// at once.
    wake: Arc<OwnedFd>,
    commands: std::sync::mpsc::Sender<Command>,
    thread: Option<JoinHandle<Result<Captured, ObserveError>>>,
}

/// What a running capture is asked to do, between frames.
enum Command {
    /// Count a new group of this many frames, keeping their bytes or not.
    AddGroup {
        frames: u32,
        keep: bool,
        counter: Arc<AtomicU64>,
        ack: std::sync::mpsc::Sender<()>,
    },
    /// Read what is queued, then hand over everything seen so far.
    Take(std::sync::mpsc::Sender<Result<Captured, ObserveError>>),
    /// Read what is queued, then answer.
    Sync(std::sync::mpsc::Sender<Result<(), ObserveError>>),
}

/// Everything a [`Capture`] saw.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    /// Per group: how many times each sequence number was seen (index = seq); grown as
    /// frames arrive, so a group none of whose frames reach this interface takes no memory
    /// here (read it through [`Captured::times_seen`]).
    pub seen: Vec<Vec<u32>>,
    /// Frames with a tag of this run whose group or sequence number was never sent.
    pub stray_tagged: u64,
    /// Frames without a tag of this run, by exact content (capped; see `untagged_overflow`).
    pub untagged: HashMap<Vec<u8>, u64>,
    /// Untagged frames not kept because too many distinct contents were seen.
    pub untagged_overflow: u64,
    /// The untagged frames in arrival order, each with its arrival number (0 for the first
    /// frame this capture received, tagged or not), so that a send group's window of
    /// arrivals can be read back; up to [`ARRIVALS_KEEP`] frames and [`ARRIVALS_KEEP_BYTES`]
    /// bytes (see `arrivals_overflow`).
    pub untagged_arrivals: Vec<(u64, Vec<u8>)>,
    /// Untagged frames not kept in `untagged_arrivals` because it was full.
    pub arrivals_overflow: u64,
    /// Every frame received.
    pub total: u64,
    /// Frames the kernel dropped because the capture socket's buffer was full
    /// (`PACKET_STATISTICS`); non-zero means the capture is incomplete.
    pub socket_drops: u64,
    /// The first copy of each tagged frame of the groups in [`CaptureOptions::keep_groups`],
    /// by (group, seq).
    pub kept: HashMap<(u16, u32), Vec<u8>>,
    /// Every frame with its arrival time, up to [`CaptureOptions::keep_all`] frames (for pcap).
    pub all: Vec<(SystemTime, Vec<u8>)>,
}

impl Captured {
    /// How many times frame `seq` of group `group` was seen.
    pub fn times_seen(&self, group: usize, seq: usize) -> u32 {
        self.seen
            .get(group)
            .and_then(|g| g.get(seq))
            .copied()
            .unwrap_or(0)
    }
}

/// What a [`Capture`] counts and keeps.
#[derive(Clone, Debug, Default)]
pub struct CaptureOptions {
    /// `groups[g]` is the number of frames group `g` will send.
    pub groups: Vec<u32>,
    /// Groups whose frames are kept byte for byte (for output checks); missing = false.
    pub keep_groups: Vec<bool>,
    /// How many frames to keep in arrival order, whatever they are (0 = none).
    pub keep_all: usize,
    /// Bytes each of the capture's stores may hold (the untagged frames by content, the
    /// untagged frames in arrival order, the frames kept for pcap); `None`: [`KEEP_BYTES`].
    /// A session of many interfaces gives each a share of one budget.
    pub keep_bytes: Option<usize>,
}

/// What each store of a capture may hold by default (see [`CaptureOptions::keep_bytes`]).
pub const KEEP_BYTES: usize = 16 << 20;

const UNTAGGED_KEEP: usize = 4096;
/// Most untagged frames kept in arrival order.
pub const ARRIVALS_KEEP: usize = 4096;
/// Most bytes of untagged frames kept in arrival order.
pub const ARRIVALS_KEEP_BYTES: usize = KEEP_BYTES;

impl Captured {
    /// Frames that belong to no send group: tagged by this run with a group or sequence number
    /// never sent, or without this run's tag (background traffic, another run's frames), less
    /// those a group claimed by content (the runner removes them from `untagged`).
    pub fn unattributed(&self) -> u64 {
        self.stray_tagged + self.untagged.values().sum::<u64>() + self.untagged_overflow
    }
}

impl Capture {
    /// Starts capturing on `end`, before any frame is sent, counting the groups of `options`.
    pub fn start(
        end: &VethEnd,
        run_id: u32,
        options: &CaptureOptions,
    ) -> Result<Self, ObserveError> {
        let interface = end.name().to_owned();
        let ifindex = end.ifindex();
        let fd = end
            .netns()
            .run(|| open_packet_socket(ifindex))?
            .map_err(io_error("open a capture socket", &interface))?;
        let stop = Arc::new(AtomicBool::new(false));
        // SAFETY: eventfd takes no pointers; the result is checked.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            return Err(
                io_error("create the capture's wake-up eventfd", end.name())(
                    io::Error::last_os_error(),
                ),
            );
        }
        // SAFETY: a new descriptor this function owns.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
        let frames = Arc::new(AtomicU64::new(0));
        let counters: Vec<Arc<AtomicU64>> = options
            .groups
            .iter()
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let groups = Arc::new(std::sync::Mutex::new(counters.clone()));
        let (commands, received) = std::sync::mpsc::channel();
        let thread = {
            let counters = Counters {
                stop: Arc::clone(&stop),
                frames: Arc::clone(&frames),
                groups: counters,
                wake: Arc::clone(&wake),
                commands: received,
            };
            let options = options.clone();
            std::thread::Builder::new()
                .name("xdplab-capture".into())
                .spawn(move || capture_loop(&fd, &interface, run_id, &options, &counters))
                .map_err(io_error("start the capture thread", end.name()))?
        };
        Ok(Self {
            stop,
            frames,
            groups,
            wake,
            commands,
            thread: Some(thread),
        })
    }

    /// Starts counting a new group of `frames` frames, keeping their bytes if `keep`; returns
    /// its group number (what its frames' tags must carry). Frames the capture reads after
    /// this call returns are attributed to it.
    pub fn add_group(&self, frames: u32, keep: bool) -> usize {
        let counter = Arc::new(AtomicU64::new(0));
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.push(Arc::clone(&counter));
        let (ack, acked) = std::sync::mpsc::channel();
        // A capture whose thread ended has nothing more to count; `take` reports why.
        if self
            .commands
            .send(Command::AddGroup {
                frames,
                keep,
                counter,
                ack,
            })
            .is_ok()
        {
            self.wake();
            let _ = acked.recv();
        }
        groups.len() - 1
    }

    /// Reads what is queued and hands over everything seen since the last `take` (frames of
    /// groups added before it no longer count for their group afterwards: they are strays).
    /// Arrival numbers and [`Capture::frames`] keep counting across takes.
    pub fn take(&self) -> Result<Captured, ObserveError> {
        self.ask(Command::Take)
    }

    /// Returns once the capture has read every frame queued on its socket now, so that its
    /// counts include every frame the kernel delivered before this call.
    pub fn sync(&self) -> Result<(), ObserveError> {
        self.ask(Command::Sync)
    }

    /// Sends the thread a command that answers once it has read what is queued.
    fn ask<T>(
        &self,
        command: impl FnOnce(std::sync::mpsc::Sender<Result<T, ObserveError>>) -> Command,
    ) -> Result<T, ObserveError> {
        let (reply, answer) = std::sync::mpsc::channel();
        let ended = || ObserveError::Protocol {
            what: "read the capture",
            interface: "-".into(),
            reason: "the capture thread ended".into(),
        };
        self.commands.send(command(reply)).map_err(|_| ended())?;
        self.wake();
        answer.recv().map_err(|_| ended())?
    }

    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: a valid eventfd and an 8-byte buffer. A failed write leaves the thread to
        // notice at its next wait timeout.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Frames received so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Acquire)
    }

    /// Distinct tagged frames of `group` received so far.
    pub fn group_frames(&self, group: usize) -> u64 {
        self.groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .map_or(0, |n| n.load(Ordering::Acquire))
    }

    /// Asks the capture to stop once it has read what is queued; [`Capture::finish`] collects
    /// it. Stopping several captures before finishing any lets their last reads overlap.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    /// Stops, drains what is queued, and returns what was seen.
    pub fn finish(mut self) -> Result<Captured, ObserveError> {
        self.stop();
        let thread = self.thread.take().expect("finish runs once");
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open_packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    const ETH_P_ALL: u16 = 0x0003;
    const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
    // Protocol 0 receives nothing until bind, so no frame of another interface slips in.
    let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?;
    let raw = fd.as_raw_fd();
    // Large enough for a burst of passed frames while the reader is descheduled.
    setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 64 << 20)?;
    setsockopt(raw, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
    setsockopt(raw, libc::SOL_PACKET, PACKET_AUXDATA, 1)?;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 20_000,
    };
    // SAFETY: valid socket and option buffer.
    let ret = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::from_ref(&timeout).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = ETH_P_ALL.to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll of the given size.
    let ret = unsafe {
        libc::bind(
            raw,
            std::ptr::from_ref(&addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn setsockopt(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: valid socket and a c_int option buffer.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `PACKET_STATISTICS`: frames dropped for lack of buffer since the last call.
fn socket_drops(fd: libc::c_int) -> io::Result<u64> {
    const PACKET_STATISTICS: libc::c_int = 6;
    let mut stats = [0u32; 2]; // struct tpacket_stats { tp_packets, tp_drops }
    let mut len = size_of::<[u32; 2]>() as libc::socklen_t;
    // SAFETY: stats is a valid tpacket_stats buffer of len bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_STATISTICS,
            stats.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(u64::from(stats[1]))
    }
}

const VLAN_TAG_LEN: usize = 4;
const PACKET_AUXDATA: libc::c_int = 8;

/// `struct tpacket_auxdata`, delivered with every frame once `PACKET_AUXDATA` is on.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct AuxData {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    net: u16,
    vlan_tci: u16,
    vlan_tpid: u16,
}

const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Receives one frame into `buf`; returns its length and the outer VLAN tag (TPID, TCI) that
/// the kernel removed from it, if any.
fn recv_frame(
    fd: libc::c_int,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, Option<(u16, u16)>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Aligned for cmsghdr; large enough for one tpacket_auxdata.
    let mut control = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg describes valid buffers.
    let n = unsafe { libc::recvmsg(fd, &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut vlan = None;
    // SAFETY: walking the control messages the kernel just wrote into `control`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == PACKET_AUXDATA {
                let aux = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<AuxData>());
                if aux.status & TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.status & TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.vlan_tpid
                    } else {
                        0x8100
                    };
                    vlan = Some((tpid, aux.vlan_tci));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, vlan))
}

/// The frame as it was on the wire: the kernel strips the outer VLAN tag into the skb before
/// packet taps see it (`skb_vlan_untag`), so put it back after the MAC addresses. `buf` holds
/// the received frame at offset [`VLAN_TAG_LEN`].
fn restore_vlan_tag(buf: &mut [u8], len: usize, vlan: Option<(u16, u16)>) -> &[u8] {
    let frame = &mut buf[..VLAN_TAG_LEN + len];
    match vlan {
        Some((tpid, tci)) if len >= 12 => {
            frame.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
            frame[12..14].copy_from_slice(&tpid.to_be_bytes());
            frame[14..16].copy_from_slice(&tci.to_be_bytes());
            frame
        }
        _ => &frame[VLAN_TAG_LEN..],
    }
}

/// What the capture thread shares with its [`Capture`].
struct Counters {
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    groups: Vec<Arc<AtomicU64>>,
    wake: Arc<OwnedFd>,
    commands: std::sync::mpsc::Receiver<Command>,
}

/// Waits until the socket has a frame or the capture is asked to stop; a read timeout of the
/// socket bounds the wait anyway.
fn wait_readable(socket: libc::c_int, wake: libc::c_int) -> io::Result<()> {
    let mut fds = [
        libc::pollfd {
            fd: socket,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if fds[1].revents & libc::POLLIN != 0 {
        let mut count = [0u8; 8];
        // SAFETY: a valid eventfd and an 8-byte buffer; reading resets it.
        let _ = unsafe { libc::read(wake, count.as_mut_ptr().cast(), count.len()) };
    }
    Ok(())
}

/// What the capture thread has seen since the last take.
struct CaptureState {
    run_id: u32,
    captured: Captured,
    keep: Vec<bool>,
    /// Per group: frames it sends while it is counted here, 0 once taken.
    sizes: Vec<u32>,
    groups: Vec<Arc<AtomicU64>>,
    keep_all_left: usize,
    /// The most bytes each store holds ([`CaptureOptions::keep_bytes`]).
    keep_bytes: usize,
    arrival_bytes: usize,
    untagged_bytes: usize,
    all_bytes: usize,
}

impl CaptureState {
    fn record(&mut self, frame: &[u8], frames: &AtomicU64) {
        let captured = &mut self.captured;
        captured.total += 1;
        // Counted before it is attributed, so whoever sees a group's count grow also sees
        // the frame in the total.
        frames.fetch_add(1, Ordering::Release);
        if self.keep_all_left > 0 && self.all_bytes + frame.len() <= self.keep_bytes {
            self.keep_all_left -= 1;
            self.all_bytes += frame.len();
            captured.all.push((SystemTime::now(), frame.to_vec()));
        }
        match Tag::find(frame, self.run_id) {
            Some(tag) => match self
                .sizes
                .get(usize::from(tag.group))
                .filter(|&&n| tag.seq < n)
                .and_then(|_| captured.seen.get_mut(usize::from(tag.group)))
                .map(|g| {
                    // Grown to the highest frame seen, not allocated for the whole group up
                    // front: an interface the group's frames never reach takes no memory.
                    let seq = tag.seq as usize;
                    if g.len() <= seq {
                        g.resize(seq + 1, 0);
                    }
                    &mut g[seq]
                }) {
                Some(count) => {
                    *count += 1;
                    if *count == 1 {
                        if self.keep.get(usize::from(tag.group)) == Some(&true) {
                            captured.kept.insert((tag.group, tag.seq), frame.to_vec());
                        }
                        self.groups[usize::from(tag.group)].fetch_add(1, Ordering::Release);
                    }
                }
                None => captured.stray_tagged += 1,
            },
            None => {
                if captured.untagged_arrivals.len() < ARRIVALS_KEEP
                    && self.arrival_bytes + frame.len() <= self.keep_bytes
                {
                    self.arrival_bytes += frame.len();
                    captured
                        .untagged_arrivals
                        .push((captured.total - 1, frame.to_vec()));
                } else {
                    captured.arrivals_overflow += 1;
                }
                if let Some(count) = captured.untagged.get_mut(frame) {
                    *count += 1;
                } else if captured.untagged.len() < UNTAGGED_KEEP
                    && self.untagged_bytes + frame.len() <= self.keep_bytes
                {
                    self.untagged_bytes += frame.len();
                    captured.untagged.insert(frame.to_vec(), 1);
                } else {
                    captured.untagged_overflow += 1;
                }
            }
        }
    }

    /// Everything seen so far; the next window starts empty, with the arrival numbers going on
    /// and the groups seen so far known but no longer counted.
    fn take(&mut self, raw: libc::c_int, interface: &str) -> Result<Captured, ObserveError> {
        self.sizes.iter_mut().for_each(|n| *n = 0);
        let next = Captured {
            seen: vec![Vec::new(); self.captured.seen.len()],
            total: self.captured.total,
            ..Captured::default()
        };
        self.arrival_bytes = 0;
        self.untagged_bytes = 0;
        let mut taken = std::mem::replace(&mut self.captured, next);
        taken.socket_drops =
            socket_drops(raw).map_err(io_error("read capture socket statistics", interface))?;
        Ok(taken)
    }
}

/// Reads every frame queued on the socket now, without waiting.
fn read_queued(
    raw: libc::c_int,
    buf: &mut [u8],
    state: &mut CaptureState,
    frames: &AtomicU64,
    interface: &str,
) -> Result<(), ObserveError> {
    loop {
        // Room in front for the VLAN tag the kernel may have moved into the skb's metadata.
        let (n, vlan) = match recv_frame(raw, &mut buf[VLAN_TAG_LEN..], libc::MSG_DONTWAIT) {
            Ok(received) => received,
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(()),
                Some(libc::EINTR) => continue,
                _ => return Err(io_error("read the capture socket", interface)(e)),
            },
        };
        let frame = restore_vlan_tag(buf, n, vlan);
        state.record(frame, frames);
    }
}

fn capture_loop(
    fd: &OwnedFd,
    interface: &str,
    run_id: u32,
    options: &CaptureOptions,
    counters: &Counters,
) -> Result<Captured, ObserveError> {
    let Counters {
        stop,
        frames,
        groups,
        wake,
        commands,
    } = counters;
    let mut state = CaptureState {
        run_id,
        captured: Captured {
            seen: vec![Vec::new(); options.groups.len()],
            ..Captured::default()
        },
        sizes: options.groups.clone(),
        keep: (0..options.groups.len())
            .map(|g| options.keep_groups.get(g).copied().unwrap_or(false))
            .collect(),
        groups: groups.clone(),
        keep_all_left: options.keep_all,
        keep_bytes: options.keep_bytes.unwrap_or(KEEP_BYTES),
        arrival_bytes: 0,
        untagged_bytes: 0,
        all_bytes: 0,
    };
    let raw = fd.as_raw_fd();
    let mut buf = vec![0u8; VLAN_TAG_LEN + 65536];
    loop {
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::AddGroup {
                    frames: n,
                    keep,
                    counter,
                    ack,
                } => {
                    // What is queued now was sent before the group: it is not the group's.
                    read_queued(raw, &mut buf, &mut state, frames, interface)?;
                    state.captured.seen.push(Vec::new());
                    state.sizes.push(n);
                    state.keep.push(keep);
                    state.groups.push(counter);
                    let _ = ack.send(());
                }
                Command::Sync(reply) => {
                    let _ = reply.send(read_queued(raw, &mut buf, &mut state, frames, interface));
                }
                Command::Take(reply) => {
                    let result = read_queued(raw, &mut buf, &mut state, frames, interface)
                        .and_then(|()| state.take(raw, interface));
                    let _ = reply.send(result);
                }
            }
        }
        // Once stopped, drain without waiting: everything the kernel delivered is queued.
        if stop.load(Ordering::Acquire) {
            read_queued(raw, &mut buf, &mut state, frames, interface)?;
            break;
        }
        wait_readable(raw, wake.as_raw_fd())
            .map_err(io_error("wait for the capture socket", interface))?;
        read_queued(raw, &mut buf, &mut state, frames, interface)?;
    }
    state.take(raw, interface)
}

// ---------------------------------------------------------------------------------------------
// xdp:xdp_exception

/// Counts `XDP_ABORTED` (and the other exceptions the kernel traces: failed XDP_TX, invalid
/// actions) per program and action, from the `xdp:xdp_exception` tracepoint, through a small
/// `tp_btf` program (`ebpf/xdp_exception.bpf.c`). The tracepoint is global; keying by program
/// id keeps labs that run in parallel apart. veth counts XDP_ABORTED as a drop, so this is the
/// only place an abort shows.
pub struct ExceptionCounter {
    ebpf: aya::Ebpf,
}

impl std::fmt::Debug for ExceptionCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExceptionCounter").finish_non_exhaustive()
    }
}

const EXCEPTION_OBJECT: &[u8] = aya::include_bytes_aligned!("../../ebpf-obj/xdp_exception.bpf.o");

impl ExceptionCounter {
    /// Loads and attaches the counter (`tp_btf/xdp_exception`); detached on drop.
    pub fn start() -> Result<Self, ObserveError> {
        let error = |what: &'static str, reason: String| ObserveError::Protocol {
            what,
            interface: "-".into(),
            reason,
        };
        // Parsing the kernel's BTF costs tens of milliseconds; it cannot change while the
        // kernel runs, so one parse serves every counter this process starts.
        static KERNEL_BTF: std::sync::OnceLock<Result<aya::Btf, String>> =
            std::sync::OnceLock::new();
        let btf = KERNEL_BTF
            .get_or_init(|| aya::Btf::from_sys_fs().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| error("read the kernel's BTF for tp_btf/xdp_exception", e.clone()))?;
        let mut ebpf = aya::EbpfLoader::new().load(EXCEPTION_OBJECT).map_err(|e| {
            error(
                "load the xdp_exception counter",
                crate::kernel::program::chain(&e),
            )
        })?;
        let program: &mut aya::programs::BtfTracePoint = ebpf
            .program_mut("xdp_exception")
            .ok_or_else(|| error("load the xdp_exception counter", "no program".into()))?
            .try_into()
            .map_err(|e| {
                error(
                    "load the xdp_exception counter",
                    crate::kernel::program::chain(&e),
                )
            })?;
        program.load("xdp_exception", btf).map_err(|e| {
            error(
                "load tp_btf/xdp_exception",
                crate::kernel::program::chain(&e),
            )
        })?;
        program.attach().map_err(|e| {
            error(
                "attach tp_btf/xdp_exception",
                crate::kernel::program::chain(&e),
            )
        })?;
        Ok(Self { ebpf })
    }

    /// The process's counter, started by the first caller and kept attached until the
    /// process ends. Attaching and detaching a `tp_btf` program each wait for the kernel's
    /// trampoline to settle (tens of milliseconds); counts are keyed by program id, so one
    /// counter serves every lab of the process, in parallel too.
    pub fn shared() -> Result<&'static Self, ObserveError> {
        static SHARED: std::sync::OnceLock<Result<ExceptionCounter, String>> =
            std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| Self::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|reason| ObserveError::Protocol {
                what: "start the xdp_exception counter",
                interface: "-".into(),
                reason: reason.clone(),
            })
    }

    /// Exceptions traced so far for program `prog_id` with `action` (0 = XDP_ABORTED).
    pub fn count(&self, prog_id: u32, action: u32) -> Result<u64, ObserveError> {
        let mut key = prog_id.to_le_bytes().to_vec();
        key.extend_from_slice(&action.to_le_bytes());
        let map = crate::kernel::maps::find_map(&self.ebpf, "exceptions", "xdp_exception")
            .map_err(|e| ObserveError::Protocol {
                what: "read the xdp_exception counter",
                interface: "-".into(),
                reason: e.to_string(),
            })?;
        let value = map.lookup(&key).map_err(|e| ObserveError::Protocol {
            what: "read the xdp_exception counter",
            interface: "-".into(),
            reason: e.to_string(),
        })?;
        Ok(value.and_then(|v| v.sum_u64()).unwrap_or(0))
    }
}

/// The shortest frame with an outer VLAN tag that survives `skb_vlan_untag` (Ethernet header,
/// the tag, and the 2-byte inner EtherType) and so can reach a capture.
pub const MIN_OBSERVABLE_VLAN_FRAME: usize = 14 + VLAN_TAG_LEN + 2;

/// Whether a frame, if XDP passes it, can be seen by a capture on the receiving interface.
pub fn observable_after_xdp(frame: &[u8]) -> bool {
    let outer_vlan = matches!(frame.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8]));
    !(outer_vlan && frame.len() < MIN_OBSERVABLE_VLAN_FRAME)
}

/// How long an observer waits between polls while counts settle.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Frames waiting in the CPUs' receive backlogs (`/proc/net/softnet_stat`, the `backlog_len`
/// column: input plus process queue of every CPU), or `None` on a kernel whose file lacks
/// the column (before 5.10).
///
/// A frame a veth hands to a peer without NAPI (generic XDP, or no XDP) waits there until the
/// CPU's softirq runs the stack and generic XDP on it; counters such as the peer's
/// `rx_packets` move when it is queued, before XDP has seen it. An empty backlog after the
/// frames were queued means XDP has run on all of them, however loaded the machine is.
pub fn softnet_backlog() -> Option<u64> {
    backlog_of(&std::fs::read_to_string("/proc/net/softnet_stat").ok()?)
}

/// The sum of the `backlog_len` column of a `/proc/net/softnet_stat` text.
fn backlog_of(text: &str) -> Option<u64> {
    const BACKLOG_LEN: usize = 11;
    text.lines()
        .map(|line| {
            let field = line.split_whitespace().nth(BACKLOG_LEN)?;
            u64::from_str_radix(field, 16).ok()
        })
        .sum()
}

#[cfg(test)]
mod backlog_tests {
    use super::backlog_of;

    #[test]
    fn backlog_is_the_twelfth_column_summed_over_cpus() {
        // Linux 6.18, two CPUs: processed ... backlog_len, index, input_qlen, process_qlen.
        let two = "01aedf03 00000000 00000004 00000000 00000000 00000000 00000000 00000000 \
                   00000000 00000000 00000000 00000003 00000000 00000002 00000001\n\
                   0025a15d 00000000 00000009 00000000 00000000 00000000 00000000 00000000 \
                   00000000 00000000 00000000 0000000a 00000001 0000000a 00000000\n";
        assert_eq!(backlog_of(two), Some(13));
        // Before the column existed: no answer rather than a wrong one.
        let old = "01aedf03 00000000 00000004 00000000 00000000 00000000 00000000 00000000 \
                   00000000 00000000 00000000\n";
        assert_eq!(backlog_of(old), None);
    }
}
