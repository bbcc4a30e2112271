//! The import benchmark: copies a generated table of the stack's PostgreSQL and MariaDB to the
//! staging bucket (fake-gcs-server) as the importer does, then loads it into local-bigquery,
//! beside the databases' own clients reading the same SELECT to /dev/null in the same run.
//! Each copy runs in a child process of its own, which reports its peak resident memory.
//! Prints `name: value unit` lines.
//!
//!   bench_imports [--rows 1000000,5000000] [--source postgres,mysql] [--no-load]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use baton_google::storage::Storage;
use baton_google::warehouse::{LoadJob, Warehouse};
use baton_importer::chunks::Chunks;
use baton_tests::Stack;

const PROJECT: &str = "bench-imports";
const BUCKET: &str = "bench-imports-staging";

fn pg_sql(rows: u64) -> String {
    format!("SELECT * FROM bench.orders_{rows}")
}

fn my_sql(rows: u64) -> String {
    format!("SELECT * FROM bench.orders_{rows}")
}

/// Makes `bench.orders_{rows}` in PostgreSQL unless it is there.
async fn postgres_table(stack: &Stack, rows: u64) -> anyhow::Result<()> {
    let (client, connection) =
        tokio_postgres::connect(stack.var("BATON_TEST_POSTGRES_URL")?, tokio_postgres::NoTls)
            .await?;
    tokio::spawn(connection);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_tables WHERE schemaname = 'bench' AND tablename = $1",
            &[&format!("orders_{rows}")],
        )
        .await?
        .is_some();
    if !exists {
        eprintln!("making bench.orders_{rows} in PostgreSQL");
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS bench;
                 CREATE TABLE bench.orders_{rows} AS
                 SELECT g::bigint AS id, (g % 100000)::int AS customer_id,
                        (ARRAY['new','paid','shipped','returned'])[1 + g % 4] AS status,
                        round((g % 100000) / 7.0, 2)::numeric(12,2) AS total,
                        timestamptz '2024-01-01' + g * interval '1 second' AS created_at,
                        'order note number ' || g AS note, g % 3 = 0 AS gift
                 FROM generate_series(1, {rows}) AS g;"
            ))
            .await?;
        client
            .batch_execute(&format!("VACUUM ANALYZE bench.orders_{rows}"))
            .await?;
    }
    Ok(())
}

/// Makes `bench.orders_{rows}` in MariaDB unless it is there.
async fn mysql_table(stack: &Stack, rows: u64) -> anyhow::Result<()> {
    use mysql_async::prelude::Queryable;
    let mut conn = mysql_async::Conn::from_url(stack.var("BATON_TEST_MYSQL_URL")?).await?;
    let exists: Option<u8> = conn
        .exec_first(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'bench' AND table_name = ?",
            (format!("orders_{rows}"),),
        )
        .await?;
    if exists.is_none() {
        eprintln!("making bench.orders_{rows} in MariaDB");
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS bench;
             CREATE TABLE bench.orders_{rows} (
                 id BIGINT PRIMARY KEY, customer_id INT, status VARCHAR(16), total DECIMAL(12,2),
                 created_at DATETIME(6), note VARCHAR(64), gift TINYINT(1)) ENGINE=InnoDB;
             INSERT INTO bench.orders_{rows}
             SELECT seq, seq % 100000, ELT(1 + seq % 4, 'new','paid','shipped','returned'),
                    ROUND((seq % 100000) / 7.0, 2),
                    TIMESTAMPADD(SECOND, seq, '2024-01-01'), CONCAT('order note number ', seq),
                    seq % 3 = 0
             FROM seq_1_to_{rows};"
        ))
        .await?;
    }
    conn.disconnect().await?;
    Ok(())
}

/// The database's own client reading `sql` to /dev/null: seconds and bytes written.
fn client_read(stack: &Stack, source: &str, sql: &str) -> anyhow::Result<(f64, u64)> {
    let url = url::Url::parse(stack.var(match source {
        "postgres" => "BATON_TEST_POSTGRES_URL",
        _ => "BATON_TEST_MYSQL_URL",
    })?)?;
    let port = url.port().unwrap_or_default().to_string();
    let mut command = match source {
        "postgres" => {
            let mut c = Command::new("psql");
            c.args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg("-c")
            .arg(format!("\\copy ({sql}) TO STDOUT"))
            .env("PGPASSWORD", url.password().unwrap_or_default());
            c
        }
        _ => {
            let mut c = Command::new("mariadb");
            c.args([
                "--no-defaults",
                "--protocol=tcp",
                "-h",
                "127.0.0.1",
                "-P",
                &port,
            ])
            .args([
                "-uroot",
                "--quick",
                "--batch",
                "--skip-column-names",
                "-e",
                sql,
            ]);
            c
        }
    };
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().context("the client's output")?;
    let bytes = std::io::copy(&mut out, &mut std::io::sink())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("{source}'s client failed: {status}");
    }
    Ok((started.elapsed().as_secs_f64(), bytes))
}

/// The child's side: one copy as the importer makes it, reported as JSON.
async fn copy_child(
    stack: &Stack,
    source: &str,
    rows: u64,
    chunk_bytes: u64,
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let storage = Arc::new(Storage::new(&stack.gcp(PROJECT)?, None)?);
    let prefix = format!("bench/{source}/{rows}/{}/", std::process::id());
    let mut chunks = Chunks::new(storage, BUCKET.into(), prefix, chunk_bytes);
    let started = Instant::now();
    let url = stack.var(match source {
        "postgres" => "BATON_TEST_POSTGRES_URL",
        _ => "BATON_TEST_MYSQL_URL",
    })?;
    let kind = match source {
        "postgres" => baton_core::connections::ConnectionKind::Postgres,
        _ => baton_core::connections::ConnectionKind::Mysql,
    };
    let db = baton_core::connections::Database::parse(kind, &format!("{url}?sslmode=disable"))
        .map_err(anyhow::Error::msg)?;
    let (columns, copied) = match source {
        "postgres" => {
            use baton_importer::postgres;
            let client = postgres::connect(&db).await?;
            let described = postgres::describe(&client, &pg_sql(rows)).await?;
            let copied =
                postgres::copy(&client, &pg_sql(rows), &described, None, &mut chunks).await?;
            (described.columns, copied.rows)
        }
        _ => {
            use baton_importer::mysql;
            let mut conn = mysql::connect(&db).await?;
            let described = mysql::describe(&mut conn, &my_sql(rows)).await?;
            let copied =
                mysql::copy(&mut conn, &my_sql(rows), &described, None, &mut chunks).await?;
            (described.columns, copied.rows)
        }
    };
    let uploaded = chunks.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let schema: Vec<_> = columns.iter().map(|c| c.field()).collect();
    println!(
        "{}",
        serde_json::json!({
            "rows": copied, "seconds": seconds, "json_bytes": uploaded.json_bytes,
            "stored_bytes": uploaded.stored_bytes, "chunks": uploaded.objects.len(),
            "peak_kb": peak_kb, "objects": uploaded.objects, "schema": schema,
        })
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stack = Stack::load()?;
    let chunk_bytes: u64 = std::env::var("BATON_IMPORT_CHUNK_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 20);
    if args.first().map(String::as_str) == Some("--copy") {
        let source = args.get(1).context("--copy SOURCE ROWS")?;
        let rows: u64 = args.get(2).context("--copy SOURCE ROWS")?.parse()?;
        return copy_child(&stack, source, rows, chunk_bytes).await;
    }
    let value = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let sizes: Vec<u64> = value("--rows", "1000000,5000000")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let sources = value("--source", "postgres,mysql");
    let load = !args.iter().any(|a| a == "--no-load");

    let gcp = stack.gcp(PROJECT)?;
    Storage::new(&gcp, None)?
        .ensure_bucket(PROJECT, BUCKET)
        .await?;
    let warehouse = Warehouse::new(&gcp).await?;
    if load {
        baton_core::ports::WarehousePort::ensure_dataset(&warehouse, "bench").await?;
    }
    println!("chunk_bytes: {chunk_bytes} bytes");
    for source in sources.split(',') {
        for &rows in &sizes {
            let sql = match source {
                "postgres" => {
                    postgres_table(&stack, rows).await?;
                    pg_sql(rows)
                }
                "mysql" => {
                    mysql_table(&stack, rows).await?;
                    my_sql(rows)
                }
                other => bail!("no source {other}"),
            };
            let name = format!("{source}_{rows}");
            // The client first, so that both read a warm table.
            let (client_seconds, client_bytes) = client_read(&stack, source, &sql)?;
            let output = Command::new(std::env::current_exe()?)
                .args(["--copy", source, &rows.to_string()])
                .stderr(Stdio::inherit())
                .output()?;
            if !output.status.success() {
                bail!("the copy of {name} failed: {}", output.status);
            }
            let report: serde_json::Value = serde_json::from_slice(&output.stdout)
                .with_context(|| String::from_utf8_lossy(&output.stdout).to_string())?;
            let seconds = report["seconds"].as_f64().unwrap_or(f64::NAN);
            let mb = |bytes: f64| bytes / 1e6;
            println!("{name}_client_seconds: {client_seconds:.2} s");
            println!(
                "{name}_client_rows_per_second: {:.0} rows/s",
                rows as f64 / client_seconds
            );
            println!(
                "{name}_client_mb_per_second: {:.1} MB/s",
                mb(client_bytes as f64) / client_seconds
            );
            println!("{name}_copy_seconds: {seconds:.2} s");
            println!(
                "{name}_copy_rows_per_second: {:.0} rows/s",
                rows as f64 / seconds
            );
            println!(
                "{name}_copy_mb_per_second: {:.1} MB/s (of the client's text; {:.1} MB/s of JSON)",
                mb(client_bytes as f64) / seconds,
                mb(report["json_bytes"].as_f64().unwrap_or(0.0)) / seconds
            );
            println!("{name}_copy_vs_client: {:.2} x", client_seconds / seconds);
            println!(
                "{name}_json_mb: {:.1} MB",
                mb(report["json_bytes"].as_f64().unwrap_or(0.0))
            );
            println!(
                "{name}_stored_mb: {:.1} MB in {} chunks",
                mb(report["stored_bytes"].as_f64().unwrap_or(0.0)),
                report["chunks"]
            );
            println!(
                "{name}_copy_peak_rss: {:.1} MB",
                report["peak_kb"].as_f64().unwrap_or(0.0) / 1024.0
            );
            if load {
                let uris: Vec<String> = report["objects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.as_str())
                    .map(|o| format!("gs://{BUCKET}/{o}"))
                    .collect();
                let schema: Vec<baton_core::warehouse::Field> =
                    serde_json::from_value(report["schema"].clone())?;
                let table: baton_core::catalog::TableId = format!("bench.{name}").parse()?;
                let job_id = format!("bench_{name}_{}", std::process::id());
                let started = Instant::now();
                let mut progress = warehouse
                    .start_load(&LoadJob {
                        job_id: &job_id,
                        table: &table,
                        uris: &uris,
                        format: &baton_core::loads::FileFormat::Ndjson,
                        csv: None,
                        schema: &schema,
                        max_bad_records: 0,
                        append: false,
                        add_columns: false,
                        partitioning: None,
                        clustering: &[],
                        labels: Default::default(),
                        timeout: None,
                    })
                    .await?;
                while progress == baton_core::warehouse::JobProgress::Running {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    progress =
                        baton_core::ports::WarehousePort::job_progress(&warehouse, &job_id).await?;
                }
                let loaded = match &progress {
                    baton_core::warehouse::JobProgress::Succeeded(s) => {
                        s.rows_affected.unwrap_or(0)
                    }
                    baton_core::warehouse::JobProgress::Failed { message, .. } => {
                        bail!("the load of {name} failed: {message}")
                    }
                    baton_core::warehouse::JobProgress::Running => unreachable!("waited for"),
                };
                let load_seconds = started.elapsed().as_secs_f64();
                println!(
                    "{name}_load_seconds: {load_seconds:.2} s ({loaded} rows, local-bigquery)"
                );
            }
        }
    }
    Ok(())
}
