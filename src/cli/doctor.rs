//! `offboard doctor`: the setup checked before a first real run, one line per check with
//! ok / warning / failure and the fix. Reads only: the one thing it opens (with `--as`) is a
//! session as a user, to see the IMAP capabilities after login, closed at once.

use super::CliError;
use super::args::{CommonOpts, ConnOpts, CopyOpts};
use super::exit::{self, Exit};
use super::offboard::{Job, admin_key_with_source, settings, state_dir};
use crate::config::file::{ConfigFile, load};
use crate::imap::{AuthMechanism, Credentials, Endpoint, Security, Session};
use crate::workflow::RunKind;
use bluemind_api::{ApiError, Client, SuOutcome};
use std::time::{Duration, SystemTime};

/// One check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `ok`, `warning` or `failure`.
    pub status: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do, when it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The capabilities a run uses, and what their absence costs.
pub const CAPABILITIES: &[(&str, &str)] = &[
    (
        "LITERAL+",
        "each message waits for the server's go-ahead (slower over a distant link)",
    ),
    (
        "UIDPLUS",
        "copies are matched by their headers instead of the UID the server gives",
    ),
    (
        "MULTIAPPEND",
        "messages are appended one command each (pipelined) instead of by batches",
    ),
    (
        "CONDSTORE",
        "a re-run reads every flag again instead of only the changed ones",
    ),
    ("QUOTA", "the successor's quota cannot be checked over IMAP"),
    ("ACL", "shared folders' rights cannot be read over IMAP"),
    (
        "NAMESPACE",
        "other people's and shared folders are recognised by name only",
    ),
    ("SPECIAL-USE", "Junk and Trash are recognised by name only"),
];

/// Largest clock difference without a warning.
const SKEW_WARN: Duration = Duration::from_secs(60);
/// Days before a certificate's end that earn a warning.
const CERT_WARN_DAYS: i64 = 21;

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, name: &str, status: &'static str, detail: impl Into<String>, fix: Option<String>) {
        self.0.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix,
        });
    }
    fn ok(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, "ok", detail, None);
    }
    fn warn(&mut self, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, "warning", detail, Some(fix.into()));
    }
    fn fail(&mut self, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, "failure", detail, Some(fix.into()));
    }
}

fn origin(flag: bool, file: bool) -> &'static str {
    if flag {
        "flag"
    } else if file {
        "config file"
    } else {
        "default"
    }
}

/// The settings and where each came from.
fn provenance(c: &mut Checks, conn: &ConnOpts, cfg: &ConfigFile) {
    let show = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
    let rows = [
        (
            "bluemind url",
            show(conn.bluemind_url.clone().or(cfg.bluemind.url.clone())),
            origin(conn.bluemind_url.is_some(), cfg.bluemind.url.is_some()),
        ),
        (
            "domain",
            show(conn.domain.clone().or(cfg.bluemind.domain.clone())),
            origin(conn.domain.is_some(), cfg.bluemind.domain.is_some()),
        ),
        (
            "imap host",
            show(conn.imap_host.clone().or(cfg.imap.host.clone())).replace("(none)", "the BlueMind host"),
            origin(conn.imap_host.is_some(), cfg.imap.host.is_some()),
        ),
        (
            "imap port",
            show(conn.imap_port.or(cfg.imap.port).map(|p| p.to_string()))
                .replace("(none)", "993 (143 without implicit TLS)"),
            origin(conn.imap_port.is_some(), cfg.imap.port.is_some()),
        ),
        (
            "imap tls",
            show(
                conn.imap_tls
                    .map(|t| format!("{t:?}").to_lowercase())
                    .or(cfg.imap.tls.clone()),
            )
            .replace("(none)", "implicit"),
            origin(conn.imap_tls.is_some(), cfg.imap.tls.is_some()),
        ),
        (
            "ca file",
            show(
                conn.ca_file
                    .clone()
                    .or(cfg.bluemind.ca_file.clone())
                    .map(|p| p.display().to_string()),
            )
            .replace("(none)", "system store only"),
            origin(conn.ca_file.is_some(), cfg.bluemind.ca_file.is_some()),
        ),
    ];
    for (name, value, from) in rows {
        c.ok(&format!("setting {name}"), format!("{value} (from the {from})"));
    }
}

pub(super) async fn run(
    common: &CommonOpts,
    conn: &ConnOpts,
    as_user: Option<String>,
) -> anyhow::Result<Exit> {
    let mut c = Checks::default();
    let cfg = match load(common.config.as_deref()) {
        Ok((cfg, Some(path))) => {
            let from = if common.config.is_some() {
                "--config"
            } else if std::env::var_os("OFFBOARD_CONFIG").is_some() {
                "$OFFBOARD_CONFIG"
            } else {
                "the default location"
            };
            c.ok("config", format!("read {} (from {from})", path.display()));
            cfg
        }
        Ok((cfg, None)) => {
            c.warn(
                "config",
                "no config file: flags and defaults only",
                "write ~/.config/offboard/config.toml from the example (/usr/share/doc/offboard/config.example.toml)",
            );
            cfg
        }
        Err(e) => {
            c.fail(
                "config",
                e.to_string(),
                "correct the file, or point --config at another",
            );
            return finish(common, c);
        }
    };
    provenance(&mut c, conn, &cfg);
    match state_dir(conn, &cfg) {
        Ok(dir) => state_dir_check(&mut c, &dir),
        Err(e) => c.fail(
            "state directory",
            e.to_string(),
            "set [copy] state_dir or pass --state-dir",
        ),
    }
    let key_source = match admin_key_with_source(&cfg) {
        Ok((_, from)) => from,
        Err(e) => {
            let hint = exit::hint(&e).unwrap_or_default();
            c.fail("admin key", e.to_string(), hint);
            return finish(common, c);
        }
    };
    let copy = CopyOpts::default();
    let job = Job {
        mode: RunKind::Offboard,
        leaver: String::new(),
        successor: String::new(),
        copy: &copy,
        departure: None,
        conn,
    };
    let s = match settings(&job, &cfg, true) {
        Ok(s) => s,
        Err(e) => {
            let hint = exit::hint(&e).unwrap_or_default();
            c.fail("settings", e.to_string(), hint);
            return finish(common, c);
        }
    };
    let admin = Client::new(&s.bluemind_url, s.admin_key.clone(), &s.api_tls)?;
    let me = match admin.current_user().await {
        Ok(me) => {
            c.ok(
                "admin key",
                format!(
                    "from {key_source}: the key of {} (roles: {})",
                    me.value
                        .as_ref()
                        .map(|u| u.login.as_str())
                        .unwrap_or(me.uid.as_str()),
                    if me.roles.is_empty() {
                        "none".to_string()
                    } else {
                        me.roles.join(", ")
                    }
                ),
            );
            Some(me)
        }
        Err(ApiError::Unauthorized { .. }) => {
            c.fail(
                "admin key",
                format!("from {key_source}: BlueMind refuses it"),
                "run `offboard login` with a valid key",
            );
            None
        }
        Err(e) => {
            c.fail("bluemind", format!("{}: {e}", s.bluemind_url), api_fix(&e));
            None
        }
    };
    let after_login = match &me {
        Some(me) => bluemind_checks(&mut c, &admin, &s.domain, me, as_user.as_deref(), &s.imap).await,
        None => None,
    };
    imap_checks(&mut c, &s.imap, s.api_tls.insecure, after_login.is_some()).await;
    if let Some(caps) = after_login {
        capability_checks(&mut c, &caps, "after login");
    }
    finish(common, c)
}

fn api_fix(e: &ApiError) -> String {
    match e {
        ApiError::Transport { .. } => "check the URL, the network and the certificate (--ca-file)".into(),
        _ => "see the message; `offboard -vv doctor` shows each request".into(),
    }
}

fn state_dir_check(c: &mut Checks, dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(dir) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => c.warn(
            "state directory",
            format!(
                "{} is readable by others (mode {:o})",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
            format!("chmod 700 {}", dir.display()),
        ),
        Ok(_) => c.ok("state directory", format!("{} (private)", dir.display())),
        Err(_) => c.ok(
            "state directory",
            format!("{} (made at the first run, mode 0700)", dir.display()),
        ),
    }
}

async fn bluemind_checks(
    c: &mut Checks,
    admin: &Client,
    domain: &str,
    me: &bluemind_api::AuthUser,
    as_user: Option<&str>,
    imap: &Endpoint,
) -> Option<Vec<String>> {
    let global = me.roles.iter().any(|r| r == "systemManagement");
    match admin.installation_version().await {
        Ok(Some(v)) => c.ok("bluemind version", v),
        Ok(None) => c.ok("bluemind version", "not given"),
        Err(ApiError::Forbidden { .. }) => c.ok(
            "bluemind version",
            "not readable with a domain admin's key (no harm)",
        ),
        Err(e) => c.warn(
            "bluemind version",
            e.to_string(),
            "nothing needed: the version is only shown",
        ),
    }
    match admin.server_time().await {
        Ok(Some(t)) => {
            let now = SystemTime::now();
            let (skew, ahead) = match t.duration_since(now) {
                Ok(d) => (d, true),
                Err(e) => (e.duration(), false),
            };
            // The Date header has whole seconds.
            if skew <= SKEW_WARN {
                c.ok(
                    "clock",
                    format!(
                        "BlueMind's clock and this machine's agree (within {} s)",
                        skew.as_secs().max(1)
                    ),
                );
            } else {
                c.warn(
                    "clock",
                    format!(
                        "BlueMind's clock is {} s {} of this machine's",
                        skew.as_secs(),
                        if ahead { "ahead" } else { "behind" }
                    ),
                    "run NTP on both: auto-reply windows and certificate checks depend on the time",
                );
            }
        }
        Ok(None) => c.warn(
            "clock",
            "BlueMind sent no Date header",
            "nothing to do; the clock cannot be compared",
        ),
        Err(e) => c.warn("clock", e.to_string(), api_fix(&e)),
    }
    let d = match admin.lookup_domain(domain).await {
        Ok(Some(d)) => {
            c.ok("domain", format!("{domain} is {}", d.uid));
            d
        }
        Ok(None) => {
            c.fail(
                "domain",
                format!("BlueMind knows no domain {domain}"),
                "give the mail domain as addresses spell it (--domain)",
            );
            return None;
        }
        Err(e) => {
            c.fail(
                "domain",
                e.to_string(),
                "use a key of an admin of this domain (or admin0's)",
            );
            return None;
        }
    };
    let domain_admin = global || me.roles.iter().any(|r| r == "admin");
    match admin.user_by_login(&d.uid, "offboard-doctor-no-such-user").await {
        Ok(_) if domain_admin => c.ok(
            "rights: user management",
            "the key may read and change the domain's users",
        ),
        Ok(_) => c.warn(
            "rights: user management",
            "users can be read, but the key has no admin role",
            "use a domain admin's key",
        ),
        Err(e) => c.fail(
            "rights: user management",
            e.to_string(),
            "use a domain admin's key (role admin), or admin0's",
        ),
    }
    if global || me.roles.iter().any(|r| r == "sudo") {
        c.ok(
            "rights: su",
            "the key may open sessions as users (no password needed)",
        );
    } else {
        c.warn(
            "rights: su",
            "the key has no sudo role: BlueMind may refuse sessions as the leaver and the successor",
            "grant the admin the Sudo role, use admin0's key, or allow --reset-password for the leaver",
        );
    }
    let login = as_user?;
    let name = format!("su as {login}");
    match admin.su(&format!("{login}@{domain}")).await {
        Ok(SuOutcome::Ok(r)) => {
            let Some(token) = r.auth_key else {
                c.fail(&name, "the session came without a key", "report it");
                return None;
            };
            c.ok(&name, "a session was opened (and closed)");
            let email = r
                .auth_user
                .and_then(|u| u.value)
                .and_then(|u| u.default_email().map(str::to_string))
                .unwrap_or_else(|| format!("{login}@{domain}"));
            let creds = Credentials {
                user: email.clone(),
                secret: token.clone(),
                mechanism: AuthMechanism::Auto,
                authzid: None,
            };
            let caps = match Session::connect(imap, &creds).await {
                Ok(session) => {
                    let caps: Vec<String> = session.capabilities().iter().cloned().collect();
                    session.logout().await;
                    c.ok(
                        "imap login",
                        format!("{email} logged in with the session's token"),
                    );
                    Some(caps)
                }
                Err(e) => {
                    c.fail(
                        "imap login",
                        format!("{email} with a session token: {e}"),
                        e.hint().unwrap_or_else(|| "check [imap] host and port".into()),
                    );
                    None
                }
            };
            let _ = admin.with_key(token).logout().await;
            caps
        }
        Ok(SuOutcome::Refused { message, .. }) => {
            c.fail(
                &name,
                format!("BlueMind refused it: {}", message.unwrap_or_default()),
                "grant the admin the Sudo role, or use admin0's key",
            );
            None
        }
        Err(e) => {
            c.fail(&name, e.to_string(), api_fix(&e));
            None
        }
    }
}

fn capability_checks(c: &mut Checks, caps: &[String], when: &str) {
    let has = |x: &str| caps.iter().any(|c| c.eq_ignore_ascii_case(x));
    for (cap, cost) in CAPABILITIES {
        let present = has(cap) || (*cap == "LITERAL+" && has("LITERAL-"));
        if present {
            c.ok(&format!("capability {cap}"), format!("offered ({when})"));
        } else if when == "before login" {
            c.warn(
                &format!("capability {cap}"),
                format!("not offered before login: {cost}"),
                "many servers list more after login: run `offboard doctor --as LOGIN` to see them",
            );
        } else {
            c.warn(
                &format!("capability {cap}"),
                format!("not offered: {cost}"),
                "nothing to do; the run adapts",
            );
        }
    }
}

async fn imap_checks(c: &mut Checks, ep: &Endpoint, insecure: bool, caps_after_login: bool) {
    let where_ = format!("{}:{}", ep.host, ep.port);
    match crate::imap::inspect::inspect(ep).await {
        Ok(facts) => {
            c.ok("imap", format!("{where_} answers: {}", facts.greeting));
            match (&facts.certificate, ep.security) {
                (_, Security::None) => {
                    let loopback = ep.host == "localhost"
                        || ep.host.parse::<std::net::IpAddr>().is_ok_and(|i| i.is_loopback());
                    if loopback {
                        c.ok("tls", "none (this machine only)");
                    } else {
                        c.warn(
                            "tls",
                            "none: passwords and mail cross the network in clear",
                            "use implicit TLS (993) or STARTTLS",
                        );
                    }
                }
                (Some(cert), _) => {
                    let now = chrono::Utc::now().timestamp();
                    let days = (cert.not_after - now) / 86_400;
                    let until = chrono::DateTime::from_timestamp(cert.not_after, 0)
                        .map(|d| d.format("%Y-%m-%d").to_string())
                        .unwrap_or_default();
                    let detail = format!(
                        "{} certificate for {} (issuer {}), valid until {until} ({days} days)",
                        if insecure { "UNVERIFIED" } else { "verified" },
                        cert.names.join(", "),
                        cert.issuer
                    );
                    if insecure {
                        c.warn(
                            "tls",
                            detail,
                            "drop --insecure / insecure = true; trust the CA with --ca-file",
                        );
                    } else if days < CERT_WARN_DAYS {
                        c.warn("tls", detail, "renew the IMAP server's certificate");
                    } else {
                        c.ok("tls", detail);
                    }
                }
                (None, _) => c.warn("tls", "no certificate seen", "check [imap] tls"),
            }
            if !caps_after_login {
                capability_checks(c, &facts.capabilities, "before login");
            }
        }
        Err(e) => {
            let fix = e
                .hint()
                .unwrap_or_else(|| "check [imap] host, port and tls".into());
            let name = if matches!(exit::classify_imap(&e), Exit::Tls) {
                "tls"
            } else {
                "imap"
            };
            c.fail(name, format!("{where_}: {e}"), fix);
        }
    }
}

/// Prints the checks and returns the overall health as the exit code.
fn finish(common: &CommonOpts, c: Checks) -> anyhow::Result<Exit> {
    let failures = c.0.iter().filter(|x| x.status == "failure").count();
    let warnings = c.0.iter().filter(|x| x.status == "warning").count();
    let code = if failures > 0 {
        Exit::DoctorFailures
    } else if warnings > 0 {
        Exit::DoctorWarnings
    } else {
        Exit::Ok
    };
    if common.json {
        let doc = serde_json::json!({
            "checks": c.0, "failures": failures, "warnings": warnings,
            "healthy": failures == 0, "exit_code": code.code(),
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for x in &c.0 {
            crate::outln!("{:<8} {:<26} {}", x.status, x.name, x.detail);
            if let Some(f) = &x.fix {
                crate::outln!("{:<8} {:<26} fix: {f}", "", "");
            }
        }
        crate::outln!(
            "\n{}",
            match code {
                Exit::Ok => "All checks passed.".to_string(),
                Exit::DoctorWarnings => format!("{warnings} warning(s), no failure: a run can go ahead."),
                _ => format!("{failures} failure(s), {warnings} warning(s): fix the failures before a run."),
            }
        );
    }
    if code == Exit::DoctorFailures && !common.json {
        return Err(CliError::new(code, format!("{failures} check(s) failed")).into());
    }
    Ok(code)
}
