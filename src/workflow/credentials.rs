//! Credentials without knowing a password: an admin su session per user, and with it a named
//! API key (`offboard <run-id>`) that BlueMind accepts as the IMAP password. Keys belong to
//! their creator, so they are created and deleted with the user's su session; after the
//! delete, a logout with the key clears the REST session BlueMind caches for it.

use super::report::CredentialReport;
use super::{Settings, WorkflowError, preflight::Preflight};
use bluemind_api::{ApiError, Client, SuOutcome};
use secrecy::SecretString;

/// Keys of this tool carry this prefix, so a later run finds those a crashed run left.
pub const KEY_PREFIX: &str = "offboard ";

/// One user's credentials.
#[derive(Default)]
struct UserCreds {
    /// The su session.
    session: Option<Client>,
    /// The su session's token (valid as IMAP password while the session lives).
    session_token: Option<SecretString>,
    /// The key minted for this run.
    key: Option<SecretString>,
    /// A password set by the reset fallback.
    password: Option<SecretString>,
}

/// The run's credentials.
#[derive(Default)]
pub struct Credentials {
    leaver: UserCreds,
    successor: UserCreds,
    minted: u32,
    deleted: u32,
    leftovers: u32,
    found: u32,
    live: u32,
    reset: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("minted", &self.minted)
            .field("deleted", &self.deleted)
            .finish_non_exhaustive()
    }
}

/// Characters of a reset password: letters, digits and symbols every policy we know takes.
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"-_.!#%+=@";
/// Length of a reset password (≥ 24, as policies ask).
const PASSWORD_LEN: usize = 28;

/// A random password for the leaver (never shown): 28 characters from the OS CSPRNG, with at
/// least one upper-case letter, lower-case letter, digit and symbol. Fails closed: without
/// randomness there is no password, and the run stops.
pub(super) fn random_password() -> Result<SecretString, WorkflowError> {
    random_password_from(|buf| getrandom::fill(buf).map_err(|e| WorkflowError::NoRandomness(e.to_string())))
}

fn random_password_from(
    mut fill: impl FnMut(&mut [u8]) -> Result<(), WorkflowError>,
) -> Result<SecretString, WorkflowError> {
    let alphabet: Vec<u8> = [UPPER, LOWER, DIGITS, SYMBOLS].concat();
    // Rejection sampling keeps every character equally likely; a draw without one of each
    // class is drawn again (it happens about one time in eight).
    let limit = 256 - 256 % alphabet.len();
    for _ in 0..64 {
        let mut out = zeroize::Zeroizing::new(String::with_capacity(PASSWORD_LEN));
        let mut buf = zeroize::Zeroizing::new([0u8; 64]);
        while out.len() < PASSWORD_LEN {
            fill(&mut buf[..])?;
            for b in buf.iter().filter(|b| usize::from(**b) < limit) {
                if out.len() < PASSWORD_LEN {
                    out.push(char::from(alphabet[usize::from(*b) % alphabet.len()]));
                }
            }
        }
        let has = |class: &[u8]| out.bytes().any(|c| class.contains(&c));
        if has(UPPER) && has(LOWER) && has(DIGITS) && has(SYMBOLS) {
            return Ok(SecretString::from(out.as_str()));
        }
    }
    Err(WorkflowError::NoRandomness(
        "the random source gave no usable password in 64 draws".into(),
    ))
}
pub(super) async fn open_sessions(
    admin: &Client,
    s: &Settings,
    pre: &Preflight,
    c: &mut Credentials,
) -> Result<(), WorkflowError> {
    for (role, person, slot) in [
        ("leaver", &pre.leaver, &mut c.leaver),
        ("successor", &pre.successor, &mut c.successor),
    ] {
        match admin.su(&format!("{}@{}", person.login, pre.domain_name)).await? {
            SuOutcome::Ok(r) => {
                if let Some(token) = r.auth_key.clone() {
                    slot.session = Some(admin.with_key(token.clone()));
                    slot.session_token = Some(token);
                }
            }
            SuOutcome::Refused { message, forbidden } => {
                let message = message.unwrap_or_else(|| {
                    if forbidden {
                        "permission denied".into()
                    } else {
                        "refused".into()
                    }
                });
                if role == "leaver" && s.reset_password && !s.dry_run {
                    let pw = random_password()?;
                    admin.set_password(&pre.domain_uid, &person.uid, &pw).await?;
                    slot.password = Some(pw);
                    c.reset = true;
                    tracing::warn!(
                        "su refused ({message}): the leaver's password was reset, as --reset-password allows"
                    );
                } else if role == "leaver" && s.reset_password {
                    // Dry run: say what would happen, change nothing.
                    return Err(WorkflowError::SuRefused {
                        role,
                        name: person.login.clone(),
                        message: format!("{message} (a real run would reset the leaver's password)"),
                    });
                } else {
                    return Err(WorkflowError::SuRefused {
                        role,
                        name: person.login.clone(),
                        message,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Finds the keys earlier runs left (named `offboard <run-id>`) with each user's session. A
/// dry run only counts them. A real run deletes those whose run is not alive: it holds both
/// users' locks, so a run on this host touching either user cannot be; the lock files of the
/// state directory are checked anyway for a run id still held.
pub(super) async fn sweep_leftovers(c: &mut Credentials, s: &Settings) -> Result<(), WorkflowError> {
    for slot in [&c.leaver, &c.successor] {
        let Some(session) = &slot.session else { continue };
        for key in session.list_api_keys().await? {
            let Some(run_id) = key.display_name.strip_prefix(KEY_PREFIX) else {
                continue;
            };
            c.found += 1;
            if s.dry_run {
                continue;
            }
            if run_id == s.run_id || super::lock::run_is_alive(&s.state_dir, run_id) {
                c.live += 1;
                continue;
            }
            session.delete_api_key(&key.sid).await?;
            // The key was never used as a REST token here: nothing cached to log out.
            c.leftovers += 1;
        }
    }
    Ok(())
}
/// Mints one key per user with that user's session.
pub(super) async fn mint_keys(c: &mut Credentials, run_id: &str) -> Result<(), WorkflowError> {
    for slot in [&mut c.leaver, &mut c.successor] {
        if let Some(session) = &slot.session {
            let key = session.create_api_key(&format!("{KEY_PREFIX}{run_id}")).await?;
            slot.key = Some(key.sid);
            c.minted += 1;
        }
    }
    Ok(())
}

impl Credentials {
    /// The su session as the leaver, while it is open.
    pub(super) fn leaver_session(&self) -> Option<&Client> {
        self.leaver.session.as_ref()
    }

    /// The IMAP passwords: the run's key, else the reset password, else the session token.
    pub fn imap_secrets(&self) -> Result<(SecretString, SecretString), WorkflowError> {
        let pick = |u: &UserCreds, role: &'static str| {
            u.key
                .clone()
                .or_else(|| u.password.clone())
                .or_else(|| u.session_token.clone())
                .ok_or(WorkflowError::SuRefused {
                    role,
                    name: role.into(),
                    message: "no credential could be obtained".into(),
                })
        };
        Ok((pick(&self.leaver, "leaver")?, pick(&self.successor, "successor")?))
    }

    /// For the report.
    pub fn summary(&self) -> CredentialReport {
        let method = if self.reset {
            "password_reset"
        } else if self.leaver.key.is_some() || self.minted > 0 {
            "api_key"
        } else {
            "session"
        };
        CredentialReport {
            method: method.into(),
            keys_minted: self.minted,
            keys_deleted: self.deleted,
            leftover_keys_deleted: self.leftovers,
            leftover_keys_found: self.found,
            leftover_keys_of_live_runs: self.live,
            leaver_password_reset: self.reset,
        }
    }
}

/// Deletes this run's keys and ends the su sessions. Runs whatever happened before; keeps
/// going after a failure and returns the first one.
///
/// The su sessions may be gone by now: BlueMind drops a session after 20 minutes idle, and
/// nothing uses them during a long copy. So each key is deleted with the key itself as
/// `X-BM-ApiKey` (BlueMind resolves a key to a session of its owner, so the delete matches
/// its owner), then a logout with the key clears the session that call created; only if that
/// fails is a fresh su session opened for the delete.
pub(super) async fn cleanup(admin: &Client, pre: &Preflight, c: &mut Credentials) -> Result<(), ApiError> {
    let mut first = None;
    for (person, slot) in [(&pre.leaver, &mut c.leaver), (&pre.successor, &mut c.successor)] {
        if let Some(key) = slot.key.take() {
            match delete_key(admin, &format!("{}@{}", person.login, pre.domain_name), &key).await {
                Ok(()) => c.deleted += 1,
                Err(e) => {
                    tracing::warn!(
                        "the key of this run for {} could not be deleted: {e}",
                        person.login
                    );
                    first.get_or_insert(e);
                }
            }
        }
        if let Some(session) = slot.session.take()
            && let Err(e) = session.logout().await
            && !matches!(e, ApiError::Unauthorized { .. })
        {
            // An expired session is already closed.
            first.get_or_insert(e);
        }
        slot.session_token = None;
        // A reset password is never kept nor shown: dropping the secret zeroes it.
        slot.password = None;
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Deletes one key: with itself, else with a fresh su session of its owner.
async fn delete_key(admin: &Client, owner: &str, key: &SecretString) -> Result<(), ApiError> {
    let as_key = admin.with_key(key.clone());
    let first = match as_key.delete_api_key(key).await {
        Ok(()) => {
            let _ = as_key.logout().await;
            return Ok(());
        }
        Err(e) => e,
    };
    tracing::debug!("deleting the key with itself failed ({first}); trying a fresh su session");
    match admin.su(owner).await? {
        SuOutcome::Ok(r) => {
            let Some(token) = r.auth_key else {
                return Err(first);
            };
            let session = admin.with_key(token);
            let deleted = session.delete_api_key(key).await;
            let _ = session.logout().await;
            deleted
        }
        SuOutcome::Refused { .. } => Err(first),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn reset_passwords_pass_common_policies_and_differ() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        for pw in [&a, &b] {
            let p = pw.expose_secret();
            assert!(p.len() >= 24, "{} characters", p.len());
            for class in [UPPER, LOWER, DIGITS, SYMBOLS] {
                assert!(p.bytes().any(|c| class.contains(&c)), "a class is missing");
            }
        }
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn no_randomness_means_no_password() {
        let failing = |_: &mut [u8]| Err(WorkflowError::NoRandomness("test".into()));
        assert!(matches!(
            random_password_from(failing),
            Err(WorkflowError::NoRandomness(_))
        ));
        // A broken source that gives constant bytes never yields a constant password.
        let constant = |buf: &mut [u8]| {
            buf.fill(0);
            Ok(())
        };
        assert!(random_password_from(constant).is_err());
    }
}
