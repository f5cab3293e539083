//! Test ground for `offboard`: a throwaway Dovecot configured like BlueMind, a test CA, and
//! helpers to fill a mailbox from a seed and read it back for assertions.
//!
//! This crate is deliberately independent of the product: it speaks IMAP with its own tiny
//! blocking client (`wire`) so that a bug in `offboard`'s IMAP layer cannot hide itself by
//! being used on both sides of an assertion. It is a dev-only crate (`publish = false`), used
//! by the integration tests, the benchmark and the sandbox.

pub mod cyrus;
pub mod delay;
pub mod dovecot;
pub mod fault;
pub mod fill;
pub mod guard;
pub mod mutf7;
pub mod readback;
pub mod sandbox;
pub mod server;
pub mod tls;
pub mod wire;

pub use dovecot::{Dovecot, DovecotOptions, TestUser};
pub use fill::{MailboxSpec, SeedMessage};
pub use readback::{FolderSnapshot, MailboxSnapshot, MessageSnapshot};

/// The two BlueMind users every scenario starts with (login, password).
pub const BERTRAND: (&str, &str) = ("bertrand@bluemind.loc", "8ertranD");
/// The successor in the scenario (login, password).
pub const NATHALIE: (&str, &str) = ("nathalie@bluemind.loc", "Nathali3");
/// The master user of the harness: `user*testmaster` logs in as anyone, for assertions.
pub const MASTER: (&str, &str) = ("testmaster", "m4ster-of-tests");
