//! IMAP string arguments (RFC 3501 §4.3).

/// Why a value cannot be sent as a quoted string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a quoted IMAP string cannot hold CR, LF or NUL")]
pub struct Unquotable;

/// Quotes `s` as an IMAP quoted string. CR, LF and NUL cannot be quoted (they need a literal).
///
/// The error never carries the value: callers quote passwords too.
pub fn quoted(s: &str) -> Result<String, Unquotable> {
    if s.contains(['\r', '\n', '\0']) {
        return Err(Unquotable);
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A quoted string's content with its escapes (`\\`, `\"`) undone. imap-proto hands LIST
/// and LSUB names over with the escapes still in (`say \"hi\"`), and the name sent back in
/// EXAMINE must be the mailbox's real one. A backslash before any other character is kept
/// (it cannot come from a quoted string's escape).
pub fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && (next == '\\' || next == '"')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_undoes_quoting() {
        for s in ["plain", "say \"hi\"", "back\\slash", "a\\\"b", "trailing\\"] {
            let q = quoted(s).unwrap();
            assert_eq!(unescape(&q[1..q.len() - 1]), s);
        }
        assert_eq!(unescape("keep \\x"), "keep \\x");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(quoted("a\"b\\c").unwrap(), r#""a\"b\\c""#);
        assert_eq!(
            quoted("Dossiers partag&AOk-s").unwrap(),
            "\"Dossiers partag&AOk-s\""
        );
        assert_eq!(quoted("a\r\nb"), Err(Unquotable));
    }
}
