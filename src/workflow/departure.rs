//! What the departure steps share: the context they run in, and how each records what it
//! found (notes) and changed (before/after) for the report and the journal.

use super::Settings;
use super::preflight::Preflight;
use super::report::{Action, Change, ChangeStatus};
use bluemind_api::Client;
use serde_json::Value;

/// The world of a departure step.
pub(super) struct Ctx<'a> {
    /// The admin client.
    pub admin: &'a Client,
    /// The run's settings.
    pub s: &'a Settings,
    /// Who and where.
    pub pre: &'a Preflight,
    /// A session as the leaver (su), for what only he can see or do: his own API keys.
    pub leaver_session: Option<&'a Client>,
}

/// What a step found and changed.
#[derive(Debug, Default)]
pub(super) struct StepOut {
    /// One sentence each, for people.
    pub notes: Vec<String>,
    /// Changes, in order.
    pub changes: Vec<Change>,
}

impl StepOut {
    /// A sentence for the report.
    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    /// Records a change: planned in a dry run, else applied. Returns its index, so a failed
    /// write can be marked with [`StepOut::failed`].
    pub fn change(&mut self, ctx: &Ctx<'_>, c: Pending) -> usize {
        self.changes.push(Change {
            step: c.step.into(),
            action: c.action,
            target: c.target,
            label: c.label,
            subject: c.subject,
            before: c.before,
            after: c.after,
            status: if ctx.s.dry_run {
                ChangeStatus::Planned
            } else {
                ChangeStatus::Applied
            },
            error: None,
        });
        self.changes.len() - 1
    }

    /// Marks change `i` failed with `why`.
    pub fn failed(&mut self, i: usize, why: impl Into<String>) {
        if let Some(c) = self.changes.get_mut(i) {
            c.status = ChangeStatus::Failed;
            c.error = Some(why.into());
        }
    }

    /// Marks change `i` failed when the write behind it failed; passes the result on.
    pub fn check<T, E: std::fmt::Display>(&mut self, i: usize, r: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &r {
            self.failed(i, e.to_string());
        }
        r
    }

    /// Sets what a change left, as read back.
    pub fn read_back(&mut self, i: usize, after: Value) {
        if let Some(c) = self.changes.get_mut(i) {
            c.after = after;
        }
    }
}

/// A change about to be made.
pub(super) struct Pending {
    pub step: &'static str,
    pub action: Action,
    pub target: String,
    pub label: String,
    pub subject: Option<String>,
    pub before: Value,
    pub after: Value,
}

/// Whether an address is outside the organisation: its domain is neither the BlueMind
/// domain's uid nor one of its aliases (the test `MailFilterForwardRoleValidator` makes).
pub fn is_external(address: &str, domains: &[String]) -> bool {
    let Some((_, d)) = address.rsplit_once('@') else {
        return false;
    };
    let d = d.trim().trim_end_matches('>').to_ascii_lowercase();
    !domains.iter().any(|x| x.eq_ignore_ascii_case(&d))
}

/// The addresses a rule sends mail to (REDIRECT and TRANSFER actions), and the action.
pub fn rule_targets(rule: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in rule["actions"].as_array().into_iter().flatten() {
        let name = a["name"].as_str().unwrap_or_default();
        if name == "REDIRECT" || name == "TRANSFER" {
            for e in a["emails"].as_array().into_iter().flatten() {
                if let Some(e) = e.as_str() {
                    out.push((name.to_string(), e.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn external_means_outside_the_domain_and_its_aliases() {
        let d = vec![
            "bluemind.loc".to_string(),
            "19d4.internal".into(),
            "example.fr".into(),
        ];
        for (addr, ext) in [
            ("x@bluemind.loc", false),
            ("x@BlueMind.LOC", false),
            ("x@example.fr", false),
            ("x@19d4.internal", false),
            ("x@gmail.com", true),
            ("x@sub.bluemind.loc", true),
            ("no-domain", false),
            ("a@b@proton.me", true),
        ] {
            assert_eq!(is_external(addr, &d), ext, "{addr}");
        }
    }

    #[test]
    fn rule_targets_are_redirects_and_transfers_only() {
        let r = json!({"actions": [{"name": "REDIRECT", "emails": ["a@x"]}, {"name": "MARK_AS_READ"},
            {"name": "TRANSFER", "emails": ["b@y", "c@z"], "asAttachment": true}]});
        let t = rule_targets(&r);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], ("REDIRECT".to_string(), "a@x".to_string()));
        assert!(rule_targets(&json!({"actions": []})).is_empty());
    }
}
