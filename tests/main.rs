//! Integration tests: one binary, modules by theme, each test with its own Dovecot and temp
//! dir. Helpers live in the `testkit` crate (harness, fill, read-back).
// The crate's print lints guard the CLI's one output object; a test may say what it saw.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admin;
mod bluemind_client;
mod cli;
mod departure;
mod faults;
mod harness;
mod hostile;
mod imap_session;
pub(crate) mod imapsync_compat;
mod servers;
mod support;
mod workflow;
