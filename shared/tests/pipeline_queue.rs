//! Local mode's queue delivering to the real push handler (real model, SQLite,
//! a folder of objects): what is not acknowledged comes back with backoff,
//! and what never succeeds ends in the dead-letter file, which outlives the
//! queue.
//!
//! Needs `.cache/model/backbone.onnx` (or `MODEL_DIR`): build it with
//! model/build.sh.

use catdog_testing as support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::classifier::DecodeLimits;
use catdog::classify::{self, ClassifyService, PUSH_ROUTE};
use catdog::domain::{Category, ImageId, ObjectName, Status};
use catdog::objects::{FolderStore, ObjectStore};
use catdog::pubsub::{ImageMessage, Publisher};
use catdog::queue::{DeadLetters, LocalQueue, QueueOptions};
use catdog::store::{ImageStore, SqliteStore};
use support::model::{classifier, dev_photo};

struct Harness {
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    queue: Arc<LocalQueue>,
    dir: PathBuf,
}

impl Harness {
    async fn start(max_attempts: u32) -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-queue-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn ImageStore> = Arc::new(
            SqliteStore::open(&dir.join("catdog.db").display().to_string())
                .await
                .unwrap(),
        );
        store.migrate().await.unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(
            FolderStore::open(&dir.join("objects").display().to_string())
                .await
                .unwrap(),
        );
        let push = classify::routes(ClassifyService::new(
            Arc::clone(&store),
            Arc::clone(&objects),
            classifier(),
            DecodeLimits::default(),
        ));
        let options = QueueOptions {
            max_attempts,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..QueueOptions::default()
        };
        let queue = LocalQueue::start(push, PUSH_ROUTE, options, DeadLetters::in_dir(&dir));
        Self {
            store,
            objects,
            queue,
            dir,
        }
    }

    /// The pending row of a picture; its object is written only when `with_object`.
    async fn stored(&self, bytes: &[u8], with_object: bool) -> ImageMessage {
        let id = ImageId::new();
        if with_object {
            self.objects
                .put(
                    &ObjectName::original(id),
                    bytes.to_vec().into(),
                    "image/jpeg",
                )
                .await
                .unwrap();
        }
        support::rows::insert_pending(self.store.as_ref(), id, bytes).await
    }

    async fn drained(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.queue.drained())
            .await
            .expect("the queue drains within 30 s");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_pictures_are_classified() {
    let harness = Harness::start(5).await;
    let cat = harness.stored(&dev_photo("cat/cat.4210.jpg"), true).await;
    let dog = harness.stored(&dev_photo("dog/dog.4002.jpg"), true).await;
    harness.queue.publish(&cat).await.unwrap();
    harness.queue.publish(&dog).await.unwrap();
    harness.drained().await;

    let progress = harness.queue.progress();
    assert_eq!((progress.acknowledged, progress.dead_lettered), (2, 0));
    for (message, category) in [(&cat, Category::Cat), (&dog, Category::Dog)] {
        let record = harness.store.get(message.image_id).await.unwrap().unwrap();
        assert_eq!(record.category, Some(category));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_not_acknowledged_comes_back_with_backoff() {
    let harness = Harness::start(5).await;
    let bytes = dev_photo("cat/cat.4212.jpg");
    // The row exists but the original is not there yet: 503.
    let message = harness.stored(&bytes, false).await;
    let published = Instant::now();
    harness.queue.publish(&message).await.unwrap();

    let id = message.image_id;
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.store.get(id).await.unwrap().unwrap().attempts < 2 {
        assert!(Instant::now() < deadline, "no second delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Two deliveries, the second after the first backoff.
    assert!(published.elapsed() >= Duration::from_millis(100));
    harness
        .objects
        .put(&ObjectName::original(id), bytes.into(), "image/jpeg")
        .await
        .unwrap();
    harness.drained().await;

    let record = harness.store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Classified);
    assert_eq!(harness.queue.progress().dead_lettered, 0);
    assert!(
        DeadLetters::in_dir(&harness.dir)
            .list()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_never_succeeds_is_kept_as_a_dead_letter() {
    let harness = Harness::start(3).await;
    let message = harness.stored(&dev_photo("cat/cat.4219.jpg"), false).await;
    harness.queue.publish(&message).await.unwrap();
    harness.drained().await;

    let progress = harness.queue.progress();
    assert_eq!((progress.acknowledged, progress.dead_lettered), (0, 1));
    let record = harness.store.get(message.image_id).await.unwrap().unwrap();
    assert_eq!(
        record.status,
        Status::Pending,
        "nothing was recorded as done"
    );
    assert_eq!(record.attempts, 3, "delivered exactly max_attempts times");

    // A fresh reader (another process, after a restart) sees it.
    let letters = DeadLetters::in_dir(&harness.dir).list().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message, message);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].last_status, Some(503));
    assert!(
        letters[0].last_error.contains("missing"),
        "{}",
        letters[0].last_error
    );
}
