//! Baton's shared library.
//!
//! The pure core: the catalog (`catalog`), schedules (`schedule`), dependency inference (`sql`),
//! plans (`dag`), run and job states (`state`, `run`), ids (`ids`) and messages (`messages`).
//! The adapters, which only translate: Firestore (`store`), Pub/Sub (`bus`), BigQuery
//! (`warehouse`), Google credentials (`gcp`). And what every service needs: configuration
//! (`config`), logs (`telemetry`), HTTP helpers (`http`).

pub mod catalog;
pub mod dag;
pub mod ids;
pub mod lifecycle;
pub mod memory;
pub mod messages;
pub mod ports;
pub mod run;
pub mod schedule;
pub mod sql;
pub mod state;

pub mod api;
pub mod bus;
pub mod config;
pub mod gcp;
pub mod http;
pub mod store;
pub mod telemetry;
pub mod warehouse;
