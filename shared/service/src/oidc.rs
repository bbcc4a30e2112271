//! Who may call a service: every request to the tick, planner, executor and importer carries a
//! Google-signed OIDC token (Pub/Sub push and Cloud Scheduler attach one), and `guard` lets a
//! request through only when the token's signature verifies against Google's published keys
//! and its issuer, expiry, start of validity, audience (the service's own URL) and caller (the
//! push or Scheduler identity, with a verified email) are what the deployment expects.
//!
//! The keys are fetched once and kept: again when their time is up (the answer's
//! `Cache-Control: max-age`), and when a token names a key id the set lacks (Google rotates
//! its keys), but such a refetch at most once per `refetch_interval`, so that tokens with made-up
//! key ids cannot make the service fetch per request. `/healthz` stays open for probes.
//!
//! A token is never logged nor answered; a refusal names what was wrong with it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::http::ApiError;
use baton_core::config::{ConfigError, Env};

/// Google's keys for the OIDC tokens it signs (Pub/Sub push, Cloud Scheduler).
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// The issuer of Google's OIDC tokens, in both the forms Google writes it.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;
/// How long a key set is kept when its answer says nothing.
const DEFAULT_KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

/// What a service demands of its callers: verified tokens, or (explicitly) nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callers {
    Verified(OidcConfig),
    /// `BATON_AUTH_DISABLED=true`: for local work only.
    Anyone,
}

/// What a token must say to be let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The `aud` values accepted: a service's own URL (`BATON_AUTH_AUDIENCE`); for people
    /// signing in to the API, the deployment's OAuth client ids (`BATON_OAUTH_CLIENT_ID`).
    pub audiences: Vec<String>,
    /// The service accounts that may call, by email (`BATON_AUTH_CALLERS`, comma-separated).
    pub callers: BTreeSet<String>,
    /// Where the signing keys are published (`BATON_AUTH_JWKS_URL`).
    pub jwks_url: String,
    /// The accepted `iss` values (`BATON_AUTH_ISSUER`; Google's by default).
    pub issuers: Vec<String>,
    /// The least time between two fetches caused by unknown key ids
    /// (`BATON_AUTH_REFETCH_SECONDS`).
    pub refetch_interval: Duration,
}

impl Callers {
    /// Reads the verification settings. Without them a service refuses to start, naming
    /// `BATON_AUTH_AUDIENCE`: it never runs open by accident. `BATON_AUTH_DISABLED=true` turns
    /// verification off, and is refused beside settings that would turn it on.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let disabled: bool = env.parse_or("BATON_AUTH_DISABLED", false)?;
        let audience = env.get("BATON_AUTH_AUDIENCE");
        let callers = env.get("BATON_AUTH_CALLERS");
        if disabled {
            if audience.is_some() || callers.is_some() {
                return Err(ConfigError {
                    variable: "BATON_AUTH_DISABLED".into(),
                    message: "is true while BATON_AUTH_AUDIENCE or BATON_AUTH_CALLERS is set: \
                              choose one"
                        .into(),
                });
            }
            return Ok(Callers::Anyone);
        }
        let audience = audience.ok_or_else(|| ConfigError {
            variable: "BATON_AUTH_AUDIENCE".into(),
            message: "is not set: the URL that callers' OIDC tokens name as audience (this \
                      service's URL); set BATON_AUTH_DISABLED=true to accept any caller \
                      (local work only)"
                .into(),
        })?;
        let callers: BTreeSet<String> = callers
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if callers.is_empty() || callers.iter().any(|c| !c.contains('@')) {
            return Err(ConfigError {
                variable: "BATON_AUTH_CALLERS".into(),
                message: "must list the emails of the service accounts that may call, \
                          separated by commas"
                    .into(),
            });
        }
        let issuers = match env.get("BATON_AUTH_ISSUER") {
            Some(issuer) => vec![issuer],
            None => GOOGLE_ISSUERS.iter().map(|s| s.to_string()).collect(),
        };
        Ok(Callers::Verified(OidcConfig {
            audiences: vec![audience],
            callers,
            jwks_url: env.or("BATON_AUTH_JWKS_URL", GOOGLE_JWKS_URL),
            issuers,
            refetch_interval: Duration::from_secs(env.parse_or("BATON_AUTH_REFETCH_SECONDS", 30)?),
        }))
    }
}

/// Who may sign in to the API: people with Google accounts, their ID tokens issued for the
/// deployment's OAuth client, from the allowed Workspace domains (any verified account when
/// none are named); or, explicitly, anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    Google {
        /// The keys, issuers and OAuth client ids (`audiences`) of people's tokens.
        oidc: OidcConfig,
        /// `BATON_ALLOWED_DOMAINS`: the Workspace domains (`hd`) accepted; empty: any.
        domains: BTreeSet<String>,
    },
    /// `BATON_AUTH_DISABLED=true`: every caller is an admin. For local work only.
    Off,
}

impl SignIn {
    /// Reads the sign-in settings. Without `BATON_OAUTH_CLIENT_ID` the API refuses to start
    /// unless `BATON_AUTH_DISABLED=true` says, alone, that it runs open.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let disabled: bool = env.parse_or("BATON_AUTH_DISABLED", false)?;
        let client_ids = env.get("BATON_OAUTH_CLIENT_ID");
        if disabled {
            if client_ids.is_some() {
                return Err(ConfigError {
                    variable: "BATON_AUTH_DISABLED".into(),
                    message: "is true while BATON_OAUTH_CLIENT_ID is set: choose one".into(),
                });
            }
            return Ok(SignIn::Off);
        }
        let list = |text: String| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let audiences = list(client_ids.unwrap_or_default());
        if audiences.is_empty() {
            return Err(ConfigError {
                variable: "BATON_OAUTH_CLIENT_ID".into(),
                message: "is not set: the OAuth client id(s) that people's Google ID tokens are \
                          issued for (comma-separated); set BATON_AUTH_DISABLED=true to let \
                          anyone in as an admin (local work only)"
                    .into(),
            });
        }
        let issuers = match env.get("BATON_AUTH_ISSUER") {
            Some(issuer) => vec![issuer],
            None => GOOGLE_ISSUERS.iter().map(|s| s.to_string()).collect(),
        };
        let domains = list(env.or("BATON_ALLOWED_DOMAINS", ""))
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        Ok(SignIn::Google {
            oidc: OidcConfig {
                audiences,
                callers: BTreeSet::new(),
                jwks_url: env.or("BATON_AUTH_JWKS_URL", GOOGLE_JWKS_URL),
                issuers,
                refetch_interval: Duration::from_secs(
                    env.parse_or("BATON_AUTH_REFETCH_SECONDS", 30)?,
                ),
            },
            domains,
        })
    }
}

/// Why `identity` may not sign in where only `domains` may (none named: all may).
pub fn outside_domains(domains: &BTreeSet<String>, identity: &Identity) -> Option<Refusal> {
    if domains.is_empty() {
        return None;
    }
    match &identity.hosted_domain {
        Some(hd) if domains.contains(&hd.to_ascii_lowercase()) => None,
        Some(hd) => Some(Refusal::Forbidden(format!(
            "{} belongs to {hd}, which may not sign in here",
            identity.email
        ))),
        None => Some(Refusal::Forbidden(format!(
            "{} is not an account of an allowed Workspace domain",
            identity.email
        ))),
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No token, or one that does not prove who is calling: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// A proven caller that may not call: 403.
    #[error("{0}")]
    Forbidden(String),
    /// The keys could not be had: 503, so that Pub/Sub delivers again.
    #[error("{0}")]
    KeysUnavailable(String),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let (status, code) = match &refusal {
            Refusal::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Refusal::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_denied"),
            Refusal::KeysUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, refusal.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

/// The claims Baton reads beyond those `jsonwebtoken` checks.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    /// The Google Workspace domain of the account, when it belongs to one.
    #[serde(default)]
    hd: Option<String>,
}

/// Who a verified token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    /// The account's Google Workspace domain (`hd`); none for a consumer account.
    pub hosted_domain: Option<String>,
}

/// The bearer credential of an `Authorization` header's value.
pub fn bearer(authorization: Option<&str>) -> Result<&str, Refusal> {
    authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Refusal::Unauthenticated("no bearer token in the Authorization header".into())
        })
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    /// Until when the set may be used; none before the first fetch.
    fresh_until: Option<Instant>,
    /// When a token's unknown key id last caused a fetch.
    last_refetch: Option<Instant>,
}

/// Checks tokens against one `OidcConfig`; cheap to share.
pub struct Verifier {
    config: OidcConfig,
    validation: Validation,
    keys: RwLock<KeySet>,
    /// One fetch at a time; the others wait and use its result.
    fetching: Mutex<()>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("audiences", &self.config.audiences)
            .field("callers", &self.config.callers)
            .finish()
    }
}

impl Verifier {
    pub fn new(config: OidcConfig) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&config.audiences);
        validation.set_issuer(&config.issuers);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client with a timeout builds");
        Self {
            config,
            validation,
            keys: RwLock::new(KeySet::default()),
            fetching: Mutex::new(()),
            http,
        }
    }

    /// The caller's email when `authorization` (the header's value) carries a token this
    /// service accepts from one of its callers.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<String, Refusal> {
        let identity = self.identity(bearer(authorization)?).await?;
        let email = identity.email;
        if !self.config.callers.contains(&email) {
            return Err(Refusal::Forbidden(format!(
                "{email} may not call this service"
            )));
        }
        Ok(email)
    }

    /// Who `token` proves the caller is: its signature, issuer, audience, validity and a
    /// verified email checked, whoever the caller.
    pub async fn identity(&self, token: &str) -> Result<Identity, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            Refusal::Unauthenticated(format!(
                "the token cannot be read ({e}); only RS256 tokens are accepted"
            ))
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Unauthenticated(format!(
                "the token is signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::Unauthenticated("the token names no key id".into()))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|e| Refusal::Unauthenticated(describe(e.kind())))?;
        let claims = data.claims;
        let email = claims
            .email
            .ok_or_else(|| Refusal::Unauthenticated("the token has no email".into()))?;
        if claims.email_verified != Some(true) {
            return Err(Refusal::Unauthenticated(format!(
                "the token's email {email} is not verified"
            )));
        }
        Ok(Identity {
            email,
            hosted_domain: claims.hd,
        })
    }

    /// The key `kid`, fetching the set when it is missing, stale, or lacks `kid` (at most
    /// once per refetch interval for the last reason).
    async fn key(&self, kid: &str) -> Result<DecodingKey, Refusal> {
        if let Some(key) = self.fresh_key(kid).await {
            return Ok(key);
        }
        let _turn = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.fresh_key(kid).await {
            return Ok(key);
        }
        let now = Instant::now();
        let (stale, may_refetch) = {
            let set = self.keys.read().await;
            let stale = set.fresh_until.is_none_or(|until| now >= until);
            let may_refetch = set
                .last_refetch
                .is_none_or(|at| now.duration_since(at) >= self.config.refetch_interval);
            (stale, may_refetch)
        };
        if !stale && !may_refetch {
            return Err(unknown_key(kid));
        }
        let fetched = self.fetch().await?;
        let mut set = self.keys.write().await;
        if !stale {
            set.last_refetch = Some(now);
        }
        set.keys = fetched.0;
        set.fresh_until = Some(now + fetched.1);
        set.keys.get(kid).cloned().ok_or_else(|| unknown_key(kid))
    }

    async fn fresh_key(&self, kid: &str) -> Option<DecodingKey> {
        let set = self.keys.read().await;
        if Instant::now() >= set.fresh_until? {
            return None;
        }
        set.keys.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<(HashMap<String, DecodingKey>, Duration), Refusal> {
        let unavailable = |what: String| {
            tracing::error!(error = %what, url = %self.config.jwks_url, "the OIDC keys could not be fetched");
            Refusal::KeysUnavailable(format!("the signing keys could not be fetched: {what}"))
        };
        let response = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|e| unavailable(baton_core::errors::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("answered {}", response.status())));
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_KEYS_MAX_AGE);
        let set: JwkSet = response
            .json()
            .await
            .map_err(|e| unavailable(format!("not a JWK set: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid.clone(), key);
                }
                Err(e) => tracing::warn!(kid = %kid, error = %e, "a published key cannot be used"),
            }
        }
        tracing::info!(
            keys = keys.len(),
            max_age_seconds = max_age.as_secs(),
            "fetched the OIDC keys"
        );
        Ok((keys, max_age))
    }
}

fn unknown_key(kid: &str) -> Refusal {
    Refusal::Unauthenticated(format!("the token is signed by an unknown key ({kid})"))
}

/// `max-age=N` of a Cache-Control header.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|n| n.parse().ok())
        .map(Duration::from_secs)
}

/// What was wrong with a token, for its refusal.
fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "the token has expired".into(),
        K::ImmatureSignature => "the token is not valid yet".into(),
        K::InvalidAudience => "the token is for another audience".into(),
        K::InvalidIssuer => "the token is from another issuer".into(),
        K::InvalidSignature => "the token's signature does not verify".into(),
        K::InvalidAlgorithm => "the token's algorithm is not accepted".into(),
        K::MissingRequiredClaim(claim) => format!("the token has no `{claim}`"),
        other => format!("the token is not valid: {other:?}"),
    }
}

/// `router` with every route but `/healthz` behind `callers`.
pub fn guard(router: Router, callers: &Callers) -> Router {
    match callers {
        Callers::Anyone => {
            tracing::warn!("BATON_AUTH_DISABLED: every caller is accepted");
            router
        }
        Callers::Verified(config) => {
            let verifier = Arc::new(Verifier::new(config.clone()));
            router.layer(middleware::from_fn_with_state(verifier, check))
        }
    }
}

async fn check(State(verifier): State<Arc<Verifier>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match verifier.verify(authorization).await {
        Ok(_caller) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, path = %request.uri().path(), "call refused");
            refusal.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs)
    }

    #[test]
    fn without_settings_a_service_does_not_start() {
        let err = Callers::from_env(&env(&[])).unwrap_err();
        assert_eq!(err.variable, "BATON_AUTH_AUDIENCE");
        let err =
            Callers::from_env(&env(&[("BATON_AUTH_AUDIENCE", "https://p.run.app")])).unwrap_err();
        assert_eq!(err.variable, "BATON_AUTH_CALLERS");
        let err = Callers::from_env(&env(&[
            ("BATON_AUTH_AUDIENCE", "https://p.run.app"),
            ("BATON_AUTH_CALLERS", "push"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "BATON_AUTH_CALLERS");
    }

    #[test]
    fn verification_is_turned_off_only_explicitly_and_alone() {
        assert_eq!(
            Callers::from_env(&env(&[("BATON_AUTH_DISABLED", "true")])).unwrap(),
            Callers::Anyone
        );
        let err = Callers::from_env(&env(&[
            ("BATON_AUTH_DISABLED", "true"),
            ("BATON_AUTH_AUDIENCE", "https://p.run.app"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "BATON_AUTH_DISABLED");
    }

    #[test]
    fn settings_default_to_google() {
        let Callers::Verified(config) = Callers::from_env(&env(&[
            ("BATON_AUTH_AUDIENCE", "https://planner.run.app"),
            (
                "BATON_AUTH_CALLERS",
                "push@p.iam.gserviceaccount.com, other@p.iam.gserviceaccount.com",
            ),
        ]))
        .unwrap() else {
            panic!("verification is on")
        };
        assert_eq!(config.jwks_url, GOOGLE_JWKS_URL);
        assert_eq!(config.issuers, GOOGLE_ISSUERS);
        assert_eq!(config.callers.len(), 2);
        assert_eq!(config.refetch_interval, Duration::from_secs(30));
    }

    #[test]
    fn the_api_signs_people_in_for_its_client_ids_and_domains() {
        let err = SignIn::from_env(&env(&[])).unwrap_err();
        assert_eq!(err.variable, "BATON_OAUTH_CLIENT_ID");
        assert_eq!(
            SignIn::from_env(&env(&[("BATON_AUTH_DISABLED", "true")])).unwrap(),
            SignIn::Off
        );
        let SignIn::Google { oidc, domains } = SignIn::from_env(&env(&[
            (
                "BATON_OAUTH_CLIENT_ID",
                "1.apps.googleusercontent.com, 2.apps.googleusercontent.com",
            ),
            ("BATON_ALLOWED_DOMAINS", "Example.com"),
        ]))
        .unwrap() else {
            panic!("sign-in is on")
        };
        assert_eq!(oidc.audiences.len(), 2);
        let person = |hd: Option<&str>| Identity {
            email: "ana@example.com".into(),
            hosted_domain: hd.map(str::to_string),
        };
        assert_eq!(
            outside_domains(&domains, &person(Some("example.com"))),
            None
        );
        assert!(outside_domains(&domains, &person(Some("evil.example"))).is_some());
        assert!(outside_domains(&domains, &person(None)).is_some());
        assert_eq!(outside_domains(&BTreeSet::new(), &person(None)), None);
    }

    #[test]
    fn cache_control_gives_the_keys_lifetime() {
        assert_eq!(
            max_age("public, max-age=19934, must-revalidate, no-transform"),
            Some(Duration::from_secs(19934))
        );
        assert_eq!(max_age("no-store"), None);
    }
}
