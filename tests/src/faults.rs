//! A BigQuery that fails on demand: a proxy in front of local-bigquery that passes every
//! request through and, for the jobs a test names, rewrites what BigQuery says of them. It
//! produces what no emulator can: a job that ends in `backendError`, a job that never ends or
//! runs for a while, a job that bills bytes.
//!
//! Everything else is the emulator's own answer: the job is really inserted, the tables are
//! really written, so the services under test see a BigQuery that behaves except where told.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// What becomes of a job the test names.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The job ends with this error (reason, message), as BigQuery reports a failed job.
    Fail { reason: String, message: String },
    /// The job is reported running for ever, or until its cancellation is asked for: then it
    /// is reported ended with BigQuery's `stopped`, as BigQuery ends a cancelled job.
    Hang,
    /// The job is reported running until then; after, as it is.
    RunningUntil(std::time::Instant),
    /// The job reports this many bytes billed (the emulator bills none); all else as it is.
    Bill { bytes: i64 },
    /// BigQuery's API answers 503 to inserting the job (an outage), and it is not inserted.
    Unavailable,
}

/// Chooses the fault for a job id, or none.
pub type Rule = Arc<dyn Fn(&str) -> Option<Fault> + Send + Sync>;

struct Inner {
    target: String,
    http: reqwest::Client,
    rule: Mutex<Option<Rule>>,
    cancelled: Mutex<Vec<String>>,
    inserted: Mutex<Vec<serde_json::Value>>,
    /// Every request, as `METHOD /path`.
    requests: Mutex<Vec<String>>,
}

/// The proxy: point `BIGQUERY_EMULATOR_HOST` at `url`.
#[derive(Clone)]
pub struct FaultyBigQuery {
    inner: Arc<Inner>,
    pub url: String,
}

impl std::fmt::Debug for FaultyBigQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyBigQuery")
            .field("url", &self.url)
            .finish()
    }
}

impl FaultyBigQuery {
    /// Starts a proxy on a loopback port in front of `target` (the emulator's base URL).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            rule: Mutex::new(None),
            cancelled: Mutex::new(Vec::new()),
            inserted: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let url = crate::serve_on_loopback(app).await?;
        Ok(Self { inner, url })
    }

    /// From now on, jobs are rewritten as `rule` says.
    pub fn rule(&self, rule: impl Fn(&str) -> Option<Fault> + Send + Sync + 'static) {
        *self.inner.rule.lock().expect("not poisoned") = Some(Arc::new(rule));
    }

    /// The job BigQuery accepted under `job_id`, as Baton sent it.
    pub fn inserted(&self, job_id: &str) -> Option<serde_json::Value> {
        self.inner
            .inserted
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|job| job["jobReference"]["jobId"] == job_id)
            .cloned()
    }

    /// The job ids BigQuery accepted more than one insert of (it answers a second insert of
    /// an id 409, so none, unless a job was started twice).
    pub fn inserted_more_than_once(&self) -> Vec<String> {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for job in self.inner.inserted.lock().expect("not poisoned").iter() {
            if let Some(id) = job["jobReference"]["jobId"].as_str() {
                *counts.entry(id.to_string()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, _)| id)
            .collect()
    }

    /// How many times BigQuery accepted an insert of the job `job_id` (not counting inserts
    /// it refused, such as a second insert of the id, or `Fault::Unavailable`'s).
    pub fn inserts_of(&self, job_id: &str) -> usize {
        self.inner
            .inserted
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|job| job["jobReference"]["jobId"] == job_id)
            .count()
    }

    /// The requests that named `job_id` in their path (`GET …/jobs/{id}`, `GET
    /// …/queries/{id}`, …), in order, as `METHOD /path`.
    pub fn requests_for(&self, job_id: &str) -> Vec<String> {
        self.inner
            .requests
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|r| r.ends_with(&format!("/{job_id}")))
            .cloned()
            .collect()
    }

    /// The ids of the jobs whose cancellation was asked for.
    pub fn cancelled(&self) -> Vec<String> {
        self.inner.cancelled.lock().expect("not poisoned").clone()
    }
}

/// `jobs.getQueryResults` (`…/queries/{job}?timeoutMs=…`) of a job the rule holds running:
/// answered as BigQuery does, once the job ends (passed on then) or the time asked is up
/// (`jobComplete: false`). `None` for any other request.
async fn wait_for_query(inner: &Inner, path: &str, query: &str) -> Option<Response> {
    let (_, job_id) = path.rsplit_once("/queries/")?;
    let rule = inner.rule.lock().expect("not poisoned").clone()?;
    let until = match rule(job_id)? {
        Fault::Hang => None,
        Fault::RunningUntil(until) => Some(until),
        _ => return None,
    };
    let timeout = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "timeoutMs")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map_or(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis,
        );
    let now = std::time::Instant::now();
    let answer_at = match until {
        Some(until) if until <= now => return None,
        Some(until) => until.min(now + timeout),
        None => now + timeout,
    };
    tokio::time::sleep_until(answer_at.into()).await;
    if until.is_some_and(|u| u <= std::time::Instant::now()) {
        // It ended while the request waited: BigQuery's answer, as it stands now.
        return None;
    }
    let answer = serde_json::json!({
        "kind": "bigquery#getQueryResultsResponse",
        "jobReference": { "jobId": job_id },
        "jobComplete": false,
    });
    Some(([("content-type", "application/json")], answer.to_string()).into_response())
}

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    match relay(&inner, request).await {
        Ok(response) => response,
        Err(e) => (StatusCode::BAD_GATEWAY, format!("proxy: {e:#}")).into_response(),
    }
}

async fn relay(inner: &Inner, request: Request) -> anyhow::Result<Response> {
    let method = request.method().clone();
    inner
        .requests
        .lock()
        .expect("not poisoned")
        .push(format!("{method} {}", request.uri().path()));
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let path = request.uri().path().to_string();
    if method == Method::POST && path.ends_with("/cancel") {
        let id = path.rsplit('/').nth(1).unwrap_or_default().to_string();
        inner.cancelled.lock().expect("not poisoned").push(id);
    }
    let query = request.uri().query().unwrap_or_default().to_string();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX).await?;
    if method == Method::GET
        && let Some(waited) = wait_for_query(inner, &path, &query).await
    {
        return Ok(waited);
    }
    // An insert is recorded once BigQuery has accepted it.
    let mut inserting = None;
    if method == Method::POST
        && path.ends_with("/jobs")
        && let Ok(job) = serde_json::from_slice::<serde_json::Value>(&body)
    {
        let rule = inner.rule.lock().expect("not poisoned").clone();
        let fault = job["jobReference"]["jobId"]
            .as_str()
            .zip(rule)
            .and_then(|(id, rule)| rule(id));
        if matches!(fault, Some(Fault::Unavailable)) {
            let message = "The service is currently unavailable.";
            let error = serde_json::json!({"error": {
                "code": 503,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": "backendError"}],
                "status": "UNAVAILABLE",
            }});
            return Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                error.to_string(),
            )
                .into_response());
        }
        inserting = Some(job);
    }
    let upstream = inner
        .http
        .request(method, format!("{}{path_and_query}", inner.target))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = upstream.status();
    let bytes = upstream.bytes().await?;
    if let Some(job) = inserting.filter(|_| status.is_success()) {
        inner.inserted.lock().expect("not poisoned").push(job);
    }
    let rule = inner.rule.lock().expect("not poisoned").clone();
    let rewritten = match (rule, serde_json::from_slice::<serde_json::Value>(&bytes)) {
        (Some(rule), Ok(mut job)) if path.contains("/jobs") && job.get("status").is_some() => {
            let fault = job["jobReference"]["jobId"]
                .as_str()
                .and_then(|id| rule(id));
            let id = job["jobReference"]["jobId"].as_str().unwrap_or_default();
            let cancelled = inner
                .cancelled
                .lock()
                .expect("not poisoned")
                .iter()
                .any(|c| c == id);
            let fault = match fault {
                Some(Fault::Hang | Fault::RunningUntil(_)) if cancelled => Some(Fault::Fail {
                    reason: "stopped".into(),
                    message: "Job execution was cancelled: User requested cancellation".into(),
                }),
                other => other,
            };
            match fault {
                Some(Fault::Fail { reason, message }) => {
                    let error = serde_json::json!({"reason": reason, "message": message});
                    job["status"] = serde_json::json!({
                        "state": "DONE", "errorResult": error, "errors": [error]
                    });
                    Some(job)
                }
                Some(Fault::Hang) => {
                    job["status"] = serde_json::json!({"state": "RUNNING"});
                    Some(job)
                }
                Some(Fault::RunningUntil(until)) if std::time::Instant::now() < until => {
                    job["status"] = serde_json::json!({"state": "RUNNING"});
                    Some(job)
                }
                Some(Fault::RunningUntil(_) | Fault::Unavailable) => None,
                Some(Fault::Bill { bytes }) => {
                    job["statistics"]["query"]["totalBytesBilled"] = bytes.to_string().into();
                    Some(job)
                }
                None => None,
            }
        }
        _ => None,
    };
    let body = match rewritten {
        Some(job) => Bytes::from(serde_json::to_vec(&job)?),
        None => bytes,
    };
    let status = StatusCode::from_u16(status.as_u16())?;
    Ok((status, [("content-type", "application/json")], body).into_response())
}
