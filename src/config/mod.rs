//! Settings and secret sources. Imports nothing of ours.

pub mod secret;
