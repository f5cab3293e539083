//! A tiny blocking IMAP client for the harness: enough to log in, create folders, append in
//! bulk (MULTIAPPEND with LITERAL+) and fetch everything back. Plain TCP on loopback only.

use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One parsed token of a server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An atom, number or NIL (NIL is kept as the atom `NIL`).
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Token>),
}

impl Token {
    /// The text of an atom or string.
    pub fn text(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(a.clone()),
            Token::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            Token::List(_) => None,
        }
    }
}

/// A connection that has logged in.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_tag: u32,
}

impl Conn {
    /// Connects to the plain port and logs in with LOGIN.
    pub fn login(port: u16, user: &str, password: &str) -> Result<Self> {
        let mut conn = Self::connect(port)?;
        conn.command(&format!("LOGIN {} {}", quote(user), quote(password)))?;
        Ok(conn)
    }

    /// Connects to the plain port; not logged in yet.
    fn connect(port: u16) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).context("connect to the test server")?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let writer = stream.try_clone()?;
        let mut conn = Conn {
            reader: BufReader::new(stream),
            writer,
            next_tag: 1,
        };
        let greeting = conn.read_response()?;
        if !greeting.starts_with(b"* OK") {
            bail!("unexpected greeting {:?}", String::from_utf8_lossy(&greeting));
        }
        Ok(conn)
    }

    /// Logs in as `user` through the harness master user, whatever the user's password:
    /// SASL PLAIN with `user` as the authorization identity, which Dovecot (master users) and
    /// Cyrus (admins that may proxy) both accept.
    pub fn login_as(port: u16, user: &str) -> Result<Self> {
        use base64::Engine;
        let mut conn = Self::connect(port)?;
        let token = format!("{user}\0{}\0{}", crate::MASTER.0, crate::MASTER.1);
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        conn.command(&format!("AUTHENTICATE PLAIN {b64}"))
            .with_context(|| format!("log in as {user} through the master user"))?;
        Ok(conn)
    }

    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("T{}", self.next_tag)
    }

    /// Reads one whole response (a line, with any literals it announces).
    fn read_response(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self.reader.read_until(b'\n', &mut out)?;
            if n == 0 {
                bail!("connection closed by server");
            }
            let line = &out[start..];
            if let Some(len) = literal_len(line) {
                let at = out.len();
                out.resize(at + len, 0);
                self.reader.read_exact(&mut out[at..])?;
                continue;
            }
            return Ok(out);
        }
    }

    /// Sends a command and returns its untagged responses; fails unless the tagged status is OK.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<Vec<u8>>> {
        let tag = self.tag();
        self.writer.write_all(format!("{tag} {cmd}\r\n").as_bytes())?;
        self.collect(&tag, cmd)
    }

    fn collect(&mut self, tag: &str, what: &str) -> Result<Vec<Vec<u8>>> {
        let mut untagged = Vec::new();
        loop {
            let resp = self.read_response()?;
            if resp.starts_with(tag.as_bytes()) && resp.get(tag.len()) == Some(&b' ') {
                let rest = String::from_utf8_lossy(&resp[tag.len() + 1..])
                    .trim_end()
                    .to_string();
                if rest.starts_with("OK") {
                    return Ok(untagged);
                }
                let shown: String = what.chars().take(80).collect();
                return Err(anyhow!("{shown}: {rest}"));
            }
            if resp.starts_with(b"* ") {
                untagged.push(resp);
            }
        }
    }

    /// Appends several messages to one mailbox in a single MULTIAPPEND command with
    /// non-synchronising literals (Dovecot offers both).
    pub fn multiappend(&mut self, wire_mailbox: &str, items: &[(String, String, &[u8])]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let tag = self.tag();
        let mut buf = format!("{tag} APPEND {}", quote(wire_mailbox)).into_bytes();
        for (flags, date, body) in items {
            buf.extend_from_slice(format!(" ({flags}) \"{date}\" {{{}+}}\r\n", body.len()).as_bytes());
            buf.extend_from_slice(body);
            if buf.len() > 1 << 20 {
                self.writer.write_all(&buf)?;
                buf.clear();
            }
        }
        buf.extend_from_slice(b"\r\n");
        self.writer.write_all(&buf)?;
        self.collect(&tag, "APPEND").map(|_| ())
    }

    /// Logs out (errors ignored: the server may already have closed).
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// Quotes a string for the wire (RFC 3501 quoted string).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let digits = line[open + 1..].strip_suffix(b"+").unwrap_or(&line[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Tokenises one response (after the leading `* `), literals included.
pub fn tokenize(resp: &[u8]) -> Result<Vec<Token>> {
    let mut pos = 0;
    let mut stack: Vec<Vec<Token>> = vec![Vec::new()];
    while pos < resp.len() {
        let b = resp[pos];
        match b {
            b' ' | b'\r' | b'\n' => pos += 1,
            b'(' => {
                stack.push(Vec::new());
                pos += 1;
            }
            b')' => {
                let list = stack.pop().ok_or_else(|| anyhow!("unbalanced )"))?;
                stack
                    .last_mut()
                    .ok_or_else(|| anyhow!("unbalanced )"))?
                    .push(Token::List(list));
                pos += 1;
            }
            b'"' => {
                let mut s = Vec::new();
                pos += 1;
                while pos < resp.len() && resp[pos] != b'"' {
                    if resp[pos] == b'\\' {
                        pos += 1;
                    }
                    s.push(resp[pos]);
                    pos += 1;
                }
                pos += 1;
                stack
                    .last_mut()
                    .ok_or_else(|| anyhow!("bad nesting"))?
                    .push(Token::Str(s));
            }
            b'{' => {
                let close = resp[pos..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or_else(|| anyhow!("bad literal"))?;
                let digits = String::from_utf8_lossy(&resp[pos + 1..pos + close])
                    .trim_end_matches('+')
                    .to_string();
                let len: usize = digits.parse()?;
                let start = pos + close + 3; // "}\r\n"
                let lit = resp
                    .get(start..start + len)
                    .ok_or_else(|| anyhow!("short literal"))?;
                stack
                    .last_mut()
                    .ok_or_else(|| anyhow!("bad nesting"))?
                    .push(Token::Str(lit.to_vec()));
                pos = start + len;
            }
            _ => {
                let start = pos;
                let mut depth = 0;
                while pos < resp.len() {
                    let c = resp[pos];
                    if c == b'[' {
                        depth += 1;
                    } else if c == b']' {
                        depth -= 1;
                    } else if depth == 0 && (c == b' ' || c == b'(' || c == b')' || c == b'\r') {
                        break;
                    }
                    pos += 1;
                }
                let atom = String::from_utf8_lossy(&resp[start..pos]).into_owned();
                stack
                    .last_mut()
                    .ok_or_else(|| anyhow!("bad nesting"))?
                    .push(Token::Atom(atom));
            }
        }
    }
    stack.pop().ok_or_else(|| anyhow!("bad nesting"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_fetch_with_literal() {
        let r = b"* 1 FETCH (UID 7 FLAGS (\\Seen $x) BODY[] {3}\r\nabc)\r\n";
        let t = tokenize(r).unwrap();
        assert_eq!(t[0], Token::Atom("*".into()));
        let Token::List(items) = &t[3] else { panic!() };
        assert_eq!(items[4], Token::Atom("BODY[]".into()));
        assert_eq!(items[5], Token::Str(b"abc".to_vec()));
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
    }
}
