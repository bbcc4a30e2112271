//! A client of Baton's API, for the `baton` command and for tools and tests.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use baton_core::run::Backfill;
use baton_service::api::{
    ApplyRequest, ApplyResponse, BackfillRequest, CatalogResponse, ConnectionsResponse,
    CostsResponse, DryRunRequest, DryRunResponse, ErrorResponse, PutConnectionRequest, RunChange,
    RunResponse, RunsResponse, StartRunRequest,
};

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
            return serde_json::from_slice(&bytes).map_err(|e| {
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
        self.get(&format!("/v1/runs/{run_id}")).await
    }

    pub async fn start_run(&self, request: &StartRunRequest) -> Result<RunChange, ClientError> {
        self.post("/v1/runs", request).await
    }

    pub async fn resume(&self, run_id: &str) -> Result<RunChange, ClientError> {
        self.post(&format!("/v1/runs/{run_id}/resume"), &serde_json::json!({}))
            .await
    }

    pub async fn cancel(&self, run_id: &str) -> Result<RunChange, ClientError> {
        self.post(&format!("/v1/runs/{run_id}/cancel"), &serde_json::json!({}))
            .await
    }

    pub async fn start_backfill(&self, request: &BackfillRequest) -> Result<Backfill, ClientError> {
        self.post("/v1/backfills", request).await
    }

    pub async fn backfill(&self, id: &str) -> Result<Backfill, ClientError> {
        self.get(&format!("/v1/backfills/{id}")).await
    }

    pub async fn put_connection(
        &self,
        name: &str,
        request: &PutConnectionRequest,
    ) -> Result<baton_core::connections::ConnectionView, ClientError> {
        let url = format!("{}/v1/connections/{name}", self.base);
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
}
