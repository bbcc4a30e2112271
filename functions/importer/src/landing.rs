//! Load tables: the files that land in the landing bucket, claimed as Cloud Storage tells of
//! them, batched by each table's policy and loaded by one BigQuery load job a batch.
//!
//! Three messages, each safe to repeat:
//! - an object's **finalize** notification (the `/storage` push): the file is claimed for the
//!   load table whose prefix it is under (once: its id is its name and generation), then the
//!   table is considered;
//! - **consider** (the same, sent by the tick for files that waited long enough and by a
//!   force): while the waiting files are due by the table's policy, a batch of them is formed
//!   in a transaction and its load is sent;
//! - **load**: the batch's load job is started under the batch's id and try (a redelivery
//!   attaches to it), waited for, and its end recorded with the files' in one transaction.
//!
//! A crash after a claim leaves the file waiting for the next notification, consider or sweep;
//! one after a batch formed leaves it loading, sent again by the tick's sweep.

use jiff::Timestamp;
use serde::Deserialize;

use baton_core::catalog::{TableDoc, TableId, TableKind, WriteMode};
use baton_core::errors::Retryable;
use baton_core::loads::{
    Batch, BatchState, FileState, Fit, HEAD_BYTES, LOAD_TRIES, LandedFile, LoadSpec,
    MAX_BATCH_FILES, NewColumns, Waiting, describe_columns, file_columns, fit, under_prefix,
};
use baton_core::messages::ImporterTask;
use baton_core::ports::{Publish, WarehousePort};
use baton_core::warehouse::{Field, JobProgress, TableShape, WarehouseError, is_transient};
use baton_google::store::TABLES;
use baton_google::warehouse::LoadJob;

use crate::{Importer, ImporterError};

/// A Cloud Storage notification's payload (format `JSON_API_V1`): the object.
#[derive(Debug, Clone, Deserialize)]
pub struct ObjectNotice {
    pub bucket: String,
    pub name: String,
    pub generation: String,
    /// Bytes, as the JSON API gives it (a string).
    #[serde(default)]
    pub size: Option<String>,
}

/// The columns a batch is loaded with, and those its files name.
#[derive(Debug, Default)]
struct BatchColumns {
    /// None: BigQuery detects them (or reads them from Parquet and Avro).
    load_with: Vec<Field>,
    /// Each distinct list of columns the files name (CSV and NDJSON), for a failure's message.
    in_files: Vec<String>,
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The load tables' prefixes, and when they were read.
pub(crate) type Prefixes = (std::time::Instant, Vec<(TableId, String)>);

/// How many of a load's errors its batch and the table's summary keep.
const KEPT_ERRORS: usize = 10;

/// How many batches one consider forms at most; what is left waits for the next.
const BATCHES_PER_CONSIDER: usize = 20;

impl Importer {
    /// A file landed: claim it for the load table whose prefix it is under, then see whether
    /// the table's waiting files are due.
    pub async fn object_finalized(
        &self,
        notice: &ObjectNotice,
        now: Timestamp,
    ) -> Result<(), ImporterError> {
        let Some(landing) = &self.settings.landing_bucket else {
            return Err(ImporterError::Stale(
                "a file notification, but no landing bucket is configured \
                 (BATON_LANDING_BUCKET)"
                    .into(),
            ));
        };
        if notice.bucket != *landing {
            tracing::debug!(bucket = %notice.bucket, "not the landing bucket's: ignored");
            return Ok(());
        }
        let Some(doc) = self.table_taking(&notice.name).await? else {
            tracing::info!(object = %notice.name, "no load table's prefix holds this file: left alone");
            return Ok(());
        };
        let doc = &doc;
        let file = LandedFile {
            table: doc.id.clone(),
            bucket: notice.bucket.clone(),
            name: notice.name.clone(),
            generation: notice.generation.clone(),
            size: notice
                .size
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            arrived: now,
            state: FileState::Waiting,
            batch: None,
        };
        let claimed = self.store.claim_file(&file).await?;
        tracing::info!(
            table = %doc.id, object = %file.name, size = file.size, claimed,
            "{}", if claimed { "file claimed" } else { "file claimed before" }
        );
        self.consider_table(doc, false, now).await
    }

    /// Forms and sends the batches that are due (everything that waits, and what is held,
    /// when forced).
    pub async fn consider(
        &self,
        table: &TableId,
        force: bool,
        now: Timestamp,
    ) -> Result<(), ImporterError> {
        let Some(doc) = self.load_table(table).await? else {
            return Err(ImporterError::Stale(format!("{table} is not a load table")));
        };
        self.ensure_declared(&doc).await?;
        self.consider_table(&doc, force, now).await
    }

    /// A load table that declares its `columns` exists from its apply (which sends a
    /// consider), empty until its first file is loaded, so that the query tables reading it
    /// run before any file has arrived.
    async fn ensure_declared(&self, doc: &TableDoc) -> Result<(), ImporterError> {
        let Some(spec) = doc
            .definition
            .load
            .as_ref()
            .filter(|s| !s.columns.is_empty())
        else {
            return Ok(());
        };
        if self.warehouse.schema(&doc.id).await?.is_some() {
            return Ok(());
        }
        self.ensure_dataset(doc.id.dataset()).await?;
        let options = &doc.definition.options;
        let shape = TableShape {
            partitioning: options.partitioning.as_ref(),
            clustering: &options.clustering,
        };
        self.warehouse
            .create_table(&doc.id, &spec.columns, shape)
            .await?;
        if options.expiration_seconds.is_some() {
            self.renew_expiration(&doc.id, options).await?;
        }
        tracing::info!(table = %doc.id, "load table created, empty until its first file loads");
        Ok(())
    }

    async fn consider_table(
        &self,
        doc: &TableDoc,
        force: bool,
        now: Timestamp,
    ) -> Result<(), ImporterError> {
        let Some(spec) = &doc.definition.load else {
            return Ok(());
        };
        let landing = self.landing()?;
        let limit = MAX_BATCH_FILES as u32;
        for _ in 0..BATCHES_PER_CONSIDER {
            // What waits is weighed by an aggregation; the files are read only when due.
            if !force
                && spec
                    .batch
                    .due(&self.store.waiting(&doc.id).await?, now, false)
                    .is_none()
            {
                break;
            }
            let mut files = self
                .store
                .files_in_state(&doc.id, FileState::Waiting, limit)
                .await?;
            if force {
                files.extend(
                    self.store
                        .files_in_state(&doc.id, FileState::Held, limit)
                        .await?,
                );
                files.sort_by_key(|f| f.arrived);
                files.truncate(MAX_BATCH_FILES);
            }
            let Some(trigger) = spec.batch.due(&Waiting::of(&files), now, force) else {
                break;
            };
            let Some(batch) = self
                .store
                .form_batch(&doc.id, landing, &files, trigger, now)
                .await?
            else {
                break;
            };
            tracing::info!(
                table = %doc.id, batch = %batch.id, files = batch.files.len(),
                bytes = batch.bytes, trigger = <&str>::from(trigger), "batch formed"
            );
            self.topics
                .to_importer(&ImporterTask::Load {
                    table: doc.id.clone(),
                    batch: batch.id.clone(),
                })
                .await?;
            if files.len() < MAX_BATCH_FILES {
                break;
            }
        }
        Ok(())
    }

    /// Loads a formed batch, or attaches to its load, or records how it ended.
    pub async fn load_batch(&self, table: &TableId, id: &str) -> Result<(), ImporterError> {
        let Some(batch) = self.store.batch(table, id).await? else {
            return Err(ImporterError::Stale(format!("{table} has no batch {id}")));
        };
        if batch.state != BatchState::Loading {
            tracing::info!(batch = %id, state = ?batch.state, "the batch's load has ended");
            return Ok(());
        }
        let Some(doc) = self.load_table(table).await? else {
            let ended = self.ended(
                batch,
                BatchState::Failed,
                vec![format!("{table} is no longer a load table of the catalog")],
            );
            self.store.end_batch(&ended).await?;
            return Ok(());
        };
        let spec = doc.definition.load.as_ref().expect("a load table's spec");
        let columns = match self.batch_columns(table, spec, &batch).await? {
            Ok(columns) => columns,
            Err(errors) => {
                let ended = self
                    .store
                    .end_batch(&self.ended(batch, BatchState::Failed, errors))
                    .await?;
                tracing::warn!(batch = %id, errors = ?ended.errors, "the files' columns do not fit the table's: its files are held");
                return Ok(());
            }
        };
        self.ensure_dataset(table.dataset()).await?;
        let job_id = batch.job_id();
        let options = &doc.definition.options;
        // Labelled as query jobs are, so that the billing export tells a table's loads too;
        // the table's group and owner stand for the user.
        let labels = [
            ("baton-table", table.to_string()),
            ("baton-load", batch.id.clone()),
        ]
        .into_iter()
        .chain(doc.definition.owner.clone().map(|o| ("baton-user", o)))
        .chain(doc.definition.group.clone().map(|g| ("baton-group", g)))
        .map(|(k, v)| (k.to_string(), baton_core::ids::label_value(&v)))
        .collect();
        let started = self
            .warehouse
            .start_load(&LoadJob {
                job_id: &job_id,
                table,
                uris: &batch.uris(),
                format: &spec.format,
                csv: spec.csv.as_ref(),
                schema: &columns.load_with,
                max_bad_records: spec.max_bad_records,
                append: doc.definition.write_mode != WriteMode::Truncate,
                // Declared columns added to `columns` are added to the table; detected ones
                // only when the table takes new columns.
                add_columns: !spec.columns.is_empty() || spec.new_columns == NewColumns::Add,
                partitioning: options.partitioning.as_ref(),
                clustering: &options.clustering,
                labels,
                timeout: None,
            })
            .await;
        let progress = match started {
            Ok(progress) => progress,
            Err(e) => return self.load_refused(batch, e).await,
        };
        tracing::info!(batch = %id, job_id = %job_id, try_number = batch.try_number, "load started");
        let deadline = tokio::time::Instant::now() + self.settings.wait;
        let progress = self.wait(&job_id, progress, deadline).await?;
        let rejects = self.warehouse.load_rejects(&job_id).await?;
        match progress {
            JobProgress::Running => return Err(ImporterError::StillRunning(job_id)),
            JobProgress::Succeeded(statistics) => {
                if doc.definition.options.expiration_seconds.is_some() {
                    self.renew_expiration(table, &doc.definition.options)
                        .await?;
                }
                let errors = rejects.errors.iter().map(|e| e.message.clone()).collect();
                let mut ended = self.ended(batch, BatchState::Loaded, errors);
                ended.rows = statistics.rows_affected;
                ended.bad_records = Some(rejects.bad_records);
                if !rejects.errors.is_empty() {
                    ended.rejects = Some(self.keep_rejects(&ended, &rejects).await?);
                }
                let ended = self.store.end_batch(&ended).await?;
                tracing::info!(
                    batch = %id, rows = ?ended.rows, bad_records = ?ended.bad_records,
                    "batch loaded"
                );
            }
            JobProgress::Failed {
                reason, message, ..
            } => {
                if is_transient(&reason, &message) && batch.try_number < LOAD_TRIES {
                    tracing::warn!(batch = %id, %reason, %message, "the load failed transiently");
                    self.store.next_try(table, id, batch.try_number).await?;
                    return Err(ImporterError::Warehouse(WarehouseError::Unavailable(
                        format!("load {job_id}: {message}"),
                    )));
                }
                let mut errors = vec![format!("{reason}: {message}")];
                errors.extend(
                    rejects
                        .errors
                        .iter()
                        .map(|e| e.message.clone())
                        .filter(|m| *m != message),
                );
                if reason == "invalid" && message.to_lowercase().contains("schema") {
                    errors.push(format!(
                        "the table's columns: {}",
                        self.described_schema(table).await
                    ));
                    errors.extend(
                        columns
                            .in_files
                            .iter()
                            .map(|c| format!("the files' columns: {c}")),
                    );
                }
                let mut ended = self.ended(batch, BatchState::Failed, errors);
                ended.bad_records = Some(rejects.bad_records);
                let ended = self.store.end_batch(&ended).await?;
                tracing::warn!(batch = %id, errors = ?ended.errors, "the load failed: its files are held");
            }
        }
        Ok(())
    }

    /// BigQuery refused to start the load: transient refusals are tried again, others end
    /// the batch failed with its files held.
    async fn load_refused(&self, batch: Batch, e: WarehouseError) -> Result<(), ImporterError> {
        if e.is_retryable() {
            return Err(ImporterError::Warehouse(e));
        }
        let ended = self.ended(batch, BatchState::Failed, vec![e.to_string()]);
        self.store.end_batch(&ended).await?;
        Ok(())
    }

    /// The batch ended, with at most [`KEPT_ERRORS`] of its errors (the rejects file has
    /// them all).
    fn ended(&self, batch: Batch, state: BatchState, mut errors: Vec<String>) -> Batch {
        if errors.len() > KEPT_ERRORS {
            let more = errors.len() - KEPT_ERRORS;
            errors.truncate(KEPT_ERRORS);
            errors.push(format!("… and {more} more"));
        }
        Batch {
            state,
            errors,
            ended: Some(Timestamp::now()),
            ..batch
        }
    }

    /// Writes what a load rejected to the staging bucket, one JSON line per error (its file
    /// and BigQuery's message with the position); returns where.
    async fn keep_rejects(
        &self,
        batch: &Batch,
        rejects: &baton_google::warehouse::LoadRejects,
    ) -> Result<String, ImporterError> {
        let Some(bucket) = &self.settings.staging_bucket else {
            return Ok("(not kept: no staging bucket)".into());
        };
        let name = format!(
            "rejects/{}/{}-{}.json",
            batch.table, batch.id, batch.try_number
        );
        let mut lines = String::new();
        for error in &rejects.errors {
            lines.push_str(&serde_json::to_string(error).unwrap_or_default());
            lines.push('\n');
        }
        self.storage
            .upload(bucket, &name, "application/x-ndjson", lines.into())
            .await?;
        Ok(format!("gs://{bucket}/{name}"))
    }

    async fn described_schema(&self, table: &TableId) -> String {
        match self.warehouse.schema(table).await {
            Ok(Some(fields)) => describe_columns(&fields),
            Ok(None) => "(no table yet)".into(),
            Err(e) => format!("(unknown: {e})"),
        }
    }

    /// The columns a batch is loaded with, after each file's header (CSV) or first record
    /// (NDJSON) is read and set beside the table's columns: those the catalog declares, or,
    /// when they are detected, those BigQuery detected in the table's first load, which stay
    /// (frozen) so that a later batch is not detected anew. None (BigQuery detects them) for
    /// a detected table's first load, for Parquet and Avro, and for a batch whose files add
    /// columns a table that takes new columns lacks. When a file's columns do not fit, the
    /// errors the batch fails with, naming the file's columns and the table's.
    async fn batch_columns(
        &self,
        table: &TableId,
        spec: &LoadSpec,
        batch: &Batch,
    ) -> Result<Result<BatchColumns, Vec<String>>, ImporterError> {
        use futures::{StreamExt, TryStreamExt};
        let table_columns = if !spec.columns.is_empty() {
            spec.columns.clone()
        } else if spec.format.self_describing() {
            Vec::new()
        } else {
            self.warehouse.schema(table).await?.unwrap_or_default()
        };
        if table_columns.is_empty() {
            return Ok(Ok(BatchColumns::default()));
        }
        let heads: Vec<(String, Option<Vec<String>>)> = futures::stream::iter(batch.files.clone())
            .map(|file| async move {
                let uri = format!("gs://{}/{}", batch.bucket, file.name);
                if file.size == 0 {
                    return Ok((uri, None));
                }
                match self
                    .storage
                    .head(&batch.bucket, &file.name, HEAD_BYTES)
                    .await
                {
                    Ok(head) => Ok((
                        uri,
                        file_columns(
                            spec.format,
                            spec.csv.as_ref(),
                            &head,
                            file.size <= HEAD_BYTES,
                        ),
                    )),
                    Err(e) if e.is_retryable() => Err(ImporterError::Storage(e)),
                    // A file gone or unreadable is BigQuery's to name.
                    Err(e) => {
                        tracing::warn!(file = %uri, error = %e, "the file's head does not read");
                        Ok((uri, None))
                    }
                }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        let described = describe_columns(&table_columns);
        let mut errors = Vec::new();
        let mut adds = false;
        let mut in_files = std::collections::BTreeSet::new();
        for (uri, names) in heads {
            let Some(names) = names else { continue };
            let listed = names.join(", ");
            match fit(spec.format, spec.csv.as_ref(), &names, &table_columns) {
                Fit::Fits => {}
                Fit::Differs(why) => errors.push(format!(
                    "{uri}: its columns ({listed}) do not fit the table's ({described}): {why}"
                )),
                Fit::Adds(more) if !spec.columns.is_empty() => errors.push(format!(
                    "{uri}: its columns ({listed}) add {}, not among the table's `columns` \
                     ({described}): add them there to load them",
                    quoted(&more)
                )),
                Fit::Adds(more) if spec.new_columns == NewColumns::Refuse => errors.push(format!(
                    "{uri}: its columns ({listed}) add {} to the table's ({described}), and \
                     the table takes no new columns (`new_columns = \"add\"` lets files add \
                     nullable columns)",
                    quoted(&more)
                )),
                Fit::Adds(_) => adds = true,
            }
            in_files.insert(listed);
        }
        if !errors.is_empty() {
            errors.sort();
            return Ok(Err(errors));
        }
        Ok(Ok(BatchColumns {
            load_with: if adds { Vec::new() } else { table_columns },
            in_files: in_files.into_iter().collect(),
        }))
    }

    /// The load table whose prefix holds `object`. The prefixes are kept for a minute, so
    /// that a notification costs one read of its table, not a read of every load table; a
    /// kept answer is checked against the table as stored, and no answer is taken for good
    /// before the prefixes are read again.
    async fn table_taking(&self, object: &str) -> Result<Option<TableDoc>, ImporterError> {
        const KEEP: std::time::Duration = std::time::Duration::from_secs(60);
        for fresh in [false, true] {
            let kept = {
                let prefixes = self
                    .prefixes
                    .lock()
                    .expect("the prefixes are never poisoned");
                prefixes
                    .as_ref()
                    .filter(|(read, _)| !fresh && read.elapsed() < KEEP)
                    .map(|(_, tables)| tables.clone())
            };
            let tables = match kept {
                Some(tables) => tables,
                None => {
                    let tables: Vec<(TableId, String)> = self
                        .store
                        .load_tables()
                        .await?
                        .into_iter()
                        .filter_map(|t| Some((t.id, t.definition.load?.prefix)))
                        .collect();
                    *self
                        .prefixes
                        .lock()
                        .expect("the prefixes are never poisoned") =
                        Some((std::time::Instant::now(), tables.clone()));
                    tables
                }
            };
            let Some((id, _)) = tables
                .iter()
                .find(|(_, prefix)| under_prefix(prefix, object))
            else {
                continue;
            };
            if let Some(doc) = self.load_table(id).await?
                && doc
                    .definition
                    .load
                    .as_ref()
                    .is_some_and(|l| l.takes(object))
            {
                return Ok(Some(doc));
            }
        }
        Ok(None)
    }

    async fn load_table(&self, table: &TableId) -> Result<Option<TableDoc>, ImporterError> {
        let doc: Option<TableDoc> = self.store.get(None, TABLES, &table.to_string()).await?;
        Ok(doc.filter(|d| d.definition.kind == TableKind::Load && d.definition.load.is_some()))
    }

    fn landing(&self) -> Result<&str, ImporterError> {
        self.settings.landing_bucket.as_deref().ok_or_else(|| {
            ImporterError::Stale("no landing bucket is configured (BATON_LANDING_BUCKET)".into())
        })
    }
}
