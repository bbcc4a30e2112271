//! The tick's sweep: what moves a run or a job on when the message that should have done so
//! was lost for good (dead-lettered after Pub/Sub's tries, or dropped with a restarted
//! emulator). Every message a step needs is idempotent, so sending it again is always safe;
//! the question is only when.
//!
//! Each run and job carries `watch_at`: when the sweep should look at it if nothing has moved
//! it on. A run is watched from its creation (and from a resume or a cancel) until the
//! planner has handled that event to its end; a job from its dispatch, through its running,
//! until the planner has handled its end (released its slot, settled its children, dispatched
//! what could go, closed the run). A job that waits for its parents or for a slot is not
//! watched: what it waits for is. The tick reads at most [`RUNS_PER_SWEEP`] runs and
//! [`JOBS_PER_SWEEP`] jobs whose watch has passed, the longest overdue first, so a sweep costs
//! a bounded number of reads however many runs are open (two when nothing is overdue), and
//! sends for each the message that moves it on, then watches it again later (doubling).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::catalog::TableKind;
use crate::messages::{ExecutorTask, ImporterTask, PlannerEvent};
use crate::run::{Job, Run};
use crate::state::{JobState, RunState};

/// How long a planner event about a run (created, resumed, cancelled) may take to be handled
/// to its end: beyond a planning lease (2 minutes) and a few of Pub/Sub's redeliveries.
pub const RUN_WATCH: SignedDuration = SignedDuration::from_mins(5);
/// How long a dispatched job may wait for its executor (or importer) to start it.
pub const DISPATCHED_WATCH: SignedDuration = SignedDuration::from_mins(10);
/// How long a job may run before the sweep sends it to its executor again, which attaches to
/// its BigQuery job: beyond one delivery's wait (9 minutes), after which Pub/Sub delivers it
/// again anyway while the message lives.
pub const RUNNING_WATCH: SignedDuration = SignedDuration::from_mins(15);
/// How long the planner may take to handle a job's end.
pub const FINISHED_WATCH: SignedDuration = SignedDuration::from_mins(5);
/// The most runs one sweep reads.
pub const RUNS_PER_SWEEP: u32 = 20;
/// The most jobs one sweep reads.
pub const JOBS_PER_SWEEP: u32 = 100;
/// How many of its sweeps a run's document keeps.
pub const KEPT_SWEEPS: usize = 20;

/// What a sweep did for a run or one of its jobs, as the run's document keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepNote {
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub at: Timestamp,
    /// `sent run_created to the planner again`, `sent shop.orders#1 to the executor again`.
    pub what: String,
}

/// When to look again after the `sweeps`-th sweep: `base`, doubled with each sweep up to 16
/// times `base`, so that a job that really runs for hours is not sent every few minutes.
pub fn later(base: SignedDuration, sweeps: u32) -> SignedDuration {
    base * (1i32 << sweeps.min(4))
}

/// How long a job in `state` is watched for.
pub fn job_watch(state: JobState) -> SignedDuration {
    match state {
        JobState::Queued | JobState::Pending => DISPATCHED_WATCH,
        JobState::Running => RUNNING_WATCH,
        _ => FINISHED_WATCH,
    }
}

/// A message that moves something on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Nudge {
    Planner(PlannerEvent),
    Executor(ExecutorTask),
    Importer(ImporterTask),
}

impl Nudge {
    /// `run_created to the planner`, for a run's sweep notes and the tick's report.
    pub fn describe(&self) -> String {
        let event =
            |value: serde_json::Value| value["event"].as_str().unwrap_or("a message").to_string();
        match self {
            Nudge::Planner(e) => format!(
                "{} to the planner",
                event(serde_json::to_value(e).unwrap_or_default())
            ),
            Nudge::Executor(t) => format!(
                "{} to the executor",
                event(serde_json::to_value(t).unwrap_or_default())
            ),
            Nudge::Importer(t) => format!(
                "{} to the importer",
                event(serde_json::to_value(t).unwrap_or_default())
            ),
        }
    }
}

/// The planner event that moves a watched run on: its creation again while it is not
/// planned (or its first jobs not dispatched), its resume while resumed, its cancel while
/// cancelled; nothing for a run that has ended otherwise.
pub fn run_nudge(run: &Run) -> Option<PlannerEvent> {
    let run_id = run.id.clone();
    match run.state {
        RunState::Created | RunState::Planning => Some(PlannerEvent::RunCreated { run_id }),
        RunState::Running if run.resumes > 0 => Some(PlannerEvent::RunResumed {
            run_id,
            resume: run.resumes,
        }),
        RunState::Running => Some(PlannerEvent::RunCreated { run_id }),
        RunState::Cancelled => Some(PlannerEvent::RunCancelled { run_id }),
        RunState::Succeeded | RunState::Failed | RunState::Skipped => None,
    }
}

/// The message that moves a watched job on: a dispatched or running job is sent to the
/// service that runs its kind again (which starts it, or attaches to its BigQuery job, or
/// records its end); an ended one's end is told to the planner again.
pub fn job_nudge(job: &Job) -> Option<Nudge> {
    let task = || match job.definition.kind {
        TableKind::Query => Nudge::Executor(ExecutorTask::run_query(job)),
        TableKind::Import | TableKind::Load => Nudge::Importer(ImporterTask::import(job)),
    };
    match job.state {
        JobState::Queued if job.dispatched => Some(task()),
        JobState::Running => Some(task()),
        JobState::Succeeded | JobState::Failed | JobState::Cancelled => {
            Some(Nudge::Planner(PlannerEvent::job_finished(job)))
        }
        JobState::Queued | JobState::Pending | JobState::Skipped => None,
    }
}

/// The run as a sweep leaves it: `what` noted (the last [`KEPT_SWEEPS`] kept), and, when the
/// sweep was for the run itself, watched again later.
pub fn swept_run(run: &Run, what: &str, for_the_run: bool, now: Timestamp) -> Run {
    let mut run = run.clone();
    if for_the_run {
        let sweeps = u32::try_from(run.sweeps.len()).unwrap_or(u32::MAX);
        run.watch_at = Some(now + later(RUN_WATCH, sweeps + 1));
    }
    run.sweeps.push(SweepNote {
        at: now,
        what: what.to_string(),
    });
    if run.sweeps.len() > KEPT_SWEEPS {
        let extra = run.sweeps.len() - KEPT_SWEEPS;
        run.sweeps.drain(..extra);
    }
    run
}

/// The job as a sweep of `attempt` leaves it: counted, and watched again later; `None` when
/// the job has moved on to another attempt since it was read.
pub fn swept_job(job: &Job, attempt: u32, now: Timestamp) -> Option<Job> {
    if job.attempt != attempt || job.watch_at.is_none() {
        return None;
    }
    let mut job = job.clone();
    job.sweeps += 1;
    job.watch_at = Some(now + later(job_watch(job.state), job.sweeps));
    Some(job)
}

/// The running job watched until `until`: its executor handed it over to Pub/Sub's next
/// delivery, so it is moving and the sweep need not send it yet.
pub fn rewatch_job(job: &Job, attempt: u32, until: Timestamp) -> Option<Job> {
    (job.attempt == attempt && job.state == JobState::Running && job.watch_at < Some(until)).then(
        || Job {
            watch_at: Some(until),
            ..job.clone()
        },
    )
}

/// The run no longer watched: the planner handled its event to the end.
pub fn unwatch_run(run: &Run) -> Option<Run> {
    run.watch_at.is_some().then(|| Run {
        watch_at: None,
        ..run.clone()
    })
}

/// The job no longer watched: the planner handled the end of `attempt`.
pub fn unwatch_job(job: &Job, attempt: u32) -> Option<Job> {
    (job.attempt == attempt && job.state.is_terminal() && job.watch_at.is_some()).then(|| Job {
        watch_at: None,
        ..job.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Table, TableId};
    use crate::dag::PlannedJob;
    use crate::run::Trigger;

    fn now() -> Timestamp {
        "2026-12-02T10:00:00Z".parse().unwrap()
    }

    fn run() -> Run {
        Run::new("r".into(), None, Trigger::Manual, now(), None, 2, now())
    }

    fn job(kind: TableKind, state: JobState, dispatched: bool) -> Job {
        let table: TableId = "d.a".parse().unwrap();
        let planned = PlannedJob {
            table: table.clone(),
            parents: vec![],
            outside_parents: vec![],
            children: vec![],
            priority: 0,
        };
        let definition = Table {
            kind,
            ..Table::query(&table, "SELECT 1")
        };
        Job {
            state,
            dispatched,
            watch_at: Some(now()),
            ..Job::planned(&run(), planned, definition, vec![], "p", now())
        }
    }

    #[test]
    fn a_watched_run_is_sent_the_event_it_waits_for() {
        let mut r = run();
        assert_eq!(
            run_nudge(&r),
            Some(PlannerEvent::RunCreated { run_id: "r".into() })
        );
        r.state = RunState::Running;
        assert_eq!(
            run_nudge(&r),
            Some(PlannerEvent::RunCreated { run_id: "r".into() }),
            "its first jobs' dispatch"
        );
        r.resumes = 2;
        assert_eq!(
            run_nudge(&r),
            Some(PlannerEvent::RunResumed {
                run_id: "r".into(),
                resume: 2
            })
        );
        r.state = RunState::Cancelled;
        assert_eq!(
            run_nudge(&r),
            Some(PlannerEvent::RunCancelled { run_id: "r".into() })
        );
        r.state = RunState::Succeeded;
        assert_eq!(run_nudge(&r), None);
    }

    #[test]
    fn a_watched_job_is_sent_to_whoever_moves_it_on() {
        let sent = |kind, state, dispatched| job_nudge(&job(kind, state, dispatched));
        assert!(matches!(
            sent(TableKind::Query, JobState::Queued, true),
            Some(Nudge::Executor(ExecutorTask::RunQuery { .. }))
        ));
        assert!(matches!(
            sent(TableKind::Import, JobState::Running, true),
            Some(Nudge::Importer(ImporterTask::Import { .. }))
        ));
        let ended = sent(TableKind::Query, JobState::Failed, true).unwrap();
        assert_eq!(ended.describe(), "job_finished to the planner");
        assert_eq!(sent(TableKind::Query, JobState::Queued, false), None);
        assert_eq!(sent(TableKind::Query, JobState::Pending, false), None);
    }

    #[test]
    fn each_sweep_is_noted_and_the_next_waits_longer() {
        assert_eq!(later(RUN_WATCH, 0), RUN_WATCH);
        assert_eq!(later(RUN_WATCH, 2), RUN_WATCH * 4);
        assert_eq!(later(RUN_WATCH, 9), RUN_WATCH * 16);
        let mut r = run();
        for n in 0..25 {
            r = swept_run(&r, &format!("sweep {n}"), true, now());
        }
        assert_eq!(r.sweeps.len(), KEPT_SWEEPS);
        assert_eq!(r.sweeps[0].what, "sweep 5");
        assert_eq!(r.watch_at, Some(now() + RUN_WATCH * 16));
        let noted = swept_run(&run(), "a job's", false, now());
        assert_eq!(
            noted.watch_at,
            run().watch_at,
            "a job's sweep leaves the run's watch"
        );

        let running = job(TableKind::Query, JobState::Running, true);
        let swept = swept_job(&running, 1, now()).unwrap();
        assert_eq!(
            (swept.sweeps, swept.watch_at),
            (1, Some(now() + RUNNING_WATCH * 2))
        );
        assert_eq!(swept_job(&running, 2, now()), None, "another attempt");
        assert_eq!(
            unwatch_job(&running, 1),
            None,
            "a running job stays watched"
        );
        assert_eq!(unwatch_run(&run()).unwrap().watch_at, None);
        let later_on = now() + RUNNING_WATCH * 3;
        assert_eq!(
            rewatch_job(&running, 1, later_on).unwrap().watch_at,
            Some(later_on)
        );
        assert_eq!(rewatch_job(&running, 2, later_on), None, "another attempt");
        let ended = job(TableKind::Query, JobState::Succeeded, true);
        assert_eq!(rewatch_job(&ended, 1, later_on), None, "an ended job");
    }
}
