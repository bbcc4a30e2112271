//! The messages the services send each other through Pub/Sub: one topic per receiving
//! service, the payload a JSON object tagged by `event`. Messages carry ids, never state:
//! the receiver reads the documents, so a late or repeated message acts on what is true now.

use serde::{Deserialize, Serialize};

use crate::catalog::TableId;

/// What the planner is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl PlannerEvent {
    pub fn run_id(&self) -> &str {
        match self {
            PlannerEvent::RunCreated { run_id } | PlannerEvent::JobFinished { run_id, .. } => {
                run_id
            }
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
        }
    }
}

/// What the executor is told: run this attempt of this table's job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ExecutorTask {
    RunQuery {
        run_id: String,
        table: TableId,
        attempt: u32,
    },
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
