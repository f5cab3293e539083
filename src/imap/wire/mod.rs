//! Pure parsers and encoders for what async-imap does not cover: no I/O here, bytes in,
//! values out, so each piece is tested with known-answer tables and property tests.

pub mod mutf7;
pub mod namespace;
pub mod pipeline;
pub mod quote;
