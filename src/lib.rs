//! offboard: hand a leaver's mailbox over to a successor, on BlueMind or any IMAP server.
//!
//! Data flows one way: `cli → workflow → {bluemind-api, sync → store ← imap}`; no module
//! imports one above it.
//!
//! - [`cli`]: clap arguments, the imapsync-compatible parser, output, and the one table that
//!   turns errors into exit codes. The only place that prints.
//! - [`config`]: settings and secret sources (files, environment), yielding `secrecy` types.
//! - [`imap`]: the protocol — transports (plain, STARTTLS, implicit TLS, all with timeouts),
//!   login, CAPABILITY, NAMESPACE, LIST — and the pure wire parsers (mUTF-7, NAMESPACE).
//!
//! Still to come, each in its own room: `store` (what the copy engine needs from a server),
//! `sync` (the copy engine), `workflow` (the offboarding steps).

pub mod cli;
pub mod config;
pub mod imap;
pub mod store;
pub mod sync;
