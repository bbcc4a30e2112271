//! Where a service listens.

use std::net::IpAddr;

use baton_core::config::{ConfigError, Env};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_defaults_and_a_bad_one_is_named() {
        let err = Listen::from_env(&Env::from_pairs(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(err.variable, "PORT");
        let listen = Listen::from_env(&Env::from_pairs(&[("PORT", "")])).unwrap();
        assert_eq!(listen.port, 8080);
    }
}
