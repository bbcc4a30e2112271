//! People and permissions on the stack: every route of the API (from the router's own list)
//! called as every kind of caller, the expected status, and nothing changed in Firestore by a
//! refused call; members refused other groups' tables by name; the first sign-ins racing make
//! one admin; tokens shown once, stored hashed, revoked; the audit trail; the API's error
//! shape for bodies, ids and sizes; and no token, secret or key in any answer or log line.

use std::collections::BTreeMap;

use baton_core::access::{ApiToken, Role};
use baton_core::catalog::{CatalogSpec, Frequency, Table, TableId};
use baton_google::store::Store;
use baton_service::api::{CreateTokenRequest, PutGroupRequest, RouteInfo, UpdateUserRequest};
use baton_tests::oidc::{self, Issuer};
use baton_tests::{Baton, Options, Stack};
use reqwest::StatusCode;

fn id(name: &str) -> TableId {
    name.parse().expect("a table id")
}

fn table(name: &str, group: &str, frequency: &str) -> Table {
    Table {
        group: Some(group.to_string()),
        frequency: Some(frequency.to_string()),
        ..Table::query(&id(name), "SELECT 1 AS one")
    }
}

/// Every collection a refused call could change, as JSON by document id; runs and backfills
/// by id only, since the services move those on by themselves.
async fn snapshot(store: &Store) -> anyhow::Result<BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for collection in [
        "frequencies",
        "tables",
        "connections",
        "users",
        "groups",
        "api_tokens",
        "audit",
        "access",
    ] {
        let docs: Vec<serde_json::Value> = store.list(None, collection).await?;
        let mut docs: Vec<String> = docs.iter().map(ToString::to_string).collect();
        docs.sort();
        all.insert(collection.to_string(), docs.join("\n"));
    }
    for collection in ["runs", "backfills"] {
        let docs: Vec<serde_json::Value> = store.list(None, collection).await?;
        // A backfill's later runs are made by the planner as its earlier ones end.
        let mut ids: Vec<String> = docs
            .iter()
            .map(|d| d["id"].as_str().unwrap_or_default().to_string())
            .filter(|id| collection == "backfills" || !id.contains("-backfill-"))
            .collect();
        ids.sort();
        all.insert(collection.to_string(), ids.join("\n"));
    }
    Ok(all)
}

/// How the matrix calls a route: the path with its parameters filled, and a body.
fn call_of(
    route: &RouteInfo,
    run_id: &str,
    backfill_id: &str,
) -> Option<(String, Option<serde_json::Value>)> {
    let now = jiff::Timestamp::now();
    let day_ago = now - jiff::SignedDuration::from_hours(30);
    let apply = serde_json::json!({
        "catalog": {"tables": [{
            "dataset": "fin", "name": "a", "kind": "query", "sql": "SELECT 2 AS two",
            "frequency": "fin_daily", "group": "finance"
        }]},
        "dry_run": true
    });
    let call = |path: &str, body: Option<serde_json::Value>| Some((path.to_string(), body));
    match (route.method.as_str(), route.path.as_str()) {
        ("GET", "/healthz") => call("/healthz", None),
        ("GET", "/v1/routes") => call("/v1/routes", None),
        ("GET", "/v1/openapi.json") => call("/v1/openapi.json", None),
        ("GET", "/v1/me") => call("/v1/me", None),
        ("GET", "/v1/catalog") => call("/v1/catalog", None),
        ("POST", "/v1/catalog/apply") => call("/v1/catalog/apply", Some(apply)),
        ("GET", "/v1/runs") => call("/v1/runs", None),
        ("POST", "/v1/runs") => call(
            "/v1/runs",
            Some(serde_json::json!({"tables": ["fin.a"], "idempotency_key": "matrix"})),
        ),
        ("GET", "/v1/runs/{run_id}") => call(&format!("/v1/runs/{run_id}"), None),
        ("POST", "/v1/runs/{run_id}/resume") => call(
            &format!("/v1/runs/{run_id}/resume"),
            Some(serde_json::json!({})),
        ),
        ("POST", "/v1/runs/{run_id}/cancel") => call(
            &format!("/v1/runs/{run_id}/cancel"),
            Some(serde_json::json!({})),
        ),
        ("POST", "/v1/backfills") => call(
            "/v1/backfills",
            Some(serde_json::json!({"frequency": "fin_daily", "from": day_ago, "to": now})),
        ),
        ("GET", "/v1/backfills/{backfill_id}") => call("/v1/backfills/no-such-backfill", None),
        ("POST", "/v1/backfills/{backfill_id}/cancel") => call(
            &format!("/v1/backfills/{backfill_id}/cancel"),
            Some(serde_json::json!({})),
        ),
        ("GET", "/v1/costs") => call("/v1/costs", None),
        ("POST", "/v1/dry-run") => call(
            "/v1/dry-run",
            Some(serde_json::json!({"sql": "SELECT 1 AS one", "dataset": "fin"})),
        ),
        ("GET", "/v1/connections") => call("/v1/connections", None),
        ("PUT", "/v1/connections/{name}") => call(
            "/v1/connections/matrix",
            Some(serde_json::json!({
                "kind": "slack",
                "secret": "https://hooks.slack.com/services/T0/B0/matrix-secret-xyzzy"
            })),
        ),
        ("DELETE", "/v1/connections/{name}") => call("/v1/connections/no-such-connection", None),
        ("GET", "/v1/users") => call("/v1/users", None),
        ("PATCH", "/v1/users/{email}") => call(
            "/v1/users/reader@example.com",
            Some(serde_json::json!({"role": "reader"})),
        ),
        ("GET", "/v1/groups") => call("/v1/groups", None),
        ("PUT", "/v1/groups/{name}") => call(
            "/v1/groups/finance",
            Some(serde_json::json!({"description": "the finance team"})),
        ),
        ("DELETE", "/v1/groups/{name}") => call("/v1/groups/nobody", None),
        ("GET", "/v1/tokens") => call("/v1/tokens", None),
        ("POST", "/v1/tokens") => call(
            "/v1/tokens",
            Some(serde_json::json!({"name": "matrix", "expires_in_days": 1})),
        ),
        ("DELETE", "/v1/tokens/{token_id}") => call("/v1/tokens/0000000000000000", None),
        ("GET", "/v1/audit") => call("/v1/audit", None),
        ("GET", "/v1/dead-letters") => call("/v1/dead-letters", None),
        ("POST", "/v1/dead-letters/{id}/replay") => call(
            "/v1/dead-letters/no-such-letter/replay",
            Some(serde_json::json!({})),
        ),
        ("DELETE", "/v1/dead-letters/{id}") => call("/v1/dead-letters/no-such-letter", None),
        ("POST", "/v1/loads/{table}/upload-url") => call(
            "/v1/loads/fin.landed/upload-url",
            Some(serde_json::json!({"file_name": "a.csv"})),
        ),
        ("POST", "/v1/loads/{table}/force") => {
            call("/v1/loads/fin.landed/force", Some(serde_json::json!({})))
        }
        ("GET", "/v1/loads/{table}") => call("/v1/loads/fin.landed", None),
        ("POST", "/v1/page-links") => call(
            "/v1/page-links",
            Some(serde_json::json!({"to": format!("/ui/runs/{run_id}")})),
        ),
        // No code opens anything but a link's own (tests/e2e/page.rs opens real ones).
        ("GET", "/ui/enter") => call("/ui/enter?code=no-such-code", None),
        ("GET", "/ui") => call("/ui", None),
        ("GET", "/ui/runs/{run_id}") => call(&format!("/ui/runs/{run_id}"), None),
        ("GET", "/ui/tables/{table}") => call("/ui/tables/fin.a", None),
        ("GET", "/ui/costs") => call("/ui/costs?by=group", None),
        _ => None,
    }
}

/// Whether `caller` may use `route` as the matrix calls it; refused ones answer `status`.
fn expected(caller: &str, route: &RouteInfo) -> Option<StatusCode> {
    use baton_core::access::Access;
    let access = route.access;
    if access == Access::Open {
        return None;
    }
    match caller {
        "anonymous" | "expired" | "wrong audience" | "forged signature" | "revoked token"
        | "unknown token" => Some(StatusCode::UNAUTHORIZED),
        "wrong domain" => Some(StatusCode::FORBIDDEN),
        "disabled user" => (access != Access::SignedIn).then_some(StatusCode::FORBIDDEN),
        "reader" => {
            matches!(access, Access::Change | Access::Admin).then_some(StatusCode::FORBIDDEN)
        }
        // The matrix's changes are all of the finance group's tables.
        "member of another group" | "member" => {
            let refused = access == Access::Admin
                || (access == Access::Change && caller == "member of another group");
            refused.then_some(StatusCode::FORBIDDEN)
        }
        "admin" | "valid token" => None,
        other => panic!("no expectation for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_their_role_says() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "people").await?;
    let admin = &baton.client;

    // Two groups' tables on two frequencies; the people of the matrix.
    let catalog = CatalogSpec {
        frequencies: vec![
            Frequency::every("fin_daily", 86_400),
            Frequency::every("growth_daily", 86_400),
        ],
        tables: vec![
            table("fin.a", "finance", "fin_daily"),
            table("growth.b", "growth", "growth_daily"),
            // A load table of finance's, for the load routes.
            Table {
                kind: baton_core::catalog::TableKind::Load,
                load: Some(Box::new(baton_core::loads::LoadSpec {
                    prefix: "fin/landed/".into(),
                    format: baton_core::loads::FileFormat::Ndjson,
                    csv: None,
                    columns: Vec::new(),
                    max_bad_records: 0,
                    new_columns: baton_core::loads::NewColumns::Refuse,
                    batch: baton_core::loads::BatchPolicy::default(),
                })),
                write_mode: baton_core::catalog::WriteMode::Append,
                group: Some("finance".into()),
                ..Table::query(&id("fin.landed"), "")
            },
        ],
    };
    baton.apply(catalog).await?;
    for group in ["finance", "growth"] {
        admin.put_group(group, &PutGroupRequest::default()).await?;
    }
    let people = [
        ("member@example.com", Some(Role::Member), Some("finance")),
        ("other@example.com", Some(Role::Member), Some("growth")),
        ("reader@example.com", Some(Role::Reader), None),
        ("disabled@example.com", None, None),
    ];
    for (email, role, group) in people {
        let me = baton.client_as(email).me().await?;
        assert!(!me.enabled, "{email} starts disabled");
        assert_eq!(me.role, Role::Reader);
        if let Some(role) = role {
            admin
                .update_user(
                    email,
                    &UpdateUserRequest {
                        enabled: Some(true),
                        role: Some(role),
                        add_groups: group.map(str::to_string).into_iter().collect(),
                        ..Default::default()
                    },
                )
                .await?;
        }
    }
    let valid = admin
        .create_token(&CreateTokenRequest {
            name: "valid".into(),
            expires_in_days: Some(1),
        })
        .await?;
    let revoked = admin
        .create_token(&CreateTokenRequest {
            name: "revoked".into(),
            expires_in_days: None,
        })
        .await?;
    admin.revoke_token(&revoked.info.id).await?;
    // A run of the finance table, started by the admin.
    let run = admin
        .start_run(&baton_service::api::StartRunRequest {
            tables: vec![id("fin.a")],
            ..Default::default()
        })
        .await?
        .run;
    // A backfill of the finance frequency, started by the admin, for the cancel route.
    let now = jiff::Timestamp::now();
    let backfill = admin
        .start_backfill(&baton_service::api::BackfillRequest {
            frequency: "fin_daily".into(),
            from: now - jiff::SignedDuration::from_hours(30),
            to: now,
            parallel: None,
        })
        .await?;

    let issuer = &baton.issuer;
    let person = |email: &str| Some(issuer.person(email));
    let signed =
        |claims: serde_json::Value| Some(format!("Bearer {}", issuer.sign("a", &claims).unwrap()));
    let now = jiff::Timestamp::now().as_second();
    let mut expired = Issuer::person_claims("admin@example.com", Some(oidc::DOMAIN));
    expired["iat"] = (now - 7200).into();
    expired["exp"] = (now - 3600).into();
    let mut other_audience = Issuer::person_claims("admin@example.com", Some(oidc::DOMAIN));
    other_audience["aud"] = "someone-else.apps.googleusercontent.com".into();
    // The admin's claims under a signature made for a reader's.
    let forged = {
        let reader = issuer.id_token("reader@example.com");
        let admin_token = issuer.id_token("admin@example.com");
        let parts: Vec<&str> = reader.split('.').collect();
        let admin_parts: Vec<&str> = admin_token.split('.').collect();
        Some(format!(
            "Bearer {}.{}.{}",
            parts[0], admin_parts[1], parts[2]
        ))
    };
    // What each of the matrix's callers sends as `Authorization`.
    let callers: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("expired", signed(expired)),
        ("wrong audience", signed(other_audience)),
        (
            "wrong domain",
            signed(Issuer::person_claims(
                "eve@evil.example",
                Some("evil.example"),
            )),
        ),
        ("forged signature", forged),
        ("disabled user", person("disabled@example.com")),
        ("reader", person("reader@example.com")),
        ("member of another group", person("other@example.com")),
        ("member", person("member@example.com")),
        ("admin", person("admin@example.com")),
        ("revoked token", Some(format!("Bearer {}", revoked.token))),
        (
            "unknown token",
            Some(format!("Bearer baton-token_{}", "A".repeat(43))),
        ),
        ("valid token", Some(format!("Bearer {}", valid.token))),
    ];

    // The routes, as the router lists them; each must have a way to be called here.
    let http = reqwest::Client::new();
    let routes: Vec<RouteInfo> = http
        .get(format!("{}/v1/routes", baton.urls.api))
        .send()
        .await?
        .json()
        .await?;
    assert!(routes.len() >= 25, "{routes:?}");
    // The OpenAPI document served is the one generated from the route table, and every answer
    // below fits the schema it documents for the route and status.
    let document: serde_json::Value = http
        .get(format!("{}/v1/openapi.json", baton.urls.api))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        document == baton_api::openapi(),
        "the document served is not the one the route table makes"
    );
    let mut checked = 0;
    let mut bodies = Vec::new();
    for route in &routes {
        let (path, body) = call_of(route, &run.id, &backfill.id).unwrap_or_else(|| {
            panic!(
                "{} {} has no entry in this matrix: add one, with what each caller may do",
                route.method, route.path
            )
        });
        for (caller, authorization) in &callers {
            let before = snapshot(&baton.store).await?;
            let method: reqwest::Method = route.method.parse()?;
            let mut request = http.request(method, format!("{}{path}", baton.urls.api));
            if let Some(a) = authorization {
                request = request.header("authorization", a);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await?;
            let status = response.status();
            let text = response.text().await?;
            let case = format!("{} {} as {caller}", route.method, route.path);
            match expected(caller, route) {
                Some(refused) => {
                    assert_eq!(status, refused, "{case}: {text}");
                    if route.path.starts_with("/ui") {
                        // The page's refusals are pages, for the person looking.
                        assert!(
                            text.starts_with("<!DOCTYPE html>")
                                && text.contains(&format!("<h1>{}", status.as_u16())),
                            "{case}: {text}"
                        );
                    } else {
                        let error: serde_json::Value = serde_json::from_str(&text)?;
                        assert!(error["error"]["message"].is_string(), "{case}: {text}");
                    }
                    let after = snapshot(&baton.store).await?;
                    let changed: Vec<&String> = after
                        .keys()
                        .filter(|k| after.get(*k) != before.get(*k))
                        .collect();
                    assert!(changed.is_empty(), "{case} changed Firestore: {changed:?}");
                }
                None => {
                    assert!(
                        !matches!(status.as_u16(), 401 | 403) && !status.is_server_error(),
                        "{case}: {status} {text}"
                    );
                }
            }
            checked += fits_the_document(&document, route, status, &text, &case);
            // A created token's answer is the one place a token may appear.
            if route.path != "/v1/tokens" || route.method != "POST" {
                bodies.push(text);
            }
        }
    }

    assert!(
        checked > 200,
        "only {checked} answers checked against the document"
    );

    // No token, secret or key in any answer or log line.
    let mut secrets: Vec<(String, String)> = vec![
        ("the valid API token".into(), valid.token.clone()),
        ("the revoked API token".into(), revoked.token.clone()),
        ("the slack secret".into(), "matrix-secret-xyzzy".into()),
        (
            "the admin's ID token".into(),
            issuer.id_token("admin@example.com"),
        ),
    ];
    secrets.push(("the encryption key".into(), baton.encryption_key.clone()));
    // The issuer's signing key, by the lines of its PEM.
    let pem = std::fs::read_to_string(
        std::path::Path::new(stack.var("BATON_TEST_OIDC_KEYS")?).join("a.pem"),
    )?;
    for line in pem.lines().filter(|l| !l.starts_with("-----")).take(5) {
        secrets.push(("the OIDC signing key".into(), line.to_string()));
    }
    for (caller, authorization) in &callers {
        if let Some(a) = authorization {
            // A JWT's signature is its secret part; an API token is secret whole.
            let token = &a["Bearer ".len()..];
            let secret = token.rsplit('.').next().unwrap_or(token);
            if secret.len() > 20 {
                secrets.push((format!("the {caller} credential"), secret.to_string()));
            }
        }
    }
    let logs = read_logs(&baton)?;
    for (what, secret) in &secrets {
        for body in &bodies {
            assert!(
                !body.contains(secret.as_str()),
                "{what} in an answer: {body}"
            );
        }
        for line in &logs {
            assert!(
                !line.contains(secret.as_str()),
                "{what} in a log line: {line}"
            );
        }
    }
    Ok(())
}

/// Checks an answer against what the OpenAPI document says `route` answers with `status`
/// (its success schema, or the error shape); 1 when it was checked.
fn fits_the_document(
    document: &serde_json::Value,
    route: &RouteInfo,
    status: StatusCode,
    text: &str,
    case: &str,
) -> usize {
    let responses = &document["paths"][&route.path][route.method.to_ascii_lowercase()]["responses"];
    let documented = if status.is_success() {
        let answer = &responses[status.as_str()];
        assert!(
            answer.is_object(),
            "{case}: {status} is not documented: {responses}"
        );
        answer
    } else {
        &responses["default"]
    };
    let schema = &documented["content"]["application/json"]["schema"];
    if schema.is_null() {
        let plain = documented["content"]["text/plain"].is_object()
            || documented["content"]["text/html"].is_object();
        assert!(
            text.is_empty() || plain,
            "{case}: an undocumented body: {text}"
        );
        return 0;
    }
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let body: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {text}"));
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{case}: the answer does not fit the document: {errors:?}\n{text}"
    );
    1
}

/// Every line every service logged.
fn read_logs(baton: &Baton) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&baton.log_dir)? {
        let path = entry?.path();
        if path.is_file() {
            lines.extend(std::fs::read_to_string(&path)?.lines().map(str::to_string));
        }
    }
    assert!(!lines.is_empty(), "no logs in {}", baton.log_dir.display());
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_refused_other_groups_tables_by_name_and_the_audit_trail_keeps_who_did_what()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "groups").await?;
    let admin = &baton.client;
    let catalog = CatalogSpec {
        frequencies: vec![Frequency::every("daily", 86_400)],
        tables: vec![
            table("fin.a", "finance", "daily"),
            table("fin.b", "finance", "daily"),
            table("growth.c", "growth", "daily"),
        ],
    };
    baton.apply(catalog.clone()).await?;
    admin
        .put_group("finance", &PutGroupRequest::default())
        .await?;
    let member = baton.client_as("li@example.com");
    member.me().await?;
    admin
        .update_user(
            "li@example.com",
            &UpdateUserRequest {
                enabled: Some(true),
                role: Some(Role::Member),
                add_groups: vec!["finance".into()],
                ..Default::default()
            },
        )
        .await?;

    // Changing every table: refused, naming the other group's, and nothing applied.
    let mut changed = catalog.clone();
    changed.frequencies.clear();
    for t in &mut changed.tables {
        t.sql = "SELECT 2 AS two".into();
    }
    let apply = |catalog: CatalogSpec| baton_service::api::ApplyRequest {
        catalog,
        prune: false,
        dry_run: false,
    };
    let err = member.apply(&apply(changed.clone())).await.unwrap_err();
    let baton_cli::ClientError::Api(failure) = err else {
        panic!("{err}")
    };
    assert_eq!(failure.status, 403);
    assert_eq!(
        failure.details["tables"],
        serde_json::json!(["growth.c (group growth)"])
    );
    let stored = admin.catalog().await?;
    assert!(
        stored
            .tables
            .iter()
            .all(|t| t.definition.sql == "SELECT 1 AS one")
    );
    // Moving one's table to another group is refused too.
    let mut moved = catalog.clone();
    moved.frequencies.clear();
    moved.tables = vec![table("fin.a", "growth", "daily")];
    assert!(member.apply(&apply(moved)).await.is_err());
    // Their own tables, and a new one of their group: applied, and the audit trail says who.
    changed.tables.retain(|t| t.dataset == "fin");
    changed.tables.push(table("fin.new", "finance", "daily"));
    let applied = member.apply(&apply(changed)).await?;
    assert!(applied.changes.iter().any(|c| c.id == "fin.a"));
    // Running the frequency (which has growth.c) is refused; running their table is not.
    let err = member
        .start_run(&baton_service::api::StartRunRequest {
            frequency: Some("daily".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("growth.c"), "{err}");
    let run = member
        .start_run(&baton_service::api::StartRunRequest {
            tables: vec![id("fin.b")],
            ..Default::default()
        })
        .await?
        .run;
    assert_eq!(run.requested_by.as_deref(), Some("li@example.com"));

    let audit = admin.audit(50, None).await?.entries;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert!(
        actions.contains(&("li@example.com", "catalog.apply")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("li@example.com", "run.start")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("admin@example.com", "user.update")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("admin@example.com", "group.put")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("li@example.com", "user.sign_up")),
        "{actions:?}"
    );
    let apply_entry = audit
        .iter()
        .find(|e| e.action == "catalog.apply" && e.actor == "li@example.com")
        .expect("the member's apply");
    assert!(apply_entry.before.is_some() && apply_entry.after.is_some());
    assert_ne!(apply_entry.before, apply_entry.after);
    // Newest first; paging goes on from an entry.
    assert!(audit.windows(2).all(|w| w[0].id > w[1].id));
    let page = admin.audit(2, Some(&audit[1].id)).await?.entries;
    assert_eq!(page.first().map(|e| &e.id), audit.get(2).map(|e| &e.id));

    // `baton audit` shows it too.
    let output = baton.cli().args(["audit", "--limit", "100"]).output()?;
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("li@example.com") && text.contains("catalog.apply"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_first_sign_ins_at_once_one_becomes_the_admin() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton =
        Baton::start_with(&stack, "first-admin", Options::default().nobody_signed_in()).await?;
    let emails: Vec<String> = (0..8).map(|n| format!("p{n}@example.com")).collect();
    let calls = emails.iter().map(|email| {
        let client = baton.client_as(email);
        async move { client.me().await }
    });
    let people = futures::future::join_all(calls).await;
    let admins: Vec<_> = people
        .iter()
        .map(|p| p.as_ref().expect("a sign-in"))
        .filter(|p| p.role == Role::Admin && p.enabled)
        .collect();
    assert_eq!(admins.len(), 1, "{people:?}");
    // Everyone else waits to be enabled.
    let waiting = people
        .iter()
        .filter(|p| {
            p.as_ref()
                .is_ok_and(|p| !p.enabled && p.role == Role::Reader)
        })
        .count();
    assert_eq!(waiting, 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_stored_hashed_and_stop_working_when_revoked() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "tokens").await?;

    // Created with the CLI, printed once.
    let output = baton
        .cli()
        .args(["tokens", "create", "ci-deploy", "--expires-in-days", "30"])
        .output()?;
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout)?.trim().to_string();
    assert!(token.starts_with("baton-token_"), "{token}");
    let stored: Vec<ApiToken> = baton.store.list(None, "api_tokens").await?;
    let mine = stored
        .iter()
        .find(|t| t.name == "ci-deploy")
        .expect("stored");
    assert_eq!(mine.hash, baton_core::access::token_hash(&token));
    let raw: Vec<serde_json::Value> = baton.store.list(None, "api_tokens").await?;
    assert!(raw.iter().all(|doc| !doc.to_string().contains(&token[6..])));

    // `baton login --with-token` keeps it (0600) and later commands use it.
    let mut login = baton.cli();
    login
        .env_remove("BATON_TOKEN")
        .args(["login", "--with-token"]);
    let output = run_with_stdin(login, &format!("{token}\n"))?;
    assert!(output.status.success(), "{output:?}");
    let kept = baton.log_dir.join("config/credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kept)?.permissions().mode() & 0o777,
            0o600
        );
    }
    let mut whoami = baton.cli();
    whoami.env_remove("BATON_TOKEN").arg("whoami");
    let output = whoami.output()?;
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("admin@example.com") && text.contains("ci-deploy"),
        "{text}"
    );

    // Listed without its secret, with its last use.
    let output = baton.cli().args(["tokens", "list"]).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(&mine.id) && !text.contains(&token), "{text}");
    let listed = baton.client.tokens().await?.tokens;
    let listed = listed.iter().find(|t| t.id == mine.id).expect("listed");
    assert!(listed.last_used_at.is_some());

    // Revoked: the next call with it is refused.
    let output = baton.cli().args(["tokens", "revoke", &mine.id]).output()?;
    assert!(output.status.success(), "{output:?}");
    // Made and revoked, each with its entry in the audit trail.
    let audit = baton.client.audit(100, None).await?.entries;
    for action in ["token.create", "token.revoke"] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == action && e.target == mine.id),
            "no {action} of {}",
            mine.id
        );
    }
    let output = whoami.output()?;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("revoked"),
        "{output:?}"
    );

    // A disabled owner's tokens stop working.
    let reader = baton.client_as("ro@example.com");
    reader.me().await?;
    baton
        .client
        .update_user(
            "ro@example.com",
            &UpdateUserRequest {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await?;
    let ro_token = reader
        .create_token(&CreateTokenRequest {
            name: "ro".into(),
            expires_in_days: None,
        })
        .await?;
    let by_token = baton_cli::Client::new(&baton.urls.api).with_token(Some(ro_token.token));
    assert!(by_token.runs(1).await.is_ok());
    baton
        .client
        .update_user(
            "ro@example.com",
            &UpdateUserRequest {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await?;
    assert!(by_token.runs(1).await.is_err());
    Ok(())
}

fn run_with_stdin(
    mut command: std::process::Command,
    input: &str,
) -> anyhow::Result<std::process::Output> {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())?;
    Ok(child.wait_with_output()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_ids_and_sizes_that_do_not_fit_answer_the_error_shape_before_storage()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "api-shape").await?;
    let http = reqwest::Client::new();
    let admin = baton.issuer.person(&baton.admin);
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", baton.urls.api))
            .header("authorization", &admin)
    };
    let error_of = |text: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(text)
            .unwrap_or_else(|_| panic!("not JSON: {text}"))["error"]
            .clone()
    };

    // A misspelt field is refused, naming it; a wrong type names its path.
    let response = call(reqwest::Method::POST, "/v1/catalog/apply")
        .json(&serde_json::json!({"catalog": {}, "prnue": true}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(&response.text().await?);
    assert!(
        error["message"].as_str().unwrap().contains("prnue"),
        "{error}"
    );
    let response = call(reqwest::Method::POST, "/v1/catalog/apply")
        .json(&serde_json::json!({"catalog": {"tables": [{"dataset": 3}]}}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(&response.text().await?);
    assert_eq!(
        error["details"]["path"], "catalog.tables[0].dataset",
        "{error}"
    );
    // Not JSON at all, and no body: the same shape.
    let response = call(reqwest::Method::POST, "/v1/runs")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(&response.text().await?)["message"].is_string());
    let response = call(reqwest::Method::POST, "/v1/runs").send().await?;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(&response.text().await?)["message"].is_string());
    // An unknown query parameter, a route that is not there, a method a route does not take.
    for (method, path, status) in [
        (
            reqwest::Method::GET,
            "/v1/runs?limt=3",
            StatusCode::BAD_REQUEST,
        ),
        (reqwest::Method::GET, "/v1/nothing", StatusCode::NOT_FOUND),
        (
            reqwest::Method::DELETE,
            "/v1/catalog",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let response = call(method, path).send().await?;
        assert_eq!(response.status(), status, "{path}");
        assert!(
            error_of(&response.text().await?)["message"].is_string(),
            "{path}"
        );
    }

    // Ids that cannot be ids: 400 (or 404 where the path no longer matches), never a 500.
    for path in [
        "/v1/runs/..",
        "/v1/runs/a%2Fb",
        "/v1/runs/__x__",
        "/v1/runs/a%20b/cancel",
        "/v1/backfills/..",
        "/v1/connections/a%2F..",
    ] {
        let method = if path.ends_with("cancel") {
            reqwest::Method::POST
        } else if path.starts_with("/v1/connections") {
            reqwest::Method::DELETE
        } else {
            reqwest::Method::GET
        };
        let mut request = call(method, path);
        if path.ends_with("cancel") {
            request = request.json(&serde_json::json!({}));
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        assert!(
            matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
            "{path}: {status} {text}"
        );
        assert!(error_of(&text)["message"].is_string(), "{path}: {text}");
    }

    // SQL over the limit: refused with the file and the limit, in the dry run too, and
    // nothing stored; a table just under it is stored and read back whole.
    let limit = baton_core::catalog::MAX_SQL_BYTES;
    let sql_of = |bytes: usize| {
        let head = "SELECT 1 AS one -- ";
        format!("{head}{}", "x".repeat(bytes - head.len()))
    };
    for dry_run in [true, false] {
        let mut big = table("big.t", "finance", "daily");
        big.frequency = None;
        big.sql = sql_of(limit + 1);
        big.source = Some("big/t.sql".into());
        let err = baton
            .client
            .apply(&baton_service::api::ApplyRequest {
                catalog: CatalogSpec {
                    frequencies: vec![],
                    tables: vec![big],
                },
                prune: false,
                dry_run,
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("big/t.sql") && text.contains(&limit.to_string()),
            "{text}"
        );
        assert!(
            baton.client.catalog().await?.tables.is_empty(),
            "nothing is stored"
        );
    }
    // Many large tables at once: the commits are cut by size.
    let tables: Vec<Table> = (0..12)
        .map(|n| {
            let mut t = Table::query(&id(&format!("big.t{n}")), &sql_of(limit - 10));
            t.group = Some("finance".into());
            t
        })
        .collect();
    baton
        .client
        .apply(&baton_service::api::ApplyRequest {
            catalog: CatalogSpec {
                frequencies: vec![],
                tables,
            },
            prune: false,
            dry_run: false,
        })
        .await?;
    let stored = baton.client.catalog().await?;
    assert_eq!(stored.tables.len(), 12);
    assert!(
        stored
            .tables
            .iter()
            .all(|t| t.definition.sql.len() == limit - 10)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_google_in_the_browser_and_the_sign_in_is_renewed()
-> anyhow::Result<()> {
    use std::io::BufRead;
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "login").await?;
    let issuer = &baton.issuer;
    // The ID tokens of this sign-in expire within the minute: the next command renews it.
    issuer.set_lifetime(30);
    let oauth = |command: &mut std::process::Command| {
        command
            .env_remove("BATON_TOKEN")
            .env("BATON_OAUTH_CLIENT_ID", oidc::CLIENT_ID)
            .env("BATON_OAUTH_CLIENT_SECRET", oidc::CLIENT_SECRET)
            .env("BATON_OAUTH_AUTH_URL", &issuer.auth_url)
            .env("BATON_OAUTH_TOKEN_URL", &issuer.token_url)
            .env("BATON_NO_BROWSER", "1");
    };
    let mut login = baton.cli();
    oauth(&mut login);
    let mut child = login
        .args(["login", "--email", "pat@example.com"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // The page to open is on standard error; the test is the browser.
    let stderr = child.stderr.take().expect("piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });
    let page = loop {
        let line = receiver.recv_timeout(std::time::Duration::from_secs(30))?;
        if let Some(url) = line.trim().strip_prefix("http") {
            break format!("http{url}");
        }
    };
    assert!(
        page.starts_with(&issuer.auth_url) && page.contains("code_challenge="),
        "{page}"
    );
    let back = reqwest::get(&page).await?;
    assert!(back.status().is_success(), "{}", back.status());
    assert!(back.text().await?.contains("close this tab"));
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("pat@example.com") && text.contains("waiting for an admin"),
        "{text}"
    );

    // The kept sign-in is renewed as it expires, and used.
    let mut whoami = baton.cli();
    oauth(&mut whoami);
    whoami.arg("whoami");
    let output = whoami.output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("pat@example.com") && text.contains("by sign-in"),
        "{text}"
    );
    assert_eq!(
        issuer.refreshes(),
        1,
        "the expiring sign-in was renewed once"
    );
    let kept = std::fs::read_to_string(baton.log_dir.join("config/credentials.json"))?;
    assert!(kept.contains("refresh_token"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lets_people_in_and_sorts_them_into_groups_with_the_cli() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "people-cli").await?;
    let li = baton.client_as("li@example.com");
    assert!(!li.me().await?.enabled);
    assert!(li.runs(1).await.is_err(), "a new user waits to be enabled");
    let baton_cli = |args: &[&str]| -> anyhow::Result<(bool, String)> {
        let output = baton.cli().args(args).output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status.success(), text))
    };
    for args in [
        &["users", "enable", "li@example.com"][..],
        &["users", "role", "li@example.com", "member"],
        &[
            "groups",
            "create",
            "finance",
            "--description",
            "the money people",
        ],
        &["groups", "add", "finance", "li@example.com"],
    ] {
        let (ok, text) = baton_cli(args)?;
        assert!(ok, "{args:?}: {text}");
    }
    let me = li.me().await?;
    assert!(me.enabled && me.role == Role::Member && me.groups.contains("finance"));
    let (_, listed) = baton_cli(&["groups", "list"])?;
    assert!(
        listed.contains("finance") && listed.contains("li@example.com"),
        "{listed}"
    );
    let (_, users) = baton_cli(&["users", "list"])?;
    assert!(
        users.contains("li@example.com") && users.contains("member"),
        "{users}"
    );
    // A group with members stays; the last admin stays an admin.
    let (ok, text) = baton_cli(&["groups", "delete", "finance"])?;
    assert!(!ok && text.contains("li@example.com"), "{text}");
    let (ok, text) = baton_cli(&["users", "disable", "admin@example.com"])?;
    assert!(!ok && text.contains("last enabled admin"), "{text}");
    let (ok, text) = baton_cli(&["groups", "remove", "finance", "li@example.com"])?;
    assert!(ok, "{text}");
    let (ok, text) = baton_cli(&["groups", "delete", "finance"])?;
    assert!(ok, "{text}");
    // Disabled, a user is shut out.
    let (ok, text) = baton_cli(&["users", "disable", "li@example.com"])?;
    assert!(ok, "{text}");
    assert!(li.runs(1).await.is_err(), "a disabled user is shut out");
    Ok(())
}
