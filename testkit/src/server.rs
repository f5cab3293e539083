//! Every kind of IMAP server the tests run the copy against, behind one handle: Dovecot shaped
//! like BlueMind, Dovecot advertising only what BlueMind 5's endpoint does, Dovecot with `.`
//! as separator, and Cyrus shaped like BlueMind 4's store.

use crate::cyrus::Cyrus;
use crate::dovecot::{BLUEMIND_5_CAPABILITIES, Dovecot, DovecotOptions};
use anyhow::Result;

/// A kind of server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Dovecot configured like BlueMind (separator `/`, MULTIAPPEND, CONDSTORE).
    Dovecot,
    /// Dovecot advertising BlueMind 5's capabilities: LITERAL+, UIDPLUS, NAMESPACE, no
    /// MULTIAPPEND, no CONDSTORE.
    BlueMind5,
    /// Dovecot with `.` as hierarchy separator.
    DotSeparator,
    /// Cyrus IMAP 3, configured like BlueMind 4.
    Cyrus,
}

impl Kind {
    /// A short name for test messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Dovecot => "Dovecot",
            Kind::BlueMind5 => "Dovecot as BlueMind 5",
            Kind::DotSeparator => "Dovecot with `.`",
            Kind::Cyrus => "Cyrus",
        }
    }

    /// The hierarchy separator.
    pub fn separator(self) -> char {
        if self == Kind::DotSeparator { '.' } else { '/' }
    }
}

/// A running server of some kind; stopped on drop.
#[derive(Debug)]
pub enum Server {
    /// One of the Dovecot kinds.
    Dovecot(Kind, Dovecot),
    /// Cyrus.
    Cyrus(Cyrus),
}

impl Server {
    /// Starts a server of this kind with bertrand and nathalie.
    pub fn start(kind: Kind) -> Result<Self> {
        let dovecot = |opts: DovecotOptions| Dovecot::start_with(opts).map(|d| Server::Dovecot(kind, d));
        match kind {
            Kind::Dovecot => dovecot(DovecotOptions::default()),
            Kind::BlueMind5 => dovecot(DovecotOptions {
                capabilities: Some(BLUEMIND_5_CAPABILITIES.to_string()),
                ..Default::default()
            }),
            Kind::DotSeparator => dovecot(DovecotOptions {
                separator: '.',
                ..Default::default()
            }),
            Kind::Cyrus => Cyrus::start().map(Server::Cyrus),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Server::Dovecot(k, _) => *k,
            Server::Cyrus(_) => Kind::Cyrus,
        }
    }

    /// The plain IMAP port.
    pub fn port(&self) -> u16 {
        match self {
            Server::Dovecot(_, d) => d.imap_port,
            Server::Cyrus(c) => c.imap_port,
        }
    }

    /// Adds a user.
    pub fn add_user(&self, login: &str, password: &str) -> Result<()> {
        match self {
            Server::Dovecot(_, d) => d.add_user(login, password),
            Server::Cyrus(c) => c.add_user(login, password),
        }
    }

    /// The server's log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        match self {
            Server::Dovecot(_, d) => d.log_tail(),
            Server::Cyrus(c) => c.log_tail(),
        }
    }
}
