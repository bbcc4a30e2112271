//! The executor's decisions about one attempt of one job, as pure functions: what a delivery
//! does given the job as it stands, whether a failure is retried and after how long, how long
//! a job may run, and what every BigQuery job carries (labels, parameters, extract paths).

use std::collections::HashMap;
use std::time::Duration;

use crate::catalog::{Extract, TableId, WriteMode};
use crate::ids::label_value;
use crate::run::{Instants, Job};
use crate::state::JobState;
use crate::warehouse::{WarehouseError, is_transient};

/// The longest pause before a retried attempt.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(300);

/// What a delivery of "run attempt N of this job" does, given the job as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The attempt was retried as a later one, recorded but perhaps never sent (a crash
    /// between the two): send the job's current attempt again.
    ResendNext,
    /// Start the attempt's BigQuery job (after its `retry_at`).
    Start,
    /// Its BigQuery job was started: attach to it.
    Attach,
    /// The attempt ended: tell the planner again (and the alert channel, for a failure);
    /// the delivery that ended it may have died before it could.
    Report,
    /// Nothing to do, and nothing another delivery could change: acknowledge.
    Stale(String),
}

/// Decides a delivery for `attempt` of `job`.
pub fn delivery(job: &Job, attempt: u32) -> Delivery {
    if job.attempt > attempt && job.state == JobState::Queued && job.dispatched {
        return Delivery::ResendNext;
    }
    if job.attempt != attempt {
        return Delivery::Stale(format!(
            "{} is at attempt {}, not {attempt}",
            job.table, job.attempt
        ));
    }
    match job.state {
        JobState::Queued if job.dispatched => Delivery::Start,
        JobState::Running => Delivery::Attach,
        JobState::Pending | JobState::Queued => Delivery::Stale(format!(
            "{} was not dispatched (it is {})",
            job.table, job.state
        )),
        _ => Delivery::Report,
    }
}

/// Attempts a job gets: its table's retries and one, else the service's bound.
pub fn max_attempts(job: &Job, default: u32) -> u32 {
    job.definition
        .options
        .retries
        .map_or(default, |r| r.saturating_add(1))
}

/// After a BigQuery job of `attempt` failed with `reason` and `message`: the pause before the
/// next attempt, or `None` when the job fails for good (a permanent error, or no attempts
/// left). The pause doubles with each attempt from `base`, up to `MAX_RETRY_BACKOFF`.
pub fn retry_after(
    job: &Job,
    attempt: u32,
    reason: &str,
    message: &str,
    default_max_attempts: u32,
    base: Duration,
) -> Option<Duration> {
    if !is_transient(reason, message) || attempt >= max_attempts(job, default_max_attempts) {
        return None;
    }
    Some(backoff(attempt, base))
}

/// The pause after a transient failure of `attempt`: `base`, doubling with each attempt, up to
/// `MAX_RETRY_BACKOFF`.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_RETRY_BACKOFF)
}

/// The table's timeout, if it has one.
pub fn timeout(job: &Job) -> Option<Duration> {
    job.definition
        .options
        .timeout_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
}

/// The labels on every BigQuery job, so that the billing export attributes its cost.
pub fn labels(job: &Job) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        ("baton-run".to_string(), label_value(&job.run_id)),
        (
            "baton-table".to_string(),
            label_value(&job.table.to_string()),
        ),
    ]);
    if let Some(user) = &job.attributed_user {
        labels.insert("baton-user".into(), label_value(user));
    }
    if let Some(group) = &job.attributed_group {
        labels.insert("baton-group".into(), label_value(group));
    }
    labels
}

/// The run's instants, for the parameters the SQL uses; an overwrite of the run's window
/// needs both ends of it, whatever the SQL uses.
pub fn timestamps(job: &Job) -> Result<Vec<(String, Option<jiff::Timestamp>)>, WarehouseError> {
    let mut names: Vec<&str> = job.parameters.iter().map(String::as_str).collect();
    if job.definition.write_mode == WriteMode::OverwritePartitions {
        if job.window_start.is_none() {
            return Err(WarehouseError::Invalid(
                "write mode overwrite_partitions replaces the run's window, and this run has \
                 none (a run of tables outside any frequency): run it with its frequency"
                    .into(),
            ));
        }
        for name in ["window_start", "window_end"] {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(Instants {
        run_time: job.run_time,
        window_start: job.window_start,
    }
    .parameters(&names))
}

/// Where an attempt's extract writes: the prefix of its objects in the bucket, and the URI
/// BigQuery numbers its files under.
pub fn extract_place(job: &Job, bucket: &str, spec: &Extract) -> (String, String) {
    let table: &TableId = &job.table;
    let prefix = format!(
        "{}/{}/{}/{}/",
        table.dataset(),
        table.table(),
        job.run_id,
        job.attempt
    );
    let uri = format!("gs://{bucket}/{prefix}{}-*{}", table.table(), spec.suffix());
    (prefix, uri)
}

/// The id of an attempt's `number`th extract job: it follows from the query job's, so a
/// redelivery attaches to the extract already started.
pub fn extract_job_id(query_job_id: &str, number: u32) -> String {
    format!("{query_job_id}_extract_{number}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Table;
    use crate::dag::PlannedJob;
    use crate::run::{Run, Trigger};

    fn job(state: JobState, attempt: u32, dispatched: bool) -> Job {
        let now = "2026-12-01T10:00:00Z".parse().unwrap();
        let run = Run::new("r".into(), None, Trigger::Manual, now, None, 2, now);
        let table: TableId = "d.t".parse().unwrap();
        let planned = PlannedJob {
            table: table.clone(),
            parents: vec![],
            outside_parents: vec![],
            children: vec![],
            priority: 0,
        };
        let definition = Table::query(&table, "SELECT 1 AS x");
        let mut job = Job::planned(&run, planned, definition, vec![], "test", now);
        job.state = state;
        job.attempt = attempt;
        job.dispatched = dispatched;
        job
    }

    #[test]
    fn a_delivery_is_decided_by_the_job_as_it_stands() {
        assert_eq!(
            delivery(&job(JobState::Queued, 2, true), 1),
            Delivery::ResendNext
        );
        assert_eq!(
            delivery(&job(JobState::Queued, 1, true), 1),
            Delivery::Start
        );
        assert_eq!(
            delivery(&job(JobState::Running, 1, true), 1),
            Delivery::Attach
        );
        assert_eq!(
            delivery(&job(JobState::Succeeded, 1, true), 1),
            Delivery::Report
        );
        assert_eq!(
            delivery(&job(JobState::Failed, 1, true), 1),
            Delivery::Report
        );
        assert!(matches!(
            delivery(&job(JobState::Queued, 1, false), 1),
            Delivery::Stale(_)
        ));
        assert!(matches!(
            delivery(&job(JobState::Running, 2, true), 1),
            Delivery::Stale(_)
        ));
        assert!(matches!(
            delivery(&job(JobState::Running, 1, true), 2),
            Delivery::Stale(_)
        ));
    }

    #[test]
    fn transient_failures_are_retried_with_a_doubling_pause_until_attempts_run_out() {
        let j = job(JobState::Running, 1, true);
        let base = Duration::from_secs(10);
        let retry = |attempt| retry_after(&j, attempt, "backendError", "", 3, base);
        assert_eq!(retry(1), Some(Duration::from_secs(10)));
        assert_eq!(retry(2), Some(Duration::from_secs(20)));
        assert_eq!(retry(3), None, "three attempts in all");
        assert_eq!(
            retry_after(&j, 1, "invalidQuery", "Unrecognized name", 3, base),
            None
        );
        assert_eq!(
            retry_after(&j, 9, "backendError", "", 20, base),
            Some(MAX_RETRY_BACKOFF)
        );
        let mut own = j.clone();
        own.definition.options.retries = Some(0);
        assert_eq!(retry_after(&own, 1, "backendError", "", 3, base), None);
    }
}
