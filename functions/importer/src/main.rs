use std::process::ExitCode;

use baton_importer::{Config, router};
use baton_shared::config::Env;

#[tokio::main]
async fn main() -> ExitCode {
    baton_shared::telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the importer service stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env(&Env::process())?;
    let router = baton_shared::oidc::guard(router(), &config.callers);
    baton_shared::http::serve(router, &config.listen).await?;
    Ok(())
}
