//! Runs and their jobs and slots: `runs/{run}`, `runs/{run}/jobs/{table}`,
//! `runs/{run}/slots/{n}`.

use crate::catalog::TableId;
use crate::run::{Job, Run, Slot};
use crate::state::JobState;

use super::{JOBS, RUNS, SLOTS, Store, StoreError};

impl Store {
    /// The path of a run's document: the parent of its jobs and slots.
    pub fn run_path(&self, run_id: &str) -> Result<String, StoreError> {
        self.doc_path(RUNS, run_id)
    }

    pub async fn run(&self, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.get(None, RUNS, run_id).await
    }

    /// Creates the run's document; `AlreadyExists` when a run of that id is there.
    pub async fn create_run(&self, run: &Run) -> Result<(), StoreError> {
        self.create(None, RUNS, &run.id, run).await
    }

    /// The latest runs, newest first.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<Run>, StoreError> {
        Ok(self
            .db()
            .fluent()
            .select()
            .from(RUNS)
            .order(|o| o.fields([o.field("created_at").desc()]))
            .limit(limit)
            .obj()
            .query()
            .await?)
    }

    pub async fn job(&self, run_id: &str, table: &TableId) -> Result<Option<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        self.get(Some(&parent), JOBS, &table.to_string()).await
    }

    pub async fn jobs(&self, run_id: &str) -> Result<Vec<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        self.list(Some(&parent), JOBS).await
    }

    /// Queued jobs not yet dispatched, the most important first.
    pub async fn waiting_jobs(&self, run_id: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        Ok(self
            .db()
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
            .await?)
    }

    /// Jobs dispatched while handling `cause` and not started yet.
    pub async fn dispatched_by(&self, run_id: &str, cause: &str) -> Result<Vec<Job>, StoreError> {
        let parent = self.run_path(run_id)?;
        let cause = cause.to_string();
        Ok(self
            .db()
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
            .await?)
    }

    pub async fn free_slots(&self, run_id: &str) -> Result<Vec<Slot>, StoreError> {
        let parent = self.run_path(run_id)?;
        Ok(self
            .db()
            .fluent()
            .select()
            .from(SLOTS)
            .parent(&parent)
            .filter(|q| q.for_all([q.field("taken").eq(false)]))
            .obj()
            .query()
            .await?)
    }

    /// Whether any job of the run is still pending, queued or running.
    pub async fn has_open_jobs(&self, run_id: &str) -> Result<bool, StoreError> {
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
            .await?;
        Ok(!found.is_empty())
    }
}
