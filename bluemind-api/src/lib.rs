//! Typed async client for the BlueMind REST API, and (feature `fake`) a stateful BlueMind
//! double for tests and the sandbox.
//!
//! Where the real API and a tidy design disagree, the real API wins: a failed login is HTTP
//! 200 with `status: "Bad"`, a missing user is HTTP 204, an ACL PUT replaces the whole list,
//! an API key belongs to whoever created it. Each quirk is documented where it is handled,
//! with the BlueMind source it comes from (see `shared/bluemind-api.md`).
//!
//! Knows nothing of offboarding: it is a client, like cargo's `crates-io` crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bluemind_api::ApiError> {
//! use bluemind_api::{Client, TlsOptions};
//! use secrecy::SecretString;
//! let admin = Client::new("https://bm.example.com", SecretString::from("admin-api-key"), &TlsOptions::default())?;
//! let domain = admin.lookup_domain("example.com").await?.expect("domain exists");
//! // The uid is often technical (`<hex>.internal`): always resolve it.
//! let user = admin.user_by_email(&domain.uid, "bertrand@example.com").await?;
//! # let _ = user; Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod error;
pub mod model;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{Client, LoginOutcome, SuOutcome, TlsOptions};
pub use error::ApiError;
pub use model::*;
