//! The runs benchmark, each figure on its own line as `name: value unit`:
//!
//! - planning a 10,000-table run in the pure core: `lifecycle::plan_run`, what the planner
//!   does between reading the tables and writing the jobs (conditions, graph, priorities,
//!   job documents), median of several;
//! - the dispatch latency on the local stack, from a job's completion (its `finished_at`,
//!   written by the executor) to its child's dispatch published, over chains whose children
//!   never wait for a slot, split into the executor's share, Pub/Sub's transport and the
//!   planner's share; and beside it the Pub/Sub emulator's own publish-to-push delay;
//! - a job's end seen: parents held running by the fault proxy for 2, 10 and 60 s, from
//!   the end as BigQuery reports it to the executor's record of it and to the child's
//!   dispatch published;
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
use baton_tests::faults::{Fault, FaultyBigQuery};
use baton_tests::relay::Delivery;
use baton_tests::{Baton, Options, Stack, first_run_id, serve_on_loopback};

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

/// The first delivery of each message a relay received, by what it is about: the event and
/// the table (`job_finished shop.orders`, `run_query shop.orders`).
fn first_deliveries(relay: &baton_tests::relay::Relay) -> BTreeMap<String, Delivery> {
    let mut first = BTreeMap::new();
    for delivery in relay.deliveries() {
        let key = format!(
            "{} {}",
            delivery.payload["event"].as_str().unwrap_or_default(),
            delivery.payload["table"].as_str().unwrap_or_default()
        );
        first.entry(key).or_insert(delivery);
    }
    first
}

/// Milliseconds from `from` to `to`.
fn ms_between(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64() * 1e3
}

/// Prints `name_p50`, `name_p99` and `name_max` of some figures in milliseconds.
fn print_spread(name: &str, mut figures: Vec<f64>) {
    figures.sort_by(f64::total_cmp);
    println!("{name}_p50: {:.0} ms", percentile(&figures, 50.0));
    println!("{name}_p99: {:.0} ms", percentile(&figures, 99.0));
    println!(
        "{name}_max: {:.0} ms",
        figures.last().copied().unwrap_or_default()
    );
}

/// Dispatch latency: `chains` chains of `length` tables under a cap that fits them all, so
/// a child is dispatched as soon as the planner hears its parent finished. Split by the
/// relays' record of each push (when Pub/Sub published it, when it arrived):
/// - end to end: the parent's end (`finished_at`, written by the executor) to the child's
///   dispatch published (the `run_query` message's publish time: the claim committed);
/// - the executor's share: its end written to its `job_finished` published;
/// - transport: `job_finished` published to its push received (the emulator's part, which
///   production Pub/Sub replaces);
/// - the planner's share: the push received to the child's `run_query` published, every
///   commit on the way included (settling the parent, queueing the child, claiming its slot).
///
/// Returns the four spreads' samples in that order.
async fn bench_latency(
    stack: &Stack,
    round: usize,
    chains: usize,
    length: usize,
) -> anyhow::Result<[Vec<f64>; 4]> {
    let mut baton = Baton::start(stack, &format!("bench-latency-{round}")).await?;
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
    let finished_events = first_deliveries(&baton.relays.planner);
    let dispatches = first_deliveries(&baton.relays.executor);
    let (mut end_to_end, mut executor, mut transport, mut planner) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for job in &done.jobs {
        let Some(parent) = job.parents.first() else {
            continue;
        };
        let parent_job = done
            .jobs
            .iter()
            .find(|j| &j.table == parent)
            .expect("a parent of the run");
        let finished = &finished_events[&format!("job_finished {parent}")];
        let dispatched = &dispatches[&format!("run_query {}", job.table)];
        let (Some(ended), Some(told), Some(sent)) = (
            parent_job.finished_at,
            finished.published_at,
            dispatched.published_at,
        ) else {
            anyhow::bail!("a time is missing for {}", job.table);
        };
        end_to_end.push(ms_between(ended, sent));
        executor.push(ms_between(ended, told));
        transport.push(ms_between(told, finished.received_at));
        planner.push(ms_between(finished.received_at, sent));
    }
    baton.stop();
    Ok([end_to_end, executor, transport, planner])
}

/// The dispatch latency over `rounds` runs of the chains. The emulators are JVMs, slow until
/// their code is compiled hot (which production's Firestore and Pub/Sub never are): each
/// round's planner share is printed, and the split of the later half of the rounds, pooled.
async fn bench_dispatch(stack: &Stack, rounds: usize) -> anyhow::Result<()> {
    let mut warm: [Vec<f64>; 4] = Default::default();
    for round in 1..=rounds {
        let figures = bench_latency(stack, round, 10, 10).await?;
        let mut planner = figures[3].clone();
        planner.sort_by(f64::total_cmp);
        println!(
            "dispatch_round_{round}_planner_share: p50 {:.0} ms, p99 {:.0} ms",
            percentile(&planner, 50.0),
            percentile(&planner, 99.0)
        );
        if round > rounds / 2 {
            for (pool, more) in warm.iter_mut().zip(figures) {
                pool.extend(more);
            }
        }
    }
    let [end_to_end, executor, transport, planner] = warm;
    println!("dispatch_samples: {} children", end_to_end.len());
    print_spread("dispatch_end_to_end", end_to_end);
    print_spread("dispatch_executor_share", executor);
    print_spread("dispatch_transport", transport);
    print_spread("dispatch_planner_share", planner);
    Ok(())
}

/// A job's end seen: `samples` parents for each hold, each held running by the fault proxy
/// for that long from its insert, each with one child; from the end as BigQuery reports it
/// to the child's dispatch published. The emulator keeps two pushes in flight per
/// subscription, so the parents run two at a time.
async fn bench_job_end(stack: &Stack, holds: &[u64], samples: usize) -> anyhow::Result<()> {
    type Ends = Arc<std::sync::Mutex<BTreeMap<String, (Instant, Timestamp)>>>;
    let bigquery = FaultyBigQuery::start(stack.var("BIGQUERY_EMULATOR_HOST")?).await?;
    let ends: Ends = Arc::default();
    let noted = ends.clone();
    bigquery.rule(move |job_id| {
        // `…_je_h10_p3_…`: held 10 s.
        let (_, rest) = job_id.split_once("_je_h")?;
        let (hold, rest) = rest.split_once('_')?;
        if !rest.starts_with('p') {
            return None;
        }
        let hold = Duration::from_secs(hold.parse().ok()?);
        let mut ends = noted.lock().expect("not poisoned");
        let (until, _) = ends.entry(job_id.to_string()).or_insert_with(|| {
            (
                Instant::now() + hold,
                Timestamp::now() + jiff::SignedDuration::try_from(hold).expect("short"),
            )
        });
        Some(Fault::RunningUntil(*until))
    });
    let options = Options::default().env("BIGQUERY_EMULATOR_HOST", &bigquery.url);
    let mut baton = Baton::start_with(stack, "bench-job-end", options).await?;
    // One frequency per hold, so that each hold's run has its own pairs only.
    let mut frequencies = Vec::new();
    let mut tables = Vec::new();
    for &hold in holds {
        let name = format!("hold{hold}");
        frequencies.push(Frequency {
            concurrency: Some(u32::try_from(samples * 2)?),
            ..Frequency::every(&name, 86_400)
        });
        for i in 0..samples {
            let parent = id("je", &format!("h{hold}_p{i}"));
            let child = id("je", &format!("h{hold}_c{i}"));
            let sql = format!("SELECT x FROM {parent}");
            for (me, sql) in [(parent, "SELECT 1 AS x".to_string()), (child, sql)] {
                tables.push(Table {
                    frequency: Some(name.clone()),
                    ..Table::query(&me, &sql)
                });
            }
        }
    }
    baton
        .apply(CatalogSpec {
            frequencies,
            tables,
        })
        .await?;
    let mut all = Vec::new();
    for &hold in holds {
        let report = baton
            .client
            .start_run(&baton_service::api::StartRunRequest {
                frequency: Some(format!("hold{hold}")),
                ..Default::default()
            })
            .await?;
        let run_id = report.run.id;
        let done = baton
            .wait_for_run(&run_id, Duration::from_secs(hold * samples as u64 + 300))
            .await?;
        anyhow::ensure!(
            done.run.state == RunState::Succeeded,
            "the job-end run ended {}",
            done.run.state
        );
        let dispatches = first_deliveries(&baton.relays.executor);
        let ends = ends.lock().expect("not poisoned").clone();
        let (mut to_dispatch, mut recorded) = (Vec::new(), Vec::new());
        for job in done.jobs.iter().filter(|j| !j.parents.is_empty()) {
            let parent = done
                .jobs
                .iter()
                .find(|j| Some(&j.table) == job.parents.first())
                .expect("the parent's job");
            let (_, ended) = ends[parent.bigquery_job_id.as_deref().expect("its BigQuery job")];
            let sent = dispatches[&format!("run_query {}", job.table)]
                .published_at
                .expect("a publish time");
            to_dispatch.push(ms_between(ended, sent));
            recorded.push(ms_between(ended, parent.finished_at.expect("ended")));
        }
        all.extend(to_dispatch.iter().copied());
        println!("job_end_{hold}s_samples: {} jobs", to_dispatch.len());
        // The first part: BigQuery's end to the executor's record of it.
        print_spread(&format!("job_end_{hold}s_recorded"), recorded);
        print_spread(&format!("job_end_{hold}s_to_dispatch"), to_dispatch);
    }
    baton.stop();
    print_spread("job_end_to_dispatch", all);
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
    let parts = arg("--parts").unwrap_or_else(|| "plan,push,dispatch,job-end,run".into());
    let parts: Vec<&str> = parts.split(',').collect();
    let stack = Stack::load()?;
    let holds: Vec<u64> = arg("--holds")
        .unwrap_or_else(|| "2,10,60".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let samples: usize = arg("--job-end-samples").map_or(Ok(6), |v| v.parse())?;
    let dispatch_rounds: usize = arg("--dispatch-rounds").map_or(Ok(8), |v| v.parse())?;
    if parts.contains(&"plan") {
        bench_plan(plan_tables, 9)?;
    }
    if parts.contains(&"push") {
        bench_push(&stack, 100).await?;
    }
    if parts.contains(&"dispatch") {
        bench_dispatch(&stack, dispatch_rounds).await?;
    }
    if parts.contains(&"job-end") {
        bench_job_end(&stack, &holds, samples).await?;
    }
    if parts.contains(&"run") {
        bench_run(&stack, run_tables, concurrency).await?;
    }
    Ok(())
}
