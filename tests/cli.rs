//! The binary as a user runs it: exit codes, messages, hints, and no secret in any output.

use assert_cmd::Command;
use predicates::prelude::*;
use testkit::{BERTRAND, Dovecot};

fn offboard() -> Command {
    let mut c = Command::cargo_bin("offboard").unwrap();
    c.env_remove("OFFBOARD_PASSWORD").env_remove("OFFBOARD_LOG");
    c
}

#[test]
fn help_and_version() {
    offboard()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--to <SUCCESSOR>").and(predicate::str::contains("probe")));
    offboard()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("offboard "));
}

#[test]
fn missing_configuration_is_exit_78_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    offboard()
        .args(["bertrand", "--to", "nathalie", "--config"])
        .arg(&empty)
        .assert()
        .code(78)
        .stderr(predicate::str::contains("no BlueMind URL").and(predicate::str::contains("--bluemind-url")));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[bluemind]\nurl = \"https://x\"\napi_key = \"in-a-file-by-mistake\"\n",
    )
    .unwrap();
    offboard()
        .args(["bertrand", "--to", "nathalie", "--config"])
        .arg(&bad)
        .assert()
        .code(78)
        .stderr(
            predicate::str::contains("unknown field")
                .and(predicate::str::contains("in-a-file-by-mistake").not()),
        );
    // A key file others can read is refused.
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[bluemind]\nurl = \"http://127.0.0.1:9\"\ndomain = \"x\"\nkey_file = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    offboard()
        .env_remove("OFFBOARD_ADMIN_KEY")
        .args(["bertrand", "--to", "nathalie", "--config"])
        .arg(&cfg)
        .assert()
        .code(78)
        .stderr(predicate::str::contains("chmod 600"));
}

#[test]
fn man_page_and_completions_come_from_the_cli_definition() {
    offboard()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH offboard 1").and(predicate::str::contains("reset\\-password")));
    for shell in ["bash", "zsh", "fish"] {
        offboard()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("imapsync"));
    }
}

#[test]
fn usage_errors_exit_64() {
    offboard().arg("bertrand").assert().code(64);
    offboard().args(["probe", "--host", "h"]).assert().code(64);
}

fn passfile(dir: &tempfile::TempDir, secret: &str) -> std::path::PathBuf {
    let p = dir.path().join("pass");
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    p
}

#[test]
fn probe_shows_capabilities_namespaces_and_folder_names() {
    let d = Dovecot::start().unwrap();
    testkit::fill::fill(d.imap_port, BERTRAND.0, &testkit::MailboxSpec::leaver(5, 10)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = offboard()
        .args([
            "probe",
            "--host",
            "localhost",
            "--port",
            &d.imaps_port.to_string(),
            "--user",
            BERTRAND.0,
            "--ca-file",
        ])
        .arg(&d.pki.ca_cert)
        .arg("--passfile")
        .arg(passfile(&dir, BERTRAND.1))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Capabilities: ") && out.contains("UIDPLUS"), "{out}");
    assert!(
        out.contains(r#"other users "Autres utilisateurs/" (separator "/")"#),
        "{out}"
    );
    assert!(out.contains(r#"shared "Dossiers partagés/""#), "{out}");
    assert!(out.contains("Projets/Client &AOk-  =  Projets/Client é"), "{out}");
    assert!(out.contains("Junk  \\HasNoChildren \\Junk"), "{out}");
}

#[test]
fn probe_json_is_one_document() {
    let d = Dovecot::start().unwrap();
    let out = offboard()
        .args([
            "probe",
            "--json",
            "--tls",
            "none",
            "--host",
            "127.0.0.1",
            "--port",
            &d.imap_port.to_string(),
            "--user",
            BERTRAND.0,
        ])
        .env("OFFBOARD_PASSWORD", BERTRAND.1)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["namespaces"]["shared"][0]["prefix"], "Dossiers partag&AOk-s/");
    assert!(
        doc["folders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["wire_name"] == "INBOX")
    );
}

#[test]
fn probe_failures_have_distinct_codes_and_hints_and_never_show_the_password() {
    let d = Dovecot::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = passfile(&dir, "Wr0ng-Secret");
    let port = d.imaps_port.to_string();
    // Wrong password: 16.
    let a = offboard()
        .args([
            "probe",
            "-vvv",
            "--host",
            "localhost",
            "--port",
            &port,
            "--user",
            BERTRAND.0,
            "--ca-file",
        ])
        .arg(&d.pki.ca_cert)
        .arg("--passfile")
        .arg(&wrong)
        .env("OFFBOARD_LOG", "trace")
        .assert()
        .code(16)
        .stderr(
            predicate::str::contains("refused the login of bertrand@bluemind.loc")
                .and(predicate::str::contains("hint:")),
        );
    let o = a.get_output();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("Wr0ng-Secret"), "password in output: {all}");
    // Untrusted certificate: 12, with the fix.
    offboard()
        .args([
            "probe",
            "--host",
            "localhost",
            "--port",
            &port,
            "--user",
            BERTRAND.0,
        ])
        .env("OFFBOARD_PASSWORD", BERTRAND.1)
        .assert()
        .code(12)
        .stderr(predicate::str::contains("not trusted").and(predicate::str::contains("--ca-file")));
    // Nobody listening: 10.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    offboard()
        .args([
            "probe",
            "--tls",
            "none",
            "--host",
            "127.0.0.1",
            "--port",
            &closed.to_string(),
            "--user",
            "u",
        ])
        .env("OFFBOARD_PASSWORD", "x")
        .assert()
        .code(10)
        .stderr(predicate::str::contains("cannot connect to 127.0.0.1"));
    // Missing password file: 66.
    offboard()
        .args([
            "probe",
            "--host",
            "localhost",
            "--user",
            "u",
            "--passfile",
            "/nonexistent/pass",
        ])
        .assert()
        .code(66)
        .stderr(predicate::str::contains("/nonexistent/pass"));
}

/// Issue 11: an `http://` BlueMind URL to another machine would send the admin key in
/// clear: refused unless `--insecure`; this machine (tests, a tunnel) stays allowed.
#[test]
fn a_plaintext_bluemind_url_to_another_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = |url: &str, extra: &[&str], key: Option<&str>| {
        let mut cmd = offboard();
        match key {
            Some(k) => cmd.env("OFFBOARD_ADMIN_KEY", k),
            // No key anywhere: the run stops before contacting anything.
            None => cmd
                .env_remove("OFFBOARD_ADMIN_KEY")
                .env_remove("OFFBOARD_CONFIG")
                .env("HOME", dir.path())
                .env("XDG_CONFIG_HOME", dir.path())
                .env("OFFBOARD_KEYRING", "off"),
        };
        let out = cmd
            .args([
                "bertrand",
                "--to",
                "nathalie",
                "--domain",
                "x",
                "--dry-run",
                "--bluemind-url",
                url,
            ])
            .args(extra)
            .arg("--state-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (url, refused) in [
        ("http://bm.example.com", true),
        ("HTTP://10.0.0.7:8080/", true),
        ("http://127.0.0.1:9", false),
        ("http://[::1]:9", false),
    ] {
        let (code, stderr) = plan(url, &[], Some("k"));
        if refused {
            assert_eq!(code, Some(78), "{url}: {stderr}");
            assert!(
                stderr.contains("would travel in clear") && stderr.contains("https://"),
                "{url}: {stderr}"
            );
        } else {
            assert!(!stderr.contains("would travel in clear"), "{url}: {stderr}");
        }
    }
    // Asked for in so many words, it goes on (and warns) — here as far as the missing admin
    // key, so nothing is contacted.
    let (code, stderr) = plan("http://bm.example.com", &["--insecure"], None);
    assert_eq!(code, Some(30), "{stderr}");
    assert!(!stderr.contains("would travel in clear"), "{stderr}");
    assert!(stderr.contains("not verified (--insecure)"), "{stderr}");
}
