//! Before any change: the admin key works, the domain resolves, both users exist, differ and
//! are not suspended, and the IMAP server answers. Each failure is its own error.

use super::report::PersonReport;
use super::{Settings, WorkflowError};
use crate::imap::Session;
use bluemind_api::{ApiError, Client, ItemValue, User};

/// What preflight found.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// Domain uid (often technical).
    pub domain_uid: String,
    /// Domain as given.
    pub domain_name: String,
    /// The leaver.
    pub leaver: PersonReport,
    /// The successor.
    pub successor: PersonReport,
}

pub(super) async fn check(admin: &Client, s: &Settings) -> Result<Preflight, WorkflowError> {
    match admin.ping().await {
        Err(ApiError::Unauthorized { .. }) => return Err(WorkflowError::AdminKeyRefused),
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    let domain = admin
        .lookup_domain(&s.domain)
        .await?
        .ok_or_else(|| WorkflowError::DomainUnknown(s.domain.clone()))?;
    let leaver = find_user(admin, &domain.uid, &s.domain, &s.leaver, "leaver").await?;
    let successor = find_user(admin, &domain.uid, &s.domain, &s.successor, "successor").await?;
    if leaver.uid == successor.uid {
        return Err(WorkflowError::SameUser(leaver.value.login.clone()));
    }
    for (role, u) in [("leaver", &leaver), ("successor", &successor)] {
        if u.value.archived {
            return Err(WorkflowError::Suspended {
                role,
                name: u.value.login.clone(),
            });
        }
    }
    // IMAP answers (greeting, TLS): no login needed yet.
    Session::open(&s.imap)
        .await
        .map_err(|source| WorkflowError::Imap {
            host: s.imap.host.clone(),
            source,
        })?;
    Ok(Preflight {
        domain_uid: domain.uid.clone(),
        domain_name: s.domain.clone(),
        leaver: person(&leaver, &s.domain),
        successor: person(&successor, &s.domain),
    })
}

async fn find_user(
    admin: &Client,
    domain_uid: &str,
    domain: &str,
    name: &str,
    role: &'static str,
) -> Result<ItemValue<User>, WorkflowError> {
    let found = if name.contains('@') {
        admin.user_by_email(domain_uid, name).await?
    } else {
        admin.user_by_login(domain_uid, name).await?
    };
    found
        .filter(|u| !u.value.system)
        .ok_or_else(|| WorkflowError::UserUnknown {
            role,
            name: name.into(),
            domain: domain.into(),
        })
}

fn person(u: &ItemValue<User>, domain: &str) -> PersonReport {
    PersonReport {
        uid: u.uid.clone(),
        login: u.value.login.clone(),
        email: u
            .value
            .default_email()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}@{domain}", u.value.login)),
        display_name: u.display_name.clone().unwrap_or_else(|| u.value.login.clone()),
    }
}
