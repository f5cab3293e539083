//! Where `offboard login` keeps the admin key: the kernel keyring (keyutils) when this
//! session has one, else a file only its owner can read — with a warning, as gh and glab do
//! on machines without a keyring. `OFFBOARD_KEYRING=off` forces the file (CI, containers
//! whose seccomp profile blocks keyutils). The Secret Service (desktop D-Bus) is not used:
//! an admin CLI runs on servers.

use super::secret::{read_private_file, write_private_file};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SERVICE: &str = "offboard";
const USER: &str = "bluemind-admin-key";

/// Where the key went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The kernel keyring (cleared at reboot; expires after days without use).
    Keyring,
    /// A 0600 file.
    File(PathBuf),
}

fn entry() -> Option<keyring_core::Entry> {
    if std::env::var("OFFBOARD_KEYRING").is_ok_and(|v| v == "off" || v == "file") {
        return None;
    }
    let store: Arc<keyring_core::CredentialStore> = linux_keyutils_keyring_store::Store::new().ok()?;
    keyring_core::Entry::new_in_store(&store, SERVICE, USER).ok()
}

/// Stores the key: keyring if a write then a read back work, else `file`.
pub fn store(key: &SecretString, file: &Path) -> std::io::Result<Stored> {
    if let Some(e) = entry()
        && e.set_password(key.expose_secret()).is_ok()
        && e.get_password().is_ok_and(|back| back == key.expose_secret())
    {
        // A stale file from an earlier login must not shadow the keyring.
        let _ = std::fs::remove_file(file);
        return Ok(Stored::Keyring);
    }
    write_private_file(file, key)?;
    Ok(Stored::File(file.to_path_buf()))
}

/// The stored key, keyring first.
pub fn load(file: &Path) -> anyhow::Result<Option<SecretString>> {
    if let Some(k) = entry().and_then(|e| e.get_password().ok()) {
        return Ok(Some(SecretString::from(k)));
    }
    if file.exists() {
        return read_private_file(file).map(Some);
    }
    Ok(None)
}
