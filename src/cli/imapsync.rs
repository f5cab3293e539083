//! `offboard imapsync …`: imapsync's command line, run by our engine. Same options, same
//! folder rules, exit codes compatible with imapsync's; but certificates are verified, PLAIN
//! is sent correctly, passwords never show, and messages without Message-ID are copied.

use super::CliError;
use super::exit::Exit;
use super::imapsync_args::{RawOptions, parse};
use super::summary;
use crate::config::secret::{read_secret_file, secret_from_env};
use crate::imap::{
    AuthMechanism, Credentials, Endpoint, ImapError, Security, Session, Timeouts, TlsSettings,
};
use crate::sync::mapping::{Substitution, compile};
use crate::sync::{FolderRules, Journal, Reconnect, SyncOptions};
use secrecy::SecretString;
use std::time::Duration;

/// Which side of the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    One,
    Two,
}

impl Side {
    fn n(self) -> u8 {
        match self {
            Side::One => 1,
            Side::Two => 2,
        }
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::new(Exit::Usage, msg).hint("see `offboard imapsync --help` (imapsync's option names)")
}

/// An error on one side, with imapsync's per-side exit code.
fn side_error(side: Side, e: ImapError) -> anyhow::Error {
    let exit = match &e {
        ImapError::Connect { .. } | ImapError::Timeout { .. } | ImapError::ConnectionLost { .. } => {
            if side == Side::One {
                Exit::ConnectionHost1
            } else {
                Exit::ConnectionHost2
            }
        }
        ImapError::AuthFailed { .. }
        | ImapError::MechanismUnavailable { .. }
        | ImapError::UnsendablePassword { .. } => {
            if side == Side::One {
                Exit::AuthUser1
            } else {
                Exit::AuthUser2
            }
        }
        _ => super::exit::classify_imap(&e),
    };
    let mut err = CliError::new(exit, format!("host{} failed", side.n()));
    err.hint = e.hint();
    anyhow::Error::new(e).context(err)
}

const HELP: &str = "offboard imapsync — run an imapsync command line with offboard's engine

Usage: offboard imapsync --host1 H1 --user1 U1 --passfile1 F1 --host2 H2 --user2 U2 --passfile2 F2 [options]

Connection (per side N = 1 or 2):
  --hostN H --portN P --userN U   server, port (default: try 993 with TLS, then 143), login
  --passfileN F                   password from the first line of F (also $IMAPSYNC_PASSWORDN)
  --passwordN P                   accepted for compatibility; other local users can read it (ps)
  --sslN | --tlsN | --notlsN      implicit TLS | STARTTLS required | no automatic STARTTLS
  --authmechN LOGIN|PLAIN         login mechanism (PLAIN is sent as RFC 4616 says)
  --sslargsN SSL_ca_file=F        trust this CA;  SSL_verify_mode=0 skips verification
  --ca-file F | --insecure        the same for both sides (offboard's own options)
Folders:
  --include RE --exclude RE --folder NAME   select by regex on raw (modified UTF-7) names
  --subfolder2 NAME | --subfolder1 NAME     copy under NAME on host2 | only NAME's subtree of host1
  --sep1 C --sep2 C --prefix1 P --prefix2 P --regextrans2 's/A/B/'
  --automap                       special-use folders go to the destination's folder of the
                                  same use (not with --subfolder2, as imapsync)
Run:
  --dry  --justfolders  --justlogin  --justconnect  --maxage D  --minage D
  --resyncflags                   make flags of messages already copied equal to host1's
                                  (off by default: the successor's read state is kept)
  --json                          one JSON report on stdout (offboard's own)
  --state-dir DIR                 where the resume journal lives
  --workers N                     connection pairs copying folders in parallel (default 2)
  --verify                        read every copy's bytes back (always: sizes of all, bytes
                                  of those with 8-bit headers, which Cyrus rewrites)
  --fix-messages                  a message host2 refuses (bare LF, NUL, header line without
                                  a name) is repaired and appended again; each change reported
Accepted and not needed: --usecache (resume is always on), --addheader (messages without
Message-ID are copied unchanged), --nolog, --nofoldersizes, --buffersize N.
";

pub(super) async fn run(args: Vec<String>) -> anyhow::Result<Exit> {
    let o = parse(&args).map_err(|e| usage(e.to_string()))?;
    if o.on("help") {
        crate::outln!("{HELP}\n{}", super::exit::help_text().trim_end());
        return Ok(Exit::Ok);
    }
    if o.on("version") {
        crate::outln!(
            "offboard {} (imapsync-compatible mode)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(Exit::Ok);
    }
    for ignored in ["usecache", "addheader", "subscribeall"] {
        if o.on(ignored) {
            tracing::info!("--{ignored} accepted; offboard does this its own way (see --help)");
        }
    }
    let host1 = o
        .value("host1")
        .ok_or_else(|| usage("--host1 is required"))?
        .to_string();
    let Some(host2) = o.value("host2").map(str::to_string) else {
        // imapsync: --host1 alone means --justconnect.
        let ep = endpoint(&o, Side::One, &host1).await?;
        connect_only(&ep, Side::One).await?;
        return Ok(Exit::Ok);
    };
    if o.on("justconnect") {
        for (side, host) in [(Side::One, &host1), (Side::Two, &host2)] {
            let ep = endpoint(&o, side, host).await?;
            connect_only(&ep, side).await?;
        }
        return Ok(Exit::Ok);
    }
    let user1 = o
        .value("user1")
        .ok_or_else(|| usage("--user1 is required"))?
        .to_string();
    let user2 = o
        .value("user2")
        .ok_or_else(|| usage("--user2 is required"))?
        .to_string();
    let ep1 = endpoint(&o, Side::One, &host1).await?;
    let ep2 = endpoint(&o, Side::Two, &host2).await?;
    let c1 = credentials(&o, Side::One, &user1)?;
    let c2 = credentials(&o, Side::Two, &user2)?;
    let rules = folder_rules(&o)?;
    // Both logins at once: a BlueMind login takes a few round trips and some server time.
    let (s1, s2) = tokio::join!(login(&ep1, &c1, Side::One), login(&ep2, &c2, Side::Two));
    let (mut s1, s2) = (s1?, s2?);
    if o.on("justlogin") {
        crate::outln!("Host1 {host1}: logged in as {user1}; capabilities: {}", caps(&s1));
        crate::outln!("Host2 {host2}: logged in as {user2}; capabilities: {}", caps(&s2));
        s1.logout().await;
        s2.logout().await;
        crate::outln!("Exiting because of --justlogin");
        return Ok(Exit::Ok);
    }
    if let Some(sub1) = &rules.source_subfolder {
        let wire = crate::imap::wire::mutf7::encode(sub1);
        let exists = s1
            .list_all()
            .await
            .map_err(|e| side_error(Side::One, e))?
            .iter()
            .any(|f| f.name == wire);
        if !exists {
            return Err(CliError::new(
                Exit::SubfolderMissing,
                format!("--subfolder1 {sub1:?} does not exist on host1"),
            )
            .into());
        }
    }

    let opts = SyncOptions {
        rules,
        dry_run: o.on("dry"),
        just_folders: o.on("justfolders"),
        resync_flags: o.on("resyncflags"),
        max_age_days: o.number("maxage").map_err(|e| usage(e.to_string()))?,
        min_age_days: o.number("minage").map_err(|e| usage(e.to_string()))?,
        now: chrono::Utc::now().timestamp(),
        // imapsync copies again what the destination lost, whoever removed it.
        keep_removals: false,
        reconnect: reconnect_options(&o)?,
        verify: o.on("verify"),
        fix_messages: o.on("fix-messages"),
    };
    let mut state = if opts.dry_run {
        None
    } else {
        let dir = o
            .path("state-dir")
            .or_else(crate::sync::journal::default_dir)
            .ok_or_else(|| {
                CliError::new(
                    Exit::NoInput,
                    "no state directory: set --state-dir or $XDG_STATE_HOME",
                )
            })?;
        let id = crate::sync::journal::pair_id(&ep1.journal_label(), &user1, &ep2.journal_label(), &user2);
        // Named by earlier versions: host and port, then host alone.
        let (h1, h2) = (format!("{host1}:{}", ep1.port), format!("{host2}:{}", ep2.port));
        let with_ports = crate::sync::journal::pair_id(&h1, &user1, &h2, &user2);
        let hosts_only = crate::sync::journal::pair_id(&host1, &user1, &host2, &user2);
        Some(Journal::open_adopting(&dir, &id, &[&with_ports, &hosts_only])?)
    };
    let json = o.on("json");
    let quiet = super::output::get().is_quiet();
    let mut reporter = summary::Printer::new(!json && !quiet)
        .dry_run(opts.dry_run)
        .progress(!opts.dry_run);
    // More connection pairs let the servers use more cores; folders are shared among them.
    let n_workers: usize = o
        .number("workers")
        .map_err(|e| usage(e.to_string()))?
        .unwrap_or(2)
        .clamp(1, 16);
    let mut workers = vec![(s1, s2)];
    if !opts.dry_run && !opts.just_folders {
        let extra = (1..n_workers).map(|_| async {
            let (a, b) = tokio::join!(login(&ep1, &c1, Side::One), login(&ep2, &c2, Side::Two));
            Ok::<_, anyhow::Error>((a?, b?))
        });
        for pair in futures::future::join_all(extra).await {
            workers.push(pair?);
        }
    }
    let result = crate::sync::run(&mut workers, &opts, state.as_mut(), &mut reporter).await;
    super::output::get().stop_progress();
    crate::imap::logout_all(workers).await;
    // A run that stopped still shows what it did, then fails with its own error.
    let (report, error) = match result {
        Ok(r) => (r, None),
        Err(a) => (*a.report, Some(a.error)),
    };
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        summary::print_statistics(&report);
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(summary::exit_for(&report)),
    }
}

/// `--reconnectretry1/2` (imapsync's, default 3 there; 5 here): attempts to open a failed
/// connection pair again; the smaller of those given wins, since both sides reconnect
/// together.
fn reconnect_options(o: &RawOptions) -> anyhow::Result<Reconnect> {
    let mut given = Vec::new();
    for side in ["reconnectretry1", "reconnectretry2"] {
        given.extend(o.number::<u32>(side).map_err(|e| usage(e.to_string()))?);
    }
    let mut r = Reconnect::default();
    if let Some(n) = given.into_iter().min() {
        r.attempts = n;
    }
    Ok(r)
}

fn caps(s: &Session) -> String {
    s.capabilities().iter().cloned().collect::<Vec<_>>().join(" ")
}

async fn connect_only(ep: &Endpoint, side: Side) -> anyhow::Result<()> {
    Session::open(ep).await.map_err(|e| side_error(side, e))?;
    crate::outln!(
        "Host{} {}:{}: connected ({})",
        side.n(),
        ep.host,
        ep.port,
        ep.security
    );
    Ok(())
}

/// Resolves `--hostN/--portN/--sslN/--tlsN/--sslargsN` like imapsync: with none of port, ssl
/// and tls, try 993 with TLS, then 143; on 143, STARTTLS when offered unless `--notlsN`.
async fn endpoint(o: &RawOptions, side: Side, host: &str) -> anyhow::Result<Endpoint> {
    let n = side.n();
    // imapsync removes spaces and slashes from host names.
    let host: String = host.chars().filter(|c| !c.is_whitespace() && *c != '/').collect();
    let mut tls = TlsSettings {
        ca_file: o.path("ca-file"),
        insecure: o.on("insecure"),
    };
    for arg in o.list(&format!("sslargs{n}")) {
        match arg.split_once('=') {
            Some(("SSL_ca_file", f)) => tls.ca_file = Some(f.into()),
            Some(("SSL_verify_mode", "0")) => tls.insecure = true,
            _ => crate::errln!("warning: --sslargs{n} {arg:?} is not supported and was ignored"),
        }
    }
    if tls.insecure {
        crate::errln!("warning: host{n}: TLS certificates are not verified (--insecure)");
    }
    let secs: u64 = match o
        .number(&format!("timeout{n}"))
        .map_err(|e| usage(e.to_string()))?
    {
        Some(s) => s,
        None => o
            .number("timeout")
            .map_err(|e| usage(e.to_string()))?
            .unwrap_or(120),
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(secs.clamp(1, 30)),
        io: Duration::from_secs(secs.max(1)),
    };
    let port: Option<u16> = o.number(&format!("port{n}")).map_err(|e| usage(e.to_string()))?;
    let ssl = o.flag(&format!("ssl{n}"));
    let starttls = o.flag(&format!("tls{n}"));
    let make = |port: u16, sec: Security| {
        Endpoint::new(host.clone(), port, sec, &tls, timeouts).map_err(|e| side_error(side, e))
    };
    if ssl == Some(true) {
        return make(port.unwrap_or(993), Security::Implicit);
    }
    if starttls == Some(true) {
        return make(port.unwrap_or(143), Security::StartTls);
    }
    let plain_sec = if starttls == Some(false) {
        Security::None
    } else {
        Security::StartTls
    };
    if let Some(p) = port {
        return make(p, plain_sec);
    }
    if ssl.is_none() && starttls.is_none() {
        let probe = make(993, Security::Implicit)?;
        if tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((host.as_str(), 993)),
        )
        .await
        .is_ok_and(|r| r.is_ok())
        {
            return Ok(probe);
        }
    }
    make(143, plain_sec)
}

fn credentials(o: &RawOptions, side: Side, user: &str) -> anyhow::Result<Credentials> {
    let n = side.n();
    let secret = if let Some(f) = o.path(&format!("passfile{n}")) {
        read_secret_file(&f)?
    } else if let Some(s) = secret_from_env(&format!("IMAPSYNC_PASSWORD{n}")) {
        s
    } else if let Some(p) = o.value(&format!("password{n}")) {
        crate::errln!(
            "warning: --password{n} puts the password on the command line, where other local users can read it \
             (ps, /proc); put it in a file readable only by you and use --passfile{n} FILE"
        );
        SecretString::from(p.to_string())
    } else {
        return Err(usage(format!(
            "no password for user{n}: give --passfile{n} FILE or set IMAPSYNC_PASSWORD{n}"
        ))
        .into());
    };
    let mechanism = match o
        .value(&format!("authmech{n}"))
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None => AuthMechanism::Login,
        Some("LOGIN") => AuthMechanism::Login,
        Some("PLAIN") => AuthMechanism::Plain,
        Some(other) => {
            return Err(usage(format!(
                "--authmech{n} {other}: only LOGIN and PLAIN are supported"
            ))
            .into());
        }
    };
    // --authuserN: log in as userN with the admin's credentials (SASL PLAIN authzid).
    let (user, authzid, mechanism) = match o.value(&format!("authuser{n}")) {
        Some(admin) => (admin.to_string(), Some(user.to_string()), AuthMechanism::Plain),
        None => (user.to_string(), None, mechanism),
    };
    Ok(Credentials {
        user,
        secret,
        mechanism,
        authzid,
    })
}

/// Logs in. A server on port 143 that does not offer STARTTLS is refused: the password is
/// never sent in clear unless the command line says so (`--notlsN`), whatever an attacker
/// who blocks 993 and strips STARTTLS would like.
async fn login(ep: &Endpoint, c: &Credentials, side: Side) -> anyhow::Result<Session> {
    let session = connect(ep, c, side).await?;
    if c.authzid.is_some() {
        check_identity(ep, c, side, session).await
    } else {
        Ok(session)
    }
}

/// `--authuserN` logs in as the admin on behalf of the user (SASL PLAIN authzid). A server
/// that ignores the authzid (BlueMind 5 does) opens the admin's own mailbox instead, and the
/// copy would take the admin's mail for the user's. So the admin logs in on its own too: if
/// both sessions see the same mailbox, the authzid was ignored and the run stops. (An admin
/// that cannot log in on its own — a Dovecot master user — cannot be in its own mailbox.)
async fn check_identity(
    ep: &Endpoint,
    c: &Credentials,
    side: Side,
    mut session: Session,
) -> anyhow::Result<Session> {
    let n = side.n();
    let own = Credentials {
        authzid: None,
        ..c.clone()
    };
    let Ok(mut admin) = Session::connect(ep, &own).await else {
        return Ok(session);
    };
    let (theirs, mine) = (session.fingerprint().await, admin.fingerprint().await);
    admin.logout().await;
    let theirs = theirs.map_err(|e| side_error(side, e))?;
    if mine.is_ok_and(|m| m == theirs) {
        session.logout().await;
        let user = c.authzid.as_deref().unwrap_or_default();
        return Err(CliError::new(
            if side == Side::One { Exit::AuthUser1 } else { Exit::AuthUser2 },
            format!(
                "host{n} ignored --authuser{n}: the session is {}'s own mailbox, not {user}'s",
                c.user
            ),
        )
        .hint(format!(
            "this server does not honour the SASL authorization identity (BlueMind 5 does not): log in as {user} \
             with its own password or an API key (--user{n} {user} --passfile{n} FILE)"
        ))
        .into());
    }
    Ok(session)
}

async fn connect(ep: &Endpoint, c: &Credentials, side: Side) -> anyhow::Result<Session> {
    let n = side.n();
    match Session::connect(ep, c).await {
        Err(e @ ImapError::StartTlsUnavailable { .. }) => Err(anyhow::Error::new(e).context(
            CliError::new(
                Exit::Tls,
                format!("host{n} does not offer STARTTLS: the password is not sent in clear"),
            )
            .hint(format!(
                "use implicit TLS (--ssl{n}), or, if a plaintext login is really wanted, say so with --notls{n}"
            )),
        )),
        r => r.map_err(|e| side_error(side, e)),
    }
}
fn folder_rules(o: &RawOptions) -> anyhow::Result<FolderRules> {
    let regexes = |name: &str| -> anyhow::Result<Vec<fancy_regex::Regex>> {
        o.list(name)
            .iter()
            .map(|p| compile(p).map_err(|e| usage(format!("--{name}: {e}")).into()))
            .collect()
    };
    // imapsync keeps only -_a-zA-Z0-9./ and space; we keep UTF-8 letters too (`Hélène`).
    let subfolder = o
        .value("subfolder2")
        .map(|s| {
            s.trim()
                .chars()
                .filter(|c| c.is_alphanumeric() || "-_./ ".contains(*c))
                .collect::<String>()
        })
        .filter(|s| !s.is_empty());
    let mut rules = FolderRules {
        subfolder,
        source_subfolder: o
            .value("subfolder1")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        include: regexes("include")?,
        folders: o.list("folder").to_vec(),
        exclude: regexes("exclude")?,
        sep1: o.separator("sep1").map_err(|e| usage(e.to_string()))?,
        sep2: o.separator("sep2").map_err(|e| usage(e.to_string()))?,
        regextrans2: o
            .list("regextrans2")
            .iter()
            .map(|e| Substitution::parse(e).map_err(|err| usage(format!("--regextrans2: {err}"))))
            .collect::<Result<_, _>>()?,
        ..Default::default()
    };
    rules.prefix1 = o.value("prefix1").map(str::to_string);
    rules.prefix2 = o.value("prefix2").map(str::to_string);
    rules.automap = o.on("automap");
    rules.skip_foreign_namespaces = false; // imapsync's rules exactly: only what --exclude says.
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts(args: &[&str]) -> u32 {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        reconnect_options(&parse(&args).unwrap()).unwrap().attempts
    }

    #[test]
    fn reconnect_retries_take_the_smaller_given_value_else_the_default() {
        assert_eq!(attempts(&[]), Reconnect::default().attempts);
        assert_eq!(attempts(&["--reconnectretry1", "10"]), 10);
        assert_eq!(
            attempts(&["--reconnectretry1", "10", "--reconnectretry2", "2"]),
            2
        );
        assert_eq!(attempts(&["--reconnectretry2", "0"]), 0);
    }
}
