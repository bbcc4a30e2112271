//! Load tables through the API: a signed URL to upload a file with, a force that loads what
//! waits, and what was loaded.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;

use baton_core::access::Principal;
use baton_core::catalog::{TableDoc, TableId, TableKind};
use baton_core::loads::{FileState, LoadStatus};
use baton_core::messages::ImporterTask;
use baton_core::ports::Publish;
use baton_service::api::{LoadForced, UploadUrl, UploadUrlRequest};
use baton_service::http::{ApiError, Body};

use crate::{App, people, store_error};

/// How long an upload URL works when the request says nothing.
const DEFAULT_UPLOAD_SECONDS: u64 = 15 * 60;

/// The load table `table` names, or 404/400 saying why not.
async fn load_table(app: &App, table: &str) -> Result<TableDoc, ApiError> {
    let id: TableId = table
        .parse()
        .map_err(|e: baton_core::catalog::InvalidName| ApiError::bad_request(e.0))?;
    let doc: Option<TableDoc> = app
        .store
        .get(None, baton_google::store::TABLES, &id.to_string())
        .await
        .map_err(store_error)?;
    match doc {
        None => Err(ApiError::not_found(format!("no table {id}"))),
        Some(doc) if doc.definition.kind != TableKind::Load || doc.definition.load.is_none() => {
            Err(ApiError::bad_request(format!(
                "{id} is a {} table, not a load table",
                serde_json::to_value(doc.definition.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )))
        }
        Some(doc) => Ok(doc),
    }
}

/// A member changes only their groups' load tables.
fn may_change(principal: &Principal, doc: &TableDoc, what: &str) -> Result<(), ApiError> {
    if principal.is_admin() {
        return Ok(());
    }
    let refused = principal.not_owned([(&doc.id, doc.definition.group.as_deref())]);
    people::not_theirs(principal, what, refused)
}

/// `A-z 0-9 . _ -`, the rest `_`: a name every tool can handle, kept readable.
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect()
}

pub(crate) async fn upload_url(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(table): Path<String>,
    Body(request): Body<UploadUrlRequest>,
) -> Result<Json<UploadUrl>, ApiError> {
    let doc = load_table(&app, &table).await?;
    may_change(&principal, &doc, "upload to")?;
    let spec = doc.definition.load.as_ref().expect("a load table's spec");
    let Some(bucket) = &app.config.landing_bucket else {
        return Err(ApiError::unavailable(
            "no landing bucket is configured (BATON_LANDING_BUCKET)",
        ));
    };
    let file_name = safe_file_name(&request.file_name);
    if file_name.trim_matches(['.', '_']).is_empty() {
        return Err(ApiError::bad_request(format!(
            "`{}` is not a file name",
            request.file_name
        )));
    }
    let seconds = request.expires_in_seconds.unwrap_or(DEFAULT_UPLOAD_SECONDS);
    if !(1..=baton_core::catalog::MAX_URL_EXPIRY_SECONDS as u64).contains(&seconds) {
        return Err(ApiError::bad_request(
            "`expires_in_seconds` is more than zero and at most 7 days (a V4 signed URL's longest)",
        ));
    }
    let now = Timestamp::now();
    // Each upload its own object: two uploads of one file name never replace each other.
    let object = format!(
        "{}{}-{:08x}-{file_name}",
        spec.prefix,
        now.strftime("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>()
    );
    let content_type = spec.format.content_type();
    let url = app
        .storage
        .signed_upload_url(bucket, &object, content_type, Duration::from_secs(seconds))
        .await
        .map_err(|e| ApiError::unavailable(format!("the upload URL could not be signed: {e}")))?;
    tracing::info!(table = %doc.id, object = %object, by = %principal.email, "upload URL signed");
    Ok(Json(UploadUrl {
        url,
        method: "PUT".into(),
        content_type: content_type.into(),
        object: format!("gs://{bucket}/{object}"),
        expires_at: now + Duration::from_secs(seconds),
    }))
}

pub(crate) async fn force(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    Path(table): Path<String>,
) -> Result<(StatusCode, Json<LoadForced>), ApiError> {
    let doc = load_table(&app, &table).await?;
    may_change(&principal, &doc, "load")?;
    let mut files = 0;
    for state in [FileState::Waiting, FileState::Held] {
        files += app
            .store
            .files_tally(&doc.id, state)
            .await
            .map_err(store_error)?
            .files;
    }
    app.topics
        .to_importer(&ImporterTask::Consider {
            table: doc.id.clone(),
            force: true,
            at: None,
        })
        .await
        .map_err(|e| {
            ApiError::unavailable(format!("the importer could not be told: {e}; try again"))
        })?;
    tracing::info!(table = %doc.id, files, by = %principal.email, "load forced");
    Ok((
        StatusCode::ACCEPTED,
        Json(LoadForced {
            table: doc.id,
            files,
        }),
    ))
}

pub(crate) async fn status(
    State(app): State<Arc<App>>,
    Path(table): Path<String>,
) -> Result<Json<LoadStatus>, ApiError> {
    let doc = load_table(&app, &table).await?;
    let spec = doc.definition.load.as_ref().expect("a load table's spec");
    // One snapshot: a batch ending between two of these reads would otherwise show its load
    // ended while its files were counted neither as batched nor as held or loaded.
    let id = &doc.id;
    let (waiting, held, batches, summary) = app
        .store
        .snapshot(|view| async move {
            Ok((
                view.waiting(id).await?,
                view.files_tally(id, FileState::Held).await?,
                view.open_batches(id).await?,
                view.load_summary(id).await?,
            ))
        })
        .await
        .map_err(store_error)?;
    let mut loading: Vec<_> = batches
        .iter()
        .map(baton_core::loads::Batch::record)
        .collect();
    loading.sort_by_key(|r| r.formed);
    Ok(Json(LoadStatus {
        table: doc.id.clone(),
        landing: format!(
            "gs://{}/{}",
            app.config
                .landing_bucket
                .as_deref()
                .unwrap_or("(no landing bucket)"),
            spec.prefix
        ),
        waiting_files: waiting.files,
        waiting_bytes: waiting.bytes,
        oldest_waiting: waiting.oldest,
        held_files: held.files,
        loading,
        summary,
    }))
}
