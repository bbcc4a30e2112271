//! A catalog kept as files: a folder with a `baton.toml` (frequencies and defaults) and one
//! `.sql` file per table, whose leading `-- key: value` comment lines are its settings.
//!
//! ```text
//! catalog/
//!   baton.toml             [frequencies.daily] every = "24h", offset = "2h"
//!   shop/orders.sql        -- frequency: daily      (dataset `shop`: the folder's name)
//!   analytics/totals.sql   -- frequency: daily
//!                          -- description: Revenue per customer
//! ```
//!
//! The settings block is the file's first lines of the form `-- key: value`; it ends at the
//! first line that is not one. Within it an unknown key is an error, so a typo never turns
//! into a silently ignored setting. `condition` may be given several times (any one holding
//! is enough): `-- condition: months=jan,apr,jul,oct days=1` or `-- condition: weekdays=mon-fri
//! hours=6`.
//!
//! A load table, filled by the files that land under its prefix, has no SQL: it is a
//! `NAME.load.toml` file beside the `.sql` files, its settings in TOML (`LoadFile`), because a
//! schema, CSV options and a batching policy are structured data that a header of `-- key:
//! value` lines would have to invent a syntax for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::{
    CatalogSpec, Extract, FileFormat, Frequency, ImportSpec, Partitioning, Problem, Table, TableId,
    TableKind, TableOptions, WriteMode,
};
use crate::schedule::Condition;

pub const MANIFEST: &str = "baton.toml";

/// The settings a `.sql` file's header may carry.
pub const TABLE_KEYS: &[&str] = &[
    "name",
    "dataset",
    "import",
    "incremental",
    "overlap",
    "reimport",
    "frequency",
    "write",
    "description",
    "owner",
    "group",
    "depends_on",
    "condition",
    "key",
    "delete_flag",
    "partition_by",
    "partition_expiration",
    "cluster_by",
    "expiration",
    "max_bytes_billed",
    "timeout",
    "retries",
    "extract",
    "extract_compression",
    "extract_url_expiry",
    "notify",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The dataset of `.sql` files at the folder's top level.
    dataset: Option<String>,
    /// The frequency of tables whose header names none.
    frequency: Option<String>,
    owner: Option<String>,
    group: Option<String>,
    #[serde(default)]
    frequencies: BTreeMap<String, ManifestFrequency>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFrequency {
    every: Option<Duration>,
    offset: Option<Duration>,
    cron: Option<String>,
    time_zone: Option<String>,
    #[serde(default = "super::default_true")]
    active: bool,
    concurrency: Option<u32>,
    description: Option<String>,
}

/// Seconds, or a duration such as `"24h"`, `"1h 30m"` or `"7days"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Duration {
    Seconds(i64),
    Text(String),
}

impl Duration {
    fn seconds(&self) -> Result<i64, String> {
        match self {
            Duration::Seconds(s) => Ok(*s),
            Duration::Text(text) => humantime::parse_duration(text)
                .map_err(|e| format!("`{text}` is not a duration ({e})"))
                .and_then(|d| {
                    i64::try_from(d.as_secs()).map_err(|_| format!("`{text}` is too long"))
                }),
        }
    }
}

/// What a `.sql` file inherits when its header says nothing.
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    pub dataset: Option<String>,
    pub frequency: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// Reads `baton.toml`'s text: the frequencies it defines and the folder's defaults.
pub fn parse_manifest(at: &str, text: &str) -> Result<(Vec<Frequency>, Defaults), Vec<Problem>> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        vec![Problem {
            at: at.to_string(),
            message: e.to_string().trim_end().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut frequencies = Vec::new();
    for (name, f) in manifest.frequencies {
        let period = f.every.as_ref().map(Duration::seconds).transpose();
        let offset = f.offset.as_ref().map(Duration::seconds).transpose();
        match (period, offset) {
            (Ok(period_seconds), Ok(offset_seconds)) => frequencies.push(Frequency {
                name,
                period_seconds,
                offset_seconds: offset_seconds.unwrap_or(0),
                cron: f.cron,
                time_zone: f.time_zone,
                active: f.active,
                concurrency: f.concurrency,
                description: f.description,
            }),
            (Err(message), _) | (_, Err(message)) => problems.push(Problem {
                at: format!("{at}: frequencies.{name}"),
                message,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let defaults = Defaults {
        dataset: manifest.dataset,
        frequency: manifest.frequency,
        owner: manifest.owner,
        group: manifest.group,
    };
    Ok((frequencies, defaults))
}

/// Reads one table's `.sql` file: `at` names it in messages, `stem` is its default name. The
/// file's text becomes the table's SQL, header and all, without a copy.
pub fn parse_table_file(
    at: &str,
    stem: &str,
    text: String,
    defaults: &Defaults,
) -> Result<Table, Vec<Problem>> {
    let table = read_table_header(at, stem, &text, defaults)?;
    Ok(Table { sql: text, ..table })
}

/// The table a `.sql` file's header defines, its SQL left empty.
fn read_table_header(
    at: &str,
    stem: &str,
    text: &str,
    defaults: &Defaults,
) -> Result<Table, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut settings: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    let mut conditions = Vec::new();
    let mut reimports = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some((key, value)) = header_setting(line) else {
            break;
        };
        let line_number = index + 1;
        if key == "condition" || key == "reimport" {
            let into = if key == "condition" {
                &mut conditions
            } else {
                &mut reimports
            };
            match parse_condition(value) {
                Ok(c) => into.push(c),
                Err(message) => problems.push(Problem {
                    at: format!("{at}:{line_number}"),
                    message,
                }),
            }
            continue;
        }
        if !TABLE_KEYS.contains(&key) {
            problems.push(Problem {
                at: format!("{at}:{line_number}"),
                message: format!(
                    "unknown setting `{key}` (known: {}); a header line is `-- key: value`, \
                     end the header with a line that is not one",
                    TABLE_KEYS.join(", ")
                ),
            });
            continue;
        }
        if settings
            .insert(key, (line_number, value.to_string()))
            .is_some()
        {
            problems.push(Problem {
                at: format!("{at}:{line_number}"),
                message: format!("`{key}` is set twice"),
            });
        }
    }
    let value = |key: &str| settings.get(key).map(|(_, v)| v.clone());
    let line_of = |key: &str| {
        settings
            .get(key)
            .map_or_else(|| at.to_string(), |(n, _)| format!("{at}:{n}"))
    };

    let write_mode = match value("write") {
        None => WriteMode::default(),
        Some(w) => WriteMode::parse(&w).unwrap_or_else(|| {
            problems.push(Problem {
                at: line_of("write"),
                message: format!(
                    "write mode `{w}` is not one of {}",
                    WriteMode::NAMES.join(", ")
                ),
            });
            WriteMode::default()
        }),
    };
    let mut depends_on = Vec::new();
    for name in value("depends_on")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match name.parse::<TableId>() {
            Ok(id) => depends_on.push(id),
            Err(e) => problems.push(Problem {
                at: line_of("depends_on"),
                message: e.0,
            }),
        }
    }
    let options = table_options(&value, &line_of, &mut problems);
    let Some(dataset) = value("dataset").or_else(|| defaults.dataset.clone()) else {
        problems.push(Problem {
            at: at.to_string(),
            message: "no dataset: put the file in a folder named after its dataset, set \
                      `dataset` in baton.toml, or add `-- dataset: name` to its header"
                .into(),
        });
        return Err(problems);
    };
    let import = value("import").map(|connection| ImportSpec {
        connection,
        incremental: value("incremental"),
        overlap_seconds: value("overlap").and_then(|text| match humantime::parse_duration(&text) {
            Ok(d) => i64::try_from(d.as_secs()).ok(),
            Err(e) => {
                problems.push(Problem {
                    at: line_of("overlap"),
                    message: format!("overlap `{text}` is not a duration (`10m`, `1h`): {e}"),
                });
                None
            }
        }),
        reimport: reimports.clone(),
    });
    for key in ["incremental", "overlap", "reimport"] {
        if import.is_none()
            && (settings.contains_key(key) || (key == "reimport" && !reimports.is_empty()))
        {
            problems.push(Problem {
                at: line_of(key),
                message: format!("`{key}` is for import tables (`-- import: connection`)"),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Table {
        dataset,
        name: value("name").unwrap_or_else(|| stem.to_string()),
        kind: if import.is_some() {
            TableKind::Import
        } else {
            TableKind::Query
        },
        sql: String::new(),
        import: import.map(Box::new),
        load: None,
        frequency: value("frequency").or_else(|| defaults.frequency.clone()),
        write_mode,
        options: Box::new(options),
        description: value("description"),
        owner: value("owner").or_else(|| defaults.owner.clone()),
        group: value("group").or_else(|| defaults.group.clone()),
        depends_on,
        conditions,
        source: Some(at.to_string()),
    })
}

/// The end of a load table's file name.
pub const LOAD_SUFFIX: &str = ".load.toml";

/// A load table's file: `shop/payments.load.toml`.
///
/// ```toml
/// format = "csv"                     # csv, ndjson, parquet, avro
/// columns = ["id INT64 NOT NULL", "amount NUMERIC", "paid_at TIMESTAMP"]
/// max_bad_records = 10
/// new_columns = "refuse"             # or "add", for detected columns
/// partition_by = "day(paid_at)"
///
/// [csv]
/// skip_leading_rows = 1
///
/// [batch]                            # load when any of these is reached
/// files = 100
/// bytes = "1 GiB"
/// age = "5m"
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadFile {
    name: Option<String>,
    dataset: Option<String>,
    description: Option<String>,
    owner: Option<String>,
    group: Option<String>,
    /// The folder of the landing bucket its files land in (`dataset/table/` when absent).
    prefix: Option<String>,
    #[serde(default)]
    format: Option<String>,
    /// BigQuery's DDL for each column; none: detected from the files.
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    max_bad_records: u32,
    /// `refuse` (the default) or `add`: whether a file's new columns extend a table whose
    /// columns are detected.
    #[serde(default)]
    new_columns: crate::loads::NewColumns,
    /// `append` (the default) or `truncate`.
    write: Option<String>,
    partition_by: Option<String>,
    partition_expiration: Option<Duration>,
    #[serde(default)]
    cluster_by: Vec<String>,
    expiration: Option<Duration>,
    csv: Option<crate::loads::CsvOptions>,
    batch: Option<LoadBatch>,
    /// Refused with the reason: a load table is loaded as its files land, not in runs.
    frequency: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBatch {
    files: Option<u32>,
    /// A number of bytes, or `"512 MiB"`.
    bytes: Option<Bytes>,
    age: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Bytes {
    Count(u64),
    Text(String),
}

/// Reads one load table's `.load.toml`: `at` names it in messages, `stem` is its default name.
pub fn parse_load_file(
    at: &str,
    stem: &str,
    text: &str,
    defaults: &Defaults,
) -> Result<Table, Vec<Problem>> {
    use crate::loads::{BatchPolicy, LoadSpec, parse_column};
    let file: LoadFile = toml::from_str(text).map_err(|e| {
        vec![Problem {
            at: at.to_string(),
            message: e.to_string().trim_end().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut problem = |message: String| {
        problems.push(Problem {
            at: at.to_string(),
            message,
        })
    };
    if file.frequency.is_some() {
        problem(
            "a load table has no `frequency`: it is loaded as its files land (its `[batch]` \
             says when), not in runs"
                .into(),
        );
    }
    let seconds = |d: &Option<Duration>, problem: &mut dyn FnMut(String)| {
        d.as_ref()
            .and_then(|d| d.seconds().map_err(&mut *problem).ok())
    };
    let format = match &file.format {
        None => FileFormat::default(),
        Some(f) => f.parse().unwrap_or_else(|_| {
            problem(format!(
                "format `{f}` is not one of {}",
                FileFormat::NAMES.join(", ")
            ));
            FileFormat::default()
        }),
    };
    let write_mode = match &file.write {
        None => WriteMode::Append,
        Some(w) => WriteMode::parse(w).unwrap_or_else(|| {
            problem(format!("write mode `{w}` is not `append` or `truncate`"));
            WriteMode::Append
        }),
    };
    let mut columns = Vec::new();
    for column in &file.columns {
        match parse_column(column) {
            Ok(field) => columns.push(field),
            Err(message) => problem(format!("columns: {message}")),
        }
    }
    let defaults_batch = BatchPolicy::default();
    let batch = file.batch.as_ref().map_or(defaults_batch, |b| BatchPolicy {
        files: b.files.unwrap_or(defaults_batch.files),
        bytes: match &b.bytes {
            None => defaults_batch.bytes,
            Some(Bytes::Count(n)) => *n,
            Some(Bytes::Text(t)) => t.parse::<bytesize::ByteSize>().map_or_else(
                |e| {
                    problem(format!("batch.bytes `{t}` is not a size (`512 MiB`): {e}"));
                    defaults_batch.bytes
                },
                |b| b.as_u64(),
            ),
        },
        age_seconds: seconds(&b.age, &mut problem).unwrap_or(defaults_batch.age_seconds),
    });
    let partitioning = file.partition_by.as_deref().and_then(|p| {
        Partitioning::parse(p)
            .map_err(|e| problem(format!("partition_by: {e}")))
            .ok()
            .map(|partitioning| Partitioning {
                expiration_seconds: seconds(&file.partition_expiration, &mut problem),
                ..partitioning
            })
    });
    let expiration_seconds = seconds(&file.expiration, &mut problem);
    let Some(dataset) = file.dataset.clone().or_else(|| defaults.dataset.clone()) else {
        problem(
            "no dataset: put the file in a folder named after its dataset, or set `dataset`".into(),
        );
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let name = file.name.clone().unwrap_or_else(|| stem.to_string());
    let prefix = file.prefix.clone().unwrap_or_else(|| {
        TableId::new(&dataset, &name).map_or_else(
            |_| format!("{dataset}/{name}/"),
            |id| LoadSpec::default_prefix(&id),
        )
    });
    let csv = match (format, file.csv) {
        (FileFormat::Csv, None) => Some(crate::loads::CsvOptions::default()),
        (_, csv) => csv,
    };
    Ok(Table {
        dataset,
        name,
        kind: TableKind::Load,
        sql: String::new(),
        import: None,
        load: Some(Box::new(LoadSpec {
            prefix,
            format,
            csv,
            columns,
            max_bad_records: file.max_bad_records,
            new_columns: file.new_columns,
            batch,
        })),
        // Loaded as files arrive, never in a frequency's runs: the folder's default frequency
        // is not its.
        frequency: None,
        write_mode,
        options: Box::new(TableOptions {
            partitioning,
            clustering: file.cluster_by,
            expiration_seconds,
            ..TableOptions::default()
        }),
        description: file.description,
        owner: file.owner.or_else(|| defaults.owner.clone()),
        group: file.group.or_else(|| defaults.group.clone()),
        depends_on: Vec::new(),
        conditions: Vec::new(),
        source: Some(at.to_string()),
    })
}

/// The options of a table's header: keys, partitioning, clustering, expiration, guards.
/// Problems go to `problems`, each at its line.
fn table_options(
    value: &dyn Fn(&str) -> Option<String>,
    line_of: &dyn Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> TableOptions {
    let mut problem = |key: &str, message: String| {
        problems.push(Problem {
            at: line_of(key),
            message,
        });
    };
    let list = |key: &str| -> Vec<String> {
        value(key)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    // Durations read as baton.toml's do.
    let mut seconds = |key: &str| -> Option<i64> {
        Duration::Text(value(key)?)
            .seconds()
            .map_err(|message| problem(key, message))
            .ok()
    };
    let expiration_seconds = seconds("expiration");
    let timeout_seconds = seconds("timeout");
    let partition_expiration = seconds("partition_expiration");
    let url_expiry_seconds = seconds("extract_url_expiry");
    let partitioning = value("partition_by").and_then(|text| match Partitioning::parse(&text) {
        Ok(p) => Some(Partitioning {
            expiration_seconds: partition_expiration,
            ..p
        }),
        Err(message) => {
            problem("partition_by", message);
            None
        }
    });
    if partition_expiration.is_some() && value("partition_by").is_none() {
        problem(
            "partition_expiration",
            "`partition_expiration` needs `partition_by`".into(),
        );
    }
    let max_bytes_billed =
        value("max_bytes_billed").and_then(|text| match text.parse::<bytesize::ByteSize>() {
            Ok(size) => i64::try_from(size.as_u64()).ok(),
            Err(e) => {
                problem(
                    "max_bytes_billed",
                    format!("`{text}` is not a size in bytes, e.g. `10 GB` or `1 TiB` ({e})"),
                );
                None
            }
        });
    let retries = value("retries").and_then(|text| match text.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => {
            problem("retries", format!("`{text}` is not a number of retries"));
            None
        }
    });
    let extract = match value("extract") {
        None => {
            for key in ["extract_compression", "extract_url_expiry", "notify"] {
                if value(key).is_some() {
                    problem(key, format!("`{key}` needs `extract`"));
                }
            }
            None
        }
        Some(text) => match text.parse::<FileFormat>().ok() {
            Some(format) => Some(Extract {
                format,
                compression: value("extract_compression")
                    .map(|c| c.to_lowercase())
                    .filter(|c| c != "none"),
                notify: value("notify"),
                url_expiry_seconds,
            }),
            None => {
                problem(
                    "extract",
                    format!(
                        "`{text}` is not an extract format ({})",
                        FileFormat::NAMES.join(", ")
                    ),
                );
                None
            }
        },
    };
    TableOptions {
        key: list("key"),
        delete_flag: value("delete_flag"),
        partitioning,
        clustering: list("cluster_by"),
        expiration_seconds,
        max_bytes_billed,
        timeout_seconds,
        retries,
        extract,
    }
}

/// `months=jan,apr days=1`, `weekdays=mon-fri hours=6,18`: fields separated by spaces,
/// values by commas, ranges with `-`; months and weekdays by number or name.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut condition = Condition::default();
    if text.trim().is_empty() {
        return Err("a condition needs at least one of months=, weekdays=, days=, hours=".into());
    }
    for field in text.split_whitespace() {
        let (name, values) = field
            .split_once('=')
            .ok_or_else(|| format!("`{field}` is not `field=values`"))?;
        let names: &[&str] = match name {
            "months" => MONTHS,
            "weekdays" => WEEKDAYS,
            "days" | "hours" => &[],
            _ => {
                return Err(format!(
                    "unknown condition field `{name}` (months, weekdays, days, hours)"
                ));
            }
        };
        let number = |v: &str| -> Result<u8, String> {
            let lower = v.to_ascii_lowercase();
            match names.iter().position(|n| *n == lower) {
                Some(i) => Ok(u8::try_from(i + 1).expect("a short list")),
                None => v
                    .parse()
                    .map_err(|_| format!("`{v}` is not a valid value of {name}")),
            }
        };
        let mut list = Vec::new();
        for value in values.split(',').filter(|v| !v.is_empty()) {
            match value.split_once('-') {
                Some((from, to)) => list.extend(number(from)?..=number(to)?),
                None => list.push(number(value)?),
            }
        }
        let target = match name {
            "months" => &mut condition.months,
            "weekdays" => &mut condition.weekdays,
            "days" => &mut condition.days,
            _ => &mut condition.hours,
        };
        target.extend(list);
    }
    condition.validate().map_err(|e| e.0)?;
    Ok(condition)
}

/// `-- key: value` with a lowercase key, or nothing.
/// The connection an import file's header names (`-- import: NAME`), if it is one: its SQL
/// runs on that database, not in BigQuery.
pub fn import_connection(text: &str) -> Option<&str> {
    text.lines()
        .map_while(header_setting)
        .find_map(|(key, value)| (key == "import").then_some(value))
}

fn header_setting(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim().strip_prefix("--")?.trim_start();
    let (key, value) = rest.split_once(':')?;
    let valid_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    valid_key.then(|| (key, value.trim()))
}

/// A folder as far as it could be read: the tables of the files that parse, the problems of
/// those that do not, and the tables those files would define, as their paths say.
#[derive(Debug, Default)]
pub struct Loaded {
    pub catalog: CatalogSpec,
    pub problems: Vec<Problem>,
    pub unread: BTreeSet<TableId>,
}

/// Reads a catalog folder: `baton.toml` if present, and every `.sql` file below it (hidden
/// entries skipped). A file's dataset defaults to the name of the folder holding it, or to
/// `baton.toml`'s `dataset` at the top level. Paths in messages are relative to `root`.
pub fn load(root: &Path) -> Result<CatalogSpec, Vec<Problem>> {
    let loaded = load_all(root)?;
    if loaded.problems.is_empty() {
        Ok(loaded.catalog)
    } else {
        Err(loaded.problems)
    }
}

/// `load`, going on past files with problems: every file's problems, and the catalog of the
/// rest (`baton check` reads its SQL too). Fails as a whole only when `baton.toml` or the
/// folder cannot be read.
pub fn load_all(root: &Path) -> Result<Loaded, Vec<Problem>> {
    let io_problem = |path: &Path, e: std::io::Error| Problem {
        at: path.display().to_string(),
        message: e.to_string(),
    };
    let manifest_path = root.join(MANIFEST);
    let (frequencies, defaults) = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => parse_manifest(MANIFEST, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Defaults::default()),
        Err(e) => return Err(vec![io_problem(&manifest_path, e)]),
    };
    let mut files = Vec::new();
    collect_sql_files(root, &mut files).map_err(|e| vec![io_problem(root, e)])?;

    // Thousands of small files: read and parsed on all cores.
    let parsed = crate::parallel::map(&files, 256, |path| {
        let relative = path.strip_prefix(root).unwrap_or(path);
        let at = relative.display().to_string();
        let mut file_defaults = defaults.clone();
        if let Some(folder) = relative
            .parent()
            .and_then(Path::file_name)
            .and_then(|f| f.to_str())
        {
            file_defaults.dataset = Some(folder.to_string());
        }
        let file_name = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let (stem, load) = match file_name.strip_suffix(LOAD_SUFFIX) {
            Some(stem) => (stem, true),
            None => (
                path.file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default(),
                false,
            ),
        };
        let would_be = || {
            let dataset = file_defaults.dataset.as_deref()?;
            format!("{dataset}.{stem}").parse::<TableId>().ok()
        };
        let parsed = match std::fs::read_to_string(path) {
            Err(e) => Err(vec![io_problem(relative, e)]),
            Ok(text) if load => parse_load_file(&at, stem, &text, &file_defaults),
            Ok(text) => parse_table_file(&at, stem, text, &file_defaults),
        };
        parsed.map_err(|problems| (problems, would_be()))
    });
    let mut loaded = Loaded {
        catalog: CatalogSpec {
            frequencies,
            tables: Vec::with_capacity(parsed.len()),
        },
        ..Loaded::default()
    };
    for file in parsed {
        match file {
            Ok(table) => loaded.catalog.tables.push(table),
            Err((mut problems, id)) => {
                loaded.problems.append(&mut problems);
                loaded.unread.extend(id);
            }
        }
    }
    Ok(loaded)
}

/// The table files under `dir`, in the order of their paths: each folder's entries in the
/// order of their names, a folder's files where its name falls among them.
fn collect_sql_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| (e.file_name(), e)))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    for (name, entry) in entries {
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_sql_files(&path, out)?;
        } else if name.ends_with(".sql") || name.ends_with(LOAD_SUFFIX) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(dataset: &str) -> Defaults {
        Defaults {
            dataset: Some(dataset.into()),
            ..Defaults::default()
        }
    }

    #[test]
    fn a_load_file_makes_a_load_table() {
        let text = r#"
description = "Payments, exported hourly by the PSP"
columns = ["id INT64 NOT NULL", "amount NUMERIC", "paid_at TIMESTAMP"]
max_bad_records = 5
partition_by = "day(paid_at)"
cluster_by = ["id"]

[csv]
skip_leading_rows = 1

[batch]
files = 10
bytes = "64 MiB"
age = "2m"
"#;
        let with_frequency = Defaults {
            frequency: Some("daily".into()),
            ..defaults("shop")
        };
        let table =
            parse_load_file("shop/payments.load.toml", "payments", text, &with_frequency).unwrap();
        assert_eq!(table.kind, TableKind::Load);
        assert_eq!(
            table.frequency, None,
            "a folder's frequency is not a load table's"
        );
        assert_eq!(table.write_mode, WriteMode::Append);
        let spec = table.load.as_ref().unwrap();
        assert_eq!(spec.prefix, "shop/payments/");
        assert_eq!(spec.columns.len(), 3);
        assert_eq!(spec.csv.as_ref().unwrap().skip_leading_rows, 1);
        assert_eq!(
            (spec.batch.files, spec.batch.bytes, spec.batch.age_seconds),
            (10, 64 << 20, 120)
        );
        assert!(
            table.load_problems().is_empty(),
            "{:?}",
            table.load_problems()
        );
        let catalog = CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![table],
        };
        assert!(catalog.validate(&Default::default()).is_empty());
    }

    #[test]
    fn a_load_file_says_what_is_wrong_and_where() {
        let typo = "formt = \"csv\"\n";
        let problems = parse_load_file("d/t.load.toml", "t", typo, &defaults("d")).unwrap_err();
        assert!(
            problems[0].message.contains("line 1") && problems[0].message.contains("formt"),
            "{problems:?}"
        );
        let wrong = "format = \"xls\"\ncolumns = [\"id INT\"]\nwrite = \"merge\"\n";
        let table = parse_load_file("d/t.load.toml", "t", wrong, &defaults("d"));
        let problems = table.unwrap_err();
        let text: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(text.iter().any(|m| m.contains("xls")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("INT")), "{text:?}");
        let sometimes = "format = \"ndjson\"\nnew_columns = \"sometimes\"\n";
        let problems =
            parse_load_file("d/t.load.toml", "t", sometimes, &defaults("d")).unwrap_err();
        assert!(
            problems[0].message.contains("line 2") && problems[0].message.contains("`add`"),
            "{problems:?}"
        );
        let merge = "write = \"merge\"\n";
        let table = parse_load_file("d/t.load.toml", "t", merge, &defaults("d")).unwrap();
        assert!(table.load_problems()[0].contains("not `merge`"));
        // Two tables may not share files.
        let a = parse_load_file("d/a.load.toml", "a", "prefix = \"in/\"", &defaults("d")).unwrap();
        let b = parse_load_file("d/b.load.toml", "b", "prefix = \"in/b/\"", &defaults("d"));
        let catalog = CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![a, b.unwrap()],
        };
        let problems = catalog.validate(&Default::default());
        assert!(
            problems.iter().any(|p| p.message.contains("overlaps")),
            "{problems:?}"
        );
    }

    #[test]
    fn load_prefixes_overlap_only_where_one_begins_with_another() {
        let load = |name: &str, prefix: &str| {
            let text = format!("prefix = \"{prefix}\"\nformat = \"ndjson\"");
            parse_load_file(&format!("d/{name}.load.toml"), name, &text, &defaults("d")).unwrap()
        };
        // `out/` and `outer/` share letters, not files; `c` is defined twice with one prefix,
        // which is one problem, not an overlap of the table with itself.
        let catalog = CatalogSpec {
            frequencies: Vec::new(),
            tables: vec![
                load("a", "in/b/"),
                load("b", "out/"),
                load("c", "in/"),
                load("d", "outer/"),
                load("e", "in/b/c/"),
                load("c", "in/"),
            ],
        };
        let said: Vec<String> = catalog
            .validate(&Default::default())
            .iter()
            .map(|p| p.to_string().replace(": a file would be whose?", ""))
            .collect();
        assert_eq!(
            said,
            [
                "d/a.load.toml: prefix `in/b/` overlaps d/c.load.toml's `in/`",
                "d/a.load.toml: prefix `in/b/` overlaps d/e.load.toml's `in/b/c/`",
                "d/a.load.toml: prefix `in/b/` overlaps d/c.load.toml's `in/`",
                "d/c.load.toml: prefix `in/` overlaps d/a.load.toml's `in/b/`",
                "d/c.load.toml: prefix `in/` overlaps d/e.load.toml's `in/b/c/`",
                "d/e.load.toml: prefix `in/b/c/` overlaps d/a.load.toml's `in/b/`",
                "d/e.load.toml: prefix `in/b/c/` overlaps d/c.load.toml's `in/`",
                "d/e.load.toml: prefix `in/b/c/` overlaps d/c.load.toml's `in/`",
                "d/c.load.toml: table d.c is also defined by d/c.load.toml",
                "d/c.load.toml: prefix `in/` overlaps d/a.load.toml's `in/b/`",
                "d/c.load.toml: prefix `in/` overlaps d/e.load.toml's `in/b/c/`",
            ]
        );
    }

    #[test]
    fn the_header_sets_the_table_and_the_rest_is_sql() {
        let text = "-- frequency: daily\n-- description: Revenue: per customer\n-- write: append\n--\n-- note: not a setting\nSELECT 1\n";
        let table =
            parse_table_file("shop/totals.sql", "totals", text.into(), &defaults("shop")).unwrap();
        assert_eq!(table.dataset, "shop");
        assert_eq!(table.name, "totals");
        assert_eq!(table.frequency.as_deref(), Some("daily"));
        assert_eq!(table.description.as_deref(), Some("Revenue: per customer"));
        assert_eq!(table.write_mode, WriteMode::Append);
        assert_eq!(
            table.sql, text,
            "the SQL is kept whole, so line numbers stay true"
        );
        assert_eq!(table.source.as_deref(), Some("shop/totals.sql"));
    }

    #[test]
    fn an_import_header_makes_an_import_table_checked_in_its_dialect() {
        let text = "-- import: shop_db\n-- write: insert_unique\n-- key: id\nSELECT id, total\nFROM public.orders o JOIN x ON true\n";
        let table =
            parse_table_file("shop/orders.sql", "orders", text.into(), &defaults("shop")).unwrap();
        assert_eq!(table.kind, TableKind::Import);
        assert_eq!(
            table.import.as_deref(),
            Some(&ImportSpec {
                connection: "shop_db".into(),
                ..ImportSpec::default()
            })
        );
        assert_eq!(
            table.import_problems(),
            [
                "an import table is written `truncate` (the default), `append` or `merge`, not `insert_unique`"
            ]
        );
        let connections = BTreeMap::from([(
            "shop_db".to_string(),
            crate::connections::ConnectionKind::Postgres,
        )]);
        let problems = crate::catalog::import_problems(std::slice::from_ref(&table), &connections);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].at, "shop/orders.sql:5:27");
        assert!(
            problems[0].message.starts_with("JOIN is not allowed"),
            "{}",
            problems[0]
        );
        let problems = crate::catalog::import_problems(&[table], &BTreeMap::new());
        assert!(
            problems[0]
                .message
                .contains("connection `shop_db` does not exist")
        );
    }

    #[test]
    fn incremental_settings_are_read_and_checked() {
        let text = "-- import: shop_db\n-- incremental: updated_at\n-- overlap: 10m\n-- write: merge\n-- key: id\n-- reimport: weekdays=sun\nSELECT * FROM orders\n";
        let table =
            parse_table_file("shop/orders.sql", "orders", text.into(), &defaults("shop")).unwrap();
        let spec = table.import.clone().unwrap();
        assert_eq!(spec.incremental.as_deref(), Some("updated_at"));
        assert_eq!(spec.overlap_seconds, Some(600));
        assert_eq!(spec.reimport[0].weekdays, vec![7]);
        assert!(
            table.import_problems().is_empty(),
            "{:?}",
            table.import_problems()
        );
        let problems = |text: &str| {
            parse_table_file("a.sql", "a", text.into(), &defaults("ds"))
                .map(|t| t.import_problems())
                .unwrap_or_else(|p| p.iter().map(ToString::to_string).collect())
        };
        assert!(
            problems("-- import: db\n-- incremental: id\nSELECT * FROM t")[0]
                .contains("write it `merge` (with a `key`) or `append`")
        );
        assert!(problems("-- import: db\n-- incremental: id\n-- write: append\n-- overlap: 1m\nSELECT * FROM t")[0]
            .contains("`append` would add twice"));
        assert!(
            problems("-- import: db\n-- overlap: 1m\nSELECT * FROM t")[0]
                .contains("are for incremental imports")
        );
        assert!(problems("-- incremental: id\nSELECT 1")[0].contains("is for import tables"));
        assert!(problems("-- import: db\n-- incremental: id\n-- write: append\n-- overlap: soon\nSELECT * FROM t")[0]
            .contains("a.sql:4: overlap `soon` is not a duration"));
    }

    #[test]
    fn an_unknown_key_in_the_header_is_an_error_with_its_line() {
        let text = "-- frequency: daily\n-- frequncy: hourly\nSELECT 1";
        let problems = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].at, "a.sql:2");
        assert!(problems[0].message.contains("unknown setting `frequncy`"));
    }

    #[test]
    fn header_values_are_checked() {
        let text = "-- write: upsert\n-- depends_on: ds.a, nodataset\nSELECT 1";
        let problems = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap_err();
        let messages: Vec<_> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].starts_with("a.sql:1: write mode `upsert`"));
        assert!(messages[1].starts_with("a.sql:2: table id `nodataset`"));
    }

    #[test]
    fn extract_settings_need_an_extract_of_a_known_format() {
        let text = "-- notify: https://hooks.example.com/x\n-- extract_compression: gzip\nSELECT 1";
        let problems = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap_err();
        let messages: Vec<_> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            messages,
            [
                "a.sql:2: `extract_compression` needs `extract`",
                "a.sql:1: `notify` needs `extract`"
            ]
        );
        let text = "-- extract: xlsx\nSELECT 1";
        let problems = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap_err();
        assert!(
            problems[0].to_string().starts_with(
                "a.sql:1: `xlsx` is not an extract format (csv, ndjson, avro, parquet)"
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn the_header_shapes_writes_and_guards_the_table() {
        let text = "-- write: merge\n-- key: order_id, line\n-- delete_flag: is_deleted\n\
                    -- partition_by: month(ordered_at)\n-- partition_expiration: 400d\n\
                    -- cluster_by: customer_id\n-- expiration: 30d\n\
                    -- max_bytes_billed: 10 GB\n-- timeout: 1h 30m\n-- retries: 5\n\
                    -- extract: CSV\n-- extract_compression: gzip\n\
                    -- extract_url_expiry: 2 days\n-- notify: https://hooks.example.com/x\n\
                    SELECT 1";
        let table = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap();
        assert_eq!(table.write_mode, WriteMode::Merge);
        assert_eq!(
            *table.options,
            TableOptions {
                key: vec!["order_id".into(), "line".into()],
                delete_flag: Some("is_deleted".into()),
                partitioning: Some(Partitioning {
                    field: Some("ordered_at".into()),
                    granularity: crate::catalog::Granularity::Month,
                    expiration_seconds: Some(400 * 86_400),
                }),
                clustering: vec!["customer_id".into()],
                expiration_seconds: Some(30 * 86_400),
                max_bytes_billed: Some(10_000_000_000),
                timeout_seconds: Some(5_400),
                retries: Some(5),
                extract: Some(Extract {
                    format: FileFormat::Csv,
                    compression: Some("gzip".into()),
                    notify: Some("https://hooks.example.com/x".into()),
                    url_expiry_seconds: Some(2 * 86_400),
                }),
            }
        );
        let ingestion = parse_table_file(
            "a.sql",
            "a",
            "-- partition_by: hour(_PARTITIONTIME)\nSELECT 1".into(),
            &defaults("ds"),
        )
        .unwrap();
        let partitioning = ingestion.options.partitioning.unwrap();
        assert_eq!(partitioning.field, None);
        assert_eq!(partitioning.granularity, crate::catalog::Granularity::Hour);
    }

    #[test]
    fn options_that_cannot_be_read_are_named_at_their_line() {
        let text = "-- partition_by: fortnight(d)\n-- timeout: soon\n-- max_bytes_billed: lots\n\
                    -- retries: -1\nSELECT 1";
        let problems = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap_err();
        let messages: Vec<_> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("a.sql:1: `fortnight` is not a partitioning unit"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("a.sql:2: `soon` is not a duration"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("a.sql:3: `lots` is not a size in bytes"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("a.sql:4: `-1` is not a number of retries"))
        );
        let alone = "-- cluster_by: a\n-- partition_expiration: 1d\nSELECT 1";
        let problems = parse_table_file("a.sql", "a", alone.into(), &defaults("ds")).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "a.sql:2: `partition_expiration` needs `partition_by`"
        );
    }

    #[test]
    fn a_file_without_a_dataset_says_how_to_give_it_one() {
        let problems =
            parse_table_file("a.sql", "a", "SELECT 1".into(), &Defaults::default()).unwrap_err();
        assert!(problems[0].message.contains("no dataset"));
    }

    #[test]
    fn the_manifest_defines_frequencies_with_durations_or_seconds() {
        let text = "dataset = \"analytics\"\n[frequencies.daily]\nevery = \"24h\"\noffset = \"2h\"\nconcurrency = 4\n[frequencies.hourly]\nevery = 3600\n";
        let (frequencies, defaults) = parse_manifest("baton.toml", text).unwrap();
        assert_eq!(defaults.dataset.as_deref(), Some("analytics"));
        assert_eq!(frequencies.len(), 2);
        let daily = frequencies.iter().find(|f| f.name == "daily").unwrap();
        assert_eq!(
            (daily.period_seconds, daily.offset_seconds),
            (Some(86_400), 7_200)
        );
        assert_eq!(daily.concurrency, Some(4));
        assert!(daily.active);
    }

    #[test]
    fn conditions_are_read_from_the_header_and_may_repeat() {
        let text = "-- condition: months=jan,apr,jul,oct days=1\n-- condition: weekdays=mon-fri hours=6,18\nSELECT 1";
        let table = parse_table_file("a.sql", "a", text.into(), &defaults("ds")).unwrap();
        assert_eq!(table.conditions.len(), 2);
        assert_eq!(table.conditions[0].months, vec![1, 4, 7, 10]);
        assert_eq!(table.conditions[0].days, vec![1]);
        assert_eq!(table.conditions[1].weekdays, vec![1, 2, 3, 4, 5]);
        assert_eq!(table.conditions[1].hours, vec![6, 18]);
        let problems = parse_table_file(
            "a.sql",
            "a",
            "-- condition: hours=25\nSELECT 1".into(),
            &defaults("ds"),
        )
        .unwrap_err();
        assert_eq!(problems[0].at, "a.sql:1");
        assert!(problems[0].message.contains("25"), "{problems:?}");
        assert!(
            parse_condition("weeks=1")
                .unwrap_err()
                .contains("unknown condition field")
        );
        assert!(
            parse_condition("weekdays=funday")
                .unwrap_err()
                .contains("funday")
        );
    }

    #[test]
    fn manifest_errors_name_the_place() {
        let problems =
            parse_manifest("baton.toml", "[frequencies.daily]\nevery = \"soon\"\n").unwrap_err();
        assert_eq!(problems[0].at, "baton.toml: frequencies.daily");
        assert!(problems[0].message.contains("`soon` is not a duration"));
        let problems = parse_manifest("baton.toml", "datset = \"x\"\n").unwrap_err();
        assert!(
            problems[0].message.contains("unknown field `datset`"),
            "{problems:?}"
        );
    }
}
