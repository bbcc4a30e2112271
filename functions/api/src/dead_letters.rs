//! Dead letters through the API (`baton_core::dead_letters`): the messages Pub/Sub gave up
//! on, listed; each replayed (published again, as it was, to the topic it came from) or
//! dropped by an admin, in the audit trail either way.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use baton_core::access::{self, Principal};
use baton_core::dead_letters::{DEAD_LETTERS, DeadLetter};
use baton_service::api::{DeadLettersResponse, Replayed};
use baton_service::http::{ApiError, path_id};

use crate::{App, people, store_error};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLettersQuery {
    /// At most this many (1–1000; 100 unless told).
    limit: Option<u32>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    Query(query): Query<DeadLettersQuery>,
) -> Result<Json<DeadLettersResponse>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let dead_letters = app.store.dead_letters(limit).await.map_err(store_error)?;
    Ok(Json(DeadLettersResponse { dead_letters }))
}

/// The dead letter `id`, or 404.
async fn dead_letter(app: &App, id: &str) -> Result<DeadLetter, ApiError> {
    path_id("dead letter", id)?;
    app.store
        .get(None, DEAD_LETTERS, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {id}")))
}

/// Publishes the message again, then drops the dead letter. Every message Baton sends is safe
/// to deliver twice, so a replay that is repeated (its answer lost) does no harm; one that
/// fails again comes back as a new dead letter.
pub async fn replay(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    let letter = dead_letter(&app, &id).await?;
    let message_id = app
        .topics
        .bus
        .publish_raw(&letter.topic, &letter.data, &letter.attributes)
        .await
        .map_err(|e| {
            ApiError::unavailable(format!("{} could not be published to: {e}", letter.topic))
        })?;
    let entry = people::entry(
        &principal,
        "dead_letter.replay",
        &id,
        Some(access::digest(&letter)),
        None,
        serde_json::json!({"about": letter.about, "topic": letter.topic, "message_id": message_id}),
    );
    app.store
        .change_audited::<DeadLetter>(DEAD_LETTERS, &id, None, &entry)
        .await
        .map_err(store_error)?;
    Ok(Json(Replayed {
        id,
        topic: letter.topic,
        message_id,
    }))
}

/// Drops the dead letter: its message is not delivered.
pub async fn drop(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let letter = dead_letter(&app, &id).await?;
    let entry = people::entry(
        &principal,
        "dead_letter.drop",
        &id,
        Some(access::digest(&letter)),
        None,
        serde_json::json!({"about": letter.about, "topic": letter.topic}),
    );
    app.store
        .change_audited::<DeadLetter>(DEAD_LETTERS, &id, None, &entry)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}
