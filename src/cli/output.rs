//! The one owner of stdout, stderr and the progress display. Every line the CLI prints goes
//! through here ([`outln!`](crate::outln), [`errln!`](crate::errln)), and so do the log
//! lines (see [`LogWriter`]): with progress bars on screen, a line is printed above them
//! instead of through them. The workspace lints (`clippy::print_stdout`,
//! `clippy::print_stderr`) keep `println!` and friends out of every other module.
//!
//! Progress: on a terminal, a live display — each folder being copied (bytes, messages, rate,
//! ETA) and the whole run (bytes, messages, rate; its ETA counts the folders matched so far);
//! without a terminal, one line on stderr every 30 s once a run has lasted that long;
//! nothing with `--quiet`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How often a line reports progress without a terminal (`OFFBOARD_PROGRESS_EVERY`, in
/// seconds, changes it: for tests, or a log collector that wants more).
fn line_every() -> Duration {
    std::env::var("OFFBOARD_PROGRESS_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// The output of this process.
pub struct Output {
    state: Mutex<State>,
}

struct State {
    quiet: bool,
    terminal: bool,
    live: Option<Live>,
    started: Option<Instant>,
    last_line: Option<Instant>,
    messages: u64,
    bytes: u64,
    known_messages: u64,
    known_bytes: u64,
    /// Folders being copied (several workers copy several at once): name, messages
    /// copied, messages to copy, and the bar on a terminal.
    folders: Vec<FolderProgress>,
}

struct FolderProgress {
    name: String,
    done: u64,
    of: u64,
    bar: Option<ProgressBar>,
}

struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
}

static OUTPUT: OnceLock<Output> = OnceLock::new();

/// Sets up the output once (`quiet`: no progress); later calls change nothing.
pub fn init(quiet: bool) {
    let _ = OUTPUT.set(Output::new(quiet, std::io::stderr().is_terminal()));
}

/// The process's output (set up with defaults if [`init`] was not called).
pub fn get() -> &'static Output {
    OUTPUT.get_or_init(|| Output::new(false, std::io::stderr().is_terminal()))
}

/// A line on stdout.
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::output::get().out("") };
    ($($arg:tt)*) => { $crate::cli::output::get().out(&format!($($arg)*)) };
}

/// A line on stderr (above the progress bars).
#[macro_export]
macro_rules! errln {
    () => { $crate::cli::output::get().err("") };
    ($($arg:tt)*) => { $crate::cli::output::get().err(&format!($($arg)*)) };
}

/// Text on stderr without a line end (a prompt).
#[macro_export]
macro_rules! errp {
    ($($arg:tt)*) => { $crate::cli::output::get().prompt(&format!($($arg)*)) };
}

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

impl Output {
    fn new(quiet: bool, terminal: bool) -> Self {
        Output {
            state: Mutex::new(State {
                quiet,
                terminal,
                live: None,
                started: None,
                last_line: None,
                messages: 0,
                bytes: 0,
                known_messages: 0,
                known_bytes: 0,
                folders: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line on stdout. A closed pipe (`| head`) is not an error worth a panic.
    pub fn out(&self, line: &str) {
        let st = self.lock();
        let write = || {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
        };
        match &st.live {
            Some(l) => l.multi.suspend(write),
            None => write(),
        }
    }

    /// A line on stderr, above the bars when they are shown.
    pub fn err(&self, line: &str) {
        let st = self.lock();
        match &st.live {
            Some(l) => {
                let _ = l.multi.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// Text on stderr without a line end, the bars put away first.
    pub fn prompt(&self, text: &str) {
        self.stop_progress();
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "{text}");
        let _ = e.flush();
    }

    /// Asks a yes/no question on the terminal (`y`, `yes`, `o`, `oui`); anything else is no,
    /// and says that nothing was changed.
    pub fn confirm(&self, question: &str) -> bool {
        self.prompt(&format!("\n{question} [y/N] "));
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "oui" | "o");
        if !yes {
            self.err("Nothing was changed.");
        }
        yes
    }

    /// Raw bytes on stderr (a log line, which ends with its own newline).
    fn err_raw(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        self.err(text.trim_end_matches('\n'));
    }

    /// `--quiet` was given.
    pub fn is_quiet(&self) -> bool {
        self.lock().quiet
    }

    // ---- progress ----------------------------------------------------------------------

    fn ensure_started(st: &mut State) {
        if st.started.is_some() {
            return;
        }
        st.started = Some(Instant::now());
        if st.quiet || !st.terminal {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "all     {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}  ETA {eta:<5} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.enable_steady_tick(Duration::from_millis(500));
        st.live = Some(Live { multi, overall });
    }

    /// A folder's copy begins: `messages` and `bytes` are what it has to copy.
    pub fn folder_to_copy(&self, folder: &str, messages: u64, bytes: u64) {
        let mut st = self.lock();
        Self::ensure_started(&mut st);
        st.known_messages += messages;
        st.known_bytes += bytes;
        // The whole run's total grows as each folder is matched.
        let total = st.known_bytes;
        // A retry after a reconnection starts the folder's count again.
        if let Some(old) = st.folders.iter().position(|f| f.name == folder) {
            let f = st.folders.remove(old);
            if let Some(b) = f.bar {
                b.finish_and_clear();
            }
        }
        let bar = st.live.as_ref().map(|l| {
            l.overall.set_length(total);
            let bar = l.multi.add(ProgressBar::new(bytes));
            bar.set_style(
                ProgressStyle::with_template(
                    "folder  {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}  ETA {eta:<5} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(format!("{folder}: 0/{messages} messages"));
            bar
        });
        st.folders.push(FolderProgress {
            name: folder.to_string(),
            done: 0,
            of: messages,
            bar,
        });
    }

    /// One message of `folder` copied.
    pub fn message_copied(&self, folder: &str, bytes: u64) {
        let mut st = self.lock();
        Self::ensure_started(&mut st);
        st.messages += 1;
        st.bytes += bytes;
        let (messages, known) = (st.messages, st.known_messages);
        if let Some(f) = st.folders.iter_mut().find(|f| f.name == folder) {
            f.done += 1;
            if let Some(b) = &f.bar {
                b.inc(bytes);
                b.set_message(format!("{}: {}/{} messages", f.name, f.done, f.of));
            }
        }
        if let Some(l) = &st.live {
            l.overall.inc(bytes);
            l.overall.set_message(format!("{messages}/{known} messages"));
            return;
        }
        if st.quiet {
            return;
        }
        let now = Instant::now();
        let since = st.last_line.or(st.started).unwrap_or(now);
        if now.duration_since(since) >= line_every() {
            st.last_line = Some(now);
            let secs = st
                .started
                .map(|s| now.duration_since(s).as_secs_f64())
                .unwrap_or(1.0)
                .max(0.001);
            let now_copying: Vec<&str> = st.folders.iter().map(|f| f.name.as_str()).collect();
            let line = format!(
                "progress: {} messages, {} copied in {:.0} s ({}/s){}",
                st.messages,
                human(st.bytes),
                secs,
                human((st.bytes as f64 / secs) as u64),
                if now_copying.is_empty() {
                    String::new()
                } else {
                    format!("; copying {}", now_copying.join(", "))
                }
            );
            drop(st);
            self.err(&line);
        }
    }

    /// A folder is done: its bar goes.
    pub fn folder_finished(&self, folder: &str) {
        let mut st = self.lock();
        if let Some(i) = st.folders.iter().position(|f| f.name == folder) {
            let f = st.folders.remove(i);
            if let Some(b) = f.bar {
                b.finish_and_clear();
            }
        }
    }

    /// The bars go away (the run's report follows).
    pub fn stop_progress(&self) {
        let mut st = self.lock();
        for f in std::mem::take(&mut st.folders) {
            if let Some(b) = f.bar {
                b.finish_and_clear();
            }
        }
        if let Some(l) = st.live.take() {
            l.overall.finish_and_clear();
            let _ = l.multi.clear();
        }
    }
}

/// Where `tracing` writes: each log line goes through [`Output::err`], so it never tears a bar.
#[derive(Default)]
pub struct LogWriter(Vec<u8>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            get().err_raw(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_progress_is_a_line_at_most_every_30_seconds() {
        let o = Output::new(false, false);
        o.folder_to_copy("INBOX", 3, 300);
        for _ in 0..3 {
            o.message_copied("INBOX", 100);
        }
        let st = o.lock();
        assert!(st.live.is_none(), "no bars without a terminal");
        assert_eq!((st.messages, st.bytes, st.known_messages), (3, 300, 3));
        assert_eq!((st.folders[0].done, st.folders[0].of), (3, 3));
        assert!(st.last_line.is_none(), "no line before 30 s");
    }

    #[test]
    fn quiet_shows_nothing_even_on_a_terminal() {
        let o = Output::new(true, true);
        o.folder_to_copy("INBOX", 1, 10);
        o.message_copied("INBOX", 10);
        assert!(o.lock().live.is_none());
    }
}
