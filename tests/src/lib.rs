//! The end-to-end harness: the local stack's addresses, and Baton's five services started as
//! real processes on loopback ports, wired to the emulators' Pub/Sub push subscriptions.
//!
//! Each `Baton` has a project of its own (Firestore, Pub/Sub and BigQuery all keep projects
//! apart), so tests share one stack and run in parallel without seeing each other's state.
//! The services stop when their `Baton` is dropped, or when the harness dies (their standard
//! input closes).

pub mod corpus;
pub mod faults;
pub mod oidc;
pub mod pubsub;
pub mod relay;
pub mod terraform;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use base64::Engine;
use baton_cli::Client;
use baton_core::catalog::{CatalogSpec, TableId};
use baton_core::config::Env;
use baton_core::ports::RunPort;
use baton_google::bus::{Bus, PushSubscription};
use baton_google::config::Gcp;
use baton_google::storage::Storage;
use baton_google::store::{Store, Usage};
use baton_google::warehouse::Warehouse;
use baton_service::api::{ApplyRequest, ApplyResponse, RunResponse};

use crate::oidc::{Caller, Issuer};
use crate::relay::Relay;

/// Serves `app` on a free loopback port in the background; returns its base URL
/// (`http://127.0.0.1:PORT`). For the harness's stand-ins: relays, proxies, receivers.
pub async fn serve_on_loopback(app: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// The id of the first run a tick reports.
pub fn first_run_id(report: &serde_json::Value) -> anyhow::Result<String> {
    report["runs"][0]["run_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the tick reports no run: {report}"))
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where cargo put the binaries of the running profile: beside this executable (a demo) or
/// one level up (a test, in `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the current executable has a path");
    let dir = exe.parent().expect("an executable is in a directory");
    if dir.ends_with("deps") {
        dir.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The local stack, as `tests/stack/stack.sh start` wrote it down.
#[derive(Debug, Clone)]
pub struct Stack {
    vars: BTreeMap<String, String>,
}

impl Stack {
    /// Reads the env file: `BATON_STACK_ENV`, else `tests/.stack/env`.
    pub fn load() -> anyhow::Result<Self> {
        let path = std::env::var_os("BATON_STACK_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("tests/.stack/env"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "the local stack is not running ({} is missing): start it with \
                 `tests/stack/stack.sh start`, or run the tests with `tests/test.sh`",
                path.display()
            )
        })?;
        let vars = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Self { vars })
    }

    pub fn var(&self, name: &str) -> anyhow::Result<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("the stack's env file has no {name}"))
    }

    /// The variables that point a Baton service at the stack's emulators, and the key it signs
    /// URLs with.
    pub fn emulator_env(&self) -> anyhow::Result<Vec<(String, String)>> {
        [
            "FIRESTORE_EMULATOR_HOST",
            "PUBSUB_EMULATOR_HOST",
            "STORAGE_EMULATOR_HOST",
            "BIGQUERY_EMULATOR_HOST",
            "BATON_SIGNING_KEY_FILE",
        ]
        .into_iter()
        .map(|name| Ok((name.to_string(), self.var(name)?.to_string())))
        .collect()
    }

    /// Google Cloud settings for `project` on the stack's emulators.
    pub fn gcp(&self, project: &str) -> anyhow::Result<Gcp> {
        let mut vars: std::collections::HashMap<String, String> =
            self.emulator_env()?.into_iter().collect();
        vars.insert("BATON_PROJECT".into(), project.to_string());
        Ok(Gcp::from_env(&Env::from_map(vars))?)
    }
}

/// Polls `check` until it returns `Some`, or fails after `timeout` saying what it waited for
/// and the last error, if any.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => String::new(),
            Err(e) => format!(" (last error: {e:#})"),
        };
        if Instant::now() > deadline {
            bail!("{what}: not within {timeout:?}{last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One service process.
struct Service {
    /// The process's name (`planner-2` for a second planner), which names its logs.
    name: &'static str,
    /// The service it runs.
    service: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    /// What it was started with, to start it again.
    env: Vec<(String, String)>,
}

impl Service {
    /// Closes its standard input (it stops by itself), waits a little, then kills it.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop within 10 s; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The services' URLs.
#[derive(Debug, Clone)]
pub struct Urls {
    pub api: String,
    pub tick: String,
    pub planner: String,
    pub executor: String,
    pub importer: String,
}

/// How to start a Baton.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra environment variables for every service.
    pub env: Vec<(String, String)>,
    /// Run two planner and two executor processes instead of one each, behind the relays:
    /// concurrent deliveries then race on Firestore as in production, not only within one
    /// process.
    pub two_of_each: bool,
    /// Nobody signs in at start: the first to sign in is whoever the test makes first.
    pub nobody_signed_in: bool,
    /// The importer is told of the files that land in the landing bucket (load tables).
    pub landing: bool,
    /// After how many refused deliveries Pub/Sub dead-letters a message (20, as Terraform
    /// sets, unless told; Pub/Sub takes 5 to 100).
    pub max_deliveries: Option<u32>,
}

impl Options {
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn two_of_each(mut self) -> Self {
        self.two_of_each = true;
        self
    }

    pub fn nobody_signed_in(mut self) -> Self {
        self.nobody_signed_in = true;
        self
    }

    pub fn landing(mut self) -> Self {
        self.landing = true;
        self
    }

    pub fn max_deliveries(mut self, attempts: u32) -> Self {
        self.max_deliveries = Some(attempts);
        self
    }
}

/// The relays in front of the services that receive pushes: they sign each push as Pub/Sub
/// would, and duplicate or hold messages when a test asks.
#[derive(Debug, Clone)]
pub struct Relays {
    pub planner: Relay,
    pub executor: Relay,
    pub importer: Relay,
    /// Cloud Storage's notifications of the landing bucket, to the importer's `/storage`.
    pub storage: Relay,
    /// The dead-letter topic's messages, to the planner's `/dead-letters`.
    pub dead_letters: Relay,
}

/// A running Baton: five services, their project, and clients to look at what they did.
pub struct Baton {
    pub project: String,
    pub urls: Urls,
    pub relays: Relays,
    /// The OIDC issuer whose tokens the services accept (Google's stand-in).
    pub issuer: Issuer,
    /// The API's client, signed in as `admin` (the first to sign in, so the admin).
    pub client: Client,
    /// The admin's email.
    pub admin: String,
    /// An API token of the admin's, which `cli()` gives the `baton` command.
    cli_token: String,
    /// The key connections' secrets are sealed with (`BATON_ENCRYPTION_KEY`).
    pub encryption_key: String,
    pub store: Store,
    pub warehouse: Warehouse,
    pub gcp: Gcp,
    pub log_dir: PathBuf,
    http: reqwest::Client,
    services: Vec<Service>,
    /// The Pub/Sub emulator's address and this Baton's subscription to the stack's storage
    /// events, deleted when it stops.
    storage_subscription: Option<(String, String)>,
    /// Deliveries of a message before Pub/Sub dead-letters it.
    max_deliveries: u32,
}

impl std::fmt::Debug for Baton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baton")
            .field("project", &self.project)
            .finish()
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Drop for Baton {
    /// A test that fails half-way stops its services and leaves no subscription behind.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Deletes a Pub/Sub emulator's subscription, synchronously (a Baton stops in `Drop` too).
fn delete_subscription(host: &str, path: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("DELETE {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

/// A project id of its own for each Baton: `name` and a suffix unique on this machine.
pub fn unique_project(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(16)
        .collect();
    format!(
        "{clean}-{:x}{:x}{n}",
        std::process::id() % 4096,
        nanos % 65536
    )
}

impl Baton {
    /// Starts the services for a new project named after `name`.
    pub async fn start(stack: &Stack, name: &str) -> anyhow::Result<Self> {
        Self::start_with(stack, name, Options::default()).await
    }

    /// Starts the services as `options` say.
    pub async fn start_with(stack: &Stack, name: &str, options: Options) -> anyhow::Result<Self> {
        let project = unique_project(name);
        let log_dir = bin_dir().join("baton-logs").join(&project);
        std::fs::create_dir_all(&log_dir)?;
        let mut env: Vec<(String, String)> = vec![
            ("BATON_PROJECT".into(), project.clone()),
            ("HOST".into(), "127.0.0.1".into()),
            ("PORT".into(), "0".into()),
            ("BATON_STOP_ON_STDIN_EOF".into(), "true".into()),
            (
                "RUST_LOG".into(),
                "info,baton_core=debug,baton_google=debug,baton_service=debug".into(),
            ),
            // Retries of transient BigQuery failures (local-bigquery's commit conflicts)
            // without production's pause.
            ("BATON_RETRY_BACKOFF_MS".into(), "200".into()),
            // Tests tick at chosen instants.
            ("BATON_TICK_ALLOW_AT".into(), "true".into()),
        ];
        env.extend(stack.emulator_env()?);
        // Connections are sealed with a key of this Baton's own.
        let encryption_key = baton_core::secrets::Sealer::generate_key();
        env.push(("BATON_ENCRYPTION_KEY".into(), encryption_key.clone()));
        // Extracts go to the project's own bucket.
        let bucket = format!("{project}-extracts");
        env.push(("BATON_EXTRACT_BUCKET".into(), bucket.clone()));
        let storage = Storage::new(&stack.gcp(&project)?, None)?;
        storage.ensure_bucket(&project, &bucket).await?;
        // Imports are staged in another.
        let staging = format!("{project}-staging");
        env.push(("BATON_STAGING_BUCKET".into(), staging.clone()));
        storage.ensure_bucket(&project, &staging).await?;
        // Load tables' files land in a third, whose finalize events the stack publishes.
        let landing = format!("{project}-landing");
        env.push(("BATON_LANDING_BUCKET".into(), landing.clone()));
        storage.ensure_bucket(&project, &landing).await?;

        // Every service verifies its callers' tokens, as in production: the tick Cloud
        // Scheduler's, the planner, executor and importer the Pub/Sub push identity's, the API
        // people's ID tokens (and Baton's API tokens).
        let issuer = Issuer::start(stack).await?;
        let mut services = Vec::new();
        let mut processes = vec![
            ("api", "api"),
            ("tick", "tick"),
            ("planner", "planner"),
            ("executor", "executor"),
            ("importer", "importer"),
        ];
        if options.two_of_each {
            processes.extend([("planner-2", "planner"), ("executor-2", "executor")]);
        }
        for (name, service) in processes {
            let mut service_env = env.clone();
            if service == "api" {
                // People sign in with ID tokens of the stack's issuer, as with Google's.
                service_env.extend([
                    (
                        "BATON_OAUTH_CLIENT_ID".to_string(),
                        oidc::CLIENT_ID.to_string(),
                    ),
                    (
                        "BATON_ALLOWED_DOMAINS".to_string(),
                        oidc::DOMAIN.to_string(),
                    ),
                    ("BATON_AUTH_JWKS_URL".to_string(), issuer.jwks_url.clone()),
                ]);
            } else {
                let caller = Self::caller_of(&project, service);
                service_env.extend([
                    ("BATON_AUTH_AUDIENCE".to_string(), caller.audience),
                    ("BATON_AUTH_CALLERS".to_string(), caller.email),
                    ("BATON_AUTH_JWKS_URL".to_string(), issuer.jwks_url.clone()),
                ]);
            }
            service_env.extend(options.env.iter().cloned());
            services.push(spawn_service(name, service, &service_env, &log_dir)?);
        }
        let url = |name: &str| {
            services
                .iter()
                .find(|s: &&Service| s.name == name)
                .map(|s| s.url.clone())
                .expect("every service was started")
        };
        let urls = Urls {
            api: url("api"),
            tick: url("tick"),
            planner: url("planner"),
            executor: url("executor"),
            importer: url("importer"),
        };

        // Each relay delivers to every process of its service.
        let processes_of = |service: &str| -> Vec<String> {
            services
                .iter()
                .filter(|s| s.service == service)
                .map(|s| s.url.clone())
                .collect()
        };
        let (planners, executors, importers) = (
            processes_of("planner"),
            processes_of("executor"),
            processes_of("importer"),
        );
        let relays = Relays {
            planner: Relay::start(&planners, "planner", &issuer, &project).await?,
            executor: Relay::start(&executors, "executor", &issuer, &project).await?,
            importer: Relay::start(&importers, "importer", &issuer, &project).await?,
            storage: Relay::start_to(&importers, "/storage", "importer", &issuer, &project).await?,
            dead_letters: Relay::start_to(&planners, "/dead-letters", "planner", &issuer, &project)
                .await?,
        };

        let gcp = Gcp::from_env(&Env::from_map(
            env.iter().chain(&options.env).cloned().collect(),
        ))?;
        let bus = Bus::new(&gcp)?;
        let max_deliveries = options.max_deliveries.unwrap_or(20);
        wire_pubsub(&bus, &gcp, &relays, max_deliveries).await?;
        // The stack publishes every bucket's finalize events to one topic, as a notification
        // configuration of the landing bucket does in production; the importer ignores other
        // buckets' (the other tests'). Only the Batons with load tables subscribe, and each
        // deletes its subscription when it stops: every event goes to every subscription.
        let storage_subscription = if options.landing {
            let events = stack.var("BATON_TEST_STORAGE_EVENTS")?;
            let name = "baton-storage-push";
            bus.ensure_push_subscription(&PushSubscription {
                name,
                topic: events,
                endpoint: &relays.storage.endpoint,
                ack_deadline_seconds: 60,
                dead_letter: Some((DEAD_LETTER_TOPIC, max_deliveries)),
            })
            .await?;
            Some((
                stack.var("PUBSUB_EMULATOR_HOST")?.to_string(),
                format!("/v1/projects/{project}/subscriptions/{name}"),
            ))
        } else {
            None
        };
        // The harness reads Firestore and BigQuery as the services do.
        let store = Store::connect(&gcp).await?;
        let warehouse = Warehouse::new(&gcp).await?;
        // The harness's person signs in first, and so is the admin; the CLI gets a token.
        let admin = format!("admin@{}", oidc::DOMAIN);
        let client = Client::new(&urls.api).with_token(Some(issuer.id_token(&admin)));
        let cli_token = if options.nobody_signed_in {
            String::new()
        } else {
            let me = client.me().await?;
            if me.role != baton_core::access::Role::Admin {
                bail!("the first to sign in is not the admin: {me:?}");
            }
            client
                .create_token(&baton_service::api::CreateTokenRequest {
                    name: "harness-cli".into(),
                    expires_in_days: Some(1),
                })
                .await?
                .token
        };
        Ok(Self {
            client,
            admin,
            cli_token,
            encryption_key,
            project,
            urls,
            relays,
            issuer,
            store,
            warehouse,
            gcp,
            log_dir,
            http: reqwest::Client::new(),
            services,
            storage_subscription,
            max_deliveries,
        })
    }

    /// Makes the topics and push subscriptions again after the Pub/Sub emulator the services
    /// use was restarted (`pubsub::OwnPubSub`), as they are in production across anything
    /// Pub/Sub goes through. The landing bucket's subscription is not made again: it lives on
    /// the stack's emulator.
    pub async fn pubsub_restarted(&self) -> anyhow::Result<()> {
        wire_pubsub(
            &Bus::new(&self.gcp)?,
            &self.gcp,
            &self.relays,
            self.max_deliveries,
        )
        .await
    }

    /// Who calls `service` in production, and the audience its tokens name: Cloud Scheduler
    /// calls the tick, Pub/Sub pushes to the others.
    pub fn caller_of(project: &str, service: &str) -> Caller {
        let email = if service == "tick" {
            oidc::scheduler_identity(project)
        } else {
            oidc::push_identity(project)
        };
        Caller {
            email,
            audience: oidc::audience(service),
        }
    }

    /// A valid `Authorization` value for calling `service` as its production caller does.
    pub fn bearer(&self, service: &str) -> String {
        self.issuer.bearer(&Self::caller_of(&self.project, service))
    }

    /// The `baton` command, pointed at this Baton's API with the admin's API token, its
    /// config folder in the logs' (never the user's own).
    pub fn cli(&self) -> Command {
        let mut command = Command::new(bin_dir().join("baton"));
        command
            .env("BATON_API_URL", &self.urls.api)
            .env("BATON_TOKEN", &self.cli_token)
            .env("BATON_CONFIG_DIR", self.log_dir.join("config"));
        command
    }

    /// Runs `baton ARGS…` (as `cli()`) to its end and returns what it printed; an error with
    /// both its outputs if it failed.
    pub async fn run_cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = self.cli();
        command.args(args);
        let output = tokio::task::spawn_blocking(move || command.output()).await??;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        anyhow::ensure!(
            output.status.success(),
            "baton {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(stdout)
    }

    /// A client of the API signed in as `email` of the allowed domain (a Google ID token of
    /// the stack's issuer).
    pub fn client_as(&self, email: &str) -> Client {
        Client::new(&self.urls.api).with_token(Some(self.issuer.id_token(email)))
    }

    /// POSTs `/tick` as Cloud Scheduler does and returns its report.
    pub async fn tick(&self) -> anyhow::Result<serde_json::Value> {
        self.tick_request(None).await
    }

    /// POSTs `/tick?at=…`: a tick as if it were `at`.
    pub async fn tick_at(&self, at: jiff::Timestamp) -> anyhow::Result<serde_json::Value> {
        self.tick_request(Some(at)).await
    }

    async fn tick_request(&self, at: Option<jiff::Timestamp>) -> anyhow::Result<serde_json::Value> {
        let mut request = self
            .http
            .post(format!("{}/tick", self.urls.tick))
            .header("authorization", self.bearer("tick"));
        if let Some(at) = at {
            request = request.query(&[("at", at.to_string())]);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        if !status.is_success() {
            bail!("tick answered {status}: {body}");
        }
        Ok(body)
    }

    /// Applies a catalog built in code (adding to what is stored).
    pub async fn apply(&self, catalog: CatalogSpec) -> anyhow::Result<ApplyResponse> {
        Ok(self
            .client
            .apply(&ApplyRequest {
                catalog,
                prune: false,
                dry_run: false,
            })
            .await?)
    }

    /// Delivers `payload` to a service's `/pubsub` endpoint as a Pub/Sub push would (a
    /// redelivery, say), with the push identity's token, and returns the status it answered.
    pub async fn push(
        &self,
        service_url: &str,
        payload: &impl serde::Serialize,
    ) -> anyhow::Result<reqwest::StatusCode> {
        let service = [
            (&self.urls.planner, "planner"),
            (&self.urls.executor, "executor"),
            (&self.urls.importer, "importer"),
        ]
        .into_iter()
        .find(|(url, _)| url.as_str() == service_url)
        .map(|(_, name)| name)
        .ok_or_else(|| anyhow!("{service_url} is not a service that takes pushes"))?;
        self.push_with(service_url, payload, Some(&self.bearer(service)))
            .await
    }

    /// Delivers `payload` to a service's `/pubsub` with `authorization` as the header's value
    /// (none: no header), and returns the status it answered.
    pub async fn push_with(
        &self,
        service_url: &str,
        payload: &impl serde::Serialize,
        authorization: Option<&str>,
    ) -> anyhow::Result<reqwest::StatusCode> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let data = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(payload)?);
        let envelope = serde_json::json!({
            "message": {"data": data, "messageId": format!("harness-{n}"), "attributes": {}},
            "subscription": "projects/harness/subscriptions/direct",
        });
        let mut request = self
            .http
            .post(format!("{service_url}/pubsub"))
            .json(&envelope);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await?;
        Ok(response.status())
    }

    /// The BigQuery jobs Baton started for a run (their ids begin with the run's).
    pub async fn bigquery_jobs(&self, run_id: &str) -> anyhow::Result<Vec<String>> {
        let prefix = baton_core::ids::bigquery_job_prefix(run_id);
        let mut ids: Vec<String> = self
            .warehouse
            .job_ids()
            .await?
            .into_iter()
            .filter(|id| id.starts_with(&prefix))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Waits until the run has ended and the planner has finished with it (nothing of it is
    /// watched for the tick's sweep any more), or fails after `timeout` with what it looked
    /// like then. Polls the run's document alone until it ends (a large run's jobs are read
    /// once it has).
    pub async fn wait_for_run(
        &self,
        run_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<RunResponse> {
        let deadline = Instant::now() + timeout;
        loop {
            let run = self.store.run(run_id).await;
            if let Ok(Some(run)) = &run
                && run.state.is_terminal()
            {
                return self.settled(run_id, deadline).await;
            }
            if Instant::now() > deadline {
                let state = match self.client.run(run_id).await {
                    Ok(r) => {
                        let jobs: Vec<String> = r
                            .jobs
                            .iter()
                            .map(|j| format!("{} {}", j.table, j.state))
                            .collect();
                        format!("{} [{}]", r.run.state, jobs.join(", "))
                    }
                    Err(e) => e.to_string(),
                };
                bail!(
                    "run {run_id} did not end within {timeout:?}: {state}; logs in {}",
                    self.log_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An ended run once the planner's last handling of it has finished (its watches are
    /// gone), so that what a test reads does not change under it.
    async fn settled(&self, run_id: &str, deadline: Instant) -> anyhow::Result<RunResponse> {
        loop {
            let response = self.client.run(run_id).await?;
            let mut watched: Vec<String> = response
                .jobs
                .iter()
                .filter(|j| j.watch_at.is_some())
                .map(|j| format!("{} ({})", j.table, j.state))
                .collect();
            if response.run.watch_at.is_some() {
                watched.push(format!("the run ({})", response.run.state));
            }
            if watched.is_empty() {
                return Ok(response);
            }
            if Instant::now() > deadline {
                bail!(
                    "run {run_id} ended, but the planner has not finished with {}; logs in {}",
                    watched.join(", "),
                    self.log_dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The example catalog's source database (`tests/catalogs/shop` imports `shop.orders` from
    /// it): a PostgreSQL database of this Baton's own on the stack, with the shop's orders,
    /// and the connection `shop_db` to it.
    pub async fn shop_database(&self, stack: &Stack) -> anyhow::Result<()> {
        let url = url::Url::parse(stack.var("BATON_TEST_POSTGRES_URL")?)?;
        let (admin, connection) = tokio_postgres::connect(url.as_str(), tokio_postgres::NoTls)
            .await
            .context("connecting to the stack's PostgreSQL")?;
        tokio::spawn(connection);
        let database = self.project.replace('-', "_");
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await?;
        let mut shop = url.clone();
        shop.set_path(&database);
        let (client, connection) = tokio_postgres::connect(shop.as_str(), tokio_postgres::NoTls)
            .await
            .context("connecting to the shop's database")?;
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE orders (order_id int PRIMARY KEY, customer_id int NOT NULL,
                                      amount double precision NOT NULL);
                 INSERT INTO orders VALUES (1, 10, 30.0), (2, 10, 12.5), (3, 20, 99.0),
                                           (4, 30, 5.0), (5, 20, 1.0);",
            )
            .await?;
        shop.set_query(Some("sslmode=disable"));
        self.client
            .put_connection(
                "shop_db",
                &baton_service::api::PutConnectionRequest {
                    kind: baton_core::connections::ConnectionKind::Postgres,
                    secret: shop.to_string(),
                    description: Some("the shop's application database".into()),
                },
            )
            .await?;
        Ok(())
    }

    /// The example catalog's refunds (`tests/catalogs/shop` loads `shop.refunds` from the
    /// files that land under `shop/refunds/`): a CSV file the payment provider would export,
    /// uploaded through `baton upload` (a signed URL) and waited for until it is loaded. The
    /// command's output, and the load. Needs a Baton started with `Options::landing`.
    pub async fn shop_refunds(&self) -> anyhow::Result<(String, baton_core::loads::LoadRecord)> {
        let file = self.log_dir.join("refunds-2026-11-21.csv");
        std::fs::write(
            &file,
            "customer_id,amount,refunded_at\n10,12.5,2026-11-21 15:04:00\n20,40.0,2026-11-21 18:30:00\n",
        )?;
        let file = file.to_str().context("a UTF-8 path")?;
        let said = self
            .run_cli(&["upload", file, "--table", "shop.refunds"])
            .await?;
        let table: TableId = "shop.refunds".parse()?;
        let load = eventually("the refunds loaded", Duration::from_secs(90), || async {
            let status = self.client.loads(&table).await?;
            Ok(status
                .summary
                .last
                .first()
                .filter(|_| status.loading.is_empty())
                .cloned())
        })
        .await?;
        Ok((said, load))
    }

    /// Kills a service's process at once (SIGKILL: nothing flushed, nothing cleaned up), as a
    /// crash or an instance taken away would.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let service = self
            .services
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow!("no service {name}"))?;
        service.child.kill()?;
        service.child.wait()?;
        Ok(())
    }

    /// Starts a killed service again, at its address (the relays and the harness keep it).
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self
            .services
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| anyhow!("no service {name}"))?;
        let old = &self.services[i];
        let port = old.url.rsplit(':').next().unwrap_or_default().to_string();
        let mut env: Vec<(String, String)> = old
            .env
            .iter()
            .filter(|(k, _)| k != "PORT")
            .cloned()
            .collect();
        env.push(("PORT".into(), port));
        let started = spawn_service(old.name, old.service, &env, &self.log_dir)?;
        let mut dead = std::mem::replace(&mut self.services[i], started);
        drop(dead.stdin.take());
        Ok(())
    }

    /// The lines a service has logged so far whose message is `message`.
    pub fn logged(&self, service: &str, message: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let path = self.log_dir.join(format!("{service}.log"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == message)
            .collect())
    }

    /// What the named services read and wrote in Firestore, from the line each logs when it
    /// stops: call after `stop`.
    pub fn firestore_usage(&self, services: &[&str]) -> anyhow::Result<Usage> {
        let mut total = Usage::default();
        for service in services {
            let path = self.log_dir.join(format!("{service}.log"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let line = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["message"] == "firestore usage")
                .ok_or_else(|| anyhow!("{service} logged no usage: has it stopped?"))?;
            // The log's field names are camelCase (Cloud Logging's JSON).
            let count = |field: &str| {
                line[field]
                    .as_u64()
                    .ok_or_else(|| anyhow!("{service}'s usage line has no {field}: {line}"))
            };
            total.reads += count("firestoreReads")?;
            total.writes += count("firestoreWrites")?;
        }
        Ok(total)
    }

    /// Stops the services.
    pub fn stop(&mut self) {
        for service in &mut self.services {
            service.stop();
        }
        if let Some((host, path)) = self.storage_subscription.take() {
            delete_subscription(&host, &path);
        }
    }
}

/// Where a Baton's subscriptions send the messages Pub/Sub gave up on.
const DEAD_LETTER_TOPIC: &str = "baton-dead-letter";

/// The topics and push subscriptions of a Baton: the planner's, executor's and importer's
/// topics pushed to their relays, with the dead-letter topic pushed to the planner's relay.
async fn wire_pubsub(
    bus: &Bus,
    gcp: &Gcp,
    relays: &Relays,
    max_deliveries: u32,
) -> anyhow::Result<()> {
    bus.ensure_topic(DEAD_LETTER_TOPIC).await?;
    bus.ensure_push_subscription(&PushSubscription {
        name: "baton-dead-letters-push",
        topic: DEAD_LETTER_TOPIC,
        endpoint: &relays.dead_letters.endpoint,
        ack_deadline_seconds: 60,
        dead_letter: None,
    })
    .await?;
    for (topic, endpoint, ack) in [
        (&gcp.topics.planner, &relays.planner.endpoint, 60),
        (&gcp.topics.executor, &relays.executor.endpoint, 600),
        (&gcp.topics.importer, &relays.importer.endpoint, 600),
    ] {
        bus.ensure_topic(topic).await?;
        bus.ensure_push_subscription(&PushSubscription {
            name: &format!("{topic}-push"),
            topic,
            endpoint,
            ack_deadline_seconds: ack,
            dead_letter: Some((DEAD_LETTER_TOPIC, max_deliveries)),
        })
        .await?;
    }
    Ok(())
}

fn spawn_service(
    name: &'static str,
    service: &'static str,
    env: &[(String, String)],
    log_dir: &Path,
) -> anyhow::Result<Service> {
    let path = bin_dir().join(format!("baton-{service}"));
    if !path.exists() {
        bail!(
            "{} is missing: build the workspace first (`cargo build --workspace`)",
            path.display()
        );
    }
    // Appended to: a service started again keeps writing after its first life's lines.
    let append = |file: String| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(file))
    };
    let stderr = append(format!("{name}.stderr.log"))?;
    let mut child = Command::new(&path)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    let mut log = append(format!("{name}.log"))?;
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if let Some(sender) = &tx
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listening"
                && let Some(addr) = v["addr"].as_str()
            {
                let _ = sender.send(addr.to_string());
                tx = None;
            }
        }
    });
    let mut service = Service {
        name,
        service,
        child,
        stdin,
        url: String::new(),
        env: env.to_vec(),
    };
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => {
            service.url = format!("http://{addr}");
            Ok(service)
        }
        Err(_) => {
            let status = service.child.try_wait().ok().flatten();
            bail!(
                "baton-{name} did not start listening (exit: {status:?}); see {}",
                log_dir.display()
            )
        }
    }
}
