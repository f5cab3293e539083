//! Settings and secret sources. Imports nothing of ours.

pub mod file;
pub mod keyring;
pub mod secret;
