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

#[cfg(test)]
mod tests {
    use super::*;

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
