use std::process::ExitCode;

use baton_shared::config::{Env, Listen};

#[tokio::main]
async fn main() -> ExitCode {
    baton_shared::telemetry::init();
    let listen = match Listen::from_env(&Env::process()) {
        Ok(listen) => listen,
        Err(e) => {
            tracing::error!(error = %e, "the importer service stopped");
            return ExitCode::FAILURE;
        }
    };
    match baton_shared::http::serve(baton_importer::router(), &listen).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the importer service stopped");
            ExitCode::FAILURE
        }
    }
}
