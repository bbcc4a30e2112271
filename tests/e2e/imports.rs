//! Import tables end to end on the stack's real PostgreSQL and MariaDB: every mapped type
//! round-trips into local-bigquery with its values; an import runs in a run with the query
//! table that reads it; duplicate deliveries load once; and what goes wrong (a wrong password,
//! a missing table, an unreachable server, a type with no mapping, SQL outside the import
//! form) fails clearly, without the connection's secret anywhere.

use std::time::Duration;

use serde_json::{Value, json};

use baton_core::catalog::{CatalogSpec, Frequency, ImportSpec, Table, TableId, TableKind};
use baton_core::connections::ConnectionKind;
use baton_core::messages::ImporterTask;
use baton_core::state::{JobState, RunState};
use baton_service::api::{PutConnectionRequest, RunResponse, StartRunRequest};
use baton_tests::{Baton, Options, Stack, unique_project};

const TIMEOUT: Duration = Duration::from_secs(120);

fn id(s: &str) -> TableId {
    s.parse().expect("a valid table id")
}

fn import(name: &str, connection: &str, sql: &str) -> Table {
    Table {
        kind: TableKind::Import,
        import: Some(Box::new(ImportSpec {
            connection: connection.into(),
            ..ImportSpec::default()
        })),
        frequency: Some("nightly".into()),
        ..Table::query(&id(name), &format!("-- import: {connection}\n{sql}\n"))
    }
}

fn query(name: &str, sql: &str) -> Table {
    Table {
        frequency: Some("nightly".into()),
        ..Table::query(&id(name), sql)
    }
}

fn catalog(tables: Vec<Table>) -> CatalogSpec {
    CatalogSpec {
        frequencies: vec![Frequency::every("nightly", 86_400)],
        tables,
    }
}

/// A schema of the test's own in the stack's PostgreSQL, made with `setup` (`{s}` is it).
async fn postgres(stack: &Stack, schema: &str, setup: &str) -> anyhow::Result<()> {
    source(stack)
        .await?
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; {}",
            setup.replace("{s}", schema)
        ))
        .await?;
    Ok(())
}

/// A database of the test's own in the stack's MariaDB, made with `setup` (`{d}` is it).
async fn mariadb(stack: &Stack, database: &str, setup: &str) -> anyhow::Result<()> {
    use mysql_async::prelude::Queryable;
    let url = stack.var("BATON_TEST_MYSQL_URL")?;
    let mut conn = mysql_async::Conn::from_url(url).await?;
    conn.query_drop(format!(
        "SET NAMES utf8mb4; DROP DATABASE IF EXISTS {database}; \
         CREATE DATABASE {database} CHARACTER SET utf8mb4; USE {database}; {}",
        setup.replace("{d}", database)
    ))
    .await?;
    conn.disconnect().await?;
    Ok(())
}

async fn connect(baton: &Baton, name: &str, kind: ConnectionKind, url: &str) -> anyhow::Result<()> {
    baton
        .client
        .put_connection(
            name,
            &PutConnectionRequest {
                kind,
                secret: url.to_string(),
                description: None,
            },
        )
        .await?;
    Ok(())
}

/// The connection `name` to the stack's PostgreSQL, as its superuser.
async fn connect_postgres(baton: &Baton, stack: &Stack, name: &str) -> anyhow::Result<()> {
    let url = format!("{}?sslmode=disable", stack.var("BATON_TEST_POSTGRES_URL")?);
    connect(baton, name, ConnectionKind::Postgres, &url).await
}

/// A session of the test's own on the stack's PostgreSQL, to change the source.
async fn source(stack: &Stack) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio_postgres::connect(stack.var("BATON_TEST_POSTGRES_URL")?, tokio_postgres::NoTls)
            .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Starts a run of the nightly frequency; its id.
async fn start_nightly(baton: &Baton) -> anyhow::Result<String> {
    Ok(baton
        .client
        .start_run(&StartRunRequest {
            frequency: Some("nightly".into()),
            ..StartRunRequest::default()
        })
        .await?
        .run
        .id)
}

async fn run_nightly(baton: &Baton) -> anyhow::Result<RunResponse> {
    let run_id = start_nightly(baton).await?;
    baton.wait_for_run(&run_id, TIMEOUT).await
}

/// The recorded copy of an import's attempt, if there is one.
async fn staged(
    baton: &Baton,
    run_id: &str,
    attempt: &str,
) -> anyhow::Result<Option<baton_core::imports::StagedCopy>> {
    Ok(baton
        .store
        .get(
            Some(&baton.store.run_path(run_id)?),
            baton_core::imports::STAGED,
            attempt,
        )
        .await?)
}

/// Rows of `sql` (`{p}` is the project) as JSON, column by column.
async fn rows(baton: &Baton, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
    Ok(baton
        .warehouse
        .query_rows(&sql.replace("{p}", &baton.project))
        .await?)
}

/// The BigQuery types of a table's columns, `name TYPE` or `name REPEATED TYPE`.
async fn schema(baton: &Baton, table: &str) -> anyhow::Result<Vec<String>> {
    let table = baton
        .warehouse
        .table(&id(table))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no table {table}"))?;
    Ok(table
        .schema
        .fields
        .unwrap_or_default()
        .into_iter()
        .map(|f| match f.mode.as_deref() {
            Some("REPEATED") => format!("{} REPEATED {:?}", f.name, f.r#type),
            _ => format!("{} {:?}", f.name, f.r#type),
        })
        .collect())
}

/// Compares rows column by column; the `decimals` columns without trailing zeros
/// (local-bigquery's NUMERIC is DuckDB's DECIMAL(38, 9), which prints all nine places).
fn compare(got: &[Vec<Value>], expected: &[Value], decimals: &[usize]) {
    let trimmed = |v: &Value| match v.as_str() {
        Some(s) if s.contains('.') => json!(s.trim_end_matches('0').trim_end_matches('.')),
        _ => v.clone(),
    };
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (got, expected) in got.iter().zip(expected) {
        let expected: Vec<Value> = expected.as_array().cloned().unwrap_or_default();
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            let g = if decimals.contains(&i) {
                trimmed(g)
            } else {
                g.clone()
            };
            assert_eq!(&g, e, "column {i} of row {}", got[0]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgres_type_round_trips_and_the_query_table_reading_it_runs_after()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-pg").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        r#"
        CREATE TYPE {s}.mood AS ENUM ('sad', 'happy');
        CREATE DOMAIN {s}.cents AS bigint;
        CREATE TABLE {s}.everything (
            id int PRIMARY KEY, small smallint, big bigint, price {s}.cents,
            single real, double double precision,
            money numeric(12,2), fine numeric(30,12), loose numeric,
            flag boolean, name text, code varchar(10), letters char(4),
            at timestamptz, local timestamp, day date, clock time, span interval,
            doc json, docb jsonb, tags text[], numbers int[], amounts numeric(6,2)[],
            blob bytea, uid uuid, feeling {s}.mood
        );
        SET TimeZone = 'America/Los_Angeles';
        INSERT INTO {s}.everything VALUES
          (1, -32768, 9223372036854775807, 1999, 1.5, 1.7976931348623157e308,
           -9999999999.99, 12345678901234567.123456789012, 0.000000001,
           true, E'h\u00e9llo "w\u00f6rld"\n\ttab\\back \U0001F600', '', 'ab',
           '2024-03-10 01:59:59.999999', '2024-03-10 02:30:00.5', '0001-01-01',
           '23:59:59.999999', '1 year 2 months 3 days 04:05:06.789',
           '{"a": [1, 2, {"b": null}],
             "c": "line\nbreak"}', '{"k": "v"}',
           ARRAY['a b', 'c,d', 'e"f', ''], '{}', '{1.10,2.00}',
           '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (3, 0, -9223372036854775808, 0, '-Infinity', 'NaN', 0, 0, -123.456,
           false, '', 'x', 'abcd', '9999-12-31 23:59:59.999999+00', '1970-01-01 00:00:00',
           '9999-12-31', '00:00:00', '-1 days', '[]', 'null', '{}', '{-1,0,1}', '{}',
           '\x', '00000000-0000-0000-0000-000000000000', 'sad');
        "#,
    )
    .await?;
    let baton = Baton::start(&stack, "imports-pg").await?;
    connect_postgres(&baton, &stack, "shop_pg").await?;
    let applied = baton
        .apply(catalog(vec![
            Table {
                // Renewed by each import, as a query's by its job.
                options: Box::new(baton_core::catalog::TableOptions {
                    expiration_seconds: Some(30 * 86_400),
                    ..Default::default()
                }),
                ..import(
                    "imp.everything",
                    "shop_pg",
                    &format!("SELECT * FROM {schema_name}.everything"),
                )
            },
            query(
                "imp.summary",
                "SELECT COUNT(*) AS n, COUNTIF(flag) AS flagged FROM imp.everything",
            ),
        ]))
        .await?;
    assert_eq!(
        applied.dependencies[&id("imp.summary")],
        vec![id("imp.everything")],
        "the query table depends on the import it reads"
    );
    assert!(applied.dependencies[&id("imp.everything")].is_empty());

    let run = run_nightly(&baton).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:#?}");
    let import_job = run
        .jobs
        .iter()
        .find(|j| j.table == id("imp.everything"))
        .expect("the import's job");
    let summary_job = run
        .jobs
        .iter()
        .find(|j| j.table == id("imp.summary"))
        .expect("the summary's job");
    assert!(
        summary_job.started_at >= import_job.finished_at,
        "the query table ran after the import it reads"
    );
    let statistics = import_job.statistics.clone().unwrap_or_default();
    assert_eq!(statistics.rows_affected, Some(3), "{statistics:?}");
    assert_eq!(statistics.destination_rows, Some(3), "{statistics:?}");
    // Its expiration is renewed by the import, as a query's is by its job.
    let expires: i64 = baton
        .warehouse
        .table(&id("imp.everything"))
        .await?
        .and_then(|t| t.expiration_time)
        .and_then(|t| t.parse().ok())
        .expect("the imported table expires");
    let in_days = (expires / 1000 - jiff::Timestamp::now().as_second()) / 86_400;
    assert!((29..=30).contains(&in_days), "{in_days} days");
    assert_eq!(
        rows(&baton, "SELECT n, flagged FROM imp.summary").await?,
        vec![vec![json!("3"), json!("1")]]
    );

    assert_eq!(
        schema(&baton, "imp.everything").await?,
        [
            "id Integer",
            "small Integer",
            "big Integer",
            "price Integer",
            "single Float",
            "double Float",
            "money Numeric",
            "fine Bignumeric",
            "loose Bignumeric",
            "flag Boolean",
            "name String",
            "code String",
            "letters String",
            "at Timestamp",
            "local Datetime",
            "day Date",
            "clock Time",
            "span String",
            "doc Json",
            "docb Json",
            "tags REPEATED String",
            "numbers REPEATED Integer",
            "amounts REPEATED Numeric",
            "blob Bytes",
            "uid String",
            "feeling String",
        ]
    );

    let got = rows(
        &baton,
        "SELECT id, small, big, price, single, double, CAST(money AS STRING),
                CAST(fine AS STRING), CAST(loose AS STRING), flag, name, code, letters,
                CAST(at AS STRING), CAST(local AS STRING), CAST(day AS STRING),
                CAST(clock AS STRING), span, doc, docb,
                tags, numbers, amounts, TO_BASE64(blob), uid, feeling
         FROM imp.everything ORDER BY id",
    )
    .await?;
    let expected = vec![
        json!([
            "1", "-32768", "9223372036854775807", "1999", "1.5", "1.7976931348623157e+308",
            "-9999999999.99", "12345678901234567.123456789012", "0.000000001",
            "true", "héllo \"wörld\"\n\ttab\\back 😀", "", "ab  ",
            "2024-03-10 09:59:59.999999+00", "2024-03-10 02:30:00.5", "0001-01-01",
            "23:59:59.999999", "P1Y2M3DT4H5M6.789S",
            "{\"a\":[1,2,{\"b\":null}],\"c\":\"line\\nbreak\"}", "{\"k\":\"v\"}",
            [{"v": "a b"}, {"v": "c,d"}, {"v": "e\"f"}, {"v": ""}], [],
            [{"v": "1.1"}, {"v": "2"}],
            "AP8Q", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "happy"
        ]),
        json!([
            "2",
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            [],
            [],
            [],
            null,
            null,
            null
        ]),
        json!([
            "3", "0", "-9223372036854775808", "0", "-Infinity", "NaN", "0", "0", "-123.456",
            "false", "", "x", "abcd",
            "9999-12-31 23:59:59.999999+00", "1970-01-01 00:00:00", "9999-12-31",
            // A JSON null is loaded as SQL NULL, BigQuery's rule for JSON columns.
            "00:00:00", "P-1D", "[]", null,
            [], [{"v": "-1"}, {"v": "0"}, {"v": "1"}], [],
            "", "00000000-0000-0000-0000-000000000000", "sad"
        ]),
    ];
    compare(&got, &expected, &[6, 7, 8]);

    // The copy is recorded on the run, with the source's types beside BigQuery's.
    let staged = staged(&baton, &run.run.id, "imp.everything@1")
        .await?
        .expect("the copy is recorded");
    assert_eq!(staged.rows, 3);
    let money = staged.columns.iter().find(|c| c.name == "money").unwrap();
    assert_eq!(money.source_type, "numeric(12,2)");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mariadb_type_round_trips() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let database = unique_project("imp-my").replace('-', "_");
    mariadb(
        &stack,
        &database,
        r#"
        CREATE TABLE everything (
            id INT PRIMARY KEY, tiny TINYINT, flag TINYINT(1), small SMALLINT UNSIGNED,
            medium MEDIUMINT, regular INT, big BIGINT, huge BIGINT UNSIGNED,
            single FLOAT, dbl DOUBLE, money DECIMAL(12,2), fine DECIMAL(30,12),
            name VARCHAR(100), body TEXT, fixed CHAR(3), raw VARBINARY(8), blobby BLOB,
            day DATE, at DATETIME(6), stamp TIMESTAMP(3) NULL, clock TIME(3), yr YEAR,
            mood ENUM('sad','happy'), perms SET('read','write','admin'), bits BIT(10)
        );
        SET time_zone = '+02:00';
        SET SESSION sql_mode = '';
        INSERT INTO everything VALUES
          (1, -128, 1, 65535, -8388608, -2147483648, 9223372036854775807,
           18446744073709551615, 1.5, 1.7976931348623157e308, -9999999999.99,
           12345678901234567.123456789012, 'héllo "wörld"\n\ttab\\back 😀', 'long text', 'ab',
           X'00FF10', X'DEADBEEF', '2024-02-29', '2024-02-29 23:59:59.999999',
           '2024-03-10 12:00:00.125', '23:59:59.5', 2024, 'happy', 'read,admin', b'1000000001'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (3, 0, 0, 0, 0, 0, -9223372036854775808, 0, 0, -1e-300, 0, 0, '', '', '',
           X'', X'', '0000-00-00', '0000-00-00 00:00:00', NULL, '00:00:00', 1901, 'sad', '',
           b'0');
        "#,
    )
    .await?;
    let baton = Baton::start(&stack, "imports-my").await?;
    let url = format!(
        "{}?sslmode=disable",
        stack
            .var("BATON_TEST_MYSQL_URL")?
            .trim_end_matches("/mysql")
            .to_string()
            + "/"
            + &database
    );
    let url = url.replace("/?", "?");
    connect(&baton, "shop_my", ConnectionKind::Mysql, &url).await?;
    baton
        .apply(catalog(vec![import(
            "imp.everything",
            "shop_my",
            "SELECT * FROM everything",
        )]))
        .await?;
    let run = run_nightly(&baton).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:#?}");
    assert_eq!(
        schema(&baton, "imp.everything").await?,
        [
            "id Integer",
            "tiny Integer",
            "flag Boolean",
            "small Integer",
            "medium Integer",
            "regular Integer",
            "big Integer",
            "huge Numeric",
            "single Float",
            "dbl Float",
            "money Numeric",
            "fine Bignumeric",
            "name String",
            "body String",
            "fixed String",
            "raw Bytes",
            "blobby Bytes",
            "day Date",
            "at Datetime",
            "stamp Timestamp",
            "clock Time",
            "yr Integer",
            "mood String",
            "perms REPEATED String",
            "bits Integer",
        ]
    );
    let got = rows(
        &baton,
        "SELECT id, tiny, flag, small, medium, regular, big, CAST(huge AS STRING), single, dbl,
                CAST(money AS STRING), CAST(fine AS STRING), name, body, fixed,
                TO_BASE64(raw), TO_BASE64(blobby), CAST(day AS STRING), CAST(at AS STRING),
                CAST(stamp AS STRING), CAST(clock AS STRING), yr, mood, perms, bits
         FROM imp.everything ORDER BY id",
    )
    .await?;
    let expected = vec![
        json!([
            "1", "-128", "true", "65535", "-8388608", "-2147483648", "9223372036854775807",
            "18446744073709551615", "1.5", "1.7976931348623157e+308", "-9999999999.99",
            "12345678901234567.123456789012", "héllo \"wörld\"\n\ttab\\back 😀", "long text",
            "ab", "AP8Q", "3q2+7w==", "2024-02-29", "2024-02-29 23:59:59.999999",
            "2024-03-10 10:00:00.125+00", "23:59:59.5", "2024", "happy",
            [{"v": "read"}, {"v": "admin"}], "513"
        ]),
        json!([
            "2",
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            null,
            [],
            null
        ]),
        json!([
            "3",
            "0",
            "false",
            "0",
            "0",
            "0",
            "-9223372036854775808",
            "0",
            "0.0",
            "-1e-300",
            "0",
            "0",
            "",
            "",
            "",
            "",
            "",
            null,
            null,
            null,
            "00:00:00",
            "1901",
            "sad",
            [],
            "0"
        ]),
    ];
    compare(&got, &expected, &[7, 10, 11]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deliveries_load_each_row_once() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-dup").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.orders AS SELECT g AS id, 'order ' || g AS label \
         FROM generate_series(1, 5000) AS g;",
    )
    .await?;
    // Small chunks, so that a copy is several uploads.
    let baton = Baton::start_with(
        &stack,
        "imports-dup",
        Options::default().env("BATON_IMPORT_CHUNK_BYTES", "20000"),
    )
    .await?;
    connect_postgres(&baton, &stack, "shop_pg").await?;
    baton
        .apply(catalog(vec![import(
            "imp.orders",
            "shop_pg",
            &format!("SELECT id, label FROM {schema_name}.orders WHERE id > 0"),
        )]))
        .await?;
    // Every message to the importer arrives twice at once.
    baton.relays.importer.duplicate(true);
    let run = run_nightly(&baton).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:#?}");
    // Also a late redelivery of the first attempt, after the job ended.
    let task = ImporterTask::Import {
        run_id: run.run.id.clone(),
        table: id("imp.orders"),
        attempt: 1,
    };
    let status = baton.push(&baton.urls.importer, &task).await?;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM imp.orders"
        )
        .await?,
        vec![vec![json!("5000"), json!("5000")]]
    );
    let jobs = baton.bigquery_jobs(&run.run.id).await?;
    assert_eq!(jobs.len(), 1, "one load job: {jobs:?}");
    let staged = staged(&baton, &run.run.id, "imp.orders@1")
        .await?
        .expect("the copy is recorded");
    assert!(staged.objects.len() > 3, "{:?}", staged.objects);
    Ok(())
}

/// One failed import run's job error.
async fn failed_import(baton: &Baton, table: Table) -> anyhow::Result<String> {
    let name = table.id()?;
    baton.apply(catalog(vec![table])).await?;
    let run = run_nightly(baton).await?;
    assert_eq!(run.run.state, RunState::Failed, "{run:#?}");
    let job = run.jobs.iter().find(|j| j.table == name).expect("its job");
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    Ok(job.error.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_goes_wrong_fails_clearly_and_never_shows_the_secret() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-bad").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.places (id int, spot point); INSERT INTO {s}.places VALUES (1, '(1,2)');",
    )
    .await?;
    let baton = Baton::start_with(
        &stack,
        "imports-bad",
        Options::default().env("BATON_MAX_ATTEMPTS", "2"),
    )
    .await?;
    let good = format!("{}?sslmode=disable", stack.var("BATON_TEST_POSTGRES_URL")?);
    let wrong = good.replace(":stack@", ":hunter2-wrong@");
    connect(&baton, "good_pg", ConnectionKind::Postgres, &good).await?;
    connect(&baton, "wrong_pg", ConnectionKind::Postgres, &wrong).await?;
    // Nothing listens on port 9 of the loopback.
    connect(
        &baton,
        "gone_pg",
        ConnectionKind::Postgres,
        "postgres://postgres:hunter2-gone@127.0.0.1:9/postgres?sslmode=disable",
    )
    .await?;
    let places = format!("SELECT id FROM {schema_name}.places");

    let e = failed_import(&baton, import("bad.wrong", "wrong_pg", &places)).await?;
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(e.contains("28P01"), "{e}");

    let e = failed_import(
        &baton,
        import(
            "bad.missing",
            "good_pg",
            &format!("SELECT id FROM {schema_name}.nowhere"),
        ),
    )
    .await?;
    assert!(e.contains("does not exist") && e.contains("42P01"), "{e}");

    let e = failed_import(
        &baton,
        import(
            "bad.point",
            "good_pg",
            &format!("SELECT id, spot FROM {schema_name}.places"),
        ),
    )
    .await?;
    assert!(
        e.contains("column `spot`: type `point` has no BigQuery mapping"),
        "{e}"
    );

    let e = failed_import(
        &baton,
        import(
            "bad.unnamed",
            "good_pg",
            &format!("SELECT id, id + 1 FROM {schema_name}.places"),
        ),
    )
    .await?;
    assert!(e.contains("column 2 is named `?column?`"), "{e}");

    // Unreachable: transient, tried again, then failed with the reason.
    baton
        .apply(catalog(vec![import("bad.gone", "gone_pg", &places)]))
        .await?;
    let run = run_nightly(&baton).await?;
    let job = run.jobs.iter().find(|j| j.table == id("bad.gone")).unwrap();
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert_eq!(job.attempt, 2, "tried twice: {job:?}");
    let e = job.error.clone().unwrap_or_default();
    assert!(e.contains("copy: PostgreSQL:"), "{e}");

    // SQL outside the import form is refused at apply, saying what and where.
    let refused = baton
        .client
        .apply(&baton_service::api::ApplyRequest {
            catalog: catalog(vec![import(
                "bad.joined",
                "good_pg",
                &format!("SELECT a.id FROM {schema_name}.places a JOIN {schema_name}.places b ON a.id = b.id"),
            )]),
            prune: false,
            dry_run: true,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("JOIN is not allowed"), "{refused}");
    assert!(refused.contains(":2:"), "the line is named: {refused}");
    let refused = baton
        .client
        .apply(&baton_service::api::ApplyRequest {
            catalog: catalog(vec![import("bad.nothing", "no_such", &places)]),
            prune: false,
            dry_run: true,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("connection `no_such` does not exist"),
        "{refused}"
    );

    // The passwords are in no answer and no log.
    let connections = serde_json::to_string(&baton.client.connections().await?)?;
    assert!(
        connections.contains("postgres@127.0.0.1:9/postgres (disable)"),
        "{connections}"
    );
    for service in ["api", "importer", "planner"] {
        let log = std::fs::read_to_string(baton.log_dir.join(format!("{service}.log")))?;
        for secret in ["hunter2", ":stack@"] {
            assert!(!log.contains(secret), "{service}'s log shows a password");
        }
    }
    for run in baton.client.runs(20).await?.runs {
        let shown = serde_json::to_string(&baton.client.run(&run.id).await?)?;
        assert!(
            !shown.contains("hunter2"),
            "run {} shows a password",
            run.id
        );
    }
    Ok(())
}

/// The job of `table` in a run, with its import summary.
fn summary(run: &RunResponse, table: &str) -> baton_core::imports::ImportSummary {
    let job = run
        .jobs
        .iter()
        .find(|j| j.table == id(table))
        .expect("the table's job");
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    job.statistics
        .as_ref()
        .and_then(|s| s.import.clone())
        .expect("an import summary")
}

async fn state(baton: &Baton, table: &str) -> anyhow::Result<baton_core::imports::ImportState> {
    baton
        .store
        .get(None, baton_core::imports::STATE, table)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no import state for {table}"))
}

fn incremental(mut table: Table, column: &str, overlap: Option<i64>) -> Table {
    if let Some(spec) = table.import.as_mut() {
        spec.incremental = Some(column.into());
        spec.overlap_seconds = overlap;
    }
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_imports_read_past_the_watermark_and_reload_when_they_must()
-> anyhow::Result<()> {
    use baton_core::catalog::WriteMode;
    use baton_core::imports::Watermark;
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-inc").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.orders (id int PRIMARY KEY, status text, total numeric(10,2),
                                  updated_at timestamptz NOT NULL);
         INSERT INTO {s}.orders VALUES
           (1, 'new', 10, '2026-01-01 10:00:00+00'),
           (2, 'new', 20, '2026-01-01 11:00:00+00'),
           (3, 'new', 30, '2026-01-01 12:00:00+00');
         CREATE TABLE {s}.events (id bigint PRIMARY KEY, kind text);
         INSERT INTO {s}.events SELECT g, 'seen' FROM generate_series(1, 3) AS g;",
    )
    .await?;
    let url = format!("{}?sslmode=disable", stack.var("BATON_TEST_POSTGRES_URL")?);
    let source = source(&stack).await?;
    let baton = Baton::start(&stack, "imports-inc").await?;
    connect(&baton, "shop_pg", ConnectionKind::Postgres, &url).await?;
    let orders = Table {
        write_mode: WriteMode::Merge,
        options: Box::new(baton_core::catalog::TableOptions {
            key: vec!["id".into()],
            ..Default::default()
        }),
        ..incremental(
            import(
                "inc.orders",
                "shop_pg",
                &format!("SELECT id, status, total, updated_at FROM {schema_name}.orders"),
            ),
            "updated_at",
            Some(600),
        )
    };
    let events = Table {
        write_mode: WriteMode::Append,
        ..incremental(
            import(
                "inc.events",
                "shop_pg",
                &format!("SELECT * FROM {schema_name}.events"),
            ),
            "id",
            None,
        )
    };
    let paid = query(
        "inc.paid",
        "SELECT COUNT(*) AS orders FROM inc.orders WHERE status = 'paid'",
    );
    baton
        .apply(catalog(vec![orders.clone(), events.clone(), paid]))
        .await?;
    let at = |s: &str| Watermark::Timestamp(s.parse().expect("a timestamp"));

    // The first import is whole.
    let first = run_nightly(&baton).await?;
    assert_eq!(first.run.state, RunState::Succeeded, "{first:#?}");
    let s = summary(&first, "inc.orders");
    assert!(s.full, "{s:?}");
    assert_eq!(s.reason.as_deref(), Some("the first import"));
    assert_eq!((s.rows, s.watermark), (3, Some(at("2026-01-01T12:00:00Z"))));
    assert_eq!(
        summary(&first, "inc.events").watermark,
        Some(Watermark::Integer(3))
    );

    // An update, a new row, and a row committed late (older than the watermark, inside the
    // overlap); two new events.
    source
        .batch_execute(&format!(
            "UPDATE {schema_name}.orders SET status = 'paid', updated_at = '2026-01-01 13:00:00+00' WHERE id = 2;
             INSERT INTO {schema_name}.orders VALUES (4, 'paid', 40, '2026-01-01 13:00:00+00'),
                                                     (5, 'late', 50, '2026-01-01 11:55:00+00');
             INSERT INTO {schema_name}.events VALUES (4, 'new'), (5, 'new');"
        ))
        .await?;
    let second = run_nightly(&baton).await?;
    assert_eq!(second.run.state, RunState::Succeeded, "{second:#?}");
    let s = summary(&second, "inc.orders");
    assert!(!s.full, "{s:?}");
    assert_eq!(
        s.after,
        Some(at("2026-01-01T11:50:00Z")),
        "the overlap reads back 10 minutes"
    );
    assert_eq!(s.rows, 4, "rows 2, 3, 4 and the late 5: {s:?}");
    assert_eq!(s.watermark, Some(at("2026-01-01T13:00:00Z")));
    assert_eq!(
        rows(&baton, "SELECT id, status FROM inc.orders ORDER BY id").await?,
        [
            (1, "new"),
            (2, "paid"),
            (3, "new"),
            (4, "paid"),
            (5, "late")
        ]
        .map(|(i, s)| vec![json!(i.to_string()), json!(s)])
        .to_vec(),
        "merged on the key: each order once, as it is now"
    );
    assert_eq!(
        rows(&baton, "SELECT orders FROM inc.paid").await?,
        vec![vec![json!("2")]],
        "the query table reading the import ran after it"
    );
    let e = summary(&second, "inc.events");
    assert_eq!((e.rows, e.watermark), (2, Some(Watermark::Integer(5))));
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM inc.events"
        )
        .await?,
        vec![vec![json!("5"), json!("5")]],
        "appended past the id: no event twice"
    );

    // A value BigQuery cannot hold fails the import: the watermark stays where it was, and
    // the next run, once the row is fixed, reads it.
    source
        .batch_execute(&format!(
            "ALTER TABLE {schema_name}.orders ALTER COLUMN total TYPE numeric(10,2);
             INSERT INTO {schema_name}.orders VALUES (6, 'new', 'NaN', '2026-01-01 14:00:00+00');"
        ))
        .await?;
    let failed = run_nightly(&baton).await?;
    assert_eq!(failed.run.state, RunState::Failed, "{failed:#?}");
    let job = failed
        .jobs
        .iter()
        .find(|j| j.table == id("inc.orders"))
        .unwrap();
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .contains("column `total` (numeric(10,2))"),
        "{job:?}"
    );
    assert_eq!(
        state(&baton, "inc.orders").await?.watermark,
        Some(at("2026-01-01T13:00:00Z")),
        "a failed import never moves the watermark"
    );
    source
        .batch_execute(&format!(
            "UPDATE {schema_name}.orders SET total = 60 WHERE id = 6"
        ))
        .await?;
    let fixed = run_nightly(&baton).await?;
    assert_eq!(fixed.run.state, RunState::Succeeded, "{fixed:#?}");
    let s = summary(&fixed, "inc.orders");
    assert_eq!(
        (s.full, s.watermark),
        (false, Some(at("2026-01-01T14:00:00Z")))
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM inc.orders WHERE id = 6").await?,
        vec![vec![json!("1")]]
    );

    // A new column in the source: the table is loaded whole again, with it, and says why.
    source
        .batch_execute(&format!(
            "ALTER TABLE {schema_name}.orders ADD COLUMN note text DEFAULT 'n/a'"
        ))
        .await?;
    let orders_with_note = Table {
        sql: format!(
            "-- import: shop_pg\nSELECT id, status, total, updated_at, note FROM {schema_name}.orders\n"
        ),
        ..orders.clone()
    };
    baton.apply(catalog(vec![orders_with_note.clone()])).await?;
    let reloaded = run_nightly(&baton).await?;
    assert_eq!(reloaded.run.state, RunState::Succeeded, "{reloaded:#?}");
    let s = summary(&reloaded, "inc.orders");
    assert!(s.full, "{s:?}");
    assert_eq!(
        s.reason.as_deref(),
        Some("the source's columns changed: added note")
    );
    assert_eq!(s.rows, 6);
    assert!(
        schema(&baton, "inc.orders")
            .await?
            .contains(&"note String".to_string())
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*), COUNT(note) FROM inc.orders").await?,
        vec![vec![json!("6"), json!("6")]]
    );

    // A reimport condition that holds at the run's instant (today's weekday, in UTC) loads
    // the table whole.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .weekday()
        .to_monday_one_offset();
    let mut reimported = orders_with_note;
    if let Some(spec) = reimported.import.as_mut() {
        spec.reimport = vec![baton_core::schedule::Condition {
            weekdays: vec![u8::try_from(today)?],
            ..Default::default()
        }];
    }
    baton.apply(catalog(vec![reimported])).await?;
    let again = run_nightly(&baton).await?;
    let s = summary(&again, "inc.orders");
    assert_eq!(
        (s.full, s.reason.as_deref()),
        (true, Some("a reimport condition holds"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_import_reads_past_its_timestamp_watermark() -> anyhow::Result<()> {
    use baton_core::catalog::WriteMode;
    use mysql_async::prelude::Queryable;
    let stack = Stack::load()?;
    let database = unique_project("imp-myinc").replace('-', "_");
    mariadb(
        &stack,
        &database,
        "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), changed TIMESTAMP(6) NOT NULL);
         SET time_zone = '+00:00';
         INSERT INTO orders VALUES (1, 'new', '2026-01-01 10:00:00'), (2, 'new', '2026-01-01 11:00:00.5');",
    )
    .await?;
    let root = stack
        .var("BATON_TEST_MYSQL_URL")?
        .trim_end_matches("/mysql")
        .to_string();
    let baton = Baton::start(&stack, "imports-myinc").await?;
    connect(
        &baton,
        "crm",
        ConnectionKind::Mysql,
        &format!("{root}/{database}?sslmode=disable"),
    )
    .await?;
    let orders = Table {
        write_mode: WriteMode::Merge,
        options: Box::new(baton_core::catalog::TableOptions {
            key: vec!["id".into()],
            ..Default::default()
        }),
        ..incremental(
            import("crm.orders", "crm", "SELECT * FROM orders"),
            "changed",
            None,
        )
    };
    baton.apply(catalog(vec![orders])).await?;
    let first = run_nightly(&baton).await?;
    assert_eq!(summary(&first, "crm.orders").rows, 2);
    let mut conn = mysql_async::Conn::from_url(format!("{root}/{database}")).await?;
    conn.query_drop(
        "SET time_zone = '+00:00';
         UPDATE orders SET status = 'paid', changed = '2026-01-01 12:00:00' WHERE id = 1;
         INSERT INTO orders VALUES (3, 'new', '2026-01-01 11:00:00.25');",
    )
    .await?;
    conn.disconnect().await?;
    let second = run_nightly(&baton).await?;
    let s = summary(&second, "crm.orders");
    assert_eq!(s.rows, 1, "only the row past 11:00:00.5: {s:?}");
    assert_eq!(
        s.watermark,
        Some(baton_core::imports::Watermark::Timestamp(
            "2026-01-01T12:00:00Z".parse()?
        ))
    );
    assert_eq!(
        rows(&baton, "SELECT id, status FROM crm.orders ORDER BY id").await?,
        [(1, "paid"), (2, "new")]
            .map(|(i, s)| vec![json!(i.to_string()), json!(s)])
            .to_vec(),
        "row 3 changed before the watermark, without an overlap, is not read"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_importer_killed_mid_copy_copies_again_and_loads_every_row_once() -> anyhow::Result<()> {
    use baton_core::ports::BlobPort;
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-kill").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.events AS SELECT g AS id, 'event number ' || g AS label \
         FROM generate_series(1, 200000) AS g;",
    )
    .await?;
    // Many small chunks, so that the copy is still uploading when the importer is killed.
    let mut baton = Baton::start_with(
        &stack,
        "imports-kill",
        Options::default().env("BATON_IMPORT_CHUNK_BYTES", "40000"),
    )
    .await?;
    connect_postgres(&baton, &stack, "shop_pg").await?;
    baton
        .apply(catalog(vec![import(
            "imp.events",
            "shop_pg",
            &format!("SELECT id, label FROM {schema_name}.events"),
        )]))
        .await?;
    let run_id = start_nightly(&baton).await?;
    let storage = baton_google::storage::Storage::new(&baton.gcp, None)?;
    let bucket = format!("{}-staging", baton.project);
    let prefix = format!("imports/{run_id}/");
    let uploaded = baton_tests::eventually("chunks being uploaded", TIMEOUT, || async {
        let objects = storage.list(&bucket, &prefix).await?;
        Ok((objects.len() >= 3).then_some(objects.len()))
    })
    .await?;
    baton.kill("importer")?;
    let staged_then = staged(&baton, &run_id, "imp.events@1").await?;
    assert!(staged_then.is_none(), "killed before the copy was recorded");
    baton.restart("importer")?;

    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:#?}");
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM imp.events"
        )
        .await?,
        vec![vec![json!("200000"), json!("200000")]],
        "every row once"
    );
    let staged = staged(&baton, &run_id, "imp.events@1")
        .await?
        .expect("the second copy is recorded");
    let objects = storage.list(&bucket, &prefix).await?;
    let orphans = objects
        .iter()
        .filter(|o| !o.name.contains(&staged.copy))
        .count();
    assert!(
        orphans >= uploaded.min(3),
        "the killed copy's chunks ({orphans}) stay, unloaded, beside the recorded copy's"
    );
    assert_eq!(baton.bigquery_jobs(&run_id).await?.len(), 1, "one load");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_copy_is_retried_as_a_new_attempt() -> anyhow::Result<()> {
    use baton_core::ports::BlobPort;
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-drop").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.events AS SELECT g AS id, 'event number ' || g AS label \
         FROM generate_series(1, 200000) AS g;",
    )
    .await?;
    let baton = Baton::start_with(
        &stack,
        "imports-drop",
        Options::default().env("BATON_IMPORT_CHUNK_BYTES", "40000"),
    )
    .await?;
    connect_postgres(&baton, &stack, "shop_pg").await?;
    baton
        .apply(catalog(vec![import(
            "imp.events",
            "shop_pg",
            &format!("SELECT id, label FROM {schema_name}.events"),
        )]))
        .await?;
    let run_id = start_nightly(&baton).await?;
    let storage = baton_google::storage::Storage::new(&baton.gcp, None)?;
    let bucket = format!("{}-staging", baton.project);
    let prefix = format!("imports/{run_id}/imp.events/1/");
    baton_tests::eventually("the first attempt uploading", TIMEOUT, || async {
        Ok((!storage.list(&bucket, &prefix).await?.is_empty()).then_some(()))
    })
    .await?;
    // The database drops the importer's session, as a failover or an operator would.
    let admin = source(&stack).await?;
    let dropped = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'baton' AND query LIKE 'COPY%'",
            &[],
        )
        .await?;
    assert!(!dropped.is_empty(), "the copy's session was found");

    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:#?}");
    let job = &run.jobs[0];
    assert_eq!(job.attempt, 2, "{job:?}");
    let first = &job.previous_attempts[0].error;
    assert!(
        first.contains("copy: PostgreSQL:")
            && (first.contains("57P01") || first.contains("connection closed")),
        "the first attempt ended on the dropped connection: {first}"
    );
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM imp.events"
        )
        .await?,
        vec![vec![json!("200000"), json!("200000")]]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_leaves_the_watermark_where_it_was() -> anyhow::Result<()> {
    use baton_core::catalog::WriteMode;
    use baton_core::imports::Watermark;
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-fail").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.events (id bigint PRIMARY KEY, kind text);
         INSERT INTO {s}.events SELECT g, 'seen' FROM generate_series(1, 3) AS g;",
    )
    .await?;
    let baton = Baton::start(&stack, "imports-fail").await?;
    connect_postgres(&baton, &stack, "shop_pg").await?;
    baton
        .apply(catalog(vec![Table {
            write_mode: WriteMode::Append,
            ..incremental(
                import(
                    "imp.events",
                    "shop_pg",
                    &format!("SELECT id, kind FROM {schema_name}.events"),
                ),
                "id",
                None,
            )
        }]))
        .await?;
    let first = run_nightly(&baton).await?;
    assert_eq!(
        summary(&first, "imp.events").watermark,
        Some(Watermark::Integer(3))
    );

    let source = source(&stack).await?;
    source
        .batch_execute(&format!(
            "INSERT INTO {schema_name}.events VALUES (4, 'new'), (5, 'new')"
        ))
        .await?;
    // Someone retypes a column of the BigQuery table: the next load does not fit it, and
    // BigQuery refuses it whole.
    let retype = |kind: &str| {
        format!(
            "CREATE OR REPLACE TABLE `{{p}}.imp.events` AS SELECT id, {kind} AS kind \
             FROM `{{p}}.imp.events`"
        )
    };
    rows(&baton, &retype("LENGTH(kind)")).await?;
    let failed = run_nightly(&baton).await?;
    assert_eq!(failed.run.state, RunState::Failed, "{failed:#?}");
    let error = failed.jobs[0].error.clone().unwrap_or_default();
    assert!(error.starts_with("load: "), "{error}");
    assert_eq!(
        state(&baton, "imp.events").await?.watermark,
        Some(Watermark::Integer(3)),
        "the failed load did not move the watermark"
    );
    assert_eq!(
        rows(&baton, "SELECT COUNT(*) FROM imp.events").await?,
        vec![vec![json!("3")]]
    );

    // Put back, the next run loads the rows the failed load held, once.
    rows(&baton, &retype("CAST(kind AS STRING)")).await?;
    let next = run_nightly(&baton).await?;
    let s = summary(&next, "imp.events");
    assert_eq!((s.after, s.rows), (Some(Watermark::Integer(3)), 2), "{s:?}");
    assert_eq!(
        rows(
            &baton,
            "SELECT COUNT(*), COUNT(DISTINCT id) FROM imp.events"
        )
        .await?,
        vec![vec![json!("5"), json!("5")]]
    );
    Ok(())
}

/// A copy that takes a while moves its job's watch on as it goes (every second here, every
/// five minutes by default), so that the tick's sweep does not send it again while it moves;
/// once it ends nothing is watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_copy_moves_its_watch_on_while_it_works() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let schema_name = unique_project("imp-slow").replace('-', "_");
    postgres(
        &stack,
        &schema_name,
        "CREATE TABLE {s}.rows AS SELECT g AS id FROM generate_series(1, 10) AS g; \
         CREATE VIEW {s}.slow AS SELECT r.id FROM {s}.rows AS r CROSS JOIN (SELECT pg_sleep(5)) AS p;",
    )
    .await?;
    let baton = Baton::start_with(
        &stack,
        "imports-slow",
        Options::default().env("BATON_IMPORTER_REWATCH_SECONDS", "1"),
    )
    .await?;
    connect_postgres(&baton, &stack, "shop_pg").await?;
    baton
        .apply(catalog(vec![import(
            "imp.slow",
            "shop_pg",
            &format!("SELECT id FROM {schema_name}.slow"),
        )]))
        .await?;
    let run_id = start_nightly(&baton).await?;
    let table: TableId = "imp.slow".parse()?;
    // The job's watch while it runs, as often as it can be read.
    let mut watches = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let job = baton_core::ports::RunPort::job(&baton.store, &run_id, &table).await?;
        match job {
            Some(job) if job.state == JobState::Running => {
                watches.extend(job.watch_at);
            }
            Some(job) if job.state.is_terminal() => break,
            _ => {}
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the import did not end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        watches.len() >= 3,
        "the watch moved on while the copy worked: {watches:?}"
    );
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:#?}");
    assert_eq!(run.jobs[0].watch_at, None);
    Ok(())
}
