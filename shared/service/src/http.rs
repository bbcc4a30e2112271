//! HTTP helpers every service uses: serving with a graceful stop, JSON errors, Pub/Sub push
//! deliveries, and POSTs to URLs users give (notify URLs, webhooks) with retries.
//!
//! Pub/Sub push reads the answer's status: 2xx acknowledges, anything else redelivers. So a
//! handler's outcome maps once, here: done or ignored (malformed, stale, permanent failure
//! already recorded) → 204; retryable → 503.

use std::collections::HashMap;
use std::fmt;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use baton_core::errors::Retryable;

use crate::config::Listen;

/// Binds, logs `listening` with the bound address (so a port of 0 can be found), and serves
/// until SIGTERM or Ctrl-C, letting requests in flight finish.
pub async fn serve(router: Router, listen: &Listen) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind((listen.host, listen.port)).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal(listen.stop_on_stdin_eof))
        .await
}

async fn shutdown_signal(stop_on_stdin_eof: bool) {
    let stdin_closed = async {
        if !stop_on_stdin_eof {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 64];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stdin, &mut buffer).await {
            if n == 0 {
                break;
            }
        }
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
        () = stdin_closed => {},
    }
    tracing::info!("stopping");
}

/// How to POST to a URL a user gave: how many tries, the pause before the second, doubling
/// after each (at most a minute), and when to give up whatever is left.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub attempts: u32,
    pub backoff: std::time::Duration,
    pub until: Option<tokio::time::Instant>,
}

/// POSTs `body` as JSON to `url`, trying again after no answer, a 429 or a 5xx, and records
/// how it went. Such URLs often carry a token: nothing here logs or records the URL, and a
/// failure is described without it (reqwest's errors name the URL).
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    retries: Retries,
) -> baton_core::run::NotifyRecord {
    use backon::Retryable as _;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let post = || async {
        let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let mut request = http.post(url).json(body);
        if let Some(until) = retries.until {
            request = request.timeout(until.saturating_duration_since(tokio::time::Instant::now()));
        }
        let (status, response, error) = match request.send().await {
            Ok(answer) => {
                let status = answer.status();
                let text = answer.text().await.unwrap_or_default();
                let text: String = text.chars().take(1000).collect();
                let error = (!status.is_success()).then(|| format!("answered {status}"));
                (Some(status), text, error)
            }
            Err(e) => (None, String::new(), Some(request_failure(&e))),
        };
        let again = status.is_none_or(|s| s.is_server_error() || s.as_u16() == 429);
        let record = baton_core::run::NotifyRecord {
            status: status.map(|s| s.as_u16()),
            response,
            attempts: attempt,
            error,
            at: jiff::Timestamp::now(),
        };
        match &record.error {
            Some(_) if again => Err(record),
            _ => Ok(record),
        }
    };
    // The pause doubles from `backoff` up to a minute; no pause outlasts what is left before
    // `until`.
    let pauses = backon::ExponentialBuilder::default()
        .with_min_delay(retries.backoff)
        .with_max_delay(std::time::Duration::from_secs(60))
        .with_max_times(retries.attempts.max(1) as usize - 1)
        .with_total_delay(
            retries
                .until
                .map(|until| until.saturating_duration_since(tokio::time::Instant::now())),
        );
    let posted = post
        .retry(pauses)
        .sleep(tokio::time::sleep)
        .notify(|record: &baton_core::run::NotifyRecord, _| {
            tracing::warn!(attempts = record.attempts, error = ?record.error, "a POST failed; trying again");
        })
        .await;
    posted.unwrap_or_else(|record| record)
}

/// What went wrong with a request, without its URL.
fn request_failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// The host of a URL, to log instead of the URL.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// An API error, answered as `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = serde_json::json!({
            "error": {"code": self.code, "message": self.message, "details": self.details}
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// One Pub/Sub push delivery, its payload decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Push<T> {
    pub message_id: String,
    pub attributes: HashMap<String, String>,
    pub body: T,
}

#[derive(Deserialize)]
struct Envelope {
    message: EnvelopeMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeMessage {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    /// Pub/Sub also sends `message_id`, the same value: the camelCase one is read.
    #[serde(default)]
    message_id: String,
}

/// Decodes a push request's body: the envelope, the base64 data, the JSON payload. The error
/// says what was wrong, for the log line that acknowledges the bad message.
pub fn decode_push<T: DeserializeOwned>(body: &[u8]) -> Result<Push<T>, String> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| format!("not a Pub/Sub push envelope: {e}"))?;
    let message = envelope.message;
    let data = message
        .data
        .ok_or_else(|| format!("message {} has no data", message.message_id))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| format!("message {}: data is not base64: {e}", message.message_id))?;
    let body = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "message {}: payload is not what this service takes: {e}",
            message.message_id
        )
    })?;
    Ok(Push {
        message_id: message.message_id,
        attributes: message.attributes,
        body,
    })
}

/// How a push delivery ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Handled: acknowledge.
    Done,
    /// Nothing to do, and never will be (malformed, stale, already handled): acknowledge.
    Ignored(String),
    /// Failed in a way that may pass: redeliver.
    Retry(String),
}

impl PushOutcome {
    /// Done, or the error as retry or (logged and) ignored.
    pub fn from_result<E: Retryable + fmt::Display>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => PushOutcome::Done,
            Err(e) if e.is_retryable() => PushOutcome::Retry(e.to_string()),
            Err(e) => PushOutcome::Ignored(e.to_string()),
        }
    }
}

impl IntoResponse for PushOutcome {
    fn into_response(self) -> Response {
        match self {
            PushOutcome::Done => StatusCode::NO_CONTENT.into_response(),
            PushOutcome::Ignored(reason) => {
                tracing::warn!(%reason, "message acknowledged without effect");
                StatusCode::NO_CONTENT.into_response()
            }
            PushOutcome::Retry(reason) => {
                tracing::warn!(%reason, "message to be redelivered");
                (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
            }
        }
    }
}

/// A liveness answer for `/healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(data: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "message": {"data": data, "attributes": {"k": "v"}, "messageId": "42",
                        "message_id": "42", "publishTime": "2026-11-22T00:00:00Z",
                        "publish_time": "2026-11-22T00:00:00Z"},
            "subscription": "projects/p/subscriptions/s"
        }))
        .unwrap()
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Payload {
        n: u32,
    }

    #[test]
    fn a_push_is_decoded_down_to_its_payload() {
        let data = base64::engine::general_purpose::STANDARD.encode(br#"{"n": 7}"#);
        let push: Push<Payload> = decode_push(&envelope(&data)).unwrap();
        assert_eq!(push.message_id, "42");
        assert_eq!(push.body, Payload { n: 7 });
        assert_eq!(push.attributes["k"], "v");
    }

    #[test]
    fn malformed_pushes_say_what_was_wrong() {
        assert!(
            decode_push::<Payload>(b"nope")
                .unwrap_err()
                .contains("envelope")
        );
        assert!(
            decode_push::<Payload>(&envelope("%%%"))
                .unwrap_err()
                .contains("not base64")
        );
        let data = base64::engine::general_purpose::STANDARD.encode(br#"{"m": 1}"#);
        assert!(
            decode_push::<Payload>(&envelope(&data))
                .unwrap_err()
                .contains("message 42: payload")
        );
    }

    struct E(bool);
    impl Retryable for E {
        fn is_retryable(&self) -> bool {
            self.0
        }
    }
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "e{}", self.0)
        }
    }

    #[test]
    fn outcomes_ack_or_redeliver() {
        assert_eq!(PushOutcome::from_result::<E>(Ok(())), PushOutcome::Done);
        let retry = PushOutcome::from_result(Err(E(true)));
        assert_eq!(
            retry.clone().into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let ignored = PushOutcome::from_result(Err(E(false)));
        assert_eq!(ignored, PushOutcome::Ignored("efalse".into()));
        assert_eq!(ignored.into_response().status(), StatusCode::NO_CONTENT);
    }
}
