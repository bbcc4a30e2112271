//! The ports the planner's protocol runs on, so that it runs unchanged on Firestore and
//! Pub/Sub in production and on an in-memory model in the property tests.
//!
//! `RunPort` reads a run's documents and changes them through transactions whose bodies are
//! the pure functions of `lifecycle`. `Publish` sends the services' messages.

use std::future::Future;

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{Frequency, TableDoc, TableId};
use crate::errors::Retryable;
use crate::lifecycle::{LeaseOutcome, Outcome, Planned, Settled};
use crate::messages::{ExecutorTask, PlannerEvent};
use crate::run::{Job, Run, RunSummary, Slot};

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
    /// Frees the frequency if `run_id` was its open run.
    fn release_schedule(
        &self,
        frequency: &str,
        run_id: &str,
    ) -> impl Future<Output = Answer<()>> + Send;
    /// Creates the next run of the frequency's backfill when nothing of the frequency is open,
    /// capped by the frequency's concurrency or else `default_concurrency`; returns it for
    /// announcing.
    fn advance_backfill(
        &self,
        frequency: &str,
        default_concurrency: u32,
        now: Timestamp,
    ) -> impl Future<Output = Answer<Option<Run>>> + Send;

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
}
