//! The API's wire types, shared by the `api` service and its clients (the `baton` CLI, tests).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dry_run::DryRunReport;
use baton_core::access::{AuditEntry, Role, TokenView, User};
use baton_core::catalog::apply::Change;
use baton_core::catalog::{CatalogSpec, Frequency, Problem, TableDoc, TableId, WriteMode};
use baton_core::connections::{ConnectionKind, ConnectionView};
use baton_core::costs::{CostRow, Dimension};
use baton_core::run::{Job, Run};

/// `POST /v1/catalog/apply`: the frequencies and tables to have.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplyRequest {
    pub catalog: CatalogSpec,
    /// Delete the stored tables and frequencies this request does not name.
    #[serde(default)]
    pub prune: bool,
    /// Say what would change, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplyResponse {
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// Every table of the resulting catalog with the tables it depends on.
    pub dependencies: BTreeMap<TableId, Vec<TableId>>,
    /// Accepted, but worth a look: SQL read leniently, tables no reading can see.
    #[serde(default)]
    pub warnings: Vec<Problem>,
}

/// `GET /v1/catalog`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CatalogResponse {
    pub frequencies: Vec<Frequency>,
    pub tables: Vec<TableDoc>,
}

/// `GET /v1/runs`: the latest runs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunsResponse {
    pub runs: Vec<Run>,
}

/// `GET /v1/runs/{id}`: a run and its jobs, by table.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResponse {
    pub run: Run,
    pub jobs: Vec<Job>,
}

/// Every error the API answers: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

/// `POST /v1/runs`: a run now, of a frequency or of chosen tables.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StartRunRequest {
    /// Run this frequency's tables (give this or `tables`).
    #[serde(default)]
    pub frequency: Option<String>,
    /// Run these tables (give this or `frequency`).
    #[serde(default)]
    pub tables: Vec<TableId>,
    /// With `tables`: run every table downstream of them too.
    #[serde(default)]
    pub downstream: bool,
    /// A retried request with the same key finds the run the first one created.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The answer to starting, resuming or cancelling a run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunChange {
    pub run: Run,
    /// Whether this request made the change (false: it was made before).
    pub changed: bool,
}

/// `POST /v1/backfills`: a frequency run over past instants, one after another.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackfillRequest {
    pub frequency: String,
    /// The first instant considered (included when it is one of the schedule's).
    pub from: jiff::Timestamp,
    /// The last instant considered (included).
    pub to: jiff::Timestamp,
    /// How many of its runs may be open at once (1, the default: one after another; at
    /// most 10). Each run keeps its frequency's concurrency cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
}

/// `GET /v1/costs?by=group&from=2026-11-01&to=2026-11-30`: what BigQuery jobs cost each day
/// (UTC, by the day they ended), by table, user, group or frequency.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostsResponse {
    pub by: Dimension,
    pub from: jiff::civil::Date,
    pub to: jiff::civil::Date,
    /// By day, the costliest first.
    pub rows: Vec<CostRow>,
}

/// `POST /v1/dry-run`: check SQL and estimate its bytes, as a stored table's job would run it
/// (`table`), or SQL not applied yet (`sql` with `dataset`, or with `table` for its settings).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DryRunRequest {
    #[serde(default)]
    pub table: Option<TableId>,
    #[serde(default)]
    pub sql: Option<String>,
    /// Where unqualified names in `sql` are (the table's dataset by default).
    #[serde(default)]
    pub dataset: Option<String>,
    /// How `sql` would be written (the table's mode, else truncate).
    #[serde(default)]
    pub write: Option<WriteMode>,
    /// The frequency whose latest instant sets `@run_time` and `@window_start` (the table's
    /// by default; now and NULL without one).
    #[serde(default)]
    pub frequency: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DryRunResponse {
    #[serde(default)]
    pub table: Option<TableId>,
    #[serde(flatten)]
    pub report: DryRunReport,
}

/// `PUT /v1/connections/{name}`: create or replace a connection. The secret is sealed before it
/// is stored and never given back.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PutConnectionRequest {
    pub kind: ConnectionKind,
    /// A Slack connection's webhook URL; a database's URL
    /// (`postgres://user:password@host:port/database?sslmode=require`).
    pub secret: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl std::fmt::Debug for PutConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutConnectionRequest")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/connections`: every connection, without secrets.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConnectionsResponse {
    pub connections: Vec<ConnectionView>,
}

/// `POST /v1/tokens`: an API token carrying the caller's rights.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreateTokenRequest {
    /// What it is for: `ci-deploy`.
    pub name: String,
    /// It stops working after this many days; never when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// `POST /v1/page-links`: a one-time link that signs a browser in to the operator's page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PageLinkRequest {
    /// The page it opens, a path under `/ui` (`/ui` unless told).
    #[serde(default)]
    pub to: Option<String>,
}

/// A page link: the API's path to open, with its one-time code, and when it stops working.
/// Opened once, it is spent.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PageLinkResponse {
    pub path: String,
    #[schemars(with = "jiff::Timestamp")]
    pub expires_at: jiff::Timestamp,
}

impl std::fmt::Debug for PageLinkResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLinkResponse")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The answer to creating a token: the token itself, shown this once.
#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenView,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/tokens`: the caller's tokens (an admin's: everyone's).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokensResponse {
    pub tokens: Vec<TokenView>,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UsersResponse {
    pub users: Vec<User>,
}

/// `PATCH /v1/users/{email}`: what to change of a user; what is absent stays.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The user's groups, all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<std::collections::BTreeSet<String>>,
    /// Groups to add the user to (beside what `groups` says).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_groups: Vec<String>,
    /// Groups to take the user out of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_groups: Vec<String>,
}

/// A group and its members.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupView {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub members: Vec<String>,
}

/// `GET /v1/groups`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupsResponse {
    pub groups: Vec<GroupView>,
}

/// `PUT /v1/groups/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PutGroupRequest {
    #[serde(default)]
    pub description: Option<String>,
}

/// `GET /v1/audit?limit=50&before=ID`: changes, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditResponse {
    pub entries: Vec<AuditEntry>,
}

/// `GET /v1/dead-letters?limit=100`: messages Pub/Sub gave up on, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeadLettersResponse {
    pub dead_letters: Vec<baton_core::dead_letters::DeadLetter>,
}

/// `POST /v1/dead-letters/{id}/replay`: the message published again.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Replayed {
    /// The dead letter's id (now dropped).
    pub id: String,
    /// The topic it went to.
    pub topic: String,
    /// The id of the message published.
    pub message_id: String,
}

/// One route of the API, as `GET /v1/routes` and the OpenAPI document list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RouteInfo {
    pub method: String,
    pub path: String,
    pub access: baton_core::access::Access,
    pub summary: String,
}

/// `POST /v1/loads/{table}/upload-url`: a URL to upload one file of a load table with.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadUrlRequest {
    /// The file's name, kept at the end of the object's (`payments-2026-12-01.csv`).
    pub file_name: String,
    /// How long the URL works, in seconds (15 minutes when absent; at most 7 days).
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
}

/// A V4 signed URL to `PUT` the file to, with the `Content-Type` it must send.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadUrl {
    pub url: String,
    pub method: String,
    pub content_type: String,
    /// `gs://bucket/prefix/…`: where the file lands.
    pub object: String,
    #[schemars(with = "String")]
    pub expires_at: jiff::Timestamp,
}

/// `POST /v1/loads/{table}/force`: the importer was asked to load what waits.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadForced {
    pub table: baton_core::catalog::TableId,
    /// Files waiting or held when it was asked (the importer may find more).
    pub files: usize,
}
