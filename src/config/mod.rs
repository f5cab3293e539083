//! Settings and secret sources. Imports nothing of ours.

pub mod file;
pub mod secret;
