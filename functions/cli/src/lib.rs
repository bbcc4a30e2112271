//! A client of Baton's API, for the `baton` command and for tools and tests.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use baton_core::access::{Group, Principal, TokenView, User};
use baton_core::catalog::TableId;
use baton_core::loads::LoadStatus;
use baton_core::run::Backfill;
use baton_service::api::{
    ApplyRequest, ApplyResponse, AuditResponse, BackfillRequest, CatalogResponse,
    ConnectionsResponse, CostsResponse, CreateTokenRequest, CreatedToken, DeadLettersResponse,
    DryRunRequest, DryRunResponse, ErrorResponse, GroupsResponse, LoadForced, PageLinkRequest,
    PageLinkResponse, PutConnectionRequest, PutGroupRequest, Replayed, RunChange, RunResponse,
    RunsResponse, StartRunRequest, TokensResponse, UpdateUserRequest, UploadUrl, UploadUrlRequest,
    UsersResponse,
};

/// One path segment, escaped: an id with `/` or `?` stays one segment.
fn segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API could not be reached.
    #[error("cannot reach the API at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error.
    #[error("{}", .0)]
    Api(ApiFailure),
}

/// An error answer of the API, with the problems it listed.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: serde_json::Value,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problems = self.details["problems"].as_array();
        match problems {
            Some(problems) if problems.len() > 1 => {
                writeln!(f, "{} problems:", problems.len())?;
                for p in problems {
                    writeln!(
                        f,
                        "  {}: {}",
                        p["at"].as_str().unwrap_or("?"),
                        p["message"].as_str().unwrap_or("?")
                    )?;
                }
                Ok(())
            }
            _ => write!(f, "{}", self.message),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer …` when set (never shown by `Debug`).
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("a reqwest client builds"),
            token: None,
        }
    }

    /// Sends `token` as a bearer token with every call: an identity token where Cloud Run's IAM
    /// guards the API (`gcloud auth print-identity-token`).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.trim().is_empty());
        self
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            url: url.to_string(),
            source,
        };
        let request = match &self.token {
            Some(token) => request.bearer_auth(token.trim()),
            None => request,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            // A 204's empty body reads as `null`.
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(bytes).map_err(|e| {
                ClientError::Api(ApiFailure {
                    status: status.as_u16(),
                    code: "bad_response".into(),
                    message: format!("the API's answer is not what this client reads: {e}"),
                    details: serde_json::Value::Null,
                })
            });
        }
        let failure = match serde_json::from_slice::<ErrorResponse>(&bytes) {
            Ok(e) => ApiFailure {
                status: status.as_u16(),
                code: e.error.code,
                message: e.error.message,
                details: e.error.details,
            },
            Err(_) => ApiFailure {
                status: status.as_u16(),
                code: status.as_str().to_string(),
                message: format!("{status}: {}", String::from_utf8_lossy(&bytes)),
                details: serde_json::Value::Null,
            },
        };
        Err(ClientError::Api(failure))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.call(self.http.get(&url), &url).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.call(self.http.post(&url).json(body), &url).await
    }

    pub async fn apply(&self, request: &ApplyRequest) -> Result<ApplyResponse, ClientError> {
        self.post("/v1/catalog/apply", request).await
    }

    pub async fn catalog(&self) -> Result<CatalogResponse, ClientError> {
        self.get("/v1/catalog").await
    }

    pub async fn runs(&self, limit: u32) -> Result<RunsResponse, ClientError> {
        self.get(&format!("/v1/runs?limit={limit}")).await
    }

    pub async fn run(&self, run_id: &str) -> Result<RunResponse, ClientError> {
        self.get(&format!("/v1/runs/{}", segment(run_id))).await
    }

    pub async fn start_run(&self, request: &StartRunRequest) -> Result<RunChange, ClientError> {
        self.post("/v1/runs", request).await
    }

    pub async fn resume(&self, run_id: &str) -> Result<RunChange, ClientError> {
        self.post(
            &format!("/v1/runs/{}/resume", segment(run_id)),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn cancel(&self, run_id: &str) -> Result<RunChange, ClientError> {
        self.post(
            &format!("/v1/runs/{}/cancel", segment(run_id)),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn start_backfill(&self, request: &BackfillRequest) -> Result<Backfill, ClientError> {
        self.post("/v1/backfills", request).await
    }

    pub async fn cancel_backfill(&self, id: &str) -> Result<Backfill, ClientError> {
        self.post(
            &format!("/v1/backfills/{}/cancel", segment(id)),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn backfill(&self, id: &str) -> Result<Backfill, ClientError> {
        self.get(&format!("/v1/backfills/{}", segment(id))).await
    }

    pub async fn put_connection(
        &self,
        name: &str,
        request: &PutConnectionRequest,
    ) -> Result<baton_core::connections::ConnectionView, ClientError> {
        let url = format!("{}/v1/connections/{}", self.base, segment(name));
        self.call(self.http.put(&url).json(request), &url).await
    }

    pub async fn connections(&self) -> Result<ConnectionsResponse, ClientError> {
        self.get("/v1/connections").await
    }

    pub async fn dry_run(&self, request: &DryRunRequest) -> Result<DryRunResponse, ClientError> {
        self.post("/v1/dry-run", request).await
    }

    /// Costs per day by `by` (table, user, group, frequency); the API's defaults for a
    /// missing day (the last 30 days).
    pub async fn costs(
        &self,
        by: &str,
        from: Option<jiff::civil::Date>,
        to: Option<jiff::civil::Date>,
    ) -> Result<CostsResponse, ClientError> {
        let mut path = format!("/v1/costs?by={by}");
        if let Some(from) = from {
            path.push_str(&format!("&from={from}"));
        }
        if let Some(to) = to {
            path.push_str(&format!("&to={to}"));
        }
        self.get(&path).await
    }

    async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        self.call(self.http.delete(&url), &url).await
    }

    /// Who the credential in use says the caller is.
    pub async fn upload_url(
        &self,
        table: &TableId,
        request: &UploadUrlRequest,
    ) -> Result<UploadUrl, ClientError> {
        self.post(
            &format!("/v1/loads/{}/upload-url", segment(&table.to_string())),
            request,
        )
        .await
    }

    /// PUTs a file to a signed upload URL (no bearer token: the URL is the credential).
    pub async fn upload(&self, to: &UploadUrl, body: Vec<u8>) -> Result<(), ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            url: to.object.clone(),
            source,
        };
        let response = self
            .http
            .put(&to.url)
            .header("content-type", &to.content_type)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(ClientError::Api(ApiFailure {
            status: status.as_u16(),
            code: "upload_refused".into(),
            message: format!("Cloud Storage refused the upload ({status}): {text}"),
            details: serde_json::Value::Null,
        }))
    }

    pub async fn force_load(&self, table: &TableId) -> Result<LoadForced, ClientError> {
        self.post(
            &format!("/v1/loads/{}/force", segment(&table.to_string())),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn loads(&self, table: &TableId) -> Result<LoadStatus, ClientError> {
        self.get(&format!("/v1/loads/{}", segment(&table.to_string())))
            .await
    }

    pub async fn me(&self) -> Result<Principal, ClientError> {
        self.get("/v1/me").await
    }

    /// The API's address, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A one-time link that signs a browser in to the page at `to` (a path under `/ui`).
    pub async fn page_link(&self, to: Option<&str>) -> Result<PageLinkResponse, ClientError> {
        self.post(
            "/v1/page-links",
            &PageLinkRequest {
                to: to.map(str::to_string),
            },
        )
        .await
    }

    pub async fn create_token(
        &self,
        request: &CreateTokenRequest,
    ) -> Result<CreatedToken, ClientError> {
        self.post("/v1/tokens", request).await
    }

    pub async fn tokens(&self) -> Result<TokensResponse, ClientError> {
        self.get("/v1/tokens").await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<TokenView, ClientError> {
        self.delete(&format!("/v1/tokens/{}", segment(id))).await
    }

    pub async fn users(&self) -> Result<UsersResponse, ClientError> {
        self.get("/v1/users").await
    }

    pub async fn update_user(
        &self,
        email: &str,
        request: &UpdateUserRequest,
    ) -> Result<User, ClientError> {
        let url = format!("{}/v1/users/{}", self.base, segment(email));
        self.call(self.http.patch(&url).json(request), &url).await
    }

    pub async fn groups(&self) -> Result<GroupsResponse, ClientError> {
        self.get("/v1/groups").await
    }

    pub async fn put_group(
        &self,
        name: &str,
        request: &PutGroupRequest,
    ) -> Result<Group, ClientError> {
        let url = format!("{}/v1/groups/{}", self.base, segment(name));
        self.call(self.http.put(&url).json(request), &url).await
    }

    pub async fn delete_group(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/groups/{}", segment(name))).await
    }

    pub async fn delete_connection(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/connections/{}", segment(name)))
            .await
    }

    /// The latest dead letters, newest first.
    pub async fn dead_letters(&self, limit: u32) -> Result<DeadLettersResponse, ClientError> {
        self.get(&format!("/v1/dead-letters?limit={limit}")).await
    }

    /// Publishes a dead letter again to its topic, and drops it.
    pub async fn replay_dead_letter(&self, id: &str) -> Result<Replayed, ClientError> {
        self.post(
            &format!("/v1/dead-letters/{}/replay", segment(id)),
            &serde_json::json!({}),
        )
        .await
    }

    /// Drops a dead letter without delivering it.
    pub async fn drop_dead_letter(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/dead-letters/{}", segment(id)))
            .await
    }

    /// The latest changes, newest first; those before entry `before` when given.
    pub async fn audit(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<AuditResponse, ClientError> {
        let mut path = format!("/v1/audit?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={}", segment(before)));
        }
        self.get(&path).await
    }
}

/// The SQL reader's answers that `baton check` and `baton graph` keep between runs, one file
/// per catalog folder (and project) in the cache folder (`BATON_CACHE_DIR`, else the user's
/// cache folder's `baton`): a folder checked again reads only the SQL that changed.
pub mod read_cache {
    use std::path::{Path, PathBuf};

    use baton_core::catalog::apply::ReadCache;

    /// Where the answers for `folder` read in `project` are kept.
    pub fn path(folder: &Path, project: &str) -> Option<PathBuf> {
        let dir = match std::env::var_os("BATON_CACHE_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => dirs::cache_dir()?.join("baton"),
        };
        let folder = std::fs::canonicalize(folder).ok()?;
        let name = baton_core::access::token_hash(&format!("{}\n{project}", folder.display()));
        Some(dir.join(format!("read-{}.json", &name[..16])))
    }

    /// The answers kept at `path`; none when there are none or they cannot be read (a cache
    /// written by another version, say): the SQL is then read again.
    pub fn load(path: &Path) -> ReadCache {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Keeps `cache` at `path`, whole or not at all (written aside, then renamed). A cache
    /// that cannot be written is only a slower next check.
    pub fn save(path: &Path, cache: &ReadCache) {
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let aside = path.with_extension(format!("{}.tmp", std::process::id()));
            std::fs::write(&aside, serde_json::to_vec(cache)?)?;
            std::fs::rename(&aside, path)
        })();
        if let Err(e) = written {
            eprintln!(
                "baton: the SQL reader's answers could not be kept at {}: {e}",
                path.display()
            );
        }
    }
}

/// The credential `baton login` keeps for one API, in the user's config folder
/// (`$BATON_CONFIG_DIR`, else `~/.config/baton` on Linux), readable by the user alone.
pub mod credentials {
    use std::io::Write;
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    #[derive(Clone, Serialize, Deserialize)]
    pub struct Saved {
        /// The API it is for: it is sent nowhere else.
        pub api: String,
        /// An API token, or a Google ID token (renewed with `refresh_token`).
        pub token: String,
        pub email: String,
        /// How a Google sign-in is renewed: its refresh token and the client that got it.
        #[serde(default)]
        pub refresh_token: Option<String>,
        #[serde(default)]
        pub oauth: Option<super::signin::OAuthClient>,
    }

    impl std::fmt::Debug for Saved {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Saved")
                .field("api", &self.api)
                .field("email", &self.email)
                .finish_non_exhaustive()
        }
    }

    /// Where the credential is kept.
    pub fn path() -> Option<PathBuf> {
        let dir = match std::env::var_os("BATON_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => dirs::config_dir()?.join("baton"),
        };
        Some(dir.join("credentials.json"))
    }

    /// The credential kept for `api`, if one is.
    pub fn load(api: &str) -> Option<Saved> {
        let text = std::fs::read(path()?).ok()?;
        let saved: Saved = serde_json::from_slice(&text).ok()?;
        (saved.api.trim_end_matches('/') == api.trim_end_matches('/')).then_some(saved)
    }

    /// Keeps `saved`, replacing what was kept: the folder made 0700, the file 0600 from its
    /// first byte (written beside and renamed, so that a reader never sees half of it).
    pub fn save(saved: &Saved) -> std::io::Result<PathBuf> {
        let path = path().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no config folder (set BATON_CONFIG_DIR)",
            )
        })?;
        let dir = path.parent().expect("the file is in a folder");
        std::fs::create_dir_all(dir)?;
        let partial = dir.join("credentials.json.partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(0o600);
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut file = options.open(&partial)?;
        file.write_all(&serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }

    /// The credential to send to `api`: what was kept for it, a Google sign-in renewed first
    /// when its ID token has less than a minute left.
    pub async fn current(api: &str) -> anyhow::Result<Option<String>> {
        let Some(mut saved) = load(api) else {
            return Ok(None);
        };
        if let (Some(refresh), Some(oauth)) = (&saved.refresh_token, &saved.oauth) {
            let now = jiff::Timestamp::now().as_second();
            let expiring = super::signin::expires_at(&saved.token).is_none_or(|exp| exp - now < 60);
            if expiring {
                let tokens = super::signin::refresh(oauth, refresh).await?;
                saved.token = tokens.id_token;
                saved.refresh_token = tokens.refresh_token;
                save(&saved)?;
            }
        }
        Ok(Some(saved.token))
    }

    /// Forgets the kept credential; true when there was one.
    pub fn forget() -> std::io::Result<bool> {
        let Some(path) = path() else {
            return Ok(false);
        };
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Google sign-in for a person at the terminal: the browser flow of an installed app (RFC
/// 8252: authorization code with PKCE, the answer received on a loopback port), and the
/// refresh of the ID token it gives, an hour at a time.
pub mod signin {
    use std::time::Duration;

    use oauth2::basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
        BasicTokenType,
    };
    use oauth2::{
        AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
        EndpointSet, ExtraTokenFields, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope,
        StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
    };
    use serde::{Deserialize, Serialize};

    /// Google's endpoints for installed apps.
    pub const GOOGLE_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
    pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

    /// How long the browser has to come back.
    const WAIT: Duration = Duration::from_secs(300);

    /// The OAuth client people sign in with: an installed app's (desktop) client of the
    /// deployment's project, whose id the API accepts as its tokens' audience. An installed
    /// app's client secret is not a secret (Google says so: it ships with the app), but it is
    /// still kept out of logs.
    #[derive(Clone, Serialize, Deserialize)]
    pub struct OAuthClient {
        pub client_id: String,
        #[serde(default)]
        pub client_secret: Option<String>,
        pub auth_url: String,
        pub token_url: String,
    }

    impl std::fmt::Debug for OAuthClient {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("OAuthClient")
                .field("client_id", &self.client_id)
                .field("token_url", &self.token_url)
                .finish_non_exhaustive()
        }
    }

    impl OAuthClient {
        /// `BATON_OAUTH_CLIENT_ID` (required), `BATON_OAUTH_CLIENT_SECRET`, and Google's
        /// endpoints unless `BATON_OAUTH_AUTH_URL` and `BATON_OAUTH_TOKEN_URL` say otherwise.
        pub fn from_env() -> anyhow::Result<Self> {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let client_id = var("BATON_OAUTH_CLIENT_ID").ok_or_else(|| {
                anyhow::anyhow!(
                    "signing in with Google needs BATON_OAUTH_CLIENT_ID (and \
                     BATON_OAUTH_CLIENT_SECRET): the installed-app OAuth client your deployment \
                     accepts; or use `baton login --with-token`"
                )
            })?;
            Ok(Self {
                client_id,
                client_secret: var("BATON_OAUTH_CLIENT_SECRET"),
                auth_url: var("BATON_OAUTH_AUTH_URL").unwrap_or_else(|| GOOGLE_AUTH_URL.into()),
                token_url: var("BATON_OAUTH_TOKEN_URL").unwrap_or_else(|| GOOGLE_TOKEN_URL.into()),
            })
        }
    }

    /// The `id_token` Google adds to a token answer when `openid` is asked.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct IdTokenField {
        #[serde(default)]
        pub id_token: Option<String>,
    }

    impl ExtraTokenFields for IdTokenField {}

    type Answer = StandardTokenResponse<IdTokenField, BasicTokenType>;

    type Client<HasAuthUrl = EndpointSet> = oauth2::Client<
        BasicErrorResponse,
        Answer,
        BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        BasicRevocationErrorResponse,
        HasAuthUrl,
        EndpointNotSet,
        EndpointNotSet,
        EndpointNotSet,
        EndpointSet,
    >;

    /// What a sign-in or a refresh gives: the ID token, and the refresh token to get the next.
    #[derive(Clone)]
    pub struct Tokens {
        pub id_token: String,
        pub refresh_token: Option<String>,
    }

    fn client(oauth: &OAuthClient, redirect: Option<&str>) -> anyhow::Result<Client> {
        let mut client = oauth2::Client::new(ClientId::new(oauth.client_id.clone()))
            .set_auth_uri(AuthUrl::new(oauth.auth_url.clone())?)
            .set_token_uri(TokenUrl::new(oauth.token_url.clone())?)
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &oauth.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        if let Some(redirect) = redirect {
            client = client.set_redirect_uri(RedirectUrl::new(redirect.to_string())?);
        }
        Ok(client)
    }

    fn http() -> anyhow::Result<reqwest::Client> {
        // No redirects: a token endpoint that redirects is not trusted with a code.
        Ok(reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()?)
    }

    fn tokens(answer: &Answer, previous_refresh: Option<&str>) -> anyhow::Result<Tokens> {
        let id_token =
            answer.extra_fields().id_token.clone().ok_or_else(|| {
                anyhow::anyhow!("the sign-in gave no ID token (was `openid` asked?)")
            })?;
        Ok(Tokens {
            id_token,
            refresh_token: answer
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| previous_refresh.map(str::to_string)),
        })
    }

    #[derive(Deserialize)]
    struct Callback {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }

    /// Signs a person in through their browser: listens on a loopback port, has `show` tell
    /// them the page to open (and opens it unless `BATON_NO_BROWSER` is set), receives the
    /// code there, checks the state, and exchanges the code with its PKCE verifier.
    pub async fn browser(
        oauth: &OAuthClient,
        login_hint: Option<&str>,
        show: impl Fn(&str),
    ) -> anyhow::Result<Tokens> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let redirect = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
        let client = client(oauth, Some(&redirect))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        let (url, state) = request.url();
        show(url.as_str());
        if std::env::var_os("BATON_NO_BROWSER").is_none() {
            let _ = webbrowser::open(url.as_str());
        }

        let (sender, receiver) = tokio::sync::mpsc::channel::<Callback>(1);
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(
                move |axum::extract::Query(callback): axum::extract::Query<Callback>| {
                    let sender = sender.clone();
                    async move {
                        let _ = sender.send(callback).await;
                        axum::response::Html(
                            "<p>Baton: you may close this tab and go back to the terminal.</p>",
                        )
                    }
                },
            ),
        );
        let mut receiver = receiver;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let callback = tokio::time::timeout(WAIT, receiver.recv()).await;
        server.abort();
        let callback = callback
            .map_err(|_| anyhow::anyhow!("the browser did not come back within 5 minutes"))?
            .ok_or_else(|| anyhow::anyhow!("the sign-in page closed"))?;
        if let Some(error) = callback.error {
            anyhow::bail!("the sign-in was refused: {error}");
        }
        if callback.state.as_deref() != Some(state.secret().as_str()) {
            anyhow::bail!("the sign-in came back with another state: not this sign-in's answer");
        }
        let code = callback
            .code
            .ok_or_else(|| anyhow::anyhow!("the sign-in came back without a code"))?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&http()?)
            .await
            .map_err(|e| anyhow::anyhow!("the code could not be exchanged: {e}"))?;
        tokens(&answer, None)
    }

    /// A new ID token for a refresh token.
    pub async fn refresh(oauth: &OAuthClient, refresh_token: &str) -> anyhow::Result<Tokens> {
        let answer = client(oauth, None)?
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .request_async(&http()?)
            .await
            .map_err(|e| {
                anyhow::anyhow!("the sign-in could not be renewed ({e}): `baton login` again")
            })?;
        tokens(&answer, Some(refresh_token))
    }

    /// When a JWT expires (its `exp`, read without checking its signature: the API checks).
    pub fn expires_at(jwt: &str) -> Option<i64> {
        use base64::Engine;
        let payload = jwt.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["exp"].as_i64()
    }
}
