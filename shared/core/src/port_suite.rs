//! Behaviour every `RunPort` must show, written once and run on both implementations: on the
//! in-memory model by this crate's unit tests, on Firestore (the emulator) by
//! `tests/e2e/ports.rs`. Each check says what the port must hold first (a run `run_id` in
//! state `created` with no jobs yet, or the tables of `catalog`), and answers what went wrong,
//! if anything.

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{Frequency, Table, TableDoc, TableId};
use crate::dag::PlannedJob;
use crate::lifecycle::{LeaseOutcome, Outcome, Planned, Settled};
use crate::ports::RunPort;
use crate::run::{
    Backfill, BackfillState, Job, JobStatistics, Run, RunSummary, ScheduleState, Trigger,
};
use crate::state::{JobState, RunState};

/// A run as the check expects to find it, for the caller to store first: two slots.
pub fn fresh_run(run_id: &str, now: Timestamp) -> Run {
    Run::new(run_id.to_string(), None, Trigger::Manual, now, None, 2, now)
}

fn plan(run: &Run, now: Timestamp) -> Vec<Job> {
    ["suite.a", "suite.b"]
        .iter()
        .map(|name| {
            let table: TableId = name.parse().expect("a table id");
            let planned = PlannedJob {
                table: table.clone(),
                parents: vec![],
                outside_parents: vec![],
                children: vec![],
                priority: 0,
            };
            Job::planned(
                run,
                planned,
                Table::query(&table, "SELECT 1 AS x"),
                vec![],
                "suite",
                now,
            )
        })
        .collect()
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// A planner that was slow, not dead, past its lease cannot rewrite the plan once another
/// took the run over and began dispatching: its write changes nothing, and the dispatched
/// job and its slot stay as they are.
pub async fn a_slow_planner_cannot_rewrite_a_plan_after_a_takeover(
    runs: &impl RunPort,
    run_id: &str,
    start: Timestamp,
) -> Result<(), String> {
    let e = |e: crate::ports::StoreError| e.to_string();
    let run = runs.run(run_id).await.map_err(e)?.ok_or("no run")?;
    let jobs = plan(&run, start);
    let lease = SignedDuration::from_secs(60);

    let slow = runs
        .take_lease(run_id, "slow", start + lease, start)
        .await
        .map_err(e)?;
    ensure!(
        matches!(slow, Some(LeaseOutcome::Taken(_))),
        "the first lease: {slow:?}"
    );
    // The slow planner's lease runs out; another takes the run over, plans and dispatches.
    let later = start + lease * 2;
    let other = runs
        .take_lease(run_id, "other", later + lease, later)
        .await
        .map_err(e)?;
    ensure!(
        matches!(other, Some(LeaseOutcome::Taken(_))),
        "the takeover: {other:?}"
    );
    ensure!(
        runs.write_plan(run_id, "other", jobs.clone(), 2)
            .await
            .map_err(e)?,
        "the lease holder could not write its plan"
    );
    let planned = Planned::Jobs {
        count: 2,
        excluded: vec![],
    };
    let ended = runs
        .end_planning(run_id, "other", &planned, later)
        .await
        .map_err(e)?;
    ensure!(ended.is_some(), "the lease holder could not end planning");
    let first = &jobs[0].table;
    let claimed = runs
        .claim(run_id, 0, first, "suite", later)
        .await
        .map_err(e)?;
    ensure!(
        claimed.is_some_and(|j| j.dispatched),
        "the claim of {first}"
    );

    // The slow planner wakes and writes the plan it computed.
    let written = runs
        .write_plan(run_id, "slow", jobs.clone(), 2)
        .await
        .map_err(e)?;
    ensure!(!written, "a planner without the lease wrote the plan");
    let job = runs.job(run_id, first).await.map_err(e)?.ok_or("no job")?;
    ensure!(job.dispatched, "{first} was sent back to waiting: {job:?}");
    let free: Vec<u32> = runs
        .free_slots(run_id)
        .await
        .map_err(e)?
        .iter()
        .map(|s| s.index)
        .collect();
    ensure!(
        free == [1],
        "slot 0 was freed under a dispatched job: free {free:?}"
    );
    Ok(())
}

/// A job's life through the port, as the planner and the executor live it: planned under the
/// lease, the parent waiting and the child pending; the parent claimed into a slot (once),
/// started, retried as a second attempt in the same slot, started again and finished; its
/// slot released; its child settled into the queue; the child claimed, started, failed; the
/// run closed failed; the child resumed, skipped, resumed again and cancelled. Needs a run
/// `run_id` in state `created` with two slots and no jobs.
pub async fn a_jobs_life_from_plan_to_close(
    runs: &impl RunPort,
    run_id: &str,
    now: Timestamp,
) -> Result<(), String> {
    let e = |e: crate::ports::StoreError| e.to_string();
    let run = runs.run(run_id).await.map_err(e)?.ok_or("no run")?;
    let (a, b): (TableId, TableId) = (
        "suite.a".parse().expect("a table id"),
        "suite.b".parse().expect("a table id"),
    );
    let job = |table: &TableId, parents: Vec<TableId>, children: Vec<TableId>| {
        let planned = PlannedJob {
            table: table.clone(),
            parents,
            outside_parents: vec![],
            children,
            priority: 0,
        };
        Job::planned(
            &run,
            planned,
            Table::query(table, "SELECT 1 AS x"),
            vec![],
            "suite",
            now,
        )
    };
    let jobs = vec![
        job(&a, vec![], vec![b.clone()]),
        job(&b, vec![a.clone()], vec![]),
    ];
    let until = now + SignedDuration::from_secs(60);
    let lease = runs.take_lease(run_id, "p", until, now).await.map_err(e)?;
    ensure!(
        matches!(lease, Some(LeaseOutcome::Taken(_))),
        "the lease: {lease:?}"
    );
    ensure!(
        runs.write_plan(run_id, "p", jobs, 2).await.map_err(e)?,
        "the plan was not written"
    );
    let planned = Planned::Jobs {
        count: 2,
        excluded: vec![],
    };
    let running = runs
        .end_planning(run_id, "p", &planned, now)
        .await
        .map_err(e)?;
    ensure!(
        running.is_some_and(|r| r.state == RunState::Running),
        "the run is not running after planning"
    );
    let all = runs.jobs(run_id).await.map_err(e)?;
    ensure!(all.len() == 2, "the run has {} jobs", all.len());
    let waiting: Vec<TableId> = runs
        .waiting_jobs(run_id, 10)
        .await
        .map_err(e)?
        .into_iter()
        .map(|j| j.table)
        .collect();
    ensure!(waiting == [a.clone()], "waiting: {waiting:?}");
    let free = runs.free_slots(run_id).await.map_err(e)?;
    ensure!(free.len() == 2, "free slots: {free:?}");

    // The parent: claimed once, started, retried in its slot, started again, succeeded.
    let claimed = runs.claim(run_id, 0, &a, "cause-1", now).await.map_err(e)?;
    ensure!(
        claimed.as_ref().is_some_and(|j| j.dispatched),
        "the claim: {claimed:?}"
    );
    let twice = runs.claim(run_id, 1, &a, "cause-2", now).await.map_err(e)?;
    ensure!(
        twice.is_none(),
        "a dispatched job was claimed again: {twice:?}"
    );
    let sent: Vec<TableId> = runs
        .dispatched_by(run_id, "cause-1")
        .await
        .map_err(e)?
        .into_iter()
        .map(|j| j.table)
        .collect();
    ensure!(sent == [a.clone()], "dispatched by cause-1: {sent:?}");
    let started = runs.start(run_id, &a, 1, "bq-a-1", now).await.map_err(e)?;
    ensure!(
        started.as_ref().is_some_and(
            |j| j.state == JobState::Running && j.bigquery_job_id.as_deref() == Some("bq-a-1")
        ),
        "the start: {started:?}"
    );
    let retried = runs
        .retry(
            run_id,
            &a,
            1,
            "backendError: try again",
            SignedDuration::ZERO,
            now,
        )
        .await
        .map_err(e)?;
    ensure!(
        retried.as_ref().is_some_and(|j| j.attempt == 2
            && j.state == JobState::Queued
            && j.dispatched
            && j.previous_attempts.len() == 1),
        "the retry: {retried:?}"
    );
    ensure!(
        runs.free_slots(run_id).await.map_err(e)?.len() == 1,
        "the retry gave up its slot"
    );
    let stale = runs.start(run_id, &a, 1, "bq-a-1", now).await.map_err(e)?;
    ensure!(
        stale
            .as_ref()
            .is_some_and(|j| j.attempt == 2 && j.state == JobState::Queued),
        "a stale start changed the job: {stale:?}"
    );
    runs.start(run_id, &a, 2, "bq-a-2", now).await.map_err(e)?;
    let succeeded = Outcome::Succeeded {
        statistics: JobStatistics::default(),
        extract: None,
    };
    let done = runs
        .finish(run_id, &a, 2, &succeeded, now)
        .await
        .map_err(e)?;
    ensure!(
        done.as_ref()
            .is_some_and(|j| j.state == JobState::Succeeded),
        "the finish: {done:?}"
    );
    runs.release(run_id, 0, &a, 2).await.map_err(e)?;
    ensure!(
        runs.free_slots(run_id).await.map_err(e)?.len() == 2,
        "the slot was not released"
    );

    // The child: settled into the queue, claimed, started, failed; the run closes failed.
    let settled = runs.settle(run_id, &b, now).await.map_err(e)?;
    ensure!(
        matches!(settled, Some(Settled::Queued(_))),
        "the child's settle: {settled:?}"
    );
    ensure!(
        runs.has_open_jobs(run_id).await.map_err(e)?,
        "no open job before b ran"
    );
    runs.claim(run_id, 1, &b, "cause-3", now).await.map_err(e)?;
    runs.start(run_id, &b, 1, "bq-b-1", now).await.map_err(e)?;
    let failed = Outcome::Failed {
        error: "invalidQuery: no".into(),
        statistics: JobStatistics::default(),
    };
    runs.finish(run_id, &b, 1, &failed, now).await.map_err(e)?;
    runs.release(run_id, 1, &b, 1).await.map_err(e)?;
    ensure!(
        !runs.has_open_jobs(run_id).await.map_err(e)?,
        "an open job after both ended"
    );
    let summary = RunSummary {
        succeeded: 1,
        failed: 1,
        ..RunSummary::default()
    };
    let closed = runs.close(run_id, &summary, now).await.map_err(e)?;
    ensure!(
        closed.is_some_and(|r| r.state == RunState::Failed),
        "the run did not close failed"
    );

    // The failed child, resumed (once however often asked), skipped, resumed, cancelled.
    let state = |job: Option<Job>| job.map(|j| (j.state, j.attempt, j.resumed));
    runs.resume_job(run_id, &b, 1, now).await.map_err(e)?;
    runs.resume_job(run_id, &b, 1, now).await.map_err(e)?;
    let resumed = state(runs.job(run_id, &b).await.map_err(e)?);
    ensure!(
        resumed == Some((JobState::Pending, 2, 1)),
        "resumed: {resumed:?}"
    );
    runs.skip(run_id, &b, &a, now).await.map_err(e)?;
    let skipped = runs.job(run_id, &b).await.map_err(e)?;
    ensure!(
        skipped.as_ref().is_some_and(|j| j.state == JobState::Skipped
            && j.skipped_because.as_ref() == Some(&a)),
        "skipped: {skipped:?}"
    );
    runs.resume_job(run_id, &b, 2, now).await.map_err(e)?;
    runs.cancel_job(run_id, &b, now).await.map_err(e)?;
    let cancelled = state(runs.job(run_id, &b).await.map_err(e)?);
    ensure!(
        cancelled.is_some_and(|(s, _, resumed)| s == JobState::Cancelled && resumed == 2),
        "cancelled: {cancelled:?}"
    );
    Ok(())
}

/// A small catalog for the checks of what a run plans: `suite.a` feeds `suite.b`, which feeds
/// `suite.c`; `suite.x` stands apart; all of frequency `hourly` but `suite.c`.
pub fn catalog(now: Timestamp) -> Vec<TableDoc> {
    let doc = |name: &str, parents: &[&str], frequency: Option<&str>| {
        let id: TableId = name.parse().expect("a table id");
        let definition = Table {
            frequency: frequency.map(str::to_string),
            ..Table::query(&id, "SELECT 1 AS x")
        };
        let parents = parents
            .iter()
            .map(|p| p.parse().expect("a table id"))
            .collect();
        TableDoc::unanalysed(id, definition, parents, now)
    };
    vec![
        doc("suite.a", &[], Some("hourly")),
        doc("suite.b", &["suite.a"], Some("hourly")),
        doc("suite.c", &["suite.b"], None),
        doc("suite.x", &[], Some("hourly")),
    ]
}

/// A run plans its frequency's tables; a run of chosen tables plans those, and with
/// `downstream` every table they feed, whatever its frequency. Needs `catalog`'s tables.
pub async fn a_run_plans_its_frequency_or_its_tables_and_downstream(
    runs: &impl RunPort,
    now: Timestamp,
) -> Result<(), String> {
    let e = |e: crate::ports::StoreError| e.to_string();
    let planned = |run: Run| async move {
        let mut names: Vec<String> = runs
            .plan_tables(&run)
            .await
            .map_err(e)?
            .iter()
            .map(|t| t.id.to_string())
            .collect();
        names.sort();
        Ok::<_, String>(names)
    };
    let scheduled = Run::new(
        "s".into(),
        Some("hourly"),
        Trigger::Schedule,
        now,
        None,
        2,
        now,
    );
    let got = planned(scheduled).await?;
    ensure!(
        got == ["suite.a", "suite.b", "suite.x"],
        "the frequency's run planned {got:?}"
    );
    let mut chosen = Run::new("m".into(), None, Trigger::Manual, now, None, 2, now);
    chosen.tables = vec!["suite.b".parse().expect("a table id")];
    let got = planned(chosen.clone()).await?;
    ensure!(got == ["suite.b"], "a run of suite.b planned {got:?}");
    chosen.downstream = true;
    let got = planned(chosen).await?;
    ensure!(
        got == ["suite.b", "suite.c"],
        "a run of suite.b and downstream planned {got:?}"
    );
    Ok(())
}

/// A backfill of three hourly instants, `parallel` runs at once, for the caller to store
/// first: the frequency, its schedule (naming the backfill, no run open) and the backfill.
pub fn backfill(now: Timestamp, parallel: u32) -> (Frequency, ScheduleState, Backfill) {
    let frequency = Frequency::every("hourly", 3_600);
    let schedule = ScheduleState {
        frequency: frequency.name.clone(),
        backfill: Some("suite-backfill".into()),
        ..ScheduleState::default()
    };
    let backfill = Backfill {
        schema_version: 1,
        id: "suite-backfill".into(),
        frequency: frequency.name.clone(),
        instants: (1..=3)
            .rev()
            .map(|h| now - SignedDuration::from_hours(h))
            .collect(),
        runs: vec![],
        parallel,
        state: BackfillState::Running,
        requested_by: None,
        error: None,
        created_at: now,
        finished_at: None,
    };
    (frequency, schedule, backfill)
}

/// Plans `run` (no jobs) and closes it as `summary` says, as the planner would, then frees
/// the frequency.
async fn end_run(
    runs: &impl RunPort,
    run: &Run,
    summary: &RunSummary,
    now: Timestamp,
) -> Result<Run, String> {
    let e = |e: crate::ports::StoreError| e.to_string();
    let lease = runs
        .take_lease(&run.id, "suite", now + SignedDuration::from_secs(60), now)
        .await
        .map_err(e)?;
    ensure!(
        matches!(lease, Some(LeaseOutcome::Taken(_))),
        "the lease: {lease:?}"
    );
    let planned = Planned::Jobs {
        count: 0,
        excluded: vec![],
    };
    let ended = runs
        .end_planning(&run.id, "suite", &planned, now)
        .await
        .map_err(e)?;
    ensure!(ended.is_some(), "planning {} did not end", run.id);
    let closed = runs.close(&run.id, summary, now).await.map_err(e)?;
    let closed = closed.ok_or(format!("{} did not close", run.id))?;
    runs.release_schedule(&run.frequency.clone().unwrap_or_default(), &run.id)
        .await
        .map_err(e)?;
    Ok(closed)
}

/// A backfill creates one run at a time, in order, each with the default concurrency when its
/// frequency sets none, the next only once the one before has succeeded and freed the
/// frequency; after the last, nothing more. Needs `backfill(now, 1)`'s documents.
pub async fn a_backfill_runs_its_instants_one_at_a_time(
    runs: &impl RunPort,
    now: Timestamp,
) -> Result<(), String> {
    let e = |e: crate::ports::StoreError| e.to_string();
    let (frequency, _, fixture) = backfill(now, 1);
    let name = frequency.name.as_str();
    let stored = runs.frequency(name).await.map_err(e)?;
    ensure!(
        stored.as_ref() == Some(&frequency),
        "the frequency: {stored:?}"
    );
    for (n, instant) in fixture.instants.iter().enumerate() {
        let created = runs.advance_backfill(name, 7, now).await.map_err(e)?;
        let [run] = created.as_slice() else {
            return Err(format!("instant {n} made runs {created:?}"));
        };
        ensure!(
            run.instant == *instant,
            "run {n} is for {}, not {instant}",
            run.instant
        );
        ensure!(
            run.backfill.as_deref() == Some("suite-backfill"),
            "run {n}: {run:?}"
        );
        ensure!(
            run.concurrency == 7,
            "run {n} has concurrency {}",
            run.concurrency
        );
        let again = runs.advance_backfill(name, 7, now).await.map_err(e)?;
        ensure!(
            again.is_empty(),
            "a second run while {} is open: {again:?}",
            run.id
        );
        let closed = end_run(runs, run, &RunSummary::default(), now).await?;
        ensure!(
            closed.state == RunState::Succeeded,
            "{} closed {}",
            run.id,
            closed.state
        );
    }
    let after = runs.advance_backfill(name, 7, now).await.map_err(e)?;
    ensure!(after.is_empty(), "a run after the last instant: {after:?}");
    Ok(())
}

/// A backfill of three instants two at a time: two runs start at once; when the second ends
/// the third starts (in order, whichever ended); when the first then fails the backfill
/// fails, while its third run goes on to its end. Needs `backfill(now, 2)`'s documents.
pub async fn a_parallel_backfill_keeps_its_runs_open_up_to_its_parallel(
    runs: &impl RunPort,
    now: Timestamp,
) -> Result<(), String> {
    let e = |e: crate::ports::StoreError| e.to_string();
    let (frequency, _, fixture) = backfill(now, 2);
    let name = frequency.name.as_str();
    let created = runs.advance_backfill(name, 7, now).await.map_err(e)?;
    let [first, second] = created.as_slice() else {
        return Err(format!("the first step made runs {created:?}"));
    };
    ensure!(
        [first.instant, second.instant] == fixture.instants[..2],
        "the runs are for {} and {}",
        first.instant,
        second.instant
    );
    let again = runs.advance_backfill(name, 7, now).await.map_err(e)?;
    ensure!(
        again.is_empty(),
        "a third run while two are open: {again:?}"
    );
    end_run(runs, second, &RunSummary::default(), now).await?;
    let created = runs.advance_backfill(name, 7, now).await.map_err(e)?;
    let [third] = created.as_slice() else {
        return Err(format!("after the second ended, runs {created:?}"));
    };
    ensure!(
        third.instant == fixture.instants[2],
        "the third run is for {}",
        third.instant
    );
    let failed = RunSummary {
        failed: 1,
        ..RunSummary::default()
    };
    end_run(runs, first, &failed, now).await?;
    let after = runs.advance_backfill(name, 7, now).await.map_err(e)?;
    ensure!(after.is_empty(), "runs after a failure: {after:?}");
    end_run(runs, third, &RunSummary::default(), now).await?;
    let after = runs.advance_backfill(name, 7, now).await.map_err(e)?;
    ensure!(after.is_empty(), "runs after the end: {after:?}");
    Ok(())
}

#[cfg(test)]
mod on_memory {
    use super::*;
    use crate::memory::{Memory, MemoryRuns, RunData};

    fn holding(run: Run) -> MemoryRuns {
        let mut memory = Memory::default();
        memory.runs.insert(
            run.id.clone(),
            RunData {
                run: Some(run),
                ..RunData::default()
            },
        );
        MemoryRuns::new(memory)
    }

    #[test]
    fn a_slow_planner_cannot_rewrite_a_plan_after_a_takeover() {
        let start: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        let runs = holding(fresh_run("r", start));
        futures_lite::future::block_on(
            super::a_slow_planner_cannot_rewrite_a_plan_after_a_takeover(&runs, "r", start),
        )
        .unwrap();
    }

    #[test]
    fn a_run_plans_its_frequency_or_its_tables_and_downstream() {
        let now: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        let mut memory = Memory::default();
        for table in super::catalog(now) {
            memory.tables.insert(table.id.clone(), table);
        }
        let runs = MemoryRuns::new(memory);
        futures_lite::future::block_on(
            super::a_run_plans_its_frequency_or_its_tables_and_downstream(&runs, now),
        )
        .unwrap();
    }

    fn holding_backfill(now: Timestamp, parallel: u32) -> MemoryRuns {
        let (frequency, schedule, backfill) = super::backfill(now, parallel);
        let mut memory = Memory::default();
        memory
            .frequencies
            .insert(frequency.name.clone(), frequency.clone());
        memory.schedules.insert(frequency.name.clone(), schedule);
        memory.backfills.insert(backfill.id.clone(), backfill);
        MemoryRuns::new(memory)
    }

    #[test]
    fn a_backfill_runs_its_instants_one_at_a_time() {
        let now: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        let runs = holding_backfill(now, 1);
        futures_lite::future::block_on(super::a_backfill_runs_its_instants_one_at_a_time(
            &runs, now,
        ))
        .unwrap();
        let memory = runs.state.lock().unwrap();
        assert_eq!(
            memory.backfills["suite-backfill"].state,
            BackfillState::Succeeded
        );
        assert_eq!(memory.schedules["hourly"].backfill, None);
    }

    #[test]
    fn a_parallel_backfill_keeps_its_runs_open_up_to_its_parallel() {
        let now: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        let runs = holding_backfill(now, 2);
        futures_lite::future::block_on(
            super::a_parallel_backfill_keeps_its_runs_open_up_to_its_parallel(&runs, now),
        )
        .unwrap();
        let memory = runs.state.lock().unwrap();
        let backfill = &memory.backfills["suite-backfill"];
        assert_eq!(backfill.state, BackfillState::Failed);
        assert_eq!(backfill.runs.len(), 3);
        let schedule = &memory.schedules["hourly"];
        assert_eq!(
            (&schedule.backfill, schedule.backfill_runs.len()),
            (&None, 0)
        );
    }

    #[test]
    fn a_jobs_life_from_plan_to_close() {
        let start: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        let runs = holding(fresh_run("r", start));
        futures_lite::future::block_on(super::a_jobs_life_from_plan_to_close(&runs, "r", start))
            .unwrap();
    }
}
