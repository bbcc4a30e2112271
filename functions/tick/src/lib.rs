//! The tick: Cloud Scheduler POSTs `/tick` every minute. For each active frequency it finds the
//! latest scheduled instant and makes sure that instant's run exists: the run's id comes from
//! the frequency and the instant, so a duplicate, concurrent or late tick creates nothing twice.
//! A run that exists but was never planned (its creator died before telling the planner) is
//! announced again, once it is older than a grace period: a run created a moment ago is being
//! announced by its creator, and a second announcement would only make two planners race.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Serialize;

use baton_shared::bus::Bus;
use baton_shared::catalog::Frequency;
use baton_shared::config::{ConfigError, Env, Gcp, Listen};
use baton_shared::http::{ApiError, healthz};
use baton_shared::ids::scheduled_run_id;
use baton_shared::messages::PlannerEvent;
use baton_shared::run::Run;
use baton_shared::schedule::latest_instant;
use baton_shared::state::RunState;
use baton_shared::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    /// A run's concurrency cap when its frequency sets none (`BATON_DEFAULT_CONCURRENCY`).
    pub default_concurrency: u32,
    /// How old an unplanned run must be before a tick announces it again
    /// (`BATON_REANNOUNCE_SECONDS`).
    pub reannounce_after: jiff::SignedDuration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env(env)?,
            gcp: Gcp::from_env(env)?,
            default_concurrency: env.parse_or("BATON_DEFAULT_CONCURRENCY", 10)?,
            reannounce_after: jiff::SignedDuration::from_secs(
                env.parse_or("BATON_REANNOUNCE_SECONDS", 30)?,
            ),
        })
    }
}

#[derive(Debug)]
pub struct App {
    store: Store,
    bus: Bus,
    config: Config,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            store: Store::connect(&config.gcp).await?,
            bus: Bus::new(&config.gcp)?,
            config,
        })
    }
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
}

#[derive(Debug, Serialize)]
pub struct TickOutcome {
    pub frequency: String,
    pub instant: Timestamp,
    pub run_id: String,
    /// `created`, `exists` or `inactive`.
    pub outcome: &'static str,
    /// Whether the planner was told about the run by this tick.
    pub announced: bool,
}

async fn tick(State(app): State<Arc<App>>) -> Result<Json<TickReport>, ApiError> {
    tick_at(&app, Timestamp::now())
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
    tracing::info!(frequencies = frequencies.len(), "tick");
    Ok(TickReport { at: now, runs })
}

async fn tick_frequency(
    app: &App,
    frequency: &Frequency,
    now: Timestamp,
) -> Result<TickOutcome, anyhow::Error> {
    let instant = latest_instant(&frequency.schedule(), now);
    let run_id = scheduled_run_id(&frequency.name, instant);
    let mut outcome = TickOutcome {
        frequency: frequency.name.clone(),
        instant,
        run_id: run_id.clone(),
        outcome: "inactive",
        announced: false,
    };
    if !frequency.active {
        return Ok(outcome);
    }
    let concurrency = frequency
        .concurrency
        .unwrap_or(app.config.default_concurrency);
    let run = Run::scheduled(run_id.clone(), &frequency.name, instant, concurrency, now);
    let announce = match app.store.create_run(&run).await {
        Ok(()) => {
            tracing::info!(run_id = %run_id, frequency = %frequency.name, "run created");
            outcome.outcome = "created";
            true
        }
        Err(StoreError::AlreadyExists(_)) => {
            outcome.outcome = "exists";
            match app.store.run(&run_id).await? {
                Some(existing) => {
                    existing.state == RunState::Created
                        && existing.created_at + app.config.reannounce_after <= now
                }
                None => anyhow::bail!("run {run_id} exists and cannot be read"),
            }
        }
        Err(e) => return Err(e.into()),
    };
    if announce {
        app.bus
            .publish(
                &app.config.gcp.topics.planner,
                &PlannerEvent::RunCreated { run_id },
            )
            .await?;
        outcome.announced = true;
    }
    Ok(outcome)
}
