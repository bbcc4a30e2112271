//! Bad input, catalogued: catalog folders given to `baton apply`, API requests, pushes to the
//! services and ticks, each refused (or acknowledged and logged) with the clear error it
//! expects, and none changing anything in Firestore: every document of every collection,
//! runs with their jobs, is the same after the case as before.
//!
//! `BATON_BAD_INPUT_SHOW=1` prints what each case got instead of checking it.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use baton_core::state::RunState;
use baton_tests::{Baton, Stack, first_run_id};

/// What a case sends.
enum Input {
    /// A catalog folder's files (path, contents), given to `baton apply`.
    Folder(Vec<(&'static str, String)>),
    /// A request to the API as the admin: method, path and body.
    Api(&'static str, String, Option<Vec<u8>>),
    /// A push to a service's endpoint (`planner /pubsub`), signed as Pub/Sub's: the payload,
    /// raw (an envelope is made around it unless `Raw`).
    Push(&'static str, &'static str, Payload),
    /// `POST /tick?QUERY` as Cloud Scheduler.
    Tick(&'static str),
}

enum Payload {
    /// A JSON payload, enveloped and base64'd as Pub/Sub pushes it.
    Json(serde_json::Value),
    /// A whole request body, as it is.
    Raw(Vec<u8>),
}

/// What a case expects.
enum Expect {
    /// `baton apply` fails, saying this (stderr or stdout).
    Refused(&'static str),
    /// The API answers this status with an error message containing this.
    Status(u16, &'static str),
    /// The push is acknowledged (2xx, so Pub/Sub does not send it again), and the service's
    /// log says this.
    Acked(&'static str),
}

struct Case {
    name: &'static str,
    input: Input,
    expect: Expect,
}

fn case(name: &'static str, input: Input, expect: Expect) -> Case {
    Case {
        name,
        input,
        expect,
    }
}

const CONFIG: &str = "[frequencies.hourly]\nevery = \"1h\"\n";

/// A folder of `baton.toml` (hourly) and these files.
fn folder(files: &[(&'static str, &str)]) -> Input {
    let mut all = vec![("baton.toml", CONFIG.to_string())];
    all.extend(files.iter().map(|(p, c)| (*p, c.to_string())));
    Input::Folder(all)
}

fn api(method: &'static str, path: &str, body: Option<serde_json::Value>) -> Input {
    Input::Api(
        method,
        path.to_string(),
        body.map(|b| serde_json::to_vec(&b).expect("JSON")),
    )
}

fn api_raw(method: &'static str, path: &str, body: &[u8]) -> Input {
    Input::Api(method, path.to_string(), Some(body.to_vec()))
}

fn push(service: &'static str, payload: serde_json::Value) -> Input {
    Input::Push(service, "/pubsub", Payload::Json(payload))
}

fn cases(run_id: &str) -> Vec<Case> {
    use Expect::{Acked, Refused, Status};
    let big_sql = format!(
        "-- frequency: hourly\nSELECT 1 AS x\n{}",
        "-- padding, a 5 MB file\n".repeat(5 * 1024 * 1024 / 24)
    );
    let table = "-- frequency: hourly\nSELECT 1 AS x\n";
    vec![
        // ---- catalog folders ----------------------------------------------------------
        case(
            "SQL that cannot be read names its line and column",
            folder(&[("d/t.sql", "-- frequency: hourly\nSELECT (1 AS x\n")]),
            Refused("d/t.sql:2:8: this `(` is never closed"),
        ),
        case(
            "a cycle names its path",
            folder(&[
                ("d/a.sql", "SELECT x FROM d.b"),
                ("d/b.sql", "SELECT x FROM d.a"),
            ]),
            Refused("d/a.sql: dependency cycle: d.a → d.b → d.a"),
        ),
        case(
            "a 5 MB SQL file",
            folder(&[("d/big.sql", &big_sql)]),
            Refused("d/big.sql: the SQL has 5242907 bytes; a table's SQL may have at most 524288 (512.0 KiB)"),
        ),
        case(
            "an unknown header key",
            folder(&[("d/t.sql", "-- frequnecy: hourly\nSELECT 1 AS x")]),
            Refused("d/t.sql:1: unknown setting `frequnecy` (known: name, dataset,"),
        ),
        case(
            "a frequency no one defined",
            folder(&[("d/t.sql", "-- frequency: weekly\nSELECT 1 AS x")]),
            Refused("d/t.sql: frequency `weekly` is not defined"),
        ),
        case(
            "a file name that is no table name",
            folder(&[("d/t$1.sql", table)]),
            Refused("d/t$1.sql: table name `t$1` may only contain letters, digits, underscores and dashes"),
        ),
        case(
            "a dataset folder that is no dataset name",
            folder(&[("bad..dataset/t.sql", table)]),
            Refused("bad..dataset/t.sql: dataset name `bad..dataset` may only contain letters, digits and underscores"),
        ),
        case(
            "two files of one table",
            folder(&[
                ("d/t.sql", table),
                ("d/u.sql", "-- name: t\n-- frequency: hourly\nSELECT 2 AS x"),
            ]),
            Refused("d/u.sql: table d.t is also defined by d/t.sql"),
        ),
        case(
            "a baton.toml that is not TOML",
            Input::Folder(vec![("baton.toml", "[frequencies.hourly\n".into())]),
            Refused("baton.toml: TOML parse error at line 1, column 20"),
        ),
        case(
            "a frequency of no period",
            Input::Folder(vec![(
                "baton.toml",
                "[frequencies.hourly]\nevery = \"0s\"\n".into(),
            )]),
            Refused("frequency `hourly`: the period must be at least 60 seconds, not 0"),
        ),
        case(
            "a cron of six fields",
            Input::Folder(vec![(
                "baton.toml",
                "[frequencies.odd]\ncron = \"0 0 6 * * *\"\n".into(),
            )]),
            Refused("frequency `odd`: cron `0 0 6 * * *`: Invalid pattern: Pattern must have 5 fields"),
        ),
        case(
            "a time zone that does not exist",
            Input::Folder(vec![(
                "baton.toml",
                "[frequencies.odd]\ncron = \"0 6 * * *\"\ntime_zone = \"Mars/Olympus\"\n".into(),
            )]),
            Refused("`Mars/Olympus` is not a time zone (write an IANA name such as Europe/Paris)"),
        ),
        case(
            "a write mode that does not exist",
            folder(&[("d/t.sql", "-- frequency: hourly\n-- write: upsert\nSELECT 1 AS x")]),
            Refused("d/t.sql:2: write mode `upsert` is not one of truncate, append, merge, insert_unique, overwrite_partitions"),
        ),
        case(
            "a load table with an unknown key",
            folder(&[("d/l.load.toml", "formt = \"csv\"\n")]),
            Refused("unknown field `formt`, expected one of `name`"),
        ),
        case(
            "a load table with a frequency",
            folder(&[("d/l.load.toml", "frequency = \"hourly\"\n")]),
            Refused("d/l.load.toml: a load table has no `frequency`: it is loaded as its files land"),
        ),
        case(
            "a load table with a type BigQuery does not declare",
            folder(&[("d/l.load.toml", "columns = [\"id INTEGR\"]\n")]),
            Refused("d/l.load.toml: columns: `INTEGR` of column `id` is not a type a load declares"),
        ),
        case(
            "two load tables whose prefixes overlap",
            folder(&[
                ("d/a.load.toml", "prefix = \"in/\"\n"),
                ("d/b.load.toml", "prefix = \"in/b/\"\n"),
            ]),
            Refused("d/a.load.toml: prefix `in/` overlaps d/b.load.toml's `in/b/`"),
        ),
        case(
            "a detected CSV load table without its header",
            folder(&[("d/l.load.toml", "format = \"csv\"\n")]),
            Refused("d/l.load.toml: without `columns`, a CSV file's header line names its columns: set `skip_leading_rows = 1`"),
        ),
        // ---- API bodies and paths -----------------------------------------------------
        case(
            "an apply body that is not JSON",
            api_raw("POST", "/v1/catalog/apply", b"{\"catalog\": "),
            Status(400, "the body does not fit at `catalog`: EOF while parsing a value at line 1 column 12"),
        ),
        case(
            "an apply body with a misspelt field",
            api("POST", "/v1/catalog/apply", Some(json!({"catalog": {}, "prnue": true}))),
            Status(400, "the body has 1 unknown field: `prnue`"),
        ),
        case(
            "an apply of a table of an unknown frequency",
            api(
                "POST",
                "/v1/catalog/apply",
                Some(json!({"catalog": {"tables": [{"dataset": "d", "name": "t",
                    "kind": "query", "sql": "SELECT 1 AS x", "frequency": "nope"}]}})),
            ),
            Status(400, "d.t: frequency `nope` is not defined"),
        ),
        case(
            "a run id with ..",
            api("GET", "/v1/runs/..", None),
            Status(400, "`..` is not a run id"),
        ),
        case(
            "a run id with an encoded /",
            api("GET", "/v1/runs/a%2Fb", None),
            Status(400, "a run id has only letters, digits and `-_.:@+`; `a/b` has '/'"),
        ),
        case(
            "a run that does not exist",
            api("GET", "/v1/runs/no-such-run", None),
            Status(404, "no run no-such-run"),
        ),
        case(
            "resuming a run that succeeded",
            api("POST", &format!("/v1/runs/{run_id}/resume"), Some(json!({}))),
            Status(409, "is succeeded: only a failed run can be resumed"),
        ),
        case(
            "cancelling a run that succeeded",
            api("POST", &format!("/v1/runs/{run_id}/cancel"), Some(json!({}))),
            Status(409, "is succeeded: only a run that has not ended can be cancelled"),
        ),
        case(
            "a run of a frequency that does not exist",
            api("POST", "/v1/runs", Some(json!({"frequency": "nope"}))),
            Status(404, "no frequency nope"),
        ),
        case(
            "a run of a table that does not exist",
            api("POST", "/v1/runs", Some(json!({"tables": ["d.nope"]}))),
            Status(404, "no table d.nope"),
        ),
        case(
            "a run of both a frequency and tables",
            api(
                "POST",
                "/v1/runs",
                Some(json!({"frequency": "hourly", "tables": ["d.t"]})),
            ),
            Status(400, "give either `frequency` or `tables`, not both and not neither"),
        ),
        case(
            "a backfill into the future",
            api(
                "POST",
                "/v1/backfills",
                Some(json!({"frequency": "hourly", "from": "2026-01-01T00:00:00Z",
                    "to": "2999-01-01T00:00:00Z"})),
            ),
            Status(400, "a backfill covers past instants: `to` is in the future"),
        ),
        case(
            "a backfill of more than 10,000 instants",
            api(
                "POST",
                "/v1/backfills",
                Some(json!({"frequency": "hourly", "from": "2000-01-01T00:00:00Z",
                    "to": "2026-01-01T00:00:00Z"})),
            ),
            Status(400, "that is more than 10000 instants of hourly: split the backfill"),
        ),
        case(
            "a backfill whose range is upside down",
            api(
                "POST",
                "/v1/backfills",
                Some(json!({"frequency": "hourly", "from": "2026-01-02T00:00:00Z",
                    "to": "2026-01-01T00:00:00Z"})),
            ),
            Status(400, "hourly has no instant between 2026-01-02T00:00:00Z and 2026-01-01T00:00:00Z"),
        ),
        case(
            "a backfill of eleven runs at once",
            api(
                "POST",
                "/v1/backfills",
                Some(json!({"frequency": "hourly", "from": "2026-01-01T00:00:00Z",
                    "to": "2026-01-01T05:00:00Z", "parallel": 11})),
            ),
            Status(400, "`parallel` is 11: a backfill runs 1 to 10 of its runs at once"),
        ),
        case(
            "a backfill time that is no time",
            api(
                "POST",
                "/v1/backfills",
                Some(json!({"frequency": "hourly", "from": "yesterday",
                    "to": "2026-01-01T00:00:00Z"})),
            ),
            Status(400, "the body does not fit at `from`: failed to parse four digit integer as year"),
        ),
        case(
            "cancelling a backfill that does not exist",
            api("POST", "/v1/backfills/nope/cancel", Some(json!({}))),
            Status(404, "no backfill nope"),
        ),
        case(
            "costs by a dimension that does not exist",
            api("GET", "/v1/costs?by=colour", None),
            Status(400, "`by` is one of table, user, group, frequency, not `colour`"),
        ),
        case(
            "costs over more than a year",
            api("GET", "/v1/costs?from=2020-01-01&to=2026-01-01", None),
            Status(400, "2193 days asked; at most 366 at once"),
        ),
        case(
            "a dry run of no SQL",
            api("POST", "/v1/dry-run", Some(json!({"sql": ""}))),
            Status(400, "the SQL cannot be read: line 1, column 1: there is no SQL statement here"),
        ),
        case(
            "a connection of a kind that does not exist",
            api(
                "PUT",
                "/v1/connections/c1",
                Some(json!({"kind": "oracle", "secret": "x"})),
            ),
            Status(400, "unknown variant `oracle`, expected one of `slack`, `postgres`, `mysql`"),
        ),
        case(
            "a connection name with ..",
            api(
                "PUT",
                "/v1/connections/..",
                Some(json!({"kind": "slack", "secret": "https://hooks.slack.com/x"})),
            ),
            Status(400, "connection name `..` must start with a lowercase letter"),
        ),
        case(
            "a role that does not exist",
            api(
                "PATCH",
                "/v1/users/admin@example.com",
                Some(json!({"role": "owner"})),
            ),
            Status(400, "unknown variant `owner`, expected one of `admin`, `member`, `reader`"),
        ),
        case(
            "a token of no name",
            api("POST", "/v1/tokens", Some(json!({"name": ""}))),
            Status(400, "a token's name has 1 to 100 bytes"),
        ),
        case(
            "an upload URL for a table that is no load table",
            api(
                "POST",
                "/v1/loads/d.t/upload-url",
                Some(json!({"file_name": "a.csv"})),
            ),
            Status(400, "d.t is a query table, not a load table"),
        ),
        case(
            "replaying a dead letter that does not exist",
            api("POST", "/v1/dead-letters/nope/replay", Some(json!({}))),
            Status(404, "no dead letter nope"),
        ),
        case(
            "a route that does not exist",
            api("GET", "/v1/nothing-here", None),
            Status(404, "no route /v1/nothing-here"),
        ),
        case(
            "a method a route does not take",
            api("DELETE", "/v1/catalog", None),
            Status(405, "/v1/catalog does not take DELETE"),
        ),
        // ---- pushes ---------------------------------------------------------------------
        case(
            "a push that is not an envelope",
            Input::Push("planner", "/pubsub", Payload::Raw(b"hello".to_vec())),
            Acked("not a Pub/Sub push envelope: expected value at line 1 column 1"),
        ),
        case(
            "a push whose data is not base64",
            Input::Push(
                "executor",
                "/pubsub",
                Payload::Raw(
                    serde_json::to_vec(&json!({"message": {"data": "!!", "messageId": "1"}}))
                        .expect("JSON"),
                ),
            ),
            Acked("message 1: data is not base64: Invalid symbol 33"),
        ),
        case(
            "a push of an event a service does not take",
            push("planner", json!({"event": "run_exploded", "run_id": run_id})),
            Acked("payload is not what this service takes: unknown variant `run_exploded`, expected one of `run_created`, `job_finished`, `run_resumed`, `run_cancelled`"),
        ),
        case(
            "a run's creation for a run that does not exist",
            push("planner", json!({"event": "run_created", "run_id": "no-such-run"})),
            Acked("stale: no run no-such-run"),
        ),
        case(
            "a run_resumed for a run that succeeded",
            push(
                "planner",
                json!({"event": "run_resumed", "run_id": run_id, "resume": 1}),
            ),
            Acked("is succeeded and was resumed 0 time(s): resume 1 cannot apply"),
        ),
        case(
            "a job's end for a table not in the run",
            push(
                "planner",
                json!({"event": "job_finished", "run_id": run_id, "table": "d.nope", "attempt": 1}),
            ),
            Acked("stale: run hourly-20261122T100000Z has no job d.nope"),
        ),
        case(
            "a run_query for a job that does not exist",
            push(
                "executor",
                json!({"event": "run_query", "run_id": run_id, "table": "d.nope", "attempt": 1}),
            ),
            Acked("stale: run hourly-20261122T100000Z has no job d.nope"),
        ),
        case(
            "a run_query for an attempt that ended",
            push(
                "executor",
                json!({"event": "run_query", "run_id": run_id, "table": "d.t", "attempt": 1}),
            ),
            Acked(""),
        ),
        case(
            "a cancel for a job that is not running",
            push(
                "executor",
                json!({"event": "cancel", "run_id": run_id, "table": "d.t", "attempt": 1}),
            ),
            Acked("stale: d.t attempt 1 is not running"),
        ),
        case(
            "an import for a run that does not exist",
            push(
                "importer",
                json!({"event": "import", "run_id": "no-such-run", "table": "d.t", "attempt": 1}),
            ),
            Acked("no-such-run"),
        ),
        case(
            "a load of a batch that does not exist",
            push(
                "importer",
                json!({"event": "load", "table": "d.t", "batch": "nope"}),
            ),
            Acked("stale: d.t has no batch nope"),
        ),
        case(
            "a storage event that is not a finalize",
            Input::Push(
                "importer",
                "/storage",
                Payload::Raw(
                    serde_json::to_vec(&json!({"message": {
                        "data": base64::engine::general_purpose::STANDARD
                            .encode(br#"{"bucket": "b", "name": "x.csv", "generation": "1", "size": "1"}"#),
                        "attributes": {"eventType": "OBJECT_DELETE"},
                        "messageId": "2"}}))
                    .expect("JSON"),
                ),
            ),
            Acked("not a finalize: Some(\\\"OBJECT_DELETE\\\")"),
        ),
        case(
            "a dead letter that is no dead letter",
            Input::Push("planner", "/dead-letters", Payload::Json(json!({"event": "x"}))),
            Acked("is not a dead letter (no CloudPubSubDeadLetterSourceSubscription)"),
        ),
        // ---- ticks ------------------------------------------------------------------------
        case(
            "a tick far in the past",
            Input::Tick("at=1970-01-02T00:00:00Z"),
            Status(200, "is older than the latest instant handled, 2026-11-22T10:00:00Z: a run of that instant was recorded missed or ran already"),
        ),
        case(
            "a tick at no time",
            Input::Tick("at=soon"),
            Status(400, "`at` is not a time: Failed to deserialize query string"),
        ),
    ]
}

/// Every document of every collection, runs with their jobs, as JSON.
async fn snapshot(baton: &Baton) -> anyhow::Result<BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for collection in [
        "frequencies",
        "tables",
        "schedules",
        "runs",
        "backfills",
        "connections",
        "users",
        "groups",
        "api_tokens",
        "audit",
        "access",
        "dead_letters",
        "load_files",
        "cost_rollups",
    ] {
        let docs: Vec<serde_json::Value> = baton.store.list(None, collection).await?;
        for doc in docs {
            let id = doc["id"]
                .as_str()
                .or(doc["name"].as_str())
                .unwrap_or_default()
                .to_string();
            if collection == "runs" {
                let jobs = baton_core::ports::RunPort::jobs(&baton.store, &id).await?;
                all.insert(format!("runs/{id}/jobs"), serde_json::to_string(&jobs)?);
            }
            all.insert(format!("{collection}/{id}/{}", all.len()), doc.to_string());
        }
    }
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_clear_error_and_changes_nothing() -> anyhow::Result<()> {
    let show = std::env::var_os("BATON_BAD_INPUT_SHOW").is_some();
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "bad-input").await?;
    // A catalog of one table, and a run of it that succeeded.
    let good = baton.log_dir.join("good");
    std::fs::create_dir_all(good.join("d"))?;
    std::fs::write(good.join("baton.toml"), CONFIG)?;
    std::fs::write(
        good.join("d/t.sql"),
        "-- frequency: hourly\nSELECT 1 AS x\n",
    )?;
    baton
        .run_cli(&["apply", "--yes", good.to_str().expect("UTF-8")])
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    let run = baton
        .wait_for_run(&run_id, Duration::from_secs(120))
        .await?;
    assert_eq!(run.run.state, RunState::Succeeded);

    let http = reqwest::Client::new();
    let cases = cases(&run_id);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (n, case) in cases.into_iter().enumerate() {
        let before = snapshot(&baton).await?;
        let log_mark = service_logs(&baton);
        let got = match case.input {
            Input::Folder(files) => {
                let dir = baton.log_dir.join(format!("bad-{n}"));
                for (path, contents) in &files {
                    let path = dir.join(path);
                    std::fs::create_dir_all(path.parent().expect("a folder"))?;
                    std::fs::write(path, contents)?;
                }
                let mut command = baton.cli();
                command.args(["apply", "--yes"]).arg(&dir);
                let output = tokio::task::spawn_blocking(move || command.output()).await??;
                let said = format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                Got::Cli(output.status.success(), said)
            }
            // As it is: an HTTP client would resolve the `..` before sending it.
            Input::Api(method, path, body) if path.contains("..") => {
                let (status, text) =
                    raw_request(&baton.urls.api, method, &path, &admin_token(&baton), body).await?;
                Got::Http(status, text)
            }
            Input::Api(method, path, body) => {
                let mut request = http
                    .request(method.parse()?, format!("{}{path}", baton.urls.api))
                    .header("authorization", format!("Bearer {}", admin_token(&baton)));
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body);
                }
                let response = request.send().await?;
                Got::Http(response.status().as_u16(), response.text().await?)
            }
            Input::Push(service, path, payload) => {
                let body = match payload {
                    Payload::Raw(bytes) => bytes,
                    Payload::Json(value) => serde_json::to_vec(&serde_json::json!({
                        "message": {
                            "data": base64::engine::general_purpose::STANDARD
                                .encode(serde_json::to_vec(&value)?),
                            "messageId": format!("bad-{n}"),
                        },
                        "subscription": format!("projects/{}/subscriptions/bad", baton.project),
                    }))?,
                };
                let url = match service {
                    "planner" => &baton.urls.planner,
                    "executor" => &baton.urls.executor,
                    _ => &baton.urls.importer,
                };
                let response = http
                    .post(format!("{url}{path}"))
                    .header("authorization", baton.bearer(service))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = response.status().as_u16();
                // The service's log reaches its file a moment after the answer.
                let says = match case.expect {
                    Expect::Acked(says) => says,
                    _ => "",
                };
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                let mut logged = new_log_lines(&baton, &log_mark, service);
                while !logged.contains(says) && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    logged = new_log_lines(&baton, &log_mark, service);
                }
                Got::Push(status, logged)
            }
            Input::Tick(query) => {
                let response = http
                    .post(format!("{}/tick?{query}", baton.urls.tick))
                    .header("authorization", baton.bearer("tick"))
                    .send()
                    .await?;
                Got::Http(response.status().as_u16(), response.text().await?)
            }
        };
        let after = snapshot(&baton).await?;
        let changed: Vec<&String> = after
            .keys()
            .chain(before.keys())
            .filter(|k| after.get(*k) != before.get(*k))
            .collect();
        if show {
            println!("{}: {got:?}; changed {changed:?}", case.name);
            continue;
        }
        let ok = match (&case.expect, &got) {
            (Expect::Refused(says), Got::Cli(false, said)) => said.contains(says),
            (Expect::Status(status, says), Got::Http(got, text)) => {
                got == status && text.contains(says)
            }
            (Expect::Acked(says), Got::Push(status, logged)) => {
                (200..300).contains(status) && logged.contains(says)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {got:?}", case.name));
        }
        if !changed.is_empty() {
            failures.push(format!("{}: changed {changed:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[derive(Debug)]
enum Got {
    Cli(bool, String),
    Http(u16, String),
    Push(u16, String),
}

fn admin_token(baton: &Baton) -> String {
    baton.issuer.id_token(&baton.admin)
}

/// How long each service's log is now.
fn service_logs(baton: &Baton) -> BTreeMap<&'static str, usize> {
    ["planner", "executor", "importer"]
        .into_iter()
        .map(|s| {
            let len = std::fs::read_to_string(baton.log_dir.join(format!("{s}.log")))
                .map(|l| l.len())
                .unwrap_or(0);
            (s, len)
        })
        .collect()
}

/// What `service` logged since `mark`.
fn new_log_lines(baton: &Baton, mark: &BTreeMap<&'static str, usize>, service: &str) -> String {
    let log =
        std::fs::read_to_string(baton.log_dir.join(format!("{service}.log"))).unwrap_or_default();
    log.get(mark[service]..).unwrap_or_default().to_string()
}

/// An HTTP/1.1 request sent as written, its path not normalized; the status and the body.
async fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let text = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, text))
}
