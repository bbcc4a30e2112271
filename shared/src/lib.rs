//! Baton's shared library.
//!
//! The pure core: the catalog (`catalog`), schedules (`schedule`), dependency inference (`sql`),
//! plans (`dag`), run and job states (`state`, `run`), every change of a run as a pure
//! transition (`lifecycle`), ids (`ids`), messages (`messages`), cost roll-ups (`costs`),
//! connections (`connections`) and the statements of the write modes (`writes`); the ports the
//! planner is written against (`ports`), an in-memory implementation for property tests
//! (`memory`), and the behaviour both implementations must show (`port_suite`). The adapters,
//! which only translate: Firestore (`store`), Pub/Sub (`bus`), BigQuery (`warehouse`), Cloud
//! Storage (`storage`), Google credentials (`gcp`). What uses them: a table's dry run
//! (`dry_run`), alerts to Slack (`alerts`). And what every service needs: configuration
//! (`config`), sealed secrets (`secrets`), logs (`telemetry`), HTTP helpers (`http`),
//! verification of callers' OIDC tokens (`oidc`), per-key turns (`serial`), and the start-up
//! every service's `main` calls (`service`).
pub mod catalog;
pub mod connections;
pub mod costs;
pub mod dag;
pub mod dry_run;
pub mod ids;
pub mod lifecycle;
pub mod memory;
pub mod messages;
pub mod port_suite;
pub mod ports;
pub mod run;
pub mod schedule;
pub mod sql;
pub mod state;
pub mod writes;

pub mod alerts;
pub mod api;
pub mod bus;
pub mod config;
pub mod gcp;
pub mod http;
pub mod oidc;
pub mod secrets;
pub mod serial;
pub mod service;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod warehouse;
