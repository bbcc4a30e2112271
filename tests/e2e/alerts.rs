//! Alerts, end to end on the local stack: a Slack connection stored through the API (its
//! webhook URL sealed, never given back or logged), a failed job and its failed run each
//! reported once, with the error and a pointer to the run, though their messages come again.
//! The Slack webhook is a stand-in on loopback: Slack has no emulator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use baton_core::catalog::{CatalogSpec, Frequency, Table};
use baton_core::connections::ConnectionKind;
use baton_core::messages::{ExecutorTask, PlannerEvent};
use baton_core::state::RunState;
use baton_service::api::PutConnectionRequest;
use baton_tests::{Baton, Options, Stack, eventually, first_run_id, serve_on_loopback};

const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Default)]
struct Slack {
    texts: Arc<Mutex<Vec<String>>>,
}

async fn webhook(
    State(slack): State<Slack>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> &'static str {
    let text = body["text"].as_str().unwrap_or_default().to_string();
    slack.texts.lock().unwrap().push(text);
    "ok"
}

fn table(name: &str, sql: &str) -> Table {
    Table {
        frequency: Some("hourly".into()),
        ..Table::query(&name.parse().expect("a valid table id"), sql)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_and_its_run_are_reported_once_to_slack() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let slack = Slack::default();
    let slack_url = serve_on_loopback(
        axum::Router::new()
            .route("/services/T0/B0/{token}", post(webhook))
            .with_state(slack.clone()),
    )
    .await?;
    // Two planners and two executors, so that the duplicates reach different processes.
    let baton = Baton::start_with(&stack, "alerts", Options::default().two_of_each()).await?;
    let secret = format!("{slack_url}/services/T0/B0/very-secret-token");
    let stored = baton
        .client
        .put_connection(
            "alerts",
            &PutConnectionRequest {
                kind: ConnectionKind::Slack,
                secret: secret.clone(),
                description: Some("#data-alerts".into()),
            },
        )
        .await?;
    assert_eq!(stored.name, "alerts");
    // The secret is not given back, nor stored in the clear.
    let listed = serde_json::to_string(&baton.client.connections().await?)?;
    assert!(listed.contains("#data-alerts") && !listed.contains("very-secret-token"));
    let raw: serde_json::Value = baton
        .store
        .get(None, "connections", "alerts")
        .await?
        .expect("the connection is stored");
    assert!(!raw.to_string().contains("very-secret-token"), "{raw}");

    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![
                table("a.broken", "SELECT no_such_column FROM UNNEST([1]) AS x"),
                table("a.child", "SELECT * FROM a.broken"),
                table("a.fine", "SELECT 1 AS x"),
            ],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Failed);
    let texts = eventually("two alerts", TIMEOUT, || {
        let texts = slack.texts.lock().unwrap().clone();
        async move { Ok((texts.len() >= 2).then_some(texts)) }
    })
    .await?;
    let job_alert = texts
        .iter()
        .find(|t| t.contains("*a.broken* failed"))
        .unwrap_or_else(|| panic!("no job alert: {texts:?}"));
    assert!(
        job_alert.contains(&run_id)
            && job_alert.contains("invalidQuery")
            && job_alert.contains("no_such_column")
            && job_alert.contains("console.cloud.google.com/firestore"),
        "{job_alert}"
    );
    let run_alert = texts
        .iter()
        .find(|t| t.contains(&format!("run `{run_id}` failed")))
        .unwrap_or_else(|| panic!("no run alert: {texts:?}"));
    assert!(
        run_alert.contains("1 failed (a.broken), 1 skipped, 1 succeeded"),
        "{run_alert}"
    );

    // The messages again: the job and the run ended, and are not reported twice.
    let broken = "a.broken".parse()?;
    let pushed = baton
        .push(
            &baton.urls.executor,
            &ExecutorTask::RunQuery {
                run_id: run_id.clone(),
                table: "a.broken".parse()?,
                attempt: 1,
            },
        )
        .await?;
    assert!(pushed.is_success(), "{pushed}");
    let pushed = baton
        .push(
            &baton.urls.planner,
            &PlannerEvent::JobFinished {
                run_id: run_id.clone(),
                table: broken,
                attempt: 1,
            },
        )
        .await?;
    assert!(pushed.is_success(), "{pushed}");
    assert_eq!(slack.texts.lock().unwrap().len(), 2);

    // What each alert is recorded as, and no log names the webhook.
    let recorded: serde_json::Value = baton
        .store
        .get(None, "alerts", &format!("{run_id}.run.0"))
        .await?
        .expect("the run's alert is recorded");
    assert_eq!(recorded["delivery"]["status"], 200, "{recorded}");
    for service in ["api", "executor", "planner"] {
        let logs = std::fs::read_to_string(baton.log_dir.join(format!("{service}.log")))?;
        assert!(
            !logs.contains("very-secret-token"),
            "the {service} logged the secret"
        );
    }
    Ok(())
}
