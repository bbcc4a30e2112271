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
//!
//! `Executor` is all of this, written against the core's ports (runs, publishing, the
//! warehouse, blob storage, notices) with its decisions in `baton_core::attempt`; the
//! service wires it to Firestore, Pub/Sub, BigQuery, Cloud Storage, notify URLs and Slack,
//! and the planner's property test runs it on the in-memory model.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use baton_core::attempt::{self, Delivery};
use baton_core::catalog::{Extract, TableId, WriteMode};
use baton_core::config::{ConfigError, Env};
use baton_core::errors::Retryable;
use baton_core::ids::bigquery_job_id;
use baton_core::lifecycle::Outcome;
use baton_core::messages::{ExecutorTask, PlannerEvent};
use baton_core::ports::{
    BlobPort, BusError, Notices, Publish, RunPort, StorageError, StoreError, WarehousePort,
};
use baton_core::run::{ExtractFile, ExtractRecord, Job, JobStatistics, NotifyRecord};
use baton_core::state::JobState;
use baton_core::warehouse::{
    Destination, ExtractJob, JobProgress, QueryJob, TableShape, WarehouseError, columns,
};
use baton_core::writes::{self, Column};
use baton_google::bus::Topics;
use baton_google::config::Gcp;
use baton_google::storage::Storage;
use baton_google::store::Store;
use baton_google::warehouse::Warehouse;
use baton_service::alerts::{AlertConfig, Alerts};
use baton_service::config::Listen;
use baton_service::dead_letters::{Refusals, record_refusals};
use baton_service::http::{PushOutcome, Retries, decode_push, healthz, host_of, post_json};
use baton_service::oidc::Callers;
use baton_service::serial::Serial;
use baton_service::service::ServiceConfig;

/// The longest one wait on a query job lasts (`jobs.getQueryResults`' `timeoutMs`, BigQuery's
/// own default): at most six requests a minute for a long job, as the polling it replaced made
/// at its slowest, while the job's end is seen as soon as it comes.
const QUERY_WAIT: Duration = Duration::from_secs(10);

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
            signing_key: baton_google::config::signing_key(env)?,
            notify_attempts: env.parse_or("BATON_NOTIFY_ATTEMPTS", 5)?,
            notify_backoff: Duration::from_millis(env.parse_or("BATON_NOTIFY_BACKOFF_MS", 1000)?),
            callers: Callers::from_env(env)?,
        })
    }

    fn listen(&self) -> &Listen {
        &self.listen
    }
}

/// What the executor core needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long one delivery waits for its BigQuery job before handing over to the next.
    pub wait: Duration,
    /// Attempts a job gets unless its table says.
    pub max_attempts: u32,
    /// The pause before the second attempt, doubling after each.
    pub retry_backoff: Duration,
    /// The on-demand price of a TiB billed.
    pub price_per_tib: f64,
    /// Where extracts are written.
    pub extract_bucket: Option<String>,
    /// How long an extract's signed URLs work unless its table says.
    pub url_expiry: Duration,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Self {
            wait: config.wait,
            max_attempts: config.max_attempts,
            retry_backoff: config.retry_backoff,
            price_per_tib: config.price_per_tib,
            extract_bucket: config.extract_bucket.clone(),
            url_expiry: config.url_expiry,
        }
    }
}

/// Notify URLs (POSTed with retries until the delivery's deadline, only their host logged)
/// and the Slack connection.
#[derive(Debug)]
pub struct Told {
    http: reqwest::Client,
    alerts: Alerts,
    attempts: u32,
    backoff: Duration,
}

impl Notices for Told {
    async fn notify(
        &self,
        url: &str,
        body: &serde_json::Value,
        until: std::time::Instant,
    ) -> NotifyRecord {
        let retries = Retries {
            attempts: self.attempts,
            backoff: self.backoff,
            until: Some(until.into()),
        };
        let record = post_json(&self.http, url, body, retries).await;
        let host = host_of(url);
        match &record.error {
            None => tracing::info!(%host, attempts = record.attempts, "notified"),
            Some(e) => {
                tracing::warn!(%host, attempts = record.attempts, error = %e, "the notify URL was not told");
            }
        }
        record
    }

    async fn job_failed(&self, job: &Job) {
        self.alerts.job_failed(job).await;
    }
}

/// The executor as it runs in production.
pub type Production = Executor<Store, Topics, Warehouse, Storage, Told>;

#[derive(Debug)]
pub struct App {
    executor: Production,
    /// Duplicate deliveries of one attempt that reach this process run one after the other.
    serial: Serial,
}

impl App {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.gcp).await?;
        let told = Told {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .build()?,
            alerts: Alerts::new(store.clone(), config.alerts.clone()),
            attempts: config.notify_attempts,
            backoff: config.notify_backoff,
        };
        let executor = Executor::new(
            store,
            Topics::new(&config.gcp)?,
            Warehouse::new(&config.gcp).await?,
            Storage::new(
                &config.gcp,
                config.signing_key.as_ref().map(|k| k.expose_secret()),
            )?,
            told,
            Settings::from(&config),
        );
        Ok(Self {
            executor,
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
    let refusals = Refusals::new(app.executor.runs.clone(), "executor");
    Router::new()
        .route(
            "/pubsub",
            post(pubsub).layer(from_fn_with_state(refusals, record_refusals)),
        )
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
    let result = async {
        match &push.body {
            ExecutorTask::RunQuery { .. } => {
                let _turn = app
                    .serial
                    .lock(&format!("{run_id}/{table}#{attempt}"))
                    .await;
                app.executor.run(run_id, table, attempt).await
            }
            ExecutorTask::Cancel { .. } => app.executor.cancel(run_id, table, attempt).await,
        }
    }
    .instrument(span)
    .await;
    PushOutcome::from_result(result)
}

/// The executor's core: one attempt of one job, against its ports.
#[derive(Debug)]
pub struct Executor<R, P, W, B, N> {
    pub runs: R,
    pub publish: P,
    pub warehouse: W,
    pub blobs: B,
    pub notices: N,
    pub settings: Settings,
    /// Datasets known to exist, so that each is checked once per process.
    datasets: Mutex<HashSet<String>>,
}

impl<R, P, W, B, N> Executor<R, P, W, B, N>
where
    R: RunPort,
    P: Publish,
    W: WarehousePort,
    B: BlobPort,
    N: Notices,
{
    pub fn new(
        runs: R,
        publish: P,
        warehouse: W,
        blobs: B,
        notices: N,
        settings: Settings,
    ) -> Self {
        Self {
            runs,
            publish,
            warehouse,
            blobs,
            notices,
            settings,
            datasets: Mutex::new(HashSet::new()),
        }
    }

    /// Runs (or attaches to, or reports) one attempt of one job.
    pub async fn run(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), ExecutorError> {
        // This delivery hands over to the next one past here (a job, then its extract).
        let deadline = tokio::time::Instant::now() + self.settings.wait;
        let Some(job) = self.runs.job(run_id, table).await? else {
            return Err(ExecutorError::no_job(run_id, table));
        };
        let job = match attempt::delivery(&job, attempt) {
            // A crash may have come between recording the retry and sending it.
            Delivery::ResendNext => return self.send_attempt(&job).await,
            Delivery::Stale(reason) => return Err(ExecutorError::Stale(reason)),
            // The planner may not have heard, nor the alert channel (a delivery that died
            // after its write); the alert's claim keeps it to one.
            Delivery::Report => return self.report_and_alert(&job).await,
            Delivery::Attach => job,
            Delivery::Start => {
                self.wait_for_retry_time(&job).await;
                let id = bigquery_job_id(run_id, table, attempt);
                self.runs
                    .start(run_id, table, attempt, &id, Timestamp::now())
                    .await?
                    .ok_or_else(|| ExecutorError::no_job(run_id, table))?
            }
        };
        if job.state != JobState::Running {
            return self.report_and_alert(&job).await;
        }
        let job_id = job
            .bigquery_job_id
            .clone()
            .expect("a running job has its BigQuery job id");
        // From here the job is running: an error that another delivery cannot cure ends it as
        // failed, with the error on it, rather than leaving it running for ever.
        let progress = match self.run_query(&job, &job_id).await {
            Ok(progress) => progress,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => JobProgress::Failed {
                reason: "refused".into(),
                message: e.to_string(),
                statistics: JobStatistics::default(),
            },
        };
        let limit = attempt::timeout(&job).zip(job.started_at);
        let progress = match self.wait(&job_id, progress, deadline, limit, true).await {
            Err(ExecutorError::StillRunning(id)) => {
                // Handed over to Pub/Sub's next delivery: the job moves, and the tick's sweep
                // need not send it while the deliveries go on.
                let until = Timestamp::now() + baton_core::sweep::RUNNING_WATCH;
                self.runs.watch_job(run_id, table, attempt, until).await?;
                return Err(ExecutorError::StillRunning(id));
            }
            waited => waited?,
        };
        let outcome = match progress {
            JobProgress::Succeeded(statistics) => {
                self.succeeded(&job, &job_id, statistics, deadline).await?
            }
            JobProgress::Failed {
                reason,
                message,
                statistics,
            } => {
                tracing::warn!(%reason, %message, "BigQuery job failed");
                let settings = &self.settings;
                let error = format!("{reason}: {message}");
                if let Some(backoff) = attempt::retry_after(
                    &job,
                    attempt,
                    &reason,
                    &message,
                    settings.max_attempts,
                    settings.retry_backoff,
                ) {
                    let backoff = SignedDuration::try_from(backoff).unwrap_or_default();
                    tracing::warn!(
                        next_attempt = attempt + 1,
                        ?backoff,
                        "transient failure; retrying"
                    );
                    if let Some(next) = self
                        .runs
                        .retry(run_id, table, attempt, &error, backoff, Timestamp::now())
                        .await?
                    {
                        self.send_attempt(&next).await?;
                    }
                    return Ok(());
                }
                Outcome::Failed {
                    error,
                    statistics: statistics.priced(settings.price_per_tib),
                }
            }
            JobProgress::Running => unreachable!("wait returns only ended jobs"),
        };
        let finished = self
            .runs
            .finish(run_id, table, attempt, &outcome, Timestamp::now())
            .await?
            .ok_or_else(|| ExecutorError::no_job(run_id, table))?;
        self.report_and_alert(&finished).await
    }

    /// After the query job succeeded: the table's expiration renewed, its rows counted, its
    /// extract written; how the attempt ended.
    async fn succeeded(
        &self,
        job: &Job,
        job_id: &str,
        statistics: JobStatistics,
        deadline: tokio::time::Instant,
    ) -> Result<Outcome, ExecutorError> {
        let table = &job.table;
        let mut renewed = None;
        if let Some(seconds) = job.definition.options.expiration_seconds {
            // The rows are written: a refusal to renew the expiration is logged, not a
            // reason to leave the job running for ever; a transient one is retried.
            let at = Timestamp::now() + SignedDuration::from_secs(seconds);
            match self.warehouse.set_expiration(table, at).await {
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => tracing::warn!(error = %e, "the table's expiration was not renewed"),
                Ok(rows) => renewed = Some(rows),
            }
        }
        // The renewal read the table already; otherwise read it for its row count.
        let destination_rows = match renewed {
            Some(rows) => rows,
            None => self.warehouse.row_count(table).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "row count unavailable");
                None
            }),
        };
        let statistics = JobStatistics {
            destination_rows,
            ..statistics
        }
        .priced(self.settings.price_per_tib);
        Ok(match &job.definition.options.extract {
            None => Outcome::Succeeded {
                statistics,
                extract: None,
            },
            Some(spec) => match self.extract(job, job_id, spec, deadline).await? {
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
        })
    }

    /// Stops an attempt's BigQuery job (its run was cancelled). The delivery that runs the
    /// job sees it end and records it cancelled.
    pub async fn cancel(
        &self,
        run_id: &str,
        table: &TableId,
        attempt: u32,
    ) -> Result<(), ExecutorError> {
        let Some(job) = self.runs.job(run_id, table).await? else {
            return Err(ExecutorError::no_job(run_id, table));
        };
        match (&job.bigquery_job_id, job.state) {
            (Some(id), JobState::Running) if job.attempt == attempt => {
                tracing::info!(bigquery_job_id = %id, "cancelling the BigQuery job");
                self.warehouse.cancel_job(id).await?;
                Ok(())
            }
            _ => Err(ExecutorError::Stale(format!(
                "{table} attempt {attempt} is not running"
            ))),
        }
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

    async fn send_attempt(&self, job: &Job) -> Result<(), ExecutorError> {
        self.publish
            .to_executor(&ExecutorTask::run_query(job))
            .await?;
        Ok(())
    }

    /// Starts the attempt's BigQuery job, or finds it started by an earlier delivery.
    async fn run_query(&self, job: &Job, job_id: &str) -> Result<JobProgress, WarehouseError> {
        let by_statement = job.definition.write_mode.writes_by_statement();
        if by_statement {
            // Preparing a statement costs a dry run and a table read: a redelivery whose job
            // is there already skips it. A plain query job needs no look first: inserting its
            // id again answers 409, and `start_query` attaches to the job.
            match self.warehouse.job_progress(job_id).await {
                Ok(progress) => return Ok(progress),
                Err(WarehouseError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let dataset = job.table.dataset();
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
        let definition = &job.definition;
        let options = &definition.options;
        let timestamps = attempt::timestamps(job)?;
        let statement = if by_statement {
            Some(self.prepare(job, &timestamps).await?)
        } else {
            None
        };
        let destination = statement.is_none().then_some(Destination {
            table: &job.table,
            append: definition.write_mode == WriteMode::Append,
            partitioning: options.partitioning.as_ref(),
            clustering: &options.clustering,
        });
        self.warehouse
            .start_query(&QueryJob {
                job_id,
                sql: statement.as_deref().unwrap_or(&definition.sql),
                default_dataset: dataset,
                destination,
                labels: attempt::labels(job),
                timestamps,
                max_bytes_billed: options.max_bytes_billed,
                timeout: attempt::timeout(job),
            })
            .await
    }

    /// For the write modes that write through a statement of Baton's own (merge,
    /// insert_unique, overwrite_partitions): makes sure the table exists with the result's
    /// columns (creating it, or adding the new ones), and returns the statement.
    async fn prepare(
        &self,
        job: &Job,
        timestamps: &[(String, Option<Timestamp>)],
    ) -> Result<String, WarehouseError> {
        let definition = &job.definition;
        let query = baton_core::sql::single_query(&definition.sql)
            .map_err(|e| WarehouseError::Invalid(e.to_string()))?;
        let dry_run = self
            .warehouse
            .dry_run(query, job.table.dataset(), timestamps)
            .await?;
        let result = columns(&dry_run.schema);
        match self.warehouse.schema(&job.table).await? {
            None => {
                let shape = TableShape {
                    partitioning: definition.options.partitioning.as_ref(),
                    clustering: &definition.options.clustering,
                };
                self.warehouse
                    .create_table(&job.table, &dry_run.schema, shape)
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
                    self.warehouse
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

    /// Writes the table to Cloud Storage after its job succeeded, signs a URL for each file
    /// and tells the notify URL. Each extract job's id follows from the query job's and a
    /// number: a redelivery attaches to the extract already started and moves to the next
    /// number only past one that failed transiently, so a table is extracted once per
    /// attempt. `Ok(Err(reason))` fails the job; `Err` hands over to the next delivery.
    async fn extract(
        &self,
        job: &Job,
        query_job_id: &str,
        spec: &Extract,
        deadline: tokio::time::Instant,
    ) -> Result<Result<ExtractRecord, String>, ExecutorError> {
        let Some(bucket) = self.settings.extract_bucket.as_deref() else {
            return Ok(Err(
                "no bucket to write it to: set BATON_EXTRACT_BUCKET on the executor".into(),
            ));
        };
        let table = &job.table;
        let (prefix, uri) = attempt::extract_place(job, bucket, spec);
        let mut number = 1;
        let extract_job_id = loop {
            let id = attempt::extract_job_id(query_job_id, number);
            let started = self
                .warehouse
                .start_extract(&ExtractJob {
                    job_id: &id,
                    table,
                    uri: &uri,
                    format: spec.format,
                    compression: spec.compression.as_deref(),
                    labels: attempt::labels(job),
                })
                .await;
            let progress = match started {
                Ok(progress) => progress,
                Err(e) if e.is_retryable() => return Err(e.into()),
                Err(e) => return Ok(Err(e.to_string())),
            };
            match self.wait(&id, progress, deadline, None, false).await? {
                JobProgress::Succeeded(_) => break id,
                JobProgress::Failed {
                    reason, message, ..
                } => match attempt::retry_after(
                    job,
                    number,
                    &reason,
                    &message,
                    self.settings.max_attempts,
                    Duration::ZERO,
                ) {
                    Some(_) => {
                        tracing::warn!(%reason, %message, extract = number, "the extract failed; trying again");
                        number += 1;
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        tokio::time::sleep(self.settings.retry_backoff.min(left)).await;
                    }
                    None => return Ok(Err(format!("{reason}: {message}"))),
                },
                JobProgress::Running => unreachable!("wait returns only ended jobs"),
            }
        };
        let objects = match self.blobs.list(bucket, &prefix).await {
            Ok(objects) => objects,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let expiry = spec
            .url_expiry_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.url_expiry, Duration::from_secs);
        let urls_expire_at =
            Timestamp::now() + SignedDuration::try_from(expiry).unwrap_or_default();
        let mut files = Vec::with_capacity(objects.len());
        for object in objects {
            let url = match self.blobs.signed_url(bucket, &object.name, expiry).await {
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
                let schema = self.warehouse.schema(table).await?.unwrap_or_default();
                let body = serde_json::json!({
                    "dataset": table.dataset(),
                    "table": table.table(),
                    "run": job.run_id,
                    "urls": files.iter().map(|f| &f.url).collect::<Vec<_>>(),
                    "schema": schema,
                    "format": spec.format,
                    "expires_at": urls_expire_at,
                });
                // Past the delivery's deadline Pub/Sub would deliver again and the URL be
                // told twice.
                Some(self.notices.notify(url, &body, deadline.into_std()).await)
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

    /// Waits for a running BigQuery job to end, or this delivery's time to be up
    /// (`deadline`). A query job is waited on (`WarehousePort::wait_for_query`: BigQuery
    /// answers as soon as it ends, at most [`QUERY_WAIT`] later), so its end is seen at once;
    /// other jobs are polled, every 0.5 s doubling to 10 s. A job that outlives a `timeout`
    /// (counted from the given start, across deliveries) is cancelled and fails.
    async fn wait(
        &self,
        job_id: &str,
        mut progress: JobProgress,
        deadline: tokio::time::Instant,
        timeout: Option<(Duration, Timestamp)>,
        query: bool,
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
                self.warehouse.cancel_job(job_id).await?;
                return Ok(JobProgress::Failed {
                    reason: "timeout".into(),
                    message: format!(
                        "cancelled: the job ran longer than the table's timeout of {}",
                        humantime::format_duration(timeout)
                    ),
                    statistics: JobStatistics::default(),
                });
            }
            let now = tokio::time::Instant::now();
            if query {
                let until = timeout_at.map_or(deadline, |at| at.min(deadline));
                if now >= deadline {
                    return Err(ExecutorError::StillRunning(job_id.to_string()));
                }
                let wait = until.saturating_duration_since(now).min(QUERY_WAIT);
                if wait.is_zero() {
                    continue;
                }
                progress = self.warehouse.wait_for_query(job_id, wait).await?;
                if progress == JobProgress::Running && now.elapsed() < wait / 2 {
                    // Answered before the job ended and before the time asked: a warehouse
                    // that cannot wait. Poll it, as other jobs are.
                    tokio::time::sleep(pause.min(until.saturating_duration_since(now))).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                continue;
            }
            let mut next = now + pause;
            if let Some(at) = timeout_at {
                next = next.min(at);
            }
            if next > deadline {
                return Err(ExecutorError::StillRunning(job_id.to_string()));
            }
            tokio::time::sleep_until(next).await;
            pause = (pause * 2).min(Duration::from_secs(10));
            progress = self.warehouse.job_progress(job_id).await?;
        }
        Ok(progress)
    }

    /// Tells the planner the attempt ended, then, if it failed, the alert channel: a slow
    /// webhook does not hold up the run.
    async fn report_and_alert(&self, job: &Job) -> Result<(), ExecutorError> {
        self.publish
            .to_planner(&PlannerEvent::job_finished(job))
            .await?;
        if job.state == JobState::Failed {
            self.notices.job_failed(job).await;
        }
        Ok(())
    }
}
