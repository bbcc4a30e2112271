//! Only Cloud Scheduler may tick and only Pub/Sub may push: the tick, planner, executor and
//! importer verify a Google-signed OIDC token on every request (signature against the
//! published keys, issuer, expiry, start of validity, audience, caller's verified email).
//! Each refused call is checked for its status and for having changed nothing in Firestore;
//! the same calls with a valid token are handled. The harness's issuer stands in for Google's.

use std::time::Duration;

use base64::Engine;
use baton_core::messages::PlannerEvent;
use baton_core::state::RunState;
use baton_tests::oidc::{self, Issuer};
use baton_tests::{Baton, Stack, bin_dir, eventually, repo_root};
use reqwest::StatusCode;

/// A token's three parts with `claims` in place of its payload (the signature no longer fits).
fn with_payload(token: &str, claims: &serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(claims).expect("claims serialize"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// Every way a call can fail to prove it comes from `email` for `audience`, with the status
/// the service must answer.
fn bad_authorizations(
    issuer: &Issuer,
    audience: &str,
    email: &str,
    other_service_audience: &str,
) -> anyhow::Result<Vec<(&'static str, Option<String>, StatusCode)>> {
    let good = Issuer::claims(audience, email);
    let now = jiff::Timestamp::now().as_second();
    let changed = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let sign = |claims: serde_json::Value| issuer.sign("a", &claims).map(bearer);
    let valid = issuer.sign("a", &good)?;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(serde_json::json!({"alg": "none", "typ": "JWT", "kid": "a"})),
        b64(good.clone())
    );
    // The payload of a token for another email under the valid token's signature.
    let forged = with_payload(
        &valid,
        &changed(&|c| c["email"] = "intruder@evil.example".into()),
    );
    // HS256 keyed with the public key, the classic confusion of algorithms.
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("a".into());
        jsonwebtoken::encode(
            &header,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(issuer.jwks_url.as_bytes()),
        )?
    };
    Ok(vec![
        ("no token", None, StatusCode::UNAUTHORIZED),
        (
            "not a bearer token",
            Some("Basic YWRtaW46YWRtaW4=".into()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not a JWT",
            bearer("not-a-token".into()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired",
            sign(changed(&|c| {
                c["iat"] = (now - 7200).into();
                c["exp"] = (now - 3600).into();
            }))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "not yet valid",
            sign(changed(&|c| c["nbf"] = (now + 600).into()))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong audience",
            sign(changed(&|c| c["aud"] = "https://elsewhere.example".into()))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a token for another service",
            sign(changed(&|c| c["aud"] = other_service_audience.into()))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong issuer",
            sign(changed(&|c| {
                c["iss"] = "https://issuer.evil.example".into()
            }))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no expiry",
            sign(changed(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unverified email",
            sign(changed(&|c| c["email_verified"] = false.into()))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no email",
            sign(changed(&|c| {
                c.as_object_mut().unwrap().remove("email");
            }))?,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong email",
            sign(changed(&|c| c["email"] = "intruder@evil.example".into()))?,
            StatusCode::FORBIDDEN,
        ),
        (
            "signed by an unknown key",
            bearer(issuer.sign("c", &good)?),
            StatusCode::UNAUTHORIZED,
        ),
        ("forged signature", bearer(forged), StatusCode::UNAUTHORIZED),
        ("alg none", bearer(unsigned), StatusCode::UNAUTHORIZED),
        (
            "HS256 with the public key",
            bearer(hs256),
            StatusCode::UNAUTHORIZED,
        ),
    ])
}

async fn post_tick(
    http: &reqwest::Client,
    baton: &Baton,
    authorization: Option<&str>,
) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let mut request = http.post(format!("{}/tick", baton.urls.tick));
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_scheduler_ticks_and_only_pubsub_pushes() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start(&stack, "auth").await?;
    let http = reqwest::Client::new();
    baton.shop_database(&stack).await?;
    let output = baton
        .cli()
        .args(["apply", "--yes"])
        .arg(repo_root().join("tests/catalogs/shop"))
        .output()?;
    assert!(output.status.success(), "{output:?}");
    // shop.refunds, a load table no file has reached, is made empty for its readers.
    eventually("shop.refunds made", Duration::from_secs(60), || async {
        use baton_core::ports::WarehousePort;
        let columns = baton.warehouse.schema(&"shop.refunds".parse()?).await?;
        Ok(columns.filter(|c| !c.is_empty()))
    })
    .await?;

    // The tick: every bad token is refused, and no run is created.
    let scheduler = Baton::caller_of(&baton.project, "tick");
    for (case, authorization, expected) in bad_authorizations(
        &baton.issuer,
        &scheduler.audience,
        &scheduler.email,
        &oidc::audience("planner"),
    )? {
        let (status, body) = post_tick(&http, &baton, authorization.as_deref()).await?;
        assert_eq!(status, expected, "tick, {case}: {body}");
        let code = if expected == StatusCode::FORBIDDEN {
            "permission_denied"
        } else {
            "unauthenticated"
        };
        assert_eq!(body["error"]["code"], code, "tick, {case}: {body}");
        assert!(
            baton.client.runs(10).await?.runs.is_empty(),
            "tick, {case}: a refused tick created a run"
        );
    }
    // The push identity's token is no Scheduler's.
    let push_token = baton.bearer("planner");
    let (status, _) = post_tick(&http, &baton, Some(&push_token)).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a push token at the tick");

    // A valid tick creates the run; its announcement is held, so the run waits to be planned.
    baton.relays.planner.hold_all();
    let (status, report) = post_tick(&http, &baton, Some(&baton.bearer("tick"))).await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    let run_id = report["runs"][0]["run_id"]
        .as_str()
        .expect("the tick made a run")
        .to_string();

    // The planner: every bad token is refused, and the run stays unplanned.
    let push = Baton::caller_of(&baton.project, "planner");
    let event = PlannerEvent::RunCreated {
        run_id: run_id.clone(),
    };
    for (case, authorization, expected) in bad_authorizations(
        &baton.issuer,
        &push.audience,
        &push.email,
        &oidc::audience("executor"),
    )? {
        let status = baton
            .push_with(&baton.urls.planner, &event, authorization.as_deref())
            .await?;
        assert_eq!(status, expected, "planner, {case}");
        let run = baton.client.run(&run_id).await?;
        assert_eq!(run.run.state, RunState::Created, "planner, {case}");
        assert!(run.jobs.is_empty(), "planner, {case}: jobs were planned");
    }

    // The executor and the importer sit behind the same guard.
    for url in [&baton.urls.executor, &baton.urls.importer] {
        let status = baton.push_with(url, &event, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{url} without a token");
        let status = baton
            .push_with(url, &event, Some(&baton.bearer("planner")))
            .await?;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{url} with the planner's audience"
        );
    }
    // A valid push reaches the executor and the importer (a message they cannot read is
    // acknowledged).
    for url in [&baton.urls.executor, &baton.urls.importer] {
        let status = baton.push(url, &event).await?;
        assert_eq!(status, StatusCode::NO_CONTENT, "{url}");
    }
    // Probes need no token.
    for url in [
        &baton.urls.tick,
        &baton.urls.planner,
        &baton.urls.executor,
        &baton.urls.importer,
    ] {
        let status = http.get(format!("{url}/healthz")).send().await?.status();
        assert_eq!(status, StatusCode::OK, "{url}/healthz");
    }

    // The valid push plans the run, and it runs to the end.
    let status = baton.push(&baton.urls.planner, &event).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    baton.relays.planner.release().await?;
    let done = baton
        .wait_for_run(&run_id, Duration::from_secs(120))
        .await?;
    assert_eq!(done.run.state, RunState::Succeeded, "{:?}", done.run);

    // No log line holds a token: every token of key `a` starts with the same header.
    let valid = baton.bearer("planner");
    let header = valid["Bearer ".len()..]
        .split('.')
        .next()
        .expect("a token has a header");
    for entry in std::fs::read_dir(&baton.log_dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        assert!(!text.contains(header), "{} holds a token", path.display());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_once_and_unknown_keys_do_not_cause_fetches() -> anyhow::Result<()>
{
    let stack = Stack::load()?;
    // No catalog: ticks create nothing, so no other service fetches keys meanwhile.
    let baton = Baton::start(&stack, "auth-rotation").await?;
    let http = reqwest::Client::new();
    let scheduler = Baton::caller_of(&baton.project, "tick");
    let claims = || Issuer::claims(&scheduler.audience, &scheduler.email);
    let with_key = |kid: &str| -> anyhow::Result<String> {
        Ok(format!("Bearer {}", baton.issuer.sign(kid, &claims())?))
    };
    // The API fetched the keys once when the harness's admin signed in; the tick has not.
    let api_fetches = baton.issuer.fetches();
    assert_eq!(api_fetches, 1, "keys are fetched when first needed");
    let fetches = || baton.issuer.fetches() - api_fetches;

    for _ in 0..5 {
        let (status, body) = post_tick(&http, &baton, Some(&with_key("a")?)).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(fetches(), 1, "the key set is kept");

    // Google publishes a new key and signs with it: fetched once, then kept.
    baton.issuer.publish("b");
    for _ in 0..5 {
        let (status, body) = post_tick(&http, &baton, Some(&with_key("b")?)).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(fetches(), 2, "a new key id is fetched once");

    // Tokens under a key nobody published are refused without a fetch each.
    for _ in 0..5 {
        let (status, body) = post_tick(&http, &baton, Some(&with_key("c")?)).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(
        fetches(),
        2,
        "an unknown key id fetches at most once per refetch interval"
    );
    // The old key still verifies.
    let (status, _) = post_tick(&http, &baton, Some(&with_key("a")?)).await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[test]
fn a_service_without_verification_settings_does_not_start() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    // The API signs people in: it needs the OAuth client their ID tokens are issued for.
    for (service, variable) in [
        ("tick", "BATON_AUTH_AUDIENCE"),
        ("planner", "BATON_AUTH_AUDIENCE"),
        ("executor", "BATON_AUTH_AUDIENCE"),
        ("importer", "BATON_AUTH_AUDIENCE"),
        ("api", "BATON_OAUTH_CLIENT_ID"),
    ] {
        let output = std::process::Command::new(bin_dir().join(format!("baton-{service}")))
            .envs(stack.emulator_env()?)
            .env("BATON_PROJECT", "auth-refused")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env_remove("BATON_AUTH_AUDIENCE")
            .env_remove("BATON_OAUTH_CLIENT_ID")
            .env_remove("BATON_AUTH_DISABLED")
            .stdin(std::process::Stdio::null())
            .output()?;
        let log = String::from_utf8_lossy(&output.stdout);
        assert!(!output.status.success(), "{service} started open: {log}");
        assert!(
            log.contains(&format!("{variable}: is not set")),
            "{service} did not name the variable: {log}"
        );
        assert!(!log.contains("listening"), "{service} listened: {log}");
    }
    Ok(())
}
