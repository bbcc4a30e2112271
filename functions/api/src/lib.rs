//! The API: the catalog (apply, read), runs and their jobs. Authentication comes later; until
//! then deploy it private (Cloud Run IAM), as Terraform does.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;

use baton_shared::api::{ApplyRequest, ApplyResponse, CatalogResponse, RunResponse, RunsResponse};
use baton_shared::catalog::Problem;
use baton_shared::catalog::apply::plan_apply;
use baton_shared::config::{ConfigError, Env, Gcp, Listen};
use baton_shared::http::{ApiError, healthz};
use baton_shared::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: Listen::from_env(env)?,
            gcp: Gcp::from_env(env)?,
        })
    }
}

#[derive(Debug)]
pub struct App {
    store: Store,
    config: Config,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            store: Store::connect(&config.gcp).await?,
            config,
        })
    }
}

/// Catalogs of thousands of tables are tens of megabytes of SQL.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/catalog", get(get_catalog))
        .route("/v1/catalog/apply", post(apply_catalog))
        .route("/v1/runs", get(list_runs))
        .route("/v1/runs/{run_id}", get(get_run))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(m) => ApiError::not_found(m),
        e if baton_shared::http::Retryable::is_retryable(&e) => {
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
    let run = app
        .store
        .run(&run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no run {run_id}")))?;
    let mut jobs = app.store.jobs(&run_id).await.map_err(store_error)?;
    jobs.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(Json(RunResponse { run, jobs }))
}
