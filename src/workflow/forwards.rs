//! Forwards: what sends the leaver's mail outside the organisation is switched off (kept, not
//! deleted: the journal and BlueMind both keep the evidence), and, when asked, his mail is
//! forwarded to the successor for a while by a rule that expires by itself.
//!
//! BlueMind's forwarding has no expiry field, so the successor's forward is a `GENERIC` rule
//! with a `RANGE` condition on `date` and a `REDIRECT` action: the server stops it at the end
//! (against the incoming `Date:` header, like the auto-reply).

use super::WorkflowError;
use super::departure::{Ctx, Pending, StepOut, is_external, rule_targets};
use super::report::Action;
use bluemind_api::Forwarding;
use serde_json::{Value, json};

fn is_ours(rule: &Value) -> bool {
    rule["name"]
        .as_str()
        .is_some_and(|n| n.starts_with(super::credentials::KEY_PREFIX))
}

/// Switches off the forwarding and the active rules that send mail outside. With `all`
/// (at close), every forwarding and the rules this tool made are switched off too.
pub(super) async fn switch_off(ctx: &Ctx<'_>, all: bool, out: &mut StepOut) -> Result<(), WorkflowError> {
    let (pre, d) = (ctx.pre, ctx.pre.domain_uid.as_str());
    let me = pre.leaver.uid.as_str();
    let outside = |a: &str| is_external(a, &pre.domain_names);
    let before = ctx.admin.forwarding(d, me).await?;
    let leaking = before.emails.iter().any(|e| outside(e));
    if before.enabled && (leaking || all) {
        let wanted = Forwarding {
            enabled: false,
            ..before.clone()
        };
        out.note(format!(
            "forwarding to {} {}",
            before.emails.join(", "),
            if ctx.s.dry_run {
                "would be switched off"
            } else {
                "switched off"
            }
        ));
        let i = out.change(
            ctx,
            Pending {
                step: "forwards",
                action: Action::Forwarding,
                target: me.to_string(),
                label: format!("forwarding of {}", pre.leaver.login),
                subject: None,
                before: serde_json::to_value(&before).unwrap_or_default(),
                after: serde_json::to_value(&wanted).unwrap_or_default(),
            },
        );
        if !ctx.s.dry_run {
            out.check(i, ctx.admin.set_forwarding(d, me, &wanted).await)?;
            let back = ctx.admin.forwarding(d, me).await?;
            out.read_back(i, serde_json::to_value(&back).unwrap_or_default());
            if back.enabled {
                out.failed(i, "the forwarding read back is still on");
                return Err(WorkflowError::NotAsWritten("forwarding".into()));
            }
        }
    } else if before.enabled {
        out.note(format!(
            "forwarding to {} kept: inside the organisation",
            before.emails.join(", ")
        ));
    }
    for rule in ctx.admin.mailbox_rules(d, me).await? {
        if matches!(rule["type"].as_str(), Some("FORWARD" | "VACATION")) || rule["active"] == json!(false) {
            continue;
        }
        let targets = rule_targets(&rule);
        if targets.is_empty() {
            continue;
        }
        let name = rule["name"].as_str().unwrap_or_default().to_string();
        let external = targets.iter().any(|(_, t)| outside(t));
        if !(external || (all && is_ours(&rule))) {
            out.note(format!(
                "rule {name:?} kept: it sends mail inside the organisation"
            ));
            continue;
        }
        let Some(id) = rule["id"].as_i64() else {
            out.note(format!(
                "rule {name:?} sends mail outside but has no id: switch it off in BlueMind"
            ));
            continue;
        };
        let mut wanted = rule.clone();
        wanted["active"] = json!(false);
        out.note(format!(
            "rule {name:?} → {} {}",
            targets
                .iter()
                .map(|t| t.1.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if ctx.s.dry_run {
                "would be switched off"
            } else {
                "switched off"
            }
        ));
        let i = out.change(
            ctx,
            Pending {
                step: "forwards",
                action: Action::RuleUpdate,
                target: format!("{me}/{id}"),
                label: format!("rule {name:?}"),
                subject: None,
                before: rule.clone(),
                after: wanted.clone(),
            },
        );
        if !ctx.s.dry_run {
            out.check(i, ctx.admin.update_rule(d, me, id, &wanted).await)?;
        }
    }
    Ok(())
}

/// `yyyy-MM-dd HH:mm:ss`, as BlueMind's RANGE conditions hold dates (in the server's zone;
/// UTC is written, a few hours' difference at most).
fn range_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The self-expiring forward to the successor, as BlueMind's rule JSON.
pub fn successor_rule(run_id: &str, to: &str, from: chrono::DateTime<chrono::Utc>, days: u32) -> Value {
    let until = from + chrono::Duration::days(i64::from(days));
    json!({"client": "offboard", "type": "GENERIC", "trigger": "IN", "active": true,
        "name": format!("{}{run_id} forward", super::credentials::KEY_PREFIX), "stop": false,
        "conditions": [{"operator": "AND", "negate": false, "conditions": [],
            "filter": {"operator": "RANGE", "fields": ["date"], "lowerBound": range_date(from),
                       "upperBound": range_date(until), "inclusive": true}}],
        "actions": [{"name": "REDIRECT", "emails": [to], "keepCopy": true}]})
}

/// Forwards the leaver's mail to the successor for `days` days (a copy stays in his mailbox).
pub(super) async fn to_successor(ctx: &Ctx<'_>, days: u32, out: &mut StepOut) -> Result<(), WorkflowError> {
    let (pre, d) = (ctx.pre, ctx.pre.domain_uid.as_str());
    let me = pre.leaver.uid.as_str();
    let to = pre.successor.email.as_str();
    let existing = ctx.admin.mailbox_rules(d, me).await?;
    if existing
        .iter()
        .any(|r| is_ours(r) && r["active"] != json!(false) && rule_targets(r).iter().any(|(_, t)| t == to))
    {
        out.note(format!("already forwarded to {to} by an earlier run"));
        return Ok(());
    }
    let rule = successor_rule(&ctx.s.run_id, to, chrono::Utc::now(), days);
    out.note(format!(
        "mail {} forwarded to {to} for {days} days (a copy stays in his mailbox; the rule expires by itself)",
        if ctx.s.dry_run { "would be" } else { "is" }
    ));
    let i = out.change(
        ctx,
        Pending {
            step: "forward to successor",
            action: Action::RuleCreate,
            target: me.to_string(),
            label: format!("forward to {to}"),
            subject: None,
            before: Value::Null,
            after: rule.clone(),
        },
    );
    if ctx.s.dry_run {
        return Ok(());
    }
    let id = out.check(i, ctx.admin.add_rule(d, me, &rule).await)?;
    let mut after = rule;
    after["id"] = json!(id);
    out.read_back(i, after);
    if let Some(c) = out.changes.get_mut(i) {
        c.target = format!("{me}/{id}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_successor_rule_expires_by_itself_and_keeps_a_copy() {
        let from = chrono::DateTime::from_timestamp(1_764_505_123, 0).unwrap();
        let r = successor_rule("RUN", "n@x", from, 30);
        let f = &r["conditions"][0]["filter"];
        assert_eq!(f["operator"], "RANGE");
        assert_eq!(f["fields"], json!(["date"]));
        assert_eq!(f["lowerBound"], "2025-11-30 12:18:43");
        assert_eq!(f["upperBound"], "2025-12-30 12:18:43");
        assert_eq!(r["actions"][0]["keepCopy"], true);
        assert_eq!(
            rule_targets(&r),
            vec![("REDIRECT".to_string(), "n@x".to_string())]
        );
        assert!(is_ours(&r));
    }
}
