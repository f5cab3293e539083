//! `offboard undo RUN-ID`: puts back, from a run's journal, what the run changed and what is
//! still as the run left it — newest change first, so a suspension is lifted before anything
//! else. Each change is compared with BlueMind as it is now, never replayed blindly: an ACL
//! is compared per subject with the implied verbs expanded (BlueMind 5 expands them on read,
//! and adds `SendAs` to a mailshare `Write` by itself), and only that subject's entries are
//! put back. What changed since is left alone and said; what cannot come back is said too.

use super::grants::{names, verbs_of, with_subject};
use super::report::{Action, Change, ChangeStatus};
use bluemind_api::{ApiError, Client, Forwarding, Vacation, Verb};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What became of one change.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UndoItem {
    /// The change's kind.
    pub action: Action,
    /// Its target.
    pub target: String,
    /// For people.
    pub label: String,
    /// `reverted`, `planned` (dry run), `already` (back as before), `changed_since` (left
    /// alone), `irreversible`, `not_applied` (the run never made it), `failed`.
    pub status: String,
    /// Why, or what is there now.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Everything an undo needs to reach BlueMind.
pub(super) struct Undo<'a> {
    pub admin: &'a Client,
    pub domain_uid: &'a str,
    pub dry_run: bool,
}

/// The verbs a list gives, every implied one included.
fn closure(v: &[Verb]) -> Vec<Verb> {
    Verb::ALL
        .into_iter()
        .filter(|x| v.iter().any(|h| h.implies(*x)))
        .collect()
}

fn parse_verbs(v: &Value) -> Vec<Verb> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Whether two vacations are the same in what matters (BlueMind keeps dates to the second).
fn same_vacation(a: &Value, b: &Value) -> bool {
    let (Ok(a), Ok(b)) = (
        serde_json::from_value::<Vacation>(a.clone()),
        serde_json::from_value::<Vacation>(b.clone()),
    ) else {
        return false;
    };
    let sec = |v: Option<i64>| v.map(|x| x / 1000);
    a.enabled == b.enabled
        && sec(a.start) == sec(b.start)
        && sec(a.end) == sec(b.end)
        && a.subject == b.subject
        && a.text == b.text
}

fn same_forwarding(a: &Value, b: &Value) -> bool {
    let (Ok(a), Ok(b)) = (
        serde_json::from_value::<Forwarding>(a.clone()),
        serde_json::from_value::<Forwarding>(b.clone()),
    ) else {
        return false;
    };
    let mut ae = a.emails.clone();
    let mut be = b.emails.clone();
    ae.sort();
    be.sort();
    a.enabled == b.enabled && a.local_copy == b.local_copy && ae == be
}

impl Undo<'_> {
    /// Reverts one change (or says what it would do).
    pub async fn revert(&self, c: &Change) -> UndoItem {
        let mut item = UndoItem {
            action: c.action,
            target: c.target.clone(),
            label: c.label.clone(),
            status: String::new(),
            detail: String::new(),
        };
        if c.status != ChangeStatus::Applied {
            item.status = "not_applied".into();
            return item;
        }
        if !c.action.reversible() {
            item.status = "irreversible".into();
            item.detail = match c.action {
                Action::Password => {
                    "his password stays a random one: set a new one in BlueMind if he comes back"
                }
                Action::ApiKeyDeleted => "a deleted key cannot come back: he makes a new one",
                _ => "the phone must pair again",
            }
            .into();
            return item;
        }
        match self.revert_one(c).await {
            Ok((status, detail)) => {
                item.status = status.into();
                item.detail = detail;
            }
            Err(e) => {
                item.status = "failed".into();
                item.detail = e.to_string();
            }
        }
        item
    }

    async fn revert_one(&self, c: &Change) -> Result<(&'static str, String), ApiError> {
        let (admin, d) = (self.admin, self.domain_uid);
        let done = if self.dry_run { "planned" } else { "reverted" };
        match c.action {
            Action::Acl => {
                let subject = c.subject.clone().unwrap_or_default();
                let acl = admin.get_acl(&c.target).await?;
                let now = verbs_of(&acl, &subject);
                let (before, after) = (parse_verbs(&c.before), parse_verbs(&c.after));
                if closure(&now) == closure(&before) {
                    return Ok(("already", String::new()));
                }
                if closure(&now) != closure(&after) {
                    return Ok(("changed_since", format!("now [{}]", names(&now).join(", "))));
                }
                if self.dry_run {
                    return Ok((
                        done,
                        format!("[{}] → [{}]", names(&now).join(", "), names(&before).join(", ")),
                    ));
                }
                let owner_implicit = match c.target.strip_prefix("mailbox:acls-") {
                    Some(owner) => admin
                        .dir_entry(d, owner)
                        .await?
                        .filter(|e| e.kind == "USER")
                        .map(|_| owner.to_string()),
                    None => None,
                };
                admin
                    .set_acl(
                        &c.target,
                        &with_subject(&acl, owner_implicit.as_deref(), &subject, &before),
                    )
                    .await?;
                let back = verbs_of(&admin.get_acl(&c.target).await?, &subject);
                if closure(&back) == closure(&before) {
                    Ok((done, String::new()))
                } else {
                    Ok(("failed", format!("read back [{}]", names(&back).join(", "))))
                }
            }
            Action::Subscription => {
                let subject = c.subject.clone().unwrap_or_default();
                let kind = if c.target.starts_with("calendar:") {
                    "calendar"
                } else if c.target.starts_with("book:") {
                    "addressbook"
                } else {
                    "mailboxacl"
                };
                let subscribed = admin
                    .subscriptions(d, &subject, kind)
                    .await?
                    .iter()
                    .any(|s| s.container_uid == c.target);
                if !subscribed {
                    return Ok(("already", String::new()));
                }
                if !self.dry_run {
                    admin
                        .unsubscribe(d, &subject, std::slice::from_ref(&c.target))
                        .await?;
                }
                Ok((done, String::new()))
            }
            Action::Vacation => {
                let now = serde_json::to_value(admin.vacation(d, &c.target).await?).unwrap_or_default();
                if same_vacation(&now, &c.before) {
                    return Ok(("already", String::new()));
                }
                if !same_vacation(&now, &c.after) {
                    return Ok(("changed_since", "the auto-reply was changed since".into()));
                }
                if !self.dry_run {
                    let before: Vacation = serde_json::from_value(c.before.clone()).unwrap_or_default();
                    admin.set_vacation(d, &c.target, &before).await?;
                }
                Ok((done, String::new()))
            }
            Action::Forwarding => {
                let now = serde_json::to_value(admin.forwarding(d, &c.target).await?).unwrap_or_default();
                if same_forwarding(&now, &c.before) {
                    return Ok(("already", String::new()));
                }
                if !same_forwarding(&now, &c.after) {
                    return Ok(("changed_since", "the forwarding was changed since".into()));
                }
                if !self.dry_run {
                    let before: Forwarding = serde_json::from_value(c.before.clone()).unwrap_or_default();
                    admin.set_forwarding(d, &c.target, &before).await?;
                }
                Ok((done, String::new()))
            }
            Action::RuleUpdate | Action::RuleCreate => {
                let Some((mbox, id)) = c
                    .target
                    .rsplit_once('/')
                    .and_then(|(m, i)| Some((m, i.parse::<i64>().ok()?)))
                else {
                    return Ok(("failed", "no rule id in the journal".into()));
                };
                let rules = admin.mailbox_rules(d, mbox).await?;
                let Some(now) = rules.iter().find(|r| r["id"].as_i64() == Some(id)) else {
                    return Ok(if c.action == Action::RuleCreate {
                        ("already", "the rule is gone".into())
                    } else {
                        ("changed_since", "the rule was deleted since".into())
                    });
                };
                if c.action == Action::RuleCreate {
                    if !self.dry_run {
                        admin.delete_rule(d, mbox, id).await?;
                    }
                    return Ok((done, "rule deleted".into()));
                }
                if now["active"] == c.before["active"] {
                    return Ok(("already", String::new()));
                }
                if now["active"] != c.after["active"] {
                    return Ok(("changed_since", "the rule was changed since".into()));
                }
                if !self.dry_run {
                    let mut rule = now.clone();
                    rule["active"] = c.before["active"].clone();
                    admin.update_rule(d, mbox, id, &rule).await?;
                }
                Ok((done, String::new()))
            }
            Action::DelegationRule => {
                let now = admin.delegation_rule(d, &c.target).await?;
                let uids = |v: &Value| {
                    let mut u: Vec<String> =
                        serde_json::from_value(v["delegateUids"].clone()).unwrap_or_default();
                    u.sort();
                    u
                };
                let now_uids = uids(&json!(now));
                if now_uids == uids(&c.before) {
                    return Ok(("already", String::new()));
                }
                if now_uids != uids(&c.after) {
                    return Ok(("changed_since", "the delegation rule was changed since".into()));
                }
                if !self.dry_run {
                    let before = serde_json::from_value(c.before.clone()).unwrap_or_default();
                    admin.set_delegation_rule(d, &c.target, &before).await?;
                }
                Ok((done, String::new()))
            }
            Action::Hidden | Action::Archived => {
                let hidden = c.action == Action::Hidden;
                let Some(mut user) = admin.user_complete(d, &c.target).await? else {
                    return Ok(("failed", "the leaver is gone from BlueMind".into()));
                };
                let now = json!(if hidden {
                    user.value.hidden
                } else {
                    user.value.archived
                });
                if now == c.before {
                    return Ok(("already", String::new()));
                }
                if now != c.after {
                    return Ok(("changed_since", String::new()));
                }
                if !self.dry_run {
                    let before = c.before.as_bool().unwrap_or(false);
                    if hidden {
                        user.value.hidden = before;
                    } else {
                        user.value.archived = before;
                    }
                    admin.update_user(d, &c.target, &user.value).await?;
                }
                Ok((done, String::new()))
            }
            Action::Password | Action::ApiKeyDeleted | Action::DeviceUnpaired => {
                Ok(("irreversible", String::new()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluemind_api::AccessControlEntry;

    fn ace(subject: &str, verb: Verb) -> AccessControlEntry {
        AccessControlEntry::new(subject, verb)
    }

    #[test]
    fn an_acl_undo_touches_only_the_subject_and_compares_implied_verbs() {
        // BlueMind 5 expanded Write, and the mailshare sanitizer added SendAs.
        let now = vec![
            ace("helene", Verb::All),
            ace("nathalie", Verb::Write),
            ace("nathalie", Verb::Read),
            ace("nathalie", Verb::SendAs),
            ace("nathalie", Verb::SendOnBehalf),
        ];
        let after_as_journalled = [Verb::SendAs, Verb::Write];
        assert_eq!(
            closure(&verbs_of(&now, "nathalie")),
            closure(&after_as_journalled)
        );
        let back = with_subject(&now, None, "nathalie", &[]);
        assert_eq!(back, vec![ace("helene", Verb::All)]);
        // On a user's mailbox the owner's synthetic entries are not written back.
        let back = with_subject(&now, Some("helene"), "nathalie", &[Verb::Read]);
        assert_eq!(back, vec![ace("nathalie", Verb::Read)]);
        // Read is not Write: a changed ACL is seen.
        assert_ne!(closure(&[Verb::Read]), closure(&after_as_journalled));
    }

    #[test]
    fn vacations_compare_to_the_second_and_on_what_matters() {
        let a = json!({"enabled": true, "start": 1_000_999, "end": 2_000_000, "subject": "s", "text": "t"});
        let b = json!({"enabled": true, "start": 1_000_000, "end": 2_000_000, "subject": "s", "text": "t", "textHtml": null});
        assert!(same_vacation(&a, &b));
        let c = json!({"enabled": false, "start": 1_000_000, "end": 2_000_000, "subject": "s", "text": "t"});
        assert!(!same_vacation(&a, &c));
        assert!(same_forwarding(
            &json!({"enabled": true, "localCopy": true, "emails": ["b", "a"]}),
            &json!({"enabled": true, "localCopy": true, "emails": ["a", "b"]})
        ));
    }
}
