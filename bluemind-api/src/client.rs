//! The HTTP client: one method per BlueMind call, each returning typed values and the quirks
//! turned into types (204 → `None`, a failed login → `LoginOutcome::Bad`).
//!
//! The key travels only in the `X-BM-ApiKey` header, marked sensitive; passwords only in
//! bodies. The one URL that names a key is its own deletion (`DELETE /auth/keys/{sid}`, the
//! only form BlueMind offers), after which the key is worthless.

use crate::error::ApiError;
use crate::model::*;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::time::Duration;

/// How to trust the server.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra CA certificates (PEM), trusted besides the system store.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (explicit flag only).
    pub insecure: bool,
    /// Whole-request timeout (default 60 s).
    pub timeout: Option<Duration>,
}

/// A client bound to one key (the admin's, or a su session's).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// A login's outcome: BlueMind answers HTTP 200 whether it worked or not.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in.
    Ok(Box<LoginResponse>),
    /// Logged in, but the password expired (restricted session).
    Expired(Box<LoginResponse>),
    /// Refused, with the server's message.
    Bad(Option<String>),
}

/// A su's outcome: 403 and 200-with-`Bad` both mean refused.
#[derive(Debug)]
pub enum SuOutcome {
    /// A session of the target user.
    Ok(Box<LoginResponse>),
    /// Refused: not allowed (403), or target unknown/archived, or a server that reserves su
    /// to the global domain (200 `Bad`).
    Refused {
        /// Whether it was a 403 (permission) rather than a 200 `Bad`.
        forbidden: bool,
        /// The server's message.
        message: Option<String>,
    },
}

fn path_segment(s: &str) -> String {
    // Encode everything but unreserved characters (RFC 3986).
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `base_url` (e.g. `https://bm.example.com`; `/api` is added) with `key`.
    pub fn new(base_url: &str, key: SecretString, tls: &TlsOptions) -> Result<Self, ApiError> {
        let mut b = reqwest::Client::builder()
            .timeout(tls.timeout.unwrap_or(Duration::from_secs(60)))
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("offboard-bluemind-api/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &tls.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| ApiError::Config(format!("CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ApiError::Config(format!("CA file {}: {e}", path.display())))?;
            b = b.tls_certs_merge(certs);
        }
        if tls.insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let http = b.build().map_err(|e| ApiError::Config(e.to_string()))?;
        let base = format!("{}/api", base_url.trim_end_matches('/').trim_end_matches("/api"));
        Ok(Client { http, base, key })
    }

    /// The same client with another key (a su session, an API key).
    pub fn with_key(&self, key: SecretString) -> Self {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            key,
        }
    }

    /// The base URL (with `/api`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn headers(&self) -> Result<HeaderMap, ApiError> {
        let mut h = HeaderMap::new();
        let mut v = HeaderValue::from_str(self.key.expose_secret())
            .map_err(|_| ApiError::Config("the API key contains characters a header cannot hold".into()))?;
        v.set_sensitive(true);
        h.insert("X-BM-ApiKey", v);
        Ok(h)
    }

    /// Sends one request; retries reads (GET) on transport errors and 502/503/504.
    async fn call<B: Serialize + ?Sized>(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<(StatusCode, bytes_body::Body), ApiError> {
        let idempotent = method == Method::GET;
        let attempts = if idempotent { 3 } else { 1 };
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .headers(self.headers()?);
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if idempotent && matches!(status.as_u16(), 502..=504) && attempt + 1 < attempts {
                        continue;
                    }
                    let bytes = resp
                        .bytes()
                        .await
                        .map_err(|source| ApiError::transport(&self.base, source))?;
                    return check(what, status, bytes_body::Body(bytes.to_vec()));
                }
                Err(source) if idempotent && (source.is_connect() || source.is_timeout()) => {
                    tracing::debug!("{what}: attempt {} failed, retrying", attempt + 1);
                    last = Some(source);
                }
                Err(source) => return Err(ApiError::transport(&self.base, source)),
            }
        }
        match last {
            Some(source) => Err(ApiError::transport(&self.base, source)),
            None => Err(ApiError::Decode {
                what: what.into(),
                detail: "no attempt made".into(),
            }),
        }
    }

    async fn get_opt<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, ApiError> {
        let (status, body) = self.call::<()>(what, Method::GET, path, query, None).await?;
        if status == StatusCode::NO_CONTENT || body.0.is_empty() {
            return Ok(None);
        }
        body.json(what).map(Some)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        self.get_opt(what, path, query)
            .await?
            .ok_or_else(|| ApiError::Decode {
                what: what.into(),
                detail: "empty answer".into(),
            })
    }

    async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<Option<T>, ApiError> {
        let (status, resp) = self.call(what, method, path, query, body).await?;
        if status == StatusCode::NO_CONTENT || resp.0.is_empty() {
            return Ok(None);
        }
        resp.json(what).map(Some)
    }

    // ---- auth -------------------------------------------------------------------------

    /// `POST /auth/login`: the password is the body, as a JSON string. A failure is HTTP 200
    /// with `status: "Bad"`, returned as [`LoginOutcome::Bad`].
    pub async fn login(&self, login: &str, password: &SecretString) -> Result<LoginOutcome, ApiError> {
        let body = password.expose_secret();
        let r: LoginResponse = self
            .send(
                "login",
                Method::POST,
                "/auth/login",
                &[("login", login), ("origin", "offboard")],
                Some(body),
            )
            .await?
            .ok_or_else(|| ApiError::Decode {
                what: "login".into(),
                detail: "empty answer".into(),
            })?;
        Ok(match r.status {
            LoginStatus::Ok => LoginOutcome::Ok(Box::new(r)),
            LoginStatus::Expired => LoginOutcome::Expired(Box::new(r)),
            LoginStatus::Bad => LoginOutcome::Bad(r.message),
        })
    }

    /// `POST /auth/_su?login=<login>@<domain>`: a session as that user. `login` must hold an
    /// `@` (without one BlueMind answers 500). 403 and 200-`Bad` are both a refusal.
    pub async fn su(&self, login_at_domain: &str) -> Result<SuOutcome, ApiError> {
        if !login_at_domain.contains('@') {
            return Err(ApiError::Config(format!(
                "su needs login@domain, got {login_at_domain:?}"
            )));
        }
        let r = self
            .send::<(), LoginResponse>(
                "su",
                Method::POST,
                "/auth/_su",
                &[("login", login_at_domain)],
                None,
            )
            .await;
        match r {
            Ok(Some(r)) if r.status == LoginStatus::Ok && r.auth_key.is_some() => {
                Ok(SuOutcome::Ok(Box::new(r)))
            }
            Ok(Some(r)) => Ok(SuOutcome::Refused {
                forbidden: false,
                message: r.message,
            }),
            Ok(None) => Ok(SuOutcome::Refused {
                forbidden: false,
                message: None,
            }),
            Err(ApiError::Forbidden { message, .. }) => Ok(SuOutcome::Refused {
                forbidden: true,
                message: Some(message),
            }),
            Err(e) => Err(e),
        }
    }

    /// `POST /auth/logout`: ends the session of this client's key (also clears the session
    /// BlueMind caches for a deleted API key).
    pub async fn logout(&self) -> Result<(), ApiError> {
        self.send::<(), serde_json::Value>("logout", Method::POST, "/auth/logout", &[], None)
            .await
            .map(|_| ())
    }

    /// `GET /auth/ping`: whether the key still works.
    pub async fn ping(&self) -> Result<(), ApiError> {
        self.call::<()>("ping", Method::GET, "/auth/ping", &[], None)
            .await
            .map(|_| ())
    }

    /// The server's clock, from the `Date` header of `GET /auth/ping` (to the second); `None`
    /// when the answer has none.
    pub async fn server_time(&self) -> Result<Option<std::time::SystemTime>, ApiError> {
        let resp = self
            .http
            .get(format!("{}/auth/ping", self.base))
            .headers(self.headers()?)
            .send()
            .await
            .map_err(|source| ApiError::transport(&self.base, source))?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        check("ping", resp.status(), bytes_body::Body(Vec::new()))?;
        Ok(date)
    }

    /// `GET /system/installation/version`: the software version (`softwareVersion`); global
    /// admins only on most servers.
    pub async fn installation_version(&self) -> Result<Option<String>, ApiError> {
        let v: Option<serde_json::Value> = self
            .get_opt("installation version", "/system/installation/version", &[])
            .await?;
        Ok(v.and_then(|v| v["softwareVersion"].as_str().map(str::to_string)))
    }

    /// `GET /auth`: who this key belongs to.
    pub async fn current_user(&self) -> Result<AuthUser, ApiError> {
        self.get("current user", "/auth", &[]).await
    }

    // ---- domains and users ---------------------------------------------------------

    /// `GET /domains/_lookup?name=`: a domain by name or alias; `None` when unknown.
    pub async fn lookup_domain(&self, name: &str) -> Result<Option<ItemValue<Domain>>, ApiError> {
        self.get_opt("domain lookup", "/domains/_lookup", &[("name", name)])
            .await
    }

    /// `GET /users/{d}/byLogin/{login}`; `None` (HTTP 204) when unknown.
    pub async fn user_by_login(
        &self,
        domain_uid: &str,
        login: &str,
    ) -> Result<Option<ItemValue<User>>, ApiError> {
        let path = format!(
            "/users/{}/byLogin/{}",
            path_segment(domain_uid),
            path_segment(login)
        );
        self.get_opt("user by login", &path, &[]).await
    }

    /// `GET /users/{d}/byEmail/{email}`; `None` when unknown.
    pub async fn user_by_email(
        &self,
        domain_uid: &str,
        email: &str,
    ) -> Result<Option<ItemValue<User>>, ApiError> {
        let path = format!(
            "/users/{}/byEmail/{}",
            path_segment(domain_uid),
            path_segment(email)
        );
        self.get_opt("user by email", &path, &[]).await
    }

    /// `GET /users/{d}/{uid}/complete`; `None` when unknown.
    pub async fn user_complete(
        &self,
        domain_uid: &str,
        uid: &str,
    ) -> Result<Option<ItemValue<User>>, ApiError> {
        let path = format!(
            "/users/{}/{}/complete",
            path_segment(domain_uid),
            path_segment(uid)
        );
        self.get_opt("user", &path, &[]).await
    }

    /// `POST /users/{d}/{uid}`: replaces the whole user. Send back the complete value read
    /// with [`Client::user_complete`], changed only where intended (missing fields reset).
    pub async fn update_user(&self, domain_uid: &str, uid: &str, user: &User) -> Result<(), ApiError> {
        let path = format!("/users/{}/{}", path_segment(domain_uid), path_segment(uid));
        self.send::<User, serde_json::Value>("user update", Method::POST, &path, &[], Some(user))
            .await
            .map(|_| ())
    }

    /// `POST /users/{d}/{uid}/password_`: sets a new password (admin: no current password).
    pub async fn set_password(
        &self,
        domain_uid: &str,
        uid: &str,
        password: &SecretString,
    ) -> Result<(), ApiError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChangePassword<'a> {
            current_password: Option<&'a str>,
            new_password: &'a str,
        }
        let path = format!(
            "/users/{}/{}/password_",
            path_segment(domain_uid),
            path_segment(uid)
        );
        let body = ChangePassword {
            current_password: None,
            new_password: password.expose_secret(),
        };
        self.send::<_, serde_json::Value>("password change", Method::POST, &path, &[], Some(&body))
            .await
            .map(|_| ())
    }

    // ---- API keys ------------------------------------------------------------------

    /// `PUT /auth/keys?displayName=`: a new key **for the caller** (so call it with the su
    /// session of the user who must own it).
    pub async fn create_api_key(&self, display_name: &str) -> Result<ApiKey, ApiError> {
        self.send::<(), ApiKey>(
            "API key creation",
            Method::PUT,
            "/auth/keys",
            &[("displayName", display_name)],
            None,
        )
        .await?
        .ok_or_else(|| ApiError::Decode {
            what: "API key creation".into(),
            detail: "empty answer".into(),
        })
    }

    /// `GET /auth/keys`: the caller's keys.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, ApiError> {
        Ok(self
            .get_opt("API key list", "/auth/keys", &[])
            .await?
            .unwrap_or_default())
    }

    /// `DELETE /auth/keys/{sid}`. Deletes only a key of the caller: BlueMind answers 200 and
    /// does nothing for anyone else's. Then [`Client::logout`] with the key clears the
    /// session BlueMind caches for it.
    pub async fn delete_api_key(&self, sid: &SecretString) -> Result<(), ApiError> {
        let path = format!("/auth/keys/{}", path_segment(sid.expose_secret()));
        self.send::<(), serde_json::Value>("API key deletion", Method::DELETE, &path, &[], None)
            .await
            .map(|_| ())
    }

    // ---- containers, ACLs, directory, mailshares, subscriptions -----------------------

    /// `POST /containers/_manage/_listforuser`: the containers `user_uid` can use, groups and
    /// public grants included (owned ones too: filter them out).
    pub async fn containers_for_user(
        &self,
        domain_uid: &str,
        user_uid: &str,
        query: &ContainerQuery,
    ) -> Result<Vec<ContainerDescriptor>, ApiError> {
        let q = [("domainUid", domain_uid), ("userUid", user_uid)];
        Ok(self
            .send(
                "containers for user",
                Method::POST,
                "/containers/_manage/_listforuser",
                &q,
                Some(query),
            )
            .await?
            .unwrap_or_default())
    }

    /// `GET /containers/_manage/{uid}/_acl`.
    pub async fn get_acl(&self, container_uid: &str) -> Result<Vec<AccessControlEntry>, ApiError> {
        let path = format!("/containers/_manage/{}/_acl", path_segment(container_uid));
        Ok(self.get_opt("ACL read", &path, &[]).await?.unwrap_or_default())
    }

    /// `PUT /containers/_manage/{uid}/_acl`: **replaces the whole list**. Read, merge, write.
    pub async fn set_acl(&self, container_uid: &str, acl: &[AccessControlEntry]) -> Result<(), ApiError> {
        let path = format!("/containers/_manage/{}/_acl", path_segment(container_uid));
        self.send::<_, serde_json::Value>("ACL write", Method::PUT, &path, &[], Some(acl))
            .await
            .map(|_| ())
    }

    /// `GET /directory/{d}/entry-uid/{uid}`; `None` when unknown.
    pub async fn dir_entry(&self, domain_uid: &str, uid: &str) -> Result<Option<DirEntry>, ApiError> {
        let path = format!(
            "/directory/{}/entry-uid/{}",
            path_segment(domain_uid),
            path_segment(uid)
        );
        self.get_opt("directory entry", &path, &[]).await
    }

    /// `GET /mailboxes/{d}/{uid}/_quota`: a mailbox's usage and limit, in KiB.
    pub async fn mailbox_quota(&self, domain_uid: &str, mailbox_uid: &str) -> Result<MailboxQuota, ApiError> {
        let path = format!(
            "/mailboxes/{}/{}/_quota",
            path_segment(domain_uid),
            path_segment(mailbox_uid)
        );
        Ok(self
            .get_opt("mailbox quota", &path, &[])
            .await?
            .unwrap_or_default())
    }

    /// `GET /mailshares/{d}/_complete`.
    pub async fn mailshares(&self, domain_uid: &str) -> Result<Vec<ItemValue<Mailshare>>, ApiError> {
        let path = format!("/mailshares/{}/_complete", path_segment(domain_uid));
        Ok(self.get_opt("mailshares", &path, &[]).await?.unwrap_or_default())
    }

    /// `GET /users/{d}/subscriptions/{subject}?type=`.
    pub async fn subscriptions(
        &self,
        domain_uid: &str,
        subject: &str,
        kind: &str,
    ) -> Result<Vec<SubscriptionDescriptor>, ApiError> {
        let path = format!(
            "/users/{}/subscriptions/{}",
            path_segment(domain_uid),
            path_segment(subject)
        );
        Ok(self
            .get_opt("subscriptions", &path, &[("type", kind)])
            .await?
            .unwrap_or_default())
    }

    /// `POST /users/{d}/subscriptions/{subject}/_subscribe`. BlueMind 5 IMAP shows another
    /// mailbox only to subscribers, and a grant does not subscribe: do both.
    pub async fn subscribe(
        &self,
        domain_uid: &str,
        subject: &str,
        subs: &[ContainerSubscription],
    ) -> Result<(), ApiError> {
        let path = format!(
            "/users/{}/subscriptions/{}/_subscribe",
            path_segment(domain_uid),
            path_segment(subject)
        );
        self.send::<_, serde_json::Value>("subscribe", Method::POST, &path, &[], Some(subs))
            .await
            .map(|_| ())
    }

    /// `POST /users/{d}/subscriptions/{subject}/_unsubscribe`.
    pub async fn unsubscribe(
        &self,
        domain_uid: &str,
        subject: &str,
        container_uids: &[String],
    ) -> Result<(), ApiError> {
        let path = format!(
            "/users/{}/subscriptions/{}/_unsubscribe",
            path_segment(domain_uid),
            path_segment(subject)
        );
        self.send::<_, serde_json::Value>("unsubscribe", Method::POST, &path, &[], Some(container_uids))
            .await
            .map(|_| ())
    }

    /// `GET /mailboxes/{d}/{mailbox}/_filter`.
    pub async fn get_filter(&self, domain_uid: &str, mailbox_uid: &str) -> Result<MailFilter, ApiError> {
        let path = format!(
            "/mailboxes/{}/{}/_filter",
            path_segment(domain_uid),
            path_segment(mailbox_uid)
        );
        Ok(self.get_opt("mail filter", &path, &[]).await?.unwrap_or_default())
    }

    /// `POST /mailboxes/{d}/{mailbox}/_filter`: replaces the whole filter; send back what was
    /// read, rules included.
    pub async fn set_filter(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
        filter: &MailFilter,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/mailboxes/{}/{}/_filter",
            path_segment(domain_uid),
            path_segment(mailbox_uid)
        );
        self.send::<_, serde_json::Value>("mail filter write", Method::POST, &path, &[], Some(filter))
            .await
            .map(|_| ())
    }

    // ---- vacation, forwarding, rules, delegation (mail filter pieces) ------------------

    fn mailbox_path(domain_uid: &str, mailbox_uid: &str, tail: &str) -> String {
        format!(
            "/mailboxes/{}/{}/{tail}",
            path_segment(domain_uid),
            path_segment(mailbox_uid)
        )
    }

    /// `GET /mailboxes/{d}/{mbox}/_vacation`.
    pub async fn vacation(&self, domain_uid: &str, mailbox_uid: &str) -> Result<Vacation, ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_vacation");
        Ok(self.get_opt("vacation", &path, &[]).await?.unwrap_or_default())
    }

    /// `POST /mailboxes/{d}/{mbox}/_vacation`: upserts the one VACATION rule, nothing else.
    /// BlueMind does not validate it (a start after the end is stored): the caller must.
    pub async fn set_vacation(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
        v: &Vacation,
    ) -> Result<(), ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_vacation");
        self.send::<_, serde_json::Value>("vacation write", Method::POST, &path, &[], Some(v))
            .await
            .map(|_| ())
    }

    /// `GET /mailboxes/{d}/{mbox}/_forwarding`.
    pub async fn forwarding(&self, domain_uid: &str, mailbox_uid: &str) -> Result<Forwarding, ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_forwarding");
        Ok(self.get_opt("forwarding", &path, &[]).await?.unwrap_or_default())
    }

    /// `POST /mailboxes/{d}/{mbox}/_forwarding`: upserts the one FORWARD rule. Enabled with no
    /// address is stored (and drops mail): the caller must refuse it.
    pub async fn set_forwarding(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
        f: &Forwarding,
    ) -> Result<(), ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_forwarding");
        self.send::<_, serde_json::Value>("forwarding write", Method::POST, &path, &[], Some(f))
            .await
            .map(|_| ())
    }

    /// `GET /mailboxes/{d}/{mbox}/_rules`: every rule of the mailbox as stored (VACATION and
    /// FORWARD included, each with its `id`). Rules are kept as JSON: their conditions and
    /// actions are polymorphic, and a rule written back must lose nothing.
    pub async fn mailbox_rules(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
    ) -> Result<Vec<serde_json::Value>, ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_rules");
        Ok(self
            .get_opt("mailbox rules", &path, &[])
            .await?
            .unwrap_or_default())
    }

    /// `PUT /mailboxes/{d}/{mbox}/_rules`: adds a rule, returns its id.
    pub async fn add_rule(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
        rule: &serde_json::Value,
    ) -> Result<i64, ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_rules");
        self.send::<_, i64>("rule creation", Method::PUT, &path, &[], Some(rule))
            .await?
            .ok_or_else(|| ApiError::Decode {
                what: "rule creation".into(),
                detail: "no rule id in the answer".into(),
            })
    }

    /// `POST /mailboxes/{d}/{mbox}/_rules/{id}`: replaces one rule.
    pub async fn update_rule(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
        id: i64,
        rule: &serde_json::Value,
    ) -> Result<(), ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, &format!("_rules/{id}"));
        self.send::<_, serde_json::Value>("rule update", Method::POST, &path, &[], Some(rule))
            .await
            .map(|_| ())
    }

    /// `DELETE /mailboxes/{d}/{mbox}/_rules/{id}`.
    pub async fn delete_rule(&self, domain_uid: &str, mailbox_uid: &str, id: i64) -> Result<(), ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, &format!("_rules/{id}"));
        self.send::<(), serde_json::Value>("rule deletion", Method::DELETE, &path, &[], None)
            .await
            .map(|_| ())
    }

    /// `GET /mailboxes/{d}/_rules`: the domain's rules, which run before every mailbox's.
    pub async fn domain_rules(&self, domain_uid: &str) -> Result<Vec<serde_json::Value>, ApiError> {
        let path = format!("/mailboxes/{}/_rules", path_segment(domain_uid));
        Ok(self
            .get_opt("domain rules", &path, &[])
            .await?
            .unwrap_or_default())
    }

    /// `GET /mailboxes/{d}/{mbox}/_delegationRule`; `None` (HTTP 204) when there is none.
    pub async fn delegation_rule(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
    ) -> Result<Option<DelegationRule>, ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_delegationRule");
        self.get_opt("delegation rule", &path, &[]).await
    }

    /// `POST /mailboxes/{d}/{mbox}/_delegationRule`: replaces it (rebuilt by BlueMind as the
    /// `system` rule "Copy iMIP to Delegates").
    pub async fn set_delegation_rule(
        &self,
        domain_uid: &str,
        mailbox_uid: &str,
        rule: &DelegationRule,
    ) -> Result<(), ApiError> {
        let path = Self::mailbox_path(domain_uid, mailbox_uid, "_delegationRule");
        self.send::<_, serde_json::Value>("delegation rule write", Method::POST, &path, &[], Some(rule))
            .await
            .map(|_| ())
    }

    // ---- groups and devices ----------------------------------------------------------

    /// `GET /users/{d}/{uid}/groupUids`: the groups the user is a member of.
    pub async fn user_groups(&self, domain_uid: &str, uid: &str) -> Result<Vec<String>, ApiError> {
        let path = format!(
            "/users/{}/{}/groupUids",
            path_segment(domain_uid),
            path_segment(uid)
        );
        Ok(self
            .get_opt("group membership", &path, &[])
            .await?
            .unwrap_or_default())
    }

    /// `GET /devices/{userUid}/_list`: the user's mobile devices.
    pub async fn devices(&self, user_uid: &str) -> Result<Vec<ItemValue<Device>>, ApiError> {
        let path = format!("/devices/{}/_list", path_segment(user_uid));
        let list: Option<ListResult<ItemValue<Device>>> = self.get_opt("device list", &path, &[]).await?;
        Ok(list.map(|l| l.values).unwrap_or_default())
    }

    /// `DELETE /devices/{userUid}/{uid}/_partnership`: the device may no longer synchronise
    /// (no wipe; the phone keeps what it has).
    pub async fn remove_partnership(&self, user_uid: &str, device_uid: &str) -> Result<(), ApiError> {
        let path = format!(
            "/devices/{}/{}/_partnership",
            path_segment(user_uid),
            path_segment(device_uid)
        );
        self.send::<(), serde_json::Value>("device partnership removal", Method::DELETE, &path, &[], None)
            .await
            .map(|_| ())
    }
}

/// Turns a status into an error, BlueMind's way.
fn check(
    what: &str,
    status: StatusCode,
    body: bytes_body::Body,
) -> Result<(StatusCode, bytes_body::Body), ApiError> {
    if status.is_success() {
        return Ok((status, body));
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Fault {
        error_code: Option<String>,
        error_type: Option<String>,
        message: Option<String>,
    }
    let fault: Fault = serde_json::from_slice(&body.0).unwrap_or_default();
    // The 401 message names the session id: keep it out.
    let message = fault.message.unwrap_or_default();
    let what = what.to_string();
    Err(match status.as_u16() {
        401 => ApiError::Unauthorized {
            message: "invalid or expired key".into(),
        },
        403 => ApiError::Forbidden { what, message },
        404 => ApiError::NotFound { what, message },
        s => ApiError::Server {
            what,
            status: s,
            code: fault
                .error_code
                .or(fault.error_type)
                .unwrap_or_else(|| "UNKNOWN".into()),
            message,
        },
    })
}

mod bytes_body {
    use crate::error::ApiError;

    /// A response body.
    pub struct Body(pub Vec<u8>);

    impl Body {
        pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ApiError> {
            serde_json::from_slice(&self.0).map_err(|e| ApiError::Decode {
                what: what.into(),
                detail: e.to_string(),
            })
        }
    }
}
