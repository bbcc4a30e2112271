//! Load tables end to end on the stack: fake-gcs-server publishes each file's finalize to the
//! Pub/Sub emulator, which pushes it to the importer; the importer claims it, batches it by the
//! table's policy and loads it into local-bigquery. Files come through the CLI's signed upload
//! URL or straight into the landing bucket, as a partner's export would.

use std::time::Duration;

use serde_json::{Value, json};

use baton_core::catalog::folder::{Defaults, parse_load_file};
use baton_core::catalog::{CatalogSpec, Frequency, Table, TableId};
use baton_core::loads::{Batch, BatchState, FileState, LandedFile, LoadStatus, Trigger};
use baton_core::ports::WarehousePort;
use baton_google::storage::Storage;
use baton_google::store::Store;
use baton_tests::{Baton, Options, Stack, eventually, unique_project};

const TIMEOUT: Duration = Duration::from_secs(90);

fn id(s: &str) -> TableId {
    s.parse().expect("a valid table id")
}

/// A load table `dataset.name` of `toml`, as `dataset/name.load.toml` would define it.
fn load_table(name: &str, toml: &str) -> Table {
    let table = id(name);
    let defaults = Defaults {
        dataset: Some(table.dataset().into()),
        ..Defaults::default()
    };
    parse_load_file(
        &format!("{}/{}.load.toml", table.dataset(), table.table()),
        table.table(),
        toml,
        &defaults,
    )
    .expect("a valid load file")
}

const PAYMENTS: &str = r#"
columns = ["id INT64 NOT NULL", "customer STRING", "amount NUMERIC"]
[csv]
skip_leading_rows = 1
"#;

fn payments(batch: &str) -> String {
    format!("{PAYMENTS}\n[batch]\n{batch}\n")
}

/// A CSV file of payments `ids`, each of 1.50 by `customer`.
fn csv(ids: std::ops::Range<i64>, customer: &str) -> String {
    let mut text = String::from("id,customer,amount\n");
    for i in ids {
        text.push_str(&format!("{i},{customer},1.50\n"));
    }
    text
}

async fn storage(baton: &Baton) -> anyhow::Result<Storage> {
    Ok(Storage::new(&baton.gcp, None)?)
}

/// Drops a file into the landing bucket, as another tool would.
async fn land(baton: &Baton, name: &str, body: String) -> anyhow::Result<()> {
    let bucket = format!("{}-landing", baton.project);
    storage(baton)
        .await?
        .upload(&bucket, name, "text/csv", body.into())
        .await?;
    Ok(())
}

async fn status(baton: &Baton, table: &str) -> anyhow::Result<LoadStatus> {
    Ok(baton.client.loads(&id(table)).await?)
}

/// Waits until `files` files of `table` are claimed and waiting.
async fn waiting(baton: &Baton, table: &str, files: usize) -> anyhow::Result<()> {
    eventually(
        &format!("{files} file(s) of {table} waiting"),
        TIMEOUT,
        || async { Ok((status(baton, table).await?.waiting_files == files).then_some(())) },
    )
    .await
}

/// Waits until `table` has `loads` ended loads; its status then.
async fn loaded(baton: &Baton, table: &str, loads: usize) -> anyhow::Result<LoadStatus> {
    eventually(&format!("{loads} load(s) of {table}"), TIMEOUT, || async {
        let status = status(baton, table).await?;
        Ok((status.summary.last.len() >= loads && status.loading.is_empty()).then_some(status))
    })
    .await
}

/// The batch a status's latest load was.
async fn latest_batch(baton: &Baton, table: &str, status: &LoadStatus) -> anyhow::Result<Batch> {
    let record = status.summary.last.first().expect("a load");
    baton
        .store
        .batch(&id(table), &record.batch)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no batch {}", record.batch))
}

fn file_names(batch: &Batch) -> Vec<String> {
    let mut names: Vec<String> = batch
        .files
        .iter()
        .map(|f| f.name.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

async fn rows(baton: &Baton, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
    Ok(baton
        .warehouse
        .query_rows(&sql.replace("{p}", &baton.project))
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_the_cli_is_loaded_and_its_query_table_reads_it()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "load-cli", Options::default().landing()).await?;
    let totals = Table {
        frequency: Some("nightly".into()),
        ..Table::query(
            &id("analytics.paid"),
            "SELECT customer, SUM(amount) AS paid FROM shop.payments GROUP BY customer",
        )
    };
    let applied = baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("nightly", 86_400)],
            tables: vec![
                load_table(
                    "shop.payments",
                    &format!("expiration = \"30d\"\n{}", payments("files = 1")),
                ),
                totals,
            ],
        })
        .await?;
    assert_eq!(
        applied.dependencies[&id("analytics.paid")],
        vec![id("shop.payments")],
        "{applied:?}"
    );
    // Its declared columns make it at once, empty, so that its readers run before any file.
    let columns = eventually("shop.payments made", TIMEOUT, || async {
        // local-bigquery may show a table being created without its columns for a moment.
        let columns = baton.warehouse.schema(&id("shop.payments")).await?;
        Ok(columns.filter(|c| !c.is_empty()))
    })
    .await?;
    assert_eq!(
        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["id", "customer", "amount"]
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.shop.payments`").await?,
        vec![vec![json!("0")]]
    );

    let file = baton.log_dir.join("payments-2026-12-01.csv");
    std::fs::write(&file, csv(1..4, "ana"))?;
    let said = baton
        .run_cli(&["upload", file.to_str().unwrap(), "--table", "shop.payments"])
        .await?;
    assert!(
        said.contains(&format!("gs://{}-landing/shop/payments/", baton.project))
            && said.contains("payments-2026-12-01.csv"),
        "{said}"
    );

    let status = loaded(&baton, "shop.payments", 1).await?;
    let load = &status.summary.last[0];
    assert_eq!(load.state, BatchState::Loaded, "{load:?}");
    assert_eq!((load.files, load.rows), (1, Some(3)), "{load:?}");
    assert_eq!(load.trigger, Trigger::Files);
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), SUM(amount) FROM `{p}.shop.payments`"
        )
        .await?,
        vec![vec![json!("3"), json!("4.5")]]
    );
    // Its expiration is renewed by the load.
    let expires: i64 = baton
        .warehouse
        .table(&id("shop.payments"))
        .await?
        .and_then(|t| t.expiration_time)
        .and_then(|t| t.parse().ok())
        .expect("the table expires");
    let in_days = (expires / 1000 - jiff::Timestamp::now().as_second()) / 86_400;
    assert!((29..=30).contains(&in_days), "{in_days} days");

    // The query table that reads it runs in its frequency's run, after the load.
    let run = baton
        .client
        .start_run(&baton_service::api::StartRunRequest {
            frequency: Some("nightly".into()),
            ..Default::default()
        })
        .await?;
    let run = baton.wait_for_run(&run.run.id, TIMEOUT).await?;
    assert_eq!(
        run.run.state,
        baton_core::state::RunState::Succeeded,
        "{run:?}"
    );
    assert_eq!(
        rows(&baton, "SELECT customer, paid FROM `{p}.analytics.paid`").await?,
        vec![vec![json!("ana"), json!("4.5")]]
    );

    let shown = baton.run_cli(&["loads", "shop.payments"]).await?;
    assert!(
        shown.contains("loaded   1 file(s), 3 rows") && shown.contains("files"),
        "{shown}"
    );
    baton.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_batched_by_count_by_bytes_by_age_and_by_force() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "load-batch", Options::default().landing()).await?;
    let never = "files = 100\nbytes = \"1 GiB\"\nage = \"1h\"";
    baton
        .apply(CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![
                load_table("in.by_count", &payments("files = 3\nage = \"1h\"")),
                load_table("in.by_bytes", &payments("bytes = 200\nage = \"1h\"")),
                load_table("in.by_age", &payments("age = \"2m\"")),
                load_table("in.by_force", &payments(never)),
            ],
        })
        .await?;

    // By count: two files wait, the third makes the batch.
    land(&baton, "in/by_count/a.csv", csv(1..3, "a")).await?;
    land(&baton, "in/by_count/b.csv", csv(3..5, "b")).await?;
    waiting(&baton, "in.by_count", 2).await?;
    assert!(status(&baton, "in.by_count").await?.summary.last.is_empty());
    land(&baton, "in/by_count/c.csv", csv(5..7, "c")).await?;
    let status_now = loaded(&baton, "in.by_count", 1).await?;
    let batch = latest_batch(&baton, "in.by_count", &status_now).await?;
    assert_eq!(file_names(&batch), ["a.csv", "b.csv", "c.csv"]);
    assert_eq!((batch.trigger, batch.rows), (Trigger::Files, Some(6)));

    // By bytes: a small file waits; a large one brings the waiting bytes past 200.
    land(&baton, "in/by_bytes/small.csv", csv(1..2, "s")).await?;
    waiting(&baton, "in.by_bytes", 1).await?;
    land(&baton, "in/by_bytes/large.csv", csv(2..20, "large")).await?;
    let status_now = loaded(&baton, "in.by_bytes", 1).await?;
    let batch = latest_batch(&baton, "in.by_bytes", &status_now).await?;
    assert_eq!(file_names(&batch), ["large.csv", "small.csv"]);
    assert_eq!(batch.trigger, Trigger::Bytes);

    // By age: the tick finds the file waited two minutes.
    land(&baton, "in/by_age/old.csv", csv(1..2, "o")).await?;
    waiting(&baton, "in.by_age", 1).await?;
    let report = baton.tick().await?;
    assert!(
        report.get("loads").is_none(),
        "nothing is due yet: {report}"
    );
    let later = jiff::Timestamp::now() + Duration::from_secs(150);
    let report = baton.tick_at(later).await?;
    assert_eq!(
        report["loads"],
        json!([{"table": "in.by_age", "considered": true}]),
        "{report}"
    );
    let status_now = loaded(&baton, "in.by_age", 1).await?;
    let batch = latest_batch(&baton, "in.by_age", &status_now).await?;
    assert_eq!(
        (file_names(&batch), batch.trigger),
        (vec!["old.csv".to_string()], Trigger::Age)
    );

    // By force, from the CLI.
    land(&baton, "in/by_force/x.csv", csv(1..3, "x")).await?;
    land(&baton, "in/by_force/y.csv", csv(3..4, "y")).await?;
    waiting(&baton, "in.by_force", 2).await?;
    let said = baton.run_cli(&["load", "--force", "in.by_force"]).await?;
    assert!(said.contains("2 file(s)"), "{said}");
    let status_now = loaded(&baton, "in.by_force", 1).await?;
    let batch = latest_batch(&baton, "in.by_force", &status_now).await?;
    assert_eq!(
        (file_names(&batch), batch.trigger, batch.rows),
        (
            vec!["x.csv".to_string(), "y.csv".to_string()],
            Trigger::Force,
            Some(3)
        )
    );
    assert_eq!(status_now.waiting_files, 0);

    // Files outside every prefix are left alone.
    land(&baton, "elsewhere/z.csv", csv(1..2, "z")).await?;
    baton.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_a_killed_importer_and_a_lost_load_still_load_every_file_once()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "load-once", Options::default().landing()).await?;
    baton
        .apply(CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![
                load_table("in.twice", &payments("files = 4")),
                load_table("in.lost", &payments("files = 2")),
            ],
        })
        .await?;

    // Every notification and every load delivered twice at once, to two deliveries racing.
    baton.relays.storage.duplicate(true);
    baton.relays.importer.duplicate(true);
    for (k, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let first = k as i64 * 10;
        land(
            &baton,
            &format!("in/twice/{name}.csv"),
            csv(first..first + 10, name),
        )
        .await?;
    }
    let status_now = loaded(&baton, "in.twice", 1).await?;
    assert_eq!(status_now.summary.last.len(), 1, "{status_now:?}");
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM `{p}.in.twice`"
        )
        .await?,
        vec![vec![json!("40"), json!("40")]]
    );
    let loads: Vec<String> = baton
        .warehouse
        .job_ids()
        .await?
        .into_iter()
        .filter(|j| j.starts_with("baton-load_in_twice_"))
        .collect();
    assert_eq!(loads.len(), 1, "one load job: {loads:?}");
    baton.relays.storage.duplicate(false);
    baton.relays.importer.duplicate(false);

    // A batch formed, its load message lost and the importer killed: the tick's sweep sends
    // the load again once it is late, and the restarted importer loads it once.
    baton
        .relays
        .importer
        .hold_where(|payload| payload["event"] == "load");
    land(&baton, "in/lost/a.csv", csv(1..3, "a")).await?;
    land(&baton, "in/lost/b.csv", csv(3..5, "b")).await?;
    eventually("the held load", TIMEOUT, || async {
        Ok((baton.relays.importer.held() == 1).then_some(()))
    })
    .await?;
    let status_now = status(&baton, "in.lost").await?;
    assert_eq!(
        (status_now.loading.len(), status_now.waiting_files),
        (1, 0),
        "{status_now:?}"
    );
    baton.kill("importer")?;
    baton.restart("importer")?;
    let report = baton.tick().await?;
    assert!(report.get("loads").is_none(), "not late yet: {report}");
    let late = jiff::Timestamp::now() + Duration::from_secs(16 * 60);
    // The held message stays held; the sweep's is a new one.
    baton.relays.importer.hold_where(|_| false);
    let report = baton.tick_at(late).await?;
    let resent = &report["loads"][0]["resent"];
    assert_eq!(resent.as_array().map(Vec::len), Some(1), "{report}");
    loaded(&baton, "in.lost", 1).await?;
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.in.lost`").await?,
        vec![vec![json!("4")]]
    );
    // The lost message, delivered at last, finds the batch loaded.
    baton.relays.importer.release().await?;
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.in.lost`").await?,
        vec![vec![json!("4")]]
    );
    let files = baton
        .store
        .files_in_state(&id("in.lost"), FileState::Loaded, 10)
        .await?;
    assert_eq!(files.len(), 2);
    baton.stop();
    Ok(())
}

/// An object of the stack's Cloud Storage, whole.
async fn object(stack: &Stack, uri: &str) -> anyhow::Result<String> {
    let (bucket, name) = uri
        .strip_prefix("gs://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| anyhow::anyhow!("{uri} is not gs://bucket/name"))?;
    let mut url = url::Url::parse(stack.var("STORAGE_EMULATOR_HOST")?)?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("not a base URL"))?
        .extend(["storage", "v1", "b", bucket, "o", name]);
    url.query_pairs_mut().append_pair("alt", "media");
    Ok(reqwest::get(url).await?.error_for_status()?.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_are_kept_under_the_limit_and_over_it_the_file_is_held_until_forced()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "load-bad", Options::default().landing()).await?;
    let table = |limit: u32| {
        load_table(
            "in.bad",
            &format!("max_bad_records = {limit}\n{}", payments("files = 1")),
        )
    };
    baton
        .apply(CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![table(1)],
        })
        .await?;

    // One bad row of three, under the limit: two rows loaded, the bad one kept.
    land(
        &baton,
        "in/bad/one.csv",
        "id,customer,amount\n1,a,1.50\nnot-a-number,b,2.00\n3,c,3.00\n".into(),
    )
    .await?;
    let status_now = loaded(&baton, "in.bad", 1).await?;
    let load = &status_now.summary.last[0];
    assert_eq!(load.state, BatchState::Loaded, "{load:?}");
    assert_eq!(
        (load.rows, load.bad_records),
        (Some(2), Some(1)),
        "{load:?}"
    );
    // BigQuery lists each skipped row's error (its file and position), which the importer
    // keeps; local-bigquery counts the rows but lists none, so the file's content is checked
    // by the adapter's test of a recorded BigQuery job, and here only where it is written.
    if let Some(rejects) = &load.rejects {
        assert!(
            rejects.starts_with(&format!("gs://{}-staging/rejects/in.bad/", baton.project)),
            "{rejects}"
        );
        assert!(object(&stack, rejects).await?.contains("one.csv"));
    }

    // Two bad rows, over the limit: the load fails with BigQuery's reason, the file is held.
    land(
        &baton,
        "in/bad/two.csv",
        "id,customer,amount\nx,a,1.50\ny,b,2.00\n5,c,3.00\n".into(),
    )
    .await?;
    let status_now = loaded(&baton, "in.bad", 2).await?;
    let load = &status_now.summary.last[0];
    assert_eq!(load.state, BatchState::Failed, "{load:?}");
    assert!(!load.errors.is_empty(), "{load:?}");
    println!("errors: {:?}", load.errors);
    assert_eq!(
        (status_now.held_files, status_now.waiting_files),
        (1, 0),
        "{status_now:?}"
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.in.bad`").await?,
        vec![vec![json!("2")]]
    );

    // The limit raised, a force loads the held file: its batch's second try.
    baton
        .apply(CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![table(5)],
        })
        .await?;
    baton.run_cli(&["load", "--force", "in.bad"]).await?;
    let status_now = eventually("the held file loaded", TIMEOUT, || async {
        let s = status(&baton, "in.bad").await?;
        Ok((s.summary.last.len() == 3 && s.loading.is_empty()).then_some(s))
    })
    .await?;
    let load = &status_now.summary.last[0];
    assert_eq!(
        (load.state, load.trigger, load.rows, load.bad_records),
        (BatchState::Loaded, Trigger::Force, Some(1), Some(2)),
        "{load:?}"
    );
    let batch = latest_batch(&baton, "in.bad", &status_now).await?;
    assert_eq!(batch.try_number, 2);
    assert_eq!(status_now.held_files, 0);
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.in.bad`").await?,
        vec![vec![json!("3")]]
    );
    baton.stop();
    Ok(())
}

/// The status of a load table is read in one snapshot: a batch that ends between two of its
/// reads is seen either still loading with its file batched, or ended with its file held,
/// never ended with its file in neither state (which the CLI would show as a lost file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_read_while_a_batch_ends_agrees_with_itself() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let store = Store::connect(&stack.gcp(&unique_project("load-snapshot"))?).await?;
    let table = id("in.snap");
    let now = jiff::Timestamp::now();
    let file = LandedFile {
        table: table.clone(),
        bucket: "landing".into(),
        name: "in/snap/one.csv".into(),
        generation: "1".into(),
        size: 10,
        arrived: now,
        state: FileState::Waiting,
        batch: None,
    };
    assert!(store.claim_file(&file).await?);
    let batch = store
        .form_batch(&table, "landing", &[file], Trigger::Files, now)
        .await?
        .expect("a batch of the waiting file");

    let (table, writer) = (&table, &store);
    let (before, after) = store
        .snapshot(|view| async move {
            let before = (
                view.files_tally(table, FileState::Batched).await?.files,
                view.open_batches(table).await?.len(),
            );
            // The load fails and the batch ends, outside the snapshot, between two reads.
            let failed = Batch {
                state: BatchState::Failed,
                errors: vec!["invalid: too many errors".into()],
                ended: Some(now),
                ..batch.clone()
            };
            writer.end_batch(&failed).await?;
            let after = (
                view.files_tally(table, FileState::Batched).await?.files,
                view.files_tally(table, FileState::Held).await?.files,
                view.open_batches(table).await?.len(),
                view.load_summary(table).await?.last.len(),
            );
            Ok((before, after))
        })
        .await?;
    assert_eq!(before, (1, 1), "batched files and open batches");
    assert_eq!(
        after,
        (1, 0, 1, 0),
        "batched, held, open batches and loads ended, as the snapshot began"
    );
    // Read again, the batch has ended and its file is held.
    assert_eq!(store.files_tally(table, FileState::Held).await?.files, 1);
    assert!(store.open_batches(table).await?.is_empty());
    assert_eq!(store.load_summary(table).await?.last.len(), 1);
    Ok(())
}

/// A table's columns as BigQuery holds them: `id INTEGER`, `note STRING`.
async fn table_columns(baton: &Baton, table: &str) -> anyhow::Result<Vec<String>> {
    Ok(baton
        .warehouse
        .schema(&id(table))
        .await?
        .unwrap_or_default()
        .iter()
        .map(|f| format!("{} {}", f.name, f.column().field_type))
        .collect())
}

/// The load configuration BigQuery (local-bigquery) keeps for a job.
async fn load_configuration(stack: &Stack, baton: &Baton, job_id: &str) -> anyhow::Result<Value> {
    let url = format!(
        "{}/bigquery/v2/projects/{}/jobs/{job_id}",
        stack.var("BIGQUERY_EMULATOR_HOST")?,
        baton.project
    );
    let job: Value = reqwest::get(url).await?.error_for_status()?.json().await?;
    Ok(job["configuration"]["load"].clone())
}

/// Waits for `table`'s `loads`-th load and answers it, with its batch.
async fn nth_load(
    baton: &Baton,
    table: &str,
    loads: usize,
) -> anyhow::Result<(baton_core::loads::LoadRecord, Batch)> {
    let status = loaded(baton, table, loads).await?;
    let batch = latest_batch(baton, table, &status).await?;
    Ok((status.summary.last[0].clone(), batch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detected_columns_are_kept_and_a_file_whose_columns_do_not_fit_is_held_naming_both()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "load-columns", Options::default().landing()).await?;
    let events = |new_columns: &str| {
        load_table(
            "shop.events",
            &format!(
                "new_columns = \"{new_columns}\"\n[csv]\nskip_leading_rows = 1\n[batch]\nfiles = 1\n"
            ),
        )
    };
    let clicks = load_table(
        "shop.clicks",
        "format = \"ndjson\"\ncolumns = [\"id INT64 NOT NULL\", \"page STRING\"]\n[batch]\nfiles = 1\n",
    );
    let catalog = |new_columns: &str| CatalogSpec {
        frequencies: Vec::new(),
        tables: vec![events(new_columns), clicks.clone()],
    };
    baton.apply(catalog("refuse")).await?;

    // The first file's columns are detected; the next file is loaded with them, not detected.
    land(
        &baton,
        "shop/events/1.csv",
        "id,amount\n1,1.5\n2,2.5\n".into(),
    )
    .await?;
    let (load, batch) = nth_load(&baton, "shop.events", 1).await?;
    assert_eq!(
        (load.state, load.rows),
        (BatchState::Loaded, Some(2)),
        "{load:?}"
    );
    assert_eq!(
        load_configuration(&stack, &baton, &batch.job_id()).await?["autodetect"],
        json!(true)
    );
    assert_eq!(
        table_columns(&baton, "shop.events").await?,
        ["id INTEGER", "amount FLOAT"]
    );
    land(&baton, "shop/events/2.csv", "id,amount\n3,\n".into()).await?;
    let (load, batch) = nth_load(&baton, "shop.events", 2).await?;
    assert_eq!(
        (load.state, load.rows),
        (BatchState::Loaded, Some(1)),
        "{load:?}"
    );
    let configuration = load_configuration(&stack, &baton, &batch.job_id()).await?;
    assert_eq!(configuration["autodetect"], Value::Null, "{configuration}");
    assert_eq!(
        configuration["schema"]["fields"]
            .as_array()
            .map(|f| f.iter().map(|f| f["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("id"), json!("amount")]),
        "{configuration}"
    );
    assert_eq!(
        configuration["schemaUpdateOptions"],
        Value::Null,
        "the table takes no new columns: {configuration}"
    );

    // A new column, which the table does not take: held, naming the file's columns and the
    // table's, and no load job started.
    land(
        &baton,
        "shop/events/3.csv",
        "id,amount,note\n4,1.0,hi\n".into(),
    )
    .await?;
    let (load, batch) = nth_load(&baton, "shop.events", 3).await?;
    assert_eq!(load.state, BatchState::Failed, "{load:?}");
    assert_eq!(load.errors.len(), 1, "{load:?}");
    let error = &load.errors[0];
    assert!(
        error.contains(
            "shop/events/3.csv: its columns (id, amount, note) add `note` to the \
                        table's (id INTEGER, amount FLOAT)"
        ) && error.contains("new_columns = \"add\""),
        "{error}"
    );
    assert!(
        load_configuration(&stack, &baton, &batch.job_id())
            .await
            .is_err(),
        "no load job for a batch whose columns do not fit"
    );
    assert_eq!(status(&baton, "shop.events").await?.held_files, 1);
    assert_eq!(
        table_columns(&baton, "shop.events").await?,
        ["id INTEGER", "amount FLOAT"]
    );

    // Once the table takes new columns, a force loads the held file and adds its column.
    baton.apply(catalog("add")).await?;
    baton.run_cli(&["load", "--force", "shop.events"]).await?;
    let (load, batch) = nth_load(&baton, "shop.events", 4).await?;
    assert_eq!(
        (load.state, load.rows),
        (BatchState::Loaded, Some(1)),
        "{load:?}"
    );
    assert_eq!(file_names(&batch), ["3.csv"]);
    assert_eq!(
        table_columns(&baton, "shop.events").await?,
        ["id INTEGER", "amount FLOAT", "note STRING"]
    );
    assert_eq!(
        rows(&baton, "SELECT id, note FROM `{p}.shop.events` ORDER BY id").await?,
        vec![
            vec![json!("1"), Value::Null],
            vec![json!("2"), Value::Null],
            vec![json!("3"), Value::Null],
            vec![json!("4"), json!("hi")],
        ]
    );

    // Columns in another order never fit a CSV's table, whose columns are read by position.
    land(
        &baton,
        "shop/events/5.csv",
        "amount,id,note\n1.0,5,x\n".into(),
    )
    .await?;
    let (load, _) = nth_load(&baton, "shop.events", 5).await?;
    assert_eq!(load.state, BatchState::Failed, "{load:?}");
    assert!(
        load.errors[0].contains(
            "its columns (amount, id, note) do not fit the table's (id INTEGER, amount FLOAT, \
             note STRING): column 1 is `amount` in the file and `id` in the table"
        ),
        "{load:?}"
    );

    // NDJSON is read by name: any order fits; a record without a required column, or with a
    // column `columns` does not list, does not.
    land(
        &baton,
        "shop/clicks/1.json",
        "{\"page\": \"/\", \"id\": 1}\n{\"id\": 2, \"page\": \"/x\"}\n".into(),
    )
    .await?;
    let (load, _) = nth_load(&baton, "shop.clicks", 1).await?;
    assert_eq!(
        (load.state, load.rows),
        (BatchState::Loaded, Some(2)),
        "{load:?}"
    );
    land(&baton, "shop/clicks/2.json", "{\"page\": \"/y\"}\n".into()).await?;
    let (load, _) = nth_load(&baton, "shop.clicks", 2).await?;
    assert!(
        load.state == BatchState::Failed
            && load.errors[0].contains(
                "its columns (page) do not fit the table's (id INTEGER NOT NULL, page STRING): \
                 its first record lacks `id`, which the table requires"
            ),
        "{load:?}"
    );
    land(
        &baton,
        "shop/clicks/3.json",
        "{\"id\": 3, \"page\": \"/\", \"referrer\": \"g\"}\n".into(),
    )
    .await?;
    let (load, _) = nth_load(&baton, "shop.clicks", 3).await?;
    assert!(
        load.state == BatchState::Failed
            && load.errors[0].contains("add `referrer`, not among the table's `columns`"),
        "{load:?}"
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM `{p}.shop.clicks`").await?,
        vec![vec![json!("2")]]
    );
    baton.stop();
    Ok(())
}

/// Runs a job on local-bigquery (which answers when it has ended) and checks it succeeded;
/// tried again when local-bigquery fails it for another test's concurrent work (README,
/// Limits: "Conflict on update!", "Failed to commit DuckLake transaction").
async fn bigquery_job(stack: &Stack, baton: &Baton, configuration: Value) -> anyhow::Result<()> {
    let url = format!(
        "{}/bigquery/v2/projects/{}/jobs",
        stack.var("BIGQUERY_EMULATOR_HOST")?,
        baton.project
    );
    let mut last = Value::Null;
    for _ in 0..5 {
        last = reqwest::Client::new()
            .post(&url)
            .json(&json!({ "configuration": configuration }))
            .send()
            .await?
            .json()
            .await?;
        if last["status"]["state"] == "DONE" && last["status"]["errorResult"].is_null() {
            return Ok(());
        }
        let text = last.to_string();
        if !(text.contains("Conflict") || text.contains("DuckLake")) {
            break;
        }
    }
    anyhow::bail!("the job failed: {last}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_and_avro_files_bring_their_columns_and_new_ones_only_when_the_table_takes_them()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let mut baton = Baton::start_with(&stack, "load-parquet", Options::default().landing()).await?;
    let catalog = |new_columns: &str| {
        CatalogSpec {
        frequencies: Vec::new(),
        tables: ["parquet", "avro"]
            .into_iter()
            .map(|format| {
                load_table(
                    &format!("files.{format}"),
                    &format!(
                        "format = \"{format}\"\nnew_columns = \"{new_columns}\"\n[batch]\nfiles = 1\n"
                    ),
                )
            })
            .collect(),
    }
    };
    baton.apply(catalog("refuse")).await?;

    // The files are BigQuery's own extracts (local-bigquery writes both formats) of two
    // tables, the second with a column more, written under the load tables' prefixes.
    let project = baton.project.clone();
    let landing = format!("{project}-landing");
    baton.warehouse.ensure_dataset("sources").await?;
    for (source, sql) in [
        ("first", "SELECT 1 AS id, 'a' AS name"),
        ("second", "SELECT 2 AS id, 'b' AS name, 3.5 AS score"),
    ] {
        bigquery_job(
            &stack,
            &baton,
            json!({ "query": {
                "query": sql,
                "useLegacySql": false,
                "destinationTable": { "projectId": project, "datasetId": "sources", "tableId": source },
                "createDisposition": "CREATE_IF_NEEDED",
                "writeDisposition": "WRITE_TRUNCATE",
            }}),
        )
        .await?;
    }
    let extract = |source: &'static str, format: &'static str| {
        let (stack, baton) = (&stack, &baton);
        let (project, landing) = (project.clone(), landing.clone());
        async move {
            bigquery_job(
                stack,
                baton,
                json!({ "extract": {
                    "sourceTable": { "projectId": project, "datasetId": "sources", "tableId": source },
                    "destinationUris": [format!("gs://{landing}/files/{format}/{source}-*.{format}")],
                    "destinationFormat": format.to_uppercase(),
                }}),
            )
            .await
        }
    };

    for format in ["parquet", "avro"] {
        let table: &'static str = if format == "parquet" {
            "files.parquet"
        } else {
            "files.avro"
        };
        extract("first", format).await?;
        let (load, _) = nth_load(&baton, table, 1).await?;
        assert_eq!(
            (load.state, load.rows),
            (BatchState::Loaded, Some(1)),
            "{format}: {load:?}"
        );
        assert_eq!(
            table_columns(&baton, table).await?,
            ["id INTEGER", "name STRING"],
            "{format}"
        );

        // A column more, which the table does not take: BigQuery refuses the load, and the
        // failure names the table's columns beside BigQuery's message.
        extract("second", format).await?;
        let (load, _) = nth_load(&baton, table, 2).await?;
        assert_eq!(load.state, BatchState::Failed, "{format}: {load:?}");
        let errors = load.errors.join("\n");
        assert!(
            errors.contains("Cannot add fields (field: score)")
                && errors.contains("the table's columns: id INTEGER, name STRING"),
            "{format}: {errors}"
        );
        assert_eq!(
            table_columns(&baton, table).await?,
            ["id INTEGER", "name STRING"],
            "{format}"
        );
    }

    // Once the tables take new columns, a force loads the held files and adds the column.
    baton.apply(catalog("add")).await?;
    for table in ["files.parquet", "files.avro"] {
        baton.run_cli(&["load", "--force", table]).await?;
        let (load, _) = nth_load(&baton, table, 3).await?;
        assert_eq!(
            (load.state, load.rows),
            (BatchState::Loaded, Some(1)),
            "{table}: {load:?}"
        );
        assert_eq!(
            table_columns(&baton, table).await?,
            ["id INTEGER", "name STRING", "score FLOAT"],
            "{table}"
        );
        assert_eq!(
            rows(
                &baton,
                &format!("SELECT id, score FROM `{{p}}.{table}` ORDER BY id")
            )
            .await?,
            vec![
                vec![json!("1"), Value::Null],
                vec![json!("2"), json!("3.5")]
            ]
        );
    }
    baton.stop();
    Ok(())
}
