//! `udp-rr` and `tcp-rr`: request/response transactions, one at a time, as netperf's
//! `UDP_RR`/`TCP_RR` (and, for one connection, what wrk measures of an HTTP server): the
//! sender writes `size` bytes carrying the transaction's number, the receiver's echo server
//! sends them back, and the sender checks the answer. A transaction that times out or comes
//! back wrong is an error; after [`Flow::GIVE_UP_AFTER`] errors in a row with none completed
//! the flow stops (it is blocked, and more timeouts would say nothing more).

use std::{
    io::{Read, Write},
    net::{TcpStream, UdpSocket},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use super::{Ends, Flow, FlowError, FlowReport, FlowStatus, Percentiles, in_ns, io, loss_pct};

/// The request of transaction `n`: its number, then the pattern.
fn request(n: u32, size: usize) -> Vec<u8> {
    let mut r: Vec<u8> = (0..size.max(4) as u64).map(super::pattern_byte).collect();
    r[..4].copy_from_slice(&n.to_be_bytes());
    r
}

/// What the transactions came to.
struct Tally {
    attempted: u64,
    completed: u64,
    latencies: Vec<u64>,
    seconds: f64,
}

/// Runs transactions with `one` (which says whether transaction `n` completed) until the count,
/// the deadline or too many errors in a row.
fn transactions(flow: &Flow, deadline: Instant, mut one: impl FnMut(u32) -> bool) -> Tally {
    let start = Instant::now();
    let mut tally = Tally {
        attempted: 0,
        completed: 0,
        latencies: Vec::new(),
        seconds: 0.0,
    };
    let mut failing = 0;
    for n in 0..flow.count {
        if super::past(deadline) || (tally.completed == 0 && failing >= Flow::GIVE_UP_AFTER) {
            break;
        }
        tally.attempted += 1;
        let at = Instant::now();
        if one(n) {
            tally.latencies.push(super::micros(at.elapsed()));
            tally.completed += 1;
            failing = 0;
        } else {
            failing += 1;
        }
    }
    tally.seconds = start.elapsed().as_secs_f64();
    tally
}

fn report(flow: &Flow, mut tally: Tally, wire: super::Wire) -> FlowReport {
    let mut report =
        FlowReport::empty(flow, FlowStatus::of(tally.completed, u64::from(flow.count)));
    report.sent = Some(tally.attempted);
    report.transactions = Some(tally.completed);
    report.errors = Some(tally.attempted - tally.completed);
    report.loss_pct = Some(loss_pct(tally.completed, u64::from(flow.count)));
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let tps = if tally.seconds > 0.0 {
        tally.completed as f64 / tally.seconds
    } else {
        0.0
    };
    report.tps = Some(tps);
    report.latency_us = Percentiles::of(&mut tally.latencies, true);
    report.wire = wire;
    report
}

/// UDP transactions to an echo server in the receiving namespace.
pub fn run_udp(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let deadline = Instant::now() + flow.deadline();
    let addr = ends.addr(flow.port);
    let server = in_ns(ends.to, move || UdpSocket::bind(addr))?
        .map_err(io(flow, "bind a UDP socket in the receiving namespace"))?;
    server
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(io(flow, "set the server's timeout"))?;
    let unspecified = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let client = in_ns(ends.from, move || UdpSocket::bind(unspecified))?
        .map_err(io(flow, "bind a UDP socket in the sending namespace"))?;
    client
        .connect(addr)
        .map_err(io(flow, "connect the UDP socket"))?;
    client
        .set_read_timeout(Some(flow.timeout))
        .map_err(io(flow, "set the client's timeout"))?;
    let stop = AtomicBool::new(false);
    let answered = AtomicU64::new(0);
    let tally = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = vec![0u8; Flow::MAX_SIZE + 64];
            while !stop.load(Ordering::Acquire) && !super::past(deadline) {
                if let Ok((n, peer)) = server.recv_from(&mut buf)
                    && server.send_to(&buf[..n], peer).is_ok()
                {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let mut buf = vec![0u8; Flow::MAX_SIZE + 64];
        let tally = transactions(flow, deadline, |n| {
            let req = request(n, flow.size);
            if client.send(&req).is_err() {
                return false;
            }
            let until = Instant::now() + flow.timeout;
            // Skip late answers to earlier transactions.
            while Instant::now() < until {
                match client.recv(&mut buf) {
                    Ok(len) if buf[..len] == req[..] => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
            false
        });
        stop.store(true, Ordering::Release);
        tally
    });
    let wire = super::Wire {
        forward: tally.attempted,
        forward_what: "requests sent",
        reverse: answered.into_inner(),
        reverse_what: "answers the server sent",
    };
    Ok(report(flow, tally, wire))
}

/// TCP transactions on one connection to an echo server in the receiving namespace.
pub fn run_tcp(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let deadline = Instant::now() + flow.deadline();
    let addr = ends.addr(flow.port);
    let listener = super::tcp_connect::listen(flow, ends.to, addr)?;
    let stop = AtomicBool::new(false);
    let server_segs = AtomicU64::new(0);
    let tally = std::thread::scope(|scope| {
        scope.spawn(|| {
            super::tcp_connect::accept_loop(&listener, &stop, deadline, |mut stream| {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                let mut buf = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::Acquire) && !super::past(deadline) {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                }
                server_segs.fetch_add(super::segs_out(&stream), Ordering::Relaxed);
            });
        });
        let tally = in_ns(ends.from, || {
            let connected = TcpStream::connect_timeout(&addr, flow.timeout);
            let mut stream = connected.ok();
            if let Some(s) = &stream {
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(flow.timeout));
                let _ = s.set_write_timeout(Some(flow.timeout));
            }
            let mut buf = vec![0u8; flow.size.max(4)];
            let mut client_segs = None;
            let tally = transactions(flow, deadline, |n| {
                let Some(s) = stream.as_mut() else {
                    return false;
                };
                let req = request(n, flow.size);
                let ok = s.write_all(&req).is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && buf[..] == req[..];
                if !ok {
                    // A stream out of step cannot be trusted for the next transaction.
                    client_segs = Some(super::segs_out(s));
                    stream = None;
                }
                ok
            });
            // A connection never made still sent its SYN.
            let segs = stream
                .as_ref()
                .map(super::segs_out)
                .or(client_segs)
                .unwrap_or(1);
            (tally, segs)
        });
        stop.store(true, Ordering::Release);
        tally
    })?;
    let (tally, client_segs) = tally;
    let wire = super::Wire {
        forward: client_segs,
        forward_what: "the client's TCP_INFO segs_out (one SYN if it never connected)",
        reverse: server_segs.into_inner(),
        reverse_what: "the server's TCP_INFO segs_out",
    };
    Ok(report(flow, tally, wire))
}
