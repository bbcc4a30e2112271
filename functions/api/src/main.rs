#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::service::main("api", baton_api::start).await
}
