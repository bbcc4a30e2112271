//! What every Baton service runs on: the start-up each service's `main` calls (`service`),
//! where it listens (`config`), logs (`telemetry`), HTTP serving, JSON errors, Pub/Sub push
//! deliveries and POSTs with retries (`http`), refused pushes and dead letters (`dead_letters`), verification of callers' OIDC tokens (`oidc`),
//! per-key turns (`serial`), alerts to Slack (`alerts`), a table's dry run (`dry_run`), and the
//! API's request and answer types, which the CLI shares (`api`).
pub mod alerts;
pub mod api;
pub mod config;
pub mod dead_letters;
pub mod dry_run;
pub mod http;
pub mod oidc;
pub mod openapi;
pub mod serial;
pub mod service;
pub mod telemetry;
