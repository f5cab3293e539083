//! Byte-exact is checked, not assumed: what one folder's copy sent, read back from the
//! destination once the folder is done. Sizes of every copy (a server that changes line ends
//! or drops a part shows there); the bytes of a sample of the copies a server is known to
//! rewrite with the size unchanged — Cyrus turns 8-bit header bytes into `X` (`munge8bit`) —
//! and, with `--verify`, of every copy. Read back per folder in a few commands rather than
//! after each batch: on servers that rescan a folder at each open, a read-back per batch would
//! cost as much as the copy.
//!
//! Kept small: 12 bytes a copy (UIDs and size), plus a digest for those whose bytes are read
//! (the sample, or every copy with `--verify`); headers and bodies read back are digested as
//! they stream in, a few hundred at a time.

use super::report::{AlteredMessage, FolderReport};
use crate::store::{Store, StoreError, Uid};
use md5::{Digest, Md5};
use std::collections::{HashMap, HashSet};

/// Bodies read back per FETCH under `--verify`.
const BODIES_PER_FETCH: usize = 200;
/// Sizes read back per FETCH.
const SIZES_PER_FETCH: usize = 5_000;
/// Headers read back per FETCH.
const HEADERS_PER_FETCH: usize = 1_000;
/// Copies with 8-bit headers whose bytes are read back, per folder (all with `--verify`).
const SAMPLE: usize = 100;

/// What was appended to one folder in this attempt.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// (source UID, destination UID, size sent).
    sizes: Vec<(Uid, Uid, u32)>,
    /// (source UID, destination UID, digest of what was sent, whole message or header only).
    bytes: Vec<(Uid, Uid, [u8; 16], Part)>,
    /// Copies with 8-bit headers past the sample: not read back.
    unsampled: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Header,
    Whole,
}

/// The header section: up to the first empty line.
fn header_of(body: &[u8]) -> &[u8] {
    let crlf = body.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = body.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => &body[..a.min(b)],
        (Some(a), None) | (None, Some(a)) => &body[..a],
        (None, None) => body,
    }
}

impl Sent {
    /// Room for `n` copies at once: growing by doubling would hold two vectors at the peak.
    pub(super) fn with_capacity(n: usize) -> Self {
        Sent {
            sizes: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Notes one copy the server acknowledged with its UID.
    pub(super) fn note(&mut self, source: Uid, dest: Uid, body: &[u8], verify: bool) {
        let size = u32::try_from(body.len()).unwrap_or(u32::MAX);
        self.sizes.push((source, dest, size));
        if verify {
            self.bytes
                .push((source, dest, Md5::digest(body).into(), Part::Whole));
        } else {
            let header = header_of(body);
            if header.iter().any(|b| *b >= 0x80) {
                if self.bytes.len() < SAMPLE {
                    self.bytes
                        .push((source, dest, Md5::digest(header).into(), Part::Header));
                } else {
                    self.unsampled += 1;
                }
            }
        }
    }

    /// Notes one copy that was streamed (never whole in memory): its size is read back.
    pub(super) fn note_size(&mut self, source: Uid, dest: Uid, size: u64) {
        self.sizes
            .push((source, dest, u32::try_from(size).unwrap_or(u32::MAX)));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Reads the copies back from the destination folder, which `dst` has open, and reports
    /// each one stored otherwise than sent.
    pub(super) async fn read_back<D: Store>(
        self,
        dst: &mut D,
        folder: &str,
        fr: &mut FolderReport,
    ) -> Result<(), StoreError> {
        if self.is_empty() {
            return Ok(());
        }
        // Window by window, in destination UID order: never the whole folder's answer at once.
        let mut sizes = self.sizes;
        sizes.sort_unstable_by_key(|(_, d, _)| *d);
        let mut altered = Vec::new();
        for chunk in sizes.chunks(SIZES_PER_FETCH) {
            let uids: Vec<Uid> = chunk.iter().map(|(_, d, _)| *d).collect();
            let stored: HashMap<Uid, u64> = dst.fetch_sizes(&uids).await?.into_iter().collect();
            for (source, dest, size) in chunk {
                match stored.get(dest) {
                    Some(s) if *s == u64::from(*size) => {}
                    Some(s) => altered.push((*source, *dest, format!("stored as {s} bytes, {size} sent"))),
                    // Gone already (the successor's client, or a server that lost it): the
                    // count check after the copy speaks of lost messages.
                    None => {}
                }
            }
        }
        fr.read_back += sizes.len() as u64;
        drop(sizes);
        // Then the bytes, chunk by chunk against what was sent (a copy whose size differs is
        // reported once, for its size).
        let by_size: HashSet<Uid> = altered.iter().map(|(_, d, _)| *d).collect();
        for part in [Part::Header, Part::Whole] {
            let wanted: Vec<&(Uid, Uid, [u8; 16], Part)> = self
                .bytes
                .iter()
                .filter(|(_, d, _, p)| *p == part && !by_size.contains(d))
                .collect();
            let per_fetch = if part == Part::Header {
                HEADERS_PER_FETCH
            } else {
                BODIES_PER_FETCH
            };
            for chunk in wanted.chunks(per_fetch) {
                let uids: Vec<Uid> = chunk.iter().map(|(_, d, _, _)| *d).collect();
                let got: HashMap<Uid, [u8; 16]> = if part == Part::Header {
                    dst.fetch_headers(&uids)
                        .await?
                        .into_iter()
                        .map(|(uid, h)| (uid, Md5::digest(&h).into()))
                        .collect()
                } else {
                    dst.fetch_bodies(&uids)
                        .await?
                        .into_iter()
                        .map(|(uid, b)| (uid, Md5::digest(b.bytes()).into()))
                        .collect()
                };
                for (source, dest, digest, _) in chunk {
                    if got.get(dest).is_some_and(|g| g != digest) {
                        let what = match part {
                            Part::Header => {
                                "header bytes rewritten, size unchanged (8-bit bytes in the header: \
                                 Cyrus's munge8bit turns them into X)"
                            }
                            Part::Whole => "bytes differ from what was sent, size unchanged",
                        };
                        altered.push((*source, *dest, what.to_string()));
                    }
                }
            }
        }
        let header_rewrites = altered.iter().any(|(_, _, what)| what.contains("munge8bit"));
        if header_rewrites && self.unsampled > 0 {
            fr.unchecked_8bit = self.unsampled;
        }
        altered.sort();
        fr.altered
            .extend(altered.into_iter().map(|(uid, dest_uid, what)| AlteredMessage {
                folder: folder.to_string(),
                uid,
                dest_uid,
                what,
            }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::header_of;

    #[test]
    fn the_header_ends_at_the_first_empty_line() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"A: b\r\n\r\nbody\r\n\r\nmore", b"A: b\r\n\r\n"),
            (b"A: b\n\nbody", b"A: b\n\n"),
            (b"A: b\r\nC: d\r\n", b"A: b\r\nC: d\r\n"),
            (b"", b""),
        ];
        for (body, header) in cases {
            assert_eq!(header_of(body), header, "{:?}", String::from_utf8_lossy(body));
        }
    }
}
