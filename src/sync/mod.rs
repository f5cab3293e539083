//! The copy engine: folder selection and mapping, message identity, the compact folder index,
//! the pure matcher, the resume journal, the executor and its report. Speaks the admin's
//! words (folder, message); imports `store` only, never `imap` (folder names are converted
//! through the stores' `FolderNames`).

pub mod engine;
pub mod identity;
pub mod index;
pub mod journal;
pub mod mapping;
pub mod matching;
mod readback;
pub mod repair;
pub mod report;
#[cfg(test)]
mod tests;

pub use engine::{Aborted, Reconnect, SyncError, SyncOptions, run};
pub use journal::Journal;
pub use mapping::{FolderMapping, FolderRules};
pub use report::{Reporter, SyncReport};
