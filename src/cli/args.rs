//! The command line, in one clap definition: `--help`, the man page and the completions all
//! come from here.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Hand a leaver's mailbox over to a successor, on BlueMind or any IMAP server.
///
/// `offboard bertrand --to nathalie` copies Bertrand's mail into a subfolder of Nathalie's
/// mailbox, grants her read access to the shared mailboxes he could read, sets an auto-reply
/// naming her, switches off forwards leaking outside, shares his calendars and address books,
/// locks his account, and reports what it did — without anyone knowing either password.
/// Every change is journalled: `offboard undo` reverts a run, `offboard close` suspends the
/// account at the end of the auto-reply window.
#[derive(Debug, Parser)]
#[command(
    name = "offboard",
    version,
    subcommand_negates_reqs = true,
    override_usage = "offboard [OPTIONS] LEAVER --to SUCCESSOR\n       offboard [OPTIONS] <COMMAND> [ARGS]",
    after_help = super::exit::help_text()
)]
pub struct Cli {
    /// The leaver: a login (`bertrand`) or an address (`bertrand@example.com`).
    #[arg(value_name = "LEAVER", required = true)]
    pub leaver: Option<String>,

    /// The successor who receives the mail and the grants.
    #[arg(long, value_name = "SUCCESSOR", required = true)]
    pub to: Option<String>,

    #[command(flatten)]
    pub copy: CopyOpts,

    #[command(flatten)]
    pub departure: DepartureOpts,

    #[command(flatten)]
    pub conn: ConnOpts,

    #[command(flatten)]
    pub common: CommonOpts,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command takes, before or after its name.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonOpts {
    /// Show the plan and change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Do not ask for confirmation (required when there is no terminal).
    #[arg(long, global = true)]
    pub yes: bool,

    /// Print one JSON document on stdout instead of the human report.
    #[arg(long, global = true)]
    pub json: bool,

    /// Config file (TOML; default: $OFFBOARD_CONFIG, else ~/.config/offboard/config.toml).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Log more (-v: info, -vv: debug, -vvv: trace); secrets are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// No progress display and no per-folder lines (the report and errors still come).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// What and how to copy.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Copy")]
pub struct CopyOpts {
    /// Name of the folder created in the successor's mailbox (default: the leaver's display
    /// name; `{display_name}`, `{login}`, `{email}` are replaced).
    #[arg(long, value_name = "NAME")]
    pub folder: Option<String>,

    /// Also leave out folders matching this regex (raw folder names; repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,

    /// Copy the folders whose names say they are personal (Perso, Personnel, Privé,
    /// Private…; [copy] personal_folders), left out by default and listed in the report.
    #[arg(long)]
    pub include_personal: bool,

    /// Go on even when the successor's free quota is smaller than the leaver's mailbox (the
    /// copy then stops when her mailbox is full, exit 113).
    #[arg(long)]
    pub allow_partial: bool,

    /// Copy again what an earlier run delivered and the successor has deleted or moved since
    /// (messages and folders). By default they stay removed, and are reported.
    #[arg(long)]
    pub recopy_removed: bool,

    /// Read every copy's bytes back from the server after each folder. Without it, the sizes
    /// of all copies are read back, and the bytes of those with 8-bit headers (which Cyrus
    /// rewrites).
    #[arg(long)]
    pub verify: bool,

    /// A message the server refuses (bare LF, NUL, a header line without a name) is repaired
    /// and appended again; the report lists each repaired message and what was changed.
    #[arg(long)]
    pub fix_messages: bool,

    /// If BlueMind refuses to open a session as the leaver, reset the leaver's password to a
    /// random one (reported, never shown) instead of stopping.
    #[arg(long)]
    pub reset_password: bool,
}

/// The departure beyond the mail.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Departure")]
pub struct DepartureOpts {
    /// Set no auto-reply (by default one names the successor for 30 days).
    #[arg(long)]
    pub no_auto_reply: bool,

    /// Days the auto-reply runs (default 30; over 90 needs --force).
    #[arg(long, value_name = "N", conflicts_with = "no_auto_reply")]
    pub auto_reply_days: Option<u32>,

    /// Allow an auto-reply longer than 90 days.
    #[arg(long)]
    pub force: bool,

    /// Leave the forwards and rules that send his mail outside the organisation on (by
    /// default they are switched off, kept in the journal).
    #[arg(long)]
    pub keep_forwards: bool,

    /// Forward his mail to the successor for N days, by a rule that expires by itself (a copy
    /// stays in his mailbox). Off by default.
    #[arg(long, value_name = "N")]
    pub forward_days: Option<u32>,

    /// Do not share his calendars and address books with the successor.
    #[arg(long)]
    pub no_share_calendars: bool,

    /// Give the successor his rights on others' calendars and mailboxes, and his place in
    /// their delegation rules (by default they are only reported).
    #[arg(long)]
    pub transfer_delegations: bool,

    /// Do not lock the account (by default: his own API keys revoked, his phones unpaired,
    /// hidden from the directory, a random password).
    #[arg(long)]
    pub no_lock: bool,

    /// Lock without resetting his password.
    #[arg(long)]
    pub keep_password: bool,
}

/// Where the servers are and how to reach them.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Servers")]
pub struct ConnOpts {
    /// BlueMind URL (overrides [bluemind] url).
    #[arg(long, value_name = "URL")]
    pub bluemind_url: Option<String>,

    /// Mail domain (overrides [bluemind] domain).
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,

    /// IMAP host (overrides [imap] host; default: the BlueMind host).
    #[arg(long, value_name = "HOST")]
    pub imap_host: Option<String>,

    /// IMAP port (overrides [imap] port).
    #[arg(long, value_name = "PORT")]
    pub imap_port: Option<u16>,

    /// Seconds without a byte from the IMAP server before its connection is taken as stalled
    /// and opened again (overrides [imap] timeout; default 120). A copy that keeps moving
    /// bytes is never cut.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,

    /// IMAP transport security (overrides [imap] tls).
    #[arg(long, value_enum, value_name = "MODE")]
    pub imap_tls: Option<TlsMode>,

    /// Trust this CA (PEM) for BlueMind and IMAP, besides the system store.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Accept any certificate, for BlueMind and IMAP (not recommended).
    #[arg(long)]
    pub insecure: bool,

    /// IMAP connection pairs copying in parallel.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Where the copy journal and the run journals live.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an IMAP account: connect, log in, and show capabilities, namespaces and folders
    /// (raw wire name beside the UTF-8 name, to write --include/--exclude regexes).
    Probe(ProbeArgs),
    /// Store the BlueMind admin API key (asked without echo, checked against the server) in
    /// the kernel keyring, or where there is none in ~/.config/offboard/admin-key (mode 0600).
    Login {
        /// BlueMind URL (else from the config file).
        #[arg(long, value_name = "URL")]
        bluemind_url: Option<String>,
        /// Trust this CA (PEM).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Where the leaver's mail still goes and who can still see it: forwards and rules
    /// (addresses outside flagged), routing, delegations, who reads his mailbox, calendars
    /// and address books, his rights on others', groups, phones, his own API keys. Read only.
    Audit {
        /// The leaver.
        #[arg(value_name = "LEAVER")]
        leaver: String,
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// At the end of the auto-reply window: a last incremental copy, counts verified, the
    /// auto-reply and forwards off, then the account suspended (archived; mail to it then
    /// bounces). Nothing is suspended unless the copy is verified.
    Close {
        /// The leaver.
        #[arg(value_name = "LEAVER")]
        leaver: String,
        /// The successor (default: the one of the leaver's latest offboarding run).
        #[arg(long, value_name = "SUCCESSOR")]
        to: Option<String>,
        #[command(flatten)]
        copy: CopyOpts,
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Revert a run from its journal: what it changed in BlueMind and is still as it left it
    /// (ACL entries, subscriptions, auto-reply, forwarding, rules, delegations, hidden,
    /// suspended). Says what cannot be undone and what changed since (left alone). The copied
    /// mail stays.
    Undo {
        /// The run (`offboard runs` lists them).
        #[arg(value_name = "RUN-ID")]
        run_id: String,
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Check the setup before a first run: config (and where each setting comes from), the
    /// admin key and its rights, BlueMind's version and clock, IMAP reachable, its TLS
    /// certificate (names, expiry), the capabilities a run uses. One line per check with the
    /// fix; the exit code tells the overall health (0, 44 warnings, 45 failures).
    Doctor {
        /// Also open a session as this user (su) and log in over IMAP with it, to check su and
        /// see the capabilities after login; the session is closed at once.
        #[arg(long = "as", value_name = "LOGIN")]
        as_user: Option<String>,
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// Hand over a list: one row per leaver in a CSV file (UTF-8, a header row; columns
    /// `leaver`, `successor`, and optionally `folder` and `options`, the flags of a single run).
    /// Every row is checked first (bad rows are named by line, and nothing starts); rows run
    /// `--parallel` at a time, never two touching the same person at once; a failed row stops
    /// no other; a row an earlier run finished is reported as done. Exit 46 if a row failed.
    Batch {
        /// The CSV file.
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
        /// Rows running at once.
        #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
        parallel: u16,
        #[command(flatten)]
        conn: ConnOpts,
    },
    /// List past runs from their journals: id, date, kind, leaver, successor, outcome.
    Runs {
        /// Where the run journals live.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(hide = true)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(hide = true)]
    Man,
    /// Print the JSON Schema of the report (`--json`) on stdout.
    #[command(hide = true)]
    Schema,
    /// Run an imapsync command line unchanged: `offboard imapsync --host1 … --host2 …`.
    #[command(disable_help_flag = true)]
    Imapsync {
        /// imapsync options, passed as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

/// Transport security of an IMAP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// STARTTLS on the plain port (143).
    Starttls,
    /// No TLS (loopback tests only).
    None,
}

/// Authentication mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMech {
    /// AUTHENTICATE PLAIN when offered, else LOGIN.
    Auto,
    /// The LOGIN command.
    Login,
    /// AUTHENTICATE PLAIN.
    Plain,
}

/// `offboard probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// IMAP server.
    #[arg(long)]
    pub host: String,
    /// Port (default: 993 with implicit TLS, else 143).
    #[arg(long)]
    pub port: Option<u16>,
    /// Transport security.
    #[arg(long, value_enum, default_value_t = TlsMode::Implicit)]
    pub tls: TlsMode,
    /// Trust this CA (PEM) besides the system store.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (not recommended).
    #[arg(long)]
    pub insecure: bool,
    /// Login name.
    #[arg(long)]
    pub user: String,
    /// File whose first line is the password; else $OFFBOARD_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub passfile: Option<PathBuf>,
    /// Authentication mechanism.
    #[arg(long, value_enum, default_value_t = AuthMech::Auto)]
    pub authmech: AuthMech,
    /// Seconds before a silent server is given up.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_main_job() {
        let cli = Cli::try_parse_from(["offboard", "bertrand", "--to", "nathalie", "--dry-run"]).unwrap();
        assert_eq!(cli.leaver.as_deref(), Some("bertrand"));
        assert_eq!(cli.to.as_deref(), Some("nathalie"));
        assert!(cli.common.dry_run && cli.command.is_none());
    }

    #[test]
    fn common_options_go_before_or_after_the_command() {
        for argv in [
            &["offboard", "--config", "f.toml", "--json", "audit", "bertrand"][..],
            &["offboard", "audit", "bertrand", "--config", "f.toml", "--json"],
            &["offboard", "--json", "audit", "--config", "f.toml", "bertrand"],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(
                cli.common.config.as_deref(),
                Some(std::path::Path::new("f.toml")),
                "{argv:?}"
            );
            assert!(cli.common.json, "{argv:?}");
            assert!(matches!(cli.command, Some(Command::Audit { ref leaver, .. }) if leaver == "bertrand"));
        }
        for argv in [
            &["offboard", "-v", "--yes", "--dry-run", "undo", "R1"][..],
            &["offboard", "undo", "R1", "-v", "--yes", "--dry-run"],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert!(
                cli.common.yes && cli.common.dry_run && cli.common.verbose == 1,
                "{argv:?}"
            );
        }
        let cli =
            Cli::try_parse_from(["offboard", "close", "bertrand", "--imap-port", "1143", "--yes"]).unwrap();
        let Some(Command::Close { conn, to, .. }) = cli.command else {
            panic!("not close")
        };
        assert_eq!((conn.imap_port, to), (Some(1143), None));
        // The main job takes them too, and the departure switches.
        let cli =
            Cli::try_parse_from(["offboard", "bertrand", "--to", "n", "--no-auto-reply", "--json"]).unwrap();
        assert!(cli.departure.no_auto_reply && cli.common.json);
        assert!(
            Cli::try_parse_from([
                "offboard",
                "bertrand",
                "--to",
                "n",
                "--no-auto-reply",
                "--auto-reply-days",
                "3"
            ])
            .is_err()
        );
    }

    #[test]
    fn main_job_needs_a_successor() {
        assert!(Cli::try_parse_from(["offboard", "bertrand"]).is_err());
    }

    #[test]
    fn imapsync_takes_raw_options() {
        let cli = Cli::try_parse_from(["offboard", "imapsync", "--host1", "h", "-dry", "--help"]).unwrap();
        let Some(Command::Imapsync { args }) = cli.command else {
            panic!("not imapsync")
        };
        assert_eq!(args, ["--host1", "h", "-dry", "--help"]);
    }

    #[test]
    fn probe_defaults() {
        let cli = Cli::try_parse_from(["offboard", "probe", "--host", "h", "--user", "u"]).unwrap();
        let Some(Command::Probe(p)) = cli.command else {
            panic!("not probe")
        };
        assert_eq!(p.tls, TlsMode::Implicit);
        assert_eq!(p.authmech, AuthMech::Auto);
        assert!(p.passfile.is_none() && !p.insecure);
    }
}
