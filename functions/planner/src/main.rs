#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::service::main("planner", baton_planner::start).await
}
