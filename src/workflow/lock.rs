//! One lock per user, so two offboardings never touch the same person at once: a second run
//! naming the leaver or the successor of a run in progress (two hand-overs to one manager, a
//! run started twice by an HR workflow) refuses at once and says which run holds the user.
//! The lock file names its run, so the leftover-key sweep knows which runs are alive.
//!
//! Advisory `flock` on files under the state directory (0700): reliable on one host, not on
//! NFS, and blind to runs on another machine with another state directory.

use super::WorkflowError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A held user lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct UserLock {
    _file: File,
}

fn lock_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("locks")
}

/// The lock file of a user: named by a digest, so no address is in clear in a file name.
fn lock_path(state_dir: &Path, user: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(user.to_ascii_lowercase().as_bytes());
    lock_dir(state_dir).join(format!("{}.lock", hex::encode(&d[..12])))
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
}

/// Takes the lock of `user` for `run_id`, or says which run holds it.
pub fn lock_user(
    state_dir: &Path,
    role: &'static str,
    user: &str,
    run_id: &str,
) -> Result<UserLock, WorkflowError> {
    let dir = lock_dir(state_dir);
    let io = |source| WorkflowError::Journal {
        path: dir.clone(),
        source,
    };
    crate::sync::journal::create_private_dir(&dir).map_err(io)?;
    let path = lock_path(state_dir, user);
    let mut file = open(&path).map_err(io)?;
    match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
        Ok(true) => {}
        Ok(false) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(WorkflowError::Busy {
                role,
                user: user.to_string(),
                run_id: holder.trim().to_string(),
            });
        }
        Err(e) => return Err(io(e)),
    }
    // Ours now: say whose it is.
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|()| file.write_all(run_id.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    Ok(UserLock { _file: file })
}

/// Whether a run holds a lock in this state directory right now (it is alive). A lock file
/// whose lock is free names a run that ended or died.
pub fn run_is_alive(state_dir: &Path, run_id: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(lock_dir(state_dir)) else {
        return false;
    };
    for entry in entries.flatten() {
        let Ok(mut f) = File::open(entry.path()) else {
            continue;
        };
        let mut holder = String::new();
        if f.read_to_string(&mut holder).is_err() || holder.trim() != run_id {
            continue;
        }
        // Held if we cannot take it (a shared lock conflicts with the holder's exclusive one).
        match fs4::fs_std::FileExt::try_lock_shared(&f) {
            Ok(true) => {
                let _ = fs4::fs_std::FileExt::unlock(&f);
            }
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_locked_by_one_run_at_a_time_and_the_holder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = lock_user(dir.path(), "leaver", "bertrand@example.com", "run-a").unwrap();
        assert!(run_is_alive(dir.path(), "run-a"));
        assert!(!run_is_alive(dir.path(), "run-b"));
        match lock_user(dir.path(), "successor", "Bertrand@example.com", "run-b") {
            Err(WorkflowError::Busy { run_id, role, .. }) => {
                assert_eq!(run_id, "run-a");
                assert_eq!(role, "successor");
            }
            other => panic!("{other:?}"),
        }
        // Another user is free.
        let _c = lock_user(dir.path(), "successor", "nathalie@example.com", "run-b").unwrap();
        drop(a);
        assert!(
            !run_is_alive(dir.path(), "run-a"),
            "a released lock names a dead run"
        );
        let _b = lock_user(dir.path(), "leaver", "bertrand@example.com", "run-b").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("locks"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
