//! The warehouse as the executor sees it, in Baton's terms: the jobs it asks BigQuery for, how
//! a job stands, the columns of a result or a table, and how a request can fail. The BigQuery
//! adapter (`baton_google::warehouse`) translates these to BigQuery's API and back.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::{FileFormat, Partitioning, TableId};
use crate::errors::Retryable;
use crate::run::JobStatistics;
use crate::writes::Column;

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("BigQuery unavailable: {0}")]
    Unavailable(String),
    #[error("BigQuery refused the request: {0}")]
    Permanent(String),
    /// Baton's own refusal, before anything reaches BigQuery: SQL its write mode cannot
    /// run, a result the table cannot take. Not retryable either.
    #[error("{0}")]
    Invalid(String),
}

impl Retryable for WarehouseError {
    fn is_retryable(&self) -> bool {
        matches!(self, WarehouseError::Unavailable(_))
    }
}

/// BigQuery's words for failures that another try may not meet: its transient reasons, and
/// the messages of errors it says to retry (concurrent updates among them). local-bigquery's
/// conflicts between concurrent requests read "Failed to commit ... transaction" or
/// "Conflict on update!".
pub fn is_transient(reason: &str, message: &str) -> bool {
    const REASONS: &[&str] = &[
        "backendError",
        "rateLimitExceeded",
        "internalError",
        "jobInternalError",
        "jobBackendError",
    ];
    const MESSAGES: &[&str] = &[
        "retrying may solve the problem",
        "try again",
        "concurrent update",
        "transaction conflict",
        "failed to commit",
        "conflict on update",
    ];
    let message = message.to_lowercase();
    REASONS.contains(&reason) || MESSAGES.iter().any(|m| message.contains(m))
}

/// A column as BigQuery describes it (its `TableFieldSchema`): name, type, mode, a record's
/// own columns, and whatever else BigQuery said of it (description, policy tags), kept as it
/// is so that a schema written back loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Field {
    /// The field as `writes::Column` compares columns: BigQuery's legacy type names,
    /// whichever spelling the API used (`INT64` and `INTEGER` are one type), a repeated field
    /// as an `ARRAY<…>`.
    pub fn column(&self) -> Column {
        let name = match self.field_type.as_str() {
            "INT64" => "INTEGER",
            "FLOAT64" => "FLOAT",
            "BOOL" => "BOOLEAN",
            "STRUCT" => "RECORD",
            other => other,
        };
        Column {
            name: self.name.clone(),
            field_type: if self.mode.as_deref() == Some("REPEATED") {
                format!("ARRAY<{name}>")
            } else {
                name.to_string()
            },
        }
    }
}

/// The top-level columns of a schema.
pub fn columns(schema: &[Field]) -> Vec<Column> {
    schema.iter().map(Field::column).collect()
}

/// A query job as Baton asks for it.
#[derive(Debug, Clone)]
pub struct QueryJob<'a> {
    pub job_id: &'a str,
    /// The query, or a statement or script that writes by itself (`destination` is `None`).
    pub sql: &'a str,
    /// Unqualified names in the SQL are this dataset's.
    pub default_dataset: &'a str,
    pub destination: Option<Destination<'a>>,
    pub labels: HashMap<String, String>,
    /// Named TIMESTAMP parameters (`run_time` for `@run_time`); `None` passes NULL.
    pub timestamps: Vec<(String, Option<Timestamp>)>,
    /// BigQuery fails the job without running it if it would bill more.
    pub max_bytes_billed: Option<i64>,
    /// BigQuery cancels the job when it runs longer.
    pub timeout: Option<Duration>,
}

/// An extract job: a table written to Cloud Storage as files.
#[derive(Debug, Clone)]
pub struct ExtractJob<'a> {
    pub job_id: &'a str,
    pub table: &'a TableId,
    /// `gs://bucket/path/name-*.csv`: BigQuery numbers the files where the `*` is.
    pub uri: &'a str,
    pub format: FileFormat,
    /// `gzip`, `deflate`, `snappy`, `zstd`, or none.
    pub compression: Option<&'a str>,
    pub labels: HashMap<String, String>,
}

/// Where a query's result goes, and how the table is shaped when the job creates it.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    pub table: &'a TableId,
    /// Add the rows (else replace the table's contents). New columns are allowed either way.
    pub append: bool,
    pub partitioning: Option<&'a Partitioning>,
    pub clustering: &'a [String],
}

/// How a table is shaped when Baton creates it.
#[derive(Debug, Clone, Copy)]
pub struct TableShape<'a> {
    pub partitioning: Option<&'a Partitioning>,
    pub clustering: &'a [String],
}

/// What a dry run tells of a query.
#[derive(Debug, Clone)]
pub struct DryRun {
    pub schema: Vec<Field>,
    pub bytes_processed: i64,
}

/// Where a BigQuery job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobProgress {
    /// Pending or running.
    Running,
    Succeeded(JobStatistics),
    /// Ended with an error: BigQuery's reason and message.
    Failed {
        reason: String,
        message: String,
        statistics: JobStatistics,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_told_by_reason_or_message() {
        assert!(is_transient("backendError", "whatever"));
        assert!(is_transient(
            "invalidQuery",
            "Error encountered during execution. Retrying may solve the problem."
        ));
        assert!(is_transient(
            "invalidQuery",
            "Transaction is aborted due to concurrent update against table p.d.t"
        ));
        assert!(is_transient(
            "invalidQuery",
            "Failed to commit: Failed to commit DuckLake transaction."
        ));
        assert!(is_transient("invalidQuery", "Conflict on update!"));
        assert!(!is_transient(
            "invalidQuery",
            "Unrecognized name: foo at [1:8]"
        ));
        assert!(!is_transient("accessDenied", "Access Denied: Table p:d.t"));
    }

    #[test]
    fn a_field_reads_as_the_column_writes_compare() {
        let field: Field = serde_json::from_value(serde_json::json!(
            {"name": "tags", "type": "STRING", "mode": "REPEATED"}
        ))
        .unwrap();
        assert_eq!(field.column().field_type, "ARRAY<STRING>");
        let field: Field =
            serde_json::from_value(serde_json::json!({"name": "n", "type": "INT64"})).unwrap();
        assert_eq!(field.column().field_type, "INTEGER");
        assert_eq!(
            serde_json::to_value(&field).unwrap(),
            serde_json::json!({"name": "n", "type": "INT64"})
        );
        let described = serde_json::json!({"name": "r", "type": "RECORD", "description": "d",
            "policyTags": {"names": ["t"]}, "fields": [{"name": "x", "type": "STRING",
            "description": "inner"}]});
        let field: Field = serde_json::from_value(described.clone()).unwrap();
        assert_eq!(serde_json::to_value(&field).unwrap(), described);
    }
}
