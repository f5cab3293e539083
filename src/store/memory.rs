//! An in-memory mail account implementing [`Store`], for engine tests without sockets (the
//! role of isync's test driver). Several handles share one account, as several IMAP
//! connections share one mailbox. Its switches make the awkward servers the engine must
//! survive: no UIDPLUS, a size limit, a connection that dies at its k-th operation, and
//! batches whose messages are stored in another order than they were sent.

use super::{
    Body, FailureKind, FailureScope, FolderInfo, FolderStatus, MessageMeta, NamespacePrefixes, NewMessage,
    Store, StoreError, Uid,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// UID in its folder.
    pub uid: Uid,
    /// Flags, sorted.
    pub flags: Vec<String>,
    /// INTERNALDATE.
    pub internal_date: Option<String>,
    /// The bytes.
    pub body: Vec<u8>,
}

/// One folder.
#[derive(Debug, Clone)]
pub struct StoredFolder {
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// The next UID to give.
    pub uid_next: Uid,
    /// Special-use and other attributes.
    pub attributes: Vec<String>,
    /// Messages in UID order.
    pub messages: Vec<StoredMessage>,
    /// Changes with every flag change or append (CONDSTORE).
    pub modseq: u64,
}

/// An account: folders by wire name, `/` as separator, INBOX always there.
#[derive(Debug, Clone)]
pub struct Account {
    /// Folders.
    pub folders: BTreeMap<String, StoredFolder>,
    /// Subscribed folder names.
    pub subscribed: BTreeSet<String>,
    /// Message metadata handed out so far (what a run had to read).
    pub metas_served: usize,
    /// Folders opened (EXAMINE, SELECT) and asked their STATUS, in order: what a run cost the
    /// server beyond the messages.
    pub opened: Vec<String>,
    /// Folders asked their STATUS, in order.
    pub statused: Vec<String>,
    next_validity: u32,
}

impl Default for Account {
    fn default() -> Self {
        let mut a = Account {
            folders: BTreeMap::new(),
            subscribed: BTreeSet::new(),
            metas_served: 0,
            opened: Vec::new(),
            statused: Vec::new(),
            next_validity: 1000,
        };
        a.create("INBOX", &[]);
        a
    }
}

impl Account {
    /// Creates a folder with these attributes (no-op if it exists).
    pub fn create(&mut self, name: &str, attributes: &[&str]) {
        if self.folders.contains_key(name) {
            return;
        }
        self.next_validity += 1;
        self.folders.insert(
            name.to_string(),
            StoredFolder {
                uid_validity: self.next_validity,
                uid_next: 1,
                attributes: attributes.iter().map(|a| a.to_string()).collect(),
                messages: Vec::new(),
                modseq: 1,
            },
        );
    }

    /// Stores a message in a folder (creating it), returning its UID.
    pub fn add(&mut self, folder: &str, flags: &[&str], date: &str, body: &[u8]) -> Uid {
        self.create(folder, &[]);
        let f = self.folders.get_mut(folder).expect("just created");
        let uid = f.uid_next;
        f.uid_next += 1;
        f.modseq += 1;
        let mut flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        flags.sort();
        f.messages.push(StoredMessage {
            uid,
            flags,
            internal_date: Some(date.to_string()),
            body: body.to_vec(),
        });
        uid
    }

    /// Every message of a folder as (body, sorted flags, date), sorted: what a copy must
    /// reproduce, whatever the UIDs.
    pub fn contents(&self, folder: &str) -> Vec<(Vec<u8>, Vec<String>, Option<String>)> {
        let mut v: Vec<_> = self
            .folders
            .get(folder)
            .map(|f| {
                f.messages
                    .iter()
                    .map(|m| (m.body.clone(), m.flags.clone(), m.internal_date.clone()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// How the store misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    /// No UIDPLUS: appends do not say the new UID.
    pub no_uidplus: bool,
    /// Refuse messages larger than this (a message-scope failure, like a size limit).
    pub max_size: Option<u64>,
    /// The connection dies at its k-th operation (1-based) and stays dead.
    pub fail_at_op: Option<usize>,
    /// Store each batch's messages in reverse order (UIDs not in the order sent).
    pub reverse_batches: bool,
    /// Acknowledge appends (with a UID) without keeping the messages: a broken server.
    pub lose_appends: bool,
    /// Refuse the first N messages appended through this connection (a message-scope
    /// refusal, like a transient `NO`).
    pub refuse_appends: Option<usize>,
    /// Refuse appends as over quota once the account holds this many messages.
    pub quota_messages: Option<usize>,
    /// Refuse partial FETCH (`BODY.PEEK[]<o.l>`), as some servers do.
    pub no_partial_fetch: bool,
    /// A message that arrives in this folder (by "another session") just as it is opened:
    /// after the run read its status, before it read its messages. Once per connection.
    pub arrive_on_examine: Option<(String, Vec<u8>)>,
    /// This folder is deleted (by "another session") just before it is opened: a folder that
    /// vanishes between LIST and EXAMINE.
    pub vanish_on_examine: Option<String>,
    /// Answer BAD to a metadata FETCH on an empty folder (`1:*` matches nothing), and to
    /// STATUS on the selected folder, as some servers do: the engine must send neither.
    pub strict: bool,
    /// A connection cannot be opened again after it died (`reconnect` fails).
    pub no_reconnect: bool,
    /// Rewrite 8-bit bytes of the header to `X` on append, as Cyrus does by default
    /// (`munge8bit`): the size stays, the bytes do not.
    pub munge8bit: bool,
    /// Store bodies with CRLF turned to LF, a server that changes sizes.
    pub strip_cr: bool,
    /// Refuse messages with bare LF, NUL or a header line without a name, as Cyrus does.
    pub refuse_malformed: bool,
}

/// One "connection" to a shared [`Account`].
#[derive(Debug)]
pub struct MemoryStore {
    account: Arc<Mutex<Account>>,
    selected: Option<String>,
    switches: Switches,
    ops: usize,
    pending: Option<PendingAppend>,
    /// Opened again after dying: the `fail_at_op` switch is spent.
    revived: bool,
    /// Reconnections made.
    pub reconnections: usize,
}

/// A streamed append under way.
#[derive(Debug)]
struct PendingAppend {
    folder: String,
    flags: Vec<String>,
    date: Option<String>,
    size: u64,
    body: Vec<u8>,
}

/// What an APPEND of one message gives.
type AppendOutcome = Result<Option<(u32, Uid)>, StoreError>;

impl MemoryStore {
    /// A connection to `account`.
    pub fn new(account: Arc<Mutex<Account>>, switches: Switches) -> Self {
        MemoryStore {
            account,
            selected: None,
            switches,
            ops: 0,
            pending: None,
            revived: false,
            reconnections: 0,
        }
    }

    fn account(&self) -> MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an operation; fails once the connection is meant to be dead.
    fn op(&mut self) -> Result<(), StoreError> {
        self.ops += 1;
        match self.switches.fail_at_op {
            Some(k) if self.ops >= k && !self.revived => Err(lost("connection lost (test switch)")),
            _ => Ok(()),
        }
    }

    fn selected_folder(&self) -> Result<String, StoreError> {
        self.selected
            .clone()
            .ok_or_else(|| StoreError::new(FailureScope::Folder, FailureKind::Select, "no folder selected"))
    }

    fn open(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        self.op()?;
        let status = self.status_of(name)?;
        self.account().opened.push(name.to_string());
        self.selected = Some(name.to_string());
        Ok(status)
    }

    fn status_of(&self, name: &str) -> Result<FolderStatus, StoreError> {
        let a = self.account();
        let f = a.folders.get(name).ok_or_else(|| {
            StoreError::new(
                FailureScope::Folder,
                FailureKind::Select,
                format!("no folder {name}"),
            )
        })?;
        Ok(FolderStatus {
            uid_validity: f.uid_validity,
            uid_next: Some(f.uid_next),
            exists: f.messages.len() as u32,
            highest_modseq: Some(f.modseq),
        })
    }

    fn with_message<T>(
        &self,
        uid: Uid,
        f: impl FnOnce(&StoredMessage) -> T,
    ) -> Result<Option<T>, StoreError> {
        let folder = self.selected_folder()?;
        let a = self.account();
        Ok(a.folders
            .get(&folder)
            .and_then(|fo| fo.messages.iter().find(|m| m.uid == uid))
            .map(f))
    }

    fn store(&mut self, folder: &str, msg: NewMessage<'_>) -> Result<Option<(u32, Uid)>, StoreError> {
        if let Some(n) = self.switches.refuse_appends.as_mut()
            && *n > 0
        {
            *n -= 1;
            return Err(StoreError::new(
                FailureScope::Message,
                FailureKind::Append,
                "NO try again later (test switch)",
            ));
        }
        if let Some(max) = self.switches.max_size
            && msg.body.len() as u64 > max
        {
            return Err(StoreError::new(
                FailureScope::Message,
                FailureKind::Append,
                "message too large (test switch)",
            ));
        }
        if self.switches.refuse_malformed && crate::sync::repair::repair(msg.body).is_some() {
            return Err(StoreError::new(
                FailureScope::Message,
                FailureKind::Append,
                "NO Message contains bare newlines (test switch)",
            ));
        }
        let mut a = self.account();
        if let Some(max) = self.switches.quota_messages
            && a.folders.values().map(|f| f.messages.len()).sum::<usize>() >= max
        {
            return Err(StoreError::new(
                FailureScope::Message,
                FailureKind::OverQuota,
                "[OVERQUOTA] Quota exceeded (test switch)",
            ));
        }
        let Some(f) = a.folders.get_mut(folder) else {
            return Err(StoreError::new(
                FailureScope::Folder,
                FailureKind::Append,
                format!("[TRYCREATE] no folder {folder}"),
            ));
        };
        let uid = f.uid_next;
        f.uid_next += 1;
        f.modseq += 1;
        let validity = f.uid_validity;
        if self.switches.lose_appends {
            return Ok(Some((validity, uid)));
        }
        let mut flags = msg.flags.to_vec();
        flags.sort();
        let mut body = msg.body.to_vec();
        if self.switches.munge8bit {
            let end = header_of(&body).len();
            for b in &mut body[..end] {
                if *b >= 0x80 {
                    *b = b'X';
                }
            }
        }
        if self.switches.strip_cr {
            body.retain(|b| *b != b'\r');
        }
        f.messages.push(StoredMessage {
            uid,
            flags,
            internal_date: msg.internal_date.map(str::to_string),
            body,
        });
        Ok((!self.switches.no_uidplus).then_some((validity, uid)))
    }
}

/// A connection-level failure: the engine gives the side up.
fn lost(why: &str) -> StoreError {
    StoreError::new(FailureScope::Account, FailureKind::Connection, why)
}

/// The Message-Id and Received lines of a header, folded lines included, as IMAP's
/// `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID RECEIVED)]` returns them.
fn identity_lines(body: &[u8]) -> Vec<u8> {
    let header = header_of(body);
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if keep {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = line.split(|b| *b == b':').next().unwrap_or(&[]);
        keep = name.eq_ignore_ascii_case(b"message-id") || name.eq_ignore_ascii_case(b"received");
        if keep {
            out.extend_from_slice(line);
        }
    }
    if !out.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn header_of(body: &[u8]) -> &[u8] {
    body.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| &body[..p + 4])
        .unwrap_or(body)
}

impl Store for MemoryStore {
    async fn reconnect(&mut self) -> Result<(), StoreError> {
        if self.switches.no_reconnect {
            return Err(lost("connection refused (test switch)"));
        }
        self.revived = true;
        self.selected = None;
        self.pending = None;
        self.reconnections += 1;
        Ok(())
    }

    async fn namespaces(&mut self) -> Result<NamespacePrefixes, StoreError> {
        self.op()?;
        Ok(NamespacePrefixes {
            personal: Some((String::new(), Some('/'))),
            foreign: vec!["Autres utilisateurs/".into(), "Dossiers partag&AOk-s/".into()],
        })
    }

    async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, StoreError> {
        self.op()?;
        Ok(self
            .account()
            .folders
            .iter()
            .map(|(name, f)| FolderInfo {
                name: name.clone(),
                delimiter: Some('/'),
                attributes: f.attributes.clone(),
            })
            .collect())
    }

    async fn list_subscribed(&mut self) -> Result<Vec<String>, StoreError> {
        self.op()?;
        Ok(self.account().subscribed.iter().cloned().collect())
    }

    async fn create_folder(&mut self, name: &str) -> Result<(), StoreError> {
        self.op()?;
        self.account().create(name, &[]);
        Ok(())
    }

    async fn subscribe(&mut self, name: &str) -> Result<(), StoreError> {
        self.op()?;
        self.account().subscribed.insert(name.to_string());
        Ok(())
    }

    async fn examine(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        if let Some((folder, body)) = self.switches.arrive_on_examine.take_if(|(f, _)| f == name) {
            self.account()
                .add(&folder, &[], "08-Aug-2024 08:00:00 +0200", &body);
        }
        if self.switches.vanish_on_examine.as_deref() == Some(name) {
            self.account().folders.remove(name);
        }
        self.open(name)
    }

    async fn status(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        self.op()?;
        if self.switches.strict && self.selected.as_deref() == Some(name) {
            return Err(StoreError::new(
                FailureScope::Folder,
                FailureKind::Select,
                "BAD STATUS on the selected mailbox (test switch)",
            ));
        }
        self.account().statused.push(name.to_string());
        self.status_of(name)
    }

    async fn select(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        self.open(name)
    }

    async fn set_flags(&mut self, uid: Uid, flags: &[String]) -> Result<(), StoreError> {
        self.op()?;
        let folder = self.selected_folder()?;
        let mut a = self.account();
        if let Some(f) = a.folders.get_mut(&folder) {
            f.modseq += 1;
            if let Some(m) = f.messages.iter_mut().find(|m| m.uid == uid) {
                m.flags = flags.to_vec();
                m.flags.sort();
            }
        }
        Ok(())
    }

    async fn fetch_meta(&mut self) -> Result<Vec<MessageMeta>, StoreError> {
        self.op()?;
        let folder = self.selected_folder()?;
        let a = self.account();
        if self.switches.strict && a.folders.get(&folder).is_none_or(|f| f.messages.is_empty()) {
            return Err(StoreError::new(
                FailureScope::Folder,
                FailureKind::Fetch,
                "BAD UID FETCH 1:* on an empty mailbox (test switch)",
            ));
        }
        Ok(a.folders
            .get(&folder)
            .map(|f| {
                f.messages
                    .iter()
                    .map(|m| MessageMeta {
                        uid: m.uid,
                        flags: m.flags.clone(),
                        internal_date: m.internal_date.clone(),
                        size: m.body.len() as u64,
                        identity_headers: identity_lines(&m.body),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn fetch_meta_each(
        &mut self,
        from: Uid,
        each: &mut (dyn FnMut(MessageMeta) + Send),
    ) -> Result<(), StoreError> {
        let metas: Vec<MessageMeta> = self
            .fetch_meta()
            .await?
            .into_iter()
            .filter(|m| m.uid >= from)
            .collect();
        self.account().metas_served += metas.len();
        for m in metas {
            each(m);
        }
        Ok(())
    }

    async fn fetch_headers(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, Vec<u8>)>, StoreError> {
        self.op()?;
        let mut out = Vec::new();
        for &uid in uids {
            if let Some(h) = self.with_message(uid, |m| header_of(&m.body).to_vec())? {
                out.push((uid, h));
            }
        }
        Ok(out)
    }

    async fn fetch_sizes(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, u64)>, StoreError> {
        self.op()?;
        let mut out = Vec::new();
        for &uid in uids {
            if let Some(size) = self.with_message(uid, |m| m.body.len() as u64)? {
                out.push((uid, size));
            }
        }
        Ok(out)
    }

    async fn fetch_body(&mut self, uid: Uid) -> Result<Vec<u8>, StoreError> {
        self.op()?;
        self.with_message(uid, |m| m.body.clone())?
            .ok_or_else(|| StoreError::new(FailureScope::Message, FailureKind::Fetch, "no such message"))
    }

    async fn fetch_bodies(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, Body)>, StoreError> {
        self.op()?;
        let mut out: Vec<(Uid, Body)> = Vec::new();
        for &uid in uids {
            if let Some(b) = self.with_message(uid, |m| m.body.clone())? {
                out.push((uid, Box::new(b)));
            }
        }
        Ok(out)
    }

    async fn append_batch(
        &mut self,
        folder: &str,
        msgs: &[NewMessage<'_>],
    ) -> Result<Vec<Result<Option<(u32, Uid)>, StoreError>>, StoreError> {
        self.op()?;
        let mut order: Vec<usize> = (0..msgs.len()).collect();
        if self.switches.reverse_batches {
            order.reverse();
        }
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; msgs.len()];
        for (n, i) in order.into_iter().enumerate() {
            // A connection that dies mid-batch leaves the messages before it stored.
            if n > 0 {
                self.op()?;
            }
            let outcome = self.store(folder, msgs[i]);
            if let Err(e) = &outcome
                && e.scope != FailureScope::Message
            {
                return Err(e.clone());
            }
            outcomes[i] = Some(outcome);
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    async fn fetch_body_part(&mut self, uid: Uid, offset: u64, len: u64) -> Result<Body, StoreError> {
        self.op()?;
        if self.switches.no_partial_fetch {
            return Err(StoreError::new(
                FailureScope::Folder,
                FailureKind::Fetch,
                "BAD partial fetch not supported (test switch)",
            ));
        }
        let part = self
            .with_message(uid, |m| {
                let start = (offset as usize).min(m.body.len());
                let end = (start + len as usize).min(m.body.len());
                m.body[start..end].to_vec()
            })?
            .ok_or_else(|| StoreError::new(FailureScope::Message, FailureKind::Fetch, "no such message"))?;
        Ok(Box::new(part))
    }

    async fn append_start(
        &mut self,
        folder: &str,
        flags: &[String],
        date: Option<&str>,
        size: u64,
    ) -> Result<(), StoreError> {
        self.op()?;
        self.pending = Some(PendingAppend {
            folder: folder.to_string(),
            flags: flags.to_vec(),
            date: date.map(str::to_string),
            size,
            body: Vec::new(),
        });
        Ok(())
    }

    async fn append_write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.op()?;
        match &mut self.pending {
            Some(p) => {
                p.body.extend_from_slice(chunk);
                Ok(())
            }
            None => Err(lost("append_write without append_start")),
        }
    }

    async fn append_finish(&mut self) -> Result<Option<(u32, Uid)>, StoreError> {
        self.op()?;
        let Some(PendingAppend {
            folder,
            flags,
            date,
            size,
            body,
        }) = self.pending.take()
        else {
            return Err(lost("append_finish without append_start"));
        };
        if body.len() as u64 != size {
            return Err(lost("literal length mismatch"));
        }
        let msg = NewMessage {
            flags: &flags,
            internal_date: date.as_deref(),
            body: &body,
        };
        self.store(&folder, msg)
    }

    async fn append(&mut self, folder: &str, msg: NewMessage<'_>) -> Result<Option<(u32, Uid)>, StoreError> {
        self.op()?;
        self.store(folder, msg)
    }
}
