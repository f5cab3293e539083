//! Where secrets come from: files and the environment, never the command line. Every value
//! is a `SecretString` from the moment it is read.

use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// A secret that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("cannot read secret file {path}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty (or only a newline).
    #[error("secret file {0} is empty")]
    Empty(PathBuf),
}

/// Reads a password file as imapsync's `--passfile` does: the first line, without its line end.
pub fn read_secret_file(path: &Path) -> Result<SecretString, SecretError> {
    let text =
        zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let first = text.lines().next().unwrap_or("");
    if first.is_empty() {
        return Err(SecretError::Empty(path.to_path_buf()));
    }
    Ok(SecretString::from(first.to_string()))
}

/// Reads a secret from an environment variable, if set and not empty.
pub fn secret_from_env(name: &str) -> Option<SecretString> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(SecretString::from(v)),
        _ => None,
    }
}

/// A key file others can read.
#[derive(Debug, thiserror::Error)]
#[error("{path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`")]
pub struct WorldReadable {
    /// The file.
    pub path: PathBuf,
    /// Its mode.
    pub mode: u32,
}

/// Reads a key file, refusing it unless only its owner can read it (like ssh).
pub fn read_private_file(path: &Path) -> Result<SecretString, anyhow::Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(WorldReadable {
            path: path.to_path_buf(),
            mode,
        }
        .into());
    }
    Ok(read_secret_file(path)?)
}

/// Writes a secret to a file only its owner can read (temp file, then rename).
pub fn write_private_file(path: &Path, secret: &SecretString) -> std::io::Result<()> {
    use secrecy::ExposeSecret;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(secret.expose_secret().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn reads_first_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pass");
        std::fs::write(&p, "s3cr3t\nignored\n").unwrap();
        assert_eq!(read_secret_file(&p).unwrap().expose_secret(), "s3cr3t");
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(read_secret_file(&p), Err(SecretError::Empty(_))));
        assert!(matches!(
            read_secret_file(&dir.path().join("nope")),
            Err(SecretError::Unreadable { .. })
        ));
    }
}
