//! Import tables: the BigQuery type each source column becomes, and what an attempt's copy
//! leaves behind for its load.
//!
//! An attempt copies its rows into gzip'd newline-delimited JSON chunks in the staging bucket,
//! under a prefix of its own copy (`imports/{run}/{table}/{attempt}/{copy}/`), and only when
//! every chunk is uploaded records them, once, in `runs/{run}/imports/{table}@{attempt}`
//! (`StagedCopy`, created with an `exists: false` precondition). The load job reads exactly
//! the recorded chunks under an id of the attempt's own: a delivery that dies while copying
//! leaves chunks nobody loads (the bucket's lifecycle rule deletes them), two deliveries that
//! copy at once record one copy between them, and a redelivery after the record loads it or
//! attaches to its load. No row is loaded twice, none is lost.

use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::catalog::TableId;
use crate::warehouse::Field;

/// The collection under a run that holds its imports' staged copies.
pub const STAGED: &str = "imports";
pub const STAGED_SCHEMA_VERSION: u32 = 2;

/// `import_state/{table}`: what the last successful import of a table left for the next.
pub const STATE: &str = "import_state";
pub const STATE_SCHEMA_VERSION: u32 = 1;

/// The highest value of an incremental import's column copied so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Watermark {
    Integer(i64),
    Timestamp(#[schemars(with = "String")] Timestamp),
    Datetime(#[schemars(with = "String")] DateTime),
    Date(#[schemars(with = "String")] Date),
}

impl Watermark {
    /// The watermark a run reads from: this one, `overlap` earlier for time columns.
    pub fn less(self, overlap: Option<i64>) -> Self {
        let Some(seconds) = overlap.filter(|s| *s > 0) else {
            return self;
        };
        let by = SignedDuration::from_secs(seconds);
        match self {
            Self::Integer(_) => self,
            Self::Timestamp(t) => Self::Timestamp(t.checked_sub(by).unwrap_or(Timestamp::MIN)),
            Self::Datetime(d) => Self::Datetime(d.checked_sub(by).unwrap_or(DateTime::MIN)),
            Self::Date(d) => {
                let days = (seconds + 86_399) / 86_400;
                Self::Date(
                    d.checked_sub(jiff::Span::new().days(days))
                        .unwrap_or(Date::MIN),
                )
            }
        }
    }

    /// The higher of two watermarks of one kind; `other` when the kinds differ (the column
    /// changed type).
    pub fn max(self, other: Self) -> Self {
        match (self, other) {
            (Self::Integer(a), Self::Integer(b)) => Self::Integer(a.max(b)),
            (Self::Timestamp(a), Self::Timestamp(b)) => Self::Timestamp(a.max(b)),
            (Self::Datetime(a), Self::Datetime(b)) => Self::Datetime(a.max(b)),
            (Self::Date(a), Self::Date(b)) => Self::Date(a.max(b)),
            (_, other) => other,
        }
    }

    /// A SQL literal of it in the source's dialect, in UTC for timestamps (both sessions
    /// speak UTC).
    pub fn literal(self, mysql: bool) -> String {
        match self {
            Self::Integer(n) => n.to_string(),
            Self::Timestamp(t) if mysql => format!("'{}'", t.strftime("%Y-%m-%d %H:%M:%S%.6f")),
            Self::Timestamp(t) => format!("'{}'", t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")),
            Self::Datetime(d) => format!("'{}'", d.strftime("%Y-%m-%d %H:%M:%S%.6f")),
            Self::Date(d) => format!("'{d}'"),
        }
    }

    /// Reads a value of an incremental column as the source writes it (PostgreSQL's
    /// `2024-01-02 03:04:05.5+00`, MySQL's `2024-01-02 03:04:05.5`), as `scalar`.
    pub fn read(scalar: Scalar, text: &str) -> Option<Self> {
        match scalar {
            Scalar::Int64 => text.parse().ok().map(Self::Integer),
            Scalar::Timestamp => match text.parse::<Timestamp>() {
                Ok(t) => Some(Self::Timestamp(t)),
                // MySQL's TIMESTAMP, read in a UTC session, has no offset.
                Err(_) => text
                    .parse::<DateTime>()
                    .ok()
                    .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                    .map(|z| Self::Timestamp(z.timestamp())),
            },
            Scalar::Datetime => text.parse().ok().map(Self::Datetime),
            Scalar::Date => text.parse().ok().map(Self::Date),
            _ => None,
        }
    }

    /// Whether a column of this type can be an incremental import's.
    pub fn takes(scalar: Scalar) -> bool {
        matches!(
            scalar,
            Scalar::Int64 | Scalar::Timestamp | Scalar::Datetime | Scalar::Date
        )
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Integer(n) => write!(f, "{n}"),
            Self::Timestamp(t) => write!(f, "{t}"),
            Self::Datetime(d) => write!(f, "{d}"),
            Self::Date(d) => write!(f, "{d}"),
        }
    }
}

/// `import_state/{table}`: written in the transaction that ends an import's job, only when it
/// succeeded, so that a failed load never moves the watermark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportState {
    pub schema_version: u32,
    pub table: TableId,
    /// The incremental column's highest value loaded so far.
    #[serde(default)]
    pub watermark: Option<Watermark>,
    /// The incremental column it belongs to: another column starts over.
    #[serde(default)]
    pub column: Option<String>,
    /// The source's columns as last loaded: when they change, the table is loaded whole again.
    pub columns: Vec<ImportColumn>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub last_full_at: Timestamp,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub updated_at: Timestamp,
}

/// What one import copied, on its job's statistics: the whole table or the rows past a
/// watermark, and why it was whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportSummary {
    pub rows: u64,
    /// The whole table, replacing what was there.
    pub full: bool,
    /// Why the copy was whole: the first import, a reimport condition, the source's columns
    /// changed (which), the table missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rows with the incremental column past this were read (the watermark less the overlap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Watermark>,
    /// The watermark once these rows are loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<Watermark>,
}

/// Why an import copies its whole table rather than the rows past its watermark; `None`
/// when the watermark holds. `columns` are the source's now.
pub fn full_because(
    state: Option<&ImportState>,
    incremental: Option<&str>,
    columns: &[ImportColumn],
    reimport_due: bool,
    table_exists: bool,
) -> Option<String> {
    let Some(column) = incremental else {
        return Some("a whole import (no `incremental` column)".into());
    };
    let Some(state) = state else {
        return Some("the first import".into());
    };
    if !table_exists {
        return Some("the table is not in BigQuery".into());
    }
    if state.column.as_deref() != Some(column) || state.watermark.is_none() {
        return Some(format!("a new incremental column `{column}`"));
    }
    if let Some(change) = column_changes(&state.columns, columns) {
        return Some(format!("the source's columns changed: {change}"));
    }
    reimport_due.then(|| "a reimport condition holds".into())
}

/// What changed between two sets of source columns: `added a; dropped b; retyped c (int →
/// text)`.
pub fn column_changes(before: &[ImportColumn], now: &[ImportColumn]) -> Option<String> {
    let find = |list: &[ImportColumn], name: &str| {
        list.iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .cloned()
    };
    let added: Vec<&str> = now
        .iter()
        .filter(|c| find(before, &c.name).is_none())
        .map(|c| c.name.as_str())
        .collect();
    let dropped: Vec<&str> = before
        .iter()
        .filter(|c| find(now, &c.name).is_none())
        .map(|c| c.name.as_str())
        .collect();
    let retyped: Vec<String> = now
        .iter()
        .filter_map(|c| {
            let old = find(before, &c.name)?;
            (old.bigquery_type != c.bigquery_type || old.repeated != c.repeated)
                .then(|| format!("{} ({} → {})", c.name, old.source_type, c.source_type))
        })
        .collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", added.join(", ")));
    }
    if !dropped.is_empty() {
        parts.push(format!("dropped {}", dropped.join(", ")));
    }
    if !retyped.is_empty() {
        parts.push(format!("retyped {}", retyped.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The BigQuery types an import writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scalar {
    Int64,
    Float64,
    Numeric,
    Bignumeric,
    Bool,
    String,
    Bytes,
    Date,
    Datetime,
    Time,
    Timestamp,
    Json,
}

impl Scalar {
    /// BigQuery's name of the type in a schema.
    pub fn bigquery(self) -> &'static str {
        match self {
            Self::Int64 => "INT64",
            Self::Float64 => "FLOAT64",
            Self::Numeric => "NUMERIC",
            Self::Bignumeric => "BIGNUMERIC",
            Self::Bool => "BOOL",
            Self::String => "STRING",
            Self::Bytes => "BYTES",
            Self::Date => "DATE",
            Self::Datetime => "DATETIME",
            Self::Time => "TIME",
            Self::Timestamp => "TIMESTAMP",
            Self::Json => "JSON",
        }
    }

    /// A decimal of `precision` digits, `scale` of them after the point: NUMERIC when it fits
    /// (29 before the point, 9 after), else BIGNUMERIC. Without a declared precision (an
    /// unbounded `numeric`), BIGNUMERIC.
    pub fn decimal(precision: Option<(u32, u32)>) -> Self {
        match precision {
            Some((p, s)) if s <= 9 && p.saturating_sub(s) <= 29 => Self::Numeric,
            _ => Self::Bignumeric,
        }
    }
}

/// One source column and what it becomes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportColumn {
    pub name: String,
    /// The source's name of its type: `numeric(12,2)`, `timestamp with time zone`,
    /// `bigint unsigned`.
    pub source_type: String,
    pub bigquery_type: Scalar,
    /// An array, loaded as a REPEATED field.
    #[serde(default)]
    pub repeated: bool,
}

impl ImportColumn {
    pub fn field(&self) -> Field {
        Field {
            name: self.name.clone(),
            field_type: self.bigquery_type.bigquery().to_string(),
            mode: Some(
                if self.repeated {
                    "REPEATED"
                } else {
                    "NULLABLE"
                }
                .to_string(),
            ),
            fields: Vec::new(),
            rest: serde_json::Map::new(),
        }
    }
}

/// Why a source column cannot be imported as it is.
pub fn check_column_name(position: usize, name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 300
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "column {position} is named `{name}`, which BigQuery does not take as a column \
             name (letters, digits and underscores, not starting with a digit): name it with \
             `AS` in the import's SELECT"
        ))
    }
}

/// The columns of a source's answer, checked: names BigQuery takes, each once (BigQuery's
/// names are case-insensitive).
pub fn check_columns(columns: &[ImportColumn]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, column) in columns.iter().enumerate() {
        check_column_name(i + 1, &column.name)?;
        if !seen.insert(column.name.to_ascii_lowercase()) {
            return Err(format!(
                "two columns are named `{}` (BigQuery's names ignore case): rename one with \
                 `AS` in the import's SELECT",
                column.name
            ));
        }
    }
    if columns.is_empty() {
        return Err("the import's SELECT has no columns".into());
    }
    Ok(())
}

/// `runs/{run}/imports/{table}@{attempt}`: one attempt's copy, recorded once it is whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StagedCopy {
    pub schema_version: u32,
    pub table: TableId,
    pub attempt: u32,
    /// The copy's own id: its chunks are under a prefix of their own.
    pub copy: String,
    pub bucket: String,
    /// The chunks' object names, in order.
    pub objects: Vec<String>,
    pub columns: Vec<ImportColumn>,
    pub rows: u64,
    /// Whole or past a watermark, and why.
    #[serde(default)]
    pub summary: ImportSummary,
    /// Bytes of JSON before compression, and of the chunks as stored.
    pub json_bytes: u64,
    pub stored_bytes: u64,
    /// How long the copy took, in milliseconds.
    pub copy_ms: u64,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub copied_at: Timestamp,
}

impl StagedCopy {
    /// The document's id under its run.
    pub fn id(table: &TableId, attempt: u32) -> String {
        format!("{table}@{attempt}")
    }

    pub fn uris(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| format!("gs://{}/{o}", self.bucket))
            .collect()
    }
}

/// The prefix of one copy's chunks.
pub fn chunk_prefix(run_id: &str, table: &TableId, attempt: u32, copy: &str) -> String {
    format!("imports/{run_id}/{table}/{attempt}/{copy}/")
}

/// The name of a copy's `n`-th chunk (from 1).
pub fn chunk_name(prefix: &str, n: usize) -> String {
    format!("{prefix}part-{n:06}.json.gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_numeric_when_they_fit_and_bignumeric_when_not() {
        assert_eq!(Scalar::decimal(Some((12, 2))), Scalar::Numeric);
        assert_eq!(Scalar::decimal(Some((38, 9))), Scalar::Numeric);
        assert_eq!(Scalar::decimal(Some((39, 9))), Scalar::Bignumeric);
        assert_eq!(Scalar::decimal(Some((20, 10))), Scalar::Bignumeric);
        assert_eq!(Scalar::decimal(None), Scalar::Bignumeric);
    }

    fn column(name: &str) -> ImportColumn {
        ImportColumn {
            name: name.into(),
            source_type: "text".into(),
            bigquery_type: Scalar::String,
            repeated: false,
        }
    }

    #[test]
    fn columns_need_names_bigquery_takes_each_once() {
        assert!(check_columns(&[column("id"), column("_x2")]).is_ok());
        let e = check_columns(&[column("id"), column("?column?")]).unwrap_err();
        assert!(e.contains("column 2 is named `?column?`"), "{e}");
        let e = check_columns(&[column("Id"), column("id")]).unwrap_err();
        assert!(e.contains("two columns are named `id`"), "{e}");
        assert!(check_columns(&[]).is_err());
    }

    #[test]
    fn watermarks_read_compare_and_step_back_by_the_overlap() {
        let pg = Watermark::read(Scalar::Timestamp, "2024-03-10 09:59:59.5+00").unwrap();
        let my = Watermark::read(Scalar::Timestamp, "2024-03-10 09:59:59.5").unwrap();
        assert_eq!(pg, my);
        assert_eq!(pg.literal(false), "'2024-03-10T09:59:59.500000Z'");
        assert_eq!(pg.literal(true), "'2024-03-10 09:59:59.500000'");
        assert_eq!(
            pg.less(Some(600)).literal(false),
            "'2024-03-10T09:49:59.500000Z'"
        );
        let day = Watermark::read(Scalar::Date, "2024-03-10").unwrap();
        assert_eq!(day.less(Some(3600)).to_string(), "2024-03-09");
        let n = Watermark::read(Scalar::Int64, "41").unwrap();
        assert_eq!(n.max(Watermark::Integer(7)), Watermark::Integer(41));
        assert_eq!(n.less(Some(60)), n, "an id column has no overlap");
        assert!(Watermark::read(Scalar::String, "x").is_none());
        let json = serde_json::to_value(pg).unwrap();
        assert_eq!(serde_json::from_value::<Watermark>(json).unwrap(), pg);
    }

    #[test]
    fn a_whole_copy_says_why() {
        let columns = vec![column("id"), column("name")];
        let state = ImportState {
            schema_version: STATE_SCHEMA_VERSION,
            table: "d.t".parse().unwrap(),
            watermark: Some(Watermark::Integer(3)),
            column: Some("id".into()),
            columns: columns.clone(),
            last_full_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(
            full_because(Some(&state), Some("id"), &columns, false, true),
            None
        );
        let why = |cols: &[ImportColumn], due, exists| {
            full_because(Some(&state), Some("id"), cols, due, exists).unwrap()
        };
        assert_eq!(why(&columns, true, true), "a reimport condition holds");
        assert_eq!(why(&columns, false, false), "the table is not in BigQuery");
        let mut retyped = column("name");
        retyped.bigquery_type = Scalar::Int64;
        retyped.source_type = "int".into();
        assert_eq!(
            why(&[column("id"), retyped, column("note")], false, true),
            "the source's columns changed: added note; retyped name (text → int)"
        );
        assert_eq!(
            why(&[column("id")], false, true),
            "the source's columns changed: dropped name"
        );
        assert_eq!(
            full_because(None, Some("id"), &columns, false, true).unwrap(),
            "the first import"
        );
        assert_eq!(
            full_because(Some(&state), Some("at"), &columns, false, true).unwrap(),
            "a new incremental column `at`"
        );
    }

    #[test]
    fn a_copy_lives_under_its_own_prefix() {
        let table: TableId = "shop.orders".parse().unwrap();
        let prefix = chunk_prefix("daily-20261202T000000Z", &table, 2, "c1");
        assert_eq!(prefix, "imports/daily-20261202T000000Z/shop.orders/2/c1/");
        assert_eq!(
            chunk_name(&prefix, 3),
            "imports/daily-20261202T000000Z/shop.orders/2/c1/part-000003.json.gz"
        );
        assert_eq!(StagedCopy::id(&table, 2), "shop.orders@2");
    }
}
