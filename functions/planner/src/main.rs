use std::process::ExitCode;
use std::sync::Arc;

use baton_planner::{App, Config, router};
use baton_shared::config::Env;

#[tokio::main]
async fn main() -> ExitCode {
    baton_shared::telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the planner service stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env(&Env::process())?;
    let listen = config.listen.clone();
    let callers = config.callers.clone();
    let app = Arc::new(App::connect(config).await?);
    let router = baton_shared::oidc::guard(router(app), &callers);
    baton_shared::http::serve(router, &listen).await?;
    Ok(())
}
