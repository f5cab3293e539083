//! Lock now, close later. BlueMind's "archived" bounces the leaver's mail (he leaves the
//! Postfix maps), which would end the auto-reply: so on departure the account is locked in a
//! way that keeps mail flowing — a random password nobody knows, his own API keys revoked
//! (only he can list them: through the su session), his phones unpaired, hidden from the
//! directory — and suspended only by `offboard close`, after a last verified copy and once
//! nothing more needs a session as him (BlueMind refuses su to a suspended user).

use super::WorkflowError;
use super::departure::{Ctx, Pending, StepOut};
use super::report::Action;
use serde_json::json;

/// Locks the account. `password_done_by`: the run that already reset his password, if one
/// did (a re-run does not reset it again).
pub(super) async fn lock(
    ctx: &Ctx<'_>,
    reset_password: bool,
    password_done_by: Option<String>,
    out: &mut StepOut,
) -> Result<(), WorkflowError> {
    let (admin, pre) = (ctx.admin, ctx.pre);
    let (d, me) = (pre.domain_uid.as_str(), pre.leaver.uid.as_str());
    let dry = ctx.s.dry_run;
    let would = |done: &str| {
        if dry {
            format!("would be {done}")
        } else {
            done.to_string()
        }
    };
    let mut failed = 0;

    if !reset_password {
        out.note("password: kept (--keep-password)");
    } else if let Some(run) = password_done_by {
        out.note(format!("password: already reset by run {run}"));
    } else {
        out.note(format!(
            "password: {} to a random one nobody is told",
            would("reset")
        ));
        let i = out.change(
            ctx,
            Pending {
                step: "lock",
                action: Action::Password,
                target: me.to_string(),
                label: format!("password of {}", pre.leaver.login),
                subject: None,
                before: json!("his password"),
                after: json!("a random password, not kept"),
            },
        );
        if !dry {
            let pw = super::credentials::random_password()?;
            if out.check(i, admin.set_password(d, me, &pw).await).is_err() {
                failed += 1;
            }
        }
    }

    match ctx.leaver_session {
        None => out.note("his own API keys: no session as him, not revoked"),
        Some(session) => {
            let keys: Vec<_> = session
                .list_api_keys()
                .await?
                .into_iter()
                .filter(|k| !k.display_name.starts_with(super::credentials::KEY_PREFIX))
                .collect();
            if keys.is_empty() {
                out.note("his own API keys: none");
            }
            for k in keys {
                out.note(format!("his API key {:?} {}", k.display_name, would("revoked")));
                let i = out.change(
                    ctx,
                    Pending {
                        step: "lock",
                        action: Action::ApiKeyDeleted,
                        target: k.display_name.clone(),
                        label: format!("API key {:?} of {}", k.display_name, pre.leaver.login),
                        subject: None,
                        before: json!({"name": k.display_name}),
                        after: serde_json::Value::Null,
                    },
                );
                if !dry && out.check(i, session.delete_api_key(&k.sid).await).is_err() {
                    failed += 1;
                }
            }
        }
    }

    let devices = admin.devices(me).await?;
    for dev in devices.iter().filter(|x| x.value.has_partnership) {
        let name = format!("{} {}", dev.value.kind, dev.value.identifier)
            .trim()
            .to_string();
        out.note(format!("device {name}: partnership {}", would("removed")));
        let i = out.change(
            ctx,
            Pending {
                step: "lock",
                action: Action::DeviceUnpaired,
                target: dev.uid.clone(),
                label: format!("device {name}"),
                subject: None,
                before: json!({"partnership": true}),
                after: json!({"partnership": false}),
            },
        );
        if !dry
            && out
                .check(i, admin.remove_partnership(me, &dev.uid).await)
                .is_err()
        {
            failed += 1;
        }
    }

    if let Err(e) = set_flag(ctx, "hidden", true, out).await {
        tracing::warn!("hiding the leaver failed: {e}");
        failed += 1;
    }
    if failed > 0 {
        return Err(WorkflowError::NotAsWritten(format!(
            "{failed} part(s) of the lock"
        )));
    }
    Ok(())
}

/// Suspends the account (`archived`): the last step of `offboard close`.
pub(super) async fn archive(ctx: &Ctx<'_>, out: &mut StepOut) -> Result<(), WorkflowError> {
    set_flag(ctx, "archived", true, out).await
}

/// Sets `hidden` or `archived` on the leaver: the whole user read, changed in that one field,
/// written back (BlueMind resets what a user update leaves out), read again.
async fn set_flag(ctx: &Ctx<'_>, field: &str, value: bool, out: &mut StepOut) -> Result<(), WorkflowError> {
    let (admin, pre) = (ctx.admin, ctx.pre);
    let (d, me) = (pre.domain_uid.as_str(), pre.leaver.uid.as_str());
    let Some(mut user) = admin.user_complete(d, me).await? else {
        return Err(WorkflowError::UserUnknown {
            role: "leaver",
            name: pre.leaver.login.clone(),
            domain: pre.domain_name.clone(),
        });
    };
    let current = if field == "hidden" {
        user.value.hidden
    } else {
        user.value.archived
    };
    let what = if field == "hidden" {
        "hidden from the directory"
    } else {
        "suspended (archived)"
    };
    if current == value {
        out.note(format!("already {what}"));
        return Ok(());
    }
    out.note(format!(
        "{} {what}",
        if ctx.s.dry_run { "would be" } else { "now" }
    ));
    let i = out.change(
        ctx,
        Pending {
            step: if field == "hidden" { "lock" } else { "suspend" },
            action: if field == "hidden" {
                Action::Hidden
            } else {
                Action::Archived
            },
            target: me.to_string(),
            label: format!("{} of {}", field, pre.leaver.login),
            subject: None,
            before: json!(current),
            after: json!(value),
        },
    );
    if ctx.s.dry_run {
        return Ok(());
    }
    if field == "hidden" {
        user.value.hidden = value;
    } else {
        user.value.archived = value;
    }
    out.check(i, admin.update_user(d, me, &user.value).await)?;
    let back = admin.user_complete(d, me).await?;
    let now = back.map(|u| {
        if field == "hidden" {
            u.value.hidden
        } else {
            u.value.archived
        }
    });
    out.read_back(i, json!(now));
    if now != Some(value) {
        out.failed(i, "the user read back does not hold what was written");
        return Err(WorkflowError::NotAsWritten(field.into()));
    }
    Ok(())
}
