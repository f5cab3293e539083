//! `--fix-messages`: what to change in a message a server refused so that it can be stored,
//! for the defects servers refuse (Cyrus: `NO Message contains bare newlines`, NUL bytes,
//! `invalid header`). A pure function of the bytes; the engine calls it only after the server
//! refused the original, and the report lists every change. Nothing else is touched: a
//! message that has none of these defects is not "repaired".

/// One change made to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Line feeds without a carriage return became CRLF.
    BareLf,
    /// NUL bytes were removed.
    Nul,
    /// Header lines without a field name were joined to the field before them (folded).
    NamelessHeaderLine,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::BareLf => "bare LF made CRLF",
            Change::Nul => "NUL bytes removed",
            Change::NamelessHeaderLine => "header lines without a name folded into the field before",
        })
    }
}

/// The repaired message and what was changed, or `None` when none of the defects is there.
pub fn repair(body: &[u8]) -> Option<(Vec<u8>, Vec<Change>)> {
    let mut changes = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(body.len() + body.len() / 50);
    // NUL bytes.
    if body.contains(&0) {
        changes.push(Change::Nul);
    }
    // Bare LF → CRLF (a lone CR is left as it is).
    let mut prev = 0u8;
    let mut bare = false;
    for &b in body.iter().filter(|b| **b != 0) {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
            bare = true;
        }
        out.push(b);
        prev = b;
    }
    if bare {
        changes.push(Change::BareLf);
    }
    // Header lines without a name: folded into the field before (a leading space).
    let header_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |i| i + 2);
    let mut fixed = Vec::with_capacity(out.len() + 16);
    let mut folded = false;
    let mut start = 0;
    let mut first = true;
    while start < header_end {
        let end = out[start..header_end]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(header_end, |i| start + i + 2);
        let line = &out[start..end];
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        let named = line
            .iter()
            .position(|b| *b == b':')
            .is_some_and(|i| i > 0 && line[..i].iter().all(|b| b.is_ascii_graphic()));
        if !continuation && !named && !first && line != b"\r\n" {
            fixed.push(b' ');
            folded = true;
        }
        fixed.extend_from_slice(line);
        first = false;
        start = end;
    }
    fixed.extend_from_slice(&out[header_end..]);
    if folded {
        changes.push(Change::NamelessHeaderLine);
    }
    (!changes.is_empty()).then_some((fixed, changes))
}

#[cfg(test)]
mod tests {
    use super::{Change, repair};

    /// (message, expected repaired bytes and changes).
    type Case<'a> = (&'a [u8], Option<(&'a [u8], &'a [Change])>);

    #[test]
    fn each_defect_is_repaired_and_named_and_nothing_else_is_touched() {
        use Change::*;
        let cases: [Case<'_>; 7] = [
            (b"Subject: ok\r\n\r\nbody\r\n", None),
            (b"", None),
            (
                b"Subject: a\nFrom: b\n\nline\n",
                Some((b"Subject: a\r\nFrom: b\r\n\r\nline\r\n", &[BareLf])),
            ),
            (
                b"Subject: a\r\n\r\nbo\0dy\r\n",
                Some((b"Subject: a\r\n\r\nbody\r\n", &[Nul])),
            ),
            (
                b"Subject: a\r\nnot a field\r\nFrom: b\r\n\r\nbody\r\n",
                Some((
                    b"Subject: a\r\n not a field\r\nFrom: b\r\n\r\nbody\r\n",
                    &[NamelessHeaderLine],
                )),
            ),
            // A body line without a colon is body, not header.
            (b"Subject: a\r\n\r\nno colon here\r\n", None),
            (
                b"Subject: a\0\nx\n\nb\n",
                Some((
                    b"Subject: a\r\n x\r\n\r\nb\r\n",
                    &[Nul, BareLf, NamelessHeaderLine],
                )),
            ),
        ];
        for (input, want) in cases {
            let got = repair(input);
            let got = got.as_ref().map(|(b, c)| (b.as_slice(), c.as_slice()));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
