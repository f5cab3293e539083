//! The offboarding: hand a leaver's mailbox to a successor without knowing either password.
//!
//! Steps, each planned before it is applied (the dry run is the plan): preflight (admin key,
//! domain, both users, IMAP, su), credentials (a su session per user, then a named API key
//! minted with it; a password reset of the leaver only on explicit request), the audit (read
//! only), forwards leaking outside off, the auto-reply, the lock, copy (the sync engine, into
//! a subfolder of the successor's mailbox, personal folders left out), grants (read access to
//! the shared mailboxes the leaver could read, merged into each ACL and verified), calendars
//! and address books shared, delegations reported (or handed over), cleanup (keys deleted and
//! sessions closed — on success, failure or Ctrl-C — and keys left by a crashed run).
//! `close` copies a last time, verifies, switches off, then suspends; `undo` reverts a run from
//! its journal. Every change is journalled with its value before and after as the step ends.
//! Imports `bluemind-api`, `sync`, `imap` (to open stores) and `config`; prints nothing.

mod account;
pub mod audit;
pub mod autoreply;
mod credentials;
mod delegations;
mod departure;
mod forwards;
mod grants;
pub mod lock;
mod preflight;
pub mod report;
pub mod runs;
mod sharing;
pub mod undo;

pub use report::{
    Action, Change, ChangeStatus, GrantReport, OffboardReport, PersonReport, RunKind, StepReport,
};

use crate::imap::{AuthMechanism, Credentials, Endpoint, ImapError, Session};
use crate::sync::{FolderRules, Journal, Reporter, SyncError, SyncOptions};
use bluemind_api::{ApiError, Client, TlsOptions};
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Instant;

/// Everything a run needs, resolved from config, environment and flags.
#[derive(Debug)]
pub struct Settings {
    /// The leaver: login or address.
    pub leaver: String,
    /// The successor: login or address.
    pub successor: String,
    /// BlueMind base URL.
    pub bluemind_url: String,
    /// The mail domain (DNS name or alias).
    pub domain: String,
    /// TLS for the REST API.
    pub api_tls: TlsOptions,
    /// The admin API key.
    pub admin_key: SecretString,
    /// The IMAP server.
    pub imap: Endpoint,
    /// Destination folder name template: `{display_name}`, `{login}`, `{email}`.
    pub folder_template: String,
    /// Extra exclude regexes (raw wire names).
    pub excludes: Vec<String>,
    /// Plan only.
    pub dry_run: bool,
    /// If su is refused, reset the leaver's password to a random one instead of stopping.
    pub reset_password: bool,
    /// IMAP connection pairs.
    pub workers: usize,
    /// Copy again what an earlier run delivered and the successor removed since.
    pub recopy_removed: bool,
    /// Read every copy's bytes back after each folder.
    pub verify: bool,
    /// Repair and append again the messages the server refuses.
    pub fix_messages: bool,
    /// Go on when the successor's quota cannot hold the leaver's mail.
    pub allow_partial: bool,
    /// Where the copy journal and the run journal live.
    pub state_dir: PathBuf,
    /// This run's id (names the keys: `offboard <run-id>`).
    pub run_id: String,
    /// Offboard or close.
    pub mode: RunKind,
    /// The departure steps beyond the mail.
    pub departure: Departure,
    /// Allow what the defaults refuse (an auto-reply over 90 days).
    pub force: bool,
    /// Folder names (any level, case-insensitive) left out as personal; empty copies them.
    pub personal_folders: Vec<String>,
}

/// The departure steps beyond the mail, each on or off.
#[derive(Debug, Clone)]
pub struct Departure {
    /// The auto-reply naming the successor (`None`: `--no-auto-reply`).
    pub auto_reply: Option<autoreply::AutoReply>,
    /// Leave the forwards that send mail outside as they are (`--keep-forwards`).
    pub keep_forwards: bool,
    /// Forward his mail to the successor for this many days (`--forward-days`).
    pub forward_days: Option<u32>,
    /// Share his calendars and address books with the successor.
    pub share_calendars: bool,
    /// Give his delegations to the successor.
    pub transfer_delegations: bool,
    /// Lock the account (keys, devices, hidden, password).
    pub lock: bool,
    /// Reset his password as part of the lock.
    pub reset_password: bool,
}

impl Default for Departure {
    fn default() -> Self {
        Departure {
            auto_reply: Some(autoreply::AutoReply {
                days: autoreply::DEFAULT_DAYS,
                template: autoreply::builtin("fr+en").unwrap_or(autoreply::Template {
                    subject: String::new(),
                    text: String::new(),
                }),
            }),
            keep_forwards: false,
            forward_days: None,
            share_calendars: true,
            transfer_delegations: false,
            lock: true,
            reset_password: true,
        }
    }
}

/// The names that say a folder is private (CNIL: personal mail is not opened). Compared with
/// each level of a folder's name, ignoring case.
pub const PERSONAL_FOLDERS: &[&str] = &[
    "Perso",
    "Personnel",
    "Personnelle",
    "Privé",
    "Prive",
    "Private",
    "Personal",
    "Privat",
    "Persönlich",
];

/// Why a run stopped. Each has its own exit code in the CLI.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The admin key does not work.
    #[error("BlueMind refused the admin API key")]
    AdminKeyRefused,
    /// BlueMind cannot be reached or answered oddly.
    #[error("BlueMind call failed")]
    Api(#[from] ApiError),
    /// The domain is not known to BlueMind.
    #[error("BlueMind knows no domain named {0:?}")]
    DomainUnknown(String),
    /// A user is not known.
    #[error("no user {name:?} in domain {domain} (the {role})")]
    UserUnknown {
        /// leaver / successor.
        role: &'static str,
        /// As given.
        name: String,
        /// Domain.
        domain: String,
    },
    /// Leaver and successor are the same person.
    #[error("the leaver and the successor are the same user ({0})")]
    SameUser(String),
    /// A user is suspended (archived): BlueMind refuses IMAP logins and su for them.
    #[error("{role} {name} is suspended (archived) in BlueMind")]
    Suspended {
        /// leaver / successor.
        role: &'static str,
        /// Login.
        name: String,
    },
    /// The admin may not open a session as the user.
    #[error("BlueMind refused to open a session as the {role} {name}: {message}")]
    SuRefused {
        /// leaver / successor.
        role: &'static str,
        /// Login.
        name: String,
        /// BlueMind's words.
        message: String,
    },
    /// The IMAP server cannot be used.
    #[error("IMAP server {host} cannot be used")]
    Imap {
        /// Host.
        host: String,
        /// Cause.
        #[source]
        source: ImapError,
    },
    /// The copy stopped.
    #[error("the copy stopped")]
    Sync(#[from] SyncError),
    /// The run journal or state cannot be written.
    #[error("cannot write the run journal in {path}")]
    Journal {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The successor's free quota is smaller than the leaver's mailbox.
    #[error(
        "the successor's mailbox has {free_kib} KiB free, the leaver's holds {needed_kib} KiB: {} KiB missing",
        needed_kib.saturating_sub(*free_kib)
    )]
    QuotaTooSmall {
        /// The leaver's usage.
        needed_kib: u64,
        /// What the successor has free.
        free_kib: u64,
    },
    /// Another run is working on the leaver or the successor.
    #[error("the {role} {user} is being handed over by run {run_id} (still running); wait for it to end")]
    Busy {
        /// leaver / successor.
        role: &'static str,
        /// The user.
        user: String,
        /// The run holding the user (as its lock file says).
        run_id: String,
    },
    /// The operating system's random source failed: no password can be made.
    #[error("no randomness for a new password: {0}")]
    NoRandomness(String),
    /// Interrupted (Ctrl-C); credentials were cleaned up.
    #[error("interrupted; the keys were deleted, a re-run resumes")]
    Interrupted,
    /// A value given is refused before anything is asked of BlueMind.
    #[error("{0}")]
    Invalid(String),
    /// BlueMind took a write but reads back something else (or some writes of a step failed).
    #[error("{0} not as written")]
    NotAsWritten(String),
    /// `close` stops before suspending: the last copy is not verified.
    #[error("the last copy is not verified ({0}); the account was not suspended")]
    NotVerified(String),
    /// No journal for that run (undo), or no earlier offboarding of the leaver (close).
    #[error("{0}")]
    RunUnknown(String),
}

/// The outcome of a run: the report, and the error that stopped it, if one did. Both are
/// given, because a failed run still reports what it did (and what it cleaned up).
#[derive(Debug)]
pub struct Outcome {
    /// What happened.
    pub report: OffboardReport,
    /// What stopped it.
    pub error: Option<WorkflowError>,
}

/// Runs (or with `dry_run`, plans) the offboarding. `interrupt` resolves on Ctrl-C.
pub async fn run(
    s: &Settings,
    reporter: &mut dyn Reporter,
    interrupt: impl std::future::Future<Output = ()>,
) -> Outcome {
    let mut report = OffboardReport::new(&s.run_id, s.dry_run);
    report.kind = s.mode;
    let started = Instant::now();
    let admin = match Client::new(&s.bluemind_url, s.admin_key.clone(), &s.api_tls) {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                report,
                error: Some(e.into()),
            };
        }
    };
    let pre = match report.step("preflight", preflight::check(&admin, s)).await {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                report,
                error: Some(e),
            };
        }
    };
    report.domain = Some(pre.domain_name.clone());
    report.domain_uid = Some(pre.domain_uid.clone());
    report.quota = pre.quota;
    report.leaver = Some(pre.leaver.clone());
    report.successor = Some(pre.successor.clone());

    // One run per user at a time, taken before any session is opened; a dry run changes
    // nothing, so it takes no lock.
    let _locks = if s.dry_run {
        None
    } else {
        let taken = lock::lock_user(&s.state_dir, "leaver", &pre.leaver.email, &s.run_id).and_then(|a| {
            lock::lock_user(&s.state_dir, "successor", &pre.successor.email, &s.run_id).map(|b| (a, b))
        });
        match taken {
            Ok(l) => Some(l),
            Err(e) => {
                report.push_step("lock", Err(e.to_string()), None);
                return Outcome {
                    report,
                    error: Some(e),
                };
            }
        }
    };
    let mut creds = credentials::Credentials::default();
    let result = {
        let work = async {
            match s.mode {
                RunKind::Close => close_steps(&admin, s, &pre, &mut creds, &mut report, reporter).await,
                _ => main_steps(&admin, s, &pre, &mut creds, &mut report, reporter).await,
            }
        };
        tokio::pin!(work);
        tokio::pin!(interrupt);
        tokio::select! {
            r = &mut work => r,
            _ = &mut interrupt => Err(WorkflowError::Interrupted),
        }
    };
    // Always: keys deleted, sessions closed.
    let cleanup = credentials::cleanup(&admin, &pre, &mut creds).await;
    report.credentials = creds.summary();
    report.push_step(
        "cleanup",
        cleanup.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        None,
    );
    // Suspension comes last: BlueMind refuses su to a suspended user, and the keys were
    // deleted with his session just above.
    let result = match (result, &cleanup) {
        (Ok(()), Ok(())) if s.mode == RunKind::Close => {
            let ctx = departure::Ctx {
                admin: &admin,
                s,
                pre: &pre,
                leaver_session: None,
            };
            let mut out = departure::StepOut::default();
            let t = Instant::now();
            let r = account::archive(&ctx, &mut out).await;
            report.record("suspend", t, &r, out);
            r
        }
        (r, _) => r,
    };
    report.duration_secs = started.elapsed().as_secs_f64();
    let error = result.err().or(cleanup.err().map(WorkflowError::from));
    report.finish(error.is_none());
    checkpoint(&report, s);
    Outcome { report, error }
}

/// Writes the run journal as it stands (a dry run writes nothing anywhere).
fn checkpoint(report: &OffboardReport, s: &Settings) {
    if s.dry_run {
        return;
    }
    if let Err(e) = report.write_journal(&s.state_dir) {
        tracing::warn!("{e}");
    }
}

/// Runs one departure step: a failure is recorded and the run goes on (the step's own
/// changes say what was done); the journal is written as it ends. Says whether it went
/// through.
async fn departure_step<F>(report: &mut OffboardReport, s: &Settings, name: &str, f: F) -> bool
where
    F: std::future::Future<Output = (Result<(), WorkflowError>, departure::StepOut)>,
{
    let t = Instant::now();
    let (r, out) = f.await;
    if let Err(e) = &r {
        tracing::warn!("step {name}: {e}");
    }
    report.record(name, t, &r, out);
    checkpoint(report, s);
    r.is_ok()
}

/// Wraps a step function so it owns its output.
macro_rules! step {
    ($f:expr) => {
        async {
            let mut out = departure::StepOut::default();
            let r = $f(&mut out).await;
            (r, out)
        }
    };
}

async fn main_steps(
    admin: &Client,
    s: &Settings,
    pre: &preflight::Preflight,
    creds: &mut credentials::Credentials,
    report: &mut OffboardReport,
    reporter: &mut dyn Reporter,
) -> Result<(), WorkflowError> {
    credential_steps(admin, s, pre, creds, report).await?;
    checkpoint(report, s);
    let ctx = departure::Ctx {
        admin,
        s,
        pre,
        leaver_session: creds.leaver_session(),
    };
    let t = Instant::now();
    let audit = audit::collect(&ctx).await;
    report.push_step("audit", Ok(()), Some(t.elapsed().as_millis() as u64));
    for line in audit.lines() {
        report.note("audit", line);
    }
    report.audit = Some(audit.clone());
    let d = &s.departure;
    if d.keep_forwards {
        report.push_step("forwards", Ok(()), None);
        report.note("forwards", "left as they are (--keep-forwards)");
    } else {
        departure_step(
            report,
            s,
            "forwards",
            step!(|o| forwards::switch_off(&ctx, false, o)),
        )
        .await;
    }
    if let Some(days) = d.forward_days {
        departure_step(
            report,
            s,
            "forward to successor",
            step!(|o| forwards::to_successor(&ctx, days, o)),
        )
        .await;
    }
    if let Some(a) = &d.auto_reply {
        departure_step(report, s, "auto-reply", step!(|o| autoreply::apply(&ctx, a, o))).await;
    }
    if d.lock {
        // A password the su fallback set is already random and dropped at cleanup; resetting
        // it again would cut the copy's login.
        let done_by = if creds.summary().leaver_password_reset {
            Some(format!("{} (--reset-password, for the copy)", s.run_id))
        } else {
            runs::password_reset_by(&s.state_dir, &pre.leaver.uid)
        };
        departure_step(
            report,
            s,
            "lock",
            step!(|o| account::lock(&ctx, d.reset_password, done_by.clone(), o)),
        )
        .await;
    }

    copy_step(s, pre, creds, report, reporter).await?;

    let grants = report.step("grants", grants::apply(admin, s, pre)).await?;
    report.changes.extend(grants::changes(&grants, pre, s.dry_run));
    report.grants = grants;
    checkpoint(report, s);
    if d.share_calendars {
        departure_step(
            report,
            s,
            "calendars and contacts",
            step!(|o| sharing::apply(&ctx, o)),
        )
        .await;
    }
    departure_step(
        report,
        s,
        "delegations",
        step!(|o| delegations::apply(&ctx, &audit, d.transfer_delegations, o)),
    )
    .await;
    Ok(())
}

/// A su session per user, the keys earlier runs left, and (for real) this run's keys.
async fn credential_steps(
    admin: &Client,
    s: &Settings,
    pre: &preflight::Preflight,
    creds: &mut credentials::Credentials,
    report: &mut OffboardReport,
) -> Result<(), WorkflowError> {
    report
        .step("sessions", credentials::open_sessions(admin, s, pre, creds))
        .await?;
    report
        .step("leftover keys", credentials::sweep_leftovers(creds, s))
        .await?;
    if !s.dry_run {
        report
            .step("api keys", credentials::mint_keys(creds, &s.run_id))
            .await?;
    }
    Ok(())
}

/// `offboard close`: a last incremental copy, verified; the auto-reply and forwards off.
/// The suspension itself comes after the cleanup (see [`run`]).
async fn close_steps(
    admin: &Client,
    s: &Settings,
    pre: &preflight::Preflight,
    creds: &mut credentials::Credentials,
    report: &mut OffboardReport,
    reporter: &mut dyn Reporter,
) -> Result<(), WorkflowError> {
    credential_steps(admin, s, pre, creds, report).await?;
    copy_step(s, pre, creds, report, reporter).await?;
    if !s.dry_run {
        let copy = report.copy.as_ref();
        let why = match copy {
            None => Some("no copy".to_string()),
            Some(c) if c.aborted.is_some() => c.aborted.clone(),
            Some(c) if c.failures().count() > 0 => {
                Some(format!("{} message(s) failed", c.failures().count()))
            }
            Some(c) if c.folders.iter().any(|f| !f.verified) => Some(format!(
                "the counts of {} folder(s) could not be read back",
                c.folders.iter().filter(|f| !f.verified).count()
            )),
            Some(_) => None,
        };
        if let Some(why) = why {
            report.push_step("verify", Err(why.clone()), None);
            return Err(WorkflowError::NotVerified(why));
        }
        report.push_step("verify", Ok(()), None);
        report.note(
            "verify",
            "every folder's count read back from the successor's mailbox",
        );
    }
    let ctx = departure::Ctx {
        admin,
        s,
        pre,
        leaver_session: creds.leaver_session(),
    };
    let reply_off = departure_step(report, s, "auto-reply", step!(|o| autoreply::switch_off(&ctx, o))).await;
    let forwards_off = departure_step(
        report,
        s,
        "forwards",
        step!(|o| forwards::switch_off(&ctx, true, o)),
    )
    .await;
    // Suspend only when both went through: a suspended account cannot be su'd to fix them.
    match (reply_off, forwards_off) {
        (true, true) => Ok(()),
        (false, _) => Err(WorkflowError::NotAsWritten("step auto-reply".into())),
        (true, false) => Err(WorkflowError::NotAsWritten("step forwards".into())),
    }
}

/// Copy: the leaver's folders into a subfolder of the successor's mailbox.
async fn copy_step(
    s: &Settings,
    pre: &preflight::Preflight,
    creds: &credentials::Credentials,
    report: &mut OffboardReport,
    reporter: &mut dyn Reporter,
) -> Result<(), WorkflowError> {
    let folder = folder_name(&s.folder_template, &pre.leaver);
    report.folder = Some(folder.clone());
    let mut rules = FolderRules::offboarding(&folder);
    rules.skip_personal = s.personal_folders.clone();
    for e in &s.excludes {
        rules
            .exclude
            .push(crate::sync::mapping::compile(e).map_err(|err| {
                WorkflowError::Sync(SyncError::Mapping(crate::sync::mapping::MappingError {
                    name: e.clone(),
                    reason: err.to_string(),
                }))
            })?);
    }
    let opts = SyncOptions {
        rules,
        dry_run: s.dry_run,
        now: chrono::Utc::now().timestamp(),
        keep_removals: !s.recopy_removed,
        verify: s.verify,
        fix_messages: s.fix_messages,
        ..Default::default()
    };
    // A copy that stops keeps the report of what it did until then.
    let mut partial = None;
    let mut imap_quota = None;
    let (leaver_secret, successor_secret) = creds.imap_secrets()?;
    let copy = async {
        let n = if s.dry_run { 1 } else { s.workers.max(1) };
        // All connections at once: over a distant link each login is several round trips.
        let pairs = (0..n).map(|_| async {
            let (a, b) = tokio::join!(
                imap_login(&s.imap, &pre.leaver.email, &leaver_secret),
                imap_login(&s.imap, &pre.successor.email, &successor_secret)
            );
            Ok::<_, WorkflowError>((a?, b?))
        });
        let mut workers = Vec::with_capacity(n);
        for pair in futures::future::join_all(pairs).await {
            workers.push(pair?);
        }
        // BlueMind gave no quota: ask IMAP (GETQUOTAROOT) before any message moves.
        if pre.quota.is_none()
            && let Some((leaver, successor)) = workers.first_mut()
        {
            imap_quota_check(leaver, successor, s, &mut imap_quota).await?;
        }
        let mut state = if s.dry_run {
            None
        } else {
            let (leaver, successor) = (&pre.leaver.email, &pre.successor.email);
            let server = s.imap.journal_label();
            let id = crate::sync::journal::pair_id(&server, leaver, &server, successor);
            // Named by earlier versions: host and port, then host alone.
            let host = format!("{}:{}", s.imap.host, s.imap.port);
            let with_port = crate::sync::journal::pair_id(&host, leaver, &host, successor);
            let host_only = crate::sync::journal::pair_id(&s.imap.host, leaver, &s.imap.host, successor);
            let journal = Journal::open_adopting(&s.state_dir.join("sync"), &id, &[&with_port, &host_only]);
            Some(journal.map_err(|e| WorkflowError::Sync(e.into()))?)
        };
        let r = crate::sync::run(&mut workers, &opts, state.as_mut(), reporter).await;
        crate::imap::logout_all(workers).await;
        r.map_err(|a| {
            partial = Some(*a.report);
            WorkflowError::Sync(a.error)
        })
    };
    let copied = report.step("copy", copy).await;
    if imap_quota.is_some() {
        report.quota = imap_quota;
    }
    let copied = match copied {
        Ok(c) => c,
        Err(e) => {
            report.copy = partial;
            checkpoint(report, s);
            return Err(e);
        }
    };
    report.personal_folders = copied
        .skipped_folders
        .iter()
        .filter(|f| f.personal)
        .map(|f| f.source_utf8.clone())
        .collect();
    if !report.personal_folders.is_empty() {
        report.note(
            "copy",
            format!(
                "left out as personal: {} (--include-personal copies them)",
                report.personal_folders.join(", ")
            ),
        );
    }
    report.copy = Some(copied);
    checkpoint(report, s);
    Ok(())
}

/// `offboard audit LEAVER`: where his mail goes and who can see it; changes nothing (the su
/// session that lists his own API keys is closed at once).
pub async fn audit_only(s: &Settings) -> Outcome {
    let mut report = OffboardReport::new(&s.run_id, true);
    let admin = match Client::new(&s.bluemind_url, s.admin_key.clone(), &s.api_tls) {
        Ok(c) => c,
        Err(e) => {
            report.finish(false);
            return Outcome {
                report,
                error: Some(e.into()),
            };
        }
    };
    let pre = match report.step("preflight", preflight::leaver_only(&admin, s)).await {
        Ok(p) => p,
        Err(e) => {
            report.finish(false);
            return Outcome {
                report,
                error: Some(e),
            };
        }
    };
    report.domain = Some(pre.domain_name.clone());
    report.domain_uid = Some(pre.domain_uid.clone());
    report.leaver = Some(pre.leaver.clone());
    let session = match admin
        .su(&format!("{}@{}", pre.leaver.login, pre.domain_name))
        .await
    {
        Ok(bluemind_api::SuOutcome::Ok(r)) => r.auth_key.map(|k| admin.with_key(k)),
        _ => None,
    };
    let ctx = departure::Ctx {
        admin: &admin,
        s,
        pre: &pre,
        leaver_session: session.as_ref(),
    };
    let t = Instant::now();
    let audit = audit::collect(&ctx).await;
    if let Some(session) = session
        && let Err(e) = session.logout().await
    {
        tracing::warn!("closing the session as the leaver: {e}");
    }
    report.push_step("audit", Ok(()), Some(t.elapsed().as_millis() as u64));
    for line in audit.lines() {
        report.note("audit", line);
    }
    report.audit = Some(audit);
    report.finish(true);
    Outcome { report, error: None }
}

/// `offboard undo RUN-ID`: reverts what the run changed and is still as it left it.
pub async fn undo(s: &Settings, of: &str) -> Outcome {
    let mut report = OffboardReport::new(&s.run_id, s.dry_run);
    report.kind = RunKind::Undo;
    report.undoes = Some(of.to_string());
    let started = Instant::now();
    let fail = |mut report: OffboardReport, e: WorkflowError| {
        report.finish(false);
        Outcome {
            report,
            error: Some(e),
        }
    };
    let Some(journal) = runs::find(&s.state_dir, of) else {
        return fail(
            report,
            WorkflowError::RunUnknown(format!(
                "no run {of} in {} (`offboard runs` lists them)",
                s.state_dir.join("runs").display()
            )),
        );
    };
    report.domain = journal.domain.clone();
    report.domain_uid = journal.domain_uid.clone();
    report.leaver = journal.leaver.clone();
    report.successor = journal.successor.clone();
    let (Some(domain_uid), Some(leaver)) = (journal.domain_uid.clone(), journal.leaver.clone()) else {
        report.push_step("undo", Ok(()), None);
        report.note("undo", "the run changed nothing in BlueMind");
        report.finish(true);
        return Outcome { report, error: None };
    };
    let admin = match Client::new(&s.bluemind_url, s.admin_key.clone(), &s.api_tls) {
        Ok(c) => c,
        Err(e) => return fail(report, e.into()),
    };
    match admin.ping().await {
        Err(ApiError::Unauthorized { .. }) => return fail(report, WorkflowError::AdminKeyRefused),
        Err(e) => return fail(report, e.into()),
        Ok(()) => {}
    }
    let _locks = if s.dry_run {
        None
    } else {
        let successor = journal
            .successor
            .as_ref()
            .map(|p| p.email.clone())
            .unwrap_or_default();
        let taken = lock::lock_user(&s.state_dir, "leaver", &leaver.email, &s.run_id)
            .and_then(|a| lock::lock_user(&s.state_dir, "successor", &successor, &s.run_id).map(|b| (a, b)));
        match taken {
            Ok(l) => Some(l),
            Err(e) => return fail(report, e),
        }
    };
    let u = undo::Undo {
        admin: &admin,
        domain_uid: &domain_uid,
        dry_run: s.dry_run,
    };
    let t = Instant::now();
    // Newest first: a suspension is lifted before anything else.
    for c in journal.changes.iter().rev() {
        let item = u.revert(c).await;
        report.undo.push(item);
    }
    // Each ACL write mailed the grantee "… shared with you" (AclChangedNotificationHook).
    let shares = journal
        .changes
        .iter()
        .filter(|c| c.action == Action::Acl && c.status == ChangeStatus::Applied)
        .count();
    if shares > 0 {
        report.undo.push(undo::UndoItem {
            action: Action::Acl,
            target: String::new(),
            label: format!("the \"shared with you\" mails BlueMind sent for {shares} share(s)"),
            status: "irreversible".into(),
            detail: "sent mail cannot be unsent".into(),
        });
    }
    let failed = report.undo.iter().filter(|i| i.status == "failed").count();
    report.push_step(
        "undo",
        if failed == 0 {
            Ok(())
        } else {
            Err(format!("{failed} change(s) could not be reverted"))
        },
        Some(t.elapsed().as_millis() as u64),
    );
    report.duration_secs = started.elapsed().as_secs_f64();
    report.finish(failed == 0);
    checkpoint(&report, s);
    let error = (failed > 0).then(|| WorkflowError::NotAsWritten(format!("{failed} change(s) of run {of}")));
    Outcome { report, error }
}

/// The IMAP side of the quota check, for servers BlueMind's REST figure does not cover:
/// the leaver's usage against what the successor's quota root has free.
async fn imap_quota_check(
    leaver: &mut Session,
    successor: &mut Session,
    s: &Settings,
    out: &mut Option<report::QuotaReport>,
) -> Result<(), WorkflowError> {
    let imap = |source| WorkflowError::Imap {
        host: s.imap.host.clone(),
        source,
    };
    let (Some((used, _)), Some((succ_used, limit))) = (
        leaver.storage_quota().await.map_err(imap)?,
        successor.storage_quota().await.map_err(imap)?,
    ) else {
        return Ok(());
    };
    let free = limit.saturating_sub(succ_used);
    let fits = used <= free;
    *out = Some(report::QuotaReport {
        leaver_used_kib: used,
        successor_used_kib: succ_used,
        successor_quota_kib: Some(limit),
        fits,
    });
    if !fits && !s.allow_partial {
        return Err(WorkflowError::QuotaTooSmall {
            needed_kib: used,
            free_kib: free,
        });
    }
    Ok(())
}

async fn imap_login(ep: &Endpoint, email: &str, secret: &SecretString) -> Result<Session, WorkflowError> {
    let c = Credentials {
        user: email.to_string(),
        secret: secret.clone(),
        mechanism: AuthMechanism::Auto,
        authzid: None,
    };
    Session::connect(ep, &c)
        .await
        .map_err(|source| WorkflowError::Imap {
            host: ep.host.clone(),
            source,
        })
}

/// The destination folder: the template with the leaver's names filled in. A `/` from a
/// display name would create a hierarchy: it becomes `-`.
pub fn folder_name(template: &str, leaver: &PersonReport) -> String {
    let display = leaver.display_name.replace('/', "-");
    let name = template
        .replace("{display_name}", &display)
        .replace("{login}", &leaver.login)
        .replace("{email}", &leaver.email);
    let name = name.trim().to_string();
    if name.is_empty() {
        leaver.login.clone()
    } else {
        name
    }
}
