//! Rows into gzip'd chunks in the staging bucket, uploaded while the next chunk fills, so that
//! memory holds a few chunks whatever the table's size.

use std::io::Write;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use baton_core::imports::chunk_name;
use baton_core::ports::StorageError;
use baton_google::storage::Storage;

use crate::source::BATCH_BYTES;

/// What a copy uploaded.
#[derive(Debug, Default)]
pub struct Uploaded {
    pub objects: Vec<String>,
    pub stored_bytes: u64,
    pub json_bytes: u64,
}

/// Rows' JSON in, chunks of about `limit` bytes of JSON out, each compressed and uploaded
/// under `prefix` (one upload in flight while the next chunk fills).
pub struct Chunks {
    encoder: GzEncoder<Vec<u8>>,
    /// JSON bytes in the chunk being filled.
    filling: u64,
    limit: u64,
    json_bytes: u64,
    count: usize,
    prefix: String,
    sender: Option<mpsc::Sender<(String, Vec<u8>)>>,
    uploads: JoinHandle<Result<(Vec<String>, u64), StorageError>>,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("prefix", &self.prefix)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

fn encoder() -> GzEncoder<Vec<u8>> {
    GzEncoder::new(Vec::with_capacity(1 << 20), Compression::fast())
}

impl Chunks {
    pub fn new(storage: Arc<Storage>, bucket: String, prefix: String, limit: u64) -> Self {
        let (sender, mut receiver) = mpsc::channel::<(String, Vec<u8>)>(1);
        let uploads = tokio::spawn(async move {
            let mut names = Vec::new();
            let mut stored = 0;
            while let Some((name, data)) = receiver.recv().await {
                stored += data.len() as u64;
                storage
                    .upload(&bucket, &name, "application/gzip", data.into())
                    .await?;
                names.push(name);
            }
            Ok((names, stored))
        });
        Self {
            encoder: encoder(),
            filling: 0,
            limit: limit.max(1),
            json_bytes: 0,
            count: 0,
            prefix,
            sender: Some(sender),
            uploads,
        }
    }

    /// How many bytes of rows to gather before `push`: `BATCH_BYTES`, or less when chunks are
    /// smaller.
    pub fn batch_bytes(&self) -> usize {
        usize::try_from(self.limit).map_or(BATCH_BYTES, |limit| limit.min(BATCH_BYTES))
    }

    /// Adds whole rows of JSON.
    pub async fn push(&mut self, json: &[u8]) -> Result<(), StorageError> {
        self.encoder
            .write_all(json)
            .map_err(|e| StorageError::Permanent(format!("compressing a chunk: {e}")))?;
        self.filling += json.len() as u64;
        self.json_bytes += json.len() as u64;
        if self.filling >= self.limit {
            self.send().await?;
        }
        Ok(())
    }

    async fn send(&mut self) -> Result<(), StorageError> {
        let full = std::mem::replace(&mut self.encoder, encoder());
        let data = full
            .finish()
            .map_err(|e| StorageError::Permanent(format!("compressing a chunk: {e}")))?;
        self.filling = 0;
        self.count += 1;
        let name = chunk_name(&self.prefix, self.count);
        let sender = self.sender.as_ref().expect("open until finished");
        if sender.send((name, data)).await.is_err() {
            // The uploads stopped: their error says why.
            return Err(self.stopped().await);
        }
        Ok(())
    }

    async fn stopped(&mut self) -> StorageError {
        self.sender = None;
        match (&mut self.uploads).await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => StorageError::Permanent("the uploads ended early".into()),
            Err(e) => StorageError::Permanent(format!("the uploads panicked: {e}")),
        }
    }

    /// Sends the last chunk (an empty copy still has one, so that its load writes an empty
    /// table) and waits for every upload.
    pub async fn finish(mut self) -> Result<Uploaded, StorageError> {
        if self.filling > 0 || self.count == 0 {
            self.send().await?;
        }
        self.sender = None;
        let (objects, stored_bytes) = (&mut self.uploads)
            .await
            .map_err(|e| StorageError::Permanent(format!("the uploads panicked: {e}")))??;
        Ok(Uploaded {
            objects,
            stored_bytes,
            json_bytes: self.json_bytes,
        })
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        // A copy abandoned half-way stops uploading; what it uploaded is never loaded.
        self.uploads.abort();
    }
}
