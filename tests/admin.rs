//! What an admin runs around the hand-over (issue 15): `offboard doctor` against the BlueMind
//! double and Dovecot.

use crate::support::Run;
use assert_cmd::Command;
use serde_json::Value;
use testkit::sandbox::Sandbox;

fn offboard(sb: &Sandbox, args: &[&str]) -> Run {
    let out = Command::cargo_bin("offboard")
        .unwrap()
        .arg("--config")
        .arg(&sb.config)
        .args(args)
        .env_remove("OFFBOARD_ADMIN_KEY")
        .env_remove("OFFBOARD_CONFIG")
        .output()
        .unwrap();
    Run::from(out)
}

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {doc}"))
}

#[test]
fn doctor_checks_the_setup_and_its_exit_code_tells_the_health() {
    let sb = Sandbox::start(1, Default::default()).unwrap();
    let r = offboard(&sb, &["doctor", "--json", "--as", "nathalie"]);
    let doc: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    // The scenario's admin is admin0: every BlueMind check passes.
    for name in [
        "config",
        "admin key",
        "domain",
        "rights: user management",
        "rights: su",
        "clock",
        "imap",
        "tls",
        "state directory",
    ] {
        assert_eq!(check(&doc, name)["status"], "ok", "{name}: {}", check(&doc, name));
    }
    assert!(
        check(&doc, "config")["detail"]
            .as_str()
            .unwrap()
            .contains(&sb.config.display().to_string())
    );
    assert!(
        check(&doc, "admin key")["detail"]
            .as_str()
            .unwrap()
            .contains("the key file")
    );
    assert!(
        check(&doc, "setting bluemind url")["detail"]
            .as_str()
            .unwrap()
            .ends_with("(from the config file)")
    );
    assert_eq!(check(&doc, "bluemind version")["detail"], "5.1.4");
    let tls = check(&doc, "tls")["detail"].as_str().unwrap();
    assert!(
        tls.starts_with("verified certificate for") && tls.contains("localhost"),
        "{tls}"
    );
    // After login (the su session's token as the IMAP password) Dovecot offers what a run
    // uses — QUOTA aside: the test Dovecot has no quota plugin, and the check says so.
    assert_eq!(check(&doc, "capability QUOTA")["status"], "warning");
    assert_eq!(check(&doc, "su as nathalie")["status"], "ok");
    assert_eq!(check(&doc, "imap login")["status"], "ok");
    for cap in [
        "UIDPLUS",
        "MULTIAPPEND",
        "CONDSTORE",
        "ACL",
        "NAMESPACE",
        "SPECIAL-USE",
    ] {
        let after: Vec<&Value> = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["name"] == format!("capability {cap}")
                    && c["detail"].as_str().unwrap().contains("after login")
            })
            .collect();
        assert_eq!(after.len(), 1, "{cap}: {doc}");
        assert_eq!(after[0]["status"], "ok", "{cap}");
    }
    assert!(
        sb.bluemind
            .state()
            .sessions
            .values()
            .all(|u| u != "A7E2D3B1-0002-4ED2-997C-4A4F39933D18"),
        "the session as her was left open"
    );
    assert_eq!(
        (doc["failures"].as_u64(), doc["warnings"].as_u64()),
        (Some(0), Some(1)),
        "{doc}"
    );
    assert_eq!(r.code, 44, "warnings only");
    assert_eq!(doc["exit_code"], 44);
    // Without --as: the capabilities before login, Dovecot's few, each warning naming --as.
    let r = offboard(&sb, &["doctor"]);
    assert_eq!(r.code, 44, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ok       admin key"), "{}", r.stdout);
    assert!(
        r.stdout.contains("capability UIDPLUS") && r.stdout.contains("doctor --as LOGIN"),
        "{}",
        r.stdout
    );

    // A wrong key and an unreachable IMAP port: failures, exit 45, each with its fix.
    let key = sb.dir.path().join("admin.key");
    std::fs::write(&key, "not-a-key\n").unwrap();
    let r = offboard(&sb, &["doctor", "--json", "--imap-port", "1"]);
    assert_eq!(r.code, 45, "{}\n{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(check(&doc, "admin key")["status"], "failure");
    assert!(
        check(&doc, "admin key")["fix"]
            .as_str()
            .unwrap()
            .contains("offboard login")
    );
    assert_eq!(check(&doc, "imap")["status"], "failure");
    assert!(
        check(&doc, "setting imap port")["detail"]
            .as_str()
            .unwrap()
            .contains("1 (from the flag)")
    );
}
