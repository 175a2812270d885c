//! Rows as the pipeline writes them, for tests that start from a given
//! state of the store instead of running ingestion or classification.

use catdog::domain::{
    Category, Digest, ImageId, NewImage, ObjectName, Thumbnail, Verdict, now_micros,
};
use catdog::pubsub::ImageMessage;
use catdog::store::ImageStore;

/// The pending row ingestion writes for a JPEG of `bytes` whose original is
/// (or would be) stored under `id`.
pub fn pending_image(id: ImageId, bytes: &[u8]) -> NewImage {
    NewImage {
        id,
        sha256: Digest::of(bytes),
        source: "test".to_owned(),
        source_ref: None,
        object_name: ObjectName::original(id),
        content_type: "image/jpeg".to_owned(),
        byte_size: bytes.len() as i64,
        created_at: now_micros(),
    }
}

/// Inserts the pending row of a JPEG of `bytes` under `id` and returns the
/// message ingestion publishes for it. Whether its original is stored is the
/// caller's choice (left out, it is a picture whose object went missing).
pub async fn insert_pending(store: &dyn ImageStore, id: ImageId, bytes: &[u8]) -> ImageMessage {
    store
        .insert_pending(&pending_image(id, bytes))
        .await
        .expect("insert a pending row");
    ImageMessage::new(id, ObjectName::original(id), Digest::of(bytes))
}

/// A made-up picture's pending row, with no object behind it: its digest
/// is its id's, so every call is a new picture.
pub async fn insert_made_up(store: &dyn ImageStore) -> ImageId {
    let id = ImageId::new();
    store
        .insert_pending(&pending_image(id, id.to_string().as_bytes()))
        .await
        .expect("insert a pending row");
    id
}

/// The verdict classification records: `category` at 0.9, a 4×3 picture
/// with its thumbnail named for `id`, no breed guess.
pub fn plain_verdict(id: ImageId, category: Category) -> Verdict {
    Verdict {
        category,
        confidence: 0.9,
        scores: serde_json::json!({}),
        model_version: "seed".to_owned(),
        width: 4,
        height: 3,
        thumbnail: Thumbnail {
            object_name: ObjectName::thumbnail(id),
            width: 4,
            height: 3,
            placeholder: String::new(),
        },
        breed: None,
        why: Vec::new(),
    }
}

/// A made-up picture classified as `category`, shown at the top of its
/// listing.
pub async fn insert_classified(store: &dyn ImageStore, category: Category) -> ImageId {
    let id = insert_made_up(store).await;
    store
        .record_verdict(id, &plain_verdict(id, category))
        .await
        .expect("record a verdict");
    id
}
