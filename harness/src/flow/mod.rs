//! Flows: traffic the lab's own kernel stacks make through the program under test (ICMP echo,
//! TCP connections, TCP bulk streams, UDP and TCP request/response), measured with real kernel
//! sockets on both ends.
//!
//! A frame-by-frame scenario never lets the stacks talk: a filter that drops every SYN-ACK, or
//! lets pings through and stalls TCP after the handshake, passes it. A flow says what must
//! still work (`complete`) or must not (`blocked`) with the program attached.
//!
//! Every socket is created on a thread set into its namespace ([`NetNs::run`]; threads that
//! thread spawns share its namespace), then used from any thread: a socket keeps the
//! namespace it was made in. Every flow is bounded: timeouts on every socket, a hard deadline
//! ([`Flow::deadline`]) and at most [`Flow::MAX_BYTES`] bytes.
//!
//! - [`ping`]: ICMP / ICMPv6 echo from the sender's stack.
//! - [`tcp_connect`]: connections to a listener, established, refused or timed out.
//! - [`tcp_stream`]: a bulk stream, checked byte by byte at the receiver.
//! - [`rr`]: UDP and TCP request/response transactions.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, RawFd},
    str::FromStr,
    time::Duration,
};

use serde::Serialize;
use thiserror::Error;

use crate::kernel::netns::{NetNs, NetNsError};

pub mod ping;
pub mod rr;
pub mod tcp_connect;
pub mod tcp_stream;

/// An error that stops a flow from being measured at all (a flow whose packets are dropped is
/// measured, and reported blocked: that is not an error).
#[derive(Debug, Error)]
pub enum FlowError {
    /// A namespace could not be entered.
    #[error(transparent)]
    NetNs(#[from] NetNsError),
    /// A socket call failed in a way that says nothing about the program under test.
    #[error("failed to {what} for flow {flow:?}: {source}")]
    Io {
        /// The flow's name.
        flow: String,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What kind of traffic a flow makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowKind {
    /// ICMP (or ICMPv6) echo requests and replies.
    Ping,
    /// TCP connections opened and closed.
    TcpConnect,
    /// One TCP stream of data, checked end to end.
    TcpStream,
    /// UDP request/response transactions.
    UdpRr,
    /// TCP request/response transactions on one connection.
    TcpRr,
}

impl FlowKind {
    /// Every kind, as written in a scenario.
    pub const NAMES: [&'static str; 5] = ["ping", "tcp-connect", "tcp-stream", "udp-rr", "tcp-rr"];
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ping => "ping",
            Self::TcpConnect => "tcp-connect",
            Self::TcpStream => "tcp-stream",
            Self::UdpRr => "udp-rr",
            Self::TcpRr => "tcp-rr",
        })
    }
}

impl FromStr for FlowKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ping" => Self::Ping,
            "tcp-connect" => Self::TcpConnect,
            "tcp-stream" => Self::TcpStream,
            "udp-rr" => Self::UdpRr,
            "tcp-rr" => Self::TcpRr,
            _ => {
                return Err(format!(
                    "unknown flow kind {s:?} (expected one of \"{}\")",
                    Self::NAMES.join("\", \"")
                ));
            }
        })
    }
}

/// What a flow should come to with the program attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowExpect {
    /// Every echo, connection, byte or transaction got through (or, with `max_loss`, at most
    /// that share of echoes or transactions was lost).
    Complete,
    /// None did.
    Blocked,
}

impl fmt::Display for FlowExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Complete => "complete",
            Self::Blocked => "blocked",
        })
    }
}

/// What a flow came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    /// Everything got through.
    Complete,
    /// Nothing did.
    Blocked,
    /// Some did.
    Partial,
    /// Not run (the test-run path has no stacks to talk).
    Skip,
}

impl fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Complete => "complete",
            Self::Blocked => "blocked",
            Self::Partial => "partial",
            Self::Skip => "skip",
        })
    }
}

impl FlowStatus {
    /// `got` units of `of` got through.
    fn of(got: u64, of: u64) -> Self {
        if of > 0 && got >= of {
            Self::Complete
        } else if got == 0 {
            Self::Blocked
        } else {
            Self::Partial
        }
    }
}

/// A lab a flow is also run in, to compare with the program under test (`compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compare {
    /// The same topology with no program attached.
    NoProgram,
    /// The same topology with the bundled `xdp_pass` attached where the program under test
    /// is, in the same mode: what any attached program costs, before it decides anything.
    XdpPass,
}

impl Compare {
    /// Every lab, as written in a scenario.
    pub const NAMES: [&'static str; 2] = ["no-program", "xdp-pass"];
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoProgram => "no-program",
            Self::XdpPass => "xdp-pass",
        })
    }
}

impl FromStr for Compare {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "no-program" => Ok(Self::NoProgram),
            "xdp-pass" => Ok(Self::XdpPass),
            _ => Err(format!(
                "unknown comparison {s:?} (expected \"{}\")",
                Self::NAMES.join("\" or \"")
            )),
        }
    }
}

/// One flow: what to send, how much, and what it should come to.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// Name in reports.
    pub name: String,
    /// The traffic.
    pub kind: FlowKind,
    /// Echo requests (`ping`) or transactions (`udp-rr`, `tcp-rr`).
    pub count: u32,
    /// Time between two echo requests (`ping`).
    pub interval: Duration,
    /// ICMP payload bytes (`ping`), request and response bytes (`*-rr`), write size
    /// (`tcp-stream`).
    pub size: usize,
    /// Destination port (TCP and UDP kinds).
    pub port: u16,
    /// Connections to open (`tcp-connect`).
    pub connections: u32,
    /// Bytes to deliver (`tcp-stream`).
    pub bytes: u64,
    /// With `tcp-stream`: stream for this long (at most `bytes`).
    pub duration: Option<Duration>,
    /// With `tcp-stream`: the data goes from the receiving namespace's listener back to the
    /// connecting end (as `iperf3 -R`) rather than from the connecting end to it.
    pub reverse: bool,
    /// How long one echo, connection or transaction is waited for.
    pub timeout: Duration,
    /// What it should come to.
    pub expect: FlowExpect,
    /// With `expect = complete`, for `ping` and the `*-rr` kinds: the largest acceptable loss,
    /// in percent.
    pub max_loss: Option<f64>,
    /// With `tcp-stream` expected complete: the lowest acceptable goodput with the program,
    /// as a share of the same flow's goodput with no program ([`FlowReport::baseline`]).
    pub min_goodput_ratio: Option<f64>,
    /// Labs the same flow is also run in, in the same run, to compare its figure
    /// ([`Comparison`]) with the program under test's.
    pub compare: Vec<Compare>,
}

impl Flow {
    /// Default `count` (echoes or transactions).
    pub const DEFAULT_COUNT: u32 = 20;
    /// Most echoes or transactions (an echo's sequence number is 16 bits).
    pub const MAX_COUNT: u32 = 65_535;
    /// Default ping interval.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);
    /// Longest ping interval.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(1);
    /// Longest a scenario's ping flow may send for (`count` times `interval`).
    pub const MAX_PING_TIME: Duration = Duration::from_secs(60);
    /// Default ICMP payload (as `ping -s 56`).
    pub const DEFAULT_PING_SIZE: usize = 56;
    /// Default request/response size and stream write size.
    pub const DEFAULT_RR_SIZE: usize = 64;
    /// Default stream write size.
    pub const DEFAULT_WRITE_SIZE: usize = 16 * 1024;
    /// Largest `size`.
    pub const MAX_SIZE: usize = 65_000;
    /// Default port.
    pub const DEFAULT_PORT: u16 = 5201;
    /// Default connections.
    pub const DEFAULT_CONNECTIONS: u32 = 10;
    /// Most connections.
    pub const MAX_CONNECTIONS: u32 = 1000;
    /// Default stream length.
    pub const DEFAULT_BYTES: u64 = 4 << 20;
    /// Longest stream.
    pub const MAX_BYTES: u64 = 1 << 30;
    /// Longest stream duration.
    pub const MAX_DURATION: Duration = Duration::from_secs(30);
    /// How long one echo or connection is waited for by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    /// How long one transaction is waited for by default.
    pub const DEFAULT_RR_TIMEOUT: Duration = Duration::from_millis(500);
    /// Transactions that fail in a row, none having succeeded, before a request/response flow
    /// stops: it is blocked, and waiting out every timeout would say nothing more.
    pub const GIVE_UP_AFTER: u32 = 5;

    /// A flow of `kind` with every default.
    pub fn new(name: impl Into<String>, kind: FlowKind) -> Self {
        let (size, timeout) = match kind {
            FlowKind::Ping => (Self::DEFAULT_PING_SIZE, Self::DEFAULT_TIMEOUT),
            FlowKind::TcpStream => (Self::DEFAULT_WRITE_SIZE, Self::DEFAULT_TIMEOUT),
            FlowKind::TcpConnect => (Self::DEFAULT_RR_SIZE, Self::DEFAULT_TIMEOUT),
            FlowKind::UdpRr | FlowKind::TcpRr => (Self::DEFAULT_RR_SIZE, Self::DEFAULT_RR_TIMEOUT),
        };
        Self {
            name: name.into(),
            kind,
            count: Self::DEFAULT_COUNT,
            interval: Self::DEFAULT_INTERVAL,
            size,
            port: Self::DEFAULT_PORT,
            connections: Self::DEFAULT_CONNECTIONS,
            bytes: Self::DEFAULT_BYTES,
            duration: None,
            reverse: false,
            timeout,
            expect: FlowExpect::Complete,
            max_loss: None,
            min_goodput_ratio: None,
            compare: Vec::new(),
        }
    }

    /// The most time the flow may take, however its packets fare: past it, every socket is
    /// abandoned and the flow reported as it stands.
    pub fn deadline(&self) -> Duration {
        let slack = Duration::from_secs(2);
        match self.kind {
            FlowKind::Ping => self.interval.saturating_mul(self.count) + self.timeout + slack,
            FlowKind::TcpConnect => {
                // Connections are opened in batches of [`tcp_connect::BATCH`].
                let batches = self.connections.div_ceil(tcp_connect::BATCH as u32);
                self.timeout.saturating_mul(batches) + slack
            }
            FlowKind::TcpStream => {
                self.duration.unwrap_or(Duration::from_secs(10)) + self.timeout + slack
            }
            FlowKind::UdpRr | FlowKind::TcpRr => {
                Duration::from_secs(10).min(self.timeout.saturating_mul(self.count))
                    + self.timeout
                    + slack
            }
        }
    }
}

/// Where a flow runs: the namespaces of its two ends, and the address it is sent to (an
/// address of the receiving namespace).
#[derive(Clone, Copy, Debug)]
pub struct Ends<'a> {
    /// The namespace that pings, connects, streams or requests.
    pub from: &'a NetNs,
    /// The namespace that answers, listens or receives.
    pub to: &'a NetNs,
    /// The address in `to` the traffic is sent to.
    pub dst: IpAddr,
}

impl Ends<'_> {
    /// `dst` at `port`.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.dst, port)
    }
}

/// Percentiles of a sample, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile (latencies of transactions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999: Option<u64>,
}

impl Percentiles {
    /// Of `samples` (sorted here); `None` when there are none.
    pub fn of(samples: &mut [u64], with_p999: bool) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample at or above the q-quantile.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "ranks of at most a few hundred thousand samples"
            )]
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1]
        };
        Some(Self {
            p50: at(0.50),
            p99: at(0.99),
            p999: with_p999.then(|| at(0.999)),
        })
    }
}

/// What happened to a flow's connections (`tcp-connect`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// The handshake completed.
    pub established: u64,
    /// A reset answered the SYN.
    pub refused: u64,
    /// Nothing answered within the timeout.
    pub timed_out: u64,
}

/// Packets a flow's sockets put on the wire in each direction, as counted by the sockets
/// themselves: lower bounds on the frames that crossed the lab's links, read before the
/// sockets closed (so later segments, a FIN or a TIME_WAIT ACK, can only add to the frames).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    /// From the sending namespace toward the receiving one.
    pub forward: u64,
    /// What `forward` counts.
    pub forward_what: &'static str,
    /// From the receiving namespace back.
    pub reverse: u64,
    /// What `reverse` counts.
    pub reverse_what: &'static str,
}

/// The frames of one flow that reached the program's interface, against what the flow's
/// sockets sent toward it ([`Wire`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowFrames {
    /// The program's interface (`netns:interface`).
    pub at: String,
    /// Frames the program ran on while the flow ran (the flows run one at a time, in a lab
    /// that sends nothing else): the veth's `rx_xdp_packets` in native mode, its
    /// `rx_packets` in generic mode.
    pub seen: u64,
    /// Frames the veth dropped before XDP ran (native mode: its receive ring was full).
    pub ring_drops: u64,
    /// Which way the flow's frames reach the program: `"forward"` (the sender's), `"reverse"`
    /// (the answers), or `"none"` (the interface is on neither end's side, nothing is bound).
    pub direction: &'static str,
    /// What the sockets say they put on the wire in that direction: a lower bound on `seen`
    /// plus `ring_drops`.
    pub sockets_sent: u64,
    /// What `sockets_sent` counts.
    pub counted: &'static str,
}

/// What a flow did, with the figures of its kind (JSON keys as documented in the README).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowReport {
    /// The flow's name.
    pub name: String,
    /// Its kind.
    pub kind: FlowKind,
    /// What it should have come to.
    pub expect: FlowExpect,
    /// What it came to.
    pub status: FlowStatus,
    /// Echoes sent (`ping`), transactions attempted (`*-rr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// Echo replies received (`ping`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    /// Echoes or transactions lost, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// Round-trip times of the echoes that came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<Percentiles>,
    /// What became of the connections (`tcp-connect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<Connections>,
    /// Bytes the receiver got (`tcp-stream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Whether every byte the receiver got is the byte sent at that offset (`tcp-stream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intact: Option<bool>,
    /// Bytes delivered per second, times 8 (`tcp-stream`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_bps: Option<f64>,
    /// Segments the sender retransmitted (`TCP_INFO`'s `tcpi_total_retrans`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    /// Transactions that completed (`*-rr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<u64>,
    /// Completed transactions per second (`*-rr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tps: Option<f64>,
    /// Latencies of the completed transactions (`*-rr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Percentiles>,
    /// Transactions that timed out or came back wrong (`*-rr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// Wall time of the flow, in milliseconds.
    pub duration_ms: u64,
    /// The same flow with no program, measured in the same run in a lab of its own (flows
    /// with a `min-goodput-ratio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Box<FlowReport>>,
    /// Goodput with the program over goodput with none (with a baseline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput_ratio: Option<f64>,
    /// The same flow with the bundled `xdp_pass` attached instead of the program, measured in
    /// the same run in a lab of its own (flows with `compare = ["xdp-pass"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_pass: Option<Box<FlowReport>>,
    /// The flow's figure with the program, with none and with `xdp_pass`, and their ratios
    /// (flows with `compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The frames of the flow the program saw, against what its sockets sent (live paths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<FlowFrames>,
    /// What the sockets put on the wire (not reported itself: see `frames`).
    #[serde(skip)]
    pub wire: Wire,
}

/// One figure of a flow in the labs it was compared in, measured in the same run: the
/// program under test's over each other lab's is its ratio. Higher is better for goodput and
/// transactions per second, lower for round-trip times.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Which figure: `"rtt_p50_us"` (ping), `"goodput_bps"` (tcp-stream), `"tps"` (*-rr),
    /// `"connect_per_s"` (tcp-connect: connections established per second of the flow).
    pub figure: &'static str,
    /// With the program under test.
    pub program: Option<f64>,
    /// With no program (`compare` has `"no-program"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_program: Option<f64>,
    /// With `xdp_pass` (`compare` has `"xdp-pass"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_pass: Option<f64>,
    /// `program / no_program`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_no_program: Option<f64>,
    /// `program / xdp_pass`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_xdp_pass: Option<f64>,
}

impl Comparison {
    /// The figure compared for `report`'s kind, as measured in `report`.
    fn figure_of(report: &FlowReport) -> (&'static str, Option<f64>) {
        #[expect(
            clippy::cast_precision_loss,
            reason = "microseconds and counts far below 2^52"
        )]
        match report.kind {
            FlowKind::Ping => ("rtt_p50_us", report.rtt_us.map(|r| r.p50 as f64)),
            FlowKind::TcpStream => ("goodput_bps", report.goodput_bps),
            FlowKind::UdpRr | FlowKind::TcpRr => ("tps", report.tps),
            FlowKind::TcpConnect => (
                "connect_per_s",
                report.connections.and_then(|c| {
                    (report.duration_ms > 0)
                        .then(|| c.established as f64 * 1000.0 / report.duration_ms as f64)
                }),
            ),
        }
    }

    /// The table lines of the human report: one per lab, with the ratio.
    pub fn lines(&self) -> Vec<String> {
        let (unit, scale) = match self.figure {
            "rtt_p50_us" => ("rtt p50 us", 1.0),
            "goodput_bps" => ("goodput Mbit/s", 1e-6),
            "tps" => ("transactions/s", 1.0),
            _ => ("connections/s", 1.0),
        };
        let cell =
            |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}", v * scale));
        let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let mut lines = vec![format!(
            "{:<12} {unit:>16} {:>22}",
            "lab", "under test / lab"
        )];
        if self.no_program.is_some() || self.ratio_no_program.is_some() {
            lines.push(format!(
                "{:<12} {:>16} {:>22}",
                "no program",
                cell(self.no_program),
                ratio(self.ratio_no_program)
            ));
        }
        if self.xdp_pass.is_some() || self.ratio_xdp_pass.is_some() {
            lines.push(format!(
                "{:<12} {:>16} {:>22}",
                "xdp_pass",
                cell(self.xdp_pass),
                ratio(self.ratio_xdp_pass)
            ));
        }
        lines.push(format!(
            "{:<12} {:>16} {:>22}",
            "under test",
            cell(self.program),
            ratio(self.program.map(|_| 1.0))
        ));
        lines
    }
}

/// Sets `xdp_pass` (the same flow with the bundled `xdp_pass`) into `report`.
pub fn with_xdp_pass(report: &mut FlowReport, xdp_pass: FlowReport) {
    report.xdp_pass = Some(Box::new(xdp_pass));
}

/// Fills `report.comparison` from the figures of `report`, its `baseline` and its
/// `xdp_pass` (those it has).
pub fn compare(report: &mut FlowReport) {
    let (figure, program) = Comparison::figure_of(report);
    let other = |r: &Option<Box<FlowReport>>| r.as_deref().and_then(|r| Comparison::figure_of(r).1);
    let (no_program, xdp_pass) = (other(&report.baseline), other(&report.xdp_pass));
    let ratio = |other: Option<f64>| match (program, other) {
        (Some(p), Some(o)) if o > 0.0 => Some(p / o),
        _ => None,
    };
    report.comparison = Some(Comparison {
        figure,
        program,
        no_program,
        xdp_pass,
        ratio_no_program: ratio(no_program),
        ratio_xdp_pass: ratio(xdp_pass),
    });
}

impl FlowReport {
    /// A report with no figures yet.
    pub fn empty(flow: &Flow, status: FlowStatus) -> Self {
        Self {
            name: flow.name.clone(),
            kind: flow.kind,
            expect: flow.expect,
            status,
            sent: None,
            received: None,
            loss_pct: None,
            rtt_us: None,
            connections: None,
            bytes: None,
            intact: None,
            goodput_bps: None,
            retransmits: None,
            transactions: None,
            tps: None,
            latency_us: None,
            errors: None,
            duration_ms: 0,
            baseline: None,
            goodput_ratio: None,
            xdp_pass: None,
            comparison: None,
            frames: None,
            wire: Wire::default(),
        }
    }

    /// The figures in one line, for the human report.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(sent), Some(received)) = (self.sent, self.received) {
            parts.push(format!("{received}/{sent} replies"));
        }
        if let Some(loss) = self.loss_pct {
            parts.push(format!("loss {loss:.1}%"));
        }
        if let Some(rtt) = self.rtt_us {
            parts.push(format!("rtt p50 {} us p99 {} us", rtt.p50, rtt.p99));
        }
        if let Some(c) = self.connections {
            parts.push(format!(
                "{} established, {} refused, {} timed out",
                c.established, c.refused, c.timed_out
            ));
        }
        if let Some(bytes) = self.bytes {
            parts.push(format!(
                "{bytes} B{}",
                match self.intact {
                    Some(false) if bytes > 0 => " (corrupted)",
                    _ => "",
                }
            ));
        }
        if let Some(g) = self.goodput_bps {
            parts.push(format!("{:.1} Mbit/s", g / 1e6));
        }
        if let Some(r) = self.retransmits {
            parts.push(format!("{r} retransmits"));
        }
        if let (Some(t), Some(sent)) = (self.transactions, self.sent) {
            parts.push(format!("{t}/{sent} transactions"));
        }
        if let Some(tps) = self.tps {
            parts.push(format!("{tps:.0} tps"));
        }
        if let Some(l) = self.latency_us {
            parts.push(format!(
                "latency p50 {} us p99 {} us p999 {} us",
                l.p50,
                l.p99,
                l.p999.unwrap_or(l.p99)
            ));
        }
        if let Some(e) = self.errors.filter(|e| *e > 0) {
            parts.push(format!("{e} errors"));
        }
        if let Some(f) = &self.frames {
            parts.push(format!(
                "{} frames at {} (sockets sent {} {}: {})",
                f.seen, f.at, f.sockets_sent, f.direction, f.counted
            ));
        }
        if let (Some(ratio), Some(base)) = (self.goodput_ratio, &self.baseline) {
            parts.push(format!(
                "{ratio:.2} x the goodput with no program ({:.1} Mbit/s)",
                base.goodput_bps.unwrap_or(0.0) / 1e6
            ));
        }
        parts.join(", ")
    }
}

/// Runs `flow` between `ends`, within [`Flow::deadline`].
pub fn run(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let start = std::time::Instant::now();
    let mut report = match flow.kind {
        FlowKind::Ping => ping::run(flow, ends)?,
        FlowKind::TcpConnect => tcp_connect::run(flow, ends)?,
        FlowKind::TcpStream => tcp_stream::run(flow, ends)?,
        FlowKind::UdpRr => rr::run_udp(flow, ends)?,
        FlowKind::TcpRr => rr::run_tcp(flow, ends)?,
    };
    report.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Sets `baseline` (the same flow with no program) into `report`, and the goodput ratio.
pub fn with_baseline(report: &mut FlowReport, baseline: FlowReport) {
    report.goodput_ratio = match (report.goodput_bps, baseline.goodput_bps) {
        (Some(with), Some(without)) if without > 0.0 => Some(with / without),
        _ => None,
    };
    report.baseline = Some(Box::new(baseline));
}

/// Why the program saw fewer of `report`'s frames than its sockets put on the wire toward
/// it, or `None` when it saw at least as many (or `report` has no frame count).
pub fn reconcile(flow: &Flow, report: &FlowReport) -> Option<String> {
    let f = report.frames.as_ref()?;
    (f.seen + f.ring_drops < f.sockets_sent).then(|| {
        format!(
            "flow {:?} ({}): the program at {} ran on {} frame(s) ({} more dropped before it \
             by the veth) while the flow's sockets put {} on the wire toward it ({})",
            flow.name, flow.kind, f.at, f.seen, f.ring_drops, f.sockets_sent, f.counted
        )
    })
}

/// Why `report` does not meet its flow's expectation, or `None` when it does.
pub fn judge(flow: &Flow, report: &FlowReport) -> Option<String> {
    let ok = match (flow.expect, report.status) {
        (_, FlowStatus::Skip) => true,
        (FlowExpect::Complete, FlowStatus::Complete)
        | (FlowExpect::Blocked, FlowStatus::Blocked) => true,
        (FlowExpect::Complete, FlowStatus::Partial) => flow
            .max_loss
            .zip(report.loss_pct)
            .is_some_and(|(max, loss)| loss <= max),
        _ => false,
    };
    if ok
        && let Some(min) = flow.min_goodput_ratio
        && report.status == FlowStatus::Complete
    {
        let ratio = report.goodput_ratio.unwrap_or(0.0);
        if ratio < min {
            return Some(format!(
                "flow {:?} ({}): goodput is {ratio:.2} x the same flow with no program, below \
                 min-goodput-ratio {min}: {}",
                flow.name,
                flow.kind,
                report.summary()
            ));
        }
    }
    if ok {
        return None;
    }
    let bound = match flow.max_loss {
        Some(max) if flow.expect == FlowExpect::Complete => format!(" (max-loss {max}%)"),
        _ => String::new(),
    };
    Some(format!(
        "flow {:?} ({}): expected {}{bound}, got {}: {}",
        flow.name,
        flow.kind,
        flow.expect,
        report.status,
        report.summary()
    ))
}

/// `TCP_INFO` of `stream`.
fn tcp_info(stream: &std::net::TcpStream) -> Option<libc::tcp_info> {
    // SAFETY: tcp_info is plain data; zeroes are a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: the buffer and its length are valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(info)
}

/// `tcpi_segs_out` of `stream` (segments it sent, retransmissions, ACKs and the SYN
/// included), 0 if it cannot be read.
fn segs_out(stream: &std::net::TcpStream) -> u64 {
    tcp_info(stream).map_or(0, |i| u64::from(i.tcpi_segs_out))
}

/// Loss in percent of `lost` out of `of`.
#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
fn loss_pct(got: u64, of: u64) -> f64 {
    if of == 0 {
        return 0.0;
    }
    (of.saturating_sub(got)) as f64 * 100.0 / of as f64
}

/// Microseconds in `d`, saturated.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Whether a flow's loop must stop: its deadline passed, or SIGINT/SIGTERM asked the run to
/// stop (a flow may otherwise run for its whole duration after the signal).
pub(crate) fn past(deadline: std::time::Instant) -> bool {
    std::time::Instant::now() >= deadline || crate::interrupt::requested().is_some()
}

/// Waits until `fd` is readable, at most `timeout`; whether it is.
fn wait_readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    poll_one(fd.as_raw_fd(), libc::POLLIN, timeout)
}

fn poll_one(fd: RawFd, events: libc::c_short, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    n > 0 && pfd.revents & events != 0
}

/// Runs `f` on a thread in `ns` and maps the namespace error.
fn in_ns<T: Send>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> Result<T, FlowError> {
    Ok(ns.run(f)?)
}

/// An I/O error of `flow`.
fn io<'a>(flow: &'a Flow, what: &'static str) -> impl FnOnce(std::io::Error) -> FlowError + 'a {
    move |source| FlowError::Io {
        flow: flow.name.clone(),
        what,
        source,
    }
}

/// The pattern's period: a prime longer than any write or read, so a duplicated, reordered or
/// shifted segment (by anything but a multiple of it) does not line up with what should be
/// there.
const PERIOD: usize = 65_521;

/// Two periods of the pattern, so that any run of up to [`PERIOD`] bytes from any offset is
/// one slice: writing and checking are copies and comparisons, fast in any build.
fn pattern_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..2 * PERIOD)
            .map(|i| {
                let i = (i % PERIOD) as u64;
                #[expect(clippy::cast_possible_truncation, reason = "the low byte is the point")]
                let b = (i ^ (i >> 8) ^ (i >> 13)).wrapping_mul(31) as u8;
                b
            })
            .collect()
    })
}

/// The `len` bytes of the stream from `offset` (`len` at most [`PERIOD`]).
fn pattern(offset: u64, len: usize) -> &'static [u8] {
    let start = usize::try_from(offset % PERIOD as u64).expect("below PERIOD");
    &pattern_table()[start..start + len.min(PERIOD)]
}

/// A byte of the stream at `offset`.
fn pattern_byte(offset: u64) -> u8 {
    pattern(offset, 1)[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let p = Percentiles::of(&mut samples, true).expect("samples");
        assert_eq!((p.p50, p.p99, p.p999), (500, 990, Some(999)));
        assert_eq!(Percentiles::of(&mut [], false), None);
    }

    #[test]
    fn judging_compares_status_and_loss_bound() {
        let mut flow = Flow::new("p", FlowKind::Ping);
        let mut report = FlowReport::empty(&flow, FlowStatus::Complete);
        assert_eq!(judge(&flow, &report), None);
        report.status = FlowStatus::Partial;
        report.loss_pct = Some(10.0);
        assert!(judge(&flow, &report).is_some());
        flow.max_loss = Some(10.0);
        assert_eq!(judge(&flow, &report), None);
        flow.expect = FlowExpect::Blocked;
        assert!(judge(&flow, &report).is_some());
        report.status = FlowStatus::Blocked;
        assert_eq!(judge(&flow, &report), None);
    }

    #[test]
    fn a_goodput_below_the_ratio_fails_a_complete_stream() {
        let mut flow = Flow::new("s", FlowKind::TcpStream);
        flow.min_goodput_ratio = Some(0.5);
        let mut report = FlowReport::empty(&flow, FlowStatus::Complete);
        report.goodput_bps = Some(40.0);
        let mut base = FlowReport::empty(&flow, FlowStatus::Complete);
        base.goodput_bps = Some(100.0);
        with_baseline(&mut report, base.clone());
        assert!(judge(&flow, &report).is_some_and(|f| f.contains("0.40 x")));
        report.goodput_bps = Some(60.0);
        with_baseline(&mut report, base);
        assert_eq!(judge(&flow, &report), None);
    }

    #[test]
    fn a_comparison_divides_the_program_by_each_lab() {
        let flow = Flow::new("r", FlowKind::TcpRr);
        let with_tps = |tps: f64| {
            let mut r = FlowReport::empty(&flow, FlowStatus::Complete);
            r.tps = Some(tps);
            r
        };
        let mut report = with_tps(50.0);
        with_baseline(&mut report, with_tps(100.0));
        with_xdp_pass(&mut report, with_tps(80.0));
        compare(&mut report);
        let c = report.comparison.expect("compared");
        assert_eq!(c.figure, "tps");
        assert_eq!(
            (c.ratio_no_program, c.ratio_xdp_pass),
            (Some(0.5), Some(0.625))
        );
        assert_eq!(c.lines().len(), 4);
    }

    #[test]
    fn fewer_frames_at_the_program_than_the_sockets_sent_is_a_failure() {
        let flow = Flow::new("p", FlowKind::Ping);
        let mut report = FlowReport::empty(&flow, FlowStatus::Complete);
        assert_eq!(reconcile(&flow, &report), None);
        let mut frames = FlowFrames {
            at: "receiver:rx".into(),
            seen: 19,
            ring_drops: 0,
            direction: "forward",
            sockets_sent: 20,
            counted: "echo requests sent",
        };
        report.frames = Some(frames.clone());
        let failure = reconcile(&flow, &report).expect("a failure");
        assert!(
            failure.contains("ran on 19 frame(s)") && failure.contains("put 20 on the wire"),
            "{failure}"
        );
        // Dropped by the veth's ring before XDP: the program could not see them.
        frames.ring_drops = 1;
        report.frames = Some(frames.clone());
        assert_eq!(reconcile(&flow, &report), None);
        frames.ring_drops = 0;
        frames.seen = 25;
        report.frames = Some(frames);
        assert_eq!(reconcile(&flow, &report), None);
    }

    #[test]
    fn kinds_read_back() {
        for name in FlowKind::NAMES {
            assert_eq!(name.parse::<FlowKind>().expect(name).to_string(), name);
        }
        assert!("icmp".parse::<FlowKind>().is_err());
    }
}
