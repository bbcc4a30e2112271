//! `terraform/` checked offline, as CI can (no provider can be downloaded, so `terraform
//! validate` cannot run): every file against the google provider's schema, a test that the
//! check finds each kind of mistake planted in a file, and contracts between the Terraform and
//! the code that runs in what it deploys.

use std::sync::LazyLock;

use baton_tests::repo_root;
use baton_tests::terraform::check::{Problem, check_dir, check_source};
use baton_tests::terraform::schema::{Schema, assembly_path};

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
            service_with(
                r#"dynamic "env" {
        for_each = { A = "1" }
        content {
          name  = env.key
          vaule = env.value
        }
      }"#,
                "",
            ),
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
        r#"dynamic "env" {
        for_each = { A = "1" }
        content {
          name  = env.key
          value = env.value
        }
      }"#,
        "count = 1\n  depends_on = []\n  lifecycle {\n    prevent_destroy = true\n  }",
    );
    assert_eq!(check_source(schema, "fine.tf", &fine), []);
}
