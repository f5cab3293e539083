//! The departure beyond the mail (issue 14): audit, auto-reply, forwards, calendars and
//! contacts, delegations, personal folders, lock, close, undo, runs — against the BlueMind
//! double (its quirks included) and Dovecot, each outcome read back from the double's state.

use crate::support::Run;
use assert_cmd::Command;
use bluemind_api::Verb;
use serde_json::Value;
use testkit::sandbox::Sandbox;

const B: &str = "B3F1C2A0-0001-4ED2-997C-4A4F39933D18";
const N: &str = "A7E2D3B1-0002-4ED2-997C-4A4F39933D18";
const H: &str = "C9D4E5F6-0003-4ED2-997C-4A4F39933D18";

/// Runs offboard with exactly these arguments (the config given where the test says).
fn offboard(sb: &Sandbox, args: &[&str]) -> Run {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "CONFIG" {
                sb.config.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let out = Command::cargo_bin("offboard")
        .unwrap()
        .args(&args)
        .env_remove("OFFBOARD_ADMIN_KEY")
        .env_remove("OFFBOARD_CONFIG")
        .output()
        .unwrap();
    Run::from(out)
}

fn json(r: &Run) -> Value {
    let doc: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", r.stdout, r.stderr));
    // Every report the tests read follows the published schema (`offboard runs` lists runs).
    if doc.is_object() {
        crate::support::assert_report_schema(&doc);
    }
    doc
}

/// What the departure steps can touch in the double, as one comparable value.
fn snapshot(sb: &Sandbox) -> String {
    let st = sb.bluemind.state();
    let mut acls: Vec<_> = st
        .acls
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect();
    acls.sort();
    let mut subs: Vec<_> = st
        .subscriptions
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect();
    subs.sort();
    let mut filters: Vec<_> = st
        .filters
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    filters.sort();
    let mut dele: Vec<_> = st
        .delegation_rules
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    dele.sort();
    let users: Vec<_> = st
        .users
        .iter()
        .map(|u| (u.uid.clone(), u.hidden, u.archived, u.password.clone()))
        .collect();
    let keys: Vec<_> = st.keys.iter().map(|k| k.display_name.clone()).collect();
    let devices: Vec<_> = st
        .devices
        .iter()
        .map(|d| (d.uid.clone(), d.partnership))
        .collect();
    format!("{acls:?}\n{subs:?}\n{filters:?}\n{dele:?}\n{users:?}\n{keys:?}\n{devices:?}")
}

fn verbs(sb: &Sandbox, container: &str, subject: &str) -> Vec<Verb> {
    sb.bluemind
        .state()
        .acls
        .get(container)
        .map(|a| {
            a.iter()
                .filter(|e| e.subject == subject)
                .map(|e| e.verb)
                .collect()
        })
        .unwrap_or_default()
}

fn filter(sb: &Sandbox, mailbox: &str) -> Value {
    sb.bluemind
        .state()
        .filters
        .get(mailbox)
        .cloned()
        .unwrap_or(Value::Null)
}

fn rule<'a>(f: &'a Value, name_starts: &str) -> Option<&'a Value> {
    f["rules"]
        .as_array()?
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.starts_with(name_starts)))
}

#[test]
fn the_audit_says_where_his_mail_goes_and_who_sees_it_and_changes_nothing() {
    let sb = Sandbox::start(5, Default::default()).unwrap();
    let before = snapshot(&sb);
    // Common options after the command's name…
    let r = offboard(&sb, &["audit", "bertrand", "--config", "CONFIG", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    let a = &doc["audit"];
    assert_eq!(a["forwarding"]["enabled"], true);
    assert_eq!(
        a["forwarding"]["targets"][0]["address"],
        "bertrand.dupre@gmail.com"
    );
    assert_eq!(a["forwarding"]["targets"][0]["external"], true);
    let rules = a["rules"].as_array().unwrap();
    let by_name = |n: &str| {
        rules
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("no rule {n}: {rules:?}"))
    };
    assert_eq!(by_name("Vers ma boîte perso")["targets"][0]["external"], true);
    assert_eq!(by_name("Factures pour Hélène")["targets"][0]["external"], false);
    assert_eq!(by_name("Archivage légal")["scope"], "domain");
    assert_eq!(a["leaks"], 2, "the forward and one rule send mail outside");
    let readers = a["readers"].as_array().unwrap();
    assert!(
        readers.iter().any(|x| x["kind"] == "mailboxacl"
            && x["subject"] == H
            && x["verbs"] == serde_json::json!(["Read"])),
        "{readers:?}"
    );
    assert!(
        readers.iter().any(|x| x["kind"] == "calendar"
            && x["who"] == "everyone (public)"
            && x["verbs"] == serde_json::json!(["Invitation"])),
        "{readers:?}"
    );
    let others = a["rights_on_others"].as_array().unwrap();
    assert!(
        others
            .iter()
            .any(|x| x["container"] == "mailbox:acls-mailshare-projets"
                && x["verbs"] == serde_json::json!(["Write"])),
        "{others:?}"
    );
    assert!(
        others
            .iter()
            .any(|x| x["container"] == format!("calendar:Default:{H}")),
        "{others:?}"
    );
    assert!(
        !others
            .iter()
            .any(|x| x["container"] == "mailbox:acls-mailshare-compta"),
        "Read only is not a right to hand over: {others:?}"
    );
    assert_eq!(a["delegated_by"][0]["delegator"], H);
    assert_eq!(a["groups"], serde_json::json!(["compta-team"]));
    assert_eq!(a["devices"][0]["partnership"], true);
    assert_eq!(
        a["api_keys"],
        serde_json::json!(["Thunderbird"]),
        "read through a session as him"
    );
    assert_eq!(a["warnings"], serde_json::json!([]));
    // The schema check is not a formality: a report of another shape fails it.
    let mut broken = doc.clone();
    broken["steps"] = serde_json::json!("none");
    broken["audit"]["leaks"] = serde_json::json!(-1);
    assert_eq!(crate::support::report_schema_errors(&broken).len(), 2);
    // …or before it: the same audit, for people this time.
    let r = offboard(&sb, &["--config", "CONFIG", "audit", "bertrand"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("forwarding ON to bertrand.dupre@gmail.com (OUTSIDE)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("b.dupre@proton.me (OUTSIDE)"), "{}", r.stdout);
    // A leaver with nothing set up: an empty audit, and nothing written either.
    let r = offboard(&sb, &["--config", "CONFIG", "audit", "helene", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r)["audit"]["forwarding"]["enabled"], false);
    assert_eq!(snapshot(&sb), before, "the audit changed something");
    let st = sb.bluemind.state();
    assert!(
        st.sessions.values().all(|u| u != B),
        "the session as him was left open"
    );
}

#[test]
fn a_run_carries_out_every_departure_step_and_reads_each_back() {
    let sb = Sandbox::start(10, Default::default()).unwrap();
    let untouched = snapshot(&sb);
    let args = [
        "--config",
        "CONFIG",
        "bertrand",
        "--to",
        "nathalie",
        "--forward-days",
        "14",
        "--transfer-delegations",
    ];
    // The plan names every change and makes none.
    let plan = offboard(&sb, &[&args[..], &["--dry-run", "--json"]].concat());
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let p = json(&plan);
    let planned: Vec<&str> = p["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    for a in [
        "forwarding",
        "rule_update",
        "rule_create",
        "vacation",
        "password",
        "api_key_deleted",
        "device_unpaired",
        "hidden",
        "acl",
        "subscription",
        "delegation_rule",
    ] {
        assert!(planned.contains(&a), "{a} not planned: {planned:?}");
    }
    assert!(
        p["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "planned")
    );
    assert_eq!(snapshot(&sb), untouched, "the dry run changed something");
    assert!(
        !sb.dir.path().join("state/runs").exists()
            || std::fs::read_dir(sb.dir.path().join("state/runs"))
                .unwrap()
                .count()
                == 0,
        "a dry run wrote a journal"
    );

    let r = offboard(&sb, &[&args[..], &["--yes", "--json"]].concat());
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    let run_id = doc["run_id"].as_str().unwrap().to_string();
    assert_eq!(doc["outcome"], "ok");

    // Auto-reply: naming her, 30 days, set with the vacation endpoint.
    let f = filter(&sb, B);
    let v = &f["vacation"];
    assert_eq!(v["enabled"], true);
    assert!(
        v["subject"]
            .as_str()
            .unwrap()
            .starts_with("Bertrand Dupré a quitté l'entreprise"),
        "{v}"
    );
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("Nathalie Martin <nathalie@bluemind.loc>"),
        "{v}"
    );
    assert_eq!(
        v["end"].as_i64().unwrap() - v["start"].as_i64().unwrap(),
        30 * 86_400_000
    );
    // Forwards: the leaking ones off and kept; the internal rule untouched; hers expires.
    assert_eq!(f["forwarding"]["enabled"], false);
    assert_eq!(
        f["forwarding"]["emails"][0], "bertrand.dupre@gmail.com",
        "kept as evidence"
    );
    assert_eq!(rule(&f, "Vers ma boîte perso").unwrap()["active"], false);
    assert_eq!(rule(&f, "Factures pour Hélène").unwrap()["active"], true);
    let fwd = rule(&f, &format!("offboard {run_id} forward")).expect("no forward to her");
    assert_eq!(fwd["actions"][0]["emails"][0], "nathalie@bluemind.loc");
    assert_eq!(fwd["actions"][0]["keepCopy"], true);
    assert_eq!(fwd["conditions"][0]["filter"]["operator"], "RANGE");
    // Lock: hidden, not suspended (mail must still arrive), password unknown, his key and
    // phone gone, our keys deleted.
    {
        let st = sb.bluemind.state();
        let u = st.user(B).unwrap();
        assert!(u.hidden && !u.archived);
        assert_ne!(u.password, "8ertranD");
        assert!(
            !st.keys.iter().any(|k| k.subject == B),
            "keys left: {:?}",
            st.keys.iter().map(|k| &k.display_name).collect::<Vec<_>>()
        );
        assert!(st.devices.iter().all(|d| !d.partnership));
    }
    // Calendars and contacts: Read (never ReadExtended), free/busy mirrored, subscribed.
    for c in [format!("calendar:Default:{B}"), format!("book:Contacts_{B}")] {
        assert_eq!(verbs(&sb, &c, N), vec![Verb::Read], "{c}");
        assert!(
            sb.bluemind.state().subscriptions[N]
                .iter()
                .any(|s| s.container_uid == c && s.automount),
            "{c} not subscribed"
        );
    }
    assert_eq!(verbs(&sb, &format!("freebusy:{B}"), N), vec![Verb::Freebusy]);
    assert_eq!(
        verbs(&sb, &format!("calendar:Default:{B}"), B),
        vec![Verb::All],
        "the owner's entry kept"
    );
    // Delegations handed over: Write on hélène's calendar; on the mailshare BlueMind added
    // SendAs by itself; her delegation rule names nathalie instead of him.
    assert_eq!(verbs(&sb, &format!("calendar:Default:{H}"), N), vec![Verb::Write]);
    let p = verbs(&sb, "mailbox:acls-mailshare-projets", N);
    assert!(p.contains(&Verb::Write) && p.contains(&Verb::SendAs), "{p:?}");
    // BlueMind mailed her about each share (its hook), which an undo cannot take back.
    assert!(
        sb.bluemind
            .state()
            .acl_notifications
            .iter()
            .any(|(who, c)| who == N && *c == format!("calendar:Default:{B}"))
    );
    assert_eq!(
        sb.bluemind.state().delegation_rules[H]["delegateUids"],
        serde_json::json!([N])
    );
    // Personal folders: left out and listed.
    assert_eq!(
        doc["personal_folders"],
        serde_json::json!(["Perso", "Perso/Santé"])
    );
    let dst = testkit::readback::snapshot(sb.dovecot.imap_port, testkit::NATHALIE.0).unwrap();
    assert!(
        dst.folders.keys().all(|k| !k.contains("Perso")),
        "personal mail copied"
    );
    // The journal: every change with before and after, 0600.
    let path = sb.dir.path().join(format!("state/runs/{run_id}.json"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let j: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vac = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "vacation")
        .unwrap();
    assert_eq!(vac["before"]["enabled"], false);
    assert_eq!(vac["after"]["enabled"], true);
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains("bertrand-thunderbird-key"),
        "a key in the journal"
    );

    // A re-run changes nothing more and does not stretch the auto-reply.
    let again = offboard(&sb, &[&args[..], &["--yes", "--json"]].concat());
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(json(&again)["changes"], serde_json::json!([]), "{}", again.stdout);
    assert_eq!(filter(&sb, B)["vacation"], f["vacation"]);
}

#[test]
fn undo_reverts_what_is_still_as_the_run_left_it_and_says_the_rest() {
    let sb = Sandbox::start(5, Default::default()).unwrap();
    let original = filter(&sb, B);
    let r = offboard(
        &sb,
        &[
            "--config",
            "CONFIG",
            "bertrand",
            "--to",
            "nathalie",
            "--yes",
            "--json",
            "--transfer-delegations",
            "--forward-days",
            "7",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let run_id = json(&r)["run_id"].as_str().unwrap().to_string();
    // Someone changes the delegation rule by hand since: the undo must leave it alone.
    sb.bluemind.state().delegation_rules.get_mut(H).unwrap()["delegateUids"] = serde_json::json!([N, H]);
    let after_run = snapshot(&sb);

    // The plan changes nothing; without a terminal the real thing needs --yes.
    let plan = offboard(
        &sb,
        &["undo", &run_id, "--dry-run", "--json", "--config", "CONFIG"],
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        json(&plan)["undo"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "planned")
    );
    assert_eq!(snapshot(&sb), after_run, "the undo plan changed something");
    let r = offboard(&sb, &["--config", "CONFIG", "undo", &run_id]);
    assert_eq!(r.code, 36, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(snapshot(&sb), after_run);

    let r = offboard(&sb, &["--config", "CONFIG", "--json", "undo", &run_id, "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["kind"], "undo");
    assert_eq!(doc["undoes"], run_id);
    let items = doc["undo"].as_array().unwrap();
    let status_of = |action: &str| -> Vec<&str> {
        items
            .iter()
            .filter(|i| i["action"] == action)
            .map(|i| i["status"].as_str().unwrap())
            .collect()
    };
    assert_eq!(status_of("delegation_rule"), vec!["changed_since"], "{items:?}");
    for a in ["password", "api_key_deleted", "device_unpaired"] {
        assert_eq!(status_of(a), vec!["irreversible"], "{a}: {items:?}");
    }
    let acl = status_of("acl");
    assert_eq!(
        acl.last(),
        Some(&"irreversible"),
        "the notification mails: {items:?}"
    );
    assert!(acl[..acl.len() - 1].iter().all(|s| *s == "reverted"), "{items:?}");
    // Read back: his filter as it was (vacation off, forwarding on, rule on, hers gone).
    let f = filter(&sb, B);
    assert_eq!(f["vacation"]["enabled"], false);
    assert_eq!(f["forwarding"], original["forwarding"]);
    assert_eq!(f["rules"], original["rules"], "rules not as before");
    let st = sb.bluemind.state();
    assert!(!st.user(B).unwrap().hidden);
    // Every entry the run gave her is gone (SendAs the server added included), others kept.
    for (container, acl) in st.acls.iter() {
        assert!(
            acl.iter().all(|e| e.subject != N),
            "{container} still grants her {acl:?}"
        );
    }
    assert!(
        st.acls["mailbox:acls-mailshare-projets"]
            .iter()
            .any(|e| e.subject == B && e.verb == Verb::Write)
    );
    assert!(
        st.subscriptions.get(N).is_none_or(|s| s.is_empty()),
        "{:?}",
        st.subscriptions.get(N)
    );
    assert_eq!(
        st.delegation_rules[H]["delegateUids"],
        serde_json::json!([N, H]),
        "a hand-made change was undone"
    );
    drop(st);

    // Both runs are listed.
    let r = offboard(&sb, &["runs", "--json", "--config", "CONFIG"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let runs = json(&r);
    let kinds: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["offboard", "undo"]);
    assert_eq!(runs[0]["leaver"], "bertrand");
    assert_eq!(runs[0]["successor"], "nathalie");
    assert_eq!(runs[1]["undoes"], run_id);
    let r = offboard(&sb, &["--config", "CONFIG", "runs"]);
    assert!(
        r.stdout.contains(&run_id) && r.stdout.contains("undo"),
        "{}",
        r.stdout
    );
    // An unknown run has its own code.
    let r = offboard(
        &sb,
        &["--config", "CONFIG", "undo", "20990101T000000Z-dead", "--yes"],
    );
    assert_eq!(r.code, 43, "{}", r.stderr);
}

#[test]
fn close_copies_a_last_time_verifies_switches_off_then_suspends_and_undo_lifts_it() {
    let sb = Sandbox::start(5, Default::default()).unwrap();
    // No offboarding yet: close does not know the successor.
    let r = offboard(&sb, &["--config", "CONFIG", "close", "bertrand", "--yes"]);
    assert_eq!(r.code, 43, "{}", r.stderr);
    let r = offboard(
        &sb,
        &[
            "--config",
            "CONFIG",
            "bertrand",
            "--to",
            "nathalie",
            "--yes",
            "--forward-days",
            "10",
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // Mail keeps arriving during the auto-reply window.
    testkit::fill::fill(
        sb.dovecot.imap_port,
        testkit::BERTRAND.0,
        &testkit::MailboxSpec {
            folders: vec!["INBOX".into()],
            duplicates: 0,
            ..testkit::MailboxSpec::leaver(99, 3)
        },
    )
    .unwrap();
    let plan = offboard(
        &sb,
        &["--config", "CONFIG", "close", "bertrand", "--dry-run", "--json"],
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(!sb.bluemind.state().user(B).unwrap().archived);
    let r = offboard(
        &sb,
        &["close", "bertrand", "--yes", "--json", "--config", "CONFIG"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["kind"], "close");
    let copied: u64 = doc["copy"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["copied"].as_u64().unwrap())
        .sum();
    assert_eq!(copied, 3, "the last copy takes what arrived since");
    let names: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("no step {n}: {names:?}"))
    };
    assert!(
        pos("copy") < pos("verify")
            && pos("verify") < pos("auto-reply")
            && pos("forwards") < pos("cleanup")
            && pos("cleanup") < pos("suspend"),
        "{names:?}"
    );
    let f = filter(&sb, B);
    assert_eq!(f["vacation"]["enabled"], false);
    assert!(
        f["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"].as_str().unwrap().starts_with("offboard "))
            .all(|r| r["active"] == false)
    );
    {
        let st = sb.bluemind.state();
        assert!(st.user(B).unwrap().archived, "not suspended");
        assert!(
            st.keys.iter().all(|k| !k.display_name.starts_with("offboard ")),
            "a run key survived"
        );
    }
    // Suspended: a second close stops at once.
    let r = offboard(&sb, &["--config", "CONFIG", "close", "bertrand", "--yes"]);
    assert_eq!(r.code, 34, "{}", r.stderr);
    // Undo of the close: the suspension is lifted first, the auto-reply comes back.
    let close_id = doc["run_id"].as_str().unwrap().to_string();
    let r = offboard(&sb, &["--config", "CONFIG", "undo", &close_id, "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(json(&r)["undo"][0]["action"], "archived");
    assert!(!sb.bluemind.state().user(B).unwrap().archived);
    assert_eq!(filter(&sb, B)["vacation"]["enabled"], true);
}

#[test]
fn a_long_auto_reply_needs_force_and_a_failed_step_stops_no_other() {
    let sb = Sandbox::start(3, Default::default()).unwrap();
    let r = offboard(
        &sb,
        &[
            "--config",
            "CONFIG",
            "bertrand",
            "--to",
            "nathalie",
            "--auto-reply-days",
            "120",
            "--dry-run",
        ],
    );
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    let r = offboard(
        &sb,
        &[
            "--config",
            "CONFIG",
            "bertrand",
            "--to",
            "nathalie",
            "--auto-reply-days",
            "120",
            "--force",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // BlueMind refuses the vacation: the run goes on, says so, and exits 41.
    sb.bluemind.state().faults.insert("vacation".into(), 500);
    let r = offboard(
        &sb,
        &[
            "--config",
            "CONFIG",
            "bertrand",
            "--to",
            "nathalie",
            "--yes",
            "--json",
            "--no-share-calendars",
            "--no-lock",
        ],
    );
    assert_eq!(r.code, 41, "{}\n{}", r.stdout, r.stderr);
    let doc = json(&r);
    let step = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "auto-reply")
        .unwrap()
        .clone();
    assert_eq!(step["status"], "failed");
    assert_eq!(doc["outcome"], "failed");
    assert_eq!(
        filter(&sb, B)["forwarding"]["enabled"],
        false,
        "forwards were still switched off"
    );
    assert!(
        doc["grants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["status"] == "added")
    );
    assert!(!sb.bluemind.state().user(B).unwrap().hidden, "--no-lock locked");
    assert!(
        verbs(&sb, &format!("calendar:Default:{B}"), N).is_empty(),
        "--no-share-calendars shared"
    );
}
