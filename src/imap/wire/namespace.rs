//! The NAMESPACE response (RFC 2342). async-imap's parser has no rule for it (an untagged
//! `* NAMESPACE` breaks its session), so the session reads the line raw and this parses it.

/// One namespace: a prefix and its hierarchy delimiter, both as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Namespace {
    /// The prefix in modified UTF-7, e.g. `Autres utilisateurs/`.
    pub prefix: String,
    /// The hierarchy delimiter; `None` for a flat namespace (NIL).
    pub delimiter: Option<char>,
}

/// The three namespace classes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Namespaces {
    /// The user's own folders.
    pub personal: Vec<Namespace>,
    /// Other users' folders (BlueMind: `Autres utilisateurs/`).
    pub other_users: Vec<Namespace>,
    /// Shared folders (BlueMind: `Dossiers partagés/`).
    pub shared: Vec<Namespace>,
}

/// A NAMESPACE line that does not follow RFC 2342.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed NAMESPACE response at byte {offset}: {what}")]
pub struct NamespaceError {
    /// Where parsing stopped.
    pub offset: usize,
    /// What was expected.
    pub what: &'static str,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &'static str) -> NamespaceError {
        NamespaceError {
            offset: self.pos,
            what,
        }
    }

    fn skip_spaces(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos] == b' ' {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_spaces();
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn nil(&mut self) -> bool {
        self.skip_spaces();
        if self.s[self.pos..].len() >= 3 && self.s[self.pos..self.pos + 3].eq_ignore_ascii_case(b"NIL") {
            self.pos += 3;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Result<String, NamespaceError> {
        self.skip_spaces();
        if !self.eat(b'"') {
            return Err(self.err("a quoted string"));
        }
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(self.err("a closing quote")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self
                        .s
                        .get(self.pos + 1)
                        .ok_or_else(|| self.err("an escaped character"))?;
                    out.push(c);
                    self.pos += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.err("UTF-8 text"))
    }

    /// Skips a namespace response extension (`"X-PARAM" ("v1" "v2")`).
    fn skip_extension(&mut self) -> Result<(), NamespaceError> {
        self.string()?;
        if !self.eat(b'(') {
            return Err(self.err("an extension value list"));
        }
        while !self.eat(b')') {
            self.string()?;
        }
        Ok(())
    }

    fn class(&mut self) -> Result<Vec<Namespace>, NamespaceError> {
        if self.nil() {
            return Ok(Vec::new());
        }
        if !self.eat(b'(') {
            return Err(self.err("NIL or '('"));
        }
        let mut out = Vec::new();
        while self.eat(b'(') {
            let prefix = self.string()?;
            let delimiter = if self.nil() {
                None
            } else {
                let d = self.string()?;
                let mut chars = d.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some(c),
                    _ => return Err(self.err("a one-character delimiter")),
                }
            };
            while !self.eat(b')') {
                self.skip_extension()?;
            }
            out.push(Namespace { prefix, delimiter });
        }
        if !self.eat(b')') {
            return Err(self.err("')' closing the namespace list"));
        }
        Ok(out)
    }
}

/// Parses the untagged response, with or without the leading `* NAMESPACE ` and trailing CRLF.
pub fn parse(line: &str) -> Result<Namespaces, NamespaceError> {
    let body = line.trim_end_matches(['\r', '\n']);
    let body = body.strip_prefix("* ").unwrap_or(body);
    // Bytes, not chars: a non-ASCII byte in the first nine must not split a character.
    let body = if body
        .as_bytes()
        .get(..9)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"NAMESPACE"))
    {
        &body[9..]
    } else {
        body
    };
    let mut p = Parser {
        s: body.as_bytes(),
        pos: 0,
    };
    let personal = p.class()?;
    let other_users = p.class()?;
    let shared = p.class()?;
    p.skip_spaces();
    if p.pos != p.s.len() {
        return Err(p.err("end of line"));
    }
    Ok(Namespaces {
        personal,
        other_users,
        shared,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_ascii_where_the_keyword_goes_is_an_error_not_a_panic() {
        // Found by the fuzz property test: the keyword check sliced inside a character.
        assert!(super::parse("* NAMESP\u{e9}CE ((\"\" \"/\")) NIL NIL").is_err());
        assert!(super::parse("\u{fffd}wE").is_err());
    }

    use super::*;

    fn ns(prefix: &str, d: Option<char>) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter: d,
        }
    }

    #[test]
    fn parses_bluemind() {
        let n = parse("* NAMESPACE ((\"\" \"/\")) ((\"Autres utilisateurs/\" \"/\")) ((\"Dossiers partag&AOk-s/\" \"/\"))\r\n").unwrap();
        assert_eq!(n.personal, vec![ns("", Some('/'))]);
        assert_eq!(n.other_users, vec![ns("Autres utilisateurs/", Some('/'))]);
        assert_eq!(n.shared, vec![ns("Dossiers partag&AOk-s/", Some('/'))]);
    }

    #[test]
    fn parses_rfc2342_examples() {
        let n = parse("* NAMESPACE ((\"\" \"/\")) NIL NIL").unwrap();
        assert!(n.other_users.is_empty() && n.shared.is_empty());
        let n = parse("* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"public\" \".\")(\"shared\" \".\"))").unwrap();
        assert_eq!(n.shared.len(), 2);
        let n = parse("* NAMESPACE ((\"\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) NIL ((\"#news.\" NIL))")
            .unwrap();
        assert_eq!(n.personal, vec![ns("", Some('/'))]);
        assert_eq!(n.shared, vec![ns("#news.", None)]);
        let n = parse("* NAMESPACE ((\"\" \"\\\\\")) NIL NIL").unwrap();
        assert_eq!(n.personal, vec![ns("", Some('\\'))]);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("* NAMESPACE ((\"\" \"/\")) NIL").is_err());
        assert!(parse("* NAMESPACE ((\"\" \"//\")) NIL NIL").is_err());
        assert!(parse("* NAMESPACE ((\"unterminated)) NIL NIL").is_err());
        assert!(parse("* NAMESPACE ((\"\" \"/\")) NIL NIL junk").is_err());
    }
}
