//! Extracts, end to end on the local stack: each format written to Cloud Storage after the
//! job, every file readable through its signed URL, the notify URL told (after a failed
//! first try) where the files are, and a redelivered message extracting and notifying nothing
//! twice.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use baton_core::catalog::{CatalogSpec, Extract, FileFormat, Frequency, Table, TableOptions};
use baton_core::messages::ExecutorTask;
use baton_core::run::Job;
use baton_core::state::{JobState, RunState};
use baton_tests::{Baton, Options, Stack, first_run_id, serve_on_loopback};

const TIMEOUT: Duration = Duration::from_secs(120);

const ROWS: &str = "SELECT id, CONCAT('name ', CAST(id AS STRING)) AS name \
                    FROM UNNEST([1, 2, 3]) AS id";

/// Receives notify POSTs; answers the first 503, the rest 200.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> (StatusCode, &'static str) {
    let mut bodies = receiver.bodies.lock().unwrap();
    bodies.push(body);
    if bodies.len() == 1 {
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    } else {
        (StatusCode::OK, "thanks")
    }
}

fn extracted(name: &str, format: FileFormat, compression: Option<&str>) -> Table {
    let id = name.parse().expect("a valid table id");
    Table {
        frequency: Some("daily".into()),
        options: Box::new(TableOptions {
            extract: Some(Extract {
                format,
                compression: compression.map(str::to_string),
                notify: None,
                url_expiry_seconds: Some(3_600),
            }),
            ..TableOptions::default()
        }),
        ..Table::query(&id, ROWS)
    }
}

/// The bytes behind each of a job's signed URLs.
async fn fetch_all(job: &Job) -> anyhow::Result<Vec<Vec<u8>>> {
    let record = job.extract.as_ref().expect("an extract recorded");
    assert!(!record.files.is_empty(), "no files: {record:?}");
    let mut out = Vec::new();
    for file in &record.files {
        assert!(
            file.url.contains("X-Goog-Algorithm=GOOG4-RSA-SHA256")
                && file.url.contains("X-Goog-Expires=3600")
                && file.url.contains("X-Goog-Signature="),
            "not a V4 signed URL: {}",
            file.url
        );
        let response = reqwest::get(&file.url).await?;
        assert!(
            response.status().is_success(),
            "{}: {}",
            file.url,
            response.status()
        );
        let bytes = response.bytes().await?.to_vec();
        assert_eq!(bytes.len() as u64, file.bytes, "{}", file.uri);
        out.push(bytes);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extracts_are_written_signed_and_announced_once() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let receiver = Receiver::default();
    let notify_url = serve_on_loopback(
        axum::Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone()),
    )
    .await?;
    let options = Options::default().env("BATON_NOTIFY_BACKOFF_MS", "50");
    let baton = Baton::start_with(&stack, "extracts", options).await?;
    let mut orders = extracted("x.orders", FileFormat::Csv, Some("gzip"));
    if let Some(extract) = orders.options.extract.as_mut() {
        extract.notify = Some(format!("{notify_url}/hook?token=secret"));
    }
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("daily", 86_400)],
            tables: vec![
                orders,
                extracted("x.events", FileFormat::Ndjson, None),
                extracted("x.items", FileFormat::Parquet, Some("snappy")),
                extracted("x.archive", FileFormat::Avro, Some("deflate")),
            ],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T00:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{:#?}", run.jobs);
    let job = |name: &str| {
        run.jobs
            .iter()
            .find(|j| j.table.to_string() == name)
            .unwrap_or_else(|| panic!("no job {name}"))
    };

    // CSV, gzipped, with a header: the rows, read back through the signed URL.
    let orders = job("x.orders");
    assert_eq!(orders.state, JobState::Succeeded);
    let record = orders.extract.as_ref().expect("an extract recorded");
    assert!(
        record
            .uri
            .ends_with(&format!("x/orders/{run_id}/1/orders-*.csv.gz")),
        "{}",
        record.uri
    );
    let mut csv = String::new();
    for bytes in fetch_all(orders).await? {
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut csv)?;
    }
    let mut lines: Vec<&str> = csv.lines().collect();
    lines.sort();
    assert_eq!(lines, ["1,name 1", "2,name 2", "3,name 3", "id,name"]);

    // Newline-delimited JSON: one object a row.
    let mut ids: Vec<i64> = Vec::new();
    for bytes in fetch_all(job("x.events")).await? {
        for line in String::from_utf8(bytes)?.lines() {
            let row: serde_json::Value = serde_json::from_str(line)?;
            ids.push(row["id"].as_i64().unwrap_or_else(|| panic!("{row}")));
        }
    }
    ids.sort();
    assert_eq!(ids, [1, 2, 3]);
    // Parquet and Avro: their files, by their magic numbers.
    for bytes in fetch_all(job("x.items")).await? {
        assert_eq!(&bytes[..4], b"PAR1");
    }
    for bytes in fetch_all(job("x.archive")).await? {
        assert_eq!(&bytes[..4], b"Obj\x01");
    }

    // The notify URL: refused once (503), told on the second try, both recorded.
    let notify = record.notify.as_ref().expect("the notify recorded");
    assert_eq!(
        (notify.status, notify.attempts, notify.response.as_str()),
        (Some(200), 2, "thanks")
    );
    assert_eq!(notify.error, None);
    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let body = &bodies[1];
    assert_eq!(body["dataset"], "x");
    assert_eq!(body["table"], "orders");
    assert_eq!(body["run"], run_id.as_str());
    let urls: Vec<&str> = record.files.iter().map(|f| f.url.as_str()).collect();
    assert_eq!(body["urls"], serde_json::json!(urls));
    let columns: Vec<&str> = body["schema"]
        .as_array()
        .expect("the schema's fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(columns, ["id", "name"]);

    // The same message again: the job ended, so nothing is extracted or told twice.
    let status = baton
        .push(
            &baton.urls.executor,
            &ExecutorTask::RunQuery {
                run_id: run_id.clone(),
                table: orders.table.clone(),
                attempt: 1,
            },
        )
        .await?;
    assert!(status.is_success(), "the redelivery answered {status}");
    let extract_jobs: Vec<String> = baton
        .bigquery_jobs(&run_id)
        .await?
        .into_iter()
        .filter(|id| id.contains("_extract_"))
        .collect();
    assert_eq!(extract_jobs.len(), 4, "{extract_jobs:?}");
    assert!(extract_jobs.iter().all(|id| id.ends_with("_extract_1")));
    assert_eq!(receiver.bodies.lock().unwrap().len(), 2);
    // The notify URL's token stays out of the logs.
    let logs = std::fs::read_to_string(baton.log_dir.join("executor.log"))?;
    assert!(!logs.contains("token=secret"), "the notify URL was logged");
    Ok(())
}
