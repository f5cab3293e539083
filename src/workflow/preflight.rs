//! Before any change: the admin key works, the domain resolves, both users exist, differ and
//! are not suspended, the successor's quota can hold the leaver's mail, and the IMAP server
//! answers. Each failure is its own error.

use super::report::{PersonReport, QuotaReport};
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
    /// Every name of the domain (uid, name, aliases): an address elsewhere is outside.
    pub domain_names: Vec<String>,
    /// The leaver.
    pub leaver: PersonReport,
    /// The successor.
    pub successor: PersonReport,
    /// Both quotas, when BlueMind said.
    pub quota: Option<QuotaReport>,
}

pub(super) async fn check(admin: &Client, s: &Settings) -> Result<Preflight, WorkflowError> {
    let domain = key_and_domain(admin, s).await?;
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
    let quota = quota_check(admin, &domain.uid, &leaver.uid, &successor.uid, s).await?;
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
        domain_names: names_of(&domain),
        leaver: person(&leaver, &s.domain),
        successor: person(&successor, &s.domain),
        quota,
    })
}

/// The leaver's whole mailbox lands in the successor's quota: if it cannot fit, stop before
/// anything changes (unless `--allow-partial`). The leaver's usage counts folders that are not
/// copied (Trash, Junk), so the estimate errs on the safe side. BlueMind versions without the
/// endpoint (or an admin without the right) give no answer: the run goes on, and says so.
async fn quota_check(
    admin: &Client,
    domain_uid: &str,
    leaver: &str,
    successor: &str,
    s: &Settings,
) -> Result<Option<QuotaReport>, WorkflowError> {
    let (l, n) = match (
        admin.mailbox_quota(domain_uid, leaver).await,
        admin.mailbox_quota(domain_uid, successor).await,
    ) {
        (Ok(l), Ok(n)) => (l, n),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(
                "the quotas could not be read ({e}); the copy may stop when the successor's mailbox is full"
            );
            return Ok(None);
        }
    };
    let fits = n.free().is_none_or(|free| l.used <= free);
    let report = QuotaReport {
        leaver_used_kib: l.used,
        successor_used_kib: n.used,
        successor_quota_kib: n.quota,
        fits,
    };
    if !fits && !s.allow_partial {
        return Err(WorkflowError::QuotaTooSmall {
            needed_kib: l.used,
            free_kib: n.free().unwrap_or(0),
        });
    }
    Ok(Some(report))
}

/// The admin key works and the domain resolves.
async fn key_and_domain(
    admin: &Client,
    s: &Settings,
) -> Result<ItemValue<bluemind_api::Domain>, WorkflowError> {
    match admin.ping().await {
        Err(ApiError::Unauthorized { .. }) => return Err(WorkflowError::AdminKeyRefused),
        Err(e) => return Err(e.into()),
        Ok(()) => {}
    }
    admin
        .lookup_domain(&s.domain)
        .await?
        .ok_or_else(|| WorkflowError::DomainUnknown(s.domain.clone()))
}

fn names_of(d: &ItemValue<bluemind_api::Domain>) -> Vec<String> {
    let mut v = vec![d.uid.clone(), d.value.name.clone()];
    v.extend(d.value.aliases.iter().cloned());
    v.extend(d.value.default_alias.iter().cloned());
    v.sort();
    v.dedup();
    v
}

/// For `offboard audit`: the admin key, the domain and the leaver only.
pub(super) async fn leaver_only(admin: &Client, s: &Settings) -> Result<Preflight, WorkflowError> {
    let domain = key_and_domain(admin, s).await?;
    let leaver = find_user(admin, &domain.uid, &s.domain, &s.leaver, "leaver").await?;
    Ok(Preflight {
        domain_uid: domain.uid.clone(),
        domain_name: s.domain.clone(),
        domain_names: names_of(&domain),
        leaver: person(&leaver, &s.domain),
        successor: PersonReport::default(),
        quota: None,
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
