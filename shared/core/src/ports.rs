//! The ports the planner and the executor are written against, so that they run unchanged on
//! Firestore, Pub/Sub, BigQuery and Cloud Storage in production and on an in-memory model in
//! the property tests.
//!
//! `RunPort` reads a run's documents and changes them through transactions whose bodies are
//! the pure functions of `lifecycle`. `Publish` sends the services' messages. `WarehousePort`
//! runs and watches BigQuery jobs and shapes their tables; `BlobPort` lists and signs what an
//! extract wrote; `Notices` tells people (a table's notify URL, the alert channel).

use std::future::Future;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{Frequency, TableDoc, TableId};
use crate::errors::Retryable;
use crate::lifecycle::{LeaseOutcome, Outcome, Planned, Settled};
use crate::messages::{ExecutorTask, ImporterTask, PlannerEvent};
use crate::run::{Job, NotifyRecord, Run, RunSummary, Slot};
use crate::warehouse::{
    DryRun, ExtractJob, Field, JobProgress, QueryJob, TableShape, WarehouseError,
};
use crate::writes::Column;

/// How a store's answer can fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// Another writer got there first (an aborted transaction): try again.
    #[error("contention: {0}")]
    Contention(String),
    /// A precondition did not hold, or the request needs what is not there (an index).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store refused: {0}")]
    Permanent(String),
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Contention(_) | StoreError::Unavailable(_))
    }
}

/// How a publish can fail.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the message bus is unavailable: {0}")]
    Unavailable(String),
    #[error("the message bus refused the request: {0}")]
    Permanent(String),
}

impl Retryable for BusError {
    fn is_retryable(&self) -> bool {
        matches!(self, BusError::Unavailable(_))
    }
}

/// How a request to blob storage can fail.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("Cloud Storage unavailable: {0}")]
    Unavailable(String),
    #[error("Cloud Storage refused: {0}")]
    Permanent(String),
}

impl Retryable for StorageError {
    fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }
}

type Answer<T> = Result<T, StoreError>;

pub trait RunPort: Send + Sync {
    fn run(&self, run_id: &str) -> impl Future<Output = Answer<Option<Run>>> + Send;
    fn job(
        &self,
        run_id: &str,
        table: &TableId,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    fn jobs(&self, run_id: &str) -> impl Future<Output = Answer<Vec<Job>>> + Send;
    /// Queued jobs not yet dispatched, the most important first.
    fn waiting_jobs(
        &self,
        run_id: &str,
        limit: u32,
    ) -> impl Future<Output = Answer<Vec<Job>>> + Send;
    /// Jobs dispatched while handling `cause` and not started yet.
    fn dispatched_by(
        &self,
        run_id: &str,
        cause: &str,
    ) -> impl Future<Output = Answer<Vec<Job>>> + Send;
    fn free_slots(&self, run_id: &str) -> impl Future<Output = Answer<Vec<Slot>>> + Send;
    /// Whether any job of the run is pending, queued or running.
    fn has_open_jobs(&self, run_id: &str) -> impl Future<Output = Answer<bool>> + Send;
    fn frequency(&self, name: &str) -> impl Future<Output = Answer<Option<Frequency>>> + Send;
    /// The catalog tables of a run's plan: its frequency's, or the tables it names (with all
    /// downstream of them when it says so).
    fn plan_tables(&self, run: &Run) -> impl Future<Output = Answer<Vec<TableDoc>>> + Send;

    /// `None` when there is no such run.
    fn take_lease(
        &self,
        run_id: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<LeaseOutcome>>> + Send;
    /// Writes the plan's jobs (replacing any of an interrupted planning) and `slots` free
    /// slots, each commit only while `holder` holds the run's planning lease
    /// (`lifecycle::holds_lease`). False, with nothing more written, once it does not.
    fn write_plan(
        &self,
        run_id: &str,
        holder: &str,
        jobs: Vec<Job>,
        slots: u32,
    ) -> impl Future<Output = Answer<bool>> + Send;
    fn end_planning(
        &self,
        run_id: &str,
        holder: &str,
        planned: &Planned,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Run>>> + Send;
    fn claim(
        &self,
        run_id: &str,
        slot: u32,
        table: &TableId,
        cause: &str,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    fn release(
        &self,
        run_id: &str,
        slot: u32,
        table: &TableId,
        attempt: u32,
    ) -> impl Future<Output = Answer<()>> + Send;
    fn settle(
        &self,
        run_id: &str,
        table: &TableId,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Settled>>> + Send;
    /// Skips a pending job; returns the job, skipped or not, so that a walk can go on.
    fn skip(
        &self,
        run_id: &str,
        table: &TableId,
        because: &TableId,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    fn close(
        &self,
        run_id: &str,
        summary: &RunSummary,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Run>>> + Send;
    fn cancel_job(
        &self,
        run_id: &str,
        table: &TableId,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    fn resume_job(
        &self,
        run_id: &str,
        table: &TableId,
        resume: u32,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    /// Watches a running job's `attempt` until `until` (`sweep::rewatch_job`).
    fn watch_job(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        until: Timestamp,
    ) -> impl Future<Output = Answer<()>> + Send;
    /// Stops watching the run (`sweep`): the planner handled its event to the end.
    fn unwatch_run(&self, run_id: &str) -> impl Future<Output = Answer<()>> + Send;
    /// Stops watching the job's `attempt` (`sweep`): the planner handled its end.
    fn unwatch_job(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> impl Future<Output = Answer<()>> + Send;
    /// Frees the frequency if `run_id` was its open run.
    fn release_schedule(
        &self,
        frequency: &str,
        run_id: &str,
    ) -> impl Future<Output = Answer<()>> + Send;
    /// Moves the frequency's backfill on (`lifecycle::backfill_step`): forgets its runs that
    /// ended, ends it at a failed run or after its last, and creates the runs of its next
    /// instants while fewer than its `parallel` are open and no other run of the frequency
    /// is; each capped by the frequency's concurrency or else `default_concurrency`. Returns
    /// the runs created, for announcing.
    fn advance_backfill(
        &self,
        frequency: &str,
        default_concurrency: u32,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Vec<Run>>> + Send;

    /// Moves a dispatched job to running; returns the job as it is after.
    fn start(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        bigquery_job_id: &str,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    /// Records how an attempt ended; returns the job as it is after.
    fn finish(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        outcome: &Outcome,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
    /// Queues the next attempt after a transient failure; returns it when it was queued.
    fn retry(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        error: &str,
        backoff: SignedDuration,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Job>>> + Send;
}

pub trait Publish: Send + Sync {
    fn to_planner(&self, event: &PlannerEvent)
    -> impl Future<Output = Result<(), BusError>> + Send;
    fn to_executor(&self, task: &ExecutorTask)
    -> impl Future<Output = Result<(), BusError>> + Send;
    fn to_importer(&self, task: &ImporterTask)
    -> impl Future<Output = Result<(), BusError>> + Send;
}

type Asked<T> = Result<T, WarehouseError>;

/// BigQuery as the executor uses it.
pub trait WarehousePort: Send + Sync {
    /// Creates the dataset unless it exists.
    fn ensure_dataset(&self, dataset: &str) -> impl Future<Output = Asked<()>> + Send;
    /// Starts a query job under its id, or attaches to the one that id already names.
    fn start_query(&self, job: &QueryJob<'_>) -> impl Future<Output = Asked<JobProgress>> + Send;
    /// Starts an extract job under its id, or attaches to the one that id already names.
    fn start_extract(
        &self,
        job: &ExtractJob<'_>,
    ) -> impl Future<Output = Asked<JobProgress>> + Send;
    fn job_progress(&self, job_id: &str) -> impl Future<Output = Asked<JobProgress>> + Send;
    /// How a query job stands after waiting up to `max` for it to end: BigQuery answers as
    /// soon as it ends, so its end is seen at once rather than at the next poll. An
    /// implementation that cannot wait answers at once, as `job_progress`.
    fn wait_for_query(
        &self,
        job_id: &str,
        max: Duration,
    ) -> impl Future<Output = Asked<JobProgress>> + Send {
        let _ = max;
        self.job_progress(job_id)
    }
    /// Asks for a job to stop; it ends with an error when it does.
    fn cancel_job(&self, job_id: &str) -> impl Future<Output = Asked<()>> + Send;
    /// A query's result schema and the bytes it would read, without running it.
    fn dry_run(
        &self,
        sql: &str,
        default_dataset: &str,
        timestamps: &[(String, Option<Timestamp>)],
    ) -> impl Future<Output = Asked<DryRun>> + Send;
    /// A table's schema, `None` when there is no such table.
    fn schema(&self, table: &TableId) -> impl Future<Output = Asked<Option<Vec<Field>>>> + Send;
    /// Creates a table; one that exists already (two deliveries racing) is left as it is.
    fn create_table(
        &self,
        table: &TableId,
        schema: &[Field],
        shape: TableShape<'_>,
    ) -> impl Future<Output = Asked<()>> + Send;
    /// Adds the fields of `result` named in `added` to a table whose schema is `current`
    /// (as NULLABLE).
    fn add_columns(
        &self,
        table: &TableId,
        current: &[Field],
        result: &[Field],
        added: &[Column],
    ) -> impl Future<Output = Asked<()>> + Send;
    /// Makes the table expire at `at`; returns its row count after, when BigQuery says it.
    fn set_expiration(
        &self,
        table: &TableId,
        at: Timestamp,
    ) -> impl Future<Output = Asked<Option<i64>>> + Send;
    /// The table's row count, `None` when BigQuery does not say.
    fn row_count(&self, table: &TableId) -> impl Future<Output = Asked<Option<i64>>> + Send;
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    pub size: u64,
}

/// Blob storage (Cloud Storage) as the executor uses it.
pub trait BlobPort: Send + Sync {
    /// The objects whose names start with `prefix`, by name.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<Object>, StorageError>> + Send;
    /// A URL that lets its holder GET the object until `expiry` has passed.
    fn signed_url(
        &self,
        bucket: &str,
        object: &str,
        expiry: Duration,
    ) -> impl Future<Output = Result<String, StorageError>> + Send;
}

/// What the executor tells people.
pub trait Notices: Send + Sync {
    /// POSTs `body` to a table's notify URL, trying until `until`; what happened, for the
    /// job's record. Never the URL in a log.
    fn notify(
        &self,
        url: &str,
        body: &serde_json::Value,
        until: Instant,
    ) -> impl Future<Output = NotifyRecord> + Send;
    /// Tells the alert channel a job failed, once per job and attempt however often asked.
    fn job_failed(&self, job: &Job) -> impl Future<Output = ()> + Send;
}
