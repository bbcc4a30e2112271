#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_service::service::main("api", baton_api::start).await
}
