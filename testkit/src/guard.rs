//! A test server's daemon, bounded in time and tied to the test process: it runs in the
//! foreground under a small `sh` guardian that reads our pipe. When the handle is dropped — or
//! the test process dies, even by SIGKILL — the pipe closes and the guardian stops the daemon;
//! `timeout(1)` bounds its life in any case, so no instance outlives its test run.

use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon under its guardian; stopped on drop.
#[derive(Debug, Default)]
pub struct Guarded {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Guarded {
    /// Starts `program args…` with stdout and stderr appended to `log`, for at most `lifetime`.
    pub fn spawn<I, S>(program: &Path, args: I, log: &Path, lifetime: Duration) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let script = r#"log="$1"; life="$2"; shift 2
timeout -k 5 "$life" "$@" </dev/null >>"$log" 2>&1 &
pid=$!
read -r _line
kill -TERM "$pid" 2>/dev/null
wait "$pid""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("guardian")
            .arg(log)
            .arg(format!("{}s", lifetime.as_secs().max(1)))
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawn the test server's guardian")?;
        Ok(Guarded {
            stdin: child.stdin.take(),
            child: Some(child),
        })
    }

    /// Whether the daemon has exited (or was never started).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the daemon and waits for it (killing its process group after 10 s).
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a server, trying again (three times in all) when an attempt fails: two test
/// servers can race for the same free port between its choice and the bind.
pub fn start_retrying<T>(what: &str, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..3 {
        match attempt() {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{what} did not start")))
}

/// Waits until `ready` holds, failing early when the daemon exits and after `within`.
pub fn wait_ready(
    daemon: &mut Guarded,
    within: Duration,
    mut ready: impl FnMut() -> bool,
    log_tail: impl Fn() -> String,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if ready() {
            return Ok(());
        }
        if daemon.exited() {
            anyhow::bail!("the server exited at start: {}", log_tail());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the server did not answer within {within:?}: {}", log_tail());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last 20 lines of a log file.
pub fn log_tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Whether *this* IMAP server greets on this loopback port: its greeting carries `marker`, a
/// word unique to the instance. A port chosen free can be taken by another test's server
/// before ours binds it; ours then fails to start while the other answers, and without the
/// marker a test would talk to the wrong server.
pub fn greets(port: u16, marker: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let ok = BufReader::new(&mut s).read_line(&mut line).is_ok()
        && line.starts_with("* OK")
        && line.contains(marker);
    let _ = s.write_all(b"a LOGOUT\r\n");
    ok
}

/// A word unique to one test server instance, for its greeting.
pub fn instance_marker() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("offboard-test-{n:016x}")
}
