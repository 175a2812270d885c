//! `POST /pubsub/push`, as Pub/Sub calls it: real photos from the dev set,
//! the real model, a real store (SQLite, and PostgreSQL for the outage) and a
//! real folder of objects. Each test stores a picture the way ingestion does
//! (object first, then the pending row) and pushes its message.
//!
//! Needs `.cache/model/backbone.onnx` (or `MODEL_DIR`): build it with
//! model/build.sh.

use catdog_testing as support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use catdog::classifier::DecodeLimits;
use catdog::classify::{self, ClassifyService, MAX_PUSH_BODY_BYTES, PUSH_ROUTE};
use catdog::domain::{Category, Digest, ImageId, ObjectName, Status};
use catdog::objects::{FolderStore, ObjectStore};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::{ConnectOptions, ImageStore, SqliteStore, connect};
use support::model::{classifier, dev_photo};
use support::postgres::TestDatabase;
use tower::ServiceExt as _;

/// One test's stores and the push route over them.
struct Harness {
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    push: Router,
    dir: PathBuf,
}

impl Harness {
    async fn with_store(store: Arc<dyn ImageStore>) -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-classify-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        store.migrate().await.unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(
            FolderStore::open(&dir.join("objects").display().to_string())
                .await
                .unwrap(),
        );
        let service = ClassifyService::new(
            Arc::clone(&store),
            Arc::clone(&objects),
            classifier(),
            DecodeLimits::default(),
        );
        Self {
            store,
            objects,
            push: classify::routes(service),
            dir,
        }
    }

    async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-classify-db-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("catdog.db").display().to_string())
            .await
            .unwrap();
        Self::with_store(Arc::new(store)).await
    }

    /// Stores a picture as ingestion does and returns its message.
    async fn ingest(&self, bytes: &[u8]) -> ImageMessage {
        let id = ImageId::new();
        let name = ObjectName::original(id);
        self.objects
            .put(&name, bytes.to_vec().into(), "image/jpeg")
            .await
            .unwrap();
        self.insert_row(id, bytes).await
    }

    /// The pending row alone, as if its object had gone missing.
    async fn insert_row(&self, id: ImageId, bytes: &[u8]) -> ImageMessage {
        support::rows::insert_pending(self.store.as_ref(), id, bytes).await
    }

    async fn push_body(&self, body: Vec<u8>) -> (StatusCode, String) {
        let request = Request::post(PUSH_ROUTE)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = self.push.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            assert_eq!(
                content_type.as_deref(),
                Some("application/problem+json"),
                "{body}"
            );
        }
        (status, body)
    }

    async fn push(&self, message: &ImageMessage, message_id: &str) -> (StatusCode, String) {
        let envelope = PushEnvelope::wrap(message, message_id, "projects/p/subscriptions/classify");
        self.push_body(serde_json::to_vec(&envelope).unwrap()).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_pushed_cat_is_classified_with_its_thumbnail_and_shown() {
    let harness = Harness::sqlite().await;
    let message = harness.ingest(&dev_photo("cat/cat.4210.jpg")).await;

    let (status, body) = harness.push(&message, "1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let record = harness.store.get(message.image_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Classified);
    assert_eq!(record.category, Some(Category::Cat));
    assert!(record.width.is_some_and(|w| w > 0));
    let thumbnail = record.thumbnail.expect("a thumbnail is recorded");
    assert_eq!(
        thumbnail.object_name,
        ObjectName::thumbnail(message.image_id)
    );
    let stored = harness.objects.get(&thumbnail.object_name).await.unwrap();
    assert_eq!(stored.content_type, "image/jpeg");
    assert!(
        stored.bytes.starts_with(&[0xFF, 0xD8]),
        "the thumbnail is a JPEG"
    );
    assert_eq!(harness.store.gallery_state().await.unwrap().total_images, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_message_pushed_five_times_at_once_is_classified_once() {
    let harness = Arc::new(Harness::sqlite().await);
    let message = harness.ingest(&dev_photo("dog/dog.4002.jpg")).await;

    let deliveries: Vec<_> = (0..5)
        .map(|_| {
            let harness = Arc::clone(&harness);
            let message = message.clone();
            // Pub/Sub redelivers under the same message id.
            tokio::spawn(async move { harness.push(&message, "42").await })
        })
        .collect();
    for delivery in deliveries {
        let (status, body) = delivery.await.unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    let record = harness.store.get(message.image_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Classified);
    assert_eq!(record.category, Some(Category::Dog));
    let state = harness.store.gallery_state().await.unwrap();
    assert_eq!(state.total_images, 1, "one image in the gallery");
    assert_eq!(state.gallery_seq, 1, "one gallery position handed out");

    // A late redelivery changes nothing either.
    let (status, _) = harness.push(&message, "42").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        harness.store.get(message.image_id).await.unwrap().unwrap(),
        record
    );
}

#[tokio::test]
async fn malformed_deliveries_are_refused_and_change_nothing() {
    let harness = Harness::sqlite().await;
    let message = harness.ingest(&dev_photo("cat/cat.4212.jpg")).await;
    let before = harness.store.get(message.image_id).await.unwrap().unwrap();

    let good = PushEnvelope::wrap(&message, "1", "projects/p/subscriptions/s");
    let mut not_base64 = good.clone();
    not_base64.message.data = "%%%".to_owned();
    let mut other_object = message.clone();
    other_object.object = ObjectName::original(ImageId::new());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("not JSON", b"hello".to_vec()),
        ("no message", br#"{"subscription":"s"}"#.to_vec()),
        ("data not base64", serde_json::to_vec(&not_base64).unwrap()),
        ("data not our JSON", {
            let mut e = good.clone();
            e.message.data = "eyJ2IjoyfQ==".to_owned(); // {"v":2}
            serde_json::to_vec(&e).unwrap()
        }),
        ("object of another image", {
            serde_json::to_vec(&PushEnvelope::wrap(&other_object, "1", "s")).unwrap()
        }),
    ];
    for (what, body) in cases {
        let (status, problem) = harness.push_body(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {problem}");
    }
    let (status, _) = harness.push_body(vec![b' '; MAX_PUSH_BODY_BYTES + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(
        harness.store.get(message.image_id).await.unwrap().unwrap(),
        before
    );
    assert!(
        harness
            .objects
            .get(&ObjectName::thumbnail(message.image_id))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_picture_that_does_not_decode_is_rejected_and_acknowledged() {
    let harness = Harness::sqlite().await;
    let mut truncated = dev_photo("cat/cat.4219.jpg");
    truncated.truncate(600);
    let message = harness.ingest(&truncated).await;

    let (status, body) = harness.push(&message, "1").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let record = harness.store.get(message.image_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Rejected);
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("JPEG")),
        "{record:?}"
    );
    assert_eq!(harness.store.gallery_state().await.unwrap().total_images, 0);

    // Redelivered: still rejected, still acknowledged.
    assert_eq!(harness.push(&message, "1").await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_message_for_an_unknown_image_is_acknowledged() {
    let harness = Harness::sqlite().await;
    let id = ImageId::new();
    let message = ImageMessage::new(id, ObjectName::original(id), Digest::of(b"never stored"));
    assert_eq!(harness.push(&message, "1").await.0, StatusCode::NO_CONTENT);
    assert!(harness.store.get(id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_missing_original_is_retried_and_classified_once_it_appears() {
    let harness = Harness::sqlite().await;
    let bytes = dev_photo("cat/cat.4222.jpg");
    let id = ImageId::new();
    let message = harness.insert_row(id, &bytes).await;

    let (status, body) = harness.push(&message, "1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let record = harness.store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Pending);
    assert_eq!(record.attempts, 1);
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("missing")),
        "{record:?}"
    );

    harness
        .objects
        .put(&ObjectName::original(id), bytes.into(), "image/jpeg")
        .await
        .unwrap();
    assert_eq!(harness.push(&message, "1").await.0, StatusCode::NO_CONTENT);
    let record = harness.store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Classified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_the_redelivery_classifies_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (mut proxy, url) = db.behind_proxy().await;
    let timeout = Duration::from_millis(500);
    let store = connect(
        &url,
        &ConnectOptions {
            pool_size: 2,
            timeout,
        },
    )
    .await
    .unwrap();
    let harness = Harness::with_store(store).await;
    let message = harness.ingest(&dev_photo("dog/dog.4015.jpg")).await;

    proxy.stop().await;
    let started = Instant::now();
    let (status, body) = harness.push(&message, "7").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        started.elapsed() < timeout * 4,
        "the 503 took {:?}",
        started.elapsed()
    );

    proxy.restart().await;
    // Pub/Sub redelivers with backoff until an answer is 2xx.
    let back = Instant::now();
    loop {
        let (status, body) = harness.push(&message, "7").await;
        if status == StatusCode::NO_CONTENT {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no recovery: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = harness.store.get(message.image_id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Classified);
    assert_eq!(record.category, Some(Category::Dog));
    let state = harness.store.gallery_state().await.unwrap();
    assert_eq!(
        (state.total_images, state.gallery_seq),
        (1, 1),
        "recorded exactly once"
    );
}
