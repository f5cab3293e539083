//! An authenticated IMAP session: connect (with STARTTLS or implicit TLS), greet, log in,
//! and the queries of the connection layer (CAPABILITY, NAMESPACE, LIST).
//!
//! Protocol only: no folder selection, no mapping, no retries — callers decide (a session
//! keeps its login so that a caller can [`Session::reconnect`] it; when is the caller's
//! choice). The one recovery inside is protocol-level: a refused MULTIAPPEND is resent one
//! message per APPEND, so one bad message does not fail its whole batch.

use super::error::ImapError;
use super::transport::{Endpoint, Io, Security};
use super::wire::namespace::{self, Namespaces};
use super::wire::quote::quoted;
use async_imap::imap_proto::{Response, Status};
use futures::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

/// SASL / LOGIN choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum AuthMechanism {
    /// AUTHENTICATE PLAIN when the server offers it, else LOGIN.
    #[default]
    Auto,
    /// The LOGIN command.
    Login,
    /// AUTHENTICATE PLAIN (RFC 4616).
    Plain,
}

/// Who logs in. The secret is only exposed while writing the command.
pub struct Credentials {
    /// Login name (BlueMind: the full address).
    pub user: String,
    /// Password or API key.
    pub secret: SecretString,
    /// Mechanism.
    pub mechanism: AuthMechanism,
    /// SASL PLAIN authorisation identity: log in as `authzid` with `user`'s credentials
    /// (Dovecot master users). Empty for an ordinary login.
    pub authzid: Option<String>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            user: self.user.clone(),
            secret: self.secret.clone(),
            mechanism: self.mechanism,
            authzid: self.authzid.clone(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("secret", &"[REDACTED]")
            .field("mechanism", &self.mechanism)
            .field("authzid", &self.authzid)
            .finish()
    }
}

/// RFC 4616 message: `authzid NUL authcid NUL passwd`. imapsync puts the user in the authzid
/// field too; servers that check it (BlueMind ignores it) then refuse or misread the login.
struct PlainAuth<'a>(&'a Credentials);

impl async_imap::Authenticator for PlainAuth<'_> {
    type Response = Zeroizing<Vec<u8>>;
    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        let c = self.0;
        let mut msg = Zeroizing::new(Vec::new());
        msg.extend_from_slice(c.authzid.as_deref().unwrap_or("").as_bytes());
        msg.push(0);
        msg.extend_from_slice(c.user.as_bytes());
        msg.push(0);
        msg.extend_from_slice(c.secret.expose_secret().as_bytes());
        msg
    }
}

pub use super::wire::pipeline::FolderState;
use super::wire::pipeline::{Completions, appended_uids, refusal_words};

/// One message's APPEND outcome: `(UIDVALIDITY, UID)` when the server has UIDPLUS.
pub type Appended = Result<Option<(u32, u32)>, ImapError>;

/// One mailbox from LIST, name as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedMailbox {
    /// Name in modified UTF-7.
    pub name: String,
    /// Hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Attributes, e.g. `\Noselect`, `\Sent`, `\HasChildren`.
    pub attributes: Vec<String>,
}

impl ListedMailbox {
    /// Whether the mailbox can be selected (no `\Noselect` / `\NonExistent`).
    pub fn selectable(&self) -> bool {
        !self
            .attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"))
    }

    /// Whether it carries special-use attribute `attr` (e.g. `\Junk`), case-insensitively.
    pub fn has_attribute(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }
}

/// A logged-in session.
pub struct Session {
    inner: async_imap::Session<Io>,
    endpoint: Endpoint,
    /// Kept to log in again on [`Session::reconnect`]; the secret stays wrapped.
    creds: Credentials,
    capabilities: BTreeSet<String>,
    /// Capabilities the caller turned off: they stay off across reconnections.
    disabled: BTreeSet<String>,
    raw_tag: u32,
    /// The tag of an APPEND whose literal is being streamed.
    streaming: Option<async_imap::imap_proto::RequestId>,
    /// The mailbox selected or examined last (STATUS must not be sent on it, RFC 3501
    /// §6.3.10).
    selected: Option<String>,
    /// Its UIDNEXT when opened, to fetch its metadata in UID windows.
    selected_uid_next: Option<u32>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .field("user", &self.creds.user)
            .finish_non_exhaustive()
    }
}

fn capability_string(c: &async_imap::types::Capability) -> String {
    use async_imap::types::Capability;
    match c {
        Capability::Imap4rev1 => "IMAP4REV1".to_string(),
        Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
        Capability::Atom(a) => a.to_ascii_uppercase(),
    }
}

impl Session {
    /// Connects, upgrades to TLS as the endpoint says, and logs in.
    pub async fn connect(endpoint: &Endpoint, creds: &Credentials) -> Result<Self, ImapError> {
        let mut client = Self::open(endpoint).await?;
        let caps = pre_login_capabilities(&mut client, endpoint).await?;
        let inner = Self::login(client, endpoint, creds, &caps).await?;
        let mut session = Session {
            inner,
            endpoint: endpoint.clone(),
            creds: creds.clone(),
            capabilities: caps,
            disabled: BTreeSet::new(),
            raw_tag: 0,
            streaming: None,
            selected: None,
            selected_uid_next: None,
        };
        // Capabilities change after login (RFC 3501 §6.2.3): ask again.
        session.refresh_capabilities().await?;
        Ok(session)
    }

    /// Replaces this connection by a new one to the same server with the same login, after
    /// the old one failed (dropped, `BYE`, stalled). Nothing is selected afterwards; the old
    /// connection is dropped without LOGOUT (it is presumed dead).
    pub async fn reconnect(&mut self) -> Result<(), ImapError> {
        let mut fresh = Session::connect(&self.endpoint, &self.creds).await?;
        for cap in &self.disabled {
            fresh.capabilities.remove(cap);
        }
        fresh.disabled = std::mem::take(&mut self.disabled);
        *self = fresh;
        Ok(())
    }

    /// The mailbox selected or examined last, if any.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The UIDNEXT of the selected mailbox when it was opened, if the server said.
    pub fn selected_uid_next(&self) -> Option<u32> {
        self.selected_uid_next
    }

    /// TCP (+ TLS), greeting read: a client ready for login.
    pub async fn open(endpoint: &Endpoint) -> Result<async_imap::Client<Io>, ImapError> {
        let tcp = endpoint.tcp().await?;
        let mut client = match endpoint.security {
            Security::Implicit => async_imap::Client::new(endpoint.tls(tcp).await?),
            Security::None => async_imap::Client::new(super::transport::buffered(tcp)),
            Security::StartTls => {
                let mut plain = async_imap::Client::new(tcp);
                read_greeting(&mut plain, endpoint).await?;
                let step = plain.run_command_and_check_ok("STARTTLS", None);
                match tokio::time::timeout(endpoint.timeouts.io, step).await {
                    Err(_) => return Err(endpoint.timeout("STARTTLS", endpoint.timeouts.io)),
                    Ok(Err(e)) => {
                        return Err(ImapError::StartTlsUnavailable {
                            host: endpoint.host.clone(),
                            port: endpoint.port,
                            detail: e.to_string(),
                        });
                    }
                    Ok(Ok(())) => {}
                }
                // Anything the server sent before the handshake is dropped with the old
                // buffer: the defence against STARTTLS response injection.
                return Ok(async_imap::Client::new(endpoint.tls(plain.into_inner()).await?));
            }
        };
        read_greeting(&mut client, endpoint).await?;
        Ok(client)
    }

    async fn login(
        client: async_imap::Client<Io>,
        endpoint: &Endpoint,
        creds: &Credentials,
        caps: &BTreeSet<String>,
    ) -> Result<async_imap::Session<Io>, ImapError> {
        let plain_offered = caps.contains("AUTH=PLAIN");
        let use_plain = match creds.mechanism {
            AuthMechanism::Plain => true,
            AuthMechanism::Login => false,
            AuthMechanism::Auto => plain_offered || creds.authzid.is_some() || caps.contains("LOGINDISABLED"),
        };
        if use_plain && !plain_offered && creds.mechanism == AuthMechanism::Plain {
            return Err(ImapError::MechanismUnavailable {
                host: endpoint.host.clone(),
                mechanism: "PLAIN".into(),
            });
        }
        let attempt = async {
            if use_plain {
                client
                    .authenticate("PLAIN", PlainAuth(creds))
                    .await
                    .map_err(|(e, _)| e)
            } else {
                if quoted(creds.secret.expose_secret()).is_err() {
                    return Err(async_imap::error::Error::Validate(
                        async_imap::error::ValidateError('\0'),
                    ));
                }
                client
                    .login(&creds.user, creds.secret.expose_secret())
                    .await
                    .map_err(|(e, _)| e)
            }
        };
        let result = tokio::time::timeout(endpoint.timeouts.io, attempt)
            .await
            .map_err(|_| endpoint.timeout("login", endpoint.timeouts.io))?;
        result.map_err(|e| match e {
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                ImapError::AuthFailed {
                    host: endpoint.host.clone(),
                    user: creds.user.clone(),
                    server: text.trim().to_string(),
                }
            }
            // The validation error names the offending character: never show it.
            async_imap::error::Error::Validate(_) => ImapError::UnsendablePassword {
                user: creds.user.clone(),
            },
            other => lost(endpoint, "login", other),
        })
    }

    /// The server this session talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The login name.
    pub fn user(&self) -> &str {
        &self.creds.user
    }

    /// Capabilities after login, upper-cased (`LITERAL+`, `UIDPLUS`, `AUTH=PLAIN`…).
    pub fn capabilities(&self) -> &BTreeSet<String> {
        &self.capabilities
    }

    /// Whether the server announced `cap` (case-insensitive).
    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities.contains(&cap.to_ascii_uppercase())
    }

    /// Asks CAPABILITY again.
    pub async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let timeout = self.endpoint.timeouts.io;
        let caps = tokio::time::timeout(timeout, self.inner.capabilities())
            .await
            .map_err(|_| self.endpoint.timeout("CAPABILITY", timeout))?
            .map_err(|e| self.command_error("CAPABILITY", e))?;
        self.capabilities = caps.iter().map(capability_string).collect();
        Ok(())
    }

    /// NAMESPACE (RFC 2342), read past async-imap, whose parser lacks it: we write the command
    /// on the raw stream and read the answer line by line until our own tag. Safe between two
    /// commands: async-imap holds no unread bytes once a command has completed.
    pub async fn namespace(&mut self) -> Result<Namespaces, ImapError> {
        if !self.has_capability("NAMESPACE") {
            return Ok(Namespaces::default());
        }
        let lines = self.raw_command("NAMESPACE").await?;
        let line = lines
            .iter()
            .find(|l| {
                l.get(..12)
                    .is_some_and(|p| p.eq_ignore_ascii_case("* NAMESPACE "))
            })
            .ok_or_else(|| self.protocol("NAMESPACE", "no NAMESPACE response".into()))?;
        namespace::parse(line).map_err(|e| self.protocol("NAMESPACE", e.to_string()))
    }

    /// Runs a command whose untagged answers are single lines (no literals), bypassing
    /// async-imap's parser; returns those lines. For commands async-imap cannot parse.
    async fn raw_command(&mut self, command: &str) -> Result<Vec<String>, ImapError> {
        self.raw_tag += 1;
        let tag = format!("X{}", self.raw_tag);
        let timeout = self.endpoint.timeouts.io;
        let io = self.inner.get_mut();
        let exchange = async {
            io.write_all(format!("{tag} {command}\r\n").as_bytes()).await?;
            io.flush().await?;
            let mut lines = Vec::new();
            loop {
                let mut line = Vec::new();
                loop {
                    let b = io.read_u8().await?;
                    line.push(b);
                    if line.ends_with(b"\r\n") || line.len() > 64 * 1024 {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                    return Ok::<_, std::io::Error>((lines, rest.to_string()));
                }
                lines.push(text);
            }
        };
        let (lines, status) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| self.endpoint.timeout(command, timeout))?
            .map_err(|e| io_error(&self.endpoint, command, e))?;
        if !status.get(..2).is_some_and(|s| s.eq_ignore_ascii_case("OK")) {
            return Err(ImapError::Refused {
                host: self.endpoint.host.clone(),
                command: command.to_string(),
                server: status,
            });
        }
        Ok(lines)
    }

    /// `LIST "" "*"`: every mailbox the user can see, names as on the wire.
    pub async fn list_all(&mut self) -> Result<Vec<ListedMailbox>, ImapError> {
        self.list("*").await
    }

    /// The STORAGE quota of the INBOX's quota root (RFC 2087 GETQUOTAROOT), in KiB:
    /// `(used, limit)`; `None` when the server has no QUOTA or sets no storage limit.
    pub async fn storage_quota(&mut self) -> Result<Option<(u64, u64)>, ImapError> {
        use async_imap::types::QuotaResourceName;
        if !self.has_capability("QUOTA") {
            return Ok(None);
        }
        let timeout = self.endpoint.timeouts.io;
        let endpoint = self.endpoint.clone();
        let (_, quotas) = deadline(
            &endpoint,
            "GETQUOTAROOT",
            timeout,
            self.inner.get_quota_root("INBOX"),
        )
        .await?;
        Ok(quotas
            .iter()
            .flat_map(|q| q.resources.iter())
            .find(|r| r.name == QuotaResourceName::Storage)
            .map(|r| (r.usage, r.limit)))
    }

    /// What tells one mailbox from another without reading mail: the INBOX's UIDVALIDITY,
    /// UIDNEXT and message count, and every folder name. Two sessions with the same
    /// fingerprint see the same mailbox.
    pub async fn fingerprint(&mut self) -> Result<String, ImapError> {
        let (validity, next, messages, _) = self.status("INBOX").await?;
        let mut names: Vec<String> = self.list_all().await?.into_iter().map(|m| m.name).collect();
        names.sort();
        Ok(format!(
            "{validity:?}/{next:?}/{messages}/{}",
            names.join("\u{0}")
        ))
    }

    /// `LIST "" pattern`.
    pub async fn list(&mut self, pattern: &str) -> Result<Vec<ListedMailbox>, ImapError> {
        use async_imap::imap_proto::NameAttribute;
        let timeout = self.endpoint.timeouts.io;
        let pattern = quoted(pattern).map_err(|e| self.protocol("LIST", e.to_string()))?;
        let fut = async {
            let stream = self.inner.list(Some(""), Some(&pattern)).await?;
            stream.try_collect::<Vec<_>>().await
        };
        let names = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| self.endpoint.timeout("LIST", timeout))?;
        let names = names.map_err(|e| self.command_error("LIST", e))?;
        Ok(names
            .iter()
            .map(|n| ListedMailbox {
                name: super::wire::quote::unescape(n.name()).into_owned(),
                delimiter: n.delimiter().and_then(|d| d.chars().next()),
                attributes: n
                    .attributes()
                    .iter()
                    .map(|a| match a {
                        NameAttribute::NoInferiors => "\\Noinferiors".to_string(),
                        NameAttribute::NoSelect => "\\Noselect".to_string(),
                        NameAttribute::Marked => "\\Marked".to_string(),
                        NameAttribute::Unmarked => "\\Unmarked".to_string(),
                        NameAttribute::All => "\\All".to_string(),
                        NameAttribute::Archive => "\\Archive".to_string(),
                        NameAttribute::Drafts => "\\Drafts".to_string(),
                        NameAttribute::Flagged => "\\Flagged".to_string(),
                        NameAttribute::Junk => "\\Junk".to_string(),
                        NameAttribute::Sent => "\\Sent".to_string(),
                        NameAttribute::Trash => "\\Trash".to_string(),
                        NameAttribute::Extension(s) => s.to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect(),
            })
            .collect())
    }

    /// `LSUB "" "*"`: subscribed mailbox names, as on the wire.
    pub async fn list_subscribed(&mut self) -> Result<Vec<String>, ImapError> {
        let timeout = self.endpoint.timeouts.io;
        let fut = async {
            let stream = self.inner.lsub(Some(""), Some("*")).await?;
            stream.try_collect::<Vec<_>>().await
        };
        let names = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| self.endpoint.timeout("LSUB", timeout))?;
        Ok(names
            .map_err(|e| self.command_error("LSUB", e))?
            .iter()
            .map(|n| super::wire::quote::unescape(n.name()).into_owned())
            .collect())
    }

    /// CREATE a mailbox (wire name).
    pub async fn create(&mut self, wire_name: &str) -> Result<(), ImapError> {
        let arg = self.quote_arg("CREATE", wire_name)?;
        self.simple(&format!("CREATE {arg}"), "CREATE").await
    }

    /// SUBSCRIBE a mailbox (wire name).
    pub async fn subscribe(&mut self, wire_name: &str) -> Result<(), ImapError> {
        let arg = self.quote_arg("SUBSCRIBE", wire_name)?;
        self.simple(&format!("SUBSCRIBE {arg}"), "SUBSCRIBE").await
    }

    async fn simple(&mut self, command: &str, name: &str) -> Result<(), ImapError> {
        let timeout = self.endpoint.timeouts.io;
        let r = tokio::time::timeout(timeout, self.inner.run_command_and_check_ok(command))
            .await
            .map_err(|_| self.endpoint.timeout(name, timeout))?;
        r.map_err(|e| self.command_error(name, e))
    }

    fn quote_arg(&self, command: &str, value: &str) -> Result<String, ImapError> {
        quoted(value).map_err(|e| self.protocol(command, e.to_string()))
    }

    /// EXAMINE (read-only select): `(UIDVALIDITY, UIDNEXT, EXISTS)`.
    pub async fn examine(&mut self, wire_name: &str) -> Result<FolderState, ImapError> {
        let timeout = self.endpoint.timeouts.io;
        self.selected = None;
        // async-imap quotes the name itself.
        let mb = tokio::time::timeout(timeout, self.inner.examine(wire_name))
            .await
            .map_err(|_| self.endpoint.timeout("EXAMINE", timeout))?
            .map_err(|e| self.command_error("EXAMINE", e))?;
        self.selected = Some(wire_name.to_string());
        self.selected_uid_next = mb.uid_next;
        Ok((mb.uid_validity, mb.uid_next, mb.exists, mb.highest_modseq))
    }

    /// STATUS without selecting: `(UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ)`; the last
    /// only with CONDSTORE. Through our own reader: async-imap's compares the name in the
    /// answer with the one asked, escapes included, and answers zeros for a name with `"` or
    /// `\` in it.
    pub async fn status(&mut self, wire_name: &str) -> Result<FolderState, ImapError> {
        let mut out = self.status_many(&[wire_name]).await?;
        out.pop()
            .unwrap_or_else(|| Err(self.protocol("STATUS", "no answer".into())))
    }

    /// SELECT (read-write): `(UIDVALIDITY, UIDNEXT, EXISTS)`.
    pub async fn select(&mut self, wire_name: &str) -> Result<FolderState, ImapError> {
        let timeout = self.endpoint.timeouts.io;
        self.selected = None;
        let mb = tokio::time::timeout(timeout, self.inner.select(wire_name))
            .await
            .map_err(|_| self.endpoint.timeout("SELECT", timeout))?
            .map_err(|e| self.command_error("SELECT", e))?;
        self.selected = Some(wire_name.to_string());
        self.selected_uid_next = mb.uid_next;
        Ok((mb.uid_validity, mb.uid_next, mb.exists, mb.highest_modseq))
    }

    /// `UID STORE uid FLAGS.SILENT (flags)` on the selected mailbox.
    pub async fn replace_flags(&mut self, uid: u32, flags: &[String]) -> Result<(), ImapError> {
        self.simple(
            &format!("UID STORE {uid} FLAGS.SILENT ({})", flags.join(" ")),
            "UID STORE",
        )
        .await
    }

    /// `UID FETCH set query` on the examined mailbox, each response handed to `each`.
    pub async fn uid_fetch_each(
        &mut self,
        set: &str,
        query: &str,
        mut each: impl FnMut(&async_imap::types::Fetch),
    ) -> Result<(), ImapError> {
        let endpoint = self.endpoint.clone();
        let fut = async {
            let mut stream = self.inner.uid_fetch(set, query).await?;
            while let Some(f) = stream.try_next().await? {
                each(&f);
            }
            Ok::<_, async_imap::error::Error>(())
        };
        progressing(&endpoint, "UID FETCH", fut).await
    }

    /// APPEND with flags and internal date; returns APPENDUID `(uidvalidity, uid)` when the
    /// server has UIDPLUS. async-imap's own `append` drops that code, so this writes the
    /// command itself: a non-synchronising literal with LITERAL+, else it waits for `+`.
    pub async fn append(
        &mut self,
        wire_name: &str,
        flags: &[String],
        internal_date: Option<&str>,
        body: &[u8],
    ) -> Result<Option<(u32, u32)>, ImapError> {
        let mailbox = self.quote_arg("APPEND", wire_name)?;
        let literal_plus = self.has_capability("LITERAL+");
        let cmd = append_command(&mailbox, flags, internal_date, body.len() as u64, literal_plus);
        let endpoint = self.endpoint.clone();
        let fut = async {
            let tag = self.inner.run_command(&cmd).await?;
            let mut sent = false;
            if literal_plus {
                write_literal(self.inner.get_mut(), body).await?;
                sent = true;
            }
            loop {
                let Some(resp) = self.inner.read_response().await? else {
                    return Err(async_imap::error::Error::ConnectionLost);
                };
                match resp.parsed() {
                    Response::Continue { .. } if !sent => {
                        write_literal(self.inner.get_mut(), body).await?;
                        sent = true;
                    }
                    Response::Done {
                        tag: t,
                        status,
                        outcome,
                    } if *t == tag => {
                        return match status {
                            Status::Ok => Ok(appended_uids(outcome).first().copied()),
                            Status::No => Err(async_imap::error::Error::No(refusal_words(outcome))),
                            _ => Err(async_imap::error::Error::Bad(refusal_words(outcome))),
                        };
                    }
                    _ => {}
                }
            }
        };
        progressing(&endpoint, "APPEND", fut).await
    }

    /// Appends several messages to one mailbox at once. With MULTIAPPEND (RFC 3502) and
    /// LITERAL+ it is one command whose literals follow each other without waiting; the
    /// server stores all or none, so a refused batch is retried one message at a time to
    /// find the culprit. Without MULTIAPPEND, one APPEND each. Returns one outcome per
    /// message, in order; `Err` at the outer level means the connection is unusable.
    pub async fn append_many(
        &mut self,
        wire_name: &str,
        items: &[(&[String], Option<&str>, &[u8])],
    ) -> Result<Vec<Appended>, ImapError> {
        if items.len() > 1 && self.has_capability("MULTIAPPEND") && self.has_capability("LITERAL+") {
            match self.multiappend(wire_name, items).await {
                Ok(uids) => return Ok(uids.into_iter().map(Ok).collect()),
                Err(ImapError::Refused { .. }) => {} // all or nothing: find the one refused
                Err(e) => return Err(e),
            }
        }
        if items.len() > 1 && self.has_capability("LITERAL+") {
            return self.pipelined_append(wire_name, items).await;
        }
        let mut out = Vec::with_capacity(items.len());
        for (flags, date, body) in items {
            match self.append(wire_name, flags, *date, body).await {
                Ok(r) => out.push(Ok(r)),
                Err(e @ (ImapError::Refused { .. } | ImapError::Protocol { .. })) => out.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One APPEND per message, all sent back to back with non-synchronising literals, then
    /// the completions matched by tag: one round trip for the batch instead of one per
    /// message, for servers with LITERAL+ but no MULTIAPPEND (BlueMind 5). Each message gets
    /// its own outcome.
    async fn pipelined_append(
        &mut self,
        wire_name: &str,
        items: &[(&[String], Option<&str>, &[u8])],
    ) -> Result<Vec<Appended>, ImapError> {
        let mailbox = self.quote_arg("APPEND", wire_name)?;
        let endpoint = self.endpoint.clone();
        let host = self.endpoint.host.clone();
        // At most PIPELINE_WINDOW appends in flight: their answers stay far below what
        // socket buffers hold, so the server never blocks on a client still writing.
        let fut = async {
            let mut out = Vec::with_capacity(items.len());
            for window in items.chunks(PIPELINE_WINDOW) {
                let mut tags = Vec::with_capacity(window.len());
                for (flags, date, body) in window {
                    let cmd = append_command(&mailbox, flags, *date, body.len() as u64, true);
                    tags.push(self.inner.run_command(&cmd).await?);
                    let io = self.inner.get_mut();
                    io.write_all(body).await?;
                    io.write_all(b"\r\n").await?;
                }
                self.inner.get_mut().flush().await?;
                out.extend(
                    completions(&mut self.inner, &tags, |status, outcome, _| match status {
                        Status::Ok => Ok(appended_uids(outcome).first().copied()),
                        _ => Err(ImapError::Refused {
                            host: host.clone(),
                            command: "APPEND".into(),
                            server: refusal_words(outcome),
                        }),
                    })
                    .await?,
                );
            }
            Ok(out)
        };
        progressing(&endpoint, "APPEND", fut).await
    }

    /// Runs commands back to back without waiting for each answer (RFC 3501 §5.5), at most
    /// `PIPELINE_WINDOW` in flight so neither side's buffers fill: a folder tree or the status
    /// of every folder costs one round trip instead of one per command. Returns each
    /// command's outcome, in order, with the STATUS data that came before its completion.
    /// The outer error means the connection failed.
    async fn pipeline(&mut self, name: &str, commands: &[String]) -> Result<Vec<Piped>, ImapError> {
        let timeout = self.endpoint.timeouts.io;
        let endpoint = self.endpoint.clone();
        let mut out = Vec::with_capacity(commands.len());
        for window in commands.chunks(PIPELINE_WINDOW) {
            let fut = async {
                let mut tags = Vec::with_capacity(window.len());
                for c in window {
                    tags.push(self.inner.run_command(c).await?);
                }
                completions(&mut self.inner, &tags, |status, outcome, status_data| {
                    let r = match status {
                        Status::Ok => Ok(()),
                        _ => Err(ImapError::Refused {
                            host: endpoint.host.clone(),
                            command: name.to_string(),
                            server: refusal_words(outcome),
                        }),
                    };
                    (r, status_data)
                })
                .await
            };
            out.extend(deadline(&endpoint, name, timeout, fut).await?);
        }
        Ok(out)
    }

    /// CREATE or SUBSCRIBE several mailboxes (wire names), pipelined, in order: parents
    /// before children. One outcome each.
    pub async fn tree(&mut self, ops: &[(bool, &str)]) -> Result<Vec<Result<(), ImapError>>, ImapError> {
        let mut commands = Vec::with_capacity(ops.len());
        for (create, name) in ops {
            let verb = if *create { "CREATE" } else { "SUBSCRIBE" };
            commands.push(format!("{verb} {}", self.quote_arg(verb, name)?));
        }
        Ok(self
            .pipeline("CREATE/SUBSCRIBE", &commands)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// STATUS of several mailboxes, pipelined: see [`Session::status`].
    pub async fn status_many(
        &mut self,
        wire_names: &[&str],
    ) -> Result<Vec<Result<FolderState, ImapError>>, ImapError> {
        let items = if self.has_capability("CONDSTORE") {
            "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"
        } else {
            "(UIDVALIDITY UIDNEXT MESSAGES)"
        };
        let mut commands = Vec::with_capacity(wire_names.len());
        for name in wire_names {
            commands.push(format!("STATUS {} {items}", self.quote_arg("STATUS", name)?));
        }
        let host = self.endpoint.host.clone();
        Ok(self
            .pipeline("STATUS", &commands)
            .await?
            .into_iter()
            .map(|(r, data)| {
                r.and_then(|()| {
                    data.ok_or_else(|| ImapError::Protocol {
                        host: host.clone(),
                        command: "STATUS".into(),
                        detail: "no STATUS data before the completion".into(),
                    })
                })
            })
            .collect())
    }

    /// Treats `cap` as not offered: for servers that advertise an extension they handle badly,
    /// and for tests of the fallback paths.
    pub fn disable_capability(&mut self, cap: &str) {
        let cap = cap.to_ascii_uppercase();
        self.capabilities.remove(&cap);
        self.disabled.insert(cap);
    }

    async fn multiappend(
        &mut self,
        wire_name: &str,
        items: &[(&[String], Option<&str>, &[u8])],
    ) -> Result<Vec<Option<(u32, u32)>>, ImapError> {
        let mailbox = self.quote_arg("APPEND", wire_name)?;
        let part = |(flags, date, body): &(&[String], Option<&str>, &[u8])| {
            message_args(flags, *date, body.len() as u64, true)
        };
        let first = format!("APPEND {mailbox} {}", part(&items[0]));
        let endpoint = self.endpoint.clone();
        let n = items.len();
        let fut = async {
            let tag = self.inner.run_command(&first).await?;
            let io = self.inner.get_mut();
            io.write_all(items[0].2).await?;
            for item in &items[1..] {
                io.write_all(format!(" {}\r\n", part(item)).as_bytes()).await?;
                io.write_all(item.2).await?;
            }
            io.write_all(b"\r\n").await?;
            io.flush().await?;
            completion(&mut self.inner, &tag, |status, outcome| match status {
                Status::Ok => {
                    let mut uids: Vec<Option<(u32, u32)>> =
                        appended_uids(outcome).into_iter().map(Some).collect();
                    uids.resize(n, None);
                    Ok(uids)
                }
                Status::No => Err(async_imap::error::Error::No(refusal_words(outcome))),
                _ => Err(async_imap::error::Error::Bad(refusal_words(outcome))),
            })
            .await?
        };
        progressing(&endpoint, "APPEND", fut).await
    }

    /// `UID FETCH set (UID BODY.PEEK[])`, every response kept whole: the caller bounds the
    /// set by a byte budget. The bodies stay in async-imap's buffers (no second copy).
    pub async fn fetch_bodies(&mut self, set: &str) -> Result<Vec<async_imap::types::Fetch>, ImapError> {
        self.fetch_with(set, "(UID BODY.PEEK[])").await
    }

    /// `UID FETCH uid (UID BODY.PEEK[]<offset.len>)`: a slice of a message, for streaming
    /// messages too big to hold. Empty when `offset` is past the end.
    pub async fn fetch_body_part(
        &mut self,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> Result<async_imap::types::Fetch, ImapError> {
        let query = format!("(UID BODY.PEEK[]<{offset}.{len}>)");
        let mut got = Self::fetch_with(self, &uid.to_string(), &query).await?;
        got.retain(|f| f.uid == Some(uid));
        got.pop()
            .ok_or_else(|| self.protocol("UID FETCH", format!("no answer for UID {uid}")))
    }

    async fn fetch_with(
        &mut self,
        set: &str,
        query: &str,
    ) -> Result<Vec<async_imap::types::Fetch>, ImapError> {
        let endpoint = self.endpoint.clone();
        let fut = async {
            let stream = self.inner.uid_fetch(set, query).await?;
            stream.try_collect::<Vec<_>>().await
        };
        progressing(&endpoint, "UID FETCH", fut).await
    }

    /// Starts an APPEND of exactly `size` bytes that the caller writes in pieces with
    /// [`Session::append_write`] and ends with [`Session::append_finish`]. Once started, the
    /// literal must be completed or the connection dropped: IMAP cannot cancel it.
    pub async fn append_start(
        &mut self,
        wire_name: &str,
        flags: &[String],
        internal_date: Option<&str>,
        size: u64,
    ) -> Result<(), ImapError> {
        let mailbox = self.quote_arg("APPEND", wire_name)?;
        let literal_plus = self.has_capability("LITERAL+");
        let cmd = append_command(&mailbox, flags, internal_date, size, literal_plus);
        let timeout = self.endpoint.timeouts.io;
        let endpoint = self.endpoint.clone();
        let fut = async {
            let tag = self.inner.run_command(&cmd).await?;
            if !literal_plus {
                loop {
                    let Some(resp) = self.inner.read_response().await? else {
                        return Err(async_imap::error::Error::ConnectionLost);
                    };
                    match resp.parsed() {
                        Response::Continue { .. } => break,
                        Response::Done { tag: t, outcome, .. } if *t == tag => {
                            return Err(async_imap::error::Error::No(refusal_words(outcome)));
                        }
                        _ => {}
                    }
                }
            }
            Ok(tag)
        };
        let tag = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| endpoint.timeout("APPEND", timeout))?;
        self.streaming = Some(tag.map_err(|e| self.command_error("APPEND", e))?);
        Ok(())
    }

    /// Writes the next piece of a started APPEND.
    pub async fn append_write(&mut self, chunk: &[u8]) -> Result<(), ImapError> {
        let endpoint = self.endpoint.clone();
        self.inner
            .get_mut()
            .write_all(chunk)
            .await
            .map_err(|e| io_error(&endpoint, "APPEND", e))
    }

    /// Ends a started APPEND and reads its outcome (APPENDUID when offered).
    pub async fn append_finish(&mut self) -> Result<Option<(u32, u32)>, ImapError> {
        let Some(tag) = self.streaming.take() else {
            return Err(self.protocol(
                "APPEND",
                "internal error: no APPEND in progress, please report".into(),
            ));
        };
        let endpoint = self.endpoint.clone();
        let fut = async {
            write_literal(self.inner.get_mut(), &[]).await?;
            completion(&mut self.inner, &tag, |status, outcome| match status {
                Status::Ok => Ok(appended_uids(outcome).first().copied()),
                Status::No => Err(async_imap::error::Error::No(refusal_words(outcome))),
                _ => Err(async_imap::error::Error::Bad(refusal_words(outcome))),
            })
            .await?
        };
        progressing(&endpoint, "APPEND", fut).await
    }

    /// LOGOUT; errors are ignored (the server may close first, which is fine).
    pub async fn logout(mut self) {
        let timeout = self.endpoint.timeouts.io.min(std::time::Duration::from_secs(5));
        let _ = tokio::time::timeout(timeout, self.inner.logout()).await;
    }

    fn command_error(&self, command: &str, e: async_imap::error::Error) -> ImapError {
        command_error(&self.endpoint, command, e)
    }

    fn protocol(&self, command: &str, detail: String) -> ImapError {
        ImapError::Protocol {
            host: self.endpoint.host.clone(),
            command: command.to_string(),
            detail,
        }
    }
}

/// async-imap renders a refusal as `outcome: Outcome { code: …, information: Some("…") }`:
/// keep the server's sentence (and its response code, if any).
fn server_words(text: &str) -> String {
    let info = text
        .split_once("information: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.replace("\\\"", "\""));
    let code = text
        .split_once("code: Some(")
        .and_then(|(_, rest)| rest.split_once("), information"))
        .map(|(code, _)| format!("[{code}] "));
    match info {
        Some(info) => format!("{}{info}", code.unwrap_or_default()),
        None => text.trim().to_string(),
    }
}

fn lost(endpoint: &Endpoint, command: &str, e: async_imap::error::Error) -> ImapError {
    match e {
        async_imap::error::Error::Io(io) => io_error(endpoint, command, io),
        _ => ImapError::ConnectionLost {
            host: endpoint.host.clone(),
            command: command.to_string(),
            source: None,
        },
    }
}

/// A read or write that failed: the transport's per-read timeout shows up as `TimedOut`.
fn io_error(endpoint: &Endpoint, command: &str, e: std::io::Error) -> ImapError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return endpoint.timeout(command, endpoint.timeouts.io);
    }
    ImapError::ConnectionLost {
        host: endpoint.host.clone(),
        command: command.to_string(),
        source: Some(e),
    }
}

async fn write_literal(io: &mut Io, body: &[u8]) -> std::io::Result<()> {
    io.write_all(body).await?;
    io.write_all(b"\r\n").await?;
    io.flush().await
}

/// Commands in flight at once in [`Session::pipeline`]: their answers (a line or two each)
/// stay far below what socket buffers hold, so the server never blocks on a client that is
/// still writing.
const PIPELINE_WINDOW: usize = 64;

/// One pipelined command's outcome, with the STATUS data that came before its completion.
type Piped = (Result<(), ImapError>, Option<FolderState>);

/// Runs a command that moves data (FETCH of bodies or metadata, APPEND) with no deadline of
/// its own: a big folder or message may take long while bytes flow. The stall timer is the
/// transport's: a read or write that makes no progress for the I/O timeout fails. Maps
/// async-imap's errors to ours.
async fn progressing<T>(
    endpoint: &Endpoint,
    command: &str,
    fut: impl std::future::Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    fut.await.map_err(|e| command_error(endpoint, command, e))
}

/// Runs one short command's exchange under the I/O timeout, mapping async-imap's errors to
/// ours.
async fn deadline<T>(
    endpoint: &Endpoint,
    command: &str,
    timeout: std::time::Duration,
    fut: impl std::future::Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    let r = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| endpoint.timeout(command, timeout))?;
    r.map_err(|e| command_error(endpoint, command, e))
}

fn command_error(endpoint: &Endpoint, command: &str, e: async_imap::error::Error) -> ImapError {
    match e {
        async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => ImapError::Refused {
            host: endpoint.host.clone(),
            command: command.to_string(),
            server: server_words(&text),
        },
        async_imap::error::Error::Parse(p) => ImapError::Protocol {
            host: endpoint.host.clone(),
            command: command.to_string(),
            detail: p.to_string(),
        },
        other => lost(endpoint, command, other),
    }
}

/// `APPEND "box" (flags) "date" {len+}`: the command line before a message's literal.
fn append_command(
    mailbox: &str,
    flags: &[String],
    date: Option<&str>,
    len: u64,
    literal_plus: bool,
) -> String {
    format!(
        "APPEND {mailbox} {}",
        message_args(flags, date, len, literal_plus)
    )
}

/// `(flags) "date" {len+}`: one message's arguments, as repeated by MULTIAPPEND (RFC 3502).
fn message_args(flags: &[String], date: Option<&str>, len: u64, literal_plus: bool) -> String {
    let mut args = format!("({})", flags.join(" "));
    if let Some(d) = date {
        args.push_str(&format!(" \"{d}\""));
    }
    args.push_str(&format!(" {{{len}{}}}", if literal_plus { "+" } else { "" }));
    args
}

/// Reads responses until every command of `tags` (sent back to back) is completed, and maps
/// each completion with `f`, which also gets the STATUS data that came before it: one
/// outcome per tag, in order.
async fn completions<T>(
    inner: &mut async_imap::Session<Io>,
    tags: &[async_imap::imap_proto::RequestId],
    mut f: impl FnMut(&Status, &async_imap::imap_proto::Outcome<'_>, Option<FolderState>) -> T,
) -> Result<Vec<T>, async_imap::error::Error> {
    let mut pending = Completions::new(tags.to_vec());
    while !pending.is_complete() {
        let Some(resp) = inner.read_response().await? else {
            return Err(async_imap::error::Error::ConnectionLost);
        };
        pending.on_response(resp.parsed(), &mut f);
    }
    Ok(pending.finish())
}

/// Reads responses until the tagged completion of `tag`, and maps it with `f`.
async fn completion<T>(
    inner: &mut async_imap::Session<Io>,
    tag: &async_imap::imap_proto::RequestId,
    f: impl FnOnce(&Status, &async_imap::imap_proto::Outcome<'_>) -> Result<T, async_imap::error::Error>,
) -> Result<Result<T, async_imap::error::Error>, async_imap::error::Error> {
    loop {
        let Some(resp) = inner.read_response().await? else {
            return Err(async_imap::error::Error::ConnectionLost);
        };
        if let Response::Done {
            tag: t,
            status,
            outcome,
        } = resp.parsed()
            && t == tag
        {
            return Ok(f(status, outcome));
        }
    }
}

/// CAPABILITY before login, to choose the mechanism. async-imap's Client has no
/// `capabilities()`, so run the command and collect the untagged reply.
async fn pre_login_capabilities(
    client: &mut async_imap::Client<Io>,
    ep: &Endpoint,
) -> Result<BTreeSet<String>, ImapError> {
    let timeout = ep.timeouts.io;
    let mut out = BTreeSet::new();
    let fut = async {
        // The pre-login client exposes no tagged command: write it ourselves.
        let stream = client.get_mut();
        stream.write_all(b"X0 CAPABILITY\r\n").await?;
        stream.flush().await?;
        loop {
            let Some(resp) = client.read_response().await? else {
                return Err(async_imap::error::Error::ConnectionLost);
            };
            match resp.parsed() {
                Response::Capabilities(caps) => {
                    out.extend(caps.iter().map(|c| capability_string(&c.into())));
                }
                Response::Done { tag, status, outcome } if tag.0 == "X0" => {
                    return match status {
                        Status::Ok => Ok(()),
                        _ => Err(async_imap::error::Error::Bad(
                            outcome.information.as_deref().unwrap_or("").to_string(),
                        )),
                    };
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ep.timeout("CAPABILITY", timeout))?
        .map_err(|e| lost(ep, "CAPABILITY", e))?;
    Ok(out)
}

async fn read_greeting<T: super::transport::Stream>(
    client: &mut async_imap::Client<T>,
    ep: &Endpoint,
) -> Result<(), ImapError> {
    let greeting = tokio::time::timeout(ep.timeouts.io, client.read_response())
        .await
        .map_err(|_| ep.timeout("greeting", ep.timeouts.io))?
        .map_err(|e| io_error(ep, "greeting", e))?
        .ok_or_else(|| ImapError::ConnectionLost {
            host: ep.host.clone(),
            command: "greeting".into(),
            source: None,
        })?;
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data { status, outcome } => Err(ImapError::Refused {
            host: ep.host.clone(),
            command: "greeting".into(),
            server: format!("{status:?} {}", outcome.information.as_deref().unwrap_or("")),
        }),
        other => Err(ImapError::Protocol {
            host: ep.host.clone(),
            command: "greeting".into(),
            detail: format!("{other:?}"),
        }),
    }
}
