//! Runs and jobs as they are stored: `runs/{run}`, `runs/{run}/jobs/{table}`,
//! `runs/{run}/slots/{n}`, `schedules/{frequency}` and `backfills/{id}`. A person should
//! understand a run by opening these documents in the Firestore console, so fields are named
//! in words and times are timestamps.
//!
//! The shapes are versioned (`schema_version`) and pinned by golden tests: a change of shape
//! is a decision, not an accident.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::{Table, TableId};
use crate::dag::PlannedJob;
use crate::state::{IllegalTransition, JobState, RunState};

pub const RUN_SCHEMA_VERSION: u32 = 1;
pub const JOB_SCHEMA_VERSION: u32 = 1;

/// A run's cap on jobs at once when its frequency sets none and `BATON_DEFAULT_CONCURRENCY`
/// says nothing either.
pub const DEFAULT_CONCURRENCY: u32 = 10;

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The tick, at the frequency's scheduled instant.
    Schedule,
    /// A person or a tool, through the API.
    Manual,
    /// One instant of a backfill over a past range.
    Backfill,
}

/// `runs/{id}`: one execution of a frequency, or of chosen tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Run {
    pub schema_version: u32,
    pub id: String,
    /// The frequency it runs; none for a run of chosen tables.
    #[serde(default)]
    pub frequency: Option<String>,
    pub trigger: Trigger,
    /// The instant the run is for: `@run_time` and `@window_end` in its queries.
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub instant: Timestamp,
    /// The start of the period it covers, `@window_start` (the schedule's previous instant).
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub window_start: Option<Timestamp>,
    pub state: RunState,
    /// At most this many of its jobs are dispatched at once.
    pub concurrency: u32,
    /// How many jobs its plan has (set when the plan is frozen).
    #[serde(default)]
    pub job_count: u32,
    /// For a run of chosen tables: those tables, and whether all they feed runs too.
    #[serde(default)]
    pub tables: Vec<TableId>,
    #[serde(default)]
    pub downstream: bool,
    #[serde(default)]
    pub requested_by: Option<String>,
    /// The backfill it belongs to.
    #[serde(default)]
    pub backfill: Option<String>,
    /// Scheduled instants before this one that got no run (the scheduler was not called),
    /// and the first of them.
    #[serde(default)]
    pub missed_instants: u32,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub missed_since: Option<Timestamp>,
    /// Tables of the frequency left out because their calendar conditions did not hold.
    #[serde(default)]
    pub excluded: Vec<TableId>,
    /// How many times it was resumed after failing.
    #[serde(default)]
    pub resumes: u32,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub created_at: Timestamp,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub planned_at: Option<Timestamp>,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub finished_at: Option<Timestamp>,
    /// Who holds the right to write the plan, and until when (see the planner).
    #[serde(default)]
    pub planning_lease: Option<Lease>,
    /// Why the run failed as a whole (a cycle, say) or was skipped, in words.
    #[serde(default)]
    pub error: Option<String>,
    /// How its jobs ended, written when it closes.
    #[serde(default)]
    pub summary: Option<RunSummary>,
    /// When the tick's sweep looks at it if nothing has moved it on (`sweep`): set while a
    /// planner event about it (its creation, a resume, a cancel) is not handled to its end.
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub watch_at: Option<Timestamp>,
    /// What the sweep sent again for it and its jobs (the last ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<crate::sweep::SweepNote>,
}

/// A time-limited claim on a piece of work, so that a crashed holder's work is taken over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Lease {
    pub holder: String,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub until: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunSummary {
    pub succeeded: u32,
    pub failed: u32,
    pub skipped: u32,
    pub cancelled: u32,
    /// The tables that failed, for a failed run.
    #[serde(default)]
    pub failed_tables: Vec<TableId>,
}

impl Run {
    /// A run of `frequency` for `instant`, created by `trigger`.
    pub fn new(
        id: String,
        frequency: Option<&str>,
        trigger: Trigger,
        instant: Timestamp,
        window_start: Option<Timestamp>,
        concurrency: u32,
        now: Timestamp,
    ) -> Self {
        Self {
            schema_version: RUN_SCHEMA_VERSION,
            id,
            frequency: frequency.map(str::to_string),
            trigger,
            instant,
            window_start,
            state: RunState::Created,
            concurrency,
            job_count: 0,
            tables: Vec::new(),
            downstream: false,
            requested_by: None,
            backfill: None,
            missed_instants: 0,
            missed_since: None,
            excluded: Vec::new(),
            resumes: 0,
            created_at: now,
            planned_at: None,
            finished_at: None,
            planning_lease: None,
            error: None,
            summary: None,
            watch_at: Some(now + crate::sweep::RUN_WATCH),
            sweeps: Vec::new(),
        }
    }

    /// Moves the run to `to` (stamping `finished_at` on an end), or refuses an illegal move.
    /// Nothing is logged here: transaction bodies call this and may be tried again; the store
    /// logs the change once it is committed (`StateChange`).
    pub fn transition(&mut self, to: RunState, now: Timestamp) -> Result<(), IllegalTransition> {
        self.state.check(to)?;
        self.state = to;
        self.finished_at = to.is_terminal().then_some(now);
        Ok(())
    }
}

/// A run's or a job's change of state between two versions of its document, for the log line
/// the store writes once the change is committed.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub run_id: String,
    /// The job's table and attempt; none for a run.
    pub job: Option<(TableId, u32)>,
    pub from: &'static str,
    pub to: &'static str,
    /// How long the document was in `from`, where both ends are stamped.
    pub took: Option<jiff::SignedDuration>,
}

/// Documents whose state changes are logged.
pub trait Transitions {
    /// The change from `before` to `after`, if their states differ.
    fn state_change(_before: &Self, _after: &Self) -> Option<StateChange> {
        None
    }
}

impl Transitions for Run {
    fn state_change(before: &Self, after: &Self) -> Option<StateChange> {
        let entered = |run: &Run, state: RunState| match state {
            RunState::Created | RunState::Planning => Some(run.created_at),
            RunState::Running => run.planned_at,
            _ => run.finished_at,
        };
        (before.state != after.state).then(|| StateChange {
            run_id: after.id.clone(),
            job: None,
            from: before.state.as_str(),
            to: after.state.as_str(),
            took: entered(before, before.state)
                .zip(entered(after, after.state))
                .map(|(from, to)| to.duration_since(from)),
        })
    }
}

impl Transitions for Job {
    fn state_change(before: &Self, after: &Self) -> Option<StateChange> {
        let entered = |job: &Job, state: JobState| match state {
            JobState::Pending => None,
            JobState::Queued => job.queued_at,
            JobState::Running => job.started_at,
            _ => job.finished_at,
        };
        (before.state != after.state || before.attempt != after.attempt).then(|| StateChange {
            run_id: after.run_id.clone(),
            job: Some((after.table.clone(), after.attempt)),
            from: before.state.as_str(),
            to: after.state.as_str(),
            took: entered(before, before.state)
                .zip(entered(after, after.state))
                .map(|(from, to)| to.duration_since(from)),
        })
    }
}

impl Transitions for Slot {}
impl Transitions for ScheduleState {}

/// BigQuery's statistics of a finished job, as Baton records them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobStatistics {
    pub bytes_processed: i64,
    pub bytes_billed: i64,
    pub slot_ms: i64,
    pub cache_hit: bool,
    #[serde(default)]
    pub statement_type: Option<String>,
    /// DML statements' affected rows.
    #[serde(default)]
    pub rows_affected: Option<i64>,
    /// The destination's row count after the job, when known.
    #[serde(default)]
    pub destination_rows: Option<i64>,
    /// What the bytes billed cost at the configured on-demand price (`BATON_PRICE_PER_TIB`).
    #[serde(default)]
    pub cost: f64,
    /// An import's copy: whole or from a watermark, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<crate::imports::ImportSummary>,
}

/// Bytes in a tebibyte: BigQuery's on-demand price is per TiB.
const TIB: f64 = (1u64 << 40) as f64;

/// What `bytes` cost at BigQuery's on-demand `price_per_tib`.
pub fn on_demand_cost(bytes: i64, price_per_tib: f64) -> f64 {
    bytes as f64 / TIB * price_per_tib
}

impl JobStatistics {
    /// The statistics with their cost at `price_per_tib` of bytes billed.
    pub fn priced(self, price_per_tib: f64) -> Self {
        Self {
            cost: on_demand_cost(self.bytes_billed, price_per_tib),
            ..self
        }
    }
}

/// The instants a run gives its SQL's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Instants {
    /// `@run_time`, and `@window_end`.
    pub run_time: Timestamp,
    /// `@window_start`; `None` passes NULL (a run outside any frequency has no window).
    pub window_start: Option<Timestamp>,
}

impl Instants {
    /// The values of the parameters named (`run_time`, `window_start`, `window_end`); other
    /// names are left out.
    pub fn parameters(&self, names: &[impl AsRef<str>]) -> Vec<(String, Option<Timestamp>)> {
        names
            .iter()
            .filter_map(|name| {
                let value = match name.as_ref() {
                    "run_time" | "window_end" => Some(self.run_time),
                    "window_start" => self.window_start,
                    _ => return None,
                };
                Some((name.as_ref().to_string(), value))
            })
            .collect()
    }
}

/// What an extract wrote, and what its notify URL answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExtractRecord {
    /// The BigQuery extract job that wrote the files.
    pub bigquery_job_id: String,
    /// The destination BigQuery was given: `gs://bucket/dataset/table/run/attempt/table-*.csv`.
    pub uri: String,
    pub files: Vec<ExtractFile>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub urls_expire_at: Timestamp,
    #[serde(default)]
    pub notify: Option<NotifyRecord>,
}

/// One file of an extract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExtractFile {
    /// `gs://bucket/name`.
    pub uri: String,
    pub bytes: u64,
    /// A V4 signed URL to GET it, until the extract's `urls_expire_at`.
    pub url: String,
}

/// How the POST to a notify URL went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotifyRecord {
    /// The last answer's status; `None` when no answer came.
    pub status: Option<u16>,
    /// The start of the last answer's body.
    pub response: String,
    pub attempts: u32,
    /// Why it is counted as failed (no 2xx after the attempts), if it is.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub at: Timestamp,
}

/// An attempt that ended without ending the job (a transient failure, or a failure before a
/// resume).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttemptRecord {
    pub attempt: u32,
    #[serde(default)]
    pub bigquery_job_id: Option<String>,
    pub error: String,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub started_at: Option<Timestamp>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub ended_at: Timestamp,
}

/// `runs/{run}/jobs/{table}`: one table's work in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    pub schema_version: u32,
    pub run_id: String,
    pub table: TableId,
    pub state: JobState,
    /// Starts at 1; a retry or a resume is a new attempt.
    pub attempt: u32,
    /// How many jobs of the run depend on this one: higher goes first.
    pub priority: u32,
    /// Parents in this run, waited for.
    pub parents: Vec<TableId>,
    /// Parents outside this run (another frequency's tables), not waited for.
    #[serde(default)]
    pub outside_parents: Vec<TableId>,
    pub children: Vec<TableId>,
    /// The table's definition as it was when the run's plan was frozen.
    pub definition: Table,
    /// Whom the job's cost is attributed to: a manual run's requester, else the table's owner.
    #[serde(default)]
    pub attributed_user: Option<String>,
    /// The group the job's cost is attributed to: the table's.
    #[serde(default)]
    pub attributed_group: Option<String>,
    /// The query parameters its SQL uses, of `run_time`, `window_start`, `window_end`.
    #[serde(default)]
    pub parameters: Vec<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub run_time: Timestamp,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub window_start: Option<Timestamp>,
    /// `project.dataset.table` of the BigQuery table it writes.
    pub destination: String,
    /// Whether it has been handed to the executor (it holds a slot from then until it ends).
    #[serde(default)]
    pub dispatched: bool,
    #[serde(default)]
    pub slot: Option<u32>,
    /// The event whose handling dispatched it: a redelivery of that event publishes the
    /// dispatch again, in case the first handler died between its write and its publish.
    #[serde(default)]
    pub dispatch_cause: Option<String>,
    #[serde(default)]
    pub bigquery_job_id: Option<String>,
    /// A retried attempt waits until then before it starts.
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub retry_at: Option<Timestamp>,
    /// The attempts before this one, and why each ended.
    #[serde(default)]
    pub previous_attempts: Vec<AttemptRecord>,
    /// The resume of the run that last reset it.
    #[serde(default)]
    pub resumed: u32,
    #[serde(default)]
    pub statistics: Option<JobStatistics>,
    /// The files its extract wrote, when the table asks for one.
    #[serde(default)]
    pub extract: Option<ExtractRecord>,
    #[serde(default)]
    pub error: Option<String>,
    /// The failed ancestor that made it `skipped`.
    #[serde(default)]
    pub skipped_because: Option<TableId>,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub queued_at: Option<Timestamp>,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub dispatched_at: Option<Timestamp>,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub started_at: Option<Timestamp>,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub finished_at: Option<Timestamp>,
    /// When the tick's sweep looks at it if nothing has moved it on (`sweep`): set from its
    /// dispatch until the planner has handled its end.
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub watch_at: Option<Timestamp>,
    /// How often the sweep sent it on again.
    #[serde(default)]
    pub sweeps: u32,
}

impl Job {
    /// The frozen job of a planned table in `run`: queued at once when it waits for no parent.
    pub fn planned(
        run: &Run,
        planned: PlannedJob,
        definition: Table,
        parameters: Vec<String>,
        project: &str,
        now: Timestamp,
    ) -> Self {
        let ready = planned.parents.is_empty();
        let destination = format!("{project}.{}", planned.table);
        let attributed_user = match run.trigger {
            Trigger::Schedule => None,
            _ => run.requested_by.clone(),
        }
        .or_else(|| definition.owner.clone());
        let attributed_group = definition.group.clone();
        Self {
            schema_version: JOB_SCHEMA_VERSION,
            run_id: run.id.clone(),
            table: planned.table,
            state: if ready {
                JobState::Queued
            } else {
                JobState::Pending
            },
            attempt: 1,
            priority: planned.priority,
            parents: planned.parents,
            outside_parents: planned.outside_parents,
            children: planned.children,
            definition,
            attributed_user,
            attributed_group,
            parameters,
            run_time: run.instant,
            window_start: run.window_start,
            destination,
            dispatched: false,
            slot: None,
            dispatch_cause: None,
            bigquery_job_id: None,
            retry_at: None,
            previous_attempts: Vec::new(),
            resumed: 0,
            statistics: None,
            extract: None,
            error: None,
            skipped_because: None,
            queued_at: ready.then_some(now),
            dispatched_at: None,
            started_at: None,
            finished_at: None,
            watch_at: None,
            sweeps: 0,
        }
    }

    /// Moves the job to `to`, stamping when it entered it, or refuses an illegal move. Nothing
    /// is logged here (as for `Run::transition`).
    pub fn transition(&mut self, to: JobState, now: Timestamp) -> Result<(), IllegalTransition> {
        self.state.check(to)?;
        self.state = to;
        match to {
            JobState::Queued => self.queued_at = Some(now),
            JobState::Running => self.started_at = Some(now),
            JobState::Pending => {}
            _ => self.finished_at = Some(now),
        }
        Ok(())
    }
}

/// `runs/{run}/slots/{n}`: one of a run's `concurrency` places for a dispatched job. Slots
/// cap the run's concurrency without a counter that every job would write.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slot {
    pub index: u32,
    /// Always present, so that free slots can be queried (Firestore cannot query a field
    /// that is absent).
    pub taken: bool,
    #[serde(default)]
    pub table: Option<TableId>,
    #[serde(default)]
    pub attempt: Option<u32>,
}

impl Slot {
    pub fn free(index: u32) -> Self {
        Self {
            index,
            ..Self::default()
        }
    }

    /// Whether this slot is held by that attempt of that table's job.
    pub fn held_by(&self, table: &TableId, attempt: u32) -> bool {
        self.taken && self.table.as_ref() == Some(table) && self.attempt == Some(attempt)
    }
}

/// `schedules/{frequency}`: what the scheduler knows of a frequency, apart from its
/// definition (which a catalog change rewrites).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleState {
    pub frequency: String,
    /// The frequency's run that has not ended: while there is one, no other starts.
    #[serde(default)]
    pub open_run: Option<String>,
    /// The backfill's runs started and not yet seen ended by it (up to its `parallel`):
    /// while one of them is open, no other run of the frequency starts either. A backfill
    /// that ended at a failed run leaves its other runs here until they end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfill_runs: Vec<String>,
    /// The latest instant a run was created for (started or skipped).
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub last_instant: Option<Timestamp>,
    /// The backfill in progress.
    #[serde(default)]
    pub backfill: Option<String>,
}

impl ScheduleState {
    /// The runs that may hold the frequency: its open run and its backfill's, by id (one read
    /// each tells which have not ended).
    pub fn holders(&self) -> Vec<String> {
        self.open_run
            .iter()
            .chain(&self.backfill_runs)
            .cloned()
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// `backfills/{id}`: a frequency run over past instants, in order, up to `parallel` of them
/// at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Backfill {
    pub schema_version: u32,
    pub id: String,
    pub frequency: String,
    pub instants: Vec<Timestamp>,
    /// The runs created so far, in order.
    #[serde(default)]
    pub runs: Vec<String>,
    /// How many of its runs may be open at once (1: one after another).
    #[serde(default = "one")]
    pub parallel: u32,
    pub state: BackfillState,
    #[serde(default)]
    pub requested_by: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub created_at: Timestamp,
    #[serde(default, with = "crate::stamp::optional_timestamp")]
    #[schemars(with = "Option<jiff::Timestamp>")]
    pub finished_at: Option<Timestamp>,
}

fn one() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant() -> Timestamp {
        "2026-11-22T02:00:00Z".parse().unwrap()
    }

    fn table() -> Table {
        Table {
            frequency: Some("daily".into()),
            owner: Some("ana@example.com".into()),
            group: Some("finance".into()),
            source: Some("shop/totals.sql".into()),
            ..Table::query(&"shop.totals".parse().unwrap(), "SELECT 1 AS one")
        }
    }

    fn run() -> Run {
        Run::new(
            "daily-20261122T020000Z".into(),
            Some("daily"),
            Trigger::Schedule,
            instant(),
            Some("2026-11-21T02:00:00Z".parse().unwrap()),
            10,
            "2026-11-22T02:00:05Z".parse().unwrap(),
        )
    }

    /// The stored shape of a run. A change here changes what is in Firestore: bump
    /// `RUN_SCHEMA_VERSION` and say how older documents are read.
    #[test]
    fn golden_run_document() {
        let golden = serde_json::json!({
            "schema_version": 1,
            "id": "daily-20261122T020000Z",
            "frequency": "daily",
            "trigger": "schedule",
            "instant": "2026-11-22T02:00:00Z",
            "window_start": "2026-11-21T02:00:00Z",
            "state": "created",
            "concurrency": 10,
            "job_count": 0,
            "tables": [],
            "downstream": false,
            "requested_by": null,
            "backfill": null,
            "missed_instants": 0,
            "missed_since": null,
            "excluded": [],
            "resumes": 0,
            "created_at": "2026-11-22T02:00:05Z",
            "planned_at": null,
            "finished_at": null,
            "planning_lease": null,
            "error": null,
            "summary": null,
            "watch_at": "2026-11-22T02:05:05Z"
        });
        assert_eq!(serde_json::to_value(run()).unwrap(), golden);
        let back: Run = serde_json::from_value(golden).unwrap();
        assert_eq!(back, run());
    }

    /// The stored shape of a job, as frozen by the planner.
    #[test]
    fn parameters_take_the_runs_instants_and_unknown_ones_are_left_out() {
        let run_time: Timestamp = "2026-11-22T02:00:00Z".parse().unwrap();
        let instants = Instants {
            run_time,
            window_start: None,
        };
        assert_eq!(
            instants.parameters(&["window_start", "run_time", "window_end", "other"]),
            [
                ("window_start".to_string(), None),
                ("run_time".to_string(), Some(run_time)),
                ("window_end".to_string(), Some(run_time)),
            ]
        );
    }

    #[test]
    fn golden_job_document() {
        let planned = PlannedJob {
            table: "shop.totals".parse().unwrap(),
            parents: vec!["shop.orders".parse().unwrap()],
            outside_parents: vec![],
            children: vec!["shop.top".parse().unwrap()],
            priority: 1,
        };
        let job = Job::planned(
            &run(),
            planned,
            table(),
            vec!["run_time".into()],
            "acme",
            instant(),
        );
        let golden = serde_json::json!({
            "schema_version": 1,
            "run_id": "daily-20261122T020000Z",
            "table": "shop.totals",
            "state": "pending",
            "attempt": 1,
            "priority": 1,
            "parents": ["shop.orders"],
            "outside_parents": [],
            "children": ["shop.top"],
            "definition": {
                "dataset": "shop",
                "name": "totals",
                "kind": "query",
                "sql": "SELECT 1 AS one",
                "frequency": "daily",
                "write_mode": "truncate",
                "options": {
                    "key": [], "delete_flag": null, "partitioning": null, "clustering": [],
                    "expiration_seconds": null, "max_bytes_billed": null, "timeout_seconds": null,
                    "retries": null, "extract": null
                },
                "description": null,
                "owner": "ana@example.com",
                "group": "finance",
                "depends_on": [],
                "conditions": [],
                "source": "shop/totals.sql"
            },
            "attributed_user": "ana@example.com",
            "attributed_group": "finance",
            "parameters": ["run_time"],
            "run_time": "2026-11-22T02:00:00Z",
            "window_start": "2026-11-21T02:00:00Z",
            "destination": "acme.shop.totals",
            "dispatched": false,
            "slot": null,
            "dispatch_cause": null,
            "bigquery_job_id": null,
            "retry_at": null,
            "previous_attempts": [],
            "resumed": 0,
            "statistics": null,
            "extract": null,
            "error": null,
            "skipped_because": null,
            "queued_at": null,
            "dispatched_at": null,
            "started_at": null,
            "finished_at": null,
            "watch_at": null,
            "sweeps": 0
        });
        assert_eq!(serde_json::to_value(&job).unwrap(), golden);
        let back: Job = serde_json::from_value(golden).unwrap();
        assert_eq!(back, job);
    }

    /// A manual run's jobs are attributed to whoever asked for it; the group stays the
    /// table's.
    #[test]
    fn a_manual_runs_cost_goes_to_its_requester() {
        let planned = |run: &Run| {
            let planned = PlannedJob {
                table: "shop.totals".parse().unwrap(),
                parents: vec![],
                outside_parents: vec![],
                children: vec![],
                priority: 0,
            };
            Job::planned(run, planned, table(), vec![], "acme", instant())
        };
        let mut manual = run();
        manual.trigger = Trigger::Manual;
        manual.requested_by = Some("li@example.com".into());
        let job = planned(&manual);
        assert_eq!(job.attributed_user.as_deref(), Some("li@example.com"));
        assert_eq!(job.attributed_group.as_deref(), Some("finance"));
        manual.requested_by = None;
        assert_eq!(
            planned(&manual).attributed_user.as_deref(),
            Some("ana@example.com")
        );
    }

    /// A job of `shop.totals` without parents, queued from the start.
    fn queued_job() -> Job {
        let planned = PlannedJob {
            table: "shop.totals".parse().unwrap(),
            parents: vec![],
            outside_parents: vec![],
            children: vec![],
            priority: 0,
        };
        Job::planned(&run(), planned, table(), vec![], "acme", instant())
    }

    #[test]
    fn transitions_stamp_their_time_and_refuse_illegal_moves() {
        let mut job = queued_job();
        assert_eq!(
            job.state,
            JobState::Queued,
            "no parent: queued from the start"
        );
        assert_eq!(job.queued_at, Some(instant()));
        let later: Timestamp = "2026-11-22T02:00:09Z".parse().unwrap();
        job.transition(JobState::Running, later).unwrap();
        assert_eq!(job.started_at, Some(later));
        job.transition(JobState::Succeeded, later).unwrap();
        assert_eq!(job.finished_at, Some(later));
        let err = job.transition(JobState::Running, later).unwrap_err();
        assert_eq!(err.to_string(), "a job cannot go from succeeded to running");
        assert_eq!(
            job.state,
            JobState::Succeeded,
            "a refused move changes nothing"
        );
    }

    /// Counts the events logged while it is the subscriber.
    struct Events(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
        fn on_event(
            &self,
            _event: &tracing::Event<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_transition_logs_nothing_itself_and_its_committed_change_says_from_to_and_how_long() {
        use tracing_subscriber::layer::SubscriberExt;
        let before = queued_job();
        let later: Timestamp = "2026-11-22T02:00:09Z".parse().unwrap();
        // Transaction bodies call transitions and may be tried again: they must not log.
        let events = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Events(events.clone()));
        let (after, run_after) = tracing::subscriber::with_default(subscriber, || {
            let mut job = before.clone();
            job.transition(JobState::Running, later).unwrap();
            let mut r = run();
            r.transition(RunState::Planning, later).unwrap();
            (job, r)
        });
        assert_eq!(events.load(std::sync::atomic::Ordering::SeqCst), 0);
        let change = Job::state_change(&before, &after).unwrap();
        assert_eq!((change.from, change.to), ("queued", "running"));
        assert_eq!(change.job, Some(("shop.totals".parse().unwrap(), 1)));
        assert_eq!(change.took, Some(jiff::SignedDuration::from_secs(9)));
        let change = Run::state_change(&run(), &run_after).unwrap();
        assert_eq!(
            (change.from, change.to, change.job),
            ("created", "planning", None)
        );
        assert_eq!(Job::state_change(&after, &after), None);
    }
}
