//! The importer: told by Pub/Sub push to run one attempt of an import table's job, it copies
//! the table's rows from PostgreSQL or MySQL into the staging bucket and loads them into
//! BigQuery.
//!
//! One attempt is three steps, each safe to repeat:
//! 1. **Copy** (unless the attempt's copy is recorded already): connect through the table's
//!    connection (opened with the deployment's key), describe the import's SELECT (a column
//!    whose type has no mapping fails the job, named), and stream its rows as gzip'd JSON
//!    chunks to the staging bucket under a prefix of this copy's own. When every chunk is
//!    uploaded the copy is recorded (`runs/{run}/imports/{table}@{attempt}`, created once):
//!    of two deliveries copying at once, the first to record wins and the other's chunks are
//!    never loaded.
//! 2. **Load** the recorded chunks with one BigQuery load job under the attempt's id, so that a
//!    redelivery attaches to it instead of loading twice; the job waits up to a deadline below
//!    the push's acknowledgement deadline and hands over to the next delivery past it.
//! 3. **Finish**: record the job ended (rows loaded, the table's row count) and tell the
//!    planner; a delivery that finds it ended tells the planner again.
//!
//! A database that cannot be reached or drops the connection is a transient failure, retried
//! as a new attempt after a pause that doubles; a wrong password, a missing table or column,
//! a permission refused or a value BigQuery cannot hold fails the job with the source's own
//! message (never the connection's secret). A job that fails for good is reported to the
//! alert connection.

pub mod chunks;
pub mod json;
pub mod landing;
pub mod mysql;
pub mod postgres;
pub mod source;
mod tls;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use tracing::Instrument;

use baton_core::attempt::{self, Delivery};
use baton_core::catalog::{ImportSpec, TableId, TableKind, WriteMode};
use baton_core::config::{ConfigError, Env};
use baton_core::connections::{self, Connection, ConnectionKind, Database};
use baton_core::errors::Retryable;
use baton_core::ids::bigquery_job_id;
use baton_core::imports::{
    self, ImportColumn, ImportState, ImportSummary, STAGED, STAGED_SCHEMA_VERSION, StagedCopy,
};
use baton_core::lifecycle::Outcome;
use baton_core::loads::FileFormat;
use baton_core::messages::{ImporterTask, PlannerEvent};
use baton_core::ports::{BusError, Publish, RunPort, StorageError, StoreError, WarehousePort};
use baton_core::run::{Job, JobStatistics};
use baton_core::schedule::conditions_hold;
use baton_core::secrets::Sealer;
use baton_core::state::JobState;
use baton_core::warehouse::{JobProgress, QueryJob, TableShape, WarehouseError, columns};
use baton_core::writes;
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::storage::Storage;
use baton_google::store::Store;
use baton_google::warehouse::{LoadJob, Warehouse};
use baton_service::alerts::{AlertConfig, Alerts};
use baton_service::config::Listen;
use baton_service::dead_letters::{Refusals, record_refusals};
use baton_service::http::{PushOutcome, decode_push, healthz};
use baton_service::oidc::Callers;
use baton_service::serial::Serial;
use baton_service::service::ServiceConfig;

use crate::chunks::Chunks;
use crate::source::{Copied, CopyError, Increment};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    pub settings: Settings,
    pub alerts: AlertConfig,
    /// Who may call: the Pub/Sub push identity.
    pub callers: Callers,
}

/// What the importer's work needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where copies are staged and a load's rejected rows are kept (`BATON_STAGING_BUCKET`);
    /// an import fails without one.
    pub staging_bucket: Option<String>,
    /// Where load tables' files land (`BATON_LANDING_BUCKET`): its notifications are heeded.
    pub landing_bucket: Option<String>,
    /// About how many bytes of JSON go into one chunk (`BATON_IMPORT_CHUNK_BYTES`).
    pub chunk_bytes: u64,
    /// How long one delivery waits for its load before handing over to the next
    /// (`BATON_IMPORTER_WAIT_SECONDS`); keep it below the subscription's ack deadline.
    pub wait: Duration,
    /// How often a delivery still copying or loading moves its job's watch on
    /// (`BATON_IMPORTER_REWATCH_SECONDS`): well within the sweep's 15 minutes.
    pub rewatch: Duration,
    /// Attempts a job gets when it fails transiently (`BATON_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The pause before the second attempt, doubling after each (`BATON_RETRY_BACKOFF_MS`).
    pub retry_backoff: Duration,
    /// Opens connections' secrets (`BATON_ENCRYPTION_KEY`).
    pub sealer: Option<Sealer>,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let gcp = Gcp::from_env(env)?;
        Ok(Self {
            listen: Listen::from_env(env)?,
            alerts: AlertConfig::from_env(env, &gcp)?,
            gcp,
            settings: Settings {
                staging_bucket: env.get("BATON_STAGING_BUCKET"),
                landing_bucket: env.get("BATON_LANDING_BUCKET"),
                chunk_bytes: env.parse_or("BATON_IMPORT_CHUNK_BYTES", 64 << 20)?,
                wait: Duration::from_secs(env.parse_or("BATON_IMPORTER_WAIT_SECONDS", 540)?),
                rewatch: Duration::from_secs(env.parse_or("BATON_IMPORTER_REWATCH_SECONDS", 300)?),
                max_attempts: env.parse_or("BATON_MAX_ATTEMPTS", 3)?,
                retry_backoff: Duration::from_millis(env.parse_or("BATON_RETRY_BACKOFF_MS", 5000)?),
                sealer: Sealer::from_env(env)?,
            },
            callers: Callers::from_env(env)?,
        })
    }

    fn listen(&self) -> &Listen {
        &self.listen
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImporterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The load outlasted this delivery: the next one attaches to it.
    #[error("BigQuery job {0} is still running")]
    StillRunning(String),
    #[error("stale: {0}")]
    Stale(String),
}

impl ImporterError {
    fn no_job(run_id: &str, table: &TableId) -> Self {
        ImporterError::Stale(format!("run {run_id} has no job {table}"))
    }
}

impl Retryable for ImporterError {
    fn is_retryable(&self) -> bool {
        match self {
            ImporterError::Store(e) => e.is_retryable(),
            ImporterError::Bus(e) => e.is_retryable(),
            ImporterError::Warehouse(e) => e.is_retryable(),
            ImporterError::Storage(e) => e.is_retryable(),
            ImporterError::StillRunning(_) => true,
            ImporterError::Stale(_) => false,
        }
    }
}

/// The importer's work, against Firestore, Pub/Sub, BigQuery and Cloud Storage.
#[derive(Debug)]
pub struct Importer {
    store: Store,
    topics: Topics,
    warehouse: Warehouse,
    storage: Arc<Storage>,
    alerts: Alerts,
    settings: Settings,
    /// Datasets known to exist, so that each is checked once per process.
    datasets: Mutex<HashSet<String>>,
    /// The load tables' prefixes, and when they were read (`landing::table_taking`).
    prefixes: Mutex<Option<landing::Prefixes>>,
}

#[derive(Debug)]
pub struct App {
    importer: Importer,
    /// Duplicate deliveries of one attempt that reach this process run one after the other.
    serial: Serial,
}

/// The service as it runs: its clients connected, its routes behind the callers' check.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    // mysql_async builds its TLS configuration with the process's default provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::connect(&config.gcp).await?;
    let importer = Importer {
        alerts: Alerts::new(store.clone(), config.alerts.clone()),
        store,
        topics: Topics::new(&config.gcp)?,
        warehouse: Warehouse::new(&config.gcp).await?,
        storage: Arc::new(Storage::new(&config.gcp, None)?),
        settings: config.settings.clone(),
        datasets: Mutex::new(HashSet::new()),
        prefixes: Mutex::new(None),
    };
    let app = Arc::new(App {
        importer,
        serial: Serial::default(),
    });
    Ok(baton_service::oidc::guard(router(app), &config.callers))
}

pub fn router(app: Arc<App>) -> Router {
    let refusals = Refusals::new(app.importer.store.clone(), "importer");
    Router::new()
        .route(
            "/pubsub",
            post(pubsub).layer(from_fn_with_state(refusals.clone(), record_refusals)),
        )
        .route(
            "/storage",
            post(storage).layer(from_fn_with_state(refusals, record_refusals)),
        )
        .route("/healthz", get(healthz))
        .with_state(app)
}

async fn pubsub(State(app): State<Arc<App>>, body: Bytes) -> PushOutcome {
    let push = match decode_push::<ImporterTask>(&body) {
        Ok(push) => push,
        Err(reason) => {
            tracing::error!(%reason, "malformed message acknowledged");
            return PushOutcome::Ignored(reason);
        }
    };
    let importer = &app.importer;
    let result = match &push.body {
        ImporterTask::Import {
            run_id,
            table,
            attempt,
        } => {
            let span = tracing::info_span!(
                "importer", run_id = %run_id, table = %table, attempt,
                message_id = %push.message_id
            );
            async {
                let _turn = app
                    .serial
                    .lock(&format!("{run_id}/{table}#{attempt}"))
                    .await;
                importer.run(run_id, table, *attempt).await
            }
            .instrument(span)
            .await
        }
        ImporterTask::Consider { table, force, at } => {
            let span = tracing::info_span!(
                "loads", table = %table, force, message_id = %push.message_id
            );
            async {
                let _turn = app.serial.lock(&format!("consider/{table}")).await;
                let at = at.unwrap_or_else(Timestamp::now);
                importer.consider(table, *force, at).await
            }
            .instrument(span)
            .await
        }
        ImporterTask::Load { table, batch } => {
            let span = tracing::info_span!(
                "loads", table = %table, batch = %batch, message_id = %push.message_id
            );
            async {
                let _turn = app.serial.lock(&format!("load/{table}/{batch}")).await;
                importer.load_batch(table, batch).await
            }
            .instrument(span)
            .await
        }
    };
    PushOutcome::from_result(result)
}

/// Cloud Storage's notifications of the landing bucket: a finalized object is a file that
/// landed. Other events (a deletion, a metadata change) are acknowledged and left alone.
async fn storage(State(app): State<Arc<App>>, body: Bytes) -> PushOutcome {
    let push = match decode_push::<landing::ObjectNotice>(&body) {
        Ok(push) => push,
        Err(reason) => {
            tracing::error!(%reason, "malformed storage notification acknowledged");
            return PushOutcome::Ignored(reason);
        }
    };
    let event = push.attributes.get("eventType").map(String::as_str);
    if event != Some("OBJECT_FINALIZE") {
        return PushOutcome::Ignored(format!("not a finalize: {event:?}"));
    }
    let span = tracing::info_span!(
        "landing", bucket = %push.body.bucket, object = %push.body.name,
        message_id = %push.message_id
    );
    let result = app
        .importer
        .object_finalized(&push.body, Timestamp::now())
        .instrument(span)
        .await;
    PushOutcome::from_result(result)
}

impl Importer {
    /// Copies, loads and finishes one attempt, or picks it up where an earlier delivery left
    /// it; while it works, the job's watch moves on every few minutes (the attempt's, and
    /// only while it runs).
    pub async fn run(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), ImporterError> {
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.settings.rewatch).await;
                let until = Timestamp::now() + baton_core::sweep::RUNNING_WATCH;
                if let Err(e) = self.store.watch_job(run_id, table, attempt, until).await {
                    tracing::warn!(error = %e, "the job's watch could not be moved on");
                }
            }
        };
        tokio::select! {
            done = self.run_attempt(run_id, table, attempt) => done,
            () = heartbeat => unreachable!("the heartbeat never ends"),
        }
    }

    async fn run_attempt(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), ImporterError> {
        let deadline = tokio::time::Instant::now() + self.settings.wait;
        let Some(job) = self.store.job(run_id, table).await? else {
            return Err(ImporterError::no_job(run_id, table));
        };
        let job = match attempt::delivery(&job, attempt) {
            Delivery::ResendNext => {
                self.topics.to_importer(&ImporterTask::import(&job)).await?;
                return Ok(());
            }
            Delivery::Stale(reason) => return Err(ImporterError::Stale(reason)),
            Delivery::Report => return self.report(&job).await,
            Delivery::Attach => job,
            Delivery::Start => {
                self.wait_for_retry_time(&job).await;
                let id = bigquery_job_id(run_id, table, attempt);
                self.store
                    .start(run_id, table, attempt, &id, Timestamp::now())
                    .await?
                    .ok_or_else(|| ImporterError::no_job(run_id, table))?
            }
        };
        if job.state != JobState::Running {
            return self.report(&job).await;
        }
        if job.definition.kind == TableKind::Load {
            // A load table named in a run: what waits is loaded now, as a force would, and
            // the run goes on (the loads are the table's own, `baton loads TABLE` tells them).
            self.consider(table, true, Timestamp::now()).await?;
            let outcome = Outcome::Succeeded {
                statistics: JobStatistics::default(),
                extract: None,
            };
            return self.finish(&job, &outcome).await;
        }
        let staged = match self.staged(&job).await? {
            // Recorded by an earlier delivery, whose load may have started: attach to it.
            Some(staged) => staged,
            None => {
                let staged = match self.copy(&job).await? {
                    Ok(staged) => staged,
                    Err(e) => return self.copy_failed(&job, e).await,
                };
                // A run cancelled while this copy was read loads nothing.
                if self
                    .store
                    .run(run_id)
                    .await?
                    .is_some_and(|run| run.state == baton_core::state::RunState::Cancelled)
                {
                    let outcome = Outcome::Failed {
                        error: "the run was cancelled before the load".into(),
                        statistics: JobStatistics::default(),
                    };
                    return self.finish(&job, &outcome).await;
                }
                staged
            }
        };
        let progress = match self.load(&job, &staged).await {
            Ok(progress) => progress,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => JobProgress::Failed {
                reason: "refused".into(),
                message: e.to_string(),
                statistics: JobStatistics::default(),
            },
        };
        let job_id = job
            .bigquery_job_id
            .clone()
            .expect("a running job has its BigQuery job id");
        let mut progress = self.wait(&job_id, progress, deadline).await?;
        // The rows the load wrote, as BigQuery counts them (a merge's progress replaces it).
        let loaded = match &progress {
            JobProgress::Succeeded(statistics) => statistics.rows_affected,
            _ => None,
        };
        let mut step = "load";
        // A merge import's rows went to a staging table: now they are merged on the key.
        let merging = job.definition.write_mode == WriteMode::Merge && !staged.summary.full;
        if merging && matches!(progress, JobProgress::Succeeded(_)) {
            step = "merge";
            progress = match self.merge(&job, &staged, &job_id).await {
                Ok((merge_id, started)) => self.wait(&merge_id, started, deadline).await?,
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => JobProgress::Failed {
                    reason: "refused".into(),
                    message: e.to_string(),
                    statistics: JobStatistics::default(),
                },
            };
        }
        let outcome = match progress {
            JobProgress::Succeeded(_) => {
                let destination_rows = self
                    .renew_expiration(table, &job.definition.options)
                    .await?;
                tracing::info!(
                    rows = staged.rows,
                    chunks = staged.objects.len(),
                    full = staged.summary.full,
                    "imported"
                );
                Outcome::Succeeded {
                    statistics: JobStatistics {
                        statement_type: Some(if merging { "LOAD+MERGE" } else { "LOAD" }.into()),
                        rows_affected: loaded.or(i64::try_from(staged.rows).ok()),
                        destination_rows,
                        import: Some(staged.summary.clone()),
                        ..JobStatistics::default()
                    },
                    extract: None,
                }
            }
            JobProgress::Failed {
                reason, message, ..
            } => {
                tracing::warn!(%reason, %message, step, "the import's BigQuery job failed");
                let error = format!("{step}: {reason}: {message}");
                if let Some(backoff) = attempt::retry_after(
                    &job,
                    attempt,
                    &reason,
                    &message,
                    self.settings.max_attempts,
                    self.settings.retry_backoff,
                ) {
                    return self.retry(&job, &error, backoff).await;
                }
                Outcome::Failed {
                    error,
                    statistics: JobStatistics::default(),
                }
            }
            JobProgress::Running => unreachable!("wait returns only ended jobs"),
        };
        // The watermark moves only with rows loaded: no state for an attempt that failed.
        let state = match &outcome {
            Outcome::Succeeded { .. } => Some(self.next_state(&job, &staged).await?),
            Outcome::Failed { .. } => None,
        };
        let finished = self
            .store
            .finish_import(
                &job.run_id,
                &job.table,
                job.attempt,
                &outcome,
                state.as_ref(),
                Timestamp::now(),
            )
            .await?
            .ok_or_else(|| ImporterError::no_job(&job.run_id, &job.table))?;
        self.report(&finished).await
    }

    /// The table's import state once this copy is loaded.
    async fn next_state(
        &self,
        job: &Job,
        staged: &StagedCopy,
    ) -> Result<ImportState, ImporterError> {
        let now = Timestamp::now();
        let last_full_at = match staged.summary.full {
            true => staged.copied_at,
            false => self
                .store
                .get::<ImportState>(None, imports::STATE, &job.table.to_string())
                .await?
                .map_or(staged.copied_at, |s| s.last_full_at),
        };
        Ok(ImportState {
            schema_version: imports::STATE_SCHEMA_VERSION,
            table: job.table.clone(),
            watermark: staged.summary.watermark,
            column: job
                .definition
                .import
                .as_ref()
                .and_then(|i| i.incremental.clone()),
            columns: staged.columns.clone(),
            last_full_at,
            updated_at: now,
        })
    }

    /// The attempt's recorded copy, if there is one.
    async fn staged(&self, job: &Job) -> Result<Option<StagedCopy>, ImporterError> {
        let parent = self.store.run_path(&job.run_id)?;
        Ok(self
            .store
            .get(
                Some(&parent),
                STAGED,
                &StagedCopy::id(&job.table, job.attempt),
            )
            .await?)
    }

    /// Copies the import's rows to the staging bucket and records the copy; the record that
    /// another delivery made first, if it did. `Ok(Err(_))` is the copy's own failure.
    async fn copy(&self, job: &Job) -> Result<Result<StagedCopy, CopyError>, ImporterError> {
        let db = match self.database(job).await? {
            Ok(db) => db,
            Err(e) => return Ok(Err(e)),
        };
        let Some(bucket) = self.settings.staging_bucket.clone() else {
            return Ok(Err(CopyError::Permanent(
                "no staging bucket: set BATON_STAGING_BUCKET on the importer".into(),
            )));
        };
        let copy_id = format!("{:016x}", rand::random::<u64>());
        let prefix = imports::chunk_prefix(&job.run_id, &job.table, job.attempt, &copy_id);
        let mut chunks = Chunks::new(
            self.storage.clone(),
            bucket.clone(),
            prefix,
            self.settings.chunk_bytes,
        );
        // What decides between the whole table and the rows past the watermark.
        let spec = job.definition.import.clone().unwrap_or_default();
        let state: Option<ImportState> = self
            .store
            .get(None, imports::STATE, &job.table.to_string())
            .await?;
        let table_exists = match &spec.incremental {
            Some(_) => self.warehouse.schema(&job.table).await?.is_some(),
            None => true,
        };
        let reimport_due = self.reimport_due(job, &spec).await?;
        let decide = |columns: &[ImportColumn]| {
            let reason = imports::full_because(
                state.as_ref(),
                spec.incremental.as_deref(),
                columns,
                reimport_due,
                table_exists,
            );
            let after = match &reason {
                Some(_) => None,
                None => state
                    .as_ref()
                    .and_then(|s| s.watermark)
                    .map(|w| w.less(spec.overlap_seconds)),
            };
            let increment = spec
                .incremental
                .clone()
                .map(|column| Increment { column, after });
            (reason, increment)
        };
        let started = std::time::Instant::now();
        tracing::info!(source = ?db, "copying");
        let sql = &job.definition.sql;
        let copied = match db.kind {
            ConnectionKind::Postgres => {
                async {
                    let client = postgres::connect(&db).await?;
                    let described = postgres::describe(&client, sql).await?;
                    let (reason, increment) = decide(&described.columns);
                    let copied =
                        postgres::copy(&client, sql, &described, increment.as_ref(), &mut chunks)
                            .await?;
                    Ok((described.columns, reason, increment, copied))
                }
                .await
            }
            _ => {
                async {
                    let mut conn = mysql::connect(&db).await?;
                    let copied = async {
                        let described = mysql::describe(&mut conn, sql).await?;
                        let (reason, increment) = decide(&described.columns);
                        let copied = mysql::copy(
                            &mut conn,
                            sql,
                            &described,
                            increment.as_ref(),
                            &mut chunks,
                        )
                        .await?;
                        Ok((described.columns, reason, increment, copied))
                    }
                    .await;
                    if let Err(e) = conn.disconnect().await {
                        tracing::debug!(error = %e, "the MySQL connection did not close cleanly");
                    }
                    copied
                }
                .await
            }
        };
        let (columns, reason, increment, copied): (_, _, _, Copied) = match copied {
            Ok(copied) => copied,
            Err(e) => return Ok(Err(e)),
        };
        let rows = copied.rows;
        let full = reason.is_some();
        let before = state.as_ref().and_then(|s| s.watermark).filter(|_| !full);
        let summary = ImportSummary {
            rows,
            full,
            reason: reason.filter(|_| spec.incremental.is_some()),
            after: increment.as_ref().and_then(|i| i.after),
            watermark: match (before, copied.high) {
                (Some(w), Some(h)) => Some(w.max(h)),
                (w, h) => h.or(w),
            },
        };
        let uploaded = match chunks.finish().await {
            Ok(uploaded) => uploaded,
            Err(e) => return Ok(Err(e.into())),
        };
        let staged = StagedCopy {
            schema_version: STAGED_SCHEMA_VERSION,
            table: job.table.clone(),
            attempt: job.attempt,
            copy: copy_id,
            bucket,
            objects: uploaded.objects,
            columns,
            rows,
            summary,
            json_bytes: uploaded.json_bytes,
            stored_bytes: uploaded.stored_bytes,
            copy_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            copied_at: Timestamp::now(),
        };
        tracing::info!(
            rows,
            full,
            reason = staged.summary.reason.as_deref().unwrap_or_default(),
            chunks = staged.objects.len(),
            json_bytes = staged.json_bytes,
            stored_bytes = staged.stored_bytes,
            copy_ms = staged.copy_ms,
            "copied"
        );
        let parent = self.store.run_path(&job.run_id)?;
        let id = StagedCopy::id(&job.table, job.attempt);
        match self.store.create(Some(&parent), STAGED, &id, &staged).await {
            Ok(()) => Ok(Ok(staged)),
            Err(StoreError::AlreadyExists(_)) => {
                tracing::info!("another delivery recorded its copy first: loading that one");
                let recorded = self.staged(job).await?.ok_or_else(|| {
                    StoreError::Unavailable(format!("{id} exists but cannot be read yet"))
                })?;
                Ok(Ok(recorded))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a reimport condition holds at the run's instant, read in its frequency's zone.
    async fn reimport_due(&self, job: &Job, spec: &ImportSpec) -> Result<bool, ImporterError> {
        if spec.reimport.is_empty() {
            return Ok(false);
        }
        let run = self.store.run(&job.run_id).await?;
        let frequency = match run.as_ref().and_then(|r| r.frequency.as_deref()) {
            Some(name) => self.store.frequency(name).await?,
            None => None,
        };
        let zone = frequency
            .and_then(|f| f.schedule().ok())
            .map_or(jiff::tz::TimeZone::UTC, |s| s.zone());
        Ok(conditions_hold(&spec.reimport, job.run_time, &zone))
    }

    /// The import's database, from its connection.
    async fn database(&self, job: &Job) -> Result<Result<Database, CopyError>, ImporterError> {
        let permanent = |m: String| Ok(Err(CopyError::Permanent(m)));
        let Some(spec) = job.definition.import.as_ref() else {
            return permanent(format!("{} is not an import table", job.table));
        };
        let name = &spec.connection;
        let Some(connection) = self
            .store
            .get::<Connection>(None, connections::COLLECTION, name)
            .await?
        else {
            return permanent(format!("connection `{name}` does not exist"));
        };
        if !connection.kind.is_database() {
            return permanent(format!("connection `{name}` is not a database"));
        }
        let Some(sealer) = &self.settings.sealer else {
            return permanent(
                "connections cannot be opened: the importer has no BATON_ENCRYPTION_KEY".into(),
            );
        };
        let secret = match sealer.open(&connection.secret, &connections::bound_to(name)) {
            Ok(secret) => secret,
            Err(e) => return permanent(format!("connection `{name}`: {e}")),
        };
        Ok(Database::parse(connection.kind, &secret)
            .map_err(|e| CopyError::Permanent(format!("connection `{name}`: {e}"))))
    }

    /// After a successful load: the table's expiration renewed when it has one, and its row
    /// count (read by the renewal, or else on its own). A refusal to renew is logged, not a
    /// reason to leave the job open; a transient one is retried.
    async fn renew_expiration(
        &self,
        table: &TableId,
        options: &baton_core::catalog::TableOptions,
    ) -> Result<Option<i64>, WarehouseError> {
        if let Some(seconds) = options.expiration_seconds {
            let at = Timestamp::now() + SignedDuration::from_secs(seconds);
            match self.warehouse.set_expiration(table, at).await {
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "the table's expiration was not renewed"),
                Ok(rows) => return Ok(rows),
            }
        }
        Ok(self.warehouse.row_count(table).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "row count unavailable");
            None
        }))
    }

    /// Creates the dataset unless this process saw it before.
    async fn ensure_dataset(&self, dataset: &str) -> Result<(), WarehouseError> {
        let known = self
            .datasets
            .lock()
            .expect("the dataset cache is never poisoned")
            .contains(dataset);
        if !known {
            self.warehouse.ensure_dataset(dataset).await?;
            self.datasets
                .lock()
                .expect("the dataset cache is never poisoned")
                .insert(dataset.to_string());
        }
        Ok(())
    }

    /// Starts the load of the recorded copy under the attempt's job id, or attaches to it.
    async fn load(&self, job: &Job, staged: &StagedCopy) -> Result<JobProgress, WarehouseError> {
        self.ensure_dataset(job.table.dataset()).await?;
        let schema: Vec<_> = staged.columns.iter().map(|c| c.field()).collect();
        let options = &job.definition.options;
        let job_id = job
            .bigquery_job_id
            .as_deref()
            .expect("a running job has its BigQuery job id");
        let (table, append) = match job.definition.write_mode {
            _ if staged.summary.full => (job.table.clone(), false),
            WriteMode::Append => (job.table.clone(), true),
            WriteMode::Merge => (merge_source(job, job_id)?, false),
            _ => (job.table.clone(), false),
        };
        let into_table = table == job.table;
        self.warehouse
            .start_load(&LoadJob {
                job_id,
                table: &table,
                uris: &staged.uris(),
                format: &FileFormat::Ndjson,
                csv: None,
                schema: &schema,
                max_bad_records: 0,
                append,
                // A column added to the source is added to the table.
                add_columns: true,
                partitioning: options.partitioning.as_ref().filter(|_| into_table),
                clustering: if into_table { &options.clustering } else { &[] },
                labels: attempt::labels(job),
                timeout: attempt::timeout(job),
            })
            .await
    }

    /// After an incremental merge import's load into its staging table: makes sure the table
    /// exists, and starts (or attaches to) the MERGE of the staged rows on the table's key.
    async fn merge(
        &self,
        job: &Job,
        staged: &StagedCopy,
        load_id: &str,
    ) -> Result<(String, JobProgress), WarehouseError> {
        let source = merge_source(job, load_id)?;
        // The staged rows are kept a day, then BigQuery deletes them.
        self.warehouse
            .set_expiration(&source, Timestamp::now() + SignedDuration::from_hours(24))
            .await?;
        let fields: Vec<_> = staged.columns.iter().map(|c| c.field()).collect();
        let definition = &job.definition;
        if self.warehouse.schema(&job.table).await?.is_none() {
            let shape = TableShape {
                partitioning: definition.options.partitioning.as_ref(),
                clustering: &definition.options.clustering,
            };
            self.warehouse
                .create_table(&job.table, &fields, shape)
                .await?;
        }
        let project = job
            .destination
            .split_once('.')
            .map_or("", |(project, _)| project);
        let query = format!("SELECT * FROM `{project}.{source}`");
        let statement = writes::statement(
            WriteMode::Merge,
            &job.destination,
            &query,
            &columns(&fields),
            &definition.options,
        )
        .map_err(WarehouseError::Invalid)?
        .expect("merge writes by statement");
        let merge_id = format!("{load_id}_merge");
        let progress = self
            .warehouse
            .start_query(&QueryJob {
                job_id: &merge_id,
                sql: &statement,
                default_dataset: job.table.dataset(),
                destination: None,
                labels: attempt::labels(job),
                timestamps: Vec::new(),
                max_bytes_billed: None,
                timeout: attempt::timeout(job),
            })
            .await?;
        Ok((merge_id, progress))
    }

    /// Polls the load until it ends or this delivery's time is up.
    async fn wait(
        &self,
        job_id: &str,
        mut progress: JobProgress,
        deadline: tokio::time::Instant,
    ) -> Result<JobProgress, ImporterError> {
        let mut pause = Duration::from_millis(500);
        while progress == JobProgress::Running {
            let next = tokio::time::Instant::now() + pause;
            if next > deadline {
                return Err(ImporterError::StillRunning(job_id.to_string()));
            }
            tokio::time::sleep_until(next).await;
            pause = (pause * 2).min(Duration::from_secs(10));
            progress = self.warehouse.job_progress(job_id).await?;
        }
        Ok(progress)
    }

    /// A copy that failed: retried as a new attempt when it may pass, else the job fails.
    async fn copy_failed(&self, job: &Job, e: CopyError) -> Result<(), ImporterError> {
        let error = format!("copy: {e}");
        tracing::warn!(%error, transient = e.is_transient(), "the copy failed");
        if e.is_transient() && job.attempt < attempt::max_attempts(job, self.settings.max_attempts)
        {
            let backoff = attempt::backoff(job.attempt, self.settings.retry_backoff);
            return self.retry(job, &error, backoff).await;
        }
        let outcome = Outcome::Failed {
            error,
            statistics: JobStatistics::default(),
        };
        self.finish(job, &outcome).await
    }

    async fn retry(&self, job: &Job, error: &str, backoff: Duration) -> Result<(), ImporterError> {
        let backoff = SignedDuration::try_from(backoff).unwrap_or_default();
        tracing::warn!(
            next_attempt = job.attempt + 1,
            ?backoff,
            "transient failure; retrying"
        );
        if let Some(next) = self
            .store
            .retry(
                &job.run_id,
                &job.table,
                job.attempt,
                error,
                backoff,
                Timestamp::now(),
            )
            .await?
        {
            self.topics
                .to_importer(&ImporterTask::import(&next))
                .await?;
        }
        Ok(())
    }

    async fn finish(&self, job: &Job, outcome: &Outcome) -> Result<(), ImporterError> {
        let finished = self
            .store
            .finish(
                &job.run_id,
                &job.table,
                job.attempt,
                outcome,
                Timestamp::now(),
            )
            .await?
            .ok_or_else(|| ImporterError::no_job(&job.run_id, &job.table))?;
        self.report(&finished).await
    }

    /// A retried attempt starts no sooner than its `retry_at` (within this delivery's time).
    async fn wait_for_retry_time(&self, job: &Job) {
        let Some(retry_at) = job.retry_at else {
            return;
        };
        let pause = retry_at.duration_since(Timestamp::now());
        if pause.is_positive() {
            let pause = Duration::try_from(pause)
                .unwrap_or_default()
                .min(self.settings.wait);
            tokio::time::sleep(pause).await;
        }
    }

    /// Tells the planner the attempt ended, then, if it failed, the alert channel.
    async fn report(&self, job: &Job) -> Result<(), ImporterError> {
        self.topics
            .to_planner(&PlannerEvent::job_finished(job))
            .await?;
        if job.state == JobState::Failed {
            self.alerts.job_failed(job).await;
        }
        Ok(())
    }
}

/// The table an incremental merge import loads its rows into before merging them: in the
/// table's dataset, named after the attempt's job.
fn merge_source(job: &Job, load_id: &str) -> Result<TableId, WarehouseError> {
    TableId::new(job.table.dataset(), &format!("_baton_{load_id}"))
        .map_err(|e| WarehouseError::Invalid(e.0))
}
