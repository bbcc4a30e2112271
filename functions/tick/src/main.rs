#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_service::service::main("tick", baton_tick::start).await
}
