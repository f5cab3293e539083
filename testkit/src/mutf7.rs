//! Modified UTF-7 (RFC 3501 §5.1.3), written again here on purpose: the harness must not
//! share code with the product it checks.

use base64::Engine;

const ALPHABET: base64::alphabet::Alphabet =
    match base64::alphabet::Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
    {
        Ok(a) => a,
        Err(_) => panic!("invalid alphabet"),
    };
const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &ALPHABET,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

/// UTF-8 → wire form.
pub fn encode(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Wire form → UTF-8 (panics on malformed input: test code, server output we trust).
pub fn decode(wire: &str) -> String {
    let mut out = String::new();
    let mut rest = wire;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after.find('-').expect("unterminated mUTF-7 shift");
        if end == 0 {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(&after[..end]).expect("bad mUTF-7 base64");
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).expect("bad UTF-16"));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_answers() {
        assert_eq!(super::encode("Dossiers partagés"), "Dossiers partag&AOk-s");
        assert_eq!(super::encode("A&B"), "A&-B");
        assert_eq!(super::decode("Client &AOk-"), "Client é");
    }
}
