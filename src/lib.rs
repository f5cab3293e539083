//! offboard: hand a leaver's mailbox over to a successor, on BlueMind or any IMAP server.
//!
//! Data flows one way: `cli → workflow → {bluemind-api, sync → store ← imap}`; no module
//! imports one above it.
//!
//! - [`cli`]: clap arguments, the imapsync-compatible parser, output, and the one table that
//!   turns errors into exit codes. The only place that prints.
//! - [`config`]: settings and secret sources (files, environment), yielding `secrecy` types.
//! - [`sync`]: the copy engine — folder selection and mapping, message identity, the compact
//!   folder index, the pure matcher, the resume journal, the executor (reconnects included)
//!   and its report. Imports `store` only.
//! - [`store`]: the interface between engine and server: shared words and the `Store` trait
//!   (and, in tests, an in-memory account the engine's crash-point tests run on).
//! - [`imap`]: the protocol — transports (plain, STARTTLS, implicit TLS, all with timeouts),
//!   login, CAPABILITY, NAMESPACE, LIST, EXAMINE, FETCH, APPEND — the pure wire parsers (mUTF-7,
//!   NAMESPACE, pipelined completions), and `Store` for an IMAP session.
//! - [`workflow`]: the offboarding steps over the `bluemind-api` crate, each planned before
//!   it is applied.
//! - [`fuzzing`]: entry points of the fuzz targets (`fuzz/`), also run by a property test.

pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod imap;
pub mod store;
pub mod sync;
pub mod workflow;
