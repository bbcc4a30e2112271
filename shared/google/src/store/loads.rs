//! Load tables' files and batches (`baton_core::loads` has the layout): each file claimed once
//! by a precondition, each batch formed and ended in a transaction over its files.

use jiff::Timestamp;

use baton_core::catalog::{TableDoc, TableId};
use baton_core::loads::{
    Batch, BatchState, FileState, LandedFile, LoadSummary, MAX_BATCH_FILES, Trigger, Waiting,
};

use super::{Store, StoreError, TABLES, counted, retry_contention, stored};

pub const LOADS: &str = "loads";
pub const FILES: &str = "files";
pub const BATCHES: &str = "batches";

/// How many times a contended batch transaction is tried.
const TRIES: u32 = 8;

impl Store {
    fn load_path(&self, table: &TableId) -> Result<String, StoreError> {
        self.doc_path(LOADS, &table.to_string())
    }

    /// The load tables of the catalog.
    pub async fn load_tables(&self) -> Result<Vec<TableDoc>, StoreError> {
        self.db()
            .fluent()
            .select()
            .from(TABLES)
            .filter(|q| q.for_all([q.field("definition.kind").eq("load")]))
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Claims a file for its table; false when it was claimed before (a duplicate
    /// notification).
    pub async fn claim_file(&self, file: &LandedFile) -> Result<bool, StoreError> {
        let parent = self.load_path(&file.table)?;
        match self.create(Some(&parent), FILES, &file.id(), file).await {
            Ok(()) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A table's files in `state`, the longest waiting first, at most `limit`. Served by
    /// `indexes::FILES_BY_STATE`.
    pub async fn files_in_state(
        &self,
        table: &TableId,
        state: FileState,
        limit: u32,
    ) -> Result<Vec<LandedFile>, StoreError> {
        let parent = self.load_path(table)?;
        self.db()
            .fluent()
            .select()
            .from(FILES)
            .parent(&parent)
            .filter(|q| q.for_all([q.field("state").eq(state.as_str())]))
            .order(|o| o.fields([o.field("arrived").asc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// What waits for a table, as its batching policy weighs it: how many files and bytes (by
    /// an aggregation, billed a read per thousand files) and since when (one file read).
    pub async fn waiting(&self, table: &TableId) -> Result<Waiting, StoreError> {
        self.files_tally(table, FileState::Waiting).await
    }

    /// How many of a table's files are in `state`, their bytes and the oldest's arrival, as
    /// `waiting` weighs them.
    pub async fn files_tally(
        &self,
        table: &TableId,
        state: FileState,
    ) -> Result<Waiting, StoreError> {
        #[derive(serde::Deserialize, Default)]
        struct Tally {
            #[serde(default)]
            files: i64,
            #[serde(default)]
            bytes: i64,
        }
        let parent = self.load_path(table)?;
        let in_state = state.as_str();
        let tally: Vec<Tally> = self
            .db()
            .fluent()
            .select()
            .from(FILES)
            .parent(&parent)
            .filter(|q| q.for_all([q.field("state").eq(in_state)]))
            .aggregate(|a| a.fields([a.field("files").count(), a.field("bytes").sum("size")]))
            .obj()
            .query()
            .await
            .map_err(stored)?;
        super::count_reads(1);
        let tally = tally.into_iter().next().unwrap_or_default();
        let oldest = if tally.files > 0 {
            self.files_in_state(table, state, 1)
                .await?
                .first()
                .map(|f| f.arrived)
        } else {
            None
        };
        Ok(Waiting {
            files: usize::try_from(tally.files).unwrap_or(0),
            bytes: u64::try_from(tally.bytes).unwrap_or(0),
            oldest,
        })
    }

    pub async fn batch(&self, table: &TableId, id: &str) -> Result<Option<Batch>, StoreError> {
        let parent = self.load_path(table)?;
        self.get(Some(&parent), BATCHES, id).await
    }

    /// A table's batches whose load has not ended.
    pub async fn open_batches(&self, table: &TableId) -> Result<Vec<Batch>, StoreError> {
        let parent = self.load_path(table)?;
        self.db()
            .fluent()
            .select()
            .from(BATCHES)
            .parent(&parent)
            .filter(|q| q.for_all([q.field("state").eq("loading")]))
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    pub async fn load_summary(&self, table: &TableId) -> Result<LoadSummary, StoreError> {
        Ok(self
            .get(None, LOADS, &table.to_string())
            .await?
            .unwrap_or_default())
    }

    /// Forms a batch of those of `candidates` that are still waiting (or held, when `force`),
    /// at most [`MAX_BATCH_FILES`], and marks them batched, in one transaction: of two
    /// deliveries forming batches at once, each file goes to one. `None` when no candidate is
    /// free any more.
    pub async fn form_batch(
        &self,
        table: &TableId,
        bucket: &str,
        candidates: &[LandedFile],
        trigger: Trigger,
        now: Timestamp,
    ) -> Result<Option<Batch>, StoreError> {
        let parent = self.load_path(table)?;
        let ids: Vec<String> = candidates
            .iter()
            .take(MAX_BATCH_FILES)
            .map(LandedFile::id)
            .collect();
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let found: Vec<Option<LandedFile>> = tx.get_many(Some(&parent), FILES, &ids).await?;
            let free: Vec<LandedFile> = found
                .into_iter()
                .flatten()
                .filter(|f| {
                    f.state == FileState::Waiting
                        || (trigger == Trigger::Force && f.state == FileState::Held)
                })
                .collect();
            if free.is_empty() {
                tx.rollback().await;
                return Ok(None);
            }
            let mut batch = Batch::form(table, bucket, &free, trigger, now);
            // The same files again (held after a failed load, then forced): the next try.
            if let Some(before) = tx.get::<Batch>(Some(&parent), BATCHES, &batch.id).await? {
                batch.try_number = before.try_number + 1;
            }
            tx.set(Some(&parent), BATCHES, &batch.id, &batch)?;
            for file in &free {
                let batched = LandedFile {
                    state: FileState::Batched,
                    batch: Some(batch.id.clone()),
                    ..file.clone()
                };
                tx.set(Some(&parent), FILES, &file.id(), &batched)?;
            }
            tx.commit().await?;
            Ok(Some(batch))
        })
        .await
    }

    /// Moves a loading batch to its next try after a transient failure of try `from`; the
    /// batch as it is after (another delivery may have moved it first).
    pub async fn next_try(
        &self,
        table: &TableId,
        id: &str,
        from: u32,
    ) -> Result<Option<Batch>, StoreError> {
        let parent = self.load_path(table)?;
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(mut batch) = tx.get::<Batch>(Some(&parent), BATCHES, id).await? else {
                tx.rollback().await;
                return Ok(None);
            };
            if batch.state != BatchState::Loading || batch.try_number != from {
                tx.rollback().await;
                return Ok(Some(batch));
            }
            batch.try_number += 1;
            tx.set(Some(&parent), BATCHES, id, &batch)?;
            tx.commit().await?;
            Ok(Some(batch))
        })
        .await
    }

    /// Records how a batch's load ended (`ended` carries the state, figures and errors): its
    /// files loaded, or held when it failed, and the table's summary, in one transaction.
    /// A batch that ended already is left as it is and returned.
    pub async fn end_batch(&self, ended: &Batch) -> Result<Batch, StoreError> {
        let parent = self.load_path(&ended.table)?;
        let table = ended.table.to_string();
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let before: Option<Batch> = tx.get(Some(&parent), BATCHES, &ended.id).await?;
            if let Some(before) = before.filter(|b| b.state != BatchState::Loading) {
                tx.rollback().await;
                return Ok(before);
            }
            let summary: LoadSummary = tx.get(None, LOADS, &table).await?.unwrap_or_default();
            let state = if ended.state == BatchState::Loaded {
                FileState::Loaded
            } else {
                FileState::Held
            };
            let ids: Vec<String> = ended.files.iter().map(|f| f.id.clone()).collect();
            let files: Vec<Option<LandedFile>> = tx.get_many(Some(&parent), FILES, &ids).await?;
            for file in files.into_iter().flatten() {
                let after = LandedFile {
                    state,
                    ..file.clone()
                };
                tx.set(Some(&parent), FILES, &file.id(), &after)?;
            }
            tx.set(Some(&parent), BATCHES, &ended.id, ended)?;
            tx.set(None, LOADS, &table, &summary.with(ended))?;
            tx.commit().await?;
            Ok(ended.clone())
        })
        .await
    }
}
