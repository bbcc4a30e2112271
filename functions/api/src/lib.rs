//! The API: the catalog (apply, read); runs (start a frequency or chosen tables now, resume,
//! cancel, read with their jobs); backfills; costs by day; dry runs of SQL; connections (their
//! secrets go in sealed and never come out); people (users, groups, API tokens) and the audit
//! trail of every change; dead letters, listed, replayed or dropped; and the operator's
//! read-only page (`page`), HTML for people on call.
//!
//! Every route is in one table (`endpoints`) with the access it asks: the router is built from
//! it, the caller is checked against it (`people::authorize`), and `GET /v1/routes` lists it.
//! Every error is the JSON error shape, whatever produced it.

mod dead_letters;
mod loads;
mod page;
mod people;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;

use baton_core::access::{self, Access, Principal};
use baton_core::catalog::apply::{Action, plan_apply_cached};
use baton_core::catalog::{Frequency, Problem, TableDoc, TableId, WriteMode};
use baton_core::config::{ConfigError, Env};
use baton_core::connections::{self, Connection, ConnectionView};
use baton_core::costs::Dimension;
use baton_core::ids::{backfill_id, manual_run_id};
use baton_core::messages::{ImporterTask, PlannerEvent};
use baton_core::ports::{Publish, RunPort, StoreError};
use baton_core::run::{Backfill, BackfillState, Instants, Run, Trigger};
use baton_core::schedule::Schedule;
use baton_core::secrets::Sealer;
use baton_core::state::RunState;
use baton_core::warehouse::WarehouseError;
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::storage::Storage;
use baton_google::store::Admitted;
use baton_google::store::Store;
use baton_google::warehouse::Warehouse;
use baton_service::api::{
    ApplyRequest, ApplyResponse, BackfillRequest, CatalogResponse, ConnectionsResponse,
    CostsResponse, DryRunRequest, DryRunResponse, PutConnectionRequest, RouteInfo, RunChange,
    RunResponse, RunsResponse, StartRunRequest,
};
use baton_service::config::Listen;
use baton_service::http::{ApiError, Body, healthz, no_method, no_route, path_id};
use baton_service::oidc::SignIn;
use baton_service::openapi::Route;
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
    /// Who may sign in (`BATON_OAUTH_CLIENT_ID`, `BATON_ALLOWED_DOMAINS`), or nobody needs to
    /// (`BATON_AUTH_DISABLED`).
    pub sign_in: SignIn,
    /// Where load tables' files land (`BATON_LANDING_BUCKET`): upload URLs point into it.
    pub landing_bucket: Option<String>,
    /// Signs upload URLs (`BATON_SIGNING_KEY_FILE`; else the service's own identity).
    pub signing_key: Option<secrecy::SecretString>,
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
            sign_in: SignIn::from_env(env)?,
            landing_bucket: env.get("BATON_LANDING_BUCKET"),
            signing_key: baton_google::config::signing_key(env)?,
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
    storage: Storage,
    gate: people::Gate,
    config: Config,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Ok(Self {
            store: Store::connect(&config.gcp).await?,
            topics: Topics::new(&config.gcp)?,
            warehouse: Warehouse::new(&config.gcp).await?,
            storage: Storage::new(
                &config.gcp,
                config
                    .signing_key
                    .as_ref()
                    .map(secrecy::ExposeSecret::expose_secret),
            )?,
            gate: people::Gate::new(&config.sign_in),
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
/// The most runs of one backfill open at once: each holds its own share of BigQuery slots.
const MAX_BACKFILL_PARALLEL: u32 = 10;

/// Catalogs of thousands of tables are tens of megabytes of SQL.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The service as it runs: its clients connected, its routes.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    Ok(router(Arc::new(App::connect(config).await?)))
}

type Handler = MethodRouter<Arc<App>>;

/// Every route of the API with its handler: the one list the router, the access checks,
/// `GET /v1/routes` and the OpenAPI document are made from.
fn endpoints() -> Vec<(Route, Handler)> {
    use Access::{Admin, Change, Open, Read, SignedIn};
    use baton_service::api as wire;
    let r = Route::new;
    vec![
        (
            r(
                "GET",
                "/healthz",
                Open,
                "Whether the service is up (answers `ok`)",
            )
            .answers_text(),
            get(healthz),
        ),
        (
            r(
                "GET",
                "/v1/routes",
                Open,
                "Every route and the access it asks",
            )
            .answers::<Vec<RouteInfo>>(),
            get(list_routes),
        ),
        (
            r("GET", "/v1/openapi.json", Open, "This document").answers::<serde_json::Value>(),
            get(openapi_json),
        ),
        (
            r(
                "GET",
                "/v1/me",
                SignedIn,
                "Who the caller is: email, role, groups",
            )
            .answers::<Principal>(),
            get(people::me),
        ),
        (
            r(
                "GET",
                "/v1/catalog",
                Read,
                "The stored frequencies and tables",
            )
            .answers::<wire::CatalogResponse>(),
            get(get_catalog),
        ),
        (
            r(
                "POST",
                "/v1/catalog/apply",
                Change,
                "Apply a catalog (members: their groups' tables)",
            )
            .body::<wire::ApplyRequest>()
            .answers::<wire::ApplyResponse>(),
            post(apply_catalog),
        ),
        (
            r("GET", "/v1/runs", Read, "The latest runs")
                .query::<RunsQuery>()
                .answers::<wire::RunsResponse>(),
            get(list_runs),
        ),
        (
            r(
                "POST",
                "/v1/runs",
                Change,
                "Start a run of a frequency or of tables",
            )
            .body::<wire::StartRunRequest>()
            .answers_with::<wire::RunChange>(&[201, 200]),
            post(start_run),
        ),
        (
            r("GET", "/v1/runs/{run_id}", Read, "A run and its jobs")
                .answers::<wire::RunResponse>(),
            get(get_run),
        ),
        (
            r(
                "POST",
                "/v1/runs/{run_id}/resume",
                Change,
                "Resume a failed run",
            )
            .answers_with::<wire::RunChange>(&[202]),
            post(resume_run),
        ),
        (
            r("POST", "/v1/runs/{run_id}/cancel", Change, "Cancel a run")
                .answers_with::<wire::RunChange>(&[202]),
            post(cancel_run),
        ),
        (
            r(
                "POST",
                "/v1/backfills",
                Change,
                "Run a frequency over past instants",
            )
            .body::<wire::BackfillRequest>()
            .answers_with::<Backfill>(&[201]),
            post(start_backfill),
        ),
        (
            r("GET", "/v1/backfills/{backfill_id}", Read, "A backfill").answers::<Backfill>(),
            get(get_backfill),
        ),
        (
            r(
                "POST",
                "/v1/backfills/{backfill_id}/cancel",
                Change,
                "Cancel a backfill and its runs in progress",
            )
            .answers_with::<Backfill>(&[202]),
            post(cancel_backfill),
        ),
        (
            r("GET", "/v1/costs", Read, "Costs by day")
                .query::<CostsQuery>()
                .answers::<wire::CostsResponse>(),
            get(get_costs),
        ),
        (
            r(
                "POST",
                "/v1/dry-run",
                Read,
                "Check SQL and estimate its bytes",
            )
            .body::<wire::DryRunRequest>()
            .answers::<wire::DryRunResponse>(),
            post(dry_run),
        ),
        (
            r(
                "GET",
                "/v1/connections",
                Admin,
                "Connections, without secrets",
            )
            .answers::<wire::ConnectionsResponse>(),
            get(list_connections),
        ),
        (
            r(
                "PUT",
                "/v1/connections/{name}",
                Admin,
                "Create or replace a connection",
            )
            .body::<wire::PutConnectionRequest>()
            .answers::<ConnectionView>(),
            put(put_connection),
        ),
        (
            r(
                "DELETE",
                "/v1/connections/{name}",
                Admin,
                "Delete a connection",
            ),
            delete(delete_connection),
        ),
        (
            r("GET", "/v1/users", Admin, "Every user").answers::<wire::UsersResponse>(),
            get(people::list_users),
        ),
        (
            r(
                "PATCH",
                "/v1/users/{email}",
                Admin,
                "Enable, disable, or change a user's role or groups",
            )
            .body::<wire::UpdateUserRequest>()
            .answers::<access::User>(),
            patch(people::update_user),
        ),
        (
            r("GET", "/v1/groups", Read, "Groups and their members")
                .answers::<wire::GroupsResponse>(),
            get(people::list_groups),
        ),
        (
            r(
                "PUT",
                "/v1/groups/{name}",
                Admin,
                "Create or describe a group",
            )
            .body::<wire::PutGroupRequest>()
            .answers::<access::Group>(),
            put(people::put_group),
        ),
        (
            r(
                "DELETE",
                "/v1/groups/{name}",
                Admin,
                "Delete a group without members",
            ),
            delete(people::delete_group),
        ),
        (
            r(
                "GET",
                "/v1/tokens",
                Read,
                "The caller's API tokens (an admin's: all)",
            )
            .answers::<wire::TokensResponse>(),
            get(people::list_tokens),
        ),
        (
            r(
                "POST",
                "/v1/tokens",
                Read,
                "Create an API token, shown once",
            )
            .body::<wire::CreateTokenRequest>()
            .answers_with::<wire::CreatedToken>(&[201]),
            post(people::create_token),
        ),
        (
            r(
                "DELETE",
                "/v1/tokens/{token_id}",
                Read,
                "Revoke an API token",
            )
            .answers::<access::TokenView>(),
            delete(people::revoke_token),
        ),
        (
            r(
                "POST",
                "/v1/loads/{table}/upload-url",
                Change,
                "A signed URL to upload a file of a load table with",
            )
            .body::<wire::UploadUrlRequest>()
            .answers::<wire::UploadUrl>(),
            post(loads::upload_url),
        ),
        (
            r(
                "POST",
                "/v1/loads/{table}/force",
                Change,
                "Load what waits for a load table now, held files too",
            )
            .answers_with::<wire::LoadForced>(&[202]),
            post(loads::force),
        ),
        (
            r(
                "GET",
                "/v1/loads/{table}",
                Read,
                "A load table's waiting files and last loads",
            )
            .answers::<baton_core::loads::LoadStatus>(),
            get(loads::status),
        ),
        (
            r(
                "GET",
                "/v1/dead-letters",
                Read,
                "Messages Pub/Sub gave up delivering, newest first",
            )
            .query::<dead_letters::DeadLettersQuery>()
            .answers::<wire::DeadLettersResponse>(),
            get(dead_letters::list),
        ),
        (
            r(
                "POST",
                "/v1/dead-letters/{id}/replay",
                Admin,
                "Publish a dead letter again to its topic, and drop it",
            )
            .answers::<wire::Replayed>(),
            post(dead_letters::replay),
        ),
        (
            r(
                "DELETE",
                "/v1/dead-letters/{id}",
                Admin,
                "Drop a dead letter without delivering it",
            ),
            delete(dead_letters::drop),
        ),
        (
            r("GET", "/v1/audit", Read, "The audit trail, newest first")
                .query::<people::AuditQuery>()
                .answers::<wire::AuditResponse>(),
            get(people::list_audit),
        ),
        (
            r(
                "POST",
                "/v1/page-links",
                Read,
                "A one-time link that signs a browser in to the operator's page",
            )
            .body::<wire::PageLinkRequest>()
            .answers_with::<wire::PageLinkResponse>(&[201]),
            post(page::create_link),
        ),
        (
            r(
                "GET",
                "/ui/enter",
                Open,
                "Opens a page link once: signs the browser in and sends it on",
            )
            .query::<page::EnterQuery>()
            .redirects(),
            get(page::enter),
        ),
        (
            r("GET", "/ui", Read, "The page: the latest runs")
                .query::<page::RunsQuery>()
                .answers_html(),
            get(page::runs),
        ),
        (
            r(
                "GET",
                "/ui/runs/{run_id}",
                Read,
                "The page: a run, its graph and its jobs",
            )
            .answers_html(),
            get(page::run),
        ),
        (
            r(
                "GET",
                "/ui/tables/{table}",
                Read,
                "The page: a table's jobs in every run, with their cost",
            )
            .answers_html(),
            get(page::table),
        ),
        (
            r("GET", "/ui/costs", Read, "The page: the cost of each day")
                .query::<page::CostsQuery>()
                .answers_html(),
            get(page::costs),
        ),
    ]
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> serde_json::Value {
    baton_service::openapi::document(&routes(), "Baton API", env!("CARGO_PKG_VERSION"))
}

async fn openapi_json() -> Json<serde_json::Value> {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(openapi).clone())
}

/// Every route of the API.
pub fn routes() -> Vec<Route> {
    endpoints().into_iter().map(|(e, _)| e).collect()
}

/// What a route asks of its caller; a route missing from the table asks the most.
fn access_of(method: &Method, path: &str) -> Access {
    static TABLE: std::sync::OnceLock<Vec<Route>> = std::sync::OnceLock::new();
    TABLE
        .get_or_init(routes)
        .iter()
        .find(|e| e.path == path && e.method == method.as_str())
        .map_or(Access::Admin, |e| e.access)
}

async fn list_routes() -> Json<Vec<RouteInfo>> {
    Json(
        routes()
            .into_iter()
            .map(|e| RouteInfo {
                method: e.method.to_string(),
                path: e.path.to_string(),
                access: e.access,
                summary: e.summary.to_string(),
            })
            .collect(),
    )
}

pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    for (endpoint, handler) in endpoints() {
        router = router.route(endpoint.path, handler);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            people::authorize,
        ))
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::map_response(
            baton_service::http::json_errors,
        ))
        .layer(axum::middleware::from_fn(page::page_responses))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// A stored frequency and its schedule: 404 when there is none, 400 when it cannot run.
async fn frequency_and_schedule(app: &App, name: &str) -> Result<(Frequency, Schedule), ApiError> {
    baton_core::catalog::validate_frequency_name(name).map_err(|e| ApiError::bad_request(e.0))?;
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
    Extension(principal): Extension<Principal>,
    Body(request): Body<ApplyRequest>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let frequencies = app.store.frequencies().await.map_err(store_error)?;
    let tables = app.store.tables().await.map_err(store_error)?;
    // Import tables are checked against the connections they name, in their dialect.
    let sources: std::collections::BTreeMap<String, connections::ConnectionKind> =
        if request.catalog.tables.iter().any(|t| t.import.is_some()) {
            app.store
                .list::<Connection>(None, connections::COLLECTION)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|c| (c.name, c.kind))
                .collect()
        } else {
            Default::default()
        };

    // Reading thousands of tables' SQL is CPU work: off the async workers.
    let project = app.config.gcp.bigquery_project.clone();
    let catalog = request.catalog;
    let prune = request.prune;
    let (plan, frequencies, tables) = tokio::task::spawn_blocking(move || {
        let imports = baton_core::catalog::import_problems(&catalog.tables, &sources);
        let plan = plan_apply_cached(
            &frequencies,
            &tables,
            catalog,
            prune,
            &project,
            Timestamp::now(),
            &Default::default(),
            None,
        );
        let plan = match (plan, imports.is_empty()) {
            (plan, true) => plan,
            (Ok(_), false) => Err(imports),
            (Err(mut problems), false) => {
                problems.extend(imports);
                Err(problems)
            }
        };
        (plan, frequencies, tables)
    })
    .await
    .map_err(|e| ApiError::internal(format!("planning the change failed: {e}")))?;
    let plan = plan.map_err(problems_error)?;
    may_apply(&principal, &plan, &tables)?;
    if !request.dry_run {
        app.store.apply_catalog(&plan).await.map_err(store_error)?;
        tracing::info!(
            written = plan.write_tables.len() + plan.write_frequencies.len(),
            deleted = plan.delete_tables.len() + plan.delete_frequencies.len(),
            "catalog applied"
        );
        // Load tables that declare their columns are created by the importer, empty, so
        // that the tables reading them can run before a file arrives.
        for table in plan.write_tables.iter().filter(|t| {
            t.definition
                .load
                .as_ref()
                .is_some_and(|l| !l.columns.is_empty())
        }) {
            let told = app
                .topics
                .to_importer(&ImporterTask::Consider {
                    table: table.id.clone(),
                    force: false,
                    at: None,
                })
                .await;
            if let Err(e) = told {
                tracing::warn!(table = %table.id, error = %e, "the importer could not be told of a load table: it is created at its first load");
            }
        }
        let changed = |action: Action| plan.changes.iter().filter(|c| c.action == action).count();
        if plan.changes.iter().any(|c| c.action != Action::Unchanged) {
            let (before, after) = apply_digests(&plan, &frequencies, &tables);
            app.record(
                &principal,
                "catalog.apply",
                "catalog",
                Some(before),
                Some(after),
                serde_json::json!({
                    "created": changed(Action::Created),
                    "updated": changed(Action::Updated),
                    "deleted": changed(Action::Deleted),
                    "prune": request.prune,
                    "changes": plan.changes.iter().filter(|c| c.action != Action::Unchanged).take(100).collect::<Vec<_>>(),
                }),
            )
            .await;
        }
    }
    Ok(Json(ApplyResponse {
        dry_run: request.dry_run,
        changes: plan.changes,
        dependencies: plan.dependencies,
        warnings: plan.warnings,
    }))
}

/// The audit trail's digests of an apply: of the stored frequencies and tables it writes or
/// deletes, and of what it writes.
fn apply_digests(
    plan: &baton_core::catalog::apply::ApplyPlan,
    frequencies: &[Frequency],
    tables: &[TableDoc],
) -> (String, String) {
    let touched_tables: std::collections::BTreeSet<&TableId> = plan
        .write_tables
        .iter()
        .map(|t| &t.id)
        .chain(&plan.delete_tables)
        .collect();
    let touched_frequencies: std::collections::BTreeSet<&str> = plan
        .write_frequencies
        .iter()
        .map(|f| f.name.as_str())
        .chain(plan.delete_frequencies.iter().map(String::as_str))
        .collect();
    let before = (
        frequencies
            .iter()
            .filter(|f| touched_frequencies.contains(f.name.as_str()))
            .collect::<Vec<_>>(),
        tables
            .iter()
            .filter(|t| touched_tables.contains(&t.id))
            .collect::<Vec<_>>(),
    );
    let after = (&plan.write_frequencies, &plan.write_tables);
    (access::digest(&before), access::digest(&after))
}

/// Refuses a member's apply that creates, changes or deletes tables of other groups (by the
/// group a table had, when it was stored, and the group it gets, when it is written), or
/// changes frequencies, naming each.
fn may_apply(
    principal: &Principal,
    plan: &baton_core::catalog::apply::ApplyPlan,
    stored: &[TableDoc],
) -> Result<(), ApiError> {
    if principal.is_admin() {
        return Ok(());
    }
    let frequencies: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.kind == "frequency" && c.action != Action::Unchanged)
        .map(|c| format!("frequency {}", c.id))
        .collect();
    if !frequencies.is_empty() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "{} may not change frequencies (admins only): {}",
                principal.email,
                frequencies.join(", ")
            ),
        )
        .with_details(serde_json::json!({ "frequencies": frequencies })));
    }
    let group_of = |docs: &'_ [TableDoc]| -> std::collections::BTreeMap<TableId, Option<String>> {
        docs.iter()
            .map(|t| (t.id.clone(), t.definition.group.clone()))
            .collect()
    };
    let (had, gets) = (group_of(stored), group_of(&plan.write_tables));
    let changed: Vec<TableId> = plan
        .changes
        .iter()
        .filter(|c| c.kind == "table" && c.action != Action::Unchanged)
        .filter_map(|c| c.id.parse().ok())
        .collect();
    let groups = changed.iter().flat_map(|id| {
        [had.get(id), gets.get(id)]
            .into_iter()
            .flatten()
            .map(move |group| (id, group.as_deref()))
    });
    people::not_theirs(principal, "change", principal.not_owned(groups))
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
    Body(request): Body<DryRunRequest>,
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
            if sql.len() > baton_core::catalog::MAX_SQL_BYTES {
                return Err(ApiError::bad_request(format!(
                    "the SQL has {} bytes; a table's SQL may have at most {}",
                    sql.len(),
                    baton_core::catalog::MAX_SQL_BYTES
                )));
            }
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
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Body(request): Body<PutConnectionRequest>,
) -> Result<Json<ConnectionView>, ApiError> {
    connections::validate_name(&name).map_err(|e| ApiError::bad_request(e.0))?;
    let before: Option<Connection> = app
        .store
        .get(None, connections::COLLECTION, &name)
        .await
        .map_err(store_error)?;
    let address = connections::validate_secret(request.kind, &request.secret)
        .map_err(ApiError::bad_request)?;
    let sealer = app.config.sealer.as_ref().ok_or_else(|| {
        ApiError::unavailable("connections cannot be stored: the API has no BATON_ENCRYPTION_KEY")
    })?;
    let connection = Connection {
        schema_version: connections::SCHEMA_VERSION,
        name: name.clone(),
        kind: request.kind,
        description: request.description,
        address,
        secret: sealer.seal(&request.secret, &connections::bound_to(&name)),
        updated_at: Timestamp::now(),
    };
    // The digests are of what can be shown: a sealed secret changes with every seal.
    let entry = people::entry(
        &principal,
        "connection.put",
        &name,
        before
            .as_ref()
            .map(|c| access::digest(&ConnectionView::from(c))),
        Some(access::digest(&ConnectionView::from(&connection))),
        serde_json::json!({ "kind": connection.kind, "secret_replaced": true }),
    );
    app.store
        .change_audited(connections::COLLECTION, &name, Some(&connection), &entry)
        .await
        .map_err(store_error)?;
    tracing::info!(connection = %name, kind = ?connection.kind, "connection stored");
    Ok(Json(ConnectionView::from(&connection)))
}

async fn delete_connection(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    connections::validate_name(&name).map_err(|e| ApiError::bad_request(e.0))?;
    let found: Option<Connection> = app
        .store
        .get(None, connections::COLLECTION, &name)
        .await
        .map_err(store_error)?;
    let Some(found) = found else {
        return Err(ApiError::not_found(format!("no connection {name}")));
    };
    let entry = people::entry(
        &principal,
        "connection.delete",
        &name,
        Some(access::digest(&ConnectionView::from(&found))),
        None,
        serde_json::Value::Null,
    );
    app.store
        .change_audited::<Connection>(connections::COLLECTION, &name, None, &entry)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The longest span one costs request covers.
const MAX_COST_DAYS: i32 = 366;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CostsQuery {
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The dimension costs are asked by (`by`, the table unless told).
fn dimension(by: Option<&str>) -> Result<Dimension, ApiError> {
    let name = by.unwrap_or("table");
    Dimension::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`by` is one of table, user, group, frequency, not `{name}`"
        ))
    })
}

/// Costs per day by a dimension; the last 30 days (UTC) unless told.
async fn get_costs(
    State(app): State<Arc<App>>,
    Query(query): Query<CostsQuery>,
) -> Result<Json<CostsResponse>, ApiError> {
    let by = dimension(query.by.as_deref())?;
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
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
    path_id("run", &run_id)?;
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
    Extension(principal): Extension<Principal>,
    Body(request): Body<StartRunRequest>,
) -> Result<(StatusCode, Json<RunChange>), ApiError> {
    let now = Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| Timestamp::now());
    let admitted = match (&request.frequency, request.tables.is_empty()) {
        (Some(name), true) => {
            let (frequency, schedule) = frequency_and_schedule(&app, name).await?;
            may_run_frequency(&app, &principal, name).await?;
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
            run.requested_by = Some(principal.email.clone());
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
            if !principal.is_admin() {
                let running: Vec<TableDoc> = if request.downstream {
                    let all = app.store.tables().await.map_err(store_error)?;
                    let chosen = baton_core::dag::downstream(&all, &request.tables);
                    all.into_iter().filter(|t| chosen.contains(&t.id)).collect()
                } else {
                    found
                };
                let refused = principal.not_owned(
                    running
                        .iter()
                        .map(|t| (&t.id, t.definition.group.as_deref())),
                );
                people::not_theirs(&principal, "run", refused)?;
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
            run.requested_by = Some(principal.email.clone());
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
            app.record(
                &principal,
                "run.start",
                &run.id,
                None,
                Some(access::digest(&run)),
                serde_json::json!({
                    "frequency": run.frequency,
                    "tables": run.tables,
                    "downstream": run.downstream,
                }),
            )
            .await;
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

/// Refuses a member's run of a frequency with tables of other groups, naming them.
async fn may_run_frequency(app: &App, principal: &Principal, name: &str) -> Result<(), ApiError> {
    if principal.is_admin() {
        return Ok(());
    }
    let tables = app
        .store
        .tables_of_frequency(name)
        .await
        .map_err(store_error)?;
    let refused = principal.not_owned(
        tables
            .iter()
            .map(|t| (&t.id, t.definition.group.as_deref())),
    );
    people::not_theirs(principal, "run", refused)
}

/// Refuses a member's resume or cancel of a run they did not start that has jobs of tables of
/// other groups.
async fn may_change_run(app: &App, principal: &Principal, run: &Run) -> Result<(), ApiError> {
    if principal.is_admin() || run.requested_by.as_deref() == Some(principal.email.as_str()) {
        return Ok(());
    }
    let jobs = RunPort::jobs(&app.store, &run.id)
        .await
        .map_err(store_error)?;
    let refused = principal.not_owned(
        jobs.iter()
            .map(|j| (&j.table, j.definition.group.as_deref())),
    );
    people::not_theirs(principal, "change the run of", refused)
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
    Extension(principal): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<RunChange>), ApiError> {
    path_id("run", &run_id)?;
    let before = stored_run(&app, &run_id).await?;
    may_change_run(&app, &principal, &before).await?;
    match app
        .store
        .resume(&run_id, Timestamp::now())
        .await
        .map_err(store_error)?
    {
        Ok(run) => {
            app.record(
                &principal,
                "run.resume",
                &run.id,
                Some(access::digest(&before)),
                Some(access::digest(&run)),
                serde_json::json!({ "resume": run.resumes }),
            )
            .await;
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
    Extension(principal): Extension<Principal>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<RunChange>), ApiError> {
    path_id("run", &run_id)?;
    let before = stored_run(&app, &run_id).await?;
    may_change_run(&app, &principal, &before).await?;
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
    if changed {
        app.record(
            &principal,
            "run.cancel",
            &run.id,
            Some(access::digest(&before)),
            Some(access::digest(&run)),
            serde_json::json!({ "was": before.state }),
        )
        .await;
    }
    Ok((StatusCode::ACCEPTED, Json(RunChange { run, changed })))
}

/// Starts a backfill: the frequency's instants in `from..=to`, run in order, `parallel` of
/// them at once (one after another unless asked).
async fn start_backfill(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Body(request): Body<BackfillRequest>,
) -> Result<(StatusCode, Json<Backfill>), ApiError> {
    let name = &request.frequency;
    let (_, schedule) = frequency_and_schedule(&app, name).await?;
    may_run_frequency(&app, &principal, name).await?;
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
    let parallel = request.parallel.unwrap_or(1);
    if !(1..=MAX_BACKFILL_PARALLEL).contains(&parallel) {
        return Err(ApiError::bad_request(format!(
            "`parallel` is {parallel}: a backfill runs 1 to {MAX_BACKFILL_PARALLEL} of its runs at once"
        )));
    }
    let backfill = Backfill {
        schema_version: 1,
        id: backfill_id(name, now, rand::random()),
        frequency: name.clone(),
        instants,
        runs: Vec::new(),
        parallel,
        state: BackfillState::Running,
        requested_by: Some(principal.email.clone()),
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
    app.record(
        &principal,
        "backfill.start",
        &backfill.id,
        None,
        Some(access::digest(&backfill)),
        serde_json::json!({
            "frequency": backfill.frequency,
            "instants": backfill.instants.len(),
        }),
    )
    .await;
    for run in app
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
    path_id("backfill", &backfill_id)?;
    app.store
        .backfill(&backfill_id)
        .await
        .map_err(store_error)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no backfill {backfill_id}")))
}

/// Cancels a backfill as a whole: no more of its runs start, and its runs that have not
/// ended are cancelled (their running BigQuery jobs stopped). Asking again for a cancelled
/// backfill tells the planner again of its cancelled runs it has not closed.
async fn cancel_backfill(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(backfill_id): Path<String>,
) -> Result<(StatusCode, Json<Backfill>), ApiError> {
    path_id("backfill", &backfill_id)?;
    let before = app
        .store
        .backfill(&backfill_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no backfill {backfill_id}")))?;
    if !principal.is_admin() && before.requested_by.as_deref() != Some(principal.email.as_str()) {
        may_run_frequency(&app, &principal, &before.frequency).await?;
    }
    let (backfill, cancelled) = app
        .store
        .cancel_backfill(&backfill_id, Timestamp::now())
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no backfill {backfill_id}")))?;
    if backfill.state != BackfillState::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "backfill {backfill_id} has {}: only a running backfill can be cancelled",
                serde_json::to_value(backfill.state)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        ));
    }
    // The runs cancelled now, or (asked again) those cancelled and not yet closed.
    for run in cancelled {
        app.announce(PlannerEvent::RunCancelled { run_id: run.id })
            .await?;
    }
    if before.state == BackfillState::Running {
        app.record(
            &principal,
            "backfill.cancel",
            &backfill.id,
            Some(access::digest(&before)),
            Some(access::digest(&backfill)),
            serde_json::json!({
                "frequency": backfill.frequency,
                "runs": backfill.runs.len(),
                "instants": backfill.instants.len(),
            }),
        )
        .await;
    }
    Ok((StatusCode::ACCEPTED, Json(backfill)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` under `value`.
    fn refs<'a>(value: &'a serde_json::Value, found: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                    found.push(r);
                }
                map.values().for_each(|v| refs(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn the_openapi_document_has_every_route_and_nothing_else() {
        let doc = openapi();
        let mut documented: Vec<(String, String, serde_json::Value)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                documented.push((
                    method.to_ascii_uppercase(),
                    path.clone(),
                    operation["x-baton-access"].clone(),
                ));
            }
        }
        documented.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut routed: Vec<(String, String, serde_json::Value)> = routes()
            .iter()
            .map(|r| {
                (
                    r.method.to_string(),
                    r.path.to_string(),
                    serde_json::to_value(r.access).expect("an access serializes"),
                )
            })
            .collect();
        routed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(documented, routed);
        // Each route with a body or an answer names its types, and every reference resolves.
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 40, "{found:?}");
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} points outside the components"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} resolves to nothing"
            );
        }
        for route in routes() {
            let operation = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert_eq!(
                route.body.is_some(),
                operation["requestBody"].is_object(),
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}
