//! The whole scenario on one machine: a BlueMind-like Dovecot, the BlueMind double wired to
//! it, bertrand's mailbox filled (a personal folder too), the mailshares as public folders, and a config file that
//! points `offboard` at both. Used by the workflow tests and by the `sandbox` binary.

use crate::{BERTRAND, Dovecot, DovecotOptions, MailboxSpec, NATHALIE, fill};
use anyhow::Result;
use bluemind_api::fake::{FakeBlueMind, State};
use secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A running scenario.
pub struct Sandbox {
    /// The IMAP server.
    pub dovecot: Arc<Dovecot>,
    /// The BlueMind double.
    pub bluemind: FakeBlueMind,
    /// Temp dir with the config, the key file and the state.
    pub dir: tempfile::TempDir,
    /// The config file to pass with `--config`.
    pub config: PathBuf,
    /// The messages put in bertrand's mailbox.
    pub messages: Vec<crate::SeedMessage>,
}

impl Sandbox {
    /// Starts everything; `messages` ordinary messages in bertrand's mailbox.
    pub fn start(messages: usize, opts: DovecotOptions) -> Result<Self> {
        let dovecot = Arc::new(Dovecot::start_with(opts)?);
        dovecot.add_user("helene@bluemind.loc", "H3lene!")?;
        let bluemind = FakeBlueMind::start(State::scenario(), Some(dovecot.clone()))?;
        let mut spec = MailboxSpec::leaver(2026, messages);
        spec.large = 1;
        let msgs = fill::fill(dovecot.imap_port, BERTRAND.0, &spec)?;
        // His personal mail, which the hand-over leaves out by default.
        fill::fill(
            dovecot.imap_port,
            BERTRAND.0,
            &MailboxSpec {
                folders: vec!["Perso".into(), "Perso/Santé".into()],
                duplicates: 0,
                ..MailboxSpec::leaver(11, 6)
            },
        )?;
        fill::fill(
            dovecot.imap_port,
            NATHALIE.0,
            &MailboxSpec {
                folders: vec!["INBOX".into()],
                ..MailboxSpec::leaver(7, 5)
            },
        )?;
        // Mailshares as BlueMind shows them over IMAP.
        dovecot.create_public_folder("compta", &[("user=bertrand@bluemind.loc", "lrs")])?;
        dovecot.create_public_folder("projets", &[("user=bertrand@bluemind.loc", "lrwstipe")])?;
        dovecot.create_public_folder("rh", &[])?;
        let dir = tempfile::Builder::new().prefix("offboard-sandbox-").tempdir()?;
        let key_file = dir.path().join("admin.key");
        std::fs::write(&key_file, format!("{}\n", bluemind.admin_key().expose_secret()))?;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
        let config = dir.path().join("offboard.toml");
        std::fs::write(
            &config,
            format!(
                "# Sandbox: the BlueMind double and a local Dovecot.\n[bluemind]\nurl = \"{url}\"\ndomain = \"bluemind.loc\"\nkey_file = \"{key}\"\n\n[imap]\nhost = \"localhost\"\nport = {port}\ntls = \"implicit\"\nca_file = \"{ca}\"\n\n[copy]\nstate_dir = \"{state}\"\n",
                url = bluemind.url(),
                key = key_file.display(),
                port = dovecot.imaps_port,
                ca = dovecot.pki.ca_cert.display(),
                state = dir.path().join("state").display(),
            ),
        )?;
        Ok(Sandbox {
            dovecot,
            bluemind,
            dir,
            config,
            messages: msgs,
        })
    }
}
