//! A throwaway Cyrus IMAP on 127.0.0.1, configured like BlueMind 4's mail store: separator
//! `/` (`unixhierarchysep`), the personal folders at the root (`altnamespace`), users named by
//! their full address (`virtdomains: userid`), other users' and shared folders under
//! `Autres utilisateurs` and `Dossiers partagés`, and Cyrus's own defaults everywhere else
//! (it refuses bare LF, NUL and nameless header lines, and rewrites 8-bit header bytes).
//!
//! Everything lives in one temp dir (`-C`/`-M`: nothing in /etc is read); the port is a free
//! ephemeral one; the daemon runs under [`crate::guard`]. Users are in a private sasldb. The
//! harness's master user is a Cyrus admin allowed to proxy, so [`crate::wire::Conn::login_as`]
//! works as on Dovecot.
//!
//! Debian's `cyrus-imapd` conflicts with `dovecot-imapd`, so `imapd` comes unpacked from its
//! package into a cache directory (`testkit/install-cyrus.sh`, run by `.ci/run`), beside the
//! installed `cyrus-common` (master, ctl_cyrusdb) and `sasl2-bin` (saslpasswd2).

use crate::dovecot::{TestUser, Users};
use crate::guard::{Guarded, greets, log_tail, wait_ready};
use anyhow::{Context, Result, anyhow, bail};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Knobs for one instance.
#[derive(Debug, Clone)]
pub struct CyrusOptions {
    /// Users beyond bertrand and nathalie.
    pub extra_users: Vec<TestUser>,
    /// Hard limit on the daemon's life, whatever happens to the test.
    pub max_lifetime: Duration,
    /// Keep the temp dir after drop (for debugging a failed test).
    pub keep_dir: bool,
}

impl Default for CyrusOptions {
    fn default() -> Self {
        CyrusOptions {
            extra_users: Vec::new(),
            max_lifetime: Duration::from_secs(30 * 60),
            keep_dir: std::env::var_os("OFFBOARD_KEEP_CYRUS").is_some(),
        }
    }
}

/// A running Cyrus; stopped on drop.
pub struct Cyrus {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    /// Port offering plain IMAP.
    pub imap_port: u16,
    users: Users,
    daemon: Guarded,
    owner: Option<(u32, u32)>,
}

impl std::fmt::Debug for Cyrus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cyrus")
            .field("root", &self.root)
            .field("imap_port", &self.imap_port)
            .finish_non_exhaustive()
    }
}

/// Where `testkit/install-cyrus.sh` unpacks `imapd` (`OFFBOARD_CYRUS_DIR` overrides): as root,
/// under /var/cache (master runs imapd as the `cyrus` user, who cannot enter /root); else in
/// the user's cache.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("OFFBOARD_CYRUS_DIR") {
        return PathBuf::from(d);
    }
    let base = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/cache")
    } else {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
    };
    base.join("offboard-testkit").join("cyrus")
}

/// The binaries: (master, ctl_cyrusdb, imapd, saslpasswd2), or how to install them.
fn binaries() -> Result<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let bin = Path::new("/usr/lib/cyrus/bin");
    let imapd = [cache_dir().join("usr/lib/cyrus/bin/imapd"), bin.join("imapd")]
        .into_iter()
        .find(|p| p.exists());
    let found = (
        bin.join("master"),
        bin.join("ctl_cyrusdb"),
        imapd,
        PathBuf::from("/usr/sbin/saslpasswd2"),
    );
    match found {
        (m, c, Some(i), s) if m.exists() && c.exists() && s.exists() => Ok((m, c, i, s)),
        _ => bail!(
            "Cyrus IMAP is not installed: run `bash testkit/install-cyrus.sh` (cyrus-common, \
             sasl2-bin, and imapd unpacked into {}; `bash .ci/run` does it)",
            cache_dir().display()
        ),
    }
}

impl Cyrus {
    /// Starts an instance with bertrand and nathalie.
    pub fn start() -> Result<Self> {
        Self::start_with(CyrusOptions::default())
    }

    /// Starts an instance with these options; retries on a port race.
    pub fn start_with(opts: CyrusOptions) -> Result<Self> {
        crate::guard::start_retrying("Cyrus", || Self::try_start(&opts))
    }

    fn try_start(opts: &CyrusOptions) -> Result<Self> {
        let (master, ctl, imapd, saslpasswd) = binaries()?;
        let dir = tempfile::Builder::new().prefix("offboard-cyrus-").tempdir()?;
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
        for sub in [
            "conf/db",
            "conf/sieve",
            "spool",
            "sieve",
            "socket",
            "lock",
            "proc",
            "run",
        ] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        // As root, master becomes the `cyrus` user (made by cyrus-common): it owns the tree.
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("cyrus")?
                .ok_or_else(|| anyhow!("no `cyrus` user: is cyrus-common installed?"))?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let imap_port = crate::dovecot::free_port()?;
        // The server's name, in its greeting: tells this instance from another that took
        // its port. The admin's SASL realm.
        let marker = crate::guard::instance_marker();
        let conf = root.join("imapd.conf");
        std::fs::write(&conf, imapd_conf(&root, &marker))?;
        let services = root.join("cyrus.conf");
        std::fs::write(
            &services,
            format!(
                "START {{\n  recover cmd=\"{ctl} -C {conf} -r\"\n}}\n\
                 SERVICES {{\n  imap cmd=\"{imapd} -C {conf}\" listen=\"127.0.0.1:{imap_port}\" prefork=0 maxchild=200\n}}\n\
                 EVENTS {{\n}}\nDAEMON {{\n}}\n",
                ctl = ctl.display(),
                imapd = imapd.display(),
                conf = conf.display(),
            ),
        )?;
        let mut users = vec![
            TestUser::new(crate::BERTRAND.0, crate::BERTRAND.1),
            TestUser::new(crate::NATHALIE.0, crate::NATHALIE.1),
        ];
        users.extend(opts.extra_users.iter().cloned());
        let mut me = Cyrus {
            dir: Some(dir),
            root: root.clone(),
            imap_port,
            users: Users::default(),
            daemon: Guarded::default(),
            owner,
        };
        sasl_set(
            &saslpasswd,
            &root,
            &format!("{}@{marker}", crate::MASTER.0),
            crate::MASTER.1,
        )?;
        if let Some((uid, gid)) = owner {
            chown_tree(&root, uid, gid)?;
        }
        if opts.keep_dir
            && let Some(d) = me.dir.take()
        {
            let _ = d.keep();
        }
        let log = root.join("cyrus.log");
        let pid = root.join("run/master.pid");
        me.daemon = Guarded::spawn(
            &master,
            [
                "-D".as_ref(),
                "-C".as_ref(),
                conf.as_os_str(),
                "-M".as_ref(),
                services.as_os_str(),
                "-p".as_ref(),
                pid.as_os_str(),
            ],
            &log,
            opts.max_lifetime,
        )?;
        wait_ready(
            &mut me.daemon,
            Duration::from_secs(20),
            || greets(imap_port, &marker),
            || log_tail(&log),
        )
        .context("Cyrus")?;
        for u in users {
            me.add_user(&u.login, &u.password)?;
        }
        Ok(me)
    }

    /// The instance's temp dir.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The password of a known user.
    pub fn password(&self, login: &str) -> Option<String> {
        self.users.password(login)
    }

    /// Adds a user as BlueMind 4 provisions one: a password, an INBOX, and Sent, Drafts,
    /// Trash, Junk and Outbox (with their special uses), all subscribed.
    pub fn add_user(&self, login: &str, password: &str) -> Result<()> {
        let (_, _, _, saslpasswd) = binaries()?;
        sasl_set(&saslpasswd, &self.root, login, password)?;
        if let Some((uid, gid)) = self.owner {
            chown_tree(&self.root.join("sasldb2"), uid, gid)?;
        }
        let mut admin = crate::wire::Conn::login(self.imap_port, crate::MASTER.0, crate::MASTER.1)?;
        admin
            .command(&format!(
                "CREATE {}",
                crate::wire::quote(&format!("user/{login}"))
            ))
            .with_context(|| format!("create the mailbox of {login}"))?;
        admin.logout();
        let mut conn = crate::wire::Conn::login_as(self.imap_port, login)?;
        for (name, uses) in [
            ("Sent", "\\Sent"),
            ("Drafts", "\\Drafts"),
            ("Trash", "\\Trash"),
            ("Junk", "\\Junk"),
            ("Outbox", ""),
        ] {
            let create = if uses.is_empty() {
                format!("CREATE {name}")
            } else {
                format!("CREATE {name} (USE ({uses}))")
            };
            conn.command(&create)
                .with_context(|| format!("{create} for {login}"))?;
            conn.command(&format!("SUBSCRIBE {name}"))?;
        }
        conn.command("SUBSCRIBE INBOX")?;
        conn.logout();
        self.users.lock().push(TestUser::new(login, password));
        Ok(())
    }

    /// The last lines of the daemon's output.
    pub fn log_tail(&self) -> String {
        log_tail(&self.root.join("cyrus.log"))
    }

    /// Stops Cyrus now and waits for it (also done on drop).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

impl Drop for Cyrus {
    /// The daemon stops before its directory goes.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets a password in the instance's sasldb (created on first use).
fn sasl_set(saslpasswd: &Path, root: &Path, login: &str, password: &str) -> Result<()> {
    let db = root.join("sasldb2");
    // virtdomains: a login `user@domain` is looked up as user `user` in realm `domain`; the
    // admin has no domain and lives in the server's realm, its `servername`.
    let mut cmd = Command::new(saslpasswd);
    cmd.arg("-p").arg("-c").arg("-f").arg(&db);
    match login.split_once('@') {
        Some((user, realm)) => cmd.arg("-u").arg(realm).arg(user),
        None => cmd.arg(login),
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("run saslpasswd2")?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("saslpasswd2 stdin"))?
        .write_all(password.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("saslpasswd2 {login}: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640))?;
    Ok(())
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// BlueMind 4's choices where they show on the wire; Cyrus's defaults elsewhere (notably
/// `munge8bit`, `reject8bit: no`).
fn imapd_conf(root: &Path, servername: &str) -> String {
    let r = root.display();
    format!(
        "# Generated by offboard's testkit: a throwaway Cyrus shaped like BlueMind 4's store.\n\
         configdirectory: {r}/conf\n\
         partition-default: {r}/spool\n\
         sievedir: {r}/sieve\n\
         idlesocket: {r}/socket/idle\n\
         notifysocket: {r}/socket/notify\n\
         lmtpsocket: {r}/socket/lmtp\n\
         mboxname_lockpath: {r}/lock\n\
         proc_path: {r}/proc\n\
         syslog_prefix: offboard-cyrus\n\
         servername: {servername}\n\
         admins: {admin}\n\
         proxyservers: {admin}\n\
         sasl_pwcheck_method: auxprop\n\
         sasl_auxprop_plugin: sasldb\n\
         sasl_sasldb_path: {r}/sasldb2\n\
         sasl_mech_list: PLAIN LOGIN\n\
         allowplaintext: yes\n\
         unixhierarchysep: yes\n\
         altnamespace: yes\n\
         virtdomains: userid\n\
         userprefix: Autres utilisateurs\n\
         sharedprefix: Dossiers partag&AOk-s\n\
         hashimapspool: no\n\
         specialusealways: yes\n\
         tls_required: no\n",
        admin = crate::MASTER.0,
    )
}
