//! The test ground itself: a Dovecot shaped like BlueMind, seeded mailboxes, API-key file.

use std::net::TcpStream;
use testkit::{BERTRAND, Dovecot, MailboxSpec, NATHALIE, fill, readback, wire::Conn};

#[test]
fn dovecot_stops_when_dropped() {
    let d = Dovecot::start().unwrap();
    let (port, root) = (d.imap_port, d.root().to_path_buf());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(d);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "Dovecot still listening after drop"
    );
    assert!(!root.exists(), "temp dir left behind");
}

#[test]
fn two_instances_run_side_by_side_on_their_own_ports() {
    let a = Dovecot::start().unwrap();
    let b = Dovecot::start().unwrap();
    assert_ne!(a.imap_port, b.imap_port);
    for port in [a.imap_port, a.imaps_port, b.imap_port, b.imaps_port] {
        assert!(port != 143 && port != 993);
    }
    Conn::login(a.imap_port, BERTRAND.0, BERTRAND.1).unwrap().logout();
    Conn::login(b.imap_port, NATHALIE.0, NATHALIE.1).unwrap().logout();
}

// Dovecot delays every login from an address after a failed one (auth penalty, 2–15 s), so
// each test checks its refusals last.

#[test]
fn users_log_in_with_their_passwords_only() {
    let d = Dovecot::start().unwrap();
    Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1).unwrap().logout();
    d.add_user("helene.martin@bluemind.loc", "H3lène pass").unwrap();
    Conn::login(d.imap_port, "helene.martin@bluemind.loc", "H3lène pass")
        .unwrap()
        .logout();
    assert!(Conn::login(d.imap_port, BERTRAND.0, NATHALIE.1).is_err());
    assert!(Conn::login(d.imap_port, "nobody@bluemind.loc", "x").is_err());
}

#[test]
fn api_key_is_a_password_at_once_and_stops_when_removed() {
    let d = Dovecot::start().unwrap();
    let (k1, k2, never) = ("0b5e7c1a-key-one", "9f3d2e4b-key-two", "5c6d7e8f-never-added");
    d.add_api_key(BERTRAND.0, k1).unwrap();
    d.add_api_key(BERTRAND.0, k2).unwrap();
    Conn::login(d.imap_port, BERTRAND.0, k1).unwrap().logout();
    Conn::login(d.imap_port, BERTRAND.0, k2).unwrap().logout();
    Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1).unwrap().logout();
    d.remove_api_key(BERTRAND.0, k1).unwrap();
    Conn::login(d.imap_port, BERTRAND.0, k2).unwrap().logout();
    assert!(
        Conn::login(d.imap_port, BERTRAND.0, k1).is_err(),
        "removed key still works"
    );
    assert!(Conn::login(d.imap_port, BERTRAND.0, never).is_err());
    // A key is one user's: it does not open another mailbox.
    assert!(Conn::login(d.imap_port, NATHALIE.0, k2).is_err());
}

#[test]
fn password_change_takes_effect_at_once() {
    let d = Dovecot::start().unwrap();
    d.set_password(BERTRAND.0, "N3w-pass").unwrap();
    Conn::login(d.imap_port, BERTRAND.0, "N3w-pass").unwrap().logout();
    assert!(Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1).is_err());
}

#[test]
fn namespaces_and_special_use_are_like_bluemind() {
    let d = Dovecot::start().unwrap();
    let mut c = Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1).unwrap();
    let ns = c.command("NAMESPACE").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ns[0]).trim_end(),
        r#"* NAMESPACE (("" "/")) (("Autres utilisateurs/" "/")) (("Dossiers partag&AOk-s/" "/"))"#
    );
    let list: Vec<String> = c
        .command("LIST \"\" \"*\"")
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(r).trim_end().to_string())
        .collect();
    for expected in [
        r#"* LIST (\HasNoChildren \Sent) "/" Sent"#,
        r#"* LIST (\HasNoChildren \Drafts) "/" Drafts"#,
        r#"* LIST (\HasNoChildren \Trash) "/" Trash"#,
        r#"* LIST (\HasNoChildren \Junk) "/" Junk"#,
        r#"* LIST (\HasNoChildren) "/" Outbox"#,
    ] {
        assert!(
            list.iter().any(|l| l == expected),
            "missing {expected} in {list:?}"
        );
    }
    c.logout();
}

#[test]
fn shared_and_public_folders_appear_in_their_namespaces() {
    let d = Dovecot::start().unwrap();
    fill::fill(
        d.imap_port,
        NATHALIE.0,
        &MailboxSpec {
            folders: vec!["INBOX".into(), "Dossier RH".into()],
            ..MailboxSpec::leaver(3, 5)
        },
    )
    .unwrap();
    let mut n = Conn::login(d.imap_port, NATHALIE.0, NATHALIE.1).unwrap();
    n.command(&format!("SETACL \"Dossier RH\" {} lr", BERTRAND.0))
        .unwrap();
    n.logout();
    d.create_public_folder("compta", &[(&format!("user={}", BERTRAND.0), "lrs")])
        .unwrap();
    d.create_public_folder("direction", &[]).unwrap();

    let mut b = Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1).unwrap();
    let list: Vec<String> = b
        .command("LIST \"\" \"*\"")
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(r).to_string())
        .collect();
    assert!(
        list.iter()
            .any(|l| l.contains("\"Autres utilisateurs/nathalie/Dossier RH\"")),
        "{list:?}"
    );
    assert!(
        list.iter().any(|l| l.contains("Dossiers partag&AOk-s/compta")),
        "{list:?}"
    );
    assert!(
        !list.iter().any(|l| l.contains("direction")),
        "a folder without rights is listed: {list:?}"
    );
    b.logout();
    let acl = readback::acl(d.imap_port, NATHALIE.0, "Dossier RH").unwrap();
    assert_eq!(acl.get(BERTRAND.0).map(String::as_str), Some("lr"));
}

#[test]
fn fill_is_deterministic_and_reads_back_exactly() {
    let d = Dovecot::start().unwrap();
    let mut spec = MailboxSpec::leaver(42, 120);
    spec.large = 1;
    let msgs = fill::fill(d.imap_port, BERTRAND.0, &spec).unwrap();
    assert_eq!(msgs.len(), 120 + 1 + spec.duplicates);
    // Same seed, same bytes.
    let again = fill::generate(&spec);
    assert!(
        msgs.iter()
            .zip(&again)
            .all(|(a, b)| a.bytes == b.bytes && a.flags == b.flags && a.internal_date == b.internal_date)
    );
    assert!(
        msgs.iter()
            .any(|m| !String::from_utf8_lossy(&m.bytes).contains("Message-ID:")),
        "no message without Message-ID"
    );
    assert!(msgs.iter().any(|m| m.bytes.len() > 3_000_000), "no large message");

    let snap = readback::snapshot(d.imap_port, BERTRAND.0).unwrap();
    assert_eq!(snap.total(), msgs.len());
    for f in &spec.folders {
        let folder = snap.folder(f).unwrap_or_else(|| panic!("folder {f} missing"));
        assert!(folder.subscribed, "{f} not subscribed");
        let expected = msgs.iter().filter(|m| &m.folder == f).count();
        assert_eq!(folder.messages.len(), expected, "count in {f}");
    }
    assert_eq!(
        snap.folder("Projets/Client é").unwrap().wire_name,
        "Projets/Client &AOk-"
    );
    // Flags, keywords and dates survive, compared message by message.
    let inbox: Vec<_> = msgs.iter().filter(|m| m.folder == "INBOX").collect();
    for (m, s) in inbox.iter().zip(&snap.folder("INBOX").unwrap().messages) {
        let want: std::collections::BTreeSet<String> = m.flags.iter().cloned().collect();
        assert_eq!(s.flags, want);
        let date = chrono::DateTime::parse_from_str(&m.internal_date, "%d-%b-%Y %H:%M:%S %z").unwrap();
        assert_eq!(s.internal_date, date.timestamp());
    }
    // Exact duplicates are two messages.
    let dup = &msgs[msgs.len() - 1];
    let in_folder = &snap.folder(&dup.folder).unwrap().messages;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&dup.bytes));
    assert_eq!(in_folder.iter().filter(|m| m.sha256 == sha).count(), 2);
}

/// The server kinds of `tests/servers.rs` are what they claim: BlueMind 5's capability set
/// without MULTIAPPEND and CONDSTORE, Cyrus with BlueMind's namespaces and Cyrus's own
/// behaviour (8-bit header bytes rewritten, bare LF refused), a `.` separator.
#[test]
fn each_server_kind_behaves_as_the_server_it_stands_for() {
    use testkit::server::{Kind, Server};
    let caps = |c: &mut Conn| -> String {
        c.command("CAPABILITY")
            .unwrap()
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    };
    let namespace = |c: &mut Conn| -> String {
        c.command("NAMESPACE")
            .unwrap()
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    };

    let bm5 = Server::start(Kind::BlueMind5).unwrap();
    let mut c = Conn::login(bm5.port(), BERTRAND.0, BERTRAND.1).unwrap();
    let cap = caps(&mut c);
    for want in ["LITERAL+", "UIDPLUS", "NAMESPACE", "QUOTA", "ACL"] {
        assert!(cap.contains(want), "BlueMind 5 profile lacks {want}: {cap}");
    }
    for not in ["MULTIAPPEND", "CONDSTORE"] {
        assert!(!cap.contains(not), "BlueMind 5 profile offers {not}: {cap}");
    }
    c.logout();

    let dot = Server::start(Kind::DotSeparator).unwrap();
    let mut c = Conn::login(dot.port(), BERTRAND.0, BERTRAND.1).unwrap();
    assert!(
        namespace(&mut c).contains(r#"(("" ".")"#),
        "{}",
        namespace(&mut c)
    );
    c.logout();

    let cyrus = Server::start(Kind::Cyrus).unwrap();
    let mut c = Conn::login(cyrus.port(), BERTRAND.0, BERTRAND.1).unwrap();
    let ns = namespace(&mut c);
    assert!(
        ns.contains(r#"(("" "/")) (("Autres utilisateurs/" "/")) (("Dossiers partag&AOk-s/" "/"))"#),
        "{ns}"
    );
    let cap = caps(&mut c);
    assert!(cap.contains("MULTIAPPEND") && cap.contains("LITERAL+"), "{cap}");
    c.multiappend(
        "INBOX",
        &[(
            String::new(),
            "01-Jan-2024 10:00:00 +0000".into(),
            "Subject: R\u{e9}union\r\n\r\nbody\r\n".as_bytes(),
        )],
    )
    .unwrap();
    let bare_lf = c.multiappend(
        "INBOX",
        &[(
            String::new(),
            "01-Jan-2024 10:00:00 +0000".into(),
            b"Subject: a\nb: c\n\nbody\n".as_slice(),
        )],
    );
    assert!(bare_lf.is_err(), "Cyrus took a message with bare LF");
    c.logout();
    let stored = readback::folder(cyrus.port(), BERTRAND.0, "INBOX").unwrap();
    assert_eq!(stored.len(), 1);
    use sha2::Digest;
    let munged = hex::encode(sha2::Sha256::digest(b"Subject: RXXunion\r\n\r\nbody\r\n"));
    assert_eq!(
        stored[0].sha256, munged,
        "Cyrus did not rewrite the 8-bit header bytes"
    );
}
