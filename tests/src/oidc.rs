//! The local stack's stand-in for Google's OIDC issuer. Pub/Sub's emulator sends no token and
//! there is no Cloud Scheduler locally, so the harness signs what they would send: tokens
//! with Google's issuer, the receiving service's URL as audience and the calling identity's
//! email, under keys the stack made (`BATON_TEST_OIDC_KEYS`: `a`, `b`, `c`). It publishes the
//! public halves of the keys it chooses as a JWKS on loopback, where the services fetch them
//! as they would fetch Google's, and counts the fetches.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::Stack;

/// The issuer Google writes in its tokens.
pub const ISSUER: &str = "https://accounts.google.com";

struct Inner {
    /// The keys' public halves by key id, and which of them are published.
    jwks: HashMap<String, serde_json::Value>,
    published: Mutex<Vec<String>>,
    signing: HashMap<String, EncodingKey>,
    fetches: AtomicU64,
    /// Codes given by `/auth` and not yet exchanged.
    codes: Mutex<HashMap<String, Pending>>,
    /// How long the ID tokens `/token` gives are valid, in seconds.
    lifetime: std::sync::atomic::AtomicI64,
    /// How often `/token` renewed a sign-in.
    refreshes: AtomicU64,
}

/// A sign-in waiting for its code to be exchanged.
struct Pending {
    email: String,
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

/// An OIDC issuer on loopback.
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
    /// Where its keys are published: a service's `BATON_AUTH_JWKS_URL`.
    pub jwks_url: String,
    /// Its sign-in page and token endpoint, as Google's for installed apps: the page signs in
    /// whoever `login_hint` names at once and sends the browser back with a code.
    pub auth_url: String,
    pub token_url: String,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("jwks_url", &self.jwks_url)
            .finish()
    }
}

impl Issuer {
    /// Starts an issuer that publishes key `a` (it also holds `b`, to rotate to, and `c`,
    /// which it never publishes).
    pub async fn start(stack: &Stack) -> anyhow::Result<Self> {
        let dir = PathBuf::from(stack.var("BATON_TEST_OIDC_KEYS")?);
        let mut jwks = HashMap::new();
        let mut signing = HashMap::new();
        for kid in ["a", "b", "c"] {
            let jwk_path = dir.join(format!("{kid}.jwk.json"));
            let jwk: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&jwk_path)
                    .with_context(|| format!("reading {}", jwk_path.display()))?,
            )?;
            let pem = std::fs::read(dir.join(format!("{kid}.pem")))?;
            jwks.insert(kid.to_string(), jwk);
            signing.insert(kid.to_string(), EncodingKey::from_rsa_pem(&pem)?);
        }
        let inner = Arc::new(Inner {
            jwks,
            published: Mutex::new(vec!["a".to_string()]),
            signing,
            fetches: AtomicU64::new(0),
            codes: Mutex::new(HashMap::new()),
            lifetime: std::sync::atomic::AtomicI64::new(3600),
            refreshes: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/certs", get(certs))
            .route("/auth", get(authorize))
            .route("/token", axum::routing::post(token))
            .with_state(inner.clone());
        let base = crate::serve_on_loopback(app).await?;
        Ok(Self {
            inner,
            jwks_url: format!("{base}/certs"),
            auth_url: format!("{base}/auth"),
            token_url: format!("{base}/token"),
        })
    }

    /// How long the ID tokens of its sign-ins are valid from now on.
    pub fn set_lifetime(&self, seconds: i64) {
        self.inner.lifetime.store(seconds, Ordering::SeqCst);
    }

    /// How often a sign-in was renewed with a refresh token.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::SeqCst)
    }

    /// Publishes key `kid` beside the others, as Google does before it signs with a new key.
    pub fn publish(&self, kid: &str) {
        let mut published = self.inner.published.lock().expect("not poisoned");
        if !published.iter().any(|k| k == kid) {
            published.push(kid.to_string());
        }
    }

    /// How often the key set was fetched.
    pub fn fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::SeqCst)
    }

    /// `claims` signed with key `kid`, the key id in the header.
    pub fn sign(&self, kid: &str, claims: &serde_json::Value) -> anyhow::Result<String> {
        let key = self
            .inner
            .signing
            .get(kid)
            .ok_or_else(|| anyhow!("the issuer has no key {kid}"))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_string());
        Ok(jsonwebtoken::encode(&header, claims, key)?)
    }

    /// The claims of a token Google would sign for `email` calling `audience`, valid for an
    /// hour from now.
    pub fn claims(audience: &str, email: &str) -> serde_json::Value {
        let now = jiff::Timestamp::now().as_second();
        serde_json::json!({
            "iss": ISSUER,
            "aud": audience,
            "azp": "100000000000000000000",
            "sub": "100000000000000000000",
            "email": email,
            "email_verified": true,
            "iat": now,
            "exp": now + 3600,
        })
    }

    /// An `Authorization` header's value for `caller`, signed with key `a`.
    pub fn bearer(&self, caller: &Caller) -> String {
        let token = self
            .sign("a", &Self::claims(&caller.audience, &caller.email))
            .expect("key a signs");
        format!("Bearer {token}")
    }
}

async fn certs(State(inner): State<Arc<Inner>>) -> axum::Json<serde_json::Value> {
    inner.fetches.fetch_add(1, Ordering::SeqCst);
    let published = inner.published.lock().expect("not poisoned").clone();
    let keys: Vec<serde_json::Value> = published
        .iter()
        .filter_map(|kid| inner.jwks.get(kid).cloned())
        .collect();
    axum::Json(serde_json::json!({ "keys": keys }))
}

/// The OAuth client id people's ID tokens are issued for on the stack (the API's
/// `BATON_OAUTH_CLIENT_ID`).
pub const CLIENT_ID: &str = "baton-local.apps.googleusercontent.com";

/// The Workspace domain allowed to sign in on the stack (the API's `BATON_ALLOWED_DOMAINS`).
pub const DOMAIN: &str = "example.com";

impl Issuer {
    /// The claims of the ID token Google would give `email` signing in to Baton, in Workspace
    /// domain `hd` (none: a consumer account), valid for an hour from now.
    pub fn person_claims(email: &str, hd: Option<&str>) -> serde_json::Value {
        let mut claims = Self::claims(CLIENT_ID, email);
        claims["sub"] = hex_sha256(email).into();
        if let Some(hd) = hd {
            claims["hd"] = hd.into();
        }
        claims
    }

    /// An `Authorization` value for `email` of the allowed domain signing in.
    pub fn person(&self, email: &str) -> String {
        let token = self
            .sign("a", &Self::person_claims(email, Some(DOMAIN)))
            .expect("key a signs");
        format!("Bearer {token}")
    }

    /// The ID token alone, for a client's `with_token`.
    pub fn id_token(&self, email: &str) -> String {
        self.person(email)["Bearer ".len()..].to_string()
    }
}

/// A stable subject per email, as Google gives each account one.
fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client secret of the stack's installed-app client.
pub const CLIENT_SECRET: &str = "local-installed-app-secret";

#[derive(serde::Deserialize)]
struct AuthQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    login_hint: String,
    scope: String,
}

/// The sign-in page: signs in `login_hint` and redirects back with a code.
async fn authorize(
    State(inner): State<Arc<Inner>>,
    axum::extract::Query(q): axum::extract::Query<AuthQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if q.code_challenge_method != "S256" || !q.scope.split(' ').any(|s| s == "openid") {
        return (axum::http::StatusCode::BAD_REQUEST, "S256 and openid only").into_response();
    }
    let code = format!("code-{:016x}", rand::random::<u64>());
    inner.codes.lock().expect("not poisoned").insert(
        code.clone(),
        Pending {
            email: q.login_hint,
            client_id: q.client_id,
            redirect_uri: q.redirect_uri.clone(),
            challenge: q.code_challenge,
        },
    );
    let back = format!("{}?code={code}&state={}", q.redirect_uri, q.state);
    axum::response::Redirect::to(&back).into_response()
}

/// The token endpoint: exchanges a code (its PKCE verifier checked) or a refresh token for an
/// ID token of the client's audience.
async fn token(
    State(inner): State<Arc<Inner>>,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let refuse = |why: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return refuse("wrong client secret");
    }
    let (email, client_id) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(pending) = inner.codes.lock().expect("not poisoned").remove(&code) else {
                return refuse("unknown code");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let challenge = {
                use base64::Engine;
                use sha2::Digest;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(verifier.as_bytes()))
            };
            if challenge != pending.challenge
                || form.get("redirect_uri") != Some(&pending.redirect_uri)
                || form.get("client_id") != Some(&pending.client_id)
            {
                return refuse("the verifier, redirect or client does not match");
            }
            (pending.email, pending.client_id)
        }
        Some("refresh_token") => {
            let refresh = form.get("refresh_token").cloned().unwrap_or_default();
            let Some(email) = refresh.strip_prefix("refresh-") else {
                return refuse("unknown refresh token");
            };
            inner.refreshes.fetch_add(1, Ordering::SeqCst);
            (
                email.to_string(),
                form.get("client_id").cloned().unwrap_or_default(),
            )
        }
        _ => return refuse("unsupported grant"),
    };
    let mut claims = Issuer::person_claims(&email, Some(DOMAIN));
    claims["aud"] = client_id.into();
    let now = jiff::Timestamp::now().as_second();
    claims["exp"] = (now + inner.lifetime.load(Ordering::SeqCst)).into();
    let Some(key) = inner.signing.get("a") else {
        return refuse("no key");
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("a".into());
    let Ok(id_token) = jsonwebtoken::encode(&header, &claims, key) else {
        return refuse("cannot sign");
    };
    axum::Json(serde_json::json!({
        "access_token": "an-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
        "refresh_token": format!("refresh-{email}"),
    }))
    .into_response()
}

/// Who calls a service, and the audience its tokens name.
#[derive(Debug, Clone)]
pub struct Caller {
    pub email: String,
    pub audience: String,
}

/// The identity Pub/Sub pushes with in a project (Terraform's `baton-push` account).
pub fn push_identity(project: &str) -> String {
    format!("baton-push@{project}.iam.gserviceaccount.com")
}

/// The identity Cloud Scheduler calls the tick with (Terraform's `baton-scheduler` account).
pub fn scheduler_identity(project: &str) -> String {
    format!("baton-scheduler@{project}.iam.gserviceaccount.com")
}

/// The URL a service is known by, which its tokens' audience must be. On Cloud Run it is the
/// service's own URL; locally any URL does, since the services listen on ports chosen at start.
pub fn audience(service: &str) -> String {
    format!("https://baton-{service}.local.test")
}
