//! Cloud Storage (fake-gcs-server, keeping its objects on disk) stopped in
//! the middle of an ingestion run and in the middle of classification, then
//! started again. What must hold:
//!
//! - no row ever refers to an object that does not exist (the object is
//!   written first, the row second; a verdict only after its thumbnail);
//! - no object is left without a row for longer than one sweep after its
//!   grace period;
//! - nothing hangs: the outage is an error within the storage deadline, and
//!   the work completes once storage is back.
//!
//! Needs the model (`.cache/model`, model/build.sh) and fake-gcs-server
//! (`scripts/fake-gcs.sh install`).

use catdog_testing as support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use catdog::classifier::DecodeLimits;
use catdog::classify::{self, ClassifyService, PUSH_ROUTE};
use catdog::domain::{Digest, ImageId, ObjectName, Status};
use catdog::ingest::{IngestConfig, IngestError, Ingestor, SourceSpec};
use catdog::objects::{self, ObjectError, ObjectStore, StorageOptions};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::{ImageStore, SqliteStore};
use reqwest::Url;
use support::fake_gcs::FakeGcs;
use support::model::{classifier, dev_photo};
use support::sources::{Reply, SourceServer, dev_photos};
use support::{local_queue, stored};
use tower::ServiceExt as _;

/// How long any one storage call may take before it is an error
/// (`objects::gcs::OPERATION_DEADLINE` plus its grace), with room to spare.
const STORAGE_BOUND: Duration = Duration::from_secs(10);

struct World {
    dir: PathBuf,
    emulator: FakeGcs,
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
}

impl World {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-faults-storage-{}", ImageId::new()));
        std::fs::create_dir_all(dir.join("gcs")).unwrap();
        let emulator = FakeGcs::start_persistent(&dir.join("gcs")).await;
        emulator.create_bucket("gallery").await;
        let objects = objects::open(
            "gs://gallery",
            &StorageOptions {
                endpoint: Some(emulator.endpoint.clone()),
            },
        )
        .await
        .unwrap();
        let store: Arc<dyn ImageStore> = Arc::new(
            SqliteStore::open(&dir.join("catdog.db").display().to_string())
                .await
                .unwrap(),
        );
        store.migrate().await.unwrap();
        Self {
            dir,
            emulator,
            store,
            objects,
        }
    }

    /// Every object's name in the bucket.
    async fn listed(&self) -> HashSet<String> {
        stored::object_names(self.objects.as_ref()).await
    }

    /// Checks that every object the rows of `ids` refer to exists, and
    /// returns their names.
    async fn objects_of_rows(&self, ids: &[ImageId]) -> HashSet<String> {
        stored::objects_of_rows(self.store.as_ref(), self.objects.as_ref(), ids).await
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.emulator.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_stopped_during_ingestion() {
    let mut world = World::start().await;
    // Six cats from a Cat API stand-in; every download after the first
    // takes 300 ms, so the run is certainly under way when storage stops.
    let photos = dev_photos("cat")[..6].to_vec();
    let server = SourceServer::start(&photos).await;
    for index in 1..photos.len() {
        server.script(
            &server.photo_path(index),
            [Reply::Delay(Duration::from_millis(300))],
        );
    }
    let mut config = IngestConfig::new(vec![SourceSpec::TheCatApi]);
    config.thecatapi_base_url = Url::parse(&server.base_url()).unwrap();
    config.batch_size = 6;
    config.concurrency = 1;
    config.orphan_grace = Duration::from_secs(1);
    let ingestor = Arc::new(
        Ingestor::new(
            config,
            Arc::clone(&world.store),
            Arc::clone(&world.objects),
            local_queue::acknowledging(&world.dir),
        )
        .unwrap(),
    );

    let run = tokio::spawn({
        let ingestor = Arc::clone(&ingestor);
        async move { ingestor.run_once().await }
    });
    // Storage stops once the first picture is recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = world.store.stats().await.unwrap();
        if stats.by_status.iter().any(|(_, n)| *n > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no picture was stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.emulator.stop();
    let stopped_at = Instant::now();
    let outcome = tokio::time::timeout(STORAGE_BOUND, run)
        .await
        .expect("the run ends within the storage deadline")
        .unwrap();
    assert!(
        matches!(
            outcome,
            Err(IngestError::Objects(ObjectError::Unavailable(_)))
        ),
        "{outcome:?}"
    );
    assert!(stopped_at.elapsed() < STORAGE_BOUND);

    world.emulator.restart().await;
    let rows = |world: &World| {
        let store = Arc::clone(&world.store);
        let photos = photos.clone();
        async move {
            let mut ids = Vec::new();
            for photo in &photos {
                let bytes = std::fs::read(photo).unwrap();
                if let Some(record) = store.find_by_digest(&Digest::of(&bytes)).await.unwrap() {
                    ids.push(record.id);
                }
            }
            ids
        }
    };
    let before = rows(&world).await;
    assert!(
        !before.is_empty() && before.len() < photos.len(),
        "{before:?}"
    );
    // Every row stored before the outage has its object.
    let referenced = world.objects_of_rows(&before).await;
    let orphans: HashSet<String> = world
        .listed()
        .await
        .difference(&referenced)
        .cloned()
        .collect();
    assert!(
        orphans.len() <= 1,
        "at most the upload under way: {orphans:?}"
    );

    // Storage is back: the next run stores the rest, and, the grace period
    // being over, its sweep deletes any object left without a row.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = ingestor.run_once().await.unwrap();
    assert_eq!(
        summary.stored as usize,
        photos.len() - before.len(),
        "{summary:?}"
    );
    assert_eq!(
        summary.orphans_deleted as usize,
        orphans.len(),
        "{summary:?}"
    );
    let after = rows(&world).await;
    assert_eq!(after.len(), photos.len());
    assert_eq!(world.listed().await, world.objects_of_rows(&after).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_stopped_during_classification() {
    let mut world = World::start().await;
    let push = classify::routes(ClassifyService::new(
        Arc::clone(&world.store),
        Arc::clone(&world.objects),
        classifier(),
        DecodeLimits::default(),
    ));
    // Six pictures stored as ingestion stores them: object, then row.
    let mut messages = Vec::new();
    for photo in [
        "cat/cat.4210.jpg",
        "cat/cat.4219.jpg",
        "cat/cat.4222.jpg",
        "dog/dog.4002.jpg",
        "dog/dog.4015.jpg",
        "dog/dog.4038.jpg",
    ] {
        let bytes = dev_photo(photo);
        let id = ImageId::new();
        let object = ObjectName::original(id);
        world
            .objects
            .put(&object, bytes.clone().into(), "image/jpeg")
            .await
            .unwrap();
        let digest = Digest::of(&bytes);
        world
            .store
            .insert_pending(&catdog_testing::rows::pending_image(id, &bytes))
            .await
            .unwrap();
        messages.push(ImageMessage::new(id, object, digest));
    }
    let ids: Vec<ImageId> = messages.iter().map(|m| m.image_id).collect();

    // All six pushed at once; storage stops when the first is answered.
    let mut deliveries = tokio::task::JoinSet::new();
    for (n, message) in messages.iter().enumerate() {
        let push = push.clone();
        let message = message.clone();
        deliveries.spawn(async move { (message.image_id, deliver(push, &message, n).await) });
    }
    let mut answers = Vec::new();
    let first = deliveries.join_next().await.unwrap().unwrap();
    answers.push(first);
    world.emulator.stop();
    let stopped_at = Instant::now();
    while let Some(answer) = deliveries.join_next().await {
        answers.push(answer.unwrap());
    }
    assert!(
        stopped_at.elapsed() < STORAGE_BOUND,
        "every delivery was answered within the storage deadline"
    );
    let mut to_redeliver = Vec::new();
    for (id, status) in &answers {
        let record = world.store.get(*id).await.unwrap().unwrap();
        match *status {
            StatusCode::NO_CONTENT => assert_eq!(record.status, Status::Classified),
            StatusCode::SERVICE_UNAVAILABLE => {
                // The message comes back; nothing was recorded but why,
                // as a kind, without the emulator's address.
                assert_eq!(record.status, Status::Pending, "{id}");
                assert!(record.thumbnail.is_none());
                let reason = record.last_error.clone().unwrap_or_default();
                assert!(
                    reason.starts_with("storage: ") && !reason.contains("127.0.0.1"),
                    "{id}: {reason:?}"
                );
                to_redeliver.push(*id);
            }
            other => panic!("{id}: answered {other}"),
        }
    }
    assert!(
        !to_redeliver.is_empty(),
        "storage stopped before every delivery finished: {answers:?}"
    );

    world.emulator.restart().await;
    // Whatever was recorded before the outage has its objects.
    world.objects_of_rows(&ids).await;
    // Pub/Sub redelivers what was not acknowledged: now it completes.
    for (n, message) in messages.iter().enumerate() {
        if to_redeliver.contains(&message.image_id) {
            assert_eq!(
                deliver(push.clone(), message, 100 + n).await,
                StatusCode::NO_CONTENT
            );
        }
    }
    for id in &ids {
        let record = world.store.get(*id).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Classified, "{id}");
    }
    // Each original and its thumbnail, and nothing else.
    assert_eq!(world.listed().await, world.objects_of_rows(&ids).await);
    assert_eq!(world.listed().await.len(), 2 * ids.len());
}

/// One push delivery, as Pub/Sub makes it.
async fn deliver(push: Router, message: &ImageMessage, n: usize) -> StatusCode {
    let envelope = PushEnvelope::wrap(
        message,
        &format!("m-{n}"),
        "projects/test/subscriptions/classify-image",
    );
    let request = Request::post(PUSH_ROUTE)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&envelope).unwrap()))
        .unwrap();
    push.oneshot(request).await.unwrap().status()
}
