//! Entry points for fuzzing: each takes arbitrary bytes, feeds them to one parser of input we
//! do not control (the server's responses, folder names, imapsync command lines), and checks
//! what must hold whatever the input. A panic is a bug. The cargo-fuzz targets in `fuzz/`
//! call these (nightly toolchain), and a stable property test below runs them on random
//! bytes in every `cargo test`.

use crate::imap::wire::{mutf7, namespace, pipeline};

/// Modified UTF-7: strict decoding never panics; lenient decoding is total and its result
/// always re-encodes to a name that decodes strictly back to itself.
pub fn mutf7(data: &[u8]) {
    let Ok(wire) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = mutf7::decode(wire) {
        assert_eq!(mutf7::decode(&mutf7::encode(&name)).as_deref(), Ok(name.as_str()));
    }
    let (name, _) = mutf7::decode_lenient(wire);
    assert_eq!(mutf7::decode(&mutf7::encode(&name)).as_deref(), Ok(name.as_str()));
}

/// NAMESPACE responses (RFC 2342), as the session reads them raw.
pub fn namespace(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let _ = namespace::parse(&line);
}

/// Pipelined completions, APPENDUID and response codes over a stream of server responses.
pub fn responses(data: &[u8]) {
    let n = data.first().map_or(0, |b| usize::from(b % 8));
    let got = pipeline::replay(data.get(1..).unwrap_or(&[]), n);
    assert!(got.len() <= n);
}

/// The imapsync-compatible command line: NUL-separated arguments.
pub fn imapsync_args(data: &[u8]) {
    let args: Vec<String> = data
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if let Ok(o) = crate::cli::imapsync_args::parse(&args) {
        for name in [
            "host1",
            "port1",
            "sep1",
            "exclude",
            "timeout",
            "regextrans2",
            "maxage",
        ] {
            let _ = o.value(name);
            let _ = o.list(name);
            let _ = o.number::<u32>(name);
            let _ = o.separator(name);
        }
        for re in o.list("exclude") {
            let _ = crate::sync::mapping::compile(re);
        }
        for s in o.list("regextrans2") {
            let _ = crate::sync::mapping::Substitution::parse(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn every_fuzz_entry_point_survives_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            super::mutf7(&data);
            super::namespace(&data);
            super::responses(&data);
            super::imapsync_args(&data);
        }

        #[test]
        fn the_entry_points_survive_imap_shaped_input(
            lines in prop::collection::vec(
                prop_oneof![
                    Just("* NAMESPACE ((\"\" \"/\")) ((\"Autres utilisateurs/\" \"/\")) NIL".to_string()),
                    Just("A1 OK [APPENDUID 7 1:3] done".to_string()),
                    Just("* STATUS \"x\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 3)".to_string()),
                    Just("A2 NO [OVERQUOTA] full".to_string()),
                    "[ -~]{0,40}",
                    "&[A-Za-z0-9+,]{0,8}-?",
                ],
                0..8,
            )
        ) {
            let text = lines.join("\r\n") + "\r\n";
            let mut data = vec![3u8];
            data.extend_from_slice(text.as_bytes());
            super::mutf7(text.as_bytes());
            super::namespace(text.as_bytes());
            super::responses(&data);
            super::imapsync_args(&data);
        }
    }
}
