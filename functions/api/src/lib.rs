//! The API: the catalog (apply, read); runs (start a frequency or chosen tables now, resume,
//! cancel, read with their jobs); backfills; costs by day; dry runs of SQL; connections (their
//! secrets go in sealed and never come out). Authentication comes later; until then deploy it
//! private (Cloud Run IAM), as Terraform does.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;

use baton_core::catalog::apply::plan_apply;
use baton_core::catalog::{Frequency, Problem, TableDoc, TableId, WriteMode};
use baton_core::config::{ConfigError, Env};
use baton_core::connections::{self, Connection, ConnectionView};
use baton_core::costs::Dimension;
use baton_core::ids::{backfill_id, manual_run_id};
use baton_core::messages::PlannerEvent;
use baton_core::ports::{Publish, RunPort, StoreError};
use baton_core::run::{Backfill, BackfillState, Instants, Run, Trigger};
use baton_core::schedule::Schedule;
use baton_core::secrets::Sealer;
use baton_core::state::RunState;
use baton_core::warehouse::WarehouseError;
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::store::Admitted;
use baton_google::store::Store;
use baton_google::warehouse::Warehouse;
use baton_service::api::{
    ApplyRequest, ApplyResponse, BackfillRequest, CatalogResponse, ConnectionsResponse,
    CostsResponse, DryRunRequest, DryRunResponse, PutConnectionRequest, RunChange, RunResponse,
    RunsResponse, StartRunRequest,
};
use baton_service::config::Listen;
use baton_service::http::{ApiError, healthz};
use baton_service::service::ServiceConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    /// A run's concurrency cap when its frequency sets none (`BATON_DEFAULT_CONCURRENCY`).
    pub default_concurrency: u32,
    /// The on-demand price of a TiB, for dry runs' estimates (`BATON_PRICE_PER_TIB`).
    pub price_per_tib: f64,
    /// Seals connections' secrets (`BATON_ENCRYPTION_KEY`); without it connections cannot be
    /// stored.
    pub sealer: Option<Sealer>,
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
            price_per_tib: env.parse_or("BATON_PRICE_PER_TIB", 6.25)?,
            sealer: Sealer::from_env(env)?,
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
    warehouse: Warehouse,
    config: Config,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            store: Store::connect(&config.gcp).await?,
            topics: Topics::new(&config.gcp)?,
            warehouse: Warehouse::new(&config.gcp).await?,
            config,
        })
    }

    async fn announce(&self, event: PlannerEvent) -> Result<(), ApiError> {
        self.topics.to_planner(&event).await.map_err(|e| {
            ApiError::unavailable(format!("the planner could not be told: {e}; try again"))
        })
    }
}

/// The most instants one backfill may cover.
const MAX_BACKFILL_INSTANTS: usize = 10_000;

/// Catalogs of thousands of tables are tens of megabytes of SQL.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The service as it runs: its clients connected, its routes.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    Ok(router(Arc::new(App::connect(config).await?)))
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/catalog", get(get_catalog))
        .route("/v1/catalog/apply", post(apply_catalog))
        .route("/v1/runs", get(list_runs).post(start_run))
        .route("/v1/runs/{run_id}", get(get_run))
        .route("/v1/runs/{run_id}/resume", post(resume_run))
        .route("/v1/runs/{run_id}/cancel", post(cancel_run))
        .route("/v1/backfills", post(start_backfill))
        .route("/v1/costs", get(get_costs))
        .route("/v1/dry-run", post(dry_run))
        .route("/v1/connections", get(list_connections))
        .route(
            "/v1/connections/{name}",
            axum::routing::put(put_connection).delete(delete_connection),
        )
        .route("/v1/backfills/{backfill_id}", get(get_backfill))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// A stored frequency and its schedule: 404 when there is none, 400 when it cannot run.
async fn frequency_and_schedule(app: &App, name: &str) -> Result<(Frequency, Schedule), ApiError> {
    let frequency = app
        .store
        .frequency(name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no frequency {name}")))?;
    let schedule = frequency
        .schedule()
        .map_err(|e| ApiError::bad_request(e.0))?;
    Ok((frequency, schedule))
}

/// A stored run, or 404.
async fn stored_run(app: &App, run_id: &str) -> Result<Run, ApiError> {
    app.store
        .run(run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(m) => ApiError::not_found(m),
        e if baton_core::errors::Retryable::is_retryable(&e) => {
            ApiError::unavailable(e.to_string())
        }
        e => ApiError::internal(e.to_string()),
    }
}

async fn get_catalog(State(app): State<Arc<App>>) -> Result<Json<CatalogResponse>, ApiError> {
    let mut frequencies = app.store.frequencies().await.map_err(store_error)?;
    frequencies.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tables = app.store.tables().await.map_err(store_error)?;
    tables.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(CatalogResponse {
        frequencies,
        tables,
    }))
}

async fn apply_catalog(
    State(app): State<Arc<App>>,
    Json(request): Json<ApplyRequest>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let frequencies = app.store.frequencies().await.map_err(store_error)?;
    let tables = app.store.tables().await.map_err(store_error)?;
    // Reading thousands of tables' SQL is CPU work: off the async workers.
    let project = app.config.gcp.bigquery_project.clone();
    let catalog = request.catalog;
    let prune = request.prune;
    let plan = tokio::task::spawn_blocking(move || {
        plan_apply(
            &frequencies,
            &tables,
            &catalog,
            prune,
            &project,
            Timestamp::now(),
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("planning the change failed: {e}")))?
    .map_err(problems_error)?;
    if !request.dry_run {
        app.store.apply_catalog(&plan).await.map_err(store_error)?;
        tracing::info!(
            written = plan.write_tables.len() + plan.write_frequencies.len(),
            deleted = plan.delete_tables.len() + plan.delete_frequencies.len(),
            "catalog applied"
        );
    }
    Ok(Json(ApplyResponse {
        dry_run: request.dry_run,
        changes: plan.changes,
        dependencies: plan.dependencies,
        warnings: plan.warnings,
    }))
}

fn problems_error(problems: Vec<Problem>) -> ApiError {
    let message = match problems.as_slice() {
        [one] => one.to_string(),
        many => format!(
            "{} problems, the first: {}",
            many.len(),
            many.first().map(ToString::to_string).unwrap_or_default()
        ),
    };
    ApiError::bad_request(message).with_details(serde_json::json!({ "problems": problems }))
}

/// Checks SQL and estimates its bytes with a BigQuery dry run: a stored table's, or SQL not
/// applied yet. Invalid SQL answers 400 with BigQuery's message (or the line and column where
/// Baton could not read it).
async fn dry_run(
    State(app): State<Arc<App>>,
    Json(request): Json<DryRunRequest>,
) -> Result<Json<DryRunResponse>, ApiError> {
    let stored = match &request.table {
        Some(id) => Some(
            app.store
                .get::<TableDoc>(None, baton_google::store::TABLES, &id.to_string())
                .await
                .map_err(store_error)?
                .ok_or_else(|| ApiError::not_found(format!("no table {id}")))?,
        ),
        None => None,
    };
    let definition = stored.as_ref().map(|doc| &doc.definition);
    let (sql, parameters) = match (&request.sql, &stored) {
        (Some(sql), _) => {
            let analysis = baton_core::sql::analyze(sql, &Default::default())
                .map_err(|e| ApiError::bad_request(format!("the SQL cannot be read: {e}")))?;
            (sql.clone(), analysis.parameters.into_iter().collect())
        }
        (None, Some(doc)) => (doc.definition.sql.clone(), doc.parameters.clone()),
        (None, None) => return Err(ApiError::bad_request("give `table`, `sql`, or both")),
    };
    let dataset = request
        .dataset
        .clone()
        .or_else(|| definition.map(|d| d.dataset.clone()))
        .ok_or_else(|| ApiError::bad_request("`sql` without `table` needs `dataset`"))?;
    baton_core::catalog::validate_dataset(&dataset).map_err(|e| ApiError::bad_request(e.0))?;
    let mode = request
        .write
        .or(definition.map(|d| d.write_mode))
        .unwrap_or(WriteMode::Truncate);
    let frequency = request
        .frequency
        .clone()
        .or_else(|| definition.and_then(|d| d.frequency.clone()));
    let now = Timestamp::now();
    let instants = match frequency {
        Some(name) => {
            let (_, schedule) = frequency_and_schedule(&app, &name).await?;
            let run_time = schedule.latest(now).unwrap_or(now);
            Instants {
                run_time,
                window_start: schedule.previous(run_time),
            }
        }
        None => Instants {
            run_time: now,
            window_start: None,
        },
    };
    let report = baton_service::dry_run::dry_run(
        &app.warehouse,
        &sql,
        mode,
        &dataset,
        &parameters,
        instants,
        app.config.price_per_tib,
    )
    .await
    .map_err(|e| match e {
        WarehouseError::Permanent(m) | WarehouseError::NotFound(m) | WarehouseError::Invalid(m) => {
            ApiError::bad_request(m)
        }
        e => ApiError::unavailable(e.to_string()),
    })?;
    Ok(Json(DryRunResponse {
        table: request.table,
        report,
    }))
}

/// Every connection, without its secret.
async fn list_connections(
    State(app): State<Arc<App>>,
) -> Result<Json<ConnectionsResponse>, ApiError> {
    let stored: Vec<Connection> = app
        .store
        .list(None, connections::COLLECTION)
        .await
        .map_err(store_error)?;
    let mut connections: Vec<ConnectionView> = stored.iter().map(ConnectionView::from).collect();
    connections.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(ConnectionsResponse { connections }))
}

/// Creates or replaces a connection; the secret is sealed for its document and not returned.
async fn put_connection(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Json(request): Json<PutConnectionRequest>,
) -> Result<Json<ConnectionView>, ApiError> {
    connections::validate_name(&name).map_err(|e| ApiError::bad_request(e.0))?;
    connections::validate_secret(request.kind, &request.secret).map_err(ApiError::bad_request)?;
    let sealer = app.config.sealer.as_ref().ok_or_else(|| {
        ApiError::unavailable("connections cannot be stored: the API has no BATON_ENCRYPTION_KEY")
    })?;
    let connection = Connection {
        schema_version: connections::SCHEMA_VERSION,
        name: name.clone(),
        kind: request.kind,
        description: request.description,
        secret: sealer.seal(&request.secret, &connections::bound_to(&name)),
        updated_at: Timestamp::now(),
    };
    app.store
        .set(None, connections::COLLECTION, &name, &connection)
        .await
        .map_err(store_error)?;
    tracing::info!(connection = %name, kind = ?connection.kind, "connection stored");
    Ok(Json(ConnectionView::from(&connection)))
}

async fn delete_connection(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found: Option<Connection> = app
        .store
        .get(None, connections::COLLECTION, &name)
        .await
        .map_err(store_error)?;
    if found.is_none() {
        return Err(ApiError::not_found(format!("no connection {name}")));
    }
    app.store
        .delete_all(None, connections::COLLECTION, std::slice::from_ref(&name))
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The longest span one costs request covers.
const MAX_COST_DAYS: i32 = 366;

#[derive(Debug, Deserialize)]
struct CostsQuery {
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Costs per day by a dimension; the last 30 days (UTC) unless told.
async fn get_costs(
    State(app): State<Arc<App>>,
    Query(query): Query<CostsQuery>,
) -> Result<Json<CostsResponse>, ApiError> {
    let by_name = query.by.as_deref().unwrap_or("table");
    let by = Dimension::parse(by_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`by` is one of table, user, group, frequency, not `{by_name}`"
        ))
    })?;
    let date = |name: &str, text: &Option<String>| -> Result<Option<jiff::civil::Date>, ApiError> {
        text.as_deref()
            .map(|t| {
                t.parse().map_err(|_| {
                    ApiError::bad_request(format!("`{name}` is a day, `YYYY-MM-DD`, not `{t}`"))
                })
            })
            .transpose()
    };
    let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let to = date("to", &query.to)?.unwrap_or(today);
    let from = match date("from", &query.from)? {
        Some(from) => from,
        None => to.checked_sub(jiff::Span::new().days(29)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::bad_request(format!(
            "`from` {from} is after `to` {to}"
        )));
    }
    let days = (to - from).get_days() + 1;
    if days > MAX_COST_DAYS {
        return Err(ApiError::bad_request(format!(
            "{days} days asked; at most {MAX_COST_DAYS} at once"
        )));
    }
    let rows = app
        .store
        .costs(by, &from.to_string(), &to.to_string())
        .await
        .map_err(store_error)?;
    Ok(Json(CostsResponse { by, from, to, rows }))
}

#[derive(Debug, Deserialize)]
struct RunsQuery {
    limit: Option<u32>,
}

async fn list_runs(
    State(app): State<Arc<App>>,
    Query(query): Query<RunsQuery>,
) -> Result<Json<RunsResponse>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let runs = app.store.recent_runs(limit).await.map_err(store_error)?;
    Ok(Json(RunsResponse { runs }))
}

async fn get_run(
    State(app): State<Arc<App>>,
    Path(run_id): Path<String>,
) -> Result<Json<RunResponse>, ApiError> {
    let run = stored_run(&app, &run_id).await?;
    let mut jobs = RunPort::jobs(&app.store, &run_id)
        .await
        .map_err(store_error)?;
    jobs.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(Json(RunResponse { run, jobs }))
}

/// Starts a run now: of a frequency (refused while one of its runs is open), or of chosen
/// tables (and all downstream of them).
async fn start_run(
    State(app): State<Arc<App>>,
    Json(request): Json<StartRunRequest>,
) -> Result<(StatusCode, Json<RunChange>), ApiError> {
    let now = Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now());
    let admitted = match (&request.frequency, request.tables.is_empty()) {
        (Some(name), true) => {
            let (frequency, schedule) = frequency_and_schedule(&app, name).await?;
            // The window runs from the latest scheduled instant to now.
            let window_start = schedule
                .latest(now)
                .filter(|l| *l < now)
                .or_else(|| schedule.previous(now));
            let id = manual_run_id(
                name,
                request.idempotency_key.as_deref(),
                now,
                rand::random(),
            );
            let mut run = Run::new(
                id,
                Some(name),
                Trigger::Manual,
                now,
                window_start,
                frequency
                    .concurrency
                    .unwrap_or(app.config.default_concurrency),
                now,
            );
            run.requested_by = request.requested_by.clone();
            app.store
                .admit(&run, &schedule, true, now)
                .await
                .map_err(store_error)?
        }
        (None, false) => {
            let ids: Vec<String> = request.tables.iter().map(ToString::to_string).collect();
            let found: Vec<TableDoc> = app
                .store
                .get_many(None, baton_google::store::TABLES, ids)
                .await
                .map_err(store_error)?;
            let missing: Vec<&TableId> = request
                .tables
                .iter()
                .filter(|t| !found.iter().any(|f| &f.id == *t))
                .collect();
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
                return Err(ApiError::not_found(format!(
                    "no table {}",
                    names.join(", ")
                )));
            }
            let what = ids_label(&request.tables);
            let id = manual_run_id(
                &what,
                request.idempotency_key.as_deref(),
                now,
                rand::random(),
            );
            let mut run = Run::new(
                id,
                None,
                Trigger::Manual,
                now,
                None,
                app.config.default_concurrency,
                now,
            );
            run.tables = request.tables.clone();
            run.downstream = request.downstream;
            run.requested_by = request.requested_by.clone();
            app.store
                .create_table_run(&run)
                .await
                .map_err(store_error)?
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either `frequency` or `tables`, not both and not neither",
            ));
        }
    };
    match admitted {
        Admitted::Created(run) => {
            app.announce(PlannerEvent::RunCreated {
                run_id: run.id.clone(),
            })
            .await?;
            Ok((StatusCode::CREATED, Json(RunChange { run, changed: true })))
        }
        Admitted::Exists(run) => {
            if run.state == RunState::Created {
                app.announce(PlannerEvent::RunCreated {
                    run_id: run.id.clone(),
                })
                .await?;
            }
            Ok((
                StatusCode::OK,
                Json(RunChange {
                    run,
                    changed: false,
                }),
            ))
        }
        Admitted::Busy(reason) | Admitted::Late(reason) => {
            Err(ApiError::new(StatusCode::CONFLICT, "conflict", reason))
        }
        Admitted::Skipped(run) => Ok((
            StatusCode::OK,
            Json(RunChange {
                run,
                changed: false,
            }),
        )),
    }
}

fn ids_label(tables: &[TableId]) -> String {
    match tables {
        [one] => one.to_string(),
        [first, ..] => format!("{first}-and-{}-more", tables.len() - 1),
        [] => "tables".into(),
    }
}

/// Resumes a failed run: what did not succeed gets a new attempt. Asking again for a run
/// that is running after a resume tells the planner again (a lost message is not lost).
async fn resume_run(
    State(app): State<Arc<App>>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<RunChange>), ApiError> {
    match app
        .store
        .resume(&run_id, Timestamp::now())
        .await
        .map_err(store_error)?
    {
        Ok(run) => {
            app.announce(PlannerEvent::RunResumed {
                run_id: run.id.clone(),
                resume: run.resumes,
            })
            .await?;
            Ok((StatusCode::ACCEPTED, Json(RunChange { run, changed: true })))
        }
        Err(reason) => {
            let run = stored_run(&app, &run_id).await?;
            if run.state == RunState::Running && run.resumes > 0 {
                app.announce(PlannerEvent::RunResumed {
                    run_id: run.id.clone(),
                    resume: run.resumes,
                })
                .await?;
                return Ok((
                    StatusCode::ACCEPTED,
                    Json(RunChange {
                        run,
                        changed: false,
                    }),
                ));
            }
            Err(ApiError::new(StatusCode::CONFLICT, "conflict", reason))
        }
    }
}

/// Cancels a run: nothing more is dispatched, running BigQuery jobs are stopped. Asking again
/// for a cancelled run tells the planner again.
async fn cancel_run(
    State(app): State<Arc<App>>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<RunChange>), ApiError> {
    let before = stored_run(&app, &run_id).await?;
    let run = app
        .store
        .cancel(&run_id, Timestamp::now())
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))?;
    if run.state != RunState::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "run {run_id} is {}: only a run that has not ended can be cancelled",
                run.state
            ),
        ));
    }
    app.announce(PlannerEvent::RunCancelled {
        run_id: run.id.clone(),
    })
    .await?;
    let changed = before.state != RunState::Cancelled;
    Ok((StatusCode::ACCEPTED, Json(RunChange { run, changed })))
}

/// Starts a backfill: the frequency's instants in `from..=to`, run one after another.
async fn start_backfill(
    State(app): State<Arc<App>>,
    Json(request): Json<BackfillRequest>,
) -> Result<(StatusCode, Json<Backfill>), ApiError> {
    let name = &request.frequency;
    let (_, schedule) = frequency_and_schedule(&app, name).await?;
    let now = Timestamp::now();
    if request.to > now {
        return Err(ApiError::bad_request(
            "a backfill covers past instants: `to` is in the future",
        ));
    }
    let before_from = request.from - jiff::SignedDuration::from_secs(1);
    let instants = schedule.between(before_from, request.to, MAX_BACKFILL_INSTANTS + 1);
    if instants.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{name} has no instant between {} and {}",
            request.from, request.to
        )));
    }
    if instants.len() > MAX_BACKFILL_INSTANTS {
        return Err(ApiError::bad_request(format!(
            "that is more than {MAX_BACKFILL_INSTANTS} instants of {name}: split the backfill"
        )));
    }
    let backfill = Backfill {
        schema_version: 1,
        id: backfill_id(name, now, rand::random()),
        frequency: name.clone(),
        instants,
        runs: Vec::new(),
        state: BackfillState::Running,
        requested_by: request.requested_by.clone(),
        error: None,
        created_at: now,
        finished_at: None,
    };
    if let Err(reason) = app
        .store
        .start_backfill(&backfill)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", reason));
    }
    if let Some(run) = app
        .store
        .advance_backfill(name, app.config.default_concurrency, now)
        .await
        .map_err(store_error)?
    {
        app.announce(PlannerEvent::RunCreated { run_id: run.id })
            .await?;
    }
    let backfill = app
        .store
        .backfill(&backfill.id)
        .await
        .map_err(store_error)?
        .unwrap_or(backfill);
    Ok((StatusCode::CREATED, Json(backfill)))
}

async fn get_backfill(
    State(app): State<Arc<App>>,
    Path(backfill_id): Path<String>,
) -> Result<Json<Backfill>, ApiError> {
    app.store
        .backfill(&backfill_id)
        .await
        .map_err(store_error)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no backfill {backfill_id}")))
}
