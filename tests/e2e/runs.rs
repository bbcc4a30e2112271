//! Runs end to end, on the local stack with every service a real process: frozen plans and
//! their order, the concurrency cap, failure isolation, resume and cancel, the tick's rules,
//! manual runs and backfills. Pub/Sub's liberties (duplicates, deliveries held back and then
//! made at once) are taken on purpose through the harness's relays.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use baton_cli::ClientError;
use baton_core::catalog::{CatalogSpec, Frequency, Table, TableId, WriteMode};
use baton_core::ids::{bigquery_job_id, scheduled_run_id};
use baton_core::messages::{ExecutorTask, PlannerEvent};
use baton_core::ports::WarehousePort;
use baton_core::run::{BackfillState, Job, Trigger};
use baton_core::schedule::Condition;
use baton_core::state::{JobState, RunState};
use baton_service::api::{BackfillRequest, RunResponse, StartRunRequest};
use baton_tests::{Baton, Options, Stack, eventually};

const TIMEOUT: Duration = Duration::from_secs(120);

fn id(s: &str) -> TableId {
    s.parse().expect("a valid table id")
}

fn table(name: &str, frequency: &str, sql: &str) -> Table {
    Table {
        frequency: Some(frequency.to_string()),
        ..Table::query(&id(name), sql)
    }
}

fn every(name: &str, seconds: i64, concurrency: Option<u32>) -> Frequency {
    Frequency {
        concurrency,
        ..Frequency::every(name, seconds)
    }
}

fn by_table(response: &RunResponse) -> BTreeMap<String, Job> {
    response
        .jobs
        .iter()
        .map(|j| (j.table.to_string(), j.clone()))
        .collect()
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("a valid timestamp")
}

/// Every BigQuery job of the run is one that an attempt recorded, and every attempt that
/// started one recorded it: nothing ran twice, nothing ran unrecorded.
async fn assert_one_bigquery_job_per_attempt(
    baton: &Baton,
    run: &RunResponse,
) -> anyhow::Result<Vec<String>> {
    let mut recorded: Vec<String> = Vec::new();
    for job in &run.jobs {
        recorded.extend(job.bigquery_job_id.iter().cloned());
        for previous in &job.previous_attempts {
            recorded.extend(previous.bigquery_job_id.iter().cloned());
        }
    }
    recorded.sort();
    let started = baton.bigquery_jobs(&run.run.id).await?;
    assert_eq!(
        started, recorded,
        "BigQuery's jobs against the attempts' records"
    );
    Ok(started)
}

/// The run id of a tick report's frequency.
fn run_of(report: &serde_json::Value, frequency: &str) -> (String, String) {
    let outcome = report["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["frequency"] == frequency))
        .unwrap_or_else(|| panic!("the tick reports no {frequency}: {report}"));
    (
        outcome["run_id"].as_str().unwrap_or_default().to_string(),
        outcome["outcome"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diamond_builds_each_table_once_though_every_message_is_duplicated() -> anyhow::Result<()>
{
    let stack = Stack::load()?;
    let baton = Baton::start_with(&stack, "diamond", Options::default().two_of_each()).await?;
    let relays = baton.relays.clone();
    relays.planner.duplicate(true);
    relays.executor.duplicate(true);
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("daily", 86_400, Some(4))],
            tables: vec![
                table("d.a", "daily", "SELECT 1 AS x UNION ALL SELECT 2 AS x"),
                table("d.b", "daily", "SELECT x * 10 AS x FROM d.a"),
                table("d.c", "daily", "SELECT x * 100 AS x FROM d.a"),
                table(
                    "d.d",
                    "daily",
                    "SELECT b.x + c.x AS x FROM d.b AS b JOIN d.c AS c ON b.x * 10 = c.x",
                ),
            ],
        })
        .await?;

    // The two parents of d.d finish together: the news of each is held back until both have
    // finished, then delivered at once (each twice, by the relay).
    relays.planner.hold_where(|event| {
        event["event"] == "job_finished" && (event["table"] == "d.b" || event["table"] == "d.c")
    });
    let report = baton.tick_at(at("2026-11-20T12:00:00Z")).await?;
    let (run_id, outcome) = run_of(&report, "daily");
    assert_eq!(outcome, "created");
    assert_eq!(
        run_id,
        scheduled_run_id("daily", at("2026-11-20T00:00:00Z"))
    );
    eventually("d.b and d.c finished, d.d waiting", TIMEOUT, || async {
        let run = baton.client.run(&run_id).await?;
        let jobs = by_table(&run);
        let both = ["d.b", "d.c"]
            .iter()
            .all(|t| jobs.get(*t).is_some_and(|j| j.state == JobState::Succeeded));
        assert!(!jobs.get("d.d").is_some_and(|j| j.dispatched), "{jobs:?}");
        Ok((both && relays.planner.held() >= 2).then_some(()))
    })
    .await?;
    relays.planner.release().await?;

    let done = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    let jobs = by_table(&done);
    assert_eq!(jobs.len(), 4);
    for job in jobs.values() {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    }
    let d = &jobs["d.d"];
    assert_eq!(d.parents, [id("d.b"), id("d.c")]);
    for parent in ["d.b", "d.c"] {
        assert!(jobs[parent].finished_at <= d.dispatched_at, "{d:?}");
    }
    assert!(
        matches!(
            d.dispatch_cause.as_deref(),
            Some("finished:d.b#1" | "finished:d.c#1")
        ),
        "{d:?}"
    );
    assert_eq!(jobs["d.a"].priority, 3);
    assert_eq!(jobs["d.d"].priority, 0);

    // One BigQuery job per attempt (one per table unless the emulator failed one
    // transiently), though every dispatch reached the executor twice.
    let expected = assert_one_bigquery_job_per_attempt(&baton, &done).await?;
    for job in jobs.values() {
        assert!(
            expected.contains(&bigquery_job_id(&run_id, &job.table, job.attempt)),
            "{job:?}"
        );
    }
    assert!(relays.executor.received() >= 4);
    let rows = baton
        .warehouse
        .query_rows(&format!("SELECT x FROM `{}.d.d` ORDER BY x", baton.project))
        .await?;
    assert_eq!(
        serde_json::to_value(&rows)?,
        serde_json::json!([["110"], ["220"]])
    );

    // Late redeliveries of every message, straight to the services, twice at once: all are
    // acknowledged and none changes anything.
    let mut planner_events = vec![PlannerEvent::RunCreated {
        run_id: run_id.clone(),
    }];
    let mut tasks = Vec::new();
    for job in jobs.values() {
        planner_events.push(PlannerEvent::JobFinished {
            run_id: run_id.clone(),
            table: job.table.clone(),
            attempt: job.attempt,
        });
        tasks.push(ExecutorTask::RunQuery {
            run_id: run_id.clone(),
            table: job.table.clone(),
            attempt: job.attempt,
        });
    }
    let pushes = planner_events
        .iter()
        .chain(planner_events.iter())
        .map(|e| baton.push(&baton.urls.planner, e));
    for status in futures::future::join_all(pushes).await {
        assert!(status?.is_success());
    }
    let pushes = tasks
        .iter()
        .chain(tasks.iter())
        .map(|t| baton.push(&baton.urls.executor, t));
    for status in futures::future::join_all(pushes).await {
        assert!(status?.is_success());
    }
    assert_eq!(baton.bigquery_jobs(&run_id).await?, expected);
    let after = baton.client.run(&run_id).await?;
    assert_eq!(after.run.state, RunState::Succeeded);
    assert_eq!(by_table(&after), jobs, "a redelivery changed a job");

    // A push that is not a message of the planner's is acknowledged, not retried forever.
    let status = baton
        .push(
            &baton.urls.planner,
            &serde_json::json!({"event": "no_such_event"}),
        )
        .await?;
    assert!(status.is_success(), "{status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_fan_out_keeps_to_the_cap_most_important_first() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    // Two planners and two executors, racing on Firestore as Cloud Run's instances do.
    let baton = Baton::start_with(&stack, "fan-out", Options::default().two_of_each()).await?;
    let mut tables = vec![
        table("w.root", "wide", "SELECT 1 AS x"),
        table("w.hub", "wide", "SELECT x FROM w.root"),
        table("w.hub_child_1", "wide", "SELECT x FROM w.hub"),
        table("w.hub_child_2", "wide", "SELECT x FROM w.hub"),
    ];
    for i in 0..8 {
        tables.push(table(
            &format!("w.leaf_{i}"),
            "wide",
            &format!("SELECT x + {i} AS x FROM w.root"),
        ));
    }
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("wide", 3_600, Some(2))],
            tables,
        })
        .await?;
    let started = baton
        .client
        .start_run(&StartRunRequest {
            frequency: Some("wide".into()),
            ..Default::default()
        })
        .await?;
    assert_eq!(started.run.trigger, Trigger::Manual);
    assert_eq!(started.run.concurrency, 2);
    // `baton runs follow` watches it to its end (twelve jobs two at a time take seconds).
    let mut command = baton.cli();
    command.args(["runs", "follow", &started.run.id, "--every", "0.2"]);
    let followed = tokio::task::spawn_blocking(move || command.output());
    let done = baton.wait_for_run(&started.run.id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    let followed = followed.await??;
    assert!(followed.status.success(), "{followed:?}");
    let said = String::from_utf8(followed.stdout)?;
    let counts: Vec<usize> = said
        .lines()
        .filter_map(|l| l.split("] ").nth(1)?.split('/').next()?.parse().ok())
        .collect();
    assert!(!counts.is_empty(), "no progress line: {said}");
    assert!(counts.is_sorted(), "progress went back: {said}");
    assert!(
        said.lines()
            .next()
            .unwrap_or_default()
            .starts_with(&format!("run {} ", started.run.id))
            && said.contains("/12 jobs done"),
        "{said}"
    );
    assert!(
        said.contains(&format!("run {} (wide) for ", started.run.id))
            && said.contains(": succeeded\n"),
        "no account of the run at its end: {said}"
    );
    // A second run is estimated from the first.
    let again = baton
        .client
        .start_run(&StartRunRequest {
            frequency: Some("wide".into()),
            ..Default::default()
        })
        .await?;
    // This one on a terminal (`script` gives it one): redrawn in place.
    let cli = baton.cli();
    let mut command = std::process::Command::new("script");
    command.args([
        "-qefc",
        &format!(
            "'{}' runs follow {} --every 0.2",
            cli.get_program().to_string_lossy(),
            again.run.id
        ),
        "/dev/null",
    ]);
    for (name, value) in cli.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let followed = tokio::task::spawn_blocking(move || command.output()).await??;
    let said = String::from_utf8(followed.stdout)?;
    assert!(followed.status.success(), "{said}");
    assert!(said.contains("A\x1b[J"), "not redrawn in place: {said:?}");
    assert!(
        said.contains(": succeeded\r\n"),
        "no account of the run at its end: {said:?}"
    );
    assert!(
        said.contains("(earlier runs took ") && said.contains(", median of 1)"),
        "no estimate: {said}"
    );
    let jobs = by_table(&done);
    assert_eq!(jobs.len(), 12);
    assert_eq!(jobs["w.root"].priority, 11);
    assert_eq!(jobs["w.hub"].priority, 2);

    // At no instant did more than two jobs hold a slot, and two did at once.
    let mut edges: Vec<(Timestamp, i32)> = Vec::new();
    for job in jobs.values() {
        edges.push((job.dispatched_at.expect("dispatched"), 1));
        edges.push((job.finished_at.expect("finished"), -1));
    }
    // At one instant, an end comes before a start: a slot is freed before it is taken again.
    edges.sort();
    let (mut open, mut most) = (0, 0);
    for (_, change) in edges {
        open += change;
        most = most.max(open);
    }
    assert_eq!(most, 2, "the cap is 2");

    // Among the jobs ready at once, the one with descendants went first.
    let hub = jobs["w.hub"].dispatched_at.unwrap();
    for i in 0..8 {
        let leaf = &jobs[&format!("w.leaf_{i}")];
        assert!(hub <= leaf.dispatched_at.unwrap(), "{leaf:?} before w.hub");
    }
    assert_one_bigquery_job_per_attempt(&baton, &done).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_skips_only_its_descendants_and_resume_completes_the_run() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "failure").await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("daily", 86_400, Some(3))],
            tables: vec![
                table("f.root", "daily", "SELECT 1 AS x"),
                table("f.good", "daily", "SELECT x FROM f.root"),
                table("f.good_after", "daily", "SELECT x FROM f.good"),
                table(
                    "f.bad",
                    "daily",
                    "SELECT x FROM f.root CROSS JOIN (SELECT COUNT(*) AS n FROM ext.missing)",
                ),
                table("f.bad_child", "daily", "SELECT x FROM f.bad"),
                table(
                    "f.bad_grandchild",
                    "daily",
                    "SELECT x FROM f.bad_child JOIN f.good USING (x)",
                ),
            ],
        })
        .await?;
    let report = baton.tick_at(at("2026-11-20T12:00:00Z")).await?;
    let (run_id, _) = run_of(&report, "daily");
    let failed = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(failed.run.state, RunState::Failed, "{:?}", failed.run);
    let summary = failed
        .run
        .summary
        .clone()
        .expect("an ended run has a summary");
    assert_eq!(
        (summary.succeeded, summary.failed, summary.skipped),
        (3, 1, 2)
    );
    assert_eq!(summary.failed_tables, [id("f.bad")]);
    let jobs = by_table(&failed);
    assert_eq!(jobs["f.bad"].state, JobState::Failed);
    // BigQuery's reason, as it gave it: the dataset of the missing table is not there.
    let error = jobs["f.bad"].error.clone().unwrap_or_default();
    assert!(
        error.contains("ext") && error.contains("not found"),
        "{error}"
    );
    for skipped in ["f.bad_child", "f.bad_grandchild"] {
        assert_eq!(jobs[skipped].state, JobState::Skipped, "{skipped}");
        assert_eq!(
            jobs[skipped].skipped_because,
            Some(id("f.bad")),
            "{skipped}"
        );
        assert!(jobs[skipped].bigquery_job_id.is_none());
    }
    // The independent branch ran to its end.
    for good in ["f.root", "f.good", "f.good_after"] {
        assert_eq!(jobs[good].state, JobState::Succeeded, "{good}");
    }
    // `baton runs show` says what failed and why the rest was skipped.
    let output = baton.cli().args(["runs", "show", &run_id]).output()?;
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("f.bad_grandchild"), "{shown}");
    assert!(shown.contains("f.bad"), "{shown}");
    // `baton graph --run` draws it coloured by state, with each job's duration.
    let output = baton
        .cli()
        .args(["graph", "--run", &run_id, "--format", "mermaid"])
        .output()?;
    assert!(output.status.success(), "{output:?}");
    let mermaid = String::from_utf8(output.stdout)?;
    let lines: Vec<&str> = mermaid.lines().collect();
    let node = |table: &str| {
        lines
            .iter()
            .find(|l| l.contains(&format!("[\"{table}<br/>")))
            .unwrap_or_else(|| panic!("no node for {table} in {mermaid}"))
            .to_string()
    };
    assert!(node("f.bad").ends_with(":::failed"), "{mermaid}");
    assert!(node("f.good").contains("<br/>succeeded "), "{mermaid}");
    assert!(node("f.good").ends_with(":::succeeded"), "{mermaid}");
    assert!(
        node("f.bad_child").ends_with("<br/>skipped\"]:::skipped"),
        "{mermaid}"
    );
    assert_eq!(mermaid.matches(" --> ").count(), 6, "{mermaid}");
    assert!(
        mermaid.contains("classDef failed fill:#ffd0d0"),
        "{mermaid}"
    );
    let output = baton
        .cli()
        .args([
            "graph",
            "--run",
            &run_id,
            "--format",
            "svg",
            "--around",
            "f.bad",
            "--reach",
            "descendants",
        ])
        .output()?;
    let svg = String::from_utf8(output.stdout)?;
    assert!(svg.contains("<svg"), "{svg}");
    for table in ["f.bad", "f.bad_child", "f.bad_grandchild"] {
        assert!(
            svg.contains(&format!(">{table}<")),
            "{table} not drawn: {svg}"
        );
    }
    assert!(!svg.contains(">f.root<"), "an ancestor drawn: {svg}");
    assert!(
        svg.contains("#ffd0d0"),
        "the failure is not coloured: {svg}"
    );
    // The whole run's picture, kept beside the binaries (the README's is one of these).
    let output = baton
        .cli()
        .args(["graph", "--run", &run_id, "--format", "svg"])
        .output()?;
    let pictures = baton_tests::bin_dir().join("pictures");
    std::fs::create_dir_all(&pictures)?;
    std::fs::write(pictures.join("failed-run-graph.svg"), &output.stdout)?;

    // Resume after fixing the cause: what did not succeed runs again, the rest is left alone.
    baton.warehouse.ensure_dataset("ext").await?;
    baton
        .warehouse
        .query_rows(&format!(
            "CREATE TABLE `{}.ext.missing` AS SELECT 1 AS n",
            baton.project
        ))
        .await?;
    let resumed = baton.client.resume(&run_id).await?;
    assert!(resumed.changed);
    assert_eq!(resumed.run.resumes, 1);
    let done = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    let after = by_table(&done);
    assert_eq!(after["f.bad"].attempt, 2);
    assert_eq!(after["f.bad"].previous_attempts.len(), 1);
    assert_eq!(after["f.bad"].previous_attempts[0].error, error);
    for table in ["f.bad_child", "f.bad_grandchild"] {
        assert_eq!(after[table].state, JobState::Succeeded, "{table}");
        assert_eq!(after[table].skipped_because, None);
    }
    for good in ["f.root", "f.good", "f.good_after"] {
        assert_eq!(after[good], jobs[good], "{good} was touched by the resume");
    }
    assert_one_bigquery_job_per_attempt(&baton, &done).await?;

    // A run that has succeeded cannot be resumed.
    match baton.client.resume(&run_id).await {
        Err(ClientError::Api(failure)) => assert_eq!(failure.status, 409),
        other => panic!("resuming a succeeded run answered {other:?}"),
    }
    // A resume event it can never apply (no such resume happened, and none can now) is
    // acknowledged, not redelivered until the dead-letter limit, and changes nothing.
    let never = PlannerEvent::RunResumed {
        run_id: run_id.clone(),
        resume: 2,
    };
    let status = baton.push(&baton.urls.planner, &never).await?;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    assert_eq!(baton.client.run(&run_id).await?.run, done.run);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_create_each_run_once_one_open_at_a_time_and_record_gaps() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "ticks").await?;
    let relays = baton.relays.clone();
    let mut weekend = table("t.weekend", "hourly", "SELECT 2 AS x");
    weekend.conditions = vec![Condition {
        weekdays: vec![6, 7],
        ..Default::default()
    }];
    let mut off = every("off", 3_600, None);
    off.active = false;
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("hourly", 3_600, None), off],
            tables: vec![
                table("t.one", "hourly", "SELECT 1 AS x"),
                weekend,
                table("t.never", "off", "SELECT 3 AS x"),
            ],
        })
        .await?;

    // Held back from the planner, the first run stays open.
    relays.planner.hold_all();
    // 2026-11-16 is a Monday.
    let first = at("2026-11-16T10:30:00Z");
    let ticks = (0..11).map(|_| baton.tick_at(first));
    let reports = futures::future::join_all(ticks).await;
    let mut outcomes = Vec::new();
    for report in reports {
        let report = report?;
        outcomes.push(run_of(&report, "hourly"));
        assert_eq!(run_of(&report, "off").1, "inactive");
    }
    let run_1 = scheduled_run_id("hourly", at("2026-11-16T10:00:00Z"));
    assert!(outcomes.iter().all(|(id, _)| *id == run_1), "{outcomes:?}");
    let created = outcomes.iter().filter(|(_, o)| o == "created").count();
    assert_eq!(created, 1, "eleven concurrent ticks: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| o == "created" || o == "exists")
    );
    // One tick did the work; the others did not fight it for the schedule's lock.
    let contended = baton.logged("tick", "transaction contended; trying again")?;
    assert!(
        contended.is_empty(),
        "{} contended transactions",
        contended.len()
    );

    // The next instant comes while the first run is open: recorded as skipped, not started.
    let report = baton.tick_at(at("2026-11-16T11:00:05Z")).await?;
    let (run_2, outcome) = run_of(&report, "hourly");
    assert_eq!(outcome, "skipped", "{report}");
    let reason = report["runs"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&run_1), "{reason}");
    let skipped = baton.client.run(&run_2).await?;
    assert_eq!(skipped.run.state, RunState::Skipped);
    assert!(skipped.jobs.is_empty());

    relays.planner.release().await?;
    let done = baton.wait_for_run(&run_1, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    // A Monday: the weekend table's condition does not hold; the inactive frequency's table
    // is not part of it either.
    assert_eq!(done.run.excluded, [id("t.weekend")]);
    assert_eq!(
        done.jobs
            .iter()
            .map(|j| j.table.to_string())
            .collect::<Vec<_>>(),
        ["t.one"]
    );

    // Ticks missed for hours: one run, for the latest instant, with the gap recorded.
    let report = baton.tick_at(at("2026-11-16T15:20:00Z")).await?;
    let (run_3, outcome) = run_of(&report, "hourly");
    assert_eq!(outcome, "created", "{report}");
    assert_eq!(
        run_3,
        scheduled_run_id("hourly", at("2026-11-16T15:00:00Z"))
    );
    assert_eq!(report["runs"][0]["missed"], 3, "12:00, 13:00 and 14:00");
    let done = baton.wait_for_run(&run_3, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded);
    assert_eq!(done.run.missed_instants, 3);
    assert_eq!(done.run.missed_since, Some(at("2026-11-16T12:00:00Z")));

    // A late tick for an instant already handled creates nothing.
    let report = baton.tick_at(first).await?;
    assert_eq!(run_of(&report, "hourly"), (run_1.clone(), "exists".into()));
    // Nor does one for an instant the gap recorded as missed.
    let report = baton.tick_at(at("2026-11-16T13:30:00Z")).await?;
    let (late, outcome) = run_of(&report, "hourly");
    assert_eq!(outcome, "late", "{report}");
    assert_eq!(late, scheduled_run_id("hourly", at("2026-11-16T13:00:00Z")));
    assert!(!report["runs"][0]["announced"].as_bool().unwrap_or(true));
    let runs = baton.client.runs(20).await?.runs;
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    let mut expected = [run_1.as_str(), run_2.as_str(), run_3.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_take_a_frequency_a_table_or_a_table_and_downstream() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "manual").await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("daily", 86_400, None), every("hourly", 3_600, None)],
            tables: vec![
                table("m.clock", "hourly", "SELECT 7 AS t"),
                table("m.uses_clock", "daily", "SELECT t FROM m.clock"),
                table("m.a", "daily", "SELECT 1 AS x"),
                table("m.b", "daily", "SELECT x + 1 AS x FROM m.a"),
                table("m.c", "daily", "SELECT x + 1 AS x FROM m.b"),
                table("m.side", "daily", "SELECT 5 AS x"),
            ],
        })
        .await?;
    let start = |request: StartRunRequest| {
        let client = baton.client.clone();
        async move { client.start_run(&request).await }
    };

    // A frequency now, twice with one idempotency key: one run.
    let hourly = start(StartRunRequest {
        frequency: Some("hourly".into()),
        idempotency_key: Some("first".into()),
        ..Default::default()
    })
    .await?;
    assert!(hourly.changed);
    let again = start(StartRunRequest {
        frequency: Some("hourly".into()),
        idempotency_key: Some("first".into()),
        ..Default::default()
    })
    .await?;
    assert_eq!(again.run.id, hourly.run.id);
    assert!(!again.changed);
    let done = baton.wait_for_run(&hourly.run.id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded);
    assert_eq!(done.jobs.len(), 1);

    // A table whose parent belongs to another frequency is not held back; the plan says so.
    let daily = start(StartRunRequest {
        frequency: Some("daily".into()),
        ..Default::default()
    })
    .await?;
    let done = baton.wait_for_run(&daily.run.id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    let jobs = by_table(&done);
    assert_eq!(
        jobs.keys().collect::<Vec<_>>(),
        ["m.a", "m.b", "m.c", "m.side", "m.uses_clock"]
    );
    assert!(jobs["m.uses_clock"].parents.is_empty());
    assert_eq!(jobs["m.uses_clock"].outside_parents, [id("m.clock")]);

    // One table and everything downstream of it.
    let downstream = start(StartRunRequest {
        tables: vec![id("m.b")],
        downstream: true,
        ..Default::default()
    })
    .await?;
    let done = baton.wait_for_run(&downstream.run.id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    let jobs = by_table(&done);
    assert_eq!(jobs.keys().collect::<Vec<_>>(), ["m.b", "m.c"]);
    assert_eq!(jobs["m.b"].outside_parents, [id("m.a")]);
    assert_eq!(jobs["m.c"].parents, [id("m.b")]);

    // One table alone.
    let alone = start(StartRunRequest {
        tables: vec![id("m.a")],
        ..Default::default()
    })
    .await?;
    let done = baton.wait_for_run(&alone.run.id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded);
    assert_eq!(by_table(&done).keys().collect::<Vec<_>>(), ["m.a"]);

    // Two requests without a key are two runs, though they come in the same second.
    let side = || {
        start(StartRunRequest {
            tables: vec![id("m.side")],
            ..Default::default()
        })
    };
    let (first, second) = (side().await?, side().await?);
    assert_ne!(first.run.id, second.run.id);
    assert!(first.changed && second.changed);
    for run in [&first.run.id, &second.run.id] {
        let done = baton.wait_for_run(run, TIMEOUT).await?;
        assert_eq!(done.run.state, RunState::Succeeded);
    }

    // A table Baton does not have is refused, naming it.
    match start(StartRunRequest {
        tables: vec![id("m.nope")],
        ..Default::default()
    })
    .await
    {
        Err(ClientError::Api(failure)) => {
            assert_eq!(failure.status, 404, "{failure:?}");
            assert!(failure.message.contains("m.nope"), "{failure:?}");
        }
        other => panic!("a run of an unknown table answered {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_starts_nothing_more() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "cancel").await?;
    let relays = baton.relays.clone();
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("daily", 86_400, Some(2))],
            tables: vec![
                table("c.a", "daily", "SELECT 1 AS x"),
                table("c.b", "daily", "SELECT x FROM c.a"),
                table("c.side", "daily", "SELECT 2 AS x"),
            ],
        })
        .await?;
    // The executor does not receive the dispatches until after the cancel.
    relays.executor.hold_all();
    let started = baton
        .client
        .start_run(&StartRunRequest {
            frequency: Some("daily".into()),
            ..Default::default()
        })
        .await?;
    let run_id = started.run.id;
    eventually("c.a and c.side dispatched", TIMEOUT, || async {
        Ok((relays.executor.held() >= 2).then_some(()))
    })
    .await?;
    let cancelled = baton.client.cancel(&run_id).await?;
    assert!(cancelled.changed);
    assert_eq!(cancelled.run.state, RunState::Cancelled);
    let again = baton.client.cancel(&run_id).await?;
    assert!(!again.changed);
    let closed = eventually("the cancelled run closed", TIMEOUT, || async {
        let run = baton.client.run(&run_id).await?;
        Ok(run.run.summary.is_some().then_some(run))
    })
    .await?;
    // The dispatches arrive late: the executor starts none of them.
    relays.executor.release().await?;
    assert_eq!(closed.run.summary.as_ref().unwrap().cancelled, 3);
    let after = baton.client.run(&run_id).await?;
    assert_eq!(after.run.state, RunState::Cancelled);
    for job in &after.jobs {
        assert_eq!(job.state, JobState::Cancelled, "{job:?}");
        assert!(job.started_at.is_none(), "{job:?}");
    }
    assert!(baton.bigquery_jobs(&run_id).await?.is_empty());
    // The frequency is free again.
    let next = baton
        .client
        .start_run(&StartRunRequest {
            frequency: Some("daily".into()),
            ..Default::default()
        })
        .await?;
    let done = baton.wait_for_run(&next.run.id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_runs_its_instants_in_order_with_their_parameters() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    // A backfill's runs take the configured default cap, as scheduled runs do.
    let baton = Baton::start_with(
        &stack,
        "backfill",
        Options::default().env("BATON_DEFAULT_CONCURRENCY", "3"),
    )
    .await?;
    let mut log = table(
        "bf.log",
        "hourly",
        "SELECT @run_time AS run_time, @window_start AS window_start, \
         @window_end AS window_end",
    );
    log.write_mode = WriteMode::Append;
    baton
        .apply(CatalogSpec {
            frequencies: vec![every("hourly", 3_600, None)],
            tables: vec![
                log,
                table(
                    "bf.latest",
                    "hourly",
                    "SELECT UNIX_SECONDS(MAX(run_time)) AS latest, COUNT(*) AS n FROM bf.log",
                ),
            ],
        })
        .await?;
    let backfill = baton
        .client
        .start_backfill(&BackfillRequest {
            frequency: "hourly".into(),
            from: at("2026-11-01T00:00:00Z"),
            to: at("2026-11-01T03:30:00Z"),
            parallel: None,
        })
        .await?;
    let instants: Vec<Timestamp> = (0..4)
        .map(|h| at("2026-11-01T00:00:00Z") + SignedDuration::from_hours(h))
        .collect();
    assert_eq!(backfill.instants, instants);
    let ended = eventually("the backfill ended", TIMEOUT, || async {
        let b = baton.client.backfill(&backfill.id).await?;
        Ok((b.state != BackfillState::Running).then_some(b))
    })
    .await?;
    assert_eq!(ended.state, BackfillState::Succeeded, "{ended:?}");
    assert_eq!(ended.runs.len(), 4);

    // One after another, each with its own instant.
    let mut previous_end: Option<Timestamp> = None;
    for (run_id, instant) in ended.runs.iter().zip(&instants) {
        let run = baton.client.run(run_id).await?;
        assert_eq!(run.run.state, RunState::Succeeded);
        assert_eq!(run.run.trigger, Trigger::Backfill);
        assert_eq!(run.run.concurrency, 3, "{run_id}'s cap");
        assert_eq!(run.run.instant, *instant);
        if let Some(end) = previous_end {
            assert!(
                end <= run.run.created_at,
                "{run_id} began before the previous ended"
            );
        }
        previous_end = run.run.finished_at;
    }
    let rows = baton
        .warehouse
        .query_rows(&format!(
            "SELECT UNIX_SECONDS(run_time), UNIX_SECONDS(window_start), \
             UNIX_SECONDS(window_end) FROM `{}.bf.log` ORDER BY 1",
            baton.project
        ))
        .await?;
    let expected: Vec<Vec<String>> = instants
        .iter()
        .map(|i| {
            let s = i.as_second();
            vec![s.to_string(), (s - 3_600).to_string(), s.to_string()]
        })
        .collect();
    assert_eq!(
        serde_json::to_value(&rows)?,
        serde_json::to_value(&expected)?
    );
    let latest = baton
        .warehouse
        .query_rows(&format!(
            "SELECT latest, n FROM `{}.bf.latest`",
            baton.project
        ))
        .await?;
    assert_eq!(
        serde_json::to_value(&latest)?,
        serde_json::json!([[instants[3].as_second().to_string(), "4"]])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_says_what_an_apply_would_change_and_applies_nothing() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "plan").await?;
    // Deployed from a folder, as a team does.
    let dir = baton_tests::bin_dir().join(format!("plan-{}", baton.project));
    std::fs::create_dir_all(dir.join("p"))?;
    std::fs::write(dir.join("baton.toml"), "")?;
    let write = |tables: &[(&str, &str)]| -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir.join("p"))? {
            std::fs::remove_file(entry?.path())?;
        }
        for (name, sql) in tables {
            std::fs::write(dir.join(format!("p/{name}.sql")), format!("{sql}\n"))?;
        }
        Ok(())
    };
    let folder = dir.to_str().expect("a UTF-8 path");
    write(&[
        ("a", "SELECT 1 AS x"),
        ("b", "SELECT x FROM p.a"),
        ("c", "SELECT x FROM p.b"),
        ("gone", "SELECT x FROM p.a"),
    ])?;
    baton.run_cli(&["apply", "--yes", folder]).await?;
    // p.a exists in BigQuery, so what reads it can be dry-run.
    baton.warehouse.ensure_dataset("p").await?;
    baton
        .warehouse
        .query_rows(&format!(
            "CREATE TABLE `{}.p.a` AS SELECT 1 AS x",
            baton.project
        ))
        .await?;
    write(&[
        ("a", "SELECT 1 AS x"),
        ("b", "SELECT x + 1 AS x FROM p.a"),
        ("c", "SELECT x FROM p.b"),
        ("d", "SELECT x FROM p.a"),
    ])?;
    let said = baton.run_cli(&["plan", folder, "--prune"]).await?;
    let lines: Vec<&str> = said.lines().collect();
    let expected_start = [
        "tables added (1):",
        "  p.d",
        "tables changed (1):",
        "  p.b  (SQL)",
        "tables removed (1):",
        "  p.gone",
        "dependencies gained (1):",
        "  p.a → p.d",
        "dependencies lost (1):",
        "  p.a → p.gone",
        "downstream of the changes (1):",
        "  p.c",
        "dry runs (2):",
    ];
    assert_eq!(&lines[..expected_start.len()], expected_start, "{said}");
    let dry_runs = &lines[expected_start.len()..expected_start.len() + 2];
    for (line, table) in dry_runs.iter().zip(["p.b", "p.d"]) {
        assert!(
            line.starts_with(&format!("  {table}  ")) && line.contains(" bytes processed, about "),
            "{said}"
        );
    }
    assert_eq!(
        lines.last().copied(),
        Some("plan: 1 to create, 1 to update, 1 to delete, 2 unchanged")
    );
    // `apply` shows the same plan; without a terminal to ask on, it needs `--yes`.
    let mut command = baton.cli();
    command.args(["apply", folder, "--prune"]);
    let refused = tokio::task::spawn_blocking(move || command.output()).await??;
    assert_eq!(refused.status.code(), Some(1));
    let shown = String::from_utf8(refused.stdout)?;
    let plan_before_dry_runs = &said[..said.find("dry runs").expect("the plan's dry runs")];
    assert!(shown.starts_with(plan_before_dry_runs), "{shown}");
    assert!(
        shown.ends_with("plan: 1 to create, 1 to update, 1 to delete, 2 unchanged\n"),
        "{shown}"
    );
    assert_eq!(
        String::from_utf8(refused.stderr)?,
        "baton: nothing applied (no terminal to ask on: pass --yes to apply without asking)\n"
    );
    // Nothing was applied.
    let stored = baton.client.catalog().await?;
    let mut names: Vec<String> = stored.tables.iter().map(|t| t.id.to_string()).collect();
    names.sort();
    assert_eq!(names, ["p.a", "p.b", "p.c", "p.gone"]);
    let b = stored
        .tables
        .iter()
        .find(|t| t.id == id("p.b"))
        .expect("p.b");
    assert_eq!(b.definition.sql.trim(), "SELECT x FROM p.a");
    // With `--yes`, applied.
    let applied = baton
        .run_cli(&["apply", folder, "--prune", "--yes"])
        .await?;
    assert!(
        applied.contains("1 created, 1 updated, 1 deleted, 2 unchanged"),
        "{applied}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
