//! People and what they may do: users, groups, API tokens, roles, and the audit trail of every
//! change, as stored in Firestore (`users/{email}`, `groups/{name}`, `api_tokens/{hash}`,
//! `audit/{id}`, and `access/first_admin`, the mark that makes one first admin).
//!
//! A user is an admin (everything), a member (reads everything but secrets, and changes and
//! runs the tables whose `group` is one of the user's groups) or a reader (reads everything
//! but secrets). Connections, users, groups and frequencies are changed by admins only. The
//! first person to sign in becomes the admin; later people start disabled until an admin
//! enables them.
//!
//! An API token is `baton-token_` and 256 random bits in base64url; only its SHA-256 is
//! stored (as the document's id, so that a call costs one read to find it). A hash of 256
//! random bits needs no salt: nothing can be guessed from it.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{InvalidName, TableId, validate_frequency_name};

pub const USERS: &str = "users";
pub const GROUPS: &str = "groups";
pub const TOKENS: &str = "api_tokens";
pub const AUDIT: &str = "audit";
/// The collection of `first_admin`, which exists once someone is the first admin.
pub const ACCESS: &str = "access";
pub const FIRST_ADMIN: &str = "first_admin";
/// One-time links that open the operator's page (`page_links/{hash}`).
pub const PAGE_LINKS: &str = "page_links";
/// The page's sign-ins, kept in a browser's cookie (`page_sessions/{hash}`).
pub const PAGE_SESSIONS: &str = "page_sessions";
pub const SCHEMA_VERSION: u32 = 1;

/// What a token looks like: `baton-token_` then 43 base64url characters. No id Baton makes
/// begins so (a query job's begins `baton_`, a load job's `baton-load_`), so a scan of logs or
/// of a repository for tokens finds only tokens: `baton_` and 43 characters is also the
/// shape of the job id of a table with a short name (`baton_daily-20261120T000000Z_f_bad_1_…`).
pub const TOKEN_PREFIX: &str = "baton-token_";

/// What a user may do.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything but secrets; change and run the tables of one's groups.
    Member,
    /// Read everything but secrets.
    Reader,
}

/// A person (or the owner of tokens), by email.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct User {
    pub schema_version: u32,
    pub email: String,
    pub role: Role,
    /// A disabled user can do nothing but ask who they are.
    pub enabled: bool,
    #[serde(default)]
    pub groups: BTreeSet<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub created_at: Timestamp,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub updated_at: Timestamp,
}

impl User {
    /// Someone signing in for the first time: the admin when `first`, else a disabled reader.
    pub fn signed_up(email: &str, first: bool, now: Timestamp) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            email: email.to_string(),
            role: if first { Role::Admin } else { Role::Reader },
            enabled: first,
            groups: BTreeSet::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// The mark that someone became the first admin; created once (`exists: false`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FirstAdmin {
    pub email: String,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub at: Timestamp,
}

/// A group of people, who own the tables whose `group` names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    pub schema_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub created_at: Timestamp,
}

/// A stored API token: its hash and what is known about it, never the token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiToken {
    pub schema_version: u32,
    /// The public id people revoke it by: the first 16 hex digits of its hash.
    pub id: String,
    pub name: String,
    /// The user whose rights it carries.
    pub owner: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub created_at: Timestamp,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub expires_at: Option<Timestamp>,
    /// Updated at most once a minute.
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub last_used_at: Option<Timestamp>,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    /// A token for `owner` from its secret (which is not kept).
    pub fn new(
        secret: &str,
        name: &str,
        owner: &str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Self {
        let hash = token_hash(secret);
        Self {
            schema_version: SCHEMA_VERSION,
            id: hash[..16].to_string(),
            name: name.to_string(),
            owner: owner.to_string(),
            hash,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        }
    }

    /// Why the token no longer works, if it does not.
    pub fn unusable(&self, now: Timestamp) -> Option<String> {
        if self.revoked_at.is_some() {
            return Some(format!("the token {} was revoked", self.id));
        }
        match self.expires_at {
            Some(at) if at <= now => Some(format!("the token {} expired at {at}", self.id)),
            _ => None,
        }
    }

    /// Whether a use at `now` should be written down (at most once a minute).
    pub fn use_worth_recording(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| now.duration_since(at) >= jiff::SignedDuration::from_secs(60))
    }
}

/// What the API says of a token: everything but its hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            owner: t.owner.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A token's text from 32 random bytes.
pub fn token_from_bytes(bytes: &[u8; 32]) -> String {
    use base64::Engine;
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How long a page link may wait to be opened.
pub const PAGE_LINK_MINUTES: i64 = 5;
/// How long a browser stays signed in to the page.
pub const PAGE_SESSION_HOURS: i64 = 12;

/// A one-time link to the page, made for a signed-in caller (`POST /v1/page-links`): opened,
/// it becomes a page session in the browser that opened it. Its document's id is the SHA-256
/// of the code in the link, which is not kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PageLink {
    pub schema_version: u32,
    pub owner: String,
    /// The page it opens: a path under `/ui`.
    pub to: String,
    /// Firestore's TTL deletes it after this, and it no longer opens anything.
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub expire_at: Timestamp,
}

/// A browser signed in to the page: its cookie holds the secret whose SHA-256 is this
/// document's id. It carries its owner's role at each request, as a token does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PageSession {
    pub schema_version: u32,
    pub owner: String,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub created_at: Timestamp,
    /// It opens nothing after this; Firestore's TTL deletes it.
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub expire_at: Timestamp,
}

/// A page link's code or a page session's secret from 32 random bytes (base64url).
pub fn page_secret(bytes: &[u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether a bearer credential is one of Baton's tokens (else it is read as an ID token).
pub fn is_api_token(credential: &str) -> bool {
    credential.starts_with(TOKEN_PREFIX) || is_earlier_token(credential)
}

/// A token made before tokens began `baton-token_`: `baton_` and 43 base64url characters.
/// It still works (it is found by its hash like any other).
fn is_earlier_token(credential: &str) -> bool {
    credential.strip_prefix("baton_").is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// SHA-256 of a token, hex: the id of its document.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// How a caller proved who they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Via {
    /// A Google ID token.
    SignIn,
    /// An API token, by its id and name.
    Token { id: String, name: String },
    /// The operator's page, signed in by a one-time link (`baton page`).
    Page,
    /// Authentication is off (`BATON_AUTH_DISABLED`, local work only).
    Unauthenticated,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::SignIn => write!(f, "sign-in"),
            Via::Token { id, name } => write!(f, "token {name} ({id})"),
            Via::Page => write!(f, "the page"),
            Via::Unauthenticated => write!(f, "no authentication"),
        }
    }
}

/// What a route asks of its caller before its handler looks closer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::Display, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Access {
    /// Anyone, signed in or not.
    Open,
    /// Anyone signed in, even disabled (to learn who they are).
    SignedIn,
    /// Enabled users.
    Read,
    /// Members and admins; the handler checks the groups of what is changed.
    Change,
    /// Admins.
    Admin,
}

/// An enabled or disabled user making a call, and how they proved it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Principal {
    pub email: String,
    pub role: Role,
    pub enabled: bool,
    pub groups: BTreeSet<String>,
    pub via: Via,
}

impl Principal {
    pub fn of(user: &User, via: Via) -> Self {
        Self {
            email: user.email.clone(),
            role: user.role,
            enabled: user.enabled,
            groups: user.groups.clone(),
            via,
        }
    }

    /// Everyone is this admin when authentication is off.
    pub fn unauthenticated() -> Self {
        Self {
            email: "anonymous".into(),
            role: Role::Admin,
            enabled: true,
            groups: BTreeSet::new(),
            via: Via::Unauthenticated,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.enabled && self.role == Role::Admin
    }

    /// Why this caller may not use a route that asks `access`, if it may not.
    pub fn refusal(&self, access: Access) -> Option<String> {
        let needs = match access {
            Access::Open | Access::SignedIn => return None,
            _ if !self.enabled => {
                return Some(format!(
                    "{} is not enabled yet: an admin enables new users (`baton users enable {}`)",
                    self.email, self.email
                ));
            }
            Access::Read => return None,
            Access::Change if self.role != Role::Reader => return None,
            Access::Change => "a member or an admin",
            Access::Admin if self.role == Role::Admin => return None,
            Access::Admin => "an admin",
        };
        Some(format!(
            "{} is a {}; this needs {needs}",
            self.email, self.role
        ))
    }

    /// Whether the caller may change and run a table of `group`: admins any, members those of
    /// their groups (not tables of no group).
    pub fn owns(&self, group: Option<&str>) -> bool {
        match self.role {
            _ if !self.enabled => false,
            Role::Admin => true,
            Role::Member => group.is_some_and(|g| self.groups.contains(g)),
            Role::Reader => false,
        }
    }

    /// The tables among `tables` (with their groups) that the caller may not change or run,
    /// each named with its group; empty when all are the caller's.
    pub fn not_owned<'a>(
        &self,
        tables: impl IntoIterator<Item = (&'a TableId, Option<&'a str>)>,
    ) -> Vec<String> {
        let mut refused: Vec<String> = tables
            .into_iter()
            .filter(|(_, group)| !self.owns(*group))
            .map(|(id, group)| match group {
                Some(g) => format!("{id} (group {g})"),
                None => format!("{id} (no group)"),
            })
            .collect();
        refused.sort();
        refused.dedup();
        refused
    }
}

/// One change, as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub schema_version: u32,
    pub id: String,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub at: Timestamp,
    /// Who: the user's email.
    pub actor: String,
    /// How they proved it.
    pub via: Via,
    /// What, as `subject.verb`: `catalog.apply`, `run.start`, `token.create`, …
    pub action: String,
    /// What it was done to: a run id, a connection's name, a user's email, `catalog`.
    pub target: String,
    /// SHA-256 of the JSON of what was there before (none when nothing was).
    #[serde(default)]
    pub before: Option<String>,
    /// SHA-256 of the JSON of what is there after (none when nothing is).
    #[serde(default)]
    pub after: Option<String>,
    /// A few words and figures on the change (never a secret).
    #[serde(default)]
    pub summary: serde_json::Value,
}

/// The id of an audit entry: sortable by time, kept apart by `nonce` (random).
pub fn audit_id(at: Timestamp, nonce: u32) -> String {
    format!("{}-{nonce:08x}", at.strftime("%Y%m%dT%H%M%S%.6fZ"))
}

/// The digest the audit trail keeps of a value: SHA-256 of its JSON, hex.
pub fn digest<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// Group names appear in tables' headers and BigQuery labels: as frequency names.
pub fn validate_group_name(name: &str) -> Result<(), InvalidName> {
    validate_frequency_name(name)
        .map_err(|_| InvalidName(format!("group name `{name}` must start with a lowercase letter and contain only lowercase letters, digits, `_` and `-` (at most 63)")))
}

/// An email as Baton keys users by: trimmed and lowercased, with one `@` between a name and a
/// domain.
pub fn normalize_email(email: &str) -> Result<String, InvalidName> {
    let email = email.trim().to_ascii_lowercase();
    match email.split_once('@') {
        Some((name, domain))
            if !name.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && crate::ids::validate_path_id("user", &email).is_ok() =>
        {
            Ok(email)
        }
        _ => Err(InvalidName(format!("`{email}` is not an email address"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, groups: &[&str]) -> Principal {
        Principal {
            email: "li@example.com".into(),
            role,
            enabled: true,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            via: Via::SignIn,
        }
    }

    #[test]
    fn tokens_are_256_bits_kept_only_as_a_hash() {
        let token = token_from_bytes(&[7u8; 32]);
        assert!(is_api_token(&token));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
        let now = Timestamp::UNIX_EPOCH;
        let stored = ApiToken::new(&token, "ci", "li@example.com", None, now);
        let json = serde_json::to_string(&stored).unwrap();
        assert!(!json.contains(&token[TOKEN_PREFIX.len()..]));
        assert_eq!(stored.hash, token_hash(&token));
        assert!(stored.hash.starts_with(&stored.id));
        assert_eq!(stored.unusable(now), None);
    }

    #[test]
    fn tokens_begin_as_no_job_id_does() {
        // `baton_` and 43 characters: the shape of tokens once, and of this job id.
        let table: TableId = "f.bad".parse().unwrap();
        let job = crate::ids::bigquery_job_id("daily-20261120T000000Z", &table, 1);
        assert_eq!(job.len(), "baton_".len() + 43, "{job}");
        assert!(!job.starts_with(TOKEN_PREFIX));
        let token = token_from_bytes(&[0xff; 32]);
        assert!(token.starts_with("baton-token_"), "{token}");
        // A token of the earlier shape still signs in; a job id offered as one is then
        // looked up by its hash and found unknown.
        let earlier = token.replacen("baton-token_", "baton_", 1);
        assert!(is_api_token(&earlier));
        assert!(!is_api_token("baton_short"));
    }

    #[test]
    fn a_revoked_or_expired_token_does_not_work() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let mut token = ApiToken::new("baton_x", "ci", "li@example.com", Some(now), now);
        assert!(token.unusable(now).unwrap().contains("expired"));
        token.expires_at = None;
        token.revoked_at = Some(now);
        assert!(token.unusable(now).unwrap().contains("revoked"));
    }

    #[test]
    fn roles_open_routes_by_access() {
        let reader = principal(Role::Reader, &[]);
        let member = principal(Role::Member, &["finance"]);
        let admin = principal(Role::Admin, &[]);
        assert_eq!(reader.refusal(Access::Read), None);
        assert!(reader.refusal(Access::Change).is_some());
        assert_eq!(member.refusal(Access::Change), None);
        assert!(
            member
                .refusal(Access::Admin)
                .unwrap()
                .contains("needs an admin")
        );
        assert_eq!(admin.refusal(Access::Admin), None);
        let mut disabled = admin.clone();
        disabled.enabled = false;
        assert_eq!(disabled.refusal(Access::SignedIn), None);
        assert!(
            disabled
                .refusal(Access::Read)
                .unwrap()
                .contains("not enabled")
        );
    }

    #[test]
    fn members_change_only_their_groups_tables_and_are_told_which_are_not() {
        let member = principal(Role::Member, &["finance"]);
        let a = TableId::new("d", "a").unwrap();
        let b = TableId::new("d", "b").unwrap();
        let c = TableId::new("d", "c").unwrap();
        let refused = member.not_owned([(&a, Some("finance")), (&b, Some("growth")), (&c, None)]);
        assert_eq!(refused, ["d.b (group growth)", "d.c (no group)"]);
        assert!(
            principal(Role::Admin, &[])
                .not_owned([(&c, None)])
                .is_empty()
        );
        assert_eq!(
            principal(Role::Reader, &["finance"])
                .not_owned([(&a, Some("finance"))])
                .len(),
            1
        );
    }

    #[test]
    fn the_first_to_sign_up_is_an_enabled_admin_the_others_wait() {
        let now = Timestamp::UNIX_EPOCH;
        let first = User::signed_up("a@example.com", true, now);
        assert_eq!((first.role, first.enabled), (Role::Admin, true));
        let later = User::signed_up("b@example.com", false, now);
        assert_eq!((later.role, later.enabled), (Role::Reader, false));
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email(" Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "ana",
            "@example.com",
            "ana@localhost",
            "a/b@example.com",
            "a@b@c.d",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audit_ids_sort_by_time() {
        let a = audit_id(Timestamp::from_second(1).unwrap(), 9);
        let b = audit_id(Timestamp::from_second(2).unwrap(), 1);
        assert!(a < b);
        assert_eq!(digest(&"x"), digest(&"x"));
        assert_ne!(digest(&"x"), digest(&"y"));
    }
}
