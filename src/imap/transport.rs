//! TCP, TLS and STARTTLS, with a timeout on every read and write.
//!
//! The timeouts sit on the TCP stream, under TLS, so one rule covers plain, STARTTLS and
//! implicit TLS: a server that stops answering fails the read after `io` seconds instead of
//! hanging the run (async-imap has no timeouts of its own, see shared/crates.md §1.3).

use super::error::ImapError;
use super::tls::TlsSettings;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain, then upgraded with STARTTLS before login (port 143).
    StartTls,
    /// No TLS at all; only sensible on loopback.
    None,
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::Implicit => "implicit TLS",
            Security::StartTls => "STARTTLS",
            Security::None => "no TLS",
        })
    }
}

/// Time limits of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing TCP and TLS.
    pub connect: Duration,
    /// The stall timer: a read or write that makes no progress for this long fails, whatever
    /// the command; short commands (LIST, STATUS, CREATE…) also get at most this long for
    /// their whole answer. A FETCH or APPEND that keeps moving bytes is never cut.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(20),
            io: Duration::from_secs(120),
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    /// Host name or address; also the name the certificate must match.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub security: Security,
    /// Time limits.
    pub timeouts: Timeouts,
    tls: Arc<ClientConfig>,
}

impl Endpoint {
    /// The server as a resume journal names it: host, port and transport, so that two servers
    /// behind one host name (ports, an SSH tunnel) never share a journal. Stable across
    /// versions: journals are found by it.
    pub fn journal_label(&self) -> String {
        let tls = match self.security {
            Security::Implicit => "tls",
            Security::StartTls => "starttls",
            Security::None => "plain",
        };
        format!("{}:{}/{tls}", self.host, self.port)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Builds an endpoint; reads the trust store once, here.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        security: Security,
        tls: &TlsSettings,
        timeouts: Timeouts,
    ) -> Result<Self, ImapError> {
        Ok(Endpoint {
            host: host.into(),
            port,
            security,
            timeouts,
            tls: tls.client_config()?,
        })
    }

    fn server_name(&self) -> Result<ServerName<'static>, ImapError> {
        ServerName::try_from(self.host.clone()).map_err(|e| ImapError::Certificate {
            host: self.host.clone(),
            port: self.port,
            reason: format!("invalid server name: {e}"),
        })
    }

    pub(crate) async fn tcp(&self) -> Result<Timed, ImapError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let tcp = tokio::time::timeout(self.timeouts.connect, connect)
            .await
            .map_err(|_| self.timeout("TCP connect", self.timeouts.connect))?
            .map_err(|source| ImapError::Connect {
                host: self.host.clone(),
                port: self.port,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let mut timed = TimeoutStream::new(tcp);
        timed.set_read_timeout(Some(self.timeouts.io));
        timed.set_write_timeout(Some(self.timeouts.io));
        Ok(Box::pin(timed))
    }

    pub(crate) async fn tls(&self, stream: Timed) -> Result<Io, ImapError> {
        Ok(buffered(self.tls_stream(stream).await?))
    }

    /// The handshake, keeping the TLS stream (its peer certificates) in hand.
    pub(crate) async fn tls_stream(
        &self,
        stream: Timed,
    ) -> Result<tokio_rustls::client::TlsStream<Timed>, ImapError> {
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let handshake = connector.connect(self.server_name()?, stream);
        tokio::time::timeout(self.timeouts.connect, handshake)
            .await
            .map_err(|_| self.timeout("TLS handshake", self.timeouts.connect))?
            .map_err(|e| self.tls_error(e))
    }

    pub(crate) fn timeout(&self, during: &str, d: Duration) -> ImapError {
        ImapError::Timeout {
            host: self.host.clone(),
            port: self.port,
            secs: d.as_secs(),
            during: during.to_string(),
        }
    }

    fn tls_error(&self, e: std::io::Error) -> ImapError {
        let rustls_error = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match rustls_error {
            Some(rustls::Error::InvalidCertificate(reason)) => ImapError::Certificate {
                host: self.host.clone(),
                port: self.port,
                reason: format!("{reason:?}"),
            },
            _ => ImapError::Handshake {
                host: self.host.clone(),
                port: self.port,
                source: e,
            },
        }
    }
}

/// The TCP stream with its read/write timeouts.
pub(crate) type Timed = Pin<Box<TimeoutStream<TcpStream>>>;

/// Any of our streams, so one `Session` type serves plain and TLS connections.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Stream for T {}

/// The boxed stream async-imap runs on.
pub type Io = Box<dyn Stream>;

/// Boxes a stream behind a write buffer: async-imap writes a command as four pieces (tag,
/// space, text, CRLF) and then flushes; buffered, a command leaves as one packet (one TLS
/// record) instead of four. Every write path here ends with a flush.
pub(crate) fn buffered<S: Stream + 'static>(stream: S) -> Io {
    Box::new(tokio::io::BufWriter::new(stream))
}
