//! The leaver's calendars and address books, shared with the successor: `Read`, never
//! `ReadExtended` (private events stay private), merged into each ACL (a PUT replaces the
//! whole list), read back and verified like the mailbox grants; then she is subscribed,
//! which no BlueMind hook does for calendars and books. The free/busy container follows the
//! default calendar by itself (a BlueMind hook).

use super::WorkflowError;
use super::departure::{Ctx, Pending, StepOut};
use super::grants::{grant, names, verbs_of};
use super::report::Action;
use bluemind_api::{ContainerQuery, ContainerSubscription, Verb};
use serde_json::json;

pub(super) async fn apply(ctx: &Ctx<'_>, out: &mut StepOut) -> Result<(), WorkflowError> {
    let (admin, pre) = (ctx.admin, ctx.pre);
    let (d, me, her) = (
        pre.domain_uid.as_str(),
        pre.leaver.uid.as_str(),
        pre.successor.uid.as_str(),
    );
    let mut failed = 0;
    for kind in ["calendar", "addressbook"] {
        let q = ContainerQuery {
            kind: Some(kind.into()),
            verb: None,
            owner: Some(me.into()),
        };
        let owned: Vec<_> = admin
            .containers_for_user(d, me, &q)
            .await?
            .into_iter()
            .filter(|c| c.owner == me)
            .collect();
        let subscribed: Vec<String> = admin
            .subscriptions(d, her, kind)
            .await?
            .into_iter()
            .map(|s| s.container_uid)
            .collect();
        for c in owned {
            let label = format!(
                "{} {:?}",
                if kind == "calendar" {
                    "calendar"
                } else {
                    "address book"
                },
                c.name
            );
            let acl = admin.get_acl(&c.uid).await?;
            let had = verbs_of(&acl, her);
            if had.iter().any(|v| v.implies(Verb::Read)) {
                out.note(format!(
                    "{label}: she can already read it ({})",
                    names(&had).join(", ")
                ));
            } else {
                out.note(format!(
                    "{label}: Read for {} {}",
                    pre.successor.login,
                    if ctx.s.dry_run { "would be added" } else { "added" }
                ));
                let i = out.change(
                    ctx,
                    Pending {
                        step: "calendars and contacts",
                        action: Action::Acl,
                        target: c.uid.clone(),
                        label: label.clone(),
                        subject: Some(her.to_string()),
                        before: json!(names(&had)),
                        after: json!(["Read"]),
                    },
                );
                if !ctx.s.dry_run {
                    let Ok(done) = out.check(i, grant(admin, &c.uid, &acl, None, her, &[Verb::Read]).await)
                    else {
                        failed += 1;
                        continue;
                    };
                    out.read_back(i, json!(names(&done.after)));
                    if !done.verified || done.after.iter().any(|v| v.implies(Verb::ReadExtended)) {
                        out.failed(i, "the ACL read back does not hold what was written");
                        failed += 1;
                        continue;
                    }
                }
            }
            if subscribed.contains(&c.uid) {
                continue;
            }
            let i = out.change(
                ctx,
                Pending {
                    step: "calendars and contacts",
                    action: Action::Subscription,
                    target: c.uid.clone(),
                    label: format!("{} subscribed to {label}", pre.successor.login),
                    subject: Some(her.to_string()),
                    before: json!(false),
                    after: json!(true),
                },
            );
            if !ctx.s.dry_run {
                let sub = ContainerSubscription {
                    container_uid: c.uid.clone(),
                    offline_sync: true,
                    automount: true,
                };
                if out.check(i, admin.subscribe(d, her, &[sub]).await).is_err() {
                    failed += 1;
                }
            }
        }
    }
    if failed > 0 {
        return Err(WorkflowError::NotAsWritten(format!(
            "{failed} calendar or address book share(s)"
        )));
    }
    Ok(())
}
