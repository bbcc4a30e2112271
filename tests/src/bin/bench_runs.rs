//! The runs benchmark, each figure on its own line as `name: value unit`:
//!
//! - planning a 10,000-table run in the pure core: `lifecycle::plan_run`, what the planner
//!   does between reading the tables and writing the jobs (conditions, graph, priorities,
//!   job documents), median of several;
//! - the dispatch latency on the local stack, from a job's completion (its `finished_at`,
//!   written by the executor) to its child's dispatch (`dispatched_at`, written by the planner
//!   when it claims a slot), over chains whose children never wait for a slot, and beside it
//!   the Pub/Sub emulator's own publish-to-push delay, the floor under that latency here;
//! - a 1,000-table run of trivial queries end to end, with the Firestore reads and writes per
//!   job of the services that did the work (tick, planner, executor).
//!
//! Run with `tests/bench/runs.sh`, which builds it and starts the local stack.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use baton_core::catalog::{CatalogSpec, Frequency, Table, TableDoc, TableId};
use baton_core::lifecycle::plan_run;
use baton_core::ports::WarehousePort;
use baton_core::run::{Job, Run, Trigger};
use baton_core::state::RunState;
use baton_google::bus::{Bus, PushSubscription};
use baton_tests::{Baton, Stack, first_run_id, serve_on_loopback};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn id(dataset: &str, table: &str) -> TableId {
    TableId::new(dataset, table).expect("a valid table id")
}

fn table(id: &TableId, sql: String) -> Table {
    Table {
        frequency: Some("bench".into()),
        ..Table::query(id, &sql)
    }
}

fn frequency(concurrency: u32) -> Frequency {
    Frequency {
        concurrency: Some(concurrency),
        ..Frequency::every("bench", 86_400)
    }
}

/// A layered DAG: `layers` layers of `width` tables, each reading `fan_in` tables of the
/// layer before (the first layer reads nothing); `(id, parents)` in layer order.
fn layered(layers: usize, width: usize, fan_in: usize, seed: u64) -> Vec<(TableId, Vec<TableId>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(layers * width);
    for layer in 0..layers {
        for i in 0..width {
            let me = id(&format!("l{layer}"), &format!("t{i}"));
            let mut parents = Vec::new();
            if layer > 0 {
                while parents.len() < fan_in.min(width) {
                    let p = id(
                        &format!("l{}", layer - 1),
                        &format!("t{}", rng.random_range(0..width)),
                    );
                    if !parents.contains(&p) {
                        parents.push(p);
                    }
                }
                parents.sort();
            }
            out.push((me, parents));
        }
    }
    out
}

/// The trivial query of a table of the layered DAG: one row from each parent, or a constant.
fn trivial_sql(parents: &[TableId]) -> String {
    if parents.is_empty() {
        return "SELECT 1 AS x".into();
    }
    let reads: Vec<String> = parents
        .iter()
        .map(|p| format!("SELECT x FROM {p}"))
        .collect();
    format!(
        "SELECT MAX(x) + 1 AS x FROM ({})",
        reads.join(" UNION ALL ")
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The pure core: a 10,000-table run planned, median of `rounds`.
fn bench_plan(tables: usize, rounds: usize) -> anyhow::Result<()> {
    // 100 layers of 100, each table reading 3 of the layer before: ~30,000 dependencies,
    // with descendant sets that cover much of the graph (the costly case for priorities).
    let graph = layered(tables / 100, 100, 3, 7);
    let docs: Vec<TableDoc> = graph
        .iter()
        .map(|(me, parents)| {
            let sql = trivial_sql(parents);
            TableDoc {
                reads: parents.iter().map(|p| format!("acme.{p}")).collect(),
                ..TableDoc::unanalysed(
                    me.clone(),
                    table(me, sql),
                    parents.clone(),
                    Timestamp::now(),
                )
            }
        })
        .collect();
    let edges: usize = docs.iter().map(|d| d.parents.len()).sum();
    let now = Timestamp::now();
    let run = Run::new(
        "bench-run".into(),
        Some("bench"),
        Trigger::Schedule,
        now,
        None,
        10,
        now,
    );
    let mut times = Vec::new();
    for _ in 0..rounds {
        let input = docs.clone();
        let started = Instant::now();
        let plan = plan_run(&run, input, &jiff::tz::TimeZone::UTC, "acme", now)
            .map_err(|c| anyhow::anyhow!("{c}"))?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(plan.jobs.len(), tables);
    }
    times.sort_by(f64::total_cmp);
    println!("plan_tables: {tables} tables");
    println!("plan_dependencies: {edges} dependencies");
    println!("plan_run_median: {:.1} ms", times[times.len() / 2]);
    println!("plan_run_best: {:.1} ms", times[0]);
    Ok(())
}

/// Dispatch latency: `chains` chains of `length` tables under a cap that fits them all, so
/// a child is dispatched as soon as the planner hears its parent finished.
async fn bench_latency(stack: &Stack, chains: usize, length: usize) -> anyhow::Result<()> {
    let mut baton = Baton::start(stack, "bench-latency").await?;
    let mut tables = Vec::new();
    for c in 0..chains {
        for i in 0..length {
            let me = id("lat", &format!("c{c}_{i}"));
            let sql = if i == 0 {
                "SELECT 1 AS x".to_string()
            } else {
                format!("SELECT x + 1 AS x FROM lat.c{c}_{}", i - 1)
            };
            tables.push(table(&me, sql));
        }
    }
    baton
        .apply(CatalogSpec {
            frequencies: vec![frequency(u32::try_from(chains)?)],
            tables,
        })
        .await?;
    let report = baton.tick().await?;
    let run_id = first_run_id(&report)?;
    let done = baton
        .wait_for_run(&run_id, Duration::from_secs(600))
        .await?;
    anyhow::ensure!(
        done.run.state == RunState::Succeeded,
        "the latency run ended {}",
        done.run.state
    );
    let finished: BTreeMap<&TableId, Timestamp> = done
        .jobs
        .iter()
        .filter_map(|j| j.finished_at.map(|f| (&j.table, f)))
        .collect();
    let mut latencies: Vec<f64> = done
        .jobs
        .iter()
        .filter_map(|j| {
            let parent = j.parents.first()?;
            let since = j.dispatched_at? - finished[parent];
            since.total(jiff::Unit::Millisecond).ok()
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    baton.stop();
    println!("dispatch_samples: {} children", latencies.len());
    println!(
        "dispatch_latency_p50: {:.0} ms",
        percentile(&latencies, 50.0)
    );
    println!(
        "dispatch_latency_p99: {:.0} ms",
        percentile(&latencies, 99.0)
    );
    println!(
        "dispatch_latency_max: {:.0} ms",
        latencies.last().copied().unwrap_or_default()
    );
    Ok(())
}

/// What the Pub/Sub emulator itself costs, beneath the dispatch latency and the run's pace
/// on the local stack: its delay from publish to push, one message at a time, and how many
/// pushes it keeps in flight at once to one endpoint (each of the executor's pushes is held
/// open while its BigQuery job runs).
async fn bench_push(stack: &Stack, samples: usize) -> anyhow::Result<()> {
    struct Receiver {
        /// When each push arrived (a slow one: when its handler ended), in order.
        arrivals: watch::Sender<Vec<Instant>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }
    let receiver = Arc::new(Receiver {
        arrivals: watch::Sender::new(Vec::new()),
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route(
            "/now",
            axum::routing::post(|State(r): State<Arc<Receiver>>| async move {
                r.arrivals.send_modify(|a| a.push(Instant::now()));
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/slow",
            axum::routing::post(|State(r): State<Arc<Receiver>>| async move {
                let now = r.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                r.most_in_flight.fetch_max(now, Ordering::SeqCst);
                // A handler that works for half a second, as an executor waits for its job.
                tokio::time::sleep(Duration::from_millis(500)).await;
                r.in_flight.fetch_sub(1, Ordering::SeqCst);
                r.arrivals.send_modify(|a| a.push(Instant::now()));
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .with_state(receiver.clone());
    let endpoint = serve_on_loopback(app).await?;
    let bus = Bus::new(&stack.gcp(&format!("bench-push-{}", std::process::id()))?)?;
    for path in ["now", "slow"] {
        let topic = format!("bench-{path}");
        bus.ensure_topic(&topic).await?;
        bus.ensure_push_subscription(&PushSubscription {
            name: &topic,
            topic: &topic,
            endpoint: &format!("{endpoint}/{path}"),
            ack_deadline_seconds: 60,
            dead_letter: None,
        })
        .await?;
    }
    // When the `count`-th push arrived, waiting for it if it has not.
    let arrived = |count: usize| {
        let mut arrivals = receiver.arrivals.subscribe();
        async move {
            let seen = tokio::time::timeout(
                Duration::from_secs(60),
                arrivals.wait_for(|a| a.len() >= count),
            )
            .await
            .map_err(|_| anyhow::anyhow!("push {count} did not arrive in 60 s"))??;
            Ok::<_, anyhow::Error>(seen[count - 1])
        }
    };
    let mut delays = Vec::with_capacity(samples);
    for n in 1..=samples {
        let sent = Instant::now();
        bus.publish("bench-now", &serde_json::json!({})).await?;
        delays.push(arrived(n).await?.duration_since(sent).as_secs_f64() * 1e3);
    }
    for _ in 0..20 {
        bus.publish("bench-slow", &serde_json::json!({})).await?;
    }
    arrived(samples + 20).await?;
    delays.sort_by(f64::total_cmp);
    println!("pubsub_push_p50: {:.0} ms", percentile(&delays, 50.0));
    println!("pubsub_push_p99: {:.0} ms", percentile(&delays, 99.0));
    println!(
        "pubsub_pushes_in_flight_max: {} pushes",
        receiver.most_in_flight.load(Ordering::SeqCst)
    );
    Ok(())
}

/// The median of some spans, in milliseconds.
fn median_ms(spans: impl Iterator<Item = jiff::SignedDuration>) -> f64 {
    let mut ms: Vec<f64> = spans.map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    percentile(&ms, 50.0)
}

/// A run of `tables` trivial queries (layers of 100), end to end.
async fn bench_run(stack: &Stack, tables: usize, concurrency: u32) -> anyhow::Result<()> {
    let mut baton = Baton::start(stack, "bench-run").await?;
    let graph = layered(tables.div_ceil(100), tables.min(100), 2, 11);
    let spec = CatalogSpec {
        frequencies: vec![frequency(concurrency)],
        tables: graph
            .iter()
            .map(|(me, parents)| table(me, trivial_sql(parents)))
            .collect(),
    };
    let applying = Instant::now();
    baton.apply(spec).await?;
    let applied = applying.elapsed();
    // Datasets exist before the run, as they would in a warehouse that has run before.
    for layer in 0..tables.div_ceil(100) {
        baton.warehouse.ensure_dataset(&format!("l{layer}")).await?;
    }
    let started = Instant::now();
    let report = baton.tick().await?;
    let run_id = first_run_id(&report)?;
    let done = baton
        .wait_for_run(&run_id, Duration::from_secs(3_600))
        .await?;
    let wall = started.elapsed();
    anyhow::ensure!(
        done.run.state == RunState::Succeeded,
        "the run ended {}",
        done.run.state
    );
    let jobs = done.jobs.len();
    let planning = (done.run.planned_at.expect("planned") - done.run.created_at)
        .total(jiff::Unit::Millisecond)?;
    let attempts: u32 = done.jobs.iter().map(|j| j.attempt).sum();
    // Where a job's time goes: from dispatch to its start in the executor (Pub/Sub push and
    // Baton), and from start to end (BigQuery, here the emulator, whose jobs slow down as its
    // catalog grows: compare the first hundred with the last).
    let mut by_start: Vec<&Job> = done.jobs.iter().collect();
    by_start.sort_by_key(|j| j.started_at);
    let running = |j: &&Job| Some(j.finished_at?.duration_since(j.started_at?));
    let to_start = median_ms(
        done.jobs
            .iter()
            .filter_map(|j| Some(j.started_at?.duration_since(j.dispatched_at?))),
    );
    let first = median_ms(by_start.iter().take(100).filter_map(running));
    let last = median_ms(by_start.iter().rev().take(100).filter_map(running));
    baton.stop();
    let usage = baton.firestore_usage(&["tick", "planner", "executor"])?;
    println!("run_tables: {jobs} tables");
    println!("run_concurrency: {concurrency} jobs");
    println!("run_apply_catalog: {:.1} s", applied.as_secs_f64());
    println!("run_plan_frozen: {planning:.0} ms");
    println!("run_wall: {:.1} s", wall.as_secs_f64());
    println!(
        "run_jobs_per_second: {:.1} jobs/s",
        jobs as f64 / wall.as_secs_f64()
    );
    println!("run_attempts: {attempts} attempts");
    println!("run_dispatch_to_start_p50: {to_start:.0} ms");
    println!("run_job_first_100_p50: {first:.0} ms");
    println!("run_job_last_100_p50: {last:.0} ms");
    println!(
        "firestore_reads_per_job: {:.1} reads",
        usage.reads as f64 / jobs as f64
    );
    println!(
        "firestore_writes_per_job: {:.1} writes",
        usage.writes as f64 / jobs as f64
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let plan_tables: usize = arg("--plan-tables").map_or(Ok(10_000), |v| v.parse())?;
    let run_tables: usize = arg("--run-tables").map_or(Ok(1_000), |v| v.parse())?;
    let concurrency: u32 = arg("--concurrency").map_or(Ok(10), |v| v.parse())?;
    bench_plan(plan_tables, 9)?;
    let stack = Stack::load()?;
    bench_push(&stack, 100).await?;
    bench_latency(&stack, 10, 10).await?;
    bench_run(&stack, run_tables, concurrency).await?;
    Ok(())
}
