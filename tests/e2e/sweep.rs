//! Runs whose messages are lost for good (dead-lettered, or dropped by a restarted Pub/Sub)
//! complete without a person: the tick's sweep finds the run or job whose watch has passed
//! and sends again the message that moves it on. The relays in front of the services lose
//! chosen messages: acknowledged to the emulator, never delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_core::catalog::{CatalogSpec, Table, TableId};
use baton_core::state::{JobState, RunState};
use baton_service::api::{RunResponse, StartRunRequest};
use baton_tests::{Baton, Stack};

const TIMEOUT: Duration = Duration::from_secs(120);

fn id(s: &str) -> TableId {
    s.parse().expect("a valid table id")
}

/// `d.a` feeds `d.b` and `d.c`, which both feed `d.d`.
fn diamond() -> CatalogSpec {
    CatalogSpec {
        frequencies: Vec::new(),
        tables: vec![
            Table::query(&id("d.a"), "SELECT 1 AS n"),
            Table::query(&id("d.b"), "SELECT n + 1 AS n FROM d.a"),
            Table::query(&id("d.c"), "SELECT n + 2 AS n FROM d.a"),
            Table::query(&id("d.d"), "SELECT b.n + c.n AS n FROM d.b AS b, d.c AS c"),
        ],
    }
}

/// Starts a run of `d.a` and all it feeds (the whole diamond); its id.
async fn start_diamond_run(baton: &Baton) -> anyhow::Result<String> {
    let started = baton
        .client
        .start_run(&StartRunRequest {
            frequency: None,
            tables: vec![id("d.a")],
            downstream: true,
            idempotency_key: None,
        })
        .await?;
    Ok(started.run.id)
}

/// Loses the first `count` messages of `event` (by the message's `event` field).
fn first_of(event: &'static str, count: usize) -> impl Fn(&serde_json::Value) -> bool {
    let seen = Arc::new(AtomicUsize::new(0));
    move |message| message["event"] == event && seen.fetch_add(1, Ordering::SeqCst) < count
}

/// Ticks as if later and later (each tick passes every watch the one before set) until the
/// run has ended; the run then.
async fn sweep_until_ended(baton: &Baton, run_id: &str) -> anyhow::Result<RunResponse> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    for hours in 1.. {
        let run = baton.client.run(run_id).await?;
        if run.run.state.is_terminal() && run.jobs.iter().all(|j| j.state.is_terminal()) {
            return Ok(run);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "run {run_id} did not end: {run:?}"
        );
        let at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours * 24);
        baton.tick_at(at).await?;
        // What the sweep sent is handled in well under a second on the stack; the next tick
        // comes once the run has moved, or after a moment when it has not.
        let _ = baton.wait_for_run(run_id, Duration::from_secs(2)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_messages_are_lost_completes_by_the_ticks_sweep() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "sweep-lost").await?;
    baton.apply(diamond()).await?;

    // Lost for good: the run's creation, the first job's dispatch to the executor, and the
    // first end of a job told to the planner.
    let planner_lost = first_of("run_created", 1);
    let finished_lost = first_of("job_finished", 1);
    baton
        .relays
        .planner
        .lose_where(move |m| planner_lost(m) || finished_lost(m));
    baton.relays.executor.lose_where(first_of("run_query", 1));

    let run_id = start_diamond_run(&baton).await?;
    // Nothing moves it without the sweep.
    baton_tests::eventually("the run's creation lost", TIMEOUT, || async {
        Ok((baton.relays.planner.lost() == 1).then_some(()))
    })
    .await?;
    assert_eq!(
        baton.client.run(&run_id).await?.run.state,
        RunState::Created
    );

    sweep_until_ended(&baton, &run_id).await?;
    // Once the planner has handled the last end, nothing is left watched.
    let done = baton_tests::eventually("nothing left watched", TIMEOUT, || async {
        let run = baton.client.run(&run_id).await?;
        let watched = run.run.watch_at.is_some() || run.jobs.iter().any(|j| j.watch_at.is_some());
        Ok((!watched).then_some(run))
    })
    .await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{done:?}");
    assert_eq!(
        (baton.relays.planner.lost(), baton.relays.executor.lost()),
        (2, 1),
        "one creation, one end and one dispatch were lost"
    );
    // Every table built once, by one BigQuery job: nothing sent again ran twice.
    let jobs: BTreeMap<String, _> = done.jobs.iter().map(|j| (j.table.to_string(), j)).collect();
    assert_eq!(jobs.len(), 4);
    for job in jobs.values() {
        assert_eq!(
            (job.state, job.attempt),
            (JobState::Succeeded, 1),
            "{job:?}"
        );
    }
    let ids: std::collections::BTreeSet<_> = jobs
        .values()
        .filter_map(|j| j.bigquery_job_id.clone())
        .collect();
    assert_eq!(ids.len(), 4);
    let rows = baton
        .warehouse
        .query_rows(&format!("SELECT n FROM `{}.d.d`", baton.project))
        .await?;
    assert_eq!(rows, vec![vec![serde_json::json!("5")]]);

    // The run says what the sweep sent for it. The lost end may be sent again by the sweep
    // or, when the sweep sent the job's dispatch again first (a slow machine: every job in
    // flight is overdue to a tick a day later), by the executor, which reports the end of a
    // job it finds ended: `the_lost_end_of_the_last_job_is_sent_again_by_the_sweep` proves
    // the first path alone.
    let notes: Vec<&str> = done.run.sweeps.iter().map(|n| n.what.as_str()).collect();
    for sent in [
        "sent run_created to the planner again",
        "run_query to the executor again",
    ] {
        assert!(notes.iter().any(|n| n.contains(sent)), "{sent}: {notes:?}");
    }

    // A tick with nothing overdue sends nothing.
    let report = baton
        .tick_at(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 400))
        .await?;
    assert!(report.get("swept").is_none(), "{report}");
    Ok(())
}

/// The end of the run's last job is lost: every job has succeeded, nothing is in flight, and
/// only the sweep can tell the planner, which closes the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lost_end_of_the_last_job_is_sent_again_by_the_sweep() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "sweep-last-end").await?;
    baton.apply(diamond()).await?;
    let seen = Arc::new(AtomicUsize::new(0));
    baton.relays.planner.lose_where(move |m| {
        m["event"] == "job_finished"
            && m["table"] == "d.d"
            && seen.fetch_add(1, Ordering::SeqCst) == 0
    });
    let run_id = start_diamond_run(&baton).await?;
    let stuck = baton_tests::eventually("the last job's end lost", TIMEOUT, || async {
        let run = baton.client.run(&run_id).await?;
        let ended = run.jobs.len() == 4 && run.jobs.iter().all(|j| j.state == JobState::Succeeded);
        Ok((ended && baton.relays.planner.lost() == 1).then_some(run))
    })
    .await?;
    assert_eq!(
        stuck.run.state,
        RunState::Running,
        "nothing closes it without the sweep"
    );

    let report = baton
        .tick_at(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24))
        .await?;
    let done = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{report}");
    let notes: Vec<&str> = done.run.sweeps.iter().map(|n| n.what.as_str()).collect();
    assert!(
        notes.len() == 1 && notes[0].contains("job_finished to the planner again"),
        "{notes:?}"
    );
    assert!(notes[0].contains("d.d"), "{notes:?}");
    Ok(())
}
