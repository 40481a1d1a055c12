//! `tcp-stream`: one TCP stream from the sending namespace to a listener in the receiving one,
//! `bytes` long (or for `duration`, at most `bytes`), every byte checked at the receiver
//! against what was sent at that offset. Goodput is what the receiver got over the time from
//! its accept to the stream's end; retransmissions are the sender's `TCP_INFO`
//! `tcpi_total_retrans`.

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
    while Instant::now() < deadline && got.bytes < Flow::MAX_BYTES {
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

/// Sends the stream and reports what arrived.
pub fn run(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let deadline = Instant::now() + flow.deadline();
    let addr = ends.addr(flow.port);
    let listener = super::tcp_connect::listen(flow, ends.to, addr)?;
    let stop = AtomicBool::new(false);
    let received: Mutex<Option<Received>> = Mutex::new(None);
    let retrans = std::thread::scope(|scope| {
        scope.spawn(|| {
            super::tcp_connect::accept_loop(&listener, &stop, deadline, |stream| {
                let got = receive(stream, flow, deadline);
                *received.lock().expect("not poisoned") = Some(got);
                stop.store(true, Ordering::Release);
            });
        });
        let sent = in_ns(ends.from, || {
            let Ok(mut stream) = TcpStream::connect_timeout(&addr, flow.timeout) else {
                return None;
            };
            let _ = stream.set_write_timeout(Some(flow.timeout));
            let write_size = flow.size.clamp(1, PERIOD);
            let mut offset = 0u64;
            let until = flow.duration.map(|d| Instant::now() + d);
            while offset < flow.bytes
                && Instant::now() < deadline
                && until.is_none_or(|u| Instant::now() < u)
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
            Some((
                info.map(|i| u64::from(i.tcpi_total_retrans)),
                info.map_or(0, |i| u64::from(i.tcpi_segs_out)),
            ))
        });
        if sent.as_ref().is_ok_and(Option::is_none) {
            // Never connected: nothing to accept.
            stop.store(true, Ordering::Release);
        }
        sent
    })?;
    let got = received
        .into_inner()
        .expect("not poisoned")
        .unwrap_or_default();
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
    report.retransmits = retrans.and_then(|(r, _)| r);
    report.wire = super::Wire {
        // A connection never made still sent its SYN.
        forward: retrans.map_or(1, |(_, segs)| segs),
        forward_what: "the sender's TCP_INFO segs_out (one SYN if it never connected)",
        reverse: got.segs_out,
        reverse_what: "the receiver's TCP_INFO segs_out",
    };
    Ok(report)
}
