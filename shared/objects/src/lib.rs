//! Object storage for originals and thumbnails: one API ([`ObjectStore`]),
//! two implementations chosen by the storage URL: `gs://BUCKET[/PREFIX]`
//! (Cloud Storage) and `file://DIR` (local mode).

mod fs;
mod gcs;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use catdog_core::domain::ObjectName;

pub use fs::FolderStore;
pub use gcs::GcsStore;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object {0} does not exist")]
    NotFound(String),
    /// Storage could not be reached; callers answer 503 and try again later.
    #[error("object storage is unavailable: {0}")]
    Unavailable(String),
    #[error("bad storage URL: {0}")]
    BadUrl(String),
    #[error("object storage error: {0}")]
    Other(String),
}

pub type ObjectResult<T> = Result<T, ObjectError>;

/// An object read back, with the content type it was written with.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    pub bytes: Bytes,
    pub content_type: String,
}

/// An object as a listing shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedObject {
    pub name: ObjectName,
    /// When the object was last written.
    pub updated: DateTime<Utc>,
}

/// Which names one page of a listing covers, by plain string order of the
/// object names (without the store's prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameRange {
    /// Names from this one on (inclusive); `None`: from the first.
    pub start: Option<String>,
    /// Names before this one (exclusive); `None`: to the last.
    pub end: Option<String>,
}

/// The most names one call to [`ObjectStore::list_page`] returns.
pub const MAX_PAGE: usize = 1000;

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes the object whole (replacing one of the same name). When this
    /// returns Ok, a read gives back exactly these bytes.
    async fn put(&self, name: &ObjectName, bytes: Bytes, content_type: &str) -> ObjectResult<()>;

    async fn get(&self, name: &ObjectName) -> ObjectResult<StoredObject>;

    /// Removes the object; removing one that does not exist is not an error.
    async fn delete(&self, name: &ObjectName) -> ObjectResult<()>;

    /// Every object name under the store's prefix that is one of ours (the
    /// orphan sweep compares them with the metadata store).
    async fn list(&self) -> ObjectResult<Vec<ObjectName>>;

    /// Our objects whose names lie in `range`, in name order, with when each
    /// was last written: at most `limit` (capped at [`MAX_PAGE`]). One
    /// bounded call, so a sweep can walk a large bucket a page at a time.
    async fn list_page(&self, range: &NameRange, limit: usize) -> ObjectResult<Vec<ListedObject>>;

    /// Removes what interrupted writes left behind, older than
    /// `older_than` (younger ones may be writes in progress); returns how
    /// many files went. Stores that write objects whole, as Cloud Storage
    /// does, leave nothing behind.
    async fn sweep_leftovers(&self, older_than: std::time::Duration) -> ObjectResult<usize> {
        let _ = older_than;
        Ok(0)
    }
}

impl NameRange {
    pub fn contains(&self, name: &str) -> bool {
        self.start.as_deref().is_none_or(|start| name >= start)
            && self.end.as_deref().is_none_or(|end| name < end)
    }
}

/// Where to reach Cloud Storage; tests point `endpoint` at fake-gcs-server.
#[derive(Clone, Debug, Default)]
pub struct StorageOptions {
    /// `None`: Google's endpoint with application default credentials.
    /// `Some(url)`: that endpoint, without credentials (an emulator).
    pub endpoint: Option<String>,
}

/// Opens the object store a storage URL names.
pub async fn open(url: &str, options: &StorageOptions) -> ObjectResult<Arc<dyn ObjectStore>> {
    if let Some(rest) = url.strip_prefix("gs://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectError::BadUrl("gs:// needs a bucket name".to_owned()));
        }
        Ok(Arc::new(GcsStore::connect(bucket, prefix, options).await?))
    } else if let Some(dir) = url.strip_prefix("file://") {
        Ok(Arc::new(FolderStore::open(dir).await?))
    } else {
        Err(ObjectError::BadUrl(
            "expected gs://BUCKET[/PREFIX] or file://DIR".to_owned(),
        ))
    }
}
