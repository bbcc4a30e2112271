//! The API's wire types, shared by the `api` service and its clients (the `baton` CLI, tests).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::apply::Change;
use crate::catalog::{CatalogSpec, Frequency, Problem, TableDoc, TableId};
use crate::run::{Job, Run};

/// `POST /v1/catalog/apply`: the frequencies and tables to have.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyRequest {
    #[serde(flatten)]
    pub catalog: CatalogSpec,
    /// Delete the stored tables and frequencies this request does not name.
    #[serde(default)]
    pub prune: bool,
    /// Say what would change, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogResponse {
    pub frequencies: Vec<Frequency>,
    pub tables: Vec<TableDoc>,
}

/// `GET /v1/runs`: the latest runs, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunsResponse {
    pub runs: Vec<Run>,
}

/// `GET /v1/runs/{id}`: a run and its jobs, by table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResponse {
    pub run: Run,
    pub jobs: Vec<Job>,
}

/// Every error the API answers: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}
