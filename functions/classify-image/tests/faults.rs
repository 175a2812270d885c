//! Faults around the real classify-image binary on PostgreSQL, with the test
//! playing Pub/Sub: it pushes each message as a push envelope, and delivers
//! again every message not acknowledged with a 2xx.
//!
//! - the process killed with SIGKILL in the middle of classifications;
//! - the database stopped while pictures are being classified, then started;
//! - SIGTERM while classifications are in flight.
//!
//! Each test starts a PostgreSQL server of its own (see
//! shared/testing/src/pg_cluster.rs) and reaches it through a loopback
//! proxy it can freeze: with the database frozen just as a picture's
//! verdict is being written, the fault lands in the middle of a
//! classification every time, not only when the timing happens to be right.
//! Objects are kept in a folder (`file://`), which writes each object whole,
//! as Cloud Storage does.
//!
//! Needs `.cache/model/backbone.onnx` (model/build.sh) and the dev photos in
//! `../shared/data/images/dev`.

use catdog_testing::model;
use catdog_testing::pg_cluster;
use catdog_testing::service_process;
use catdog_testing::tcp_proxy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::domain::{Category, ImageId, ObjectName, Status};
use catdog::objects::{FolderStore, ObjectStore};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::ImageStore;
use pg_cluster::PgCluster;
use reqwest::StatusCode;
use service_process::ServiceProcess;
use tcp_proxy::TcpProxy;

const PHOTOS: [&str; 8] = [
    "cat/cat.4210.jpg",
    "dog/dog.4002.jpg",
    "cat/cat.4212.jpg",
    "dog/dog.4015.jpg",
    "cat/cat.4219.jpg",
    "dog/dog.4038.jpg",
    "cat/cat.4222.jpg",
    "dog/dog.4049.jpg",
];

/// The database, the objects folder and the proxy in between, with the
/// pictures stored as ingestion leaves them: original first, then a
/// pending row.
struct Fixture {
    cluster: Option<PgCluster>,
    proxy: TcpProxy,
    /// The test's own connection, straight to the server (not through the
    /// proxy), so it can look while the service's connections are frozen.
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    objects_dir: PathBuf,
    dir: PathBuf,
}

impl Fixture {
    async fn new() -> Option<Self> {
        let cluster = PgCluster::start()?;
        let store = cluster.migrated_store().await;
        let proxy = TcpProxy::start(([127, 0, 0, 1], cluster.port()).into()).await;
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
            proxy,
            store,
            objects,
            objects_dir,
            dir,
        })
    }

    /// The service's database URL: through the proxy.
    fn service_url(&self) -> String {
        self.cluster
            .as_ref()
            .unwrap()
            .url_through(self.proxy.port())
    }

    /// classify-image on this database and folder, answering 503 after
    /// waiting `database_timeout` for the database.
    async fn start_service(&self, database_timeout: Duration) -> ServiceProcess {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let env = [
            ("DATABASE_URL", self.service_url()),
            (
                "DATABASE_TIMEOUT_MS",
                database_timeout.as_millis().to_string(),
            ),
            (
                "STORAGE_URL",
                format!("file://{}", self.objects_dir.display()),
            ),
            ("MODEL_DIR", model::model_dir().display().to_string()),
        ];
        ServiceProcess::start(
            Path::new(env!("CARGO_BIN_EXE_classify-image")),
            &env,
            self.dir.join(format!("classify-image-{n}.log")),
        )
        .await
    }

    async fn stage(&self, photos: &[&str]) -> Vec<ImageMessage> {
        let mut messages = Vec::new();
        for photo in photos {
            messages.push(
                model::stage_dev_photo(self.store.as_ref(), self.objects.as_ref(), photo).await,
            );
        }
        messages
    }

    /// `pg_ctl` blocks, so it runs off the runtime: the service and the
    /// pushes keep going meanwhile.
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

    /// Waits for the first answer to `pushes` (the model is at work), then
    /// freezes the database's network and waits until a picture has its
    /// thumbnail written and its verdict not: a classification stopped at
    /// its last step, writing the row. Returns the pushes not answered yet.
    async fn freeze_mid_classification(
        &self,
        mut pushes: Vec<Push>,
        messages: &[ImageMessage],
    ) -> (Vec<Push>, Vec<(Answer, Duration)>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut answered = Vec::new();
        while answered.is_empty() {
            assert!(Instant::now() < deadline, "no push was answered");
            while let Some(index) = pushes.iter().position(|p| p.is_finished()) {
                answered.push(pushes.swap_remove(index).await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.proxy.freeze();
        loop {
            if self.a_classification_is_writing_its_row(messages).await {
                return (pushes, answered);
            }
            assert!(
                Instant::now() < deadline,
                "no classification reached its database write"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn a_classification_is_writing_its_row(&self, messages: &[ImageMessage]) -> bool {
        for message in messages {
            let thumbnail = ObjectName::thumbnail(message.image_id);
            if self.objects.get(&thumbnail).await.is_ok() {
                let record = self.store.get(message.image_id).await.unwrap().unwrap();
                if record.status == Status::Pending {
                    return true;
                }
            }
        }
        false
    }

    /// No half-done image: every classified row has its verdict, its
    /// position and a whole thumbnail in storage, and was recorded once;
    /// every other row is still pending with no part of a verdict; gallery
    /// positions are 1..=n, each once, and match the gallery's counts.
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

    /// Pending rows whose thumbnail is already in storage.
    async fn thumbnails_ahead_of_their_rows(&self, messages: &[ImageMessage]) -> usize {
        let mut ahead = 0;
        for message in messages {
            let record = self.store.get(message.image_id).await.unwrap().unwrap();
            let thumbnail = ObjectName::thumbnail(message.image_id);
            if record.status == Status::Pending && self.objects.get(&thumbnail).await.is_ok() {
                ahead += 1;
            }
        }
        ahead
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Answer = Result<StatusCode, String>;
type Push = tokio::task::JoinHandle<(Answer, Duration)>;

fn client() -> reqwest::Client {
    // Bounds every push, so a hung service fails the test instead of hanging it.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One push delivery: the status, or the transport error.
async fn push(client: &reqwest::Client, base: &str, message: &ImageMessage) -> Answer {
    let envelope = PushEnvelope::wrap(
        message,
        &message.image_id.to_string(),
        "projects/catdog-test/subscriptions/classify-image",
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
fn push_all(base: &str, messages: &[ImageMessage]) -> Vec<Push> {
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
async fn redeliver_until_acknowledged(base: &str, messages: &[ImageMessage]) {
    let within = Duration::from_secs(60);
    let client = client();
    let deadline = Instant::now() + within;
    let mut last: HashMap<ImageId, Answer> = HashMap::new();
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

/// The moment of a fault: `photos` staged, classify-image (waiting up to
/// `database_timeout` for the database) given all of them at once, and the
/// database frozen while one of them writes its verdict.
struct Scene {
    fixture: Fixture,
    messages: Vec<ImageMessage>,
    service: ServiceProcess,
    /// The pushes not answered yet.
    in_flight: Vec<Push>,
    /// The pushes answered before the freeze.
    answered: Vec<(Answer, Duration)>,
}

impl Scene {
    async fn set(photos: &[&str], database_timeout: Duration) -> Option<Self> {
        let fixture = Fixture::new().await?;
        let messages = fixture.stage(photos).await;
        let service = fixture.start_service(database_timeout).await;
        let pushes = push_all(&service.base, &messages);
        let (in_flight, answered) = fixture.freeze_mid_classification(pushes, &messages).await;
        Some(Self {
            fixture,
            messages,
            service,
            in_flight,
            answered,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_classification_leaves_nothing_half_done_and_redelivery_completes_once() {
    // A database timeout long enough that a write held by the frozen
    // network is still waiting when the kill comes.
    let Some(mut scene) = Scene::set(&PHOTOS, Duration::from_secs(20)).await else {
        return;
    };
    scene.service.signal("-KILL");
    let killed = scene.service.wait_exit(Duration::from_secs(10)).await;
    assert!(!killed.success(), "exit status {killed:?}");
    // The instance's network goes with it: what the proxy still holds never
    // reaches the database, and the connections are cut, so the server rolls
    // back every unfinished transaction. Delivering the held bytes instead
    // let a held COMMIT land after the kill, and then, depending on the
    // round trip the freeze had caught, no row was left behind its thumbnail.
    let fixture = &mut scene.fixture;
    fixture.proxy.restart().await;
    fixture.proxy.thaw();
    let fixture = &scene.fixture;
    let messages = &scene.messages;
    for (answer, _) in &scene.answered {
        assert_eq!(
            *answer,
            Ok(StatusCode::NO_CONTENT),
            "a push before the kill"
        );
    }
    let mut cut = 0;
    for handle in scene.in_flight.drain(..) {
        let (answer, _) = handle.await.unwrap();
        match answer {
            Ok(status) => assert!(status.is_success(), "answered {status} before the kill"),
            // The connection died with the process: Pub/Sub redelivers.
            Err(_) => cut += 1,
        }
    }
    assert!(cut > 0, "the kill came after every classification");
    let done = fixture.check_consistent(messages).await;
    let ahead = fixture.thumbnails_ahead_of_their_rows(messages).await;
    eprintln!(
        "killed with {done} of {} classified, {cut} deliveries cut, {ahead} thumbnails written \
         for rows still pending",
        messages.len()
    );
    assert!(
        ahead > 0,
        "the kill did not land between a thumbnail and its row"
    );

    // Cloud Run starts a new instance; Pub/Sub redelivers what was not
    // acknowledged (and, being at-least-once, may deliver the rest again).
    let service = fixture.start_service(Duration::from_secs(2)).await;
    redeliver_until_acknowledged(&service.base, messages).await;
    assert_eq!(fixture.check_consistent(messages).await, messages.len());
    // One thumbnail per image, and nothing half-written beside them.
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
async fn a_database_stopped_during_classification_is_503_and_redelivery_records_once() {
    // The database stops while a picture's verdict is being written (and
    // others are in the model or waiting for it).
    let database_timeout = Duration::from_secs(2);
    let Some(mut scene) = Scene::set(&PHOTOS[..6], database_timeout).await else {
        return;
    };
    // Pictures whose messages will arrive while the database is down.
    let late = scene.fixture.stage(&PHOTOS[6..]).await;
    scene.fixture.with_cluster(PgCluster::stop).await;
    scene.fixture.proxy.thaw();
    let mut answers: Vec<Answer> = scene.answered.drain(..).map(|(answer, _)| answer).collect();
    for handle in scene.in_flight.drain(..) {
        answers.push(handle.await.unwrap().0);
    }
    eprintln!("answers while the database went down: {answers:?}");
    for answer in &answers {
        assert!(
            matches!(
                answer,
                Ok(StatusCode::NO_CONTENT | StatusCode::SERVICE_UNAVAILABLE)
            ),
            "a push as the database went down answered {answer:?}"
        );
    }
    assert!(
        answers.contains(&Ok(StatusCode::SERVICE_UNAVAILABLE)),
        "the outage hit no classification"
    );

    // Messages that arrive while it is down are refused with a status that
    // makes Pub/Sub come back, without hanging on the database.
    let base = scene.service.base.clone();
    for handle in push_all(&base, &late) {
        let (answer, took) = handle.await.unwrap();
        assert_eq!(answer, Ok(StatusCode::SERVICE_UNAVAILABLE));
        assert!(
            took < database_timeout * 2 + Duration::from_secs(3),
            "a push with no database took {took:?}"
        );
    }

    scene.fixture.with_cluster(PgCluster::start_again).await;
    let all: Vec<_> = scene.messages.iter().chain(&late).cloned().collect();
    // Nothing half-written by the outage.
    scene.fixture.check_consistent(&all).await;
    let back = Instant::now();
    // The same process, which was not restarted.
    redeliver_until_acknowledged(&base, &all).await;
    eprintln!(
        "all acknowledged {:?} after the database came back",
        back.elapsed()
    );
    assert_eq!(scene.fixture.check_consistent(&all).await, all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_classifications_and_refuses_new_ones() {
    let Some(mut scene) = Scene::set(&PHOTOS, Duration::from_secs(20)).await else {
        return;
    };
    assert!(!scene.in_flight.is_empty(), "nothing was in flight");
    let signalled = Instant::now();
    scene.service.signal("-TERM");
    // The listener closes at once: new deliveries are refused (Pub/Sub
    // sends them to another instance), never accepted and dropped.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let attempt = tokio::net::TcpStream::connect(("127.0.0.1", scene.service.port)).await;
        // A connection the kernel queued just as the listener closed is
        // reset, never accepted: not yet the answer, so try again until the
        // port refuses outright.
        let queued_as_it_closed = attempt
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset);
        if (attempt.is_err() && !queued_as_it_closed) || Instant::now() > deadline {
            break attempt;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection after SIGTERM: {refused:?}"
    );
    scene.fixture.proxy.thaw();
    for (answer, took) in &scene.answered {
        assert_eq!(*answer, Ok(StatusCode::NO_CONTENT), "a push after {took:?}");
    }
    let in_flight = scene.in_flight.len();
    for handle in scene.in_flight.drain(..) {
        let (answer, took) = handle.await.unwrap();
        assert_eq!(
            answer,
            Ok(StatusCode::NO_CONTENT),
            "a push in flight at SIGTERM, after {took:?}"
        );
    }
    let exit = scene
        .service
        .wait_exit(Duration::from_secs(10).saturating_sub(signalled.elapsed()))
        .await;
    eprintln!(
        "{in_flight} pushes in flight at SIGTERM; exited {:?} after it",
        signalled.elapsed()
    );
    assert!(exit.success(), "exit status {exit:?}");
    let messages = &scene.messages;
    assert_eq!(
        scene.fixture.check_consistent(messages).await,
        messages.len()
    );
}
