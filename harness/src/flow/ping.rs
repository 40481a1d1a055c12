//! `ping`: ICMP (or ICMPv6) echo requests from the sending namespace's stack, answered by the
//! receiving namespace's stack, as `ping -c COUNT -i INTERVAL -s SIZE` does.
//!
//! The requests go out of an ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)`, the one unprivileged `ping` uses): the kernel fills in the identifier and
//! the checksum and hands back only this socket's replies. It needs the sender namespace's
//! `net.ipv4.ping_group_range` to include our group, which is set there (a per-namespace
//! sysctl, never the host's). The lab keeps echo replies off in every namespace (they would
//! carry a send group's tag back into the lab); the receiving namespace answers for the
//! flow's time only.

use std::{
    net::UdpSocket,
    os::fd::FromRawFd as _,
    time::{Duration, Instant},
};

use super::{Ends, Flow, FlowError, FlowReport, FlowStatus, Percentiles, in_ns, io, loss_pct};

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// Sets `key` under /proc/sys/net to `value` on the calling thread's namespace; returns the
/// old value.
fn swap_sysctl(key: &str, value: &str) -> std::io::Result<String> {
    let path = format!("/proc/sys/{key}");
    let old = std::fs::read_to_string(&path)?;
    std::fs::write(&path, value)?;
    Ok(old.trim().to_owned())
}

/// Echo replies on in the receiving namespace while it lives; back to what they were after.
struct Answering<'a> {
    ns: &'a crate::kernel::netns::NetNs,
    key: &'static str,
    old: String,
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        let (key, old) = (self.key, self.old.clone());
        match self.ns.run(move || swap_sysctl(key, &old)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("failed to restore {key} in {}: {e}", self.ns.label()),
            Err(e) => eprintln!("failed to restore {key}: {e}"),
        }
    }
}

/// Sends `flow.count` echo requests `flow.interval` apart and collects the replies.
pub fn run(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let v6 = ends.dst.is_ipv6();
    let key = if v6 {
        "net/ipv6/icmp/echo_ignore_all"
    } else {
        "net/ipv4/icmp_echo_ignore_all"
    };
    let old = in_ns(ends.to, move || swap_sysctl(key, "0"))?
        .map_err(io(flow, "turn echo replies on in the receiving namespace"))?;
    let _answering = Answering {
        ns: ends.to,
        key,
        old,
    };
    let socket = in_ns(ends.from, move || -> std::io::Result<UdpSocket> {
        swap_sysctl("net/ipv4/ping_group_range", "0 2147483647")?;
        let (domain, proto) = if v6 {
            (libc::AF_INET6, libc::IPPROTO_ICMPV6)
        } else {
            (libc::AF_INET, libc::IPPROTO_ICMP)
        };
        // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket below.
        let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh datagram socket nothing else owns; UdpSocket's calls (send_to,
        // recv_from, timeouts) are plain datagram socket calls.
        Ok(unsafe { UdpSocket::from_raw_fd(fd) })
    })?
    .map_err(io(
        flow,
        "open an ICMP datagram socket in the sending namespace",
    ))?;
    let deadline = Instant::now() + flow.deadline();
    let dst = ends.addr(0);
    let (request, reply) = if v6 {
        (ECHO_REQUEST_V6, ECHO_REPLY_V6)
    } else {
        (ECHO_REQUEST_V4, ECHO_REPLY_V4)
    };
    let mut sent_at: Vec<Option<Instant>> = vec![None; flow.count as usize];
    let mut got = vec![false; flow.count as usize];
    let mut rtts = Vec::new();
    let mut buf = vec![0u8; flow.size + 64];
    let mut packet = vec![0u8; 8 + flow.size];
    for (i, b) in packet[8..].iter_mut().enumerate() {
        *b = super::pattern_byte(i as u64);
    }
    packet[0] = request;
    let payload = packet[8..].to_vec();
    let mut receive_until = |until: Instant, rtts: &mut Vec<u64>, sent_at: &[Option<Instant>]| {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let wait = (until - now).max(Duration::from_millis(1));
            if socket.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                return;
            };
            let at = Instant::now();
            if n < 8 || buf[0] != reply {
                continue;
            }
            let seq = usize::from(u16::from_be_bytes([buf[6], buf[7]]));
            if let Some(Some(sent)) = sent_at.get(seq)
                && !got[seq]
                && buf[8..n] == payload[..]
            {
                got[seq] = true;
                rtts.push(super::micros(at - *sent));
            }
        }
    };
    let mut sent = 0u64;
    let start = Instant::now();
    for seq in 0..flow.count as usize {
        if super::past(deadline) {
            break;
        }
        // At most Flow::MAX_COUNT (65535) requests: the sequence number fits.
        let seq16 = u16::try_from(seq).unwrap_or(u16::MAX);
        packet[6..8].copy_from_slice(&seq16.to_be_bytes());
        if socket.send_to(&packet, dst).is_ok() {
            sent_at[seq] = Some(Instant::now());
            sent += 1;
        }
        let next = start
            + flow
                .interval
                .saturating_mul(u32::try_from(seq + 1).unwrap_or(u32::MAX));
        receive_until(next.min(deadline), &mut rtts, &sent_at);
    }
    // The last replies: at most one timeout after the last request.
    let received = |rtts: &Vec<u64>| rtts.len() as u64;
    if received(&rtts) < sent {
        receive_until(
            (Instant::now() + flow.timeout).min(deadline),
            &mut rtts,
            &sent_at,
        );
    }
    let received = received(&rtts);
    let mut report = FlowReport::empty(
        flow,
        FlowStatus::of(received, sent.max(u64::from(flow.count))),
    );
    report.sent = Some(sent);
    report.received = Some(received);
    report.loss_pct = Some(loss_pct(received, sent));
    report.rtt_us = Percentiles::of(&mut rtts, false);
    report.wire = super::Wire {
        forward: sent,
        forward_what: "echo requests sent",
        reverse: received,
        reverse_what: "echo replies received",
    };
    Ok(report)
}
