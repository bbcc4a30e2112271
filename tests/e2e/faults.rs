//! What the executor does when BigQuery fails, end to end, with a proxy in front of
//! local-bigquery producing what the emulator cannot (a `backendError`, a job that never ends
//! or runs for a while, bytes billed, a refused cap): transient failures retried as new
//! attempts up to the table's bound; a failing SQL failed at once with BigQuery's message; a
//! cap of bytes billed, a timeout and the labels given to BigQuery; the job past its timeout
//! cancelled; an extract tried again or failed as its error says; a job's cost priced,
//! attributed and rolled up per day, once however often it is delivered; a job longer than a
//! delivery attached to by the next.

use std::sync::Arc;
use std::time::Duration;

use baton_core::catalog::{
    CatalogSpec, Extract, FileFormat, Frequency, Table, TableId, TableOptions,
};
use baton_core::ids::bigquery_job_id;
use baton_core::messages::ExecutorTask;
use baton_core::state::{JobState, RunState};
use baton_tests::faults::{Fault, FaultyBigQuery};
use baton_tests::{Baton, Options, Stack, first_run_id};

const TIMEOUT: Duration = Duration::from_secs(120);

fn table(name: &str, sql: &str, options: TableOptions) -> Table {
    let id: TableId = name.parse().expect("a valid table id");
    Table {
        frequency: Some("hourly".to_string()),
        options: Box::new(options),
        ..Table::query(&id, sql)
    }
}

fn extract_csv() -> TableOptions {
    TableOptions {
        extract: Some(Extract {
            format: FileFormat::Csv,
            compression: None,
            notify: None,
            url_expiry_seconds: None,
        }),
        ..TableOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_refused_or_cancelled_as_their_kind_says() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    let backend_error = || Fault::Fail {
        reason: "backendError".into(),
        message: "Error encountered during execution. Retrying may solve the problem.".into(),
    };
    bigquery.rule(move |id| {
        if id.contains("_f_exported_") && id.ends_with("_extract_1") {
            Some(backend_error())
        } else if id.contains("_f_unexportable_") && id.contains("_extract_") {
            Some(Fault::Fail {
                reason: "invalid".into(),
                message: "Operation cannot be performed on a nested schema.".into(),
            })
        } else if id.contains("_f_flaky_1_") || id.contains("_f_always_") {
            Some(backend_error())
        } else if id.contains("_f_capped_") {
            Some(Fault::Fail {
                reason: "bytesBilledLimitExceeded".into(),
                message: "Query exceeded limit for bytes billed: 10000000. 20971520 or higher \
                          required."
                    .into(),
            })
        } else if id.contains("_f_stuck_") {
            Some(Fault::Hang)
        } else if id.contains("_f_billed_") {
            Some(Fault::Bill { bytes: 1 << 40 })
        } else {
            None
        }
    });
    let options = Options::default().env("BIGQUERY_EMULATOR_HOST", &bigquery.url);
    let baton = Baton::start_with(&stack, "faults", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![
                table("f.flaky", "SELECT 1 AS x", TableOptions::default()),
                table(
                    "f.always",
                    "SELECT 1 AS x",
                    TableOptions {
                        retries: Some(1),
                        ..TableOptions::default()
                    },
                ),
                table(
                    "f.broken",
                    "SELECT no_such_column FROM UNNEST([1]) AS x",
                    TableOptions::default(),
                ),
                Table {
                    owner: Some("ana@example.com".into()),
                    group: Some("finance".into()),
                    ..table("f.billed", "SELECT 1 AS x", TableOptions::default())
                },
                table(
                    "f.capped",
                    "SELECT 1 AS x",
                    TableOptions {
                        max_bytes_billed: Some(10_000_000),
                        ..TableOptions::default()
                    },
                ),
                table("f.exported", "SELECT 1 AS x", extract_csv()),
                table("f.unexportable", "SELECT 1 AS x", extract_csv()),
                table(
                    "f.stuck",
                    "SELECT 1 AS x",
                    TableOptions {
                        timeout_seconds: Some(2),
                        ..TableOptions::default()
                    },
                ),
            ],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Failed);
    let job = |name: &str| {
        run.jobs
            .iter()
            .find(|j| j.table.to_string() == name)
            .unwrap_or_else(|| panic!("no job {name}"))
    };

    // Transient: a new attempt, which succeeds; the first is kept with its error.
    let flaky = job("f.flaky");
    assert_eq!((flaky.state, flaky.attempt), (JobState::Succeeded, 2));
    assert!(
        flaky.previous_attempts[0].error.contains("backendError"),
        "{:?}",
        flaky.previous_attempts
    );
    // Transient every time: retried up to the table's bound (one retry), then failed.
    let always = job("f.always");
    assert_eq!((always.state, always.attempt), (JobState::Failed, 2));
    assert!(
        always
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("backendError")
    );
    // Permanent: failed at once, with BigQuery's reason and message.
    let broken = job("f.broken");
    assert_eq!((broken.state, broken.attempt), (JobState::Failed, 1));
    let error = broken.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("invalidQuery") && error.contains("no_such_column"),
        "{error}"
    );
    // Billed: priced at the default 6.25 a TiB, attributed to the table's owner and group.
    let billed = job("f.billed");
    assert_eq!(billed.state, JobState::Succeeded);
    let statistics = billed.statistics.as_ref().expect("statistics recorded");
    assert_eq!(statistics.bytes_billed, 1 << 40);
    assert!((statistics.cost - 6.25).abs() < 1e-9, "{}", statistics.cost);
    assert_eq!(billed.attributed_user.as_deref(), Some("ana@example.com"));
    assert_eq!(billed.attributed_group.as_deref(), Some("finance"));
    // Its bytes billed capped: BigQuery is given the cap and the labels, and its refusal
    // fails the job at once.
    let capped = job("f.capped");
    assert_eq!((capped.state, capped.attempt), (JobState::Failed, 1));
    assert!(
        capped
            .error
            .as_deref()
            .unwrap_or_default()
            .starts_with("bytesBilledLimitExceeded: Query exceeded limit"),
        "{:?}",
        capped.error
    );
    let sent = bigquery
        .inserted(&bigquery_job_id(&run_id, &capped.table, 1))
        .expect("the capped job was inserted");
    let configuration = &sent["configuration"];
    assert_eq!(configuration["query"]["maximumBytesBilled"], "10000000");
    assert_eq!(configuration["labels"]["baton-table"], "f_capped");
    assert_eq!(
        configuration["labels"]["baton-run"],
        baton_core::ids::label_value(&run_id)
    );
    // Past its timeout: cancelled in BigQuery, failed, not retried.
    let stuck = job("f.stuck");
    assert_eq!((stuck.state, stuck.attempt), (JobState::Failed, 1));
    let error = stuck.error.as_deref().unwrap_or_default();
    assert!(error.contains("timeout of 2s"), "{error}");
    let stuck_id = bigquery_job_id(&run_id, &stuck.table, 1);
    let sent = bigquery
        .inserted(&stuck_id)
        .expect("the stuck job was inserted");
    assert_eq!(sent["configuration"]["jobTimeoutMs"], "2000");
    assert!(
        bigquery.cancelled().contains(&stuck_id),
        "{stuck_id} was not cancelled: {:?}",
        bigquery.cancelled()
    );
    // An extract that fails transiently is tried again as the next extract job, without
    // running the query again; one that fails for good fails its job, the error named.
    let exported = job("f.exported");
    assert_eq!((exported.state, exported.attempt), (JobState::Succeeded, 1));
    let record = exported.extract.as_ref().expect("an extract recorded");
    assert!(
        record.bigquery_job_id.ends_with("_extract_2"),
        "{}",
        record.bigquery_job_id
    );
    let unexportable = job("f.unexportable");
    assert_eq!(
        (unexportable.state, unexportable.attempt),
        (JobState::Failed, 1)
    );
    let error = unexportable.error.as_deref().unwrap_or_default();
    assert_eq!(
        error,
        "extract: invalid: Operation cannot be performed on a nested schema."
    );

    // Rolled up by the day it ended: once, though its message comes again.
    let status = baton
        .push(
            &baton.urls.executor,
            &ExecutorTask::RunQuery {
                run_id: run_id.clone(),
                table: billed.table.clone(),
                attempt: 1,
            },
        )
        .await?;
    assert!(status.is_success(), "the redelivery answered {status}");
    let day = billed
        .finished_at
        .expect("an ended job has its end")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let costs = |by: &'static str| {
        let client = &baton.client;
        async move {
            let costs = client.costs(by, Some(day), Some(day)).await?;
            Ok::<_, anyhow::Error>(
                costs
                    .rows
                    .into_iter()
                    .map(|r| (r.value, r.jobs, r.cost, r.bytes_billed))
                    .collect::<Vec<_>>(),
            )
        }
    };
    assert_eq!(
        costs("group").await?,
        [
            ("finance".to_string(), 1, 6.25, 1 << 40),
            ("(none)".to_string(), 7, 0.0, 0)
        ]
    );
    assert_eq!(
        costs("user").await?[0],
        ("ana@example.com".to_string(), 1, 6.25, 1 << 40)
    );
    assert_eq!(
        costs("frequency").await?,
        [("hourly".to_string(), 8, 6.25, 1 << 40)]
    );
    let tables = costs("table").await?;
    assert_eq!(tables.len(), 8, "{tables:?}");
    assert_eq!(tables[0], ("f.billed".to_string(), 1, 6.25, 1 << 40));
    Ok(())
}

/// A query job's end is seen as it comes, not at the executor's next look: the executor waits
/// on the job (`jobs.getQueryResults` with `timeoutMs`, which the proxy holds like BigQuery
/// until the job ends) instead of polling it. Polled at 0.5, 1.5, 3.5 and 7.5 s, a job that
/// ended after 5 s was seen 2.5 s late. How late the child's dispatch comes is printed; the
/// figures are the benchmark's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_jobs_end_is_seen_at_once() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    // The slow job runs for 5 s from its first sight, when its end is noted as a time too.
    let end: Arc<std::sync::OnceLock<(std::time::Instant, jiff::Timestamp)>> = Arc::default();
    let noted = end.clone();
    bigquery.rule(move |id| {
        id.contains("_e_slow_").then(|| {
            let (until, _) = noted.get_or_init(|| {
                let run = Duration::from_secs(5);
                (
                    std::time::Instant::now() + run,
                    jiff::Timestamp::now() + run,
                )
            });
            Fault::RunningUntil(*until)
        })
    });
    let options = Options::default().env("BIGQUERY_EMULATOR_HOST", &bigquery.url);
    let baton = Baton::start_with(&stack, "job-end", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![
                table("e.slow", "SELECT 1 AS x", TableOptions::default()),
                table("e.after", "SELECT x FROM e.slow", TableOptions::default()),
            ],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:?}");
    let (_, ended) = *end.get().expect("the slow job was seen");
    let after = run
        .jobs
        .iter()
        .find(|j| j.table.to_string() == "e.after")
        .expect("e.after");
    let late = after
        .dispatched_at
        .expect("dispatched")
        .duration_since(ended);
    println!("the child was dispatched {late:?} after its parent's end");
    // One wait, held for the job's 5 s (BigQuery's is up to 10 s), then one read of the
    // ended job: no polls.
    let slow = run
        .jobs
        .iter()
        .find(|j| j.table.to_string() == "e.slow")
        .and_then(|j| j.bigquery_job_id.clone())
        .expect("e.slow's BigQuery job");
    let asked: Vec<String> = bigquery
        .requests_for(&slow)
        .into_iter()
        .map(|request| {
            // `GET /bigquery/v2/projects/P/queries/ID` → `GET queries`
            let (method, path) = request.split_once(' ').unwrap_or_default();
            format!("{method} {}", path.rsplit('/').nth(1).unwrap_or_default())
        })
        .collect();
    assert_eq!(
        asked,
        ["GET queries", "GET jobs"],
        "{:?}",
        bigquery.requests_for(&slow)
    );
    Ok(())
}

/// A BigQuery job that outlasts a delivery: the executor hands over (503) and a later delivery
/// attaches to the same job, which is neither lost nor started twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_a_delivery_is_picked_up_by_the_next() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    bigquery.rule(move |id| {
        id.contains("_l_long_")
            .then_some(Fault::RunningUntil(until))
    });
    let options = Options::default()
        .env("BIGQUERY_EMULATOR_HOST", &bigquery.url)
        .env("BATON_EXECUTOR_WAIT_SECONDS", "1");
    let baton = Baton::start_with(&stack, "long-job", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![table("l.long", "SELECT 1 AS x", TableOptions::default())],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    // Each handover moves the job's watch on: it is moving, the sweep need not send it.
    baton_tests::eventually("the watch moved on by a handover", TIMEOUT, || async {
        let run = baton.client.run(&run_id).await?;
        let Some(job) = run.jobs.first() else {
            return Ok(None);
        };
        anyhow::ensure!(!job.state.is_terminal(), "ended: {job:?}");
        let first = job.started_at.map(|s| s + baton_core::sweep::RUNNING_WATCH);
        Ok((job.watch_at > first).then_some(()))
    })
    .await?;
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded);
    let job = &run.jobs[0];
    assert_eq!(job.attempt, 1);
    // Its end handled, nothing is left for the sweep.
    baton_tests::eventually("the ended job unwatched", TIMEOUT, || async {
        let run = baton.client.run(&run_id).await?;
        Ok(run.jobs.iter().all(|j| j.watch_at.is_none()).then_some(()))
    })
    .await?;
    assert!(
        job.finished_at.expect("ended")
            >= job.started_at.expect("started") + jiff::SignedDuration::from_secs(3),
        "the job ended before it stopped running: {job:?}"
    );
    assert_eq!(
        baton.bigquery_jobs(&run_id).await?,
        [bigquery_job_id(&run_id, &job.table, 1)],
        "one BigQuery job"
    );
    let logs = std::fs::read_to_string(baton.log_dir.join("executor.log"))?;
    assert!(logs.contains("is still running"), "no delivery handed over");
    Ok(())
}

/// A query that fails while the executor waits on it (`jobs.getQueryResults`, which answers
/// a failed query with the query's own error: a missing table is a 404) fails its job with
/// BigQuery's reason; the 404 is not taken for a job that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_failing_while_waited_on_fails_its_job() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    bigquery.rule(move |id| {
        id.contains("_m_missing_")
            .then_some(Fault::RunningUntil(until))
    });
    let options = Options::default().env("BIGQUERY_EMULATOR_HOST", &bigquery.url);
    let baton = Baton::start_with(&stack, "fails-waited", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![table(
                "m.missing",
                "SELECT n FROM nowhere.missing",
                TableOptions::default(),
            )],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Failed, "{:?}", run.run);
    let job = &run.jobs[0];
    assert_eq!(job.state, baton_core::state::JobState::Failed);
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("nowhere") && error.contains("not found"),
        "{error}"
    );
    // It was waited on: the proxy held it running past the insert.
    assert!(
        bigquery
            .requests_for(&job.bigquery_job_id.clone().unwrap_or_default())
            .iter()
            .any(|r| r.contains("/queries/")),
        "never waited on"
    );
    Ok(())
}

/// A backfill two at a time cancelled as a whole while its first two runs' BigQuery jobs
/// run: both jobs are stopped, both runs end cancelled, no later instant starts, and the
/// frequency takes a new backfill at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_cancelled_stops_its_running_jobs_and_starts_no_more_runs() -> anyhow::Result<()>
{
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    bigquery.rule(|id| id.contains("_bc_slow_").then_some(Fault::Hang));
    // The emulator keeps two pushes in flight to the executor, and each held job holds one
    // open: its deliveries hand over every 2 s, so that the cancellations get through.
    let options = Options::default()
        .env("BIGQUERY_EMULATOR_HOST", &bigquery.url)
        .env("BATON_EXECUTOR_WAIT_SECONDS", "2");
    let baton = Baton::start_with(&stack, "backfill-cancel", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![table("bc.slow", "SELECT 1 AS x", TableOptions::default())],
        })
        .await?;
    let request = baton_service::api::BackfillRequest {
        frequency: "hourly".into(),
        from: "2026-11-01T00:00:00Z".parse()?,
        to: "2026-11-01T02:00:00Z".parse()?,
        parallel: Some(2),
    };
    let backfill = baton.client.start_backfill(&request).await?;
    assert_eq!(backfill.instants.len(), 3);
    assert_eq!(backfill.runs.len(), 2);
    let mut jobs = Vec::new();
    for run_id in &backfill.runs {
        jobs.push(
            baton_tests::eventually("the run's job running", TIMEOUT, || async {
                let run = baton.client.run(run_id).await?;
                Ok(run
                    .jobs
                    .into_iter()
                    .find(|j| j.state == JobState::Running)
                    .and_then(|j| j.bigquery_job_id))
            })
            .await?,
        );
    }

    let said = baton.run_cli(&["backfill", "cancel", &backfill.id]).await?;
    assert!(
        said.contains(&format!(
            "backfill {} of hourly cancelled after 2 of 3 runs",
            backfill.id
        )),
        "{said}"
    );
    for (run_id, job) in backfill.runs.iter().zip(&jobs) {
        let run = baton.wait_for_run(run_id, TIMEOUT).await?;
        assert_eq!(run.run.state, RunState::Cancelled, "{run:?}");
        assert!(
            bigquery.cancelled().contains(job),
            "{job} not in {:?}",
            bigquery.cancelled()
        );
    }
    let cancelled = baton.client.backfill(&backfill.id).await?;
    assert_eq!(cancelled.state, baton_core::run::BackfillState::Cancelled);
    assert_eq!(cancelled.runs, backfill.runs, "no later instant started");
    // Asked again: the same answer, nothing more changed.
    assert_eq!(
        baton.client.cancel_backfill(&backfill.id).await?.state,
        baton_core::run::BackfillState::Cancelled
    );
    let audit = baton.client.audit(20, None).await?.entries;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "backfill.cancel")
            .count(),
        1
    );
    // The frequency is free: another backfill starts.
    bigquery.rule(|_| None);
    let next = baton.client.start_backfill(&request).await?;
    assert_ne!(next.id, backfill.id);
    Ok(())
}

/// A backfill of four instants two at a time whose first run's BigQuery job is held running:
/// the three others run beside it one after another (never more than two of its runs open),
/// a scheduled tick meanwhile is skipped, and the backfill succeeds once the held run ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_backfill_runs_beside_a_held_run_and_ends_when_it_does() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    bigquery.rule(|id| id.contains("20261101T000000Z").then_some(Fault::Hang));
    let options = Options::default().env("BIGQUERY_EMULATOR_HOST", &bigquery.url);
    let baton = Baton::start_with(&stack, "backfill-parallel", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![table("bp.t", "SELECT 1 AS x", TableOptions::default())],
        })
        .await?;
    let said = baton
        .run_cli(&[
            "backfill",
            "start",
            "hourly",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-01T03:00:00Z",
            "--parallel",
            "2",
        ])
        .await?;
    let id = said
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.strip_suffix(':'))
        .expect("the backfill's id")
        .to_string();
    let started = baton.client.backfill(&id).await?;
    assert_eq!(started.parallel, 2);
    assert_eq!(started.runs.len(), 2, "two runs at once from the start");
    let held = started.runs[0].clone();

    let runs = baton_tests::eventually("the three other runs ended", TIMEOUT, || async {
        let backfill = baton.client.backfill(&id).await?;
        let mut runs = Vec::new();
        for run in &backfill.runs {
            runs.push(baton.client.run(run).await?.run);
        }
        Ok((runs.len() == 4 && runs[1..].iter().all(|r| r.state.is_terminal())).then_some(runs))
    })
    .await?;
    for run in &runs[1..] {
        assert_eq!(run.state, RunState::Succeeded, "{run:?}");
    }
    assert_eq!(runs[0].id, held);
    assert_eq!(
        runs[0].state,
        RunState::Running,
        "the held run is still running"
    );
    let instants: Vec<_> = runs.iter().map(|r| r.instant).collect();
    assert_eq!(instants, started.instants, "the runs are in instant order");
    // At each run's start, at most two of the backfill's runs were open.
    for run in &runs {
        let open = runs
            .iter()
            .filter(|o| o.created_at <= run.created_at)
            .filter(|o| o.finished_at.is_none_or(|f| f > run.created_at))
            .count();
        assert!(open <= 2, "{open} runs open when {} started", run.id);
    }
    assert_eq!(
        baton.client.backfill(&id).await?.state,
        baton_core::run::BackfillState::Running
    );
    let said = baton.run_cli(&["backfill", "show", &id]).await?;
    assert!(said.contains("Running, 4 of 4 runs, 2 at once"), "{said}");
    // The frequency is held by the backfill's open run: a scheduled run is skipped.
    let report = baton.tick_at("2026-12-01T10:00:05Z".parse()?).await?;
    assert_eq!(report["runs"][0]["outcome"], "skipped", "{report}");
    let reason = report["runs"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&held), "{reason}");

    bigquery.rule(|_| None);
    let ended = baton_tests::eventually("the backfill ended", TIMEOUT, || async {
        let b = baton.client.backfill(&id).await?;
        Ok((b.state != baton_core::run::BackfillState::Running).then_some(b))
    })
    .await?;
    assert_eq!(
        ended.state,
        baton_core::run::BackfillState::Succeeded,
        "{ended:?}"
    );
    assert_eq!(
        baton.client.run(&held).await?.run.state,
        RunState::Succeeded
    );
    Ok(())
}
