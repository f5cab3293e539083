//! The leaver's rights on other people's calendars and shared mailboxes, and the delegation
//! rules that copy someone's invitations to him: always reported; with
//! `--transfer-delegations`, given to the successor — the same verbs he holds directly (a
//! right he has through a group stays with the group), and his place in each delegation rule.
//!
//! On a mailshare BlueMind adds `SendAs` to a `Write` grant by itself: the read-back, not the
//! request, is what the journal keeps.

use super::WorkflowError;
use super::audit::AuditReport;
use super::departure::{Ctx, Pending, StepOut};
use super::grants::{grant, names, verbs_of};
use super::report::Action;
use bluemind_api::Verb;
use serde_json::json;

pub(super) async fn apply(
    ctx: &Ctx<'_>,
    audit: &AuditReport,
    transfer: bool,
    out: &mut StepOut,
) -> Result<(), WorkflowError> {
    let (admin, pre) = (ctx.admin, ctx.pre);
    let (d, me, her) = (
        pre.domain_uid.as_str(),
        pre.leaver.uid.as_str(),
        pre.successor.uid.as_str(),
    );
    if audit.rights_on_others.is_empty() && audit.delegated_by.is_empty() {
        out.note("he holds no delegation");
        return Ok(());
    }
    if !transfer {
        for r in &audit.rights_on_others {
            out.note(format!(
                "he holds {} on {} ({}): kept with him (--transfer-delegations gives it to {})",
                r.verbs.join(", "),
                r.name,
                r.kind,
                pre.successor.login
            ));
        }
        for r in &audit.delegated_by {
            out.note(format!(
                "{}'s invitations are copied to him: unchanged (--transfer-delegations names {} instead)",
                r.delegator_name, pre.successor.login
            ));
        }
        return Ok(());
    }
    let mut failed = 0;
    for r in &audit.rights_on_others {
        let acl = admin.get_acl(&r.container).await?;
        let his: Vec<Verb> = verbs_of(&acl, me);
        if his.is_empty() {
            out.note(format!(
                "{} ({}): his rights come from a group; nothing to give",
                r.name, r.kind
            ));
            continue;
        }
        let hers = verbs_of(&acl, her);
        let missing: Vec<Verb> = his
            .iter()
            .copied()
            .filter(|v| !hers.iter().any(|h| h.implies(*v)))
            .collect();
        if missing.is_empty() {
            out.note(format!(
                "{} ({}): she already holds {}",
                r.name,
                r.kind,
                names(&his).join(", ")
            ));
            continue;
        }
        // A user's mailbox: the owner's entries are implicit (synthetic on BlueMind 5).
        let owner_implicit = (r.kind == "mailboxacl"
            && admin
                .dir_entry(d, &r.subject)
                .await
                .ok()
                .flatten()
                .is_some_and(|e| e.kind == "USER"))
        .then_some(r.subject.as_str());
        out.note(format!(
            "{} ({}): {} for {} {}",
            r.name,
            r.kind,
            names(&missing).join(", "),
            pre.successor.login,
            if ctx.s.dry_run { "would be added" } else { "added" }
        ));
        let mut planned = hers.clone();
        planned.extend(&missing);
        let i = out.change(
            ctx,
            Pending {
                step: "delegations",
                action: Action::Acl,
                target: r.container.clone(),
                label: format!("{} ({})", r.name, r.kind),
                subject: Some(her.to_string()),
                before: json!(names(&hers)),
                after: json!(names(&planned)),
            },
        );
        if ctx.s.dry_run {
            continue;
        }
        let done = grant(admin, &r.container, &acl, owner_implicit, her, &missing).await;
        match out.check(i, done) {
            Ok(done) => {
                out.read_back(i, json!(names(&done.after)));
                if !done.verified {
                    out.failed(i, "the ACL read back does not hold what was written");
                    failed += 1;
                }
            }
            Err(_) => failed += 1,
        }
    }
    for r in &audit.delegated_by {
        let Some(before) = admin.delegation_rule(d, &r.delegator).await? else {
            continue;
        };
        let mut after = before.clone();
        after.delegate_uids.retain(|u| u != me);
        if !after.delegate_uids.iter().any(|u| u == her) {
            after.delegate_uids.push(her.to_string());
        }
        out.note(format!(
            "{}'s invitations {} copied to {} instead of him",
            r.delegator_name,
            if ctx.s.dry_run { "would be" } else { "are" },
            pre.successor.login
        ));
        let i = out.change(
            ctx,
            Pending {
                step: "delegations",
                action: Action::DelegationRule,
                target: r.delegator.clone(),
                label: format!("delegation rule of {}", r.delegator_name),
                subject: None,
                before: serde_json::to_value(&before).unwrap_or_default(),
                after: serde_json::to_value(&after).unwrap_or_default(),
            },
        );
        if ctx.s.dry_run {
            continue;
        }
        if out
            .check(i, admin.set_delegation_rule(d, &r.delegator, &after).await)
            .is_err()
        {
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(WorkflowError::NotAsWritten(format!("{failed} delegation(s)")));
    }
    Ok(())
}
