//! BlueMind's JSON shapes. Every object keeps the fields it does not model in `extra`, so a
//! value read and written back (user update, mail filter) loses nothing: BlueMind replaces
//! the whole value on update and resets what is missing.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `ItemValue<T>`: a stored item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemValue<T> {
    /// Item uid (user uid, domain uid…).
    pub uid: String,
    /// Display name, when the item has one.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The value.
    pub value: T,
    /// Other fields (version, created, flags…).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A domain. Its uid is often technical (`<hex>.internal`); the DNS name is an alias.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// Name (equal to the uid).
    pub name: String,
    /// Aliases, the DNS names among them.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The alias used for addresses.
    #[serde(default)]
    pub default_alias: Option<String>,
    /// Whether this is `global.virt`.
    #[serde(default)]
    pub global: bool,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An address of a directory entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    /// The address.
    pub address: String,
    /// Valid on every alias of the domain.
    #[serde(default)]
    pub all_aliases: bool,
    /// The default address (JSON key literally `isDefault`).
    #[serde(rename = "isDefault", default)]
    pub is_default: bool,
}

/// A user. `password` is write-only on the server (null on reads) and ignored by `update`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Login (local part, without domain).
    pub login: String,
    /// Addresses.
    #[serde(default)]
    pub emails: Vec<Email>,
    /// Suspended ("archived"): cannot log in, cannot be su'd.
    #[serde(default)]
    pub archived: bool,
    /// Hidden from the directory.
    #[serde(default)]
    pub hidden: bool,
    /// A system account (`bmhiddensysadmin`…): never a leaver or successor.
    #[serde(default)]
    pub system: bool,
    /// Every other field, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl User {
    /// The default address, else the first.
    pub fn default_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.is_default)
            .or(self.emails.first())
            .map(|e| e.address.as_str())
    }
}

/// Outcome of a login or su, as BlueMind spells it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum LoginStatus {
    /// Logged in.
    Ok,
    /// Refused (wrong password, unknown user, archived user, maintenance…).
    Bad,
    /// Password expired: the session is restricted.
    Expired,
}

/// `LoginResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// Ok / Bad / Expired.
    pub status: LoginStatus,
    /// Why, when refused.
    #[serde(default)]
    pub message: Option<String>,
    /// The session key (a secret).
    #[serde(default)]
    pub auth_key: Option<SecretString>,
    /// `<login>@<domainUid>`.
    #[serde(default)]
    pub latd: Option<String>,
    /// The user.
    #[serde(default)]
    pub auth_user: Option<AuthUser>,
}

/// `AuthUser`: who a session belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthUser {
    /// User uid.
    pub uid: String,
    /// Domain uid.
    pub domain_uid: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Roles (`admin`, `sudo`, `systemManagement`…).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user value.
    #[serde(default)]
    pub value: Option<User>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An API key. The `sid` is the secret: it works as a REST token and as the IMAP password.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key itself.
    pub sid: SecretString,
    /// Its label.
    pub display_name: String,
    /// The owner's uid.
    #[serde(default)]
    pub subject: Option<String>,
    /// The owner's domain uid.
    #[serde(default)]
    pub domain_uid: Option<String>,
}

/// A permission on a container. Ordered from least to most; see [`Verb::implies`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Receive invitations.
    Invitation,
    /// See free/busy (implies Invitation).
    Freebusy,
    /// Send on behalf.
    SendOnBehalf,
    /// Send as (implies SendOnBehalf).
    SendAs,
    /// Read (implies Freebusy).
    Read,
    /// Read extended (implies Read).
    ReadExtended,
    /// Write (implies Read).
    Write,
    /// Manage sharing.
    Manage,
    /// Everything.
    All,
    /// A verb of a newer server: kept, implies nothing we know.
    #[serde(other)]
    Unknown,
}

impl Verb {
    /// Every verb BlueMind 5 knows, weakest first.
    pub const ALL: [Verb; 9] = [
        Verb::Invitation,
        Verb::Freebusy,
        Verb::SendOnBehalf,
        Verb::SendAs,
        Verb::Read,
        Verb::ReadExtended,
        Verb::Write,
        Verb::Manage,
        Verb::All,
    ];

    /// The verbs this one directly implies (BlueMind 5 `Verb.java`).
    fn parents(self) -> &'static [Verb] {
        match self {
            Verb::Freebusy => &[Verb::Invitation],
            Verb::SendAs => &[Verb::SendOnBehalf],
            Verb::Read => &[Verb::Freebusy],
            Verb::ReadExtended => &[Verb::Read],
            Verb::Write => &[Verb::Read],
            Verb::All => &[
                Verb::Write,
                Verb::Manage,
                Verb::SendOnBehalf,
                Verb::SendAs,
                Verb::ReadExtended,
            ],
            _ => &[],
        }
    }

    /// Whether holding `self` gives `other` (reflexive, transitive).
    pub fn implies(self, other: Verb) -> bool {
        self == other || self.parents().iter().any(|p| p.implies(other))
    }
}

/// `AccessControlEntry`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct AccessControlEntry {
    /// A directory entry uid, a group uid, or the domain uid (public).
    pub subject: String,
    /// The permission.
    pub verb: Verb,
}

impl AccessControlEntry {
    /// `verb` for `subject`.
    pub fn new(subject: impl Into<String>, verb: Verb) -> Self {
        AccessControlEntry {
            subject: subject.into(),
            verb,
        }
    }
}

/// `ContainerQuery` for `_listforuser`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerQuery {
    /// Container type, e.g. `mailboxacl`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Verbs (matching parent verbs too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verb: Option<Vec<Verb>>,
    /// Only containers owned by this uid (`ContainerQuery.owner`; the owner branch of
    /// `Containers.java:407-410`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// `ContainerDescriptor`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDescriptor {
    /// Container uid (`mailbox:acls-<mailboxUid>`).
    pub uid: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Owner uid.
    #[serde(default)]
    pub owner: String,
    /// Type (`mailboxacl`…).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Domain uid.
    #[serde(default)]
    pub domain_uid: Option<String>,
    /// Owner's display name (JSON key `ownerDisplayname`).
    #[serde(rename = "ownerDisplayname", default)]
    pub owner_display_name: Option<String>,
    /// What the querying user holds on it.
    #[serde(default)]
    pub verbs: Vec<Verb>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `DirEntry`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DirEntry {
    /// Entry uid.
    pub entry_uid: String,
    /// `USER`, `MAILSHARE`, `GROUP`…
    pub kind: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Default address.
    #[serde(default)]
    pub email: Option<String>,
    /// Suspended.
    #[serde(default)]
    pub archived: bool,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A mailshare (shared mailbox).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Mailshare {
    /// Name (its IMAP folder under `Dossiers partagés/`).
    pub name: String,
    /// Addresses.
    #[serde(default)]
    pub emails: Vec<Email>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A subscription of a user to a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDescriptor {
    /// Container uid.
    pub container_uid: String,
    /// Container type.
    #[serde(default)]
    pub container_type: Option<String>,
    /// Owner uid.
    #[serde(default)]
    pub owner: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What to subscribe to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSubscription {
    /// Container uid.
    pub container_uid: String,
    /// Offline synchronisation.
    pub offline_sync: bool,
    /// Mounted automatically in the mail client (BM ≥ 5).
    pub automount: bool,
}

/// A mailbox filter: rules, forwarding and vacation. Rules we do not understand are kept
/// as they are: a partial POST would reset them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MailFilter {
    /// Rules, untouched.
    #[serde(default)]
    pub rules: Vec<Value>,
    /// Forwarding settings.
    #[serde(default)]
    pub forwarding: Value,
    /// Vacation settings.
    #[serde(default)]
    pub vacation: Value,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_imply_like_bluemind_5() {
        assert!(Verb::All.implies(Verb::Read));
        assert!(Verb::Write.implies(Verb::Read));
        assert!(Verb::ReadExtended.implies(Verb::Freebusy));
        assert!(!Verb::Read.implies(Verb::Write));
        assert!(!Verb::SendAs.implies(Verb::Read));
        assert!(!Verb::Manage.implies(Verb::Read));
        assert_eq!(
            serde_json::from_str::<Verb>("\"Teleport\"").unwrap(),
            Verb::Unknown
        );
    }

    #[test]
    fn user_round_trips_fields_it_does_not_model() {
        let json = r#"{"login":"jdoe","password":null,"emails":[{"address":"j@x","isDefault":true,"allAliases":false}],"archived":false,"routing":"internal","contactInfos":{"identification":{"name":{"familyNames":"Doe"}}},"quota":1024}"#;
        let u: User = serde_json::from_str(json).unwrap();
        let back: Value = serde_json::to_value(&u).unwrap();
        let orig: Value = serde_json::from_str(json).unwrap();
        for k in ["routing", "contactInfos", "quota", "emails", "login"] {
            assert_eq!(back[k], orig[k], "{k}");
        }
        assert_eq!(u.default_email(), Some("j@x"));
    }
}

/// `MailboxQuota` (`GET /mailboxes/{d}/{uid}/_quota`): usage and limit in KiB
/// (`MailboxQuota.java`; `MailboxesService.java:694-706`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MailboxQuota {
    /// KiB in use.
    #[serde(default)]
    pub used: u64,
    /// The limit in KiB; `None` (null) is unlimited.
    #[serde(default)]
    pub quota: Option<u64>,
}

impl MailboxQuota {
    /// KiB still free; `None` when unlimited.
    pub fn free(&self) -> Option<u64> {
        self.quota.map(|q| q.saturating_sub(self.used))
    }
}

/// `MailFilter.Vacation` (`GET|POST /mailboxes/{d}/{mbox}/_vacation`). Dates are epoch
/// milliseconds on the wire; BlueMind stores them to the second, without a time zone
/// (`MailFilterRuleVacationMapper.java:20-40`), and never checks that `start < end`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Vacation {
    /// Whether the auto-reply is on (stays `true` after `end`: nothing turns it off).
    #[serde(default)]
    pub enabled: bool,
    /// First instant (exclusive), epoch ms, tested against the incoming `Date:` header.
    #[serde(default)]
    pub start: Option<i64>,
    /// Last instant (exclusive), epoch ms.
    #[serde(default)]
    pub end: Option<i64>,
    /// Subject of the reply (required when enabled).
    #[serde(default)]
    pub subject: Option<String>,
    /// Plain text of the reply.
    #[serde(default)]
    pub text: Option<String>,
    /// HTML text of the reply.
    #[serde(default)]
    pub text_html: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `MailFilter.Forwarding` (`GET|POST /mailboxes/{d}/{mbox}/_forwarding`). No expiry field.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Forwarding {
    /// Whether mail is forwarded.
    #[serde(default)]
    pub enabled: bool,
    /// Keep a copy in the mailbox (`false`: the mailbox keeps nothing).
    #[serde(default)]
    pub local_copy: bool,
    /// Targets.
    #[serde(default)]
    pub emails: Vec<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `DelegationRule` (`GET|POST /mailboxes/{d}/{mbox}/_delegationRule`): who gets a copy of
/// the invitations sent to a calendar's owner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DelegationRule {
    /// The delegator's calendar.
    #[serde(default)]
    pub delegator_calendar_uid: String,
    /// The delegates' uids.
    #[serde(default)]
    pub delegate_uids: Vec<String>,
    /// The delegator's uid.
    #[serde(default)]
    pub delegator_uid: String,
    /// Keep a copy in the delegator's mailbox.
    #[serde(default)]
    pub keep_copy: bool,
    /// Delegates only read.
    #[serde(default)]
    pub read_only: bool,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A mobile (EAS) device (`IDevice`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Device identifier as the phone gives it.
    #[serde(default)]
    pub identifier: String,
    /// Owner uid.
    #[serde(default)]
    pub owner: String,
    /// Kind (`iPhone`, `Android`…).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Whether the device may synchronise.
    #[serde(default)]
    pub has_partnership: bool,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `ListResult<T>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ListResult<T> {
    /// How many in all.
    #[serde(default)]
    pub total: u64,
    /// The values.
    #[serde(default = "Vec::new")]
    pub values: Vec<T>,
}
