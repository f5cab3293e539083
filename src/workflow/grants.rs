//! Read access for the successor to every mailbox the leaver could read (groups included),
//! instead of copying them. An ACL PUT replaces the whole list, so each one is read, merged
//! (never dropping an entry) and read again to verify; then the successor is subscribed,
//! because BlueMind 5 IMAP only shows subscribed shared mailboxes.

use super::report::GrantReport;
use super::{Settings, WorkflowError, preflight::Preflight};
use bluemind_api::{AccessControlEntry, Client, ContainerQuery, ContainerSubscription, Verb};

fn verbs_of(acl: &[AccessControlEntry], subject: &str) -> Vec<Verb> {
    let mut v: Vec<Verb> = acl
        .iter()
        .filter(|e| e.subject == subject)
        .map(|e| e.verb)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn names(v: &[Verb]) -> Vec<String> {
    v.iter().map(|x| format!("{x:?}")).collect()
}

pub(super) async fn apply(
    admin: &Client,
    s: &Settings,
    pre: &Preflight,
) -> Result<Vec<GrantReport>, WorkflowError> {
    let query = ContainerQuery {
        kind: Some("mailboxacl".into()),
        verb: Some(vec![Verb::Read]),
    };
    let containers = admin
        .containers_for_user(&pre.domain_uid, &pre.leaver.uid, &query)
        .await?;
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
        let entry = admin.dir_entry(&pre.domain_uid, &c.owner).await?;
        let kind = entry
            .as_ref()
            .map(|e| e.kind.clone())
            .unwrap_or_else(|| "UNKNOWN".into());
        let mailbox = entry
            .and_then(|e| e.display_name)
            .unwrap_or_else(|| c.name.clone());
        let acl = admin.get_acl(&c.uid).await?;
        let before = verbs_of(&acl, &pre.successor.uid);
        let mut g = GrantReport {
            container: c.uid.clone(),
            mailbox,
            kind,
            before: names(&before),
            after: names(&before),
            status: "already".into(),
            subscribed: subscribed.contains(&c.uid),
            error: None,
        };
        if !before.iter().any(|v| v.implies(Verb::Read)) {
            let mut after = before.clone();
            after.push(Verb::Read);
            after.sort();
            g.after = names(&after);
            if s.dry_run {
                g.status = "planned".into();
            } else {
                let mut merged = acl.clone();
                merged.push(AccessControlEntry {
                    subject: pre.successor.uid.clone(),
                    verb: Verb::Read,
                });
                match admin.set_acl(&c.uid, &merged).await {
                    Err(e) => {
                        g.status = "failed".into();
                        g.error = Some(e.to_string());
                    }
                    Ok(()) => {
                        let check = admin.get_acl(&c.uid).await?;
                        let kept = acl.iter().all(|e| {
                            check
                                .iter()
                                .any(|x| x.subject == e.subject && x.verb.implies(e.verb))
                        });
                        let read = verbs_of(&check, &pre.successor.uid)
                            .iter()
                            .any(|v| v.implies(Verb::Read));
                        g.after = names(&verbs_of(&check, &pre.successor.uid));
                        if kept && read {
                            g.status = "added".into();
                        } else {
                            g.status = "failed".into();
                            g.error = Some("the ACL read back does not hold what was written".into());
                        }
                    }
                }
            }
        }
        if !g.subscribed && g.status != "failed" {
            if s.dry_run {
                g.subscribed = true;
            } else {
                let sub = ContainerSubscription {
                    container_uid: c.uid.clone(),
                    offline_sync: false,
                    automount: true,
                };
                match admin.subscribe(&pre.domain_uid, &pre.successor.uid, &[sub]).await {
                    Ok(()) => g.subscribed = true,
                    Err(e) => {
                        g.status = "failed".into();
                        g.error = Some(format!("subscription failed: {e}"));
                    }
                }
            }
        }
        out.push(g);
    }
    Ok(out)
}
