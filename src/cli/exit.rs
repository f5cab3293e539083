//! The one table of exit codes, and the mapping from errors to it.
//!
//! Numbers follow imapsync's where one applies (README "EXIT STATUS"), so scripts written
//! for imapsync keep working; codes of our own sit in ranges imapsync does not use.
//! [`TABLE`] is the one list: `--help`, the man page and the README are made from it.

use crate::config::secret::SecretError;
use crate::imap::ImapError;

/// Exit codes of `offboard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// An error with no more precise class.
    CatchAll = 1,
    /// Interrupted by a signal (Ctrl-C); a re-run resumes.
    Signal = 6,
    /// A server could not be reached (refused, unreachable, timeout).
    Connection = 10,
    /// TLS failed: certificate not trusted, handshake, STARTTLS not offered.
    Tls = 12,
    /// A server refused the credentials.
    Authentication = 16,
    /// The command line is wrong.
    Usage = 64,
    /// An input file (password file, CA file) cannot be read.
    NoInput = 66,
    /// A bug of ours ("internal error, please report").
    Internal = 70,
    /// `--subfolder1` names a folder host1 does not have.
    SubfolderMissing = 21,
    /// BlueMind refused the admin API key (or there is none).
    AdminKey = 30,
    /// The domain is unknown to BlueMind.
    DomainUnknown = 31,
    /// The leaver or the successor is unknown.
    UserUnknown = 32,
    /// The leaver and the successor are the same user.
    SameUser = 33,
    /// The leaver or the successor is suspended.
    UserSuspended = 34,
    /// BlueMind refused a session as the leaver or the successor (su).
    SuRefused = 35,
    /// Changes need confirmation: no terminal and no `--yes` (nothing was changed).
    NeedsConfirmation = 36,
    /// Some grants could not be made or verified (listed in the report).
    GrantsFailed = 37,
    /// BlueMind could not be reached or answered with an error.
    BlueMind = 38,
    /// Another run is handing over the leaver or the successor (nothing was changed).
    Busy = 39,
    /// The successor's quota cannot hold the leaver's mail (nothing was changed).
    QuotaTooSmall = 40,
    /// Some departure steps (auto-reply, forwards, sharing, lock, undo…) failed; the others
    /// were done (listed in the report).
    StepsFailed = 41,
    /// `close`: the last copy is not verified, so the account was not suspended.
    NotVerified = 42,
    /// No run journal with that id (`undo`), or no earlier offboarding of the leaver (`close`).
    RunUnknown = 43,
    /// `doctor`: warnings, no failure (a run can go ahead).
    DoctorWarnings = 44,
    /// `doctor`: at least one check failed.
    DoctorFailures = 45,
    /// `batch`: at least one row failed (the others ran).
    BatchFailed = 46,
    /// The configuration is incomplete or invalid.
    Config = 78,
    /// host1 could not be reached (imapsync mode).
    ConnectionHost1 = 101,
    /// host2 could not be reached (imapsync mode).
    ConnectionHost2 = 102,
    /// The run finished, but some messages or folders failed (see the report).
    WithErrors = 111,
    /// The destination is over quota.
    OverQuota = 113,
    /// The destination refused messages (too big, invalid).
    AppendFailed = 114,
    /// Messages could not be read from the source.
    FetchFailed = 115,
    /// Folders could not be created on the destination.
    CreateFailed = 116,
    /// Folders could not be opened.
    SelectFailed = 117,
    /// user1 was refused (imapsync mode).
    AuthUser1 = 161,
    /// user2 was refused (imapsync mode).
    AuthUser2 = 162,
}

/// Every code and what it means, in order: the one table behind `--help`, the man page and
/// the README's "Exit codes" (a test keeps the README equal to it).
pub const TABLE: &[(Exit, &str)] = &[
    (Exit::Ok, "done"),
    (Exit::CatchAll, "other error"),
    (Exit::Signal, "interrupted by a signal (a re-run resumes)"),
    (
        Exit::Connection,
        "a server could not be reached (refused, unreachable, timeout)",
    ),
    (
        Exit::Tls,
        "TLS failure (certificate not trusted, handshake, STARTTLS not offered)",
    ),
    (Exit::Authentication, "a server refused the credentials"),
    (
        Exit::SubfolderMissing,
        "`--subfolder1` names a folder host1 does not have",
    ),
    (
        Exit::AdminKey,
        "BlueMind refused the admin API key, or none was found",
    ),
    (Exit::DomainUnknown, "the domain is unknown to BlueMind"),
    (Exit::UserUnknown, "the leaver or the successor is unknown"),
    (Exit::SameUser, "the leaver and the successor are the same user"),
    (Exit::UserSuspended, "the leaver or the successor is suspended"),
    (
        Exit::SuRefused,
        "BlueMind refused a session as the leaver or the successor (su)",
    ),
    (
        Exit::NeedsConfirmation,
        "changes need confirmation: no terminal and no `--yes` (nothing was changed)",
    ),
    (
        Exit::GrantsFailed,
        "some grants could not be made or verified (listed in the report)",
    ),
    (
        Exit::BlueMind,
        "BlueMind could not be reached or answered with an error",
    ),
    (
        Exit::Busy,
        "another run is handing over the leaver or the successor (it is named; nothing was changed)",
    ),
    (
        Exit::QuotaTooSmall,
        "the successor's free quota cannot hold the leaver's mailbox (nothing was changed; `--allow-partial`)",
    ),
    (
        Exit::StepsFailed,
        "some departure steps failed (auto-reply, forwards, sharing, lock, undo…); the others were done (listed in the report)",
    ),
    (
        Exit::NotVerified,
        "`close`: the last copy is not verified, so the account was not suspended",
    ),
    (
        Exit::RunUnknown,
        "no run journal with that id (`undo`), or no earlier offboarding of the leaver (`close`)",
    ),
    (
        Exit::DoctorWarnings,
        "`doctor`: warnings, no failure (a run can go ahead)",
    ),
    (Exit::DoctorFailures, "`doctor`: at least one check failed"),
    (
        Exit::BatchFailed,
        "`batch`: at least one row failed; the others ran (see the table)",
    ),
    (Exit::Usage, "wrong command line"),
    (
        Exit::NoInput,
        "an input file (password file, CA file) cannot be read",
    ),
    (Exit::Internal, "internal error: please report"),
    (Exit::Config, "the configuration is incomplete or invalid"),
    (
        Exit::ConnectionHost1,
        "host1 could not be reached (imapsync mode)",
    ),
    (
        Exit::ConnectionHost2,
        "host2 could not be reached (imapsync mode)",
    ),
    (
        Exit::WithErrors,
        "the run finished but some messages or folders failed, or were stored altered (listed in the report)",
    ),
    (Exit::OverQuota, "the destination is over quota"),
    (
        Exit::AppendFailed,
        "the destination refused some messages (too big, invalid)",
    ),
    (
        Exit::FetchFailed,
        "some messages could not be read from the source",
    ),
    (Exit::CreateFailed, "some folders could not be created"),
    (Exit::SelectFailed, "some folders could not be opened"),
    (Exit::AuthUser1, "user1 was refused (imapsync mode)"),
    (Exit::AuthUser2, "user2 was refused (imapsync mode)"),
];

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The variant of a code.
    pub fn from_code(code: u8) -> Option<Exit> {
        TABLE.iter().map(|(e, _)| *e).find(|e| e.code() == code)
    }

    /// What the code means, as the table says.
    pub fn meaning(self) -> &'static str {
        TABLE.iter().find(|(e, _)| *e == self).map_or("", |(_, m)| m)
    }
}

/// The table for `--help` and the man page.
pub fn help_text() -> String {
    let mut out = String::from("Exit codes:\n");
    for (e, meaning) in TABLE {
        out.push_str(&format!("  {:>3}  {}\n", e.code(), meaning.replace('`', "")));
    }
    out
}

/// The table as the README writes it.
pub fn markdown() -> String {
    let mut out = String::from("| code | meaning |\n| --- | --- |\n");
    for (e, meaning) in TABLE {
        out.push_str(&format!("| {} | {meaning} |\n", e.code()));
    }
    out
}

/// The exit code of an IMAP failure.
pub fn classify_imap(e: &ImapError) -> Exit {
    match e {
        ImapError::Connect { .. } | ImapError::Timeout { .. } | ImapError::ConnectionLost { .. } => {
            Exit::Connection
        }
        ImapError::Certificate { .. }
        | ImapError::Handshake { .. }
        | ImapError::StartTlsUnavailable { .. } => Exit::Tls,
        ImapError::CaFile(_) | ImapError::File { .. } => Exit::NoInput,
        ImapError::AuthFailed { .. }
        | ImapError::MechanismUnavailable { .. }
        | ImapError::UnsendablePassword { .. } => Exit::Authentication,
        ImapError::Refused { .. } | ImapError::Protocol { .. } => Exit::CatchAll,
    }
}

/// The exit code of a BlueMind failure.
pub fn classify_api(e: &bluemind_api::ApiError) -> Exit {
    match e {
        bluemind_api::ApiError::Unauthorized { .. } => Exit::AdminKey,
        bluemind_api::ApiError::Transport { .. } if e.is_certificate() => Exit::Tls,
        bluemind_api::ApiError::Config(_) => Exit::Config,
        _ => Exit::BlueMind,
    }
}

/// The exit code of a workflow failure.
pub fn classify_workflow(e: &crate::workflow::WorkflowError) -> Exit {
    use crate::workflow::WorkflowError as W;
    match e {
        W::AdminKeyRefused => Exit::AdminKey,
        W::Api(a) => classify_api(a),
        W::DomainUnknown(_) => Exit::DomainUnknown,
        W::UserUnknown { .. } => Exit::UserUnknown,
        W::SameUser(_) => Exit::SameUser,
        W::Suspended { .. } => Exit::UserSuspended,
        W::SuRefused { .. } => Exit::SuRefused,
        W::Imap { source, .. } => classify_imap(source),
        W::Sync(crate::sync::SyncError::Source(_) | crate::sync::SyncError::Destination(_)) => {
            Exit::Connection
        }
        W::Sync(crate::sync::SyncError::OverQuota { .. }) => Exit::OverQuota,
        W::Sync(_) => Exit::CatchAll,
        W::Journal { .. } => Exit::NoInput,
        W::NoRandomness(_) => Exit::CatchAll,
        W::Busy { .. } => Exit::Busy,
        W::QuotaTooSmall { .. } => Exit::QuotaTooSmall,
        W::Interrupted => Exit::Signal,
        W::Invalid(_) => Exit::Usage,
        W::NotAsWritten(_) => Exit::StepsFailed,
        W::NotVerified(_) => Exit::NotVerified,
        W::RunUnknown(_) => Exit::RunUnknown,
    }
}

/// Picks the exit code of an error by walking its causes for one we know.
pub fn classify(err: &anyhow::Error) -> Exit {
    use crate::sync::SyncError;
    use crate::sync::journal::JournalError;
    // A context added with `.context(CliError)` is only visible through the error itself.
    if let Some(e) = err.downcast_ref::<super::CliError>() {
        return e.exit;
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<super::CliError>() {
            return e.exit;
        }
        if let Some(e) = cause.downcast_ref::<crate::workflow::WorkflowError>() {
            return classify_workflow(e);
        }
        if let Some(e) = cause.downcast_ref::<ImapError>() {
            return classify_imap(e);
        }
        if cause.downcast_ref::<crate::config::file::ConfigError>().is_some()
            || cause
                .downcast_ref::<crate::config::secret::WorldReadable>()
                .is_some()
        {
            return Exit::Config;
        }
        if let Some(e) = cause.downcast_ref::<bluemind_api::ApiError>() {
            return classify_api(e);
        }
        if cause.downcast_ref::<SecretError>().is_some() {
            return Exit::NoInput;
        }
        if let Some(e) = cause.downcast_ref::<SyncError>() {
            return match e {
                SyncError::Source(_) => Exit::ConnectionHost1,
                SyncError::Destination(_) => Exit::ConnectionHost2,
                SyncError::OverQuota { .. } => Exit::OverQuota,
                SyncError::Mapping(_) | SyncError::Journal(JournalError::Locked(_)) => Exit::CatchAll,
                SyncError::Journal(_) => Exit::NoInput,
            };
        }
        if let Some(e) = cause.downcast_ref::<JournalError>() {
            return if matches!(e, JournalError::Locked(_)) {
                Exit::CatchAll
            } else {
                Exit::NoInput
            };
        }
    }
    Exit::CatchAll
}

/// The hint of the first cause that has one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    if let Some(h) = err.downcast_ref::<super::CliError>().and_then(|e| e.hint.clone()) {
        return Some(h);
    }
    err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<crate::workflow::WorkflowError>() {
            return workflow_hint(e);
        }
        if let Some(e) = cause.downcast_ref::<ImapError>() {
            return e.hint();
        }
        cause
            .downcast_ref::<super::CliError>()
            .and_then(|e| e.hint.clone())
    })
}

/// What to do about a workflow failure.
pub fn workflow_hint(e: &crate::workflow::WorkflowError) -> Option<String> {
    use crate::workflow::WorkflowError as W;
    Some(match e {
        W::AdminKeyRefused => "check the key: $OFFBOARD_ADMIN_KEY, [bluemind] key_file, or run `offboard login` again".into(),
        W::DomainUnknown(_) => "give the mail domain as users' addresses spell it (--domain example.com)".into(),
        W::UserUnknown { .. } => "give the login (bertrand) or an address (bertrand@example.com) of an existing user".into(),
        W::SameUser(_) => "the successor must be another user".into(),
        W::Suspended { .. } => "BlueMind refuses IMAP to suspended users: reactivate the user for the hand-over, then suspend again".into(),
        W::SuRefused { role: "leaver", .. } => {
            "grant the admin the Sudo role (or use admin0's key), or allow a reset of the leaver's password with --reset-password".into()
        }
        W::SuRefused { .. } => "grant the admin the Sudo role, or use admin0's key".into(),
        W::Imap { source, .. } => return source.hint(),
        W::Interrupted => "run the same command again: it resumes where it stopped".into(),
        W::QuotaTooSmall { .. } => "raise the successor's quota in the BlueMind console, or copy what fits with --allow-partial".into(),
        W::Busy { .. } => "one run per person at a time: run this one again once the other has ended".into(),
        W::NotVerified(_) => "run `offboard close` again once the copy goes through (the report says what failed)".into(),
        W::RunUnknown(_) => "`offboard runs` lists the runs this state directory holds".into(),
        W::NotAsWritten(_) => "the report lists each change and its error; a re-run retries what is left".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::{Exit, TABLE, markdown};

    /// Every variant (the match is exhaustive: a new one must be added here, and so to the
    /// table), each once, in the order of their codes.
    #[test]
    fn the_table_lists_every_code_once_in_order() {
        let every = |e: Exit| match e {
            Exit::Ok
            | Exit::CatchAll
            | Exit::Signal
            | Exit::Connection
            | Exit::Tls
            | Exit::Authentication
            | Exit::Usage
            | Exit::NoInput
            | Exit::Internal
            | Exit::SubfolderMissing
            | Exit::AdminKey
            | Exit::DomainUnknown
            | Exit::UserUnknown
            | Exit::SameUser
            | Exit::UserSuspended
            | Exit::SuRefused
            | Exit::NeedsConfirmation
            | Exit::GrantsFailed
            | Exit::BlueMind
            | Exit::Busy
            | Exit::QuotaTooSmall
            | Exit::StepsFailed
            | Exit::NotVerified
            | Exit::RunUnknown
            | Exit::DoctorWarnings
            | Exit::DoctorFailures
            | Exit::BatchFailed
            | Exit::Config
            | Exit::ConnectionHost1
            | Exit::ConnectionHost2
            | Exit::WithErrors
            | Exit::OverQuota
            | Exit::AppendFailed
            | Exit::FetchFailed
            | Exit::CreateFailed
            | Exit::SelectFailed
            | Exit::AuthUser1
            | Exit::AuthUser2 => e.code(),
        };
        let codes: Vec<u8> = TABLE.iter().map(|(e, _)| every(*e)).collect();
        assert_eq!(codes.len(), 38, "a variant is missing from the table");
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
        assert!(
            TABLE
                .iter()
                .all(|(e, m)| !m.is_empty() && Exit::from_code(e.code()) == Some(*e))
        );
    }

    /// The README's table is this one, word for word.
    #[test]
    fn the_readme_lists_the_same_exit_codes() {
        let readme = include_str!("../../README.md");
        let table = markdown();
        assert!(
            readme.contains(&table),
            "README.md \"Exit codes\" must hold exactly this table:\n{table}"
        );
    }
}
