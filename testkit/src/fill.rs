//! Deterministic mailboxes from a seed: the same seed gives the same folders, bytes, flags and
//! dates on every machine, so a failing test can be replayed and a benchmark compared.
//!
//! The default spec mirrors what a real leaver's mailbox throws at a copy tool: non-ASCII and
//! nested folder names, `&` in a name, flags and keywords, dates across time zones, messages
//! without Message-ID (and some with no Received either), exact duplicates inside a folder,
//! and optionally multi-megabyte attachments.

use crate::wire::Conn;
use anyhow::Result;
use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct MailboxSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Ordinary messages (duplicates and large ones come on top).
    pub messages: usize,
    /// Folders (UTF-8, `/`-separated); messages are spread over them, INBOX weighted most.
    pub folders: Vec<String>,
    /// Extra messages of `large_size` bytes each (attachments).
    pub large: usize,
    /// Size of each large message.
    pub large_size: usize,
    /// Share (0..=1) of mid-size messages (100 KB – 2 MB), for realistic benchmarks.
    pub medium_share: f64,
    /// Exact duplicates added (same bytes, same folder).
    pub duplicates: usize,
    /// Body size range of the ordinary messages.
    pub body_size: std::ops::Range<usize>,
}

impl MailboxSpec {
    /// A leaver's mailbox for tests: every edge case, small enough to copy in a second.
    pub fn leaver(seed: u64, messages: usize) -> Self {
        MailboxSpec {
            seed,
            messages,
            folders: [
                "INBOX",
                "Sent",
                "Drafts",
                "Trash",
                "Junk",
                "Outbox",
                "Projets",
                "Projets/Client é",
                "Projets/Client é/2024",
                "Archives/2023/Été",
                "Réunions & notes",
                "INBOX/Factures",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            large: 0,
            large_size: 3 << 20,
            medium_share: 0.0,
            duplicates: 2,
            body_size: 1_500..19_000,
        }
    }

    /// The benchmark mailbox: realistic sizes (most 2–20 KB, some 100 KB–2 MB).
    pub fn benchmark(seed: u64, messages: usize) -> Self {
        MailboxSpec {
            medium_share: 0.03,
            duplicates: 0,
            ..Self::leaver(seed, messages)
        }
    }
}

/// One generated message.
#[derive(Debug, Clone)]
pub struct SeedMessage {
    /// Folder (UTF-8).
    pub folder: String,
    /// Flags and keywords as sent in APPEND, e.g. `\Seen $Forwarded`.
    pub flags: Vec<String>,
    /// INTERNALDATE in IMAP form (`01-Jan-2020 10:00:00 +0100`).
    pub internal_date: String,
    /// The RFC 5322 bytes.
    pub bytes: Vec<u8>,
}

const WORDS: &[&str] = &[
    "budget",
    "réunion",
    "contrat",
    "client",
    "livraison",
    "facture",
    "projet",
    "équipe",
    "planning",
    "rapport",
    "devis",
    "commande",
    "relance",
    "validation",
    "présentation",
    "offboarding",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn text(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 80);
    let mut line = 0;
    while out.len() < bytes {
        let w = pick(rng, WORDS);
        out.push_str(w);
        line += w.len() + 1;
        if line > 66 {
            out.push_str("\r\n");
            line = 0;
        } else {
            out.push(' ');
        }
    }
    out.push_str("\r\n");
    out
}

/// Generates the messages of a spec, in a stable order.
pub fn generate(spec: &MailboxSpec) -> Vec<SeedMessage> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut out = Vec::with_capacity(spec.messages + spec.large + spec.duplicates);
    let folders = &spec.folders;
    for i in 0..spec.messages + spec.large {
        // INBOX gets about a third of the mail.
        let folder = if rng.random_bool(0.35) || folders.len() == 1 {
            folders[0].clone()
        } else {
            pick(&mut rng, &folders[1..]).clone()
        };
        let body_size = if i >= spec.messages {
            spec.large_size
        } else if rng.random_bool(spec.medium_share) {
            rng.random_range(100_000..2_000_000)
        } else {
            rng.random_range(spec.body_size.clone())
        };
        out.push(message(&mut rng, i, folder, body_size));
    }
    for d in 0..spec.duplicates.min(out.len()) {
        let copy = out[(d * 7) % out.len()].clone();
        out.push(copy);
    }
    out
}

fn message(rng: &mut ChaCha8Rng, i: usize, folder: String, body_size: usize) -> SeedMessage {
    let year = rng.random_range(2015..2025);
    let month = rng.random_range(0..12);
    let day = rng.random_range(1..29);
    let (h, m, s) = (
        rng.random_range(0..24),
        rng.random_range(0..60),
        rng.random_range(0..60),
    );
    let tz = *pick(rng, &["+0000", "+0100", "+0200", "-0500", "+0530", "-0800"]);
    let date_hdr = format!(
        "{}, {day} {} {year} {h:02}:{m:02}:{s:02} {tz}",
        pick(rng, &DAYS),
        MONTHS[month]
    );
    let internal_date = format!("{day:02}-{}-{year} {h:02}:{m:02}:{s:02} {tz}", MONTHS[month]);

    let mut flags = Vec::new();
    for (flag, p) in [
        ("\\Seen", 0.7),
        ("\\Answered", 0.15),
        ("\\Flagged", 0.1),
        ("$Forwarded", 0.05),
        ("Projet_X", 0.05),
        ("$label1", 0.05),
    ] {
        if rng.random_bool(p) {
            flags.push(flag.to_string());
        }
    }
    if folder == "Drafts" {
        flags.push("\\Draft".to_string());
    }

    // ~3% have no Message-ID; a third of those have no Received line either.
    let no_id = rng.random_bool(0.03);
    let no_received = no_id && rng.random_bool(0.33);
    let subject_word = pick(rng, WORDS);
    let mut h = String::new();
    if !no_received {
        h.push_str(&format!(
            "Received: from mx{n}.bluemind.loc (mx{n}.bluemind.loc [127.0.0.{n}])\r\n\tby bm.bluemind.loc with ESMTPS id {i:08X}\r\n\tfor <bertrand@bluemind.loc>; {date_hdr}\r\n",
            n = rng.random_range(1..9)
        ));
    }
    h.push_str(&format!("Date: {date_hdr}\r\n"));
    h.push_str("From: =?UTF-8?Q?H=C3=A9l=C3=A8ne_Martin?= <helene@example.invalid>\r\n");
    h.push_str("To: Bertrand <bertrand@bluemind.loc>\r\n");
    h.push_str(&format!("Subject: {subject_word} n°{i}\r\n"));
    if !no_id {
        h.push_str(&format!(
            "Message-ID: <{i}.{:016x}@seed.bluemind.loc>\r\n",
            rng.random::<u64>()
        ));
    }
    h.push_str("MIME-Version: 1.0\r\n");
    let bytes = if body_size > 200_000 {
        let boundary = format!("=_b{:x}", rng.random::<u32>());
        let mut blob = vec![0u8; body_size * 3 / 4];
        rng.fill(&mut blob[..]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        let mut att = String::with_capacity(b64.len() + b64.len() / 76 * 2);
        for chunk in b64.as_bytes().chunks(76) {
            att.push_str(std::str::from_utf8(chunk).unwrap_or(""));
            att.push_str("\r\n");
        }
        format!(
            "{h}Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: application/octet-stream; name=\"piece-{i}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{att}--{boundary}--\r\n",
            text(rng, 400)
        )
    } else {
        format!(
            "{h}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
            text(rng, body_size)
        )
    };
    SeedMessage {
        folder,
        flags,
        internal_date,
        bytes: bytes.into_bytes(),
    }
}

/// Creates the folders (parents first, subscribed) and appends the messages of `spec` into
/// `login`'s mailbox on the plain port; returns what was appended.
pub fn fill(port: u16, login: &str, spec: &MailboxSpec) -> Result<Vec<SeedMessage>> {
    let msgs = generate(spec);
    append_all(port, login, &spec.folders, &msgs)?;
    Ok(msgs)
}

/// Appends given messages (folders created as needed), up to 1,000 messages or 4 MiB per
/// MULTIAPPEND command: filling a 500,000-message folder 50 at a time takes many minutes.
pub fn append_all(port: u16, login: &str, folders: &[String], msgs: &[SeedMessage]) -> Result<()> {
    let mut conn = Conn::login_as(port, login)?;
    let mut created = std::collections::BTreeSet::new();
    for f in folders.iter().chain(msgs.iter().map(|m| &m.folder)) {
        let mut path = String::new();
        for part in f.split('/') {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            if created.insert(path.clone()) {
                let wire = crate::mutf7::encode(&path);
                // INBOX and special-use folders exist already (auto = subscribe): ignore "exists".
                let _ = conn.command(&format!("CREATE {}", crate::wire::quote(&wire)));
                conn.command(&format!("SUBSCRIBE {}", crate::wire::quote(&wire)))?;
            }
        }
    }
    let mut by_folder: std::collections::BTreeMap<&str, Vec<&SeedMessage>> = Default::default();
    for m in msgs {
        by_folder.entry(&m.folder).or_default().push(m);
    }
    for (folder, list) in by_folder {
        let wire = crate::mutf7::encode(folder);
        let mut items: Vec<(String, String, &[u8])> = Vec::new();
        let mut bytes = 0;
        for m in list {
            if items.len() == 1000 || (bytes + m.bytes.len() > 4 << 20 && !items.is_empty()) {
                conn.multiappend(&wire, &items)?;
                items.clear();
                bytes = 0;
            }
            bytes += m.bytes.len();
            items.push((m.flags.join(" "), m.internal_date.clone(), m.bytes.as_slice()));
        }
        conn.multiappend(&wire, &items)?;
    }
    conn.logout();
    Ok(())
}
