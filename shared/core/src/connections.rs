//! Connections: the credentials of what Baton talks to outside Google Cloud (a Slack webhook;
//! the PostgreSQL and MySQL databases that import tables copy), stored in `connections/{name}`
//! with the secret sealed (`secrets`). The API takes a secret in and never gives it back; only
//! the service that uses it opens it, and nothing logs it.
//!
//! A database connection's secret is its URL, `postgres://user:password@host:5432/db?sslmode=require`
//! or `mysql://user:password@host:3306/db?sslmode=verify-full`: host, port, database, user,
//! password and TLS mode in one line that every database tool understands. What can be shown
//! of it (everything but the password) is kept beside it as `address`.

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
    /// A PostgreSQL database to import from; the secret is its URL.
    Postgres,
    /// A MySQL or MariaDB database to import from; the secret is its URL.
    Mysql,
}

impl ConnectionKind {
    /// Whether import tables can read through it.
    pub fn is_database(self) -> bool {
        matches!(self, Self::Postgres | Self::Mysql)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }
}

/// A stored connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Connection {
    pub schema_version: u32,
    pub name: String,
    pub kind: ConnectionKind,
    #[serde(default)]
    pub description: Option<String>,
    /// What can be shown of a database's URL: `user@host:port/database (tls)`.
    #[serde(default)]
    pub address: Option<String>,
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
    /// A database's `user@host:port/database (tls)`: its URL without the password.
    #[serde(default)]
    pub address: Option<String>,
    pub updated_at: Timestamp,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        Self {
            name: c.name.clone(),
            kind: c.kind,
            description: c.description.clone(),
            address: c.address.clone(),
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

/// Checks a secret for its kind, without saying it back; for a database, what can be shown
/// of it.
pub fn validate_secret(kind: ConnectionKind, secret: &str) -> Result<Option<String>, String> {
    match kind {
        ConnectionKind::Slack => match url::Url::parse(secret) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(None),
            _ => Err("a slack connection's secret is its webhook's http(s) URL".into()),
        },
        ConnectionKind::Postgres | ConnectionKind::Mysql => {
            Database::parse(kind, secret).map(|d| Some(d.address()))
        }
    }
}

/// How a database connection is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// In the clear: for a database reached over a private network only.
    Disable,
    /// Encrypted, the server's certificate not checked (libpq's `require`).
    Require,
    /// Encrypted, the certificate checked against the public roots and the host's name.
    VerifyFull,
}

impl TlsMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A database connection's URL, read. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Database {
    pub kind: ConnectionKind,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
    pub tls: TlsMode,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.address())
    }
}

impl Database {
    /// Reads `postgres://user:password@host:port/database?sslmode=MODE` (or `mysql://…`).
    /// The errors never contain the URL or its password.
    pub fn parse(kind: ConnectionKind, secret: &str) -> Result<Self, String> {
        let (scheme, port) = match kind {
            ConnectionKind::Postgres => ("postgres", 5432),
            ConnectionKind::Mysql => ("mysql", 3306),
            ConnectionKind::Slack => return Err("a slack connection is not a database".into()),
        };
        let form = format!(
            "a {scheme} connection's secret is its URL, \
             `{scheme}://user:password@host:{port}/database?sslmode=require` \
             (sslmode one of disable, require, verify-full)"
        );
        let url = url::Url::parse(secret.trim()).map_err(|_| form.clone())?;
        let scheme_ok = match kind {
            ConnectionKind::Postgres => matches!(url.scheme(), "postgres" | "postgresql"),
            _ => matches!(url.scheme(), "mysql" | "mariadb"),
        };
        if !scheme_ok {
            return Err(format!("{form}; this one's scheme is not {scheme}"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{form}; this one has no host"))?;
        let database = url.path().trim_start_matches('/');
        if database.is_empty() || database.contains('/') {
            return Err(format!("{form}; this one names no database"));
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                format!("{form}; its user or password is not valid percent-encoded UTF-8")
            })
        };
        let user = decode(url.username())?;
        if user.is_empty() {
            return Err(format!("{form}; this one has no user"));
        }
        let password = decode(url.password().unwrap_or_default())?;
        let mut tls = TlsMode::VerifyFull;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("sslmode" | "ssl-mode" | "tls", mode) => {
                    tls = match mode.to_ascii_lowercase().as_str() {
                        "disable" | "disabled" => TlsMode::Disable,
                        "require" | "required" => TlsMode::Require,
                        "verify-full" | "verify_identity" | "verify-identity" => {
                            TlsMode::VerifyFull
                        }
                        _ => {
                            return Err(format!("{form}; sslmode `{mode}` is not one of them"));
                        }
                    }
                }
                (other, _) => {
                    return Err(format!("{form}; `{other}` is not a setting Baton reads"));
                }
            }
        }
        Ok(Self {
            kind,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: url.port().unwrap_or(port),
            database: decode(database)?,
            user,
            password,
            tls,
        })
    }

    /// Everything but the password: `user@host:port/database (tls mode)`.
    pub fn address(&self) -> String {
        format!(
            "{}@{}:{}/{} ({})",
            self.user,
            self.host,
            self.port,
            self.database,
            self.tls.name()
        )
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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

    #[test]
    fn a_database_url_is_read_and_shown_without_its_password() {
        let db = Database::parse(
            ConnectionKind::Postgres,
            "postgres://baton:s%40cret@db.internal/shop?sslmode=require",
        )
        .unwrap();
        assert_eq!(
            (db.host.as_str(), db.port, db.database.as_str()),
            ("db.internal", 5432, "shop")
        );
        assert_eq!(
            (db.user.as_str(), db.password.as_str()),
            ("baton", "s@cret")
        );
        assert_eq!(db.tls, TlsMode::Require);
        assert_eq!(db.address(), "baton@db.internal:5432/shop (require)");
        assert!(!format!("{db:?}").contains("cret"));
        let mysql =
            Database::parse(ConnectionKind::Mysql, "mysql://root:pw@127.0.0.1:3307/app").unwrap();
        assert_eq!((mysql.port, mysql.tls), (3307, TlsMode::VerifyFull));
        for (kind, bad) in [
            (ConnectionKind::Postgres, "mysql://u:hunter2@h/db"),
            (ConnectionKind::Postgres, "postgres://u:hunter2@h/"),
            (ConnectionKind::Postgres, "postgres://:hunter2@h/db"),
            (
                ConnectionKind::Postgres,
                "postgres://u:hunter2@h/db?sslmode=maybe",
            ),
            (ConnectionKind::Mysql, "mysql://u:hunter2@h/db?sslcert=x"),
            (ConnectionKind::Mysql, "hunter2"),
        ] {
            let e = Database::parse(kind, bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
