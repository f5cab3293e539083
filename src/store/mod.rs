//! The interface between the copy engine and a mail server (isync's `driver.h`): the shared
//! words (`Uid`, flags, dates, folder and message metadata) and the one trait listing what the
//! engine needs. Imports nothing of ours, so the engine never sees a socket.

use std::fmt;

/// The in-memory account the engine tests run on.
#[cfg(test)]
pub mod memory;

/// A message UID inside one folder incarnation (RFC 3501 §2.3.1.1).
pub type Uid = u32;

/// A folder as the server lists it, name as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FolderInfo {
    /// Wire name (modified UTF-7 for IMAP).
    pub name: String,
    /// Hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Attributes (`\Noselect`, `\Junk`, `\Trash`, …).
    pub attributes: Vec<String>,
}

impl FolderInfo {
    /// Whether messages can live in it.
    pub fn selectable(&self) -> bool {
        !self.has_attribute("\\Noselect") && !self.has_attribute("\\NonExistent")
    }

    /// Case-insensitive attribute test.
    pub fn has_attribute(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }
}

/// How a server spells folder names on the wire (modified UTF-7 for IMAP), so the engine
/// maps names without knowing the protocol.
#[derive(Debug, Clone, Copy)]
pub struct FolderNames {
    /// A UTF-8 name as the server wants it.
    pub to_wire: fn(&str) -> String,
    /// A wire name for people and for mapping, and why it was not valid if it was not (the
    /// text is then a sane name derived from it). Total: every wire name gets one.
    pub to_display: fn(&str) -> (String, Option<String>),
}

impl FolderNames {
    /// Names are the same on the wire and for people.
    pub const VERBATIM: FolderNames = FolderNames {
        to_wire: str::to_string,
        to_display: |s| (s.to_string(), None),
    };
}

/// The namespace prefixes of an account (RFC 2342), wire form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespacePrefixes {
    /// Personal prefix and delimiter (`""` and `/` on BlueMind).
    pub personal: Option<(String, Option<char>)>,
    /// Prefixes whose folders belong to others (other users, shared): never copied by default.
    pub foreign: Vec<String>,
}

/// What EXAMINE tells about a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    /// UIDVALIDITY: UIDs are only meaningful with it.
    pub uid_validity: u32,
    /// UIDNEXT, when the server says.
    pub uid_next: Option<Uid>,
    /// Number of messages.
    pub exists: u32,
    /// HIGHESTMODSEQ (RFC 7162), when the server has CONDSTORE: it changes with any flag change.
    pub highest_modseq: Option<u64>,
}

/// One message's metadata, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID in its folder.
    pub uid: Uid,
    /// Flags and keywords, `\Recent` left out (it cannot be set).
    pub flags: Vec<String>,
    /// INTERNALDATE, as the server sent it (`dd-Mon-yyyy hh:mm:ss +zzzz`).
    pub internal_date: Option<String>,
    /// RFC822.SIZE.
    pub size: u64,
    /// The identity header lines (Message-Id, Received), raw; empty when it has none.
    pub identity_headers: Vec<u8>,
}

/// A message to append.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// Flags and keywords to set.
    pub flags: &'a [String],
    /// INTERNALDATE to keep.
    pub internal_date: Option<&'a str>,
    /// The exact bytes.
    pub body: &'a [u8],
}

/// The bytes of a fetched message, wherever the store keeps them (for IMAP: the response
/// buffer itself, so a message is never held twice).
pub trait MessageBytes: Send {
    /// The exact bytes.
    fn bytes(&self) -> &[u8];
}

impl MessageBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A fetched message body.
pub type Body = Box<dyn MessageBytes>;

/// How far a store failure reaches; the engine acts on this, never on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureScope {
    /// This message only (refused APPEND, too big, quota): report and go on.
    Message,
    /// This folder (cannot select or create it).
    Folder,
    /// The connection or account: stop this side.
    Account,
}

/// What kind of failure, for exit codes and advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The destination is over quota.
    OverQuota,
    /// An APPEND was refused.
    Append,
    /// A FETCH failed.
    Fetch,
    /// A CREATE failed.
    Create,
    /// A SELECT/EXAMINE failed.
    Select,
    /// Connection or protocol failure.
    Connection,
}

/// A store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// Reach.
    pub scope: FailureScope,
    /// Class.
    pub kind: FailureKind,
    /// What happened, with the server's words; never a secret.
    pub message: String,
}

impl StoreError {
    /// A new error.
    pub fn new(scope: FailureScope, kind: FailureKind, message: impl fmt::Display) -> Self {
        StoreError {
            scope,
            kind,
            message: message.to_string(),
        }
    }
}

/// One step of building the destination's folder tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TreeOp {
    /// CREATE a folder (its parent comes earlier in the list).
    Create(String),
    /// SUBSCRIBE a folder.
    Subscribe(String),
}

/// What the copy engine needs from a server. One implementation per protocol (IMAP today),
/// plus test doubles; the engine is generic over it.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// How this server spells folder names.
    fn folder_names(&self) -> FolderNames {
        FolderNames::VERBATIM
    }
    /// Opens a new connection in place of this one (same server, same login) after a
    /// failure of scope `Account`: nothing is selected afterwards. Stores that cannot say so.
    async fn reconnect(&mut self) -> Result<(), StoreError> {
        Err(StoreError::new(
            FailureScope::Account,
            FailureKind::Connection,
            "this store cannot reconnect",
        ))
    }
    /// Namespace prefixes.
    async fn namespaces(&mut self) -> Result<NamespacePrefixes, StoreError>;
    /// Every folder the account can see.
    async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, StoreError>;
    /// Subscribed folders (wire names).
    async fn list_subscribed(&mut self) -> Result<Vec<String>, StoreError>;
    /// Creates a folder (parents must exist).
    async fn create_folder(&mut self, name: &str) -> Result<(), StoreError>;
    /// Subscribes a folder.
    async fn subscribe(&mut self, name: &str) -> Result<(), StoreError>;
    /// Several tree steps in this order, one outcome each; the outer error means the
    /// connection failed. A server that takes commands back to back (IMAP) builds the whole
    /// tree in one round trip; this default does one step after the other.
    async fn build_tree(&mut self, ops: &[TreeOp]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let r = match op {
                TreeOp::Create(name) => self.create_folder(name).await,
                TreeOp::Subscribe(name) => self.subscribe(name).await,
            };
            match r {
                Err(e) if e.scope == FailureScope::Account => return Err(e),
                r => out.push(r),
            }
        }
        Ok(out)
    }
    /// The status of several folders (see [`Store::status`]), one outcome each; the outer
    /// error means the connection failed. IMAP asks for them all in one round trip.
    async fn status_many(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Result<FolderStatus, StoreError>>, StoreError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.status(name).await {
                Err(e) if e.scope == FailureScope::Account => return Err(e),
                r => out.push(r),
            }
        }
        Ok(out)
    }
    /// Opens a folder read-only (EXAMINE): the source is never modified.
    async fn examine(&mut self, name: &str) -> Result<FolderStatus, StoreError>;
    /// A folder's status without opening it (IMAP STATUS): cheap, for skipping unchanged folders.
    async fn status(&mut self, name: &str) -> Result<FolderStatus, StoreError>;
    /// Opens a folder read-write (SELECT), to change flags of messages already copied.
    async fn select(&mut self, name: &str) -> Result<FolderStatus, StoreError>;
    /// Replaces the flags of one message of the selected folder.
    async fn set_flags(&mut self, uid: Uid, flags: &[String]) -> Result<(), StoreError>;
    /// Metadata of every message of the examined folder.
    async fn fetch_meta(&mut self) -> Result<Vec<MessageMeta>, StoreError>;
    /// The metadata of the messages from UID `from` on, handed over one message at a time
    /// as it arrives, so the caller can keep a compact form and drop the header bytes at
    /// once. A UID may come twice (the caller keeps one). The default filters
    /// [`Store::fetch_meta`].
    async fn fetch_meta_each(
        &mut self,
        from: Uid,
        each: &mut (dyn FnMut(MessageMeta) + Send),
    ) -> Result<(), StoreError> {
        for m in self.fetch_meta().await? {
            if m.uid >= from {
                each(m);
            }
        }
        Ok(())
    }
    /// The whole header of some messages of the examined folder (identity fallback).
    async fn fetch_headers(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, Vec<u8>)>, StoreError>;
    /// The exact bytes of one message of the examined folder, without marking it read.
    async fn fetch_body(&mut self, uid: Uid) -> Result<Vec<u8>, StoreError>;
    /// RFC822.SIZE of these messages of the examined folder: what the server stored, read
    /// back after a copy. A UID that is not there is absent from the answer.
    async fn fetch_sizes(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, u64)>, StoreError>;
    /// The bodies of several messages of the examined folder (the caller bounds the batch by
    /// size); a UID that vanished is simply absent from the answer.
    async fn fetch_bodies(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, Body)>, StoreError>;
    /// Appends several messages to one folder; one outcome per message, in order. An outer
    /// error means the connection failed (nothing is known of the batch).
    async fn append_batch(
        &mut self,
        folder: &str,
        msgs: &[NewMessage<'_>],
    ) -> Result<Vec<Result<Option<(u32, Uid)>, StoreError>>, StoreError>;
    /// Bytes `[offset, offset + len)` of a message of the examined folder (shorter at the end,
    /// empty past it): big messages travel in pieces and are never held whole.
    async fn fetch_body_part(&mut self, uid: Uid, offset: u64, len: u64) -> Result<Body, StoreError>;
    /// Starts appending a message of exactly `size` bytes, written with `append_write`. Once
    /// started it must be finished, or the connection given up (scope `Account`).
    async fn append_start(
        &mut self,
        folder: &str,
        flags: &[String],
        date: Option<&str>,
        size: u64,
    ) -> Result<(), StoreError>;
    /// Writes the next piece of a started append.
    async fn append_write(&mut self, chunk: &[u8]) -> Result<(), StoreError>;
    /// Completes a started append.
    async fn append_finish(&mut self) -> Result<Option<(u32, Uid)>, StoreError>;
    /// Appends a message; returns `(UIDVALIDITY, UID)` when the server reports it (UIDPLUS).
    async fn append(&mut self, folder: &str, msg: NewMessage<'_>) -> Result<Option<(u32, Uid)>, StoreError>;
}
