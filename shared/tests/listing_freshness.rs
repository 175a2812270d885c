//! Listings are cached by default and never stale, in the cloud shape:
//! classify-image and list-images as two processes on one database, the
//! test pushing each picture's message to classify-image as Pub/Sub does and
//! reading the gallery from list-images like a visitor.
//!
//! list-images runs with `LISTING_CACHE_MS=5000`, the longest time bound
//! there is, so a listing that shows a new picture sooner was dropped on the
//! database's word, not because it expired.
//!
//! Needs PostgreSQL (`TEST_DATABASE_URL`), `.cache/model/backbone.onnx`
//! (model/build.sh) and the dev photos in `../shared/data/images/dev`.

#[allow(dead_code)]
use catdog_testing as support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::domain::ImageId;
use catdog::objects::{FolderStore, ObjectStore};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::{ConnectOptions, ImageStore};
use reqwest::StatusCode;
use serde_json::Value;
use support::postgres::TestDatabase;
use support::service_process::{ServiceProcess, function_env, workspace_binaries};

const CATS: [&str; 3] = ["cat/cat.4210.jpg", "cat/cat.4212.jpg", "cat/cat.4222.jpg"];

/// The cached first page a visitor asks for.
const FIRST_PAGE: &str = "/api/v1/images?category=cat&limit=24";

/// How long a new picture may take to show. Far below the 5 s the time
/// bound would take, far above what a notification takes (milliseconds), so
/// a busy machine does not fail it; the test prints what it measured.
const SHOWS_WITHIN: Duration = Duration::from_secs(1);

struct Gallery {
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    classify: ServiceProcess,
    list: ServiceProcess,
    client: reqwest::Client,
    dir: PathBuf,
}

impl Gallery {
    async fn start(database_url: &str) -> Self {
        let root = support::model::repo_root();
        let bin_dir = workspace_binaries(&root);
        let dir = std::env::temp_dir().join(format!("catdog-freshness-{}", ImageId::new()));
        let objects_dir = dir.join("objects");
        std::fs::create_dir_all(&objects_dir).unwrap();
        let store = catdog::store::connect(database_url, &ConnectOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(
            FolderStore::open(&objects_dir.display().to_string())
                .await
                .unwrap(),
        );
        let common = [
            ("DATABASE_URL", database_url.to_owned()),
            ("STORAGE_URL", format!("file://{}", objects_dir.display())),
        ];
        let classify = ServiceProcess::start(
            &bin_dir.join("classify-image"),
            &function_env(
                &common,
                &[(
                    "MODEL_DIR",
                    support::model::model_dir().display().to_string(),
                )],
            ),
            dir.join("classify-image.log"),
        )
        .await;
        let list = ServiceProcess::start(
            &bin_dir.join("list-images"),
            &function_env(
                &common,
                &[
                    ("PUBLIC_STORAGE_BASE_URL", "/media".to_owned()),
                    ("LISTING_CACHE_MS", "5000".to_owned()),
                ],
            ),
            dir.join("list-images.log"),
        )
        .await;
        Self {
            store,
            objects,
            classify,
            list,
            client: reqwest::Client::new(),
            dir,
        }
    }

    async fn stage(&self, photo: &str) -> ImageMessage {
        support::model::stage_dev_photo(self.store.as_ref(), self.objects.as_ref(), photo).await
    }

    async fn push(&self, message: &ImageMessage) {
        let envelope = PushEnvelope::wrap(
            message,
            &message.image_id.to_string(),
            "projects/catdog-test/subscriptions/classify-image",
        );
        let answer = self
            .client
            .post(format!("{}/pubsub/push", self.classify.base))
            .json(&envelope)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "the push");
    }

    /// The ids on the cached first page of cats.
    async fn first_page(&self) -> Vec<String> {
        let response = self
            .client
            .get(format!("{}{FIRST_PAGE}", self.list.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {page}"))
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Classifies `photo` and measures how long after the push's 204 the
    /// first page shows it.
    async fn classify_and_time_until_listed(&self, photo: &str) -> Duration {
        let message = self.stage(photo).await;
        let id = message.image_id.to_string();
        assert!(!self.first_page().await.contains(&id));
        self.push(&message).await;
        let acknowledged = Instant::now();
        loop {
            if self.first_page().await.contains(&id) {
                return acknowledged.elapsed();
            }
            assert!(
                acknowledged.elapsed() < SHOWS_WITHIN,
                "{photo} was still not listed {} ms after its push was acknowledged",
                acknowledged.elapsed().as_millis()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Gallery {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The listening connection of list-images, as PostgreSQL sees it.
async fn listener_pid(admin: &tokio_postgres::Client, database: &str) -> Option<i32> {
    admin
        .query_opt(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'catdog-listings'",
            &[&database],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

async fn wait_for_listener(
    admin: &tokio_postgres::Client,
    database: &str,
    not: Option<i32>,
) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = listener_pid(admin, database).await
            && Some(pid) != not
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "list-images never listened on {database}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn postgres_a_new_verdict_shows_in_the_cached_listing_at_once_also_after_the_listener_was_cut()
 {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let gallery = Gallery::start(&db.url).await;
    let admin = support::postgres::connect(&db.url).await.unwrap();
    let first_listener = wait_for_listener(&admin, &db.name, None).await;

    // Cached, then a verdict lands: the next listings show it.
    let before = gallery.classify_and_time_until_listed(CATS[0]).await;

    // The listening connection is cut (a failover, a proxy's idle timeout);
    // list-images connects again and, once it listens, is exact again.
    let cut: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&first_listener])
        .await
        .unwrap()
        .get(0);
    assert!(cut);
    wait_for_listener(&admin, &db.name, Some(first_listener)).await;
    let after = gallery.classify_and_time_until_listed(CATS[1]).await;

    eprintln!(
        "listed {} ms after the push's 204; after the listener was cut and restored: {} ms",
        before.as_millis(),
        after.as_millis()
    );
    let log = gallery.list.log();
    assert!(
        log.contains("change notifications stopped"),
        "the cut is logged: {log}"
    );
}

/// Two processes on one SQLite file: list-images learns of classify-image's
/// commits from the file itself, before answering, so the very first listing
/// after the 204 shows the picture.
#[tokio::test]
async fn sqlite_the_first_listing_after_the_push_shows_the_new_picture() {
    let dir = std::env::temp_dir().join(format!("catdog-freshness-db-{}", ImageId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("catdog.db").display());
    let gallery = Gallery::start(&url).await;
    for photo in CATS {
        let message = gallery.stage(photo).await;
        let id = message.image_id.to_string();
        assert!(!gallery.first_page().await.contains(&id), "cached before");
        gallery.push(&message).await;
        assert!(
            gallery.first_page().await.contains(&id),
            "{photo} is listed by the first request after its push"
        );
    }
    drop(gallery);
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
