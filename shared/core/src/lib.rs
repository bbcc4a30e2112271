//! Baton's pure core, kept pure by the compiler: nothing in its dependency tree talks to
//! Firestore, HTTP, Google or an async runtime.
//!
//! People and what they may do (`access`). The catalog (`catalog`), schedules (`schedule`), dependency inference (`sql`), plans
//! (`dag`), run and job states (`state`, `run`), every change of a run as a pure transition
//! (`lifecycle`), messages Pub/Sub gave up on (`dead_letters`), the executor's decisions about an attempt (`attempt`), ids (`ids`), messages
//! (`messages`), cost roll-ups (`costs`), connections (`connections`) and their sealed secrets
//! (`secrets`), the statements of the write modes (`writes`), BigQuery's jobs and schemas in
//! Baton's terms (`warehouse`), reading settings from the environment (`config`), errors'
//! common questions (`errors`) and how instants are stored (`stamp`). The ports the services
//! are written against (`ports`), with their own error kinds; with the `memory` feature, an
//! in-memory model of them for property tests (`memory`) and the behaviour every
//! implementation must show (`port_suite`).
pub mod access;
pub mod attempt;
pub mod catalog;
pub mod config;
pub mod connections;
pub mod costs;
pub mod dag;
pub mod dead_letters;
pub mod errors;
pub mod graph;
pub mod ids;
pub mod imports;
pub mod lifecycle;
pub mod loads;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod messages;
pub mod parallel;
#[cfg(any(test, feature = "memory"))]
pub mod port_suite;
pub mod ports;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod sql;
pub mod stamp;
pub mod state;
pub mod sweep;
pub mod warehouse;
pub mod writes;
