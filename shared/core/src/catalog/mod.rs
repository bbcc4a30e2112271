//! The catalog: the tables Baton owns and the frequencies that run them, as their owners
//! define them. Pure data and validation; storing it is `store::catalog`'s job and reading it
//! from a folder of `.sql` files is `folder`'s.

pub mod apply;
pub mod folder;

pub use apply::TableDoc;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::schedule::{Condition, Schedule};

/// A table's id inside Baton: `dataset.table` in Baton's BigQuery project.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct TableId {
    dataset: String,
    table: String,
}

impl TableId {
    /// Checks both parts against BigQuery's naming rules.
    pub fn new(dataset: &str, table: &str) -> Result<Self, InvalidName> {
        validate_dataset(dataset)?;
        validate_table_name(table)?;
        Ok(Self {
            dataset: dataset.to_string(),
            table: table.to_string(),
        })
    }

    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.dataset, self.table)
    }
}

impl std::str::FromStr for TableId {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('.') {
            Some((dataset, table)) => Self::new(dataset, table),
            None => Err(InvalidName(format!(
                "table id `{s}` must be `dataset.table`"
            ))),
        }
    }
}

impl TryFrom<String> for TableId {
    type Error = InvalidName;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TableId> for String {
    fn from(id: TableId) -> Self {
        id.to_string()
    }
}

/// A name that BigQuery or Baton would refuse, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// BigQuery dataset names: letters, digits and underscores, at most 1,024 characters.
pub fn validate_dataset(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() || name.len() > 1024 {
        return Err(InvalidName(format!(
            "dataset name `{name}` must have 1 to 1024 characters"
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(InvalidName(format!(
            "dataset name `{name}` may only contain letters, digits and underscores"
        )));
    }
    Ok(())
}

/// BigQuery table names: letters, marks, digits, connectors, dashes and spaces, at most 1,024
/// bytes. Baton refuses spaces too: they make names that every tool has to quote.
pub fn validate_table_name(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() || name.len() > 1024 {
        return Err(InvalidName(format!(
            "table name `{name}` must have 1 to 1024 bytes"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(InvalidName(format!(
            "table name `{name}` may only contain letters, digits, underscores and dashes"
        )));
    }
    Ok(())
}

/// Frequency names appear in run ids and BigQuery job labels: lowercase letters, digits,
/// underscores and dashes, starting with a letter, at most 63 characters.
pub fn validate_frequency_name(name: &str) -> Result<(), InvalidName> {
    let mut chars = name.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_with_letter
        || name.len() > 63
        || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(InvalidName(format!(
            "frequency name `{name}` must start with a lowercase letter and contain only \
             lowercase letters, digits, `_` and `-` (at most 63)"
        )));
    }
    Ok(())
}

/// What fills a table.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// A BigQuery Standard SQL query whose result becomes the table.
    #[default]
    Query,
    /// Rows copied from a PostgreSQL or MySQL table through a connection, by the restricted
    /// `SELECT columns FROM one table [WHERE …] [LIMIT n]` of the source's own SQL.
    Import,
    /// Files that land in Cloud Storage under the table's prefix, loaded in batches.
    Load,
}

/// Where an import table's rows come from, and how much of them each run copies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportSpec {
    /// The database connection (`baton connections set NAME --kind postgres|mysql`).
    pub connection: String,
    /// A column of the SELECT that only grows (a timestamp, datetime, date or integer): each
    /// run copies only the rows past the highest value copied before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<String>,
    /// How far behind the watermark a run reads again, for rows committed late (a time
    /// column's seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_seconds: Option<i64>,
    /// Runs at whose instant any of these holds copy the whole table again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reimport: Vec<Condition>,
}

/// How a query job's result is written into its table.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
    strum::EnumIter,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum WriteMode {
    /// Replace the table's contents (BigQuery's WRITE_TRUNCATE).
    #[default]
    Truncate,
    /// Add the rows to the table (WRITE_APPEND).
    Append,
    /// Update the rows whose key is in the result, insert the others; with a delete flag,
    /// delete the rows the result flags (a generated MERGE).
    Merge,
    /// Insert only the rows whose key is not in the table yet.
    InsertUnique,
    /// Replace the rows of the run's window (`@window_start` to `@window_end` on the
    /// partitioning field) with the result, in one transaction.
    OverwritePartitions,
}

impl WriteMode {
    /// Every mode's name, as written in a header and stored.
    pub const NAMES: &[&str] = <Self as strum::VariantNames>::VARIANTS;

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether the mode writes through a statement of Baton's own (`writes::statement`)
    /// rather than a query job's destination table and write disposition.
    pub fn writes_by_statement(self) -> bool {
        matches!(
            self,
            Self::Merge | Self::InsertUnique | Self::OverwritePartitions
        )
    }
}

/// The unit of time partitioning.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum Granularity {
    Hour,
    #[default]
    Day,
    Month,
    Year,
}

impl Granularity {
    /// BigQuery's name: `DAY`.
    pub fn bigquery(self) -> &'static str {
        match self {
            Self::Hour => "HOUR",
            Self::Day => "DAY",
            Self::Month => "MONTH",
            Self::Year => "YEAR",
        }
    }
}

/// Time partitioning of a table: on a column, or on ingestion time when there is none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Partitioning {
    /// A DATE, DATETIME or TIMESTAMP column; `None` partitions by ingestion time.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub granularity: Granularity,
    /// Partitions older than this are deleted by BigQuery.
    #[serde(default)]
    pub expiration_seconds: Option<i64>,
}

impl Partitioning {
    /// `day(ordered_at)`, `ordered_at` (by day), `month(_PARTITIONTIME)`, `_PARTITIONTIME`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (granularity, field) = match text.split_once('(') {
            Some((unit, rest)) => {
                let field = rest.strip_suffix(')').ok_or_else(|| {
                    format!("`{text}` is not `unit(column)`, e.g. `day(ordered_at)`")
                })?;
                let granularity = unit.trim().parse::<Granularity>().ok().ok_or_else(|| {
                    format!("`{unit}` is not a partitioning unit (hour, day, month, year)")
                })?;
                (granularity, field.trim())
            }
            None => (Granularity::Day, text),
        };
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{field}` is not a column name"));
        }
        let field = (!field.eq_ignore_ascii_case("_PARTITIONTIME")).then(|| field.to_string());
        Ok(Self {
            field,
            granularity,
            expiration_seconds: None,
        })
    }
}

/// The format of files BigQuery writes (an extract) or reads (a load table's).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::VariantNames,
    strum::IntoStaticStr,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum FileFormat {
    #[default]
    Csv,
    /// Newline-delimited JSON (`json` is read as this too).
    #[strum(serialize = "ndjson", serialize = "json")]
    #[serde(alias = "json")]
    Ndjson,
    Avro,
    Parquet,
}

impl FileFormat {
    pub const NAMES: &[&str] = <Self as strum::VariantNames>::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The content type an upload through a signed URL must declare.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv",
            Self::Ndjson => "application/x-ndjson",
            Self::Parquet | Self::Avro => "application/octet-stream",
        }
    }

    /// Whether the files carry their own schema (nothing to declare or detect).
    pub fn self_describing(self) -> bool {
        matches!(self, Self::Parquet | Self::Avro)
    }

    /// BigQuery's `destinationFormat` of an extract, `sourceFormat` of a load.
    pub fn bigquery(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Ndjson => "NEWLINE_DELIMITED_JSON",
            Self::Avro => "AVRO",
            Self::Parquet => "PARQUET",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "json",
            Self::Avro => "avro",
            Self::Parquet => "parquet",
        }
    }

    /// The compressions BigQuery writes this format with.
    pub fn compressions(self) -> &'static [&'static str] {
        match self {
            Self::Csv | Self::Ndjson => &["gzip"],
            Self::Avro => &["deflate", "snappy"],
            Self::Parquet => &["gzip", "snappy", "zstd"],
        }
    }
}

/// The longest a V4 signed URL may live: seven days.
pub const MAX_URL_EXPIRY_SECONDS: i64 = 7 * 86_400;

/// An extract to Cloud Storage after each successful job: sharded files, signed URLs to read
/// them, and a notify URL told where they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Extract {
    pub format: FileFormat,
    /// One of the format's `compressions`, or none.
    #[serde(default)]
    pub compression: Option<String>,
    /// POSTed `{dataset, table, run, urls, schema}` once the files are written.
    #[serde(default)]
    pub notify: Option<String>,
    /// How long the signed URLs work (the executor's default when absent).
    #[serde(default)]
    pub url_expiry_seconds: Option<i64>,
}

impl Extract {
    /// The end of every file's name: `.csv.gz`, `.parquet`.
    pub fn suffix(&self) -> String {
        let gz = matches!(self.format, FileFormat::Csv | FileFormat::Ndjson)
            && self.compression.as_deref() == Some("gzip");
        format!(
            ".{}{}",
            self.format.extension(),
            if gz { ".gz" } else { "" }
        )
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = &self.compression {
            let allowed = self.format.compressions();
            if !allowed.contains(&c.as_str()) {
                problems.push(format!(
                    "`extract_compression` of {} is one of {}, not `{c}`",
                    self.format.extension(),
                    allowed.join(", ")
                ));
            }
        }
        if let Some(url) = &self.notify {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => problems.push("`notify` is an http(s) URL".to_string()),
            }
        }
        if let Some(seconds) = self.url_expiry_seconds
            && !(1..=MAX_URL_EXPIRY_SECONDS).contains(&seconds)
        {
            problems.push(
                "`extract_url_expiry` is more than zero and at most 7 days (a V4 signed \
                 URL's longest)"
                    .into(),
            );
        }
        problems
    }
}

/// How a table is written, shaped and guarded, beyond its SQL. All optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableOptions {
    /// The key columns of `merge` and `insert_unique`.
    #[serde(default)]
    pub key: Vec<String>,
    /// With `merge`: a BOOL column of the result; rows flagged true are deleted from the
    /// table (and not inserted).
    #[serde(default)]
    pub delete_flag: Option<String>,
    #[serde(default)]
    pub partitioning: Option<Partitioning>,
    /// Up to four columns, in order.
    #[serde(default)]
    pub clustering: Vec<String>,
    /// The table expires this long after its last successful write.
    #[serde(default)]
    pub expiration_seconds: Option<i64>,
    /// A job that would bill more bytes fails without running (BigQuery's
    /// `maximumBytesBilled`).
    #[serde(default)]
    pub max_bytes_billed: Option<i64>,
    /// A job running longer is cancelled and fails.
    #[serde(default)]
    pub timeout_seconds: Option<i64>,
    /// How many times a transiently failed job is tried again (the service's default when
    /// absent).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Files written to Cloud Storage after each successful job.
    #[serde(default)]
    pub extract: Option<Extract>,
}

impl TableOptions {
    /// What is wrong with these options for a table written in `mode`.
    pub fn problems(&self, mode: WriteMode) -> Vec<String> {
        let mut problems = Vec::new();
        let needs_key = matches!(mode, WriteMode::Merge | WriteMode::InsertUnique);
        if needs_key && self.key.is_empty() {
            problems.push(format!(
                "write mode `{}` needs `key`: the columns that identify a row",
                mode.name()
            ));
        }
        if !needs_key && !self.key.is_empty() {
            problems.push(format!(
                "`key` is for write modes merge and insert_unique, not `{}`",
                mode.name()
            ));
        }
        if self.delete_flag.is_some() && mode != WriteMode::Merge {
            problems.push("`delete_flag` is for write mode merge".into());
        }
        if mode == WriteMode::OverwritePartitions
            && self.partitioning.as_ref().is_none_or(|p| p.field.is_none())
        {
            problems.push(
                "write mode `overwrite_partitions` needs `partition_by` on a column: the \
                 window's rows are found by it"
                    .into(),
            );
        }
        if self.clustering.len() > 4 {
            problems.push(format!(
                "`cluster_by` takes at most 4 columns, not {}",
                self.clustering.len()
            ));
        }
        let columns = self
            .key
            .iter()
            .chain(&self.clustering)
            .chain(&self.delete_flag)
            .chain(self.partitioning.as_ref().and_then(|p| p.field.as_ref()));
        for column in columns {
            if column.is_empty()
                || !column
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                problems.push(format!("`{column}` is not a column name"));
            }
        }
        for (name, value) in [
            ("expiration", self.expiration_seconds),
            ("timeout", self.timeout_seconds),
            ("max_bytes_billed", self.max_bytes_billed),
            (
                "partition_expiration",
                self.partitioning
                    .as_ref()
                    .and_then(|p| p.expiration_seconds),
            ),
        ] {
            if value.is_some_and(|v| v <= 0) {
                problems.push(format!("`{name}` must be more than zero"));
            }
        }
        problems.extend(self.extract.iter().flat_map(Extract::problems));
        problems
    }
}

/// A table as its owner defines it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Table {
    pub dataset: String,
    pub name: String,
    #[serde(default)]
    pub kind: TableKind,
    /// The BigQuery Standard SQL that defines a query table; an import table's SELECT in its
    /// source's SQL.
    pub sql: String,
    /// An import table's source; `None` for a query table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<Box<ImportSpec>>,
    /// A load table's files: where they land, how they are read, when they are loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Box<crate::loads::LoadSpec>>,
    /// The frequency that runs it; none means it only runs when asked.
    #[serde(default)]
    pub frequency: Option<String>,
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Keys, partitioning, clustering, expiration, guards.
    #[serde(default)]
    pub options: Box<TableOptions>,
    #[serde(default)]
    pub description: Option<String>,
    /// The user its jobs' cost is attributed to.
    #[serde(default)]
    pub owner: Option<String>,
    /// The group its jobs' cost is attributed to.
    #[serde(default)]
    pub group: Option<String>,
    /// Dependencies the SQL cannot show, added to those inferred from it.
    #[serde(default)]
    pub depends_on: Vec<TableId>,
    /// Calendar conditions: the table takes part in a run only at instants that match one
    /// (none: always).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Where the definition came from (a file in a catalog folder), for messages.
    #[serde(default)]
    pub source: Option<String>,
}

impl Table {
    /// A query table `id` filled by `sql`, every other setting at its default (no frequency):
    /// for code that builds a catalog (tools, tests). Set the rest with struct update syntax.
    pub fn query(id: &TableId, sql: &str) -> Self {
        Self {
            dataset: id.dataset().to_string(),
            name: id.table().to_string(),
            kind: TableKind::Query,
            sql: sql.to_string(),
            import: None,
            load: None,
            frequency: None,
            write_mode: WriteMode::default(),
            options: Box::default(),
            description: None,
            owner: None,
            group: None,
            depends_on: Vec::new(),
            conditions: Vec::new(),
            source: None,
        }
    }

    pub fn id(&self) -> Result<TableId, InvalidName> {
        TableId::new(&self.dataset, &self.name)
    }

    /// `source` if known, else the table's id: where a person should look.
    /// What is too large to store or run, if anything: the SQL beyond [`MAX_SQL_BYTES`], the
    /// description beyond [`MAX_DESCRIPTION_BYTES`].
    pub fn oversized(&self) -> Option<String> {
        if self.sql.len() > MAX_SQL_BYTES {
            return Some(format!(
                "the SQL has {} bytes; a table's SQL may have at most {MAX_SQL_BYTES} ({})",
                self.sql.len(),
                bytesize::ByteSize::b(MAX_SQL_BYTES as u64).display().iec(),
            ));
        }
        let description = self.description.as_deref().unwrap_or_default();
        if description.len() > MAX_DESCRIPTION_BYTES {
            return Some(format!(
                "the description has {} bytes; at most {MAX_DESCRIPTION_BYTES}",
                description.len()
            ));
        }
        None
    }

    /// What a load table may not have.
    pub fn load_problems(&self) -> Vec<String> {
        match (self.kind, &self.load) {
            (TableKind::Load, Some(spec)) => {
                let mut problems = spec.problems(self.write_mode);
                if self.frequency.is_some() {
                    problems.push(
                        "a load table is loaded as its files arrive, not in runs: give the \
                         frequency to the tables that read it"
                            .into(),
                    );
                }
                if !self.conditions.is_empty() || !self.depends_on.is_empty() {
                    problems.push(
                        "`condition` and `depends_on` are for tables that run in runs".into(),
                    );
                }
                let options = &self.options;
                if options.extract.is_some()
                    || options.max_bytes_billed.is_some()
                    || options.timeout_seconds.is_some()
                    || !options.key.is_empty()
                    || options.delete_flag.is_some()
                {
                    problems.push(
                        "a load table takes partitioning, clustering and expiration; not \
                         `extract`, `max_bytes_billed`, `timeout`, `key` or `delete_flag`"
                            .into(),
                    );
                }
                problems
            }
            (TableKind::Load, None) => vec!["a load table needs its `[load]` settings".into()],
            (_, Some(_)) => vec!["load settings are for load tables (`.load.toml`)".into()],
            (_, None) => Vec::new(),
        }
    }

    /// What an import table may not have (its SQL is checked where its connection's
    /// dialect is known: `sql::check_import`).
    pub fn import_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (self.kind, &self.import) {
            (TableKind::Query | TableKind::Load, None) => return problems,
            (TableKind::Query | TableKind::Load, Some(_)) => {
                problems.push("`import` is for import tables; this is a query table".into());
                return problems;
            }
            (TableKind::Import, None) => {
                problems.push("an import table names its connection: `-- import: NAME`".into());
                return problems;
            }
            (TableKind::Import, Some(spec)) => {
                if let Err(e) = crate::connections::validate_name(&spec.connection) {
                    problems.push(e.0);
                }
                problems.extend(spec.problems(self.write_mode));
            }
        }
        if !matches!(
            self.write_mode,
            WriteMode::Truncate | WriteMode::Append | WriteMode::Merge
        ) {
            problems.push(format!(
                "an import table is written `truncate` (the default), `append` or `merge`, \
                 not `{}`",
                self.write_mode.name()
            ));
        }
        if self.options.extract.is_some() {
            problems.push(
                "an import table cannot be extracted yet: extract a query table that reads it"
                    .into(),
            );
        }
        if self.options.max_bytes_billed.is_some() {
            problems.push(
                "`max_bytes_billed` guards queries; an import runs a load, which is not billed"
                    .into(),
            );
        }
        problems
    }

    pub fn origin(&self) -> String {
        self.source
            .clone()
            .unwrap_or_else(|| format!("{}.{}", self.dataset, self.name))
    }

    /// Its id (`None` when its name is not one) and what `CatalogSpec::validate` finds wrong
    /// with this table alone; `defined` says which frequencies exist.
    fn own_problems(
        &self,
        defined: &(dyn Fn(&String) -> bool + Sync),
    ) -> (Option<TableId>, OwnProblems) {
        let at = self.origin();
        let problem = |message: String| Problem {
            at: at.clone(),
            message,
        };
        let id = match self.id() {
            Ok(id) => id,
            Err(e) => {
                let settings = vec![problem(e.0)];
                return (
                    None,
                    OwnProblems {
                        at,
                        settings,
                        content: None,
                    },
                );
            }
        };
        let mut settings: Vec<Problem> = self
            .conditions
            .iter()
            .filter_map(|c| c.validate().err())
            .map(|e| problem(e.0))
            .collect();
        settings.extend(
            self.options
                .problems(self.write_mode)
                .into_iter()
                .chain(self.import_problems())
                .chain(self.load_problems())
                .map(problem),
        );
        if let Some(message) = self.oversized() {
            settings.push(problem(message));
            return (
                Some(id),
                OwnProblems {
                    at,
                    settings,
                    content: None,
                },
            );
        }
        let mut content = Vec::new();
        if self.kind == TableKind::Load {
            // No SQL; its prefix is compared with the others'.
        } else if self.sql.trim().is_empty() {
            content.push(problem("the SQL is empty".into()));
        } else if self.kind == TableKind::Query
            && self.write_mode.writes_by_statement()
            && let Err(e) = crate::sql::single_query(&self.sql)
        {
            // Refused now, not when the job runs: these modes wrap the SQL in a statement
            // of Baton's own.
            content.push(Problem {
                at: format!("{at}:{}:{}", e.line, e.column),
                message: format!("write mode `{}`: {}", self.write_mode.name(), e.message),
            });
        }
        if let Some(name) = &self.frequency
            && !defined(name)
        {
            content.push(problem(format!("frequency `{name}` is not defined")));
        }
        (
            Some(id),
            OwnProblems {
                at,
                settings,
                content: Some(content),
            },
        )
    }
}

/// The most SQL one table may have: half of BigQuery's limit on a query's length (1 MiB), so
/// that the table's document and each of its jobs' (which keep the SQL they ran) stay under
/// Firestore's 1 MiB per document beside their other fields.
pub const MAX_SQL_BYTES: usize = 512 * 1024;

/// The longest description a table may have: BigQuery's limit on a table's description.
pub const MAX_DESCRIPTION_BYTES: usize = 16 * 1024;

/// A named schedule that runs every table assigned to it: a period and an offset (Maestro's
/// rule), or a cron expression in a time zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Frequency {
    pub name: String,
    #[serde(default)]
    pub period_seconds: Option<i64>,
    #[serde(default)]
    pub offset_seconds: i64,
    /// Five fields: minute, hour, day of month, month, day of week.
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA zone of the cron expression and of the tables' calendar conditions (UTC
    /// when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// An inactive frequency creates no runs.
    #[serde(default = "default_true")]
    pub active: bool,
    /// At most this many of a run's jobs at once; the service default when absent.
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Frequency {
    /// An active frequency every `period_seconds` from the epoch, without offset, cap or
    /// description: for code that builds a catalog (tools, tests).
    pub fn every(name: &str, period_seconds: i64) -> Self {
        Self {
            name: name.to_string(),
            period_seconds: Some(period_seconds),
            offset_seconds: 0,
            cron: None,
            time_zone: None,
            active: true,
            concurrency: None,
            description: None,
        }
    }

    /// Its schedule, or what is wrong with it.
    pub fn schedule(&self) -> Result<Schedule, InvalidName> {
        let wrong = |e: crate::schedule::ScheduleError| {
            InvalidName(format!("frequency `{}`: {}", self.name, e.0))
        };
        match (self.period_seconds, &self.cron) {
            (Some(period), None) => {
                if self.time_zone.is_some() {
                    return Err(InvalidName(format!(
                        "frequency `{}`: a time zone goes with a cron expression, not a period",
                        self.name
                    )));
                }
                Schedule::period(period, self.offset_seconds).map_err(wrong)
            }
            (None, Some(cron)) => {
                if self.offset_seconds != 0 {
                    return Err(InvalidName(format!(
                        "frequency `{}`: an offset goes with a period, not a cron expression",
                        self.name
                    )));
                }
                Schedule::cron(cron, self.time_zone.as_deref()).map_err(wrong)
            }
            (Some(_), Some(_)) => Err(InvalidName(format!(
                "frequency `{}` has both a period and a cron expression: keep one",
                self.name
            ))),
            (None, None) => Err(InvalidName(format!(
                "frequency `{}` has neither a period (`every`) nor a cron expression (`cron`)",
                self.name
            ))),
        }
    }

    pub fn validate(&self) -> Result<(), InvalidName> {
        validate_frequency_name(&self.name)?;
        self.schedule()?;
        if self.concurrency == Some(0) {
            return Err(InvalidName(format!(
                "frequency `{}`: concurrency must be at least 1",
                self.name
            )));
        }
        Ok(())
    }
}

/// A catalog, or the part of one a request brings: frequencies and tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CatalogSpec {
    #[serde(default)]
    pub frequencies: Vec<Frequency>,
    #[serde(default)]
    pub tables: Vec<Table>,
}

/// One thing wrong with a catalog, said so that a person can find and fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Problem {
    /// Where: a file (with line and column when known) or a table or frequency name.
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl CatalogSpec {
    /// The problems that need no other knowledge than the spec itself: names, duplicates,
    /// schedules. `known_frequencies` are those already stored, which tables may also use.
    pub fn validate(&self, known_frequencies: &BTreeSet<String>) -> Vec<Problem> {
        self.validate_with_ids(known_frequencies).0
    }

    /// `validate`, and each table's id (`None` where its name is not one). Each table's own
    /// settings are checked on all cores for large catalogs; names defined twice and load
    /// prefixes that overlap, across tables. Problems come table by table, in the catalog's
    /// order.
    pub(crate) fn validate_with_ids(
        &self,
        known_frequencies: &BTreeSet<String>,
    ) -> (Vec<Problem>, Vec<Option<TableId>>) {
        let mut problems = Vec::new();
        let mut frequencies = BTreeSet::new();
        for frequency in &self.frequencies {
            if let Err(e) = frequency.validate() {
                problems.push(Problem {
                    at: format!("frequency {}", frequency.name),
                    message: e.0,
                });
            }
            if !frequencies.insert(frequency.name.clone()) {
                problems.push(Problem {
                    at: format!("frequency {}", frequency.name),
                    message: "defined twice".into(),
                });
            }
        }
        let defined =
            |name: &String| frequencies.contains(name) || known_frequencies.contains(name);
        let (ids, checked): (Vec<Option<TableId>>, Vec<OwnProblems>) =
            crate::parallel::map(&self.tables, 256, |t| t.own_problems(&defined))
                .into_iter()
                .unzip();
        let mut overlaps = self.overlapping_loads(&ids);
        let mut seen: HashMap<&TableId, usize> = HashMap::with_capacity(ids.len());
        for (index, (own, id)) in checked.into_iter().zip(&ids).enumerate() {
            if let Some(id) = id
                && let Some(first) = seen.insert(id, index)
            {
                problems.push(Problem {
                    at: own.at.clone(),
                    message: format!(
                        "table {id} is also defined by {}",
                        self.tables[first].origin()
                    ),
                });
            }
            problems.extend(own.settings);
            let Some(content) = own.content else {
                continue;
            };
            let table = &self.tables[index];
            if let (TableKind::Load, Some(spec)) = (table.kind, &table.load) {
                for other in overlaps.remove(&index).unwrap_or_default() {
                    let b = &self.tables[other];
                    problems.push(Problem {
                        at: own.at.clone(),
                        message: format!(
                            "prefix `{}` overlaps {}'s `{}`: a file would be whose?",
                            spec.prefix,
                            b.origin(),
                            b.load.as_ref().map_or("", |l| l.prefix.as_str()),
                        ),
                    });
                }
            }
            problems.extend(content);
        }
        (problems, ids)
    }

    /// For each table with a load prefix, the tables (in the catalog's order) whose prefixes
    /// begin with its own or its own with theirs: a file under both would be whose? Sorted,
    /// the prefixes that begin with a prefix follow it, so each is compared only with those.
    fn overlapping_loads(&self, ids: &[Option<TableId>]) -> HashMap<usize, Vec<usize>> {
        let mut prefixes: Vec<(&str, usize)> = self
            .tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((t.load.as_ref()?.prefix.as_str(), i)))
            .collect();
        prefixes.sort_unstable();
        let mut overlaps: HashMap<usize, Vec<usize>> = HashMap::new();
        for (n, (a, i)) in prefixes.iter().enumerate() {
            for (_, j) in prefixes[n + 1..]
                .iter()
                .take_while(|(b, _)| b.starts_with(a))
            {
                // A table defined twice does not overlap itself.
                if ids[*i] != ids[*j] {
                    overlaps.entry(*i).or_default().push(*j);
                    overlaps.entry(*j).or_default().push(*i);
                }
            }
        }
        for others in overlaps.values_mut() {
            others.sort_unstable();
        }
        overlaps
    }
}

/// A table's problems that need no other table, found on any thread.
struct OwnProblems {
    /// Where it is defined, for messages.
    at: String,
    /// Its name's or its settings' problems.
    settings: Vec<Problem>,
    /// Its content's problems (SQL, frequency); `None` when its name is invalid or it is too
    /// large to read.
    content: Option<Vec<Problem>>,
}

impl ImportSpec {
    fn problems(&self, mode: WriteMode) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(column) = &self.incremental else {
            if self.overlap_seconds.is_some() || !self.reimport.is_empty() {
                problems.push(
                    "`overlap` and `reimport` are for incremental imports (`incremental: column`)"
                        .into(),
                );
            }
            return problems;
        };
        if column.is_empty()
            || !column
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            problems.push(format!("`incremental` names a column, not `{column}`"));
        }
        match mode {
            WriteMode::Truncate => problems.push(
                "an incremental import adds to its table: write it `merge` (with a `key`) or \
                 `append`"
                    .into(),
            ),
            WriteMode::Append if self.overlap_seconds.is_some() => problems.push(
                "`overlap` reads rows again, which `append` would add twice: write it `merge` \
                 with a `key`"
                    .into(),
            ),
            _ => {}
        }
        if self.overlap_seconds.is_some_and(|s| s <= 0) {
            problems.push("`overlap` must be more than zero".into());
        }
        for condition in &self.reimport {
            if let Err(e) = condition.validate() {
                problems.push(format!("reimport: {}", e.0));
            }
        }
        problems
    }
}

/// The problems of import tables against the connections there are: each names a database
/// connection, and its SQL is the import form in that database's dialect.
pub fn import_problems(
    tables: &[Table],
    connections: &BTreeMap<String, crate::connections::ConnectionKind>,
) -> Vec<Problem> {
    use crate::connections::ConnectionKind;
    use crate::sql::import::{SourceDialect, check_import};
    let mut problems = Vec::new();
    for table in tables {
        let Some(spec) = table
            .import
            .as_ref()
            .filter(|_| table.kind == TableKind::Import)
        else {
            continue;
        };
        let dialect = match connections.get(&spec.connection) {
            Some(ConnectionKind::Postgres) => SourceDialect::PostgreSql,
            Some(ConnectionKind::Mysql) => SourceDialect::MySql,
            Some(other) => {
                problems.push(Problem {
                    at: table.origin(),
                    message: format!(
                        "connection `{}` is a {} connection, not a database",
                        spec.connection,
                        other.name()
                    ),
                });
                continue;
            }
            None => {
                problems.push(Problem {
                    at: table.origin(),
                    message: format!(
                        "connection `{}` does not exist: add it with `baton connections set {} \
                         --kind postgres` (or mysql)",
                        spec.connection, spec.connection
                    ),
                });
                continue;
            }
        };
        if let Err(e) = check_import(&table.sql, dialect) {
            problems.push(Problem {
                at: format!("{}:{}:{}", table.origin(), e.line, e.column),
                message: e.message,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dataset: &str, name: &str) -> Table {
        Table::query(&TableId::new(dataset, name).unwrap(), "SELECT 1")
    }

    #[test]
    fn sql_and_descriptions_over_their_limits_are_refused_naming_the_file() {
        let mut big = table("d", "t");
        big.source = Some("d/t.sql".into());
        big.sql = format!("SELECT 1 -- {}", "x".repeat(MAX_SQL_BYTES));
        let spec = CatalogSpec {
            frequencies: vec![],
            tables: vec![big.clone()],
        };
        let problems = spec.validate(&BTreeSet::new());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].at, "d/t.sql");
        assert!(
            problems[0].message.contains("524288 (512.0 KiB)"),
            "{}",
            problems[0]
        );
        big.sql = "SELECT 1".into();
        big.description = Some("x".repeat(MAX_DESCRIPTION_BYTES + 1));
        assert!(big.oversized().unwrap().contains("description"));
        big.description = None;
        assert_eq!(big.oversized(), None);
    }

    #[test]
    fn a_script_is_refused_for_the_modes_that_wrap_it_at_its_second_statement() {
        let spec = |mode: WriteMode, sql: &str| {
            let mut t = table("d", "t");
            t.write_mode = mode;
            t.sql = sql.into();
            if mode != WriteMode::Truncate {
                t.options.key = vec!["id".into()];
            }
            CatalogSpec {
                frequencies: vec![],
                tables: vec![t],
            }
            .validate(&BTreeSet::new())
        };
        let script = "-- write: merge\nSELECT 1 AS id;\n\nSELECT 2 AS id;\n";
        let problems = spec(WriteMode::Merge, script);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].at, "d.t:4:1");
        assert_eq!(
            problems[0].message,
            "write mode `merge`: one query is needed, not a script: a second statement begins here"
        );
        assert_eq!(spec(WriteMode::InsertUnique, script).len(), 1);
        // One query with its final semicolon is fine; other modes run scripts as they are.
        assert!(spec(WriteMode::Merge, "SELECT 1 AS id;\n").is_empty());
        assert!(spec(WriteMode::Truncate, script).is_empty());
    }

    #[test]
    fn write_modes_ask_for_the_options_they_need() {
        let problems = |mode: WriteMode, options: TableOptions| {
            let mut t = table("d", "t");
            t.write_mode = mode;
            t.options = Box::new(options);
            CatalogSpec {
                frequencies: vec![],
                tables: vec![t],
            }
            .validate(&BTreeSet::new())
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
        };
        assert!(problems(WriteMode::Merge, TableOptions::default())[0].contains("needs `key`"));
        assert!(
            problems(WriteMode::InsertUnique, TableOptions::default())[0].contains("needs `key`")
        );
        let keyed = TableOptions {
            key: vec!["id".into()],
            ..TableOptions::default()
        };
        assert!(problems(WriteMode::Merge, keyed.clone()).is_empty());
        assert!(problems(WriteMode::Append, keyed)[0].contains("`key` is for write modes"));
        assert!(
            problems(WriteMode::OverwritePartitions, TableOptions::default())[0]
                .contains("needs `partition_by` on a column")
        );
        let by_ingestion = TableOptions {
            partitioning: Some(Partitioning::parse("_PARTITIONTIME").unwrap()),
            ..TableOptions::default()
        };
        assert_eq!(
            problems(WriteMode::OverwritePartitions, by_ingestion.clone()).len(),
            1
        );
        assert!(problems(WriteMode::Truncate, by_ingestion).is_empty());
        let wide = TableOptions {
            clustering: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e f".into()],
            delete_flag: Some("gone".into()),
            ..TableOptions::default()
        };
        let messages = problems(WriteMode::Truncate, wide);
        assert_eq!(messages.len(), 3, "{messages:?}");
        let extract = |format, compression: &str, notify: &str, expiry| TableOptions {
            extract: Some(Extract {
                format,
                compression: Some(compression.into()),
                notify: Some(notify.into()),
                url_expiry_seconds: Some(expiry),
            }),
            ..TableOptions::default()
        };
        let fine = extract(FileFormat::Parquet, "zstd", "https://x.example/h", 3_600);
        assert!(problems(WriteMode::Truncate, fine).is_empty());
        let messages = problems(
            WriteMode::Truncate,
            extract(FileFormat::Avro, "gzip", "ftp://x.example", 8 * 86_400),
        );
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("deflate, snappy"), "{messages:?}");
    }

    #[test]
    fn table_ids_parse_and_print_as_dataset_dot_table() {
        let id: TableId = "analytics.orders_daily".parse().unwrap();
        assert_eq!(id.dataset(), "analytics");
        assert_eq!(id.table(), "orders_daily");
        assert_eq!(id.to_string(), "analytics.orders_daily");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"analytics.orders_daily\""
        );
    }

    #[test]
    fn table_ids_refuse_what_bigquery_refuses() {
        assert!("orders".parse::<TableId>().is_err());
        assert!("my-dataset.orders".parse::<TableId>().is_err());
        assert!("a.b.c".parse::<TableId>().is_err());
        assert!("ds.with space".parse::<TableId>().is_err());
        assert!("ds.with-dash".parse::<TableId>().is_ok());
        assert!(serde_json::from_str::<TableId>("\"nodot\"").is_err());
    }

    fn frequency(
        period: Option<i64>,
        offset: i64,
        cron: Option<&str>,
        zone: Option<&str>,
    ) -> Frequency {
        Frequency {
            name: "daily".into(),
            period_seconds: period,
            offset_seconds: offset,
            cron: cron.map(str::to_string),
            time_zone: zone.map(str::to_string),
            active: true,
            concurrency: None,
            description: None,
        }
    }

    #[test]
    fn frequencies_are_a_period_or_a_cron_expression() {
        assert!(
            frequency(Some(86_400), 7_200, None, None)
                .validate()
                .is_ok()
        );
        assert!(
            frequency(None, 0, Some("0 6 * * *"), Some("Europe/Paris"))
                .validate()
                .is_ok()
        );
        let err = |f: Frequency| f.validate().unwrap_err().0;
        assert!(err(frequency(Some(86_400), 86_400, None, None)).contains("offset"));
        assert!(err(frequency(Some(10), 0, None, None)).contains("at least 60"));
        assert!(err(frequency(Some(3600), 0, Some("0 * * * *"), None)).contains("both"));
        assert!(err(frequency(None, 0, None, None)).contains("neither"));
        assert!(err(frequency(Some(3600), 0, None, Some("UTC"))).contains("time zone goes with"));
        assert!(err(frequency(None, 60, Some("0 * * * *"), None)).contains("offset goes with"));
        let mut bad_name = frequency(Some(3600), 0, None, None);
        bad_name.name = "Daily".into();
        assert!(bad_name.validate().is_err());
    }

    #[test]
    fn validation_names_duplicates_and_unknown_frequencies() {
        let mut a = table("ds", "a");
        a.source = Some("ds/a.sql".into());
        let mut again = table("ds", "a");
        again.source = Some("other/a.sql".into());
        let mut b = table("ds", "b");
        b.frequency = Some("hourly".into());
        let spec = CatalogSpec {
            frequencies: vec![],
            tables: vec![a, again, b],
        };
        let problems = spec.validate(&BTreeSet::new());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].at, "other/a.sql");
        assert!(problems[0].message.contains("also defined by ds/a.sql"));
        assert!(problems[1].message.contains("`hourly` is not defined"));
        let known = BTreeSet::from(["hourly".to_string()]);
        assert_eq!(spec.validate(&known).len(), 1);
    }

    #[test]
    fn extract_formats_and_granularities_read_as_their_names() {
        use strum::VariantNames;
        assert_eq!(FileFormat::VARIANTS, ["csv", "ndjson", "avro", "parquet"]);
        assert_eq!("json".parse::<FileFormat>(), Ok(FileFormat::Ndjson));
        assert_eq!("Parquet".parse::<FileFormat>(), Ok(FileFormat::Parquet));
        assert!("xml".parse::<FileFormat>().is_err());
        assert_eq!("MONTH".parse::<Granularity>(), Ok(Granularity::Month));
        assert!("week".parse::<Granularity>().is_err());
    }
}
