//! The planner: told by Pub/Sub push that a run was created, resumed or cancelled, or that a
//! job finished.
//!
//! - Run created: freeze the plan (one job document per table with its parents, children,
//!   priority and query parameters; tables whose calendar conditions do not hold are left out;
//!   a cycle fails the run), then dispatch.
//! - Job finished: release its slot; queue the children whose parents all succeeded, or skip
//!   the descendants of a job that did not succeed; dispatch; close the run when nothing is
//!   open.
//! - Run resumed: give what did not succeed a new attempt, then dispatch.
//! - Run cancelled: cancel what has not started, ask the executor to stop what runs.
//! - Dispatch: while the run has a free slot and a queued job, claim both in one transaction,
//!   most important job first, and send the job to the executor.
//! - Closing a run frees its frequency for the next run and starts the next run of a backfill.
//! - An event handled to its end stops the watch on its run (or job) that lets the tick's
//!   sweep send it again if it had been lost (`baton_core::sweep`).
//!
//! Every step reads the documents and acts on what they say, through transactions (`RunPort`),
//! so a repeated, late or concurrent message does nothing twice. A job dispatched while
//! handling an event records that event; a repeat of the event sends the dispatch again,
//! which covers a planner that died between its commit and its send (the executor is
//! idempotent). The protocol is generic over its ports, so the property tests run this very
//! code on an in-memory store.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use futures::{StreamExt, TryStreamExt};
use jiff::{SignedDuration, Timestamp};
use tracing::Instrument;

use baton_core::catalog::TableId;
use baton_core::catalog::TableKind;
use baton_core::config::{ConfigError, Env};
use baton_core::errors::Retryable;
use baton_core::lifecycle::{LeaseOutcome, Planned, RunPlan, Settled, plan_run, summarize};
use baton_core::messages::{ExecutorTask, ImporterTask, PlannerEvent};
use baton_core::ports::{BusError, Publish, RunPort, StoreError};
use baton_core::run::{Job, Run};
use baton_core::state::{JobState, RunState};
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::store::{Contended, Store};
use baton_service::alerts::{AlertConfig, Alerts};
use baton_service::config::Listen;
use baton_service::dead_letters::{Refusals, record_refusals};
use baton_service::http::{PushOutcome, decode_push, healthz};
use baton_service::oidc::Callers;
use baton_service::serial::Serial;
use baton_service::service::ServiceConfig;

/// How many of a finished job's children are settled at once (one transaction each).
const SETTLING_AT_ONCE: usize = 8;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    /// How long a planner may take to write a run's plan before another may take over
    /// (`BATON_PLANNING_LEASE_SECONDS`).
    pub planning_lease_seconds: i64,
    pub alerts: AlertConfig,
    /// Who may call: the Pub/Sub push identity.
    pub callers: Callers,
    /// The cap of a backfill's runs whose frequency sets none (`BATON_DEFAULT_CONCURRENCY`).
    pub default_concurrency: u32,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let gcp = Gcp::from_env(env)?;
        Ok(Self {
            listen: Listen::from_env(env)?,
            alerts: AlertConfig::from_env(env, &gcp)?,
            gcp,
            planning_lease_seconds: env.parse_or("BATON_PLANNING_LEASE_SECONDS", 120)?,
            callers: Callers::from_env(env)?,
            default_concurrency: env.parse_or(
                "BATON_DEFAULT_CONCURRENCY",
                baton_core::run::DEFAULT_CONCURRENCY,
            )?,
        })
    }

    fn listen(&self) -> &Listen {
        &self.listen
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Another planner is writing the run's plan.
    #[error("busy: {0}")]
    Busy(String),
    /// The message no longer applies (an unknown run, an old attempt).
    #[error("stale: {0}")]
    Stale(String),
}

impl Retryable for PlannerError {
    fn is_retryable(&self) -> bool {
        match self {
            PlannerError::Store(e) => e.is_retryable(),
            PlannerError::Bus(e) => e.is_retryable(),
            PlannerError::Busy(_) => true,
            PlannerError::Stale(_) => false,
        }
    }
}

impl Contended for PlannerError {
    fn is_contention(&self) -> bool {
        matches!(self, PlannerError::Store(e) if e.is_contention())
    }
}

/// The planner's protocol over its ports.
#[derive(Debug)]
pub struct Planner<P, B> {
    pub runs: P,
    pub bus: B,
    /// Baton's BigQuery project, for the jobs' destinations.
    pub project: String,
    lease: SignedDuration,
    /// This process, in the names of the planning leases its handlings take.
    process: String,
    handlings: AtomicU64,
    /// Deliveries about one run that reach this process are handled in turn (`deliver`).
    serial: Serial,
    /// Where a failed run is reported (a deployment's Slack connection), if anywhere.
    pub alerts: Option<Alerts>,
    /// The cap of a backfill's runs whose frequency sets none.
    pub default_concurrency: u32,
}

/// The planner of a deployment: Firestore and Pub/Sub.
pub type App = Planner<Store, Topics>;

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.gcp).await?;
        let mut planner = Planner::new(
            store.clone(),
            Topics::new(&config.gcp)?,
            &config.gcp.bigquery_project,
            SignedDuration::from_secs(config.planning_lease_seconds),
        );
        planner.alerts = Some(Alerts::new(store, config.alerts));
        planner.default_concurrency = config.default_concurrency;
        Ok(planner)
    }
}

/// The service as it runs: its clients connected, its routes behind the callers' check.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    let app = Arc::new(App::connect(config.clone()).await?);
    Ok(baton_service::oidc::guard(router(app), &config.callers))
}

pub fn router(app: Arc<App>) -> Router {
    let refusals = Refusals::new(app.runs.clone(), "planner");
    Router::new()
        .route(
            "/pubsub",
            post(pubsub).layer(from_fn_with_state(refusals, record_refusals)),
        )
        .route("/dead-letters", post(dead_letters))
        .route("/healthz", get(healthz))
        .with_state(app)
}

/// The dead-letter topic's pushes: each message Pub/Sub gave up on, kept in `dead_letters`.
async fn dead_letters(State(app): State<Arc<App>>, body: Bytes) -> PushOutcome {
    baton_service::dead_letters::receive(&app.runs, &app.bus.bus, &body).await
}

async fn pubsub(State(app): State<Arc<App>>, body: Bytes) -> PushOutcome {
    let push = match decode_push::<PlannerEvent>(&body) {
        Ok(push) => push,
        Err(reason) => {
            tracing::error!(%reason, "malformed message acknowledged");
            return PushOutcome::Ignored(reason);
        }
    };
    let span = tracing::info_span!(
        "planner",
        run_id = %push.body.run_id(),
        message_id = %push.message_id,
        event = %push.body.cause()
    );
    PushOutcome::from_result(app.deliver(&push.body).instrument(span).await)
}

impl<P: RunPort, B: Publish> Planner<P, B> {
    pub fn new(runs: P, bus: B, project: &str, lease: SignedDuration) -> Self {
        let process = format!(
            "planner-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        );
        Self {
            runs,
            bus,
            project: project.to_string(),
            lease,
            process,
            handlings: AtomicU64::new(0),
            serial: Serial::default(),
            alerts: None,
            default_concurrency: baton_core::run::DEFAULT_CONCURRENCY,
        }
    }

    /// A name for one handling's planning lease: two deliveries of one run handled at once by
    /// the same process must not both think they hold it.
    fn lease_holder(&self) -> String {
        let n = self.handlings.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.process)
    }

    /// Handles one delivered event after the deliveries about its run that reached this
    /// process before it: duplicates and neighbours then find each other's writes instead of
    /// contending for the same documents.
    pub async fn deliver(&self, event: &PlannerEvent) -> Result<(), PlannerError> {
        let _turn = self.serial.lock(event.run_id()).await;
        self.handle(event).await
    }

    /// Handles one event. Safe under any concurrency: every change is a transaction.
    pub async fn handle(&self, event: &PlannerEvent) -> Result<(), PlannerError> {
        let cause = event.cause();
        match event {
            PlannerEvent::RunCreated { run_id } => {
                self.freeze(run_id).await?;
                self.dispatch(run_id, &cause).await?;
                self.close_if_done(run_id).await?;
            }
            PlannerEvent::JobFinished {
                run_id,
                table,
                attempt,
            } => {
                self.finished(run_id, table, *attempt, &cause).await?;
                // Handled to the end: the tick's sweep need not send it again.
                self.runs.unwatch_job(run_id, table, *attempt).await?;
                return Ok(());
            }
            PlannerEvent::RunResumed { run_id, resume } => {
                self.resume(run_id, *resume, &cause).await?;
            }
            PlannerEvent::RunCancelled { run_id } => self.cancel(run_id).await?,
        }
        self.runs.unwatch_run(event.run_id()).await?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Freezing the plan

    async fn freeze(&self, run_id: &str) -> Result<(), PlannerError> {
        let Some(run) = self.runs.run(run_id).await? else {
            return Err(PlannerError::Stale(format!("no run {run_id}")));
        };
        if !matches!(run.state, RunState::Created | RunState::Planning) {
            return Ok(());
        }
        let holder = self.lease_holder();
        let now = Timestamp::now();
        match self
            .runs
            .take_lease(run_id, &holder, now + self.lease, now)
            .await?
        {
            None => return Err(PlannerError::Stale(format!("no run {run_id}"))),
            Some(LeaseOutcome::Planned) => return Ok(()),
            Some(LeaseOutcome::Busy(why)) => return Err(PlannerError::Busy(why)),
            Some(LeaseOutcome::Taken(_)) => {}
        }

        let tables = self.runs.plan_tables(&run).await?;
        let zone = match &run.frequency {
            Some(name) => match self.runs.frequency(name).await? {
                Some(f) => f
                    .schedule()
                    .map(|s| s.zone())
                    .unwrap_or(jiff::tz::TimeZone::UTC),
                None => jiff::tz::TimeZone::UTC,
            },
            None => jiff::tz::TimeZone::UTC,
        };
        let RunPlan { jobs, excluded } =
            match plan_run(&run, tables, &zone, &self.project, Timestamp::now()) {
                Ok(plan) => plan,
                Err(cycle) => {
                    tracing::error!(%cycle, "the run's tables form a cycle");
                    self.end_planning(run_id, &holder, &Planned::Failed(cycle.to_string()))
                        .await?;
                    return Ok(());
                }
            };
        let count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
        if !self
            .runs
            .write_plan(run_id, &holder, jobs, run.concurrency)
            .await?
        {
            // Slow, not dead: another planner took the run over and plans it.
            return Err(PlannerError::Busy(format!(
                "lost the planning lease of run {run_id}"
            )));
        }
        self.end_planning(run_id, &holder, &Planned::Jobs { count, excluded })
            .await?;
        tracing::info!(jobs = count, concurrency = run.concurrency, "plan frozen");
        Ok(())
    }

    async fn end_planning(
        &self,
        run_id: &str,
        holder: &str,
        planned: &Planned,
    ) -> Result<(), PlannerError> {
        match self
            .runs
            .end_planning(run_id, holder, planned, Timestamp::now())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(PlannerError::Busy(format!(
                "lost the planning lease of run {run_id}"
            ))),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Dispatching

    /// Dispatches queued jobs into free slots until one or the other runs out, after sending
    /// again what an earlier handling of `cause` dispatched.
    async fn dispatch(&self, run_id: &str, cause: &str) -> Result<(), PlannerError> {
        // The run and what this cause dispatched before are read together: on the way to a
        // child's dispatch, every round trip in a row is latency.
        let (run, earlier) = futures::try_join!(
            self.runs.run(run_id),
            self.runs.dispatched_by(run_id, cause)
        )?;
        if !run.is_some_and(|run| run.state == RunState::Running) {
            return Ok(());
        }
        for job in earlier.iter().filter(|job| job.dispatched) {
            self.send(job).await?;
        }
        loop {
            let free = self.runs.free_slots(run_id).await?;
            if free.is_empty() {
                return Ok(());
            }
            let limit = u32::try_from(free.len()).unwrap_or(u32::MAX);
            let waiting = self.runs.waiting_jobs(run_id, limit).await?;
            if waiting.is_empty() {
                return Ok(());
            }
            // Take the free slots from a rotating start, so that planners racing on one run
            // mostly try different slots. The claims touch different documents: they are
            // made together, and each job is sent as soon as its claim commits.
            let start = (Timestamp::now().subsec_nanosecond().unsigned_abs() as usize) % free.len();
            let claims = waiting.iter().enumerate().map(|(i, job)| {
                let slot = free[(start + i) % free.len()].index;
                async move {
                    let claimed = self
                        .runs
                        .claim(run_id, slot, &job.table, cause, Timestamp::now())
                        .await?;
                    if let Some(job) = &claimed {
                        self.send(job).await?;
                    }
                    Ok::<_, PlannerError>(claimed.is_some())
                }
            });
            let claimed = futures::future::try_join_all(claims).await?;
            // Losing every claim means another planner is filling this run's slots: it looks
            // again after its claims (as this one does after winning any), so stopping here
            // leaves nothing behind.
            if !claimed.contains(&true) {
                return Ok(());
            }
        }
    }

    /// Hands a dispatched job to the service that runs its kind: a query to the executor, an
    /// import to the importer.
    async fn send(&self, job: &Job) -> Result<(), PlannerError> {
        match job.definition.kind {
            TableKind::Query => self.bus.to_executor(&ExecutorTask::run_query(job)).await?,
            TableKind::Import | TableKind::Load => {
                self.bus.to_importer(&ImporterTask::import(job)).await?
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // A job finished

    async fn finished(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
        cause: &str,
    ) -> Result<(), PlannerError> {
        let Some(job) = self.runs.job(run_id, table).await? else {
            return Err(PlannerError::Stale(format!(
                "run {run_id} has no job {table}"
            )));
        };
        if job.attempt != attempt {
            return Err(PlannerError::Stale(format!(
                "{table} is at attempt {}, not {attempt}",
                job.attempt
            )));
        }
        if !job.state.is_terminal() {
            return Err(PlannerError::Stale(format!(
                "{table} attempt {attempt} is {}, not finished",
                job.state
            )));
        }
        // The slot's release and the children's settling touch different documents: their
        // transactions are in flight at once, and the dispatch after them finds both.
        let release = async {
            if let Some(index) = job.slot {
                self.runs.release(run_id, index, table, attempt).await?;
            }
            Ok::<_, PlannerError>(())
        };
        let settle = async {
            if job.state != JobState::Succeeded {
                return self.skip_descendants(run_id, &job).await;
            }
            let now = Timestamp::now();
            let settling: Vec<_> = job
                .children
                .iter()
                .map(|child| self.runs.settle(run_id, child, now))
                .collect();
            let settled: Vec<Option<Settled>> = futures::stream::iter(settling)
                .buffered(SETTLING_AT_ONCE)
                .try_collect()
                .await?;
            for settled in settled {
                if let Some(Settled::Skipped(skipped)) = settled {
                    self.skip_descendants(run_id, &skipped).await?;
                }
            }
            Ok(())
        };
        futures::try_join!(release, settle)?;
        self.dispatch(run_id, cause).await?;
        self.close_if_done(run_id).await
    }

    /// Skips every pending descendant of a job that did not succeed, naming the failed
    /// ancestor. Walks the whole subtree even past jobs skipped already, so that a walk
    /// interrupted by a crash is completed by the redelivery.
    async fn skip_descendants(&self, run_id: &str, root: &Job) -> Result<(), PlannerError> {
        let because = root
            .skipped_because
            .clone()
            .unwrap_or_else(|| root.table.clone());
        let mut queue: VecDeque<TableId> = root.children.iter().cloned().collect();
        let mut seen: BTreeSet<TableId> = queue.iter().cloned().collect();
        while let Some(table) = queue.pop_front() {
            let job = self
                .runs
                .skip(run_id, &table, &because, Timestamp::now())
                .await?;
            for child in job.map(|j| j.children).unwrap_or_default() {
                if seen.insert(child.clone()) {
                    queue.push_back(child);
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Resuming and cancelling

    async fn resume(&self, run_id: &str, resume: u32, cause: &str) -> Result<(), PlannerError> {
        match self.runs.run(run_id).await? {
            None => return Err(PlannerError::Stale(format!("no run {run_id}"))),
            Some(run) if run.resumes < resume && run.state == RunState::Failed => {
                // The API's transaction is not visible yet: try again.
                return Err(PlannerError::Busy(format!(
                    "run {run_id} is not resumed yet"
                )));
            }
            Some(run) if run.resumes < resume => {
                // Only a failed run is resumed: this resume never happened and never will.
                return Err(PlannerError::Stale(format!(
                    "run {run_id} is {} and was resumed {} time(s): resume {resume} cannot apply",
                    run.state, run.resumes
                )));
            }
            Some(_) => {}
        }
        let now = Timestamp::now();
        let jobs = self.runs.jobs(run_id).await?;
        for job in &jobs {
            self.runs
                .resume_job(run_id, &job.table, resume, now)
                .await?;
        }
        for job in &jobs {
            if job.state != JobState::Succeeded {
                self.runs.settle(run_id, &job.table, now).await?;
            }
        }
        self.dispatch(run_id, cause).await?;
        self.close_if_done(run_id).await
    }

    async fn cancel(&self, run_id: &str) -> Result<(), PlannerError> {
        let now = Timestamp::now();
        for job in self.runs.jobs(run_id).await? {
            match job.state {
                JobState::Pending | JobState::Queued => {
                    self.runs.cancel_job(run_id, &job.table, now).await?;
                }
                JobState::Running => {
                    self.bus.to_executor(&ExecutorTask::cancel(&job)).await?;
                }
                _ => {}
            }
        }
        self.close_if_done(run_id).await
    }

    // -----------------------------------------------------------------------------------------
    // Closing

    /// Closes the run when none of its jobs is open: `succeeded` when all succeeded, else
    /// `failed` with a summary of what failed and what was skipped. An ended run frees its
    /// frequency, and a backfill waiting for that goes on.
    async fn close_if_done(&self, run_id: &str) -> Result<(), PlannerError> {
        if self.runs.has_open_jobs(run_id).await? {
            return Ok(());
        }
        let Some(mut run) = self.runs.run(run_id).await? else {
            return Ok(());
        };
        if run.state == RunState::Running
            || (run.state == RunState::Cancelled && run.summary.is_none())
        {
            let jobs = self.runs.jobs(run_id).await?;
            if let Some(summary) = summarize(&jobs)
                && let Some(closed) = self.runs.close(run_id, &summary, Timestamp::now()).await?
            {
                run = closed;
            }
        }
        if run.state.is_terminal()
            && let Some(frequency) = &run.frequency
        {
            self.runs.release_schedule(frequency, run_id).await?;
            for next in self
                .runs
                .advance_backfill(frequency, self.default_concurrency, Timestamp::now())
                .await?
            {
                self.announce(&next).await?;
            }
        }
        // Last, so that a slow webhook holds up neither the frequency nor a backfill.
        if run.state == RunState::Failed
            && let Some(alerts) = &self.alerts
        {
            alerts.run_failed(&run).await;
        }
        Ok(())
    }

    async fn announce(&self, run: &Run) -> Result<(), PlannerError> {
        self.bus
            .to_planner(&PlannerEvent::RunCreated {
                run_id: run.id.clone(),
            })
            .await?;
        Ok(())
    }
}
