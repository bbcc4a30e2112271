//! The planner's protocol under any order, duplication and failure of messages: the real
//! `Planner` on the in-memory `RunPort` (the same `lifecycle` transitions as Firestore's), with
//! an executor simulated through the same port transitions the executor uses.
//!
//! Each case draws a DAG, a concurrency cap, and each attempt's fate (success, a permanent
//! failure, a transient failure that gets a new attempt). Messages are delivered one at a time
//! in random order; a message may be delivered again (at-least-once), and a delivery may die
//! partway (a store call fails) and be redelivered. After every step:
//! - no job attempt was claimed for dispatch twice;
//! - no job started before all its parents succeeded;
//! - no more jobs hold slots than the cap allows.
//!
//! At the end every message has been handled, the run has ended, and each job ended as its
//! fates and its ancestors' imply (a failed job's descendants skipped, naming it). Failed runs
//! are resumed once, and must then succeed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use baton_core::catalog::{Table, TableDoc, TableId};
use baton_core::errors::Retryable;
use baton_core::lifecycle::{self, Outcome};
use baton_core::memory::{Memory, MemoryRuns, RunData};
use baton_core::messages::{ExecutorTask, PlannerEvent};
use baton_core::ports::{BusError, Publish, RunPort};
use baton_core::run::{Job, JobStatistics, Run, Trigger};
use baton_core::state::{JobState, RunState};
use baton_planner::{Planner, PlannerError};

const RUN: &str = "run";

#[derive(Clone, Debug, PartialEq)]
enum Message {
    Planner(PlannerEvent),
    Executor(ExecutorTask),
}

#[derive(Default)]
struct Queue(Mutex<Vec<Message>>);

impl Publish for Queue {
    async fn to_planner(&self, event: &PlannerEvent) -> Result<(), BusError> {
        self.0.lock().unwrap().push(Message::Planner(event.clone()));
        Ok(())
    }

    async fn to_executor(&self, task: &ExecutorTask) -> Result<(), BusError> {
        self.0.lock().unwrap().push(Message::Executor(task.clone()));
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Succeed,
    Fail,
    Transient,
}

#[derive(Clone, Debug)]
struct Case {
    /// Each table's parents, by index (always lower ones).
    parents: Vec<Vec<usize>>,
    concurrency: u32,
    /// Fates of attempts 1, 2, 3 of each table (attempt 3 is never transient).
    fates: Vec<[Fate; 3]>,
    seed: u64,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![8 => Just(Fate::Succeed), 1 => Just(Fate::Fail), 1 => Just(Fate::Transient)]
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..13).prop_flat_map(|n| {
        (
            proptest::collection::vec(
                proptest::collection::vec(any::<proptest::sample::Index>(), 0..3),
                n,
            ),
            1u32..4,
            proptest::collection::vec((fate(), fate()), n),
            any::<u64>(),
        )
            .prop_map(move |(parents, concurrency, fates, seed)| Case {
                parents: parents
                    .into_iter()
                    .enumerate()
                    .map(|(i, ps)| {
                        let mut ps: Vec<usize> = ps
                            .into_iter()
                            .filter(|_| i > 0)
                            .map(|p| p.index(i))
                            .collect();
                        ps.sort_unstable();
                        ps.dedup();
                        ps
                    })
                    .collect(),
                concurrency,
                fates: fates
                    .into_iter()
                    .map(|(a, b)| {
                        let last = if b == Fate::Transient {
                            Fate::Succeed
                        } else {
                            b
                        };
                        [a, b, last]
                    })
                    .collect(),
                seed,
            })
    })
}

fn table_id(i: usize) -> TableId {
    format!("d.t{i}").parse().unwrap()
}

fn memory(case: &Case) -> MemoryRuns {
    let now = Timestamp::now();
    let mut memory = Memory::default();
    for (i, parents) in case.parents.iter().enumerate() {
        let id = table_id(i);
        memory.tables.insert(
            id.clone(),
            TableDoc::unanalysed(
                id.clone(),
                Table {
                    frequency: Some("f".into()),
                    ..Table::query(&id, "SELECT 1")
                },
                parents.iter().map(|&p| table_id(p)).collect(),
                now,
            ),
        );
    }
    let run = Run::new(
        RUN.into(),
        Some("f"),
        Trigger::Schedule,
        now,
        None,
        case.concurrency,
        now,
    );
    memory.runs.insert(
        RUN.into(),
        RunData {
            run: Some(run),
            ..RunData::default()
        },
    );
    MemoryRuns::new(memory)
}

/// What the executor does with a task, through the same port transitions.
async fn execute(
    runs: &MemoryRuns,
    bus: &Queue,
    task: &ExecutorTask,
    fates: &[[Fate; 3]],
    resumed: bool,
) -> Result<(), String> {
    let ExecutorTask::RunQuery {
        run_id,
        table,
        attempt,
    } = task
    else {
        return Ok(()); // nothing cancels in these cases
    };
    let e = |e: baton_core::ports::StoreError| e.to_string();
    let Some(job) = runs.job(run_id, table).await.map_err(e)? else {
        return Ok(());
    };
    if job.attempt > *attempt && job.state == JobState::Queued && job.dispatched {
        bus.to_executor(&ExecutorTask::run_query(&job))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    if job.attempt != *attempt {
        return Ok(());
    }
    let now = Timestamp::now();
    let job = match job.state {
        JobState::Queued if job.dispatched => {
            // The invariant the whole protocol is for: parents first.
            let started = runs
                .start(run_id, table, *attempt, "bq", now)
                .await
                .map_err(e)?
                .unwrap();
            if started.state == JobState::Running {
                for parent in &started.parents {
                    let p = runs.job(run_id, parent).await.map_err(e)?.unwrap();
                    assert_eq!(
                        p.state,
                        JobState::Succeeded,
                        "{table} started before its parent {parent} succeeded"
                    );
                }
            }
            started
        }
        JobState::Running => job,
        JobState::Pending | JobState::Queued => return Ok(()),
        _ => {
            bus.to_planner(&PlannerEvent::job_finished(&job))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
    };
    if job.state != JobState::Running {
        return Ok(());
    }
    let index: usize = table.table()[1..].parse().unwrap();
    let fate = if resumed {
        Fate::Succeed
    } else {
        fates[index][(*attempt as usize - 1).min(2)]
    };
    let outcome = match fate {
        Fate::Transient => {
            if let Some(next) = runs
                .retry(
                    run_id,
                    table,
                    *attempt,
                    "backendError",
                    SignedDuration::ZERO,
                    now,
                )
                .await
                .map_err(e)?
            {
                bus.to_executor(&ExecutorTask::RunQuery {
                    run_id: run_id.clone(),
                    table: table.clone(),
                    attempt: next.attempt,
                })
                .await
                .map_err(|e| e.to_string())?;
            }
            return Ok(());
        }
        Fate::Succeed => Outcome::Succeeded {
            statistics: JobStatistics::default(),
            extract: None,
        },
        Fate::Fail => Outcome::Failed {
            error: "invalidQuery".into(),
            statistics: JobStatistics::default(),
        },
    };
    let done = runs
        .finish(run_id, table, *attempt, &outcome, now)
        .await
        .map_err(e)?
        .unwrap();
    bus.to_planner(&PlannerEvent::job_finished(&done))
        .await
        .map_err(|e| e.to_string())
}

fn check_invariants(runs: &MemoryRuns, concurrency: u32) {
    let memory = runs.state.lock().unwrap();
    for ((_, table, attempt), n) in &memory.claims {
        assert!(
            *n <= 1,
            "{table} attempt {attempt} was dispatched {n} times"
        );
    }
    let data = &memory.runs[RUN];
    let holding = data
        .jobs
        .values()
        .filter(|j| (j.state == JobState::Queued && j.dispatched) || j.state == JobState::Running)
        .count();
    assert!(
        holding as u32 <= concurrency,
        "{holding} jobs hold slots, the cap is {concurrency}"
    );
    let taken = data.slots.iter().filter(|s| s.taken).count();
    assert!(taken as u32 <= concurrency);
}

/// Delivers messages until none is left; returns how many deliveries it took. Up to three
/// deliveries are handled at once, interleaving at every store call (each atomic, as a
/// transaction is).
async fn drain(
    planner: &Planner<MemoryRuns, Queue>,
    case: &Case,
    rng: &mut ChaCha8Rng,
    resumed: bool,
) -> usize {
    let mut steps = 0;
    loop {
        let batch: Vec<Message> = {
            let mut queue = planner.bus.0.lock().unwrap();
            if queue.is_empty() {
                return steps;
            }
            let n = rng.random_range(1..=3usize).min(queue.len());
            (0..n)
                .map(|_| {
                    let i = rng.random_range(0..queue.len());
                    queue.swap_remove(i)
                })
                .collect()
        };
        steps += batch.len();
        assert!(steps < 20_000, "the protocol does not end");
        let duplicates: Vec<bool> = batch.iter().map(|_| rng.random_bool(0.15)).collect();
        let die_after = rng.random_bool(0.15).then(|| rng.random_range(0..12));
        planner.runs.fail_after(die_after);
        let results = futures::future::join_all(batch.iter().map(|message| async move {
            match message {
                Message::Planner(event) => {
                    planner.handle(event).await.or_else(|e: PlannerError| {
                        if e.is_retryable() {
                            Err(e.to_string())
                        } else {
                            Ok(())
                        }
                    })
                }
                Message::Executor(task) => {
                    execute(&planner.runs, &planner.bus, task, &case.fates, resumed).await
                }
            }
        }))
        .await;
        planner.runs.fail_after(None);
        let mut queue = planner.bus.0.lock().unwrap();
        for ((message, result), duplicate) in batch.into_iter().zip(results).zip(duplicates) {
            if result.is_err() || duplicate {
                queue.push(message); // redelivered
            }
        }
        drop(queue);
        check_invariants(&planner.runs, case.concurrency);
    }
}

/// Each job's end, from its fates and its parents'.
fn expected(case: &Case) -> Vec<JobState> {
    let mut states: Vec<JobState> = Vec::new();
    for (i, parents) in case.parents.iter().enumerate() {
        let state = if parents.iter().any(|&p| states[p] != JobState::Succeeded) {
            JobState::Skipped
        } else {
            match case.fates[i].iter().find(|f| **f != Fate::Transient) {
                Some(Fate::Succeed) => JobState::Succeeded,
                _ => JobState::Failed,
            }
        };
        states.push(state);
    }
    states
}

fn jobs(runs: &MemoryRuns) -> (Run, BTreeMap<TableId, Job>) {
    let memory = runs.state.lock().unwrap();
    let data = &memory.runs[RUN];
    (data.run.clone().unwrap(), data.jobs.clone())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_order_duplication_or_failure_of_messages_runs_each_job_once_after_its_parents(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            // Deliveries here run one at a time, so a lease that expires at once loses nothing;
            // it lets a delivery that died while planning be taken over without waiting.
            let planner = Planner::new(memory(&case), Queue::default(), "p", SignedDuration::ZERO);
            let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
            planner.bus.to_planner(&PlannerEvent::RunCreated { run_id: RUN.into() }).await.unwrap();
            drain(&planner, &case, &mut rng, false).await;

            let (run, jobs) = jobs(&planner.runs);
            let want = expected(&case);
            for (i, state) in want.iter().enumerate() {
                let job = &jobs[&table_id(i)];
                prop_assert_eq!(job.state, *state, "t{} in {:?}", i, case);
                if *state == JobState::Skipped {
                    let because = job.skipped_because.as_ref().expect("a skipped job names why");
                    prop_assert_eq!(jobs[because].state, JobState::Failed, "skipped because of a failure");
                }
            }
            let all_succeeded = want.iter().all(|s| *s == JobState::Succeeded);
            prop_assert_eq!(run.state, if all_succeeded { RunState::Succeeded } else { RunState::Failed });
            let summary = run.summary.clone().expect("an ended run has a summary");
            prop_assert_eq!(summary.succeeded as usize, want.iter().filter(|s| **s == JobState::Succeeded).count());
            prop_assert!(planner.runs.state.lock().unwrap().runs[RUN].slots.iter().all(|s| !s.taken), "every slot is free at the end");

            if run.state == RunState::Failed {
                // Resume, as the API does, then everything must succeed.
                let resumed = lifecycle::resume_run(&run, Timestamp::now()).unwrap().unwrap();
                planner.runs.state.lock().unwrap().runs.get_mut(RUN).unwrap().run = Some(resumed.clone());
                planner.bus.to_planner(&PlannerEvent::RunResumed { run_id: RUN.into(), resume: resumed.resumes }).await.unwrap();
                drain(&planner, &case, &mut rng, true).await;
                let (run, jobs) = self::jobs(&planner.runs);
                prop_assert_eq!(run.state, RunState::Succeeded, "{:?}", jobs.values().map(|j| (j.table.to_string(), j.state)).collect::<Vec<_>>());
                let attempts: BTreeSet<u32> = jobs.values().filter(|j| j.resumed == 1).map(|j| j.attempt).collect();
                prop_assert!(attempts.iter().all(|a| *a >= 2), "resumed jobs run as new attempts");
            }
            Ok(())
        })?;
    }
}
