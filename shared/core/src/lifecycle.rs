//! Every change of a run's documents, as a pure function: the documents read in, the
//! documents to write out (or `None`: nothing to do, someone got there first). The Firestore
//! store runs each of these inside a transaction; the in-memory store of the property tests
//! runs the same functions under a lock. So what is proven of the protocol in memory is what
//! runs against Firestore.

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{TableDoc, TableId};
use crate::dag::{self, Cycle};
use crate::ids;
use crate::run::{
    AttemptRecord, Backfill, BackfillState, ExtractRecord, Job, JobStatistics, Lease, Run,
    RunSummary, ScheduleState, Slot, Trigger,
};
use crate::schedule::{Schedule, conditions_hold};
use crate::state::{IllegalTransition, JobState, Readiness, RunState, readiness};
use crate::sweep;

type Result<T> = std::result::Result<T, IllegalTransition>;

// ---------------------------------------------------------------------------------------------
// Admission: the tick, a manual run, a backfill

/// Why a scheduled run for `run.instant` comes too late: its frequency has handled a later
/// instant already, and a gap recorded this one as missed (a tick delayed, or one asked to
/// tick as if at an earlier time). None when it is not late. Manual and backfill runs choose
/// their instants and are never late.
pub fn too_late(run: &Run, state: Option<&ScheduleState>) -> Option<String> {
    let last = state?.last_instant?;
    (run.trigger == Trigger::Schedule && last > run.instant).then(|| {
        format!(
            "{} is older than the latest instant handled, {last}: a run of that instant was \
             recorded missed or ran already",
            run.instant
        )
    })
}

/// A new run and its frequency's schedule state, after the one-open-run rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub run: Run,
    pub schedule: ScheduleState,
}

/// Admits `run` under its frequency's state: while another run of the frequency is open, the
/// new one is recorded as skipped with the reason; otherwise it becomes the open run. Either
/// way its instant becomes the latest handled.
pub fn admit(
    mut run: Run,
    schedule: Option<ScheduleState>,
    open: Option<&Run>,
    now: Timestamp,
) -> Admission {
    let frequency = run.frequency.clone().unwrap_or_default();
    let mut schedule = schedule.unwrap_or(ScheduleState {
        frequency,
        ..ScheduleState::default()
    });
    match open.filter(|o| o.id != run.id && !o.state.is_terminal()) {
        Some(open) => {
            run.state = RunState::Skipped;
            run.finished_at = Some(now);
            run.watch_at = None;
            run.error = Some(format!(
                "run {} of this frequency was still {} at this run's instant",
                open.id, open.state
            ));
        }
        None => schedule.open_run = Some(run.id.clone()),
    }
    if run.trigger == Trigger::Schedule {
        schedule.last_instant = Some(
            schedule
                .last_instant
                .map_or(run.instant, |l| l.max(run.instant)),
        );
    }
    Admission { run, schedule }
}

/// Frees the frequency for its next run when `run` ends.
pub fn release_schedule(schedule: &ScheduleState, run_id: &str) -> Option<ScheduleState> {
    (schedule.open_run.as_deref() == Some(run_id)).then(|| ScheduleState {
        open_run: None,
        ..schedule.clone()
    })
}

/// What a frequency's backfill does next: the schedule with its list of open backfill runs
/// pruned, the backfill when it changed (a run added, or it ended), and the runs to create.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillStep {
    pub schedule: ScheduleState,
    pub backfill: Option<Backfill>,
    pub runs: Vec<Run>,
}

/// The runs `backfill_step` needs to see: the schedule's open backfill runs and the
/// backfill's latest run (a run started before the list was kept may be its only trace).
pub fn backfill_reads(schedule: &ScheduleState, backfill: Option<&Backfill>) -> Vec<String> {
    let mut ids = schedule.backfill_runs.clone();
    if let Some(last) = backfill.and_then(|b| b.runs.last())
        && !ids.contains(last)
    {
        ids.push(last.clone());
    }
    ids
}

/// The next step of the frequency's backfill, if anything changes. `seen` holds the runs
/// named by `schedule.backfill_runs` and the backfill's latest run, as read now.
///
/// Runs seen ended leave the schedule's list. A run of the backfill that ended other than
/// succeeded ends it (its other open runs go on to their end, and keep the frequency busy
/// until then). Otherwise, while no other run of the frequency is open, runs of the next
/// instants start, in order, until `parallel` are open; once every instant has run and
/// succeeded, the backfill has succeeded.
pub fn backfill_step(
    schedule: &ScheduleState,
    backfill: Option<&Backfill>,
    seen: &[Run],
    frequency: &crate::catalog::Frequency,
    default_concurrency: u32,
    now: Timestamp,
) -> Option<BackfillStep> {
    let open = |id: &String| seen.iter().any(|r| &r.id == id && !r.state.is_terminal());
    let mut next = schedule.clone();
    next.backfill_runs.retain(open);
    let backfill = backfill.filter(|b| {
        schedule.backfill.as_deref() == Some(b.id.as_str()) && b.state == BackfillState::Running
    });
    let mut step = BackfillStep {
        schedule: next,
        backfill: None,
        runs: Vec::new(),
    };
    if let Some(backfill) = backfill {
        let mut backfill = backfill.clone();
        let failed = seen.iter().find(|r| {
            r.backfill.as_deref() == Some(backfill.id.as_str())
                && r.state.is_terminal()
                && r.state != RunState::Succeeded
        });
        let started = backfill.runs.len();
        let ended = match failed {
            Some(run) => Some((
                if run.state == RunState::Cancelled {
                    BackfillState::Cancelled
                } else {
                    BackfillState::Failed
                },
                Some(format!(
                    "run {} ended {}: the backfill stops there (resume it to go on)",
                    run.id, run.state
                )),
            )),
            // Every instant started and none of its runs open (its latest run may hold the
            // frequency as its open run rather than in the list, when it was started so).
            None if started == backfill.instants.len()
                && step.schedule.backfill_runs.is_empty()
                && !seen.iter().any(|r| {
                    r.backfill.as_deref() == Some(backfill.id.as_str()) && !r.state.is_terminal()
                }) =>
            {
                Some((BackfillState::Succeeded, None))
            }
            None => None,
        };
        if let Some((state, error)) = ended {
            backfill.state = state;
            backfill.error = error;
            backfill.finished_at = Some(now);
            step.schedule.backfill = None;
            step.backfill = Some(backfill);
        } else if schedule.open_run.is_none() {
            let room = (backfill.parallel.max(1) as usize)
                .saturating_sub(step.schedule.backfill_runs.len());
            let window = |instant| {
                frequency
                    .schedule()
                    .ok()
                    .and_then(|s: Schedule| s.previous(instant))
            };
            for &instant in backfill.instants.iter().skip(started).take(room) {
                let mut run = Run::new(
                    ids::backfill_run_id(&backfill.id, instant),
                    Some(&frequency.name),
                    Trigger::Backfill,
                    instant,
                    window(instant),
                    frequency.concurrency.unwrap_or(default_concurrency),
                    now,
                );
                run.backfill = Some(backfill.id.clone());
                run.requested_by = backfill.requested_by.clone();
                backfill.runs.push(run.id.clone());
                step.schedule.backfill_runs.push(run.id.clone());
                step.runs.push(run);
            }
            if !step.runs.is_empty() {
                step.backfill = Some(backfill);
            }
        }
    }
    (step.backfill.is_some() || step.schedule != *schedule).then_some(step)
}

/// Cancels a backfill as a whole: it starts no more runs, and frees its frequency for the
/// next backfill. None when it has ended already. Its runs that have not ended are cancelled
/// beside it (`cancel_run`), in the same transaction.
pub fn cancel_backfill(
    backfill: &Backfill,
    schedule: Option<&ScheduleState>,
    now: Timestamp,
) -> Option<(Backfill, Option<ScheduleState>)> {
    if backfill.state != BackfillState::Running {
        return None;
    }
    let mut backfill = backfill.clone();
    backfill.state = BackfillState::Cancelled;
    backfill.finished_at = Some(now);
    let schedule = schedule
        .filter(|s| s.backfill.as_deref() == Some(backfill.id.as_str()))
        .map(|s| ScheduleState {
            backfill: None,
            ..s.clone()
        });
    Some((backfill, schedule))
}

// ---------------------------------------------------------------------------------------------
// Planning

#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    /// This holder may write the plan.
    Taken(Box<Run>),
    /// The plan is frozen already (the run is running or over).
    Planned,
    /// Another holder is writing it.
    Busy(String),
}

/// Takes (or renews) the right to write the run's plan.
pub fn take_lease(
    run: &Run,
    holder: &str,
    until: Timestamp,
    now: Timestamp,
) -> Result<LeaseOutcome> {
    match (run.state, &run.planning_lease) {
        (RunState::Created, _) => {}
        (RunState::Planning, Some(lease)) if lease.holder != holder && lease.until > now => {
            return Ok(LeaseOutcome::Busy(format!(
                "{} is planning run {} until {}",
                lease.holder, run.id, lease.until
            )));
        }
        (RunState::Planning, _) => {}
        _ => return Ok(LeaseOutcome::Planned),
    }
    let mut run = run.clone();
    if run.state == RunState::Created {
        run.transition(RunState::Planning, now)?;
    }
    run.planning_lease = Some(Lease {
        holder: holder.to_string(),
        until,
    });
    Ok(LeaseOutcome::Taken(Box::new(run)))
}

/// Whether `holder` holds `run`'s planning lease: only then may it write the plan. A planner
/// that was slow, not dead, finds another holder there once it wakes, and writes nothing.
pub fn holds_lease(run: &Run, holder: &str) -> bool {
    run.state == RunState::Planning
        && run
            .planning_lease
            .as_ref()
            .is_some_and(|lease| lease.holder == holder)
}

/// A run's plan, frozen from its tables' documents.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// One job per table, in the order of the tables given.
    pub jobs: Vec<Job>,
    /// The frequency's tables left out because their calendar conditions do not hold at the
    /// run's instant (sorted).
    pub excluded: Vec<TableId>,
}

/// Freezes the plan of `run` over `tables`: a frequency's tables take part only when their
/// calendar conditions hold at its instant, read in `zone` (tables asked for by name always
/// do); each job gets its parents and children inside the run, its priority and its query
/// parameters. A cycle among the tables is the error.
pub fn plan_run(
    run: &Run,
    mut tables: Vec<TableDoc>,
    zone: &jiff::tz::TimeZone,
    project: &str,
    now: Timestamp,
) -> std::result::Result<RunPlan, Cycle> {
    let mut excluded = Vec::new();
    if run.tables.is_empty() && run.frequency.is_some() {
        tables.retain(|t| {
            let holds = conditions_hold(&t.definition.conditions, run.instant, zone);
            if !holds {
                excluded.push(t.id.clone());
            }
            holds
        });
    }
    excluded.sort();
    let nodes: Vec<(&TableId, &[TableId])> = tables
        .iter()
        .map(|t| (&t.id, t.parents.as_slice()))
        .collect();
    let mut planned: Vec<Option<dag::PlannedJob>> = vec![None; nodes.len()];
    for (i, job) in dag::plan_nodes(&nodes)? {
        planned[i] = Some(job);
    }
    drop(nodes);
    let jobs = tables
        .into_iter()
        .zip(planned)
        .map(|(doc, p)| {
            let p = p.expect("every table is planned");
            Job::planned(run, p, doc.definition, doc.parameters, project, now)
        })
        .collect();
    Ok(RunPlan { jobs, excluded })
}

/// What planning decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    Jobs {
        count: u32,
        excluded: Vec<TableId>,
    },
    /// The run cannot run (a cycle): the reason.
    Failed(String),
}

/// Ends planning if `holder` still holds the lease: the run starts, or fails.
pub fn end_planning(
    run: &Run,
    holder: &str,
    planned: &Planned,
    now: Timestamp,
) -> Result<Option<Run>> {
    let holds = run
        .planning_lease
        .as_ref()
        .is_some_and(|l| l.holder == holder);
    if run.state != RunState::Planning || !holds {
        return Ok(None);
    }
    let mut run = run.clone();
    run.planning_lease = None;
    run.planned_at = Some(now);
    match planned {
        Planned::Jobs { count, excluded } => {
            run.transition(RunState::Running, now)?;
            run.job_count = *count;
            run.excluded = excluded.clone();
        }
        Planned::Failed(reason) => {
            run.transition(RunState::Failed, now)?;
            run.error = Some(reason.clone());
        }
    }
    Ok(Some(run))
}

// ---------------------------------------------------------------------------------------------
// Dispatching

/// Claims a free slot for a waiting job, both or neither.
pub fn claim(slot: &Slot, job: &Job, cause: &str, now: Timestamp) -> Option<(Slot, Job)> {
    if slot.taken || job.state != JobState::Queued || job.dispatched {
        return None;
    }
    let slot = Slot {
        index: slot.index,
        taken: true,
        table: Some(job.table.clone()),
        attempt: Some(job.attempt),
    };
    let mut job = job.clone();
    job.dispatched = true;
    job.slot = Some(slot.index);
    job.dispatch_cause = Some(cause.to_string());
    job.dispatched_at = Some(now);
    job.watch_at = Some(now + sweep::DISPATCHED_WATCH);
    Some((slot, job))
}

/// Frees the slot if that attempt of that table's job still holds it.
pub fn release(slot: &Slot, table: &TableId, attempt: u32) -> Option<Slot> {
    slot.held_by(table, attempt).then(|| Slot::free(slot.index))
}

// ---------------------------------------------------------------------------------------------
// Children and failures

#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    Queued(Job),
    /// Skipped because of a parent that did not succeed: its own children follow.
    Skipped(Job),
}

/// A parent as `settle` needs it: its table, state, and the failed ancestor it was skipped
/// because of.
pub type ParentState = (TableId, JobState, Option<TableId>);

/// A pending job's fate from its parents' states: queued when all succeeded, skipped when one
/// did not (naming the failed ancestor behind it), unchanged while some run.
pub fn settle(job: &Job, parents: &[ParentState], now: Timestamp) -> Result<Option<Settled>> {
    if job.state != JobState::Pending {
        return Ok(None);
    }
    let mut job = job.clone();
    match readiness(parents.iter().map(|(t, s, _)| (t, *s))) {
        Readiness::Waiting => Ok(None),
        Readiness::Ready => {
            // Waiting for a slot is not watched: the jobs that hold the slots are.
            job.transition(JobState::Queued, now)?;
            job.watch_at = None;
            Ok(Some(Settled::Queued(job)))
        }
        Readiness::Blocked(parent) => {
            // A parent skipped in turn names the failure behind it.
            let because = parents
                .iter()
                .find(|(t, _, _)| *t == parent)
                .and_then(|(_, _, why)| why.clone())
                .unwrap_or(parent);
            job.transition(JobState::Skipped, now)?;
            job.skipped_because = Some(because);
            job.watch_at = None;
            Ok(Some(Settled::Skipped(job)))
        }
    }
}

/// Skips a pending job because an ancestor did not succeed.
pub fn skip(job: &Job, because: &TableId, now: Timestamp) -> Result<Option<Job>> {
    if job.state != JobState::Pending {
        return Ok(None);
    }
    let mut job = job.clone();
    job.transition(JobState::Skipped, now)?;
    job.skipped_because = Some(because.clone());
    job.watch_at = None;
    Ok(Some(job))
}

/// How the jobs ended, or `None` while one is open.
pub fn summarize(jobs: &[Job]) -> Option<RunSummary> {
    let mut summary = RunSummary::default();
    for job in jobs {
        match job.state {
            JobState::Succeeded => summary.succeeded += 1,
            JobState::Failed => {
                summary.failed += 1;
                summary.failed_tables.push(job.table.clone());
            }
            JobState::Skipped => summary.skipped += 1,
            JobState::Cancelled => summary.cancelled += 1,
            JobState::Pending | JobState::Queued | JobState::Running => return None,
        }
    }
    summary.failed_tables.sort();
    Some(summary)
}

/// Closes a running run whose jobs have all ended: `succeeded` when all succeeded, else
/// `failed`. A cancelled run gets its summary.
pub fn close(run: &Run, summary: &RunSummary, now: Timestamp) -> Result<Option<Run>> {
    let mut run = run.clone();
    match run.state {
        RunState::Running => {
            let clean = summary.failed == 0 && summary.skipped == 0 && summary.cancelled == 0;
            run.transition(
                if clean {
                    RunState::Succeeded
                } else {
                    RunState::Failed
                },
                now,
            )?;
        }
        RunState::Cancelled if run.summary.is_none() => {}
        _ => return Ok(None),
    }
    run.summary = Some(summary.clone());
    run.watch_at = None;
    Ok(Some(run))
}

// ---------------------------------------------------------------------------------------------
// Executing

/// Moves a dispatched job to running, with the id its BigQuery job will have.
pub fn start(
    job: &Job,
    attempt: u32,
    bigquery_job_id: &str,
    now: Timestamp,
) -> Result<Option<Job>> {
    if job.attempt != attempt || job.state != JobState::Queued || !job.dispatched {
        return Ok(None);
    }
    let mut job = job.clone();
    job.transition(JobState::Running, now)?;
    job.bigquery_job_id = Some(bigquery_job_id.to_string());
    job.watch_at = Some(now + sweep::RUNNING_WATCH);
    Ok(Some(job))
}

/// How a BigQuery job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        statistics: JobStatistics,
        extract: Option<ExtractRecord>,
    },
    Failed {
        error: String,
        statistics: JobStatistics,
    },
}

/// Records how the attempt ended; a job of a cancelled run that did not succeed is cancelled.
pub fn finish(
    job: &Job,
    attempt: u32,
    outcome: &Outcome,
    run_cancelled: bool,
    now: Timestamp,
) -> Result<Option<Job>> {
    if job.attempt != attempt || job.state != JobState::Running {
        return Ok(None);
    }
    let mut job = job.clone();
    match outcome {
        Outcome::Succeeded {
            statistics,
            extract,
        } => {
            job.transition(JobState::Succeeded, now)?;
            job.statistics = Some(statistics.clone());
            job.extract = extract.clone();
        }
        Outcome::Failed { error, statistics } => {
            let to = if run_cancelled {
                JobState::Cancelled
            } else {
                JobState::Failed
            };
            job.transition(to, now)?;
            job.statistics = Some(statistics.clone());
            job.error = Some(error.clone());
        }
    }
    // Watched until the planner has handled its end.
    job.watch_at = Some(now + sweep::FINISHED_WATCH);
    Ok(Some(job))
}

/// Records a transient failure and queues the next attempt after `backoff`; the job keeps
/// its slot, which moves to the new attempt.
pub fn retry(
    job: &Job,
    slot: Option<&Slot>,
    attempt: u32,
    error: &str,
    backoff: SignedDuration,
    now: Timestamp,
) -> Result<Option<(Job, Option<Slot>)>> {
    if job.attempt != attempt || job.state != JobState::Running {
        return Ok(None);
    }
    let mut job = job.clone();
    job.previous_attempts.push(AttemptRecord {
        attempt,
        bigquery_job_id: job.bigquery_job_id.take(),
        error: error.to_string(),
        started_at: job.started_at.take(),
        ended_at: now,
    });
    job.transition(JobState::Queued, now)?;
    job.attempt += 1;
    job.retry_at = Some(now + backoff);
    job.watch_at = Some(now + backoff + sweep::DISPATCHED_WATCH);
    let slot = slot
        .filter(|s| s.held_by(&job.table, attempt))
        .map(|s| Slot {
            attempt: Some(job.attempt),
            ..s.clone()
        });
    Ok(Some((job, slot)))
}

// ---------------------------------------------------------------------------------------------
// Cancelling and resuming

/// Cancels a run that has not ended: nothing more is dispatched.
pub fn cancel_run(run: &Run, now: Timestamp) -> Result<Option<Run>> {
    if !matches!(
        run.state,
        RunState::Created | RunState::Planning | RunState::Running
    ) {
        return Ok(None);
    }
    let mut run = run.clone();
    run.transition(RunState::Cancelled, now)?;
    run.planning_lease = None;
    run.watch_at = Some(now + sweep::RUN_WATCH);
    Ok(Some(run))
}

/// Cancels a job of a cancelled run that has not started.
pub fn cancel_job(job: &Job, now: Timestamp) -> Result<Option<Job>> {
    if !matches!(job.state, JobState::Pending | JobState::Queued) {
        return Ok(None);
    }
    let mut job = job.clone();
    job.transition(JobState::Cancelled, now)?;
    job.watch_at = None;
    Ok(Some(job))
}

/// Resumes a failed run: its jobs that did not succeed get new attempts.
pub fn resume_run(run: &Run, now: Timestamp) -> Result<Option<Run>> {
    if run.state != RunState::Failed || run.planned_at.is_none() {
        return Ok(None);
    }
    let mut run = run.clone();
    run.transition(RunState::Running, now)?;
    run.resumes += 1;
    run.summary = None;
    run.error = None;
    run.watch_at = Some(now + sweep::RUN_WATCH);
    Ok(Some(run))
}

/// Resets a job that did not succeed for the `resume`-th resume of its run: a new attempt,
/// pending on its parents again. A job reset by this resume already is left as it is.
pub fn resume_job(job: &Job, resume: u32, now: Timestamp) -> Result<Option<Job>> {
    if job.resumed >= resume
        || !matches!(
            job.state,
            JobState::Failed | JobState::Skipped | JobState::Cancelled
        )
    {
        return Ok(None);
    }
    let mut job = job.clone();
    if job.state != JobState::Skipped {
        job.previous_attempts.push(AttemptRecord {
            attempt: job.attempt,
            bigquery_job_id: job.bigquery_job_id.take(),
            error: job.error.clone().unwrap_or_else(|| job.state.to_string()),
            started_at: job.started_at,
            ended_at: job.finished_at.unwrap_or(now),
        });
    }
    job.transition(JobState::Pending, now)?;
    job.attempt += 1;
    job.resumed = resume;
    job.dispatched = false;
    job.slot = None;
    job.dispatch_cause = None;
    job.bigquery_job_id = None;
    job.retry_at = None;
    job.statistics = None;
    job.error = None;
    job.skipped_because = None;
    job.queued_at = None;
    job.dispatched_at = None;
    job.started_at = None;
    job.finished_at = None;
    job.watch_at = None;
    Ok(Some(job))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Table;
    use crate::dag::PlannedJob;
    use crate::run::Trigger;

    #[test]
    fn a_cancelled_backfill_frees_its_frequency_once() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let (_, schedule, backfill) = crate::port_suite::backfill(now, 1);
        let (cancelled, freed) =
            cancel_backfill(&backfill, Some(&schedule), now).expect("it was running");
        assert_eq!(cancelled.state, BackfillState::Cancelled);
        assert_eq!(cancelled.finished_at, Some(now));
        assert_eq!(freed.expect("its frequency").backfill, None);
        assert_eq!(cancel_backfill(&cancelled, Some(&schedule), now), None);
        // A schedule held by another backfill is left as it is.
        let other = ScheduleState {
            backfill: Some("other".into()),
            ..schedule
        };
        let (_, untouched) = cancel_backfill(&backfill, Some(&other), now).unwrap();
        assert_eq!(untouched, None);
    }

    /// A parallel backfill fills its room in instant order, only while no other run of the
    /// frequency is open, and not past its last instant.
    #[test]
    fn a_parallel_backfill_starts_runs_until_its_parallel_are_open() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let (frequency, schedule, backfill) = crate::port_suite::backfill(now, 2);
        let held = ScheduleState {
            open_run: Some("hourly-scheduled".into()),
            ..schedule.clone()
        };
        assert_eq!(
            backfill_step(&held, Some(&backfill), &[], &frequency, 5, now),
            None
        );
        let step = backfill_step(&schedule, Some(&backfill), &[], &frequency, 5, now).unwrap();
        let instants: Vec<_> = step.runs.iter().map(|r| r.instant).collect();
        assert_eq!(instants, backfill.instants[..2]);
        assert_eq!(
            step.schedule.backfill_runs,
            step.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
        );
        let started = step.backfill.clone().unwrap();
        assert_eq!(started.runs, step.schedule.backfill_runs);
        // Both open: nothing to do.
        assert_eq!(
            backfill_step(
                &step.schedule,
                Some(&started),
                &step.runs,
                &frequency,
                5,
                now
            ),
            None
        );
        // The second ended: the third and last instant starts; the room left stays empty.
        let mut seen = step.runs.clone();
        seen[1].state = RunState::Succeeded;
        let next =
            backfill_step(&step.schedule, Some(&started), &seen, &frequency, 5, now).unwrap();
        assert_eq!(next.runs.len(), 1);
        assert_eq!(next.runs[0].instant, backfill.instants[2]);
        assert_eq!(
            next.schedule.backfill_runs,
            [seen[0].id.clone(), next.runs[0].id.clone()]
        );
    }

    /// A backfill whose run was started before the schedule listed its runs (it held the
    /// frequency as its open run) is judged by its latest run.
    #[test]
    fn a_backfill_started_before_the_list_is_judged_by_its_latest_run() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let (frequency, schedule, backfill) = crate::port_suite::backfill(now, 1);
        let first = backfill_step(&schedule, Some(&backfill), &[], &frequency, 5, now).unwrap();
        let mut run = first.runs[0].clone();
        run.state = RunState::Failed;
        let old = ScheduleState {
            backfill_runs: vec![],
            ..first.schedule.clone()
        };
        let backfill = first.backfill.unwrap();
        assert_eq!(backfill_reads(&old, Some(&backfill)), [run.id.clone()]);
        // Still running, as the frequency's open run: the backfill waits for it, though
        // every instant has started.
        let mut running = run.clone();
        running.state = RunState::Running;
        let held = ScheduleState {
            open_run: Some(run.id.clone()),
            ..old.clone()
        };
        let one = Backfill {
            instants: backfill.instants[..1].to_vec(),
            ..backfill.clone()
        };
        assert_eq!(
            backfill_step(&held, Some(&one), &[running], &frequency, 5, now),
            None
        );
        let ended = backfill_step(&old, Some(&backfill), &[run], &frequency, 5, now).unwrap();
        let ended = ended.backfill.unwrap();
        assert_eq!(ended.state, BackfillState::Failed);
        assert!(ended.error.unwrap().contains("ended failed"));
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn now() -> Timestamp {
        t("2026-11-22T02:00:00Z")
    }

    fn run(id: &str) -> Run {
        Run::new(
            id.into(),
            Some("daily"),
            Trigger::Schedule,
            now(),
            None,
            2,
            now(),
        )
    }

    #[test]
    fn a_scheduled_instant_older_than_the_latest_handled_is_too_late() {
        let state = |last: &str| ScheduleState {
            frequency: "daily".into(),
            last_instant: Some(t(last)),
            ..ScheduleState::default()
        };
        let scheduled = run("daily-20261122T020000Z");
        assert_eq!(too_late(&scheduled, None), None);
        assert_eq!(
            too_late(&scheduled, Some(&state("2026-11-22T02:00:00Z"))),
            None
        );
        assert_eq!(
            too_late(&scheduled, Some(&state("2026-11-21T02:00:00Z"))),
            None
        );
        let reason = too_late(&scheduled, Some(&state("2026-11-23T02:00:00Z"))).unwrap();
        assert!(reason.contains("2026-11-23T02:00:00Z"), "{reason}");
        let mut manual = scheduled.clone();
        manual.trigger = Trigger::Manual;
        assert_eq!(
            too_late(&manual, Some(&state("2026-11-23T02:00:00Z"))),
            None
        );
    }

    fn job(name: &str, parents: &[&str]) -> Job {
        let table: TableId = name.parse().unwrap();
        let planned = PlannedJob {
            table: table.clone(),
            parents: parents.iter().map(|p| p.parse().unwrap()).collect(),
            outside_parents: vec![],
            children: vec![],
            priority: 0,
        };
        let definition = Table::query(&table, "SELECT 1");
        Job::planned(&run("r"), planned, definition, vec![], "p", now())
    }

    #[test]
    fn a_job_is_watched_from_its_dispatch_until_the_planner_has_handled_its_end() {
        let at = |minutes: i64| now() + SignedDuration::from_mins(minutes);
        let queued = job("d.a", &[]);
        assert_eq!(queued.watch_at, None, "waiting for a slot is not watched");
        let slot = Slot::free(0);
        let (_, dispatched) = claim(&slot, &queued, "run_created", at(1)).unwrap();
        assert_eq!(dispatched.watch_at, Some(at(11)));
        let running = start(&dispatched, 1, "bq", at(2)).unwrap().unwrap();
        assert_eq!(running.watch_at, Some(at(17)));
        let retried = retry(
            &running,
            None,
            1,
            "backendError",
            SignedDuration::from_mins(1),
            at(3),
        )
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(retried.watch_at, Some(at(14)), "after its backoff");
        let running = start(&retried, 2, "bq2", at(4)).unwrap().unwrap();
        let outcome = Outcome::Succeeded {
            statistics: JobStatistics::default(),
            extract: None,
        };
        let ended = finish(&running, 2, &outcome, false, at(5))
            .unwrap()
            .unwrap();
        assert_eq!(ended.watch_at, Some(at(10)));
        assert_eq!(sweep::unwatch_job(&ended, 1), None, "another attempt's end");
        assert_eq!(sweep::unwatch_job(&ended, 2).unwrap().watch_at, None);

        // A child queued by its parents waits for a slot unwatched; one skipped is never.
        let child = job("d.b", &["d.a"]);
        let parents = [(id("d.a"), JobState::Succeeded, None)];
        let Some(Settled::Queued(queued)) = settle(&child, &parents, at(6)).unwrap() else {
            panic!("queued");
        };
        assert_eq!(queued.watch_at, None);
        assert_eq!(
            skip(&child, &id("d.a"), at(6)).unwrap().unwrap().watch_at,
            None
        );

        // A run is watched from its creation, a resume and a cancel, and not once closed.
        let created = run("r");
        assert_eq!(created.watch_at, Some(now() + sweep::RUN_WATCH));
        let cancelled = cancel_run(&created, at(7)).unwrap().unwrap();
        assert_eq!(cancelled.watch_at, Some(at(12)));
        let closed = close(&cancelled, &RunSummary::default(), at(8))
            .unwrap()
            .unwrap();
        assert_eq!(closed.watch_at, None);
    }

    fn id(name: &str) -> TableId {
        name.parse().unwrap()
    }

    fn doc(name: &str, parents: &[&str], conditions: Vec<crate::schedule::Condition>) -> TableDoc {
        let mut definition = job(name, &[]).definition;
        definition.conditions = conditions;
        TableDoc {
            parameters: vec!["run_time".into()],
            ..TableDoc::unanalysed(
                name.parse().unwrap(),
                definition,
                parents.iter().map(|p| p.parse().unwrap()).collect(),
                now(),
            )
        }
    }

    #[test]
    fn a_plan_leaves_out_tables_whose_conditions_fail_unless_asked_for_by_name() {
        // 2026-11-22 is a Sunday.
        let weekdays = vec![crate::schedule::Condition {
            weekdays: vec![1, 2, 3, 4, 5],
            ..Default::default()
        }];
        let tables = vec![
            doc("d.b", &["d.a", "x.other"], vec![]),
            doc("d.a", &[], vec![]),
            doc("d.weekday", &["d.a"], weekdays),
        ];
        let utc = jiff::tz::TimeZone::UTC;
        let plan = plan_run(&run("r"), tables.clone(), &utc, "p", now()).unwrap();
        assert_eq!(plan.excluded, ["d.weekday".parse::<TableId>().unwrap()]);
        let jobs: Vec<(String, u32, JobState)> = plan
            .jobs
            .iter()
            .map(|j| (j.table.to_string(), j.priority, j.state))
            .collect();
        assert_eq!(
            jobs,
            [
                ("d.b".to_string(), 0, JobState::Pending),
                ("d.a".to_string(), 1, JobState::Queued),
            ]
        );
        assert_eq!(
            plan.jobs[0].outside_parents,
            ["x.other".parse::<TableId>().unwrap()]
        );
        assert_eq!(plan.jobs[0].parameters, ["run_time"]);
        assert_eq!(plan.jobs[0].destination, "p.d.b");

        // A run of chosen tables takes them whatever their conditions say.
        let mut chosen = run("r2");
        chosen.tables = vec!["d.weekday".parse().unwrap()];
        let plan = plan_run(&chosen, tables[2..].to_vec(), &utc, "p", now()).unwrap();
        assert!(plan.excluded.is_empty());
        assert_eq!(plan.jobs.len(), 1);
    }

    #[test]
    fn a_plan_over_a_cycle_is_the_cycle() {
        let tables = vec![doc("d.a", &["d.b"], vec![]), doc("d.b", &["d.a"], vec![])];
        let cycle = plan_run(&run("r"), tables, &jiff::tz::TimeZone::UTC, "p", now()).unwrap_err();
        assert_eq!(cycle.to_string(), "dependency cycle: d.a → d.b → d.a");
    }

    #[test]
    fn the_second_run_of_an_open_frequency_is_skipped_with_the_reason() {
        let first = admit(run("daily-1"), None, None, now());
        assert_eq!(first.run.state, RunState::Created);
        assert_eq!(first.schedule.open_run.as_deref(), Some("daily-1"));
        let mut open = first.run.clone();
        open.state = RunState::Running;
        let second = admit(
            run("daily-2"),
            Some(first.schedule.clone()),
            Some(&open),
            now(),
        );
        assert_eq!(second.run.state, RunState::Skipped);
        assert!(
            second
                .run
                .error
                .as_deref()
                .unwrap()
                .contains("run daily-1 of this frequency was still running")
        );
        assert_eq!(second.schedule.open_run.as_deref(), Some("daily-1"));
        // Once the first has ended, the frequency is free.
        let freed = release_schedule(&second.schedule, "daily-1").unwrap();
        let third = admit(run("daily-3"), Some(freed), None, now());
        assert_eq!(third.run.state, RunState::Created);
        assert!(
            release_schedule(&third.schedule, "daily-1").is_none(),
            "only the open run frees it"
        );
    }

    #[test]
    fn a_lease_is_taken_once_and_taken_over_when_it_expires() {
        let r = run("r");
        let until = now() + SignedDuration::from_secs(60);
        let LeaseOutcome::Taken(planning) = take_lease(&r, "a", until, now()).unwrap() else {
            panic!()
        };
        assert_eq!(planning.state, RunState::Planning);
        assert!(matches!(
            take_lease(&planning, "b", until, now()).unwrap(),
            LeaseOutcome::Busy(_)
        ));
        let later = until + SignedDuration::from_secs(1);
        assert!(matches!(
            take_lease(&planning, "b", later, later).unwrap(),
            LeaseOutcome::Taken(_)
        ));
        assert_eq!(
            end_planning(
                &planning,
                "b",
                &Planned::Jobs {
                    count: 3,
                    excluded: vec![]
                },
                now()
            )
            .unwrap(),
            None
        );
        let running = end_planning(
            &planning,
            "a",
            &Planned::Jobs {
                count: 3,
                excluded: vec![],
            },
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!((running.state, running.job_count), (RunState::Running, 3));
        assert_eq!(
            take_lease(&running, "a", until, now()).unwrap(),
            LeaseOutcome::Planned
        );
    }

    #[test]
    fn a_slot_and_a_job_are_claimed_once() {
        let slot = Slot::free(0);
        let j = job("d.a", &[]);
        let (taken, dispatched) = claim(&slot, &j, "run_created", now()).unwrap();
        assert!(taken.held_by(&j.table, 1));
        assert!(claim(&taken, &j, "x", now()).is_none(), "the slot is taken");
        assert!(
            claim(&slot, &dispatched, "x", now()).is_none(),
            "the job is dispatched"
        );
        assert_eq!(
            release(&taken, &j.table, 2),
            None,
            "another attempt does not free it"
        );
        assert_eq!(release(&taken, &j.table, 1), Some(Slot::free(0)));
    }

    #[test]
    fn a_transient_failure_keeps_the_slot_for_the_next_attempt() {
        let (slot, j) = claim(&Slot::free(1), &job("d.a", &[]), "c", now()).unwrap();
        let running = start(&j, 1, "bq1", now()).unwrap().unwrap();
        let (next, slot) = retry(
            &running,
            Some(&slot),
            1,
            "backendError",
            SignedDuration::from_secs(5),
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!((next.state, next.attempt), (JobState::Queued, 2));
        assert_eq!(
            next.previous_attempts[0].bigquery_job_id.as_deref(),
            Some("bq1")
        );
        assert!(slot.unwrap().held_by(&next.table, 2));
        assert!(
            next.dispatched,
            "it stays dispatched: the executor runs the next attempt"
        );
        assert_eq!(
            start(&next, 1, "bq1", now()).unwrap(),
            None,
            "the old attempt cannot start"
        );
    }

    #[test]
    fn a_cancelled_runs_failing_job_ends_cancelled() {
        let (_, j) = claim(&Slot::free(0), &job("d.a", &[]), "c", now()).unwrap();
        let running = start(&j, 1, "bq", now()).unwrap().unwrap();
        let failed = Outcome::Failed {
            error: "stopped: Job cancelled".into(),
            statistics: JobStatistics::default(),
        };
        assert_eq!(
            finish(&running, 1, &failed, true, now())
                .unwrap()
                .unwrap()
                .state,
            JobState::Cancelled
        );
        assert_eq!(
            finish(&running, 1, &failed, false, now())
                .unwrap()
                .unwrap()
                .state,
            JobState::Failed
        );
        assert_eq!(finish(&running, 2, &failed, false, now()).unwrap(), None);
    }

    #[test]
    fn resuming_gives_what_did_not_succeed_a_new_attempt_once() {
        let mut failed_run = run("r");
        failed_run.state = RunState::Failed;
        failed_run.planned_at = Some(now());
        let resumed = resume_run(&failed_run, now()).unwrap().unwrap();
        assert_eq!((resumed.state, resumed.resumes), (RunState::Running, 1));
        let mut failed = job("d.a", &[]);
        failed.state = JobState::Failed;
        failed.error = Some("invalidQuery: oops".into());
        failed.bigquery_job_id = Some("bq".into());
        let reset = resume_job(&failed, 1, now()).unwrap().unwrap();
        assert_eq!(
            (reset.state, reset.attempt, reset.resumed),
            (JobState::Pending, 2, 1)
        );
        assert_eq!(reset.previous_attempts[0].error, "invalidQuery: oops");
        assert_eq!(
            resume_job(&reset, 1, now()).unwrap(),
            None,
            "a repeat of the resume changes nothing"
        );
        let mut ok = job("d.b", &[]);
        ok.state = JobState::Succeeded;
        assert_eq!(
            resume_job(&ok, 1, now()).unwrap(),
            None,
            "succeeded jobs are left alone"
        );
    }

    /// Regression (found by the protocol property test): a job blocked by a parent that was
    /// itself skipped named that parent, not the failure behind it.
    #[test]
    fn a_child_of_a_skipped_parent_names_the_failed_ancestor() {
        let child = job("d.c", &["d.b", "d.x"]);
        let parents = [
            (
                "d.b".parse().unwrap(),
                JobState::Skipped,
                Some("d.a".parse().unwrap()),
            ),
            ("d.x".parse().unwrap(), JobState::Succeeded, None),
        ];
        let Some(Settled::Skipped(skipped)) = settle(&child, &parents, now()).unwrap() else {
            panic!("a skipped parent skips the child");
        };
        assert_eq!(skipped.skipped_because, Some("d.a".parse().unwrap()));
        let failed_parent = [("d.b".parse().unwrap(), JobState::Failed, None)];
        let Some(Settled::Skipped(skipped)) =
            settle(&job("d.c", &["d.b"]), &failed_parent, now()).unwrap()
        else {
            panic!();
        };
        assert_eq!(skipped.skipped_because, Some("d.b".parse().unwrap()));
    }

    #[test]
    fn closing_needs_every_job_ended() {
        let mut a = job("d.a", &[]);
        a.state = JobState::Succeeded;
        let b = job("d.b", &["d.a"]);
        assert_eq!(summarize(&[a.clone(), b.clone()]), None);
        let mut b_failed = b;
        b_failed.state = JobState::Failed;
        let summary = summarize(&[a, b_failed]).unwrap();
        let mut r = run("r");
        r.state = RunState::Running;
        let closed = close(&r, &summary, now()).unwrap().unwrap();
        assert_eq!(closed.state, RunState::Failed);
        assert_eq!(
            closed.summary.unwrap().failed_tables,
            vec!["d.b".parse::<TableId>().unwrap()]
        );
        assert_eq!(
            close(&run("r"), &summary, now()).unwrap(),
            None,
            "only a running run closes"
        );
    }
}
