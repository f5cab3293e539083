//! A TCP proxy on loopback that delays every byte by a fixed time each way: a distant server
//! for the benchmark, without root or network namespaces. Bytes keep their order and stream
//! (what is in flight is not serialised), so a client that pipelines gains what it would on
//! a real link, and one that waits for each answer pays the round trip each time.

use anyhow::Result;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running proxy; it accepts until the process ends (the benchmark is short-lived).
pub struct DelayProxy {
    /// The port to connect to instead of the target's.
    pub port: u16,
}

impl DelayProxy {
    /// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`, `one_way` late in each direction.
    pub fn start(target: u16, one_way: Duration) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    pump(client, s2, one_way);
                    pump(server, c2, one_way);
                }
            }
        });
        Ok(DelayProxy { port })
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
