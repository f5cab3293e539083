//! The auto-reply naming the successor: the one measure EU regulators endorse for a departed
//! employee's address (about a month, three at most). Set with `POST …/_vacation`, which
//! touches no other rule; the previous vacation is kept in the journal.
//!
//! BlueMind checks the window only at delivery, against the incoming `Date:` header, never
//! against the clock, and stores a start after the end without a word: the window is made
//! and checked here.

use super::WorkflowError;
use super::departure::{Ctx, Pending, StepOut};
use super::report::Action;
use bluemind_api::Vacation;

/// Longest auto-reply without `--force`, in days (the APD's "three months at most").
pub const MAX_DAYS: u32 = 90;
/// Default length, in days ("about a month").
pub const DEFAULT_DAYS: u32 = 30;

/// Subject and text with placeholders: `{leaver}`, `{leaver_email}`, `{successor}`,
/// `{successor_email}`, `{until}` (the last day, `YYYY-MM-DD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
}

const FR_SUBJECT: &str = "{leaver} a quitté l'entreprise";
const FR_TEXT: &str = "Bonjour,\n\n{leaver} a quitté l'entreprise et ne lit plus les messages envoyés à {leaver_email}.\n\
Merci d'écrire désormais à {successor} <{successor_email}>, qui a repris ses dossiers.\n\n\
Ce message automatique est envoyé jusqu'au {until}.";
const EN_SUBJECT: &str = "{leaver} has left the company";
const EN_TEXT: &str = "Hello,\n\n{leaver} has left the company and no longer reads mail sent to {leaver_email}.\n\
Please write to {successor} <{successor_email}>, who has taken over.\n\n\
This automatic reply is sent until {until}.";

/// The shipped templates: `fr`, `en`, or `fr+en` (French, then English).
pub fn builtin(language: &str) -> Option<Template> {
    match language {
        "fr" => Some(Template {
            subject: FR_SUBJECT.into(),
            text: FR_TEXT.into(),
        }),
        "en" => Some(Template {
            subject: EN_SUBJECT.into(),
            text: EN_TEXT.into(),
        }),
        "fr+en" | "en+fr" => Some(Template {
            subject: format!("{FR_SUBJECT} / {EN_SUBJECT}"),
            text: format!("{FR_TEXT}\n\n-- \n\n{EN_TEXT}"),
        }),
        _ => None,
    }
}

/// What to say and for how long.
#[derive(Debug, Clone)]
pub struct AutoReply {
    /// Days from now.
    pub days: u32,
    /// The template.
    pub template: Template,
}

/// Fills the placeholders.
pub fn fill(t: &str, leaver: (&str, &str), successor: (&str, &str), until: &str) -> String {
    t.replace("{leaver_email}", leaver.1)
        .replace("{successor_email}", successor.1)
        .replace("{leaver}", leaver.0)
        .replace("{successor}", successor.0)
        .replace("{until}", until)
}

/// The window, in epoch milliseconds to the second (as BlueMind stores it): from now for
/// `days` days. Refuses what BlueMind would take and never honour.
pub fn window(now_ms: i64, days: u32, force: bool) -> Result<(i64, i64), String> {
    if days == 0 {
        return Err("an auto-reply of 0 days would never be sent".into());
    }
    if days > MAX_DAYS && !force {
        return Err(format!(
            "an auto-reply of {days} days is longer than the {MAX_DAYS} days data-protection guidance allows (--force to set it anyway)"
        ));
    }
    let start = now_ms - now_ms.rem_euclid(1000);
    let end = start
        .checked_add(i64::from(days) * 86_400_000)
        .ok_or_else(|| "the end date is out of range".to_string())?;
    if start >= end {
        return Err("the auto-reply would end before it starts".into());
    }
    Ok((start, end))
}

fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Sets the auto-reply (or says it is already set by an earlier run: a re-run does not
/// stretch the window).
pub(super) async fn apply(ctx: &Ctx<'_>, a: &AutoReply, out: &mut StepOut) -> Result<(), WorkflowError> {
    let (pre, d) = (ctx.pre, ctx.pre.domain_uid.as_str());
    let now = chrono::Utc::now().timestamp_millis();
    let (start, end) = window(now, a.days, ctx.s.force).map_err(WorkflowError::Invalid)?;
    // The last day the reply goes out: the end is exclusive.
    let until = day(end - 1000);
    let who = |p: &super::PersonReport| (p.display_name.clone(), p.email.clone());
    let (l, n) = (who(&pre.leaver), who(&pre.successor));
    let subject = fill(&a.template.subject, (&l.0, &l.1), (&n.0, &n.1), &until);
    let text = fill(&a.template.text, (&l.0, &l.1), (&n.0, &n.1), &until);
    let before = ctx.admin.vacation(d, &pre.leaver.uid).await?;
    if before.enabled
        && before.end.is_some_and(|e| e > now)
        && before.text.as_deref().is_some_and(|t| t.contains(&n.1))
    {
        out.note(format!(
            "already on, naming {} <{}>, until {}",
            n.0,
            n.1,
            before.end.map(|e| day(e - 1000)).unwrap_or_default()
        ));
        return Ok(());
    }
    if before.enabled {
        out.note(format!(
            "his own auto-reply ({:?}) is replaced; the journal keeps it",
            before.subject.as_deref().unwrap_or("")
        ));
    }
    let wanted = Vacation {
        enabled: true,
        start: Some(start),
        end: Some(end),
        subject: Some(subject.clone()),
        text: Some(text),
        text_html: None,
        extra: before.extra.clone(),
    };
    out.note(format!(
        "{} \"{subject}\", for {} days, until {until}",
        if ctx.s.dry_run { "would say" } else { "says" },
        a.days
    ));
    write(ctx, out, &before, &wanted).await
}

/// Records the change, and unless dry, writes the vacation and reads it back.
async fn write(
    ctx: &Ctx<'_>,
    out: &mut StepOut,
    before: &Vacation,
    wanted: &Vacation,
) -> Result<(), WorkflowError> {
    let (pre, d) = (ctx.pre, ctx.pre.domain_uid.as_str());
    let i = out.change(
        ctx,
        Pending {
            step: "auto-reply",
            action: Action::Vacation,
            target: pre.leaver.uid.clone(),
            label: format!("auto-reply of {}", pre.leaver.login),
            subject: None,
            before: serde_json::to_value(before).unwrap_or_default(),
            after: serde_json::to_value(wanted).unwrap_or_default(),
        },
    );
    if ctx.s.dry_run {
        return Ok(());
    }
    out.check(i, ctx.admin.set_vacation(d, &pre.leaver.uid, wanted).await)?;
    let back = ctx.admin.vacation(d, &pre.leaver.uid).await?;
    out.read_back(i, serde_json::to_value(&back).unwrap_or_default());
    if !(back.enabled == wanted.enabled && back.subject == wanted.subject && back.end == wanted.end) {
        out.failed(i, "the auto-reply read back is not the one written");
        return Err(WorkflowError::NotAsWritten("auto-reply".into()));
    }
    Ok(())
}

/// At close: the auto-reply off (BlueMind would leave it "on" forever, though it stops
/// answering after its end date and at suspension).
pub(super) async fn switch_off(ctx: &Ctx<'_>, out: &mut StepOut) -> Result<(), WorkflowError> {
    let (pre, d) = (ctx.pre, ctx.pre.domain_uid.as_str());
    let before = ctx.admin.vacation(d, &pre.leaver.uid).await?;
    if !before.enabled {
        out.note("already off");
        return Ok(());
    }
    let wanted = Vacation {
        enabled: false,
        ..before.clone()
    };
    out.note(if ctx.s.dry_run {
        "would be switched off"
    } else {
        "switched off"
    });
    write(ctx, out, &before, &wanted).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_whole_seconds_bounded_and_checked() {
        let now = 1_764_505_123_456;
        let (s, e) = window(now, 30, false).unwrap();
        assert_eq!(s, 1_764_505_123_000);
        assert_eq!(e - s, 30 * 86_400_000);
        for (days, force, ok) in [
            (0, false, false),
            (1, false, true),
            (90, false, true),
            (91, false, false),
            (91, true, true),
            (365, true, true),
        ] {
            assert_eq!(window(now, days, force).is_ok(), ok, "{days} days, force {force}");
        }
        assert!(window(now, 91, false).unwrap_err().contains("--force"));
    }

    #[test]
    fn templates_name_the_successor_in_both_languages() {
        for lang in ["fr", "en", "fr+en"] {
            let t = builtin(lang).unwrap();
            let text = fill(
                &t.text,
                ("Bertrand Dupré", "b@x"),
                ("Nathalie Martin", "n@x"),
                "2026-12-30",
            );
            assert!(
                text.contains("Nathalie Martin <n@x>") && text.contains("b@x") && text.contains("2026-12-30"),
                "{lang}: {text}"
            );
            assert!(!text.contains('{'), "{lang}: a placeholder is left: {text}");
            let subject = fill(&t.subject, ("Bertrand Dupré", "b@x"), ("N", "n@x"), "");
            assert!(subject.starts_with("Bertrand Dupré"), "{subject}");
        }
        assert!(builtin("de").is_none());
    }
}
