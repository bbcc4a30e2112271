//! `baton`: the command-line client of Baton's API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use baton_cli::Client;
use baton_core::catalog::apply::Action;
use baton_core::catalog::folder;
use baton_core::sql::{Defaults, analyze};
use baton_service::api::{ApplyRequest, BackfillRequest, StartRunRequest};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Baton: BigQuery pipelines from plain SQL"
)]
struct Cli {
    /// The API's URL.
    #[arg(
        long,
        env = "BATON_API_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    api: String,
    /// A bearer token for the API: where Cloud Run's IAM guards it, an identity token
    /// (`BATON_TOKEN=$(gcloud auth print-identity-token) baton …`).
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a catalog folder (baton.toml and .sql files) into Baton.
    Apply {
        /// The catalog folder.
        dir: PathBuf,
        /// Delete stored tables and frequencies the folder does not have.
        #[arg(long)]
        prune: bool,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// What SQL files read and write, one JSON object per file per line (no API needed).
    Deps {
        /// Qualifies names written without a project.
        #[arg(long)]
        project: Option<String>,
        /// Qualifies names written without a dataset.
        #[arg(long)]
        dataset: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Runs: the latest, one with its jobs; start, resume, cancel.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Backfills: a frequency run over past instants, one after another.
    Backfill {
        #[command(subcommand)]
        command: BackfillCommand,
    },
    /// Connections: credentials of what Baton talks to (a Slack webhook for alerts).
    Connections {
        #[command(subcommand)]
        command: ConnectionsCommand,
    },
    /// Checks SQL with a BigQuery dry run: its result's columns and the bytes it would process.
    DryRun {
        /// A stored table: its SQL, or FILE's with the table's settings.
        #[arg(long, required_unless_present = "file")]
        table: Option<baton_core::catalog::TableId>,
        /// Where FILE's unqualified names are (the table's dataset by default).
        #[arg(long)]
        dataset: Option<String>,
        /// A .sql file not applied yet.
        file: Option<PathBuf>,
    },
    /// What BigQuery jobs cost per day (UTC), by table, user, group or frequency.
    Costs {
        #[arg(long, default_value = "table", value_parser = ["table", "user", "group", "frequency"])]
        by: String,
        /// The first day (default: 29 days before --to).
        #[arg(long)]
        from: Option<jiff::civil::Date>,
        /// The last day (default: today).
        #[arg(long)]
        to: Option<jiff::civil::Date>,
    },
}

#[derive(Subcommand)]
enum ConnectionsCommand {
    /// Every connection (never its secret).
    List,
    /// Creates or replaces connection NAME; its secret (a Slack webhook's URL) is read from
    /// standard input, so that it stays out of the shell's history.
    Set {
        name: String,
        #[arg(long, value_parser = ["slack"])]
        kind: String,
        #[arg(long)]
        description: Option<String>,
    },
}

#[derive(Subcommand)]
enum BackfillCommand {
    /// Starts a backfill of FREQUENCY's instants from FROM to TO (RFC 3339 times).
    Start {
        frequency: String,
        #[arg(long)]
        from: jiff::Timestamp,
        #[arg(long)]
        to: jiff::Timestamp,
    },
    /// A backfill and its runs.
    Show { id: String },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// The latest runs.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One run and its jobs.
    Show {
        run_id: String,
        /// Wait until the run ends (exit 1 if it does not succeed).
        #[arg(long)]
        wait: bool,
    },
    /// Starts a run now: of a frequency, or of tables (and, with --downstream, all they feed).
    Start {
        #[arg(long, conflicts_with = "table", required_unless_present = "table")]
        frequency: Option<String>,
        /// dataset.table; may be given several times.
        #[arg(long)]
        table: Vec<baton_core::catalog::TableId>,
        #[arg(long, requires = "table")]
        downstream: bool,
        /// An idempotency key: asking again with it finds the same run.
        #[arg(long)]
        key: Option<String>,
        /// Wait until the run ends (exit 1 if it does not succeed).
        #[arg(long)]
        wait: bool,
    },
    /// Resumes a failed run: what did not succeed gets a new attempt.
    Resume {
        run_id: String,
        #[arg(long)]
        wait: bool,
    },
    /// Cancels a run: nothing more starts, running BigQuery jobs are stopped.
    Cancel { run_id: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    match execute(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let client = Client::new(&cli.api).with_token(cli.token);
    match cli.command {
        Command::Apply {
            dir,
            prune,
            dry_run,
        } => apply(&client, &dir, prune, dry_run).await,
        Command::Deps {
            project,
            dataset,
            files,
        } => Ok(deps(project, dataset, &files)),
        Command::Runs {
            command: RunsCommand::List { limit },
        } => list_runs(&client, limit).await,
        Command::Runs {
            command: RunsCommand::Show { run_id, wait },
        } => show_run(&client, &run_id, wait).await,
        Command::Runs {
            command:
                RunsCommand::Start {
                    frequency,
                    table,
                    downstream,
                    key,
                    wait,
                },
        } => {
            let request = StartRunRequest {
                frequency,
                tables: table,
                downstream,
                idempotency_key: key,
                requested_by: std::env::var("USER").ok(),
            };
            match client.start_run(&request).await {
                Ok(change) => {
                    let verb = if change.changed { "started" } else { "exists:" };
                    println!("{verb} run {} ({})", change.run.id, change.run.state);
                    if wait {
                        show_run(&client, &change.run.id, true).await
                    } else {
                        Ok(ExitCode::SUCCESS)
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Runs {
            command: RunsCommand::Resume { run_id, wait },
        } => {
            let change = client.resume(&run_id).await?;
            println!(
                "resumed run {} (resume {})",
                change.run.id, change.run.resumes
            );
            if wait {
                show_run(&client, &run_id, true).await
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Runs {
            command: RunsCommand::Cancel { run_id },
        } => {
            let change = client.cancel(&run_id).await?;
            println!("run {} {}", change.run.id, change.run.state);
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill {
            command:
                BackfillCommand::Start {
                    frequency,
                    from,
                    to,
                },
        } => {
            let backfill = client
                .start_backfill(&BackfillRequest {
                    frequency,
                    from,
                    to,
                    requested_by: std::env::var("USER").ok(),
                })
                .await?;
            println!(
                "backfill {}: {} instants",
                backfill.id,
                backfill.instants.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Connections {
            command: ConnectionsCommand::List,
        } => {
            for c in client.connections().await?.connections {
                println!(
                    "{:<24} {:<8} {}",
                    c.name,
                    format!("{:?}", c.kind).to_lowercase(),
                    c.description.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Connections {
            command:
                ConnectionsCommand::Set {
                    name,
                    kind,
                    description,
                },
        } => {
            let mut secret = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut secret)?;
            let kind = match kind.as_str() {
                "slack" => baton_core::connections::ConnectionKind::Slack,
                other => anyhow::bail!("no connection kind {other}"),
            };
            let request = baton_service::api::PutConnectionRequest {
                kind,
                secret: secret.trim().to_string(),
                description,
            };
            let stored = client.put_connection(&name, &request).await?;
            println!("stored connection {}", stored.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::DryRun {
            table,
            dataset,
            file,
        } => {
            let sql = match &file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                ),
                None => None,
            };
            let found = client
                .dry_run(&baton_service::api::DryRunRequest {
                    table,
                    sql,
                    dataset,
                    ..Default::default()
                })
                .await?;
            let report = &found.report;
            println!(
                "{} bytes processed, about {:.4} on demand",
                report.bytes_processed, report.estimated_cost
            );
            for column in &report.columns {
                println!("  {:<40} {}", column.name, column.field_type);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Costs { by, from, to } => {
            let costs = client.costs(&by, from, to).await?;
            println!(
                "{:<10}  {:<40}  {:>6}  {:>12}  {:>16}",
                "day",
                costs.by.name(),
                "jobs",
                "cost",
                "bytes billed"
            );
            for row in &costs.rows {
                println!(
                    "{:<10}  {:<40}  {:>6}  {:>12.4}  {:>16}",
                    row.day, row.value, row.jobs, row.cost, row.bytes_billed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill {
            command: BackfillCommand::Show { id },
        } => {
            let backfill = client.backfill(&id).await?;
            println!(
                "backfill {} of {}: {:?}, {} of {} runs",
                backfill.id,
                backfill.frequency,
                backfill.state,
                backfill.runs.len(),
                backfill.instants.len()
            );
            for run in &backfill.runs {
                println!("  {run}");
            }
            if let Some(error) = &backfill.error {
                println!("  {error}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn apply(
    client: &Client,
    dir: &std::path::Path,
    prune: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let catalog = match folder::load(dir) {
        Ok(catalog) => catalog,
        Err(problems) => {
            eprintln!(
                "baton: {} has {} problem(s):",
                dir.display(),
                problems.len()
            );
            for p in problems {
                eprintln!("  {p}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let response = client
        .apply(&ApplyRequest {
            catalog,
            prune,
            dry_run,
        })
        .await?;
    for warning in &response.warnings {
        eprintln!("warning: {warning}");
    }
    for change in &response.changes {
        let word = match change.action {
            Action::Created => "create",
            Action::Updated => "update",
            Action::Unchanged => "keep",
            Action::Deleted => "delete",
        };
        let parents = change
            .id
            .parse()
            .ok()
            .and_then(|id| response.dependencies.get(&id))
            .filter(|p| !p.is_empty())
            .map(|p| {
                let names: Vec<String> = p.iter().map(ToString::to_string).collect();
                format!("  ← {}", names.join(", "))
            })
            .unwrap_or_default();
        println!("{word:<7} {:<9} {}{parents}", change.kind, change.id);
    }
    let count = |a: Action| response.changes.iter().filter(|c| c.action == a).count();
    println!(
        "{}{} created, {} updated, {} deleted, {} unchanged",
        if dry_run { "dry run: " } else { "" },
        count(Action::Created),
        count(Action::Updated),
        count(Action::Deleted),
        count(Action::Unchanged)
    );
    Ok(ExitCode::SUCCESS)
}

/// One line of `baton deps`, its fields in this order.
#[derive(serde::Serialize)]
struct DepsLine<'a> {
    file: &'a std::path::Path,
    reads: Vec<String>,
    writes: Vec<String>,
    lenient: bool,
    /// What no reading can see (`EXECUTE IMMEDIATE` of computed SQL, `CALL`).
    unknowable: Vec<String>,
    error: Option<String>,
}

/// One line per file: `{"file", "reads", "writes", "lenient", "unknowable", "error"}`.
/// Exit 1 when any file could not be read.
fn deps(project: Option<String>, dataset: Option<String>, files: &[PathBuf]) -> ExitCode {
    let defaults = Defaults { project, dataset };
    let mut ok = true;
    for file in files {
        let mut line = DepsLine {
            file,
            reads: Vec::new(),
            writes: Vec::new(),
            lenient: false,
            unknowable: Vec::new(),
            error: None,
        };
        match std::fs::read_to_string(file) {
            Err(e) => line.error = Some(e.to_string()),
            Ok(text) => match analyze(&text, &defaults) {
                Ok(a) => {
                    line.reads = a.reads.into_iter().collect();
                    line.writes = a.writes.into_iter().collect();
                    line.lenient = a.lenient;
                    line.unknowable = a.unknowable;
                }
                Err(e) => line.error = Some(e.to_string()),
            },
        }
        ok &= line.error.is_none();
        println!(
            "{}",
            serde_json::to_string(&line).expect("a line serializes")
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn list_runs(client: &Client, limit: u32) -> anyhow::Result<ExitCode> {
    for run in client.runs(limit).await?.runs {
        println!(
            "{:<40} {:<10} {:>4} jobs  {}",
            run.id, run.state, run.job_count, run.instant
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_run(client: &Client, run_id: &str, wait: bool) -> anyhow::Result<ExitCode> {
    let mut response = client.run(run_id).await?;
    while wait && !response.run.state.is_terminal() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        response = client.run(run_id).await?;
    }
    let run = &response.run;
    println!(
        "run {} ({}) for {}: {}",
        run.id,
        run.frequency.as_deref().unwrap_or("chosen tables"),
        run.instant,
        run.state
    );
    if let Some(error) = &run.error {
        println!("  error: {error}");
    }
    for job in &response.jobs {
        let rows = job
            .statistics
            .as_ref()
            .and_then(|s| s.destination_rows)
            .map(|n| format!("{n} rows"))
            .unwrap_or_default();
        let why = job
            .error
            .clone()
            .or_else(|| {
                job.skipped_because
                    .as_ref()
                    .map(|t| format!("after {t} failed"))
            })
            .unwrap_or_default();
        println!(
            "  {:<40} {:<10} {rows}{why}",
            job.table.to_string(),
            job.state
        );
    }
    let ok = run.state == baton_core::state::RunState::Succeeded;
    Ok(if !wait || ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
