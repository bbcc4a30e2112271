//! `terraform/` checked offline, as CI can (no provider can be downloaded, so `terraform
//! validate` cannot run): every file against the google provider's schema, a test that the
//! check finds each kind of mistake planted in a file, and contracts between the Terraform and
//! the code that runs in what it deploys.

use std::sync::LazyLock;

use baton_tests::repo_root;
use baton_tests::terraform::check::{Problem, check_dir, check_source};
use baton_tests::terraform::schema::{Schema, assembly_path};
use baton_tests::terraform::tf_files;

static SCHEMA: LazyLock<Result<Schema, String>> =
    LazyLock::new(|| Schema::load(&assembly_path()).map_err(|e| format!("{e:#}")));

fn schema() -> &'static Schema {
    SCHEMA.as_ref().expect("the provider's schema loads")
}

#[test]
fn the_terraform_fits_the_google_providers_schema() -> anyhow::Result<()> {
    let schema = schema();
    assert!(
        schema.resources.len() > 1000,
        "{} resources",
        schema.resources.len()
    );
    assert!(schema.data_sources.len() > 300);
    let problems = check_dir(schema, &repo_root().join("terraform"))?;
    let listed: Vec<String> = problems.iter().map(Problem::to_string).collect();
    assert!(problems.is_empty(), "{}", listed.join("\n"));
    Ok(())
}

/// A `dynamic "env"` block whose content sets `name` and `value_argument` (misspelt or not).
fn dynamic_env(value_argument: &str) -> String {
    format!(
        r#"dynamic "env" {{
        for_each = {{ A = "1" }}
        content {{
          name  = env.key
          {value_argument} = env.value
        }}
      }}"#
    )
}

/// A minimal valid Cloud Run service with `extra` in its template's container.
fn service_with(container_extra: &str, service_extra: &str) -> String {
    format!(
        r#"
resource "google_cloud_run_v2_service" "s" {{
  name     = "s"
  location = "us-central1"
  {service_extra}
  template {{
    containers {{
      image = "example/image"
      {container_extra}
    }}
  }}
}}
"#
    )
}

#[test]
fn each_planted_mistake_is_found_at_its_line() {
    let schema = schema();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "an unknown resource type",
            r#"resource "google_cloud_run_v3_service" "s" { name = "s" }"#.into(),
            "google_cloud_run_v3_service.s: the google provider has no resource type `google_cloud_run_v3_service`",
        ),
        (
            "an unknown data source",
            r#"data "google_projekt" "p" {}"#.into(),
            "data.google_projekt.p: the google provider has no data source `google_projekt`",
        ),
        (
            "an unknown argument at the top",
            service_with("", r#"ingres = "INGRESS_TRAFFIC_ALL""#),
            "google_cloud_run_v2_service.s: unknown argument `ingres` (did you mean `ingress`?)",
        ),
        (
            "an unknown argument three blocks deep",
            service_with("env {\n  name  = \"A\"\n  valeu = \"1\"\n}", ""),
            "google_cloud_run_v2_service.s: template: containers: env: unknown argument `valeu` (did you mean `value`?)",
        ),
        (
            "an unknown block",
            service_with("probe { }", ""),
            "template: containers: unknown block `probe`",
        ),
        (
            "a missing required argument",
            r#"resource "google_pubsub_topic" "t" { labels = {} }"#.into(),
            "google_pubsub_topic.t: missing required argument `name`",
        ),
        (
            "a missing required argument in a block",
            service_with("env { value = \"1\" }", ""),
            "template: containers: env: missing required argument `name`",
        ),
        (
            "a missing required block",
            r#"resource "google_cloud_run_v2_service" "s" {
  name     = "s"
  location = "us-central1"
}"#
            .into(),
            "google_cloud_run_v2_service.s: missing required block `template`",
        ),
        (
            "a block written as an argument",
            r#"resource "google_pubsub_subscription" "s" {
  name  = "s"
  topic = "t"
  push_config = { push_endpoint = "https://example.com" }
}"#
            .into(),
            "`push_config` is a block: write `push_config { … }`, not `push_config = …`",
        ),
        (
            "an argument written as a block",
            r#"resource "google_pubsub_topic" "t" {
  name = "t"
  labels {
    team = "data"
  }
}"#
            .into(),
            "`labels` is an argument: write `labels = …`, not `labels { … }`",
        ),
        (
            "a single block repeated",
            r#"resource "google_pubsub_subscription" "s" {
  name  = "s"
  topic = "t"
  retry_policy { minimum_backoff = "10s" }
  retry_policy { minimum_backoff = "20s" }
}"#
            .into(),
            "google_pubsub_subscription.s: `retry_policy` may appear only once",
        ),
        (
            "a dynamic block of an unknown block",
            service_with(
                "dynamic \"envs\" {\n  for_each = {}\n  content {\n    name = \"a\"\n  }\n}",
                "",
            ),
            "template: containers: dynamic \"envs\": unknown block `envs` (did you mean `env`?)",
        ),
        (
            "a dynamic block's content with an unknown argument",
            service_with(&dynamic_env("vaule"), ""),
            "template: containers: env: unknown argument `vaule` (did you mean `value`?)",
        ),
        (
            "a dynamic block of an argument",
            service_with("dynamic \"image\" {\n  for_each = []\n  content {}\n}", ""),
            "dynamic \"image\": `image` is an argument, not a block",
        ),
        (
            "a dynamic block's argument outside its content",
            service_with(
                "dynamic \"env\" {\n  for_each = {}\n  name = \"a\"\n  content {\n    name = \"a\"\n  }\n}",
                "",
            ),
            "dynamic \"env\": `name` belongs inside `content`",
        ),
    ];
    for (case, source, expected) in &cases {
        let problems = check_source(schema, "planted.tf", source);
        let listed: Vec<String> = problems.iter().map(Problem::to_string).collect();
        assert!(
            problems.iter().any(|p| p.message.contains(expected)),
            "{case}: expected `{expected}` among {listed:#?}"
        );
        assert_eq!(
            problems.len(),
            1,
            "{case}: one problem expected, found {listed:#?}"
        );
    }
    // Problems name their line.
    let problems = check_source(schema, "planted.tf", &service_with("", r#"ingres = "x""#));
    assert_eq!(
        problems[0]
            .to_string()
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["planted.tf", "5"]
    );
    // Meta-arguments, lifecycle and valid dynamic blocks are no mistakes.
    let fine = service_with(
        &dynamic_env("value"),
        "count = 1\n  depends_on = []\n  lifecycle {\n    prevent_destroy = true\n  }",
    );
    assert_eq!(check_source(schema, "fine.tf", &fine), []);
}

// ---------------------------------------------------------------------------------------------
// Contracts between the Terraform and the code.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use baton_core::config::Env;
use baton_google::config::Topics;
use baton_google::store::indexes::{INDEXES, Order};
use baton_service::service::ServiceConfig;
use baton_tests::terraform::module::{Module, at, literal, normalize, text};

fn module() -> Module {
    Module::load(&repo_root().join("terraform")).expect("terraform/ parses")
}

/// What a deployment would give a variable Terraform sets from an expression.
fn sample(variable: &str) -> String {
    match variable {
        "BATON_PROJECT" | "BATON_BIGQUERY_PROJECT" => "acme".into(),
        "BATON_FIRESTORE_DATABASE" => "(default)".into(),
        "BATON_BIGQUERY_LOCATION" => "US".into(),
        "BATON_TOPIC_PLANNER" => "baton-planner".into(),
        "BATON_TOPIC_EXECUTOR" => "baton-executor".into(),
        "BATON_TOPIC_IMPORTER" => "baton-importer".into(),
        "BATON_AUTH_AUDIENCE" => "https://baton-planner-123.us-central1.run.app".into(),
        "BATON_AUTH_CALLERS" => "baton-push@acme.iam.gserviceaccount.com".into(),
        "BATON_DEFAULT_CONCURRENCY" => "10".into(),
        "BATON_PRICE_PER_TIB" => "6.25".into(),
        "BATON_EXTRACT_BUCKET" => "acme-baton-extracts".into(),
        "BATON_STAGING_BUCKET" => "acme-baton-staging".into(),
        "BATON_LANDING_BUCKET" => "acme-baton-landing".into(),
        "BATON_ENCRYPTION_KEY" => baton_core::secrets::Sealer::generate_key(),
        "BATON_OAUTH_CLIENT_ID" => "123-abc.apps.googleusercontent.com".into(),
        "BATON_ALLOWED_DOMAINS" => "acme.example".into(),
        other => panic!("give tests/e2e/terraform.rs a sample value of {other}"),
    }
}

/// Each service's configuration, read as the service reads it at start.
fn configure(service: &str, env: &Env) -> anyhow::Result<()> {
    match service {
        "tick" => baton_tick::Config::from_env(env).map(drop)?,
        "planner" => baton_planner::Config::from_env(env).map(drop)?,
        "executor" => baton_executor::Config::from_env(env).map(drop)?,
        "importer" => baton_importer::Config::from_env(env).map(drop)?,
        "api" => baton_api::Config::from_env(env).map(drop)?,
        other => anyhow::bail!("terraform/ deploys a service Baton does not have: {other}"),
    }
    Ok(())
}

/// A service's environment on Cloud Run: its `env` and `secret_env` in `local.services`.
fn service_env(module: &Module, service: &str) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let services = module.local("services")?;
    let settings = module.entry(services, service)?;
    let mut env: BTreeMap<String, Option<String>> = module
        .entries(&module.entry(&settings, "env")?)?
        .into_iter()
        .map(|(k, v)| (k, literal(&v).map(str::to_string)))
        .collect();
    for name in module
        .entries(&module.entry(&settings, "secret_env")?)?
        .into_keys()
    {
        env.insert(name, None);
    }
    Ok(env)
}

#[test]
fn every_variable_a_service_reads_is_set_or_has_a_default_and_none_set_goes_unread()
-> anyhow::Result<()> {
    let module = module();
    let deployed: BTreeSet<String> = module
        .entries(module.local("services")?)?
        .into_keys()
        .collect();
    assert_eq!(
        deployed,
        ["api", "executor", "importer", "planner", "tick"]
            .map(String::from)
            .into(),
    );
    for service in &deployed {
        let set = service_env(&module, service)?;
        let values: HashMap<String, String> = set
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().unwrap_or_else(|| sample(name))))
            .collect();
        let env = Env::from_map(values);
        if let Err(e) = configure(service, &env) {
            panic!("the {service} service as Terraform deploys it does not start: {e:#}");
        }
        let asked = env.asked();
        for name in set.keys() {
            assert!(
                asked.contains(name),
                "Terraform sets {name} on the {service} service, which never reads it"
            );
        }
    }
    Ok(())
}

/// `expr`'s text with `each.key` standing for `key`.
fn for_key(expr: &hcl_edit::expr::Expression, key: &str) -> String {
    normalize(&text(expr).replace("each.key", &format!("\"{key}\"")))
}

#[test]
fn every_topic_has_an_oidc_push_subscription_to_its_service_which_accepts_its_tokens()
-> anyhow::Result<()> {
    let module = module();
    let subscription = module.resource("google_pubsub_subscription", "push")?;
    let receivers = module.entries(module.local("receivers")?)?;
    let topics = module.local("receiver_topics")?;
    let run = module.resource("google_cloud_run_v2_service", "service")?;
    for (service, variable, _) in Topics::RECEIVERS {
        // The topic exists, and every service that publishes is told its name.
        module.resource("google_pubsub_topic", service)?;
        let topic_name = format!("google_pubsub_topic.{service}.name");
        let common = module.entries(module.local("common_env")?)?;
        assert_eq!(text(&common[variable]), topic_name, "{variable}");
        // The subscription pushes from that topic to the service's /pubsub...
        assert!(
            receivers.contains_key(service),
            "no push subscription for {service}"
        );
        assert_eq!(
            for_key(&module.entry(topics, service)?, service),
            format!("google_pubsub_topic.{service}.id")
        );
        assert_eq!(
            for_key(at(subscription.body, "topic")?, service),
            format!("local.receiver_topics.{service}")
        );
        assert_eq!(
            for_key(at(subscription.body, "push_config.push_endpoint")?, service),
            format!("\"${{local.url.{service}}}/pubsub\"")
        );
        // ...with a token of the push identity for the service's URL...
        assert_eq!(
            for_key(
                at(
                    subscription.body,
                    "push_config.oidc_token.service_account_email"
                )?,
                service
            ),
            "google_service_account.push.email"
        );
        assert_eq!(
            for_key(
                at(subscription.body, "push_config.oidc_token.audience")?,
                service
            ),
            format!("local.url.{service}")
        );
        at(subscription.body, "dead_letter_policy.dead_letter_topic")?;
        // ...which is exactly what the service accepts.
        let services = module.local("services")?;
        let env = module.entries(&module.entry(&module.entry(services, service)?, "env")?)?;
        assert_eq!(
            text(&env["BATON_AUTH_AUDIENCE"]),
            format!("local.url.{service}")
        );
        assert_eq!(
            text(&env["BATON_AUTH_CALLERS"]),
            "google_service_account.push.email",
            "{service}'s callers"
        );
    }
    // A push is answered within the ack deadline: the executor waits less than its deadline,
    // and each receiver's Cloud Run timeout is no shorter than it.
    let services = module.local("services")?;
    for (service, settings) in receivers {
        let deadline: u64 = text(&module.entry(&settings, "ack_deadline_seconds")?).parse()?;
        let timeout = text(&module.entry(&module.entry(services, &service)?, "timeout")?);
        let timeout: u64 = timeout.trim_matches('"').trim_end_matches('s').parse()?;
        assert!(
            timeout >= deadline,
            "{service}: timeout {timeout}s < ack deadline {deadline}s"
        );
    }
    let executor = service_env(&module, "executor")?;
    let wait: u64 = executor["BATON_EXECUTOR_WAIT_SECONDS"]
        .as_deref()
        .unwrap_or("540")
        .parse()?;
    assert!(
        wait + 30 <= 600,
        "the executor's wait leaves no margin before its ack deadline"
    );
    // Every service checks its callers' tokens itself (Cloud Run's check would strip their
    // signatures), the API included: it signs people in.
    assert_eq!(text(at(run.body, "invoker_iam_disabled")?), "true");
    let api = service_env(&module, "api")?;
    assert!(api.contains_key("BATON_OAUTH_CLIENT_ID") && api.contains_key("BATON_ALLOWED_DOMAINS"));

    // Cloud Scheduler calls the tick with a token the tick accepts.
    let job = module.resource("google_cloud_scheduler_job", "tick")?;
    assert_eq!(
        text(at(job.body, "http_target.uri")?),
        "\"${local.url.tick}/tick\""
    );
    assert_eq!(text(at(job.body, "http_target.http_method")?), "\"POST\"");
    assert_eq!(
        text(at(
            job.body,
            "http_target.oidc_token.service_account_email"
        )?),
        "google_service_account.scheduler.email"
    );
    assert_eq!(
        text(at(job.body, "http_target.oidc_token.audience")?),
        "local.url.tick"
    );
    let services = module.local("services")?;
    let tick = module.entries(&module.entry(&module.entry(services, "tick")?, "env")?)?;
    assert_eq!(text(&tick["BATON_AUTH_AUDIENCE"]), "local.url.tick");
    assert_eq!(
        text(&tick["BATON_AUTH_CALLERS"]),
        "google_service_account.scheduler.email"
    );
    Ok(())
}

/// An index as Terraform declares it: its collection, its scope and its fields' orders.
type DeclaredIndex = (String, String, Vec<(String, String)>);

#[test]
fn every_index_the_queries_need_is_declared_and_no_other() -> anyhow::Result<()> {
    let module = module();
    let mut declared = Vec::new();
    for index in module.resources("google_firestore_index") {
        let collection = literal(at(index.body, "collection")?)
            .unwrap_or_default()
            .to_string();
        let scope = literal(at(index.body, "query_scope")?)
            .unwrap_or_default()
            .to_string();
        assert!(
            scope == "COLLECTION" || scope == "COLLECTION_GROUP",
            "{}: {scope}",
            index.name
        );
        let fields: Vec<(String, String)> = index
            .body
            .get_blocks("fields")
            .map(|f| {
                (
                    literal(at(&f.body, "field_path").unwrap())
                        .unwrap()
                        .to_string(),
                    literal(at(&f.body, "order").unwrap()).unwrap().to_string(),
                )
            })
            .collect();
        declared.push((collection, scope, fields));
    }
    let needed: Vec<DeclaredIndex> = INDEXES
        .iter()
        .map(|index| {
            let fields = index
                .fields
                .iter()
                .map(|(field, order)| {
                    let order = match order {
                        Order::Ascending => "ASCENDING",
                        Order::Descending => "DESCENDING",
                    };
                    (field.to_string(), order.to_string())
                })
                .collect();
            let scope = if index.group {
                "COLLECTION_GROUP"
            } else {
                "COLLECTION"
            };
            (index.collection.to_string(), scope.to_string(), fields)
        })
        .collect();
    for index in &needed {
        assert!(
            declared.contains(index),
            "terraform/firestore.tf lacks the index {index:?}"
        );
    }
    for index in &declared {
        assert!(
            needed.contains(index),
            "terraform/firestore.tf declares an index no query needs: {index:?}"
        );
    }
    Ok(())
}

/// One IAM binding: who, which role, on what.
type Binding = (String, String, String);

/// The bindings `terraform/` makes, read from its `*_iam_member` resources.
fn terraform_bindings(module: &Module) -> anyhow::Result<BTreeSet<Binding>> {
    let mut bindings = BTreeSet::new();
    // Project roles, from their maps of service → roles.
    for (local, on) in [
        ("firestore_roles", "project"),
        ("bigquery_roles", "BigQuery project"),
    ] {
        for (service, roles) in module.entries(module.local(local)?)? {
            let hcl_edit::expr::Expression::Array(roles) = roles else {
                anyhow::bail!("local.{local}.{service} is not a list");
            };
            for role in roles.iter() {
                let role = literal(role).expect("roles are literal").to_string();
                bindings.insert((service.clone(), role, on.to_string()));
            }
        }
    }
    let types = [
        ("google_pubsub_topic_iam_member", "topic"),
        ("google_pubsub_subscription_iam_member", "subscription"),
        ("google_storage_bucket_iam_member", "bucket"),
        ("google_secret_manager_secret_iam_member", "secret_id"),
        ("google_service_account_iam_member", "service_account_id"),
        ("google_cloud_run_v2_service_iam_member", "name"),
    ];
    for (type_name, target) in types {
        for resource in module.resources(type_name) {
            let role = literal(at(resource.body, "role")?)
                .expect("roles are literal")
                .to_string();
            let for_each = resource
                .body
                .get_attribute("for_each")
                .map(|a| text(&a.value));
            // What the binding is on: the resource it names.
            let target = text(at(resource.body, target)?);
            let target = target
                .trim_end_matches(".name")
                .trim_end_matches(".secret_id")
                .trim_end_matches(".id");
            let on = if target.starts_with("each.value") {
                for_each.clone().unwrap_or_default()
            } else {
                target.to_string()
            };
            // Who: one service account, each of a literal set, the Pub/Sub agent, or people.
            let member = text(at(resource.body, "member")?);
            let who: Vec<String> = if member == "local.pubsub_agent" {
                vec!["Pub/Sub service agent".into()]
            } else if member == "local.storage_agent" {
                vec!["Cloud Storage service agent".into()]
            } else if member == "each.value" {
                let set = for_each.clone().unwrap_or_default();
                let inner = set.strip_prefix("toset(").and_then(|s| s.strip_suffix(')'));
                vec![inner.unwrap_or(&set).to_string()]
            } else if member == "google_service_account.service[each.key].member" {
                let list = for_each.clone().unwrap_or_default();
                let inner = list
                    .strip_prefix("toset([")
                    .and_then(|l| l.strip_suffix("])"))
                    .unwrap_or_else(|| {
                        panic!(
                            "{type_name}.{}: for_each is not a literal set",
                            resource.name
                        )
                    });
                inner
                    .split(',')
                    .map(|s| s.trim_matches('"').to_string())
                    .collect()
            } else if let Some(rest) = member.strip_prefix("google_service_account.") {
                let account = rest.trim_end_matches(".member");
                vec![account.trim_start_matches("service.").to_string()]
            } else {
                anyhow::bail!(
                    "{type_name}.{}: cannot tell who `{member}` is",
                    resource.name
                );
            };
            for who in who {
                bindings.insert((who, role.clone(), on.clone()));
            }
        }
    }
    Ok(bindings)
}

/// The bindings the README's "Identities and roles" table lists.
fn readme_bindings() -> anyhow::Result<BTreeSet<Binding>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let section = readme
        .split("### Identities and roles")
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("the README has no \"Identities and roles\" section"))?;
    let mut bindings = BTreeSet::new();
    for line in section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`').to_string())
            .collect();
        if cells.len() != 4 || cells[0] == "identity" || cells[0].starts_with("---") {
            continue;
        }
        bindings.insert((cells[0].clone(), cells[2].clone(), cells[3].clone()));
    }
    Ok(bindings)
}

#[test]
fn each_identity_holds_exactly_the_roles_the_readme_lists() -> anyhow::Result<()> {
    let module = module();
    let deployed = terraform_bindings(&module)?;
    let documented = readme_bindings()?;
    let missing: Vec<_> = documented.difference(&deployed).collect();
    let undocumented: Vec<_> = deployed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "the README lists bindings Terraform does not make: {missing:#?}"
    );
    assert!(
        undocumented.is_empty(),
        "Terraform makes bindings the README does not list: {undocumented:#?}"
    );
    // Least privilege: no primitive role, no one outside the project's identities.
    for (who, role, _) in &deployed {
        assert!(
            !["roles/owner", "roles/editor", "roles/viewer"].contains(&role.as_str()),
            "{who}: {role}"
        );
    }
    for file in tf_files(&repo_root().join("terraform"))? {
        let text = std::fs::read_to_string(&file)?;
        assert!(
            !text.contains("allUsers") && !text.contains("allAuthenticatedUsers"),
            "{} grants to everyone",
            file.display()
        );
    }
    Ok(())
}
