//! An in-memory `RunPort`: the same transitions as the Firestore store (the functions of
//! `lifecycle`), each applied atomically under one lock, as a Firestore transaction applies it.
//! Every call yields to the scheduler first, so that deliveries handled concurrently on one
//! thread interleave at each call, as concurrent handlers interleave between transactions.
//! The property tests run the planner's protocol on it under any order, duplication and
//! failure of messages; the benchmark plans with it. It can be told to fail a call, as a
//! process dying there would.
//!
//! It does not model backfills (`advance_backfill` does nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::catalog::{Frequency, TableDoc, TableId};
use crate::lifecycle::{self, LeaseOutcome, Outcome, ParentState, Planned, Settled};
use crate::ports::RunPort;
use crate::ports::StoreError;
use crate::run::{Backfill, Job, Run, RunSummary, ScheduleState, Slot};
use crate::state::{IllegalTransition, JobState};

#[derive(Debug, Default, Clone)]
pub struct RunData {
    pub run: Option<Run>,
    pub jobs: BTreeMap<TableId, Job>,
    pub slots: Vec<Slot>,
}

#[derive(Debug, Default)]
pub struct Memory {
    pub frequencies: BTreeMap<String, Frequency>,
    pub tables: BTreeMap<TableId, TableDoc>,
    pub runs: BTreeMap<String, RunData>,
    pub schedules: BTreeMap<String, ScheduleState>,
    pub backfills: BTreeMap<String, Backfill>,
    /// How many times each (run, table, attempt) was claimed for dispatch: the property
    /// tests check that it never exceeds one.
    pub claims: BTreeMap<(String, TableId, u32), u32>,
}

/// The in-memory `RunPort`. Clones share one model, as processes share one database.
#[derive(Debug, Clone)]
pub struct MemoryRuns {
    pub state: Arc<Mutex<Memory>>,
    calls: Arc<AtomicU64>,
    /// Calls numbered at or after this fail as unavailable (`u64::MAX`: none).
    fail_from: Arc<AtomicU64>,
}

fn illegal(e: IllegalTransition) -> StoreError {
    StoreError::Permanent(format!("refused an illegal state change: {e}"))
}

impl MemoryRuns {
    pub fn new(memory: Memory) -> Self {
        Self {
            state: Arc::new(Mutex::new(memory)),
            calls: Arc::new(AtomicU64::new(0)),
            fail_from: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// Makes the `n`-th call from now, and every one after it, fail; `None` heals it.
    pub fn fail_after(&self, n: Option<u64>) {
        let base = self.calls.load(Ordering::SeqCst);
        self.fail_from
            .store(n.map_or(u64::MAX, |n| base + n), Ordering::SeqCst);
    }

    async fn enter(&self) -> Result<std::sync::MutexGuard<'_, Memory>, StoreError> {
        futures_lite::future::yield_now().await;
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n >= self.fail_from.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        Ok(self
            .state
            .lock()
            .expect("the memory store is never poisoned"))
    }

    async fn with_run<T>(
        &self,
        run_id: &str,
        f: impl FnOnce(&mut RunData) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut memory = self.enter().await?;
        let data = memory.runs.entry(run_id.to_string()).or_default();
        f(data)
    }
}

impl MemoryRuns {
    /// Writes what `change` makes of a job, if anything.
    async fn change_job(
        &self,
        run_id: &str,
        table: &TableId,
        change: impl FnOnce(&Job) -> Option<Job>,
    ) -> Result<(), StoreError> {
        self.with_run(run_id, |d| {
            if let Some(job) = d.jobs.get(table).and_then(change) {
                d.jobs.insert(table.clone(), job);
            }
            Ok(())
        })
        .await
    }
}

impl RunPort for MemoryRuns {
    async fn run(&self, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.with_run(run_id, |d| Ok(d.run.clone())).await
    }

    async fn job(&self, run_id: &str, table: &TableId) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| Ok(d.jobs.get(table).cloned()))
            .await
    }

    async fn jobs(&self, run_id: &str) -> Result<Vec<Job>, StoreError> {
        self.with_run(run_id, |d| Ok(d.jobs.values().cloned().collect()))
            .await
    }

    async fn waiting_jobs(&self, run_id: &str, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let mut waiting: Vec<Job> = d
                .jobs
                .values()
                .filter(|j| j.state == JobState::Queued && !j.dispatched)
                .cloned()
                .collect();
            waiting.sort_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then_with(|| a.table.cmp(&b.table))
            });
            waiting.truncate(limit as usize);
            Ok(waiting)
        })
        .await
    }

    async fn dispatched_by(&self, run_id: &str, cause: &str) -> Result<Vec<Job>, StoreError> {
        self.with_run(run_id, |d| {
            Ok(d.jobs
                .values()
                .filter(|j| {
                    j.state == JobState::Queued && j.dispatch_cause.as_deref() == Some(cause)
                })
                .cloned()
                .collect())
        })
        .await
    }

    async fn free_slots(&self, run_id: &str) -> Result<Vec<Slot>, StoreError> {
        self.with_run(run_id, |d| {
            Ok(d.slots.iter().filter(|s| !s.taken).cloned().collect())
        })
        .await
    }

    async fn has_open_jobs(&self, run_id: &str) -> Result<bool, StoreError> {
        self.with_run(run_id, |d| {
            Ok(d.jobs.values().any(|j| !j.state.is_terminal()))
        })
        .await
    }

    async fn frequency(&self, name: &str) -> Result<Option<Frequency>, StoreError> {
        Ok(self.enter().await?.frequencies.get(name).cloned())
    }

    async fn plan_tables(&self, run: &Run) -> Result<Vec<TableDoc>, StoreError> {
        let memory = self.enter().await?;
        let all: Vec<TableDoc> = memory.tables.values().cloned().collect();
        let chosen: BTreeSet<TableId> = if run.downstream {
            crate::dag::downstream(&all, &run.tables)
        } else {
            run.tables.iter().cloned().collect()
        };
        Ok(all
            .into_iter()
            .filter(|t| match &run.frequency {
                _ if !run.tables.is_empty() => chosen.contains(&t.id),
                Some(f) => t.definition.frequency.as_deref() == Some(f.as_str()),
                None => false,
            })
            .collect())
    }

    async fn take_lease(
        &self,
        run_id: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<LeaseOutcome>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(run) = &d.run else { return Ok(None) };
            let outcome = lifecycle::take_lease(run, holder, until, now).map_err(illegal)?;
            if let LeaseOutcome::Taken(r) = &outcome {
                d.run = Some((**r).clone());
            }
            Ok(Some(outcome))
        })
        .await
    }

    async fn write_plan(
        &self,
        run_id: &str,
        holder: &str,
        jobs: Vec<Job>,
        slots: u32,
    ) -> Result<bool, StoreError> {
        self.with_run(run_id, |d| {
            if !d
                .run
                .as_ref()
                .is_some_and(|r| lifecycle::holds_lease(r, holder))
            {
                return Ok(false);
            }
            d.jobs = jobs.into_iter().map(|j| (j.table.clone(), j)).collect();
            d.slots = (0..slots).map(Slot::free).collect();
            Ok(true)
        })
        .await
    }

    async fn end_planning(
        &self,
        run_id: &str,
        holder: &str,
        planned: &Planned,
        now: Timestamp,
    ) -> Result<Option<Run>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(run) = &d.run else { return Ok(None) };
            let ended = lifecycle::end_planning(run, holder, planned, now).map_err(illegal)?;
            if let Some(r) = &ended {
                d.run = Some(r.clone());
            }
            Ok(ended)
        })
        .await
    }

    async fn claim(
        &self,
        run_id: &str,
        slot: u32,
        table: &TableId,
        cause: &str,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        let mut memory = self.enter().await?;
        let d = memory.runs.entry(run_id.to_string()).or_default();
        let (Some(s), Some(j)) = (d.slots.get(slot as usize), d.jobs.get(table)) else {
            return Ok(None);
        };
        let Some((s, j)) = lifecycle::claim(s, j, cause, now) else {
            return Ok(None);
        };
        d.slots[slot as usize] = s;
        d.jobs.insert(table.clone(), j.clone());
        *memory
            .claims
            .entry((run_id.to_string(), table.clone(), j.attempt))
            .or_default() += 1;
        Ok(Some(j))
    }

    async fn release(
        &self,
        run_id: &str,
        slot: u32,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), StoreError> {
        self.with_run(run_id, |d| {
            if let Some(s) = d
                .slots
                .get(slot as usize)
                .and_then(|s| lifecycle::release(s, table, attempt))
            {
                d.slots[slot as usize] = s;
            }
            Ok(())
        })
        .await
    }

    async fn settle(
        &self,
        run_id: &str,
        table: &TableId,
        now: Timestamp,
    ) -> Result<Option<Settled>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            let parents: Vec<ParentState> = job
                .parents
                .iter()
                .map(|p| match d.jobs.get(p) {
                    Some(j) => (p.clone(), j.state, j.skipped_because.clone()),
                    None => (p.clone(), JobState::Pending, None),
                })
                .collect();
            let settled = lifecycle::settle(job, &parents, now).map_err(illegal)?;
            if let Some(Settled::Queued(j) | Settled::Skipped(j)) = &settled {
                d.jobs.insert(table.clone(), j.clone());
            }
            Ok(settled)
        })
        .await
    }

    async fn skip(
        &self,
        run_id: &str,
        table: &TableId,
        because: &TableId,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            match lifecycle::skip(job, because, now).map_err(illegal)? {
                Some(j) => {
                    d.jobs.insert(table.clone(), j.clone());
                    Ok(Some(j))
                }
                None => Ok(Some(job.clone())),
            }
        })
        .await
    }

    async fn close(
        &self,
        run_id: &str,
        summary: &RunSummary,
        now: Timestamp,
    ) -> Result<Option<Run>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(run) = &d.run else { return Ok(None) };
            let closed = lifecycle::close(run, summary, now).map_err(illegal)?;
            if let Some(r) = &closed {
                d.run = Some(r.clone());
            }
            Ok(closed)
        })
        .await
    }

    async fn cancel_job(
        &self,
        run_id: &str,
        table: &TableId,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            let cancelled = lifecycle::cancel_job(job, now).map_err(illegal)?;
            if let Some(j) = &cancelled {
                d.jobs.insert(table.clone(), j.clone());
            }
            Ok(cancelled)
        })
        .await
    }

    async fn resume_job(
        &self,
        run_id: &str,
        table: &TableId,
        resume: u32,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            let reset = lifecycle::resume_job(job, resume, now).map_err(illegal)?;
            if let Some(j) = &reset {
                d.jobs.insert(table.clone(), j.clone());
            }
            Ok(reset)
        })
        .await
    }

    async fn watch_job(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        self.change_job(run_id, table, |j| {
            crate::sweep::rewatch_job(j, attempt, until)
        })
        .await
    }

    async fn unwatch_run(&self, run_id: &str) -> Result<(), StoreError> {
        self.with_run(run_id, |d| {
            if let Some(run) = d.run.as_ref().and_then(crate::sweep::unwatch_run) {
                d.run = Some(run);
            }
            Ok(())
        })
        .await
    }

    async fn unwatch_job(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), StoreError> {
        self.change_job(run_id, table, |j| crate::sweep::unwatch_job(j, attempt))
            .await
    }

    async fn release_schedule(&self, frequency: &str, run_id: &str) -> Result<(), StoreError> {
        let mut memory = self.enter().await?;
        if let Some(freed) = memory
            .schedules
            .get(frequency)
            .and_then(|s| lifecycle::release_schedule(s, run_id))
        {
            memory.schedules.insert(frequency.to_string(), freed);
        }
        Ok(())
    }

    async fn advance_backfill(
        &self,
        frequency: &str,
        default_concurrency: u32,
        now: Timestamp,
    ) -> Result<Vec<Run>, StoreError> {
        let mut memory = self.enter().await?;
        let Some(state) = memory
            .schedules
            .get(frequency)
            .filter(|s| s.backfill.is_some() || !s.backfill_runs.is_empty())
            .cloned()
        else {
            return Ok(Vec::new());
        };
        let backfill = state
            .backfill
            .as_ref()
            .and_then(|id| memory.backfills.get(id))
            .cloned();
        let Some(definition) = memory.frequencies.get(frequency).cloned() else {
            return Ok(Vec::new());
        };
        let seen: Vec<Run> = lifecycle::backfill_reads(&state, backfill.as_ref())
            .iter()
            .filter_map(|id| memory.runs.get(id).and_then(|d| d.run.clone()))
            .collect();
        let Some(step) = lifecycle::backfill_step(
            &state,
            backfill.as_ref(),
            &seen,
            &definition,
            default_concurrency,
            now,
        ) else {
            return Ok(Vec::new());
        };
        for run in &step.runs {
            memory.runs.insert(
                run.id.clone(),
                RunData {
                    run: Some(run.clone()),
                    ..RunData::default()
                },
            );
        }
        if let Some(backfill) = step.backfill {
            memory.backfills.insert(backfill.id.clone(), backfill);
        }
        memory
            .schedules
            .insert(frequency.to_string(), step.schedule);
        Ok(step.runs)
    }

    async fn start(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        bigquery_job_id: &str,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            match lifecycle::start(job, attempt, bigquery_job_id, now).map_err(illegal)? {
                Some(j) => {
                    d.jobs.insert(table.clone(), j.clone());
                    Ok(Some(j))
                }
                None => Ok(Some(job.clone())),
            }
        })
        .await
    }

    async fn finish(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        outcome: &Outcome,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let cancelled = d
                .run
                .as_ref()
                .is_some_and(|r| r.state == crate::state::RunState::Cancelled);
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            match lifecycle::finish(job, attempt, outcome, cancelled, now).map_err(illegal)? {
                Some(j) => {
                    d.jobs.insert(table.clone(), j.clone());
                    Ok(Some(j))
                }
                None => Ok(Some(job.clone())),
            }
        })
        .await
    }

    async fn retry(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        error: &str,
        backoff: SignedDuration,
        now: Timestamp,
    ) -> Result<Option<Job>, StoreError> {
        self.with_run(run_id, |d| {
            let Some(job) = d.jobs.get(table) else {
                return Ok(None);
            };
            let slot = job.slot.and_then(|i| d.slots.get(i as usize));
            let Some((next, slot)) =
                lifecycle::retry(job, slot, attempt, error, backoff, now).map_err(illegal)?
            else {
                return Ok(None);
            };
            if let Some(s) = slot {
                let i = s.index as usize;
                d.slots[i] = s;
            }
            d.jobs.insert(table.clone(), next.clone());
            Ok(Some(next))
        })
        .await
    }
}
