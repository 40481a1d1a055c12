//! `tcp-stream`: one TCP stream over a connection from the sending namespace to a listener in
//! the receiving one, the data going to the listener (or, with [`Flow::reverse`], from it back
//! to the connecting end, as `iperf3 -R`), `bytes` long (or for `duration`, at most `bytes`),
//! every byte checked at the receiver against what was sent at that offset. Goodput is what
//! the receiver got over the time from its accept (or connect) to the stream's end;
//! retransmissions are the data sender's `TCP_INFO` `tcpi_total_retrans`.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpStream},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use super::{Ends, Flow, FlowError, FlowReport, FlowStatus, PERIOD, in_ns, pattern};

/// What the receiving end got.
#[derive(Default)]
struct Received {
    bytes: u64,
    intact: bool,
    seconds: f64,
    /// The receiving socket's `tcpi_segs_out` (its ACKs), read before it closed.
    segs_out: u64,
}

fn receive(mut stream: TcpStream, flow: &Flow, deadline: Instant) -> Received {
    let start = Instant::now();
    let mut got = Received {
        intact: true,
        ..Received::default()
    };
    let mut buf = vec![0u8; 64 * 1024];
    let _ = stream.set_read_timeout(Some(flow.timeout));
    while !super::past(deadline) && got.bytes < Flow::MAX_BYTES {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if got.intact {
                    got.intact = buf[..n].chunks(PERIOD).enumerate().all(|(i, piece)| {
                        piece == pattern(got.bytes + (i * PERIOD) as u64, piece.len())
                    });
                }
                got.bytes += n as u64;
            }
        }
    }
    got.seconds = start.elapsed().as_secs_f64();
    got.segs_out = super::segs_out(&stream);
    got
}

/// What the sending end saw of its stream.
#[derive(Clone, Copy)]
struct Sent {
    /// `tcpi_total_retrans`.
    retransmits: Option<u64>,
    /// `tcpi_segs_out`.
    segs_out: u64,
}

/// Writes the stream on `stream`, shuts its side down and waits (bounded) for the receiver
/// to close.
fn send(mut stream: TcpStream, flow: &Flow, deadline: Instant) -> Sent {
    let _ = stream.set_write_timeout(Some(flow.timeout));
    let write_size = flow.size.clamp(1, PERIOD);
    let mut offset = 0u64;
    let until = flow.duration.map(|d| Instant::now() + d);
    while offset < flow.bytes && !super::past(deadline) && until.is_none_or(|u| Instant::now() < u)
    {
        let n = write_size.min(usize::try_from(flow.bytes - offset).unwrap_or(usize::MAX));
        if stream.write_all(pattern(offset, n)).is_err() {
            break;
        }
        offset += n as u64;
    }
    let _ = stream.shutdown(Shutdown::Write);
    // The receiver closes once it has read everything: wait for that, bounded.
    let _ = stream.set_read_timeout(Some(flow.timeout));
    let mut sink = [0u8; 1];
    let _ = stream.read(&mut sink);
    let info = super::tcp_info(&stream);
    Sent {
        retransmits: info.map(|i| u64::from(i.tcpi_total_retrans)),
        segs_out: info.map_or(0, |i| u64::from(i.tcpi_segs_out)),
    }
}

/// Sends the stream (from the connecting end, or with `reverse` from the listening end) and
/// reports what arrived.
pub fn run(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let deadline = Instant::now() + flow.deadline();
    let addr = ends.addr(flow.port);
    let listener = super::tcp_connect::listen(flow, ends.to, addr)?;
    let stop = AtomicBool::new(false);
    // The listening end's side: what it received, or what it sent (reverse).
    let served: Mutex<(Option<Received>, Option<Sent>)> = Mutex::new((None, None));
    let client = std::thread::scope(|scope| {
        scope.spawn(|| {
            super::tcp_connect::accept_loop(&listener, &stop, deadline, |stream| {
                let mut served = served.lock().expect("not poisoned");
                if flow.reverse {
                    served.1 = Some(send(stream, flow, deadline));
                } else {
                    served.0 = Some(receive(stream, flow, deadline));
                }
                stop.store(true, Ordering::Release);
            });
        });
        let client = in_ns(ends.from, || {
            let stream = TcpStream::connect_timeout(&addr, flow.timeout).ok()?;
            Some(if flow.reverse {
                (Some(receive(stream, flow, deadline)), None)
            } else {
                (None, Some(send(stream, flow, deadline)))
            })
        });
        if client.as_ref().is_ok_and(Option::is_none) {
            // Never connected: nothing to accept.
            stop.store(true, Ordering::Release);
        }
        client
    })?;
    let (served_got, served_sent) = served.into_inner().expect("not poisoned");
    let (client_got, client_sent) = client.unwrap_or((None, None));
    // Segments each socket sent; a connection never made still sent its SYN.
    let client_segs = match (client_got.as_ref(), client_sent) {
        (Some(got), _) => got.segs_out,
        (None, Some(sent)) => sent.segs_out,
        (None, None) => 1,
    };
    let served_segs = served_got
        .as_ref()
        .map(|g| g.segs_out)
        .or(served_sent.map(|s| s.segs_out))
        .unwrap_or(0);
    let (received, sent) = if flow.reverse {
        (client_got, served_sent)
    } else {
        (served_got, client_sent)
    };
    let got = received.unwrap_or_default();
    let complete =
        got.intact && got.bytes > 0 && (flow.duration.is_some() || got.bytes >= flow.bytes);
    let status = if complete {
        FlowStatus::Complete
    } else if got.bytes == 0 {
        FlowStatus::Blocked
    } else {
        FlowStatus::Partial
    };
    let mut report = FlowReport::empty(flow, status);
    report.bytes = Some(got.bytes);
    report.intact = Some(got.intact && got.bytes > 0);
    #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
    let goodput = if got.seconds > 0.0 {
        got.bytes as f64 * 8.0 / got.seconds
    } else {
        0.0
    };
    report.goodput_bps = Some(goodput);
    report.retransmits = sent.and_then(|s| s.retransmits);
    report.wire = super::Wire {
        forward: client_segs,
        forward_what: "the connecting end's TCP_INFO segs_out (one SYN if it never connected)",
        reverse: served_segs,
        reverse_what: "the listening end's TCP_INFO segs_out",
    };
    Ok(report)
}
