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
