//! What a run did, for people and programs, and its journal in the state directory. Holds no
//! secret: keys are counted, never shown.

use crate::sync::SyncReport;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A user as resolved.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
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
    /// What the step found or did, one sentence each (departure steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a change touches; each kind has its own undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// One subject's entries in a container's ACL (before/after: its verbs).
    Acl,
    /// A container subscription of the successor (before/after: subscribed or not).
    Subscription,
    /// The leaver's auto-reply (before/after: the `Vacation` JSON).
    Vacation,
    /// The leaver's forwarding (before/after: the `Forwarding` JSON).
    Forwarding,
    /// One existing rule of the leaver (before/after: the rule JSON).
    RuleUpdate,
    /// A rule this run created (after: the rule JSON with its id).
    RuleCreate,
    /// Someone's delegation rule (before/after: the `DelegationRule` JSON).
    DelegationRule,
    /// The leaver hidden from the directory (before/after: the flag).
    Hidden,
    /// The leaver suspended (before/after: the flag).
    Archived,
    /// The leaver's password set to a random one nobody knows (irreversible).
    Password,
    /// One of the leaver's own API keys deleted (irreversible; only its name is kept).
    ApiKeyDeleted,
    /// A mobile device's partnership removed (irreversible: the phone must pair again).
    DeviceUnpaired,
}

impl Action {
    /// Whether an undo can put it back.
    pub fn reversible(self) -> bool {
        !matches!(
            self,
            Action::Password | Action::ApiKeyDeleted | Action::DeviceUnpaired
        )
    }
}

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// A dry run: it would be made.
    Planned,
    /// Made (and read back where BlueMind allows).
    Applied,
    /// Tried and refused.
    Failed,
}

/// One change to BlueMind, with the value before and after: what the journal keeps for
/// `offboard undo`, and what the report shows.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema, serde::Deserialize)]
pub struct Change {
    /// The step that made it (`auto-reply`, `forwards`, `calendars`…).
    pub step: String,
    /// What kind of thing.
    pub action: Action,
    /// Its id: container uid, mailbox uid, `mailbox/rule-id`, device uid, user uid.
    pub target: String,
    /// For people: "calendar Bertrand Dupré", "rule \"Vers perso\"".
    pub label: String,
    /// Whose entries, for ACL and subscription changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The value before.
    pub before: serde_json::Value,
    /// The value after (as read back when applied; as planned in a dry run).
    pub after: serde_json::Value,
    /// Planned, applied or failed.
    pub status: ChangeStatus,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One shared mailbox the successor gets.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
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
    /// Whether this run subscribed her (or would).
    #[serde(skip)]
    pub subscribed_now: bool,
    /// The error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What was done with credentials.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
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

/// What a run was.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// `offboard LEAVER --to SUCCESSOR`.
    #[default]
    Offboard,
    /// `offboard close LEAVER`.
    Close,
    /// `offboard undo RUN-ID`.
    Undo,
}

/// The whole run.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct OffboardReport {
    /// Version of this document's shape (`schema/report.schema.json`).
    pub schema_version: u32,
    /// Run id.
    pub run_id: String,
    /// Offboard, close or undo.
    pub kind: RunKind,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// Plan only.
    pub dry_run: bool,
    /// `ok`, `failed`, or `planned` (a dry run); set when the run ends.
    pub outcome: String,
    /// The run an undo reverts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    /// Domain.
    pub domain: Option<String>,
    /// Domain uid (BlueMind's technical name), for an undo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_uid: Option<String>,
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
    /// Where the leaver's mail goes and who can see it, read before any change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<super::audit::AuditReport>,
    /// The leaver's folders left out as personal (`--include-personal` copies them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub personal_folders: Vec<String>,
    /// Every change to BlueMind, in order, with before and after.
    pub changes: Vec<Change>,
    /// An undo: what became of each change of the run it reverts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<super::undo::UndoItem>,
    /// Wall time.
    pub duration_secs: f64,
    /// The process's exit code (set when the report is printed; see `offboard --help`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
}

/// Version of the report's JSON shape; raised when a field changes meaning or goes (added
/// fields keep it).
pub const SCHEMA_VERSION: u32 = 2;

/// The JSON Schema of the report (`schema/report.schema.json` in the repository, made from
/// these types and their doc comments; a test keeps the file equal to it).
pub fn json_schema() -> serde_json::Value {
    // The serialising contract: a field left out when empty is not required.
    let generator = schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<OffboardReport>()).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            serde_json::json!(format!(
                "https://offboard.invalid/schema/report-v{SCHEMA_VERSION}.json"
            )),
        );
        obj.insert(
            "title".into(),
            serde_json::json!(format!("offboard report, schema version {SCHEMA_VERSION}")),
        );
    }
    schema
}

impl OffboardReport {
    /// An empty report.
    pub fn new(run_id: &str, dry_run: bool) -> Self {
        OffboardReport {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.into(),
            kind: RunKind::Offboard,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            dry_run,
            outcome: String::new(),
            undoes: None,
            domain: None,
            domain_uid: None,
            leaver: None,
            successor: None,
            folder: None,
            steps: Vec::new(),
            credentials: CredentialReport::default(),
            quota: None,
            copy: None,
            grants: Vec::new(),
            audit: None,
            personal_folders: Vec::new(),
            changes: Vec::new(),
            undo: Vec::new(),
            duration_secs: 0.0,
            exit_code: None,
        }
    }

    /// Records a departure step: its outcome, notes and changes.
    pub(super) fn record<E: std::fmt::Display>(
        &mut self,
        name: &str,
        started: Instant,
        r: &Result<(), E>,
        out: super::departure::StepOut,
    ) {
        self.steps.push(StepReport {
            name: name.into(),
            status: if r.is_ok() { "ok".into() } else { "failed".into() },
            duration_ms: started.elapsed().as_millis() as u64,
            error: r.as_ref().err().map(|e| e.to_string()),
            notes: out.notes,
        });
        self.changes.extend(out.changes);
    }

    /// Sets the outcome as the run ends.
    pub fn finish(&mut self, ok: bool) {
        self.outcome = if self.dry_run {
            "planned"
        } else if ok && self.steps.iter().all(|s| s.status == "ok") {
            "ok"
        } else {
            "failed"
        }
        .into();
    }

    /// Adds a note to the last step recorded with `name`.
    pub fn note(&mut self, step: &str, note: impl Into<String>) {
        if let Some(s) = self.steps.iter_mut().rev().find(|s| s.name == step) {
            s.notes.push(note.into());
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
            notes: Vec::new(),
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
            notes: Vec::new(),
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

#[cfg(test)]
mod tests {
    /// The schema file in the repository is the one the types make.
    #[test]
    fn the_schema_file_is_the_one_the_types_make() {
        let file = include_str!("../../schema/report.schema.json");
        let made = format!(
            "{}\n",
            serde_json::to_string_pretty(&super::json_schema()).unwrap()
        );
        assert!(
            file == made,
            "schema/report.schema.json is stale: run `cargo run -- schema > schema/report.schema.json`"
        );
    }
}
