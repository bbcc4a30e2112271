//! One start-up for every service: logs, configuration from the environment (a bad variable
//! stops the service, named), the service's router, then serving until told to stop, and a
//! last line of what the process read and wrote in Firestore. Each service's `main` is one
//! call of `main`.

use std::future::Future;
use std::process::ExitCode;

use axum::Router;

use baton_core::config::{ConfigError, Env};

use crate::config::Listen;

/// A service's configuration, read once at start.
pub trait ServiceConfig: Sized {
    /// Reads every variable the service needs; a missing or unreadable one is an error that
    /// names it.
    fn from_env(env: &Env) -> Result<Self, ConfigError>;
    /// Where the service listens.
    fn listen(&self) -> &Listen;
}

/// Starts the service `name`: reads its configuration, builds its router with `start`
/// (connecting its clients), and serves it. Fails with the reason logged.
pub async fn main<C, F, Fut>(name: &'static str, start: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<Router>>,
{
    crate::telemetry::init();
    let served = async {
        let config = C::from_env(&Env::process())?;
        let listen = config.listen().clone();
        let router = start(config).await?;
        let served = crate::http::serve(router, &listen).await;
        // What the process read and wrote in Firestore, once it stops.
        let usage = baton_google::store::usage();
        tracing::info!(
            firestore_reads = usage.reads,
            firestore_writes = usage.writes,
            "firestore usage"
        );
        served?;
        anyhow::Ok(())
    };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the {name} service stopped");
            ExitCode::FAILURE
        }
    }
}
