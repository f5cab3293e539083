//! What a server shows before anyone logs in, for `offboard doctor`: its greeting, its
//! capabilities, and the certificate it presents (names and expiry), read over the same
//! transport and trust settings as a run. Raw commands: the greeting's and STARTTLS's lines
//! are all there is to parse.

use super::error::ImapError;
use super::transport::{Endpoint, Security};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The certificate the server presented (already verified by the handshake).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateFacts {
    /// Subject and subject-alternative DNS names.
    pub names: Vec<String>,
    /// Issuer.
    pub issuer: String,
    /// Last valid instant, Unix seconds.
    pub not_after: i64,
}

/// What the server showed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerFacts {
    /// The greeting line.
    pub greeting: String,
    /// Capabilities before login (servers often list more after).
    pub capabilities: Vec<String>,
    /// The certificate, when TLS was used.
    pub certificate: Option<CertificateFacts>,
}

fn lost(ep: &Endpoint, e: std::io::Error) -> ImapError {
    ImapError::ConnectionLost {
        host: ep.host.clone(),
        command: "the greeting or CAPABILITY".into(),
        source: Some(e),
    }
}

async fn line<R: AsyncRead + Unpin>(ep: &Endpoint, r: &mut BufReader<R>) -> Result<String, ImapError> {
    let mut l = String::new();
    let n = r.read_line(&mut l).await.map_err(|e| lost(ep, e))?;
    if n == 0 {
        return Err(lost(ep, std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(l.trim_end().to_string())
}

/// Sends `tag command` and returns the untagged lines until the tagged answer (an error if it
/// is not OK).
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    ep: &Endpoint,
    io: &mut BufReader<S>,
    tag: &str,
    cmd: &str,
) -> Result<Vec<String>, ImapError> {
    io.get_mut()
        .write_all(format!("{tag} {cmd}\r\n").as_bytes())
        .await
        .map_err(|e| lost(ep, e))?;
    io.get_mut().flush().await.map_err(|e| lost(ep, e))?;
    let mut out = Vec::new();
    loop {
        let l = line(ep, io).await?;
        if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
            if rest.to_ascii_uppercase().starts_with("OK") {
                return Ok(out);
            }
            return Err(ImapError::Refused {
                host: ep.host.clone(),
                command: cmd.into(),
                server: rest.into(),
            });
        }
        out.push(l);
    }
}

fn capabilities(lines: &[String], greeting: &str) -> Vec<String> {
    let from = |l: &str| -> Option<Vec<String>> {
        let i = l.to_ascii_uppercase().find("CAPABILITY ")?;
        let rest = &l[i + "CAPABILITY ".len()..];
        let rest = rest.split(']').next().unwrap_or(rest);
        Some(rest.split_whitespace().map(|c| c.to_ascii_uppercase()).collect())
    };
    lines
        .iter()
        .find_map(|l| from(l))
        .or_else(|| from(greeting))
        .unwrap_or_default()
}

fn certificate(der: &[u8]) -> Option<CertificateFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n
                && !names.iter().any(|x| x == d)
            {
                names.push(d.to_string());
            }
        }
    }
    Some(CertificateFacts {
        names,
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The certificate the server presented in this handshake.
fn presented<S>(tls: &tokio_rustls::client::TlsStream<S>) -> Option<CertificateFacts> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| certificate(c))
}

async fn after_greeting<S: AsyncRead + AsyncWrite + Unpin>(
    ep: &Endpoint,
    io: &mut BufReader<S>,
    greeting: String,
    cert: Option<CertificateFacts>,
) -> Result<ServerFacts, ImapError> {
    let caps = command(ep, io, "c", "CAPABILITY").await?;
    let capabilities = capabilities(&caps, &greeting);
    let _ = command(ep, io, "z", "LOGOUT").await;
    Ok(ServerFacts {
        greeting,
        capabilities,
        certificate: cert,
    })
}

/// Connects as a run would (same transport, same trust) and reads what the server shows.
pub async fn inspect(ep: &Endpoint) -> Result<ServerFacts, ImapError> {
    let tcp = ep.tcp().await?;
    match ep.security {
        Security::None => {
            let mut io = BufReader::new(tcp);
            let greeting = line(ep, &mut io).await?;
            after_greeting(ep, &mut io, greeting, None).await
        }
        Security::Implicit => {
            let tls = ep.tls_stream(tcp).await?;
            let cert = presented(&tls);
            let mut io = BufReader::new(tls);
            let greeting = line(ep, &mut io).await?;
            after_greeting(ep, &mut io, greeting, cert).await
        }
        Security::StartTls => {
            let mut plain = BufReader::new(tcp);
            let greeting = line(ep, &mut plain).await?;
            command(ep, &mut plain, "s", "STARTTLS")
                .await
                .map_err(|e| ImapError::StartTlsUnavailable {
                    host: ep.host.clone(),
                    port: ep.port,
                    detail: e.to_string(),
                })?;
            let tls = ep.tls_stream(plain.into_inner()).await?;
            let cert = presented(&tls);
            let mut io = BufReader::new(tls);
            after_greeting(ep, &mut io, greeting, cert).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_the_answer_or_the_greeting() {
        let g = "* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] Dovecot ready.";
        assert_eq!(capabilities(&[], g), ["IMAP4REV1", "LITERAL+", "STARTTLS"]);
        let lines = vec!["* CAPABILITY IMAP4rev1 UIDPLUS idle".to_string()];
        assert_eq!(capabilities(&lines, g), ["IMAP4REV1", "UIDPLUS", "IDLE"]);
        assert!(capabilities(&[], "* OK hello").is_empty());
    }
}
