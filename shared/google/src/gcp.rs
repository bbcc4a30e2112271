//! Google credentials for the REST APIs Baton calls itself (Pub/Sub, BigQuery, Cloud
//! Storage): Application Default Credentials in production (the metadata server on Cloud
//! Run), none against an emulator. The token never leaves this module except in an
//! `Authorization` header. `Tokens::call` sends a request with it and sorts its failures.

use std::fmt;
use std::sync::Arc;

use google_cloud_auth::credentials::{AccessTokenCredentials, Builder};

const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where bearer tokens come from.
#[derive(Clone)]
pub enum Tokens {
    /// An emulator: no credentials, a placeholder token.
    Anonymous,
    Google(Arc<AccessTokenCredentials>),
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tokens::Anonymous => f.write_str("Tokens::Anonymous"),
            Tokens::Google(_) => f.write_str("Tokens::Google"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("Google credentials: {0}")]
pub struct CredentialsError(String);

/// How a call to a Google REST API failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// No token, no answer, or an answer another try may not get (a 429 or a 5xx).
    #[error("{0}")]
    Unavailable(String),
    /// Refused: the status and the start of the answer.
    #[error("{status}: {message}")]
    Refused { status: u16, message: String },
}

impl RestError {
    /// The thing to create exists already.
    pub fn is_conflict(&self) -> bool {
        matches!(self, RestError::Refused { status: 409, .. })
    }
}

impl Tokens {
    /// Application Default Credentials with the cloud-platform scope.
    pub fn application_default() -> Result<Self, CredentialsError> {
        let credentials = Builder::default()
            .with_scopes([CLOUD_PLATFORM])
            .build_access_token_credentials()
            .map_err(|e| CredentialsError(e.to_string()))?;
        Ok(Tokens::Google(Arc::new(credentials)))
    }

    /// Anonymous against an emulator, Application Default Credentials otherwise.
    pub fn for_endpoint(emulated: bool) -> Result<Self, CredentialsError> {
        if emulated {
            Ok(Tokens::Anonymous)
        } else {
            Self::application_default()
        }
    }

    /// Sends `request` with a bearer token; the answer's body, or the failure sorted.
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Result<String, RestError> {
        let token = self
            .token()
            .await
            .map_err(|e| RestError::Unavailable(e.to_string()))?;
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| RestError::Unavailable(baton_core::errors::error_chain(&e)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| RestError::Unavailable(baton_core::errors::error_chain(&e)))?;
        if status.is_success() {
            return Ok(body);
        }
        let message: String = body.chars().take(500).collect();
        if status.is_server_error() || status.as_u16() == 429 {
            Err(RestError::Unavailable(format!("{status}: {message}")))
        } else {
            Err(RestError::Refused {
                status: status.as_u16(),
                message,
            })
        }
    }

    pub async fn token(&self) -> Result<String, CredentialsError> {
        match self {
            Tokens::Anonymous => Ok("emulator".to_string()),
            Tokens::Google(credentials) => credentials
                .access_token()
                .await
                .map(|t| t.token)
                .map_err(|e| CredentialsError(e.to_string())),
        }
    }
}

#[async_trait::async_trait]
impl gcp_bigquery_client::auth::Authenticator for Tokens {
    async fn access_token(&self) -> Result<String, gcp_bigquery_client::error::BQError> {
        // BQError has no variant for a foreign credentials error: say what failed here.
        self.token().await.map_err(|e| {
            tracing::error!(error = %e, "no token for BigQuery");
            gcp_bigquery_client::error::BQError::NoToken
        })
    }
}
