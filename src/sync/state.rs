//! Resume state: for one (source account, destination account) pair, which source message
//! (folder, UIDVALIDITY, UID) became which destination message (folder, UIDVALIDITY, UID).
//!
//! An append-only journal of JSON lines, one per copied message, written right after the
//! server confirmed the APPEND. A process killed at any moment leaves at worst one message
//! copied but not journalled; the next run finds it by identity, so nothing is copied twice.
//! A torn last line is ignored. One lock file per pair keeps two runs apart.

use crate::store::Uid;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One journalled copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CopyRecord {
    /// Source folder (wire).
    pub sf: String,
    /// Source UIDVALIDITY.
    pub sv: u32,
    /// Source UID.
    pub su: Uid,
    /// Destination folder (wire).
    pub df: String,
    /// Destination UIDVALIDITY (0 when the server did not say).
    pub dv: u32,
    /// Destination UID (0 when the server did not say).
    pub du: Uid,
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

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Copy(CopyRecord),
    Folder(FolderRecord),
}

/// Failures of the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O on the state directory.
    #[error("state file {path}: {source}")]
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

/// The open journal of one account pair.
#[derive(Debug)]
pub struct SyncState {
    path: PathBuf,
    file: File,
    _lock: File,
    /// (source folder, UIDVALIDITY) → UID → record.
    copied: HashMap<(String, u32), HashMap<Uid, CopyRecord>>,
    /// (source folder, destination folder) → last status in step.
    in_step: HashMap<(String, String), FolderRecord>,
    /// Tests: the process "dies" at this journal write (1-based), leaving half the line
    /// when `true`; every later write fails too.
    #[cfg(test)]
    crash_at: Option<(usize, bool)>,
    #[cfg(test)]
    writes: usize,
}

impl SyncState {
    /// Opens (creating) the journal for `pair_id` under `dir` and takes its lock.
    pub fn open(dir: &Path, pair_id: &str) -> Result<Self, StateError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(format!("{pair_id}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&lock) {
            Ok(true) => {}
            Ok(false) => return Err(StateError::Locked(lock_path)),
            Err(source) => {
                return Err(StateError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
        let path = dir.join(format!("{pair_id}.jsonl"));
        let mut copied: HashMap<(String, u32), HashMap<Uid, CopyRecord>> = HashMap::new();
        let mut in_step = HashMap::new();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                // A line torn by a crash does not parse: skip it, identity covers that message.
                match serde_json::from_str::<Line>(&line) {
                    Ok(Line::Copy(r)) => {
                        copied.entry((r.sf.clone(), r.sv)).or_default().insert(r.su, r);
                    }
                    Ok(Line::Folder(r)) => {
                        in_step.insert((r.folder.clone(), r.dest.clone()), r);
                    }
                    Err(_) => {}
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(SyncState {
            path,
            file,
            _lock: lock,
            copied,
            in_step,
            #[cfg(test)]
            crash_at: None,
            #[cfg(test)]
            writes: 0,
        })
    }

    /// What this folder incarnation already copied.
    pub fn copied_in(&self, folder: &str, uid_validity: u32) -> Option<&HashMap<Uid, CopyRecord>> {
        self.copied.get(&(folder.to_string(), uid_validity))
    }

    /// Journals one copy. Written with one `write` call, so a crash tears at most this line.
    pub fn record(&mut self, r: CopyRecord) -> Result<(), StateError> {
        self.append_line(&serde_json::to_vec(&r).unwrap_or_default())?;
        self.copied
            .entry((r.sf.clone(), r.sv))
            .or_default()
            .insert(r.su, r);
        Ok(())
    }

    /// The last in-step status of a folder pair.
    pub fn in_step(&self, folder: &str, dest: &str) -> Option<&FolderRecord> {
        self.in_step.get(&(folder.to_string(), dest.to_string()))
    }

    /// Records that a folder pair is in step at these statuses.
    pub fn record_in_step(&mut self, r: FolderRecord) -> Result<(), StateError> {
        if self.in_step(&r.folder, &r.dest) == Some(&r) {
            return Ok(());
        }
        self.append_line(&serde_json::to_vec(&r).unwrap_or_default())?;
        self.in_step.insert((r.folder.clone(), r.dest.clone()), r);
        Ok(())
    }

    /// Tests: simulate the process dying at the `n`-th journal write from now on.
    #[cfg(test)]
    pub(crate) fn crash_at_write(&mut self, n: usize, torn: bool) {
        self.crash_at = Some((n, torn));
        self.writes = 0;
    }

    fn append_line(&mut self, json: &[u8]) -> Result<(), StateError> {
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json);
        line.push(b'\n');
        #[cfg(test)]
        if let Some((n, torn)) = self.crash_at {
            self.writes += 1;
            if self.writes >= n {
                if torn && self.writes == n {
                    let _ = self.file.write_all(&line[..line.len() / 2]);
                }
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other("simulated crash"),
                });
            }
        }
        self.file.write_all(&line).map_err(|source| StateError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes the journal to disk (end of run).
    pub fn sync(&mut self) -> Result<(), StateError> {
        self.file.sync_all().map_err(|source| StateError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// A stable file name for an account pair (no address in clear in the file name).
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
            sf: "INBOX".into(),
            sv: 7,
            su,
            df: "N/INBOX".into(),
            dv: 9,
            du: su + 100,
        }
    }

    #[test]
    fn records_survive_reopen_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = SyncState::open(dir.path(), "p").unwrap();
            s.record(rec(1)).unwrap();
            s.record(rec(2)).unwrap();
        }
        let path = dir.path().join("p.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"sf\":\"INBOX\",\"sv\":7,\"su\":3,\"df\"")
            .unwrap();
        drop(f);
        let s = SyncState::open(dir.path(), "p").unwrap();
        let m = s.copied_in("INBOX", 7).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&2].du, 102);
        assert!(
            s.copied_in("INBOX", 8).is_none(),
            "another UIDVALIDITY is another folder"
        );
    }

    #[test]
    fn a_second_run_on_the_same_pair_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _a = SyncState::open(dir.path(), "p").unwrap();
        assert!(matches!(
            SyncState::open(dir.path(), "p"),
            Err(StateError::Locked(_))
        ));
    }
}
