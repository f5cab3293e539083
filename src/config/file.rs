//! The TOML config file: `--config FILE`, else `$OFFBOARD_CONFIG`, else
//! `~/.config/offboard/config.toml` when it exists. Every key can be overridden by a flag.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[bluemind]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueMindSection {
    /// Base URL, e.g. `https://bm.example.com`.
    pub url: Option<String>,
    /// Mail domain (DNS name or alias).
    pub domain: Option<String>,
    /// Extra CA (PEM) for the REST API.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (not recommended).
    #[serde(default)]
    pub insecure: bool,
    /// File holding the admin API key (must be mode 0600).
    pub key_file: Option<PathBuf>,
}

/// `[imap]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    /// Host (default: the BlueMind URL's host).
    pub host: Option<String>,
    /// Port (default 993, or 143 with STARTTLS/none).
    pub port: Option<u16>,
    /// `implicit`, `starttls` or `none`.
    pub tls: Option<String>,
    /// Extra CA (PEM) for IMAP.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (not recommended).
    #[serde(default)]
    pub insecure: bool,
    /// Seconds without a byte before a connection is taken as stalled (default 120).
    pub timeout: Option<u64>,
}

/// `[copy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopySection {
    /// Destination folder template (`{display_name}`, `{login}`, `{email}`).
    pub folder: Option<String>,
    /// Extra exclude regexes on raw folder names.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// IMAP connection pairs.
    pub workers: Option<usize>,
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// Folder names (any level, case-insensitive) left out as personal; replaces the
    /// built-in list (Perso, Personnel, Privé, Private…). `[]` copies every folder.
    pub personal_folders: Option<Vec<String>>,
}

/// `[auto_reply]`: the message naming the successor.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoReplySection {
    /// Built-in template: `fr`, `en` or `fr+en` (default).
    pub language: Option<String>,
    /// Own subject (placeholders `{leaver}`, `{leaver_email}`, `{successor}`,
    /// `{successor_email}`, `{until}`).
    pub subject: Option<String>,
    /// Own text (same placeholders).
    pub text: Option<String>,
    /// Days (default 30; over 90 needs --force).
    pub days: Option<u32>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[bluemind]`.
    #[serde(default)]
    pub bluemind: BlueMindSection,
    /// `[imap]`.
    #[serde(default)]
    pub imap: ImapSection,
    /// `[copy]`.
    #[serde(default)]
    pub copy: CopySection,
    /// `[auto_reply]`.
    #[serde(default)]
    pub auto_reply: AutoReplySection,
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML for us.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
}

/// The user's config directory for offboard.
pub fn config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "offboard").map(|p| p.config_dir().to_path_buf())
}

/// Loads the config: explicit path, else `$OFFBOARD_CONFIG`, else the default file if present.
pub fn load(explicit: Option<&Path>) -> Result<(ConfigFile, Option<PathBuf>), ConfigError> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("OFFBOARD_CONFIG").map(PathBuf::from))
        .or_else(|| config_dir().map(|d| d.join("config.toml")).filter(|p| p.exists()));
    let Some(path) = path else {
        return Ok((ConfigFile::default(), None));
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    // Only the parser's message and the line: its usual output quotes the line, which may
    // hold a secret pasted into the file by mistake.
    let cfg = toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|r| text[..r.start.min(text.len())].matches('\n').count() + 1);
        let message = match line {
            Some(l) => format!("line {l}: {}", e.message()),
            None => e.message().to_string(),
        };
        ConfigError::Parse {
            path: path.clone(),
            message,
        }
    })?;
    Ok((cfg, Some(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_and_refuses_unknown_keys() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/config.example.toml"
        ))
        .unwrap();
        let c: ConfigFile = toml::from_str(&text).unwrap();
        assert_eq!(c.imap.tls.as_deref(), Some("implicit"));
        assert!(toml::from_str::<ConfigFile>("[bluemind]\nurl = \"x\"\napi_key = \"secret\"\n").is_err());
    }
}
