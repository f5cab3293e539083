//! Everything the user sees: arguments, the commands, output, and the error → exit-code table.
//! The only module that prints; errors are rendered once, here.

pub mod args;
mod batch;
mod doctor;
pub mod exit;
mod imapsync;
pub mod imapsync_args;
mod offboard;
pub mod output;
mod probe;
mod summary;

use args::{Cli, Command};
use clap::Parser;
use exit::Exit;
use std::io::Write;
use std::process::ExitCode;

/// An error raised by the CLI itself, with its exit code and a hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// What went wrong, in one sentence.
    pub message: String,
    /// The exit code.
    pub exit: Exit,
    /// What to do about it.
    pub hint: Option<String>,
}

impl CliError {
    /// A new error.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit,
            hint: None,
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Parses the command line, runs, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Ok.code()
                }
                _ => Exit::Usage.code(),
            });
        }
    };
    output::init(cli.common.quiet);
    init_logging(cli.common.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => report(&e),
    }
}

async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let common = cli.common.clone();
    if let (Some(leaver), Some(_)) = (&cli.leaver, &cli.command) {
        return Err(CliError::new(Exit::Usage, format!("{leaver:?} and a command cannot go together"))
            .hint("`offboard LEAVER --to SUCCESSOR` hands over; `offboard audit|close|undo|runs …` are commands of their own")
            .into());
    }
    match cli.command {
        Some(Command::Probe(args)) => probe::run(args, common.json).await,
        Some(Command::Login {
            bluemind_url,
            ca_file,
        }) => offboard::login(bluemind_url, common.config, ca_file).await,
        Some(Command::Audit { leaver, conn }) => offboard::audit(&common, &leaver, &conn).await,
        Some(Command::Close {
            leaver,
            to,
            copy,
            conn,
        }) => offboard::close(&common, &leaver, to, &copy, &conn).await,
        Some(Command::Undo { run_id, conn }) => offboard::undo(&common, &run_id, &conn).await,
        Some(Command::Batch { file, parallel, conn }) => {
            batch::run(&common, &file, usize::from(parallel), &conn).await
        }
        Some(Command::Doctor { as_user, conn }) => doctor::run(&common, &conn, as_user).await,
        Some(Command::Runs { state_dir }) => offboard::runs(&common, state_dir).await,
        Some(Command::Imapsync { args }) => imapsync::run(args).await,
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "offboard", &mut out);
            print_quietly(&out)
        }
        Some(Command::Schema) => {
            let mut out = serde_json::to_vec_pretty(&crate::workflow::report::json_schema())?;
            out.push(b'\n');
            print_quietly(&out)
        }
        Some(Command::Man) => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            print_quietly(&out)
        }
        None => offboard::run(cli).await,
    }
}

/// Writes to stdout; a closed pipe (`| head`) is a quiet, successful end.
fn print_quietly(bytes: &[u8]) -> anyhow::Result<Exit> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(Exit::Ok),
    }
}

/// Prints `error: …`, each cause under `Caused by:`, then the hint; returns the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    let exit = exit::classify(err);
    output::get().stop_progress();
    crate::errln!("error: {err}");
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        crate::errln!("\nCaused by:");
        for c in causes {
            crate::errln!("    {c}");
        }
    }
    if let Some(h) = exit::hint(err) {
        crate::errln!("\nhint: {h}");
    }
    if exit == Exit::Internal {
        crate::errln!("\nThis is an internal error of offboard: please report it.");
    }
    ExitCode::from(exit.code())
}

/// Logs go to stderr. Whatever the filter says, async-imap and its parser stay silent: at
/// trace level they print every command sent, LOGIN passwords included.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let base = std::env::var("OFFBOARD_LOG").unwrap_or_else(|_| default.to_string());
    let mut filter = EnvFilter::try_new(&base).unwrap_or_else(|_| EnvFilter::new(default));
    for silenced in ["async_imap=off", "imap_proto=off"] {
        if let Ok(d) = silenced.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(output::LogWriter::default)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
