//! How the executor writes a table, end to end on the local stack: each write mode after
//! repeated runs, partitioned and clustered destinations, expiration, a schema that gains a
//! column and one that changes a type; the dry run of a table's SQL.

use std::time::Duration;

use jiff::Timestamp;

use baton_core::catalog::{
    CatalogSpec, Frequency, Partitioning, Table, TableId, TableOptions, WriteMode,
};
use baton_core::run::BackfillState;
use baton_core::state::{JobState, RunState};
use baton_service::api::{BackfillRequest, DryRunRequest, RunResponse, StartRunRequest};
use baton_tests::{Baton, Stack, eventually};

const TIMEOUT: Duration = Duration::from_secs(120);

fn id(s: &str) -> TableId {
    s.parse().expect("a valid table id")
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("a valid timestamp")
}

fn table(name: &str, sql: &str, write_mode: WriteMode, options: TableOptions) -> Table {
    Table {
        frequency: Some("daily".to_string()),
        write_mode,
        options: Box::new(options),
        ..Table::query(&id(name), sql)
    }
}

fn daily() -> Frequency {
    Frequency::every("daily", 86_400)
}

fn keyed(key: &str) -> TableOptions {
    TableOptions {
        key: vec![key.to_string()],
        ..TableOptions::default()
    }
}

/// The rows each run produces, by the day of its instant: on the 21st ids 1 and 2 named
/// `v21`; on the 22nd ids 1, 2 and 3 named `v22`, with id 1 flagged gone.
const SOURCE: &str = "SELECT id, CONCAT('v', CAST(EXTRACT(DAY FROM @run_time) AS STRING)) AS name,\n\
    (id = 1 AND EXTRACT(DAY FROM @run_time) = 22) AS gone\n\
    FROM UNNEST(IF(EXTRACT(DAY FROM @run_time) = 21, [1, 2], [1, 2, 3])) AS id;\n";

/// The same rows, dated by the first day of the run's window.
const WINDOWED: &str = "SELECT id, CONCAT('v', CAST(EXTRACT(DAY FROM @run_time) AS STRING)) AS name,\n\
    DATE(@window_start) AS day\n\
    FROM UNNEST(IF(EXTRACT(DAY FROM @run_time) = 21, [1, 2], [1, 2, 3])) AS id";

async fn backfill(baton: &Baton, from: &str, to: &str) -> anyhow::Result<Vec<String>> {
    let backfill = baton
        .client
        .start_backfill(&BackfillRequest {
            frequency: "daily".into(),
            from: at(from),
            to: at(to),
            parallel: None,
        })
        .await?;
    let ended = eventually("the backfill ended", TIMEOUT, || async {
        let b = baton.client.backfill(&backfill.id).await?;
        Ok((b.state != BackfillState::Running).then_some(b))
    })
    .await?;
    assert_eq!(ended.state, BackfillState::Succeeded, "{ended:?}");
    Ok(ended.runs)
}

async fn rows(baton: &Baton, sql: &str) -> anyhow::Result<serde_json::Value> {
    let sql = sql.replace("{p}", &baton.project);
    Ok(serde_json::to_value(
        baton.warehouse.query_rows(&sql).await?,
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_write_mode_leaves_the_right_rows_after_repeated_runs() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "writes").await?;
    let by_day = Partitioning::parse("day(day)").expect("a partitioning");
    baton
        .apply(CatalogSpec {
            frequencies: vec![daily()],
            tables: vec![
                table(
                    "w.truncated",
                    WINDOWED,
                    WriteMode::Truncate,
                    TableOptions {
                        partitioning: Some(by_day.clone()),
                        clustering: vec!["id".into()],
                        expiration_seconds: Some(30 * 86_400),
                        ..TableOptions::default()
                    },
                ),
                table(
                    "w.appended",
                    SOURCE,
                    WriteMode::Append,
                    TableOptions::default(),
                ),
                table(
                    "w.merged",
                    SOURCE,
                    WriteMode::Merge,
                    TableOptions {
                        delete_flag: Some("gone".into()),
                        clustering: vec!["name".into(), "id".into()],
                        ..keyed("id")
                    },
                ),
                table("w.unique", SOURCE, WriteMode::InsertUnique, keyed("id")),
                table(
                    "w.windowed",
                    WINDOWED,
                    WriteMode::OverwritePartitions,
                    TableOptions {
                        partitioning: Some(by_day),
                        ..TableOptions::default()
                    },
                ),
            ],
        })
        .await?;

    // The 21st, then the 22nd, then the 22nd again: a rerun of the same window.
    let mut runs = backfill(&baton, "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z").await?;
    runs.extend(backfill(&baton, "2026-11-22T00:00:00Z", "2026-11-22T00:00:00Z").await?);
    assert_eq!(runs.len(), 3);
    for run_id in &runs {
        let run = baton.client.run(run_id).await?;
        assert_eq!(run.run.state, RunState::Succeeded, "{run:?}");
        let ids = baton.bigquery_jobs(run_id).await?;
        assert_eq!(ids.len(), 5, "one BigQuery job per table: {ids:?}");
    }

    // Truncate: the last run's rows alone.
    assert_eq!(
        rows(
            &baton,
            "SELECT id, name, CAST(day AS STRING) FROM `{p}.w.truncated` ORDER BY id"
        )
        .await?,
        serde_json::json!([
            ["1", "v22", "2026-11-21"],
            ["2", "v22", "2026-11-21"],
            ["3", "v22", "2026-11-21"]
        ])
    );
    // Append: every run's rows, 2 + 3 + 3.
    assert_eq!(
        rows(
            &baton,
            "SELECT name, COUNT(*) FROM `{p}.w.appended` GROUP BY name ORDER BY name"
        )
        .await?,
        serde_json::json!([["v21", "2"], ["v22", "6"]])
    );
    // Merge: id 1 deleted by its flag (and not inserted again), 2 updated, 3 inserted.
    assert_eq!(
        rows(&baton, "SELECT id, name FROM `{p}.w.merged` ORDER BY id").await?,
        serde_json::json!([["2", "v22"], ["3", "v22"]])
    );
    // Insert-unique: the first row of each key stays as it was.
    assert_eq!(
        rows(&baton, "SELECT id, name FROM `{p}.w.unique` ORDER BY id").await?,
        serde_json::json!([["1", "v21"], ["2", "v21"], ["3", "v22"]])
    );
    // Overwrite: the 20th from the first run, the 21st once although written twice.
    assert_eq!(
        rows(
            &baton,
            "SELECT CAST(day AS STRING), COUNT(*), MIN(name) FROM `{p}.w.windowed` GROUP BY day ORDER BY day"
        )
        .await?,
        serde_json::json!([["2026-11-20", "2", "v21"], ["2026-11-21", "3", "v22"]])
    );

    // The row count is recorded, read back with the expiration's renewal.
    let last = baton.client.run(&runs[2]).await?;
    let truncated_job = last
        .jobs
        .iter()
        .find(|j| j.table == id("w.truncated"))
        .expect("a job of w.truncated");
    assert_eq!(
        truncated_job
            .statistics
            .as_ref()
            .and_then(|s| s.destination_rows),
        Some(3)
    );

    // Shapes: partitioning and clustering applied when the tables were created, the
    // expiration renewed after each write.
    let truncated = baton
        .warehouse
        .table(&id("w.truncated"))
        .await?
        .expect("the table exists");
    let partitioning = truncated.time_partitioning.expect("partitioned");
    assert_eq!(
        (partitioning.r#type.as_str(), partitioning.field.as_deref()),
        ("DAY", Some("day"))
    );
    assert_eq!(
        truncated.clustering.and_then(|c| c.fields),
        Some(vec!["id".to_string()])
    );
    let expires: i64 = truncated.expiration_time.expect("an expiration").parse()?;
    let in_30_days =
        (Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30)).as_millisecond();
    assert!(
        (in_30_days - expires).abs() < 600_000,
        "expires at {expires}, not 30 days from now ({in_30_days})"
    );
    let merged = baton
        .warehouse
        .table(&id("w.merged"))
        .await?
        .expect("the table exists");
    assert_eq!(
        merged.clustering.and_then(|c| c.fields),
        Some(vec!["name".to_string(), "id".to_string()])
    );
    let windowed = baton
        .warehouse
        .table(&id("w.windowed"))
        .await?
        .expect("the table exists");
    assert_eq!(
        windowed.time_partitioning.and_then(|p| p.field),
        Some("day".to_string())
    );
    Ok(())
}

async fn run_table(baton: &Baton, table: &str) -> anyhow::Result<RunResponse> {
    let started = baton
        .client
        .start_run(&StartRunRequest {
            frequency: None,
            tables: vec![id(table)],
            downstream: false,
            idempotency_key: None,
        })
        .await?;
    baton.wait_for_run(&started.run.id, TIMEOUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_keeps_its_rows_gains_columns_and_refuses_other_changes() -> anyhow::Result<()>
{
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "schemas").await?;
    let catalog = |sql: &str| CatalogSpec {
        frequencies: vec![daily()],
        tables: vec![table("s.kept", sql, WriteMode::Merge, keyed("id"))],
    };
    baton.apply(catalog("SELECT 1 AS id, 'a' AS name")).await?;
    let first = run_table(&baton, "s.kept").await?;
    assert_eq!(first.run.state, RunState::Succeeded, "{first:?}");
    // A manual run's job is attributed to whoever asked for it, the signed-in caller (pricing
    // is tested with a billing job in faults.rs: local-bigquery bills nothing).
    assert_eq!(
        first.jobs[0].attributed_user.as_deref(),
        Some(baton.admin.as_str())
    );

    baton
        .apply(catalog(
            "SELECT 2 AS id, 'b' AS name, DATE '2026-11-22' AS added",
        ))
        .await?;
    let second = run_table(&baton, "s.kept").await?;
    assert_eq!(second.run.state, RunState::Succeeded, "{second:?}");
    assert_eq!(
        rows(
            &baton,
            "SELECT id, name, CAST(added AS STRING) FROM `{p}.s.kept` ORDER BY id"
        )
        .await?,
        serde_json::json!([["1", "a", null], ["2", "b", "2026-11-22"]])
    );

    baton
        .apply(catalog("SELECT 'three' AS id, 'c' AS name"))
        .await?;
    let third = run_table(&baton, "s.kept").await?;
    assert_eq!(third.run.state, RunState::Failed);
    let job = &third.jobs[0];
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempt, 1, "a refused change is not retried");
    let error = job.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("column `id` is INTEGER in the table but STRING in the result")
            && error.contains("column `added` is gone from the result")
            && error.contains("may only gain columns"),
        "{error}"
    );
    assert!(
        baton.bigquery_jobs(&third.run.id).await?.is_empty(),
        "no BigQuery job ran"
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.s.kept`").await?,
        serde_json::json!([["2"]]),
        "the table is as it was"
    );
    Ok(())
}

/// The dry run the API offers: a stored table's SQL, an edit of it checked against the table's
/// settings before it is applied, and SQL BigQuery or Baton refuses, each answered as a user
/// needs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_names_the_result_columns_or_the_error() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "dry-run").await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![daily()],
            tables: vec![table("w.people", SOURCE, WriteMode::Merge, keyed("id"))],
        })
        .await?;
    let dry_run = |table: Option<&str>, sql: Option<&str>| {
        let request = DryRunRequest {
            table: table.map(id),
            sql: sql.map(str::to_string),
            ..DryRunRequest::default()
        };
        let client = &baton.client;
        async move { client.dry_run(&request).await }
    };

    let stored = dry_run(Some("w.people"), None).await?;
    let columns: Vec<(&str, &str)> = stored
        .report
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.field_type.as_str()))
        .collect();
    assert_eq!(
        columns,
        [("id", "INTEGER"), ("name", "STRING"), ("gone", "BOOLEAN")]
    );
    // The daily frequency's latest instant, and the one before as the window's start.
    let instants = stored.report.instants;
    assert_eq!(instants.run_time.as_second() % 86_400, 0);
    assert_eq!(
        instants.window_start.map(|w| w.as_second()),
        Some(instants.run_time.as_second() - 86_400)
    );

    // An edit, checked with the table's settings: a script cannot be merged.
    let refused = dry_run(Some("w.people"), Some("SELECT 1 AS id;\nSELECT 2 AS id"))
        .await
        .expect_err("a script is not one query");
    let message = refused.to_string();
    assert!(
        message.contains("line 2, column 1") && message.contains("one query is needed"),
        "{message}"
    );
    // BigQuery's own refusal, with its message.
    let refused = dry_run(None, Some("SELECT no_such_column FROM w.people"))
        .await
        .expect_err("`sql` without `table` needs `dataset`");
    assert!(refused.to_string().contains("needs `dataset`"), "{refused}");
    let run = run_table(&baton, "w.people").await?;
    assert_eq!(run.run.state, RunState::Succeeded);
    let request = DryRunRequest {
        sql: Some("SELECT no_such_column FROM people".into()),
        dataset: Some("w".into()),
        ..DryRunRequest::default()
    };
    let refused = baton
        .client
        .dry_run(&request)
        .await
        .expect_err("an unknown column");
    assert!(refused.to_string().contains("no_such_column"), "{refused}");
    Ok(())
}
