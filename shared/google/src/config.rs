//! Where Google is: the project, the Firestore database, and each API's endpoint, which an
//! emulator's variable (`FIRESTORE_EMULATOR_HOST`, `PUBSUB_EMULATOR_HOST`,
//! `BIGQUERY_EMULATOR_HOST`, `STORAGE_EMULATOR_HOST`) points at the local stack.

use baton_core::config::{ConfigError, Env};

/// The Pub/Sub topics, one per receiving service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub planner: String,
    pub executor: String,
    pub importer: String,
}

impl Topics {
    /// Each service that receives pushes, the variable naming its topic, and the default
    /// name. Terraform's push subscriptions follow this list (`tests/e2e/terraform.rs`).
    pub const RECEIVERS: [(&'static str, &'static str, &'static str); 3] = [
        ("planner", "BATON_TOPIC_PLANNER", "baton-planner"),
        ("executor", "BATON_TOPIC_EXECUTOR", "baton-executor"),
        ("importer", "BATON_TOPIC_IMPORTER", "baton-importer"),
    ];

    fn from_env(env: &Env) -> Self {
        let [planner, executor, importer] =
            Self::RECEIVERS.map(|(_, variable, default)| env.or(variable, default));
        Self {
            planner,
            executor,
            importer,
        }
    }
}

/// Google Cloud: the project, Firestore, Pub/Sub and BigQuery, each on its emulator when its
/// variable is set (`FIRESTORE_EMULATOR_HOST`, `PUBSUB_EMULATOR_HOST`, `BIGQUERY_EMULATOR_HOST`),
/// which then needs no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gcp {
    /// The project of Firestore and Pub/Sub: `BATON_PROJECT`, else `GOOGLE_CLOUD_PROJECT`.
    pub project: String,
    pub firestore_database: String,
    /// `http://host:port` of the Firestore emulator, when there is one.
    pub firestore_emulator: Option<String>,
    /// `http://host:port` of the Pub/Sub emulator, or the Pub/Sub API.
    pub pubsub_url: String,
    pub pubsub_emulated: bool,
    /// The project whose BigQuery holds Baton's tables and runs its jobs.
    pub bigquery_project: String,
    pub bigquery_location: String,
    /// The BigQuery API's v2 base URL.
    pub bigquery_url: String,
    pub bigquery_emulated: bool,
    /// Cloud Storage's endpoint, or the emulator's (`STORAGE_EMULATOR_HOST`).
    pub storage_url: String,
    pub storage_emulated: bool,
    pub topics: Topics,
}

impl Gcp {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let project = env
            .get("BATON_PROJECT")
            .or_else(|| env.get("GOOGLE_CLOUD_PROJECT"))
            .ok_or_else(|| ConfigError {
                variable: "BATON_PROJECT".into(),
                message: "is not set (nor GOOGLE_CLOUD_PROJECT): the Google Cloud project id"
                    .into(),
            })?;
        let pubsub_emulator = env.get("PUBSUB_EMULATOR_HOST");
        let bigquery_emulator = env.get("BIGQUERY_EMULATOR_HOST");
        let storage_emulator = env.get("STORAGE_EMULATOR_HOST");
        let with_scheme = |host: &str| {
            if host.starts_with("http://") || host.starts_with("https://") {
                host.trim_end_matches('/').to_string()
            } else {
                format!("http://{host}")
            }
        };
        Ok(Self {
            firestore_database: env.or("BATON_FIRESTORE_DATABASE", "(default)"),
            firestore_emulator: env
                .get("FIRESTORE_EMULATOR_HOST")
                .as_deref()
                .map(with_scheme),
            pubsub_url: pubsub_emulator
                .as_deref()
                .map_or_else(|| "https://pubsub.googleapis.com".into(), with_scheme),
            pubsub_emulated: pubsub_emulator.is_some(),
            bigquery_project: env.get("BATON_BIGQUERY_PROJECT").unwrap_or(project.clone()),
            bigquery_location: env.or("BATON_BIGQUERY_LOCATION", "US"),
            bigquery_url: bigquery_emulator.as_deref().map_or_else(
                || "https://bigquery.googleapis.com/bigquery/v2".into(),
                |h| format!("{}/bigquery/v2", with_scheme(h)),
            ),
            bigquery_emulated: bigquery_emulator.is_some(),
            storage_url: storage_emulator
                .as_deref()
                .map_or_else(|| "https://storage.googleapis.com".into(), with_scheme),
            storage_emulated: storage_emulator.is_some(),
            topics: Topics::from_env(env),
            project,
        })
    }
}

/// A service account key's JSON to sign URLs with, read from the file `BATON_SIGNING_KEY_FILE`
/// names; `None` signs with the service's own identity (IAM signBlob on Cloud Run).
pub fn signing_key(env: &Env) -> Result<Option<secrecy::SecretString>, ConfigError> {
    env.get("BATON_SIGNING_KEY_FILE")
        .map(|path| {
            std::fs::read_to_string(&path)
                .map(secrecy::SecretString::from)
                .map_err(|e| ConfigError {
                    variable: "BATON_SIGNING_KEY_FILE".into(),
                    message: format!("{path} cannot be read: {e}"),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs)
    }

    #[test]
    fn emulator_variables_switch_endpoints() {
        let gcp = Gcp::from_env(&env(&[
            ("GOOGLE_CLOUD_PROJECT", "acme"),
            ("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"),
            ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8681"),
            ("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9050/"),
        ]))
        .unwrap();
        assert_eq!(gcp.project, "acme");
        assert_eq!(gcp.bigquery_project, "acme");
        assert_eq!(gcp.pubsub_url, "http://127.0.0.1:8085");
        assert_eq!(
            gcp.firestore_emulator.as_deref(),
            Some("http://127.0.0.1:8681")
        );
        assert!(gcp.pubsub_emulated);
        assert_eq!(gcp.bigquery_url, "http://127.0.0.1:9050/bigquery/v2");
        assert!(gcp.bigquery_emulated);
        assert_eq!(gcp.topics.planner, "baton-planner");
    }

    #[test]
    fn production_endpoints_by_default() {
        let gcp = Gcp::from_env(&env(&[
            ("BATON_PROJECT", "acme"),
            ("BATON_BIGQUERY_PROJECT", "acme-data"),
        ]))
        .unwrap();
        assert_eq!(gcp.pubsub_url, "https://pubsub.googleapis.com");
        assert!(!gcp.pubsub_emulated && !gcp.bigquery_emulated);
        assert_eq!(gcp.bigquery_project, "acme-data");
        assert_eq!(gcp.firestore_database, "(default)");
        assert_eq!(gcp.firestore_emulator, None);
    }

    #[test]
    fn errors_name_the_variable() {
        let err = Gcp::from_env(&env(&[])).unwrap_err();
        assert_eq!(err.variable, "BATON_PROJECT");
    }
}
