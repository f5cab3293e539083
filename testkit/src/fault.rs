//! A TCP proxy on loopback that breaks one connection on purpose: cut after N bytes, cut or
//! stall when a phase of the protocol shows on the wire (a command the client sends, a
//! response the server sends). The fault fires once, on the first connection that reaches it;
//! every connection after (a reconnection) passes clean, so a test sees both the failure and
//! the recovery. Plain IMAP only (the proxy reads the bytes).
//!
//! Bounded like every test server here: a stalled connection is cut after `stall_for`, and
//! the listener stops when the proxy is dropped.

use anyhow::Result;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (commands, APPEND literals).
    ToServer,
    /// Server to client (responses, FETCH literals).
    ToClient,
}

/// What to do, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Cut the connection after this many bytes went this way.
    CutAfter {
        /// Which way is counted.
        direction: Direction,
        /// Bytes forwarded before the cut.
        bytes: u64,
    },
    /// Cut when `pattern` goes this way, after forwarding `then` bytes from its start (0: the
    /// pattern itself is not forwarded).
    CutAt {
        /// Which way is watched.
        direction: Direction,
        /// The bytes that mark the phase (`b"APPEND"`, `b"* LIST"`, `b"BODY[] {"`).
        pattern: Vec<u8>,
        /// Bytes forwarded from the pattern's start before the cut.
        then: usize,
    },
    /// Insert `bytes` just before `pattern` the first time it goes this way: a server's
    /// unsolicited response in the middle of an answer.
    InjectBefore {
        /// Which way is watched.
        direction: Direction,
        /// Where to insert.
        pattern: Vec<u8>,
        /// What to insert.
        bytes: Vec<u8>,
    },
    /// Stop forwarding either way when `pattern` goes this way (after `then` bytes), as a
    /// server that hangs: nothing moves until the client gives up or `stall_for` passes.
    StallAt {
        /// Which way is watched.
        direction: Direction,
        /// The phase.
        pattern: Vec<u8>,
        /// Bytes forwarded from the pattern's start before the stall.
        then: usize,
        /// How long the stalled connection is held before it is cut.
        stall_for: Duration,
    },
}

impl Fault {
    fn direction(&self) -> Direction {
        match self {
            Fault::CutAfter { direction, .. }
            | Fault::CutAt { direction, .. }
            | Fault::StallAt { direction, .. }
            | Fault::InjectBefore { direction, .. } => *direction,
        }
    }
}

struct Shared {
    target: u16,
    fault: Fault,
    armed: AtomicBool,
    connections: AtomicUsize,
    stop: AtomicBool,
}

/// A running proxy.
pub struct FaultProxy {
    /// The port to connect to instead of the target's.
    pub port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`, with `fault` armed.
    pub fn start(target: u16, fault: Fault) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            target,
            fault,
            armed: AtomicBool::new(true),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", s.target)) else {
                            continue;
                        };
                        s.connections.fetch_add(1, Ordering::SeqCst);
                        connect(client, server, s.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(FaultProxy { port, shared })
    }

    /// Whether the fault happened.
    pub fn fired(&self) -> bool {
        !self.shared.armed.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (a reconnection shows as one more).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Both sockets of one proxied connection, to cut it from either pump.
struct Pair {
    client: TcpStream,
    server: TcpStream,
    cut: AtomicBool,
    stalled: AtomicBool,
}

impl Pair {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

fn connect(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let pair = Arc::new(Pair {
        client: c3,
        server: s3,
        cut: AtomicBool::new(false),
        stalled: AtomicBool::new(false),
    });
    let (p1, sh1) = (pair.clone(), shared.clone());
    std::thread::spawn(move || pump(client, s2, Direction::ToServer, &p1, &sh1));
    std::thread::spawn(move || pump(server, c2, Direction::ToClient, &pair, &shared));
}

/// Copies `from` to `to`, applying the fault when it is this direction's and still armed.
fn pump(mut from: TcpStream, mut to: TcpStream, dir: Direction, pair: &Pair, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    // The last bytes seen, so a pattern split across two reads is found.
    let mut tail: Vec<u8> = Vec::new();
    let mut sent: u64 = 0;
    // Bytes still to forward before the fault acts, once it is triggered on this connection.
    let mut countdown: Option<usize> = None;
    let watched = shared.fault.direction() == dir;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if pair.cut.load(Ordering::SeqCst) {
            break;
        }
        while pair.stalled.load(Ordering::SeqCst) && !pair.cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let chunk = &buf[..n];
        if watched && countdown.is_none() && shared.armed.load(Ordering::SeqCst) {
            countdown = trigger(&shared.fault, &tail, chunk, sent);
            if countdown.is_some() && !shared.armed.swap(false, Ordering::SeqCst) {
                // Another connection fired first.
                countdown = None;
            }
        }
        if let (Fault::InjectBefore { bytes, .. }, Some(at)) = (&shared.fault, countdown) {
            countdown = None;
            let at = at.min(n);
            let mut spliced = chunk[..at].to_vec();
            spliced.extend_from_slice(bytes);
            spliced.extend_from_slice(&chunk[at..]);
            if to.write_all(&spliced).is_err() {
                break;
            }
            sent += n as u64;
            tail.clear();
            continue;
        }
        match countdown {
            Some(left) if left < n => {
                let _ = to.write_all(&chunk[..left]);
                let _ = to.flush();
                act(&shared.fault, pair);
                break;
            }
            Some(left) => countdown = Some(left - n),
            None => {}
        }
        if to.write_all(chunk).is_err() {
            break;
        }
        sent += n as u64;
        tail.extend_from_slice(chunk);
        let keep = 256.min(tail.len());
        tail.drain(..tail.len() - keep);
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Where in `chunk` the fault acts: how many of its bytes (and the following ones) go through
/// first; `None` when it does not trigger here.
fn trigger(fault: &Fault, tail: &[u8], chunk: &[u8], sent: u64) -> Option<usize> {
    match fault {
        Fault::CutAfter { bytes, .. } => {
            let left = bytes.saturating_sub(sent);
            (left < chunk.len() as u64).then_some(left as usize)
        }
        Fault::InjectBefore { pattern, .. } => {
            let at = chunk
                .windows(pattern.len())
                .position(|w| w == pattern.as_slice())?;
            Some(at)
        }
        Fault::CutAt { pattern, then, .. } | Fault::StallAt { pattern, then, .. } => {
            let mut window = tail.to_vec();
            window.extend_from_slice(chunk);
            let at = window
                .windows(pattern.len())
                .position(|w| w == pattern.as_slice())?;
            // Start of the pattern relative to this chunk (it may have begun in the tail).
            let start = at.saturating_sub(tail.len());
            Some(start + then)
        }
    }
}

fn act(fault: &Fault, pair: &Pair) {
    match fault {
        Fault::StallAt { stall_for, .. } => {
            pair.stalled.store(true, Ordering::SeqCst);
            std::thread::sleep(*stall_for);
            pair.cut();
        }
        _ => pair.cut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_found_across_reads() {
        let f = Fault::CutAt {
            direction: Direction::ToServer,
            pattern: b"APPEND".to_vec(),
            then: 3,
        };
        assert_eq!(trigger(&f, b"", b"a1 APPEND x", 0), Some(6));
        assert_eq!(trigger(&f, b"a1 APP", b"END x", 6), Some(3));
        assert_eq!(trigger(&f, b"", b"a1 LIST", 0), None);
        let f = Fault::CutAfter {
            direction: Direction::ToClient,
            bytes: 10,
        };
        assert_eq!(trigger(&f, b"", b"12345", 0), None);
        assert_eq!(trigger(&f, b"", b"123456789", 5), Some(5));
    }
}
