//! The planner: told by Pub/Sub push that a run was created or a job finished.
//!
//! - Run created: freeze the plan (one job document per table with its parents, children and
//!   priority; a cycle fails the run), then dispatch.
//! - Job finished: release its slot; queue the children whose parents all succeeded, or skip
//!   the descendants of a job that did not succeed; dispatch; close the run when nothing is open.
//! - Dispatch: while the run has a free slot and a queued job, claim both in one transaction,
//!   most important job first, and publish the job to the executor.
//!
//! Every step reads the documents and acts on what they say, in transactions, so a repeated,
//! late or concurrent message does nothing twice. A job dispatched while handling an event
//! records that event; a repeat of the event publishes the dispatch again, which covers a
//! planner that died between its commit and its publish (the executor is idempotent).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use tracing::Instrument;

use baton_shared::bus::{Bus, BusError};
use baton_shared::catalog::{Table, TableId};
use baton_shared::config::{ConfigError, Env, Gcp, Listen};
use baton_shared::dag;
use baton_shared::http::{PushOutcome, Retryable, decode_push, healthz};
use baton_shared::messages::{ExecutorTask, PlannerEvent};
use baton_shared::run::{Job, Lease, Run, RunSummary, Slot};
use baton_shared::state::{IllegalTransition, JobState, Readiness, RunState, readiness};
use baton_shared::store::{Contended, JOBS, RUNS, SLOTS, Store, StoreError, retry_contention};

const TRIES: u32 = 8;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    /// How long a planner may take to write a run's plan before another may take over
    /// (`BATON_PLANNING_LEASE_SECONDS`).
    pub planning_lease_seconds: i64,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env(env)?,
            gcp: Gcp::from_env(env)?,
            planning_lease_seconds: env.parse_or("BATON_PLANNING_LEASE_SECONDS", 120)?,
        })
    }
}

#[derive(Debug)]
pub struct App {
    store: Store,
    bus: Bus,
    config: Config,
    /// This process, in the names of the planning leases its handlings take.
    process: String,
    handlings: std::sync::atomic::AtomicU64,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let process = format!(
            "planner-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        );
        Ok(Self {
            store: Store::connect(&config.gcp).await?,
            bus: Bus::new(&config.gcp)?,
            config,
            process,
            handlings: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A name for one handling's planning lease: two deliveries of one run handled at once by
    /// the same process must not both think they hold it.
    fn lease_holder(&self) -> String {
        let n = self
            .handlings
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.process)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Another planner is writing the run's plan.
    #[error("busy: {0}")]
    Busy(String),
    /// The message no longer applies (an unknown run, an old attempt).
    #[error("stale: {0}")]
    Stale(String),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
}

impl Retryable for PlannerError {
    fn is_retryable(&self) -> bool {
        match self {
            PlannerError::Store(e) => e.is_retryable(),
            PlannerError::Bus(e) => e.is_retryable(),
            PlannerError::Busy(_) => true,
            PlannerError::Stale(_) | PlannerError::Illegal(_) => false,
        }
    }
}

impl Contended for PlannerError {
    fn is_contention(&self) -> bool {
        matches!(self, PlannerError::Store(e) if e.is_contention())
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/pubsub", post(pubsub))
        .route("/healthz", get(healthz))
        .with_state(app)
}

async fn pubsub(State(app): State<Arc<App>>, body: Bytes) -> PushOutcome {
    let push = match decode_push::<PlannerEvent>(&body) {
        Ok(push) => push,
        Err(reason) => {
            tracing::error!(%reason, "malformed message acknowledged");
            return PushOutcome::Ignored(reason);
        }
    };
    let span = tracing::info_span!(
        "planner",
        run_id = %push.body.run_id(),
        message_id = %push.message_id,
        event = %push.body.cause()
    );
    PushOutcome::from_result(handle(&app, &push.body).instrument(span).await)
}

/// Handles one event.
pub async fn handle(app: &App, event: &PlannerEvent) -> Result<(), PlannerError> {
    let cause = event.cause();
    match event {
        PlannerEvent::RunCreated { run_id } => {
            freeze(app, run_id).await?;
            dispatch(app, run_id, &cause).await?;
            close_if_done(app, run_id).await
        }
        PlannerEvent::JobFinished {
            run_id,
            table,
            attempt,
        } => {
            let Some(job) = app.store.job(run_id, table).await? else {
                return Err(PlannerError::Stale(format!(
                    "run {run_id} has no job {table}"
                )));
            };
            if job.attempt != *attempt {
                return Err(PlannerError::Stale(format!(
                    "{table} is at attempt {}, not {attempt}",
                    job.attempt
                )));
            }
            if !job.state.is_terminal() {
                return Err(PlannerError::Stale(format!(
                    "{table} attempt {attempt} is {}, not finished",
                    job.state
                )));
            }
            if let Some(index) = job.slot {
                retry_contention(TRIES, || release_slot(app, run_id, index, table, *attempt))
                    .await?;
            }
            if job.state == JobState::Succeeded {
                for child in &job.children {
                    let settled = retry_contention(TRIES, || settle(app, run_id, child)).await?;
                    if let Some(skipped) = settled {
                        skip_descendants(app, run_id, &skipped).await?;
                    }
                }
            } else {
                skip_descendants(app, run_id, &job).await?;
            }
            dispatch(app, run_id, &cause).await?;
            close_if_done(app, run_id).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Freezing the plan

enum LeaseOutcome {
    Taken,
    /// The plan is frozen already (the run is running or over).
    Planned,
}

async fn freeze(app: &App, run_id: &str) -> Result<(), PlannerError> {
    let Some(run) = app.store.run(run_id).await? else {
        return Err(PlannerError::Stale(format!("no run {run_id}")));
    };
    if !matches!(run.state, RunState::Created | RunState::Planning) {
        return Ok(());
    }
    let holder = app.lease_holder();
    if let LeaseOutcome::Planned =
        retry_contention(TRIES, || take_lease(app, run_id, &holder)).await?
    {
        return Ok(());
    }

    let tables = app.store.tables_of_frequency(&run.frequency).await?;
    let parents: BTreeMap<TableId, Vec<TableId>> = tables
        .iter()
        .map(|t| (t.id.clone(), t.parents.clone()))
        .collect();
    let planned = match dag::plan(&parents) {
        Ok(planned) => planned,
        Err(cycle) => {
            tracing::error!(%cycle, "the run's tables form a cycle");
            retry_contention(TRIES, || {
                end_planning(app, run_id, &holder, Err(cycle.to_string()))
            })
            .await?;
            return Ok(());
        }
    };
    let mut definitions: HashMap<TableId, Table> =
        tables.into_iter().map(|t| (t.id, t.definition)).collect();
    let now = Timestamp::now();
    let project = &app.config.gcp.bigquery_project;
    let jobs: Vec<(String, Job)> = planned
        .into_iter()
        .map(|p| {
            let definition = definitions
                .remove(&p.table)
                .expect("planned from these tables");
            (
                p.table.to_string(),
                Job::planned(run_id, p, definition, project, now),
            )
        })
        .collect();

    // An interrupted planning may have written jobs of a catalog that has changed since:
    // nothing has run yet, so the plan is rewritten whole.
    let parent = app.store.run_path(run_id)?;
    let planned_ids: BTreeSet<&String> = jobs.iter().map(|(id, _)| id).collect();
    let leftovers: Vec<String> = app
        .store
        .jobs(run_id)
        .await?
        .into_iter()
        .map(|j| j.table.to_string())
        .filter(|id| !planned_ids.contains(id))
        .collect();
    app.store
        .delete_all(Some(&parent), JOBS, &leftovers)
        .await?;
    app.store.set_all(Some(&parent), JOBS, &jobs).await?;
    let slots: Vec<(String, Slot)> = (0..run.concurrency)
        .map(|i| (i.to_string(), Slot::free(i)))
        .collect();
    app.store.set_all(Some(&parent), SLOTS, &slots).await?;

    let job_count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
    retry_contention(TRIES, || end_planning(app, run_id, &holder, Ok(job_count))).await?;
    tracing::info!(
        jobs = job_count,
        concurrency = run.concurrency,
        "plan frozen"
    );
    Ok(())
}

/// Takes (or renews) the right to write the run's plan.
async fn take_lease(app: &App, run_id: &str, holder: &str) -> Result<LeaseOutcome, PlannerError> {
    let mut tx = app.store.begin().await?;
    let Some(mut run) = tx.get::<Run>(None, RUNS, run_id).await? else {
        tx.rollback().await;
        return Err(PlannerError::Stale(format!("no run {run_id}")));
    };
    let now = Timestamp::now();
    match (run.state, &run.planning_lease) {
        (RunState::Created, _) => {}
        (RunState::Planning, Some(lease)) if lease.holder != holder && lease.until > now => {
            tx.rollback().await;
            return Err(PlannerError::Busy(format!(
                "{} is planning run {run_id} until {}",
                lease.holder, lease.until
            )));
        }
        (RunState::Planning, _) => {}
        _ => {
            tx.rollback().await;
            return Ok(LeaseOutcome::Planned);
        }
    }
    if run.state == RunState::Created {
        run.transition(RunState::Planning, now)?;
    }
    run.planning_lease = Some(Lease {
        holder: holder.to_string(),
        until: now + SignedDuration::from_secs(app.config.planning_lease_seconds),
    });
    tx.set(None, RUNS, run_id, &run)?;
    tx.commit().await?;
    Ok(LeaseOutcome::Taken)
}

/// Ends planning, if this planner still holds the lease: the run starts with `Ok(job_count)`,
/// or fails with `Err(reason)`.
async fn end_planning(
    app: &App,
    run_id: &str,
    holder: &str,
    outcome: Result<u32, String>,
) -> Result<(), PlannerError> {
    let mut tx = app.store.begin().await?;
    let Some(mut run) = tx.get::<Run>(None, RUNS, run_id).await? else {
        tx.rollback().await;
        return Err(PlannerError::Stale(format!("no run {run_id}")));
    };
    let holds_lease = run
        .planning_lease
        .as_ref()
        .is_some_and(|l| l.holder == holder);
    if run.state != RunState::Planning || !holds_lease {
        tx.rollback().await;
        return Err(PlannerError::Busy(format!(
            "lost the planning lease of run {run_id}"
        )));
    }
    let now = Timestamp::now();
    run.planning_lease = None;
    run.planned_at = Some(now);
    match outcome {
        Ok(job_count) => {
            run.transition(RunState::Running, now)?;
            run.job_count = job_count;
        }
        Err(reason) => {
            run.transition(RunState::Failed, now)?;
            run.error = Some(reason);
        }
    }
    tx.set(None, RUNS, run_id, &run)?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dispatching

/// Dispatches queued jobs into free slots until one or the other runs out, after publishing
/// again what an earlier handling of `cause` dispatched.
async fn dispatch(app: &App, run_id: &str, cause: &str) -> Result<(), PlannerError> {
    match app.store.run(run_id).await? {
        Some(run) if run.state == RunState::Running => {}
        _ => return Ok(()),
    }
    for job in app.store.dispatched_by(run_id, cause).await? {
        if job.dispatched {
            publish_dispatch(app, &job).await?;
        }
    }
    loop {
        let free = app.store.free_slots(run_id).await?;
        if free.is_empty() {
            return Ok(());
        }
        let waiting = app
            .store
            .waiting_jobs(run_id, u32::try_from(free.len()).unwrap_or(u32::MAX))
            .await?;
        if waiting.is_empty() {
            return Ok(());
        }
        // Take the free slots from a rotating start, so that planners racing on one run
        // mostly try different slots.
        let start = (Timestamp::now().subsec_nanosecond().unsigned_abs() as usize) % free.len();
        let mut progressed = false;
        for (i, job) in waiting.iter().enumerate() {
            let slot = free[(start + i) % free.len()].index;
            let claimed =
                retry_contention(TRIES, || claim(app, run_id, slot, &job.table, cause)).await?;
            if let Some(job) = claimed {
                publish_dispatch(app, &job).await?;
                progressed = true;
            }
        }
        // Losing every claim means another planner is filling this run's slots: it will look
        // again after its claims, so stopping here leaves nothing behind.
        if !progressed {
            return Ok(());
        }
    }
}

/// Claims a free slot for a waiting job, both or neither.
async fn claim(
    app: &App,
    run_id: &str,
    slot_index: u32,
    table: &TableId,
    cause: &str,
) -> Result<Option<Job>, PlannerError> {
    let parent = app.store.run_path(run_id)?;
    let mut tx = app.store.begin().await?;
    let slot: Option<Slot> = tx
        .get(Some(&parent), SLOTS, &slot_index.to_string())
        .await?;
    let job: Option<Job> = tx.get(Some(&parent), JOBS, &table.to_string()).await?;
    let (Some(mut slot), Some(mut job)) = (slot, job) else {
        tx.rollback().await;
        return Ok(None);
    };
    if slot.taken || job.state != JobState::Queued || job.dispatched {
        tx.rollback().await;
        return Ok(None);
    }
    slot.taken = true;
    slot.table = Some(table.clone());
    slot.attempt = Some(job.attempt);
    job.dispatched = true;
    job.slot = Some(slot_index);
    job.dispatch_cause = Some(cause.to_string());
    job.dispatched_at = Some(Timestamp::now());
    tx.set(Some(&parent), SLOTS, &slot_index.to_string(), &slot)?;
    tx.set(Some(&parent), JOBS, &table.to_string(), &job)?;
    tx.commit().await?;
    tracing::info!(table = %table, attempt = job.attempt, slot = slot_index, priority = job.priority, "job dispatched");
    Ok(Some(job))
}

async fn publish_dispatch(app: &App, job: &Job) -> Result<(), PlannerError> {
    let task = ExecutorTask::RunQuery {
        run_id: job.run_id.clone(),
        table: job.table.clone(),
        attempt: job.attempt,
    };
    app.bus
        .publish(&app.config.gcp.topics.executor, &task)
        .await?;
    Ok(())
}

/// Frees the slot if that attempt of that job still holds it.
async fn release_slot(
    app: &App,
    run_id: &str,
    index: u32,
    table: &TableId,
    attempt: u32,
) -> Result<(), PlannerError> {
    let parent = app.store.run_path(run_id)?;
    let mut tx = app.store.begin().await?;
    match tx
        .get::<Slot>(Some(&parent), SLOTS, &index.to_string())
        .await?
    {
        Some(slot) if slot.held_by(table, attempt) => {
            tx.set(Some(&parent), SLOTS, &index.to_string(), &Slot::free(index))?;
            tx.commit().await?;
        }
        _ => tx.rollback().await,
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Children and failures

/// Queues a pending child whose parents all succeeded, or skips one with a parent that did
/// not; returns the child when it was skipped, for its descendants to follow.
async fn settle(app: &App, run_id: &str, child: &TableId) -> Result<Option<Job>, PlannerError> {
    let parent = app.store.run_path(run_id)?;
    let mut tx = app.store.begin().await?;
    let Some(mut job) = tx
        .get::<Job>(Some(&parent), JOBS, &child.to_string())
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
    let states: Vec<(&TableId, JobState)> = job
        .parents
        .iter()
        .zip(&parents)
        .map(|(id, p)| (id, p.as_ref().map_or(JobState::Pending, |p| p.state)))
        .collect();
    let now = Timestamp::now();
    let skipped = match readiness(states) {
        Readiness::Waiting => {
            tx.rollback().await;
            return Ok(None);
        }
        Readiness::Ready => {
            job.transition(JobState::Queued, now)?;
            false
        }
        Readiness::Blocked(because) => {
            job.transition(JobState::Skipped, now)?;
            job.skipped_because = Some(because);
            true
        }
    };
    tx.set(Some(&parent), JOBS, &child.to_string(), &job)?;
    tx.commit().await?;
    Ok(skipped.then_some(job))
}

/// Skips every pending descendant of a job that did not succeed, naming the failed ancestor.
/// Walks the whole subtree even past jobs skipped already, so that a walk interrupted by a
/// crash is completed by the redelivery.
async fn skip_descendants(app: &App, run_id: &str, root: &Job) -> Result<(), PlannerError> {
    let because = root
        .skipped_because
        .clone()
        .unwrap_or_else(|| root.table.clone());
    let mut queue: VecDeque<TableId> = root.children.iter().cloned().collect();
    let mut seen: BTreeSet<TableId> = queue.iter().cloned().collect();
    while let Some(table) = queue.pop_front() {
        let job = retry_contention(TRIES, || skip(app, run_id, &table, &because)).await?;
        for child in job.map(|j| j.children).unwrap_or_default() {
            if seen.insert(child.clone()) {
                queue.push_back(child);
            }
        }
    }
    Ok(())
}

/// Skips a pending job; returns the job, skipped or not, so that the walk can go on.
async fn skip(
    app: &App,
    run_id: &str,
    table: &TableId,
    because: &TableId,
) -> Result<Option<Job>, PlannerError> {
    let parent = app.store.run_path(run_id)?;
    let mut tx = app.store.begin().await?;
    let Some(mut job) = tx
        .get::<Job>(Some(&parent), JOBS, &table.to_string())
        .await?
    else {
        tx.rollback().await;
        return Ok(None);
    };
    if job.state != JobState::Pending {
        tx.rollback().await;
        return Ok(Some(job));
    }
    job.transition(JobState::Skipped, Timestamp::now())?;
    job.skipped_because = Some(because.clone());
    tx.set(Some(&parent), JOBS, &table.to_string(), &job)?;
    tx.commit().await?;
    Ok(Some(job))
}

// ---------------------------------------------------------------------------------------------
// Closing

/// Closes the run when none of its jobs is open: `succeeded` when all succeeded, else
/// `failed` with a summary of what failed and what was skipped.
async fn close_if_done(app: &App, run_id: &str) -> Result<(), PlannerError> {
    if app.store.has_open_jobs(run_id).await? {
        return Ok(());
    }
    match app.store.run(run_id).await? {
        Some(run) if run.state == RunState::Running => {}
        _ => return Ok(()),
    }
    let mut summary = RunSummary::default();
    for job in app.store.jobs(run_id).await? {
        match job.state {
            JobState::Succeeded => summary.succeeded += 1,
            JobState::Failed => {
                summary.failed += 1;
                summary.failed_tables.push(job.table);
            }
            JobState::Skipped => summary.skipped += 1,
            JobState::Cancelled => summary.cancelled += 1,
            JobState::Pending | JobState::Queued | JobState::Running => return Ok(()),
        }
    }
    summary.failed_tables.sort();
    retry_contention(TRIES, || close(app, run_id, &summary)).await
}

async fn close(app: &App, run_id: &str, summary: &RunSummary) -> Result<(), PlannerError> {
    let mut tx = app.store.begin().await?;
    let Some(mut run) = tx.get::<Run>(None, RUNS, run_id).await? else {
        tx.rollback().await;
        return Ok(());
    };
    if run.state != RunState::Running {
        tx.rollback().await;
        return Ok(());
    }
    let to = if summary.failed == 0 && summary.cancelled == 0 && summary.skipped == 0 {
        RunState::Succeeded
    } else {
        RunState::Failed
    };
    run.transition(to, Timestamp::now())?;
    run.summary = Some(summary.clone());
    tx.set(None, RUNS, run_id, &run)?;
    tx.commit().await?;
    Ok(())
}
