//! The load tables' benchmark on the local stack, as `name: value unit` lines:
//! - claims per second: N finalize notifications held back, then delivered to the importer
//!   all at once, until every file is claimed (the notification-to-claim path alone);
//! - the same through the Pub/Sub emulator's own pushes (it keeps two in flight);
//! - a batch of 100 small files uploaded through signed URLs (`POST /v1/loads/…/upload-url`,
//!   then a PUT each), from the first upload until their rows are queryable in BigQuery.
//!
//! Run by `tests/bench/loads.sh`, with the release services.
//!   bench_loads [--files N]

use std::time::{Duration, Instant};

use baton_core::catalog::CatalogSpec;
use baton_core::catalog::folder::{Defaults, parse_load_file};
use baton_google::storage::Storage;
use baton_service::api::UploadUrlRequest;
use baton_tests::{Baton, Options, Stack, eventually};

const TIMEOUT: Duration = Duration::from_secs(600);

fn table(dataset: &str, name: &str, batch: &str) -> anyhow::Result<baton_core::catalog::Table> {
    let toml = format!(
        "columns = [\"id INT64\", \"name STRING\"]\n[csv]\nskip_leading_rows = 1\n[batch]\n{batch}\n"
    );
    parse_load_file(
        &format!("{dataset}/{name}.load.toml"),
        name,
        &toml,
        &Defaults {
            dataset: Some(dataset.into()),
            ..Defaults::default()
        },
    )
    .map_err(|p| anyhow::anyhow!("{p:?}"))
}

fn csv(file: usize, rows: usize) -> String {
    let mut text = String::from("id,name\n");
    for row in 0..rows {
        text.push_str(&format!("{},file-{file}\n", file * rows + row));
    }
    text
}

/// Files claimed for a table so far (waiting; no batch forms in these tables' policies).
async fn claimed(baton: &Baton, table: &str) -> anyhow::Result<usize> {
    Ok(baton.client.loads(&table.parse()?).await?.waiting_files)
}

async fn claims_per_second(
    baton: &Baton,
    storage: &Storage,
    table: &str,
    files: usize,
    held: bool,
) -> anyhow::Result<f64> {
    let bucket = format!("{}-landing", baton.project);
    let prefix = table.replace('.', "/");
    if held {
        baton.relays.storage.hold_all();
    }
    let started = Instant::now();
    for file in 0..files {
        storage
            .upload(
                &bucket,
                &format!("{prefix}/f{file:05}.csv"),
                "text/csv",
                csv(file, 10).into(),
            )
            .await?;
    }
    let started = if held {
        eventually("every notification held", TIMEOUT, || async {
            Ok((baton.relays.storage.held() >= files).then_some(()))
        })
        .await?;
        let released = Instant::now();
        baton.relays.storage.release().await?;
        released
    } else {
        started
    };
    eventually("every file claimed", TIMEOUT, || async {
        Ok((claimed(baton, table).await? >= files).then_some(()))
    })
    .await?;
    Ok(files as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut files = 400usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--files" => files = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "bench-loads", Options::default().landing()).await?;
    let never = "files = 490\nbytes = \"1 TiB\"\nage = \"1d\"";
    baton
        .apply(CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![
                table("bench", "held", never)?,
                table("bench", "pushed", never)?,
                table("bench", "hundred", "files = 100")?,
            ],
        })
        .await?;
    let storage = Storage::new(&baton.gcp, None)?;
    let files = files.min(490);

    let rate = claims_per_second(&baton, &storage, "bench.held", files, true).await?;
    println!("files claimed, {files} notifications delivered at once: {rate:.0} files/s");
    let rate = claims_per_second(&baton, &storage, "bench.pushed", files, false).await?;
    println!(
        "files claimed, {files} uploads through the Pub/Sub emulator's pushes: {rate:.0} files/s"
    );

    // 100 small files uploaded through signed URLs, one after another, then queryable.
    let table: baton_core::catalog::TableId = "bench.hundred".parse()?;
    let rows_per_file = 10;
    let started = Instant::now();
    for file in 0..100 {
        let to = baton
            .client
            .upload_url(
                &table,
                &UploadUrlRequest {
                    file_name: format!("f{file:03}.csv"),
                    expires_in_seconds: None,
                },
            )
            .await?;
        baton
            .client
            .upload(&to, csv(file, rows_per_file).into_bytes())
            .await?;
    }
    let uploaded = started.elapsed();
    let expected = (100 * rows_per_file).to_string();
    let sql = format!("SELECT COUNT(*) FROM `{}.bench.hundred`", baton.project);
    eventually("the 100 files' rows queryable", TIMEOUT, || async {
        let rows = baton.warehouse.query_rows(&sql).await.unwrap_or_default();
        Ok((rows
            .first()
            .and_then(|r| r.first())
            .and_then(|v| v.as_str())
            == Some(expected.as_str()))
        .then_some(()))
    })
    .await?;
    let queryable = started.elapsed();
    println!(
        "100 files uploaded through signed URLs: {:.0} ms",
        uploaded.as_secs_f64() * 1000.0
    );
    println!(
        "100 files from the first upload to their rows queryable: {:.0} ms",
        queryable.as_secs_f64() * 1000.0
    );
    baton.stop();
    Ok(())
}
