//! A throwaway Dovecot on 127.0.0.1, configured like BlueMind's IMAP endpoint.
//!
//! Everything lives in one temp dir; ports are free ephemeral ones, never 143/993. The daemon
//! runs under a guardian ([`crate::guard`]) that stops it with this handle or the test process,
//! and in any case after `max_lifetime`.
//!
//! BlueMind-like setup (see shared/dovecot.md and bluemind-api.md §6): separator `/`, personal
//! namespace with an empty prefix, `Autres utilisateurs/` for other users, `Dossiers partagés/`
//! for public folders, ACL plugin, special-use folders and an `Outbox`.
//!
//! Credentials: a `checkpassword` script reads `users.pw` (passwords) and `api-keys.pw` (keys,
//! any number per user) on every login, so a key written there is a valid IMAP password at
//! once and stops working once removed. Not passwd-file: Dovecot re-reads one at most once a
//! second (`passwd_file_sync` gates on `ioloop_time`), so a change could go unseen.

use crate::guard::{Guarded, greets, log_tail, wait_ready};
use crate::tls::TestPki;
use anyhow::{Context, Result, anyhow, bail};
use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// A user of the test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// Full address, also the IMAP login (as on BlueMind).
    pub login: String,
    /// Plain-text password.
    pub password: String,
}

impl TestUser {
    /// A user from its login and password.
    pub fn new(login: &str, password: &str) -> Self {
        TestUser {
            login: login.to_string(),
            password: password.to_string(),
        }
    }
}

/// The users of a test server (Dovecot or Cyrus), with their passwords.
#[derive(Debug, Default)]
pub struct Users(Mutex<Vec<TestUser>>);

impl Users {
    /// These users.
    pub fn new(users: Vec<TestUser>) -> Self {
        Users(Mutex::new(users))
    }

    /// The password of a known user.
    pub fn password(&self, login: &str) -> Option<String> {
        self.lock()
            .iter()
            .find(|u| u.login == login)
            .map(|u| u.password.clone())
    }

    /// The list, locked (a test that panicked holding it leaves it usable).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TestUser>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Knobs for one instance.
#[derive(Debug, Clone)]
pub struct DovecotOptions {
    /// Users beyond bertrand and nathalie.
    pub extra_users: Vec<TestUser>,
    /// fsync mail files (off for benchmarks: the shared disk makes timings vary 3×).
    pub fsync: bool,
    /// Hard limit on the daemon's life, whatever happens to the test.
    pub max_lifetime: Duration,
    /// Keep the temp dir after drop (for debugging a failed test).
    pub keep_dir: bool,
    /// Refuse messages larger than this many bytes (quota plugin), to test refusals.
    pub max_mail_size: Option<u64>,
    /// Per-user storage quota in KiB (quota plugin), to test a full mailbox.
    pub quota_kib: Option<u64>,
    /// Where the instance's directory goes (default: the system temp dir). The benchmark puts
    /// it in memory, where the disk's own noise does not reach the timings.
    pub base_dir: Option<PathBuf>,
    /// The capabilities advertised, when not Dovecot's own (`imap_capability`): a BlueMind 5
    /// endpoint offers neither MULTIAPPEND nor CONDSTORE ([`BLUEMIND_5_CAPABILITIES`]).
    pub capabilities: Option<String>,
    /// The hierarchy separator of every namespace (`/` as on BlueMind; `.` as on many others).
    pub separator: char,
}

/// What BlueMind 5's own IMAP endpoint advertises after login (shared/bluemind-api.md §6,
/// `exec/Capabilities.java`): LITERAL+, UIDPLUS, NAMESPACE, no MULTIAPPEND, no CONDSTORE.
pub const BLUEMIND_5_CAPABILITIES: &str =
    "IMAP4rev1 LITERAL+ AUTH=PLAIN ID ACL RIGHTS=kxten QUOTA NAMESPACE UIDPLUS SPECIAL-USE IDLE";

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            extra_users: Vec::new(),
            fsync: false,
            max_lifetime: Duration::from_secs(30 * 60),
            keep_dir: std::env::var_os("OFFBOARD_KEEP_DOVECOT").is_some(),
            max_mail_size: None,
            quota_kib: None,
            base_dir: None,
            capabilities: None,
            separator: '/',
        }
    }
}

/// A running Dovecot; stopped on drop.
pub struct Dovecot {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    config: PathBuf,
    /// Port offering plain IMAP and STARTTLS.
    pub imap_port: u16,
    /// Port offering implicit TLS.
    pub imaps_port: u16,
    /// The test CA and server certificate.
    pub pki: TestPki,
    users: Users,
    daemon: Guarded,
    mail_uid: u32,
    mail_gid: u32,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("root", &self.root)
            .field("imap_port", &self.imap_port)
            .field("imaps_port", &self.imaps_port)
            .finish_non_exhaustive()
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn write_atomic(path: &Path, content: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Finds the Dovecot binaries, or says how to install them.
fn dovecot_binary() -> Result<PathBuf> {
    for p in ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    bail!(
        "Dovecot is not installed: run `apt-get install dovecot-imapd` (or `bash .ci/run`, which installs it)"
    )
}

impl Dovecot {
    /// Starts an instance with bertrand and nathalie.
    pub fn start() -> Result<Self> {
        Self::start_with(DovecotOptions::default())
    }

    /// Starts an instance with these options; retries on a port race.
    pub fn start_with(opts: DovecotOptions) -> Result<Self> {
        crate::guard::start_retrying("Dovecot", || Self::try_start(&opts))
    }

    fn try_start(opts: &DovecotOptions) -> Result<Self> {
        let binary = dovecot_binary()?;
        let mut builder = tempfile::Builder::new();
        builder.prefix("offboard-dovecot-");
        let dir = match &opts.base_dir {
            Some(base) => builder.tempdir_in(base)?,
            None => builder.tempdir()?,
        };
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
        let is_root = nix::unistd::geteuid().is_root();
        let (mail_uid, mail_gid, internal_user, login_user) = if is_root {
            (5000, 5000, "dovecot".to_string(), "dovenull".to_string())
        } else {
            let uid = nix::unistd::getuid();
            let name = nix::unistd::User::from_uid(uid)?
                .map(|u| u.name)
                .ok_or_else(|| anyhow!("current user has no name"))?;
            (uid.as_raw(), nix::unistd::getgid().as_raw(), name.clone(), name)
        };
        for sub in ["run", "state", "home", "public", "acl"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        for sub in ["home", "public", "acl"] {
            chown(&root.join(sub), mail_uid, mail_gid)?;
        }
        let pki = TestPki::generate(&root.join("tls"))?;
        for f in [&pki.server_key, &pki.server_cert, &pki.ca_cert] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644))?;
        }
        let imap_port = free_port()?;
        let imaps_port = free_port()?;
        let config = root.join("dovecot.conf");
        let marker = crate::guard::instance_marker();
        std::fs::write(
            &config,
            render_config(&ConfigVars {
                marker: &marker,
                root: &root,
                imap_port,
                imaps_port,
                pki: &pki,
                mail_uid,
                mail_gid,
                internal_user: &internal_user,
                login_user: &login_user,
                fsync: opts.fsync,
                max_mail_size: opts.max_mail_size,
                // It advertises QUOTA: GETQUOTAROOT answers (no limit unless one is set).
                quota_kib: opts.quota_kib.or(opts.capabilities.as_ref().map(|_| 0)),
                capabilities: opts.capabilities.as_deref(),
                separator: opts.separator,
            }),
        )?;
        let mut users = vec![
            TestUser::new(crate::BERTRAND.0, crate::BERTRAND.1),
            TestUser::new(crate::NATHALIE.0, crate::NATHALIE.1),
        ];
        users.extend(opts.extra_users.iter().cloned());
        write_atomic(
            &root.join("master.passwd"),
            &format!("{}:{{PLAIN}}{}\n", crate::MASTER.0, crate::MASTER.1),
        )?;
        write_atomic(&root.join("api-keys.pw"), "")?;
        let script = root.join("checkpassword.sh");
        std::fs::write(&script, CHECKPASSWORD)?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        let mut me = Dovecot {
            dir: Some(dir),
            root: root.clone(),
            config: config.clone(),
            imap_port,
            imaps_port,
            pki,
            users: Users::new(users),
            daemon: Guarded::default(),
            mail_uid,
            mail_gid,
        };
        me.write_users()?;
        if opts.keep_dir
            && let Some(d) = me.dir.take()
        {
            let _ = d.keep();
        }

        let check = Command::new(binary.with_file_name("doveconf"))
            .arg("-c")
            .arg(&config)
            .arg("-n")
            .output();
        if let Ok(out) = check
            && !out.status.success()
        {
            bail!("invalid Dovecot config: {}", String::from_utf8_lossy(&out.stderr));
        }

        let log = root.join("dovecot.log");
        me.daemon = Guarded::spawn(
            &binary,
            [OsStr::new("-F"), OsStr::new("-c"), config.as_os_str()],
            &log,
            opts.max_lifetime,
        )?;
        // The TLS port needs a handshake to greet: accepting the connection is enough.
        let tls_accepts = || {
            TcpStream::connect_timeout(&([127, 0, 0, 1], imaps_port).into(), Duration::from_millis(200))
                .is_ok()
        };
        wait_ready(
            &mut me.daemon,
            Duration::from_secs(15),
            || greets(imap_port, &marker) && tls_accepts(),
            || log_tail(&log),
        )
        .context("Dovecot")?;
        Ok(me)
    }

    /// The last lines of Dovecot's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.root.join("dovecot.log"))
    }

    /// The instance's temp dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The config file, for `doveadm -c`.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The password of a known user.
    pub fn password(&self, login: &str) -> Option<String> {
        self.users.password(login)
    }

    fn lock_users(&self) -> std::sync::MutexGuard<'_, Vec<TestUser>> {
        self.users.lock()
    }

    fn write_users(&self) -> Result<()> {
        let users = self.lock_users();
        let mut out = String::new();
        for u in users.iter() {
            check_field(&u.login)?;
            check_field(&u.password)?;
            out.push_str(&format!("{}:{}\n", u.login, u.password));
        }
        write_atomic(&self.root.join("users.pw"), &out)
    }

    /// Adds a user (valid at once, no restart).
    pub fn add_user(&self, login: &str, password: &str) -> Result<()> {
        self.lock_users().push(TestUser::new(login, password));
        self.write_users()
    }

    /// Changes a user's password (as a BlueMind password reset would).
    pub fn set_password(&self, login: &str, password: &str) -> Result<()> {
        {
            let mut users = self.lock_users();
            let u = users
                .iter_mut()
                .find(|u| u.login == login)
                .ok_or_else(|| anyhow!("unknown user {login}"))?;
            u.password = password.to_string();
        }
        self.write_users()
    }

    /// Makes `key` a valid IMAP password of `login`, beside the password and other keys.
    pub fn add_api_key(&self, login: &str, key: &str) -> Result<()> {
        check_field(login)?;
        check_field(key)?;
        let _guard = self.lock_users();
        let path = self.root.join("api-keys.pw");
        let content = std::fs::read_to_string(&path)?;
        write_atomic(&path, &format!("{content}{login}:{key}\n"))
    }

    /// Makes `key` stop working as an IMAP password of `login`.
    pub fn remove_api_key(&self, login: &str, key: &str) -> Result<()> {
        let _guard = self.lock_users();
        let path = self.root.join("api-keys.pw");
        let line = format!("{login}:{key}");
        let content = std::fs::read_to_string(&path)?;
        let kept: String = content
            .lines()
            .filter(|l| *l != line)
            .map(|l| format!("{l}\n"))
            .collect();
        write_atomic(&path, &kept)
    }

    /// Creates a folder in the public namespace (`Dossiers partagés/<name>`, a BlueMind
    /// mailshare) with the given ACL entries (`(identifier, rights)`, e.g. `("user=bob@x", "lrs")`).
    pub fn create_public_folder(&self, name: &str, acl: &[(&str, &str)]) -> Result<()> {
        let mut dir = self.root.join("public");
        for part in name.split('/') {
            dir = dir.join(crate::mutf7::encode(part));
            for sub in ["cur", "new", "tmp"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            let mut acl_text = String::new();
            for (id, rights) in acl {
                acl_text.push_str(&format!("{id} {rights}\n"));
            }
            std::fs::write(dir.join("dovecot-acl"), acl_text)?;
        }
        chown_recursive(&self.root.join("public"), self.mail_uid, self.mail_gid)
    }

    /// Runs `doveadm` against this instance and returns its stdout.
    pub fn doveadm(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "doveadm {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Connects this harness's own client as `login` (through the master user).
    pub fn connect_as(&self, login: &str) -> Result<crate::wire::Conn> {
        crate::wire::Conn::login_as(self.imap_port, login)
    }

    /// Stops Dovecot now and waits for it (also done on drop).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Whether the daemon is still running (for the harness's own tests).
    pub fn is_running(&mut self) -> bool {
        !self.daemon.exited()
    }
}

impl Drop for Dovecot {
    /// The daemon stops before its directory goes.
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_field(s: &str) -> Result<()> {
    if s.contains(['\n', '\r', '\0']) || s.is_empty() {
        bail!("{s:?} cannot be written to a passwd-file");
    }
    Ok(())
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<()> {
    chown(path, uid, gid)?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_recursive(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Dovecot's checkpassword protocol: user NUL password NUL on fd 3; on success run the reply
/// program given as arguments, else exit 1. Files are read afresh at every login.
const CHECKPASSWORD: &str = r#"#!/bin/bash
IFS= read -r -d '' user <&3 || exit 1
IFS= read -r -d '' pass <&3 || exit 1
dir=$(dirname "$0")
if grep -qxF -- "$user:$pass" "$dir/users.pw" "$dir/api-keys.pw"; then
  exec "$@"
fi
exit 1
"#;

struct ConfigVars<'a> {
    /// In the greeting: tells this instance from another that took its port.
    marker: &'a str,
    root: &'a Path,
    imap_port: u16,
    imaps_port: u16,
    pki: &'a TestPki,
    mail_uid: u32,
    mail_gid: u32,
    internal_user: &'a str,
    login_user: &'a str,
    fsync: bool,
    max_mail_size: Option<u64>,
    quota_kib: Option<u64>,
    capabilities: Option<&'a str>,
    separator: char,
}

fn render_config(v: &ConfigVars<'_>) -> String {
    let root = v.root.display();
    let quota = if v.max_mail_size.is_some() || v.quota_kib.is_some() {
        format!(
            "  quota = count:User quota\n  quota_vsizes = yes\n  quota_rule = *:storage={}K\n  quota_max_mail_size = {}\n",
            v.quota_kib.unwrap_or(0),
            v.max_mail_size.unwrap_or(0)
        )
    } else {
        String::new()
    };
    let plugins = if quota.is_empty() { "acl" } else { "acl quota" };
    // BlueMind advertises QUOTA (GETQUOTAROOT) too.
    let imap_plugins = if quota.is_empty() {
        "imap_acl"
    } else {
        "imap_acl imap_quota"
    };
    // Unguessable: the static passdb only vouches that a user exists (for master logins).
    let nobody_knows: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..32)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect()
    };
    let capability = v
        .capabilities
        .map(|c| format!("imap_capability = {c}\n"))
        .unwrap_or_default();
    format!(
        r#"# Generated by offboard's testkit: a throwaway Dovecot shaped like BlueMind's IMAP.
instance_name = offboard-test-{imap_port}
login_greeting = Dovecot ready ({marker}).
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 0
auth_master_user_separator = *
auth_failure_delay = 0
# Failed logins are part of the tests: no growing per-IP penalty delay on loopback.
login_trusted_networks = 127.0.0.0/8
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = 1
default_internal_user = {internal}
default_login_user = {login}
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_plugins = {plugins}
mail_fsync = {fsync}
verbose_proctitle = yes
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/master.passwd
  master = yes
  pass = yes
}}
# Any user exists (so master logins find their target), with a password nobody knows.
passdb {{
  driver = static
  args = password={nobody_knows}
}}
# Real passwords and API keys, read from files at every login.
passdb {{
  driver = checkpassword
  args = {root}/checkpassword.sh
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%u
}}

namespace inbox {{
  type = private
  separator = {sep}
  prefix =
  inbox = yes
  mailbox Sent {{
    special_use = \Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \Junk
    auto = subscribe
  }}
  mailbox Outbox {{
    auto = subscribe
  }}
}}
namespace users {{
  type = shared
  separator = {sep}
  prefix = Autres utilisateurs{sep}%%n{sep}
  location = maildir:%%h/Maildir:LAYOUT=fs:INDEXPVT=~/pvt/shared/%%u
  subscriptions = no
  list = children
}}
namespace public {{
  type = public
  separator = {sep}
  prefix = Dossiers partagés{sep}
  location = maildir:{root}/public:LAYOUT=fs:INDEXPVT=~/pvt/public
  subscriptions = no
  list = children
}}

plugin {{
  acl = vfile
  acl_shared_dict = file:{root}/acl/shared-mailboxes.db
  # The master user (for read-back) gets the target user's own rights, not none.
  acl_user = %u
{quota}}}

protocol imap {{
  mail_plugins = $mail_plugins {imap_plugins}
  mail_max_userip_connections = 500
}}
# A 500,000-message folder's index outgrows the default 256 MB per imap process.
service imap {{
  vsz_limit = 2G
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
  service_count = 0
}}
"#,
        imap_port = v.imap_port,
        imaps_port = v.imaps_port,
        cert = v.pki.server_cert.display(),
        key = v.pki.server_key.display(),
        uid = v.mail_uid.min(500),
        mail_uid = v.mail_uid,
        mail_gid = v.mail_gid,
        internal = v.internal_user,
        login = v.login_user,
        fsync = if v.fsync { "optimized" } else { "never" },
        sep = v.separator,
        marker = v.marker,
    )
}

/// The BlueMind double hands minted keys and new passwords to the IMAP server, as BlueMind
/// does for its own IMAP endpoint.
impl bluemind_api::fake::CredentialSink for Dovecot {
    fn key_added(&self, email: &str, key: &str) {
        if let Err(e) = self.add_api_key(email, key) {
            eprintln!("testkit: cannot add API key for {email}: {e}");
        }
    }
    fn key_removed(&self, email: &str, key: &str) {
        if let Err(e) = self.remove_api_key(email, key) {
            eprintln!("testkit: cannot remove API key for {email}: {e}");
        }
    }
    fn password_set(&self, email: &str, password: &str) {
        let known = self.password(email).is_some();
        let r = if known {
            self.set_password(email, password)
        } else {
            self.add_user(email, password)
        };
        if let Err(e) = r {
            eprintln!("testkit: cannot set password for {email}: {e}");
        }
    }
}
