//! `offboard LEAVER --to SUCCESSOR` end to end, against the BlueMind double and Dovecot.

use crate::support::Run;
use assert_cmd::Command;
use bluemind_api::{AccessControlEntry, Verb};
use secrecy::ExposeSecret;
use testkit::sandbox::Sandbox;
use testkit::{BERTRAND, NATHALIE, readback, wire::Conn};

const BERTRAND_UID: &str = "B3F1C2A0-0001-4ED2-997C-4A4F39933D18";
const NATHALIE_UID: &str = "A7E2D3B1-0002-4ED2-997C-4A4F39933D18";
const HELENE_UID: &str = "C9D4E5F6-0003-4ED2-997C-4A4F39933D18";
const FOLDER: &str = "Bertrand Dupré";

fn offboard(sb: &Sandbox, args: &[&str]) -> Run {
    let out = Command::cargo_bin("offboard")
        .unwrap()
        .arg("--config")
        .arg(&sb.config)
        .args(args)
        .env_remove("OFFBOARD_ADMIN_KEY")
        .env_remove("OFFBOARD_CONFIG")
        .env("OFFBOARD_LOG", "debug")
        .output()
        .unwrap();
    Run::from(out)
}

fn json(r: &Run) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", r.stdout, r.stderr));
    // Every report the tests read follows the published schema (`offboard runs` lists runs).
    if doc.is_object() {
        crate::support::assert_report_schema(&doc);
    }
    doc
}

const EXCLUDED: [&str; 3] = ["Junk", "Trash", "Outbox"];

fn assert_handed_over(sb: &Sandbox) {
    let src = readback::snapshot(sb.dovecot.imap_port, BERTRAND.0).unwrap();
    let dst = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    for (name, f) in &src.folders {
        let target = format!("{FOLDER}/{name}");
        if EXCLUDED.contains(&name.as_str()) || name.split('/').any(|l| l == "Perso") {
            assert!(dst.folder(&target).is_none(), "{name} copied");
            continue;
        }
        let t = dst.folder(&target).unwrap_or_else(|| panic!("{target} missing"));
        assert_eq!(t.content(), f.content(), "{target}");
        assert!(t.subscribed, "{target} not subscribed");
    }
    assert!(
        dst.folders
            .keys()
            .all(|k| !k.contains("Dossiers partagés") && !k.contains("compta")),
        "shared folders copied"
    );
}

/// No key was ever minted for the leaver or the successor.
fn assert_no_user_key_minted(st: &bluemind_api::fake::State) {
    assert!(
        st.minted
            .iter()
            .all(|(subject, _)| subject != BERTRAND_UID && subject != NATHALIE_UID),
        "a key was minted"
    );
}

fn no_run_keys_left(sb: &Sandbox) {
    let st = sb.bluemind.state();
    assert!(
        st.keys.iter().all(|k| !k.display_name.starts_with("offboard ")),
        "keys left: {:?}",
        st.keys.iter().map(|k| &k.display_name).collect::<Vec<_>>()
    );
}

fn no_su_session_left(sb: &Sandbox) {
    assert!(
        sb.bluemind
            .state()
            .sessions
            .values()
            .all(|u| u != BERTRAND_UID && u != NATHALIE_UID),
        "su session left open"
    );
}

/// Messages copied (or, dry, to copy) according to a JSON report.
fn copied_in_report(doc: &serde_json::Value) -> u64 {
    doc["copy"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["copied"].as_u64().unwrap())
        .sum()
}

#[test]
fn full_run_hands_over_mail_and_grants_and_leaves_no_key() {
    let sb = Sandbox::start(120, Default::default()).unwrap();
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["folder"], FOLDER);
    assert_eq!(doc["credentials"]["method"], "api_key");
    assert_eq!(doc["credentials"]["keys_minted"], 2);
    assert_eq!(doc["credentials"]["keys_deleted"], 2);
    for step in [
        "preflight",
        "sessions",
        "leftover keys",
        "api keys",
        "copy",
        "grants",
        "cleanup",
    ] {
        let s = doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == step)
            .unwrap_or_else(|| panic!("no step {step}"));
        assert_eq!(s["status"], "ok", "{step}: {s}");
    }
    assert_handed_over(&sb);
    // Every folder's count was read back after the copy.
    let folders = doc["copy"]["folders"].as_array().unwrap();
    assert!(!folders.is_empty());
    for f in folders {
        assert_eq!(f["verified"], true, "{f}");
        assert!(
            f["dest_messages"].as_u64().unwrap() >= f["copied"].as_u64().unwrap(),
            "{f}"
        );
    }

    // Grants: the group's mailshare, the direct one, hélène's mailbox; not rh.
    let st = sb.bluemind.state();
    let has_read = |c: &str| {
        st.acls
            .get(c)
            .unwrap()
            .iter()
            .any(|e| e.subject == NATHALIE_UID && e.verb.implies(Verb::Read))
    };
    for c in [
        "mailbox:acls-mailshare-compta",
        "mailbox:acls-mailshare-projets",
        &format!("mailbox:acls-{HELENE_UID}"),
    ] {
        assert!(has_read(c), "no Read for nathalie on {c}");
        assert!(
            st.subscriptions
                .get(NATHALIE_UID)
                .unwrap()
                .iter()
                .any(|s| s.container_uid == c && s.automount),
            "{c} not subscribed"
        );
    }
    assert!(
        !st.acls["mailbox:acls-mailshare-rh"]
            .iter()
            .any(|e| e.subject == NATHALIE_UID),
        "rh was granted"
    );
    // Entries of other subjects survive the PUTs.
    let projets = &st.acls["mailbox:acls-mailshare-projets"];
    assert!(projets.contains(&AccessControlEntry {
        subject: BERTRAND_UID.into(),
        verb: Verb::Write
    }));
    assert!(projets.contains(&AccessControlEntry {
        subject: HELENE_UID.into(),
        verb: Verb::All
    }));
    assert!(
        st.acls["mailbox:acls-mailshare-compta"].contains(&AccessControlEntry {
            subject: "group-compta-team".into(),
            verb: Verb::Read
        })
    );
    let grants = doc["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3);
    assert!(
        grants
            .iter()
            .all(|g| g["status"] == "added" && g["after"] == serde_json::json!(["Read"]))
    );
    // Keys: none left in BlueMind, and the run's keys no longer open the mailboxes.
    let minted: Vec<(String, String)> = st
        .minted
        .iter()
        .filter(|(s, _)| s == BERTRAND_UID || s == NATHALIE_UID)
        .cloned()
        .collect();
    drop(st);
    no_run_keys_left(&sb);
    assert_eq!(minted.len(), 2);

    // No secret anywhere: report, journal, logs.
    let journal_dir = sb.dir.path().join("state/runs");
    let journal = std::fs::read_dir(&journal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&journal).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let everything = format!("{}{}{}", r.stdout, r.stderr, journal_text);
    let mut secrets = vec![
        sb.bluemind.admin_key().expose_secret().to_string(),
        BERTRAND.1.to_string(),
        NATHALIE.1.to_string(),
    ];
    secrets.extend(minted.iter().map(|(_, k)| k.clone()));
    for s in &secrets {
        assert!(
            !everything.contains(s.as_str()),
            "a secret leaked into the output or journal"
        );
    }
    // Each run key no longer opens its owner's mailbox (one refused login each: Dovecot
    // slows every login after a failure).
    for (subject, key) in &minted {
        let login = if subject == BERTRAND_UID {
            BERTRAND.0
        } else {
            NATHALIE.0
        };
        assert!(
            Conn::login(sb.dovecot.imap_port, login, key).is_err(),
            "a deleted key still logs in"
        );
    }
}

#[test]
fn dry_run_shows_the_plan_and_changes_nothing() {
    let sb = Sandbox::start(60, Default::default()).unwrap();
    let acls_before = sb.bluemind.state().acls.clone();
    let before = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    let r = offboard(
        &sb,
        &["bertrand@bluemind.loc", "--to", "nathalie", "--dry-run", "--json"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["leaver"]["login"], "bertrand");
    assert_eq!(doc["credentials"]["method"], "session");
    assert_eq!(doc["credentials"]["keys_minted"], 0);
    let expected = sb
        .messages
        .iter()
        .filter(|m| !EXCLUDED.contains(&m.folder.as_str()))
        .count() as u64;
    assert_eq!(copied_in_report(&doc), expected);
    assert!(
        doc["copy"]["folders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["created"] == true)
    );
    assert!(
        doc["grants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["status"] == "planned")
    );
    // Nothing changed: no folder, no message, no ACL, no subscription, no key.
    let after = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    assert_eq!(
        before.folders.keys().collect::<Vec<_>>(),
        after.folders.keys().collect::<Vec<_>>()
    );
    assert_eq!(before.total(), after.total());
    let st = sb.bluemind.state();
    assert_eq!(st.acls, acls_before);
    assert!(st.subscriptions.get(NATHALIE_UID).is_none_or(|s| s.is_empty()));
    assert_no_user_key_minted(&st);
    assert!(
        st.sessions
            .values()
            .all(|u| u != BERTRAND_UID && u != NATHALIE_UID),
        "a session was left open"
    );
}

#[test]
fn rerun_copies_nothing_and_says_so() {
    let sb = Sandbox::start(60, Default::default()).unwrap();
    assert_eq!(offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]).code, 0);
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Nothing left to do"), "{}", r.stdout);
    assert!(r.stdout.contains("0 copied"), "{}", r.stdout);
    assert!(r.stdout.contains("compta (MAILSHARE): already"), "{}", r.stdout);
    assert_handed_over(&sb);
    no_run_keys_left(&sb);
}

#[test]
fn keys_left_by_a_crashed_run_are_deleted() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    let old = sb
        .bluemind
        .state()
        .mint_key(BERTRAND_UID, "offboard 20260101T000000Z-dead");
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r)["credentials"]["leftover_keys_deleted"], 1);
    assert!(sb.bluemind.state().keys.iter().all(|k| k.sid != old));
    no_run_keys_left(&sb);
}

#[test]
fn without_a_terminal_nothing_changes_unless_yes() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    let r = offboard(&sb, &["bertrand", "--to", "nathalie"]);
    assert_eq!(r.code, 36, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(
        readback::snapshot(sb.dovecot.imap_port, NATHALIE.0)
            .unwrap()
            .folder(FOLDER)
            .is_none()
    );
    assert!(
        !sb.bluemind.state().acls["mailbox:acls-mailshare-compta"]
            .iter()
            .any(|e| e.subject == NATHALIE_UID)
    );
}

#[test]
fn su_refused_is_a_clear_error_or_the_password_reset_when_asked() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    // A domain admin with sudo, on a server that reserves su to the global domain.
    let dadmin_key = {
        let mut st = sb.bluemind.state();
        st.su_global_only = true;
        st.users
            .iter_mut()
            .find(|u| u.login == "dadmin")
            .unwrap()
            .roles
            .push("sudo".into());
        let uid = st.users.iter().find(|u| u.login == "dadmin").unwrap().uid.clone();
        st.mint_key(&uid, "dadmin key")
    };
    let run = |args: &[&str]| {
        let out = Command::cargo_bin("offboard")
            .unwrap()
            .arg("--config")
            .arg(&sb.config)
            .args(args)
            .env("OFFBOARD_ADMIN_KEY", &dadmin_key)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&["bertrand", "--to", "nathalie", "--yes"]);
    assert_eq!(code, 35, "{err}");
    assert!(
        err.contains("refused to open a session as the leaver bertrand") && err.contains("--reset-password"),
        "{err}"
    );
}

#[test]
fn password_reset_fallback_when_su_is_refused_for_the_leaver() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    // su refused for bertrand only (a fault on the whole route would hit nathalie too).
    sb.bluemind.state().faults.insert("su:bertrand".into(), 403);
    let r = offboard(
        &sb,
        &[
            "bertrand",
            "--to",
            "nathalie",
            "--yes",
            "--reset-password",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["credentials"]["method"], "password_reset");
    assert_eq!(doc["credentials"]["leaver_password_reset"], true);
    assert_handed_over(&sb);
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]);
    assert_eq!(
        r.code, 35,
        "without the flag the refusal stops the run: {}",
        r.stderr
    );
}

#[test]
fn unknown_users_and_wrong_admin_key_have_their_own_codes() {
    let sb = Sandbox::start(5, Default::default()).unwrap();
    let r = offboard(&sb, &["nobody", "--to", "nathalie", "--yes"]);
    assert_eq!(r.code, 32, "{}", r.stderr);
    assert!(r.stderr.contains("no user \"nobody\""), "{}", r.stderr);
    assert_eq!(
        offboard(&sb, &["bertrand", "--to", "bertrand@bluemind.loc", "--yes"]).code,
        33
    );
    sb.bluemind
        .state()
        .users
        .iter_mut()
        .find(|u| u.login == "bertrand")
        .unwrap()
        .archived = true;
    assert_eq!(offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]).code, 34);
    let out = Command::cargo_bin("offboard")
        .unwrap()
        .arg("--config")
        .arg(&sb.config)
        .args(["bertrand", "--to", "nathalie", "--yes"])
        .env("OFFBOARD_ADMIN_KEY", "not-a-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused the admin API key") && !err.contains("not-a-key"),
        "{err}"
    );
    let r = offboard(
        &sb,
        &[
            "bertrand",
            "--to",
            "nathalie",
            "--domain",
            "nope.example",
            "--yes",
        ],
    );
    assert_eq!(r.code, 31, "{}", r.stderr);
}

#[test]
fn login_checks_and_stores_the_key_so_runs_need_nothing_else() {
    let sb = Sandbox::start(5, Default::default()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("c.toml");
    let text: Vec<String> = std::fs::read_to_string(&sb.config)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("key_file"))
        .map(String::from)
        .collect();
    std::fs::write(&cfg, text.join("\n")).unwrap();
    let cmd = |args: &[&str], key: Option<&str>| {
        let mut c = Command::cargo_bin("offboard").unwrap();
        c.args(args)
            .arg("--config")
            .arg(&cfg)
            .env("XDG_CONFIG_HOME", home.path())
            .env("OFFBOARD_KEYRING", "off");
        match key {
            Some(k) => c.env("OFFBOARD_ADMIN_KEY", k),
            None => c.env_remove("OFFBOARD_ADMIN_KEY"),
        };
        c.output().unwrap()
    };
    let stored = home.path().join("offboard/admin-key");
    // A key BlueMind refuses is not stored.
    let out = cmd(&["login"], Some("not-a-key"));
    assert_eq!(
        out.status.code(),
        Some(30),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stored.exists());
    let admin = sb.bluemind.admin_key().expose_secret().to_string();
    let out = cmd(&["login"], Some(&admin));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("no OS keyring") && err.contains("mode 0600") && !err.contains(&admin),
        "{err}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Now a run needs no key anywhere else.
    let out = cmd(&["bertrand", "--to", "nathalie", "--dry-run"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_failure_after_the_keys_were_minted_still_deletes_them() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    // BlueMind fails while listing shared mailboxes: after the copy, before the grants.
    sb.bluemind.state().faults.insert("list_for_user".into(), 500);
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 38, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["credentials"]["keys_minted"], 2);
    assert_eq!(doc["credentials"]["keys_deleted"], 2);
    let steps = doc["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["name"] == "grants" && s["status"] == "failed")
    );
    assert!(
        steps
            .iter()
            .any(|s| s["name"] == "cleanup" && s["status"] == "ok")
    );
    no_run_keys_left(&sb);
    no_su_session_left(&sb);
    // The mail was copied before the failure; a re-run finishes the job.
    sb.bluemind.state().faults.clear();
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_handed_over(&sb);
}

#[test]
fn ctrl_c_deletes_the_keys_closes_the_sessions_and_a_rerun_finishes() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    // Hold the run after the copy, at the grants' listing of the successor's subscriptions,
    // with both keys live.
    let child = start_held(&sb, "subscriptions");
    assert_eq!(
        sb.bluemind
            .state()
            .keys
            .iter()
            .filter(|k| k.display_name.starts_with("offboard "))
            .count(),
        2,
        "both keys live while the run is held"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    sb.bluemind.state().held.clear();
    let r = Run::from(out);
    assert_eq!(r.code, 6, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    assert_no_secret(&sb, &r, "Ctrl-C");
    let doc = json(&r);
    assert_eq!(doc["credentials"]["keys_minted"], 2);
    assert_eq!(doc["credentials"]["keys_deleted"], 2);
    no_run_keys_left(&sb);
    no_su_session_left(&sb);
    // The interrupted run left its journal: an undo of it puts back what it changed before
    // the copy (the forward to his private address, his auto-reply, hidden).
    let stopped = doc["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        sb.bluemind.state().filters[BERTRAND_UID]["vacation"]["enabled"],
        true
    );
    let undo = offboard(&sb, &["undo", &stopped, "--yes", "--json"]);
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    {
        let st = sb.bluemind.state();
        assert_eq!(st.filters[BERTRAND_UID]["vacation"]["enabled"], false);
        assert_eq!(st.filters[BERTRAND_UID]["forwarding"]["enabled"], true);
        assert!(!st.user(BERTRAND_UID).unwrap().hidden);
    }
    // No grant was made before the interruption; the re-run copies nothing twice and grants.
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = json(&r);
    assert_eq!(copied_in_report(&doc), 0, "the re-run copied again: {}", r.stdout);
    let grants = doc["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3);
    assert!(grants.iter().all(|g| g["status"] == "added"), "{grants:?}");
    assert_handed_over(&sb);
    no_run_keys_left(&sb);
}

/// Runs offboard on a terminal (a pseudo-terminal from util-linux `script`), typing `input`.
fn offboard_on_a_terminal(sb: &Sandbox, args: &str, input: &str) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin("offboard");
    let line = format!("'{}' --config '{}' {args}", bin.display(), sb.config.display());
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env_remove("OFFBOARD_ADMIN_KEY")
        .env_remove("OFFBOARD_CONFIG")
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn on_a_terminal_the_plan_is_confirmed_before_anything_changes() {
    let sb = Sandbox::start(20, Default::default()).unwrap();
    let acls_before = sb.bluemind.state().acls.clone();
    let (code, text) = offboard_on_a_terminal(&sb, "bertrand --to nathalie", "n\n");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Carry out this plan? [y/N]"), "{text}");
    assert!(text.contains("Nothing was changed."), "{text}");
    let dst = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    assert!(
        dst.folders.keys().all(|k| !k.starts_with(FOLDER)),
        "declined, yet copied: {:?}",
        dst.folders.keys().collect::<Vec<_>>()
    );
    assert_eq!(sb.bluemind.state().acls, acls_before, "declined, yet granted");
    no_run_keys_left(&sb);

    let (code, text) = offboard_on_a_terminal(&sb, "bertrand --to nathalie", "y\n");
    assert_eq!(code, 0, "{text}");
    assert_handed_over(&sb);
    no_run_keys_left(&sb);
}

/// Issue 10: what the successor deleted after the hand-over (messages, a whole folder) is not
/// brought back by a re-run, and is reported; `--recopy-removed` brings it back.
#[test]
fn what_the_successor_removed_is_not_resurrected_unless_asked() {
    let sb = Sandbox::start(60, Default::default()).unwrap();
    assert_eq!(offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]).code, 0);
    let dst = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    // A leaf folder of the copy, and the copied INBOX.
    let prefix = format!("{FOLDER}/");
    let leaf = dst
        .folders
        .iter()
        .filter(|(k, f)| k.starts_with(&prefix) && !k.ends_with("/INBOX") && !f.messages.is_empty())
        .map(|(k, f)| (k.clone(), f.messages.len()))
        .find(|(k, _)| !dst.folders.keys().any(|o| o.starts_with(&format!("{k}/"))))
        .expect("a leaf folder with mail");
    let inbox = format!("{FOLDER}/INBOX");
    let mut n = Conn::login(sb.dovecot.imap_port, NATHALIE.0, NATHALIE.1).unwrap();
    let enc = |s: &str| testkit::wire::quote(&testkit::mutf7::encode(s));
    n.command(&format!("SELECT {}", enc(&inbox))).unwrap();
    n.command("STORE 1:2 +FLAGS (\\Deleted)").unwrap();
    n.command("EXPUNGE").unwrap();
    n.command("UNSELECT").unwrap();
    n.command(&format!("DELETE {}", enc(&leaf.0))).unwrap();
    n.logout();
    let before = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0)
        .unwrap()
        .total();

    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(copied_in_report(&doc), 0);
    let removed: u64 = doc["copy"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["removed_by_successor"].as_u64().unwrap())
        .sum();
    assert_eq!(removed, 2 + leaf.1 as u64);
    let after = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    assert!(after.folder(&leaf.0).is_none(), "{} made again", leaf.0);
    assert_eq!(after.total(), before);
    let human = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]);
    assert!(
        human
            .stdout
            .contains(&format!("Removed by the successor since: {removed} messages")),
        "{}",
        human.stdout
    );

    let r = offboard(
        &sb,
        &["bertrand", "--to", "nathalie", "--yes", "--recopy-removed"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_handed_over(&sb);
    no_run_keys_left(&sb);
}

/// Starts `offboard bertrand --to nathalie --yes --json` held at `route` (the double does not
/// answer it): returns the child once the run reached it.
fn start_held(sb: &Sandbox, route: &str) -> std::process::Child {
    sb.bluemind.state().held.insert(route.into());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("offboard"))
        .arg("--config")
        .arg(&sb.config)
        .args(["bertrand", "--to", "nathalie", "--yes", "--json"])
        .env_remove("OFFBOARD_ADMIN_KEY")
        .env_remove("OFFBOARD_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let held = format!("HELD {route}");
    while !sb.bluemind.state().requests.contains(&held) {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached {route}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {route}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

fn run_keys(sb: &Sandbox) -> usize {
    sb.bluemind
        .state()
        .keys
        .iter()
        .filter(|k| k.display_name.starts_with("offboard "))
        .count()
}

/// Issue 11: BlueMind drops a session after 20 minutes idle, and nothing uses the su
/// sessions during the copy. With the double's idle timeout at 300 ms and the run held after
/// the copy for longer, both su sessions are gone at cleanup: the keys must still be deleted.
#[test]
fn keys_are_deleted_even_when_the_su_sessions_idled_out_during_a_long_copy() {
    let sb = Sandbox::start(200, Default::default()).unwrap();
    sb.bluemind.state().idle_timeout = Some(std::time::Duration::from_millis(300));
    let child = start_held(&sb, "subscriptions");
    // Longer than the idle timeout: the su sessions expire (on the next request, as
    // BlueMind's cache does).
    std::thread::sleep(std::time::Duration::from_millis(1200));
    sb.bluemind.state().held.clear();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["credentials"]["keys_minted"], 2);
    assert_eq!(doc["credentials"]["keys_deleted"], 2, "{}", r.stdout);
    assert_eq!(run_keys(&sb), 0, "a minted key survived the run");
    assert_handed_over(&sb);
    no_su_session_left(&sb);
}

/// Issue 11: while a run is in progress, a dry run and a second run naming one of its users
/// leave its keys, copy and grants untouched; the second run refuses at once (exit 39) and
/// names the run that holds the user.
#[test]
fn a_dry_run_and_a_second_run_during_a_run_in_progress_leave_it_untouched() {
    let sb = Sandbox::start(40, Default::default()).unwrap();
    // Held at its first ACL write: copy done, keys live, no grant made yet.
    let child = start_held(&sb, "acl_put");
    assert_eq!(run_keys(&sb), 2);
    let dry = offboard(&sb, &["bertrand", "--to", "nathalie", "--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{}\n{}", dry.stdout, dry.stderr);
    let plan = json(&dry);
    assert_eq!(plan["credentials"]["leftover_keys_found"], 2);
    assert_eq!(plan["credentials"]["leftover_keys_deleted"], 0);
    assert_eq!(run_keys(&sb), 2, "the dry run deleted the live run's keys");
    let second = offboard(&sb, &["bertrand", "--to", "helene", "--yes"]);
    assert_eq!(second.code, 39, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("is being handed over by run "),
        "{}",
        second.stderr
    );
    assert_eq!(run_keys(&sb), 2, "the second run deleted the live run's keys");
    let other = offboard(&sb, &["helene", "--to", "nathalie", "--yes"]);
    assert_eq!(other.code, 39, "the successor is held too: {}", other.stderr);

    sb.bluemind.state().held.clear();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    let run_id = doc["run_id"].as_str().unwrap().to_string();
    assert!(second.stderr.contains(&run_id), "{}", second.stderr);
    assert_eq!(doc["credentials"]["keys_deleted"], 2);
    let grants = doc["grants"].as_array().unwrap();
    assert!(grants.iter().all(|g| g["status"] == "added"), "{grants:?}");
    assert_handed_over(&sb);
    no_run_keys_left(&sb);
    // Once it ended, the users are free again.
    let again = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
}

/// Every secret the run could have seen: the admin key, the users' passwords, every key minted
/// and every session id issued (su tokens are IMAP passwords too).
fn known_secrets(sb: &Sandbox) -> Vec<String> {
    let st = sb.bluemind.state();
    let mut secrets = vec![
        sb.bluemind.admin_key().expose_secret().to_string(),
        BERTRAND.1.to_string(),
        NATHALIE.1.to_string(),
    ];
    secrets.extend(st.minted.iter().map(|(_, k)| k.clone()));
    secrets.extend(st.issued.iter().cloned());
    secrets
}

/// Every file under `dir`, as text (lossy).
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

/// No known secret in the outputs of a run, its JSON, the run journal, the sync journal or
/// any state file.
fn assert_no_secret(sb: &Sandbox, r: &Run, context: &str) {
    let secrets = known_secrets(sb);
    assert!(secrets.len() >= 3);
    let mut places = vec![
        ("stdout".to_string(), r.stdout.clone()),
        ("stderr".to_string(), r.stderr.clone()),
    ];
    places.extend(
        files_under(&sb.dir.path().join("state"))
            .into_iter()
            .map(|(p, t)| (p.display().to_string(), t)),
    );
    for (place, text) in &places {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{context}: a secret is in {place}");
        }
    }
}

/// Issue 11: a network failure during any BlueMind call (the key deletion above all: its URL
/// names the key) puts no secret anywhere — stdout, stderr at -vvv, the JSON, the journals,
/// the state files; nor does a successful run, or one whose command line is read while it
/// runs.
#[test]
fn no_secret_in_any_output_whatever_fails() {
    let routes = [
        None,
        Some("key_delete"),
        Some("domain_lookup"),
        Some("user_by_email"),
        Some("su"),
        Some("key_list"),
        Some("key_create"),
        Some("list_for_user"),
        Some("acl_get"),
        Some("acl_put"),
        Some("subscribe"),
        Some("logout"),
    ];
    for route in routes {
        let context = format!("network fault on {route:?}");
        let sb = Sandbox::start(5, Default::default()).unwrap();
        if let Some(r) = route {
            sb.bluemind.state().faults.insert(r.into(), 0);
        }
        let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json", "-vvv"]);
        if route.is_none() {
            assert_eq!(r.code, 0, "{context}: {}", r.stderr);
        }
        if route == Some("key_delete") {
            // The key could not be deleted: said, and never shown.
            assert_ne!(r.code, 0, "{context}");
            assert!(
                r.stderr.contains("could not be deleted"),
                "{context}: {}",
                r.stderr
            );
            assert!(
                r.stderr.contains("cannot reach BlueMind"),
                "{context}: {}",
                r.stderr
            );
        }
        assert_no_secret(&sb, &r, &context);
    }
    // While a run is held with its keys live, its command line names no secret.
    let sb = Sandbox::start(5, Default::default()).unwrap();
    let child = start_held(&sb, "acl_put");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
    for s in known_secrets(&sb) {
        assert!(!cmdline.contains(&s), "a secret is on the command line");
    }
    sb.bluemind.state().held.clear();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_no_secret(&sb, &r, "held run");
}

/// Issue 11: the leaver's mailbox lands in the successor's quota. When it cannot fit, the run
/// stops before any change (exit 40, how much is missing); the dry run shows it; with
/// `--allow-partial` it goes on.
#[test]
fn a_copy_that_cannot_fit_stops_before_any_change() {
    let sb = Sandbox::start(10, Default::default()).unwrap();
    {
        let mut st = sb.bluemind.state();
        for u in st.users.iter_mut() {
            if u.uid == BERTRAND_UID {
                u.used_kib = 500_000;
            }
            if u.uid == NATHALIE_UID {
                u.quota_kib = Some(1_000_000);
                u.used_kib = 800_000;
            }
        }
    }
    let before = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    let dry = offboard(&sb, &["bertrand", "--to", "nathalie", "--dry-run"]);
    assert_eq!(dry.code, 40, "{}\n{}", dry.stdout, dry.stderr);
    assert!(dry.stderr.contains("300000 KiB missing"), "{}", dry.stderr);
    assert!(dry.stderr.contains("--allow-partial"), "the hint: {}", dry.stderr);
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 40, "{}\n{}", r.stdout, r.stderr);
    // Nothing changed: no session, no key, no mail, no grant.
    let st = sb.bluemind.state();
    assert_no_user_key_minted(&st);
    assert!(
        !st.requests
            .iter()
            .any(|q| q.contains("_su") || q.contains("_acl")),
        "{:?}",
        st.requests
    );
    drop(st);
    let after = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    assert_eq!(after.total(), before.total());
    // Told to go on, it does; the plan says it does not fit.
    let plan = offboard(
        &sb,
        &[
            "bertrand",
            "--to",
            "nathalie",
            "--dry-run",
            "--allow-partial",
            "--json",
        ],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let doc = json(&plan);
    assert_eq!(doc["quota"]["fits"], false);
    assert_eq!(doc["quota"]["successor_quota_kib"], 1_000_000);
    // An unlimited successor always fits.
    for u in sb.bluemind.state().users.iter_mut() {
        if u.uid == NATHALIE_UID {
            u.quota_kib = None;
        }
    }
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no limit"), "{}", r.stdout);
}

/// Issue 11: grants stay exact. Against BlueMind 5's ACL shape (verbs expanded, a synthetic
/// owner entry on user mailboxes) and BlueMind 4's: a mailbox the successor already reads
/// through a group gets nothing and says so; the owner's synthetic entry is never stored; a
/// mailbox whose ACL write fails is reported failed (exit 37) and the others are granted.
#[test]
fn grants_are_exact_on_both_acl_shapes_and_one_failure_stops_no_other() {
    const HELENE_BOX: &str = "mailbox:acls-C9D4E5F6-0003-4ED2-997C-4A4F39933D18";
    for bm5 in [true, false] {
        let shape = if bm5 { "BlueMind 5" } else { "BlueMind 4" };
        let sb = Sandbox::start(5, Default::default()).unwrap();
        {
            let mut st = sb.bluemind.state();
            st.acl_shape_bm5 = bm5;
            // Nathalie is in the group that reads compta.
            st.groups[0].members.push(NATHALIE_UID.into());
            // The projets mailshare refuses the write.
            st.faults
                .insert("acl_put:mailbox:acls-mailshare-projets".into(), 500);
        }
        let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
        assert_eq!(r.code, 37, "{shape}: {}\n{}", r.stdout, r.stderr);
        let doc = json(&r);
        let grants = doc["grants"].as_array().unwrap();
        let by = |name: &str| {
            grants
                .iter()
                .find(|g| g["container"].as_str().unwrap().ends_with(name))
                .unwrap_or_else(|| panic!("{shape}: no grant for {name}: {grants:?}"))
        };
        let compta = by("compta");
        assert_eq!(compta["status"], "already", "{shape}: {compta}");
        assert_eq!(compta["via"], "group compta-team", "{shape}: {compta}");
        assert_eq!(by("projets")["status"], "failed", "{shape}");
        let helene = by(HELENE_UID);
        assert_eq!(helene["status"], "added", "{shape}: {helene}");
        let st = sb.bluemind.state();
        // No direct entry for compta; none stored for Hélène on her own mailbox.
        assert!(
            st.acls["mailbox:acls-mailshare-compta"]
                .iter()
                .all(|e| e.subject != NATHALIE_UID),
            "{shape}: {:?}",
            st.acls["mailbox:acls-mailshare-compta"]
        );
        let stored = &st.acls[HELENE_BOX];
        assert!(
            stored.iter().all(|e| e.subject != HELENE_UID),
            "{shape}: {stored:?}"
        );
        assert!(
            stored
                .iter()
                .any(|e| e.subject == NATHALIE_UID && e.verb.implies(Verb::Read)),
            "{shape}: {stored:?}"
        );
        assert!(
            stored.iter().any(|e| e.subject == BERTRAND_UID),
            "{shape}: an entry was dropped"
        );
        drop(st);
        no_run_keys_left(&sb);
    }
}

/// Issue 11: where BlueMind gives no quota figure, the IMAP server's (GETQUOTAROOT) stops a
/// copy that cannot fit before any message moves.
#[test]
fn the_imap_quota_stops_a_copy_that_cannot_fit_when_bluemind_gives_none() {
    let sb = Sandbox::start(
        5,
        testkit::DovecotOptions {
            quota_kib: Some(4096),
            ..Default::default()
        },
    )
    .unwrap();
    sb.bluemind.state().faults.insert("quota".into(), 404);
    // Nathalie's mailbox is half full: Bertrand's 3 MB no longer fit.
    let mut n = Conn::login(sb.dovecot.imap_port, NATHALIE.0, NATHALIE.1).unwrap();
    let big = format!(
        "Message-ID: <big@n>\r\nSubject: big\r\n\r\n{}\r\n",
        "n".repeat(2 << 20)
    );
    n.multiappend(
        "INBOX",
        &[(String::new(), "01-Jan-2024 10:00:00 +0000".into(), big.as_bytes())],
    )
    .unwrap();
    n.logout();
    let before = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    let r = offboard(&sb, &["bertrand", "--to", "nathalie", "--yes", "--json"]);
    assert_eq!(r.code, 40, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["quota"]["fits"], false, "{}", r.stdout);
    assert_eq!(doc["quota"]["successor_quota_kib"], 4096);
    let after = readback::snapshot(sb.dovecot.imap_port, NATHALIE.0).unwrap();
    assert_eq!(after.total(), before.total(), "mail moved");
    no_run_keys_left(&sb);
}
