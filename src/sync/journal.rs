//! The resume journal of one (source account, destination account) pair: which source
//! message (folder, UIDVALIDITY, UID) became which destination message (folder, UIDVALIDITY,
//! UID), which folder pairs were last seen in step, and which destination folders lost
//! messages the server had acknowledged.
//!
//! An append-only file of JSON lines, one per copied message, written right after the server
//! confirmed the APPEND and synced to disk at the end of every batch and on every way out of
//! a run (including a drop on an error path). What it promises, and what it does not:
//! - A process killed at any moment leaves at worst the last batch's records unsynced, and a
//!   torn last line; the torn line is cut off when the journal is next opened (so the next
//!   record starts on a line of its own), and the messages whose records were lost are found
//!   again by identity. The journal is a short-cut and a memory of deliveries, **identity is
//!   the safety net**: a message is never copied twice as long as its identity headers are
//!   stable on both servers.
//! - Records of a source folder incarnation that is gone (its UIDVALIDITY changed) and
//!   superseded folder records are compacted away: the live records go to a temporary file,
//!   which is synced, renamed over the journal, and the directory synced.
//! - Records are never dropped because the *destination* changed: they are the proof that a
//!   message was delivered, so one the successor deleted is not brought back.
//!
//! Private by default: directories 0700, files 0600 (they name the leaver's folders). One
//! lock file per pair keeps two runs apart (advisory `flock`: not reliable on NFS).

use crate::store::Uid;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One journalled copy. Field names are short on disk (the journal holds a line per message).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyRecord {
    /// Source folder (wire).
    #[serde(rename = "sf")]
    pub source_folder: String,
    /// Source UIDVALIDITY.
    #[serde(rename = "sv")]
    pub source_validity: u32,
    /// Source UID.
    #[serde(rename = "su")]
    pub source_uid: Uid,
    /// Destination folder (wire).
    #[serde(rename = "df")]
    pub dest_folder: String,
    /// Destination UIDVALIDITY (0 when the server did not say).
    #[serde(rename = "dv")]
    pub dest_validity: u32,
    /// Destination UID (0 when the server did not say).
    #[serde(rename = "du")]
    pub dest_uid: Uid,
}

/// A folder pair that was fully in step at the end of a run: if both sides still show the
/// same status, the next run skips the folder without fetching a header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderRecord {
    /// Source folder (wire).
    pub folder: String,
    /// Destination folder (wire).
    pub dest: String,
    /// Source (UIDVALIDITY, UIDNEXT, MESSAGES).
    pub source: (u32, u32, u32),
    /// Destination (UIDVALIDITY, UIDNEXT, MESSAGES).
    pub destination: (u32, u32, u32),
    /// Source HIGHESTMODSEQ, when the server has CONDSTORE.
    #[serde(default)]
    pub source_modseq: Option<u64>,
    /// Destination HIGHESTMODSEQ, when the server has CONDSTORE.
    #[serde(default)]
    pub destination_modseq: Option<u64>,
}

/// A destination folder incarnation whose server acknowledged appends it did not keep: its
/// missing messages were lost by the server, not removed by the successor, so they are copied
/// again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LostRecord {
    /// Destination folder (wire).
    #[serde(rename = "lost")]
    pub dest_folder: String,
    /// Its UIDVALIDITY.
    #[serde(rename = "dv")]
    pub dest_validity: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Copy(CopyRecord),
    Folder(FolderRecord),
    Lost(LostRecord),
}

/// Failures of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// I/O on the state directory.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another run holds the lock.
    #[error("another offboard run is copying between these two accounts (lock {0} is held)")]
    Locked(PathBuf),
}

/// Creates `dir` and its missing parents with mode 0700, and makes `dir` itself 0700 if it
/// existed with wider rights: everything under it names people and their folders.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens (creating) a file for reading and writing, mode 0600 (tightened if it existed wider).
fn open_private(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// A journalled copy as held in memory: the destination folder interned (a 500,000-message
/// folder's journal is a few MB, not one string pair per message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    dest: u32,
    dest_validity: u32,
    dest_uid: Uid,
}

/// The deliveries of one source folder incarnation, by source UID: a sorted vector, 16 bytes
/// a message (a hash map takes twice that, and three times while it grows), so the journal of
/// a 500,000-message folder holds in 8 MB. Copies are journalled in UID order, so inserting
/// is nearly always a push.
#[derive(Debug, Default)]
struct Deliveries(Vec<(Uid, Entry)>);

impl Deliveries {
    /// Inserts or replaces; returns whether a record was replaced.
    fn insert(&mut self, uid: Uid, e: Entry) -> bool {
        if self.0.last().is_none_or(|(last, _)| *last < uid) {
            self.0.push((uid, e));
            return false;
        }
        match self.0.binary_search_by_key(&uid, |(u, _)| *u) {
            Ok(i) => {
                self.0[i].1 = e;
                true
            }
            Err(i) => {
                self.0.insert(i, (uid, e));
                false
            }
        }
    }

    fn get(&self, uid: Uid) -> Option<&Entry> {
        let i = self.0.binary_search_by_key(&uid, |(u, _)| *u).ok()?;
        self.0.get(i).map(|(_, e)| e)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// In UID order.
    fn iter(&self) -> impl Iterator<Item = (Uid, &Entry)> {
        self.0.iter().map(|(u, e)| (*u, e))
    }
}

/// Compact when at least this many lines are dead, and they are at least half the file.
const COMPACT_MIN_DEAD: usize = 1_000;

/// The open journal of one account pair.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    _lock: File,
    /// (source folder, UIDVALIDITY) → UID → where it went.
    copied: HashMap<(String, u32), Deliveries>,
    /// Destination folder names, by interned id.
    dest_names: Vec<String>,
    dest_ids: HashMap<String, u32>,
    /// (source folder, destination folder) → last status in step.
    in_step: HashMap<(String, String), FolderRecord>,
    /// Destination folders that ever received a journalled message.
    delivered_to: HashMap<String, u64>,
    /// Destination folder incarnations whose server lost acknowledged appends.
    lost: HashSet<(String, u32)>,
    /// Lines in the file that no longer carry anything (superseded, or of a gone source
    /// folder incarnation): compaction removes them.
    dead: usize,
    /// Lines written since the last sync to disk.
    unsynced: bool,
    /// Tests: the process "dies" at this journal write (1-based), leaving half the line
    /// when `true`; every later write fails too.
    #[cfg(test)]
    crash_at: Option<(usize, bool)>,
    #[cfg(test)]
    writes: usize,
}

impl Journal {
    /// Opens the journal for `pair_id`, adopting the first of `legacy_ids` an older version
    /// kept (named from the hosts without their ports, then without the transport) when there
    /// is none yet, so an upgrade keeps what earlier runs delivered.
    pub fn open_adopting(dir: &Path, pair_id: &str, legacy_ids: &[&str]) -> Result<Self, JournalError> {
        let new = dir.join(format!("{pair_id}.jsonl"));
        for legacy_id in legacy_ids.iter().filter(|l| **l != pair_id) {
            let old = dir.join(format!("{legacy_id}.jsonl"));
            if new.exists() || !old.exists() {
                continue;
            }
            // Taken under the old name's lock, so a run of the older version cannot be
            // writing it.
            let legacy = Self::open(dir, legacy_id)?;
            std::fs::rename(&old, &new).map_err(|source| JournalError::Io {
                path: old.clone(),
                source,
            })?;
            drop(legacy);
        }
        Self::open(dir, pair_id)
    }

    /// Opens (creating) the journal for `pair_id` under `dir` and takes its lock; repairs a
    /// torn last line and compacts a journal that is mostly dead lines.
    pub fn open(dir: &Path, pair_id: &str) -> Result<Self, JournalError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JournalError::Io { path, source }
        };
        create_private_dir(dir).map_err(io(dir))?;
        let lock_path = dir.join(format!("{pair_id}.lock"));
        let lock = open_private(&lock_path).map_err(io(&lock_path))?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&lock) {
            Ok(true) => {}
            Ok(false) => return Err(JournalError::Locked(lock_path)),
            Err(source) => {
                return Err(JournalError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
        let path = dir.join(format!("{pair_id}.jsonl"));
        let mut file = open_private(&path).map_err(io(&path))?;
        let mut journal = Journal {
            path: path.clone(),
            file: file.try_clone().map_err(io(&path))?,
            _lock: lock,
            copied: HashMap::new(),
            dest_names: Vec::new(),
            dest_ids: HashMap::new(),
            in_step: HashMap::new(),
            delivered_to: HashMap::new(),
            lost: HashSet::new(),
            dead: 0,
            unsynced: false,
            #[cfg(test)]
            crash_at: None,
            #[cfg(test)]
            writes: 0,
        };
        let good_len = journal.load(&mut file).map_err(io(&path))?;
        // A line torn by a crash: cut it off, so the next record starts on its own line.
        if file.metadata().map_err(io(&path))?.len() != good_len {
            file.set_len(good_len).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        journal.file.seek(SeekFrom::End(0)).map_err(io(&path))?;
        journal.compact_if_worthwhile()?;
        Ok(journal)
    }

    /// Reads every line; returns the length up to the end of the last complete line.
    /// Unreadable complete lines (a foreign edit) are skipped, not the rest of the file.
    fn load(&mut self, file: &mut File) -> std::io::Result<u64> {
        file.seek(SeekFrom::Start(0))?;
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut good = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            good += n as u64;
            match serde_json::from_slice::<Line>(&line) {
                Ok(l) => self.apply(l),
                Err(_) => self.dead += 1,
            }
        }
        Ok(good)
    }

    /// Takes one record into the in-memory view.
    fn apply(&mut self, line: Line) {
        match line {
            Line::Copy(r) => {
                *self.delivered_to.entry(r.dest_folder.clone()).or_default() += 1;
                let next = self.dest_names.len() as u32;
                let dest = *self.dest_ids.entry(r.dest_folder.clone()).or_insert_with(|| {
                    self.dest_names.push(r.dest_folder.clone());
                    next
                });
                let entry = Entry {
                    dest,
                    dest_validity: r.dest_validity,
                    dest_uid: r.dest_uid,
                };
                let folder = self
                    .copied
                    .entry((r.source_folder, r.source_validity))
                    .or_default();
                if folder.insert(r.source_uid, entry) {
                    self.dead += 1;
                }
            }
            Line::Folder(r) => {
                if self
                    .in_step
                    .insert((r.folder.clone(), r.dest.clone()), r)
                    .is_some()
                {
                    self.dead += 1;
                }
            }
            Line::Lost(r) => {
                if !self.lost.insert((r.dest_folder, r.dest_validity)) {
                    self.dead += 1;
                }
            }
        }
    }

    /// Makes room for `n` more copies of this source folder incarnation at once: growing by
    /// doubling would hold the old and the new vector together.
    pub fn reserve(&mut self, folder: &str, uid_validity: u32, n: usize) {
        self.copied
            .entry((folder.to_string(), uid_validity))
            .or_default()
            .0
            .reserve_exact(n);
    }

    /// How many messages of this source folder incarnation were copied.
    pub fn copied_count(&self, folder: &str, uid_validity: u32) -> usize {
        self.copied
            .get(&(folder.to_string(), uid_validity))
            .map_or(0, Deliveries::len)
    }

    /// Where one source message went, if it was copied.
    pub fn copy_of(&self, folder: &str, uid_validity: u32, uid: Uid) -> Option<CopyRecord> {
        let e = self.copied.get(&(folder.to_string(), uid_validity))?.get(uid)?;
        Some(self.record_of(folder, uid_validity, uid, e))
    }

    /// The copies of this source folder incarnation into `dest_folder`: `(source UID,
    /// destination UIDVALIDITY, destination UID)`.
    pub fn deliveries<'a>(
        &'a self,
        folder: &str,
        uid_validity: u32,
        dest_folder: &str,
    ) -> impl Iterator<Item = (Uid, u32, Uid)> + 'a {
        let dest = self.dest_ids.get(dest_folder).copied();
        self.copied
            .get(&(folder.to_string(), uid_validity))
            .into_iter()
            .flat_map(Deliveries::iter)
            .filter(move |(_, e)| Some(e.dest) == dest)
            .map(|(su, e)| (su, e.dest_validity, e.dest_uid))
    }

    fn record_of(&self, folder: &str, uid_validity: u32, uid: Uid, e: &Entry) -> CopyRecord {
        CopyRecord {
            source_folder: folder.to_string(),
            source_validity: uid_validity,
            source_uid: uid,
            dest_folder: self.dest_names.get(e.dest as usize).cloned().unwrap_or_default(),
            dest_validity: e.dest_validity,
            dest_uid: e.dest_uid,
        }
    }

    /// How many messages were ever delivered to this destination folder (any incarnation).
    pub fn delivered_to(&self, dest_folder: &str) -> u64 {
        self.delivered_to.get(dest_folder).copied().unwrap_or(0)
    }

    /// Whether this destination folder incarnation lost acknowledged appends.
    pub fn lost_appends(&self, dest_folder: &str, dest_validity: u32) -> bool {
        self.lost.contains(&(dest_folder.to_string(), dest_validity))
    }

    /// The source folder is now at `uid_validity`: records of its other incarnations name
    /// messages that no longer exist. They are dropped from memory (and from the file at the
    /// next compaction).
    pub fn retire_other_incarnations(&mut self, folder: &str, uid_validity: u32) {
        let stale: Vec<(String, u32)> = self
            .copied
            .keys()
            .filter(|(f, v)| f == folder && *v != uid_validity)
            .cloned()
            .collect();
        for k in stale {
            if let Some(records) = self.copied.remove(&k) {
                self.dead += records.len();
            }
        }
    }

    /// Journals one copy. Written with one `write` call, so a crash tears at most this line.
    pub fn record(&mut self, r: CopyRecord) -> Result<(), JournalError> {
        self.append_line(&Line::Copy(r.clone()))?;
        self.apply(Line::Copy(r));
        Ok(())
    }

    /// Journals that a destination folder incarnation lost acknowledged appends.
    pub fn record_lost(&mut self, dest_folder: &str, dest_validity: u32) -> Result<(), JournalError> {
        if self.lost_appends(dest_folder, dest_validity) {
            return Ok(());
        }
        let r = LostRecord {
            dest_folder: dest_folder.to_string(),
            dest_validity,
        };
        self.append_line(&Line::Lost(r.clone()))?;
        self.apply(Line::Lost(r));
        Ok(())
    }

    /// The last in-step status of a folder pair.
    pub fn in_step(&self, folder: &str, dest: &str) -> Option<&FolderRecord> {
        self.in_step.get(&(folder.to_string(), dest.to_string()))
    }

    /// Records that a folder pair is in step at these statuses.
    pub fn record_in_step(&mut self, r: FolderRecord) -> Result<(), JournalError> {
        if self.in_step(&r.folder, &r.dest) == Some(&r) {
            return Ok(());
        }
        self.append_line(&Line::Folder(r.clone()))?;
        self.apply(Line::Folder(r));
        Ok(())
    }

    /// Tests: simulate the process dying at the `n`-th journal write from now on.
    #[cfg(test)]
    pub(crate) fn crash_at_write(&mut self, n: usize, torn: bool) {
        self.crash_at = Some((n, torn));
        self.writes = 0;
    }

    fn io_error(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn append_line(&mut self, line: &Line) -> Result<(), JournalError> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| self.io_error(e.into()))?;
        bytes.push(b'\n');
        #[cfg(test)]
        if let Some((n, torn)) = self.crash_at {
            self.writes += 1;
            if self.writes >= n {
                if torn && self.writes == n {
                    let _ = self.file.write_all(&bytes[..bytes.len() / 2]);
                }
                return Err(self.io_error(std::io::Error::other("simulated crash")));
            }
        }
        self.file.write_all(&bytes).map_err(|e| self.io_error(e))?;
        self.unsynced = true;
        Ok(())
    }

    /// Syncs what was written to disk: the engine calls it at the end of every batch and of
    /// every run; dropping the journal does it too.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if !self.unsynced {
            return Ok(());
        }
        #[cfg(test)]
        if self.crash_at.is_some_and(|(n, _)| self.writes >= n) {
            return Ok(());
        }
        self.file.sync_data().map_err(|e| self.io_error(e))?;
        self.unsynced = false;
        Ok(())
    }

    /// Dead lines in the file (for tests and the decision to compact).
    pub fn dead_lines(&self) -> usize {
        self.dead
    }

    /// Compacts when dead lines are many and at least half of the file.
    pub fn compact_if_worthwhile(&mut self) -> Result<(), JournalError> {
        let live: usize =
            self.copied.values().map(Deliveries::len).sum::<usize>() + self.in_step.len() + self.lost.len();
        if self.dead >= COMPACT_MIN_DEAD && self.dead >= live {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the journal with only its live records: temporary file, sync, rename over
    /// the journal, sync of the directory. A crash at any point leaves either the old file
    /// or the new one, whole.
    pub fn compact(&mut self) -> Result<(), JournalError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let tmp = self.path.with_extension("jsonl.tmp");
        let write = || -> std::io::Result<File> {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut out = std::io::BufWriter::new(&mut f);
            let mut put = |line: Line| -> std::io::Result<()> {
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")
            };
            for ((folder, validity), records) in &self.copied {
                for (uid, e) in records.iter() {
                    put(Line::Copy(self.record_of(folder, *validity, uid, e)))?;
                }
            }
            for r in self.in_step.values() {
                put(Line::Folder(r.clone()))?;
            }
            for (dest_folder, dest_validity) in &self.lost {
                put(Line::Lost(LostRecord {
                    dest_folder: dest_folder.clone(),
                    dest_validity: *dest_validity,
                }))?;
            }
            out.flush()?;
            drop(out);
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()?;
            let mut f = OpenOptions::new().append(true).open(&self.path)?;
            f.seek(SeekFrom::End(0))?;
            Ok(f)
        };
        let file = write().map_err(|e| self.io_error(e))?;
        self.file = file;
        self.dead = 0;
        self.unsynced = false;
        // Records of destinations no longer in the file would be forgotten by a reopen:
        // recount from what is live.
        self.delivered_to.clear();
        for (_, e) in self.copied.values().flat_map(Deliveries::iter) {
            if let Some(name) = self.dest_names.get(e.dest as usize) {
                *self.delivered_to.entry(name.clone()).or_default() += 1;
            }
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Every way out of a run, errors included, leaves what was written on disk.
        let _ = self.sync();
    }
}

/// A stable file name for an account pair (no address in clear in the file name). Give the
/// hosts with their ports (`host:port`): two servers on one host (different ports, an SSH
/// tunnel) are two pairs.
pub fn pair_id(src_host: &str, src_user: &str, dst_host: &str, dst_user: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{src_host}\0{src_user}\0{dst_host}\0{dst_user}").as_bytes());
    hex::encode(&d[..12])
}

/// The default state directory (`$XDG_STATE_HOME/offboard/sync` or `~/.local/state/…`).
pub fn default_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "offboard")
        .map(|p| p.state_dir().unwrap_or_else(|| p.data_local_dir()).join("sync"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(su: Uid) -> CopyRecord {
        CopyRecord {
            source_folder: "INBOX".into(),
            source_validity: 7,
            source_uid: su,
            dest_folder: "N/INBOX".into(),
            dest_validity: 9,
            dest_uid: su + 100,
        }
    }

    #[test]
    fn the_file_keeps_its_compact_field_names() {
        let line = serde_json::to_string(&Line::Copy(rec(1))).unwrap();
        assert_eq!(
            line,
            r#"{"sf":"INBOX","sv":7,"su":1,"df":"N/INBOX","dv":9,"du":101}"#
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_the_next_record_survives() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Journal::open(dir.path(), "p").unwrap();
            s.record(rec(1)).unwrap();
            s.record(rec(2)).unwrap();
        }
        let path = dir.path().join("p.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"sf\":\"INBOX\",\"sv\":7,\"su\":3,\"df\"")
            .unwrap();
        drop(f);
        {
            let mut s = Journal::open(dir.path(), "p").unwrap();
            assert_eq!(s.copied_count("INBOX", 7), 2);
            // Today's regression: this record was glued to the torn fragment and lost.
            s.record(rec(4)).unwrap();
        }
        let s = Journal::open(dir.path(), "p").unwrap();
        assert_eq!(s.copied_count("INBOX", 7), 3);
        assert_eq!(s.copy_of("INBOX", 7, 4), Some(rec(4)));
        assert_eq!(
            s.copied_count("INBOX", 8),
            0,
            "another UIDVALIDITY is another folder"
        );
        assert_eq!(s.delivered_to("N/INBOX"), 3);
    }

    #[test]
    fn a_bad_line_in_the_middle_does_not_hide_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let good = |su| serde_json::to_string(&Line::Copy(rec(su))).unwrap();
        std::fs::write(&path, format!("{}\nnot json\n{}\n", good(1), good(2))).unwrap();
        let s = Journal::open(dir.path(), "p").unwrap();
        assert_eq!(s.copied_count("INBOX", 7), 2);
    }

    #[test]
    fn a_journal_named_the_old_way_is_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut old = Journal::open(dir.path(), "old").unwrap();
            old.record(rec(1)).unwrap();
        }
        let s = Journal::open_adopting(dir.path(), "new", &["older", "old"]).unwrap();
        assert_eq!(s.copied_count("INBOX", 7), 1);
        drop(s);
        assert!(!dir.path().join("old.jsonl").exists());
        // Another pair on the same host (another port) starts its own journal.
        let other = Journal::open_adopting(dir.path(), "other", &["old"]).unwrap();
        assert_eq!(other.copied_count("INBOX", 7), 0);
    }

    #[test]
    fn a_second_run_on_the_same_pair_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Journal::open(dir.path(), "p").unwrap();
        assert!(matches!(
            Journal::open(dir.path(), "p"),
            Err(JournalError::Locked(_))
        ));
    }

    #[test]
    fn state_is_private_and_wider_modes_left_earlier_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/sync");
        // A journal left 0644 by an older version is tightened too.
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(state.join("p.jsonl"), "").unwrap();
        std::fs::set_permissions(state.join("p.jsonl"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut s = Journal::open(&state, "p").unwrap();
        s.record(rec(1)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("p.jsonl")), 0o600);
        assert_eq!(mode(&state.join("p.lock")), 0o600);
        let fresh = dir.path().join("x/y");
        Journal::open(&fresh, "q").unwrap();
        assert_eq!(mode(&dir.path().join("x")), 0o700);
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join("q.jsonl")), 0o600);
    }

    #[test]
    fn records_of_a_gone_source_incarnation_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        {
            let mut s = Journal::open(dir.path(), "p").unwrap();
            for su in 1..=COMPACT_MIN_DEAD as u32 {
                s.record(rec(su)).unwrap();
            }
            let mut other = rec(1);
            other.source_validity = 8;
            s.record(other).unwrap();
            // The source folder is now at UIDVALIDITY 8: the 1,000 records of 7 are dead.
            s.retire_other_incarnations("INBOX", 8);
            assert_eq!(s.dead_lines(), COMPACT_MIN_DEAD);
            s.compact_if_worthwhile().unwrap();
            assert_eq!(s.dead_lines(), 0);
            // Writing goes on after the compaction, into the new file.
            let mut more = rec(2);
            more.source_validity = 8;
            s.record(more).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!dir.path().join("p.jsonl.tmp").exists());
        let s = Journal::open(dir.path(), "p").unwrap();
        assert_eq!(s.copied_count("INBOX", 7), 0);
        assert_eq!(s.copied_count("INBOX", 8), 2);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn superseded_folder_records_are_dead_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Journal::open(dir.path(), "p").unwrap();
        for n in 0..3 {
            s.record_in_step(FolderRecord {
                folder: "INBOX".into(),
                dest: "N/INBOX".into(),
                source: (1, n, n),
                destination: (2, n, n),
                source_modseq: None,
                destination_modseq: None,
            })
            .unwrap();
        }
        assert_eq!(s.dead_lines(), 2);
        s.record_lost("N/INBOX", 2).unwrap();
        s.record_lost("N/INBOX", 2).unwrap();
        drop(s);
        let s = Journal::open(dir.path(), "p").unwrap();
        assert_eq!(s.dead_lines(), 2);
        assert!(s.lost_appends("N/INBOX", 2));
        assert!(!s.lost_appends("N/INBOX", 3));
        assert_eq!(s.in_step("INBOX", "N/INBOX").unwrap().source, (1, 2, 2));
    }
}
