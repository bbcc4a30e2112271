//! A client of Baton's API, for the `baton` command and for tools and tests.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use baton_core::access::{Group, Principal, TokenView, User};
use baton_core::run::Backfill;
use baton_service::api::{
    ApplyRequest, ApplyResponse, AuditResponse, BackfillRequest, CatalogResponse,
    ConnectionsResponse, CostsResponse, CreateTokenRequest, CreatedToken, DryRunRequest,
    DryRunResponse, ErrorResponse, GroupsResponse, PutConnectionRequest, PutGroupRequest,
    RunChange, RunResponse, RunsResponse, StartRunRequest, TokensResponse, UpdateUserRequest,
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
    pub async fn me(&self) -> Result<Principal, ClientError> {
        self.get("/v1/me").await
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
        pub token: String,
        pub email: String,
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
