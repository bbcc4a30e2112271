//! Alerts: a message to Slack when a job fails (the executor) and when a run fails (the
//! planner), with the error and a pointer to the run.
//!
//! The webhook is a connection (`BATON_ALERT_CONNECTION`, default `alerts`, of kind `slack`);
//! without one, nothing is sent. Each alert is claimed by creating `alerts/{id}` (an id
//! that names the job's attempt or the run's resume) with an `exists: false` precondition,
//! so a redelivery or a second planner does not send it twice; the document then records how
//! the POST went. A sender that dies between its claim and its POST loses that alert (at
//! most once). Alerting never fails the work it reports on: its errors are logged.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::http::{Retries, host_of, post_json};
use baton_core::catalog::TableId;
use baton_core::config::{ConfigError, Env};
use baton_core::connections::{self, Connection, ConnectionKind};
use baton_core::ports::StoreError;
use baton_core::run::{Job, NotifyRecord, Run};
use baton_core::secrets::Sealer;
use baton_google::config::Gcp;
use baton_google::store::Store;

pub const COLLECTION: &str = "alerts";

/// What the services that alert read from the environment.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The connection alerts go to (`BATON_ALERT_CONNECTION`).
    pub connection: String,
    /// The deployment's key, to open the connection's secret (`BATON_ENCRYPTION_KEY`).
    pub sealer: Option<Sealer>,
    /// Where a person reads a run: `{run}` is replaced by its id (`BATON_RUN_URL`); the
    /// run's document in the Firestore console by default.
    pub run_url: String,
}

impl AlertConfig {
    pub fn from_env(env: &Env, gcp: &Gcp) -> Result<Self, ConfigError> {
        let sealer = Sealer::from_env(env)?;
        let database = match gcp.firestore_database.as_str() {
            "(default)" => "-default-",
            other => other,
        };
        let console = format!(
            "https://console.cloud.google.com/firestore/databases/{database}/data/panel/runs/\
             {{run}}?project={}",
            gcp.project
        );
        Ok(Self {
            connection: env.or("BATON_ALERT_CONNECTION", "alerts"),
            sealer,
            run_url: env.get("BATON_RUN_URL").unwrap_or(console),
        })
    }
}

/// How long an alert's claim is kept (Terraform's TTL policy on `alerts.expire_at` deletes it).
pub const KEEP_ALERTS: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

/// `alerts/{id}`: one alert, claimed before it is sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertDoc {
    pub id: String,
    /// `job_failed` or `run_failed`.
    pub kind: String,
    pub run_id: String,
    #[serde(default)]
    pub table: Option<TableId>,
    pub connection: String,
    pub text: String,
    #[serde(with = "baton_core::stamp::timestamp")]
    pub created_at: Timestamp,
    /// When Firestore's TTL policy deletes the claim: `KEEP_ALERTS` after it was made. A claim
    /// only has to outlive the redeliveries of its message, which Pub/Sub keeps 7 days at most.
    #[serde(with = "baton_core::stamp::optional_timestamp", default)]
    pub expire_at: Option<Timestamp>,
    /// How the POST went, once it has.
    #[serde(default)]
    pub delivery: Option<NotifyRecord>,
}

#[derive(Debug, Clone)]
pub struct Alerts {
    store: Store,
    http: reqwest::Client,
    config: AlertConfig,
}

/// The text of a failed job's alert (Slack's mrkdwn).
pub fn job_text(job: &Job, run_url: &str) -> String {
    let error = job.error.as_deref().unwrap_or("no error recorded");
    format!(
        ":x: Baton: *{}* failed in run `{}` (attempt {})\n```{}```\n<{}|Open the run>",
        job.table,
        job.run_id,
        job.attempt,
        truncate(error, 2_000),
        run_url.replace("{run}", &job.run_id),
    )
}

/// The text of a failed run's alert.
pub fn run_text(run: &Run, run_url: &str) -> String {
    let mut text = format!(":x: Baton: run `{}` failed", run.id);
    if let Some(summary) = &run.summary {
        let tables: Vec<String> = summary
            .failed_tables
            .iter()
            .map(ToString::to_string)
            .collect();
        text.push_str(&format!(
            ": {} failed ({}), {} skipped, {} succeeded",
            summary.failed,
            tables.join(", "),
            summary.skipped,
            summary.succeeded
        ));
    }
    text.push_str(&format!(
        "\n<{}|Open the run>",
        run_url.replace("{run}", &run.id)
    ));
    text
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

impl Alerts {
    pub fn new(store: Store, config: AlertConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("a reqwest client builds");
        Self {
            store,
            http,
            config,
        }
    }

    /// Tells the alert connection that `job` failed (once per attempt).
    pub async fn job_failed(&self, job: &Job) {
        let id = format!("{}.{}.{}", job.run_id, job.table, job.attempt);
        let text = job_text(job, &self.config.run_url);
        self.send(id, "job_failed", &job.run_id, Some(&job.table), text)
            .await;
    }

    /// Tells the alert connection that `run` failed (once per resume).
    pub async fn run_failed(&self, run: &Run) {
        let id = format!("{}.run.{}", run.id, run.resumes);
        let text = run_text(run, &self.config.run_url);
        self.send(id, "run_failed", &run.id, None, text).await;
    }

    async fn send(
        &self,
        id: String,
        kind: &str,
        run_id: &str,
        table: Option<&TableId>,
        text: String,
    ) {
        if let Err(e) = self.try_send(&id, kind, run_id, table, text).await {
            tracing::warn!(alert = %id, error = %e, "the alert was not sent");
        }
    }

    async fn try_send(
        &self,
        id: &str,
        kind: &str,
        run_id: &str,
        table: Option<&TableId>,
        text: String,
    ) -> Result<(), StoreError> {
        let name = &self.config.connection;
        let Some(connection) = self
            .store
            .get::<Connection>(None, connections::COLLECTION, name)
            .await?
        else {
            tracing::debug!(connection = %name, "no alert connection: alerts are not sent");
            return Ok(());
        };
        if connection.kind != ConnectionKind::Slack {
            tracing::warn!(connection = %name, "the alert connection is not a slack webhook");
            return Ok(());
        }
        let Some(sealer) = &self.config.sealer else {
            tracing::warn!(
                "BATON_ENCRYPTION_KEY is not set: the alert connection cannot be opened"
            );
            return Ok(());
        };
        let url = match sealer.open(&connection.secret, &connections::bound_to(name)) {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(connection = %name, error = %e, "the alert connection does not open");
                return Ok(());
            }
        };
        let mut doc = AlertDoc {
            id: id.to_string(),
            kind: kind.to_string(),
            run_id: run_id.to_string(),
            table: table.cloned(),
            connection: name.clone(),
            text,
            created_at: Timestamp::now(),
            expire_at: Some(Timestamp::now() + KEEP_ALERTS),
            delivery: None,
        };
        match self.store.create(None, COLLECTION, id, &doc).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists(_)) => {
                tracing::debug!(alert = %id, "sent already");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let body = serde_json::json!({ "text": doc.text });
        let retries = Retries {
            attempts: 3,
            backoff: std::time::Duration::from_secs(1),
            until: None,
        };
        let delivery = post_json(&self.http, &url, &body, retries).await;
        match &delivery.error {
            None => tracing::info!(alert = %id, host = %host_of(&url), "alert sent"),
            Some(e) => {
                tracing::warn!(alert = %id, host = %host_of(&url), error = %e, "the alert was refused")
            }
        }
        doc.delivery = Some(delivery);
        self.store.set(None, COLLECTION, id, &doc).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_cut_on_a_character() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 5), "hi");
    }
}
