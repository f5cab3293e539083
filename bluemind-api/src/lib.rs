//! Typed async client for the BlueMind REST API, and (behind the `fake` feature) a stateful
//! BlueMind double for tests and the sandbox.
//!
//! Not built yet: this crate holds the place in the workspace so the layout is final.
#![deny(missing_docs)]
