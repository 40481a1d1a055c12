//! `tcp-connect`: connections from the sending namespace to a listener in the receiving one,
//! each handshake established, refused (a reset came back) or timed out (nothing did).
//!
//! The listener accepts and closes on a thread of its own until the connections are done;
//! the connections are opened [`BATCH`] at a time, each on a thread spawned by a thread set
//! into the sending namespace (spawned threads share their parent's namespace), each with
//! the flow's timeout.

use std::{
    io::ErrorKind,
    net::{TcpListener, TcpStream},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use super::{Connections, Ends, Flow, FlowError, FlowReport, FlowStatus, in_ns, io};

/// Connections opened at once.
pub const BATCH: usize = 64;

/// A listener in `ns` on `port` of every address, non-blocking.
pub(super) fn listen(
    flow: &Flow,
    ns: &crate::kernel::netns::NetNs,
    addr: std::net::SocketAddr,
) -> Result<TcpListener, FlowError> {
    let listener = in_ns(ns, move || TcpListener::bind(addr))?
        .map_err(io(flow, "listen in the receiving namespace"))?;
    listener
        .set_nonblocking(true)
        .map_err(io(flow, "make the listener non-blocking"))?;
    Ok(listener)
}

/// Accepts connections on `listener` until `stop` is set, handing each to `serve`.
pub(super) fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    deadline: Instant,
    mut serve: impl FnMut(TcpStream),
) {
    while !stop.load(Ordering::Acquire) && !super::past(deadline) {
        if !super::wait_readable(listener, Duration::from_millis(20)) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                // Accepted sockets inherit O_NONBLOCK on Linux only through accept4 flags;
                // std's accept does not set it, but be explicit for the servers that read.
                let _ = stream.set_nonblocking(false);
                serve(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Opens `flow.connections` connections and counts what became of them.
pub fn run(flow: &Flow, ends: &Ends<'_>) -> Result<FlowReport, FlowError> {
    let deadline = Instant::now() + flow.deadline();
    let addr = ends.addr(flow.port);
    let listener = listen(flow, ends.to, addr)?;
    let stop = AtomicBool::new(false);
    let connections = std::thread::scope(|scope| {
        scope.spawn(|| accept_loop(&listener, &stop, deadline, drop));
        let counted = in_ns(ends.from, || {
            let mut c = Connections::default();
            let mut attempted = 0u64;
            let mut left = flow.connections as usize;
            while left > 0 {
                let batch = left.min(BATCH);
                left -= batch;
                let now = Instant::now();
                if now >= deadline || crate::interrupt::requested().is_some() {
                    c.timed_out += batch as u64;
                    continue;
                }
                let timeout = flow.timeout.min(deadline - now);
                attempted += batch as u64;
                let results: Vec<_> = std::thread::scope(|inner| {
                    let handles: Vec<_> = (0..batch)
                        .map(|_| inner.spawn(move || TcpStream::connect_timeout(&addr, timeout)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                        .collect()
                });
                for result in results {
                    match result {
                        Ok(_) => c.established += 1,
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => c.refused += 1,
                        Err(_) => c.timed_out += 1,
                    }
                }
            }
            (c, attempted)
        });
        stop.store(true, Ordering::Release);
        counted
    })?;
    let (connections, attempted) = connections;
    let mut report = FlowReport::empty(
        flow,
        FlowStatus::of(connections.established, u64::from(flow.connections)),
    );
    report.connections = Some(connections);
    report.wire = super::Wire {
        forward: attempted,
        forward_what: "connections attempted (a SYN each)",
        reverse: connections.established + connections.refused,
        reverse_what: "handshakes answered (a SYN-ACK or a reset each)",
    };
    Ok(report)
}
