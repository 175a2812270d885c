//! PostgreSQL (Cloud SQL) implementation: being written; every call fails.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

use super::*;

pub struct PostgresStore;

impl PostgresStore {
    pub fn connect(_url: &str, _options: &ConnectOptions) -> Result<Self, StoreError> {
        Ok(Self)
    }
}

fn todo<T>() -> StoreResult<T> {
    Err(StoreError::Other("PostgreSQL support is not written yet".into()))
}

#[async_trait]
impl ImageStore for PostgresStore {
    async fn migrate(&self) -> StoreResult<()> { todo() }
    async fn ping(&self) -> StoreResult<()> { todo() }
    async fn insert_pending(&self, _: &NewImage) -> StoreResult<InsertOutcome> { todo() }
    async fn get(&self, _: ImageId) -> StoreResult<Option<ImageRecord>> { todo() }
    async fn find_by_digest(&self, _: &Digest) -> StoreResult<Option<ImageRecord>> { todo() }
    async fn mark_published(&self, _: ImageId) -> StoreResult<()> { todo() }
    async fn unpublished(&self, _: DateTime<Utc>, _: u32) -> StoreResult<Vec<ImageRecord>> { todo() }
    async fn record_verdict(&self, _: ImageId, _: &Verdict) -> StoreResult<RecordOutcome> { todo() }
    async fn mark_rejected(&self, _: ImageId, _: &str) -> StoreResult<RecordOutcome> { todo() }
    async fn record_failure(&self, _: ImageId, _: &str) -> StoreResult<()> { todo() }
    async fn gallery_page(&self, _: Option<Category>, _: PageLimit, _: Option<i64>) -> StoreResult<Vec<ImageRecord>> { todo() }
    async fn gallery_state(&self) -> StoreResult<GalleryState> { todo() }
    async fn stats(&self) -> StoreResult<Stats> { todo() }
    async fn try_acquire_ingest_lease(&self, _: &str, _: Duration) -> StoreResult<bool> { todo() }
    async fn finish_ingest(&self, _: &str, _: &IngestRun) -> StoreResult<()> { todo() }
}
