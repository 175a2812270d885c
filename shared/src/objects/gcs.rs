//! Cloud Storage implementation: being written; every call fails.
use async_trait::async_trait;
use bytes::Bytes;

use super::*;

pub struct GcsStore;

impl GcsStore {
    pub async fn connect(_bucket: &str, _prefix: &str, _o: &StorageOptions) -> Result<Self, ObjectError> {
        Ok(Self)
    }
}

fn todo<T>() -> ObjectResult<T> {
    Err(ObjectError::Other("Cloud Storage support is not written yet".into()))
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn put(&self, _: &ObjectName, _: Bytes, _: &str) -> ObjectResult<()> { todo() }
    async fn get(&self, _: &ObjectName) -> ObjectResult<StoredObject> { todo() }
    async fn delete(&self, _: &ObjectName) -> ObjectResult<()> { todo() }
    async fn list(&self) -> ObjectResult<Vec<ObjectName>> { todo() }
}
