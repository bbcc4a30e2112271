//! The messages the services send each other through Pub/Sub: one topic per receiving
//! service, the payload a JSON object tagged by `event`. Messages carry ids, never state:
//! the receiver reads the documents, so a late or repeated message acts on what is true now.

use serde::{Deserialize, Serialize};

use crate::catalog::TableId;
use crate::run::Job;

/// What the planner is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PlannerEvent {
    /// A run was created: freeze its plan and dispatch its first jobs.
    RunCreated { run_id: String },
    /// A job ended (succeeded, failed or was cancelled): release its slot, queue or skip its
    /// children, dispatch what can go, close the run when nothing is left.
    JobFinished {
        run_id: String,
        table: TableId,
        attempt: u32,
    },
    /// A failed run was resumed (for the `resume`-th time): reset what did not succeed.
    RunResumed { run_id: String, resume: u32 },
    /// A run was cancelled: cancel what has not started, stop what runs.
    RunCancelled { run_id: String },
}

impl PlannerEvent {
    /// `job`'s current attempt ended.
    pub fn job_finished(job: &Job) -> Self {
        PlannerEvent::JobFinished {
            run_id: job.run_id.clone(),
            table: job.table.clone(),
            attempt: job.attempt,
        }
    }

    pub fn run_id(&self) -> &str {
        match self {
            PlannerEvent::RunCreated { run_id }
            | PlannerEvent::JobFinished { run_id, .. }
            | PlannerEvent::RunResumed { run_id, .. }
            | PlannerEvent::RunCancelled { run_id } => run_id,
        }
    }

    /// The event's identity within its run, whatever message carried it: a job dispatched
    /// while handling it records this, and a repeat of the event publishes that dispatch again.
    pub fn cause(&self) -> String {
        match self {
            PlannerEvent::RunCreated { .. } => "run_created".to_string(),
            PlannerEvent::JobFinished { table, attempt, .. } => {
                format!("finished:{table}#{attempt}")
            }
            PlannerEvent::RunResumed { resume, .. } => format!("resumed#{resume}"),
            PlannerEvent::RunCancelled { .. } => "cancelled".to_string(),
        }
    }
}

/// What the executor is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExecutorTask {
    /// Run this attempt of this table's job.
    RunQuery {
        run_id: String,
        table: TableId,
        attempt: u32,
    },
    /// Cancel this attempt's BigQuery job: its run was cancelled.
    Cancel {
        run_id: String,
        table: TableId,
        attempt: u32,
    },
}

impl ExecutorTask {
    /// Run `job`'s current attempt.
    pub fn run_query(job: &Job) -> Self {
        ExecutorTask::RunQuery {
            run_id: job.run_id.clone(),
            table: job.table.clone(),
            attempt: job.attempt,
        }
    }

    /// Stop `job`'s current attempt's BigQuery job.
    pub fn cancel(job: &Job) -> Self {
        ExecutorTask::Cancel {
            run_id: job.run_id.clone(),
            table: job.table.clone(),
            attempt: job.attempt,
        }
    }

    pub fn parts(&self) -> (&str, &TableId, u32) {
        match self {
            ExecutorTask::RunQuery {
                run_id,
                table,
                attempt,
            }
            | ExecutorTask::Cancel {
                run_id,
                table,
                attempt,
            } => (run_id, table, *attempt),
        }
    }
}

/// What the importer is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ImporterTask {
    /// Copy this attempt of this import table's job from its database and load it.
    Import {
        run_id: String,
        table: TableId,
        attempt: u32,
    },
    /// Load what waits for this load table if its batching policy says so at `at` (the
    /// tick's instant; now when absent), or whatever waits (held files too) when forced.
    Consider {
        table: TableId,
        force: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<String>")]
        at: Option<jiff::Timestamp>,
    },
    /// Load this batch of this load table's files (or attach to its load, or record its end).
    Load { table: TableId, batch: String },
}

impl ImporterTask {
    /// Import `job`'s current attempt.
    pub fn import(job: &Job) -> Self {
        ImporterTask::Import {
            run_id: job.run_id.clone(),
            table: job.table.clone(),
            attempt: job.attempt,
        }
    }

    pub fn table(&self) -> &TableId {
        match self {
            ImporterTask::Import { table, .. }
            | ImporterTask::Consider { table, .. }
            | ImporterTask::Load { table, .. } => table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json() {
        let event = PlannerEvent::JobFinished {
            run_id: "daily-20261122T020000Z".into(),
            table: "shop.orders".parse().unwrap(),
            attempt: 2,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "job_finished", "run_id": "daily-20261122T020000Z",
                               "table": "shop.orders", "attempt": 2})
        );
        assert_eq!(serde_json::from_value::<PlannerEvent>(json).unwrap(), event);
        assert_eq!(event.cause(), "finished:shop.orders#2");
    }
}
