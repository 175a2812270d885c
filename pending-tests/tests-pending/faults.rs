//! Faults around the real classify-image binary on PostgreSQL, with the test
//! playing Pub/Sub: it pushes each message as a push envelope and delivers
//! it again, with backoff, until the answer is a 2xx.
//!
//! - the database stopped and started again while pictures are classified;
//! - the process killed with SIGKILL in the middle of classifications;
//! - SIGTERM while classifications are in flight.
//!
//! Each test starts a PostgreSQL server of its own (see
//! shared/tests/support/pg_cluster.rs). Objects are kept in a folder
//! (`file://`), which writes each object whole, as Cloud Storage does.
//! Needs `.cache/model/backbone.onnx` (model/build.sh) and the dev photos in
//! `../shared/data/images/dev`.

#[path = "../../../shared/tests/support/pg_cluster.rs"]
mod pg_cluster;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::domain::{Category, Digest, ImageId, NewImage, ObjectName, Status, now_micros};
use catdog::objects::{FolderStore, ObjectStore};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::{ConnectOptions, ImageStore};
use pg_cluster::PgCluster;
use reqwest::StatusCode;

const DATABASE_TIMEOUT: Duration = Duration::from_millis(500);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    let dir = match std::env::var_os("MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => repo_root().join(dir),
        None => repo_root().join(".cache/model"),
    };
    assert!(
        dir.join("backbone.onnx").is_file(),
        "{} is missing: build the model with model/build.sh",
        dir.join("backbone.onnx").display()
    );
    dir
}

/// The first `n` cats and `n` dogs of the dev set, alternating.
fn dev_photos(n: usize) -> Vec<Vec<u8>> {
    let dev = repo_root().join("../shared/data/images/dev");
    let mut lists = Vec::new();
    for kind in ["cat", "dog"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dev.join(kind))
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (the team's shared data must sit beside the repository as ../shared)",
                    dev.display()
                )
            })
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        names.sort();
        names.truncate(n);
        lists.push(names);
    }
    (0..n)
        .flat_map(|i| [&lists[0][i], &lists[1][i]])
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One classify-image process.
struct ClassifyImage {
    child: Child,
    base: String,
    port: u16,
}

impl ClassifyImage {
    async fn start(database_url: &str, objects_dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_classify-image"))
            .env_clear()
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .env(
                "DATABASE_TIMEOUT_MS",
                DATABASE_TIMEOUT.as_millis().to_string(),
            )
            .env("STORAGE_URL", format!("file://{}", objects_dir.display()))
            .env("MODEL_DIR", model_dir())
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start classify-image");
        let mut process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = client.get(format!("{}/healthz", self.base)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("classify-image exited early: {status}");
            }
            assert!(Instant::now() < deadline, "classify-image did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ClassifyImage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database and the objects folder, as ingestion leaves them.
struct Fixture {
    cluster: Option<PgCluster>,
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    objects_dir: PathBuf,
    dir: PathBuf,
}

impl Fixture {
    async fn new() -> Option<Self> {
        let cluster = PgCluster::start()?;
        let store = catdog::store::connect(
            &cluster.url(),
            &ConnectOptions {
                pool_size: 2,
                timeout: Duration::from_secs(5),
            },
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let dir = std::env::temp_dir().join(format!("catdog-classify-faults-{}", ImageId::new()));
        let objects_dir = dir.join("objects");
        std::fs::create_dir_all(&objects_dir).unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(
            FolderStore::open(&objects_dir.display().to_string())
                .await
                .unwrap(),
        );
        Some(Self {
            cluster: Some(cluster),
            store,
            objects,
            objects_dir,
            dir,
        })
    }

    fn url(&self) -> String {
        self.cluster.as_ref().unwrap().url()
    }

    /// The original first, then the pending row, as ingestion stores them.
    async fn stage(&self, photos: &[Vec<u8>]) -> Vec<ImageMessage> {
        let mut messages = Vec::new();
        for bytes in photos {
            let id = ImageId::new();
            let name = ObjectName::original(id);
            self.objects
                .put(&name, bytes.clone().into(), "image/jpeg")
                .await
                .unwrap();
            let digest = Digest::of(bytes);
            self.store
                .insert_pending(&NewImage {
                    id,
                    sha256: digest.clone(),
                    source: "test".to_owned(),
                    source_ref: None,
                    object_name: name.clone(),
                    content_type: "image/jpeg".to_owned(),
                    byte_size: bytes.len() as i64,
                    created_at: now_micros(),
                })
                .await
                .unwrap();
            messages.push(ImageMessage::new(id, name, digest));
        }
        messages
    }

    /// `pg_ctl` blocks, so it runs off the runtime: pushes keep going.
    async fn with_cluster(&mut self, action: fn(&mut PgCluster)) {
        let mut cluster = self.cluster.take().unwrap();
        self.cluster = Some(
            tokio::task::spawn_blocking(move || {
                action(&mut cluster);
                cluster
            })
            .await
            .unwrap(),
        );
    }

    /// No half-done image: every classified row has its verdict and a
    /// whole thumbnail in storage; every other row is still pending with no
    /// verdict; gallery positions are 1..=n, each once, and match the counts.
    /// Returns how many are classified.
    async fn check_consistent(&self, messages: &[ImageMessage]) -> usize {
        let mut classified = 0;
        let mut positions = Vec::new();
        for message in messages {
            let record = self.store.get(message.image_id).await.unwrap().unwrap();
            match record.status {
                Status::Classified => {
                    classified += 1;
                    assert!(record.category.is_some() && record.classified_at.is_some());
                    assert_eq!(record.attempts, 1, "recorded more than once: {record:?}");
                    let thumbnail = record
                        .thumbnail
                        .expect("a classified image has a thumbnail");
                    let object = self
                        .objects
                        .get(&thumbnail.object_name)
                        .await
                        .expect("the thumbnail of a classified image is in storage");
                    let jpeg = &object.bytes;
                    assert!(
                        jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]),
                        "a thumbnail is not a whole JPEG ({} bytes)",
                        jpeg.len()
                    );
                    if record.category != Some(Category::Other) {
                        positions.push(record.gallery_seq.expect("a position in the gallery"));
                    }
                }
                Status::Pending => {
                    assert!(
                        record.category.is_none()
                            && record.thumbnail.is_none()
                            && record.gallery_seq.is_none()
                            && record.classified_at.is_none(),
                        "a pending row with part of a verdict: {record:?}"
                    );
                }
                other => panic!("image {} ended {other:?}: {record:?}", message.image_id),
            }
        }
        positions.sort_unstable();
        let expected: Vec<i64> = (1..=positions.len() as i64).collect();
        assert_eq!(positions, expected, "gallery positions lost or doubled");
        let state = self.store.gallery_state().await.unwrap();
        assert_eq!(
            (state.total_images, state.gallery_seq),
            (positions.len() as i64, positions.len() as i64),
            "the gallery's counts"
        );
        classified
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client() -> reqwest::Client {
    // Bounds every push, so a hung service fails the test instead of hanging it.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One push delivery; the status, or the transport error.
async fn push(
    client: &reqwest::Client,
    base: &str,
    message: &ImageMessage,
) -> Result<StatusCode, String> {
    let envelope = PushEnvelope::wrap(
        message,
        &message.image_id.to_string(),
        "projects/p/subscriptions/classify",
    );
    client
        .post(format!("{base}/pubsub/push"))
        .json(&envelope)
        .send()
        .await
        .map(|r| r.status())
        .map_err(|e| e.to_string())
}

/// Pushes every message at once, each on its own connection.
fn push_all(
    base: &str,
    messages: &[ImageMessage],
) -> Vec<tokio::task::JoinHandle<(Result<StatusCode, String>, Duration)>> {
    messages
        .iter()
        .map(|message| {
            let base = base.to_owned();
            let message = message.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = push(&client(), &base, &message).await;
                (answer, started.elapsed())
            })
        })
        .collect()
}

/// Pub/Sub's redelivery: every message again until each is acknowledged.
async fn redeliver_until_acknowledged(base: &str, messages: &[ImageMessage], within: Duration) {
    let client = client();
    let deadline = Instant::now() + within;
    let mut last: HashMap<ImageId, Result<StatusCode, String>> = HashMap::new();
    let mut waiting: Vec<&ImageMessage> = messages.iter().collect();
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "not acknowledged within {within:?}: {last:?}"
        );
        let mut still = Vec::new();
        for message in waiting {
            let answer = push(&client, base, message).await;
            if !matches!(answer, Ok(status) if status.is_success()) {
                still.push(message);
            }
            last.insert(message.image_id, answer);
        }
        waiting = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_during_classification_is_503_and_redelivery_records_once() {
    let Some(mut fixture) = Fixture::new().await else {
        return;
    };
    let photos = dev_photos(3);
    let messages = fixture.stage(&photos[..4]).await;
    let late = fixture.stage(&photos[4..]).await;
    let service = ClassifyImage::start(&fixture.url(), &fixture.objects_dir).await;

    // The database goes away while the first pictures are being classified.
    let pushes = push_all(&service.base, &messages);
    tokio::time::sleep(Duration::from_millis(150)).await;
    fixture.with_cluster(PgCluster::stop).await;
    let down = Instant::now();
    // Messages that arrive while it is down are refused quickly, with a
    // status that makes Pub/Sub come back.
    for handle in push_all(&service.base, &late) {
        let (answer, took) = handle.await.unwrap();
        assert_eq!(answer, Ok(StatusCode::SERVICE_UNAVAILABLE));
        assert!(
            took < DATABASE_TIMEOUT + Duration::from_secs(1),
            "a push with no database took {took:?}"
        );
    }
    let mut answers = Vec::new();
    for handle in pushes {
        let (answer, took) = handle.await.unwrap();
        answers.push(answer.clone());
        assert!(
            matches!(
                answer,
                Ok(StatusCode::NO_CONTENT | StatusCode::SERVICE_UNAVAILABLE)
            ),
            "a push during the outage answered {answer:?} after {took:?}"
        );
    }
    eprintln!("answers while the database went down: {answers:?}");
    tokio::time::sleep(Duration::from_millis(500).saturating_sub(down.elapsed())).await;

    fixture.with_cluster(PgCluster::start_again).await;
    let all: Vec<_> = messages.iter().chain(&late).cloned().collect();
    let back = Instant::now();
    redeliver_until_acknowledged(&service.base, &all, Duration::from_secs(20)).await;
    eprintln!(
        "all acknowledged {:?} after the database came back",
        back.elapsed()
    );
    assert_eq!(fixture.check_consistent(&all).await, all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_classification_leaves_nothing_half_done_and_redelivery_completes_once() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let messages = fixture.stage(&dev_photos(4)).await;
    let mut service = ClassifyImage::start(&fixture.url(), &fixture.objects_dir).await;

    // One classification per core at a time, so when the first answer
    // arrives the next pictures are being classified or waiting: the kill
    // lands in the middle of the work.
    let mut pushes = push_all(&service.base, &messages);
    let first = loop {
        if let Some(index) = pushes.iter().position(|p| p.is_finished()) {
            break pushes.swap_remove(index).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    service.signal("-KILL");
    let killed = service.wait_exit(Duration::from_secs(5)).await;
    assert!(!killed.success());
    assert_eq!(first.0, Ok(StatusCode::NO_CONTENT), "the first push");
    let mut cut = 0;
    for handle in pushes {
        let (answer, _) = handle.await.unwrap();
        match answer {
            Ok(status) => assert!(status.is_success(), "answered {status} before the kill"),
            // The connection died with the process: Pub/Sub redelivers.
            Err(_) => cut += 1,
        }
    }
    assert!(cut > 0, "the kill came after every classification");
    let done = fixture.check_consistent(&messages).await;
    eprintln!(
        "killed with {done} of {} classified and {cut} deliveries cut",
        messages.len()
    );
    // A thumbnail may already be written for an image whose row was not:
    // harmless, the redelivery writes the same name again.
    drop(service);

    // Cloud Run starts a new instance; Pub/Sub redelivers what was not
    // acknowledged (and, being at-least-once, may deliver the rest again).
    let service = ClassifyImage::start(&fixture.url(), &fixture.objects_dir).await;
    redeliver_until_acknowledged(&service.base, &messages, Duration::from_secs(30)).await;
    assert_eq!(fixture.check_consistent(&messages).await, messages.len());
    // Each thumbnail is there exactly when its row says classified, and
    // nothing half-written is left beside them.
    let mut thumbnails: Vec<String> = fixture
        .objects
        .list()
        .await
        .unwrap()
        .iter()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("thumbs/"))
        .collect();
    thumbnails.sort();
    let mut expected: Vec<String> = messages
        .iter()
        .map(|m| ObjectName::thumbnail(m.image_id).as_str().to_owned())
        .collect();
    expected.sort();
    assert_eq!(thumbnails, expected);
    let leftovers: Vec<_> = std::fs::read_dir(fixture.objects_dir.join("thumbs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-written files left: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_classifications_and_refuses_new_ones() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let messages = fixture.stage(&dev_photos(3)).await;
    let mut service = ClassifyImage::start(&fixture.url(), &fixture.objects_dir).await;

    let pushes = push_all(&service.base, &messages);
    // Long enough for every request to be read, far shorter than the work.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        pushes.iter().any(|p| !p.is_finished()),
        "nothing was in flight"
    );
    let signalled = Instant::now();
    service.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", service.port)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection after SIGTERM: {refused:?}"
    );
    for handle in pushes {
        let (answer, took) = handle.await.unwrap();
        assert_eq!(
            answer,
            Ok(StatusCode::NO_CONTENT),
            "an in-flight push after {took:?}"
        );
    }
    let exit = service.wait_exit(Duration::from_secs(10)).await;
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(fixture.check_consistent(&messages).await, messages.len());
}
