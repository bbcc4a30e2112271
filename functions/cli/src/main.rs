//! `baton`: the command-line client of Baton's API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::StreamExt;

use baton_cli::Client;
use baton_core::catalog::apply::Action;
use baton_core::catalog::folder;
use baton_core::sql::{Defaults, analyze};
use baton_service::api::{ApplyRequest, BackfillRequest, StartRunRequest};

// `check` and `graph` read thousands of files at once on every core: mimalloc allocates and
// frees them faster than the system's allocator and keeps fewer pages (README, Figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// An API token (`baton tokens create`) or a Google ID token, instead of what `baton
    /// login` kept: for CI pipelines, `BATON_TOKEN`.
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load a catalog folder (baton.toml and .sql files) into Baton: shows the plan (as
    /// `baton plan`), asks, applies. Without a terminal to ask on, `--yes` is required.
    Apply {
        /// The catalog folder.
        dir: PathBuf,
        /// Delete stored tables and frequencies the folder does not have.
        #[arg(long)]
        prune: bool,
        /// Show the plan, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply without asking (for pipelines).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// What applying a catalog folder would do to the deployed catalog, applying nothing:
    /// tables and frequencies added, changed and removed, dependencies gained and lost, the
    /// tables downstream of the changes, and a BigQuery dry run of each new or changed query.
    Plan {
        /// The catalog folder.
        dir: PathBuf,
        /// As `apply --prune`: stored tables and frequencies the folder lacks are removed.
        #[arg(long)]
        prune: bool,
    },
    /// Checks a catalog folder offline (no API, no credentials): every header and setting,
    /// every table's SQL, the dependencies it infers and their cycles. Problems print as
    /// `file:line:col: message`; the exit code is 1 when there is one.
    Check {
        /// The catalog folder.
        dir: PathBuf,
        /// The project the catalog is deployed to: names written with it are the catalog's
        /// own, other projects' are external.
        #[arg(long, env = "BATON_PROJECT")]
        project: Option<String>,
        /// Read every table's SQL, not only what changed since the last check.
        #[arg(long)]
        no_cache: bool,
    },
    /// Draws a catalog folder's graph (offline) or a run's (`--run`, from the API, coloured
    /// by state, with durations): DOT, Mermaid or SVG (laid out without Graphviz) on stdout.
    Graph {
        /// The catalog folder (not with `--run`).
        #[arg(required_unless_present = "run", conflicts_with = "run")]
        dir: Option<PathBuf>,
        /// A run's id: its jobs as they stand.
        #[arg(long)]
        run: Option<String>,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        /// Only this table (`dataset.table`) and what is around it.
        #[arg(long)]
        around: Option<String>,
        /// With `--around`: how many steps up and down (all when not given).
        #[arg(long, requires = "around")]
        depth: Option<u32>,
        /// With `--around`: only what it reads (`ancestors`) or what reads it (`descendants`).
        #[arg(long, value_enum, default_value = "both", requires = "around")]
        reach: GraphReach,
        /// The catalog's project, as for `check`.
        #[arg(long, env = "BATON_PROJECT")]
        project: Option<String>,
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
    /// Signs in and keeps the credential for the API in the user's config folder (mode 0600):
    /// with Google in the browser (BATON_OAUTH_CLIENT_ID, BATON_OAUTH_CLIENT_SECRET), renewed
    /// as it expires; or an API token pasted on standard input.
    Login {
        /// Read an API token from standard input instead.
        #[arg(long)]
        with_token: bool,
        /// The Google account to sign in with (a hint to the sign-in page).
        #[arg(long, conflicts_with = "with_token")]
        email: Option<String>,
    },
    /// Forgets the kept credential.
    Logout,
    /// Opens the operator's page in the browser, signed in as you: runs, a run's graph, a
    /// table's jobs and costs, the cost of each day. Prints the one-time link (valid 5
    /// minutes) and opens it unless `BATON_NO_BROWSER` is set.
    Page {
        /// A run to open at.
        #[arg(long, conflicts_with_all = ["table", "costs"])]
        run: Option<String>,
        /// A table (`dataset.table`) to open at: its jobs in every run.
        #[arg(long, conflicts_with = "costs")]
        table: Option<String>,
        /// Open at the costs.
        #[arg(long)]
        costs: bool,
    },
    /// Who the API says you are: email, role, groups.
    Whoami,
    /// API tokens: for CI pipelines and machines; each carries its owner's rights.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Users (admins only): enable the people who signed in, set roles and groups.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Groups: who owns which tables (a table's `group`).
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Messages Pub/Sub gave up delivering after its tries: list them, replay them once the
    /// cause is mended, or drop them.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
    /// The audit trail: every change, who made it and when, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Entries older than this entry's id (for paging).
        #[arg(long)]
        before: Option<String>,
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
    /// Uploads a file to a load table through a signed URL; the importer loads it with the
    /// table's next batch.
    Upload {
        /// The file to upload.
        file: PathBuf,
        /// The load table.
        #[arg(long)]
        table: baton_core::catalog::TableId,
    },
    /// Loads what waits for a load table now (`--force`), held files too.
    Load {
        /// Load now, whatever the batching policy says.
        #[arg(long, required = true)]
        force: bool,
        table: baton_core::catalog::TableId,
    },
    /// A load table's waiting files and last loads.
    Loads { table: baton_core::catalog::TableId },
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphReach {
    Ancestors,
    Descendants,
    Both,
}

#[derive(Subcommand)]
enum DeadLettersCommand {
    /// The dead letters, newest first: where each failed, what it is about, the last error.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Publishes dead letters again to the topics they came from, then drops them (admins).
    Replay {
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Drops dead letters without delivering them (admins).
    Drop {
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Creates a token and prints it, this once.
    Create {
        name: String,
        /// It stops working after this many days (never, when absent).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Your tokens (an admin's: everyone's), never their secrets.
    List,
    /// Revokes a token by its id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Every user.
    List,
    /// Lets a user in.
    Enable { email: String },
    /// Shuts a user out (their tokens stop working too).
    Disable { email: String },
    /// Sets a user's role.
    Role {
        email: String,
        #[arg(value_parser = ["admin", "member", "reader"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// Every group and its members.
    List,
    /// Creates a group (or describes it anew).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Deletes a group that has no members.
    Delete { name: String },
    /// Adds a user to a group.
    Add { group: String, email: String },
    /// Takes a user out of a group.
    Remove { group: String, email: String },
}

#[derive(Subcommand)]
enum ConnectionsCommand {
    /// Every connection (never its secret).
    List,
    /// Creates or replaces connection NAME; its secret (a Slack webhook's URL, a database's
    /// `postgres://user:password@host:5432/db?sslmode=require` or `mysql://…`) is read from
    /// standard input, so that it stays out of the shell's history.
    Set {
        name: String,
        #[arg(long, value_parser = ["slack", "postgres", "mysql"])]
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
        /// How many of its runs may be open at once (1 to 10): runs of later instants start
        /// before earlier ones end. Keep 1 for tables that read their own earlier state.
        #[arg(long, default_value_t = 1)]
        parallel: u32,
    },
    /// A backfill and its runs.
    Show { id: String },
    /// Cancels a backfill: no more of its runs start, and those in progress are cancelled.
    Cancel { id: String },
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
    /// Follows a run live: a bar of its jobs done, the running jobs with their elapsed time,
    /// an estimate of its end from earlier runs; then the run as `show` prints it. Exit 1
    /// unless it succeeded.
    Follow {
        run_id: String,
        /// Seconds between looks at the run.
        #[arg(long, default_value_t = 1.0)]
        every: f64,
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
    // The token given wins; else what `baton login` kept for this API.
    if let Command::Login { with_token, email } = &cli.command {
        return login(&cli.api, *with_token, email.as_deref()).await;
    }
    let token = match cli.token.clone() {
        Some(token) => Some(token),
        None => baton_cli::credentials::current(&cli.api).await?,
    };
    let client = Client::new(&cli.api).with_token(token);
    match cli.command {
        Command::Login { .. } => unreachable!("handled above"),
        Command::Logout => {
            if baton_cli::credentials::forget()? {
                println!("forgot the kept credential");
            } else {
                println!("no credential was kept");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Upload { file, table } => upload(&client, &file, &table).await,
        Command::Load { force: _, table } => {
            let forced = client.force_load(&table).await?;
            println!(
                "asked the importer to load {}: {} file(s) waiting or held",
                forced.table, forced.files
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Loads { table } => show_loads(&client, &table).await,
        Command::Page { run, table, costs } => {
            let to = match (run, table) {
                (Some(run), _) => format!("/ui/runs/{run}"),
                (None, Some(table)) => format!("/ui/tables/{table}"),
                (None, None) if costs => "/ui/costs".to_string(),
                (None, None) => "/ui".to_string(),
            };
            let link = client.page_link(Some(&to)).await?;
            let url = format!("{}{}", client.base().trim_end_matches('/'), link.path);
            println!("{url}");
            eprintln!(
                "a one-time link, until {}: it signs the browser that opens it in as you, for 12 hours",
                link.expires_at.strftime("%H:%M:%S UTC")
            );
            if std::env::var_os("BATON_NO_BROWSER").is_none() {
                let _ = webbrowser::open(&url);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Whoami => {
            let me = client.me().await?;
            let groups: Vec<&str> = me.groups.iter().map(String::as_str).collect();
            println!(
                "{} ({}{}), by {}{}",
                me.email,
                me.role,
                if me.enabled { "" } else { ", not enabled yet" },
                me.via,
                if groups.is_empty() {
                    String::new()
                } else {
                    format!("; groups {}", groups.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Tokens { command } => tokens(&client, command).await,
        Command::DeadLetters { command } => dead_letters(&client, command).await,
        Command::Users { command } => users(&client, command).await,
        Command::Groups { command } => groups(&client, command).await,
        Command::Audit { limit, before } => {
            for entry in client.audit(limit, before.as_deref()).await?.entries {
                let summary = if entry.summary.is_null() {
                    String::new()
                } else {
                    format!("  {}", entry.summary)
                };
                println!(
                    "{}  {:<28} {:<16} {}  ({}){summary}",
                    entry.at.round(jiff::Unit::Second).unwrap_or(entry.at),
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.via
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            dir,
            prune,
            dry_run,
            yes,
        } => apply(&client, &dir, prune, dry_run, yes).await,
        Command::Plan { dir, prune } => match load_folder(&dir) {
            Ok(catalog) => {
                show_plan(&client, &catalog, prune).await?;
                Ok(ExitCode::SUCCESS)
            }
            Err(code) => Ok(code),
        },
        Command::Check {
            dir,
            project,
            no_cache,
        } => Ok(check(&dir, project.as_deref(), !no_cache)),
        Command::Deps {
            project,
            dataset,
            files,
        } => Ok(deps(project, dataset, &files)),
        Command::Graph {
            dir,
            run,
            format,
            around,
            depth,
            reach,
            project,
        } => {
            let project = project.as_deref().unwrap_or("baton-check");
            let graph = match (&dir, &run) {
                (Some(dir), _) => match plan_folder(dir, project, true).map(|(plan, _)| plan) {
                    Ok(plan) => baton_core::graph::Graph::of_catalog(&plan.dependencies),
                    Err(code) => return Ok(code),
                },
                (None, Some(run_id)) => {
                    let response = client.run(run_id).await?;
                    baton_core::graph::Graph::of_run(&response.jobs, jiff::Timestamp::now())
                }
                (None, None) => unreachable!("clap requires a folder or --run"),
            };
            let graph = match &around {
                None => graph,
                Some(table) => {
                    let reach = match reach {
                        GraphReach::Ancestors => baton_core::graph::Reach::Ancestors,
                        GraphReach::Descendants => baton_core::graph::Reach::Descendants,
                        GraphReach::Both => baton_core::graph::Reach::Both,
                    };
                    match graph.around(table, depth, reach) {
                        Ok(graph) => graph,
                        Err(_) => {
                            eprintln!("baton: {table} is not in the graph");
                            return Ok(ExitCode::FAILURE);
                        }
                    }
                }
            };
            let text = match format {
                GraphFormat::Dot => graph.dot(),
                GraphFormat::Mermaid => graph.mermaid(),
                GraphFormat::Svg => graph.svg(),
            };
            use std::io::Write;
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs {
            command: RunsCommand::List { limit },
        } => list_runs(&client, limit).await,
        Command::Runs {
            command: RunsCommand::Show { run_id, wait },
        } => show_run(&client, &run_id, wait).await,
        Command::Runs {
            command: RunsCommand::Follow { run_id, every },
        } => follow_run(&client, &run_id, every).await,
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
                    parallel,
                },
        } => {
            let backfill = client
                .start_backfill(&BackfillRequest {
                    frequency,
                    from,
                    to,
                    parallel: (parallel != 1).then_some(parallel),
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
                    c.kind.name(),
                    [c.address, c.description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("  ")
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
                "postgres" => baton_core::connections::ConnectionKind::Postgres,
                "mysql" => baton_core::connections::ConnectionKind::Mysql,
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
            let at_once = match backfill.parallel {
                1 => String::new(),
                n => format!(", {n} at once"),
            };
            println!(
                "backfill {} of {}: {:?}, {} of {} runs{at_once}",
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
        Command::Backfill {
            command: BackfillCommand::Cancel { id },
        } => {
            let backfill = client.cancel_backfill(&id).await?;
            println!(
                "backfill {} of {} cancelled after {} of {} runs",
                backfill.id,
                backfill.frequency,
                backfill.runs.len(),
                backfill.instants.len(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How many of `baton plan`'s dry runs are asked for at once.
const DRY_RUNS_AT_ONCE: usize = 8;

/// A catalog folder, or its problems refused as `refuse` says.
fn load_folder(dir: &std::path::Path) -> Result<baton_core::catalog::CatalogSpec, ExitCode> {
    folder::load(dir).map_err(|problems| refuse(dir, &problems))
}

/// Prints a folder's problems on standard error, `file:line:col: message` each, then their
/// count; exit 1.
fn refuse(dir: &std::path::Path, problems: &[baton_core::catalog::Problem]) -> ExitCode {
    use std::io::Write;
    let mut err = std::io::BufWriter::new(std::io::stderr().lock());
    for p in problems {
        let _ = writeln!(err, "{}: {}", p.at, p.message);
    }
    let _ = writeln!(
        err,
        "baton: {} has {} problem(s)",
        dir.display(),
        problems.len()
    );
    ExitCode::FAILURE
}

/// Prints what applying `catalog` would do to the deployed catalog, through the API's
/// dry-run apply, and returns how many tables and frequencies it would change.
async fn show_plan(
    client: &Client,
    catalog: &baton_core::catalog::CatalogSpec,
    prune: bool,
) -> anyhow::Result<usize> {
    use baton_core::catalog::TableId;
    use std::collections::{BTreeMap, BTreeSet};
    let before = client.catalog().await?;
    let after = client
        .apply(&ApplyRequest {
            catalog: catalog.clone(),
            prune,
            dry_run: true,
        })
        .await?;
    for warning in &after.warnings {
        eprintln!("warning: {warning}");
    }
    let stored: BTreeMap<&TableId, &baton_core::catalog::apply::TableDoc> =
        before.tables.iter().map(|t| (&t.id, t)).collect();
    let edges_before: BTreeSet<(TableId, TableId)> = before
        .tables
        .iter()
        .flat_map(|t| t.parents.iter().map(|p| (p.clone(), t.id.clone())))
        .collect();
    let edges_after: BTreeSet<(TableId, TableId)> = after
        .dependencies
        .iter()
        .flat_map(|(t, parents)| parents.iter().map(|p| (p.clone(), t.clone())))
        .collect();
    let of = |kind: &str, action: Action| -> Vec<&str> {
        after
            .changes
            .iter()
            .filter(|c| c.kind == kind && c.action == action)
            .map(|c| c.id.as_str())
            .collect()
    };
    let section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            println!("{title} ({}):", lines.len());
            for line in lines {
                println!("  {line}");
            }
        }
    };
    let folder_tables: BTreeMap<TableId, &baton_core::catalog::Table> = catalog
        .tables
        .iter()
        .filter_map(|t| Some((t.id().ok()?, t)))
        .collect();
    let changed: Vec<String> = of("table", Action::Updated)
        .into_iter()
        .map(|id| {
            let what = id
                .parse::<TableId>()
                .ok()
                .and_then(|id| Some((stored.get(&id)?, folder_tables.get(&id)?)))
                .map(|(old, new)| {
                    if old.definition.sql.trim() != new.sql.trim() {
                        "SQL"
                    } else {
                        "settings"
                    }
                })
                .unwrap_or("settings");
            format!("{id}  ({what})")
        })
        .collect();
    let words = |ids: Vec<&str>| ids.into_iter().map(String::from).collect::<Vec<_>>();
    section("tables added", words(of("table", Action::Created)));
    section("tables changed", changed);
    section("tables removed", words(of("table", Action::Deleted)));
    section("frequencies added", words(of("frequency", Action::Created)));
    section(
        "frequencies changed",
        words(of("frequency", Action::Updated)),
    );
    section(
        "frequencies removed",
        words(of("frequency", Action::Deleted)),
    );
    let arrow = |(p, c): &(TableId, TableId)| format!("{p} → {c}");
    section(
        "dependencies gained",
        edges_after.difference(&edges_before).map(arrow).collect(),
    );
    section(
        "dependencies lost",
        edges_before.difference(&edges_after).map(arrow).collect(),
    );
    // Downstream: what the new, changed and removed tables feed, in the catalog after.
    let mut graph = baton_core::graph::Graph::of_catalog(&after.dependencies);
    for (parent, child) in &edges_before {
        if after.dependencies.contains_key(child) {
            graph.add_edge(parent.to_string(), child.to_string());
        }
    }
    let touched: Vec<&str> = after
        .changes
        .iter()
        .filter(|c| c.kind == "table" && c.action != Action::Unchanged)
        .map(|c| c.id.as_str())
        .collect();
    let downstream = graph.downstream(&touched);
    section(
        "downstream of the changes",
        downstream.into_iter().collect(),
    );
    // A dry run of each new or changed query, with its settings; a few at once.
    let deployed = &before.frequencies;
    let dry_running = after
        .changes
        .iter()
        .filter(|c| c.kind == "table" && matches!(c.action, Action::Created | Action::Updated))
        .filter_map(|change| {
            let table = folder_tables.get(&change.id.parse::<TableId>().ok()?)?;
            (table.kind == baton_core::catalog::TableKind::Query).then_some((change, table))
        })
        .map(|(change, table)| async move {
            let answer = client
                .dry_run(&baton_service::api::DryRunRequest {
                    sql: Some(table.sql.clone()),
                    dataset: Some(table.dataset.clone()),
                    write: Some(table.write_mode),
                    // A frequency not deployed yet cannot set the parameters: they are then
                    // now and NULL.
                    frequency: table
                        .frequency
                        .clone()
                        .filter(|f| deployed.iter().any(|d| &d.name == f)),
                    ..Default::default()
                })
                .await;
            match answer {
                Ok(r) => format!(
                    "{}  {} bytes processed, about {:.4} on demand",
                    change.id, r.report.bytes_processed, r.report.estimated_cost
                ),
                Err(e) => format!("{}  not dry-run: {e}", change.id),
            }
        });
    let dry_runs: Vec<String> = futures::stream::iter(dry_running)
        .buffered(DRY_RUNS_AT_ONCE)
        .collect()
        .await;
    section("dry runs", dry_runs);
    let count = |a: Action| after.changes.iter().filter(|c| c.action == a).count();
    println!(
        "plan: {} to create, {} to update, {} to delete, {} unchanged",
        count(Action::Created),
        count(Action::Updated),
        count(Action::Deleted),
        count(Action::Unchanged)
    );
    Ok(after.changes.len() - count(Action::Unchanged))
}

/// Asks on the terminal whether to go on; `false` without a terminal.
fn confirmed(question: &str) -> std::io::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn apply(
    client: &Client,
    dir: &std::path::Path,
    prune: bool,
    dry_run: bool,
    yes: bool,
) -> anyhow::Result<ExitCode> {
    let catalog = match load_folder(dir) {
        Ok(catalog) => catalog,
        Err(code) => return Ok(code),
    };
    let changes = show_plan(client, &catalog, prune).await?;
    if dry_run {
        println!("nothing applied (--dry-run)");
        return Ok(ExitCode::SUCCESS);
    }
    if changes > 0 && !yes && !confirmed("apply these changes?")? {
        eprintln!(
            "baton: nothing applied{}",
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                ""
            } else {
                " (no terminal to ask on: pass --yes to apply without asking)"
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    let response = client
        .apply(&ApplyRequest {
            catalog,
            prune,
            dry_run: false,
        })
        .await?;
    // Its warnings were the plan's.
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

/// `baton check`: what `baton apply --prune` would refuse, without asking the API.
fn check(dir: &std::path::Path, project: Option<&str>, cached: bool) -> ExitCode {
    let started = std::time::Instant::now();
    // Without a project, names that give none are the catalog's; only those that name
    // another project are external.
    let (plan, from_cache) = match plan_folder(dir, project.unwrap_or("baton-check"), cached) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    {
        use std::io::Write;
        let mut err = std::io::BufWriter::new(std::io::stderr().lock());
        for w in &plan.warnings {
            let _ = writeln!(err, "{}: warning: {}", w.at, w.message);
        }
    }
    let edges: usize = plan.dependencies.values().map(Vec::len).sum();
    let external: std::collections::BTreeSet<&String> =
        plan.write_tables.iter().flat_map(|t| &t.external).collect();
    println!(
        "{}: {} tables, {} frequencies, {edges} dependencies, {} external tables read, {} \
         warning(s), checked in {} ms ({from_cache} tables' SQL as read before)",
        dir.display(),
        plan.write_tables.len(),
        plan.write_frequencies.len(),
        external.len(),
        plan.warnings.len(),
        started.elapsed().as_millis()
    );
    // The process ends after this: freeing a large catalog's documents one by one would only
    // delay it.
    std::mem::forget(plan);
    ExitCode::SUCCESS
}

/// What `baton apply --prune` would do with a folder against an empty catalog, offline, and
/// how many tables' SQL answers came from the answers kept since the last time (`cached`:
/// kept, and used). Every problem of the folder is printed, as `refuse` prints them, and
/// stops it: its files' own, and those of the SQL and the graph of the files that parse.
fn plan_folder(
    dir: &std::path::Path,
    project: &str,
    cached: bool,
) -> Result<(baton_core::catalog::apply::ApplyPlan, usize), ExitCode> {
    use baton_cli::read_cache;
    let loaded = folder::load_all(dir).map_err(|problems| refuse(dir, &problems))?;
    let kept = cached.then(|| read_cache::path(dir, project)).flatten();
    let mut cache = kept.as_deref().map(read_cache::load).unwrap_or_default();
    let before = cache.len();
    let planned = baton_core::catalog::apply::plan_apply_cached(
        &[],
        &[],
        loaded.catalog,
        true,
        project,
        jiff::Timestamp::now(),
        &loaded.unread,
        kept.is_some().then_some(&mut cache),
    );
    // Kept again only when it changed: something was read, or something left.
    if let Some(path) = &kept
        && (cache.len() != cache.hits() || before != cache.hits())
    {
        read_cache::save(path, &cache);
    }
    let mut problems = loaded.problems;
    match planned {
        Ok(plan) if problems.is_empty() => Ok((plan, cache.hits())),
        Ok(_) => Err(refuse(dir, &problems)),
        Err(more) => {
            problems.extend(more);
            Err(refuse(dir, &problems))
        }
    }
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
            // An import's SELECT runs on its database: it reads nothing in BigQuery.
            Ok(text) if baton_core::catalog::folder::import_connection(&text).is_some() => {}
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

async fn upload(
    client: &Client,
    file: &std::path::Path,
    table: &baton_core::catalog::TableId,
) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("{} cannot be read: {e}", file.display()))?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = client
        .upload_url(
            table,
            &baton_service::api::UploadUrlRequest {
                file_name,
                expires_in_seconds: None,
            },
        )
        .await?;
    let bytes = body.len();
    client.upload(&to, body).await?;
    println!(
        "uploaded {} ({bytes} bytes) to {}",
        file.display(),
        to.object
    );
    Ok(ExitCode::SUCCESS)
}

async fn show_loads(
    client: &Client,
    table: &baton_core::catalog::TableId,
) -> anyhow::Result<ExitCode> {
    let status = client.loads(table).await?;
    println!("{}  ←  {}", status.table, status.landing);
    let oldest = status
        .oldest_waiting
        .map(|t| {
            format!(
                ", the oldest since {}",
                t.round(jiff::Unit::Second).unwrap_or(t)
            )
        })
        .unwrap_or_default();
    println!(
        "waiting  {} file(s), {} bytes{oldest}; held {}",
        status.waiting_files, status.waiting_bytes, status.held_files
    );
    println!(
        "loaded   {} file(s), {} rows in all",
        status.summary.files_loaded, status.summary.rows_loaded
    );
    for load in status.loading.iter().chain(&status.summary.last) {
        let rows = load.rows.map_or_else(|| "-".into(), |r| r.to_string());
        let bad = load
            .bad_records
            .filter(|b| *b > 0)
            .map(|b| format!(", {b} rejected"))
            .unwrap_or_default();
        println!(
            "  {}  {:<8} {:<5} {} file(s) {} bytes  {rows} rows{bad}",
            load.formed.round(jiff::Unit::Second).unwrap_or(load.formed),
            format!("{:?}", load.state).to_lowercase(),
            <&str>::from(load.trigger),
            load.files,
            load.bytes,
        );
        for error in &load.errors {
            println!("      {error}");
        }
        if let Some(rejects) = &load.rejects {
            println!("      rejected rows: {rejects}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
        // An import says how much it copied: `imported 4 rows past 2026-01-01T11:50:00Z` or
        // `imported 6 rows whole (the source's columns changed: added note)`.
        let imported = job
            .statistics
            .as_ref()
            .and_then(|s| s.import.as_ref())
            .map(|i| match (&i.after, i.full) {
                (Some(after), false) => format!("  imported {} rows past {after}", i.rows),
                (_, true) => format!(
                    "  imported {} rows whole{}",
                    i.rows,
                    i.reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
                (None, false) => format!("  imported {} rows", i.rows),
            });
        let why = job
            .error
            .clone()
            .or_else(|| {
                job.skipped_because
                    .as_ref()
                    .map(|t| format!("after {t} failed"))
            })
            .or(imported)
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

/// `baton runs follow`: the run's progress until it ends, redrawn in place on a terminal and
/// a line each time it changes otherwise; then `show`'s account of it.
async fn follow_run(client: &Client, run_id: &str, every: f64) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let every = Duration::from_secs_f64(every.clamp(0.1, 60.0));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let first = client.run(run_id).await?;
    let typical = typical_duration(client, &first.run).await;
    let mut response = first;
    let mut drawn_lines = 0;
    let mut last_said = None;
    while !response.run.state.is_terminal() {
        let lines = progress(&response, typical, jiff::Timestamp::now());
        let said = (
            response.run.state,
            response
                .jobs
                .iter()
                .filter(|j| j.state.is_terminal())
                .count(),
            response.jobs.len(),
        );
        let mut out = std::io::stdout().lock();
        if terminal {
            // Up over what was drawn, clear to the end, draw again.
            if drawn_lines > 0 {
                write!(out, "\x1b[{drawn_lines}A\x1b[J")?;
            }
            for line in &lines {
                writeln!(out, "{line}")?;
            }
            drawn_lines = lines.len();
        } else if Some(said) != last_said {
            // Without a terminal, the bar's line when the state or the count changes.
            writeln!(out, "{}", lines[0])?;
            last_said = Some(said);
        }
        out.flush()?;
        drop(out);
        tokio::time::sleep(every).await;
        response = client.run(run_id).await?;
    }
    if terminal && drawn_lines > 0 {
        print!("\x1b[{drawn_lines}A\x1b[J");
    }
    show_run(client, run_id, true).await
}

/// What `follow` draws: the bar with its count and estimate, then a line per running job.
fn progress(
    response: &baton_service::api::RunResponse,
    typical: Option<(jiff::SignedDuration, usize)>,
    now: jiff::Timestamp,
) -> Vec<String> {
    use baton_core::graph::short_duration;
    use baton_core::state::JobState;
    let run = &response.run;
    let planned = response.jobs.len().max(run.job_count as usize);
    let done = response
        .jobs
        .iter()
        .filter(|j| j.state.is_terminal())
        .count();
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(planned).unwrap_or(0);
    let elapsed = now.duration_since(run.created_at);
    let estimate = match typical {
        Some((typical, runs)) if typical > elapsed => format!(
            ", about {} left (earlier runs took {}, median of {runs})",
            short_duration(typical - elapsed),
            short_duration(typical)
        ),
        Some((typical, runs)) => format!(
            ", past earlier runs' {} (median of {runs})",
            short_duration(typical)
        ),
        None => String::new(),
    };
    let failed = response
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Failed)
        .count();
    let count = if planned == 0 {
        "planning".to_string()
    } else if failed > 0 {
        format!("{done}/{planned} jobs done ({failed} failed)")
    } else {
        format!("{done}/{planned} jobs done")
    };
    let mut lines = vec![format!(
        "run {} {}: [{}{}] {count}, {} so far{estimate}",
        run.id,
        run.state,
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        short_duration(elapsed),
    )];
    for job in response
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
    {
        let running = job
            .started_at
            .map(|at| short_duration(now.duration_since(at)))
            .unwrap_or_else(|| "starting".into());
        lines.push(format!("  {:<40} running {running}", job.table.to_string()));
    }
    lines
}

/// The median time from creation to end of the last succeeded runs like `run` (of its
/// frequency, or of the same tables), and how many there were.
async fn typical_duration(
    client: &Client,
    run: &baton_core::run::Run,
) -> Option<(jiff::SignedDuration, usize)> {
    let runs = client.runs(100).await.ok()?.runs;
    let mut took: Vec<jiff::SignedDuration> = runs
        .iter()
        .filter(|r| r.id != run.id && r.state == baton_core::state::RunState::Succeeded)
        .filter(|r| match &run.frequency {
            Some(f) => r.frequency.as_ref() == Some(f),
            None => r.frequency.is_none() && r.tables == run.tables,
        })
        .filter_map(|r| Some(r.finished_at?.duration_since(r.created_at)))
        .collect();
    if took.is_empty() {
        return None;
    }
    took.sort();
    Some((took[took.len() / 2], took.len()))
}

/// `baton login`: signs in with Google in the browser, or (`--with-token`) reads an API
/// token; checks the credential with the API and keeps it for this API.
async fn login(api: &str, with_token: bool, email: Option<&str>) -> anyhow::Result<ExitCode> {
    if !with_token {
        let oauth = baton_cli::signin::OAuthClient::from_env()?;
        let tokens = baton_cli::signin::browser(&oauth, email, |url| {
            eprintln!("open this page to sign in with Google (opened if a browser was found):");
            eprintln!("  {url}");
        })
        .await?;
        let me = Client::new(api)
            .with_token(Some(tokens.id_token.clone()))
            .me()
            .await?;
        let path = baton_cli::credentials::save(&baton_cli::credentials::Saved {
            api: api.to_string(),
            token: tokens.id_token,
            email: me.email.clone(),
            refresh_token: tokens.refresh_token,
            oauth: Some(oauth),
        })?;
        println!(
            "signed in to {api} as {} ({}{}); kept in {}",
            me.email,
            me.role,
            if me.enabled {
                ""
            } else {
                ", waiting for an admin to enable you"
            },
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("paste the API token and press Enter: ");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let secret = line.trim().to_string();
    if secret.is_empty() {
        anyhow::bail!("no token was given");
    }
    let me = Client::new(api)
        .with_token(Some(secret.clone()))
        .me()
        .await?;
    let path = baton_cli::credentials::save(&baton_cli::credentials::Saved {
        api: api.to_string(),
        token: secret,
        email: me.email.clone(),
        refresh_token: None,
        oauth: None,
    })?;
    println!(
        "signed in to {api} as {} ({}); kept in {}",
        me.email,
        me.role,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn dead_letters(client: &Client, command: DeadLettersCommand) -> anyhow::Result<ExitCode> {
    let (ids, all, replay) = match command {
        DeadLettersCommand::List { limit } => {
            for d in client.dead_letters(limit).await?.dead_letters {
                let tries = d
                    .delivery_attempts
                    .map(|n| format!(", {n} deliveries"))
                    .unwrap_or_default();
                println!(
                    "{}  {}  {}  {}{tries}",
                    d.id, d.received_at, d.subscription, d.about
                );
                match d.last_error {
                    Some(e) => println!(
                        "    last error ({}, {}): {}",
                        e.service,
                        e.at,
                        e.error.trim()
                    ),
                    None => println!("    no error recorded: no service answered it"),
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        DeadLettersCommand::Replay { ids, all } => (ids, all, true),
        DeadLettersCommand::Drop { ids, all } => (ids, all, false),
    };
    // With --all, page through what is there when asked; a message replayed that fails again
    // comes back later as a new dead letter, not in this pass.
    let mut done = std::collections::HashSet::new();
    let mut pending = ids;
    loop {
        if all {
            pending = client
                .dead_letters(1000)
                .await?
                .dead_letters
                .into_iter()
                .map(|d| d.id)
                .filter(|id| !done.contains(id))
                .collect();
        }
        if pending.is_empty() {
            break;
        }
        for id in std::mem::take(&mut pending) {
            if replay {
                let r = client.replay_dead_letter(&id).await?;
                println!("replayed {id} to {} as message {}", r.topic, r.message_id);
            } else {
                client.drop_dead_letter(&id).await?;
                println!("dropped {id}");
            }
            done.insert(id);
        }
        if !all {
            break;
        }
    }
    if all && done.is_empty() {
        eprintln!("no dead letters");
    }
    Ok(ExitCode::SUCCESS)
}

async fn tokens(client: &Client, command: TokensCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokensCommand::Create {
            name,
            expires_in_days,
        } => {
            let created = client
                .create_token(&baton_service::api::CreateTokenRequest {
                    name,
                    expires_in_days,
                })
                .await?;
            eprintln!(
                "token {} ({}) for {}{}; it is shown only now:",
                created.info.id,
                created.info.name,
                created.info.owner,
                created
                    .info
                    .expires_at
                    .map(|at| format!(", valid until {at}"))
                    .unwrap_or_default()
            );
            println!("{}", created.token);
        }
        TokensCommand::List => {
            for t in client.tokens().await?.tokens {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) => format!("until {at}"),
                    (None, None) => "no expiry".into(),
                };
                let used = t
                    .last_used_at
                    .map_or("never used".to_string(), |at| format!("used {at}"));
                println!("{}  {:<20} {:<28} {state}; {used}", t.id, t.name, t.owner);
            }
        }
        TokensCommand::Revoke { id } => {
            let t = client.revoke_token(&id).await?;
            println!("revoked token {} ({})", t.id, t.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn users(client: &Client, command: UsersCommand) -> anyhow::Result<ExitCode> {
    use baton_service::api::UpdateUserRequest;
    let (email, request) = match command {
        UsersCommand::List => {
            for u in client.users().await?.users {
                let groups: Vec<&str> = u.groups.iter().map(String::as_str).collect();
                println!(
                    "{:<32} {:<7} {:<9} {}",
                    u.email,
                    u.role.to_string(),
                    if u.enabled { "enabled" } else { "disabled" },
                    groups.join(", ")
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        UsersCommand::Enable { email } => (
            email,
            UpdateUserRequest {
                enabled: Some(true),
                ..Default::default()
            },
        ),
        UsersCommand::Disable { email } => (
            email,
            UpdateUserRequest {
                enabled: Some(false),
                ..Default::default()
            },
        ),
        UsersCommand::Role { email, role } => (
            email,
            UpdateUserRequest {
                role: Some(serde_json::from_value(serde_json::json!(role))?),
                ..Default::default()
            },
        ),
    };
    let user = client.update_user(&email, &request).await?;
    println!(
        "{} is {} and {}",
        user.email,
        user.role,
        if user.enabled { "enabled" } else { "disabled" }
    );
    Ok(ExitCode::SUCCESS)
}

async fn groups(client: &Client, command: GroupsCommand) -> anyhow::Result<ExitCode> {
    use baton_service::api::{PutGroupRequest, UpdateUserRequest};
    match command {
        GroupsCommand::List => {
            for g in client.groups().await?.groups {
                println!(
                    "{:<24} {:<40} {}",
                    g.name,
                    g.members.join(", "),
                    g.description.unwrap_or_default()
                );
            }
        }
        GroupsCommand::Create { name, description } => {
            let g = client
                .put_group(&name, &PutGroupRequest { description })
                .await?;
            println!("group {}", g.name);
        }
        GroupsCommand::Delete { name } => {
            client.delete_group(&name).await?;
            println!("deleted group {name}");
        }
        GroupsCommand::Add { group, email } => {
            let u = client
                .update_user(
                    &email,
                    &UpdateUserRequest {
                        add_groups: vec![group.clone()],
                        ..Default::default()
                    },
                )
                .await?;
            println!("{} is in {group}", u.email);
        }
        GroupsCommand::Remove { group, email } => {
            let u = client
                .update_user(
                    &email,
                    &UpdateUserRequest {
                        remove_groups: vec![group.clone()],
                        ..Default::default()
                    },
                )
                .await?;
            println!("{} is out of {group}", u.email);
        }
    }
    Ok(ExitCode::SUCCESS)
}
