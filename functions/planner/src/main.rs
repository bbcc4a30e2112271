#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_service::service::main("planner", baton_planner::start).await
}
