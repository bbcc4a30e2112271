//! What the two databases have in common: how a copy fails, and what it hands over.

use baton_core::imports::{ImportColumn, Watermark};
use baton_core::ports::StorageError;

/// Why a copy stopped. Never holds a password: the messages are the database's own, which
/// do not repeat it, and ours, which never see it.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The database could not be reached, the connection dropped, the server was busy:
    /// another attempt may succeed.
    #[error("{0}")]
    Transient(String),
    /// Wrong password, no such table or column, no permission, a value BigQuery cannot
    /// hold: another attempt would fail the same way.
    #[error("{0}")]
    Permanent(String),
}

impl CopyError {
    pub fn is_transient(&self) -> bool {
        matches!(self, CopyError::Transient(_))
    }

    /// A value of `column` that cannot be loaded, at `row` (from 1).
    pub fn value(column: &ImportColumn, row: u64, refusal: &str) -> Self {
        CopyError::Permanent(format!(
            "row {row}, column `{}` ({}): {refusal}",
            column.name, column.source_type
        ))
    }
}

impl From<StorageError> for CopyError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(m) => CopyError::Transient(format!("staging: {m}")),
            StorageError::Permanent(m) => CopyError::Permanent(format!("staging: {m}")),
        }
    }
}

/// The SQL as Baton sends it on: without a trailing `;`, on lines of its own so that a
/// trailing comment ends before what Baton wraps around it.
pub fn statement(sql: &str) -> &str {
    sql.trim_end().trim_end_matches(';').trim_end()
}

/// How many rows go into one batch of JSON before it is compressed.
pub const BATCH_BYTES: usize = 256 * 1024;

/// The column types of a source's answer, each mapped or refused.
pub fn mapped(columns: Vec<Result<ImportColumn, String>>) -> Result<Vec<ImportColumn>, CopyError> {
    let mut out = Vec::with_capacity(columns.len());
    for column in columns {
        out.push(column.map_err(CopyError::Permanent)?);
    }
    baton_core::imports::check_columns(&out).map_err(CopyError::Permanent)?;
    Ok(out)
}

/// An incremental import's part of a copy: its column, and the value past which rows are
/// read (none: all of them, the highest value still kept).
#[derive(Debug, Clone)]
pub struct Increment {
    pub column: String,
    pub after: Option<Watermark>,
}

/// What a copy read.
#[derive(Debug, Clone)]
pub struct Copied {
    pub rows: u64,
    /// The incremental column's highest value among the rows read.
    pub high: Option<Watermark>,
}

/// The index of the incremental column among `columns`, checked.
pub fn increment_column(
    columns: &[ImportColumn],
    increment: &Increment,
) -> Result<usize, CopyError> {
    let Some(i) = columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&increment.column))
    else {
        return Err(CopyError::Permanent(format!(
            "the incremental column `{}` is not among the SELECT's columns",
            increment.column
        )));
    };
    let column = &columns[i];
    if column.repeated || !Watermark::takes(column.bigquery_type) {
        return Err(CopyError::Permanent(format!(
            "the incremental column `{}` is {}: it must be a timestamp, datetime, date or integer",
            column.name, column.source_type
        )));
    }
    Ok(i)
}

/// Keeps the highest watermark seen.
pub fn raise(high: &mut Option<Watermark>, column: &ImportColumn, text: &[u8]) {
    let seen = std::str::from_utf8(text)
        .ok()
        .and_then(|t| Watermark::read(column.bigquery_type, t));
    if let Some(seen) = seen {
        *high = Some(match *high {
            Some(h) => h.max(seen),
            None => seen,
        });
    }
}
