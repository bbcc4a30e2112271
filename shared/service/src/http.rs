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
        let mut response = (self.status, axum::Json(body)).into_response();
        // A 401 says how to authenticate (RFC 9110).
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A JSON request body, read so that whatever does not fit answers the API's error shape: not
/// JSON, the wrong type at a field (its path in `details.path`), an unknown field (request
/// types refuse them), a body over the route's limit.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_argument",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| {
                let status = e.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "too_large"
                } else {
                    "invalid_argument"
                };
                ApiError::new(
                    status,
                    code,
                    format!("the body cannot be read: {}", e.body_text()),
                )
            })?;
        from_json(&bytes).map(Body)
    }
}

/// `bytes` as a `T`, or a 400 that says where and what did not fit.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let mut unknown: Vec<String> = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let value: T = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        &mut deserializer,
        &mut note,
    ))
    .map_err(|e| {
        let path = e.path().to_string();
        does_not_fit(&path, e.inner())
    })?;
    deserializer.end().map_err(|e| does_not_fit(".", &e))?;
    if !unknown.is_empty() {
        let fields = unknown
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::bad_request(format!(
            "the body has {} unknown field{}: {fields}",
            unknown.len(),
            if unknown.len() == 1 { "" } else { "s" }
        ))
        .with_details(serde_json::json!({ "path": unknown[0], "unknown_fields": unknown })));
    }
    Ok(value)
}

fn does_not_fit(path: &str, error: &serde_json::Error) -> ApiError {
    let message = if path == "." || path.is_empty() {
        format!("the body does not fit: {error}")
    } else {
        format!("the body does not fit at `{path}`: {error}")
    };
    ApiError::bad_request(message).with_details(serde_json::json!({
        "path": path,
        "line": error.line(),
        "column": error.column(),
    }))
}

/// Any error answer that is not JSON yet (axum's own rejections of a path or a query, a
/// 404, a 405) in the API's error shape, its headers kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        s if s.is_server_error() => "internal",
        _ => "invalid_argument",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// What the API answers to a path it does not have.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// What the API answers to a method a path does not take.
pub async fn no_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// An id from a request's path, checked before any storage call: 400 when it cannot be one.
pub fn path_id(what: &str, id: &str) -> Result<(), ApiError> {
    baton_core::ids::validate_path_id(what, id).map_err(ApiError::bad_request)
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

#[cfg(test)]
mod body_tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Request {
        #[serde(default)]
        prune: bool,
        #[serde(default)]
        #[allow(dead_code)]
        tables: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn an_unknown_field_is_refused_naming_its_path() {
        let err = from_json::<Request>(br#"{"prnue": true}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("`prnue`"), "{}", err.message);
        let err = from_json::<Request>(br#"{"tables": [{"name": "a", "sq": 1}]}"#).unwrap_err();
        assert_eq!(err.details["path"], "tables.0.sq");
    }

    #[test]
    fn a_wrong_type_names_the_field_and_where_it_is() {
        let err = from_json::<Request>(b"{\n \"prune\": \"yes\"}").unwrap_err();
        assert_eq!(err.details["path"], "prune");
        assert_eq!(err.details["line"], 2);
        assert!(err.message.contains("at `prune`"), "{}", err.message);
        let err = from_json::<Request>(b"{} x").unwrap_err();
        assert!(err.message.contains("trailing"), "{}", err.message);
        assert!(from_json::<Request>(br#"{"prune": true}"#).unwrap().prune);
    }
}
