#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_service::service::main("importer", baton_importer::start).await
}
