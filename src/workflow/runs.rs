//! The run journals (`<state>/runs/<run-id>.json`, one per real run, written as each step
//! ends so a run that stops halfway leaves what it did): listed by `offboard runs`, read by
//! `offboard undo` and `offboard close`.

use super::report::{Action, Change, ChangeStatus, PersonReport, RunKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a journal says, as far as later commands need it. Unknown fields are ignored and
/// missing ones take their default, so journals of earlier versions still read.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Journal {
    /// Run id.
    pub run_id: String,
    /// Offboard, close or undo.
    pub kind: RunKind,
    /// When it started.
    pub started_at: String,
    /// `ok`, `failed`, or empty (a run that did not end).
    pub outcome: String,
    /// The run an undo reverts.
    pub undoes: Option<String>,
    /// Domain as given.
    pub domain: Option<String>,
    /// Domain uid.
    pub domain_uid: Option<String>,
    /// The leaver.
    pub leaver: Option<PersonReport>,
    /// The successor.
    pub successor: Option<PersonReport>,
    /// Destination folder.
    pub folder: Option<String>,
    /// Changes.
    pub changes: Vec<Change>,
}

/// One line of `offboard runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Offboard, close or undo.
    pub kind: RunKind,
    /// When it started.
    pub started_at: String,
    /// The leaver's login.
    pub leaver: Option<String>,
    /// The successor's login.
    pub successor: Option<String>,
    /// `ok`, `failed`, or `interrupted` (the journal of a run that never ended).
    pub outcome: String,
    /// Changes applied.
    pub changes: usize,
    /// The run an undo reverted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    /// The journal file.
    pub path: PathBuf,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// Every journal, oldest first (run ids start with the UTC time). Unreadable files are skipped
/// with a warning.
pub fn all(state_dir: &Path) -> Vec<(PathBuf, Journal)> {
    let Ok(entries) = std::fs::read_dir(dir(state_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Journal)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(
            |p| match std::fs::read(&p).map(|b| serde_json::from_slice::<Journal>(&b)) {
                Ok(Ok(j)) => Some((p, j)),
                Ok(Err(e)) => {
                    tracing::warn!("{}: not a run journal ({e})", p.display());
                    None
                }
                Err(e) => {
                    tracing::warn!("{}: {e}", p.display());
                    None
                }
            },
        )
        .collect();
    out.sort_by(|a, b| (&a.1.started_at, &a.1.run_id).cmp(&(&b.1.started_at, &b.1.run_id)));
    out
}

/// The summaries for `offboard runs`.
pub fn list(state_dir: &Path) -> Vec<RunSummary> {
    all(state_dir)
        .into_iter()
        .map(|(path, j)| RunSummary {
            run_id: j.run_id.clone(),
            kind: j.kind,
            started_at: j.started_at.clone(),
            leaver: j.leaver.as_ref().map(|p| p.login.clone()),
            successor: j.successor.as_ref().map(|p| p.login.clone()),
            outcome: if j.outcome.is_empty() {
                "interrupted".into()
            } else {
                j.outcome.clone()
            },
            changes: j
                .changes
                .iter()
                .filter(|c| c.status == ChangeStatus::Applied)
                .count(),
            undoes: j.undoes.clone(),
            path,
        })
        .collect()
}

/// One journal by run id.
pub fn find(state_dir: &Path, run_id: &str) -> Option<Journal> {
    // A run id is a file name: nothing that climbs out of the directory.
    if run_id.is_empty() || run_id.contains(['/', '\\']) || run_id.starts_with('.') {
        return None;
    }
    let bytes = std::fs::read(dir(state_dir).join(format!("{run_id}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The latest offboarding of this leaver (login or address), for `offboard close`.
pub fn latest_offboarding(state_dir: &Path, leaver: &str) -> Option<Journal> {
    all(state_dir).into_iter().rev().map(|(_, j)| j).find(|j| {
        j.kind == RunKind::Offboard
            && j.leaver
                .as_ref()
                .is_some_and(|p| p.login == leaver || p.email.eq_ignore_ascii_case(leaver))
    })
}

/// The run that already reset this leaver's password, if one did.
pub fn password_reset_by(state_dir: &Path, leaver_uid: &str) -> Option<String> {
    all(state_dir).into_iter().rev().find_map(|(_, j)| {
        j.changes
            .iter()
            .any(|c| {
                c.action == Action::Password && c.status == ChangeStatus::Applied && c.target == leaver_uid
            })
            .then_some(j.run_id)
    })
}
