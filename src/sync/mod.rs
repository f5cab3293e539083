//! The copy engine: folder selection and mapping, message identity, the resume journal, the
//! executor and its report. Speaks the admin's words (folder, message); imports `store`
//! only, never `imap`.

pub mod engine;
pub mod identity;
pub mod mapping;
pub mod report;
pub mod state;
#[cfg(test)]
mod tests;

pub use engine::{SyncError, SyncOptions, run};
pub use mapping::{FolderMapping, FolderRules};
pub use report::{Reporter, SyncReport};
pub use state::SyncState;
