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

fn random_password() -> SecretString {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    SecretString::from(format!(
        "Ob-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
                    let pw = random_password();
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

/// Deletes the keys crashed runs left (named `offboard …`), with each user's session.
pub(super) async fn delete_leftovers(c: &mut Credentials) -> Result<(), WorkflowError> {
    for slot in [&c.leaver, &c.successor] {
        let Some(session) = &slot.session else { continue };
        for key in session.list_api_keys().await? {
            if key.display_name.starts_with(KEY_PREFIX) {
                session.delete_api_key(&key.sid).await?;
                let _ = session.with_key(key.sid.clone()).logout().await;
                c.leftovers += 1;
            }
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
            leaver_password_reset: self.reset,
        }
    }
}

/// Deletes this run's keys and ends the su sessions. Runs whatever happened before; keeps
/// going after a failure and returns the first one.
pub(super) async fn cleanup(_admin: &Client, c: &mut Credentials) -> Result<(), ApiError> {
    let mut first = None;
    for slot in [&mut c.leaver, &mut c.successor] {
        if let (Some(session), Some(key)) = (&slot.session, slot.key.take()) {
            match session.delete_api_key(&key).await {
                Ok(()) => c.deleted += 1,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
            let _ = session.with_key(key).logout().await;
        }
        if let Some(session) = slot.session.take()
            && let Err(e) = session.logout().await
        {
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
