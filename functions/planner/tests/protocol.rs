//! The planner's protocol under any order, duplication and failure of messages: the real
//! `Planner` and the real `Executor` on the in-memory `RunPort` (the same `lifecycle`
//! transitions as Firestore's), a queue for Pub/Sub and a BigQuery whose jobs end as each
//! case says.
//!
//! Each case draws a DAG, a concurrency cap, and each attempt's fate (success, a permanent
//! failure, a transient failure that gets a new attempt). Messages are delivered up to three
//! at a time in random order; a message may be delivered again (at-least-once), a delivery may
//! die partway (a store call fails) and be redelivered, and a publish may be lost after the
//! commits before it (the delivery fails and is redelivered: a process that died between its
//! commit and its publish), which only the planner's and the executor's re-sends recover
//! from. After every step:
//! - no job attempt was claimed for dispatch twice;
//! - no job started before all its parents succeeded;
//! - no more jobs hold slots than the cap allows.
//!
//! At the end every message has been handled, the run has ended, and each job ended as its
//! fates and its ancestors' imply (a failed job's descendants skipped, naming it). Failed runs
//! are resumed once, and must then succeed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use baton_core::catalog::{Table, TableDoc, TableId};
use baton_core::errors::Retryable;
use baton_core::lifecycle;
use baton_core::memory::{Memory, MemoryRuns, RunData};
use baton_core::messages::{ExecutorTask, ImporterTask, PlannerEvent};
use baton_core::ports::{
    BlobPort, BusError, Notices, Object, Publish, StorageError, WarehousePort,
};
use baton_core::run::{Job, JobStatistics, NotifyRecord, Run, Trigger};
use baton_core::state::{JobState, RunState};
use baton_core::warehouse::{
    DryRun, ExtractJob, Field, JobProgress, QueryJob, TableShape, WarehouseError,
};
use baton_core::writes::Column;
use baton_executor::{Executor, ExecutorError, Settings};
use baton_planner::{Planner, PlannerError};

const RUN: &str = "run";

#[derive(Clone, Debug, PartialEq)]
enum Message {
    Planner(PlannerEvent),
    Executor(ExecutorTask),
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

/// Pub/Sub as the test sees it: a queue shared by the planner and the executor, whose
/// publishes can be lost (`lose_after`): the delivery that published sees an error after its
/// commits, as a process that died between its commit and its publish would leave things.
#[derive(Clone)]
struct Queue {
    messages: Arc<Mutex<Vec<Message>>>,
    published: Arc<AtomicU64>,
    lose_from: Arc<AtomicU64>,
}

impl Queue {
    fn new() -> Self {
        Self {
            messages: Arc::default(),
            published: Arc::default(),
            lose_from: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    fn lose_after(&self, n: Option<u64>) {
        let base = self.published.load(Ordering::SeqCst);
        self.lose_from
            .store(n.map_or(u64::MAX, |n| base + n), Ordering::SeqCst);
    }

    fn push(&self, message: Message) -> Result<(), BusError> {
        let n = self.published.fetch_add(1, Ordering::SeqCst);
        if n >= self.lose_from.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("the publish was lost".into()));
        }
        self.messages.lock().unwrap().push(message);
        Ok(())
    }
}

impl Publish for Queue {
    async fn to_planner(&self, event: &PlannerEvent) -> Result<(), BusError> {
        self.push(Message::Planner(event.clone()))
    }

    async fn to_executor(&self, task: &ExecutorTask) -> Result<(), BusError> {
        self.push(Message::Executor(task.clone()))
    }

    async fn to_importer(&self, _: &ImporterTask) -> Result<(), BusError> {
        unreachable!("these catalogs have no import tables")
    }
}

/// BigQuery as the test sees it: each job id inserted once (a second insert attaches), each
/// attempt ending as its fate says, and the invariant the whole protocol is for checked when
/// a job is inserted: its parents succeeded.
#[derive(Clone)]
struct Bigquery {
    runs: MemoryRuns,
    fates: Vec<[Fate; 3]>,
    resumed: Arc<AtomicBool>,
    jobs: Arc<Mutex<BTreeMap<String, JobProgress>>>,
}

impl Bigquery {
    fn untouched<T>(&self, what: &str) -> Result<T, WarehouseError> {
        Err(WarehouseError::Invalid(format!(
            "{what} is not in these cases"
        )))
    }
}

impl WarehousePort for Bigquery {
    async fn ensure_dataset(&self, _dataset: &str) -> Result<(), WarehouseError> {
        Ok(())
    }

    async fn start_query(&self, query: &QueryJob<'_>) -> Result<JobProgress, WarehouseError> {
        let table = query.destination.expect("a query job writes a table").table;
        let memory = self.runs.state.lock().unwrap();
        let jobs = &memory.runs[RUN].jobs;
        let job = &jobs[table];
        assert_eq!(job.bigquery_job_id.as_deref(), Some(query.job_id));
        for parent in &job.parents {
            assert_eq!(
                jobs[parent].state,
                JobState::Succeeded,
                "{table} started before its parent {parent} succeeded"
            );
        }
        let index: usize = table.table()[1..].parse().unwrap();
        let fate = if self.resumed.load(Ordering::SeqCst) {
            Fate::Succeed
        } else {
            self.fates[index][(job.attempt as usize - 1).min(2)]
        };
        let ended = match fate {
            Fate::Succeed => JobProgress::Succeeded(JobStatistics::default()),
            Fate::Fail => JobProgress::Failed {
                reason: "invalidQuery".into(),
                message: "Unrecognized name: x".into(),
                statistics: JobStatistics::default(),
            },
            Fate::Transient => JobProgress::Failed {
                reason: "backendError".into(),
                message: "try again".into(),
                statistics: JobStatistics::default(),
            },
        };
        let mut started = self.jobs.lock().unwrap();
        Ok(started
            .entry(query.job_id.to_string())
            .or_insert(ended)
            .clone())
    }

    async fn start_extract(&self, _job: &ExtractJob<'_>) -> Result<JobProgress, WarehouseError> {
        self.untouched("an extract")
    }

    async fn job_progress(&self, job_id: &str) -> Result<JobProgress, WarehouseError> {
        let jobs = self.jobs.lock().unwrap();
        jobs.get(job_id)
            .cloned()
            .ok_or_else(|| WarehouseError::NotFound(job_id.into()))
    }

    async fn cancel_job(&self, _job_id: &str) -> Result<(), WarehouseError> {
        self.untouched("a cancel")
    }

    async fn dry_run(
        &self,
        _sql: &str,
        _dataset: &str,
        _timestamps: &[(String, Option<Timestamp>)],
    ) -> Result<DryRun, WarehouseError> {
        self.untouched("a dry run")
    }

    async fn schema(&self, _table: &TableId) -> Result<Option<Vec<Field>>, WarehouseError> {
        self.untouched("a schema")
    }

    async fn create_table(
        &self,
        _table: &TableId,
        _schema: &[Field],
        _shape: TableShape<'_>,
    ) -> Result<(), WarehouseError> {
        self.untouched("a table's creation")
    }

    async fn add_columns(
        &self,
        _table: &TableId,
        _current: &[Field],
        _result: &[Field],
        _added: &[Column],
    ) -> Result<(), WarehouseError> {
        self.untouched("new columns")
    }

    async fn set_expiration(
        &self,
        _table: &TableId,
        _at: Timestamp,
    ) -> Result<Option<i64>, WarehouseError> {
        self.untouched("an expiration")
    }

    async fn row_count(&self, _table: &TableId) -> Result<Option<i64>, WarehouseError> {
        Ok(None)
    }
}

/// Nothing in these cases extracts or alerts.
struct Quiet;

impl BlobPort for Quiet {
    async fn list(&self, _bucket: &str, _prefix: &str) -> Result<Vec<Object>, StorageError> {
        Ok(vec![])
    }

    async fn signed_url(
        &self,
        _bucket: &str,
        _object: &str,
        _expiry: Duration,
    ) -> Result<String, StorageError> {
        Err(StorageError::Permanent(
            "nothing is signed in these cases".into(),
        ))
    }
}

impl Notices for Quiet {
    async fn notify(
        &self,
        _url: &str,
        _body: &serde_json::Value,
        _until: std::time::Instant,
    ) -> NotifyRecord {
        unreachable!("nothing notifies in these cases")
    }

    async fn job_failed(&self, _job: &Job) {}
}

type TestExecutor = Executor<MemoryRuns, Queue, Bigquery, Quiet, Quiet>;

fn executor(runs: &MemoryRuns, bus: &Queue, case: &Case) -> TestExecutor {
    let warehouse = Bigquery {
        runs: runs.clone(),
        fates: case.fates.clone(),
        resumed: Arc::default(),
        jobs: Arc::default(),
    };
    let settings = Settings {
        wait: Duration::from_secs(60),
        max_attempts: 3,
        retry_backoff: Duration::ZERO,
        price_per_tib: 6.25,
        extract_bucket: None,
        url_expiry: Duration::from_secs(60),
    };
    Executor::new(runs.clone(), bus.clone(), warehouse, Quiet, Quiet, settings)
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
    executor: &TestExecutor,
    case: &Case,
    rng: &mut ChaCha8Rng,
) -> usize {
    let mut steps = 0;
    loop {
        let batch: Vec<Message> = {
            let mut queue = planner.bus.messages.lock().unwrap();
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
        let lose_after = rng.random_bool(0.15).then(|| rng.random_range(0..4));
        planner.bus.lose_after(lose_after);
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
                    let (run_id, table, attempt) = task.parts();
                    let handled = match task {
                        ExecutorTask::RunQuery { .. } => executor.run(run_id, table, attempt).await,
                        ExecutorTask::Cancel { .. } => Ok(()), // nothing cancels in these cases
                    };
                    handled.or_else(|e: ExecutorError| {
                        if e.is_retryable() {
                            Err(e.to_string())
                        } else {
                            Ok(())
                        }
                    })
                }
            }
        }))
        .await;
        planner.runs.fail_after(None);
        planner.bus.lose_after(None);
        let mut queue = planner.bus.messages.lock().unwrap();
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
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            // Deliveries here run one at a time, so a lease that expires at once loses nothing;
            // it lets a delivery that died while planning be taken over without waiting.
            let runs = memory(&case);
            let bus = Queue::new();
            let executor = executor(&runs, &bus, &case);
            let planner = Planner::new(runs, bus, "p", SignedDuration::ZERO);
            let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
            planner.bus.to_planner(&PlannerEvent::RunCreated { run_id: RUN.into() }).await.unwrap();
            drain(&planner, &executor, &case, &mut rng).await;

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
                executor.warehouse.resumed.store(true, Ordering::SeqCst);
                drain(&planner, &executor, &case, &mut rng).await;
                let (run, jobs) = self::jobs(&planner.runs);
                prop_assert_eq!(run.state, RunState::Succeeded, "{:?}", jobs.values().map(|j| (j.table.to_string(), j.state)).collect::<Vec<_>>());
                let attempts: BTreeSet<u32> = jobs.values().filter(|j| j.resumed == 1).map(|j| j.attempt).collect();
                prop_assert!(attempts.iter().all(|a| *a >= 2), "resumed jobs run as new attempts");
            }
            Ok(())
        })?;
    }
}
