//! Load tables: files that land in Cloud Storage under a table's prefix, claimed once each and
//! loaded into BigQuery in batches by one load job per batch.
//!
//! ```text
//! loads/{dataset.table}                     LoadSummary: the last loads, totals
//! loads/{dataset.table}/files/{file id}     LandedFile: claimed once, waiting → batched → loaded
//! loads/{dataset.table}/batches/{batch id}  Batch: its files, its load job, how it ended
//! ```
//!
//! A file's id comes from its bucket, name and generation, so a duplicate notification finds
//! the file claimed. A batch's id comes from its files, and its load job's id from the batch
//! and the batch's try, so a redelivery attaches to the load instead of starting another.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::catalog::FileFormat;
use crate::catalog::{TableId, WriteMode};
use crate::warehouse::Field;

/// The most files one batch (and so one load job) takes: one transaction marks them all
/// batched beside the batch's own document and the table's summary, within Firestore's 500
/// writes a commit.
pub const MAX_BATCH_FILES: usize = 490;

/// How many of its last loads a table's summary keeps.
pub const SUMMARY_LOADS: usize = 20;

/// How many times a batch's load is tried when BigQuery fails it transiently.
pub const LOAD_TRIES: u32 = 3;

/// How long a batch may stay loading before the tick's sweep sends its load again: longer
/// than an importer's delivery waits for a load (9 minutes), so only a load whose message was
/// lost, or whose importer died, is sent again; a redelivery attaches to the load anyway.
pub const STALE_BATCH_SECONDS: i64 = 15 * 60;

/// How CSV files are read (BigQuery's options of the same names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Header lines to skip.
    #[serde(default)]
    pub skip_leading_rows: u32,
    #[serde(default = "comma")]
    pub field_delimiter: String,
    #[serde(default = "double_quote")]
    pub quote: String,
    #[serde(default)]
    pub allow_quoted_newlines: bool,
    /// Rows missing trailing columns read them as NULL.
    #[serde(default)]
    pub allow_jagged_rows: bool,
    /// The text that means NULL (an empty field, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_marker: Option<String>,
    /// `UTF-8` (the default) or `ISO-8859-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

fn comma() -> String {
    ",".into()
}

fn double_quote() -> String {
    "\"".into()
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            skip_leading_rows: 0,
            field_delimiter: comma(),
            quote: double_quote(),
            allow_quoted_newlines: false,
            allow_jagged_rows: false,
            null_marker: None,
            encoding: None,
        }
    }
}

/// When waiting files are loaded: as soon as this many are waiting, or this many bytes, or the
/// oldest has waited this long (the tick looks every minute). A force loads what waits now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchPolicy {
    pub files: u32,
    pub bytes: u64,
    pub age_seconds: i64,
}

impl Default for BatchPolicy {
    /// 100 files, 1 GiB or 5 minutes: about a load every few minutes at most, well within
    /// BigQuery's 1,500 loads a table a day.
    fn default() -> Self {
        Self {
            files: 100,
            bytes: 1 << 30,
            age_seconds: 300,
        }
    }
}

/// Why a batch was formed.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Trigger {
    /// Enough files were waiting.
    Files,
    /// Enough bytes were waiting.
    Bytes,
    /// The oldest waiting file had waited long enough.
    Age,
    /// Someone asked (`baton load --force`).
    Force,
}

/// What waits to be loaded, as the policy weighs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waiting {
    pub files: usize,
    pub bytes: u64,
    pub oldest: Option<Timestamp>,
}

impl Waiting {
    pub fn of(files: &[LandedFile]) -> Self {
        Self {
            files: files.len(),
            bytes: files.iter().map(|f| f.size).sum(),
            oldest: files.iter().map(|f| f.arrived).min(),
        }
    }
}

impl BatchPolicy {
    /// Whether what waits is due for a load now, and why; a batch never forms of nothing.
    pub fn due(&self, waiting: &Waiting, now: Timestamp, force: bool) -> Option<Trigger> {
        if waiting.files == 0 {
            return None;
        }
        if force {
            return Some(Trigger::Force);
        }
        if waiting.files >= self.files as usize {
            return Some(Trigger::Files);
        }
        if waiting.bytes >= self.bytes {
            return Some(Trigger::Bytes);
        }
        let waited = waiting
            .oldest
            .map_or(0, |oldest| now.duration_since(oldest).as_secs());
        (waited >= self.age_seconds).then_some(Trigger::Age)
    }

    /// When the oldest of `waiting` becomes due by age.
    pub fn due_at(&self, waiting: &Waiting) -> Option<Timestamp> {
        let oldest = waiting.oldest?;
        oldest
            .checked_add(jiff::SignedDuration::from_secs(self.age_seconds))
            .ok()
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.files == 0 {
            problems.push("`batch.files` must be at least 1".into());
        }
        if self.files as usize > MAX_BATCH_FILES {
            problems.push(format!(
                "`batch.files` is at most {MAX_BATCH_FILES}: one load takes that many files"
            ));
        }
        if self.bytes == 0 {
            problems.push("`batch.bytes` must be more than zero".into());
        }
        if self.age_seconds < 0 {
            problems.push("`batch.age` must not be negative".into());
        }
        problems
    }
}

/// Where a load table's files come from and how they are read and loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSpec {
    /// The object prefix in the landing bucket that is this table's (`shop/payments/`).
    pub prefix: String,
    #[serde(default)]
    pub format: FileFormat,
    /// CSV's options; `None` for the other formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvOptions>,
    /// The table's columns; none means BigQuery detects them from the files (Parquet and
    /// Avro carry theirs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Field>,
    /// Rows BigQuery may reject in one load before it fails the load.
    #[serde(default)]
    pub max_bad_records: u32,
    /// Whether a file's new columns may extend a table whose columns are detected.
    #[serde(default)]
    pub new_columns: NewColumns,
    #[serde(default)]
    pub batch: BatchPolicy,
}

/// What a load does with a file's columns that its table lacks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NewColumns {
    /// The load fails, naming the file's columns and the table's; its files are held.
    #[default]
    Refuse,
    /// They are added to the table as nullable columns, typed as BigQuery detects them.
    Add,
}

impl LoadSpec {
    /// The prefix of the files this table takes, for the table when it names none.
    pub fn default_prefix(table: &TableId) -> String {
        format!("{}/{}/", table.dataset(), table.table())
    }

    /// Whether an object of the landing bucket is one of this table's files. Names ending in
    /// `/` (folders made by consoles) are not files.
    pub fn takes(&self, object: &str) -> bool {
        under_prefix(&self.prefix, object)
    }

    pub fn problems(&self, write_mode: WriteMode) -> Vec<String> {
        let mut problems = Vec::new();
        if self.prefix.is_empty() || !self.prefix.ends_with('/') || self.prefix.starts_with('/') {
            problems.push(format!(
                "`prefix` is a folder of the landing bucket, ending in `/` and not starting \
                 with one (`shop/payments/`), not `{}`",
                self.prefix
            ));
        }
        if !matches!(write_mode, WriteMode::Append | WriteMode::Truncate) {
            problems.push(format!(
                "a load table is written `append` (the default: each load adds its files' \
                 rows) or `truncate` (each load replaces the table), not `{}`",
                write_mode.name()
            ));
        }
        if self.csv.is_some() && self.format != FileFormat::Csv {
            problems.push(format!(
                "`[csv]` options are for format `csv`, not `{}`",
                self.format.name()
            ));
        }
        if let Some(csv) = &self.csv {
            for (name, value) in [
                ("field_delimiter", &csv.field_delimiter),
                ("quote", &csv.quote),
            ] {
                if value.chars().count() != 1 {
                    problems.push(format!("`csv.{name}` is one character, not `{value}`"));
                }
            }
            if let Some(encoding) = &csv.encoding
                && !matches!(encoding.as_str(), "UTF-8" | "ISO-8859-1")
            {
                problems.push(format!(
                    "`csv.encoding` is `UTF-8` or `ISO-8859-1`, not `{encoding}`"
                ));
            }
        }
        if let Some(csv) = &self.csv
            && self.format == FileFormat::Csv
            && self.columns.is_empty()
            && csv.skip_leading_rows == 0
        {
            problems.push(
                "without `columns`, a CSV file's header line names its columns: set \
                 `skip_leading_rows = 1` under `[csv]` (or list the `columns`)"
                    .into(),
            );
        }
        if self.new_columns == NewColumns::Add && !self.columns.is_empty() {
            problems.push(
                "`new_columns = \"add\"` is for detected columns: with `columns`, a new column \
                 is added by adding it to `columns`"
                    .into(),
            );
        }
        if self.format.self_describing() && !self.columns.is_empty() {
            problems.push(format!(
                "{} files carry their own schema: leave `columns` out",
                self.format.name()
            ));
        }
        problems.extend(self.batch.problems());
        problems
    }
}

/// Whether `object` is a file under `prefix` (names ending in `/` are folders).
pub fn under_prefix(prefix: &str, object: &str) -> bool {
    object.starts_with(prefix) && !object.ends_with('/')
}

/// BigQuery's column types as a load's schema declares them.
const COLUMN_TYPES: &[&str] = &[
    "INT64",
    "INTEGER",
    "FLOAT64",
    "FLOAT",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOL",
    "BOOLEAN",
    "STRING",
    "BYTES",
    "DATE",
    "DATETIME",
    "TIME",
    "TIMESTAMP",
    "JSON",
    "GEOGRAPHY",
];

/// One column written as BigQuery's DDL writes it: `id INT64 NOT NULL`, `tags ARRAY<STRING>`,
/// `note STRING`.
pub fn parse_column(text: &str) -> Result<Field, String> {
    let text = text.trim();
    let (name, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("`{text}` is not `name TYPE`, e.g. `id INT64 NOT NULL`"))?;
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!(
            "`{name}` is not a column name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    let rest = rest.trim();
    let upper = rest.to_ascii_uppercase();
    let (type_text, required) = match upper.strip_suffix("NOT NULL") {
        Some(t) => (t.trim_end().to_string(), true),
        None => (upper.clone(), false),
    };
    let (field_type, repeated) = match type_text
        .strip_prefix("ARRAY<")
        .and_then(|t| t.strip_suffix('>'))
    {
        Some(inner) => (inner.trim().to_string(), true),
        None => (type_text.clone(), false),
    };
    if !COLUMN_TYPES.contains(&field_type.as_str()) {
        return Err(format!(
            "`{rest}` of column `{name}` is not a type a load declares ({}, or ARRAY<…> of one; \
             STRUCT columns need a self-describing format or detection)",
            COLUMN_TYPES.join(", ")
        ));
    }
    if repeated && required {
        return Err(format!(
            "column `{name}`: an ARRAY cannot be NOT NULL (BigQuery reads a missing one as empty)"
        ));
    }
    let mode = if repeated {
        "REPEATED"
    } else if required {
        "REQUIRED"
    } else {
        "NULLABLE"
    };
    Ok(Field {
        name: name.to_string(),
        field_type,
        mode: Some(mode.to_string()),
        fields: Vec::new(),
        rest: serde_json::Map::new(),
    })
}

/// How many bytes of a file are read to find its columns (a CSV header line, an NDJSON file's
/// first record).
pub const HEAD_BYTES: u64 = 64 * 1024;

/// The columns a file's first bytes name: the header line of a CSV file (the last line it
/// skips), the keys of an NDJSON file's first record; `None` when the format or the options
/// name none (Parquet, Avro, a CSV without a header) or the head ends before them. `whole`:
/// `head` is the whole file, so its last line is complete.
pub fn file_columns(
    format: FileFormat,
    csv: Option<&CsvOptions>,
    head: &[u8],
    whole: bool,
) -> Option<Vec<String>> {
    // Only complete lines are read.
    let complete = if whole {
        head
    } else {
        &head[..head
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1)]
    };
    match format {
        FileFormat::Csv => {
            let csv = csv?;
            let header = usize::try_from(csv.skip_leading_rows)
                .ok()?
                .checked_sub(1)?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(*csv.field_delimiter.as_bytes().first()?)
                .quote(*csv.quote.as_bytes().first()?)
                .from_reader(complete);
            let record = reader.byte_records().nth(header)?.ok()?;
            Some(
                record
                    .iter()
                    .map(|name| String::from_utf8_lossy(name).trim().to_string())
                    .collect(),
            )
        }
        FileFormat::Ndjson => {
            let line = complete
                .split(|b| *b == b'\n')
                .find(|line| !line.trim_ascii().is_empty())?;
            let record: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(line).ok()?;
            Some(record.into_iter().map(|(name, _)| name).collect())
        }
        FileFormat::Parquet | FileFormat::Avro => None,
    }
}

/// How a file's columns fit its table's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The file's columns are the table's (or, in NDJSON, some of them).
    Fits,
    /// As the table's, with these more (after the table's, in CSV).
    Adds(Vec<String>),
    /// Not the table's, and why.
    Differs(String),
}

/// How the columns a file names (`file_columns`) fit the table's. BigQuery's column names
/// are not case-sensitive. A CSV's columns are read by position, so its header must list the
/// table's columns in their order (with new ones after them; without the last ones only when
/// the rows may be jagged and those columns are nullable). An NDJSON record's keys are read by
/// name, so any order fits, and a key only a required column lacks.
pub fn fit(format: FileFormat, csv: Option<&CsvOptions>, file: &[String], table: &[Field]) -> Fit {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let required = |f: &Field| f.mode.as_deref() == Some("REQUIRED");
    match format {
        FileFormat::Csv => {
            for (at, column) in table.iter().enumerate() {
                match file.get(at) {
                    Some(name) if same(name, &column.name) => {}
                    Some(name) => {
                        return Fit::Differs(format!(
                            "column {} is `{name}` in the file and `{}` in the table (a CSV \
                             file's columns are read by position)",
                            at + 1,
                            column.name
                        ));
                    }
                    None => {
                        let missing = &table[at..];
                        let jagged = csv.is_some_and(|c| c.allow_jagged_rows);
                        if jagged && !missing.iter().any(required) {
                            return Fit::Fits;
                        }
                        return Fit::Differs(format!(
                            "the file lacks {} (a file may leave out its last columns only when \
                             they are nullable and `allow_jagged_rows` is set)",
                            names(missing)
                        ));
                    }
                }
            }
            match &file[table.len().min(file.len())..] {
                [] => Fit::Fits,
                more => Fit::Adds(more.to_vec()),
            }
        }
        _ => {
            let missing: Vec<&Field> = table
                .iter()
                .filter(|c| required(c) && !file.iter().any(|n| same(n, &c.name)))
                .collect();
            if !missing.is_empty() {
                return Fit::Differs(format!(
                    "its first record lacks {}, which the table requires",
                    names(missing)
                ));
            }
            let more: Vec<String> = file
                .iter()
                .filter(|n| !table.iter().any(|c| same(n, &c.name)))
                .cloned()
                .collect();
            if more.is_empty() {
                Fit::Fits
            } else {
                Fit::Adds(more)
            }
        }
    }
}

fn names<'a>(columns: impl IntoIterator<Item = &'a Field>) -> String {
    columns
        .into_iter()
        .map(|c| format!("`{}`", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table's columns as a person reads them: `id INT64 NOT NULL, note STRING`.
pub fn describe_columns(columns: &[Field]) -> String {
    if columns.is_empty() {
        return "(none)".into();
    }
    columns
        .iter()
        .map(|c| {
            let not_null = if c.mode.as_deref() == Some("REQUIRED") {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{not_null}", c.name, c.column().field_type)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a claimed file is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Claimed, in no batch yet.
    Waiting,
    /// In a batch whose load has not ended.
    Batched,
    Loaded,
    /// In a batch whose load failed for good: loaded again only when forced.
    Held,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Batched => "batched",
            Self::Loaded => "loaded",
            Self::Held => "held",
        }
    }
}

/// A file claimed for a load table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LandedFile {
    pub table: TableId,
    pub bucket: String,
    pub name: String,
    pub generation: String,
    pub size: u64,
    /// When its notification was handled.
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "String")]
    pub arrived: Timestamp,
    pub state: FileState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

impl LandedFile {
    /// The document id of the object's generation: a file replaced by a new upload under the
    /// same name is a new file.
    pub fn id(&self) -> String {
        file_id(&self.bucket, &self.name, &self.generation)
    }

    pub fn uri(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.name)
    }
}

pub fn file_id(bucket: &str, name: &str, generation: &str) -> String {
    let digest = Sha256::digest(format!("{bucket}\n{name}\n{generation}").as_bytes());
    hex::encode(&digest[..16])
}

/// How a batch's load stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Loading,
    Loaded,
    Failed,
}

/// One file of a batch, as the batch remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchFile {
    pub id: String,
    pub name: String,
    pub size: u64,
}

/// Files loaded together by one load job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Batch {
    pub id: String,
    pub table: TableId,
    pub bucket: String,
    pub files: Vec<BatchFile>,
    pub bytes: u64,
    pub trigger: Trigger,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "String")]
    pub formed: Timestamp,
    /// Counts from 1; a transient failure of the load tries again under a new job id.
    pub try_number: u32,
    pub state: BatchState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    /// Rows BigQuery skipped (at most the table's `max_bad_records`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_records: Option<i64>,
    /// Where the rejected rows' errors were written (`gs://…/rejects.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// BigQuery's reasons for a failed load, or for the rows it rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(
        default,
        with = "crate::stamp::optional_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub ended: Option<Timestamp>,
}

impl Batch {
    /// The batch of `files` (in the order they arrived; the id does not depend on it).
    pub fn form(
        table: &TableId,
        bucket: &str,
        files: &[LandedFile],
        trigger: Trigger,
        now: Timestamp,
    ) -> Self {
        let mut ids: Vec<String> = files.iter().map(LandedFile::id).collect();
        ids.sort();
        let digest = Sha256::digest(ids.join("\n").as_bytes());
        Self {
            id: hex::encode(&digest[..12]),
            table: table.clone(),
            bucket: bucket.to_string(),
            files: files
                .iter()
                .map(|f| BatchFile {
                    id: f.id(),
                    name: f.name.clone(),
                    size: f.size,
                })
                .collect(),
            bytes: files.iter().map(|f| f.size).sum(),
            trigger,
            formed: now,
            try_number: 1,
            state: BatchState::Loading,
            rows: None,
            bad_records: None,
            rejects: None,
            errors: Vec::new(),
            ended: None,
        }
    }

    /// The BigQuery job id of this try of the batch's load: `baton-load_`, the table, the
    /// batch and the try (a query job's id begins `baton_`, a token `baton-token_`).
    pub fn job_id(&self) -> String {
        let readable: String =
            format!("baton-load_{}_{}", self.table.dataset(), self.table.table())
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(200)
                .collect();
        format!("{readable}_{}_{}", self.id, self.try_number)
    }

    pub fn uris(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| format!("gs://{}/{}", self.bucket, f.name))
            .collect()
    }

    pub fn record(&self) -> LoadRecord {
        LoadRecord {
            batch: self.id.clone(),
            try_number: self.try_number,
            files: self.files.len(),
            bytes: self.bytes,
            trigger: self.trigger,
            state: self.state,
            rows: self.rows,
            bad_records: self.bad_records,
            rejects: self.rejects.clone(),
            errors: self.errors.clone(),
            formed: self.formed,
            ended: self.ended,
        }
    }
}

/// One load as a table's summary tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadRecord {
    pub batch: String,
    /// A batch loaded again (held, then forced) is another load: its next try.
    #[serde(default = "first_try")]
    pub try_number: u32,
    pub files: usize,
    pub bytes: u64,
    pub trigger: Trigger,
    pub state: BatchState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_records: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "String")]
    pub formed: Timestamp,
    #[serde(
        default,
        with = "crate::stamp::optional_timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub ended: Option<Timestamp>,
}

fn first_try() -> u32 {
    1
}

/// A load table's record of its loads (`loads/{table}`), written when a load ends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    /// The last loads, the latest first.
    #[serde(default)]
    pub last: Vec<LoadRecord>,
    #[serde(default)]
    pub files_loaded: u64,
    #[serde(default)]
    pub rows_loaded: i64,
}

impl LoadSummary {
    /// The summary with `batch`'s end recorded (again, if it was: a repeat of one try
    /// replaces it).
    pub fn with(mut self, batch: &Batch) -> Self {
        let record = batch.record();
        let same = |r: &LoadRecord| r.batch == record.batch && r.try_number == record.try_number;
        let repeat = self.last.iter().any(same);
        self.last.retain(|r| !same(r));
        if batch.state == BatchState::Loaded && !repeat {
            self.files_loaded += batch.files.len() as u64;
            self.rows_loaded += batch.rows.unwrap_or(0);
        }
        self.last.insert(0, record);
        self.last.truncate(SUMMARY_LOADS);
        self
    }
}

/// What `GET /v1/loads/{table}` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadStatus {
    pub table: TableId,
    /// `gs://bucket/prefix`: where its files land.
    pub landing: String,
    pub waiting_files: usize,
    pub waiting_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub oldest_waiting: Option<Timestamp>,
    /// Files whose load failed for good, loaded again by a force.
    pub held_files: usize,
    /// Loads formed and not ended.
    pub loading: Vec<LoadRecord>,
    #[serde(flatten)]
    pub summary: LoadSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64, arrived: &str) -> LandedFile {
        LandedFile {
            table: "shop.payments".parse().unwrap(),
            bucket: "landing".into(),
            name: name.into(),
            generation: "1".into(),
            size,
            arrived: arrived.parse().unwrap(),
            state: FileState::Waiting,
            batch: None,
        }
    }

    #[test]
    fn a_batch_is_due_by_files_bytes_age_or_force() {
        let policy = BatchPolicy {
            files: 3,
            bytes: 100,
            age_seconds: 60,
        };
        let now: Timestamp = "2026-12-01T10:00:30Z".parse().unwrap();
        let two = [
            file("a", 10, "2026-12-01T10:00:00Z"),
            file("b", 10, "2026-12-01T10:00:10Z"),
        ];
        assert_eq!(policy.due(&Waiting::of(&two), now, false), None);
        assert_eq!(
            policy.due(&Waiting::of(&two), now, true),
            Some(Trigger::Force)
        );
        assert_eq!(policy.due(&Waiting::of(&[]), now, true), None);
        let three = [
            two[0].clone(),
            two[1].clone(),
            file("c", 1, "2026-12-01T10:00:20Z"),
        ];
        assert_eq!(
            policy.due(&Waiting::of(&three), now, false),
            Some(Trigger::Files)
        );
        let big = [file("d", 100, "2026-12-01T10:00:20Z")];
        assert_eq!(
            policy.due(&Waiting::of(&big), now, false),
            Some(Trigger::Bytes)
        );
        let later: Timestamp = "2026-12-01T10:01:00Z".parse().unwrap();
        assert_eq!(
            policy.due(&Waiting::of(&two), later, false),
            Some(Trigger::Age)
        );
        assert_eq!(policy.due_at(&Waiting::of(&two)), Some(later));
    }

    #[test]
    fn a_batch_is_named_by_its_files_and_its_job_by_the_try() {
        let table: TableId = "shop.payments".parse().unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let a = file("shop/payments/a.csv", 1, "2026-12-01T10:00:00Z");
        let b = file("shop/payments/b.csv", 1, "2026-12-01T10:00:01Z");
        let one = Batch::form(
            &table,
            "landing",
            &[a.clone(), b.clone()],
            Trigger::Files,
            now,
        );
        let other = Batch::form(
            &table,
            "landing",
            &[b.clone(), a.clone()],
            Trigger::Age,
            now,
        );
        assert_eq!(one.id, other.id);
        assert_ne!(
            one.id,
            Batch::form(&table, "landing", &[a], Trigger::Files, now).id
        );
        let mut again = one.clone();
        again.try_number = 2;
        assert_ne!(one.job_id(), again.job_id());
        assert!(one.job_id().starts_with("baton-load_shop_payments_"));
        // Never in the shape of an API token, now or as tokens were (`baton_` and 43
        // characters), whatever the table's name: the log scan for tokens would take it for one.
        assert!(!one.job_id().starts_with(crate::access::TOKEN_PREFIX));
        assert!(!one.job_id().starts_with("baton_"));
        assert_eq!(one.uris()[1], "gs://landing/shop/payments/b.csv");
        // A new generation of a file is another file.
        let mut replaced = b;
        replaced.generation = "2".into();
        assert_ne!(
            replaced.id(),
            file("shop/payments/b.csv", 1, "2026-12-01T10:00:01Z").id()
        );
    }

    #[test]
    fn columns_read_as_bigquery_ddl() {
        let id = parse_column("id INT64 NOT NULL").unwrap();
        assert_eq!(
            (id.field_type.as_str(), id.mode.as_deref()),
            ("INT64", Some("REQUIRED"))
        );
        let tags = parse_column("tags array<string>").unwrap();
        assert_eq!(
            (tags.field_type.as_str(), tags.mode.as_deref()),
            ("STRING", Some("REPEATED"))
        );
        assert_eq!(
            parse_column("note STRING").unwrap().mode.as_deref(),
            Some("NULLABLE")
        );
        assert!(parse_column("id").unwrap_err().contains("name TYPE"));
        assert!(
            parse_column("1id INT64")
                .unwrap_err()
                .contains("column name")
        );
        assert!(
            parse_column("x VARCHAR")
                .unwrap_err()
                .contains("not a type")
        );
        assert!(
            parse_column("x ARRAY<INT64> NOT NULL")
                .unwrap_err()
                .contains("ARRAY")
        );
    }

    #[test]
    fn a_summary_keeps_the_last_loads_and_counts_each_once() {
        let table: TableId = "shop.payments".parse().unwrap();
        let f = file("shop/payments/a.csv", 5, "2026-12-01T10:00:00Z");
        let mut batch = Batch::form(
            &table,
            "landing",
            &[f],
            Trigger::Force,
            Timestamp::UNIX_EPOCH,
        );
        batch.state = BatchState::Loaded;
        batch.rows = Some(7);
        let summary = LoadSummary::default().with(&batch).with(&batch);
        assert_eq!((summary.files_loaded, summary.rows_loaded), (1, 7));
        assert_eq!(summary.last.len(), 1);
        // Its second try, after a failed first, is another load.
        batch.try_number = 2;
        let summary = summary.with(&batch);
        assert_eq!(summary.last.len(), 2);
    }

    #[test]
    fn specs_say_what_is_wrong() {
        let mut spec = LoadSpec {
            prefix: "payments".into(),
            format: FileFormat::Parquet,
            csv: Some(CsvOptions::default()),
            columns: vec![parse_column("id INT64").unwrap()],
            max_bad_records: 0,
            new_columns: NewColumns::Refuse,
            batch: BatchPolicy {
                files: 0,
                ..BatchPolicy::default()
            },
        };
        let problems = spec.problems(WriteMode::Merge).join("\n");
        for expected in [
            "ending in `/`",
            "not `merge`",
            "[csv]",
            "own schema",
            "batch.files",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
        spec.prefix = "payments/".into();
        assert!(spec.takes("payments/2026/a.csv"));
        assert!(!spec.takes("payments/2026/"));
        assert!(!spec.takes("payments-old/a.csv"));
    }

    fn columns(ddl: &[&str]) -> Vec<Field> {
        ddl.iter().map(|c| parse_column(c).unwrap()).collect()
    }

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_files_columns_are_its_header_or_its_first_records_keys() {
        let header = CsvOptions {
            skip_leading_rows: 1,
            ..CsvOptions::default()
        };
        let csv = Some(&header);
        fn read(
            format: FileFormat,
            csv: Option<&CsvOptions>,
            head: &str,
            whole: bool,
        ) -> Option<Vec<String>> {
            file_columns(format, csv, head.as_bytes(), whole)
        }
        assert_eq!(
            read(
                FileFormat::Csv,
                csv,
                "id ,\"amount, in €\",note\n1,2,3\n",
                false
            ),
            Some(strings(&["id", "amount, in €", "note"]))
        );
        // The header is the last line skipped; other delimiters and quotes are honoured.
        let semicolons = CsvOptions {
            skip_leading_rows: 2,
            field_delimiter: ";".into(),
            quote: "'".into(),
            ..CsvOptions::default()
        };
        assert_eq!(
            read(
                FileFormat::Csv,
                Some(&semicolons),
                "exported 2026-12-01\nid;'a;b'\n1;2\n",
                false
            ),
            Some(strings(&["id", "a;b"]))
        );
        // A header the head cuts off is not read, unless the head is the whole file.
        assert_eq!(read(FileFormat::Csv, csv, "id,amo", false), None);
        assert_eq!(
            read(FileFormat::Csv, csv, "id,amount", true),
            Some(strings(&["id", "amount"]))
        );
        // No header, no names.
        assert_eq!(
            read(
                FileFormat::Csv,
                Some(&CsvOptions::default()),
                "1,2\n",
                false
            ),
            None
        );
        assert_eq!(
            read(
                FileFormat::Ndjson,
                None,
                "\n{\"id\": 1, \"page\": {\"a\": 1}}\n{\"x\": 2}\n",
                false
            ),
            Some(strings(&["id", "page"]))
        );
        assert_eq!(read(FileFormat::Ndjson, None, "[1, 2]\n", false), None);
        assert_eq!(read(FileFormat::Parquet, None, "PAR1", true), None);
    }

    #[test]
    fn a_files_columns_fit_the_tables_or_add_to_them_or_differ() {
        let table = columns(&["id INT64 NOT NULL", "amount NUMERIC", "note STRING"]);
        let header = CsvOptions {
            skip_leading_rows: 1,
            ..CsvOptions::default()
        };
        let csv = |names: &[&str]| fit(FileFormat::Csv, Some(&header), &strings(names), &table);
        assert_eq!(csv(&["ID", "Amount", "note"]), Fit::Fits);
        assert_eq!(
            csv(&["id", "amount", "note", "paid_at"]),
            Fit::Adds(strings(&["paid_at"]))
        );
        let Fit::Differs(why) = csv(&["id", "note", "amount"]) else {
            panic!("a reordered header fits");
        };
        assert!(
            why.contains("column 2 is `note` in the file and `amount` in the table"),
            "{why}"
        );
        let Fit::Differs(why) = csv(&["id", "amount"]) else {
            panic!("a short header fits");
        };
        assert!(
            why.contains("lacks `note`") && why.contains("allow_jagged_rows"),
            "{why}"
        );
        let jagged = CsvOptions {
            allow_jagged_rows: true,
            ..header.clone()
        };
        assert_eq!(
            fit(
                FileFormat::Csv,
                Some(&jagged),
                &strings(&["id", "amount"]),
                &table
            ),
            Fit::Fits
        );
        assert!(
            matches!(
                fit(FileFormat::Csv, Some(&jagged), &strings(&[]), &table),
                Fit::Differs(_)
            ),
            "a required column cannot be left out"
        );

        let json = |names: &[&str]| fit(FileFormat::Ndjson, None, &strings(names), &table);
        assert_eq!(json(&["note", "id"]), Fit::Fits);
        assert_eq!(json(&["id", "referrer"]), Fit::Adds(strings(&["referrer"])));
        let Fit::Differs(why) = json(&["amount"]) else {
            panic!("a record without a required column fits");
        };
        assert!(
            why.contains("lacks `id`, which the table requires"),
            "{why}"
        );
        assert_eq!(
            describe_columns(&table),
            "id INTEGER NOT NULL, amount NUMERIC, note STRING"
        );
    }

    #[test]
    fn detected_csv_columns_need_a_header_and_new_columns_need_detection() {
        let mut spec = LoadSpec {
            prefix: "in/".into(),
            format: FileFormat::Csv,
            csv: Some(CsvOptions::default()),
            columns: Vec::new(),
            max_bad_records: 0,
            new_columns: NewColumns::Add,
            batch: BatchPolicy::default(),
        };
        let problems = spec.problems(WriteMode::Append);
        assert!(
            problems.len() == 1 && problems[0].contains("skip_leading_rows = 1"),
            "{problems:?}"
        );
        spec.csv = Some(CsvOptions {
            skip_leading_rows: 1,
            ..CsvOptions::default()
        });
        assert!(spec.problems(WriteMode::Append).is_empty());
        spec.columns = columns(&["id INT64"]);
        let problems = spec.problems(WriteMode::Append);
        assert!(
            problems.len() == 1 && problems[0].contains("adding it to `columns`"),
            "{problems:?}"
        );
    }
}
