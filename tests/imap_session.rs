//! The product's IMAP connection layer against the real Dovecot: each transport, each
//! mechanism, and each way a connection can fail, with the error a person will read.

use crate::support::{creds, endpoint, short_timeouts};
use offboard::imap::{
    AuthMechanism, Credentials, Endpoint, ImapError, Security, Session, Timeouts, TlsSettings,
};
use secrecy::SecretString;
use std::time::Duration;
use testkit::{BERTRAND, Dovecot, MASTER, MailboxSpec, fill};

#[tokio::test]
async fn logs_in_over_each_transport_and_mechanism() {
    let d = Dovecot::start().unwrap();
    for security in [Security::Implicit, Security::StartTls, Security::None] {
        for mech in [AuthMechanism::Auto, AuthMechanism::Login, AuthMechanism::Plain] {
            let s = Session::connect(&endpoint(&d, security), &creds(BERTRAND.0, BERTRAND.1, mech))
                .await
                .unwrap_or_else(|e| panic!("{security} {mech:?}: {e}"));
            assert!(s.has_capability("IMAP4rev1"));
            // After login Dovecot lists its extensions; LITERAL+ and UIDPLUS matter for the copy.
            assert!(
                s.has_capability("UIDPLUS") && s.has_capability("LITERAL+"),
                "{:?}",
                s.capabilities()
            );
            s.logout().await;
        }
    }
}

#[tokio::test]
async fn plain_sends_authzid_and_authcid_in_the_rfc4616_fields() {
    // Master login: authzid = the user to act as, authcid = the master. Swapped fields fail.
    let d = Dovecot::start().unwrap();
    let mut c = creds(MASTER.0, MASTER.1, AuthMechanism::Plain);
    c.authzid = Some(BERTRAND.0.to_string());
    let mut s = Session::connect(&endpoint(&d, Security::Implicit), &c)
        .await
        .unwrap();
    let folders = s.list_all().await.unwrap();
    assert!(
        folders.iter().any(|f| f.name == "Sent"),
        "not logged in as bertrand: {folders:?}"
    );
    s.logout().await;
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error_without_the_password() {
    let d = Dovecot::start().unwrap();
    for mech in [AuthMechanism::Login, AuthMechanism::Plain] {
        let err = Session::connect(
            &endpoint(&d, Security::Implicit),
            &creds(BERTRAND.0, "Wr0ng-Secret", mech),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, ImapError::AuthFailed { ref user, .. } if user == BERTRAND.0),
            "{err:?}"
        );
        let text = format!("{err} {err:?}");
        assert!(
            text.contains("refused the login of bertrand@bluemind.loc"),
            "{text}"
        );
        assert!(!text.contains("Wr0ng-Secret"), "password leaked: {text}");
        assert!(err.hint().unwrap().contains("password"));
    }
}

#[tokio::test]
async fn credentials_debug_output_hides_the_secret() {
    let c = creds(BERTRAND.0, "Sup3r-Secret", AuthMechanism::Auto);
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("Sup3r-Secret") && shown.contains("REDACTED"),
        "{shown}"
    );
}

#[tokio::test]
async fn untrusted_certificate_is_refused_with_a_hint() {
    let d = Dovecot::start().unwrap();
    for (security, port) in [
        (Security::Implicit, d.imaps_port),
        (Security::StartTls, d.imap_port),
    ] {
        let ep = Endpoint::new(
            "localhost",
            port,
            security,
            &TlsSettings::default(),
            short_timeouts(),
        )
        .unwrap();
        let err = Session::connect(&ep, &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto))
            .await
            .unwrap_err();
        let ImapError::Certificate {
            ref host, ref reason, ..
        } = err
        else {
            panic!("{security}: {err:?}")
        };
        assert_eq!(host, "localhost");
        assert!(reason.contains("UnknownIssuer"), "{reason}");
        assert!(err.to_string().contains("localhost"), "{err}");
        assert!(err.hint().unwrap().contains("--ca-file"));
    }
}

#[tokio::test]
async fn insecure_mode_accepts_any_certificate() {
    let d = Dovecot::start().unwrap();
    let tls = TlsSettings {
        ca_file: None,
        insecure: true,
    };
    let ep = Endpoint::new(
        "localhost",
        d.imaps_port,
        Security::Implicit,
        &tls,
        short_timeouts(),
    )
    .unwrap();
    Session::connect(&ep, &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto))
        .await
        .unwrap()
        .logout()
        .await;
}

#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    let d = Dovecot::start().unwrap();
    let tls = TlsSettings {
        ca_file: Some(d.pki.ca_cert.clone()),
        insecure: false,
    };
    // The certificate names localhost and 127.0.0.1, not ::1's name "ip6-localhost".
    let ep = Endpoint::new(
        "127.0.0.2",
        d.imaps_port,
        Security::Implicit,
        &tls,
        short_timeouts(),
    );
    let err = match ep {
        Ok(ep) => Session::connect(&ep, &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto))
            .await
            .unwrap_err(),
        Err(e) => e,
    };
    // Dovecot listens on 127.0.0.1 only, so 127.0.0.2 is unreachable or refused by name.
    assert!(
        matches!(err, ImapError::Connect { .. } | ImapError::Certificate { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn tls_on_the_plain_port_is_a_handshake_error() {
    let d = Dovecot::start().unwrap();
    let tls = TlsSettings {
        ca_file: Some(d.pki.ca_cert.clone()),
        insecure: false,
    };
    let ep = Endpoint::new(
        "localhost",
        d.imap_port,
        Security::Implicit,
        &tls,
        short_timeouts(),
    )
    .unwrap();
    let err = Session::connect(&ep, &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto))
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Handshake { .. }), "{err:?}");
}

#[tokio::test]
async fn unreadable_ca_file_is_named() {
    let tls = TlsSettings {
        ca_file: Some("/nonexistent/ca.pem".into()),
        insecure: false,
    };
    let err = Endpoint::new("localhost", 993, Security::Implicit, &tls, short_timeouts()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn closed_port_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = Endpoint::new(
        "127.0.0.1",
        port,
        Security::None,
        &TlsSettings::default(),
        short_timeouts(),
    )
    .unwrap();
    let err = Session::connect(&ep, &creds("u", "p", AuthMechanism::Auto))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImapError::Connect { port: p, .. } if p == port),
        "{err:?}"
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts the connection and never greets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(sock);
    });
    let t = Timeouts {
        connect: Duration::from_secs(2),
        io: Duration::from_millis(300),
    };
    let ep = Endpoint::new("127.0.0.1", port, Security::None, &TlsSettings::default(), t).unwrap();
    let err = Session::connect(&ep, &creds("u", "p", AuthMechanism::Auto))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImapError::Timeout { ref during, .. } if during == "greeting"),
        "{err:?}"
    );
    server.abort();
}

#[tokio::test]
async fn starttls_refused_by_server_is_reported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        w.write_all(b"* OK fake server ready\r\n").await.unwrap();
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let tag = line.split(' ').next().unwrap_or("*").to_string();
            w.write_all(format!("{tag} BAD STARTTLS not supported\r\n").as_bytes())
                .await
                .unwrap();
        }
    });
    let ep = Endpoint::new(
        "127.0.0.1",
        port,
        Security::StartTls,
        &TlsSettings::default(),
        short_timeouts(),
    )
    .unwrap();
    let err = Session::connect(&ep, &creds("u", "p", AuthMechanism::Auto))
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::StartTlsUnavailable { .. }), "{err:?}");
    server.abort();
}

#[tokio::test]
async fn namespace_returns_the_bluemind_prefixes() {
    let d = Dovecot::start().unwrap();
    let mut s = Session::connect(
        &endpoint(&d, Security::StartTls),
        &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto),
    )
    .await
    .unwrap();
    let ns = s.namespace().await.unwrap();
    assert_eq!(ns.personal.len(), 1);
    assert_eq!(
        (ns.personal[0].prefix.as_str(), ns.personal[0].delimiter),
        ("", Some('/'))
    );
    assert_eq!(
        (ns.other_users[0].prefix.as_str(), ns.other_users[0].delimiter),
        ("Autres utilisateurs/", Some('/'))
    );
    assert_eq!(
        (ns.shared[0].prefix.as_str(), ns.shared[0].delimiter),
        ("Dossiers partag&AOk-s/", Some('/'))
    );
    // The session is still in step after the raw exchange.
    let folders = s.list_all().await.unwrap();
    assert!(folders.iter().any(|f| f.name == "INBOX"));
    assert_eq!(s.namespace().await.unwrap(), ns);
    s.logout().await;
}

#[tokio::test]
async fn list_reports_separator_special_use_and_raw_names() {
    let d = Dovecot::start().unwrap();
    fill::fill(d.imap_port, BERTRAND.0, &MailboxSpec::leaver(1, 20)).unwrap();
    d.create_public_folder("compta", &[(&format!("user={}", BERTRAND.0), "lrs")])
        .unwrap();
    let mut s = Session::connect(
        &endpoint(&d, Security::Implicit),
        &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto),
    )
    .await
    .unwrap();
    let folders = s.list_all().await.unwrap();
    let get = |n: &str| {
        folders
            .iter()
            .find(|f| f.name == n)
            .unwrap_or_else(|| panic!("{n} not in {folders:?}"))
    };
    assert!(get("Junk").has_attribute("\\Junk"));
    assert!(get("Trash").has_attribute("\\Trash"));
    assert!(get("Sent").has_attribute("\\Sent"));
    assert!(get("Drafts").has_attribute("\\Drafts"));
    assert_eq!(get("Projets/Client &AOk-").delimiter, Some('/'));
    assert!(get("Archives/2023/&AMk-t&AOk-").selectable());
    assert!(get("R&AOk-unions &- notes").selectable());
    assert!(get("Dossiers partag&AOk-s/compta").selectable());
    s.logout().await;
}

#[tokio::test]
async fn api_key_from_the_key_file_logs_in() {
    let d = Dovecot::start().unwrap();
    d.add_api_key(BERTRAND.0, "a1b2c3d4-e5f6-7890-abcd-ef0123456789")
        .unwrap();
    let c = Credentials {
        user: BERTRAND.0.into(),
        secret: SecretString::from("a1b2c3d4-e5f6-7890-abcd-ef0123456789".to_string()),
        mechanism: AuthMechanism::Auto,
        authzid: None,
    };
    Session::connect(&endpoint(&d, Security::Implicit), &c)
        .await
        .unwrap()
        .logout()
        .await;
}

/// A batch with one message the server refuses: the others land, each outcome is its own,
/// on both copy paths (MULTIAPPEND; pipelined LITERAL+ APPENDs, as on BlueMind 5).
#[tokio::test]
async fn append_batches_report_each_message_on_both_paths() {
    let d = Dovecot::start_with(testkit::DovecotOptions {
        max_mail_size: Some(100_000),
        ..Default::default()
    })
    .unwrap();
    let mut bodies: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("Message-ID: <{i}@t>\r\nSubject: n{i}\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    bodies.insert(
        10,
        format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(200_000)).into_bytes(),
    );
    let flags = vec!["\\Seen".to_string()];
    for (folder, multiappend) in [("Multi", true), ("Pipelined", false)] {
        let mut s = Session::connect(
            &endpoint(&d, Security::Implicit),
            &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto),
        )
        .await
        .unwrap();
        if !multiappend {
            s.disable_capability("MULTIAPPEND");
        }
        s.create(folder).await.unwrap();
        let items: Vec<(&[String], Option<&str>, &[u8])> = bodies
            .iter()
            .map(|b| (flags.as_slice(), Some("01-Feb-2024 10:00:00 +0100"), b.as_slice()))
            .collect();
        let out = s.append_many(folder, &items).await.unwrap();
        assert_eq!(out.len(), 21);
        assert!(
            matches!(out[10], Err(ImapError::Refused { .. })),
            "{folder}: {:?}",
            out[10]
        );
        let uids: std::collections::BTreeSet<u32> = out
            .iter()
            .filter_map(|r| r.as_ref().ok().copied().flatten())
            .map(|(_, u)| u)
            .collect();
        assert_eq!(
            uids.len(),
            20,
            "{folder}: every other message has its own APPENDUID"
        );
        // The session is still in step.
        assert!(s.list_all().await.unwrap().iter().any(|f| f.name == folder));
        s.logout().await;
        let got = testkit::readback::folder(d.imap_port, BERTRAND.0, folder).unwrap();
        assert_eq!(got.len(), 20, "{folder}");
        assert!(
            got.iter()
                .all(|m| m.flags.contains("\\Seen") && m.internal_date == 1_706_778_000)
        );
    }
}

#[tokio::test]
async fn pipelined_tree_and_statuses_give_one_outcome_per_command_in_order() {
    let d = Dovecot::start().unwrap();
    let mut s = Session::connect(
        &endpoint(&d, Security::None),
        &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto),
    )
    .await
    .unwrap();
    // More than one pipeline window (64), a refusal in the middle: CREATE INBOX exists.
    let names: Vec<String> = (0..70).map(|i| format!("P/{i:02}")).collect();
    let mut ops: Vec<(bool, &str)> = vec![(true, "P")];
    for n in &names {
        ops.push((true, n));
        ops.push((false, n));
    }
    ops.insert(40, (true, "INBOX"));
    let outcomes = s.tree(&ops).await.unwrap();
    assert_eq!(outcomes.len(), ops.len());
    for (i, (op, r)) in ops.iter().zip(&outcomes).enumerate() {
        if op.1 == "INBOX" {
            assert!(matches!(r, Err(ImapError::Refused { .. })), "{i}: {r:?}");
        } else {
            assert!(r.is_ok(), "{i} {op:?}: {r:?}");
        }
    }
    let subscribed = s.list_subscribed().await.unwrap();
    assert!(names.iter().all(|n| subscribed.contains(n)), "{subscribed:?}");

    // Statuses: a missing folder in the middle is its own error; the others are exact.
    let spec = MailboxSpec::leaver(7, 30);
    let msgs = fill::fill(d.imap_port, BERTRAND.0, &spec).unwrap();
    let inbox = msgs.iter().filter(|m| m.folder == "INBOX").count() as u32;
    let outcomes = s.status_many(&["INBOX", "Nowhere", "P/00"]).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    let (validity, uid_next, exists, _) = *outcomes[0].as_ref().unwrap();
    assert_eq!(exists, inbox);
    assert!(validity.is_some() && uid_next.is_some());
    assert!(
        matches!(outcomes[1], Err(ImapError::Refused { .. })),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2].as_ref().unwrap().2, 0);
    // The single-command path agrees.
    assert_eq!(s.status("INBOX").await.unwrap(), *outcomes[0].as_ref().unwrap());
    s.logout().await;
}

/// Issue 12: a folder past one metadata window (5,000 UIDs) is read window by window, every
/// message once, with its size and identity headers.
#[tokio::test]
async fn metadata_of_a_folder_bigger_than_a_window_is_read_whole_and_once() {
    use offboard::store::Store;
    let d = Dovecot::start().unwrap();
    let n = 5_300usize;
    let mut c = testkit::wire::Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1).unwrap();
    c.command("CREATE \"Big\"").unwrap();
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("Message-ID: <big{i}@example>\r\nSubject: {i}\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    for chunk in bodies.chunks(1000) {
        let items: Vec<(String, String, &[u8])> = chunk
            .iter()
            .map(|b| {
                (
                    String::new(),
                    "01-Jan-2024 10:00:00 +0000".to_string(),
                    b.as_slice(),
                )
            })
            .collect();
        c.multiappend("Big", &items).unwrap();
    }
    c.logout();
    let mut s = Session::connect(
        &endpoint(&d, Security::StartTls),
        &creds(BERTRAND.0, BERTRAND.1, AuthMechanism::Auto),
    )
    .await
    .unwrap();
    let status = Store::examine(&mut s, "Big").await.unwrap();
    assert_eq!(status.exists as usize, n);
    let metas = s.fetch_meta().await.unwrap();
    assert_eq!(metas.len(), n);
    let uids: std::collections::BTreeSet<u32> = metas.iter().map(|m| m.uid).collect();
    assert_eq!(uids.len(), n, "a UID came twice");
    assert!(metas.iter().all(|m| m.size > 0 && !m.identity_headers.is_empty()));
    s.logout().await;
}
