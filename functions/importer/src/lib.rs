//! The importer: copies tables from PostgreSQL and MySQL and loads files arriving in Cloud
//! Storage. Not built yet: it answers 501 to every delivery, which Pub/Sub redelivers until
//! the dead-letter policy takes the message, so nothing is lost while it is missing.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

use baton_core::config::{ConfigError, Env};
use baton_service::config::Listen;
use baton_service::http::healthz;
use baton_service::oidc::Callers;
use baton_service::service::ServiceConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    /// Who may call: the Pub/Sub push identity.
    pub callers: Callers,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env(env)?,
            callers: Callers::from_env(env)?,
        })
    }

    fn listen(&self) -> &Listen {
        &self.listen
    }
}

/// The service as it runs: its routes behind the callers' check.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    Ok(baton_service::oidc::guard(router(), &config.callers))
}

pub fn router() -> Router {
    Router::new()
        .route("/pubsub", post(not_implemented))
        .route("/healthz", get(healthz))
}

async fn not_implemented() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_IMPLEMENTED,
        "the importer is not built yet: import and external tables are not supported",
    )
}
