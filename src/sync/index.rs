//! A folder's messages as the engine keeps them while it copies the folder: one compact
//! record per message (UID, size, an interned flag set, a packed date, a 16-byte identity
//! digest), built while the metadata streams in, so the header bytes of a 500,000-message
//! folder are never all in memory at once. Everything the copy needs (flags, the exact
//! INTERNALDATE text) is rebuilt from a record when its batch is formed.

use super::identity::{fallback_key, header_key};
use crate::store::{MessageMeta, Store, StoreError, Uid};
use md5::{Digest, Md5};
use std::collections::HashMap;

/// A message's identity, digested (the key string of [`super::identity`], hashed).
pub type Key = [u8; 16];

fn digest(key: &str) -> Key {
    Md5::digest(key.as_bytes()).into()
}

/// How a record's date is kept (`Compact::offset`): a real offset is within ±24 h.
const NO_DATE: i16 = i16::MIN;
/// The date is the server's text, `Compact::secs` its index in `raw_dates`.
const RAW_DATE: i16 = i16::MAX;

const DATE_FORMAT: &str = "%d-%b-%Y %H:%M:%S %z";

/// One message, compact: 40 bytes, so that the records of a 500,000-message folder take
/// 20 MB. RFC822.SIZE is a 32-bit number in IMAP; the date is packed as seconds and an offset
/// in minutes (or an index into the dates that do not round-trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compact {
    /// UID in its folder.
    pub uid: Uid,
    size: u32,
    flags: u32,
    offset: i16,
    /// The key is known (else the fallback, from the whole header, is still to come).
    keyed: bool,
    secs: i64,
    key: Key,
}

impl super::matching::Keyed for Compact {
    type Key = Key;
    fn uid(&self) -> Uid {
        self.uid
    }
    fn key(&self) -> &Key {
        &self.key
    }
}

impl Compact {
    /// RFC822.SIZE.
    pub fn size(&self) -> u64 {
        u64::from(self.size)
    }
}

/// One message as a batch needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// UID in its folder.
    pub uid: Uid,
    /// RFC822.SIZE.
    pub size: u64,
    /// Flags and keywords.
    pub flags: Vec<String>,
    /// INTERNALDATE as the server wrote it.
    pub internal_date: Option<String>,
}

/// A folder's messages, in UID order, each once.
#[derive(Debug, Default)]
pub struct FolderIndex {
    records: Vec<Compact>,
    flagsets: Vec<Vec<String>>,
    flag_ids: HashMap<Vec<String>, u32>,
    raw_dates: Vec<String>,
}

impl FolderIndex {
    /// Reads the metadata of the opened folder from `store`, window by window, keeping one
    /// compact record per UID (a UID answered twice — a window's open end, another session's
    /// flag change — counts once), then the fallback identity of messages without
    /// Message-Id or Received.
    pub async fn read<S: Store>(store: &mut S, exists: u32) -> Result<Self, StoreError> {
        Self::read_from(store, exists, 1).await
    }

    /// The same for the messages from UID `from` on (a top-up reads only what is new).
    pub async fn read_from<S: Store>(store: &mut S, exists: u32, from: Uid) -> Result<Self, StoreError> {
        let mut ix = FolderIndex::default();
        // Sized once: growing by doubling would hold the old and the new buffer at once.
        if from <= 1 {
            ix.records.reserve_exact(exists as usize);
        }
        if exists == 0 {
            // Some servers answer `1:*` on an empty mailbox with BAD: not asked.
            return Ok(ix);
        }
        store.fetch_meta_each(from, &mut |m| ix.push(m)).await?;
        // `n:*` past the last UID names the last message: not one of ours.
        ix.records.retain(|r| r.uid >= from);
        ix.records.sort_by_key(|r| r.uid);
        ix.records.dedup_by_key(|r| r.uid);
        let missing: Vec<Uid> = ix.records.iter().filter(|r| !r.keyed).map(|r| r.uid).collect();
        if !missing.is_empty() {
            let headers: HashMap<Uid, Vec<u8>> = store.fetch_headers(&missing).await?.into_iter().collect();
            for r in ix.records.iter_mut().filter(|r| !r.keyed) {
                let header = headers.get(&r.uid).map(Vec::as_slice).unwrap_or(&[]);
                r.key = digest(&fallback_key(header, r.size()));
                r.keyed = true;
            }
        }
        ix.records.shrink_to_fit();
        Ok(ix)
    }

    /// Takes one message's metadata; its header bytes are digested and dropped here.
    pub fn push(&mut self, m: MessageMeta) {
        let mut flags = m.flags;
        flags.sort();
        let next = self.flagsets.len() as u32;
        let flag_id = *self.flag_ids.entry(flags.clone()).or_insert_with(|| {
            self.flagsets.push(flags);
            next
        });
        let (secs, offset) = match m.internal_date {
            None => (0, NO_DATE),
            Some(text) => match chrono::DateTime::parse_from_str(text.trim(), DATE_FORMAT) {
                Ok(d)
                    if d.format(DATE_FORMAT).to_string() == text
                        && d.offset().local_minus_utc() % 60 == 0 =>
                {
                    (d.timestamp(), (d.offset().local_minus_utc() / 60) as i16)
                }
                _ => {
                    self.raw_dates.push(text);
                    (self.raw_dates.len() as i64 - 1, RAW_DATE)
                }
            },
        };
        let key = header_key(&m.identity_headers).map(|k| digest(&k));
        self.records.push(Compact {
            uid: m.uid,
            size: u32::try_from(m.size).unwrap_or(u32::MAX),
            flags: flag_id,
            offset,
            keyed: key.is_some(),
            secs,
            key: key.unwrap_or_default(),
        });
    }

    /// The records, in UID order.
    pub fn records(&self) -> &[Compact] {
        &self.records
    }

    /// Keeps only the records `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Compact) -> bool) {
        self.records.retain(keep);
    }

    /// A message's flags, sorted.
    pub fn flags(&self, r: &Compact) -> &[String] {
        self.flagsets
            .get(r.flags as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// A message's INTERNALDATE in seconds, when it has one.
    pub fn date_secs(&self, r: &Compact) -> Option<i64> {
        match r.offset {
            NO_DATE => None,
            RAW_DATE => self.date_text(r).and_then(|t| {
                chrono::DateTime::parse_from_str(t.trim(), DATE_FORMAT)
                    .ok()
                    .map(|d| d.timestamp())
            }),
            _ => Some(r.secs),
        }
    }

    fn date_text(&self, r: &Compact) -> Option<String> {
        date_text(&self.raw_dates, r.offset, r.secs)
    }

    /// The message as a batch needs it: flags and the server's exact INTERNALDATE text.
    pub fn msg(&self, r: &Compact) -> Msg {
        Msg {
            uid: r.uid,
            size: r.size(),
            flags: self.flags(r).to_vec(),
            internal_date: self.date_text(r),
        }
    }

    /// The messages to copy (`todo`, in UID order), once matched: the identity keys are no
    /// longer needed, and the index gives its memory back before the copy starts.
    pub fn into_pending(self, todo: &[Uid]) -> Pending {
        let mut wanted = todo.iter().peekable();
        let mut records = Vec::with_capacity(todo.len());
        records.extend(
            self.records
                .iter()
                .filter(|r| wanted.next_if_eq(&&r.uid).is_some())
                .map(|r| Slim {
                    uid: r.uid,
                    size: r.size,
                    flags: r.flags,
                    offset: r.offset,
                    secs: r.secs,
                }),
        );
        Pending {
            records,
            flagsets: self.flagsets,
            raw_dates: self.raw_dates,
        }
    }
}

fn date_text(raw_dates: &[String], offset: i16, secs: i64) -> Option<String> {
    match offset {
        NO_DATE => None,
        RAW_DATE => raw_dates.get(usize::try_from(secs).ok()?).cloned(),
        minutes => {
            let tz = chrono::FixedOffset::east_opt(i32::from(minutes) * 60)?;
            let d = chrono::DateTime::from_timestamp(secs, 0)?.with_timezone(&tz);
            Some(d.format(DATE_FORMAT).to_string())
        }
    }
}

/// One message to copy: 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slim {
    /// UID in its folder.
    pub uid: Uid,
    size: u32,
    flags: u32,
    offset: i16,
    secs: i64,
}

impl Slim {
    /// A message of this size, for tests of the batching.
    #[cfg(test)]
    pub fn of_size(uid: Uid, size: u32) -> Self {
        Slim {
            uid,
            size,
            flags: 0,
            offset: NO_DATE,
            secs: 0,
        }
    }

    /// RFC822.SIZE.
    pub fn size(&self) -> u64 {
        u64::from(self.size)
    }
}

/// The messages of a folder still to copy, in UID order.
#[derive(Debug, Default)]
pub struct Pending {
    records: Vec<Slim>,
    flagsets: Vec<Vec<String>>,
    raw_dates: Vec<String>,
}

impl Pending {
    /// The messages, in UID order.
    pub fn records(&self) -> &[Slim] {
        &self.records
    }

    /// The message as a batch needs it.
    pub fn msg(&self, r: &Slim) -> Msg {
        Msg {
            uid: r.uid,
            size: r.size(),
            flags: self.flagsets.get(r.flags as usize).cloned().unwrap_or_default(),
            internal_date: date_text(&self.raw_dates, r.offset, r.secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: Uid, flags: &[&str], date: Option<&str>, headers: &[u8]) -> MessageMeta {
        MessageMeta {
            uid,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            internal_date: date.map(str::to_string),
            size: 100 + u64::from(uid),
            identity_headers: headers.to_vec(),
        }
    }

    #[test]
    fn records_give_back_exactly_what_came_in() {
        let mut ix = FolderIndex::default();
        let dates = [
            Some("01-Jan-2024 10:00:00 +0100"),
            Some("31-Dec-1999 23:59:59 -0930"),
            Some(" 1-Feb-2024 08:00:00 +0000"),
            None,
        ];
        for (i, d) in dates.iter().enumerate() {
            let flags: &[&str] = if i % 2 == 0 { &["\\Seen", "$Label1"] } else { &[] };
            ix.push(meta(i as Uid + 1, flags, *d, b"Message-ID: <a@b>\r\n"));
        }
        for (r, d) in ix.records().iter().zip(dates) {
            let m = ix.msg(r);
            assert_eq!(m.internal_date.as_deref(), d, "date of UID {}", r.uid);
            assert_eq!(m.size, 100 + u64::from(r.uid));
        }
        assert_eq!(ix.msg(&ix.records()[0]).flags, ["$Label1", "\\Seen"]);
        assert!(ix.msg(&ix.records()[1]).flags.is_empty());
        // Flag sets are shared, not repeated per message.
        assert_eq!(ix.flagsets.len(), 2);
        // Same identity headers, same key.
        assert_eq!(ix.records()[0].key, ix.records()[1].key);
        assert!(ix.records()[0].keyed);
        assert_eq!(std::mem::size_of::<Compact>(), 40);
        assert_eq!(std::mem::size_of::<Slim>(), 24);
        // The list to copy gives back what the index held.
        let uids: Vec<Uid> = ix.records().iter().map(|r| r.uid).skip(1).collect();
        let msgs: Vec<Msg> = ix.records()[1..].iter().map(|r| ix.msg(r)).collect();
        let pending = ix.into_pending(&uids);
        let again: Vec<Msg> = pending.records().iter().map(|r| pending.msg(r)).collect();
        assert_eq!(again, msgs);
    }
}
