//! The first run, end to end: the example catalog loaded through the `baton` command and the
//! API, a run created by the tick, planned and dispatched by the planner, executed on
//! local-bigquery by the executor, every service a real process on the real emulators.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_core::ids::scheduled_run_id;
use baton_core::schedule::Schedule;
use baton_core::state::{JobState, RunState};
use baton_tests::{Baton, Options, Stack, repo_root};

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_builds_every_table_after_its_parents() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start_with(&stack, "first-run", Options::default().landing()).await?;
    baton.shop_database(&stack).await?;

    // 1. The catalog, through the CLI and the API; dependencies come from the SQL.
    let catalog = repo_root().join("tests/catalogs/shop");
    let output = baton
        .cli()
        .arg("apply")
        .arg("--yes")
        .arg(&catalog)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "baton apply failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("analytics.customer_totals  ← shop.customers, shop.orders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("8 created, 0 updated, 0 deleted, 0 unchanged"),
        "{stdout}"
    );
    let stored = baton.client.catalog().await?;
    let parents: BTreeMap<String, Vec<String>> = stored
        .tables
        .iter()
        .map(|t| {
            (
                t.id.to_string(),
                t.parents.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(
        parents["analytics.top_customers"],
        ["analytics.customer_totals"]
    );
    assert!(parents["analytics.calendar"].is_empty());

    // The refunds, a file uploaded through the CLI, loaded before the run reads them.
    let (said, load) = baton.shop_refunds().await?;
    assert!(said.contains("/shop/refunds/"), "{said}");
    assert_eq!(
        (load.state, load.files, load.rows),
        (baton_core::loads::BatchState::Loaded, 1, Some(2)),
        "{load:?}"
    );

    // 2. The tick creates the run of the latest scheduled instant; a second tick creates none.
    let report = baton.tick().await?;
    let at: jiff::Timestamp = report["at"].as_str().unwrap().parse()?;
    let daily = Schedule::period(86_400, 7_200)?;
    let run_id = scheduled_run_id("daily", daily.latest(at).unwrap());
    assert_eq!(report["runs"][0]["run_id"], run_id.as_str(), "{report}");
    assert_eq!(report["runs"][0]["outcome"], "created", "{report}");
    let again = baton.tick().await?;
    assert_eq!(again["runs"][0]["run_id"], run_id.as_str());
    assert_eq!(again["runs"][0]["outcome"], "exists", "{again}");

    // 3-5. Planned, dispatched and executed to the end.
    let done = baton.wait_for_run(&run_id, RUN_TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    // The load table is loaded as its files arrive, not in runs.
    assert_eq!(done.run.job_count, 6);
    assert!(done.run.planned_at.is_some() && done.run.finished_at.is_some());
    let summary = done
        .run
        .summary
        .as_ref()
        .expect("a closed run has a summary");
    assert_eq!(
        (summary.succeeded, summary.failed, summary.skipped),
        (6, 0, 0)
    );
    assert_eq!(
        baton.client.runs(10).await?.runs.len(),
        1,
        "two ticks, one run"
    );

    let jobs: BTreeMap<String, _> = done.jobs.iter().map(|j| (j.table.to_string(), j)).collect();
    for job in jobs.values() {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        let bigquery_job = job.bigquery_job_id.as_deref().unwrap_or_default();
        assert!(
            bigquery_job.starts_with(&format!("baton_{run_id}_")),
            "{job:?}"
        );
        let started = job.started_at.expect("a succeeded job started");
        let finished = job.finished_at.expect("a succeeded job finished");
        assert!(started <= finished);
        // No child started before its parents finished.
        for parent in &job.parents {
            let parent_finished = jobs[&parent.to_string()].finished_at.unwrap();
            assert!(
                parent_finished <= job.dispatched_at.unwrap() && parent_finished <= started,
                "{} started at {started} before its parent {parent} finished at {parent_finished}",
                job.table
            );
        }
    }
    // A job's priority is how many jobs of the run descend from it.
    assert_eq!(jobs["analytics.customer_totals"].priority, 2);
    assert_eq!(jobs["shop.orders"].priority, 3);
    let rows: BTreeMap<&str, i64> = jobs
        .iter()
        .map(|(t, j)| {
            (
                t.as_str(),
                j.statistics.as_ref().unwrap().destination_rows.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        BTreeMap::from([
            ("analytics.calendar", 31),
            ("analytics.customer_totals", 3),
            ("analytics.net_revenue", 3),
            ("analytics.top_customers", 2),
            ("shop.customers", 3),
            ("shop.orders", 5),
        ])
    );

    // The destination tables hold what their SQL produces.
    let project = &baton.project;
    let totals = baton
        .warehouse
        .query_rows(&format!(
            "SELECT name, orders, revenue FROM `{project}.analytics.customer_totals` ORDER BY name"
        ))
        .await?;
    assert_eq!(
        serde_json::to_value(&totals)?,
        serde_json::json!([
            ["ana", "2", "42.5"],
            ["bo", "2", "100.0"],
            ["cy", "1", "5.0"]
        ])
    );
    let top = baton
        .warehouse
        .query_rows(&format!(
            "SELECT name, position FROM `{project}.analytics.top_customers` ORDER BY position"
        ))
        .await?;
    assert_eq!(
        serde_json::to_value(&top)?,
        serde_json::json!([["bo", "1"], ["ana", "2"]])
    );
    let net = baton
        .warehouse
        .query_rows(&format!(
            "SELECT name, net_revenue FROM `{project}.analytics.net_revenue` ORDER BY name"
        ))
        .await?;
    assert_eq!(
        serde_json::to_value(&net)?,
        serde_json::json!([["ana", "30.0"], ["bo", "60.0"], ["cy", "5.0"]])
    );
    Ok(())
}
