//! Dead letters end to end: a message the executor refuses until Pub/Sub gives up (BigQuery's
//! API unavailable, from the fault proxy) reaches the dead-letter topic, whose subscription
//! pushes it to the planner; it is kept with where it failed and the executor's last error,
//! listed by `baton dead-letters list`, and once the outage is over `replay` publishes it
//! again: the run completes, its table built by one BigQuery job. A dead letter dropped is
//! gone and delivered nowhere. Both are in the audit trail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;

use baton_core::catalog::{CatalogSpec, Frequency, Table, TableId};
use baton_core::dead_letters::{SOURCE_DELIVERY_COUNT, SOURCE_SUBSCRIPTION};
use baton_core::ids::bigquery_job_id;
use baton_core::state::{JobState, RunState};
use baton_google::bus::Bus;
use baton_tests::faults::{Fault, FaultyBigQuery};
use baton_tests::{Baton, Options, Stack, eventually, first_run_id};

const TIMEOUT: Duration = Duration::from_secs(120);

fn hourly(name: &str, sql: &str) -> Table {
    let id: TableId = name.parse().expect("a valid table id");
    Table {
        frequency: Some("hourly".to_string()),
        ..Table::query(&id, sql)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_kept_with_its_last_error_and_its_replay_completes_the_run()
-> anyhow::Result<()> {
    let stack = Stack::load()?;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    // BigQuery's API is down for dl.out's job until the outage ends.
    let outage = Arc::new(AtomicBool::new(true));
    let down = outage.clone();
    bigquery.rule(move |id| {
        (id.contains("_dl_out_") && down.load(Ordering::SeqCst)).then_some(Fault::Unavailable)
    });
    let options = Options::default()
        .env("BIGQUERY_EMULATOR_HOST", &bigquery.url)
        .max_deliveries(5);
    let baton = Baton::start_with(&stack, "dead-letters", options).await?;
    baton
        .apply(CatalogSpec {
            frequencies: vec![Frequency::every("hourly", 3_600)],
            tables: vec![
                hourly("dl.src", "SELECT 1 AS x"),
                hourly("dl.out", "SELECT x FROM dl.src"),
            ],
        })
        .await?;
    let report = baton.tick_at("2026-11-22T10:00:00Z".parse()?).await?;
    let run_id = first_run_id(&report)?;

    // Five refused deliveries, then the dead letter, kept.
    let letter = eventually("the dead letter kept", TIMEOUT, || async {
        Ok(baton.client.dead_letters(100).await?.dead_letters.pop())
    })
    .await?;
    assert_eq!(
        letter.about,
        format!("run_query run {run_id} table dl.out attempt 1")
    );
    assert_eq!(letter.run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(
        letter.subscription,
        format!("{}-push", baton.gcp.topics.executor)
    );
    assert_eq!(
        letter.topic,
        format!(
            "projects/{}/topics/{}",
            baton.project, baton.gcp.topics.executor
        )
    );
    assert_eq!(letter.delivery_attempts, Some(5));
    let error = letter.last_error.as_ref().expect("the executor's refusal");
    assert_eq!(error.service, "executor");
    assert!(
        error.error.contains("The service is currently unavailable"),
        "{error:?}"
    );
    assert!(letter.attributes.is_empty(), "{:?}", letter.attributes);
    let listed = baton.run_cli(&["dead-letters", "list"]).await?;
    assert!(
        listed.contains(&letter.id)
            && listed.contains(&letter.about)
            && listed.contains("last error (executor")
            && listed.contains("currently unavailable"),
        "{listed}"
    );
    // Meanwhile the run waits, its job running (the sweep would send it again in time).
    let run = baton.client.run(&run_id).await?;
    assert_eq!(run.run.state, RunState::Running, "{run:?}");
    let out = run
        .jobs
        .iter()
        .find(|j| j.table.to_string() == "dl.out")
        .expect("dl.out");
    assert_eq!(out.state, JobState::Running);

    // The outage over, the replay delivers it: the run completes, dl.out built by one job.
    outage.store(false, Ordering::SeqCst);
    let said = baton.run_cli(&["dead-letters", "replay", "--all"]).await?;
    assert!(
        said.contains(&format!("replayed {} to {}", letter.id, letter.topic)),
        "{said}"
    );
    let run = baton.wait_for_run(&run_id, TIMEOUT).await?;
    assert_eq!(run.run.state, RunState::Succeeded, "{run:?}");
    // Refused five times while BigQuery was down, then inserted once, by the replay.
    let job = bigquery_job_id(&run_id, &"dl.out".parse()?, 1);
    assert_eq!(bigquery.inserts_of(&job), 1);
    gone_and_audited(&baton, "dead_letter.replay", &letter.id).await
}

/// No dead letter is left, and the audit trail has `action` on `id`.
async fn gone_and_audited(baton: &Baton, action: &str, id: &str) -> anyhow::Result<()> {
    let left = baton.client.dead_letters(100).await?.dead_letters;
    assert!(left.is_empty(), "{left:?}");
    let audit = baton.client.audit(10, None).await?.entries;
    assert!(
        audit.iter().any(|e| e.action == action && e.target == id),
        "{audit:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_dead_letter_is_delivered_nowhere() -> anyhow::Result<()> {
    let stack = Stack::load()?;
    let baton = Baton::start_with(&stack, "dead-drop", Options::default()).await?;
    // A message Pub/Sub dead-lettered from the importer's subscription, as it does: the
    // message's bytes and attributes, and its own.
    let bus = Bus::new(&baton.gcp)?;
    let data = br#"{"event":"consider","table":"in.files","force":true}"#;
    let subscription = format!("{}-push", baton.gcp.topics.importer);
    let attributes = [
        (SOURCE_SUBSCRIPTION.to_string(), subscription.clone()),
        (SOURCE_DELIVERY_COUNT.to_string(), "20".to_string()),
        ("origin".to_string(), "test".to_string()),
    ]
    .into_iter()
    .collect();
    bus.publish_raw(
        "baton-dead-letter",
        &base64::engine::general_purpose::STANDARD.encode(data),
        &attributes,
    )
    .await?;
    // Not a dead letter (no source subscription): acknowledged and not kept.
    bus.publish(
        "baton-dead-letter",
        &serde_json::json!({"event": "nothing"}),
    )
    .await?;
    eventually("both answered by the planner", TIMEOUT, || async {
        Ok((baton.relays.dead_letters.answered() >= 2).then_some(()))
    })
    .await?;
    let mut kept = baton.client.dead_letters(100).await?.dead_letters;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let letter = kept.pop().expect("one");
    assert_eq!(letter.about, "consider table in.files");
    assert_eq!(letter.subscription, subscription);
    assert!(letter.last_error.is_none(), "{letter:?}");
    assert_eq!(
        letter.attributes.into_iter().collect::<Vec<_>>(),
        [("origin".to_string(), "test".to_string())]
    );
    let said = baton.run_cli(&["dead-letters", "drop", &letter.id]).await?;
    assert!(said.contains(&format!("dropped {}", letter.id)), "{said}");
    assert_eq!(baton.relays.importer.received(), 0, "nothing was delivered");
    gone_and_audited(&baton, "dead_letter.drop", &letter.id).await
}
