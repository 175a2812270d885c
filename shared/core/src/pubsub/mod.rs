//! The message between ingestion and classification, and the port it travels
//! through: [`Publisher`], implemented by Google Cloud Pub/Sub (the
//! `catdog-pubsub` crate) and by local mode's in-process queue. Both deliver
//! it to classify-image as a Pub/Sub push envelope.

mod message;

use async_trait::async_trait;

pub use message::{
    ImageMessage, MessageError, PushEnvelope, PushMessage, SCHEMA_ATTRIBUTE, SCHEMA_NAME,
};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The queue did not take the message; the sweep will publish it again.
    #[error("publishing failed: {0}")]
    Failed(String),
}

/// Hands a message to the queue. `Ok` means the queue has it: it will be
/// delivered (at least once) without further help from the caller.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    async fn publish(&self, message: &ImageMessage) -> Result<(), PublishError>;
}
