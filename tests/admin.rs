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

    // STARTTLS on the plain port: the certificate is read after the upgrade.
    let port = sb.dovecot.imap_port.to_string();
    let r = offboard(
        &sb,
        &["doctor", "--json", "--imap-port", &port, "--imap-tls", "starttls"],
    );
    let doc: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    assert_eq!(check(&doc, "tls")["status"], "ok", "{doc}");
    assert!(
        check(&doc, "tls")["detail"]
            .as_str()
            .unwrap()
            .contains("localhost")
    );
    assert_eq!(
        check(&doc, "setting imap tls")["detail"],
        "starttls (from the flag)"
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

#[test]
fn batch_checks_every_row_first_runs_each_once_and_goes_on_past_a_failure() {
    let sb = Sandbox::start(3, Default::default()).unwrap();
    let dir = sb.dir.path();
    // A bad file: every bad row named by its line, nothing started.
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "leaver,successor,options\nbertrand,nathalie,\nhelene,helene,\nmarc,,\nlea,paul,--bogus\n",
    )
    .unwrap();
    let r = offboard(&sb, &["batch", bad.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code, 64, "{}\n{}", r.stdout, r.stderr);
    for line in ["line 3:", "line 4:", "line 5:"] {
        assert!(r.stderr.contains(line), "{line}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("line 2:"), "{}", r.stderr);
    let su_calls = |sb: &Sandbox| {
        sb.bluemind
            .state()
            .requests
            .iter()
            .filter(|r| r.contains("/auth/_su"))
            .count()
    };
    assert_eq!(su_calls(&sb), 0, "a bad file started something");
    let latin1 = dir.join("latin1.csv");
    std::fs::write(&latin1, b"leaver,successor\nh\xe9l\xe8ne,nathalie\n").unwrap();
    let r = offboard(&sb, &["batch", latin1.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    assert!(r.stderr.contains("not UTF-8"), "{}", r.stderr);

    // Two rows share nathalie (they must not run at once: the second would find her locked,
    // exit 39) and one names nobody; the unknown leaver fails alone.
    let list = dir.join("leavers.csv");
    std::fs::write(
        &list,
        "leaver,successor,folder,options\n\
         bertrand,nathalie,,--forward-days 7\n\
         helene,nathalie,Archives Hélène,--no-lock --no-auto-reply\n\
         nobody,nathalie,,\n",
    )
    .unwrap();
    let plan = offboard(&sb, &["batch", list.to_str().unwrap(), "--dry-run", "--json"]);
    let p: Value = serde_json::from_str(&plan.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", plan.stdout, plan.stderr));
    let statuses = |d: &Value| -> Vec<String> {
        d["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(statuses(&p), ["planned", "planned", "failed"], "{p}");
    assert_eq!(plan.code, 46);
    assert!(
        sb.bluemind
            .state()
            .keys
            .iter()
            .all(|k| !k.display_name.starts_with("offboard ")),
        "the plan minted a key"
    );
    assert!(
        !sb.bluemind
            .state()
            .user("B3F1C2A0-0001-4ED2-997C-4A4F39933D18")
            .unwrap()
            .hidden,
        "the plan changed something"
    );

    let r = offboard(
        &sb,
        &[
            "batch",
            list.to_str().unwrap(),
            "--yes",
            "--json",
            "--parallel",
            "3",
        ],
    );
    assert_eq!(r.code, 46, "{}\n{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(statuses(&doc), ["ok", "ok", "failed"], "{doc}");
    assert_eq!(doc["rows"][2]["exit_code"], 32);
    assert!(doc["rows"][2]["error"].as_str().unwrap().contains("nobody"));
    for row in doc["rows"].as_array().unwrap().iter().take(2) {
        crate::support::assert_report_schema(&row["report"]);
    }
    assert_eq!(
        doc["rows"][1]["report"]["folder"], "Archives Hélène",
        "the row's folder"
    );
    let ids: Vec<&str> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report"]["run_id"].as_str().unwrap())
        .collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2],
        "rows share a run id (journal, key names): {ids:?}"
    );
    let dst = testkit::readback::snapshot(sb.dovecot.imap_port, testkit::NATHALIE.0).unwrap();
    assert!(
        dst.folder("Bertrand Dupré/INBOX").is_some()
            && dst.folders.keys().any(|k| k.starts_with("Archives Hélène")),
        "{:?}",
        dst.folders.keys().collect::<Vec<_>>()
    );
    {
        let st = sb.bluemind.state();
        assert!(
            st.user("B3F1C2A0-0001-4ED2-997C-4A4F39933D18").unwrap().hidden,
            "bertrand's row: locked"
        );
        assert!(
            !st.user("C9D4E5F6-0003-4ED2-997C-4A4F39933D18").unwrap().hidden,
            "hélène's row said --no-lock"
        );
    }
    // Again: the finished rows are reported done, not run again.
    let before = su_calls(&sb);
    let r = offboard(&sb, &["batch", list.to_str().unwrap(), "--yes", "--json"]);
    assert_eq!(r.code, 46, "{}\n{}", r.stdout, r.stderr);
    let again: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(statuses(&again), ["done", "done", "failed"], "{again}");
    assert_eq!(again["rows"][0]["done_by"], doc["rows"][0]["report"]["run_id"]);
    // Only the failed row is tried again, and it fails before any session.
    assert_eq!(
        su_calls(&sb),
        before,
        "a finished row ran again: {}\n{:?}",
        r.stdout,
        sb.bluemind
            .state()
            .requests
            .iter()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
    );
}

/// A run of `offboard` as a pipe would see it (no terminal), with the given environment.
fn piped(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::cargo_bin("offboard").unwrap();
    cmd.arg("--config").arg(&sb.config).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.env_remove("OFFBOARD_ADMIN_KEY").output().unwrap())
}

#[test]
fn progress_is_a_line_without_a_terminal_bars_on_one_and_nothing_when_quiet() {
    let sb = Sandbox::start(60, Default::default()).unwrap();
    // Without a terminal: progress lines on stderr (every 0 s here instead of 30), the
    // report on stdout untouched.
    let r = piped(
        &sb,
        &["bertrand", "--to", "nathalie", "--yes", "--json", "--no-lock"],
        &[("OFFBOARD_PROGRESS_EVERY", "0")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("progress: ")).collect();
    assert!(lines.len() > 10, "{}", r.stderr);
    assert!(
        lines.last().unwrap().contains(" messages, ") && lines.last().unwrap().contains("/s)"),
        "{lines:?}"
    );
    let doc: Value = serde_json::from_str(&r.stdout).expect("stdout is the JSON report alone");
    crate::support::assert_report_schema(&doc);
    // --quiet: no progress, no folder lines; the report still comes.
    let sb = Sandbox::start(60, Default::default()).unwrap();
    let r = piped(
        &sb,
        &["bertrand", "--to", "nathalie", "--yes", "--quiet"],
        &[("OFFBOARD_PROGRESS_EVERY", "0")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stderr.contains("progress: ") && !r.stdout.contains(" -> "),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("Offboarded:"), "{}", r.stdout);

    // On a terminal: bars, and log lines (-vv) printed whole above them.
    let sb = Sandbox::start(150, Default::default()).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("offboard");
    let line = format!(
        "'{}' --config '{}' bertrand --to nathalie --yes -vv --no-lock",
        bin.display(),
        sb.config.display()
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env_remove("OFFBOARD_ADMIN_KEY")
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Offboarded:"), "{text}");
    // The bars were drawn, and every log line is whole: it starts a line of its own (after
    // the terminal's escapes are taken out) and is never cut by a bar.
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for x in chars.by_ref() {
                    if x.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    let segments: Vec<&str> = plain.split(['\n', '\r']).map(str::trim).collect();
    assert!(
        segments
            .iter()
            .any(|l| l.starts_with("all ") && l.contains(" messages")),
        "no progress bar drawn: {plain}"
    );
    let logs: Vec<&&str> = segments.iter().filter(|l| l.contains("DEBUG")).collect();
    assert!(!logs.is_empty(), "no log line: {plain}");
    for l in logs {
        assert!(
            l.starts_with("20"),
            "a log line shares its line with something else: {l:?}"
        );
    }
}
