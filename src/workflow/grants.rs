//! Read access for the successor to every mailbox the leaver could read (groups included),
//! instead of copying them. An ACL PUT replaces the whole list, so each one is read, merged
//! (never dropping an entry) and read again to verify; then the successor is subscribed,
//! because BlueMind 5 IMAP only shows subscribed shared mailboxes.
//!
//! Exact grants: a mailbox the successor can already read — directly, through one of her
//! groups, or through a public grant — gets no new entry (the report says how she reads it).
//! Each mailbox has its own outcome: one that fails does not stop the others (the run then
//! exits 37). BlueMind 5 returns ACLs with every verb expanded and, on a user's mailbox, a
//! synthetic `{owner, All}` entry (`AclService.java:112-118`): the owner's rights on her own
//! mailbox are implicit, so her entries are never written back as stored rows.

use super::report::{Action, Change, ChangeStatus, GrantReport};
use super::{Settings, WorkflowError, preflight::Preflight};
use bluemind_api::{
    AccessControlEntry, ApiError, Client, ContainerDescriptor, ContainerQuery, ContainerSubscription, Verb,
};
use serde_json::json;
use std::collections::HashSet;

pub(super) fn verbs_of(acl: &[AccessControlEntry], subject: &str) -> Vec<Verb> {
    let mut v: Vec<Verb> = acl
        .iter()
        .filter(|e| e.subject == subject)
        .map(|e| e.verb)
        .collect();
    v.sort();
    v.dedup();
    v
}

pub(super) fn names(v: &[Verb]) -> Vec<String> {
    v.iter().map(|x| format!("{x:?}")).collect()
}

/// The ACL to write: what was read, without the owner's own entries on a user's mailbox
/// (implicit; synthetic on BlueMind 5), plus `verbs` for `grantee`.
pub(super) fn merged(
    acl: &[AccessControlEntry],
    owner_implicit: Option<&str>,
    grantee: &str,
    verbs: &[Verb],
) -> Vec<AccessControlEntry> {
    let mut out: Vec<AccessControlEntry> = acl
        .iter()
        .filter(|e| Some(e.subject.as_str()) != owner_implicit)
        .cloned()
        .collect();
    out.extend(verbs.iter().map(|v| AccessControlEntry::new(grantee, *v)));
    out
}

/// The ACL with `subject`'s entries replaced by `verbs` (for an undo), the owner's implicit
/// entries of a user's mailbox left out.
pub(super) fn with_subject(
    acl: &[AccessControlEntry],
    owner_implicit: Option<&str>,
    subject: &str,
    verbs: &[Verb],
) -> Vec<AccessControlEntry> {
    let others: Vec<AccessControlEntry> = acl.iter().filter(|e| e.subject != subject).cloned().collect();
    merged(&others, owner_implicit, subject, verbs)
}

/// Whether the ACL read back keeps every entry that was there (owner entries of a user's
/// mailbox aside) and gives `grantee` `verb`.
pub(super) fn verified(
    before: &[AccessControlEntry],
    after: &[AccessControlEntry],
    owner_implicit: Option<&str>,
    grantee: &str,
    verb: Verb,
) -> bool {
    let kept = before
        .iter()
        .filter(|e| Some(e.subject.as_str()) != owner_implicit)
        .all(|e| {
            after
                .iter()
                .any(|x| x.subject == e.subject && x.verb.implies(e.verb))
        });
    let given = verbs_of(after, grantee).iter().any(|v| v.implies(verb));
    kept && given
}

/// What an ACL holds for a grantee after [`grant`] wrote it.
pub(super) struct Granted {
    /// The grantee's verbs, as read back.
    pub after: Vec<Verb>,
    /// Whether the read-back keeps every earlier entry and gives each verb asked.
    pub verified: bool,
}

/// Adds `verbs` for `grantee` to the ACL `acl` read from `container`: merged (a PUT replaces
/// the whole list), written, read again and checked.
pub(super) async fn grant(
    admin: &Client,
    container: &str,
    acl: &[AccessControlEntry],
    owner_implicit: Option<&str>,
    grantee: &str,
    verbs: &[Verb],
) -> Result<Granted, ApiError> {
    admin
        .set_acl(container, &merged(acl, owner_implicit, grantee, verbs))
        .await?;
    let back = admin.get_acl(container).await?;
    Ok(Granted {
        after: verbs_of(&back, grantee),
        verified: verbs
            .iter()
            .all(|v| verified(acl, &back, owner_implicit, grantee, *v)),
    })
}

pub(super) async fn apply(
    admin: &Client,
    s: &Settings,
    pre: &Preflight,
) -> Result<Vec<GrantReport>, WorkflowError> {
    let query = ContainerQuery {
        kind: Some("mailboxacl".into()),
        verb: Some(vec![Verb::Read]),
        owner: None,
    };
    let containers = admin
        .containers_for_user(&pre.domain_uid, &pre.leaver.uid, &query)
        .await?;
    // What she can read already, whichever way (BlueMind resolves groups and public grants).
    let readable: HashSet<String> = admin
        .containers_for_user(&pre.domain_uid, &pre.successor.uid, &query)
        .await?
        .into_iter()
        .map(|c| c.uid)
        .collect();
    let subscribed: Vec<String> = admin
        .subscriptions(&pre.domain_uid, &pre.successor.uid, "mailboxacl")
        .await?
        .into_iter()
        .map(|d| d.container_uid)
        .collect();
    let mut out = Vec::new();
    for c in containers {
        // Not the leaver's own mailbox (that is copied), not the successor's own.
        if c.owner == pre.leaver.uid || c.owner == pre.successor.uid || c.kind != "mailboxacl" {
            continue;
        }
        let mut g = GrantReport {
            container: c.uid.clone(),
            mailbox: c.name.clone(),
            kind: "UNKNOWN".into(),
            before: Vec::new(),
            after: Vec::new(),
            status: "failed".into(),
            via: None,
            subscribed: subscribed.contains(&c.uid),
            subscribed_now: false,
            error: None,
        };
        // One mailbox's failure is its own: the others go on.
        if let Err(e) = grant_one(admin, s, pre, &c, readable.contains(&c.uid), &mut g).await {
            g.status = "failed".into();
            g.error = Some(e.to_string());
        }
        out.push(g);
    }
    Ok(out)
}

/// Grants (or plans) Read on one mailbox and subscribes the successor.
async fn grant_one(
    admin: &Client,
    s: &Settings,
    pre: &Preflight,
    c: &ContainerDescriptor,
    readable: bool,
    g: &mut GrantReport,
) -> Result<(), ApiError> {
    let successor = pre.successor.uid.as_str();
    let entry = admin.dir_entry(&pre.domain_uid, &c.owner).await?;
    g.kind = entry
        .as_ref()
        .map(|e| e.kind.clone())
        .unwrap_or_else(|| "UNKNOWN".into());
    if let Some(name) = entry.and_then(|e| e.display_name) {
        g.mailbox = name;
    }
    let owner_implicit = (g.kind == "USER").then_some(c.owner.as_str());
    let acl = admin.get_acl(&c.uid).await?;
    let before = verbs_of(&acl, successor);
    g.before = names(&before);
    g.after = names(&before);
    g.status = "already".into();
    let direct = before.iter().any(|v| v.implies(Verb::Read));
    if !direct && readable {
        // Through a group or a public grant: nothing to add, say which.
        g.via = Some(indirect_grant(admin, pre, &acl, owner_implicit).await);
    } else if !direct {
        let mut after = before.clone();
        after.push(Verb::Read);
        after.sort();
        g.after = names(&after);
        if s.dry_run {
            g.status = "planned".into();
        } else {
            let done = grant(admin, &c.uid, &acl, owner_implicit, successor, &[Verb::Read]).await?;
            g.after = names(&done.after);
            if done.verified {
                g.status = "added".into();
            } else {
                g.status = "failed".into();
                g.error = Some("the ACL read back does not hold what was written".into());
                return Ok(());
            }
        }
    }
    if !g.subscribed {
        if s.dry_run {
            g.subscribed = true;
            g.subscribed_now = true;
        } else {
            let sub = ContainerSubscription {
                container_uid: c.uid.clone(),
                offline_sync: false,
                automount: true,
            };
            match admin.subscribe(&pre.domain_uid, successor, &[sub]).await {
                Ok(()) => {
                    g.subscribed = true;
                    g.subscribed_now = true;
                }
                Err(e) => {
                    g.status = "failed".into();
                    g.error = Some(format!("subscription failed: {e}"));
                }
            }
        }
    }
    Ok(())
}

/// The journal's view of the grants: each ACL entry and subscription this run added.
pub(super) fn changes(grants: &[GrantReport], pre: &Preflight, dry_run: bool) -> Vec<Change> {
    let status = if dry_run {
        ChangeStatus::Planned
    } else {
        ChangeStatus::Applied
    };
    let mut out = Vec::new();
    for g in grants {
        if matches!(g.status.as_str(), "added" | "planned") {
            out.push(Change {
                step: "grants".into(),
                action: Action::Acl,
                target: g.container.clone(),
                label: format!("mailbox {} ({})", g.mailbox, g.kind),
                subject: Some(pre.successor.uid.clone()),
                before: json!(g.before),
                after: json!(g.after),
                status,
                error: None,
            });
        }
        if g.subscribed_now {
            out.push(Change {
                step: "grants".into(),
                action: Action::Subscription,
                target: g.container.clone(),
                label: format!("{} subscribed to {}", pre.successor.login, g.mailbox),
                subject: Some(pre.successor.uid.clone()),
                before: json!(false),
                after: json!(true),
                status,
                error: None,
            });
        }
    }
    out
}

/// How the successor reads a mailbox without an entry of her own: the first group among its
/// ACL's subjects (BlueMind listed it as readable for her, so a group of hers or a public
/// grant gives it), or the public grant.
async fn indirect_grant(
    admin: &Client,
    pre: &Preflight,
    acl: &[AccessControlEntry],
    owner_implicit: Option<&str>,
) -> String {
    for e in acl.iter().filter(|e| e.verb.implies(Verb::Read)) {
        if e.subject == pre.domain_uid {
            return "a public grant".into();
        }
        if Some(e.subject.as_str()) == owner_implicit || e.subject == pre.leaver.uid {
            continue;
        }
        if let Ok(Some(d)) = admin.dir_entry(&pre.domain_uid, &e.subject).await
            && d.kind == "GROUP"
        {
            return format!("group {}", d.display_name.unwrap_or_else(|| e.subject.clone()));
        }
    }
    "an indirect grant".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ace(subject: &str, verb: Verb) -> AccessControlEntry {
        AccessControlEntry::new(subject, verb)
    }

    #[test]
    fn the_owners_synthetic_entry_is_not_written_back_and_nothing_else_is_dropped() {
        // BlueMind 5's read of Hélène's mailbox shared with Bertrand: expanded verbs and the
        // synthetic owner entry.
        let read = vec![
            ace("helene", Verb::All),
            ace("helene", Verb::Write),
            ace("helene", Verb::Read),
            ace("bertrand", Verb::Read),
            ace("bertrand", Verb::Freebusy),
        ];
        let m = merged(&read, Some("helene"), "nathalie", &[Verb::Read]);
        assert!(m.iter().all(|e| e.subject != "helene"), "{m:?}");
        assert!(m.contains(&ace("bertrand", Verb::Read)) && m.contains(&ace("bertrand", Verb::Freebusy)));
        assert!(m.contains(&ace("nathalie", Verb::Read)));
        // A mailshare has no implicit owner: every entry stays.
        let m = merged(&read, None, "nathalie", &[Verb::Read]);
        assert_eq!(m.len(), read.len() + 1);
        // The check ignores the owner's entries of a user's mailbox (the read may add them).
        let after = vec![ace("bertrand", Verb::Read), ace("nathalie", Verb::Read)];
        assert!(verified(&read, &after, Some("helene"), "nathalie", Verb::Read));
        assert!(
            !verified(&read, &after, None, "nathalie", Verb::Read),
            "a dropped entry is caught"
        );
    }
}
