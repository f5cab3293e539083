//! `offboard probe`: connect, log in, and show what the server offers. The first thing to run
//! against a new server, and where users read folder names to write their regexes.

use super::CliError;
use super::args::{AuthMech, ProbeArgs, TlsMode};
use super::exit::Exit;
use crate::config::secret::{read_secret_file, secret_from_env};
use crate::imap::wire::mutf7;
use crate::imap::{AuthMechanism, Credentials, Endpoint, Security, Session, Timeouts, TlsSettings};
use std::time::Duration;

pub(super) async fn run(args: ProbeArgs, json: bool) -> anyhow::Result<Exit> {
    let security = match args.tls {
        TlsMode::Implicit => Security::Implicit,
        TlsMode::Starttls => Security::StartTls,
        TlsMode::None => Security::None,
    };
    let port = args
        .port
        .unwrap_or(if security == Security::Implicit { 993 } else { 143 });
    let secret = match &args.passfile {
        Some(p) => read_secret_file(p)?,
        None => secret_from_env("OFFBOARD_PASSWORD").ok_or_else(|| {
            CliError::new(Exit::Usage, "no password given").hint(
                "put it in a file readable only by you and pass --passfile FILE, or set OFFBOARD_PASSWORD",
            )
        })?,
    };
    let tls = TlsSettings {
        ca_file: args.ca_file.clone(),
        insecure: args.insecure,
    };
    if args.insecure {
        tracing::warn!("--insecure: the server's certificate is not verified");
    }
    let timeouts = Timeouts {
        connect: Duration::from_secs(args.timeout.min(30)),
        io: Duration::from_secs(args.timeout),
    };
    let endpoint = Endpoint::new(args.host.clone(), port, security, &tls, timeouts)?;
    let creds = Credentials {
        user: args.user.clone(),
        secret,
        mechanism: match args.authmech {
            AuthMech::Auto => AuthMechanism::Auto,
            AuthMech::Login => AuthMechanism::Login,
            AuthMech::Plain => AuthMechanism::Plain,
        },
        authzid: None,
    };
    let mut session = Session::connect(&endpoint, &creds).await?;
    let namespaces = session.namespace().await?;
    let folders = session.list_all().await?;
    let capabilities: Vec<String> = session.capabilities().iter().cloned().collect();
    session.logout().await;

    if json {
        let folders: Vec<serde_json::Value> = folders
            .iter()
            .map(|f| {
                serde_json::json!({
                    "wire_name": f.name,
                    "name": mutf7::decode(&f.name).ok(),
                    "delimiter": f.delimiter.map(String::from),
                    "attributes": f.attributes,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "host": args.host, "port": port, "security": security, "user": args.user,
            "capabilities": capabilities, "namespaces": namespaces, "folders": folders,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        crate::outln!(
            "Connected to {}:{} ({security}) as {}",
            args.host,
            port,
            args.user
        );
        crate::outln!("Capabilities: {}", capabilities.join(" "));
        let show = |ns: &[crate::imap::wire::namespace::Namespace]| {
            ns.iter()
                .map(|n| {
                    format!(
                        "{:?} (separator {:?})",
                        mutf7::decode(&n.prefix).unwrap_or_else(|_| n.prefix.clone()),
                        n.delimiter.map(String::from).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        crate::outln!(
            "Namespaces: personal {}; other users {}; shared {}",
            show(&namespaces.personal),
            show(&namespaces.other_users),
            show(&namespaces.shared)
        );
        crate::outln!("Folders ({}):", folders.len());
        for f in &folders {
            let utf8 = match mutf7::decode(&f.name) {
                Ok(n) if n == f.name => String::new(),
                Ok(n) => format!("  =  {n}"),
                Err(e) => format!("  (invalid name: {e})"),
            };
            crate::outln!("  {}{utf8}  {}", f.name, f.attributes.join(" "));
        }
    }
    Ok(Exit::Ok)
}
