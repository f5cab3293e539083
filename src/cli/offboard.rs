//! `offboard LEAVER --to SUCCESSOR` and `offboard login`: settings from config, environment
//! and flags; the plan, the confirmation, the run, and its report for people or programs.

use super::CliError;
use super::args::{Cli, CommonOpts, ConnOpts, CopyOpts, DepartureOpts, TlsMode};
use super::exit::{self, Exit};
use super::summary;
use crate::config::file::{ConfigFile, config_dir, load};
use crate::config::secret::{read_private_file, secret_from_env};
use crate::imap::{Endpoint, Security, Timeouts, TlsSettings};
use crate::workflow::{self, Departure, OffboardReport, Outcome, RunKind, Settings, autoreply};
use bluemind_api::TlsOptions;
use secrecy::SecretString;
use std::io::IsTerminal;
use std::path::PathBuf;

fn config_error(msg: impl Into<String>, hint: &str) -> anyhow::Error {
    CliError::new(Exit::Config, msg).hint(hint).into()
}

fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    hostport.split(':').next().unwrap_or(hostport).to_string()
}

/// Whether a host name is this machine (plaintext to it crosses no network).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn stored_key_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("admin-key"))
}

/// The admin key: `$OFFBOARD_ADMIN_KEY`, else `[bluemind] key_file` (0600 only), else the
/// file `offboard login` wrote. Never a command-line argument.
fn admin_key(cfg: &ConfigFile) -> anyhow::Result<SecretString> {
    admin_key_with_source(cfg).map(|(k, _)| k)
}

/// The admin key and where it came from (for `offboard doctor`).
pub(super) fn admin_key_with_source(cfg: &ConfigFile) -> anyhow::Result<(SecretString, String)> {
    if let Some(k) = secret_from_env("OFFBOARD_ADMIN_KEY") {
        return Ok((k, "the environment ($OFFBOARD_ADMIN_KEY)".into()));
    }
    if let Some(f) = &cfg.bluemind.key_file {
        return Ok((read_private_file(f)?, format!("the key file {}", f.display())));
    }
    if let Some(p) = stored_key_path()
        && let Some(k) = crate::config::keyring::load(&p)?
    {
        return Ok((k, "what `offboard login` stored".into()));
    }
    Err(CliError::new(Exit::AdminKey, "no BlueMind admin API key")
        .hint("run `offboard login`, set [bluemind] key_file in the config (mode 0600), or export OFFBOARD_ADMIN_KEY")
        .into())
}

/// A run id: the UTC time, the process, and — for the second run of one process on (a batch)
/// — its rank, so no two runs share a journal or a key name.
fn new_run_id() -> String {
    static RANK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let rank = RANK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = format!(
        "{}-{:04x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        std::process::id() & 0xffff
    );
    if rank == 0 { base } else { format!("{base}.{rank}") }
}

/// What a command is about and how it was asked.
pub(super) struct Job<'a> {
    pub mode: RunKind,
    pub leaver: String,
    pub successor: String,
    pub copy: &'a CopyOpts,
    pub departure: Option<&'a DepartureOpts>,
    pub conn: &'a ConnOpts,
}

fn usage(msg: impl Into<String>, hint: &str) -> anyhow::Error {
    CliError::new(Exit::Usage, msg).hint(hint).into()
}

/// The departure steps from flags and `[auto_reply]`; checked before anything is asked.
fn departure(d: Option<&DepartureOpts>, cfg: &ConfigFile) -> anyhow::Result<Departure> {
    let Some(d) = d else {
        return Ok(Departure {
            auto_reply: None,
            ..Departure::default()
        });
    };
    let auto_reply = if d.no_auto_reply {
        None
    } else {
        let language = cfg.auto_reply.language.as_deref().unwrap_or("fr+en");
        let mut template = autoreply::builtin(language).ok_or_else(|| {
            config_error(
                format!("[auto_reply] language = {language:?}"),
                "use fr, en or fr+en, or write your own subject and text",
            )
        })?;
        if let Some(sub) = &cfg.auto_reply.subject {
            template.subject = sub.clone();
        }
        if let Some(text) = &cfg.auto_reply.text {
            template.text = text.clone();
        }
        let days = d
            .auto_reply_days
            .or(cfg.auto_reply.days)
            .unwrap_or(autoreply::DEFAULT_DAYS);
        autoreply::window(0, days, d.force).map_err(|e| usage(e, "see `offboard --help`, Departure"))?;
        Some(autoreply::AutoReply { days, template })
    };
    if let Some(days) = d.forward_days {
        if days == 0 {
            return Err(usage(
                "--forward-days 0 would forward nothing",
                "give a number of days, or leave it out",
            ));
        }
        if days > autoreply::MAX_DAYS && !d.force {
            return Err(usage(
                format!(
                    "a forward of {days} days is longer than the {} days data-protection guidance allows",
                    autoreply::MAX_DAYS
                ),
                "pass --force to set it anyway",
            ));
        }
    }
    Ok(Departure {
        auto_reply,
        keep_forwards: d.keep_forwards,
        forward_days: d.forward_days,
        share_calendars: !d.no_share_calendars,
        transfer_delegations: d.transfer_delegations,
        lock: !d.no_lock,
        reset_password: !d.keep_password,
    })
}

pub(super) fn settings(job: &Job<'_>, cfg: &ConfigFile, dry_run: bool) -> anyhow::Result<Settings> {
    let (conn, copy) = (job.conn, job.copy);
    let leaver = job.leaver.clone();
    let successor = job.successor.clone();
    let url = conn
        .bluemind_url
        .clone()
        .or(cfg.bluemind.url.clone())
        .ok_or_else(|| {
            config_error(
                "no BlueMind URL",
                "set [bluemind] url in the config file, or pass --bluemind-url https://bm.example.com",
            )
        })?;
    let domain = conn
        .domain
        .clone()
        .or(cfg.bluemind.domain.clone())
        .or_else(|| leaver.split_once('@').map(|(_, d)| d.to_string()))
        .ok_or_else(|| {
            config_error(
                "no mail domain",
                "set [bluemind] domain, pass --domain, or give the leaver's address",
            )
        })?;
    let api_tls = TlsOptions {
        ca_file: conn.ca_file.clone().or(cfg.bluemind.ca_file.clone()),
        insecure: conn.insecure || cfg.bluemind.insecure,
        timeout: None,
    };
    // The admin key travels in every request: never in clear to another machine unless asked.
    if url.trim().to_ascii_lowercase().starts_with("http://")
        && !is_loopback(&host_of(&url))
        && !conn.insecure
    {
        return Err(config_error(
            format!("the BlueMind URL {url} is not encrypted: the admin key would travel in clear"),
            "use https://, or pass --insecure if this network is trusted",
        ));
    }
    let tls_mode = match conn.imap_tls {
        Some(TlsMode::Implicit) => Security::Implicit,
        Some(TlsMode::Starttls) => Security::StartTls,
        Some(TlsMode::None) => Security::None,
        None => match cfg.imap.tls.as_deref() {
            None | Some("implicit") => Security::Implicit,
            Some("starttls") => Security::StartTls,
            Some("none") => Security::None,
            Some(other) => {
                return Err(config_error(
                    format!("[imap] tls = {other:?}"),
                    "use implicit, starttls or none",
                ));
            }
        },
    };
    let host = conn
        .imap_host
        .clone()
        .or(cfg.imap.host.clone())
        .unwrap_or_else(|| host_of(&url));
    let port = conn
        .imap_port
        .or(cfg.imap.port)
        .unwrap_or(if tls_mode == Security::Implicit { 993 } else { 143 });
    let imap_tls = TlsSettings {
        ca_file: conn
            .ca_file
            .clone()
            .or(cfg.imap.ca_file.clone())
            .or(cfg.bluemind.ca_file.clone()),
        insecure: conn.insecure || cfg.imap.insecure,
    };
    if api_tls.insecure || imap_tls.insecure {
        let from = if conn.insecure {
            "--insecure"
        } else {
            "insecure = true in the config file"
        };
        crate::errln!("warning: TLS certificates are not verified ({from})");
    }
    let mut timeouts = Timeouts::default();
    if let Some(secs) = conn.timeout.or(cfg.imap.timeout) {
        timeouts.io = std::time::Duration::from_secs(secs.max(1));
        timeouts.connect = timeouts
            .connect
            .min(timeouts.io.max(std::time::Duration::from_secs(5)));
    }
    let imap = Endpoint::new(host, port, tls_mode, &imap_tls, timeouts)?;
    let state_dir = conn
        .state_dir
        .clone()
        .or(cfg.copy.state_dir.clone())
        .or_else(|| crate::sync::journal::default_dir().and_then(|d| d.parent().map(PathBuf::from)))
        .ok_or_else(|| config_error("no state directory", "set [copy] state_dir or --state-dir"))?;
    let mut excludes = cfg.copy.exclude.clone();
    excludes.extend(copy.exclude.iter().cloned());
    let run_id = new_run_id();
    Ok(Settings {
        leaver,
        successor,
        bluemind_url: url,
        domain,
        api_tls,
        admin_key: admin_key(cfg)?,
        imap,
        folder_template: copy
            .folder
            .clone()
            .or(cfg.copy.folder.clone())
            .unwrap_or_else(|| "{display_name}".into()),
        excludes,
        dry_run,
        reset_password: copy.reset_password,
        workers: conn.workers.or(cfg.copy.workers).unwrap_or(2).clamp(1, 16),
        recopy_removed: copy.recopy_removed,
        verify: copy.verify,
        fix_messages: copy.fix_messages,
        allow_partial: copy.allow_partial,
        state_dir,
        run_id,
        mode: job.mode,
        departure: departure(job.departure, cfg)?,
        force: job.departure.is_some_and(|d| d.force),
        personal_folders: if copy.include_personal {
            Vec::new()
        } else {
            cfg.copy
                .personal_folders
                .clone()
                .unwrap_or_else(|| workflow::PERSONAL_FOLDERS.iter().map(|s| s.to_string()).collect())
        },
    })
}

/// What to carry out once the settings are made.
#[derive(Clone, Copy)]
enum Work<'a> {
    Run,
    Undo(&'a str),
}

async fn execute(s: &Settings, work: Work<'_>, json: bool) -> Outcome {
    match work {
        Work::Run => {
            let quiet = super::output::get().is_quiet();
            let mut printer = summary::Printer::new(!json && !quiet)
                .dry_run(s.dry_run)
                .progress(!s.dry_run);
            let interrupt = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let o = workflow::run(s, &mut printer, interrupt).await;
            super::output::get().stop_progress();
            o
        }
        Work::Undo(of) => workflow::undo(s, of).await,
    }
}

/// The exit code of a finished run.
pub(super) fn exit_of(o: &Outcome) -> Exit {
    if let Some(e) = &o.error {
        return exit::classify_workflow(e);
    }
    if let Some(c) = &o.report.copy {
        let e = summary::exit_for(c);
        if e != Exit::Ok {
            return e;
        }
    }
    if o.report.grants.iter().any(|g| g.status == "failed") {
        return Exit::GrantsFailed;
    }
    if o.report.steps.iter().any(|s| s.status != "ok") {
        return Exit::StepsFailed;
    }
    Exit::Ok
}

pub(super) async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let job = Job {
        mode: RunKind::Offboard,
        leaver: cli.leaver.clone().unwrap_or_default(),
        successor: cli.to.clone().unwrap_or_default(),
        copy: &cli.copy,
        departure: Some(&cli.departure),
        conn: &cli.conn,
    };
    plan_then_carry_out(&cli.common, &job, Work::Run).await
}

/// `offboard close LEAVER`: the successor is the one of his latest offboarding unless given.
pub(super) async fn close(
    common: &CommonOpts,
    leaver: &str,
    to: Option<String>,
    copy: &CopyOpts,
    conn: &ConnOpts,
) -> anyhow::Result<Exit> {
    let (cfg, _) = load(common.config.as_deref())?;
    let successor = match to {
        Some(t) => t,
        None => {
            let state = state_dir(conn, &cfg)?;
            workflow::runs::latest_offboarding(&state, leaver)
                .and_then(|j| j.successor.map(|p| p.login))
                .ok_or_else(|| {
                    CliError::new(
                        Exit::RunUnknown,
                        format!("no offboarding of {leaver} in {}", state.join("runs").display()),
                    )
                    .hint("pass --to SUCCESSOR, or --state-dir where the runs were kept")
                })?
        }
    };
    let job = Job {
        mode: RunKind::Close,
        leaver: leaver.to_string(),
        successor,
        copy,
        departure: None,
        conn,
    };
    plan_then_carry_out(common, &job, Work::Run).await
}

/// `offboard undo RUN-ID`.
pub(super) async fn undo(common: &CommonOpts, run_id: &str, conn: &ConnOpts) -> anyhow::Result<Exit> {
    let (cfg, _) = load(common.config.as_deref())?;
    let state = state_dir(conn, &cfg)?;
    let journal = workflow::runs::find(&state, run_id).ok_or_else(|| {
        CliError::new(
            Exit::RunUnknown,
            format!("no run {run_id} in {}", state.join("runs").display()),
        )
        .hint("`offboard runs` lists the runs; pass --state-dir where they were kept")
    })?;
    let person = |p: &Option<workflow::PersonReport>| p.as_ref().map(|p| p.email.clone()).unwrap_or_default();
    let copy = CopyOpts::default();
    let job = Job {
        mode: RunKind::Undo,
        leaver: person(&journal.leaver),
        successor: person(&journal.successor),
        copy: &copy,
        departure: None,
        conn,
    };
    plan_then_carry_out(common, &job, Work::Undo(run_id)).await
}

/// `offboard audit LEAVER`: read only, no confirmation.
pub(super) async fn audit(common: &CommonOpts, leaver: &str, conn: &ConnOpts) -> anyhow::Result<Exit> {
    let (cfg, _) = load(common.config.as_deref())?;
    let copy = CopyOpts::default();
    let job = Job {
        mode: RunKind::Offboard,
        leaver: leaver.to_string(),
        successor: String::new(),
        copy: &copy,
        departure: None,
        conn,
    };
    let s = settings(&job, &cfg, true)?;
    let o = workflow::audit_only(&s).await;
    let code = o.error.as_ref().map(exit::classify_workflow).unwrap_or(Exit::Ok);
    finish(&o, common.json, code)
}

/// `offboard runs`.
pub(super) async fn runs(common: &CommonOpts, dir: Option<PathBuf>) -> anyhow::Result<Exit> {
    let (cfg, _) = load(common.config.as_deref())?;
    let conn = ConnOpts {
        state_dir: dir,
        ..Default::default()
    };
    let state = state_dir(&conn, &cfg)?;
    let list = workflow::runs::list(&state);
    if common.json {
        crate::outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(Exit::Ok);
    }
    if list.is_empty() {
        crate::outln!("No run recorded in {}", state.join("runs").display());
        return Ok(Exit::Ok);
    }
    crate::outln!(
        "{:<26} {:<20} {:<8} {:<14} {:<14} {:<11} {:>7}",
        "RUN",
        "STARTED",
        "KIND",
        "LEAVER",
        "SUCCESSOR",
        "OUTCOME",
        "CHANGES"
    );
    for r in list {
        let kind = serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        crate::outln!(
            "{:<26} {:<20} {:<8} {:<14} {:<14} {:<11} {:>7}{}",
            r.run_id,
            r.started_at,
            kind,
            r.leaver.unwrap_or_default(),
            r.successor.unwrap_or_default(),
            r.outcome,
            r.changes,
            r.undoes.map(|u| format!("  (undoes {u})")).unwrap_or_default()
        );
    }
    Ok(Exit::Ok)
}

pub(super) fn state_dir(conn: &ConnOpts, cfg: &ConfigFile) -> anyhow::Result<PathBuf> {
    conn.state_dir
        .clone()
        .or(cfg.copy.state_dir.clone())
        .or_else(|| crate::sync::journal::default_dir().and_then(|d| d.parent().map(PathBuf::from)))
        .ok_or_else(|| config_error("no state directory", "set [copy] state_dir or --state-dir"))
}

/// The plan first (a dry run), then, once confirmed on a terminal or with `--yes`, the run.
async fn plan_then_carry_out(common: &CommonOpts, job: &Job<'_>, work: Work<'_>) -> anyhow::Result<Exit> {
    let (cfg, _) = load(common.config.as_deref())?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if common.dry_run || !common.yes {
        let plan_settings = settings(job, &cfg, true)?;
        let plan = execute(&plan_settings, work, common.json).await;
        let code = exit_of(&plan);
        if common.dry_run || plan.error.is_some() || code != Exit::Ok {
            return finish(&plan, common.json, code);
        }
        if !interactive {
            print_report(&plan.report, common.json, None);
            return Err(
                CliError::new(Exit::NeedsConfirmation, "this is the plan; nothing was changed")
                    .hint("run again with --yes to carry it out (no terminal to confirm on)")
                    .into(),
            );
        }
        print_report(&plan.report, false, None);
        if !super::output::get().confirm("Carry out this plan?") {
            return Ok(Exit::Ok);
        }
    }
    let s = settings(job, &cfg, false)?;
    let outcome = execute(&s, work, common.json).await;
    let code = exit_of(&outcome);
    finish(&outcome, common.json, code)
}

fn finish(o: &Outcome, json: bool, code: Exit) -> anyhow::Result<Exit> {
    print_report(&o.report, json, Some(code));
    let Some(e) = &o.error else { return Ok(code) };
    // The error and its causes in one message; the report (JSON or human) is already out.
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    let mut c = CliError::new(code, message);
    c.hint = exit::workflow_hint(e);
    Err(c.into())
}

fn print_report(r: &OffboardReport, json: bool, code: Option<Exit>) {
    if json {
        let mut r = r.clone();
        r.exit_code = code.map(Exit::code);
        crate::outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return;
    }
    let who = |p: &Option<workflow::PersonReport>| {
        p.as_ref()
            .map(|p| format!("{} ({} <{}>)", p.login, p.display_name, p.email))
            .unwrap_or_else(|| "?".into())
    };
    crate::outln!();
    let title = match (r.kind, r.dry_run) {
        (_, true)
            if r.audit.is_some() && r.steps.iter().all(|s| s.name == "preflight" || s.name == "audit") =>
        {
            "Audit:"
        }
        (RunKind::Undo, true) => "Undo plan:",
        (RunKind::Undo, false) => "Undone:",
        (RunKind::Close, true) => "Close plan:",
        (RunKind::Close, false) => "Closed:",
        (_, true) => "Plan:",
        (_, false) => "Offboarded:",
    };
    if let Some(of) = &r.undoes {
        crate::outln!("{title} run {of}, {} → {}", who(&r.leaver), who(&r.successor));
        for i in &r.undo {
            crate::outln!(
                "  {:<13} {}{}",
                i.status.replace('_', " "),
                i.label,
                if i.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", i.detail)
                }
            );
        }
        for s in r.steps.iter().filter(|s| s.status != "ok") {
            crate::outln!("  Step {} failed: {}", s.name, s.error.as_deref().unwrap_or(""));
        }
        crate::outln!("  Run {} took {:.1} s", r.run_id, r.duration_secs);
        return;
    }
    if r.successor.as_ref().is_none_or(|p| p.uid.is_empty()) {
        crate::outln!(
            "{title} {}{}",
            who(&r.leaver),
            r.domain
                .as_ref()
                .map(|d| format!(", domain {d}"))
                .unwrap_or_default()
        );
        print_steps(r);
        return;
    }
    crate::outln!(
        "{title} {} → {}{}",
        who(&r.leaver),
        who(&r.successor),
        r.domain
            .as_ref()
            .map(|d| format!(", domain {d}"))
            .unwrap_or_default()
    );
    if let Some(f) = &r.folder {
        crate::outln!("  Mail goes to the folder {f:?} of the successor's mailbox");
    }
    if let Some(q) = &r.quota {
        let mb = |kib: u64| kib as f64 / 1024.0;
        crate::outln!(
            "  Quota: the leaver's mailbox holds {:.1} MB; the successor's has {}{}",
            mb(q.leaver_used_kib),
            match q.successor_quota_kib {
                Some(total) => format!(
                    "{:.1} MB free of {:.1} MB",
                    mb(total.saturating_sub(q.successor_used_kib)),
                    mb(total)
                ),
                None => "no limit".into(),
            },
            if q.fits {
                ""
            } else {
                " — NOT ENOUGH (--allow-partial)"
            }
        );
    }
    let c = &r.credentials;
    let leftovers = if r.dry_run {
        format!("{} left by earlier runs found", c.leftover_keys_found)
    } else {
        format!("{} left by earlier runs deleted", c.leftover_keys_deleted)
    };
    crate::outln!(
        "  Credentials: {} ({} key(s) minted, {} deleted, {leftovers}{})",
        c.method,
        c.keys_minted,
        c.keys_deleted,
        if c.leaver_password_reset {
            "; the leaver's password was RESET"
        } else {
            ""
        }
    );
    if let Some(copy) = &r.copy {
        let failed = copy.failures().count();
        crate::outln!(
            "  Copy: {} folders, {} messages found, {} {} ({:.1} MB), {} already there, {} failed",
            copy.folders.len(),
            copy.found(),
            copy.copied(),
            if r.dry_run { "to copy" } else { "copied" },
            copy.bytes_copied() as f64 / 1e6,
            copy.already(),
            failed
        );
        let removed = copy.removed_by_successor();
        if removed > 0 {
            crate::outln!(
                "  Removed by the successor since: {removed} messages delivered by an earlier run \
                 (left removed; --recopy-removed copies them again)"
            );
        }
        for f in copy.folders.iter().filter(|f| f.dest_removed) {
            crate::outln!(
                "    folder {} was deleted or renamed by the successor: not made again",
                f.dest
            );
        }
        if let Some(why) = &copy.aborted {
            crate::outln!("  Copy stopped: {why}");
        }
        if !r.dry_run {
            crate::outln!(
                "  Checked: message counts read back from the successor's mailbox in {}/{} folders",
                copy.folders.iter().filter(|f| f.verified).count(),
                copy.folders.len()
            );
        }
        for f in copy.failures() {
            crate::outln!("    failed: {}, UID {}: {}", f.folder, f.uid, f.message);
        }
        for f in copy.folder_errors() {
            crate::outln!(
                "    folder {}: {}",
                f.source,
                f.error.as_ref().map(|e| e.message.as_str()).unwrap_or_default()
            );
        }
    }
    if !r.grants.is_empty() {
        crate::outln!("  Shared mailboxes for the successor:");
        for g in &r.grants {
            let status = match &g.via {
                Some(via) => format!("{} (readable via {via})", g.status),
                None => g.status.clone(),
            };
            crate::outln!(
                "    {} ({}): {status} — rights before [{}], after [{}]{}{}",
                g.mailbox,
                g.kind,
                g.before.join(", "),
                g.after.join(", "),
                if g.subscribed { ", subscribed" } else { "" },
                g.error.as_ref().map(|e| format!(" — {e}")).unwrap_or_default()
            );
        }
    }
    print_steps(r);
    for s in r.steps.iter().filter(|s| s.status != "ok") {
        crate::outln!("  Step {} failed: {}", s.name, s.error.as_deref().unwrap_or(""));
    }
    let nothing = r.copy.as_ref().is_some_and(|c| c.copied() == 0)
        && r.grants.iter().all(|g| g.status == "already")
        && r.changes.is_empty();
    if !r.dry_run && nothing && r.steps.iter().all(|s| s.status == "ok") {
        crate::outln!("  Nothing left to do: the hand-over was already complete.");
    }
    crate::outln!("  Run {} took {:.1} s", r.run_id, r.duration_secs);
}

/// Each step's notes and its failed changes, in the order the steps ran.
fn print_steps(r: &OffboardReport) {
    for st in r.steps.iter().filter(|s| !s.notes.is_empty()) {
        let mut name = st.name.clone();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        crate::outln!("  {name}:");
        for n in &st.notes {
            crate::outln!("    {n}");
        }
        for c in r
            .changes
            .iter()
            .filter(|c| c.step == st.name && c.status == workflow::ChangeStatus::Failed)
        {
            crate::outln!("    FAILED: {}: {}", c.label, c.error.as_deref().unwrap_or(""));
        }
    }
}

/// `offboard login`: asks for the admin key without echo, checks it, stores it 0600.
pub(super) async fn login(
    url: Option<String>,
    config: Option<PathBuf>,
    ca_file: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    let (cfg, _) = load(config.as_deref())?;
    let url = url
        .or(cfg.bluemind.url.clone())
        .ok_or_else(|| config_error("no BlueMind URL", "pass --bluemind-url or set [bluemind] url"))?;
    let key = match secret_from_env("OFFBOARD_ADMIN_KEY") {
        Some(k) => k,
        None => SecretString::from(
            rpassword::prompt_password("BlueMind admin API key: ").map_err(|e| {
                CliError::new(Exit::Usage, format!("cannot read the key: {e}")).hint("run it on a terminal")
            })?,
        ),
    };
    let tls = TlsOptions {
        ca_file: ca_file.or(cfg.bluemind.ca_file.clone()),
        insecure: cfg.bluemind.insecure,
        timeout: None,
    };
    let client = bluemind_api::Client::new(&url, key.clone(), &tls)?;
    let me = client.current_user().await?;
    let path = stored_key_path()
        .ok_or_else(|| config_error("no config directory", "set $HOME or $XDG_CONFIG_HOME"))?;
    let who = me.value.as_ref().map(|u| u.login.clone()).unwrap_or(me.uid);
    let stored = crate::config::keyring::store(&key, &path)
        .map_err(|e| CliError::new(Exit::NoInput, format!("cannot write {}: {e}", path.display())))?;
    match stored {
        crate::config::keyring::Stored::Keyring => crate::errln!(
            "Key of {who} checked and stored in the kernel keyring (keyutils): it is cleared at reboot and \
             after a few days unused; run `offboard login` again then."
        ),
        crate::config::keyring::Stored::File(p) => crate::errln!(
            "warning: no OS keyring is reachable here; the key of {who} was checked and stored in {} \
             (mode 0600, readable by you only). Keep it private, or use OFFBOARD_ADMIN_KEY / [bluemind] key_file.",
            p.display()
        ),
    }
    Ok(Exit::Ok)
}
