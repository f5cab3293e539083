//! `offboard audit LEAVER` and the first step of every plan: where the leaver's mail still
//! goes and who can still see it, read only. Each part is read on its own: a part BlueMind
//! refuses or does not have (an older version, a key without the right) becomes a warning,
//! never the end of the audit.

use super::departure::{Ctx, is_external, rule_targets};
use bluemind_api::{AccessControlEntry, ApiError, ContainerQuery, Verb};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// An address mail is sent to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Target {
    /// The address.
    pub address: String,
    /// Outside the domain and its aliases.
    pub external: bool,
}

/// The leaver's forwarding.
#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct ForwardAudit {
    /// On or off.
    pub enabled: bool,
    /// A copy stays in his mailbox.
    pub local_copy: bool,
    /// Where to.
    pub targets: Vec<Target>,
}

/// A rule that sends mail on.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleAudit {
    /// `mailbox` (his) or `domain` (runs before every mailbox's).
    pub scope: String,
    /// Rule id.
    pub id: Option<i64>,
    /// Its name.
    pub name: String,
    /// Active.
    pub active: bool,
    /// `REDIRECT` or `TRANSFER`.
    pub action: String,
    /// Where to.
    pub targets: Vec<Target>,
}

/// Who holds what on a container.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccessAudit {
    /// Container uid.
    pub container: String,
    /// `mailboxacl`, `calendar`, `addressbook`.
    pub kind: String,
    /// The container's name (its owner's, for a mailbox).
    pub name: String,
    /// Who: a user, a group, or `everyone` (a public share).
    pub who: String,
    /// The subject's uid (the domain uid for a public share).
    pub subject: String,
    /// The verbs.
    pub verbs: Vec<String>,
}

/// A delegation rule naming the leaver: invitations to someone else are copied to him.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DelegationAudit {
    /// The delegator's uid (also her mailbox uid).
    pub delegator: String,
    /// Her name.
    pub delegator_name: String,
    /// Her calendar.
    pub calendar: String,
}

/// A mobile device.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceAudit {
    /// Uid.
    pub uid: String,
    /// Identifier and kind.
    pub name: String,
    /// May still synchronise.
    pub partnership: bool,
}

/// Everything the audit found.
#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct AuditReport {
    /// His forwarding.
    pub forwarding: ForwardAudit,
    /// His rules and the domain's that send mail on.
    pub rules: Vec<RuleAudit>,
    /// His mail routing (`internal`, `external`, `none`).
    pub routing: Option<String>,
    /// His addresses outside the domain.
    pub external_addresses: Vec<String>,
    /// His own delegation rule: who gets a copy of his invitations.
    pub delegates: Vec<String>,
    /// Who can see his mailbox, calendars and address books (he aside).
    pub readers: Vec<AccessAudit>,
    /// What he can write to or manage of other people's (mailboxes, mailshares, calendars).
    pub rights_on_others: Vec<AccessAudit>,
    /// Delegation rules of others that name him.
    pub delegated_by: Vec<DelegationAudit>,
    /// The groups he is in.
    pub groups: Vec<String>,
    /// His mobile devices.
    pub devices: Vec<DeviceAudit>,
    /// The names of his own API keys (never the keys), read as him.
    pub api_keys: Vec<String>,
    /// Active forwards and rules sending his mail outside.
    pub leaks: usize,
    /// Parts that could not be read.
    pub warnings: Vec<String>,
}

fn verbs(list: &[Verb]) -> Vec<String> {
    let mut v: Vec<Verb> = list.to_vec();
    v.sort();
    v.dedup();
    // Only the strongest: `Write` says `Read` too.
    let strongest: Vec<Verb> = v
        .iter()
        .copied()
        .filter(|x| !v.iter().any(|o| o != x && o.implies(*x)))
        .collect();
    strongest.iter().map(|x| format!("{x:?}")).collect()
}

/// Names of directory entries, asked once each.
struct Names<'a> {
    ctx: &'a Ctx<'a>,
    known: HashMap<String, String>,
}

impl Names<'_> {
    async fn of(&mut self, uid: &str) -> String {
        if uid == self.ctx.pre.domain_uid {
            return "everyone (public)".into();
        }
        if let Some(n) = self.known.get(uid) {
            return n.clone();
        }
        let name = match self.ctx.admin.dir_entry(&self.ctx.pre.domain_uid, uid).await {
            Ok(Some(e)) => {
                let n = e.display_name.unwrap_or_else(|| uid.to_string());
                if e.kind == "GROUP" {
                    format!("group {n}")
                } else {
                    n
                }
            }
            _ => uid.to_string(),
        };
        self.known.insert(uid.to_string(), name.clone());
        name
    }
}

/// Reads everything; never changes anything.
pub(super) async fn collect(ctx: &Ctx<'_>) -> AuditReport {
    let mut a = AuditReport::default();
    let (admin, pre) = (ctx.admin, ctx.pre);
    let (d, me) = (pre.domain_uid.as_str(), pre.leaver.uid.as_str());
    let domains = &pre.domain_names;
    let warn = |a: &mut AuditReport, what: &str, e: ApiError| a.warnings.push(format!("{what}: {e}"));
    let target = |addr: &str| Target {
        address: addr.to_string(),
        external: is_external(addr, domains),
    };

    match admin.forwarding(d, me).await {
        Ok(f) => {
            a.forwarding = ForwardAudit {
                enabled: f.enabled,
                local_copy: f.local_copy,
                targets: f.emails.iter().map(|e| target(e)).collect(),
            }
        }
        Err(e) => warn(&mut a, "forwarding", e),
    }
    let mine = admin.mailbox_rules(d, me).await;
    let domain = admin.domain_rules(d).await;
    for (scope, rules) in [("mailbox", mine), ("domain", domain)] {
        match rules {
            Ok(rules) => {
                for r in rules {
                    // The forward is reported above; a vacation sends no mail on.
                    if matches!(r["type"].as_str(), Some("FORWARD" | "VACATION")) {
                        continue;
                    }
                    for (action, targets) in group_targets(&r) {
                        a.rules.push(RuleAudit {
                            scope: scope.into(),
                            id: r["id"].as_i64(),
                            name: r["name"].as_str().unwrap_or_default().into(),
                            active: r["active"].as_bool().unwrap_or(true),
                            action,
                            targets: targets.iter().map(|t| target(t)).collect(),
                        });
                    }
                }
            }
            Err(e) => warn(&mut a, &format!("{scope} rules"), e),
        }
    }
    match admin.user_complete(d, me).await {
        Ok(Some(u)) => {
            a.routing = u
                .value
                .extra
                .get("routing")
                .and_then(|r| r.as_str())
                .map(str::to_string);
            a.external_addresses = u
                .value
                .emails
                .iter()
                .map(|e| e.address.clone())
                .filter(|e| is_external(e, domains))
                .collect();
        }
        Ok(None) => {}
        Err(e) => warn(&mut a, "user", e),
    }
    let mut names = Names {
        ctx,
        known: HashMap::new(),
    };
    match admin.delegation_rule(d, me).await {
        Ok(Some(r)) => {
            for uid in &r.delegate_uids {
                a.delegates.push(names.of(uid).await);
            }
        }
        Ok(None) => {}
        Err(e) => warn(&mut a, "delegation rule", e),
    }

    // Who can see what is his: his mailbox, then each calendar and address book he owns.
    let mut owned = vec![(
        format!("mailbox:acls-{me}"),
        "mailboxacl".to_string(),
        "his mailbox".to_string(),
    )];
    for kind in ["calendar", "addressbook"] {
        let q = ContainerQuery {
            kind: Some(kind.into()),
            verb: None,
            owner: Some(me.into()),
        };
        match admin.containers_for_user(d, me, &q).await {
            Ok(list) => owned.extend(
                list.into_iter()
                    .filter(|c| c.owner == me)
                    .map(|c| (c.uid, kind.to_string(), c.name)),
            ),
            Err(e) => warn(&mut a, &format!("his {kind}s"), e),
        }
    }
    for (uid, kind, name) in owned {
        match admin.get_acl(&uid).await {
            Ok(acl) => {
                for (subject, v) in by_subject(&acl) {
                    if subject == me {
                        continue;
                    }
                    a.readers.push(AccessAudit {
                        container: uid.clone(),
                        kind: kind.clone(),
                        name: name.clone(),
                        who: names.of(&subject).await,
                        subject,
                        verbs: verbs(&v),
                    });
                }
            }
            Err(e) => warn(&mut a, &format!("sharing of {name}"), e),
        }
    }

    // What he can write to or manage of other people's.
    for (kind, wanted) in [
        ("mailboxacl", vec![Verb::Write, Verb::Manage, Verb::SendOnBehalf]),
        ("calendar", vec![Verb::Write, Verb::Manage]),
        ("addressbook", vec![Verb::Write, Verb::Manage]),
    ] {
        let q = ContainerQuery {
            kind: Some(kind.into()),
            verb: Some(wanted.clone()),
            owner: None,
        };
        match admin.containers_for_user(d, me, &q).await {
            Ok(list) => {
                for c in list.into_iter().filter(|c| c.owner != me) {
                    // BlueMind lists public shares and owned containers whatever the verbs:
                    // keep what his own verbs really give.
                    if !c.verbs.iter().any(|v| wanted.iter().any(|w| v.implies(*w))) {
                        continue;
                    }
                    let who = names.of(&c.owner).await;
                    a.rights_on_others.push(AccessAudit {
                        container: c.uid.clone(),
                        kind: kind.into(),
                        name: if c.name.is_empty() {
                            who.clone()
                        } else {
                            c.name.clone()
                        },
                        who,
                        subject: c.owner.clone(),
                        verbs: verbs(&c.verbs),
                    });
                }
            }
            Err(e) => warn(&mut a, &format!("his rights on others' {kind}s"), e),
        }
    }
    // Delegation rules of the people whose calendars he can write to.
    let delegators: Vec<(String, String)> = a
        .rights_on_others
        .iter()
        .filter(|r| r.kind == "calendar")
        .map(|r| (r.subject.clone(), r.who.clone()))
        .collect();
    for (owner, who) in delegators {
        match admin.delegation_rule(d, &owner).await {
            Ok(Some(r)) if r.delegate_uids.iter().any(|u| u == me) => a.delegated_by.push(DelegationAudit {
                delegator: owner,
                delegator_name: who,
                calendar: r.delegator_calendar_uid,
            }),
            Ok(_) => {}
            Err(e) => warn(&mut a, &format!("delegation rule of {who}"), e),
        }
    }
    match admin.user_groups(d, me).await {
        Ok(gs) => {
            for g in gs {
                a.groups
                    .push(names.of(&g).await.trim_start_matches("group ").to_string());
            }
        }
        Err(e) => warn(&mut a, "groups", e),
    }
    match admin.devices(me).await {
        Ok(list) => {
            a.devices = list
                .into_iter()
                .map(|x| DeviceAudit {
                    uid: x.uid,
                    name: format!("{} {}", x.value.kind, x.value.identifier)
                        .trim()
                        .to_string(),
                    partnership: x.value.has_partnership,
                })
                .collect()
        }
        Err(e) => warn(&mut a, "devices", e),
    }
    match ctx.leaver_session {
        Some(session) => match session.list_api_keys().await {
            Ok(keys) => {
                a.api_keys = keys
                    .into_iter()
                    .map(|k| k.display_name)
                    .filter(|n| !n.starts_with(super::credentials::KEY_PREFIX))
                    .collect()
            }
            Err(e) => warn(&mut a, "his API keys", e),
        },
        None => a
            .warnings
            .push("his API keys: no session as him (su refused)".into()),
    }
    a.leaks = usize::from(a.forwarding.enabled && a.forwarding.targets.iter().any(|t| t.external))
        + a.rules
            .iter()
            .filter(|r| r.active && r.targets.iter().any(|t| t.external))
            .count();
    a
}

/// A rule's targets grouped by action.
fn group_targets(rule: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (action, addr) in rule_targets(rule) {
        match out.iter_mut().find(|(a, _)| *a == action) {
            Some((_, v)) => v.push(addr),
            None => out.push((action, vec![addr])),
        }
    }
    out
}

/// An ACL as subject → verbs, in the order subjects first appear.
pub(super) fn by_subject(acl: &[AccessControlEntry]) -> Vec<(String, Vec<Verb>)> {
    let mut out: Vec<(String, Vec<Verb>)> = Vec::new();
    for e in acl {
        match out.iter_mut().find(|(s, _)| *s == e.subject) {
            Some((_, v)) => v.push(e.verb),
            None => out.push((e.subject.clone(), vec![e.verb])),
        }
    }
    out
}

impl AuditReport {
    /// The audit in sentences, for people.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let t = |ts: &[Target]| {
            ts.iter()
                .map(|t| {
                    if t.external {
                        format!("{} (OUTSIDE)", t.address)
                    } else {
                        t.address.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.forwarding.enabled {
            out.push(format!(
                "forwarding ON to {}{}",
                t(&self.forwarding.targets),
                if self.forwarding.local_copy {
                    ", keeping a copy"
                } else {
                    ", keeping NO copy"
                }
            ));
        } else {
            out.push("forwarding off".into());
        }
        for r in &self.rules {
            out.push(format!(
                "{} rule {:?} ({}{}) → {}",
                r.scope,
                r.name,
                r.action,
                if r.active { "" } else { ", inactive" },
                t(&r.targets)
            ));
        }
        if let Some(r) = self.routing.as_deref().filter(|r| *r != "internal") {
            out.push(format!("mail routing: {r}"));
        }
        if !self.external_addresses.is_empty() {
            out.push(format!(
                "addresses outside the domain: {}",
                self.external_addresses.join(", ")
            ));
        }
        if !self.delegates.is_empty() {
            out.push(format!(
                "his invitations are copied to: {}",
                self.delegates.join(", ")
            ));
        }
        for r in &self.readers {
            out.push(format!(
                "{} ({}) is shared with {}: {}",
                r.name,
                r.kind,
                r.who,
                r.verbs.join(", ")
            ));
        }
        for r in &self.rights_on_others {
            out.push(format!(
                "he holds {} on {} ({})",
                r.verbs.join(", "),
                r.name,
                r.kind
            ));
        }
        for d in &self.delegated_by {
            out.push(format!(
                "{}'s invitations are copied to him (delegation rule)",
                d.delegator_name
            ));
        }
        if !self.groups.is_empty() {
            out.push(format!("groups: {}", self.groups.join(", ")));
        }
        for d in &self.devices {
            out.push(format!(
                "device {}{}",
                d.name,
                if d.partnership {
                    " (synchronising)"
                } else {
                    " (unpaired)"
                }
            ));
        }
        if !self.api_keys.is_empty() {
            out.push(format!("his own API keys: {}", self.api_keys.join(", ")));
        }
        for w in &self.warnings {
            out.push(format!("not read: {w}"));
        }
        out
    }
}
