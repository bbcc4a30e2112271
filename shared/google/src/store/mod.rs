//! Firestore: all of Baton's configuration, state and history.
//!
//! ```text
//! frequencies/{name}                 Frequency
//! tables/{dataset.table}             TableDoc
//! runs/{run}                         Run
//! runs/{run}/jobs/{dataset.table}    Job
//! runs/{run}/slots/{n}               Slot
//! schedules/{frequency}              ScheduleState
//! backfills/{id}                     Backfill
//! cost_rollups/{day.dim.shard.value} costs::Rollup
//! connections/{name}                 connections::Connection
//! alerts/{id}                        alerts::AlertDoc
//! users/{email}                      access::User
//! groups/{name}                      access::Group
//! api_tokens/{sha256}                access::ApiToken
//! access/first_admin                 access::FirstAdmin
//! audit/{id}                         access::AuditEntry
//! loads/{dataset.table}              loads::LoadSummary
//! loads/{table}/files/{id}           loads::LandedFile
//! loads/{table}/batches/{id}         loads::Batch
//! ```
//!
//! Every state change that two deliveries could race on happens in a transaction (`Txn`) or
//! with a precondition. Reads inside a transaction go through batchGet: the emulator hangs on
//! a plain get inside one.
//!
//! The process counts the documents it reads and writes as Firestore bills them (`usage`): a
//! query that finds nothing costs one read, a transaction's writes count when it commits.

mod access;
mod catalog;
pub mod indexes;
pub mod loads;
mod runs;

pub use runs::Admitted;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use firestore::errors::FirestoreError;
use firestore::{
    FirestoreConsistencySelector, FirestoreDb, FirestoreDbOptions, FirestoreTransaction,
    FirestoreTransactionMode, FirestoreTransactionOptions, FirestoreWritePrecondition,
};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use baton_core::ports::StoreError;
use baton_core::run::{StateChange, Transitions};

use crate::config::Gcp;

pub const FREQUENCIES: &str = "frequencies";
pub const TABLES: &str = "tables";
pub const RUNS: &str = "runs";
pub const JOBS: &str = "jobs";
pub const SLOTS: &str = "slots";
pub const SCHEDULES: &str = "schedules";
pub const BACKFILLS: &str = "backfills";

/// Firestore allows 500 writes in one commit.
pub const MAX_WRITES_PER_COMMIT: usize = 500;

/// The most a commit carries, by its documents' JSON: under the emulator's 4 MiB gRPC message
/// and Firestore's 10 MiB request.
pub const MAX_BYTES_PER_COMMIT: usize = 3 * 1024 * 1024;

/// `items` in commits of at most 500 writes and [`MAX_BYTES_PER_COMMIT`] bytes (as `size`
/// tells; a single item larger than that goes alone).
pub fn commits<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut commits = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let item_bytes = size(item);
        if i > start
            && (i - start == MAX_WRITES_PER_COMMIT || bytes + item_bytes > MAX_BYTES_PER_COMMIT)
        {
            commits.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += item_bytes;
    }
    if start < items.len() {
        commits.push(&items[start..]);
    }
    commits
}

/// What a document weighs in a commit, roughly: its JSON's length.
pub fn json_size<T: Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

/// What a Firestore error means to the store's callers.
pub(crate) fn stored(e: FirestoreError) -> StoreError {
    {
        match &e {
            FirestoreError::DataConflictError(_) => StoreError::AlreadyExists(e.to_string()),
            FirestoreError::DataNotFoundError(_) => StoreError::NotFound(e.to_string()),
            FirestoreError::DatabaseError(db) => match db.public.code.as_str() {
                "Aborted" => StoreError::Contention(e.to_string()),
                "FailedPrecondition" => StoreError::PreconditionFailed(e.to_string()),
                _ if db.retry_possible => StoreError::Unavailable(e.to_string()),
                _ => StoreError::Permanent(e.to_string()),
            },
            FirestoreError::NetworkError(_) | FirestoreError::SystemError(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Permanent(e.to_string()),
        }
    }
}

static READS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);

/// The documents this process has read and written, as Firestore bills them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub reads: u64,
    pub writes: u64,
}

/// This process's Firestore usage so far.
pub fn usage() -> Usage {
    Usage {
        reads: READS.load(Ordering::Relaxed),
        writes: WRITES.load(Ordering::Relaxed),
    }
}

/// Counts the reads of a lookup or query that returned `found` documents (at least one: an
/// empty answer is billed one read).
pub(crate) fn count_reads(found: usize) {
    READS.fetch_add(found.max(1) as u64, Ordering::Relaxed);
}

/// A query's answer, its reads counted.
pub(crate) fn counted<T>(docs: Vec<T>) -> Vec<T> {
    count_reads(docs.len());
    docs
}

fn count_writes(written: usize) {
    WRITES.fetch_add(written as u64, Ordering::Relaxed);
}

/// The Firestore database of one Baton deployment.
#[derive(Clone)]
pub struct Store {
    db: FirestoreDb,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Connects to the project's database: the emulator without credentials when the
    /// configuration names one, else Firestore with Application Default Credentials.
    pub async fn connect(gcp: &Gcp) -> Result<Self, StoreError> {
        let options = FirestoreDbOptions::new(gcp.project.clone())
            .with_database_id(gcp.firestore_database.clone());
        let db = match &gcp.firestore_emulator {
            Some(url) => {
                let anonymous = google_cloud_auth::credentials::anonymous::Builder::new().build();
                FirestoreDb::with_options_auth(
                    options.with_firebase_api_url(url.clone()),
                    anonymous,
                )
                .await
                .map_err(stored)?
            }
            None => FirestoreDb::with_options(options).await.map_err(stored)?,
        };
        Ok(Self { db })
    }

    pub(crate) fn db(&self) -> &FirestoreDb {
        &self.db
    }

    /// The path of a document, to use as the parent of its sub-collections.
    pub(crate) fn doc_path(&self, collection: &str, id: &str) -> Result<String, StoreError> {
        Ok(self.db.parent_path(collection, id).map_err(stored)?.into())
    }

    pub async fn begin(&self) -> Result<Txn<'_>, StoreError> {
        self.begin_with(FirestoreTransactionOptions::new()).await
    }

    /// A transaction of `options`, its reads bound to it.
    async fn begin_with(
        &self,
        options: FirestoreTransactionOptions,
    ) -> Result<Txn<'_>, StoreError> {
        let tx = self
            .db
            .begin_transaction_with_options(options)
            .await
            .map_err(stored)?;
        let reader =
            self.db
                .clone_with_consistency_selector(FirestoreConsistencySelector::Transaction(
                    tx.transaction_id().clone(),
                ));
        Ok(Txn {
            reader,
            tx,
            writes: 0,
            changes: Vec::new(),
        })
    }

    /// Runs `read` on a view of the database as it was at one instant (a read-only
    /// transaction): what several reads answer together, such as a status put together from
    /// documents and counts, then agrees with itself even while a transaction changes them
    /// between two of the reads. A read-only transaction takes no locks and delays no writer.
    pub async fn snapshot<T, F, Fut>(&self, read: F) -> Result<T, StoreError>
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let txn = self
            .begin_with(
                FirestoreTransactionOptions::new().with_mode(FirestoreTransactionMode::ReadOnly),
            )
            .await?;
        let answer = read(Store {
            db: txn.reader.clone(),
        })
        .await;
        txn.rollback().await;
        answer
    }

    /// Reads one document outside any transaction.
    pub async fn get<T: DeserializeOwned + Send>(
        &self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let builder = self.db.fluent().select().by_id_in(collection);
        let builder = match parent {
            Some(p) => builder.parent(p),
            None => builder,
        };
        count_reads(1);
        builder.obj().one(id).await.map_err(stored)
    }

    /// Reads documents by id outside any transaction; missing ones are left out.
    pub async fn get_many<T: DeserializeOwned + Send + 'static>(
        &self,
        parent: Option<&str>,
        collection: &str,
        ids: Vec<String>,
    ) -> Result<Vec<T>, StoreError> {
        batch_get(&self.db, parent, collection, ids)
            .await
            .map(|v| v.into_iter().filter_map(|(_, doc)| doc).collect())
    }

    /// Writes a document whole, whatever was there.
    pub async fn set<T: Serialize + DeserializeOwned + Sync + Send>(
        &self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let builder = self.db.fluent().update().in_col(collection).document_id(id);
        let builder = match parent {
            Some(p) => builder.parent(p),
            None => builder,
        };
        builder
            .object(value)
            .execute::<()>()
            .await
            .map_err(stored)?;
        count_writes(1);
        Ok(())
    }

    /// Creates a document; `AlreadyExists` when one is there.
    pub async fn create<T: Serialize + DeserializeOwned + Sync + Send>(
        &self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let builder = self
            .db
            .fluent()
            .update()
            .in_col(collection)
            .precondition(FirestoreWritePrecondition::Exists(false))
            .document_id(id);
        let builder = match parent {
            Some(p) => builder.parent(p),
            None => builder,
        };
        match builder.object(value).execute::<()>().await {
            Ok(()) => {
                count_writes(1);
                Ok(())
            }
            // The emulator and Firestore answer a failed `exists: false` differently.
            Err(e) => match stored(e) {
                StoreError::PreconditionFailed(m) | StoreError::AlreadyExists(m) => {
                    Err(StoreError::AlreadyExists(m))
                }
                other => Err(other),
            },
        }
    }

    /// Writes documents whole, in commits of at most 500 (each commit atomic, not the whole).
    pub async fn set_all<T: Serialize + DeserializeOwned + Sync + Send>(
        &self,
        parent: Option<&str>,
        collection: &str,
        docs: &[(String, T)],
    ) -> Result<(), StoreError> {
        for chunk in commits(docs, |(_, doc)| json_size(doc)) {
            let mut tx = self.db.begin_transaction().await.map_err(stored)?;
            for (id, value) in chunk {
                let builder = self.db.fluent().update().in_col(collection).document_id(id);
                let builder = match parent {
                    Some(p) => builder.parent(p),
                    None => builder,
                };
                builder
                    .object(value)
                    .add_to_transaction(&mut tx)
                    .map_err(stored)?;
            }
            tx.commit().await.map_err(stored)?;
            count_writes(chunk.len());
        }
        Ok(())
    }

    /// Deletes documents by id, in commits of at most 500.
    pub async fn delete_all(
        &self,
        parent: Option<&str>,
        collection: &str,
        ids: &[String],
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(MAX_WRITES_PER_COMMIT) {
            let mut tx = self.db.begin_transaction().await.map_err(stored)?;
            for id in chunk {
                let builder = self.db.fluent().delete().from(collection).document_id(id);
                let builder = match parent {
                    Some(p) => builder.parent(p),
                    None => builder,
                };
                builder.add_to_transaction(&mut tx).map_err(stored)?;
            }
            tx.commit().await.map_err(stored)?;
            count_writes(chunk.len());
        }
        Ok(())
    }

    /// Every document of a collection. Read by a query, whose answer streams one document per
    /// message: a page of documents listed at once can pass the 4 MiB a gRPC message may
    /// have (a hundred tables of 40 KB of SQL), one document cannot (Firestore's 1 MiB).
    pub async fn list<T: DeserializeOwned + Send + 'static>(
        &self,
        parent: Option<&str>,
        collection: &str,
    ) -> Result<Vec<T>, StoreError> {
        let builder = self.db.fluent().select().from(collection);
        let builder = match parent {
            Some(p) => builder.parent(p),
            None => builder,
        };
        let stream = builder
            .obj::<T>()
            .stream_query_with_errors()
            .await
            .map_err(stored)?;
        let items: Vec<Result<T, FirestoreError>> = stream.collect().await;
        count_reads(items.len());
        items.into_iter().map(|r| r.map_err(stored)).collect()
    }
}

async fn batch_get<T: DeserializeOwned + Send + 'static>(
    db: &FirestoreDb,
    parent: Option<&str>,
    collection: &str,
    ids: Vec<String>,
) -> Result<Vec<(String, Option<T>)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    count_reads(ids.len());
    let builder = db.fluent().select().by_id_in(collection);
    let builder = match parent {
        Some(p) => builder.parent(p),
        None => builder,
    };
    let stream = builder
        .obj::<T>()
        .batch_with_errors(ids)
        .await
        .map_err(stored)?;
    let items: Vec<Result<(String, Option<T>), FirestoreError>> = stream.collect().await;
    items.into_iter().map(|r| r.map_err(stored)).collect()
}

/// A Firestore transaction: reads see one snapshot and lock what they read; writes commit
/// together or not at all.
pub struct Txn<'a> {
    reader: FirestoreDb,
    tx: FirestoreTransaction<'a>,
    writes: usize,
    /// The state changes this transaction writes, logged once it commits.
    changes: Vec<StateChange>,
}

/// Logs a committed change of state: from, to, and how long the document was in `from`.
pub fn log_change(change: &StateChange) {
    let took_ms = change.took.map(|d| d.as_millis());
    match &change.job {
        Some((table, attempt)) => tracing::info!(
            run_id = %change.run_id, table = %table, attempt, from = change.from,
            to = change.to, took_ms, "job state"
        ),
        None => tracing::info!(
            run_id = %change.run_id, from = change.from, to = change.to, took_ms, "run state"
        ),
    }
}

impl Txn<'_> {
    /// Notes the change from `before` to `after` (if any) for the log once this commits.
    pub fn note<T: Transitions>(&mut self, before: &T, after: &T) {
        self.changes.extend(T::state_change(before, after));
    }

    pub async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let mut docs = batch_get(&self.reader, parent, collection, vec![id.to_string()]).await?;
        Ok(docs.pop().and_then(|(_, doc)| doc))
    }

    /// Documents by id, in the order asked, `None` for missing ones.
    pub async fn get_many<T: DeserializeOwned + Send + 'static>(
        &self,
        parent: Option<&str>,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<Option<T>>, StoreError> {
        let mut found: std::collections::HashMap<String, Option<T>> =
            batch_get(&self.reader, parent, collection, ids.to_vec())
                .await?
                .into_iter()
                .collect();
        Ok(ids.iter().map(|id| found.remove(id).flatten()).collect())
    }

    pub fn set<T: Serialize + DeserializeOwned + Sync + Send>(
        &mut self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let builder = self
            .reader
            .fluent()
            .update()
            .in_col(collection)
            .document_id(id);
        let builder = match parent {
            Some(p) => builder.parent(p),
            None => builder,
        };
        builder
            .object(value)
            .add_to_transaction(&mut self.tx)
            .map_err(stored)?;
        self.writes += 1;
        Ok(())
    }

    pub fn delete(
        &mut self,
        parent: Option<&str>,
        collection: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let builder = self
            .reader
            .fluent()
            .delete()
            .from(collection)
            .document_id(id);
        let builder = match parent {
            Some(p) => builder.parent(p),
            None => builder,
        };
        builder.add_to_transaction(&mut self.tx).map_err(stored)?;
        self.writes += 1;
        Ok(())
    }

    /// Adds `figures` to the numeric fields of a document, creating it with `fixed`'s fields
    /// (its key, set again each time) when it is missing. Nothing is read: adding never
    /// contends with another transaction's read.
    pub fn add<T: Serialize + DeserializeOwned + Sync + Send>(
        &mut self,
        collection: &str,
        id: &str,
        fixed: &T,
        fixed_fields: &[&str],
        figures: &[(&str, firestore::FirestoreValue)],
    ) -> Result<(), StoreError> {
        self.reader
            .fluent()
            .update()
            .fields(fixed_fields)
            .in_col(collection)
            .document_id(id)
            .object(fixed)
            .transforms(|t| {
                t.fields(
                    figures
                        .iter()
                        .map(|(field, by)| t.field(field).increment(by.clone())),
                )
            })
            .add_to_transaction(&mut self.tx)
            .map_err(stored)?;
        self.writes += 1;
        Ok(())
    }

    /// Commits; then, and only then, logs the changes of state it wrote (a body that is
    /// tried again after contention would otherwise log changes that never happened).
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(stored)?;
        count_writes(self.writes);
        self.changes.iter().for_each(log_change);
        Ok(())
    }

    pub async fn rollback(self) {
        if let Err(e) = self.tx.rollback().await {
            tracing::debug!(error = %e, "rollback failed; the transaction expires by itself");
        }
    }
}

/// Errors that can say a transaction lost a race and may simply be tried again.
pub trait Contended {
    fn is_contention(&self) -> bool;
}

impl Contended for StoreError {
    fn is_contention(&self) -> bool {
        matches!(self, StoreError::Contention(_))
    }
}

/// Runs `attempt` until it does not fail with contention, at most `tries` times, backing off
/// between tries. Each try must begin its own transaction.
pub async fn retry_contention<T, E, F, Fut>(tries: u32, attempt: F) -> Result<T, E>
where
    E: Contended + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    use backon::Retryable as _;
    // Both sides of a conflict may be aborted at once (the emulator aborts deadlocked
    // transactions together): pauses with jitter, doubling, keep them from meeting again.
    let pauses = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .with_max_times(usize::try_from(tries.saturating_sub(1)).unwrap_or(usize::MAX));
    attempt
        .retry(pauses)
        .when(|e: &E| e.is_contention())
        .notify(|e: &E, pause: Duration| {
            tracing::debug!(reason = %e, ?pause, "transaction contended; trying again");
        })
        .await
}

#[cfg(test)]
mod tests {
    use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;

    #[test]
    fn commits_are_cut_by_count_and_by_size() {
        let small = vec![10usize; 1200];
        let sizes: Vec<usize> = super::commits(&small, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [500, 500, 200]);
        let mib = 1024 * 1024;
        let large = vec![mib, mib, mib, 5 * mib, 1];
        let sizes: Vec<usize> = super::commits(&large, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, [3, 1, 1]);
        assert!(super::commits(&Vec::<usize>::new(), |n| *n).is_empty());
    }

    #[test]
    fn instants_are_stored_as_timestamps() {
        // The core marks instants the way the firestore crate's serializer recognises
        // (`baton_core::stamp`); were that name to change, every run's times would be stored
        // as strings, and the console, queries by time and the alerts' TTL would break.
        let mut run =
            baton_core::port_suite::fresh_run("r", "2026-12-01T10:00:00Z".parse().unwrap());
        run.finished_at = Some("2026-12-01T10:05:00Z".parse().unwrap());
        let doc = firestore::firestore_document_from_serializable("runs/r", &run).unwrap();
        for field in ["instant", "created_at", "finished_at"] {
            assert!(
                matches!(
                    doc.fields[field].value_type,
                    Some(ValueType::TimestampValue(_))
                ),
                "{field}: {:?}",
                doc.fields[field]
            );
        }
        assert!(!doc.fields.contains_key("planned_at"));
    }
}
