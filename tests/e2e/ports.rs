//! The behaviour both `RunPort` implementations must show (`baton_core::port_suite`), on
//! Firestore: the emulator of the local stack. The same checks run on the in-memory model in
//! the shared crate's unit tests.

use baton_core::port_suite;
use baton_core::run::{BackfillState, ScheduleState};
use baton_google::store::{BACKFILLS, FREQUENCIES, RUNS, SCHEDULES, Store, TABLES};
use baton_tests::{Stack, unique_project};

async fn store_holding_a_fresh_run(name: &str) -> anyhow::Result<(Store, String, jiff::Timestamp)> {
    let stack = Stack::load()?;
    let store = Store::connect(&stack.gcp(&unique_project(name))?).await?;
    let start: jiff::Timestamp = "2026-11-22T02:00:00Z".parse()?;
    let run = port_suite::fresh_run("suite-run", start);
    store.create(None, RUNS, &run.id, &run).await?;
    Ok((store, run.id, start))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_planner_cannot_rewrite_a_plan_after_a_takeover() -> anyhow::Result<()> {
    let (store, run_id, start) = store_holding_a_fresh_run("port-lease").await?;
    port_suite::a_slow_planner_cannot_rewrite_a_plan_after_a_takeover(&store, &run_id, start)
        .await
        .map_err(anyhow::Error::msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_plans_its_frequency_or_its_tables_and_downstream() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let store = Store::connect(&stack.gcp(&unique_project("port-plan"))?).await?;
    let now: jiff::Timestamp = "2026-11-22T02:00:00Z".parse()?;
    for table in port_suite::catalog(now) {
        store
            .create(None, TABLES, &table.id.to_string(), &table)
            .await?;
    }
    port_suite::a_run_plans_its_frequency_or_its_tables_and_downstream(&store, now)
        .await
        .map_err(anyhow::Error::msg)
}

/// A store holding `port_suite::backfill`'s documents.
async fn store_holding_a_backfill(name: &str, parallel: u32) -> anyhow::Result<Store> {
    let stack = Stack::load()?;
    let store = Store::connect(&stack.gcp(&unique_project(name))?).await?;
    let (frequency, schedule, backfill) = port_suite::backfill(now(), parallel);
    store
        .create(None, FREQUENCIES, &frequency.name, &frequency)
        .await?;
    store
        .create(None, SCHEDULES, &frequency.name, &schedule)
        .await?;
    store
        .create(None, BACKFILLS, &backfill.id, &backfill)
        .await?;
    Ok(store)
}

fn now() -> jiff::Timestamp {
    "2026-11-22T02:00:00Z".parse().expect("a timestamp")
}

/// The backfill's state and count of runs, and the frequency's backfill and open backfill
/// runs, as stored.
async fn backfill_after(
    store: &Store,
) -> anyhow::Result<(BackfillState, usize, Option<String>, Vec<String>)> {
    let backfill = store
        .backfill("suite-backfill")
        .await?
        .expect("the backfill");
    let schedule: ScheduleState = store
        .get(None, SCHEDULES, "hourly")
        .await?
        .expect("the schedule");
    Ok((
        backfill.state,
        backfill.runs.len(),
        schedule.backfill,
        schedule.backfill_runs,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_runs_its_instants_one_at_a_time() -> anyhow::Result<()> {
    let store = store_holding_a_backfill("port-backfill", 1).await?;
    port_suite::a_backfill_runs_its_instants_one_at_a_time(&store, now())
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        backfill_after(&store).await?,
        (BackfillState::Succeeded, 3, None, vec![])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_backfill_keeps_its_runs_open_up_to_its_parallel() -> anyhow::Result<()> {
    let store = store_holding_a_backfill("port-backfill-parallel", 2).await?;
    port_suite::a_parallel_backfill_keeps_its_runs_open_up_to_its_parallel(&store, now())
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        backfill_after(&store).await?,
        (BackfillState::Failed, 3, None, vec![])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_life_from_plan_to_close() -> anyhow::Result<()> {
    let (store, run_id, start) = store_holding_a_fresh_run("port-life").await?;
    port_suite::a_jobs_life_from_plan_to_close(&store, &run_id, start)
        .await
        .map_err(anyhow::Error::msg)
}
