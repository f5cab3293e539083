//! The offboarding: hand a leaver's mailbox to a successor without knowing either password.
//!
//! Steps, each planned before it is applied (the dry run is the plan): preflight (admin key,
//! domain, both users, IMAP, su), credentials (a su session per user, then a named API key
//! minted with it; a password reset of the leaver only on explicit request), copy (the sync
//! engine, into a subfolder of the successor's mailbox), grants (read access to the shared
//! mailboxes the leaver could read, merged into each ACL and verified), cleanup (keys deleted
//! and sessions closed — on success, failure or Ctrl-C — and keys left by a crashed run).
//! Imports `bluemind-api`, `sync`, `imap` (to open stores) and `config`; prints nothing.

mod credentials;
mod grants;
pub mod lock;
mod preflight;
pub mod report;

pub use report::{GrantReport, OffboardReport, PersonReport, StepReport};

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
}

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
        let work = main_steps(&admin, s, &pre, &mut creds, &mut report, reporter);
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
    report.duration_secs = started.elapsed().as_secs_f64();
    let error = result.err().or(cleanup.err().map(WorkflowError::from));
    if let Err(e) = report.write_journal(&s.state_dir) {
        tracing::warn!("{e}");
    }
    Outcome { report, error }
}

async fn main_steps(
    admin: &Client,
    s: &Settings,
    pre: &preflight::Preflight,
    creds: &mut credentials::Credentials,
    report: &mut OffboardReport,
    reporter: &mut dyn Reporter,
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

    // Copy: the leaver's folders into a subfolder of the successor's mailbox.
    let folder = folder_name(&s.folder_template, &pre.leaver);
    report.folder = Some(folder.clone());
    let mut rules = FolderRules::offboarding(&folder);
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
            return Err(e);
        }
    };
    report.copy = Some(copied);

    let grants = report.step("grants", grants::apply(admin, s, pre)).await?;
    report.grants = grants;
    Ok(())
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
