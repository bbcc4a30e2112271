//! The demo: Baton's main job end to end on the local stack. It starts the five services,
//! loads the example catalog (`tests/catalogs/shop`) with the `baton` command, ticks as Cloud
//! Scheduler would, follows the run as it goes, and prints what it did. Run it with
//! `tests/demo.sh`, which brings the stack up (and down) around it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use baton_core::run::Job;
use baton_core::state::{JobState, RunState};
use baton_tests::{Baton, Options, Stack, repo_root};

#[tokio::main]
async fn main() -> ExitCode {
    match demo().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn demo() -> anyhow::Result<bool> {
    let catalog = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/catalogs/shop"));
    println!("Baton demo: the catalog in {}\n", catalog.display());

    let stack = Stack::load()?;
    step("starting the services: api, tick, planner, executor, importer");
    let mut baton = Baton::start_with(&stack, "demo", Options::default().landing()).await?;
    println!(
        "  project {}; logs in {}",
        baton.project,
        baton.log_dir.display()
    );
    for (name, url) in [
        ("api", &baton.urls.api),
        ("tick", &baton.urls.tick),
        ("planner", &baton.urls.planner),
        ("executor", &baton.urls.executor),
        ("importer", &baton.urls.importer),
    ] {
        println!("  {name:<9} {url}");
    }
    println!(
        "  every service verifies its callers' tokens against the keys at {}",
        baton.issuer.jwks_url
    );
    println!(
        "  {} signed in to the api first (a Google ID token of the stack's issuer), so is its \
         admin, and made an API token for the baton command (BATON_TOKEN)",
        baton.admin
    );

    step("the shop's PostgreSQL database, and the connection shop_db to it");
    baton.shop_database(&stack).await?;
    for c in baton.client.connections().await?.connections {
        println!(
            "  {} ({}): {}",
            c.name,
            c.kind.name(),
            c.address.unwrap_or_default()
        );
    }

    step(&format!("baton apply --yes {}", catalog.display()));
    let output = baton
        .cli()
        .arg("apply")
        .arg("--yes")
        .arg(&catalog)
        .output()?;
    print_indented(&String::from_utf8_lossy(&output.stdout));
    print_indented(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("baton apply failed");
    }

    step("baton upload refunds-2026-11-21.csv --table shop.refunds (a signed URL, then a PUT)");
    let (said, load) = baton.shop_refunds().await?;
    print_indented(&said);
    println!(
        "  Cloud Storage told the importer; it claimed the file and loaded it: {} file(s), {} \
         row(s), {}",
        load.files,
        load.rows.unwrap_or_default(),
        serde_json::to_value(load.state)?.as_str().unwrap_or("?")
    );
    for error in &load.errors {
        println!("  {error}");
    }

    step("POST /tick with an OIDC token, as Cloud Scheduler does every minute");
    let report = baton.tick().await?;
    let mut run_ids = Vec::new();
    for run in report["runs"].as_array().into_iter().flatten() {
        println!(
            "  frequency {}: run {} for {} ({})",
            run["frequency"].as_str().unwrap_or("?"),
            run["run_id"].as_str().unwrap_or("?"),
            run["instant"].as_str().unwrap_or("?"),
            run["outcome"].as_str().unwrap_or("?")
        );
        if run["outcome"] != "inactive" {
            run_ids.push(run["run_id"].as_str().unwrap_or_default().to_string());
        }
    }
    let mut all_succeeded = true;
    for run_id in &run_ids {
        all_succeeded &= follow(&baton, run_id).await?;
    }
    step("stopping the services");
    baton.stop();
    Ok(all_succeeded)
}

/// Prints each job's changes of state until the run ends, then the run's story.
async fn follow(baton: &Baton, run_id: &str) -> anyhow::Result<bool> {
    step(&format!("following run {run_id}"));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut seen: BTreeMap<String, JobState> = BTreeMap::new();
    let response = loop {
        let response = baton.client.run(run_id).await?;
        for job in &response.jobs {
            let table = job.table.to_string();
            if seen.get(&table) != Some(&job.state) {
                let attempt = if job.attempt > 1 {
                    format!(" (attempt {})", job.attempt)
                } else {
                    String::new()
                };
                println!(
                    "  {:>6.2}s  {table:<32} {}{attempt}",
                    started.elapsed().as_secs_f64(),
                    job.state
                );
                seen.insert(table, job.state);
            }
        }
        if response.run.state.is_terminal() {
            break response;
        }
        if Instant::now() > deadline {
            bail!(
                "run {run_id} did not end within 5 minutes; logs in {}",
                baton.log_dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let run = &response.run;
    let took = match (run.planned_at, run.finished_at) {
        (Some(a), Some(b)) => format!(" in {:.1}s", b.duration_since(a).as_secs_f64()),
        _ => String::new(),
    };
    step(&format!("run {} {}{took}", run.id, run.state));
    if let Some(error) = &run.error {
        println!("  {error}");
    }
    let mut jobs: Vec<&Job> = response.jobs.iter().collect();
    jobs.sort_by_key(|j| (j.started_at.is_none(), j.started_at, j.table.clone()));
    println!(
        "  {:<3} {:<32} {:<10} {:>5} {:>7}  BigQuery job",
        "#", "table", "state", "rows", "took"
    );
    for (n, job) in jobs.iter().enumerate() {
        let rows = job
            .statistics
            .as_ref()
            .and_then(|s| s.destination_rows)
            .map_or_else(|| "-".to_string(), |r| r.to_string());
        let took = match (job.started_at, job.finished_at) {
            (Some(a), Some(b)) => format!("{:.2}s", b.duration_since(a).as_secs_f64()),
            _ => "-".to_string(),
        };
        let after = if job.parents.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = job.parents.iter().map(ToString::to_string).collect();
            format!("  (after {})", names.join(", "))
        };
        println!(
            "  {:<3} {:<32} {:<10} {rows:>5} {took:>7}  {}{after}",
            n + 1,
            job.table.to_string(),
            job.state,
            job.bigquery_job_id.as_deref().unwrap_or("-")
        );
        if let Some(error) = &job.error {
            println!("      {error}");
        }
    }
    if run.state != RunState::Succeeded {
        return Ok(false);
    }
    // Extracts, read back through their signed URLs as another tool would.
    for job in &jobs {
        let Some(extract) = &job.extract else {
            continue;
        };
        step(&format!(
            "extract of {}: {} file(s), URLs valid until {}",
            job.table,
            extract.files.len(),
            extract.urls_expire_at
        ));
        for file in &extract.files {
            println!("  {} ({} bytes)", file.uri, file.bytes);
            println!("  {}", file.url);
            let text = reqwest::get(&file.url)
                .await
                .and_then(reqwest::Response::error_for_status)
                .context("fetching the file through its signed URL")?
                .text()
                .await?;
            for line in text.lines().take(5) {
                println!("    {line}");
            }
        }
    }
    // The table that finished last (the end of a chain), as BigQuery holds it.
    if let Some(last) = jobs.iter().max_by_key(|j| j.finished_at) {
        let table = &last.table;
        step(&format!("SELECT * FROM {table}"));
        let rows = baton
            .warehouse
            .query_rows(&format!(
                "SELECT * FROM `{}.{table}` LIMIT 10",
                baton.project
            ))
            .await
            .context("reading the table back")?;
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            println!("  {}", cells.join("  "));
        }
    }
    Ok(true)
}

fn step(text: &str) {
    println!("\n▸ {text}");
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("  {line}");
    }
}
