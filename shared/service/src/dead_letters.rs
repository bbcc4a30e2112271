//! The services' side of dead letters (`baton_core::dead_letters`): each push a service
//! refuses is recorded with its reason, and the planner's `/dead-letters` keeps what Pub/Sub
//! gave up on with the last reason recorded.

use std::collections::BTreeMap;

use base64::Engine;
use jiff::Timestamp;
use serde::Deserialize;
use tracing::Instrument;

use baton_core::dead_letters::{
    self, DEAD_LETTERS, DeadLetter, PUSH_FAILURES, PushFailure, SOURCE_DELIVERY_COUNT,
    SOURCE_PROJECT, SOURCE_PUBLISH_TIME, SOURCE_SUBSCRIPTION,
};
use baton_core::errors::Retryable;
use baton_core::ports::StoreError;
use baton_google::bus::Bus;
use baton_google::store::Store;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::PushOutcome;

/// What a refusal's record needs of a push: who delivered it, which delivery, its bytes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    message: Message,
    #[serde(default)]
    subscription: String,
    /// Present when the subscription has a dead-letter policy.
    #[serde(default)]
    delivery_attempt: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    message_id: String,
}

impl Delivery {
    fn decode(body: &[u8]) -> Result<(Self, Vec<u8>), String> {
        let delivery: Delivery = serde_json::from_slice(body)
            .map_err(|e| format!("not a Pub/Sub push envelope: {e}"))?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(delivery.message.data.as_deref().unwrap_or_default())
            .map_err(|e| format!("data is not base64: {e}"))?;
        Ok((delivery, data))
    }
}

/// Records why a service refuses pushes: a layer on its push routes (`/pubsub`,
/// `/storage`). Each answer that makes Pub/Sub deliver again is kept with its reason, which
/// the dead letter the message may become then carries.
#[derive(Debug, Clone)]
pub struct Refusals {
    store: Store,
    service: &'static str,
}

impl Refusals {
    pub fn new(store: Store, service: &'static str) -> Self {
        Self { store, service }
    }

    /// Records why the push `body` was refused. A record that cannot be written is logged;
    /// the refusal stands either way.
    pub async fn record(&self, body: &[u8], reason: &str) {
        let Ok((delivery, data)) = Delivery::decode(body) else {
            return;
        };
        let now = Timestamp::now();
        let failure = PushFailure {
            subscription: dead_letters::short_subscription(&delivery.subscription).to_string(),
            service: self.service.to_string(),
            attempt: delivery.delivery_attempt,
            error: reason.to_string(),
            at: now,
            expire_at: Some(now + dead_letters::KEEP_FAILURES),
        };
        let key = dead_letters::failure_key(&delivery.subscription, &data);
        if let Err(e) = self.store.set(None, PUSH_FAILURES, &key, &failure).await {
            tracing::warn!(error = %e, "the refusal could not be recorded");
        }
    }
}

/// The most of a refusal's answer kept as its reason.
const MAX_REASON_BYTES: usize = 4096;

/// The middleware: `post(handler).layer(from_fn_with_state(refusals, record_refusals))`.
pub async fn record_refusals(
    State(refusals): State<Refusals>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if response.status().is_success() {
        return response;
    }
    let (parts, answer) = response.into_parts();
    let answer = axum::body::to_bytes(answer, usize::MAX)
        .await
        .unwrap_or_default();
    let reason = String::from_utf8_lossy(&answer[..answer.len().min(MAX_REASON_BYTES)]);
    let reason = if reason.trim().is_empty() {
        format!("answered {}", parts.status)
    } else {
        reason.into_owned()
    };
    refusals.record(&bytes, &reason).await;
    Response::from_parts(parts, Body::from(answer))
}

/// Why a dead letter could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("its topic could not be found: {0}")]
    Bus(#[from] baton_core::ports::BusError),
}

impl Retryable for DeadLetterError {
    fn is_retryable(&self) -> bool {
        match self {
            DeadLetterError::Store(e) => e.is_retryable(),
            DeadLetterError::Bus(e) => e.is_retryable(),
        }
    }
}

/// Keeps the dead letter `body` pushed from the dead-letter topic's subscription. A repeat
/// of the push finds it kept and does nothing; a push that is not a dead letter is
/// acknowledged and logged.
pub async fn receive(store: &Store, bus: &Bus, body: &[u8]) -> PushOutcome {
    let (delivery, data) = match Delivery::decode(body) {
        Ok(decoded) => decoded,
        Err(reason) => {
            tracing::error!(%reason, "malformed dead letter acknowledged");
            return PushOutcome::Ignored(reason);
        }
    };
    let message = delivery.message;
    let Some(source) = message.attributes.get(SOURCE_SUBSCRIPTION).cloned() else {
        let reason = format!(
            "message {} is not a dead letter (no {SOURCE_SUBSCRIPTION})",
            message.message_id
        );
        tracing::error!(%reason, "acknowledged");
        return PushOutcome::Ignored(reason);
    };
    let span = tracing::info_span!("dead_letter", message_id = %message.message_id, %source);
    let result = async {
        if store
            .get::<DeadLetter>(None, DEAD_LETTERS, &message.message_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let subscription = dead_letters::short_subscription(&source);
        let project = message.attributes.get(SOURCE_PROJECT).map(String::as_str);
        let topic = bus.subscription_topic(project, subscription).await?;
        let last_error = store
            .get::<PushFailure>(
                None,
                PUSH_FAILURES,
                &dead_letters::failure_key(subscription, &data),
            )
            .await?;
        let attributes = dead_letters::original_attributes(message.attributes.clone());
        let (about, run_id) = dead_letters::about(&data, &attributes);
        let letter = DeadLetter {
            id: message.message_id.clone(),
            subscription: subscription.to_string(),
            topic,
            about,
            run_id,
            data: message.data.clone().unwrap_or_default(),
            payload: String::from_utf8_lossy(&data).into_owned(),
            attributes,
            delivery_attempts: message
                .attributes
                .get(SOURCE_DELIVERY_COUNT)
                .and_then(|n| n.parse().ok()),
            published_at: message
                .attributes
                .get(SOURCE_PUBLISH_TIME)
                .and_then(|t| t.parse().ok()),
            received_at: Timestamp::now(),
            last_error,
        };
        match store.create(None, DEAD_LETTERS, &letter.id, &letter).await {
            Ok(()) => {
                tracing::error!(
                    subscription = %letter.subscription,
                    about = %letter.about,
                    last_error = ?letter.last_error.as_ref().map(|f| &f.error),
                    "a message was dead-lettered; kept for `baton dead-letters`"
                );
                Ok(())
            }
            Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(DeadLetterError::Store(e)),
        }
    };
    PushOutcome::from_result(result.instrument(span).await)
}
