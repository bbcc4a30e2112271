//! The tick: Cloud Scheduler POSTs `/tick` every minute. For each active frequency it finds the
//! latest scheduled instant and makes sure that instant's run exists: the run's id comes from
//! the frequency and the instant, so a duplicate, concurrent or late tick creates nothing twice.
//! After a gap (ticks missed for hours) it creates the run of the latest instant only, and
//! records on it how many instants were missed. While the frequency's previous run is open,
//! the new one is recorded as skipped, with the reason.
//! A run that exists but was never planned (its creator died before telling the planner) is
//! announced again, once it is older than a grace period: a run created a moment ago is being
//! announced by its creator, and a second announcement would only make two planners race.
//! Then it sweeps: runs and jobs whose watch has passed (a message lost for good) are sent
//! again the message that moves them on (`baton_core::sweep`), within a bounded number of
//! reads.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Serialize;

use baton_core::catalog::{Frequency, TableId};
use baton_core::config::{ConfigError, Env};
use baton_core::ids::scheduled_run_id;
use baton_core::loads::{FileState, STALE_BATCH_SECONDS, Waiting};
use baton_core::messages::{ImporterTask, PlannerEvent};
use baton_core::ports::{Publish, RunPort};
use baton_core::run::{Run, Trigger};
use baton_core::state::RunState;
use baton_core::sweep::{self, Nudge};
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::store::{Admitted, Store};
use baton_service::config::Listen;
use baton_service::http::{ApiError, healthz};
use baton_service::oidc::Callers;
use baton_service::serial::Serial;
use baton_service::service::ServiceConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    /// A run's concurrency cap when its frequency sets none (`BATON_DEFAULT_CONCURRENCY`).
    pub default_concurrency: u32,
    /// How old an unplanned run must be before a tick announces it again
    /// (`BATON_REANNOUNCE_SECONDS`).
    pub reannounce_after: jiff::SignedDuration,
    /// Whether `/tick?at=…` may tick as if it were another time (`BATON_TICK_ALLOW_AT`): for
    /// tests and operators; Cloud Scheduler never sends it.
    pub allow_at: bool,
    /// Who may call: Cloud Scheduler's identity.
    pub callers: Callers,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env(env)?,
            gcp: Gcp::from_env(env)?,
            default_concurrency: env.parse_or(
                "BATON_DEFAULT_CONCURRENCY",
                baton_core::run::DEFAULT_CONCURRENCY,
            )?,
            reannounce_after: jiff::SignedDuration::from_secs(
                env.parse_or("BATON_REANNOUNCE_SECONDS", 30)?,
            ),
            allow_at: env.parse_or("BATON_TICK_ALLOW_AT", false)?,
            callers: Callers::from_env(env)?,
        })
    }

    fn listen(&self) -> &Listen {
        &self.listen
    }
}

#[derive(Debug)]
pub struct App {
    store: Store,
    topics: Topics,
    config: Config,
    /// Ticks that reach this process at once take turns per frequency: the first admits the
    /// run, the others then find it with one read instead of contending for the schedule's
    /// lock in transactions that abort one another.
    serial: Serial,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            store: Store::connect(&config.gcp).await?,
            topics: Topics::new(&config.gcp)?,
            config,
            serial: Serial::default(),
        })
    }
}

/// The service as it runs: its clients connected, its routes behind the callers' check.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    let app = Arc::new(App::connect(config.clone()).await?);
    Ok(baton_service::oidc::guard(router(app), &config.callers))
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/tick", post(tick))
        .route("/healthz", get(healthz))
        .with_state(app)
}

/// What a tick did, frequency by frequency.
#[derive(Debug, Serialize)]
pub struct TickReport {
    pub at: Timestamp,
    pub runs: Vec<TickOutcome>,
    /// Load tables whose files had waited long enough, or whose loads were sent again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loads: Vec<SweepOutcome>,
    /// Runs and jobs that had stopped moving, and what was sent again to move them on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swept: Vec<Swept>,
}

/// What the tick's sweep sent again for a run, or for one of its jobs.
#[derive(Debug, Serialize)]
pub struct Swept {
    pub run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<TableId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// `run_created to the planner`, `run_query to the executor`, …
    pub sent: String,
}

/// What the tick's sweep did for one load table.
#[derive(Debug, Serialize)]
pub struct SweepOutcome {
    pub table: TableId,
    /// The oldest waiting file had waited its policy's age: the importer was told.
    pub considered: bool,
    /// Batches loading for longer than a load may: their loads were sent again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resent: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TickOutcome {
    pub frequency: String,
    pub instant: Option<Timestamp>,
    pub run_id: Option<String>,
    /// `created`, `skipped` (another run of the frequency is open), `exists`, `late` (the
    /// frequency handled a later instant already: nothing is created), `inactive`, or `invalid`
    /// (a schedule that cannot be read).
    pub outcome: &'static str,
    /// Whether the planner was told about the run by this tick.
    pub announced: bool,
    /// Instants missed before this one (the tick was not called for a while).
    pub missed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct TickQuery {
    at: Option<Timestamp>,
}

async fn tick(
    State(app): State<Arc<App>>,
    query: Result<Query<TickQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TickReport>, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::bad_request(format!("`at` is not a time: {}", e.body_text())))?;
    let now = match query.at {
        None => Timestamp::now(),
        Some(at) if app.config.allow_at => at,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`at` is refused: set BATON_TICK_ALLOW_AT=true to tick as if at another time",
            ));
        }
    };
    tick_at(&app, now)
        .await
        .map(Json)
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

/// One tick at `now`.
pub async fn tick_at(app: &App, now: Timestamp) -> Result<TickReport, anyhow::Error> {
    let mut frequencies = app.store.frequencies().await?;
    frequencies.sort_by(|a, b| a.name.cmp(&b.name));
    let mut runs = Vec::new();
    for frequency in &frequencies {
        runs.push(tick_frequency(app, frequency, now).await?);
    }
    let loads = sweep_loads(app, now).await?;
    let swept = sweep_runs(app, now).await?;
    tracing::info!(
        frequencies = frequencies.len(),
        loads = loads.len(),
        swept = swept.len(),
        "tick"
    );
    Ok(TickReport {
        at: now,
        runs,
        loads,
        swept,
    })
}

/// Sends again what moves on the runs and jobs whose watch has passed (`baton_core::sweep`):
/// a lost message, a service that died with it. Reads at most `RUNS_PER_SWEEP` runs and
/// `JOBS_PER_SWEEP` jobs, in two queries, however many runs are open.
async fn sweep_runs(app: &App, now: Timestamp) -> Result<Vec<Swept>, anyhow::Error> {
    let mut swept = Vec::new();
    for run in app.store.overdue_runs(now, sweep::RUNS_PER_SWEEP).await? {
        let Some(event) = sweep::run_nudge(&run) else {
            // It ended some other way: nothing to send.
            app.store.unwatch_run(&run.id).await?;
            continue;
        };
        // Recorded first: the planner's handling then clears the watch this sets.
        let nudge = Nudge::Planner(event);
        let sent = nudge.describe();
        app.store
            .swept(&run.id, None, &format!("sent {sent} again"), now)
            .await?;
        send(app, &nudge).await?;
        tracing::warn!(run_id = %run.id, %sent, watched_since = ?run.watch_at, "a run had stopped moving: sent again");
        swept.push(Swept {
            run_id: run.id,
            table: None,
            attempt: None,
            sent,
        });
    }
    for job in app.store.overdue_jobs(now, sweep::JOBS_PER_SWEEP).await? {
        let Some(nudge) = sweep::job_nudge(&job) else {
            tracing::warn!(run_id = %job.run_id, table = %job.table, state = %job.state, "a watched job has nothing to send");
            continue;
        };
        let sent = nudge.describe();
        let what = format!("sent {}#{} {sent} again", job.table, job.attempt);
        if !app
            .store
            .swept(&job.run_id, Some((&job.table, job.attempt)), &what, now)
            .await?
        {
            // It moved on since it was read.
            continue;
        }
        send(app, &nudge).await?;
        tracing::warn!(
            run_id = %job.run_id, table = %job.table, attempt = job.attempt, state = %job.state,
            %sent, "a job had stopped moving: sent again"
        );
        swept.push(Swept {
            run_id: job.run_id,
            table: Some(job.table),
            attempt: Some(job.attempt),
            sent,
        });
    }
    Ok(swept)
}

async fn send(app: &App, nudge: &Nudge) -> Result<(), baton_core::ports::BusError> {
    match nudge {
        Nudge::Planner(event) => app.topics.to_planner(event).await,
        Nudge::Executor(task) => app.topics.to_executor(task).await,
        Nudge::Importer(task) => app.topics.to_importer(task).await,
    }
}

/// Tells the importer of load tables whose oldest waiting file has waited its policy's age,
/// and sends again the loads of batches that have been loading too long (a lost message, a
/// dead importer). Two reads a load table; nothing is sent when nothing is due.
async fn sweep_loads(app: &App, now: Timestamp) -> Result<Vec<SweepOutcome>, anyhow::Error> {
    let mut outcomes = Vec::new();
    for doc in app.store.load_tables().await? {
        let Some(spec) = &doc.definition.load else {
            continue;
        };
        let oldest = app
            .store
            .files_in_state(&doc.id, FileState::Waiting, 1)
            .await?;
        let considered = spec
            .batch
            .due_at(&Waiting::of(&oldest))
            .is_some_and(|due| due <= now);
        if considered {
            app.topics
                .to_importer(&ImporterTask::Consider {
                    table: doc.id.clone(),
                    force: false,
                    at: Some(now),
                })
                .await?;
        }
        let stale = jiff::SignedDuration::from_secs(STALE_BATCH_SECONDS);
        let mut resent = Vec::new();
        for batch in app.store.open_batches(&doc.id).await? {
            if now.duration_since(batch.formed) < stale {
                continue;
            }
            tracing::warn!(table = %doc.id, batch = %batch.id, formed = %batch.formed, "a load is late: sent again");
            app.topics
                .to_importer(&ImporterTask::Load {
                    table: doc.id.clone(),
                    batch: batch.id.clone(),
                })
                .await?;
            resent.push(batch.id);
        }
        if considered || !resent.is_empty() {
            outcomes.push(SweepOutcome {
                table: doc.id,
                considered,
                resent,
            });
        }
    }
    Ok(outcomes)
}

async fn tick_frequency(
    app: &App,
    frequency: &Frequency,
    now: Timestamp,
) -> Result<TickOutcome, anyhow::Error> {
    let mut outcome = TickOutcome {
        frequency: frequency.name.clone(),
        instant: None,
        run_id: None,
        outcome: "inactive",
        announced: false,
        missed: 0,
        reason: None,
    };
    let schedule = match frequency.schedule() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(frequency = %frequency.name, error = %e, "unreadable schedule");
            outcome.outcome = "invalid";
            outcome.reason = Some(e.0);
            return Ok(outcome);
        }
    };
    let Some(instant) = schedule.latest(now) else {
        outcome.outcome = "invalid";
        outcome.reason = Some("the schedule has no instant before now".into());
        return Ok(outcome);
    };
    let run_id = scheduled_run_id(&frequency.name, instant);
    outcome.instant = Some(instant);
    outcome.run_id = Some(run_id.clone());
    if !frequency.active {
        return Ok(outcome);
    }
    let concurrency = frequency
        .concurrency
        .unwrap_or(app.config.default_concurrency);
    let run = Run::new(
        run_id.clone(),
        Some(&frequency.name),
        Trigger::Schedule,
        instant,
        schedule.previous(instant),
        concurrency,
        now,
    );
    let _turn = app.serial.lock(&frequency.name).await;
    let announce = match app.store.admit(&run, &schedule, false, now).await? {
        Admitted::Created(run) => {
            tracing::info!(run_id = %run_id, frequency = %frequency.name, missed = run.missed_instants, "run created");
            outcome.outcome = "created";
            outcome.missed = run.missed_instants;
            true
        }
        Admitted::Skipped(run) => {
            tracing::warn!(run_id = %run_id, reason = ?run.error, "run skipped");
            outcome.outcome = "skipped";
            outcome.missed = run.missed_instants;
            outcome.reason = run.error;
            false
        }
        Admitted::Exists(existing) => {
            outcome.outcome = "exists";
            existing.state == RunState::Created
                && existing.created_at + app.config.reannounce_after <= now
        }
        Admitted::Late(reason) => {
            tracing::warn!(run_id = %run_id, %reason, "late tick: no run");
            outcome.outcome = "late";
            outcome.reason = Some(reason);
            false
        }
        Admitted::Busy(reason) => anyhow::bail!("refused unexpectedly: {reason}"),
    };
    if announce {
        app.topics
            .to_planner(&PlannerEvent::RunCreated { run_id })
            .await?;
        outcome.announced = true;
    }
    Ok(outcome)
}
