#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_service::service::main("executor", baton_executor::start).await
}
