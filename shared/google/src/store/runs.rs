//! Runs and what belongs to them: `runs/{run}`, `runs/{run}/jobs/{table}`,
//! `runs/{run}/slots/{n}`, `schedules/{frequency}`, `backfills/{id}`. Every change is a
//! transaction whose body is a pure function of `lifecycle`.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use baton_core::catalog::{Frequency, TableDoc, TableId};
use baton_core::costs::{self, CostRow, Dimension, Rollup};
use baton_core::dag::downstream;
use baton_core::imports::{self, ImportState};
use baton_core::lifecycle::{
    self, Admission, BackfillStep, LeaseOutcome, Outcome, ParentState, Planned, Settled, admit,
    backfill_step,
};
use baton_core::ports::RunPort;
use baton_core::run::{
    Backfill, Job, JobStatistics, Run, RunSummary, ScheduleState, Slot, Transitions, Trigger,
};
use baton_core::schedule::Schedule;
use baton_core::state::{IllegalTransition, JobState};
use baton_core::sweep;

use super::{
    BACKFILLS, FREQUENCIES, JOBS, RUNS, SCHEDULES, SLOTS, Store, StoreError, TABLES, Txn, counted,
    retry_contention, stored,
};

const TRIES: u32 = 8;

/// The run holding the frequency in `state` (its open run or one of its backfill's) that has
/// not ended, other than `except`.
async fn open_holder(
    tx: &Txn<'_>,
    state: &ScheduleState,
    except: &str,
) -> Result<Option<Run>, StoreError> {
    let ids: Vec<String> = state
        .holders()
        .into_iter()
        .filter(|id| id != except)
        .collect();
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(tx
        .get_many::<Run>(None, RUNS, &ids)
        .await?
        .into_iter()
        .flatten()
        .find(|r| !r.state.is_terminal()))
}

/// An instant as a query compares it: a Firestore timestamp value (`baton_core::stamp`).
struct At(Timestamp);

impl Serialize for At {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(baton_core::stamp::TIMESTAMP_TAG, &self.0)
    }
}

fn illegal(e: IllegalTransition) -> StoreError {
    StoreError::Permanent(format!("refused an illegal state change: {e}"))
}

/// What became of a run the tick or the API asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Admitted {
    Created(Run),
    /// Recorded as skipped: another run of the frequency was open.
    Skipped(Run),
    /// A run of that id was there already.
    Exists(Run),
    /// Not created: another run of the frequency is open (a manual request is refused, not
    /// recorded).
    Busy(String),
    /// Not created: a scheduled run older than the frequency's latest handled instant
    /// (`lifecycle::too_late`).
    Late(String),
}

/// One write of a plan: a leftover job of an interrupted planning deleted, a job, a slot.
enum PlanWrite<'a> {
    DeleteJob(&'a str),
    Job(&'a Job),
    Slot(&'a Slot),
}

impl Store {
    /// Reads one document in a transaction and writes what `change` makes of it, if anything.
    /// Returns the document as it was, and as it became when it changed.
    async fn update_one<T, F>(
        &self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
        change: F,
    ) -> Result<Option<(T, Option<T>)>, StoreError>
    where
        T: Serialize + DeserializeOwned + Transitions + Send + Sync + 'static,
        F: Fn(&T) -> Result<Option<T>, IllegalTransition>,
    {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(current) = tx.get::<T>(parent, collection, id).await? else {
                tx.rollback().await;
                return Ok(None);
            };
            match change(&current).map_err(illegal)? {
                Some(new) => {
                    tx.set(parent, collection, id, &new)?;
                    tx.note(&current, &new);
                    tx.commit().await?;
                    Ok(Some((current, Some(new))))
                }
                None => {
                    tx.rollback().await;
                    Ok(Some((current, None)))
                }
            }
        })
        .await
    }

    /// Commits what `write` adds to a transaction only while `holder` holds `run_id`'s
    /// planning lease; false when it does not.
    async fn under_lease(
        &self,
        run_id: &str,
        holder: &str,
        write: impl Fn(&mut Txn<'_>) -> Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let run: Option<Run> = tx.get(None, RUNS, run_id).await?;
            if !run.is_some_and(|r| lifecycle::holds_lease(&r, holder)) {
                tx.rollback().await;
                return Ok(false);
            }
            write(&mut tx)?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn update_job<F>(
        &self,
        run_id: &str,
        table: &TableId,
        change: F,
    ) -> Result<Option<(Job, Option<Job>)>, StoreError>
    where
        F: Fn(&Job) -> Result<Option<Job>, IllegalTransition>,
    {
        let parent = self.run_path(run_id)?;
        self.update_one(Some(&parent), JOBS, &table.to_string(), change)
            .await
    }

    /// Records how an attempt ended (`RunPort::finish`); for an import that succeeded, writes
    /// its table's import state (its watermark) in the same transaction, so that the
    /// watermark moves exactly when the rows it stands for are loaded.
    pub async fn finish_import(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        outcome: &Outcome,
        state: Option<&ImportState>,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let run: Option<Run> = tx.get(None, RUNS, run_id).await?;
            let Some(job) = tx
                .get::<Job>(Some(&parent), JOBS, &table.to_string())
                .await?
            else {
                tx.rollback().await;
                return Ok(None);
            };
            let cancelled = run
                .as_ref()
                .is_some_and(|r| r.state == baton_core::state::RunState::Cancelled);
            match lifecycle::finish(&job, attempt, outcome, cancelled, now).map_err(illegal)? {
                Some(done) => {
                    tx.set(Some(&parent), JOBS, &table.to_string(), &done)?;
                    tx.note(&job, &done);
                    if let Some(state) = state
                        && done.state == JobState::Succeeded
                    {
                        tx.set(None, imports::STATE, &table.to_string(), state)?;
                    }
                    if let Some(statistics) = &done.statistics {
                        let frequency = run.as_ref().and_then(|r| r.frequency.as_deref());
                        add_costs(&mut tx, &done, frequency, statistics, now)?;
                    }
                    tx.commit().await?;
                    Ok(Some(done))
                }
                None => {
                    tx.rollback().await;
                    Ok(Some(job))
                }
            }
        })
        .await
    }

    /// The path of a run's document: the parent of its jobs and slots.
    pub fn run_path(&self, run_id: &str) -> Result<String, StoreError> {
        self.doc_path(RUNS, run_id)
    }

    /// The latest runs, newest first.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<Run>, StoreError> {
        self.db()
            .fluent()
            .select()
            .from(RUNS)
            .order(|o| o.fields([o.field("created_at").desc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// The cost of each day from `from` to `to` (`YYYY-MM-DD`, both included) by `dimension`.
    /// Served by `indexes::COST_ROLLUPS`.
    pub async fn costs(
        &self,
        dimension: Dimension,
        from: &str,
        to: &str,
    ) -> Result<Vec<CostRow>, StoreError> {
        let rollups: Vec<Rollup> = self
            .db()
            .fluent()
            .select()
            .from(costs::COLLECTION)
            .filter(|q| {
                q.for_all([
                    q.field("dimension").eq(dimension.name()),
                    q.field("day").greater_than_or_equal(from),
                    q.field("day").less_than_or_equal(to),
                ])
            })
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)?;
        Ok(costs::totals(rollups))
    }

    pub async fn schedule_state(
        &self,
        frequency: &str,
    ) -> Result<Option<ScheduleState>, StoreError> {
        self.get(None, SCHEDULES, frequency).await
    }

    /// Runs whose watch has passed (`sweep`), the longest overdue first, at most `limit`.
    /// Firestore's own single-field index on `watch_at` serves it.
    pub async fn overdue_runs(&self, now: Timestamp, limit: u32) -> Result<Vec<Run>, StoreError> {
        self.db()
            .fluent()
            .select()
            .from(RUNS)
            .filter(|q| q.for_all([q.field("watch_at").less_than_or_equal(At(now))]))
            .order(|o| o.fields([o.field("watch_at").asc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Jobs of every run whose watch has passed (`sweep`), the longest overdue first, at most
    /// `limit`: one collection-group query, served by `indexes::OVERDUE_JOBS`.
    pub async fn overdue_jobs(&self, now: Timestamp, limit: u32) -> Result<Vec<Job>, StoreError> {
        let watched: Vec<&str> = [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        self.db()
            .fluent()
            .select()
            .from(JOBS)
            .all_descendants()
            .filter(|q| {
                q.for_all([
                    q.field("state").is_in(watched.clone()),
                    q.field("watch_at").less_than_or_equal(At(now)),
                ])
            })
            .order(|o| o.fields([o.field("watch_at").asc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// A table's jobs in every run, the latest run time first, at most `limit`: one
    /// collection-group query, served by `indexes::TABLE_JOBS`.
    pub async fn table_jobs(&self, table: &TableId, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.db()
            .fluent()
            .select()
            .from(JOBS)
            .all_descendants()
            .filter(|q| q.for_all([q.field("table").eq(table.to_string())]))
            .order(|o| o.fields([o.field("run_time").desc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Records what a sweep sent: on the job's `attempt` (counted, watched again later) when
    /// it was for a job, and on the run (noted; watched again later when it was for the run).
    /// False when the job has moved on since it was read (nothing is recorded).
    pub async fn swept(
        &self,
        run_id: &str,
        job: Option<(&TableId, u32)>,
        what: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if let Some((table, attempt)) = job {
            let changed = self
                .update_job(run_id, table, |j| Ok(sweep::swept_job(j, attempt, now)))
                .await?;
            if !matches!(changed, Some((_, Some(_)))) {
                return Ok(false);
            }
        }
        self.update_one(None, RUNS, run_id, |run: &Run| {
            Ok(Some(sweep::swept_run(run, what, job.is_none(), now)))
        })
        .await?;
        Ok(true)
    }

    pub async fn backfill(&self, id: &str) -> Result<Option<Backfill>, StoreError> {
        self.get(None, BACKFILLS, id).await
    }

    /// Creates a frequency's run under the one-open-run rule, recording the instants missed
    /// since the last one. With `refuse_when_busy`, an open run refuses the new one instead of
    /// recording it skipped (a manual request).
    pub async fn admit(
        &self,
        run: &Run,
        schedule: &Schedule,
        refuse_when_busy: bool,
        now: Timestamp,
    ) -> Result<Admitted, StoreError> {
        let frequency = run.frequency.clone().unwrap_or_default();
        // A repeated tick finds its run with one read, without a transaction: only the first
        // takes the schedule's lock.
        if let Some(existing) = self.get::<Run>(None, RUNS, &run.id).await? {
            return Ok(Admitted::Exists(existing));
        }
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            if let Some(existing) = tx.get::<Run>(None, RUNS, &run.id).await? {
                tx.rollback().await;
                return Ok(Admitted::Exists(existing));
            }
            let state: Option<ScheduleState> = tx.get(None, SCHEDULES, &frequency).await?;
            if let Some(reason) = lifecycle::too_late(run, state.as_ref()) {
                tx.rollback().await;
                return Ok(Admitted::Late(reason));
            }
            let open = match &state {
                Some(state) => open_holder(&tx, state, &run.id).await?,
                None => None,
            };
            let busy = open.as_ref().filter(|o| !o.state.is_terminal());
            if let (true, Some(open)) = (refuse_when_busy, busy) {
                tx.rollback().await;
                return Ok(Admitted::Busy(format!(
                    "run {} of {frequency} is {}",
                    open.id, open.state
                )));
            }
            let mut run = run.clone();
            if run.trigger == Trigger::Schedule
                && let Some(last) = state.as_ref().and_then(|s| s.last_instant)
                && last < run.instant
            {
                let missed = schedule.missed_between(last, run.instant);
                if missed > 0 {
                    run.missed_instants = u32::try_from(missed).unwrap_or(u32::MAX);
                    run.missed_since = schedule.between(last, run.instant, 1).first().copied();
                }
            }
            let Admission { run, schedule } = admit(run, state, open.as_ref(), now);
            tx.set(None, RUNS, &run.id, &run)?;
            tx.set(None, SCHEDULES, &frequency, &schedule)?;
            tx.commit().await?;
            Ok(if run.state == baton_core::state::RunState::Skipped {
                Admitted::Skipped(run)
            } else {
                Admitted::Created(run)
            })
        })
        .await
    }

    /// Creates a run of chosen tables (no frequency, no schedule rule).
    pub async fn create_table_run(&self, run: &Run) -> Result<Admitted, StoreError> {
        match self.create(None, RUNS, &run.id, run).await {
            Ok(()) => Ok(Admitted::Created(run.clone())),
            Err(StoreError::AlreadyExists(_)) => {
                match self.get::<Run>(None, RUNS, &run.id).await? {
                    Some(existing) => Ok(Admitted::Exists(existing)),
                    None => Err(StoreError::Unavailable(format!(
                        "run {} exists and cannot be read",
                        run.id
                    ))),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Resumes a failed run, if its frequency has no other open run. Returns the resumed run,
    /// or why not.
    pub async fn resume(
        &self,
        run_id: &str,
        now: Timestamp,
    ) -> Result<Result<Run, String>, StoreError> {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(run) = tx.get::<Run>(None, RUNS, run_id).await? else {
                tx.rollback().await;
                return Ok(Err(format!("no run {run_id}")));
            };
            let Some(resumed) = lifecycle::resume_run(&run, now).map_err(illegal)? else {
                tx.rollback().await;
                return Ok(Err(format!(
                    "run {run_id} is {}: only a failed run can be resumed",
                    run.state
                )));
            };
            if let Some(frequency) = &run.frequency {
                let mut state: ScheduleState = tx
                    .get(None, SCHEDULES, frequency)
                    .await?
                    .unwrap_or_default();
                if let Some(open) = open_holder(&tx, &state, run_id).await? {
                    tx.rollback().await;
                    return Ok(Err(format!(
                        "run {} of {frequency} is open: resume {run_id} when it has ended",
                        open.id
                    )));
                }
                state.frequency = frequency.clone();
                state.open_run = Some(run_id.to_string());
                tx.set(None, SCHEDULES, frequency, &state)?;
            }
            tx.set(None, RUNS, run_id, &resumed)?;
            tx.note(&run, &resumed);
            tx.commit().await?;
            Ok(Ok(resumed))
        })
        .await
    }

    /// Cancels a run that has not ended; returns it as it is after.
    pub async fn cancel(&self, run_id: &str, now: Timestamp) -> Result<Option<Run>, StoreError> {
        Ok(self
            .update_one(None, RUNS, run_id, |run: &Run| {
                lifecycle::cancel_run(run, now)
            })
            .await?
            .map(|(before, after)| after.unwrap_or(before)))
    }

    /// Cancels the backfill `id` as a whole, and its runs that have not ended, in one
    /// transaction: a run it was about to start is either started before (and cancelled
    /// here) or not at all. The backfill as it is after, and its runs for the planner to
    /// close: those cancelled now or, asked again, those cancelled and not yet closed. None
    /// when there is no such backfill.
    pub async fn cancel_backfill(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<(Backfill, Vec<Run>)>, StoreError> {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(backfill) = tx.get::<Backfill>(None, BACKFILLS, id).await? else {
                tx.rollback().await;
                return Ok(None);
            };
            let schedule: Option<ScheduleState> =
                tx.get(None, SCHEDULES, &backfill.frequency).await?;
            let ids =
                lifecycle::backfill_reads(&schedule.clone().unwrap_or_default(), Some(&backfill));
            let runs: Vec<Run> = tx
                .get_many::<Run>(None, RUNS, &ids)
                .await?
                .into_iter()
                .flatten()
                .filter(|r| r.backfill.as_deref() == Some(id))
                .collect();
            let Some((cancelled, schedule)) =
                lifecycle::cancel_backfill(&backfill, schedule.as_ref(), now)
            else {
                tx.rollback().await;
                let unclosed = runs
                    .into_iter()
                    .filter(|r| {
                        r.state == baton_core::state::RunState::Cancelled && r.summary.is_none()
                    })
                    .collect();
                return Ok(Some((backfill, unclosed)));
            };
            let mut stopped = Vec::new();
            for open in &runs {
                if let Some(run) = lifecycle::cancel_run(open, now).map_err(illegal)? {
                    tx.set(None, RUNS, &run.id, &run)?;
                    tx.note(open, &run);
                    stopped.push(run);
                }
            }
            if let Some(schedule) = &schedule {
                tx.set(None, SCHEDULES, &backfill.frequency, schedule)?;
            }
            tx.set(None, BACKFILLS, id, &cancelled)?;
            tx.commit().await?;
            Ok(Some((cancelled, stopped)))
        })
        .await
    }

    /// Starts a backfill of a frequency, unless one is in progress. Its runs are created by
    /// `advance_backfill` one after another.
    pub async fn start_backfill(
        &self,
        backfill: &Backfill,
    ) -> Result<Result<(), String>, StoreError> {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let mut state: ScheduleState = tx
                .get(None, SCHEDULES, &backfill.frequency)
                .await?
                .unwrap_or_else(|| ScheduleState {
                    frequency: backfill.frequency.clone(),
                    ..ScheduleState::default()
                });
            if let Some(active) = &state.backfill {
                tx.rollback().await;
                return Ok(Err(format!(
                    "backfill {active} of {} is in progress",
                    backfill.frequency
                )));
            }
            if tx
                .get::<Backfill>(None, BACKFILLS, &backfill.id)
                .await?
                .is_some()
            {
                tx.rollback().await;
                return Ok(Err(format!("backfill {} exists", backfill.id)));
            }
            state.backfill = Some(backfill.id.clone());
            tx.set(None, BACKFILLS, &backfill.id, backfill)?;
            tx.set(None, SCHEDULES, &backfill.frequency, &state)?;
            tx.commit().await?;
            Ok(Ok(()))
        })
        .await
    }
}

impl RunPort for Store {
    async fn run(&self, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.get(None, RUNS, run_id).await
    }

    async fn job(&self, run_id: &str, table: &TableId) -> Result<Option<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        self.get(Some(&parent), JOBS, &table.to_string()).await
    }

    async fn jobs(&self, run_id: &str) -> Result<Vec<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        self.list(Some(&parent), JOBS).await
    }

    /// Served by `indexes::WAITING_JOBS`.
    async fn waiting_jobs(&self, run_id: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        self.db()
            .fluent()
            .select()
            .from(JOBS)
            .parent(&parent)
            .filter(|q| {
                q.for_all([
                    q.field("state").eq(JobState::Queued.as_str()),
                    q.field("dispatched").eq(false),
                ])
            })
            .order(|o| o.fields([o.field("priority").desc(), o.field("table").asc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Served by `indexes::JOBS_BY_DISPATCH_CAUSE`.
    async fn dispatched_by(&self, run_id: &str, cause: &str) -> Result<Vec<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        let cause = cause.to_string();
        self.db()
            .fluent()
            .select()
            .from(JOBS)
            .parent(&parent)
            .filter(|q| {
                q.for_all([
                    q.field("dispatch_cause").eq(cause.clone()),
                    q.field("state").eq(JobState::Queued.as_str()),
                ])
            })
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    async fn free_slots(&self, run_id: &str) -> Result<Vec<Slot>, StoreError> {
        let parent = self.run_path(run_id)?;
        self.db()
            .fluent()
            .select()
            .from(SLOTS)
            .parent(&parent)
            .filter(|q| q.for_all([q.field("taken").eq(false)]))
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    async fn has_open_jobs(&self, run_id: &str) -> Result<bool, StoreError> {
        let parent = self.run_path(run_id)?;
        let open: Vec<&str> = JobState::OPEN.iter().map(|s| s.as_str()).collect();
        let found: Vec<Job> = self
            .db()
            .fluent()
            .select()
            .from(JOBS)
            .parent(&parent)
            .filter(|q| q.for_all([q.field("state").is_in(open.clone())]))
            .limit(1)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)?;
        Ok(!found.is_empty())
    }

    async fn frequency(&self, name: &str) -> Result<Option<Frequency>, StoreError> {
        self.get(None, FREQUENCIES, name).await
    }

    async fn plan_tables(&self, run: &Run) -> Result<Vec<TableDoc>, StoreError> {
        if run.tables.is_empty() {
            return match &run.frequency {
                Some(f) => self.tables_of_frequency(f).await,
                None => Ok(Vec::new()),
            };
        }
        let all: Vec<TableDoc> = if run.downstream {
            self.tables().await?
        } else {
            let ids: Vec<String> = run.tables.iter().map(ToString::to_string).collect();
            self.get_many(None, TABLES, ids).await?
        };
        let chosen = if run.downstream {
            downstream(&all, &run.tables)
        } else {
            run.tables.iter().cloned().collect()
        };
        Ok(all.into_iter().filter(|t| chosen.contains(&t.id)).collect())
    }

    async fn take_lease(
        &self,
        run_id: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<LeaseOutcome>, StoreError> {
        let outcome = std::sync::Mutex::new(None);
        let done = self
            .update_one(None, RUNS, run_id, |run: &Run| {
                let o = lifecycle::take_lease(run, holder, until, now)?;
                let write = match &o {
                    LeaseOutcome::Taken(r) => Some((**r).clone()),
                    _ => None,
                };
                *outcome.lock().expect("not poisoned") = Some(o);
                Ok(write)
            })
            .await?;
        Ok(done.and(outcome.into_inner().expect("not poisoned")))
    }

    async fn write_plan(
        &self,
        run_id: &str,
        holder: &str,
        jobs: Vec<Job>,
        slots: u32,
    ) -> Result<bool, StoreError> {
        let parent = self.run_path(run_id)?;
        // An interrupted planning may have written jobs of a catalog that has changed since:
        // nothing has run yet, so the plan is rewritten whole.
        let planned: BTreeSet<String> = jobs.iter().map(|j| j.table.to_string()).collect();
        let leftovers: Vec<String> = RunPort::jobs(self, run_id)
            .await?
            .into_iter()
            .map(|j| j.table.to_string())
            .filter(|id| !planned.contains(id))
            .collect();
        let slots: Vec<Slot> = (0..slots).map(Slot::free).collect();
        let writes: Vec<PlanWrite<'_>> = leftovers
            .iter()
            .map(|id| PlanWrite::DeleteJob(id))
            .chain(jobs.iter().map(PlanWrite::Job))
            .chain(slots.iter().map(PlanWrite::Slot))
            .collect();
        // Each commit reads the run and writes only while the lease is still `holder`'s.
        let weight = |write: &PlanWrite<'_>| match write {
            PlanWrite::Job(job) => super::json_size(*job),
            _ => 100,
        };
        for chunk in super::commits(&writes, weight) {
            let written = self
                .under_lease(run_id, holder, |tx| {
                    chunk.iter().try_for_each(|write| match write {
                        PlanWrite::DeleteJob(id) => tx.delete(Some(&parent), JOBS, id),
                        PlanWrite::Job(job) => {
                            tx.set(Some(&parent), JOBS, &job.table.to_string(), *job)
                        }
                        PlanWrite::Slot(slot) => {
                            tx.set(Some(&parent), SLOTS, &slot.index.to_string(), *slot)
                        }
                    })
                })
                .await?;
            if !written {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn end_planning(
        &self,
        run_id: &str,
        holder: &str,
        planned: &Planned,
        now: Timestamp,
    ) -> Result<Option<Run>, StoreError> {
        Ok(self
            .update_one(None, RUNS, run_id, |run: &Run| {
                lifecycle::end_planning(run, holder, planned, now)
            })
            .await?
            .and_then(|(_, after)| after))
    }

    async fn claim(
        &self,
        run_id: &str,
        slot: u32,
        table: &TableId,
        cause: &str,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let current_slot: Option<Slot> = tx.get(Some(&parent), SLOTS, &slot.to_string()).await?;
            let job: Option<Job> = tx.get(Some(&parent), JOBS, &table.to_string()).await?;
            let claimed = match (current_slot, job) {
                (Some(s), Some(j)) => lifecycle::claim(&s, &j, cause, now),
                _ => None,
            };
            let Some((new_slot, new_job)) = claimed else {
                tx.rollback().await;
                return Ok(None);
            };
            tx.set(Some(&parent), SLOTS, &slot.to_string(), &new_slot)?;
            tx.set(Some(&parent), JOBS, &table.to_string(), &new_job)?;
            tx.commit().await?;
            tracing::info!(table = %table, attempt = new_job.attempt, slot, priority = new_job.priority, "job dispatched");
            Ok(Some(new_job))
        })
        .await
    }

    async fn release(
        &self,
        run_id: &str,
        slot: u32,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), StoreError> {
        let parent = self.run_path(run_id)?;
        self.update_one(Some(&parent), SLOTS, &slot.to_string(), |s: &Slot| {
            Ok(lifecycle::release(s, table, attempt))
        })
        .await
        .map(|_| ())
    }

    async fn settle(
        &self,
        run_id: &str,
        table: &TableId,
        now: Timestamp,
    ) -> Result<Option<Settled>, StoreError> {
        let parent = self.run_path(run_id)?;
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(job) = tx
                .get::<Job>(Some(&parent), JOBS, &table.to_string())
                .await?
            else {
                tx.rollback().await;
                return Ok(None);
            };
            if job.state != JobState::Pending {
                tx.rollback().await;
                return Ok(None);
            }
            let ids: Vec<String> = job.parents.iter().map(ToString::to_string).collect();
            let parents: Vec<Option<Job>> = tx.get_many(Some(&parent), JOBS, &ids).await?;
            let states: Vec<ParentState> = job
                .parents
                .iter()
                .zip(&parents)
                .map(|(id, p)| match p {
                    Some(p) => (id.clone(), p.state, p.skipped_because.clone()),
                    None => (id.clone(), JobState::Pending, None),
                })
                .collect();
            let Some(settled) = lifecycle::settle(&job, &states, now).map_err(illegal)? else {
                tx.rollback().await;
                return Ok(None);
            };
            let written = match &settled {
                Settled::Queued(j) | Settled::Skipped(j) => j,
            };
            tx.set(Some(&parent), JOBS, &table.to_string(), written)?;
            tx.note(&job, written);
            tx.commit().await?;
            Ok(Some(settled))
        })
        .await
    }

    async fn skip(
        &self,
        run_id: &str,
        table: &TableId,
        because: &TableId,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .update_job(run_id, table, |job| lifecycle::skip(job, because, now))
            .await?
            .map(|(before, after)| after.unwrap_or(before)))
    }

    async fn close(
        &self,
        run_id: &str,
        summary: &RunSummary,
        now: Timestamp,
    ) -> Result<Option<Run>, StoreError> {
        Ok(self
            .update_one(None, RUNS, run_id, |run: &Run| {
                lifecycle::close(run, summary, now)
            })
            .await?
            .and_then(|(_, after)| after))
    }

    async fn cancel_job(
        &self,
        run_id: &str,
        table: &TableId,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .update_job(run_id, table, |job| lifecycle::cancel_job(job, now))
            .await?
            .and_then(|(_, after)| after))
    }

    async fn resume_job(
        &self,
        run_id: &str,
        table: &TableId,
        resume: u32,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .update_job(run_id, table, |job| lifecycle::resume_job(job, resume, now))
            .await?
            .and_then(|(_, after)| after))
    }

    async fn watch_job(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.update_job(run_id, table, |job| {
            Ok(sweep::rewatch_job(job, attempt, until))
        })
        .await
        .map(|_| ())
    }

    async fn unwatch_run(&self, run_id: &str) -> Result<(), StoreError> {
        self.update_one(None, RUNS, run_id, |run: &Run| Ok(sweep::unwatch_run(run)))
            .await
            .map(|_| ())
    }

    async fn unwatch_job(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), StoreError> {
        self.update_job(run_id, table, |job| Ok(sweep::unwatch_job(job, attempt)))
            .await
            .map(|_| ())
    }

    async fn release_schedule(&self, frequency: &str, run_id: &str) -> Result<(), StoreError> {
        self.update_one(None, SCHEDULES, frequency, |s: &ScheduleState| {
            Ok(lifecycle::release_schedule(s, run_id))
        })
        .await
        .map(|_| ())
    }

    async fn advance_backfill(
        &self,
        frequency: &str,
        default_concurrency: u32,
        now: Timestamp,
    ) -> Result<Vec<Run>, StoreError> {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let state: Option<ScheduleState> = tx.get(None, SCHEDULES, frequency).await?;
            let Some(state) = state.filter(|s| s.backfill.is_some() || !s.backfill_runs.is_empty())
            else {
                tx.rollback().await;
                return Ok(Vec::new());
            };
            let backfill: Option<Backfill> = match &state.backfill {
                Some(id) => tx.get(None, BACKFILLS, id).await?,
                None => None,
            };
            let definition: Option<Frequency> = tx.get(None, FREQUENCIES, frequency).await?;
            let Some(definition) = definition else {
                tx.rollback().await;
                return Ok(Vec::new());
            };
            let ids = lifecycle::backfill_reads(&state, backfill.as_ref());
            let seen: Vec<Run> = tx
                .get_many::<Run>(None, RUNS, &ids)
                .await?
                .into_iter()
                .flatten()
                .collect();
            let step = backfill_step(
                &state,
                backfill.as_ref(),
                &seen,
                &definition,
                default_concurrency,
                now,
            );
            let Some(BackfillStep {
                schedule,
                backfill,
                runs,
            }) = step
            else {
                tx.rollback().await;
                return Ok(Vec::new());
            };
            for run in &runs {
                tx.set(None, RUNS, &run.id, run)?;
            }
            if let Some(backfill) = &backfill {
                tx.set(None, BACKFILLS, &backfill.id, backfill)?;
            }
            tx.set(None, SCHEDULES, frequency, &schedule)?;
            tx.commit().await?;
            if let Some(backfill) = backfill.filter(|b| b.finished_at.is_some()) {
                tracing::info!(backfill = %backfill.id, state = ?backfill.state, "backfill ended");
            }
            for run in &runs {
                tracing::info!(backfill = ?run.backfill, run_id = %run.id, "backfill run created");
            }
            Ok(runs)
        })
        .await
    }

    async fn start(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        bigquery_job_id: &str,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        Ok(self
            .update_job(run_id, table, |job| {
                lifecycle::start(job, attempt, bigquery_job_id, now)
            })
            .await?
            .map(|(before, after)| after.unwrap_or(before)))
    }

    async fn finish(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        outcome: &Outcome,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.finish_import(run_id, table, attempt, outcome, None, now)
            .await
    }

    async fn retry(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        error: &str,
        backoff: SignedDuration,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(job) = tx
                .get::<Job>(Some(&parent), JOBS, &table.to_string())
                .await?
            else {
                tx.rollback().await;
                return Ok(None);
            };
            let slot: Option<Slot> = match job.slot {
                Some(i) => tx.get(Some(&parent), SLOTS, &i.to_string()).await?,
                None => None,
            };
            let Some((next, slot)) =
                lifecycle::retry(&job, slot.as_ref(), attempt, error, backoff, now)
                    .map_err(illegal)?
            else {
                tx.rollback().await;
                return Ok(None);
            };
            if let Some(slot) = &slot {
                tx.set(Some(&parent), SLOTS, &slot.index.to_string(), slot)?;
            }
            tx.set(Some(&parent), JOBS, &table.to_string(), &next)?;
            tx.note(&job, &next);
            tx.commit().await?;
            Ok(Some(next))
        })
        .await
    }
}

/// Adds an ended job's figures to its roll-ups, in the transaction that records it ended.
fn add_costs(
    tx: &mut Txn<'_>,
    job: &Job,
    frequency: Option<&str>,
    statistics: &JobStatistics,
    ended: Timestamp,
) -> Result<(), StoreError> {
    let increments = [
        ("jobs", 1i64.into()),
        ("cost", statistics.cost.into()),
        ("bytes_billed", statistics.bytes_billed.into()),
        ("bytes_processed", statistics.bytes_processed.into()),
        ("slot_ms", statistics.slot_ms.into()),
    ];
    for key in costs::keys(job, frequency, ended) {
        tx.add(
            costs::COLLECTION,
            &key.id(),
            &key,
            &["day", "dimension", "value", "shard"],
            &increments,
        )?;
    }
    Ok(())
}
