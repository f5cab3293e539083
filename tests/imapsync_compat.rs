//! `offboard imapsync` with imapsync command lines, against the real Dovecot: the BlueMind
//! admin guide's seed lines, re-runs, resume, and the cases where imapsync loses mail.

use crate::support::Run;
use assert_cmd::Command;
use std::collections::BTreeSet;
use testkit::{BERTRAND, Dovecot, MailboxSpec, NATHALIE, fill, readback};

/// The seed line of the BlueMind admin guide, host and ports pointed at the harness.
pub(crate) fn seed_line(d: &Dovecot, dry: bool, just_folders: bool) -> Vec<String> {
    let mut v: Vec<String> = [
        "imapsync",
        "--host1",
        "localhost",
        "--port1",
        &d.imap_port.to_string(),
        "--user1",
        BERTRAND.0,
        "--password1",
        BERTRAND.1,
        "--host2",
        "localhost",
        "--user2",
        NATHALIE.0,
        "--password2",
        NATHALIE.1,
        "--authmech2",
        "PLAIN",
        "--port2",
        &d.imap_port.to_string(),
        "--sep1",
        "/",
        "--exclude",
        "^Dossiers partag",
        "--exclude",
        "^Outbox",
        "--exclude",
        "^Junk",
        "--exclude",
        "^Trash",
        "--exclude",
        "^Autres utilisateurs",
        "--nofoldersizes",
        "--buffersize",
        "8192000",
        "--sep2",
        "/",
        "--subfolder2",
        "Nathalie",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if just_folders {
        v.push("--justfolders".into());
    }
    if dry {
        v.push("--dry".into());
    }
    v
}

pub(crate) fn offboard(d: &Dovecot, state: &std::path::Path, args: &[String]) -> Run {
    let out = Command::cargo_bin("offboard")
        .unwrap()
        .args(args)
        .arg("--state-dir")
        .arg(state)
        // The harness's STARTTLS certificate is signed by its test CA: trust it the standard way.
        .env("SSL_CERT_FILE", &d.pki.ca_cert)
        .env_remove("IMAPSYNC_PASSWORD1")
        .env_remove("IMAPSYNC_PASSWORD2")
        .output()
        .unwrap();
    Run::from(out)
}

/// Bertrand's mailbox, a shared folder of Nathalie's he can read, and a public folder.
pub(crate) fn scenario(d: &Dovecot, messages: usize) -> Vec<testkit::SeedMessage> {
    let msgs = fill::fill(d.imap_port, BERTRAND.0, &MailboxSpec::leaver(11, messages)).unwrap();
    fill::fill(
        d.imap_port,
        NATHALIE.0,
        &MailboxSpec {
            folders: vec!["INBOX".into(), "Equipe".into()],
            ..MailboxSpec::leaver(12, 6)
        },
    )
    .unwrap();
    let mut n = testkit::wire::Conn::login(d.imap_port, NATHALIE.0, NATHALIE.1).unwrap();
    n.command(&format!("SETACL \"Equipe\" {} lr", BERTRAND.0))
        .unwrap();
    n.logout();
    d.create_public_folder("compta", &[(&format!("user={}", BERTRAND.0), "lrs")])
        .unwrap();
    msgs
}

const EXCLUDED: [&str; 4] = ["Junk", "Trash", "Outbox", "Dossiers partagés"];

fn expected_folders(msgs: &[testkit::SeedMessage]) -> BTreeSet<String> {
    msgs.iter()
        .map(|m| m.folder.clone())
        .filter(|f| !EXCLUDED.iter().any(|e| f.starts_with(e)))
        .collect()
}

/// The destination subtree equals the source folders, message for message.
pub(crate) fn assert_copied(d: &Dovecot, msgs: &[testkit::SeedMessage]) {
    let src = readback::snapshot(d.imap_port, BERTRAND.0).unwrap();
    let dst = readback::snapshot(d.imap_port, NATHALIE.0).unwrap();
    for folder in expected_folders(msgs) {
        let s = src.folder(&folder).unwrap();
        let target = format!("Nathalie/{folder}");
        let t = dst.folder(&target).unwrap_or_else(|| panic!("{target} missing"));
        assert_eq!(t.content(), s.content(), "content of {target}");
        assert!(t.subscribed, "{target} not subscribed");
    }
    let under: Vec<_> = dst
        .folders
        .keys()
        .filter(|k| k.starts_with("Nathalie/"))
        .cloned()
        .collect();
    for f in &under {
        assert!(
            !EXCLUDED.iter().any(|e| f.starts_with(&format!("Nathalie/{e}"))),
            "excluded folder copied: {f}"
        );
        assert!(
            !f.contains("Autres utilisateurs") && !f.contains("Equipe"),
            "someone else's folder copied: {f}"
        );
    }
}

#[test]
fn seed_line_copies_exactly_the_expected_tree_and_a_rerun_copies_nothing() {
    let d = Dovecot::start().unwrap();
    let msgs = scenario(&d, 150);
    let state = tempfile::tempdir().unwrap();
    let r = offboard(&d, state.path(), &seed_line(&d, false, false));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("--password1 puts the password on the command line"),
        "{}",
        r.stderr
    );
    assert!(
        !format!("{}{}", r.stdout, r.stderr).contains(BERTRAND.1),
        "password shown"
    );
    assert!(
        r.stdout
            .contains("[Projets/Client &AOk-] = [Projets/Client é] -> [Nathalie/Projets/Client é]"),
        "{}",
        r.stdout
    );
    assert_copied(&d, &msgs);
    let copied = expected_folders(&msgs)
        .iter()
        .map(|f| msgs.iter().filter(|m| &m.folder == f).count())
        .sum::<usize>();
    assert!(
        r.stdout
            .contains(&format!("Messages transferred           : {copied} ")),
        "{}",
        r.stdout
    );
    // Every synced folder's count was read back after the copy.
    let synced = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Folders synced                 : "))
        .and_then(|rest| rest.split('/').nth(1))
        .and_then(|n| n.split_whitespace().next())
        .unwrap_or_else(|| panic!("no folder count: {}", r.stdout))
        .to_string();
    assert!(
        r.stdout
            .contains(&format!("Folders verified               : {synced}/{synced} ")),
        "{}",
        r.stdout
    );

    let again = offboard(&d, state.path(), &seed_line(&d, false, false));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("Messages transferred           : 0 "),
        "{}",
        again.stdout
    );
    assert_copied(&d, &msgs);
}

#[test]
fn seed_line_dry_run_changes_nothing_and_says_what_it_would_do() {
    let d = Dovecot::start().unwrap();
    let msgs = scenario(&d, 40);
    let before = readback::snapshot(d.imap_port, NATHALIE.0).unwrap();
    let state = tempfile::tempdir().unwrap();
    for just_folders in [true, false] {
        let r = offboard(&d, state.path(), &seed_line(&d, true, just_folders));
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("dry run: nothing was changed"), "{}", r.stdout);
        // Nothing is created in a dry run, and the output says so (issue 13).
        assert!(
            r.stdout.contains("Nathalie/Projets/Client é (would create)") && !r.stdout.contains("(created)"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("Folders would create"), "{}", r.stdout);
        if !just_folders {
            let n = expected_folders(&msgs)
                .iter()
                .map(|f| msgs.iter().filter(|m| &m.folder == f).count())
                .sum::<usize>();
            assert!(
                r.stdout.contains(&format!("could be {n} without dry mode")),
                "{}",
                r.stdout
            );
        }
    }
    let after = readback::snapshot(d.imap_port, NATHALIE.0).unwrap();
    assert_eq!(
        before.folders.keys().collect::<Vec<_>>(),
        after.folders.keys().collect::<Vec<_>>()
    );
    assert_eq!(before.total(), after.total());
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "dry run wrote state"
    );
}

#[test]
fn seed_line_just_folders_creates_the_tree_without_messages() {
    let d = Dovecot::start().unwrap();
    let msgs = scenario(&d, 30);
    let state = tempfile::tempdir().unwrap();
    let r = offboard(&d, state.path(), &seed_line(&d, false, true));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let dst = readback::snapshot(d.imap_port, NATHALIE.0).unwrap();
    for f in expected_folders(&msgs) {
        let t = dst
            .folder(&format!("Nathalie/{f}"))
            .unwrap_or_else(|| panic!("Nathalie/{f} missing"));
        assert!(t.messages.is_empty() && t.subscribed);
    }
    assert!(dst.folder("Nathalie").unwrap().subscribed);
}

#[test]
fn messages_without_message_id_duplicates_flags_dates_and_a_20_mb_message_arrive_exactly() {
    let d = Dovecot::start().unwrap();
    let mut spec = MailboxSpec::leaver(21, 60);
    spec.folders = vec!["INBOX".into(), "Archives/2023/Été".into()];
    spec.large = 1;
    spec.large_size = 20 << 20;
    spec.duplicates = 3;
    let mut msgs = fill::generate(&spec);
    // Messages with no Message-ID and no Received: imapsync skips them without --addheader.
    for (i, m) in msgs.iter_mut().take(4).enumerate() {
        let text = String::from_utf8(m.bytes.clone()).unwrap();
        let kept: Vec<&str> = text
            .split("\r\n")
            .filter(|l| !l.starts_with("Message-ID:") && !l.starts_with("Received:") && !l.starts_with('\t'))
            .collect();
        m.bytes = kept
            .join("\r\n")
            .replace("Subject: ", &format!("Subject: [no id {i}] "))
            .into_bytes();
    }
    fill::append_all(d.imap_port, BERTRAND.0, &spec.folders, &msgs).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut line = seed_line(&d, false, false);
    line.retain(|a| a != "--password1" && a != BERTRAND.1);
    let pass = state.path().join("pass1");
    std::fs::write(&pass, format!("{}\n", BERTRAND.1)).unwrap();
    line.extend(["--passfile1".to_string(), pass.display().to_string()]);
    let r = offboard(&d, state.path(), &line);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        !r.stderr.contains("--password1 puts"),
        "warned without --password1"
    );
    let src = readback::snapshot(d.imap_port, BERTRAND.0).unwrap();
    let dst = readback::snapshot(d.imap_port, NATHALIE.0).unwrap();
    for f in &spec.folders {
        assert_eq!(
            dst.folder(&format!("Nathalie/{f}")).unwrap().content(),
            src.folder(f).unwrap().content(),
            "{f}"
        );
    }
    assert!(
        dst.folder("Nathalie/INBOX")
            .unwrap()
            .messages
            .iter()
            .chain(&dst.folder("Nathalie/Archives/2023/Été").unwrap().messages)
            .any(|m| m.size > 20 << 20)
    );
    let again = offboard(&d, state.path(), &line);
    assert!(
        again.stdout.contains("Messages transferred           : 0 "),
        "{}",
        again.stdout
    );
    assert_eq!(
        readback::snapshot(d.imap_port, NATHALIE.0).unwrap().total(),
        dst.total()
    );
}

#[test]
fn a_destination_filled_earlier_without_journal_is_not_filled_twice() {
    let d = Dovecot::start().unwrap();
    let msgs = scenario(&d, 50);
    let first = tempfile::tempdir().unwrap();
    assert_eq!(offboard(&d, first.path(), &seed_line(&d, false, false)).code, 0);
    // Another machine, no journal (as after imapsync or a lost state directory).
    let second = tempfile::tempdir().unwrap();
    let r = offboard(&d, second.path(), &seed_line(&d, false, false));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Messages transferred           : 0 "),
        "{}",
        r.stdout
    );
    assert_copied(&d, &msgs);
}

#[test]
fn killed_mid_copy_then_rerun_ends_with_exactly_the_source_set() {
    let d = Dovecot::start().unwrap();
    let mut spec = MailboxSpec::leaver(31, 300);
    spec.duplicates = 4;
    let msgs = fill::fill(d.imap_port, BERTRAND.0, &spec).unwrap();
    let state = tempfile::tempdir().unwrap();
    for delay_ms in [150u64, 400, 900] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("offboard"))
            .args(seed_line(&d, false, false))
            .arg("--state-dir")
            .arg(state.path())
            .env("SSL_CERT_FILE", &d.pki.ca_cert)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no cleanup runs.
        let _ = child.wait();
    }
    let r = offboard(&d, state.path(), &seed_line(&d, false, false));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_copied(&d, &msgs);
    let again = offboard(&d, state.path(), &seed_line(&d, false, false));
    assert!(
        again.stdout.contains("Messages transferred           : 0 "),
        "{}",
        again.stdout
    );
}

#[test]
fn usage_and_connection_errors_use_imapsync_exit_codes() {
    let d = Dovecot::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut bad = seed_line(&d, true, false);
    bad.push("--frobnicate".into());
    let r = offboard(&d, state.path(), &bad);
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("unknown option: --frobnicate"), "{}", r.stderr);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut line = seed_line(&d, true, false);
    let at = line.iter().position(|a| a == "--port2").unwrap();
    line[at + 1] = closed;
    assert_eq!(offboard(&d, state.path(), &line).code, 102);
    let mut line = seed_line(&d, true, false);
    let at = line.iter().position(|a| a == "--password2").unwrap();
    line[at + 1] = "wrong-password".into();
    let r = offboard(&d, state.path(), &line);
    assert_eq!(r.code, 162, "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-password"));
    let mut line = seed_line(&d, true, false);
    line.extend(["--passfile1".into(), "/nonexistent/pass".into()]);
    assert_eq!(offboard(&d, state.path(), &line).code, 66);
}

/// Two servers: the source as usual, the destination refusing big messages or full.
pub(crate) fn two_servers(dest: testkit::DovecotOptions) -> (Dovecot, Dovecot, tempfile::TempDir) {
    let a = Dovecot::start().unwrap();
    let b = Dovecot::start_with(dest).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cas = format!(
        "{}{}",
        std::fs::read_to_string(&a.pki.ca_cert).unwrap(),
        std::fs::read_to_string(&b.pki.ca_cert).unwrap()
    );
    std::fs::write(dir.path().join("cas.pem"), cas).unwrap();
    (a, b, dir)
}

pub(crate) fn cross_line(a: &Dovecot, b: &Dovecot, dir: &tempfile::TempDir) -> Vec<String> {
    for (name, pw) in [("p1", BERTRAND.1), ("p2", NATHALIE.1)] {
        std::fs::write(dir.path().join(name), pw).unwrap();
    }
    [
        "imapsync",
        "--host1",
        "localhost",
        "--ssl1",
        "--port1",
        &a.imaps_port.to_string(),
        "--user1",
        BERTRAND.0,
        "--passfile1",
        &dir.path().join("p1").display().to_string(),
        "--host2",
        "localhost",
        "--port2",
        &b.imap_port.to_string(),
        "--tls2",
        "--user2",
        NATHALIE.0,
        "--passfile2",
        &dir.path().join("p2").display().to_string(),
        "--ca-file",
        &dir.path().join("cas.pem").display().to_string(),
        "--subfolder2",
        "Bertrand",
        "--exclude",
        "^(Junk|Trash|Outbox)$",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn messages_the_destination_refuses_are_reported_and_the_run_goes_on() {
    let (a, b, dir) = two_servers(testkit::DovecotOptions {
        max_mail_size: Some(1 << 20),
        ..Default::default()
    });
    let mut spec = MailboxSpec::leaver(41, 30);
    spec.folders = vec!["INBOX".into(), "Projets".into()];
    spec.large = 2;
    spec.large_size = 2 << 20;
    let msgs = fill::fill(a.imap_port, BERTRAND.0, &spec).unwrap();
    let state = tempfile::tempdir().unwrap();
    let r = offboard(&a, state.path(), &cross_line(&a, &b, &dir));
    assert_eq!(r.code, 114, "{}\n{}", r.stdout, r.stderr);
    let big: Vec<_> = readback::snapshot(a.imap_port, BERTRAND.0)
        .unwrap()
        .folders
        .into_iter()
        .flat_map(|(f, s)| {
            s.messages
                .into_iter()
                .filter(|m| m.size > 1 << 20)
                .map(move |m| (f.clone(), m.uid))
        })
        .collect();
    assert_eq!(big.len(), 2);
    for (folder, uid) in &big {
        assert!(
            r.stdout.contains(&format!("{folder}, UID {uid}: ")),
            "refusal of {folder} UID {uid} not reported:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("Messages failed                : 2"),
        "{}",
        r.stdout
    );
    let dst = readback::snapshot(b.imap_port, NATHALIE.0).unwrap();
    let small = msgs.iter().filter(|m| m.bytes.len() <= 1 << 20).count();
    assert_eq!(dst.total(), small, "every other message arrives");
}

#[test]
fn a_full_destination_exits_with_the_quota_code() {
    let (a, b, dir) = two_servers(testkit::DovecotOptions {
        quota_kib: Some(100),
        ..Default::default()
    });
    let mut spec = MailboxSpec::leaver(42, 60);
    spec.folders = vec!["INBOX".into()];
    fill::fill(a.imap_port, BERTRAND.0, &spec).unwrap();
    let state = tempfile::tempdir().unwrap();
    let r = offboard(&a, state.path(), &cross_line(&a, &b, &dir));
    assert_eq!(r.code, 113, "{}\n{}", r.stdout, r.stderr);
    let copied = readback::snapshot(b.imap_port, NATHALIE.0).unwrap().total();
    assert!(copied > 0 && copied < 60, "{copied}");
}

#[test]
fn flags_of_copied_messages_are_left_alone_unless_resyncflags() {
    let d = Dovecot::start().unwrap();
    let mut spec = MailboxSpec::leaver(51, 20);
    spec.folders = vec!["INBOX".into()];
    spec.duplicates = 0;
    fill::fill(d.imap_port, BERTRAND.0, &spec).unwrap();
    let state = tempfile::tempdir().unwrap();
    assert_eq!(offboard(&d, state.path(), &seed_line(&d, false, false)).code, 0);
    // The leaver's side changes after the copy; so does the successor's.
    let mut b = d.connect_as(BERTRAND.0).unwrap();
    b.command("SELECT INBOX").unwrap();
    b.command("UID STORE 1:* +FLAGS.SILENT (\\Flagged $Important)")
        .unwrap();
    b.logout();
    let mut n = d.connect_as(NATHALIE.0).unwrap();
    n.command("SELECT Nathalie/INBOX").unwrap();
    n.command("UID STORE 1 -FLAGS.SILENT (\\Seen)").unwrap();
    n.command("UID STORE 1 +FLAGS.SILENT ($Successor)").unwrap();
    n.logout();
    let before = readback::folder(d.imap_port, NATHALIE.0, "Nathalie/INBOX").unwrap();
    assert_eq!(offboard(&d, state.path(), &seed_line(&d, false, false)).code, 0);
    assert_eq!(
        readback::folder(d.imap_port, NATHALIE.0, "Nathalie/INBOX").unwrap(),
        before,
        "flags changed without --resyncflags"
    );

    let mut line = seed_line(&d, false, false);
    line.push("--resyncflags".into());
    let r = offboard(&d, state.path(), &line);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let src = readback::folder(d.imap_port, BERTRAND.0, "INBOX").unwrap();
    let dst = readback::folder(d.imap_port, NATHALIE.0, "Nathalie/INBOX").unwrap();
    let strip = |v: &[testkit::MessageSnapshot]| {
        let mut c: Vec<_> = v.iter().map(|m| (m.sha256.clone(), m.flags.clone())).collect();
        c.sort();
        c
    };
    assert_eq!(strip(&dst), strip(&src), "{}", r.stdout);
    assert!(
        dst.iter()
            .all(|m| m.flags.contains("\\Flagged") && !m.flags.contains("$Successor"))
    );
    // Nothing changed since: even with --resyncflags the folder is skipped (HIGHESTMODSEQ).
    line.push("--json".into());
    let r = offboard(&d, state.path(), &line);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let inbox = doc["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "INBOX")
        .unwrap()
        .clone();
    assert_eq!(inbox["unchanged"], true, "{inbox}");
}

#[test]
fn justlogin_justconnect_and_missing_subfolder1() {
    let d = Dovecot::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut line = seed_line(&d, false, false);
    line.push("--justlogin".into());
    let r = offboard(&d, state.path(), &line);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Exiting because of --justlogin") && r.stdout.contains("IMAP4REV1"),
        "{}",
        r.stdout
    );
    let mut line = seed_line(&d, false, false);
    line.push("--justconnect".into());
    let r = offboard(&d, state.path(), &line);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Host2 localhost:"), "{}", r.stdout);
    let mut line = seed_line(&d, false, false);
    line.extend(["--subfolder1".into(), "Nope".into()]);
    assert_eq!(offboard(&d, state.path(), &line).code, 21);
    assert!(
        readback::snapshot(d.imap_port, NATHALIE.0)
            .unwrap()
            .folder("Nathalie")
            .is_none(),
        "changed something"
    );
}

#[test]
fn include_folder_maxage_and_json_report() {
    let d = Dovecot::start().unwrap();
    let msgs = fill::fill(d.imap_port, BERTRAND.0, &MailboxSpec::leaver(61, 80)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut line = seed_line(&d, false, false);
    line.extend(
        ["--include", "^Projets", "--folder", "Sent", "--json"]
            .iter()
            .map(|s| s.to_string()),
    );
    let r = offboard(&d, state.path(), &line);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let dests: BTreeSet<String> = doc["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["dest"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = [
        "Nathalie/Projets",
        "Nathalie/Projets/Client é",
        "Nathalie/Projets/Client é/2024",
        "Nathalie/Sent",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(dests, want);
    let copied: u64 = doc["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["copied"].as_u64().unwrap())
        .sum();
    let expected = msgs
        .iter()
        .filter(|m| m.folder.starts_with("Projets") || m.folder == "Sent")
        .count() as u64;
    assert_eq!(copied, expected);
    // --maxage 1: every seeded message is years old, so nothing is in scope.
    let mut line = seed_line(&d, false, false);
    line.extend(
        ["--maxage", "1", "--subfolder2", "Recent"]
            .iter()
            .map(|s| s.to_string()),
    );
    let r = offboard(&d, state.path(), &line);
    assert!(
        r.stdout.contains("Messages found in host1        : 0 "),
        "{}",
        r.stdout
    );
}

/// A server that strips STARTTLS (as an attacker in the middle would) and records every line
/// it receives: the stripped offer must never make the password travel in clear.
fn stripping_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming().take(4).flatten() {
            let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut w = sock.try_clone().unwrap();
            let _ = w.write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] stripped\r\n");
            for line in BufReader::new(sock).lines() {
                let Ok(line) = line else { break };
                log.lock().unwrap().push(line.clone());
                let tag = line.split(' ').next().unwrap_or("*").to_string();
                let answer = if line.to_ascii_uppercase().contains("CAPABILITY") {
                    format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
                } else if line.to_ascii_uppercase().contains("STARTTLS") {
                    format!("{tag} BAD unknown command\r\n")
                } else {
                    format!("{tag} NO no\r\n")
                };
                if w.write_all(answer.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (port, seen)
}

/// Issue 11: with STARTTLS stripped, `offboard imapsync` refuses (exit 12) and sends no
/// credential; only `--notls1` sends one in clear, because the command line says so.
#[test]
fn a_stripped_starttls_never_makes_the_password_travel_in_clear() {
    let (port, seen) = stripping_server();
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("p");
    std::fs::write(&pass, "s3cret-password").unwrap();
    let line = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "imapsync",
            "--host1",
            "127.0.0.1",
            "--port1",
            &port.to_string(),
            "--user1",
            "bertrand",
            "--passfile1",
            &pass.display().to_string(),
            "--host2",
            "127.0.0.1",
            "--port2",
            "1",
            "--user2",
            "nathalie",
            "--passfile2",
            &pass.display().to_string(),
            "--timeout",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let d = Dovecot::start().unwrap();
    let r = offboard(&d, dir.path(), &line(&[]));
    assert_eq!(r.code, 12, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("does not offer STARTTLS"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--notls1"),
        "the hint names the option: {}",
        r.stderr
    );
    let lines = seen.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.to_ascii_uppercase().contains("STARTTLS")));
    assert!(
        !lines.iter().any(|l| {
            let u = l.to_ascii_uppercase();
            u.contains("LOGIN") || u.contains("AUTHENTICATE") || l.contains("s3cret")
        }),
        "a credential was sent: {lines:?}"
    );
    // Asked for in so many words, the plaintext login happens (and is refused here).
    let r = offboard(&d, dir.path(), &line(&["--notls1"]));
    assert_eq!(r.code, 161, "{}\n{}", r.stdout, r.stderr);
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.to_ascii_uppercase().contains("LOGIN")
                || l.to_ascii_uppercase().contains("AUTHENTICATE")),
        "{lines:?}"
    );
}

/// A server like BlueMind 5: it takes any SASL PLAIN authorization identity and ignores it,
/// so every login opens the authenticating user's own mailbox.
fn authzid_ignoring_server() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming().take(8).flatten() {
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let mut w = sock.try_clone().unwrap();
                let _ = w.write_all(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n");
                let mut pending_auth: Option<String> = None;
                for line in BufReader::new(sock).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tag) = pending_auth.take() {
                        let _ = w.write_all(format!("{tag} OK logged in\r\n").as_bytes());
                        continue;
                    }
                    let tag = line.split(' ').next().unwrap_or("*").to_string();
                    let upper = line.to_ascii_uppercase();
                    let answer = if upper.contains("AUTHENTICATE") {
                        pending_auth = Some(tag);
                        "+ \r\n".to_string()
                    } else if upper.contains("CAPABILITY") {
                        format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
                    } else if upper.contains("STATUS") {
                        format!(
                            "* STATUS \"INBOX\" (UIDVALIDITY 7 UIDNEXT 5 MESSAGES 4)\r\n{tag} OK done\r\n"
                        )
                    } else if upper.contains("LIST") {
                        format!(
                            "* LIST () \"/\" \"INBOX\"\r\n* LIST () \"/\" \"Admin notes\"\r\n{tag} OK done\r\n"
                        )
                    } else if upper.contains("LOGOUT") {
                        format!("* BYE\r\n{tag} OK bye\r\n")
                    } else {
                        format!("{tag} OK done\r\n")
                    };
                    if w.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Issue 11: with `--authuser1` on a server that ignores the authorization identity, the
/// session is the admin's own mailbox: refused (exit 161), before anything is copied.
#[test]
fn an_ignored_authorization_identity_is_refused_not_copied_as_the_user() {
    let port = authzid_ignoring_server();
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("p");
    std::fs::write(&pass, "admin-password").unwrap();
    let p = port.to_string();
    let pass = pass.display().to_string();
    let args: Vec<String> = [
        "imapsync",
        "--host1",
        "127.0.0.1",
        "--port1",
        &p,
        "--notls1",
        "--user1",
        "bertrand",
        "--authuser1",
        "admin",
        "--passfile1",
        &pass,
        "--host2",
        "127.0.0.1",
        "--port2",
        &p,
        "--notls2",
        "--user2",
        "nathalie",
        "--passfile2",
        &pass,
        "--timeout",
        "5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let d = Dovecot::start().unwrap();
    let r = offboard(&d, dir.path(), &args);
    assert_eq!(r.code, 161, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ignored --authuser1"), "{}", r.stderr);
    assert!(r.stderr.contains("admin's own mailbox"), "{}", r.stderr);
    assert!(!r.stdout.contains("Messages transferred"), "{}", r.stdout);
    // A server that honours it (a Dovecot master user) is not refused.
    let msgs = scenario(&d, 10);
    let master = dir.path().join("m");
    std::fs::write(&master, testkit::MASTER.1).unwrap();
    let mut line = seed_line(&d, false, false);
    let at = line.iter().position(|a| a == "--password1").unwrap();
    line.splice(
        at..at + 2,
        [
            "--authuser1",
            testkit::MASTER.0,
            "--passfile1",
            &master.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let r = offboard(&d, dir.path(), &line);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_copied(&d, &msgs);
}
