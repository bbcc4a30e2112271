//! Connections: the credentials of what Baton talks to outside Google Cloud (a Slack webhook
//! today; databases to import from later), stored in `connections/{name}` with the secret
//! sealed (`secrets`). The API takes a secret in and never gives it back; only the service
//! that uses it opens it, and nothing logs it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::{InvalidName, validate_frequency_name};
use crate::secrets::Sealed;

pub const COLLECTION: &str = "connections";
pub const SCHEMA_VERSION: u32 = 1;

/// What a connection connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// A Slack incoming webhook; the secret is its URL.
    Slack,
}

/// A stored connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Connection {
    pub schema_version: u32,
    pub name: String,
    pub kind: ConnectionKind,
    #[serde(default)]
    pub description: Option<String>,
    /// The secret, sealed for this document.
    pub secret: Sealed,
    #[serde(with = "crate::stamp::timestamp")]
    #[schemars(with = "jiff::Timestamp")]
    pub updated_at: Timestamp,
}

/// What the API says of a connection: everything but the secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConnectionView {
    pub name: String,
    pub kind: ConnectionKind,
    #[serde(default)]
    pub description: Option<String>,
    pub updated_at: Timestamp,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            name: c.name.clone(),
            kind: c.kind,
            description: c.description.clone(),
            updated_at: c.updated_at,
        }
    }
}

/// What a sealed secret is bound to: its document's path.
pub fn bound_to(name: &str) -> String {
    format!("{COLLECTION}/{name}")
}

/// Connection names follow frequency names' rules: `alerts`, `slack-data`, `crm_db`.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    validate_frequency_name(name).map_err(|_| {
        InvalidName(format!(
            "connection name `{name}` must start with a lowercase letter and contain only \
             lowercase letters, digits, `_` and `-` (at most 63)"
        ))
    })
}

/// Checks a secret for its kind, without saying it back.
pub fn validate_secret(kind: ConnectionKind, secret: &str) -> Result<(), String> {
    match kind {
        ConnectionKind::Slack => match url::Url::parse(secret) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(()),
            _ => Err("a slack connection's secret is its webhook's http(s) URL".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_secrets_are_checked_without_echoing_the_secret() {
        assert!(validate_name("alerts").is_ok());
        assert!(validate_name("Alerts").is_err());
        assert!(validate_secret(ConnectionKind::Slack, "https://hooks.slack.com/x").is_ok());
        let refused = validate_secret(ConnectionKind::Slack, "xoxb-secret-token").unwrap_err();
        assert!(!refused.contains("xoxb"), "{refused}");
    }
}
