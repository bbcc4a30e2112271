//! MySQL and MariaDB through mysql_async: the import's SELECT described by running it with
//! `LIMIT 0` around it (each column's type mapped, or refused by name), then streamed row by
//! row in the text protocol, each row turned into a line of JSON as it arrives.
//!
//! mysql_async is the asynchronous MySQL driver that is kept up (MariaDB included), reads a
//! result row by row without buffering it, and does TLS with rustls; sqlx would bring a
//! second query layer for one streaming SELECT. The session is read-only and speaks UTC, so
//! that a TIMESTAMP's text is its UTC time.

use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts, Value};

use baton_core::connections::{Database, TlsMode};
use baton_core::imports::{ImportColumn, Scalar};

use crate::chunks::Chunks;
use crate::json::{self, Rows};
use crate::source::{Copied, CopyError, Increment, increment_column, mapped, raise, statement};

/// How each column's text becomes JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Raw,
    Float,
    Decimal,
    /// `tinyint(1)`: 0 is false.
    Bool,
    Text,
    Bytes,
    /// BIT(n): big-endian bytes, as a number.
    Bits,
    /// A DATE or DATETIME: a zero date (`0000-00-00`, MySQL's "no date") is NULL.
    Temporal,
    /// A TIMESTAMP in UTC: zero is NULL, the offset added.
    Timestamp,
    /// A TIME: BigQuery's is a time of day, MySQL's spans ±838 hours.
    Time,
    Json,
    /// A SET: its members, REPEATED.
    Set,
}

/// Server errors that another attempt may not meet: too many connections, lock waits,
/// deadlocks, a server going away or shutting down.
const TRANSIENT: &[u16] = &[1040, 1053, 1205, 1213, 1317, 2006, 2013];

fn failed(e: mysql_async::Error) -> CopyError {
    match e {
        mysql_async::Error::Server(s) => {
            let message = format!("MySQL: {} (error {})", s.message, s.code);
            if TRANSIENT.contains(&s.code) {
                CopyError::Transient(message)
            } else {
                CopyError::Permanent(message)
            }
        }
        // A refused or dropped connection, a timeout, a broken packet.
        other => CopyError::Transient(format!(
            "MySQL: {}",
            baton_core::errors::error_chain(&other)
        )),
    }
}

/// Opens a read-only session in UTC.
pub async fn connect(db: &Database) -> Result<Conn, CopyError> {
    let ssl = match db.tls {
        TlsMode::Disable => None,
        TlsMode::Require => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        TlsMode::VerifyFull => Some(SslOpts::default()),
    };
    let options = OptsBuilder::default()
        .ip_or_hostname(db.host.clone())
        .tcp_port(db.port)
        .db_name(Some(db.database.clone()))
        .user(Some(db.user.clone()))
        .pass(Some(db.password.clone()))
        .prefer_socket(false)
        .ssl_opts(ssl)
        .init(vec![
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4",
            "SET SESSION TRANSACTION READ ONLY",
        ]);
    match tokio::time::timeout(Duration::from_secs(15), Conn::new(options)).await {
        Ok(connected) => connected.map_err(failed),
        Err(_) => Err(CopyError::Transient(format!(
            "MySQL: no connection to {}:{} within 15 s",
            db.host, db.port
        ))),
    }
}

/// A result column's BigQuery type and how its values are written.
fn column(c: &mysql_async::Column) -> Result<(ImportColumn, Form), String> {
    let flags = c.flags();
    let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = c.character_set() == 63;
    let suffix = if unsigned { " unsigned" } else { "" };
    let (scalar, form, source_type, repeated) = match c.column_type() {
        ColumnType::MYSQL_TYPE_TINY if c.column_length() == 1 => {
            (Scalar::Bool, Form::Bool, "tinyint(1)".to_string(), false)
        }
        ColumnType::MYSQL_TYPE_TINY => {
            (Scalar::Int64, Form::Raw, format!("tinyint{suffix}"), false)
        }
        ColumnType::MYSQL_TYPE_SHORT => {
            (Scalar::Int64, Form::Raw, format!("smallint{suffix}"), false)
        }
        ColumnType::MYSQL_TYPE_INT24 => (
            Scalar::Int64,
            Form::Raw,
            format!("mediumint{suffix}"),
            false,
        ),
        ColumnType::MYSQL_TYPE_LONG => (Scalar::Int64, Form::Raw, format!("int{suffix}"), false),
        ColumnType::MYSQL_TYPE_YEAR => (Scalar::Int64, Form::Raw, "year".into(), false),
        ColumnType::MYSQL_TYPE_LONGLONG if unsigned => {
            // Up to 18446744073709551615: past INT64, inside NUMERIC.
            (
                Scalar::Numeric,
                Form::Decimal,
                "bigint unsigned".into(),
                false,
            )
        }
        ColumnType::MYSQL_TYPE_LONGLONG => (Scalar::Int64, Form::Raw, "bigint".into(), false),
        ColumnType::MYSQL_TYPE_FLOAT => (Scalar::Float64, Form::Float, "float".into(), false),
        ColumnType::MYSQL_TYPE_DOUBLE => (Scalar::Float64, Form::Float, "double".into(), false),
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            // The length counts the digits, a sign unless unsigned, a point if any.
            let scale = u32::from(c.decimals());
            let precision = c
                .column_length()
                .saturating_sub(u32::from(!unsigned))
                .saturating_sub(u32::from(scale > 0));
            (
                Scalar::decimal(Some((precision, scale))),
                Form::Decimal,
                format!("decimal({precision},{scale}){suffix}"),
                false,
            )
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => {
            (Scalar::Date, Form::Temporal, "date".into(), false)
        }
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => {
            (Scalar::Datetime, Form::Temporal, "datetime".into(), false)
        }
        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => (
            Scalar::Timestamp,
            Form::Timestamp,
            "timestamp".into(),
            false,
        ),
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => {
            (Scalar::Time, Form::Time, "time".into(), false)
        }
        ColumnType::MYSQL_TYPE_JSON => (Scalar::Json, Form::Json, "json".into(), false),
        ColumnType::MYSQL_TYPE_BIT => (Scalar::Int64, Form::Bits, "bit".into(), false),
        ColumnType::MYSQL_TYPE_ENUM => (Scalar::String, Form::Text, "enum".into(), false),
        ColumnType::MYSQL_TYPE_SET => (Scalar::String, Form::Set, "set".into(), true),
        ColumnType::MYSQL_TYPE_NULL => (Scalar::String, Form::Text, "null".into(), false),
        ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_STRING
            if flags.contains(ColumnFlags::ENUM_FLAG) =>
        {
            (Scalar::String, Form::Text, "enum".into(), false)
        }
        ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_STRING
            if flags.contains(ColumnFlags::SET_FLAG) =>
        {
            (Scalar::String, Form::Set, "set".into(), true)
        }
        ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_STRING => match binary {
            true => (Scalar::Bytes, Form::Bytes, "varbinary".into(), false),
            false => (Scalar::String, Form::Text, "varchar".into(), false),
        },
        ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB => match binary {
            true => (Scalar::Bytes, Form::Bytes, "blob".into(), false),
            false => (Scalar::String, Form::Text, "text".into(), false),
        },
        other => {
            return Err(format!(
                "column `{}`: type {other:?} has no BigQuery mapping: cast it in the import's \
                 SELECT (e.g. `ST_AsText(c) AS c`, `CAST(c AS CHAR) AS c`)",
                c.name_str()
            ));
        }
    };
    Ok((
        ImportColumn {
            name: c.name_str().into_owned(),
            source_type,
            bigquery_type: scalar,
            repeated,
        },
        form,
    ))
}

/// The columns of an import's SELECT, mapped, and how each is written.
#[derive(Debug, Clone)]
pub struct Described {
    pub columns: Vec<ImportColumn>,
    forms: Vec<Form>,
}

fn forms(columns: &[mysql_async::Column]) -> Result<Described, CopyError> {
    let (columns, forms): (Vec<_>, Vec<_>) = columns
        .iter()
        .map(column)
        .map(|r| match r {
            Ok((c, f)) => (Ok(c), f),
            Err(e) => (Err(e), Form::Raw),
        })
        .unzip();
    Ok(Described {
        columns: mapped(columns)?,
        forms,
    })
}

/// The columns the import's SELECT answers, mapped, without reading a row.
pub async fn describe(conn: &mut Conn, sql: &str) -> Result<Described, CopyError> {
    let probe = format!(
        "SELECT * FROM (\n{}\n) AS baton_source LIMIT 0",
        statement(sql)
    );
    let result = conn.query_iter(probe).await.map_err(failed)?;
    let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    result.drop_result().await.map_err(failed)?;
    forms(&columns)
}

/// The SELECT that reads the import: as written, or wrapped with an increment's condition.
fn select(sql: &str, increment: Option<&Increment>) -> String {
    let sql = statement(sql);
    match increment.and_then(|i| Some((&i.column, i.after?))) {
        None => sql.to_string(),
        Some((column, after)) => format!(
            "SELECT * FROM (\n{sql}\n) AS baton_source WHERE baton_source.`{}` > {}",
            column.replace('`', "``"),
            after.literal(true)
        ),
    }
}

/// Copies the import's rows (those past the increment's watermark, with one) into `chunks`.
pub async fn copy(
    conn: &mut Conn,
    sql: &str,
    described: &Described,
    increment: Option<&Increment>,
    chunks: &mut Chunks,
) -> Result<Copied, CopyError> {
    let watched = increment
        .map(|i| increment_column(&described.columns, i))
        .transpose()?;
    let mut result = conn
        .query_iter(select(sql, increment))
        .await
        .map_err(failed)?;
    // The answer's columns are the described ones, unless the source changed in between.
    let answered = result.columns().map(|c| c.to_vec()).unwrap_or_default();
    let Described { columns, forms } = forms(&answered)?;
    if columns != described.columns {
        return Err(CopyError::Transient(
            "the source's columns changed while it was read".into(),
        ));
    }
    let mut high = None;
    let mut rows = Rows::new(&columns);
    let mut batch = Vec::with_capacity(chunks.batch_bytes() + (64 << 10));
    let mut count = 0u64;
    while let Some(row) = result.next().await.map_err(failed)? {
        count += 1;
        rows.begin(&mut batch);
        for (i, value) in row.unwrap().into_iter().enumerate() {
            let text = match value {
                Value::NULL => continue,
                Value::Bytes(bytes) => bytes,
                // The text protocol sends text; anything else is written as its SQL.
                other => other.as_sql(true).into_bytes(),
            };
            let at = batch.len();
            let before = rows.key(&mut batch, i);
            match write(forms[i], &text, &mut batch) {
                Ok(true) => {}
                // NULL after all (a zero date): the key is taken back.
                Ok(false) => {
                    batch.truncate(at);
                    rows.retract(before);
                }
                Err(e) => return Err(CopyError::value(&columns[i], count, &e)),
            }
            if watched == Some(i) {
                raise(&mut high, &columns[i], &text);
            }
        }
        rows.end(&mut batch);
        if batch.len() >= chunks.batch_bytes() {
            chunks.push(&batch).await?;
            batch.clear();
        }
    }
    chunks.push(&batch).await?;
    Ok(Copied { rows: count, high })
}

/// Writes one value; `false` when it is NULL after all.
fn write(form: Form, text: &[u8], out: &mut Vec<u8>) -> Result<bool, json::Refusal> {
    match form {
        Form::Raw => json::raw(out, text),
        Form::Float => json::float(out, text),
        Form::Decimal => json::decimal(out, text)?,
        Form::Bool => out.extend_from_slice(if text == b"0" { b"false" } else { b"true" }),
        Form::Text => json::string(out, text),
        Form::Bytes => json::bytes(out, text),
        Form::Bits => {
            let value = text.iter().fold(0u128, |n, &b| (n << 8) | u128::from(b));
            let value = i64::try_from(value).map_err(|_| "a BIT value past INT64".to_string())?;
            out.extend_from_slice(value.to_string().as_bytes());
        }
        Form::Temporal | Form::Timestamp => {
            // `0000-00-00`, and dates with a zero month or day, are MySQL's "no date".
            if text.len() >= 10 && (&text[5..7] == b"00" || &text[8..10] == b"00") {
                return Ok(false);
            }
            if text.starts_with(b"0000") {
                return Err(format!(
                    "`{}` is before BigQuery's year 1",
                    String::from_utf8_lossy(text)
                ));
            }
            if form == Form::Timestamp {
                out.push(b'"');
                out.extend_from_slice(text);
                out.extend_from_slice(b"+00:00\"");
            } else {
                json::quoted(out, text);
            }
        }
        Form::Time => {
            let hours = text
                .split(|&b| b == b':')
                .next()
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| h.parse::<i32>().ok());
            if !matches!(hours, Some(0..=23)) || text.starts_with(b"-") {
                return Err(format!(
                    "`{}` is not a time of day, which is what BigQuery's TIME holds: select \
                     it as a number of seconds (`TIME_TO_SEC(c) AS c`)",
                    String::from_utf8_lossy(text)
                ));
            }
            json::quoted(out, text);
        }
        Form::Json => json::json(out, text)?,
        Form::Set => {
            out.push(b'[');
            if !text.is_empty() {
                for (i, member) in text.split(|&b| b == b',').enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::string(out, member);
                }
            }
            out.push(b']');
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(form: Form, text: &str) -> Result<Option<String>, String> {
        let mut out = Vec::new();
        Ok(write(form, text.as_bytes(), &mut out)?.then(|| String::from_utf8(out).unwrap()))
    }

    #[test]
    fn zero_dates_are_null_and_timestamps_are_utc() {
        assert_eq!(written(Form::Temporal, "0000-00-00"), Ok(None));
        assert_eq!(written(Form::Temporal, "2024-00-10 00:00:00"), Ok(None));
        assert_eq!(
            written(Form::Temporal, "2024-02-29 12:00:00.5").unwrap(),
            Some("\"2024-02-29 12:00:00.5\"".into())
        );
        assert_eq!(
            written(Form::Timestamp, "2024-02-29 12:00:00").unwrap(),
            Some("\"2024-02-29 12:00:00+00:00\"".into())
        );
    }

    #[test]
    fn sets_bits_booleans_and_times_are_spelled_for_bigquery() {
        assert_eq!(
            written(Form::Set, "a,b").unwrap(),
            Some(r#"["a","b"]"#.into())
        );
        assert_eq!(written(Form::Set, "").unwrap(), Some("[]".into()));
        assert_eq!(
            written(Form::Bits, "\u{1}\u{0}").unwrap(),
            Some("256".into())
        );
        assert_eq!(written(Form::Bool, "0").unwrap(), Some("false".into()));
        assert_eq!(written(Form::Bool, "1").unwrap(), Some("true".into()));
        assert_eq!(
            written(Form::Time, "23:59:59.999999").unwrap(),
            Some("\"23:59:59.999999\"".into())
        );
        assert!(
            written(Form::Time, "838:59:59")
                .unwrap_err()
                .contains("TIME_TO_SEC")
        );
        assert!(written(Form::Time, "-01:00:00").is_err());
    }
}
