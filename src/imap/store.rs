//! [`Store`] for an IMAP session: the engine's questions in IMAP commands, and IMAP failures
//! in the engine's terms (scope and kind), decided here once.

use super::error::ImapError;
use super::session::Session;
use crate::store::{
    Body, FailureKind, FailureScope, FolderInfo, FolderNames, FolderStatus, MessageBytes, MessageMeta,
    NamespacePrefixes, NewMessage, Store, StoreError, TreeOp, Uid,
};

/// A body still inside async-imap's response buffer.
struct FetchedBody(async_imap::types::Fetch);

impl MessageBytes for FetchedBody {
    fn bytes(&self) -> &[u8] {
        self.0.body().unwrap_or(&[])
    }
}

/// `(UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ)` as the engine's status.
fn folder_status(
    (validity, uid_next, exists, highest_modseq): (Option<u32>, Option<u32>, u32, Option<u64>),
) -> FolderStatus {
    FolderStatus {
        uid_validity: validity.unwrap_or(0),
        uid_next,
        exists,
        highest_modseq,
    }
}

/// A UID set for a command (`1,5,7`), ranges folded (`1:4,9`).
fn uid_set(uids: &[Uid]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// UIDs per metadata FETCH: each window is its own command, so a big folder is never one
/// command of unbounded size, and a server that answers slowly answers window by window.
const META_WINDOW: u32 = 5_000;

/// The UID sets that cover a folder whose UIDNEXT is `uid_next`, window by window; the last
/// one is open-ended (`n:*`), so a message that arrived after the folder was opened is not
/// missed (and `*` past the end names the last message again: the caller keeps one entry per
/// UID).
fn uid_windows(from: u32, uid_next: Option<u32>) -> Vec<String> {
    let from = from.max(1);
    let Some(next) = uid_next.filter(|n| n.saturating_sub(from) > META_WINDOW) else {
        return vec![format!("{from}:*")];
    };
    let mut out = Vec::new();
    let mut lo = from;
    while next - lo > META_WINDOW {
        out.push(format!("{lo}:{}", lo + META_WINDOW - 1));
        lo += META_WINDOW;
    }
    out.push(format!("{lo}:*"));
    out
}
/// Identity headers fetched for every message (imapsync's default `--useheader` set).
const IDENTITY_QUERY: &str =
    "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID RECEIVED)])";

fn to_store(e: ImapError, kind: FailureKind) -> StoreError {
    let scope = match &e {
        ImapError::Refused { .. } | ImapError::Protocol { .. } => match kind {
            FailureKind::Append | FailureKind::OverQuota => FailureScope::Message,
            _ => FailureScope::Folder,
        },
        _ => FailureScope::Account,
    };
    let text = e.to_string();
    let upper = text.to_ascii_uppercase();
    let kind = if kind == FailureKind::Append && (upper.contains("OVERQUOTA") || upper.contains("QUOTA")) {
        FailureKind::OverQuota
    } else if scope == FailureScope::Account {
        FailureKind::Connection
    } else {
        kind
    };
    StoreError::new(scope, kind, text)
}

fn format_date(d: &chrono::DateTime<chrono::FixedOffset>) -> String {
    d.format("%d-%b-%Y %H:%M:%S %z").to_string()
}

fn flags_of(f: &async_imap::types::Fetch) -> Vec<String> {
    use async_imap::types::Flag;
    f.flags()
        .filter_map(|flag| match flag {
            Flag::Seen => Some("\\Seen".to_string()),
            Flag::Answered => Some("\\Answered".to_string()),
            Flag::Flagged => Some("\\Flagged".to_string()),
            Flag::Deleted => Some("\\Deleted".to_string()),
            Flag::Draft => Some("\\Draft".to_string()),
            Flag::Recent | Flag::MayCreate => None,
            Flag::Custom(c) => Some(c.to_string()),
        })
        .collect()
}

/// Folder names in modified UTF-7 (RFC 3501 §5.1.3).
pub const MUTF7_NAMES: FolderNames = FolderNames {
    to_wire: super::wire::mutf7::encode,
    to_display: |wire| {
        let (name, why) = super::wire::mutf7::decode_lenient(wire);
        (name, why.map(|e| format!("not valid modified UTF-7 ({e})")))
    },
};

impl Store for Session {
    fn folder_names(&self) -> FolderNames {
        MUTF7_NAMES
    }

    async fn reconnect(&mut self) -> Result<(), StoreError> {
        Session::reconnect(self)
            .await
            .map_err(|e| to_store(e, FailureKind::Connection))
    }

    async fn namespaces(&mut self) -> Result<NamespacePrefixes, StoreError> {
        let ns = self
            .namespace()
            .await
            .map_err(|e| to_store(e, FailureKind::Connection))?;
        Ok(NamespacePrefixes {
            personal: ns.personal.first().map(|n| (n.prefix.clone(), n.delimiter)),
            foreign: ns
                .other_users
                .iter()
                .chain(&ns.shared)
                .map(|n| n.prefix.clone())
                .collect(),
        })
    }

    async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, StoreError> {
        let list = self
            .list_all()
            .await
            .map_err(|e| to_store(e, FailureKind::Connection))?;
        Ok(list
            .into_iter()
            .map(|m| FolderInfo {
                name: m.name,
                delimiter: m.delimiter,
                attributes: m.attributes,
            })
            .collect())
    }

    async fn list_subscribed(&mut self) -> Result<Vec<String>, StoreError> {
        Session::list_subscribed(self)
            .await
            .map_err(|e| to_store(e, FailureKind::Connection))
    }

    async fn create_folder(&mut self, name: &str) -> Result<(), StoreError> {
        self.create(name)
            .await
            .map_err(|e| to_store(e, FailureKind::Create))
    }

    async fn subscribe(&mut self, name: &str) -> Result<(), StoreError> {
        Session::subscribe(self, name)
            .await
            .map_err(|e| to_store(e, FailureKind::Create))
    }

    async fn build_tree(&mut self, ops: &[TreeOp]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let steps: Vec<(bool, &str)> = ops
            .iter()
            .map(|op| match op {
                TreeOp::Create(n) => (true, n.as_str()),
                TreeOp::Subscribe(n) => (false, n.as_str()),
            })
            .collect();
        let outcomes = self
            .tree(&steps)
            .await
            .map_err(|e| to_store(e, FailureKind::Create))?;
        Ok(outcomes
            .into_iter()
            .map(|r| r.map_err(|e| to_store(e, FailureKind::Create)))
            .collect())
    }

    async fn status_many(
        &mut self,
        names: &[String],
    ) -> Result<Vec<Result<FolderStatus, StoreError>>, StoreError> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let outcomes = Session::status_many(self, &names)
            .await
            .map_err(|e| to_store(e, FailureKind::Select))?;
        Ok(outcomes
            .into_iter()
            .map(|r| r.map(folder_status).map_err(|e| to_store(e, FailureKind::Select)))
            .collect())
    }

    async fn examine(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        Session::examine(self, name)
            .await
            .map(folder_status)
            .map_err(|e| to_store(e, FailureKind::Select))
    }

    async fn status(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        // RFC 3501 §6.3.10: STATUS SHOULD NOT be used on the selected mailbox (some servers
        // answer from a stale view); EXAMINE it again instead.
        if self.selected() == Some(name) {
            return Session::examine(self, name)
                .await
                .map(folder_status)
                .map_err(|e| to_store(e, FailureKind::Select));
        }
        Session::status(self, name)
            .await
            .map(folder_status)
            .map_err(|e| to_store(e, FailureKind::Select))
    }

    async fn select(&mut self, name: &str) -> Result<FolderStatus, StoreError> {
        Session::select(self, name)
            .await
            .map(folder_status)
            .map_err(|e| to_store(e, FailureKind::Select))
    }

    async fn set_flags(&mut self, uid: Uid, flags: &[String]) -> Result<(), StoreError> {
        self.replace_flags(uid, flags)
            .await
            .map_err(|e| to_store(e, FailureKind::Append))
    }

    async fn fetch_meta(&mut self) -> Result<Vec<MessageMeta>, StoreError> {
        let mut out: std::collections::BTreeMap<Uid, MessageMeta> = std::collections::BTreeMap::new();
        self.fetch_meta_each(1, &mut |m| {
            out.insert(m.uid, m);
        })
        .await?;
        Ok(out.into_values().collect())
    }

    async fn fetch_meta_each(
        &mut self,
        from: Uid,
        each: &mut (dyn FnMut(MessageMeta) + Send),
    ) -> Result<(), StoreError> {
        // Another session changing flags makes the server send unsolicited FETCH responses
        // (with a UID under CONDSTORE) in the middle of ours: only a response that answers
        // our query (it has RFC822.SIZE) describes a message.
        for set in uid_windows(from, self.selected_uid_next()) {
            self.uid_fetch_each(&set, IDENTITY_QUERY, |f| {
                let (Some(uid), Some(size)) = (f.uid, f.size) else {
                    return;
                };
                each(MessageMeta {
                    uid,
                    flags: flags_of(f),
                    internal_date: f.internal_date().as_ref().map(format_date),
                    size: u64::from(size),
                    identity_headers: f.header().map(<[u8]>::to_vec).unwrap_or_default(),
                });
            })
            .await
            .map_err(|e| to_store(e, FailureKind::Fetch))?;
        }
        Ok(())
    }

    async fn fetch_headers(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for chunk in uids.chunks(500) {
            let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            self.uid_fetch_each(&set, "(UID BODY.PEEK[HEADER])", |f| {
                if let Some(uid) = f.uid {
                    out.push((uid, f.header().map(<[u8]>::to_vec).unwrap_or_default()));
                }
            })
            .await
            .map_err(|e| to_store(e, FailureKind::Fetch))?;
        }
        Ok(out)
    }

    async fn fetch_sizes(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, u64)>, StoreError> {
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(META_WINDOW as usize) {
            self.uid_fetch_each(&uid_set(chunk), "(UID RFC822.SIZE)", |f| {
                if let (Some(uid), Some(size)) = (f.uid, f.size) {
                    out.push((uid, u64::from(size)));
                }
            })
            .await
            .map_err(|e| to_store(e, FailureKind::Fetch))?;
        }
        Ok(out)
    }

    async fn fetch_body(&mut self, uid: Uid) -> Result<Vec<u8>, StoreError> {
        let mut body = None;
        self.uid_fetch_each(&uid.to_string(), "(UID BODY.PEEK[])", |f| {
            if f.uid == Some(uid) {
                body = f.body().map(<[u8]>::to_vec);
            }
        })
        .await
        .map_err(|e| to_store(e, FailureKind::Fetch))?;
        body.ok_or_else(|| {
            StoreError::new(
                FailureScope::Message,
                FailureKind::Fetch,
                format!("UID {uid} vanished from the source"),
            )
        })
    }

    async fn fetch_bodies(&mut self, uids: &[Uid]) -> Result<Vec<(Uid, Body)>, StoreError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let fetched = Session::fetch_bodies(self, &uid_set(uids))
            .await
            .map_err(|e| to_store(e, FailureKind::Fetch))?;
        Ok(fetched
            .into_iter()
            .filter(|f| f.body().is_some())
            .filter_map(|f| f.uid.map(|u| (u, Box::new(FetchedBody(f)) as Body)))
            .collect())
    }

    async fn append_batch(
        &mut self,
        folder: &str,
        msgs: &[NewMessage<'_>],
    ) -> Result<Vec<Result<Option<(u32, Uid)>, StoreError>>, StoreError> {
        let items: Vec<(&[String], Option<&str>, &[u8])> =
            msgs.iter().map(|m| (m.flags, m.internal_date, m.body)).collect();
        let out = self
            .append_many(folder, &items)
            .await
            .map_err(|e| to_store(e, FailureKind::Append))?;
        Ok(out
            .into_iter()
            .map(|r| r.map_err(|e| to_store(e, FailureKind::Append)))
            .collect())
    }

    async fn fetch_body_part(&mut self, uid: Uid, offset: u64, len: u64) -> Result<Body, StoreError> {
        let f = Session::fetch_body_part(self, uid, offset, len)
            .await
            .map_err(|e| to_store(e, FailureKind::Fetch))?;
        Ok(Box::new(FetchedBody(f)))
    }

    async fn append_start(
        &mut self,
        folder: &str,
        flags: &[String],
        date: Option<&str>,
        size: u64,
    ) -> Result<(), StoreError> {
        Session::append_start(self, folder, flags, date, size)
            .await
            .map_err(|e| to_store(e, FailureKind::Append))
    }

    async fn append_write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        // A failure in the middle of a literal leaves the connection unusable.
        Session::append_write(self, chunk)
            .await
            .map_err(|e| StoreError::new(FailureScope::Account, FailureKind::Connection, e))
    }

    async fn append_finish(&mut self) -> Result<Option<(u32, Uid)>, StoreError> {
        Session::append_finish(self)
            .await
            .map_err(|e| to_store(e, FailureKind::Append))
    }

    async fn append(&mut self, folder: &str, msg: NewMessage<'_>) -> Result<Option<(u32, Uid)>, StoreError> {
        Session::append(self, folder, msg.flags, msg.internal_date, msg.body)
            .await
            .map_err(|e| to_store(e, FailureKind::Append))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_is_fetched_in_windows_that_cover_every_uid() {
        assert_eq!(super::uid_windows(1, None), ["1:*"]);
        assert_eq!(super::uid_windows(0, Some(10)), ["1:*"]);
        assert_eq!(
            super::uid_windows(1, Some(12_001)),
            ["1:5000", "5001:10000", "10001:*"]
        );
        assert_eq!(super::uid_windows(1, Some(10_001)), ["1:5000", "5001:*"]);
        // A top-up reads from the first new UID on.
        assert_eq!(super::uid_windows(99_991, Some(100_001)), ["99991:*"]);
        assert_eq!(
            super::uid_windows(3, Some(10_004)),
            ["3:5002", "5003:10002", "10003:*"]
        );
    }

    #[test]
    fn uid_sets_fold_ranges() {
        assert_eq!(super::uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(super::uid_set(&[4]), "4");
        assert_eq!(super::uid_set(&[]), "");
    }
}
