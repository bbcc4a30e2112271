#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::service::main("tick", baton_tick::start).await
}
