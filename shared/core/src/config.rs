//! Configuration, from environment variables only (Terraform sets them in production), parsed
//! once at start-up into typed structs. A bad value stops the service with the variable's name.
//! This is the reading of variables; what each crate reads lives beside what it configures
//! (where Google is in `baton_google::config`, where a service listens in
//! `baton_service::config`).

use std::collections::HashMap;
use std::fmt;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_variable() {
        let env = Env::from_pairs(&[("PORT", "eighty"), ("EMPTY", " ")]);
        let err = env.parse_or("PORT", 8080u16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PORT: `eighty` is not valid: invalid digit found in string"
        );
        assert_eq!(env.parse_or("EMPTY", 8080u16), Ok(8080));
        assert_eq!(
            env.required("MISSING").unwrap_err().to_string(),
            "MISSING: is not set"
        );
        assert!(env.asked().contains("EMPTY"));
    }
}
