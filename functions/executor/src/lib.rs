//! The executor: told by Pub/Sub push to run one attempt of one table's query job, or to
//! cancel it.
//!
//! The BigQuery job's id comes from run, table and attempt, so a redelivered message finds the
//! job already there and attaches to it instead of starting another. The executor waits for
//! the job up to a deadline below the push's acknowledgement deadline; past it, it answers 503
//! and the next delivery picks the job up where it stands, so a long job is neither lost nor
//! run twice. When the job ends it records state and statistics, then tells the planner; a
//! delivery that finds the job ended tells the planner again (the planner is idempotent), which
//! covers an executor that died between its write and its publish. A transient failure is
//! retried as a new attempt, after a pause that doubles each time, up to a bound.
//!
//! After a success, a table that asks for it is extracted to Cloud Storage (an extract job
//! whose id follows from the query job's), its files signed for reading and a notify URL told
//! where they are, before the job is recorded ended. A job that fails for good is reported to
//! the deployment's Slack connection (`alerts`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use baton_core::catalog::{Extract, TableId, WriteMode};
use baton_core::config::{ConfigError, Env};
use baton_core::errors::Retryable;
use baton_core::ids::{bigquery_job_id, label_value};
use baton_core::lifecycle::Outcome;
use baton_core::messages::{ExecutorTask, PlannerEvent};
use baton_core::ports::{BusError, Publish, RunPort, StoreError};
use baton_core::run::{ExtractFile, ExtractRecord, Instants, Job, JobStatistics, NotifyRecord};
use baton_core::state::JobState;
use baton_core::writes::{self, Column};
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::storage::{Storage, StorageError};
use baton_google::store::Store;
use baton_google::warehouse::{
    Destination, ExtractJob, JobProgress, QueryJob, TableShape, Warehouse, WarehouseError, columns,
    is_transient, rows,
};
use baton_service::alerts::{AlertConfig, Alerts};
use baton_service::config::Listen;
use baton_service::http::{PushOutcome, Retries, decode_push, healthz, host_of, post_json};
use baton_service::oidc::Callers;
use baton_service::serial::Serial;
use baton_service::service::ServiceConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub gcp: Gcp,
    /// How long one delivery waits for its BigQuery job before handing over to the next
    /// (`BATON_EXECUTOR_WAIT_SECONDS`); keep it below the subscription's ack deadline.
    pub wait: Duration,
    /// Attempts a job gets when its BigQuery job fails transiently (`BATON_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The pause before the second attempt, doubling after each (`BATON_RETRY_BACKOFF_MS`).
    pub retry_backoff: Duration,
    /// The on-demand price of a TiB billed, for each job's cost (`BATON_PRICE_PER_TIB`).
    pub price_per_tib: f64,
    pub alerts: AlertConfig,
    /// Where extracts are written (`BATON_EXTRACT_BUCKET`); a table that asks for an extract
    /// fails without one.
    pub extract_bucket: Option<String>,
    /// How long an extract's signed URLs work unless its table says (`BATON_SIGNED_URL_SECONDS`).
    pub url_expiry: Duration,
    /// A service account key's JSON to sign URLs with, read from `BATON_SIGNING_KEY_FILE`;
    /// without one the service's own identity signs.
    pub signing_key: Option<SecretString>,
    /// Tries of a notify POST (`BATON_NOTIFY_ATTEMPTS`), the pause before the second
    /// doubling after each (`BATON_NOTIFY_BACKOFF_MS`).
    pub notify_attempts: u32,
    pub notify_backoff: Duration,
    /// Who may call: the Pub/Sub push identity.
    pub callers: Callers,
}

impl ServiceConfig for Config {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let gcp = Gcp::from_env(env)?;
        Ok(Self {
            listen: Listen::from_env(env)?,
            alerts: AlertConfig::from_env(env, &gcp)?,
            gcp,
            wait: Duration::from_secs(env.parse_or("BATON_EXECUTOR_WAIT_SECONDS", 540)?),
            max_attempts: env.parse_or("BATON_MAX_ATTEMPTS", 3)?,
            retry_backoff: Duration::from_millis(env.parse_or("BATON_RETRY_BACKOFF_MS", 5000)?),
            price_per_tib: env.parse_or("BATON_PRICE_PER_TIB", 6.25)?,
            extract_bucket: env.get("BATON_EXTRACT_BUCKET"),
            url_expiry: Duration::from_secs(env.parse_or("BATON_SIGNED_URL_SECONDS", 86_400)?),
            signing_key: env
                .get("BATON_SIGNING_KEY_FILE")
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .map(SecretString::from)
                        .map_err(|e| ConfigError {
                            variable: "BATON_SIGNING_KEY_FILE".into(),
                            message: format!("{path} cannot be read: {e}"),
                        })
                })
                .transpose()?,
            notify_attempts: env.parse_or("BATON_NOTIFY_ATTEMPTS", 5)?,
            notify_backoff: Duration::from_millis(env.parse_or("BATON_NOTIFY_BACKOFF_MS", 1000)?),
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
    warehouse: Warehouse,
    storage: Storage,
    alerts: Alerts,
    /// For notify URLs.
    http: reqwest::Client,
    config: Config,
    /// Datasets known to exist, so that each is checked once per process.
    datasets: Mutex<HashSet<String>>,
    /// Duplicate deliveries of one attempt that reach this process run one after the other.
    serial: Serial,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.gcp).await?;
        Ok(Self {
            alerts: Alerts::new(store.clone(), config.alerts.clone()),
            store,
            topics: Topics::new(&config.gcp)?,
            warehouse: Warehouse::new(&config.gcp).await?,
            storage: Storage::new(
                &config.gcp,
                config.signing_key.as_ref().map(|k| k.expose_secret()),
            )?,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .build()?,
            config,
            datasets: Mutex::new(HashSet::new()),
            serial: Serial::default(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The BigQuery job outlasted this delivery: the next one attaches to it.
    #[error("BigQuery job {0} is still running")]
    StillRunning(String),
    #[error("stale: {0}")]
    Stale(String),
}

impl ExecutorError {
    /// The message names a job that its run does not have (a run deleted, a message that
    /// does not belong): acknowledged, never retried.
    fn no_job(run_id: &str, table: &TableId) -> Self {
        ExecutorError::Stale(format!("run {run_id} has no job {table}"))
    }
}

impl Retryable for ExecutorError {
    fn is_retryable(&self) -> bool {
        match self {
            ExecutorError::Store(e) => e.is_retryable(),
            ExecutorError::Bus(e) => e.is_retryable(),
            ExecutorError::Warehouse(e) => e.is_retryable(),
            ExecutorError::Storage(e) => e.is_retryable(),
            ExecutorError::StillRunning(_) => true,
            ExecutorError::Stale(_) => false,
        }
    }
}

/// The service as it runs: its clients connected, its routes behind the callers' check.
pub async fn start(config: Config) -> anyhow::Result<Router> {
    let app = Arc::new(App::connect(config.clone()).await?);
    Ok(baton_service::oidc::guard(router(app), &config.callers))
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/pubsub", post(pubsub))
        .route("/healthz", get(healthz))
        .with_state(app)
}

async fn pubsub(State(app): State<Arc<App>>, body: Bytes) -> PushOutcome {
    let push = match decode_push::<ExecutorTask>(&body) {
        Ok(push) => push,
        Err(reason) => {
            tracing::error!(%reason, "malformed message acknowledged");
            return PushOutcome::Ignored(reason);
        }
    };
    let (run_id, table, attempt) = push.body.parts();
    let span = tracing::info_span!(
        "executor", run_id = %run_id, table = %table, attempt, message_id = %push.message_id
    );
    let result = match &push.body {
        ExecutorTask::RunQuery { .. } => {
            let _turn = app
                .serial
                .lock(&format!("{run_id}/{table}#{attempt}"))
                .await;
            run(&app, run_id, table, attempt).instrument(span).await
        }
        ExecutorTask::Cancel { .. } => cancel(&app, run_id, table, attempt).instrument(span).await,
    };
    PushOutcome::from_result(result)
}

/// Runs (or attaches to, or reports) one attempt of one job.
pub async fn run(
    app: &App,
    run_id: &str,
    table: &TableId,
    attempt: u32,
) -> Result<(), ExecutorError> {
    // This delivery hands over to the next one past here (a job, then its extract).
    let deadline = tokio::time::Instant::now() + app.config.wait;
    let Some(job) = app.store.job(run_id, table).await? else {
        return Err(ExecutorError::no_job(run_id, table));
    };
    if job.attempt > attempt && job.state == JobState::Queued && job.dispatched {
        // This attempt was retried: make sure the next one was sent (a crash may have come
        // between recording the retry and sending it).
        return send_attempt(app, &job).await;
    }
    if job.attempt != attempt {
        return Err(ExecutorError::Stale(format!(
            "{table} is at attempt {}, not {attempt}",
            job.attempt
        )));
    }
    let job = match job.state {
        JobState::Queued if job.dispatched => {
            wait_for_retry_time(app, &job).await;
            let id = bigquery_job_id(run_id, table, attempt);
            match app
                .store
                .start(run_id, table, attempt, &id, Timestamp::now())
                .await?
            {
                Some(job) => job,
                None => {
                    return Err(ExecutorError::no_job(run_id, table));
                }
            }
        }
        JobState::Running => job,
        JobState::Pending | JobState::Queued => {
            return Err(ExecutorError::Stale(format!(
                "{table} was not dispatched (it is {})",
                job.state
            )));
        }
        _ => {
            // Ended already: the planner may not have heard, nor the alert channel (a
            // delivery that died after its write); the alert's claim keeps it to one.
            return report_and_alert(app, &job).await;
        }
    };
    if job.state != JobState::Running {
        return report_and_alert(app, &job).await;
    }
    let job_id = job
        .bigquery_job_id
        .clone()
        .expect("a running job has its BigQuery job id");
    // From here the job is running: an error that another delivery cannot cure ends it as
    // failed, with the error on it, rather than leaving it running for ever.
    let progress = match run_query(app, &job, &job_id).await {
        Ok(progress) => progress,
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => JobProgress::Failed {
            reason: "refused".into(),
            message: e.to_string(),
            statistics: JobStatistics::default(),
        },
    };
    let limit = timeout(&job).zip(job.started_at);
    let progress = wait(app, &job_id, progress, deadline, limit).await?;
    let outcome = match progress {
        JobProgress::Succeeded(statistics) => {
            let mut renewed = None;
            if let Some(seconds) = job.definition.options.expiration_seconds {
                // The rows are written: a refusal to renew the expiration is logged, not
                // a reason to leave the job running for ever; a transient one is retried.
                let at = Timestamp::now() + SignedDuration::from_secs(seconds);
                match app.warehouse.set_expiration(table, at).await {
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    Err(e) => tracing::warn!(error = %e, "the table's expiration was not renewed"),
                    Ok(t) => renewed = Some(t),
                }
            }
            // The renewal read the table already; otherwise read it for its row count.
            let destination_rows = match &renewed {
                Some(t) => rows(t),
                None => app.warehouse.row_count(table).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "row count unavailable");
                    None
                }),
            };
            let statistics = JobStatistics {
                destination_rows,
                ..statistics
            }
            .priced(app.config.price_per_tib);
            match &job.definition.options.extract {
                None => Outcome::Succeeded {
                    statistics,
                    extract: None,
                },
                Some(spec) => match extract(app, &job, &job_id, spec, deadline).await? {
                    Ok(record) => Outcome::Succeeded {
                        statistics,
                        extract: Some(record),
                    },
                    Err(error) => {
                        tracing::warn!(%error, "the extract failed");
                        Outcome::Failed {
                            error: format!("extract: {error}"),
                            statistics,
                        }
                    }
                },
            }
        }
        JobProgress::Failed {
            reason,
            message,
            statistics,
        } => {
            tracing::warn!(%reason, %message, "BigQuery job failed");
            if is_transient(&reason, &message) && attempt < max_attempts(app, &job) {
                let error = format!("{reason}: {message}");
                let backoff = app
                    .config
                    .retry_backoff
                    .saturating_mul(2u32.saturating_pow(attempt - 1))
                    .min(Duration::from_secs(300));
                let backoff = SignedDuration::try_from(backoff).unwrap_or_default();
                tracing::warn!(
                    next_attempt = attempt + 1,
                    ?backoff,
                    "transient failure; retrying"
                );
                if let Some(next) = app
                    .store
                    .retry(run_id, table, attempt, &error, backoff, Timestamp::now())
                    .await?
                {
                    send_attempt(app, &next).await?;
                }
                return Ok(());
            }
            Outcome::Failed {
                error: format!("{reason}: {message}"),
                statistics: statistics.priced(app.config.price_per_tib),
            }
        }
        JobProgress::Running => unreachable!("wait returns only ended jobs"),
    };
    let finished = app
        .store
        .finish(run_id, table, attempt, &outcome, Timestamp::now())
        .await?
        .ok_or_else(|| ExecutorError::no_job(run_id, table))?;
    report_and_alert(app, &finished).await
}

/// Stops an attempt's BigQuery job (its run was cancelled). The delivery that runs the job
/// sees it end and records it cancelled.
pub async fn cancel(
    app: &App,
    run_id: &str,
    table: &TableId,
    attempt: u32,
) -> Result<(), ExecutorError> {
    let Some(job) = app.store.job(run_id, table).await? else {
        return Err(ExecutorError::no_job(run_id, table));
    };
    match (&job.bigquery_job_id, job.state) {
        (Some(id), JobState::Running) if job.attempt == attempt => {
            tracing::info!(bigquery_job_id = %id, "cancelling the BigQuery job");
            app.warehouse.cancel_job(id).await?;
            Ok(())
        }
        _ => Err(ExecutorError::Stale(format!(
            "{table} attempt {attempt} is not running"
        ))),
    }
}

/// A retried attempt starts no sooner than its `retry_at` (within this delivery's time).
async fn wait_for_retry_time(app: &App, job: &Job) {
    let Some(retry_at) = job.retry_at else {
        return;
    };
    let pause = retry_at.duration_since(Timestamp::now());
    if pause.is_positive() {
        let pause = Duration::try_from(pause)
            .unwrap_or_default()
            .min(app.config.wait);
        tokio::time::sleep(pause).await;
    }
}

async fn send_attempt(app: &App, job: &Job) -> Result<(), ExecutorError> {
    app.topics
        .to_executor(&ExecutorTask::run_query(job))
        .await?;
    Ok(())
}

/// Starts the attempt's BigQuery job, or finds it started by an earlier delivery.
async fn run_query(app: &App, job: &Job, job_id: &str) -> Result<JobProgress, WarehouseError> {
    let by_statement = job.definition.write_mode.writes_by_statement();
    if by_statement {
        // Preparing a statement costs a dry run and a table read: a redelivery whose job is
        // there already skips it. A plain query job needs no look first: inserting its id
        // again answers 409, and `start_query` attaches to the job.
        match app.warehouse.job_progress(job_id).await {
            Ok(progress) => return Ok(progress),
            Err(WarehouseError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let dataset = job.table.dataset();
    let known = app
        .datasets
        .lock()
        .expect("the dataset cache is never poisoned")
        .contains(dataset);
    if !known {
        app.warehouse.ensure_dataset(dataset).await?;
        app.datasets
            .lock()
            .expect("the dataset cache is never poisoned")
            .insert(dataset.to_string());
    }
    let definition = &job.definition;
    let options = &definition.options;
    let timestamps = timestamps(job)?;
    let statement = if by_statement {
        Some(prepare(app, job, &timestamps).await?)
    } else {
        None
    };
    let destination = statement.is_none().then_some(Destination {
        table: &job.table,
        append: definition.write_mode == WriteMode::Append,
        partitioning: options.partitioning.as_ref(),
        clustering: &options.clustering,
    });
    app.warehouse
        .start_query(&QueryJob {
            job_id,
            sql: statement.as_deref().unwrap_or(&definition.sql),
            default_dataset: dataset,
            destination,
            labels: labels(job),
            timestamps,
            max_bytes_billed: options.max_bytes_billed,
            timeout: timeout(job),
        })
        .await
}

/// For the write modes that write through a statement of Baton's own (merge,
/// insert_unique, overwrite_partitions): makes sure the table exists with the result's
/// columns (creating it, or adding the new ones), and returns the statement.
async fn prepare(
    app: &App,
    job: &Job,
    timestamps: &[(String, Option<Timestamp>)],
) -> Result<String, WarehouseError> {
    let definition = &job.definition;
    let query = baton_core::sql::single_query(&definition.sql)
        .map_err(|e| WarehouseError::Invalid(e.to_string()))?;
    let dry_run = app
        .warehouse
        .dry_run(query, job.table.dataset(), timestamps)
        .await?;
    let result = columns(&dry_run.schema);
    match app.warehouse.table(&job.table).await?.map(|t| t.schema) {
        None => {
            let shape = TableShape {
                partitioning: definition.options.partitioning.as_ref(),
                clustering: &definition.options.clustering,
            };
            app.warehouse
                .create_table(&job.table, dry_run.schema.clone(), shape)
                .await?;
        }
        Some(current) => {
            let added: Vec<Column> = writes::added_columns(&columns(&current), &result)
                .map_err(WarehouseError::Invalid)?
                .into_iter()
                .cloned()
                .collect();
            if !added.is_empty() {
                tracing::info!(
                    columns = ?added.iter().map(|c| &c.name).collect::<Vec<_>>(),
                    "adding the result's new columns to the table"
                );
                app.warehouse
                    .add_columns(&job.table, &current, &dry_run.schema, &added)
                    .await?;
            }
        }
    }
    let statement = writes::statement(
        definition.write_mode,
        &job.destination,
        query,
        &result,
        &definition.options,
    )
    .map_err(WarehouseError::Invalid)?;
    Ok(statement.expect("a mode that writes by statement has one"))
}

/// The labels on every BigQuery job, so that the billing export attributes its cost.
fn labels(job: &Job) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        ("baton-run".to_string(), label_value(&job.run_id)),
        (
            "baton-table".to_string(),
            label_value(&job.table.to_string()),
        ),
    ]);
    if let Some(user) = &job.attributed_user {
        labels.insert("baton-user".into(), label_value(user));
    }
    if let Some(group) = &job.attributed_group {
        labels.insert("baton-group".into(), label_value(group));
    }
    labels
}

/// Attempts a job gets: its table's retries and one, else the service's bound.
fn max_attempts(app: &App, job: &Job) -> u32 {
    job.definition
        .options
        .retries
        .map_or(app.config.max_attempts, |r| r.saturating_add(1))
}

/// The table's timeout, if it has one.
fn timeout(job: &Job) -> Option<Duration> {
    job.definition
        .options
        .timeout_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
}

/// The run's instants, for the parameters the SQL uses; an overwrite of the run's window
/// needs both ends of it, whatever the SQL uses.
fn timestamps(job: &Job) -> Result<Vec<(String, Option<Timestamp>)>, WarehouseError> {
    let mut names: Vec<&str> = job.parameters.iter().map(String::as_str).collect();
    if job.definition.write_mode == WriteMode::OverwritePartitions {
        if job.window_start.is_none() {
            return Err(WarehouseError::Invalid(
                "write mode overwrite_partitions replaces the run's window, and this run has \
                 none (a run of tables outside any frequency): run it with its frequency"
                    .into(),
            ));
        }
        for name in ["window_start", "window_end"] {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(Instants {
        run_time: job.run_time,
        window_start: job.window_start,
    }
    .parameters(&names))
}

/// Writes the table to Cloud Storage after its job succeeded, signs a URL for each file and
/// tells the notify URL. Each extract job's id follows from the query job's and a number: a
/// redelivery attaches to the extract already started and moves to the next number only past
/// one that failed transiently, so a table is extracted once per attempt. `Ok(Err(reason))`
/// fails the job; `Err` hands over to the next delivery.
async fn extract(
    app: &App,
    job: &Job,
    query_job_id: &str,
    spec: &Extract,
    deadline: tokio::time::Instant,
) -> Result<Result<ExtractRecord, String>, ExecutorError> {
    let Some(bucket) = app.config.extract_bucket.as_deref() else {
        return Ok(Err(
            "no bucket to write it to: set BATON_EXTRACT_BUCKET on the executor".into(),
        ));
    };
    let table = &job.table;
    let prefix = format!(
        "{}/{}/{}/{}/",
        table.dataset(),
        table.table(),
        job.run_id,
        job.attempt
    );
    let uri = format!("gs://{bucket}/{prefix}{}-*{}", table.table(), spec.suffix());
    let mut number = 1;
    let extract_job_id = loop {
        let id = format!("{query_job_id}_extract_{number}");
        let started = app
            .warehouse
            .start_extract(&ExtractJob {
                job_id: &id,
                table,
                uri: &uri,
                format: spec.format,
                compression: spec.compression.as_deref(),
                labels: labels(job),
            })
            .await;
        let progress = match started {
            Ok(progress) => progress,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => return Ok(Err(e.to_string())),
        };
        match wait(app, &id, progress, deadline, None).await? {
            JobProgress::Succeeded(_) => break id,
            JobProgress::Failed {
                reason, message, ..
            } if is_transient(&reason, &message) && number < max_attempts(app, job) => {
                tracing::warn!(%reason, %message, extract = number, "the extract failed; trying again");
                number += 1;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(app.config.retry_backoff.min(left)).await;
            }
            JobProgress::Failed {
                reason, message, ..
            } => return Ok(Err(format!("{reason}: {message}"))),
            JobProgress::Running => unreachable!("wait returns only ended jobs"),
        }
    };
    let objects = match app.storage.list(bucket, &prefix).await {
        Ok(objects) => objects,
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let expiry = spec
        .url_expiry_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(app.config.url_expiry, Duration::from_secs);
    let urls_expire_at = Timestamp::now() + SignedDuration::try_from(expiry).unwrap_or_default();
    let mut files = Vec::with_capacity(objects.len());
    for object in objects {
        let url = match app.storage.signed_url(bucket, &object.name, expiry).await {
            Ok(url) => url,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => return Ok(Err(e.to_string())),
        };
        files.push(ExtractFile {
            uri: format!("gs://{bucket}/{}", object.name),
            bytes: object.size,
            url,
        });
    }
    tracing::info!(files = files.len(), %uri, "extracted");
    let notify = match &spec.notify {
        None => None,
        Some(url) => {
            let schema = app
                .warehouse
                .table(table)
                .await?
                .map(|t| t.schema)
                .and_then(|s| s.fields)
                .unwrap_or_default();
            let body = serde_json::json!({
                "dataset": table.dataset(),
                "table": table.table(),
                "run": job.run_id,
                "urls": files.iter().map(|f| &f.url).collect::<Vec<_>>(),
                "schema": schema,
                "format": spec.format,
                "expires_at": urls_expire_at,
            });
            Some(notify(app, url, &body, deadline).await)
        }
    };
    Ok(Ok(ExtractRecord {
        bigquery_job_id: extract_job_id,
        uri,
        files,
        urls_expire_at,
        notify,
    }))
}

/// POSTs where the files are to the notify URL, giving up at the delivery's deadline (past
/// it, Pub/Sub would deliver again and the URL be told twice); only its host is logged.
async fn notify(
    app: &App,
    url: &str,
    body: &serde_json::Value,
    deadline: tokio::time::Instant,
) -> NotifyRecord {
    let retries = Retries {
        attempts: app.config.notify_attempts,
        backoff: app.config.notify_backoff,
        until: Some(deadline),
    };
    let record = post_json(&app.http, url, body, retries).await;
    let host = host_of(url);
    match &record.error {
        None => tracing::info!(%host, attempts = record.attempts, "notified"),
        Some(e) => {
            tracing::warn!(%host, attempts = record.attempts, error = %e, "the notify URL was not told");
        }
    }
    record
}

/// Polls a running BigQuery job until it ends or this delivery's time is up (`deadline`). A
/// job that outlives a `timeout` (counted from the given start, across deliveries) is
/// cancelled and fails.
async fn wait(
    app: &App,
    job_id: &str,
    mut progress: JobProgress,
    deadline: tokio::time::Instant,
    timeout: Option<(Duration, Timestamp)>,
) -> Result<JobProgress, ExecutorError> {
    let timeout_at = timeout.map(|(timeout, started)| {
        let left = started.duration_until(Timestamp::now()).unsigned_abs();
        tokio::time::Instant::now() + timeout.saturating_sub(left)
    });
    let mut pause = Duration::from_millis(500);
    while progress == JobProgress::Running {
        if let Some(at) = timeout_at
            && tokio::time::Instant::now() >= at
        {
            let timeout = timeout.map(|(t, _)| t).unwrap_or_default();
            tracing::warn!(bigquery_job_id = %job_id, ?timeout, "timed out; cancelling the BigQuery job");
            app.warehouse.cancel_job(job_id).await?;
            return Ok(JobProgress::Failed {
                reason: "timeout".into(),
                message: format!(
                    "cancelled: the job ran longer than the table's timeout of {}",
                    humantime::format_duration(timeout)
                ),
                statistics: JobStatistics::default(),
            });
        }
        let mut next = tokio::time::Instant::now() + pause;
        if let Some(at) = timeout_at {
            next = next.min(at);
        }
        if next > deadline {
            return Err(ExecutorError::StillRunning(job_id.to_string()));
        }
        tokio::time::sleep_until(next).await;
        pause = (pause * 2).min(Duration::from_secs(10));
        progress = app.warehouse.job_progress(job_id).await?;
    }
    Ok(progress)
}

/// Tells the planner the attempt ended, then, if it failed, the alert channel: a slow webhook
/// does not hold up the run.
async fn report_and_alert(app: &App, job: &Job) -> Result<(), ExecutorError> {
    report(app, job).await?;
    if job.state == JobState::Failed {
        app.alerts.job_failed(job).await;
    }
    Ok(())
}

/// Tells the planner the attempt ended.
async fn report(app: &App, job: &Job) -> Result<(), ExecutorError> {
    app.topics
        .to_planner(&PlannerEvent::job_finished(job))
        .await?;
    Ok(())
}
