//! Starts the real list-images binary on a free port against a fresh SQLite
//! database, and seeds that database through the store API.

#![allow(dead_code)]

use catdog_testing::service_process;
pub use service_process::{free_port, http_client};

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::domain::{
    BreedGuess, Category, ClassScore, Digest, ImageId, NewImage, ObjectName, Thumbnail, Verdict,
    now_micros,
};
use catdog::store::{ImageStore, InsertOutcome, RecordOutcome, SqliteStore};

pub struct Service {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn ImageStore>,
    child: Child,
    /// Its stdout (the JSON log) and stderr (where a panic would be told).
    log_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    pub async fn start(extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("catdog.db");
        let store = SqliteStore::open(db.to_str().unwrap()).await.unwrap();
        store.migrate().await.unwrap();
        let url = format!("sqlite://{}", db.display());
        Self::spawn(dir, &url, Arc::new(store), extra_env).await
    }

    /// The binary over a database the caller made and migrated (PostgreSQL);
    /// `store` is the test's own connection to it, for seeding.
    pub async fn start_on(
        database_url: &str,
        store: Arc<dyn ImageStore>,
        extra_env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(tempfile::tempdir().unwrap(), database_url, store, extra_env).await
    }

    async fn spawn(
        dir: tempfile::TempDir,
        database_url: &str,
        store: Arc<dyn ImageStore>,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let log_path = dir.path().join("list-images.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_list-images"));
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env(
                "STORAGE_URL",
                format!("file://{}", dir.path().join("objects").display()),
            )
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let service = Self {
            base: format!("http://127.0.0.1:{port}"),
            client: http_client(),
            store,
            child,
            log_path,
            _dir: dir,
        };
        service.wait_ready().await;
        service
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let answer = self.client.get(self.url("/healthz")).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("list-images did not answer /healthz within 20 s");
    }

    /// What the process has logged so far, stderr included.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `GET path` from a client that holds the version tagged `etag`.
    pub async fn revalidate(&self, path: &str, etag: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header(reqwest::header::IF_NONE_MATCH, etag)
            .send()
            .await
            .unwrap()
    }

    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The log is in a file now; a failing test shows it.
        if std::thread::panicking() {
            eprintln!("list-images's log:\n{}", self.log());
        }
    }
}

/// Stores one picture waiting for its verdict, as ingestion does.
pub async fn seed_pending(store: &Arc<dyn ImageStore>) -> ImageId {
    let id = ImageId::new();
    let image = NewImage {
        id,
        sha256: Digest::of(id.to_string().as_bytes()),
        source: "test".to_owned(),
        source_ref: Some(format!("ref-{id}")),
        object_name: ObjectName::original(id),
        content_type: "image/jpeg".to_owned(),
        byte_size: 1234,
        created_at: now_micros(),
    };
    assert_eq!(
        store.insert_pending(&image).await.unwrap(),
        InsertOutcome::Inserted
    );
    id
}

/// Stores `n` classified pictures of `category`, oldest first, and returns
/// their ids in that order.
pub async fn seed_classified(
    store: &Arc<dyn ImageStore>,
    category: Category,
    n: usize,
) -> Vec<ImageId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = seed_pending(store).await;
        let verdict = Verdict {
            category,
            confidence: 0.97,
            scores: serde_json::json!({"cat": 0.97, "dog": 0.02, "other": 0.01}),
            model_version: "test".to_owned(),
            width: 640,
            height: 480,
            thumbnail: Thumbnail {
                object_name: ObjectName::thumbnail(id),
                width: 480,
                height: 360,
                placeholder: "1QcSHQRnh493V4dIh4eXh1h4kJUI".to_owned(),
            },
            // Cats are sure of their kind; dogs are a mix (below BREED_SURE).
            breed: match category {
                Category::Cat => Some(BreedGuess {
                    name: "tabby".to_owned(),
                    probability: 0.9,
                }),
                Category::Dog => Some(BreedGuess {
                    name: "beagle".to_owned(),
                    probability: 0.4,
                }),
                Category::Other => None,
            },
            why: vec![ClassScore {
                label: "tabby".to_owned(),
                probability: 0.5,
            }],
        };
        assert_eq!(
            store.record_verdict(id, &verdict).await.unwrap(),
            RecordOutcome::Recorded
        );
        ids.push(id);
    }
    ids
}

/// Stores a file that could not be used (rejected with `reason`).
pub async fn seed_rejected(store: &Arc<dyn ImageStore>, reason: &str) -> ImageId {
    let id = catdog_testing::rows::insert_made_up(store.as_ref()).await;
    assert_eq!(
        store.mark_rejected(id, reason).await.unwrap(),
        RecordOutcome::Recorded
    );
    id
}
