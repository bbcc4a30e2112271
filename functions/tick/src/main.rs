use std::process::ExitCode;
use std::sync::Arc;

use baton_shared::config::Env;
use baton_tick::{App, Config, router};

#[tokio::main]
async fn main() -> ExitCode {
    baton_shared::telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the tick service stopped");
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
