//! Cloud Storage: the objects an extract wrote, and V4 signed URLs that let another tool read
//! them without credentials. Objects are listed over the JSON API (the emulator has no gRPC);
//! URLs are signed by google-cloud-storage's `SignedUrlBuilder`, with a service account key
//! when one is configured, else with the service's own identity (IAM signBlob on Cloud Run).

use std::time::Duration;

use google_cloud_auth::signer::Signer;
use google_cloud_storage::builder::storage::SignedUrlBuilder;
use serde::Deserialize;

use baton_core::ports::{BlobPort, Object, StorageError};

use crate::config::Gcp;
use crate::gcp::{RestError, Tokens};

impl From<RestError> for StorageError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::Unavailable(m) => StorageError::Unavailable(m),
            refused => StorageError::Permanent(refused.to_string()),
        }
    }
}

/// One object of a listing.
#[derive(Debug, Deserialize)]
struct Item {
    name: String,
    /// Bytes, as the JSON API gives it (a string).
    #[serde(default, deserialize_with = "size")]
    size: u64,
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    #[serde(default)]
    items: Vec<Item>,
    next_page_token: Option<String>,
}

pub struct Storage {
    http: reqwest::Client,
    /// `https://storage.googleapis.com`, or the emulator's address.
    endpoint: String,
    tokens: Tokens,
    /// Why URLs cannot be signed, when they cannot (no key and no identity to sign with).
    signer: Result<Signer, String>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("endpoint", &self.endpoint)
            .field("can_sign", &self.signer.is_ok())
            .finish()
    }
}

impl Storage {
    /// `signing_key`: a service account key's JSON to sign URLs with; without it the
    /// Application Default Credentials sign (on Cloud Run, through IAM signBlob).
    pub fn new(gcp: &Gcp, signing_key: Option<&str>) -> Result<Self, StorageError> {
        let tokens = Tokens::for_endpoint(gcp.storage_emulated)
            .map_err(|e| StorageError::Permanent(e.to_string()))?;
        let signer = match signing_key {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| format!("the signing key is not a service account key's JSON: {e}"))
                .and_then(|key| {
                    google_cloud_auth::credentials::service_account::Builder::new(key)
                        .build_signer()
                        .map_err(|e| format!("the signing key cannot sign: {e}"))
                }),
            None => google_cloud_auth::credentials::Builder::default()
                .build_signer()
                .map_err(|e| format!("no credentials to sign URLs with: {e}")),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| StorageError::Permanent(e.to_string()))?;
        Ok(Self {
            http,
            endpoint: gcp.storage_url.clone(),
            tokens,
            signer,
        })
    }

    /// Uploads an object whole (a simple media upload), replacing one of that name; a
    /// transient failure is tried again a few times.
    pub async fn upload(
        &self,
        bucket: &str,
        name: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<(), StorageError> {
        use backon::Retryable as _;
        let url = format!("{}/upload/storage/v1/b/{bucket}/o", self.endpoint);
        let send = || {
            let request = self
                .http
                .post(&url)
                .query(&[("uploadType", "media"), ("name", name)])
                .header(http::header::CONTENT_TYPE, content_type)
                .timeout(Duration::from_secs(300))
                .body(bytes.clone());
            self.tokens.call(request)
        };
        let pauses = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_times(3);
        send.retry(pauses)
            .when(|e| matches!(e, RestError::Unavailable(_)))
            .notify(
                |e, _| tracing::warn!(error = %e, object = %name, "an upload failed; trying again"),
            )
            .await?;
        Ok(())
    }

    /// The first `bytes` of an object (all of it when it is smaller): a file's header line.
    pub async fn head(
        &self,
        bucket: &str,
        name: &str,
        bytes: u64,
    ) -> Result<Vec<u8>, StorageError> {
        let mut url = reqwest::Url::parse(&self.endpoint)
            .map_err(|e| StorageError::Permanent(format!("the storage endpoint: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| StorageError::Permanent("the storage endpoint has no path".into()))?
            .pop_if_empty()
            .extend(["storage", "v1", "b", bucket, "o", name]);
        let request = self.http.get(url).query(&[("alt", "media")]).header(
            http::header::RANGE,
            format!("bytes=0-{}", bytes.saturating_sub(1)),
        );
        Ok(self.tokens.call(request).await?.into_bytes())
    }

    /// Creates a bucket unless it exists (the local stack's; Terraform makes production's).
    pub async fn ensure_bucket(&self, project: &str, bucket: &str) -> Result<(), StorageError> {
        let url = format!("{}/storage/v1/b", self.endpoint);
        let request = self
            .http
            .post(&url)
            .query(&[("project", project)])
            .json(&serde_json::json!({ "name": bucket }));
        match self.tokens.call(request).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl BlobPort for Storage {
    /// The objects whose names start with `prefix`, by name.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Object>, StorageError> {
        let url = format!("{}/storage/v1/b/{bucket}/o", self.endpoint);
        let mut objects = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![("prefix", prefix.to_string())];
            if let Some(token) = page.take() {
                query.push(("pageToken", token));
            }
            let body = self.tokens.call(self.http.get(&url).query(&query)).await?;
            let listing: Listing = serde_json::from_str(&body).map_err(|e| {
                StorageError::Permanent(format!("the object listing does not read: {e}"))
            })?;
            objects.extend(listing.items.into_iter().map(|i| Object {
                name: i.name,
                size: i.size,
            }));
            match listing.next_page_token {
                Some(token) if !token.is_empty() => page = Some(token),
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }

    /// A V4 signed URL that lets its holder GET the object until `expiry` has passed.
    async fn signed_url(
        &self,
        bucket: &str,
        object: &str,
        expiry: Duration,
    ) -> Result<String, StorageError> {
        self.sign(bucket, object, http::Method::GET, None, expiry)
            .await
    }
}

impl Storage {
    /// A V4 signed URL that lets its holder PUT one object, of `content_type`, until `expiry`
    /// has passed: the upload must send that `Content-Type`, or Cloud Storage refuses it.
    pub async fn signed_upload_url(
        &self,
        bucket: &str,
        object: &str,
        content_type: &str,
        expiry: Duration,
    ) -> Result<String, StorageError> {
        self.sign(
            bucket,
            object,
            http::Method::PUT,
            Some(content_type),
            expiry,
        )
        .await
    }

    async fn sign(
        &self,
        bucket: &str,
        object: &str,
        method: http::Method,
        content_type: Option<&str>,
        expiry: Duration,
    ) -> Result<String, StorageError> {
        let signer = self
            .signer
            .as_ref()
            .map_err(|e| StorageError::Permanent(e.clone()))?;
        // Signing through IAM is a network call that may fail for a moment; a key that cannot
        // sign fails every time: a few tries here, then the caller fails with the reason.
        use backon::Retryable as _;
        let sign = || {
            let builder =
                SignedUrlBuilder::for_object(format!("projects/_/buckets/{bucket}"), object)
                    .with_method(method.clone())
                    .with_expiration(expiry)
                    .with_endpoint(&self.endpoint);
            let builder = match content_type {
                Some(t) => builder.with_header("content-type", t),
                None => builder,
            };
            builder.sign_with(signer)
        };
        let pauses = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_times(2);
        sign.retry(pauses)
            .when(|e| e.is_signing())
            .notify(|e, _| tracing::warn!(error = %e, "signing a URL failed; trying again"))
            .await
            .map_err(|e| StorageError::Permanent(format!("signing a URL: {e}")))
    }
}
