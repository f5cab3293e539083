//! An authenticated IMAP session: connect (with STARTTLS or implicit TLS), greet, log in,
//! and the queries of the connection layer (CAPABILITY, NAMESPACE, LIST).
//!
//! Protocol only: no folder selection, no mapping, no retries — callers decide.

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
    user: String,
    capabilities: BTreeSet<String>,
    raw_tag: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
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
            user: creds.user.clone(),
            capabilities: caps,
            raw_tag: 0,
        };
        // Capabilities change after login (RFC 3501 §6.2.3): ask again.
        session.refresh_capabilities().await?;
        Ok(session)
    }

    /// TCP (+ TLS), greeting read: a client ready for login.
    pub async fn open(endpoint: &Endpoint) -> Result<async_imap::Client<Io>, ImapError> {
        let tcp = endpoint.tcp().await?;
        let mut client = match endpoint.security {
            Security::Implicit => async_imap::Client::new(endpoint.tls(tcp).await?),
            Security::None => async_imap::Client::new(Box::new(tcp) as Io),
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
        &self.user
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
                name: n.name().to_string(),
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

    /// LOGOUT; errors are ignored (the server may close first, which is fine).
    pub async fn logout(mut self) {
        let timeout = self.endpoint.timeouts.io.min(std::time::Duration::from_secs(5));
        let _ = tokio::time::timeout(timeout, self.inner.logout()).await;
    }

    fn command_error(&self, command: &str, e: async_imap::error::Error) -> ImapError {
        match e {
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => ImapError::Refused {
                host: self.endpoint.host.clone(),
                command: command.to_string(),
                server: text.trim().to_string(),
            },
            async_imap::error::Error::Parse(p) => self.protocol(command, p.to_string()),
            other => lost(&self.endpoint, command, other),
        }
    }

    fn protocol(&self, command: &str, detail: String) -> ImapError {
        ImapError::Protocol {
            host: self.endpoint.host.clone(),
            command: command.to_string(),
            detail,
        }
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
