//! What a run did, for people and programs, and its journal in the state directory. Holds no
//! secret: keys are counted, never shown.

use crate::sync::SyncReport;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A user as resolved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonReport {
    /// User uid.
    pub uid: String,
    /// Login.
    pub login: String,
    /// Default address (the IMAP login).
    pub email: String,
    /// Display name.
    pub display_name: String,
}

/// One step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Step name.
    pub name: String,
    /// `ok` or `failed`.
    pub status: String,
    /// Duration.
    pub duration_ms: u64,
    /// Error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One shared mailbox the successor gets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrantReport {
    /// Container uid.
    pub container: String,
    /// Mailbox name.
    pub mailbox: String,
    /// USER or MAILSHARE.
    pub kind: String,
    /// The successor's verbs before.
    pub before: Vec<String>,
    /// The successor's verbs after (planned, in a dry run).
    pub after: Vec<String>,
    /// `added`, `already`, `planned`, or `failed`.
    pub status: String,
    /// How the successor already reads it without an entry of her own (`group compta-team`,
    /// `a public grant`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Whether the successor is (or would be) subscribed.
    pub subscribed: bool,
    /// The error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What was done with credentials.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CredentialReport {
    /// `api_key`, `session` (dry run) or `password_reset`.
    pub method: String,
    /// Keys minted by this run.
    pub keys_minted: u32,
    /// Keys deleted at the end.
    pub keys_deleted: u32,
    /// Keys of crashed runs found and deleted.
    pub leftover_keys_deleted: u32,
    /// Keys of earlier runs found (a dry run only counts them; a real run deletes those
    /// whose run is not alive).
    pub leftover_keys_found: u32,
    /// Keys of a run still in progress, left alone.
    pub leftover_keys_of_live_runs: u32,
    /// Whether the leaver's password was reset (only with `--reset-password`).
    pub leaver_password_reset: bool,
}

/// The quotas read before the copy, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QuotaReport {
    /// The leaver's mailbox usage (all folders).
    pub leaver_used_kib: u64,
    /// The successor's usage.
    pub successor_used_kib: u64,
    /// The successor's quota; `None` is unlimited.
    pub successor_quota_kib: Option<u64>,
    /// Whether the leaver's mail fits in what the successor has free.
    pub fits: bool,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OffboardReport {
    /// Run id.
    pub run_id: String,
    /// Plan only.
    pub dry_run: bool,
    /// Domain.
    pub domain: Option<String>,
    /// The leaver.
    pub leaver: Option<PersonReport>,
    /// The successor.
    pub successor: Option<PersonReport>,
    /// Destination folder in the successor's mailbox.
    pub folder: Option<String>,
    /// Steps in order.
    pub steps: Vec<StepReport>,
    /// Credentials.
    pub credentials: CredentialReport,
    /// The quotas, when BlueMind said.
    pub quota: Option<QuotaReport>,
    /// The copy.
    pub copy: Option<SyncReport>,
    /// The grants.
    pub grants: Vec<GrantReport>,
    /// Wall time.
    pub duration_secs: f64,
}

impl OffboardReport {
    /// An empty report.
    pub fn new(run_id: &str, dry_run: bool) -> Self {
        OffboardReport {
            run_id: run_id.into(),
            dry_run,
            domain: None,
            leaver: None,
            successor: None,
            folder: None,
            steps: Vec::new(),
            credentials: CredentialReport::default(),
            quota: None,
            copy: None,
            grants: Vec::new(),
            duration_secs: 0.0,
        }
    }

    /// Runs a step, timing and recording it.
    pub async fn step<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let t = Instant::now();
        let r = f.await;
        let err = r.as_ref().err().map(|e| e.to_string());
        self.steps.push(StepReport {
            name: name.into(),
            status: if err.is_none() {
                "ok".into()
            } else {
                "failed".into()
            },
            duration_ms: t.elapsed().as_millis() as u64,
            error: err,
        });
        r
    }

    /// Records a step that was not timed.
    pub fn push_step(&mut self, name: &str, r: Result<(), String>, ms: Option<u64>) {
        let status = if r.is_ok() { "ok" } else { "failed" };
        self.steps.push(StepReport {
            name: name.into(),
            status: status.into(),
            duration_ms: ms.unwrap_or(0),
            error: r.err(),
        });
    }

    /// Writes the report as the run's journal: `<state>/runs/<run-id>.json`, mode 0600.
    pub fn write_journal(&self, state_dir: &Path) -> Result<PathBuf, String> {
        let dir = state_dir.join("runs");
        crate::sync::journal::create_private_dir(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.run_id));
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_private(&path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}
