//! Configuration, from environment variables only (Terraform sets them in production), parsed
//! once at start-up into typed structs. A bad value stops the service with the variable's name.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A variable that is missing or cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Reads variables from the process, or from a map in tests. An empty value counts as unset.
/// It remembers which variables were asked for (`asked`), so that a test can hold a service's
/// configuration against what Terraform sets.
pub struct Env {
    lookup: Lookup,
    asked: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

impl Env {
    pub fn process() -> Self {
        Self {
            lookup: Box::new(|name| std::env::var(name).ok()),
            asked: Default::default(),
        }
    }

    pub fn from_map(map: HashMap<String, String>) -> Self {
        Self {
            lookup: Box::new(move |name| map.get(name).cloned()),
            asked: Default::default(),
        }
    }

    /// From name and value pairs: configurations written in tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.asked
            .lock()
            .expect("not poisoned")
            .insert(name.to_string());
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// Every variable asked for so far.
    pub fn asked(&self) -> std::collections::BTreeSet<String> {
        self.asked.lock().expect("not poisoned").clone()
    }

    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name).ok_or_else(|| ConfigError {
            variable: name.to_string(),
            message: "is not set".to_string(),
        })
    }

    pub fn or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError {
                variable: name.to_string(),
                message: format!("`{value}` is not valid: {e}"),
            }),
        }
    }
}

/// Where a service listens. Cloud Run sets `PORT`; `HOST` defaults to every interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub host: IpAddr,
    pub port: u16,
    /// Stop when standard input closes (`BATON_STOP_ON_STDIN_EOF`): a process started by a
    /// harness then never outlives it.
    pub stop_on_stdin_eof: bool,
}

impl Listen {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            host: env.parse_or("HOST", IpAddr::from([0, 0, 0, 0]))?,
            port: env.parse_or("PORT", 8080)?,
            stop_on_stdin_eof: env.parse_or("BATON_STOP_ON_STDIN_EOF", false)?,
        })
    }
}

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
        let err = Listen::from_env(&env(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PORT: `eighty` is not valid: invalid digit found in string"
        );
        assert_eq!(Listen::from_env(&env(&[("PORT", "")])).unwrap().port, 8080);
    }
}
