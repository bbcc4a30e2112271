#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::service::main("executor", baton_executor::start).await
}
