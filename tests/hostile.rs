//! Hostile data: messages and folder names that break naive tools. Each is stored on the
//! source as it is (where the server takes it), then copied: nothing lost, nothing
//! duplicated, and a clear line in the report for what could not be copied.

use crate::imapsync_compat::{cross_line, offboard, two_servers};
use testkit::{BERTRAND, NATHALIE, readback};

const DATE: &str = "01-Feb-2024 10:00:00 +0100";

/// The messages, by what makes them hostile.
fn hostile_messages() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge_header = String::from("Message-ID: <huge-header@example>\r\nSubject: a 1 MB header\r\n");
    while huge_header.len() < 1 << 20 {
        huge_header.push_str("X-Filler: ");
        huge_header.push_str(&"h".repeat(900));
        huge_header.push_str("\r\n");
    }
    huge_header.push_str("\r\nbody\r\n");
    let long_line = format!(
        "Message-ID: <long-line@example>\r\nSubject: a 100 KB line\r\n\r\n{}\r\n",
        "l".repeat(100 * 1024)
    );
    vec![
        (
            "bare LF",
            b"Message-ID: <bare-lf@example>\nSubject: bare LF\n\nline one\nline two\n".to_vec(),
        ),
        (
            "NUL bytes",
            b"Message-ID: <nul@example>\r\nSubject: NUL\r\n\r\nbefore\0after\r\n".to_vec(),
        ),
        (
            "8-bit headers",
            "Message-ID: <8bit@example>\r\nSubject: Réunion d'équipe à 10h\r\nFrom: Hélène <h@example>\r\n\r\nCorps.\r\n"
                .as_bytes()
                .to_vec(),
        ),
        ("no header at all", b"\r\njust a body, no header\r\n".to_vec()),
        ("1 MB header block", huge_header.into_bytes()),
        ("100 KB line", long_line.into_bytes()),
        (
            "duplicate of the 8-bit one",
            "Message-ID: <8bit@example>\r\nSubject: Réunion d'équipe à 10h\r\nFrom: Hélène <h@example>\r\n\r\nCorps.\r\n"
                .as_bytes()
                .to_vec(),
        ),
    ]
}

/// Folder names with IMAP's special characters, non-ASCII text, and 30 levels.
fn hostile_folders() -> Vec<String> {
    let deep: Vec<String> = (1..=30).map(|n| format!("L{n:02}")).collect();
    vec![
        "A & B".into(),
        "100% sûr".into(),
        "star*".into(),
        "say \"hi\"".into(),
        "back\\slash".into(),
        "Été 日本語 📬".into(),
        deep.join("/"),
    ]
}

#[test]
fn hostile_messages_and_folder_names_are_copied_or_reported_never_lost_or_doubled() {
    let (a, b, dir) = two_servers(Default::default());
    let mut src = a.connect_as(BERTRAND.0).unwrap();
    // The folders the source server accepts (a refusal here is the server's rule, said).
    let mut folders = vec!["INBOX".to_string()];
    for name in hostile_folders() {
        let wire = testkit::mutf7::encode(&name);
        let mut path = String::new();
        let mut made = true;
        for part in wire.split('/') {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            made &= src
                .command(&format!("CREATE {}", testkit::wire::quote(&path)))
                .is_ok()
                || src
                    .command(&format!("STATUS {} (MESSAGES)", testkit::wire::quote(&path)))
                    .is_ok();
        }
        if made {
            folders.push(name);
        } else {
            eprintln!("the source server refused the folder name {name:?}");
        }
    }
    assert!(folders.len() >= 6, "the source took only {folders:?}");
    let mut stored = 0;
    let mut refused_by_source = Vec::new();
    for folder in &folders {
        let wire = testkit::mutf7::encode(folder);
        for (what, body) in hostile_messages() {
            match src.multiappend(&wire, &[("\\Seen".into(), DATE.into(), &body)]) {
                Ok(()) => stored += 1,
                Err(e) => refused_by_source.push(format!("{what} in {folder}: {e}")),
            }
        }
    }
    src.logout();
    assert!(
        stored >= folders.len() * 5,
        "stored {stored}; refused: {refused_by_source:?}"
    );
    // The destination already has a folder of the same name holding other mail.
    let mut dst = b.connect_as(NATHALIE.0).unwrap();
    dst.command("CREATE \"Bertrand\"").unwrap();
    dst.command("CREATE \"Bertrand/INBOX\"").unwrap();
    let hers = b"Message-ID: <hers@example>\r\nSubject: Nathalie's own\r\n\r\nmine\r\n";
    dst.multiappend("Bertrand/INBOX", &[(String::new(), DATE.into(), hers)])
        .unwrap();
    dst.logout();

    let state = tempfile::tempdir().unwrap();
    let r = offboard(&a, state.path(), &cross_line(&a, &b, &dir));
    let out = format!("{}\n{}", r.stdout, r.stderr);
    assert!(!out.contains("panicked"), "{out}");

    let source = readback::snapshot(a.imap_port, BERTRAND.0).unwrap();
    let dest = readback::snapshot(b.imap_port, NATHALIE.0).unwrap();
    let mut failed_lines = 0;
    for folder in &folders {
        let s = source.folder(folder).unwrap_or_else(|| panic!("source {folder}"));
        let target = format!("Bertrand/{folder}");
        let t = dest
            .folder(&target)
            .unwrap_or_else(|| panic!("{target} missing:\n{out}"));
        let got = t.content();
        let mut want = s.content();
        if folder == "INBOX" {
            // Hers is still there, beside his.
            assert!(got.len() > want.len());
        }
        // Everything that arrived is a source message, none twice more than on the source.
        for m in &got {
            let in_src = want.iter().filter(|w| *w == m).count();
            let in_dst = got.iter().filter(|g| *g == m).count();
            if folder != "INBOX" || in_src > 0 {
                assert_eq!(
                    in_dst, in_src,
                    "{target}: {m:?} copied {in_dst} times, {in_src} on the source"
                );
            }
        }
        // What did not arrive is reported, folder and UID.
        want.retain(|w| !got.contains(w));
        for missing in &want {
            let uid = s
                .messages
                .iter()
                .find(|m| m.sha256 == missing.0)
                .map(|m| m.uid)
                .unwrap();
            assert!(
                r.stdout.contains(&format!("{folder}, UID {uid}: ")),
                "{folder} UID {uid} neither copied nor reported:\n{out}"
            );
            failed_lines += 1;
        }
    }
    if failed_lines == 0 {
        assert_eq!(r.code, 0, "{out}");
    } else {
        assert_ne!(r.code, 0, "{out}");
    }
    // A re-run copies nothing new and doubles nothing.
    let again = offboard(&a, state.path(), &cross_line(&a, &b, &dir));
    assert!(
        again.stdout.contains("Messages transferred           : 0 "),
        "{}\n{}",
        again.stdout,
        again.stderr
    );
    let after = readback::snapshot(b.imap_port, NATHALIE.0).unwrap();
    assert_eq!(after.total(), dest.total(), "the re-run added messages");
}
