//! PostgreSQL: the import's SELECT described (each column's type mapped, or refused by name),
//! then copied by `COPY (SELECT …) TO STDOUT` in text form, each row turned into a line of
//! JSON as it arrives.
//!
//! The session is read-only and speaks UTC, ISO dates, ISO 8601 intervals, exact floats and
//! hex bytea, so that every value's text is one BigQuery reads. Arrays are the one thing the
//! text form spells awkwardly: for them the COPY wraps the column in `to_json`.

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{Kind, Type};
use tokio_postgres::{Client, NoTls};

use baton_core::connections::{Database, TlsMode};
use baton_core::imports::{ImportColumn, Scalar, Watermark};

use crate::chunks::Chunks;
use crate::json::{self, Rows};
use crate::source::{Copied, CopyError, Increment, increment_column, mapped, raise, statement};

/// How each column's text becomes JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    Raw,
    Float,
    Decimal,
    Bool,
    Text,
    Bytes,
    /// A date, a time: refused when it is an infinity or before Christ.
    Temporal,
    /// A `timestamptz` in UTC, `+00` made `+00:00`.
    Timestamp,
    Json,
    Array(Scalar),
}

const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
    SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; SET bytea_output = 'hex'; \
    SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY";

/// What a failure means: the server's errors by class (a connection exception, a lack of
/// resources, an operator's shutdown or a serialization failure may pass), the driver's
/// (a dropped or refused connection) transient.
fn failed(e: tokio_postgres::Error) -> CopyError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let message = format!("PostgreSQL: {} (SQLSTATE {code})", db.message());
            let transient = ["08", "53", "57P", "40001", "40P01", "55P03"]
                .iter()
                .any(|prefix| code.starts_with(prefix));
            if transient {
                CopyError::Transient(message)
            } else {
                CopyError::Permanent(message)
            }
        }
        None => CopyError::Transient(format!(
            "PostgreSQL: {}",
            baton_core::errors::error_chain(&e)
        )),
    }
}

/// Opens a read-only session.
pub async fn connect(db: &Database) -> Result<Client, CopyError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&db.host)
        .port(db.port)
        .dbname(&db.database)
        .user(&db.user)
        .password(&db.password)
        .application_name("baton")
        .connect_timeout(Duration::from_secs(15))
        .ssl_mode(match db.tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
    let client = match db.tls {
        TlsMode::Disable => {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "the PostgreSQL connection ended");
                }
            });
            client
        }
        mode => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(crate::tls::client(
                mode == TlsMode::VerifyFull,
            ));
            let (client, connection) = config.connect(tls).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "the PostgreSQL connection ended");
                }
            });
            client
        }
    };
    client.batch_execute(SESSION).await.map_err(failed)?;
    Ok(client)
}

/// A type's BigQuery type and how its values are written; `typmod` is the column's modifier
/// (a numeric's precision and scale).
fn scalar(ty: &Type, typmod: i32) -> Result<(Scalar, Form, String), String> {
    match ty.kind() {
        Kind::Enum(_) => return Ok((Scalar::String, Form::Text, ty.name().to_string())),
        Kind::Domain(base) => {
            let (scalar, form, _) = scalar(base, typmod)?;
            return Ok((scalar, form, ty.name().to_string()));
        }
        _ => {}
    }
    let name = ty.name().to_string();
    let found = match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => (Scalar::Int64, Form::Raw),
        Type::FLOAT4 | Type::FLOAT8 => (Scalar::Float64, Form::Float),
        Type::NUMERIC => {
            // A numeric's modifier is ((precision << 16) | scale) + 4; -1 when unbounded.
            let precision = (typmod >= 4).then(|| {
                let m = (typmod - 4) as u32;
                (m >> 16, m & 0xffff)
            });
            let name = match precision {
                Some((p, s)) => format!("numeric({p},{s})"),
                None => "numeric".into(),
            };
            return Ok((Scalar::decimal(precision), Form::Decimal, name));
        }
        Type::BOOL => (Scalar::Bool, Form::Bool),
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::CHAR
        | Type::UUID
        | Type::INET
        | Type::CIDR
        | Type::MACADDR
        | Type::MACADDR8
        | Type::XML
        | Type::TIMETZ
        | Type::INTERVAL => (Scalar::String, Form::Text),
        Type::TIMESTAMPTZ => (Scalar::Timestamp, Form::Timestamp),
        Type::TIMESTAMP => (Scalar::Datetime, Form::Temporal),
        Type::DATE => (Scalar::Date, Form::Temporal),
        Type::TIME => (Scalar::Time, Form::Temporal),
        Type::JSON | Type::JSONB => (Scalar::Json, Form::Json),
        Type::BYTEA => (Scalar::Bytes, Form::Bytes),
        _ if ty.name() == "citext" => (Scalar::String, Form::Text),
        _ => {
            return Err(format!(
                "type `{name}` has no BigQuery mapping: cast it in the import's SELECT \
                 (e.g. `c::text AS c`)"
            ));
        }
    };
    Ok((found.0, found.1, name))
}

/// A result column, mapped.
fn column(c: &tokio_postgres::Column) -> Result<(ImportColumn, Form), String> {
    let refuse = |e: String| format!("column `{}`: {e}", c.name());
    let (scalar, form, source_type, repeated) = match c.type_().kind() {
        Kind::Array(element) => {
            if matches!(element.kind(), Kind::Array(_)) {
                return Err(refuse("an array of arrays".into()));
            }
            let (scalar, _, name) = scalar(element, c.type_modifier()).map_err(refuse)?;
            (scalar, Form::Array(scalar), format!("{name}[]"), true)
        }
        _ => {
            let (scalar, form, name) = scalar(c.type_(), c.type_modifier()).map_err(refuse)?;
            (scalar, form, name, false)
        }
    };
    Ok((
        ImportColumn {
            name: c.name().to_string(),
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

/// The columns the import's SELECT answers, mapped, without reading a row.
pub async fn describe(client: &Client, sql: &str) -> Result<Described, CopyError> {
    let prepared = client.prepare(statement(sql)).await.map_err(failed)?;
    let (columns, forms): (Vec<_>, Vec<_>) = prepared
        .columns()
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

fn quoted_name(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The COPY that reads the import: the SELECT as written, or wrapped when arrays need
/// `to_json` or an increment its condition.
fn copy_statement(sql: &str, columns: &[ImportColumn], increment: Option<&Increment>) -> String {
    let sql = statement(sql);
    let condition = increment
        .and_then(|i| Some((&i.column, i.after?)))
        .map(|(column, after)| {
            format!(
                " WHERE baton_source.{} > {}",
                quoted_name(column),
                after.literal(false)
            )
        })
        .unwrap_or_default();
    if !columns.iter().any(|c| c.repeated) && condition.is_empty() {
        return format!("COPY (\n{sql}\n) TO STDOUT");
    }
    let list: Vec<String> = columns
        .iter()
        .map(|c| {
            let name = quoted_name(&c.name);
            if c.repeated {
                format!("to_json(baton_source.{name}) AS {name}")
            } else {
                format!("baton_source.{name}")
            }
        })
        .collect();
    format!(
        "COPY (SELECT {} FROM (\n{sql}\n) AS baton_source{condition}) TO STDOUT",
        list.join(", ")
    )
}

/// Copies the import's rows (those past the increment's watermark, with one) into `chunks`.
pub async fn copy(
    client: &Client,
    sql: &str,
    described: &Described,
    increment: Option<&Increment>,
    chunks: &mut Chunks,
) -> Result<Copied, CopyError> {
    let columns = &described.columns;
    let watched = increment
        .map(|i| increment_column(columns, i))
        .transpose()?;
    let stream = client
        .copy_out(copy_statement(sql, columns, increment).as_str())
        .await
        .map_err(failed)?;
    let mut stream = std::pin::pin!(stream);
    let mut writer = Writer {
        rows: Rows::new(columns),
        columns,
        forms: &described.forms,
        scratch: Vec::new(),
        count: 0,
        watched,
        high: None,
    };
    let mut batch = Vec::with_capacity(chunks.batch_bytes() + (64 << 10));
    let mut pending: Vec<u8> = Vec::new();
    while let Some(data) = stream.next().await {
        let data = data.map_err(failed)?;
        let mut rest: &[u8] = &data;
        if !pending.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    pending.extend_from_slice(&rest[..end]);
                    writer.row(&pending, &mut batch)?;
                    pending.clear();
                    rest = &rest[end + 1..];
                }
                None => {
                    pending.extend_from_slice(rest);
                    continue;
                }
            }
        }
        while let Some(end) = memchr::memchr(b'\n', rest) {
            writer.row(&rest[..end], &mut batch)?;
            rest = &rest[end + 1..];
        }
        pending.extend_from_slice(rest);
        if batch.len() >= chunks.batch_bytes() {
            chunks.push(&batch).await?;
            batch.clear();
        }
    }
    if !pending.is_empty() {
        writer.row(&pending, &mut batch)?;
    }
    chunks.push(&batch).await?;
    Ok(Copied {
        rows: writer.count,
        high: writer.high,
    })
}

struct Writer<'a> {
    rows: Rows,
    columns: &'a [ImportColumn],
    forms: &'a [Form],
    scratch: Vec<u8>,
    count: u64,
    /// The incremental column, whose highest value is kept.
    watched: Option<usize>,
    high: Option<Watermark>,
}

impl Writer<'_> {
    /// One line of COPY's text form: fields split by tabs, `\N` for NULL.
    fn row(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), CopyError> {
        self.count += 1;
        self.rows.begin(out);
        let mut fields = line.split(|&b| b == b'\t');
        for (i, form) in self.forms.iter().enumerate() {
            let Some(field) = fields.next() else {
                return Err(CopyError::Permanent(format!(
                    "row {} has {i} fields, not {}",
                    self.count,
                    self.forms.len()
                )));
            };
            if field == b"\\N" {
                continue;
            }
            self.rows.key(out, i);
            self.value(*form, field, out)
                .map_err(|e| CopyError::value(&self.columns[i], self.count, &e))?;
            if self.watched == Some(i) {
                raise(&mut self.high, &self.columns[i], field);
            }
        }
        self.rows.end(out);
        Ok(())
    }

    fn value(&mut self, form: Form, field: &[u8], out: &mut Vec<u8>) -> Result<(), json::Refusal> {
        match form {
            Form::Raw => json::raw(out, field),
            Form::Float => json::float(out, field),
            Form::Decimal => json::decimal(out, field)?,
            Form::Bool => out.extend_from_slice(if field == b"t" { b"true" } else { b"false" }),
            Form::Text => json::string(out, unescape(field, &mut self.scratch)),
            Form::Bytes => json::hex_bytes(out, unescape(field, &mut self.scratch))?,
            Form::Json => json::json(out, unescape(field, &mut self.scratch))?,
            Form::Array(element) => json::array(out, unescape(field, &mut self.scratch), element)?,
            Form::Temporal | Form::Timestamp => {
                if field.ends_with(b" BC") || field.ends_with(b"infinity") {
                    return Err(format!(
                        "`{}` is outside BigQuery's years 1 to 9999: filter it out or \
                         replace it in the import's SELECT",
                        String::from_utf8_lossy(field)
                    ));
                }
                if form == Form::Timestamp && field.ends_with(b"+00") {
                    out.push(b'"');
                    out.extend_from_slice(field);
                    out.extend_from_slice(b":00\"");
                } else {
                    json::quoted(out, field);
                }
            }
        }
        Ok(())
    }
}

/// COPY's text escapes undone (`\\`, `\n`, `\t`, `\r`, `\b`, `\f`, `\v`, octal and hex
/// bytes); a field without a backslash is returned as it is.
fn unescape<'a>(field: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if memchr::memchr(b'\\', field).is_none() {
        return field;
    }
    scratch.clear();
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            scratch.push(b);
            i += 1;
            continue;
        }
        let next = field[i + 1];
        i += 2;
        match next {
            b'n' => scratch.push(b'\n'),
            b't' => scratch.push(b'\t'),
            b'r' => scratch.push(b'\r'),
            b'b' => scratch.push(0x08),
            b'f' => scratch.push(0x0c),
            b'v' => scratch.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                let mut digits = 1;
                while digits < 3 && i < field.len() && (b'0'..=b'7').contains(&field[i]) {
                    value = value * 8 + u32::from(field[i] - b'0');
                    i += 1;
                    digits += 1;
                }
                scratch.push(value as u8);
            }
            b'x' if i < field.len() && field[i].is_ascii_hexdigit() => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 && i < field.len() && field[i].is_ascii_hexdigit() {
                    value = value * 16 + (field[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    digits += 1;
                }
                scratch.push(value as u8);
            }
            other => scratch.push(other),
        }
    }
    scratch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_are_undone() {
        let mut scratch = Vec::new();
        assert_eq!(unescape(b"plain", &mut scratch), b"plain");
        assert_eq!(
            unescape(b"a\\\\b\\nc\\td\\\\x01", &mut scratch),
            b"a\\b\nc\td\\x01"
        );
        assert_eq!(unescape(b"\\101\\x42", &mut scratch), b"AB");
    }

    #[test]
    fn arrays_are_wrapped_in_to_json_and_nothing_else_is() {
        let column = |name: &str, repeated| ImportColumn {
            name: name.into(),
            source_type: "x".into(),
            bigquery_type: Scalar::Int64,
            repeated,
        };
        let sql = "-- import: db\nSELECT id, tags FROM t -- the end\n;\n";
        assert_eq!(
            copy_statement(sql, &[column("id", false)], None),
            "COPY (\n-- import: db\nSELECT id, tags FROM t -- the end\n) TO STDOUT"
        );
        let wrapped = copy_statement(sql, &[column("id", false), column("tags", true)], None);
        assert!(
            wrapped.starts_with(
                "COPY (SELECT baton_source.\"id\", to_json(baton_source.\"tags\") AS \"tags\" FROM (\n"
            ),
            "{wrapped}"
        );
        let after = Increment {
            column: "id".into(),
            after: Some(Watermark::Integer(41)),
        };
        let incremental = copy_statement(sql, &[column("id", false)], Some(&after));
        assert!(
            incremental.ends_with(") AS baton_source WHERE baton_source.\"id\" > 41) TO STDOUT"),
            "{incremental}"
        );
    }
}
