//! Reads a mailbox back for assertions: folders, subscriptions, and per message its flags,
//! internal date (as an instant: Maildir drops the zone), size and a hash of its bytes.

use crate::wire::{Conn, Token, tokenize};
use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// One message as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MessageSnapshot {
    /// SHA-256 of the whole message, hex.
    pub sha256: String,
    /// Flags and keywords, `\Recent` left out.
    pub flags: BTreeSet<String>,
    /// INTERNALDATE as Unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// UID in its folder.
    pub uid: u32,
}

/// One folder.
#[derive(Debug, Clone, Default)]
pub struct FolderSnapshot {
    /// Name as sent on the wire (modified UTF-7).
    pub wire_name: String,
    /// LIST attributes (`\HasChildren`, `\Sent`, …).
    pub attributes: BTreeSet<String>,
    /// Whether LSUB lists it.
    pub subscribed: bool,
    /// Messages, by UID.
    pub messages: Vec<MessageSnapshot>,
}

impl FolderSnapshot {
    /// The messages without UIDs, sorted: what must be equal between source and copy.
    pub fn content(&self) -> Vec<(String, BTreeSet<String>, i64, u64)> {
        let mut v: Vec<_> = self
            .messages
            .iter()
            .map(|m| (m.sha256.clone(), m.flags.clone(), m.internal_date, m.size))
            .collect();
        v.sort();
        v
    }
}

/// A whole personal namespace, folders by UTF-8 name.
#[derive(Debug, Clone, Default)]
pub struct MailboxSnapshot {
    /// Folders by UTF-8 name.
    pub folders: BTreeMap<String, FolderSnapshot>,
}

impl MailboxSnapshot {
    /// Messages over all folders.
    pub fn total(&self) -> usize {
        self.folders.values().map(|f| f.messages.len()).sum()
    }

    /// A folder by UTF-8 name.
    pub fn folder(&self, name: &str) -> Option<&FolderSnapshot> {
        self.folders.get(name)
    }
}

/// Reads `login`'s personal folders (other users' and public folders left out), through the
/// master user so the user's own password is not needed.
pub fn snapshot(port: u16, login: &str) -> Result<MailboxSnapshot> {
    let mut conn = Conn::login_as(port, login)?;
    let subscribed: BTreeSet<String> = conn
        .command("LSUB \"\" \"*\"")?
        .iter()
        .filter_map(|r| parse_list(r).ok().map(|(_, name)| name))
        .collect();
    let mut snap = MailboxSnapshot::default();
    for resp in conn.command("LIST \"\" \"*\"")? {
        let (attributes, wire_name) = parse_list(&resp)?;
        let name = crate::mutf7::decode(&wire_name);
        if ["Autres utilisateurs", "Dossiers partagés"]
            .iter()
            .any(|p| name == *p || name.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let selectable = !attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"));
        let messages = if selectable {
            fetch_all(&mut conn, &wire_name)?
        } else {
            Vec::new()
        };
        snap.folders.insert(
            name,
            FolderSnapshot {
                subscribed: subscribed.contains(&wire_name),
                wire_name,
                attributes,
                messages,
            },
        );
    }
    conn.logout();
    Ok(snap)
}

/// Reads one folder (UTF-8 name, any namespace) as `login`.
pub fn folder(port: u16, login: &str, name: &str) -> Result<Vec<MessageSnapshot>> {
    let mut conn = Conn::login_as(port, login)?;
    let msgs = fetch_all(&mut conn, &crate::mutf7::encode(name))?;
    conn.logout();
    Ok(msgs)
}

/// The ACL of a folder as `login` sees it (GETACL), identifier → rights.
pub fn acl(port: u16, login: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let mut conn = Conn::login_as(port, login)?;
    let mut out = BTreeMap::new();
    for resp in conn.command(&format!(
        "GETACL {}",
        crate::wire::quote(&crate::mutf7::encode(name))
    ))? {
        let t = tokenize(&resp)?;
        let texts: Vec<String> = t.iter().filter_map(Token::text).collect();
        for pair in texts.get(3..).unwrap_or(&[]).chunks(2) {
            if let [id, rights] = pair {
                out.insert(id.clone(), rights.clone());
            }
        }
    }
    conn.logout();
    Ok(out)
}

fn parse_list(resp: &[u8]) -> Result<(BTreeSet<String>, String)> {
    let t = tokenize(resp)?;
    let attrs = match t.get(2) {
        Some(Token::List(l)) => l.iter().filter_map(Token::text).collect(),
        _ => {
            return Err(anyhow!("bad LIST response {:?}", String::from_utf8_lossy(resp)));
        }
    };
    let name = t
        .get(4)
        .and_then(Token::text)
        .ok_or_else(|| anyhow!("LIST without name"))?;
    Ok((attrs, name))
}

/// Messages per FETCH command when reading a folder back.
const FETCH_WINDOW: u32 = 20_000;

fn fetch_all(conn: &mut Conn, wire_name: &str) -> Result<Vec<MessageSnapshot>> {
    let exists = conn
        .command(&format!("EXAMINE {}", crate::wire::quote(wire_name)))
        .with_context(|| format!("EXAMINE {wire_name}"))?
        .iter()
        .find_map(|r| {
            let s = String::from_utf8_lossy(r);
            s.strip_suffix(" EXISTS\r\n")
                .and_then(|n| n.trim_start_matches("* ").parse::<u32>().ok())
        })
        .unwrap_or(0);
    if exists == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    // In windows: a 500,000-message folder read in one FETCH outgrows the server's process.
    for start in (1..=exists).step_by(FETCH_WINDOW as usize) {
        let end = (start + FETCH_WINDOW - 1).min(exists);
        for resp in conn.command(&format!(
            "FETCH {start}:{end} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
        ))? {
            out.extend(parse_fetch(&resp)?);
        }
    }
    out.sort_by_key(|m| m.uid);
    Ok(out)
}

/// One FETCH response as a message (`None` for other untagged responses).
fn parse_fetch(resp: &[u8]) -> Result<Option<MessageSnapshot>> {
    let t = tokenize(resp)?;
    let Some(Token::List(items)) = t.get(3) else {
        return Ok(None);
    };
    let mut m = MessageSnapshot {
        sha256: String::new(),
        flags: BTreeSet::new(),
        internal_date: 0,
        size: 0,
        uid: 0,
    };
    for pair in items.chunks(2) {
        let [Token::Atom(key), value] = pair else {
            continue;
        };
        match (key.as_str(), value) {
            ("UID", v) => m.uid = v.text().and_then(|s| s.parse().ok()).unwrap_or(0),
            ("RFC822.SIZE", v) => m.size = v.text().and_then(|s| s.parse().ok()).unwrap_or(0),
            ("FLAGS", Token::List(fl)) => {
                m.flags = fl
                    .iter()
                    .filter_map(Token::text)
                    .filter(|f| f != "\\Recent")
                    .collect()
            }
            ("INTERNALDATE", v) => {
                let s = v.text().unwrap_or_default();
                m.internal_date = chrono::DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
                    .with_context(|| format!("INTERNALDATE {s}"))?
                    .timestamp();
            }
            ("BODY[]", Token::Str(body)) => m.sha256 = hex::encode(Sha256::digest(body)),
            _ => {}
        }
    }
    Ok(Some(m))
}
