//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3).
//!
//! Our own because the only crate (utf7-imap) panics on malformed input and decodes lossily:
//! a folder name comes from a server we do not control, so decoding returns an error, never a
//! panic, and never a silently altered name. Raw wire names stay the primary key everywhere;
//! the UTF-8 form is for people and for mapping.

use base64::Engine;

/// Why a wire name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mutf7Error {
    /// A byte outside printable US-ASCII appears unencoded.
    #[error("byte 0x{byte:02x} at offset {offset} must be encoded")]
    RawByte {
        /// The byte.
        byte: u8,
        /// Its offset in the name.
        offset: usize,
    },
    /// A `&` shift has no closing `-`.
    #[error("shift at offset {0} is not closed by '-'")]
    Unterminated(usize),
    /// The base64 inside a shift is not valid.
    #[error("invalid base64 in shift at offset {0}")]
    BadBase64(usize),
    /// The decoded bytes are not valid UTF-16 (odd length, lone surrogate).
    #[error("invalid UTF-16 in shift at offset {0}")]
    BadUtf16(usize),
    /// A shift encodes a printable ASCII character, which must be written directly.
    #[error("shift at offset {0} encodes printable ASCII")]
    NotMinimal(usize),
}

const ALPHABET: base64::alphabet::Alphabet =
    match base64::alphabet::Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
    {
        Ok(a) => a,
        Err(_) => panic!("the modified base64 alphabet is valid"),
    };

const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &ALPHABET,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

fn printable(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Encodes a UTF-8 name for the wire. Total: every string has an encoding.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if printable(c) {
            flush(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut units, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    out.push_str(&ENGINE.encode(bytes));
    out.push('-');
    units.clear();
}

/// Decodes a wire name to UTF-8, rejecting anything malformed.
pub fn decode(wire: &str) -> Result<String, Mutf7Error> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(0x20..=0x7e).contains(&b) {
            return Err(Mutf7Error::RawByte { byte: b, offset: i });
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let start = i;
        let end = bytes[i + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| i + 1 + p)
            .ok_or(Mutf7Error::Unterminated(start))?;
        let b64 = &wire[i + 1..end];
        if b64.is_empty() {
            out.push('&');
        } else {
            let raw = ENGINE.decode(b64).map_err(|_| Mutf7Error::BadBase64(start))?;
            if raw.len() % 2 != 0 {
                return Err(Mutf7Error::BadUtf16(start));
            }
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let text = String::from_utf16(&units).map_err(|_| Mutf7Error::BadUtf16(start))?;
            if text.chars().any(printable) {
                return Err(Mutf7Error::NotMinimal(start));
            }
            out.push_str(&text);
        }
        i = end + 1;
    }
    Ok(out)
}

/// A name for people and for the destination, whatever the server sent: the strict decoding
/// when the wire name is valid; otherwise raw 8-bit text is taken as it is (legacy servers
/// store UTF-8 unencoded), shifts are decoded even when not minimal, and a shift that cannot
/// be decoded stays as its literal text. The error says why the name was not valid, so the
/// caller can report the new name. Total: never fails, never panics.
pub fn decode_lenient(wire: &str) -> (String, Option<Mutf7Error>) {
    let first = match decode(wire) {
        Ok(s) => return (s, None),
        Err(e) => e,
    };
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let shift = &rest[pos..];
        let Some(end) = shift[1..].find('-').map(|p| p + 1) else {
            out.push_str(shift);
            rest = "";
            break;
        };
        let b64 = &shift[1..end];
        let decoded = if b64.is_empty() {
            Some("&".to_string())
        } else {
            ENGINE
                .decode(b64)
                .ok()
                .filter(|raw| raw.len() % 2 == 0)
                .and_then(|raw| {
                    let units: Vec<u16> = raw
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16(&units).ok()
                })
        };
        match decoded {
            Some(text) => out.push_str(&text),
            None => out.push_str(&shift[..=end]),
        }
        rest = &shift[end + 1..];
    }
    out.push_str(rest);
    // Control characters make no sane folder name.
    let out = out
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    (out, Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lenient_decoding_gives_sane_names_and_says_why() {
        let table = [
            ("Dossiers partag&AOk-s", "Dossiers partagés", false),
            ("Réunions", "Réunions", true),   // raw UTF-8 (legacy server)
            ("&AGE-bc", "abc", true),         // non-minimal shift
            ("Bad &A!!-", "Bad &A!!-", true), // undecodable shift kept as text
            ("open &AOk", "open &AOk", true), // unterminated
            ("tab\tname", "tab_name", true),  // a raw control character
        ];
        for (wire, want, irregular) in table {
            let (got, why) = decode_lenient(wire);
            assert_eq!(got, want, "{wire}");
            assert_eq!(why.is_some(), irregular, "{wire}");
        }
        // Re-encoded, a lenient name is valid modified UTF-7 and decodes back to itself.
        let (name, _) = decode_lenient("Bad &A!!-");
        assert_eq!(decode(&encode(&name)).as_deref(), Ok("Bad &A!!-"));
    }

    #[test]
    fn known_answers() {
        let table = [
            ("INBOX", "INBOX"),
            ("Dossiers partagés", "Dossiers partag&AOk-s"),
            ("Réunions & notes", "R&AOk-unions &- notes"),
            ("Archives/2023/Été", "Archives/2023/&AMk-t&AOk-"),
            ("日本語", "&ZeVnLIqe-"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("emoji 📬", "emoji &2D3c7A-"),
        ];
        for (utf8, wire) in table {
            assert_eq!(encode(utf8), wire, "encode {utf8}");
            assert_eq!(decode(wire).as_deref(), Ok(utf8), "decode {wire}");
        }
    }

    #[test]
    fn rejects_malformed_names() {
        assert_eq!(decode("&A!!-"), Err(Mutf7Error::BadBase64(0)));
        assert_eq!(decode("abc&AOk"), Err(Mutf7Error::Unterminated(3)));
        assert_eq!(
            decode("é"),
            Err(Mutf7Error::RawByte {
                byte: 0xc3,
                offset: 0
            })
        );
        assert_eq!(decode("&AGE-"), Err(Mutf7Error::NotMinimal(0))); // "a" encoded
        assert_eq!(decode("&AO-"), Err(Mutf7Error::BadBase64(0))); // 1.5 bytes
        assert_eq!(decode("&2D0-"), Err(Mutf7Error::BadUtf16(0))); // lone high surrogate
        assert!(decode("&AOl-").is_err()); // non-zero trailing bits
    }

    proptest! {
        #[test]
        fn round_trips_any_string(s in any::<String>()) {
            let wire = encode(&s);
            prop_assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(&wire), Ok(s));
        }

        #[test]
        fn never_panics_on_wire_input(s in "[ -~]{0,40}") {
            let _ = decode(&s);
        }

        #[test]
        fn lenient_decoding_is_total_and_agrees_with_strict(s in any::<String>()) {
            let (name, why) = decode_lenient(&s);
            if let Ok(strict) = decode(&s) {
                prop_assert_eq!(name, strict);
                prop_assert!(why.is_none());
            } else {
                prop_assert!(why.is_some());
                prop_assert_eq!(decode(&encode(&name)), Ok(name.clone()));
            }
        }
    }
}
