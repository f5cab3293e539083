//! The one table of exit codes, and the mapping from errors to it.
//!
//! Numbers follow imapsync's where one applies (README "EXIT STATUS"), so scripts written
//! for imapsync keep working; codes of our own sit in ranges imapsync does not use.
//! The README lists the same table: keep them in step.

use crate::config::secret::SecretError;
use crate::imap::ImapError;

/// Exit codes of `offboard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// An error with no more precise class.
    CatchAll = 1,
    /// Interrupted by a signal (Ctrl-C); a re-run resumes.
    Signal = 6,
    /// A server could not be reached (refused, unreachable, timeout).
    Connection = 10,
    /// TLS failed: certificate not trusted, handshake, STARTTLS not offered.
    Tls = 12,
    /// A server refused the credentials.
    Authentication = 16,
    /// The command line is wrong.
    Usage = 64,
    /// An input file (password file, CA file) cannot be read.
    NoInput = 66,
    /// The command is not built in this version yet.
    NotImplemented = 69,
    /// A bug of ours ("internal error, please report").
    Internal = 70,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Picks the exit code of an error by walking its causes for one we know.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<ImapError>() {
            return match e {
                ImapError::Connect { .. } | ImapError::Timeout { .. } | ImapError::ConnectionLost { .. } => {
                    Exit::Connection
                }
                ImapError::Certificate { .. }
                | ImapError::Handshake { .. }
                | ImapError::StartTlsUnavailable { .. } => Exit::Tls,
                ImapError::CaFile(_) | ImapError::File { .. } => Exit::NoInput,
                ImapError::AuthFailed { .. }
                | ImapError::MechanismUnavailable { .. }
                | ImapError::UnsendablePassword { .. } => Exit::Authentication,
                ImapError::Refused { .. } | ImapError::Protocol { .. } => Exit::CatchAll,
            };
        }
        if cause.downcast_ref::<SecretError>().is_some() {
            return Exit::NoInput;
        }
        if let Some(e) = cause.downcast_ref::<super::CliError>() {
            return e.exit;
        }
    }
    Exit::CatchAll
}

/// The hint of the first cause that has one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<ImapError>() {
            return e.hint();
        }
        cause
            .downcast_ref::<super::CliError>()
            .and_then(|e| e.hint.clone())
    })
}
