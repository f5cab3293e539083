//! A stateful BlueMind double: the same paths, JSON shapes, status codes and quirks as the
//! real server (see `shared/bluemind-api.md`), on 127.0.0.1 and a free port, in memory.
//!
//! It runs on its own thread and runtime, so sync tests, async tests and subprocesses can all
//! use it; it stops when dropped. Tests read and change its state in-process through
//! [`FakeBlueMind::state`], and can force a route to fail ([`State::faults`]). Minted API keys
//! and set passwords are handed to a [`CredentialSink`] — the Dovecot harness, so a key
//! minted here is at once a valid IMAP password there.

use crate::model::{AccessControlEntry, ContainerQuery, ContainerSubscription, Email, Verb};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where minted keys and new passwords go (the IMAP server of the tests).
pub trait CredentialSink: Send + Sync {
    /// `key` is now a valid IMAP password of `email`.
    fn key_added(&self, email: &str, key: &str);
    /// `key` no longer works for `email`.
    fn key_removed(&self, email: &str, key: &str);
    /// `email`'s password is now `password`.
    fn password_set(&self, email: &str, password: &str);
}

/// A domain.
#[derive(Debug, Clone)]
pub struct FakeDomain {
    /// Technical uid (`<hex>.internal`), also its name.
    pub uid: String,
    /// DNS names.
    pub aliases: Vec<String>,
}

/// A user.
#[derive(Debug, Clone)]
pub struct FakeUser {
    /// Uid (UUID-like).
    pub uid: String,
    /// Domain uid.
    pub domain: String,
    /// Login (local part).
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Password.
    pub password: String,
    /// Addresses (first = default).
    pub emails: Vec<String>,
    /// Suspended.
    pub archived: bool,
    /// Roles: `admin` (domain admin), `sudo`, `systemManagement` (admin0).
    pub roles: Vec<String>,
    /// Fields the double does not interpret, kept across updates.
    pub extra: serde_json::Map<String, Value>,
    /// Mailbox quota in KiB (`None`: unlimited).
    pub quota_kib: Option<u64>,
    /// Mailbox usage in KiB.
    pub used_kib: u64,
    /// Hidden from the directory.
    pub hidden: bool,
}

/// A calendar or an address book (mailbox ACL containers are implicit: one per user and
/// mailshare).
#[derive(Debug, Clone)]
pub struct FakeContainer {
    /// Uid (`calendar:Default:<owner>`, `book:Contacts_<owner>`…).
    pub uid: String,
    /// `calendar` or `addressbook`.
    pub kind: String,
    /// Owner uid.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Domain uid.
    pub domain: String,
}

/// A mobile device.
#[derive(Debug, Clone)]
pub struct FakeDevice {
    /// Uid.
    pub uid: String,
    /// Owner uid.
    pub owner: String,
    /// Identifier.
    pub identifier: String,
    /// Kind.
    pub kind: String,
    /// May synchronise.
    pub partnership: bool,
}

/// A group.
#[derive(Debug, Clone)]
pub struct FakeGroup {
    /// Uid.
    pub uid: String,
    /// Name.
    pub name: String,
    /// Member user uids.
    pub members: Vec<String>,
}

/// A mailshare.
#[derive(Debug, Clone)]
pub struct FakeMailshare {
    /// Uid.
    pub uid: String,
    /// Domain uid.
    pub domain: String,
    /// Name.
    pub name: String,
}

/// An API key.
#[derive(Debug, Clone)]
pub struct FakeKey {
    /// The key.
    pub sid: String,
    /// Label.
    pub display_name: String,
    /// Owner uid.
    pub subject: String,
}

/// Everything the double knows. Public so tests can set up and assert.
#[derive(Debug, Default)]
pub struct State {
    /// Domains (admin0's `global.virt` is implicit).
    pub domains: Vec<FakeDomain>,
    /// Users, admin0 included.
    pub users: Vec<FakeUser>,
    /// Groups.
    pub groups: Vec<FakeGroup>,
    /// Mailshares.
    pub mailshares: Vec<FakeMailshare>,
    /// ACLs by container uid, as stored.
    pub acls: HashMap<String, Vec<AccessControlEntry>>,
    /// API keys.
    pub keys: Vec<FakeKey>,
    /// Sessions: key → user uid.
    pub sessions: HashMap<String, String>,
    /// Sessions built from API keys; BlueMind keeps them after the key is deleted until a
    /// logout with the key.
    pub key_sessions: HashMap<String, String>,
    /// Subscriptions by user uid.
    pub subscriptions: HashMap<String, Vec<ContainerSubscription>>,
    /// Mail filters by mailbox uid: `{rules, forwarding, vacation}` as `GET _filter` shows
    /// them (generic rules only in `rules`, each with its `id`).
    pub filters: HashMap<String, Value>,
    /// Domain rules by domain uid (`GET /mailboxes/{d}/_rules`).
    pub domain_rules: HashMap<String, Vec<Value>>,
    /// Delegation rules by delegator mailbox uid.
    pub delegation_rules: HashMap<String, Value>,
    /// Calendars and address books.
    pub containers: Vec<FakeContainer>,
    /// Mobile devices.
    pub devices: Vec<FakeDevice>,
    /// The "… shared with you" mails BlueMind sends on each ACL write (grantee uid,
    /// container uid): `AclChangedNotificationHook.java:16-33`.
    pub acl_notifications: Vec<(String, String)>,
    /// Last rule id given.
    pub next_rule_id: i64,
    /// Reserve su to admin0 (the behaviour reported on BlueMind 5.7).
    pub su_global_only: bool,
    /// Forced failures: route name (e.g. `"su"`, `"acl_put"`) → HTTP status; `"su:<login>"`
    /// refuses su to that one user, and `"<route>:<segment>"` fails one container or user
    /// (`"acl_put:mailbox:acls-mailshare-rh"`). Status 0 is a network fault: the answer starts, then the
    /// connection breaks (the client sees a transport error, as on a reset).
    pub faults: HashMap<String, u16>,
    /// Routes that do not answer while they are listed here (checked every 20 ms): a test
    /// holds a run at a known step, acts (e.g. interrupts it), then removes the entry. A held
    /// request is logged in `requests` as `HELD <route>` when it arrives.
    pub held: HashSet<String>,
    /// Every request as `METHOD path?query`, for tests (bodies and headers are not kept).
    pub requests: Vec<String>,
    /// Every key ever minted (subject, sid), deleted ones included, for tests.
    pub minted: Vec<(String, String)>,
    /// Answer ACLs as BlueMind 5 does since 2023-10 (`AclService.java:112-118,149-156`):
    /// every verb expanded on read, a synthetic `{owner, All}` on a user's mailbox, and the
    /// list compacted per subject on write. Off: entries exactly as stored (BlueMind 4).
    pub acl_shape_bm5: bool,
    /// Every session id ever issued (logins and su), ended ones included, for tests.
    pub issued: Vec<String>,
    /// Sessions (and sessions built from keys) are dropped after this long without a call,
    /// like BlueMind's `core.sessions.idle-timeout`; `None` is its default, 20 minutes.
    pub idle_timeout: Option<std::time::Duration>,
    /// When each session was last used.
    last_used: HashMap<String, std::time::Instant>,
    sink: Option<Arc<dyn CredentialSink>>,
}

/// Every verb the double knows, for BlueMind 5's expansion.
const ALL_VERBS: [Verb; 9] = Verb::ALL;

/// BlueMind's `core.sessions.idle-timeout` default (`application.conf`).
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

impl std::fmt::Debug for dyn CredentialSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialSink")
    }
}

/// The admin0 login and password of every fixture.
pub const ADMIN0: (&str, &str) = ("admin0@global.virt", "admin0-pass");
/// Domain uid of the scenario (technical, as BlueMind's install wizard makes them).
pub const DOMAIN_UID: &str = "19d43481671.internal";
/// DNS name of the scenario's domain.
pub const DOMAIN: &str = "bluemind.loc";

impl State {
    /// The offboarding scenario: bertrand (leaver) and nathalie (successor) in a domain with
    /// a technical uid and the alias `bluemind.loc`; a domain admin without `sudo`; a group
    /// `compta-team` holding bertrand; mailshares `compta` (shared with the group), `projets`
    /// (shared with bertrand directly, Write, and with a third person), `rh` (not shared with
    /// him); hélène's mailbox shared with bertrand (Read).
    pub fn scenario() -> Self {
        let mut s = State {
            domains: vec![FakeDomain {
                uid: DOMAIN_UID.into(),
                aliases: vec![DOMAIN.into()],
            }],
            ..Default::default()
        };
        let user = |uid: &str, domain: &str, login: &str, name: &str, pw: &str, roles: &[&str]| FakeUser {
            uid: uid.into(),
            domain: domain.into(),
            login: login.into(),
            display_name: name.into(),
            password: pw.into(),
            emails: if domain == "global.virt" {
                vec![]
            } else {
                vec![format!("{login}@{DOMAIN}")]
            },
            archived: false,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            extra: serde_json::Map::new(),
            quota_kib: None,
            used_kib: 0,
            hidden: false,
        };
        s.users = vec![
            user(
                "admin0_global.virt",
                "global.virt",
                "admin0",
                "admin0",
                ADMIN0.1,
                &["systemManagement"],
            ),
            user(
                "B3F1C2A0-0001-4ED2-997C-4A4F39933D18",
                DOMAIN_UID,
                "bertrand",
                "Bertrand Dupré",
                "8ertranD",
                &[],
            ),
            user(
                "A7E2D3B1-0002-4ED2-997C-4A4F39933D18",
                DOMAIN_UID,
                "nathalie",
                "Nathalie Martin",
                "Nathali3",
                &[],
            ),
            user(
                "C9D4E5F6-0003-4ED2-997C-4A4F39933D18",
                DOMAIN_UID,
                "helene",
                "Hélène Petit",
                "H3lene!",
                &[],
            ),
            user(
                "D1E2F3A4-0004-4ED2-997C-4A4F39933D18",
                DOMAIN_UID,
                "dadmin",
                "Domain Admin",
                "Dadm1n",
                &["admin"],
            ),
        ];
        s.groups = vec![FakeGroup {
            uid: "group-compta-team".into(),
            name: "compta-team".into(),
            members: vec!["B3F1C2A0-0001-4ED2-997C-4A4F39933D18".into()],
        }];
        for name in ["compta", "projets", "rh"] {
            s.mailshares.push(FakeMailshare {
                uid: format!("mailshare-{name}"),
                domain: DOMAIN_UID.into(),
                name: name.into(),
            });
        }
        let ace = AccessControlEntry::new;
        s.acls.insert(
            "mailbox:acls-mailshare-compta".into(),
            vec![ace("group-compta-team", Verb::Read)],
        );
        s.acls.insert(
            "mailbox:acls-mailshare-projets".into(),
            vec![
                ace("B3F1C2A0-0001-4ED2-997C-4A4F39933D18", Verb::Write),
                ace("C9D4E5F6-0003-4ED2-997C-4A4F39933D18", Verb::All),
            ],
        );
        s.acls.insert(
            "mailbox:acls-mailshare-rh".into(),
            vec![ace("C9D4E5F6-0003-4ED2-997C-4A4F39933D18", Verb::All)],
        );
        s.acls.insert(
            "mailbox:acls-C9D4E5F6-0003-4ED2-997C-4A4F39933D18".into(),
            vec![ace("B3F1C2A0-0001-4ED2-997C-4A4F39933D18", Verb::Read)],
        );
        s.departure_scenario();
        s
    }

    /// The rest of bertrand's working life, for the departure steps: a forward and a rule
    /// that send his mail out of the company, a rule to a colleague, a domain rule; his
    /// calendar (public for invitations) and address book; hélène's calendar he manages as
    /// her delegate, with her delegation rule naming him; hélène reading his mailbox; a phone;
    /// an API key of his own (his mail client).
    fn departure_scenario(&mut self) {
        const B: &str = "B3F1C2A0-0001-4ED2-997C-4A4F39933D18";
        const H: &str = "C9D4E5F6-0003-4ED2-997C-4A4F39933D18";
        let ace = AccessControlEntry::new;
        let redirect = |id: i64, name: &str, to: &str| {
            json!({"id": id, "client": "bluemind", "type": "GENERIC", "trigger": "IN", "active": true, "name": name,
                "stop": false, "conditions": [],
                "actions": [{"name": "REDIRECT", "emails": [to], "keepCopy": true}]})
        };
        self.filters.insert(
            B.into(),
            json!({"rules": [redirect(1, "Vers ma boîte perso", "b.dupre@proton.me"),
                              redirect(2, "Factures pour Hélène", "helene@bluemind.loc")],
                   "forwarding": {"enabled": true, "localCopy": true, "emails": ["bertrand.dupre@gmail.com"]},
                   "vacation": {"enabled": false, "start": null, "end": null, "text": null, "textHtml": null, "subject": null}}),
        );
        self.next_rule_id = 2;
        self.domain_rules.insert(
            DOMAIN_UID.into(),
            vec![redirect(100, "Archivage légal", "archive@bluemind.loc")],
        );
        for (uid, kind, owner, name) in [
            (format!("calendar:Default:{B}"), "calendar", B, "Bertrand Dupré"),
            (format!("book:Contacts_{B}"), "addressbook", B, "Mes contacts"),
            (format!("calendar:Default:{H}"), "calendar", H, "Hélène Petit"),
        ] {
            self.containers.push(FakeContainer {
                uid,
                kind: kind.into(),
                owner: owner.into(),
                name: name.into(),
                domain: DOMAIN_UID.into(),
            });
        }
        self.acls.insert(
            format!("calendar:Default:{B}"),
            vec![ace(B, Verb::All), ace(DOMAIN_UID, Verb::Invitation)],
        );
        self.acls
            .insert(format!("book:Contacts_{B}"), vec![ace(B, Verb::All)]);
        self.acls.insert(
            format!("calendar:Default:{H}"),
            vec![ace(H, Verb::All), ace(B, Verb::Write)],
        );
        self.delegation_rules.insert(
            H.into(),
            json!({"delegatorCalendarUid": format!("calendar:Default:{H}"), "delegateUids": [B],
                   "delegatorUid": H, "keepCopy": true, "readOnly": false}),
        );
        self.acls
            .insert(format!("mailbox:acls-{B}"), vec![ace(H, Verb::Read)]);
        self.devices.push(FakeDevice {
            uid: "device-iphone-bertrand".into(),
            owner: B.into(),
            identifier: "ApplF4KE1PH0NE".into(),
            kind: "iPhone".into(),
            partnership: true,
        });
        // Made by bertrand himself for his mail client: not in `minted` (no run made it).
        self.keys.push(FakeKey {
            sid: "bertrand-thunderbird-key".into(),
            display_name: "Thunderbird".into(),
            subject: B.into(),
        });
    }

    /// A user by uid.
    pub fn user(&self, uid: &str) -> Option<&FakeUser> {
        self.users.iter().find(|u| u.uid == uid)
    }

    /// A user by login (local part) in the scenario's domain.
    pub fn user_by_login(&self, login: &str) -> Option<&FakeUser> {
        self.users
            .iter()
            .find(|u| u.login == login && u.domain != "global.virt")
    }

    /// Creates an API key for `subject` directly (for fixtures: admin keys for the tests).
    pub fn mint_key(&mut self, subject: &str, display_name: &str) -> String {
        let sid = uuid::Uuid::new_v4().to_string();
        self.keys.push(FakeKey {
            sid: sid.clone(),
            display_name: display_name.into(),
            subject: subject.into(),
        });
        self.minted.push((subject.to_string(), sid.clone()));
        if let (Some(sink), Some(email)) = (&self.sink, self.user(subject).and_then(|u| u.emails.first())) {
            sink.key_added(email, &sid);
        }
        sid
    }

    fn domain_of(&self, name: &str) -> Option<&FakeDomain> {
        self.domains
            .iter()
            .find(|d| d.uid == name || d.aliases.iter().any(|a| a == name))
    }

    fn is_global_admin(&self, uid: &str) -> bool {
        self.user(uid)
            .is_some_and(|u| u.roles.iter().any(|r| r == "systemManagement"))
    }

    fn is_domain_admin(&self, uid: &str, domain: &str) -> bool {
        self.is_global_admin(uid)
            || self
                .user(uid)
                .is_some_and(|u| u.domain == domain && u.roles.iter().any(|r| r == "admin"))
    }

    fn groups_of(&self, uid: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == uid))
            .map(|g| g.uid.clone())
            .collect()
    }

    fn resolve_login(&self, login: &str) -> Option<&FakeUser> {
        let (local, domain) = login.split_once('@').unwrap_or((login, "global.virt"));
        if domain == "global.virt" {
            return self
                .users
                .iter()
                .find(|u| u.domain == "global.virt" && u.login == local);
        }
        let d = self.domain_of(domain)?;
        if domain == d.uid {
            self.users.iter().find(|u| u.domain == d.uid && u.login == local)
        } else {
            self.users
                .iter()
                .find(|u| u.domain == d.uid && u.emails.iter().any(|e| e == login))
        }
    }

    /// A session; like BlueMind, its id is also a valid IMAP password of the user until logout.
    fn new_session(&mut self, uid: &str) -> String {
        let sid = uuid::Uuid::new_v4().to_string();
        self.issued.push(sid.clone());
        self.sessions.insert(sid.clone(), uid.to_string());
        self.last_used.insert(sid.clone(), std::time::Instant::now());
        if let (Some(sink), Some(email)) = (&self.sink, self.user(uid).and_then(|u| u.emails.first())) {
            sink.key_added(email, &sid);
        }
        sid
    }

    /// Drops the sessions idle for longer than the timeout (BlueMind's cache expires them on
    /// access); a dropped session's id stops being an IMAP password too.
    fn expire_idle(&mut self) {
        let timeout = self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT);
        let now = std::time::Instant::now();
        let idle: Vec<String> = self
            .last_used
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for sid in idle {
            self.last_used.remove(&sid);
            self.end_session(&sid);
        }
    }

    fn end_session(&mut self, sid: &str) {
        self.last_used.remove(sid);
        if let Some(uid) = self.sessions.remove(sid)
            && let (Some(sink), Some(email)) = (&self.sink, self.user(&uid).and_then(|u| u.emails.first()))
        {
            sink.key_removed(email, sid);
        }
        self.key_sessions.remove(sid);
    }

    fn login_response(&self, u: &FakeUser, key: &str) -> Value {
        json!({
            "status": "Ok", "message": null, "authKey": key,
            "latd": format!("{}@{}", u.login, u.domain),
            "authUser": { "uid": u.uid, "domainUid": u.domain, "displayName": u.display_name,
                          "roles": u.roles, "rolesByOU": {}, "settings": {}, "value": user_value(u) }
        })
    }
}

fn user_value(u: &FakeUser) -> Value {
    let emails: Vec<Email> = u
        .emails
        .iter()
        .enumerate()
        .map(|(i, e)| Email {
            address: e.clone(),
            all_aliases: false,
            is_default: i == 0,
        })
        .collect();
    let mut v = json!({
        "login": u.login, "password": null, "emails": emails, "archived": u.archived, "hidden": u.hidden,
        "system": false, "routing": "internal", "accountType": "FULL", "quota": null,
        "contactInfos": {"identification": {"formatedName": {"value": u.display_name}}}, "properties": {},
    });
    if let Value::Object(map) = &mut v {
        for (k, val) in &u.extra {
            map.insert(k.clone(), val.clone());
        }
    }
    v
}

fn item(uid: &str, name: &str, value: Value) -> Value {
    json!({"uid": uid, "internalId": 1, "version": 1, "displayName": name, "externalId": null, "flags": [], "value": value})
}

fn fault(status: u16, code: Option<&str>, message: &str) -> Response {
    let mut body = json!({"errorType": "ServerFault", "message": message});
    if let Some(c) = code {
        body["errorCode"] = json!(c);
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

/// An answer whose body breaks off: the connection fails under the client mid-response.
fn network_fault() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("injected network fault"))
    });
    Response::new(axum::body::Body::from_stream(broken))
}

fn ok_json(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The running double.
pub struct FakeBlueMind {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    admin_key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeBlueMind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBlueMind")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeBlueMind {
    /// Starts the double with `state` on 127.0.0.1 and a free port. An API key of admin0 is
    /// minted for the tests ([`FakeBlueMind::admin_key`]).
    pub fn start(mut state: State, sink: Option<Arc<dyn CredentialSink>>) -> std::io::Result<Self> {
        state.sink = sink;
        let admin_key = state.mint_key("admin0_global.virt", "tests");
        let state = Arc::new(Mutex::new(state));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-bluemind".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let app = axum::Router::new().fallback(
                        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                            let st = shared.clone();
                            async move {
                                let route = route_of(&method, &uri);
                                if lock(&st).held.contains(route) {
                                    lock(&st).requests.push(format!("HELD {route}"));
                                }
                                while lock(&st).held.contains(route) {
                                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                                }
                                handle(&st, method, uri, headers, body)
                            }
                        },
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(FakeBlueMind {
            addr,
            state,
            admin_key,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Base URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API key of admin0.
    pub fn admin_key(&self) -> SecretString {
        SecretString::from(self.admin_key.clone())
    }

    /// The state, for set-up and assertions.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeBlueMind {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(st: &Mutex<State>) -> MutexGuard<'_, State> {
    st.lock().unwrap_or_else(|e| e.into_inner())
}

/// The segments of an `/api/...` path, percent-decoded.
fn segments(uri: &Uri) -> Option<Vec<String>> {
    let path = uri.path().trim_end_matches('/');
    let rest = path.strip_prefix("/api")?;
    Some(rest.split('/').filter(|p| !p.is_empty()).map(decode).collect())
}

fn route_of(method: &Method, uri: &Uri) -> &'static str {
    let seg = segments(uri).unwrap_or_default();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    route_name(method, &seg)
}

fn handle(st: &Mutex<State>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = lock(st);
    s.requests.push(format!(
        "{method} {}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    ));
    let Some(seg) = segments(&uri) else {
        return fault(404, Some("NOT_FOUND"), "no such route");
    };
    let path = uri.path().trim_end_matches('/').to_string();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let q = query_map(&uri);
    let route = route_name(&method, &seg);
    let one = seg
        .iter()
        .find_map(|part| s.faults.get(&format!("{route}:{part}")).copied());
    if let Some(status) = s.faults.get(route).copied().or(one) {
        if status == 0 {
            return network_fault();
        }
        return fault(status, Some("FAILURE"), &format!("injected fault on {route}"));
    }
    if route == "login" {
        return login(&mut s, &q, &headers, &body);
    }
    // Every other route needs a valid key.
    let key = headers
        .get("X-BM-ApiKey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| q.get("apikey").cloned());
    s.expire_idle();
    let caller = key.as_deref().and_then(|k| {
        s.sessions
            .get(k)
            .cloned()
            .or_else(|| s.key_sessions.get(k).cloned())
            .or_else(|| s.keys.iter().find(|x| x.sid == k).map(|x| x.subject.clone()))
    });
    let (Some(key), Some(caller)) = (key, caller) else {
        return fault(
            401,
            Some("AUTHENTICATION_FAIL"),
            "invalid accesstoken: session id is not valid",
        );
    };
    if s.keys.iter().any(|k| k.sid == key) {
        s.key_sessions.insert(key.clone(), caller.clone());
    }
    if s.sessions.contains_key(&key) || s.key_sessions.contains_key(&key) {
        s.last_used.insert(key.clone(), std::time::Instant::now());
    }
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (route, seg.as_slice()) {
        ("su", _) => su(&mut s, &caller, &q),
        ("logout", _) => {
            s.end_session(&key);
            ok_empty()
        }
        ("ping", _) => ok_empty(),
        ("current_user", _) => match s.user(&caller) {
            Some(u) => ok_json(s.login_response(u, "")["authUser"].clone()),
            None => fault(401, Some("AUTHENTICATION_FAIL"), "no user"),
        },
        ("domain_lookup", _) => {
            let name = q.get("name").cloned().unwrap_or_default();
            match s.domain_of(&name).cloned() {
                None => no_content(),
                Some(d)
                    if !s.is_domain_admin(&caller, &d.uid)
                        && s.user(&caller).is_none_or(|u| u.domain != d.uid) =>
                {
                    fault(403, Some("PERMISSION_DENIED"), "not an admin of this domain")
                }
                Some(d) => ok_json(item(
                    &d.uid,
                    &d.uid,
                    json!({"name": d.uid, "label": d.uid, "aliases": d.aliases, "defaultAlias": d.aliases.first(), "global": false, "properties": {}}),
                )),
            }
        }
        ("user_by_login" | "user_by_email" | "user_complete", [_, d, _, ..]) => {
            let d = d.to_string();
            let found = match seg.as_slice() {
                [_, _, "byLogin", login] => {
                    let local = login.split('@').next().unwrap_or("");
                    s.users.iter().find(|u| u.domain == d && u.login == local)
                }
                [_, _, "byEmail", email] => s
                    .users
                    .iter()
                    .find(|u| u.domain == d && u.emails.iter().any(|e| e == email)),
                [_, _, uid, "complete"] => s.users.iter().find(|u| u.domain == d && u.uid == *uid),
                _ => None,
            }
            .cloned();
            let allowed = s.is_domain_admin(&caller, &d) || found.as_ref().is_some_and(|u| u.uid == caller);
            if !allowed {
                return fault(403, Some("PERMISSION_DENIED"), "manageUser required");
            }
            match found {
                Some(u) => ok_json(item(&u.uid, &u.display_name, user_value(&u))),
                None => no_content(),
            }
        }
        ("user_update", [_, d, uid]) => {
            let (d, uid) = (d.to_string(), uid.to_string());
            if !s.is_domain_admin(&caller, &d) {
                return fault(403, Some("PERMISSION_DENIED"), "manageUser required");
            }
            let emails: Vec<String> = json_body["emails"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e["address"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if s.users
                .iter()
                .any(|o| o.uid != uid && o.emails.iter().any(|e| emails.contains(e)))
            {
                return fault(500, Some("ALREADY_EXISTS"), "At least one email is already used");
            }
            let Some(u) = s.users.iter_mut().find(|u| u.uid == uid && u.domain == d) else {
                return fault(404, Some("NOT_FOUND"), "no such user");
            };
            u.archived = json_body["archived"].as_bool().unwrap_or(false);
            u.hidden = json_body["hidden"].as_bool().unwrap_or(false);
            u.emails = emails;
            if let Value::Object(map) = &json_body {
                for (k, v) in map {
                    if !["login", "password", "emails", "archived", "hidden"].contains(&k.as_str()) {
                        u.extra.insert(k.clone(), v.clone());
                    }
                }
            }
            ok_empty()
        }
        ("set_password", [_, d, uid, _]) => {
            let (d, uid) = (d.to_string(), uid.to_string());
            if !s.is_domain_admin(&caller, &d) && caller != uid {
                return fault(403, Some("PERMISSION_DENIED"), "manageUserPassword required");
            }
            let Some(pw) = json_body["newPassword"].as_str().map(str::to_string) else {
                return fault(500, Some("INVALID_PARAMETER"), "newPassword missing");
            };
            let sink = s.sink.clone();
            let Some(u) = s.users.iter_mut().find(|u| u.uid == uid) else {
                return fault(404, Some("NOT_FOUND"), "no such user");
            };
            u.password = pw.clone();
            if let (Some(sink), Some(email)) = (sink, u.emails.first()) {
                sink.password_set(email, &pw);
            }
            ok_empty()
        }
        ("key_create", _) => {
            let name = q.get("displayName").cloned().unwrap_or_default();
            if name.is_empty() {
                return fault(500, None, "API key display name cannot be empty");
            }
            let sid = s.mint_key(&caller, &name);
            let domain = s.user(&caller).map(|u| u.domain.clone()).unwrap_or_default();
            ok_json(json!({"sid": sid, "displayName": name, "subject": caller, "domainUid": domain}))
        }
        ("key_list", _) => {
            let domain = s.user(&caller).map(|u| u.domain.clone()).unwrap_or_default();
            let keys: Vec<Value> = s.keys.iter().filter(|k| k.subject == caller)
                .map(|k| json!({"sid": k.sid, "displayName": k.display_name, "subject": k.subject, "domainUid": domain})).collect();
            ok_json(Value::Array(keys))
        }
        ("key_delete", [_, _, sid]) => {
            // Only the owner's keys go; anyone else gets 200 and nothing happens.
            let sid = sid.to_string();
            if let Some(pos) = s.keys.iter().position(|k| k.sid == sid && k.subject == caller) {
                let k = s.keys.remove(pos);
                if let (Some(sink), Some(email)) =
                    (s.sink.clone(), s.user(&k.subject).and_then(|u| u.emails.first()))
                {
                    sink.key_removed(email, &k.sid);
                }
            }
            ok_empty()
        }
        ("list_for_user", _) => {
            let d = q.get("domainUid").cloned().unwrap_or_default();
            let user = q.get("userUid").cloned().unwrap_or_default();
            if !s.is_domain_admin(&caller, &d) {
                return fault(
                    500,
                    Some("FORBIDDEN"),
                    "You have to be domain admin to call this method",
                );
            }
            let query: ContainerQuery = serde_json::from_value(json_body).unwrap_or_default();
            ok_json(Value::Array(list_for_user(&s, &d, &user, &query)))
        }
        ("acl_get", [_, _, container, _]) => {
            let c = container.to_string();
            if !can_manage(&s, &caller, &c) {
                return fault(403, Some("PERMISSION_DENIED"), "Manage required");
            }
            let stored = s.acls.get(&c).cloned().unwrap_or_default();
            if !s.acl_shape_bm5 {
                return ok_json(json!(stored));
            }
            // BlueMind 5: the owner's implicit rights on a user's mailbox, then every verb
            // expanded.
            let mut with_owner = stored;
            if let Some(owner) = c.strip_prefix("mailbox:acls-")
                && s.user(owner).is_some()
            {
                with_owner.push(AccessControlEntry::new(owner, Verb::All));
            }
            let mut expanded: Vec<AccessControlEntry> = Vec::new();
            for e in with_owner {
                for v in ALL_VERBS.iter().filter(|v| e.verb.implies(**v)) {
                    let x = AccessControlEntry::new(e.subject.as_str(), *v);
                    if !expanded.contains(&x) {
                        expanded.push(x);
                    }
                }
            }
            ok_json(json!(expanded))
        }
        ("acl_put", [_, _, container, _]) => {
            let c = container.to_string();
            if !can_manage(&s, &caller, &c) {
                return fault(403, Some("PERMISSION_DENIED"), "Manage required");
            }
            let Some(list) = json_body.as_array() else {
                return fault(500, Some("FAILURE"), "body required");
            };
            let mut acl = Vec::new();
            for e in list {
                let (Some(subject), Some(verb)) =
                    (e["subject"].as_str(), e.get("verb").filter(|v| !v.is_null()))
                else {
                    return fault(500, Some("FAILURE"), "null verb or subject");
                };
                let verb: Verb = serde_json::from_value(verb.clone()).unwrap_or(Verb::Unknown);
                if c.starts_with("mailbox:acls-") && s.domains.iter().any(|d| d.uid == subject) {
                    return fault(
                        500,
                        Some("FORBIDDEN"),
                        "Public sharing for user mailbox is forbidden",
                    );
                }
                acl.push(AccessControlEntry::new(subject, verb));
            }
            let before = s.acls.get(&c).cloned().unwrap_or_default();
            if let Some(share) = c.strip_prefix("mailbox:acls-")
                && s.mailshares.iter().any(|m| m.uid == share)
            {
                mailshare_sanitize(&before, &mut acl);
            }
            // Each grantee whose rights grew is mailed "… shared with you".
            for e in &acl {
                let had = before
                    .iter()
                    .any(|b| b.subject == e.subject && b.verb.implies(e.verb));
                if !had && !s.acl_notifications.contains(&(e.subject.clone(), c.clone())) {
                    s.acl_notifications.push((e.subject.clone(), c.clone()));
                }
            }
            // Compacted on store, as BlueMind 5: one entry per (subject, verb).
            let mut seen = HashSet::new();
            acl.retain(|e| seen.insert((e.subject.clone(), e.verb)));
            if s.acl_shape_bm5 {
                // Compacted per subject: only the verbs no other verb of the subject implies.
                let all = acl.clone();
                acl.retain(|e| {
                    !all.iter()
                        .any(|o| o.subject == e.subject && o.verb != e.verb && o.verb.implies(e.verb))
                });
                acl.dedup();
            }
            // A default calendar's sharing is mirrored on its free/busy container
            // (FreebusyAclHook.java:17-41).
            if let Some(owner) = c.strip_prefix("calendar:Default:") {
                let mut fb: Vec<AccessControlEntry> = Vec::new();
                for e in acl.iter().filter(|e| e.verb.implies(Verb::Freebusy)) {
                    let x = AccessControlEntry::new(e.subject.as_str(), Verb::Freebusy);
                    if !fb.contains(&x) {
                        fb.push(x);
                    }
                }
                s.acls.insert(format!("freebusy:{owner}"), fb);
            }
            s.acls.insert(c, acl);
            ok_empty()
        }
        ("dir_entry", [_, d, _, uid]) => {
            let (d, uid) = (d.to_string(), uid.to_string());
            if let Some(u) = s.users.iter().find(|u| u.uid == uid && u.domain == d) {
                return ok_json(
                    json!({"entryUid": u.uid, "kind": "USER", "displayName": u.display_name, "email": u.emails.first(),
                    "path": format!("{d}/users/{uid}"), "archived": u.archived, "hidden": u.hidden, "system": false}),
                );
            }
            if let Some(m) = s.mailshares.iter().find(|m| m.uid == uid) {
                return ok_json(
                    json!({"entryUid": m.uid, "kind": "MAILSHARE", "displayName": m.name, "email": format!("{}@{DOMAIN}", m.name),
                    "path": format!("{d}/mailshares/{uid}"), "archived": false, "hidden": false, "system": false}),
                );
            }
            if let Some(g) = s.groups.iter().find(|g| g.uid == uid) {
                return ok_json(
                    json!({"entryUid": g.uid, "kind": "GROUP", "displayName": g.name, "email": null,
                    "path": format!("{d}/groups/{uid}"), "archived": false, "hidden": false, "system": false}),
                );
            }
            no_content()
        }
        ("mailshares", [_, d, _]) => {
            let d = d.to_string();
            let list: Vec<Value> = s.mailshares.iter().filter(|m| m.domain == d)
                .map(|m| item(&m.uid, &m.name, json!({"name": m.name, "emails": [{"address": format!("{}@{DOMAIN}", m.name), "isDefault": true, "allAliases": false}], "routing": "internal", "archived": false}))).collect();
            ok_json(Value::Array(list))
        }
        ("subscriptions" | "subscribe" | "unsubscribe", [_, d, _, subject, ..]) => {
            let (d, subject) = (d.to_string(), subject.to_string());
            if !s.is_domain_admin(&caller, &d) && caller != subject {
                return fault(403, Some("PERMISSION_DENIED"), "manageUserSubscriptions required");
            }
            match route {
                "subscriptions" => {
                    let wanted = q.get("type").cloned();
                    let list: Vec<Value> = s.subscriptions.get(&subject).cloned().unwrap_or_default().iter().filter_map(|c| {
                        let owner = owner_of(&s, &c.container_uid);
                        let kind = s.containers.iter().find(|x| x.uid == c.container_uid)
                            .map(|x| x.kind.as_str()).unwrap_or("mailboxacl");
                        if wanted.as_deref().is_some_and(|w| w != kind) {
                            return None;
                        }
                        Some(json!({"containerUid": c.container_uid, "containerType": kind, "owner": owner, "name": owner,
                               "offlineSync": c.offline_sync, "automount": c.automount, "defaultContainer": true}))
                    }).collect();
                    ok_json(Value::Array(list))
                }
                "subscribe" => {
                    let subs: Vec<ContainerSubscription> =
                        serde_json::from_value(json_body).unwrap_or_default();
                    let mine = s.subscriptions.entry(subject).or_default();
                    for sub in subs {
                        if !mine.iter().any(|m| m.container_uid == sub.container_uid) {
                            mine.push(sub);
                        }
                    }
                    ok_empty()
                }
                _ => {
                    let uids: Vec<String> = serde_json::from_value(json_body).unwrap_or_default();
                    s.subscriptions
                        .entry(subject)
                        .or_default()
                        .retain(|m| !uids.contains(&m.container_uid));
                    ok_empty()
                }
            }
        }
        ("quota", [_, d, mailbox, _]) => {
            let (d, mailbox) = (d.to_string(), mailbox.to_string());
            if !s.is_domain_admin(&caller, &d) && caller != mailbox {
                return fault(403, Some("PERMISSION_DENIED"), "not allowed");
            }
            match s.user(&mailbox) {
                Some(u) => ok_json(json!({"used": u.used_kib, "quota": u.quota_kib})),
                None => fault(404, Some("NOT_FOUND"), "no such mailbox"),
            }
        }
        ("filter_get" | "filter_set", [_, d, mailbox, _]) => {
            let (d, mailbox) = (d.to_string(), mailbox.to_string());
            if !s.is_domain_admin(&caller, &d) && caller != mailbox {
                return fault(403, Some("PERMISSION_DENIED"), "not allowed");
            }
            if route == "filter_get" {
                let default = json!({"rules": [], "forwarding": {"enabled": false, "localCopy": true, "emails": []},
                    "vacation": {"enabled": false, "start": null, "end": null, "text": null, "textHtml": null, "subject": null}});
                ok_json(s.filters.get(&mailbox).cloned().unwrap_or(default))
            } else {
                s.filters.insert(mailbox, json_body);
                ok_empty()
            }
        }
        ("domain_rules", [_, d, _]) => {
            let d = d.to_string();
            if !s.is_domain_admin(&caller, &d) {
                return fault(403, Some("PERMISSION_DENIED"), "not allowed");
            }
            ok_json(json!(s.domain_rules.get(&d).cloned().unwrap_or_default()))
        }
        ("vacation" | "forwarding" | "rules" | "rule" | "delegation_rule", [_, d, mailbox, ..]) => {
            let (d, mailbox) = (d.to_string(), mailbox.to_string());
            // manageMailboxFilter (MailboxesService.java:380): a domain admin, or the owner.
            if !s.is_domain_admin(&caller, &d) && caller != mailbox {
                return fault(403, Some("PERMISSION_DENIED"), "manageMailboxFilter required");
            }
            filter_route(&mut s, route, &method, &mailbox, seg.get(4).copied(), json_body)
        }
        ("version", _) => {
            // IInstallation needs a global admin (systemManagement).
            if !s.is_global_admin(&caller) {
                return fault(403, Some("PERMISSION_DENIED"), "systemManagement required");
            }
            ok_json(json!({"softwareVersion": "5.1.4", "databaseVersion": "5.1.4"}))
        }
        ("group_uids", [_, d, uid, _]) => {
            let (d, uid) = (d.to_string(), uid.to_string());
            if !s.is_domain_admin(&caller, &d) && caller != uid {
                return fault(403, Some("PERMISSION_DENIED"), "not allowed");
            }
            ok_json(json!(s.groups_of(&uid)))
        }
        ("devices" | "partnership", [_, owner, rest @ ..]) => {
            let owner = owner.to_string();
            // manageUserDevice (DeviceService.java:54-106).
            let domain = s.user(&owner).map(|u| u.domain.clone()).unwrap_or_default();
            if !s.is_domain_admin(&caller, &domain) {
                return fault(403, Some("PERMISSION_DENIED"), "manageUserDevice required");
            }
            if route == "devices" {
                let values: Vec<Value> = s
                    .devices
                    .iter()
                    .filter(|x| x.owner == owner)
                    .map(|x| {
                        item(
                            &x.uid,
                            &x.identifier,
                            json!({"identifier": x.identifier, "owner": x.owner, "type": x.kind,
                        "hasPartnership": x.partnership, "isWiped": false, "lastSync": null}),
                        )
                    })
                    .collect();
                return ok_json(json!({"total": values.len(), "values": values}));
            }
            let uid = rest.first().copied().unwrap_or_default();
            match s.devices.iter_mut().find(|x| x.owner == owner && x.uid == uid) {
                Some(x) => {
                    x.partnership = false;
                    ok_empty()
                }
                None => fault(404, Some("NOT_FOUND"), "no such device"),
            }
        }
        _ => fault(
            404,
            Some("NOT_FOUND"),
            &format!("the double has no route {method} {path}"),
        ),
    }
}

/// Epoch milliseconds as BlueMind keeps them: to the second (`"yyyy-MM-dd HH:mm:ss"`).
fn to_the_second(v: &Value) -> Value {
    match v.as_i64() {
        Some(ms) => json!(ms - ms.rem_euclid(1000)),
        None => Value::Null,
    }
}

/// The mail filter pieces of one mailbox: vacation, forwarding, rules, delegation rule.
fn filter_route(
    s: &mut State,
    route: &str,
    method: &Method,
    mailbox: &str,
    rule_id: Option<&str>,
    body: Value,
) -> Response {
    let default = json!({"rules": [], "forwarding": {"enabled": false, "localCopy": true, "emails": []},
        "vacation": {"enabled": false, "start": null, "end": null, "text": null, "textHtml": null, "subject": null}});
    let own: Vec<String> = s.user(mailbox).map(|u| u.emails.clone()).unwrap_or_default();
    let get = *method == Method::GET;
    if route == "delegation_rule" {
        if get {
            return match s.delegation_rules.get(mailbox) {
                Some(r) => ok_json(r.clone()),
                None => no_content(),
            };
        }
        s.delegation_rules.insert(mailbox.to_string(), body);
        return ok_empty();
    }
    let next_id = s.next_rule_id + 1;
    // A read stores nothing: a mailbox without a filter answers the default one.
    let mut scratch = None;
    let filter = if get {
        scratch.insert(s.filters.get(mailbox).cloned().unwrap_or(default))
    } else {
        s.filters.entry(mailbox.to_string()).or_insert(default)
    };
    match (route, method.as_str()) {
        ("vacation", "GET") => ok_json(filter["vacation"].clone()),
        ("vacation", _) => {
            let enabled = body["enabled"].as_bool().unwrap_or(false);
            let has_text = body["text"].as_str().is_some_and(|t| !t.is_empty())
                || body["textHtml"].as_str().is_some_and(|t| !t.is_empty());
            // An enabled vacation without subject or text maps to a rule without an action
            // (MailFilterRuleVacationMapper.java:41-43, MailFilterValidator.java:71-93).
            if enabled && (body["subject"].as_str().is_none_or(str::is_empty) || !has_text) {
                return fault(400, Some("INVALID_PARAMETER"), "No action for the rule");
            }
            // Not validated further: a start after the end is stored (MailboxesService.java:569-589).
            let mut v = body;
            v["start"] = to_the_second(&v["start"]);
            v["end"] = to_the_second(&v["end"]);
            filter["vacation"] = v;
            ok_empty()
        }
        ("forwarding", "GET") => ok_json(filter["forwarding"].clone()),
        ("forwarding", _) => {
            let emails: Vec<String> = serde_json::from_value(body["emails"].clone()).unwrap_or_default();
            if emails.iter().any(|e| own.contains(e)) {
                return fault(
                    400,
                    Some("INVALID_PARAMETER"),
                    "Cannot forward to the mailbox's own address",
                );
            }
            // `enabled` with no address is stored as it is (MailFilterValidator.java:129-137 is
            // not run here).
            filter["forwarding"] = body;
            ok_empty()
        }
        ("rules", "GET") => {
            let mut rules: Vec<Value> = filter["rules"].as_array().cloned().unwrap_or_default();
            // The dedicated endpoints' rules are rules too.
            if filter["vacation"]["enabled"].as_bool() == Some(true) {
                rules.push(json!({"id": 0, "client": "system", "type": "VACATION", "active": true, "name": "vacation", "actions": [{"name": "REPLY"}]}));
            }
            if filter["forwarding"]["enabled"].as_bool() == Some(true) {
                rules.push(json!({"id": 0, "client": "system", "type": "FORWARD", "active": true, "name": "forward",
                    "actions": [{"name": "REDIRECT", "emails": filter["forwarding"]["emails"], "keepCopy": filter["forwarding"]["localCopy"]}]}));
            }
            ok_json(Value::Array(rules))
        }
        ("rules", _) => {
            let mut rule = body;
            rule["id"] = json!(next_id);
            if let Some(list) = filter["rules"].as_array_mut() {
                list.push(rule);
            }
            s.next_rule_id = next_id;
            ok_json(json!(next_id))
        }
        ("rule", m) => {
            let id: i64 = rule_id.and_then(|r| r.parse().ok()).unwrap_or(-1);
            let Some(list) = filter["rules"].as_array_mut() else {
                return fault(404, Some("NOT_FOUND"), "no such rule");
            };
            let Some(pos) = list.iter().position(|r| r["id"].as_i64() == Some(id)) else {
                return fault(404, Some("NOT_FOUND"), "no such rule");
            };
            match m {
                "GET" => ok_json(list[pos].clone()),
                "DELETE" => {
                    list.remove(pos);
                    ok_empty()
                }
                _ => {
                    let mut rule = body;
                    rule["id"] = json!(id);
                    list[pos] = rule;
                    ok_empty()
                }
            }
        }
        _ => fault(404, Some("NOT_FOUND"), "no such route"),
    }
}

fn route_name(method: &Method, seg: &[&str]) -> &'static str {
    match (method.as_str(), seg) {
        ("POST", ["auth", "login"]) => "login",
        ("POST", ["auth", "_su"]) => "su",
        ("POST", ["auth", "logout"]) => "logout",
        ("GET", ["auth", "ping"]) => "ping",
        ("GET", ["auth"]) => "current_user",
        ("GET", ["domains", "_lookup"]) => "domain_lookup",
        ("GET", ["users", _, "byLogin", _]) => "user_by_login",
        ("GET", ["users", _, "byEmail", _]) => "user_by_email",
        ("GET", ["users", _, "subscriptions", _]) => "subscriptions",
        ("POST", ["users", _, "subscriptions", _, "_subscribe"]) => "subscribe",
        ("POST", ["users", _, "subscriptions", _, "_unsubscribe"]) => "unsubscribe",
        ("GET", ["users", _, _, "complete"]) => "user_complete",
        ("POST", ["users", _, _, "password_"]) => "set_password",
        ("POST", ["users", _, _]) => "user_update",
        ("PUT", ["auth", "keys"]) => "key_create",
        ("GET", ["auth", "keys"]) => "key_list",
        ("DELETE", ["auth", "keys", _]) => "key_delete",
        ("POST", ["containers", "_manage", "_listforuser"]) => "list_for_user",
        ("GET", ["containers", "_manage", _, "_acl"]) => "acl_get",
        ("PUT" | "POST", ["containers", "_manage", _, "_acl"]) => "acl_put",
        ("GET", ["directory", _, "entry-uid", _]) => "dir_entry",
        ("GET", ["mailshares", _, "_complete"]) => "mailshares",
        ("GET", ["mailboxes", _, _, "_filter"]) => "filter_get",
        ("GET", ["mailboxes", _, _, "_quota"]) => "quota",
        ("POST", ["mailboxes", _, _, "_filter"]) => "filter_set",
        ("GET", ["mailboxes", _, "_rules"]) => "domain_rules",
        ("GET" | "POST", ["mailboxes", _, _, "_vacation"]) => "vacation",
        ("GET" | "POST", ["mailboxes", _, _, "_forwarding"]) => "forwarding",
        ("GET" | "PUT", ["mailboxes", _, _, "_rules"]) => "rules",
        ("GET" | "POST" | "DELETE", ["mailboxes", _, _, "_rules", _]) => "rule",
        ("GET" | "POST", ["mailboxes", _, _, "_delegationRule"]) => "delegation_rule",
        ("GET", ["users", _, _, "groupUids"]) => "group_uids",
        ("GET", ["devices", _, "_list"]) => "devices",
        ("GET", ["system", "installation", "version"]) => "version",
        ("DELETE", ["devices", _, _, "_partnership"]) => "partnership",
        _ => "unknown",
    }
}

fn login(s: &mut State, q: &HashMap<String, String>, headers: &HeaderMap, body: &[u8]) -> Response {
    let bad = |m: &str| {
        ok_json(json!({"status": "Bad", "message": m, "authKey": null, "latd": null, "authUser": null}))
    };
    let text_plain = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/plain"));
    let password = if text_plain {
        String::from_utf8_lossy(body).into_owned()
    } else {
        serde_json::from_slice::<String>(body).unwrap_or_default()
    };
    let login = q.get("login").cloned().unwrap_or_default();
    if login.is_empty() || password.is_empty() {
        return bad("empty login or password");
    }
    let Some(u) = s.resolve_login(&login).cloned() else {
        return bad("authentication failed");
    };
    let valid = u.password == password
        || s.keys.iter().any(|k| k.subject == u.uid && k.sid == password)
        || s.sessions.get(&password) == Some(&u.uid);
    if !valid || u.archived {
        return bad("authentication failed");
    }
    let key = s.new_session(&u.uid);
    ok_json(s.login_response(&u, &key))
}

fn su(s: &mut State, caller: &str, q: &HashMap<String, String>) -> Response {
    let login = q.get("login").cloned().unwrap_or_default();
    let Some((local, domain)) = login.split_once('@') else {
        return fault(500, None, "java.util.NoSuchElementException");
    };
    if s.su_global_only && !s.is_global_admin(caller) {
        return ok_json(
            json!({"status": "Bad", "message": "Only token from global domain are allowed to do this."}),
        );
    }
    let Some(d) = s.domain_of(domain).cloned() else {
        return ok_json(json!({"status": "Bad", "message": "domain not found"}));
    };
    // The target is looked up with the caller's own rights: an admin role in the domain.
    if !s.is_domain_admin(caller, &d.uid) {
        return fault(
            403,
            Some("PERMISSION_DENIED"),
            "not allowed to look up users of this domain",
        );
    }
    let Some(target) = s
        .users
        .iter()
        .find(|u| u.domain == d.uid && u.login == local)
        .cloned()
    else {
        return ok_json(json!({"status": "Bad", "message": "user not found"}));
    };
    if let Some(status) = s.faults.get(&format!("su:{local}")).copied() {
        return fault(
            status,
            Some("PERMISSION_DENIED"),
            "su refused for this user (injected)",
        );
    }
    if target.archived {
        return ok_json(json!({"status": "Bad", "message": "user is archived"}));
    }
    let has_sudo = s.is_global_admin(caller)
        || s.user(caller)
            .is_some_and(|u| u.roles.iter().any(|r| r == "sudo"));
    if !has_sudo {
        return fault(403, Some("PERMISSION_DENIED"), "sudo role required");
    }
    let key = s.new_session(&target.uid);
    ok_json(s.login_response(&target, &key))
}

/// On a mailshare, `Write` brings `SendAs` and losing `Write` loses it
/// (MailshareAclSanitize.java:43-83): an undo cannot replay its own diff blindly.
fn mailshare_sanitize(before: &[AccessControlEntry], acl: &mut Vec<AccessControlEntry>) {
    let writes = |list: &[AccessControlEntry], subject: &str| {
        list.iter()
            .any(|e| e.subject == subject && e.verb.implies(Verb::Write))
    };
    let subjects: HashSet<String> = acl.iter().chain(before).map(|e| e.subject.clone()).collect();
    for subject in subjects {
        let now = writes(acl, &subject);
        let has_send_as = acl
            .iter()
            .any(|e| e.subject == subject && e.verb.implies(Verb::SendAs));
        if now && !has_send_as {
            acl.push(AccessControlEntry {
                subject,
                verb: Verb::SendAs,
            });
        } else if !now && writes(before, &subject) {
            acl.retain(|e| !(e.subject == subject && e.verb == Verb::SendAs));
        }
    }
}

/// The owner of a container: from the registry, else the mailbox's uid.
fn owner_of<'a>(s: &'a State, container: &'a str) -> &'a str {
    if let Some(c) = s.containers.iter().find(|c| c.uid == container) {
        return &c.owner;
    }
    if let Some(o) = container.strip_prefix("freebusy:") {
        return o;
    }
    container.trim_start_matches("mailbox:acls-")
}

fn can_manage(s: &State, caller: &str, container: &str) -> bool {
    let owner = owner_of(s, container);
    if owner == caller || s.is_global_admin(caller) {
        return true;
    }
    let domain = s.user(owner).map(|u| u.domain.clone()).or_else(|| {
        s.mailshares
            .iter()
            .find(|m| m.uid == owner)
            .map(|m| m.domain.clone())
    });
    domain.is_some_and(|d| s.is_domain_admin(caller, &d))
        || s.acls.get(container).is_some_and(|acl| {
            acl.iter()
                .any(|e| e.subject == caller && e.verb.implies(Verb::Manage))
        })
}

fn list_for_user(s: &State, domain: &str, user: &str, q: &ContainerQuery) -> Vec<Value> {
    let mut subjects = vec![user.to_string(), domain.to_string()];
    subjects.extend(s.groups_of(user));
    let wanted = q.verb.clone().unwrap_or_default();
    // (uid, kind, owner, name): every user's and mailshare's mailbox, then the calendars
    // and books.
    let mut all: Vec<(String, String, String, String)> = s
        .users
        .iter()
        .filter(|u| u.domain == domain)
        .map(|u| (u.uid.clone(), u.display_name.clone()))
        .chain(
            s.mailshares
                .iter()
                .filter(|m| m.domain == domain)
                .map(|m| (m.uid.clone(), m.name.clone())),
        )
        .map(|(owner, name)| {
            (
                format!("mailbox:acls-{owner}"),
                "mailboxacl".to_string(),
                owner,
                name,
            )
        })
        .collect();
    all.extend(
        s.containers
            .iter()
            .filter(|c| c.domain == domain)
            .map(|c| (c.uid.clone(), c.kind.clone(), c.owner.clone(), c.name.clone())),
    );
    let mut out = Vec::new();
    for (uid, kind, owner, name) in all {
        if q.kind.as_ref().is_some_and(|k| *k != kind) || q.owner.as_ref().is_some_and(|o| *o != owner) {
            continue;
        }
        // Owned containers are always listed, whatever the verbs asked (ContainerStore.java:160-187).
        let verbs: Vec<Verb> = if owner == user {
            vec![Verb::All]
        } else {
            s.acls
                .get(&uid)
                .map(|acl| {
                    acl.iter()
                        .filter(|e| subjects.contains(&e.subject))
                        .map(|e| e.verb)
                        .collect()
                })
                .unwrap_or_default()
        };
        if verbs.is_empty()
            || (owner != user
                && !wanted.is_empty()
                && !verbs.iter().any(|v| wanted.iter().any(|w| v.implies(*w))))
        {
            continue;
        }
        let owner_name = s
            .user(&owner)
            .map(|u| u.display_name.clone())
            .unwrap_or_else(|| name.clone());
        out.push(json!({"uid": uid, "name": name, "owner": owner, "type": kind, "domainUid": domain,
            "ownerDisplayname": owner_name, "verbs": verbs, "defaultContainer": true, "readOnly": false, "offlineSync": false}));
    }
    out
}
