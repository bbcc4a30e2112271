//! Baton's Google adapters. They only translate between the core's types and Google's APIs:
//! Firestore (`store`, which implements the core's `RunPort`), Pub/Sub (`bus`, which
//! implements `Publish`), BigQuery (`warehouse`), Cloud Storage (`storage`), Google
//! credentials and REST calls (`gcp`), and where each API is (`config`).
pub mod bus;
pub mod config;
pub mod gcp;
pub mod storage;
pub mod store;
pub mod warehouse;
