//! The BlueMind client against the double, every quirk of `shared/bluemind-api.md`, and an
//! IMAP login on the test Dovecot with a key minted through the client.

use bluemind_api::fake::{ADMIN0, DOMAIN, DOMAIN_UID, FakeBlueMind, State};
use bluemind_api::{
    AccessControlEntry, ApiError, Client, ContainerQuery, ContainerSubscription, LoginOutcome, SuOutcome,
    TlsOptions, Verb,
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use testkit::{BERTRAND, Dovecot, wire::Conn};

const BERTRAND_UID: &str = "B3F1C2A0-0001-4ED2-997C-4A4F39933D18";
const NATHALIE_UID: &str = "A7E2D3B1-0002-4ED2-997C-4A4F39933D18";
const HELENE_UID: &str = "C9D4E5F6-0003-4ED2-997C-4A4F39933D18";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

fn start() -> (FakeBlueMind, Client) {
    let bm = FakeBlueMind::start(State::scenario(), None).unwrap();
    let admin = Client::new(&bm.url(), bm.admin_key(), &TlsOptions::default()).unwrap();
    (bm, admin)
}

#[tokio::test]
async fn login_failures_are_http_200_bad() {
    let (bm, admin) = start();
    let anon = admin.with_key(secret("none"));
    assert!(matches!(
        anon.login("bertrand@bluemind.loc", &secret("8ertranD"))
            .await
            .unwrap(),
        LoginOutcome::Ok(_)
    ));
    assert!(matches!(
        anon.login(ADMIN0.0, &secret(ADMIN0.1)).await.unwrap(),
        LoginOutcome::Ok(_)
    ));
    assert!(matches!(
        anon.login("bertrand@bluemind.loc", &secret("wrong"))
            .await
            .unwrap(),
        LoginOutcome::Bad(_)
    ));
    assert!(matches!(
        anon.login("nobody@bluemind.loc", &secret("x")).await.unwrap(),
        LoginOutcome::Bad(_)
    ));
    // Login by login@domainUid works too; by login@alias needs an address.
    assert!(matches!(
        anon.login(&format!("bertrand@{DOMAIN_UID}"), &secret("8ertranD"))
            .await
            .unwrap(),
        LoginOutcome::Ok(_)
    ));
    bm.state()
        .users
        .iter_mut()
        .find(|u| u.login == "bertrand")
        .unwrap()
        .archived = true;
    assert!(matches!(
        anon.login("bertrand@bluemind.loc", &secret("8ertranD"))
            .await
            .unwrap(),
        LoginOutcome::Bad(_)
    ));
    // The password travelled in the body, never in the URL.
    assert!(bm.state().requests.iter().all(|r| !r.contains("8ertranD")));
}

#[tokio::test]
async fn domain_uid_is_resolved_never_assumed() {
    let (_bm, admin) = start();
    let d = admin.lookup_domain(DOMAIN).await.unwrap().unwrap();
    assert_eq!(d.uid, DOMAIN_UID);
    assert!(d.value.aliases.contains(&DOMAIN.to_string()));
    assert!(admin.lookup_domain("nope.example").await.unwrap().is_none());
}

#[tokio::test]
async fn user_lookups_answer_none_for_204_and_update_round_trips() {
    let (bm, admin) = start();
    let b = admin
        .user_by_login(DOMAIN_UID, "bertrand")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.uid, BERTRAND_UID);
    assert_eq!(
        admin
            .user_by_email(DOMAIN_UID, "bertrand@bluemind.loc")
            .await
            .unwrap()
            .unwrap()
            .uid,
        BERTRAND_UID
    );
    assert!(admin.user_by_login(DOMAIN_UID, "nobody").await.unwrap().is_none());
    assert!(
        admin
            .user_by_email(DOMAIN_UID, "nobody@bluemind.loc")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        admin
            .user_complete(DOMAIN_UID, "no-such-uid")
            .await
            .unwrap()
            .is_none()
    );

    let mut u = admin
        .user_complete(DOMAIN_UID, BERTRAND_UID)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert!(
        u.extra.contains_key("contactInfos"),
        "fields not modelled are kept"
    );
    u.extra.insert("quota".into(), serde_json::json!(2048));
    admin.update_user(DOMAIN_UID, BERTRAND_UID, &u).await.unwrap();
    let again = admin
        .user_complete(DOMAIN_UID, BERTRAND_UID)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(again.extra["quota"], 2048);
    assert_eq!(again.extra["contactInfos"], u.extra["contactInfos"]);
    // A duplicate address is refused with BlueMind's code.
    u.emails[0].address = "nathalie@bluemind.loc".into();
    let err = admin.update_user(DOMAIN_UID, BERTRAND_UID, &u).await.unwrap_err();
    assert_eq!(err.code(), Some("ALREADY_EXISTS"), "{err}");
    assert!(matches!(err, ApiError::Server { status: 500, .. }));
    drop(bm);
}

#[tokio::test]
async fn su_is_for_admin0_or_sudo_and_refusals_come_both_ways() {
    let (bm, admin) = start();
    let SuOutcome::Ok(r) = admin.su("bertrand@bluemind.loc").await.unwrap() else {
        panic!("admin0 su refused")
    };
    let as_bertrand = admin.with_key(r.auth_key.unwrap());
    assert_eq!(as_bertrand.current_user().await.unwrap().uid, BERTRAND_UID);
    // Unknown target: 200 Bad.
    assert!(matches!(
        admin.su("nobody@bluemind.loc").await.unwrap(),
        SuOutcome::Refused { forbidden: false, .. }
    ));
    // A domain admin without the sudo role: 403.
    let anon = admin.with_key(secret("x"));
    let LoginOutcome::Ok(d) = anon
        .login("dadmin@bluemind.loc", &secret("Dadm1n"))
        .await
        .unwrap()
    else {
        panic!()
    };
    let dadmin = admin.with_key(d.auth_key.unwrap());
    assert!(matches!(
        dadmin.su("bertrand@bluemind.loc").await.unwrap(),
        SuOutcome::Refused { forbidden: true, .. }
    ));
    // With sudo it works, unless the server reserves su to the global domain.
    bm.state()
        .users
        .iter_mut()
        .find(|u| u.login == "dadmin")
        .unwrap()
        .roles
        .push("sudo".into());
    assert!(matches!(
        dadmin.su("bertrand@bluemind.loc").await.unwrap(),
        SuOutcome::Ok(_)
    ));
    bm.state().su_global_only = true;
    assert!(matches!(
        dadmin.su("bertrand@bluemind.loc").await.unwrap(),
        SuOutcome::Refused { forbidden: false, .. }
    ));
    bm.state().su_global_only = false;
    // An archived target cannot be su'd.
    bm.state()
        .users
        .iter_mut()
        .find(|u| u.login == "bertrand")
        .unwrap()
        .archived = true;
    assert!(matches!(
        admin.su("bertrand@bluemind.loc").await.unwrap(),
        SuOutcome::Refused { .. }
    ));
    // Without an @, refused by the client before BlueMind answers 500.
    assert!(admin.su("bertrand").await.is_err());
}

#[tokio::test]
async fn api_keys_belong_to_their_creator_and_log_in_over_imap_until_deleted() {
    let dovecot = Arc::new(Dovecot::start().unwrap());
    let mut scenario = State::scenario();
    // Without the key bertrand made himself for his mail client: counts below are exact.
    scenario.keys.clear();
    let bm = FakeBlueMind::start(scenario, Some(dovecot.clone())).unwrap();
    let admin = Client::new(&bm.url(), bm.admin_key(), &TlsOptions::default()).unwrap();
    let SuOutcome::Ok(r) = admin.su("bertrand@bluemind.loc").await.unwrap() else {
        panic!()
    };
    let su = admin.with_key(r.auth_key.unwrap());
    let key = su.create_api_key("offboard test-run").await.unwrap();
    assert_eq!(key.subject.as_deref(), Some(BERTRAND_UID));
    assert!(
        !format!("{key:?}").contains(key.sid.expose_secret()),
        "key in Debug output"
    );
    // The key is an IMAP password at once.
    Conn::login(dovecot.imap_port, BERTRAND.0, key.sid.expose_secret())
        .unwrap()
        .logout();
    // And a REST token of its owner.
    assert_eq!(
        admin.with_key(key.sid.clone()).current_user().await.unwrap().uid,
        BERTRAND_UID
    );
    // Lists are per caller.
    assert_eq!(su.list_api_keys().await.unwrap().len(), 1);
    assert!(
        admin
            .list_api_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.display_name != "offboard test-run")
    );
    // Someone else's delete: 200, and nothing happens.
    admin.delete_api_key(&key.sid).await.unwrap();
    assert_eq!(su.list_api_keys().await.unwrap().len(), 1);
    // The owner's delete works; the cached REST session lives until a logout with the key.
    su.delete_api_key(&key.sid).await.unwrap();
    assert!(su.list_api_keys().await.unwrap().is_empty());
    let with_key = admin.with_key(key.sid.clone());
    assert!(
        with_key.ping().await.is_ok(),
        "BlueMind keeps a deleted key's session until logout"
    );
    with_key.logout().await.unwrap();
    assert!(matches!(
        with_key.ping().await,
        Err(ApiError::Unauthorized { .. })
    ));
    su.logout().await.unwrap();
    // Empty label: 500.
    assert!(matches!(
        admin.create_api_key("").await,
        Err(ApiError::Server { status: 500, .. })
    ));
    // The only URL naming a key is its own deletion.
    let key_text = key.sid.expose_secret().to_string();
    for r in bm.state().requests.iter().filter(|r| r.contains(&key_text)) {
        assert!(r.starts_with("DELETE /api/auth/keys/"), "key in a URL: {r}");
    }
    assert!(
        bm.state()
            .requests
            .iter()
            .all(|r| !r.contains(bm.admin_key().expose_secret()))
    );
    // Deleted: no longer an IMAP password (checked last: Dovecot delays logins after a failure).
    assert!(Conn::login(dovecot.imap_port, BERTRAND.0, &key_text).is_err());
}

#[tokio::test]
async fn password_set_reaches_imap() {
    let dovecot = Arc::new(Dovecot::start().unwrap());
    let bm = FakeBlueMind::start(State::scenario(), Some(dovecot.clone())).unwrap();
    let admin = Client::new(&bm.url(), bm.admin_key(), &TlsOptions::default()).unwrap();
    admin
        .set_password(DOMAIN_UID, BERTRAND_UID, &secret("Reset-2026!"))
        .await
        .unwrap();
    Conn::login(dovecot.imap_port, BERTRAND.0, "Reset-2026!")
        .unwrap()
        .logout();
    assert!(matches!(
        admin.set_password(DOMAIN_UID, "nope", &secret("x")).await,
        Err(ApiError::NotFound { .. })
    ));
}

#[tokio::test]
async fn acl_put_replaces_the_whole_list_and_refuses_public_mailbox_sharing() {
    let (_bm, admin) = start();
    let c = "mailbox:acls-mailshare-projets";
    let before = admin.get_acl(c).await.unwrap();
    assert_eq!(before.len(), 2);
    let only = vec![AccessControlEntry {
        subject: NATHALIE_UID.into(),
        verb: Verb::Read,
    }];
    admin.set_acl(c, &only).await.unwrap();
    assert_eq!(
        admin.get_acl(c).await.unwrap(),
        only,
        "PUT replaces, it does not merge"
    );
    let public = vec![AccessControlEntry {
        subject: DOMAIN_UID.into(),
        verb: Verb::Read,
    }];
    let err = admin.set_acl(c, &public).await.unwrap_err();
    assert_eq!(err.code(), Some("FORBIDDEN"), "{err}");
    assert_eq!(
        admin.get_acl(c).await.unwrap(),
        only,
        "a refused PUT changes nothing"
    );
}

#[tokio::test]
async fn containers_for_user_follow_groups_and_need_a_domain_admin() {
    let (_bm, admin) = start();
    let q = ContainerQuery {
        kind: Some("mailboxacl".into()),
        verb: Some(vec![Verb::Read]),
        ..Default::default()
    };
    let found = admin
        .containers_for_user(DOMAIN_UID, BERTRAND_UID, &q)
        .await
        .unwrap();
    let owners: Vec<&str> = found.iter().map(|c| c.owner.as_str()).collect();
    assert!(
        owners.contains(&"mailshare-compta"),
        "group grant missing: {owners:?}"
    );
    assert!(
        owners.contains(&"mailshare-projets"),
        "Write implies Read: {owners:?}"
    );
    assert!(owners.contains(&HELENE_UID), "another user's mailbox: {owners:?}");
    assert!(
        owners.contains(&BERTRAND_UID),
        "BlueMind lists owned containers too"
    );
    assert!(
        !owners.contains(&"mailshare-rh"),
        "not shared with him: {owners:?}"
    );
    let kind = admin
        .dir_entry(DOMAIN_UID, "mailshare-compta")
        .await
        .unwrap()
        .unwrap()
        .kind;
    assert_eq!(kind, "MAILSHARE");
    assert_eq!(
        admin
            .dir_entry(DOMAIN_UID, HELENE_UID)
            .await
            .unwrap()
            .unwrap()
            .kind,
        "USER"
    );
    assert!(admin.dir_entry(DOMAIN_UID, "nope").await.unwrap().is_none());
    assert_eq!(admin.mailshares(DOMAIN_UID).await.unwrap().len(), 3);
    // A plain user's session may not ask.
    let SuOutcome::Ok(r) = admin.su("nathalie@bluemind.loc").await.unwrap() else {
        panic!()
    };
    let err = admin
        .with_key(r.auth_key.unwrap())
        .containers_for_user(DOMAIN_UID, BERTRAND_UID, &q)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("FORBIDDEN"));
}

#[tokio::test]
async fn subscriptions_and_filters() {
    let (_bm, admin) = start();
    let sub = ContainerSubscription {
        container_uid: "mailbox:acls-mailshare-compta".into(),
        offline_sync: false,
        automount: true,
    };
    admin
        .subscribe(DOMAIN_UID, NATHALIE_UID, std::slice::from_ref(&sub))
        .await
        .unwrap();
    admin
        .subscribe(DOMAIN_UID, NATHALIE_UID, std::slice::from_ref(&sub))
        .await
        .unwrap();
    let subs = admin
        .subscriptions(DOMAIN_UID, NATHALIE_UID, "mailboxacl")
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    admin
        .unsubscribe(DOMAIN_UID, NATHALIE_UID, std::slice::from_ref(&sub.container_uid))
        .await
        .unwrap();
    assert!(
        admin
            .subscriptions(DOMAIN_UID, NATHALIE_UID, "mailboxacl")
            .await
            .unwrap()
            .is_empty()
    );

    let mut f = admin.get_filter(DOMAIN_UID, BERTRAND_UID).await.unwrap();
    f.rules
        .push(serde_json::json!({"name": "a rule we do not understand", "x-future": [1, 2]}));
    admin.set_filter(DOMAIN_UID, BERTRAND_UID, &f).await.unwrap();
    let mut back = admin.get_filter(DOMAIN_UID, BERTRAND_UID).await.unwrap();
    assert_eq!(back.rules, f.rules);
    back.forwarding["enabled"] = serde_json::json!(true);
    admin.set_filter(DOMAIN_UID, BERTRAND_UID, &back).await.unwrap();
    assert_eq!(
        admin.get_filter(DOMAIN_UID, BERTRAND_UID).await.unwrap().rules,
        f.rules,
        "rules kept untouched"
    );
}

#[tokio::test]
async fn unknown_key_is_401_and_reads_are_retried_on_503() {
    let (bm, admin) = start();
    let stranger = admin.with_key(secret("not-a-key"));
    assert!(matches!(
        stranger.ping().await,
        Err(ApiError::Unauthorized { .. })
    ));
    let e = stranger.lookup_domain(DOMAIN).await.unwrap_err();
    assert!(!e.to_string().contains("not-a-key"), "{e}");
    bm.state().faults.insert("domain_lookup".into(), 503);
    let before = bm.state().requests.len();
    assert!(matches!(
        admin.lookup_domain(DOMAIN).await,
        Err(ApiError::Server { status: 503, .. })
    ));
    assert_eq!(bm.state().requests.len() - before, 3, "a read is tried 3 times");
    bm.state().faults.insert("key_create".into(), 503);
    let before = bm.state().requests.len();
    assert!(admin.create_api_key("x").await.is_err());
    assert_eq!(bm.state().requests.len() - before, 1, "a write is never retried");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let (bm, admin) = start();
    assert!(!format!("{admin:?}").contains(bm.admin_key().expose_secret()));
    let LoginOutcome::Ok(r) = admin
        .login("bertrand@bluemind.loc", &secret("8ertranD"))
        .await
        .unwrap()
    else {
        panic!()
    };
    let shown = format!("{r:?}");
    assert!(
        !shown.contains(r.auth_key.as_ref().unwrap().expose_secret()),
        "{shown}"
    );
}
