//! What a run did, for people (the closing summary) and programs (JSON), and the reporter
//! trait through which progress leaves the engine.

use super::mapping::FolderMapping;
use crate::store::{FailureKind, StoreError, Uid};

/// What made a whole folder fail, for exit codes and advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FolderFailureKind {
    /// The destination folder (or a parent) could not be created.
    Create,
    /// A folder could not be opened.
    Select,
    /// The source's messages could not be listed or read.
    Fetch,
    /// The destination refused what it was given.
    Append,
    /// The destination is over quota.
    OverQuota,
    /// The connection failed and could not be restored, or the run stopped before the folder
    /// was done.
    Connection,
    /// After the copy the destination held fewer messages than it had acknowledged.
    CountCheck,
}

impl From<FailureKind> for FolderFailureKind {
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::OverQuota => FolderFailureKind::OverQuota,
            FailureKind::Append => FolderFailureKind::Append,
            FailureKind::Fetch => FolderFailureKind::Fetch,
            FailureKind::Create => FolderFailureKind::Create,
            FailureKind::Select => FolderFailureKind::Select,
            FailureKind::Connection => FolderFailureKind::Connection,
        }
    }
}

/// Why a folder as a whole failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema, thiserror::Error)]
#[error("{message}")]
pub struct FolderFailure {
    /// Class.
    pub kind: FolderFailureKind,
    /// What happened, with the server's words.
    pub message: String,
}

impl FolderFailure {
    /// A failure of this kind.
    pub fn new(kind: FolderFailureKind, message: impl Into<String>) -> Self {
        FolderFailure {
            kind,
            message: message.into(),
        }
    }
}

impl From<StoreError> for FolderFailure {
    fn from(e: StoreError) -> Self {
        FolderFailure::new(e.kind.into(), e.message)
    }
}

/// One message that could not be copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct MessageFailure {
    /// Source folder (UTF-8).
    pub folder: String,
    /// Source UID.
    pub uid: Uid,
    /// Class.
    pub kind: FailureKind,
    /// The server's words.
    pub message: String,
}

/// One message the destination server stored otherwise than it was sent: it is there, but
/// not byte for byte (Cyrus rewrites 8-bit header bytes to `X`; some servers change line
/// ends).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct AlteredMessage {
    /// Source folder (UTF-8).
    pub folder: String,
    /// Source UID.
    pub uid: Uid,
    /// The copy's UID.
    pub dest_uid: Uid,
    /// What differs, as read back.
    pub what: String,
}

/// One message the destination refused, repaired and then stored (`--fix-messages`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RepairedMessage {
    /// Source folder (UTF-8).
    pub folder: String,
    /// Source UID.
    pub uid: Uid,
    /// What was changed.
    pub changes: Vec<super::repair::Change>,
    /// The server's words when it refused the original.
    pub refused: String,
}

/// One folder's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct FolderReport {
    /// Source (UTF-8).
    pub source: String,
    /// Source (wire).
    pub source_wire: String,
    /// Destination (UTF-8).
    pub dest: String,
    /// Whether the destination folder was (or, dry, would be) created.
    pub created: bool,
    /// Messages in scope at the source.
    pub found: u64,
    /// Bytes in scope at the source.
    pub bytes_found: u64,
    /// Messages copied (dry run: that would be copied).
    pub copied: u64,
    /// Bytes copied.
    pub bytes_copied: u64,
    /// Messages already at the destination.
    pub already: u64,
    /// Messages delivered by an earlier run that the successor has since deleted or moved
    /// away: not copied again (`--recopy-removed` does).
    pub removed_by_successor: u64,
    /// The destination folder was made by an earlier run and the successor has since deleted
    /// or renamed it: not made again.
    pub dest_removed: bool,
    /// Skipped without fetching anything: both sides as when last in step.
    pub unchanged: bool,
    /// Messages already there whose flags were re-synced (`--resyncflags`).
    pub flags_updated: u64,
    /// Messages in the destination folder after the run, read back from the server.
    pub dest_messages: Option<u64>,
    /// The read-back count holds every message the destination had plus every one copied:
    /// nothing acknowledged went missing.
    pub verified: bool,
    /// Messages that failed.
    pub failed: Vec<MessageFailure>,
    /// Messages the destination stored altered (read back after the copy).
    pub altered: Vec<AlteredMessage>,
    /// Messages the destination refused, stored repaired (`--fix-messages`).
    pub repaired: Vec<RepairedMessage>,
    /// Copies read back (sizes of all; bytes of a sample of those with 8-bit headers, or of
    /// all with `--verify`).
    pub read_back: u64,
    /// Where the sample showed the server rewrites 8-bit headers: how many more copies with
    /// such headers were not read back (`--verify` reads and lists each).
    pub unchecked_8bit: u64,
    /// Why the folder as a whole failed, if it did.
    pub error: Option<FolderFailure>,
    /// What a person should know of the folder's name: a source name that was not valid on
    /// the wire, or a destination separator inside a name that had to be replaced.
    pub note: Option<String>,
}

impl FolderReport {
    /// An empty report for a mapping.
    pub fn new(m: &FolderMapping) -> Self {
        FolderReport {
            source: m.source_utf8.clone(),
            source_wire: m.source.clone(),
            dest: m.dest_utf8.clone(),
            note: m.note.clone(),
            ..Default::default()
        }
    }

    pub(crate) fn fail(&mut self, f: MessageFailure) {
        self.failed.push(f);
    }
}

/// The whole run.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct SyncReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Folders copied (or planned).
    pub folders: Vec<FolderReport>,
    /// Folders left out, with the reason.
    pub skipped_folders: Vec<FolderMapping>,
    /// Wall time.
    pub duration_secs: f64,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
}

impl SyncReport {
    /// Messages found, over all folders.
    pub fn found(&self) -> u64 {
        self.folders.iter().map(|f| f.found).sum()
    }
    /// Messages copied.
    pub fn copied(&self) -> u64 {
        self.folders.iter().map(|f| f.copied).sum()
    }
    /// Messages already there.
    pub fn already(&self) -> u64 {
        self.folders.iter().map(|f| f.already).sum()
    }
    /// Messages the successor removed since an earlier run delivered them.
    pub fn removed_by_successor(&self) -> u64 {
        self.folders.iter().map(|f| f.removed_by_successor).sum()
    }
    /// Bytes copied.
    pub fn bytes_copied(&self) -> u64 {
        self.folders.iter().map(|f| f.bytes_copied).sum()
    }
    /// Bytes found.
    pub fn bytes_found(&self) -> u64 {
        self.folders.iter().map(|f| f.bytes_found).sum()
    }
    /// Every failed message.
    pub fn failures(&self) -> impl Iterator<Item = &MessageFailure> {
        self.folders.iter().flat_map(|f| f.failed.iter())
    }
    /// Messages stored repaired.
    pub fn repaired(&self) -> impl Iterator<Item = &RepairedMessage> {
        self.folders.iter().flat_map(|f| f.repaired.iter())
    }
    /// Copies the destination stored altered.
    pub fn altered(&self) -> impl Iterator<Item = &AlteredMessage> {
        self.folders.iter().flat_map(|f| f.altered.iter())
    }
    /// Folders that failed as a whole.
    pub fn folder_errors(&self) -> impl Iterator<Item = &FolderReport> {
        self.folders.iter().filter(|f| f.error.is_some())
    }
}

/// Progress out of the engine. Default methods do nothing.
pub trait Reporter {
    /// The folder plan, before any change.
    fn plan(&mut self, _mappings: &[FolderMapping]) {}
    /// A folder starts.
    fn folder_started(&mut self, _m: &FolderMapping) {}
    /// What a folder has to copy, known once its messages are matched (before the first
    /// copy; again on a retry).
    fn folder_to_copy(&mut self, _folder: &str, _messages: u64, _bytes: u64) {}
    /// One message of `folder` was copied.
    fn message_copied(&mut self, _folder: &str, _bytes: u64) {}
    /// One message failed (the run goes on).
    fn message_failed(&mut self, _folder: &str, _uid: Uid, _e: &StoreError) {}
    /// A folder is done.
    fn folder_done(&mut self, _r: &FolderReport) {}
    /// A connection failed and is being opened again (attempt `n`); the folder starts over,
    /// keeping what was copied.
    fn reconnecting(&mut self, _folder: Option<&str>, _attempt: u32, _why: &StoreError) {}
}

/// A reporter that says nothing.
#[derive(Debug, Default)]
pub struct Silent;
impl Reporter for Silent {}
