#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton_shared::service::main("importer", baton_importer::start).await
}
