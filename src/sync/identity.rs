//! Message identity, compatible with imapsync's default key: the `Message-Id` and
//! `Received` header lines, normalised (bytes ≥ 0x80 → `X`, tabs → spaces, whitespace
//! collapsed, upper-cased), sorted and hashed. The same function runs on both sides, so a
//! destination already filled by imapsync (which copies bytes unchanged) matches.
//!
//! Where imapsync gives up — a message with none of those headers is skipped unless
//! `--addheader` rewrites it — we identify it by a hash of its whole header and its size,
//! and copy it exactly once, unchanged.

use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;

/// The key of a message from its identity header lines; `None` when it has none.
pub fn header_key(identity_headers: &[u8]) -> Option<String> {
    let mut lines: Vec<String> = unfold(identity_headers)
        .into_iter()
        .filter(|l| {
            let name = l
                .iter()
                .position(|&b| b == b':')
                .map_or(&[][..], |p| &l[..p])
                .trim_ascii();
            name.eq_ignore_ascii_case(b"message-id") || name.eq_ignore_ascii_case(b"received")
        })
        .map(|l| normalise(&l))
        .collect();
    if lines.is_empty() {
        return None;
    }
    lines.sort();
    let digest = Md5::digest(lines.concat().as_bytes());
    Some(format!(
        "id:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

/// The key of a message without identity headers: its whole header and its size.
pub fn fallback_key(full_header: &[u8], size: u64) -> String {
    let mut h = Sha256::new();
    h.update(full_header);
    h.update(size.to_be_bytes());
    format!("hdr:{}", hex::encode(h.finalize()))
}

/// Header lines with continuations joined.
fn unfold(header: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for raw in header.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t')
            && let Some(last) = out.last_mut()
        {
            last.push(b' ');
            last.extend_from_slice(line);
            continue;
        }
        out.push(line.to_vec());
    }
    out
}

fn normalise(line: &[u8]) -> String {
    let text: String = line
        .iter()
        .map(|&b| {
            if b >= 0x80 {
                'X'
            } else if b == b'\t' {
                ' '
            } else {
                b as char
            }
        })
        .collect();
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_headers_same_key_whatever_the_folding_and_case() {
        let a = b"Message-ID: <1@x>\r\nReceived: from a\r\n\tby b; Mon, 1 Jan 2024\r\n\r\n";
        let b = b"received: from a by   b; Mon, 1 Jan 2024\r\nMESSAGE-ID:   <1@x>\r\n\r\n";
        assert_eq!(header_key(a), header_key(b));
        assert!(header_key(a).unwrap().starts_with("id:"));
    }

    #[test]
    fn different_ids_differ_and_missing_headers_give_none() {
        assert_ne!(
            header_key(b"Message-ID: <1@x>\r\n"),
            header_key(b"Message-ID: <2@x>\r\n")
        );
        assert_eq!(header_key(b"\r\n"), None);
        assert_eq!(header_key(b""), None);
        // Received alone identifies (imapsync does the same).
        assert!(header_key(b"Received: from a\r\n").is_some());
    }

    #[test]
    fn fallback_depends_on_header_and_size() {
        assert_ne!(
            fallback_key(b"Subject: a\r\n", 10),
            fallback_key(b"Subject: a\r\n", 11)
        );
        assert_ne!(
            fallback_key(b"Subject: a\r\n", 10),
            fallback_key(b"Subject: b\r\n", 10)
        );
        assert_eq!(
            fallback_key(b"Subject: a\r\n", 10),
            fallback_key(b"Subject: a\r\n", 10)
        );
    }

    #[test]
    fn eight_bit_bytes_become_x() {
        assert_eq!(
            normalise("Received: from h\u{e9}".as_bytes()),
            "RECEIVED: FROM HXX"
        );
    }
}
