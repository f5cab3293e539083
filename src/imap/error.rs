//! The one error type of the IMAP layer. Variants carry what a person needs to act (host,
//! user, the server's own words) and never a secret: passwords are not in any field.

use std::path::PathBuf;

/// What went wrong talking to an IMAP server.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// TCP connection refused, unreachable or the name does not resolve.
    #[error("cannot connect to {host}:{port}")]
    Connect {
        /// Host as given.
        host: String,
        /// Port.
        port: u16,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("{host}:{port} did not answer within {secs} s ({during})")]
    Timeout {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The timeout that ran out.
        secs: u64,
        /// What we were waiting for.
        during: String,
    },
    /// The server's certificate was refused.
    #[error("the TLS certificate of {host}:{port} is not trusted: {reason}")]
    Certificate {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// rustls's reason (unknown issuer, wrong name, expired…).
        reason: String,
    },
    /// The TLS handshake failed for a reason other than the certificate.
    #[error("TLS handshake with {host}:{port} failed")]
    Handshake {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA file given cannot be used.
    #[error(transparent)]
    CaFile(#[from] super::tls::CaFileError),
    /// STARTTLS was asked for but the server does not offer it (or refused it).
    #[error("{host}:{port} does not offer STARTTLS: {detail}")]
    StartTlsUnavailable {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The server's words.
        detail: String,
    },
    /// The server refused the credentials.
    #[error("{host} refused the login of {user}: {server}")]
    AuthFailed {
        /// Host.
        host: String,
        /// The login name (never the password).
        user: String,
        /// The server's words.
        server: String,
    },
    /// The password cannot be sent with the chosen mechanism.
    #[error(
        "the password of {user} cannot be sent with LOGIN (it contains CR, LF or NUL); use AUTHENTICATE PLAIN"
    )]
    UnsendablePassword {
        /// The login name.
        user: String,
    },
    /// The server does not offer the chosen mechanism.
    #[error("{host} does not offer authentication mechanism {mechanism}")]
    MechanismUnavailable {
        /// Host.
        host: String,
        /// The mechanism.
        mechanism: String,
    },
    /// The server refused a command (NO/BAD).
    #[error("{host} refused {command}: {server}")]
    Refused {
        /// Host.
        host: String,
        /// The command, without arguments that could be secret.
        command: String,
        /// The server's words.
        server: String,
    },
    /// The server sent something we cannot understand.
    #[error("unexpected answer from {host} to {command}: {detail}")]
    Protocol {
        /// Host.
        host: String,
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The connection broke.
    #[error("connection to {host} lost during {command}")]
    ConnectionLost {
        /// Host.
        host: String,
        /// The command.
        command: String,
        /// The cause, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A file the connection needs (CA file, passfile) could not be read.
    #[error("cannot read {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How far a failure reaches: the engine acts on this, never on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only this command (a refused APPEND, a malformed message).
    Command,
    /// This connection: reconnecting may help.
    Connection,
    /// This account or server: retrying will not help without a change by a person.
    Account,
}

impl ImapError {
    /// How far this failure reaches.
    pub fn reach(&self) -> Reach {
        match self {
            ImapError::Refused { .. } | ImapError::Protocol { .. } => Reach::Command,
            ImapError::Timeout { .. } | ImapError::ConnectionLost { .. } => Reach::Connection,
            _ => Reach::Account,
        }
    }

    /// What a person can do about it, when we know.
    pub fn hint(&self) -> Option<String> {
        match self {
            ImapError::Certificate { host, reason, .. } => Some(if reason.contains("NotValidForName") {
                format!("connect with the name the certificate was issued for, instead of {host}")
            } else {
                "pass the CA that signed the server's certificate with --ca-file FILE.pem, \
                 or --insecure to skip verification (not recommended)"
                    .to_string()
            }),
            ImapError::Connect { .. } => {
                Some("check the host name, the port and that the IMAP service is running".into())
            }
            ImapError::Handshake { .. } => {
                Some("check that this port speaks TLS (993) or choose --tls starttls / none (143)".into())
            }
            ImapError::StartTlsUnavailable { .. } => {
                Some("use implicit TLS on port 993 (--tls implicit)".into())
            }
            ImapError::AuthFailed { .. } => {
                Some("check the login (BlueMind wants the full address) and the password or API key".into())
            }
            ImapError::MechanismUnavailable { .. } => {
                Some("choose another mechanism with --authmech (LOGIN or PLAIN)".into())
            }
            _ => None,
        }
    }
}
