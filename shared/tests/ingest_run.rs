//! Ingestion runs end to end, on real stores (SQLite and PostgreSQL, folder
//! object storage), publishing with the real Pub/Sub client to a loopback
//! gRPC server, fetching from loopback servers that speak each source's
//! contract and serve the team's dev photos.
//!
//! `run::*` tests run twice, `sqlite::NAME` and `postgres::NAME`; the source
//! contract and `POST /ingest` tests run on SQLite.

use catdog_testing as support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use catdog::domain::{Digest, ImageId, ImageRecord, Status};
use catdog::ingest::{IngestConfig, IngestSummary, Ingestor, SourceSpec};
use catdog::objects::{self, StorageOptions};
use catdog::pubsub::{GcpPublisher, GcpPublisherConfig, ImageMessage, Publisher};
use catdog::startup::Backends;
use catdog::store::{self, ConnectOptions};
use reqwest::Url;
use support::postgres::TestDatabase;
use support::pubsub_server::PubsubServer;
use support::sources::{Reply, SourceServer, dev_photos};

// ---------------------------------------------------------------------------
// Harness

/// One test's database and object folder, removed when dropped.
struct World {
    dir: PathBuf,
    database_url: String,
    _postgres: Option<TestDatabase>,
    pubsub: PubsubServer,
}

impl World {
    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "catdog-ingest-{}-{}",
            std::process::id(),
            ImageId::new()
        ));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        dir
    }

    async fn sqlite() -> Self {
        let dir = Self::temp_dir();
        Self {
            database_url: format!("sqlite://{}", dir.join("catdog.db").display()),
            dir,
            _postgres: None,
            pubsub: PubsubServer::start().await,
        }
    }

    async fn postgres() -> Option<Self> {
        let database = TestDatabase::create().await?;
        Some(Self {
            dir: Self::temp_dir(),
            database_url: database.url.clone(),
            _postgres: Some(database),
            pubsub: PubsubServer::start().await,
        })
    }

    /// The stores, opened as another process would open them.
    async fn backends(&self) -> Backends {
        let store = store::connect(&self.database_url, &ConnectOptions::default())
            .await
            .expect("open the store");
        store.migrate().await.expect("migrate");
        let objects = objects::open(
            &format!("file://{}", self.dir.join("objects").display()),
            &StorageOptions::default(),
        )
        .await
        .expect("open the object folder");
        Backends { store, objects }
    }

    async fn publisher(&self, timeout: Duration) -> Arc<dyn Publisher> {
        let config = GcpPublisherConfig {
            project: "gallery-test".to_owned(),
            topic: "images".to_owned(),
            endpoint: Some(self.pubsub.endpoint()),
            publish_timeout: timeout,
        };
        Arc::new(
            GcpPublisher::connect(&config)
                .await
                .expect("a Pub/Sub client"),
        )
    }

    /// An ingestor as one process would have it.
    async fn ingestor(&self, config: IngestConfig) -> Ingestor {
        let backends = self.backends().await;
        Ingestor::new(
            config,
            Arc::clone(&backends.store),
            Arc::clone(&backends.objects),
            self.publisher(Duration::from_secs(5)).await,
        )
        .expect("an ingestor")
    }

    /// An empty folder `name` in this test's directory.
    fn empty_folder(&self, name: &str) -> PathBuf {
        let folder = self.dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        folder
    }

    /// A folder of photos, some in subfolders, plus files that are not pictures.
    fn photo_folder(&self, photos: &[PathBuf]) -> PathBuf {
        let folder = self.dir.join("inbox");
        for (i, photo) in photos.iter().enumerate() {
            let sub = folder.join(if i % 2 == 0 { "a" } else { "b/c" });
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::copy(photo, sub.join(photo.file_name().unwrap())).unwrap();
        }
        std::fs::write(
            folder.join("README.txt"),
            "not a picture, not even looked at",
        )
        .unwrap();
        folder
    }

    /// The row stored for a picture of `bytes`, if there is one.
    async fn record_of(&self, bytes: &[u8]) -> Option<ImageRecord> {
        let backends = self.backends().await;
        backends
            .store
            .find_by_digest(&Digest::of(bytes))
            .await
            .expect("look a picture up by its digest")
    }

    /// How many objects are stored (originals and thumbnails).
    async fn object_count(&self) -> usize {
        let backends = self.backends().await;
        backends
            .objects
            .list()
            .await
            .expect("list the objects")
            .len()
    }

    /// The messages the Pub/Sub server received.
    fn messages(&self) -> Vec<ImageMessage> {
        self.pubsub
            .received()
            .iter()
            .map(|r| ImageMessage::from_json(&r.message.data).expect("our message"))
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn folder_config(folder: &Path) -> IngestConfig {
    IngestConfig::new(vec![SourceSpec::Folder(folder.to_path_buf())])
}

/// A text file at `path`, named like a picture (`*.jpg`) but not one.
fn write_not_a_picture(path: &Path) {
    std::fs::write(path, "a text file named like a picture").unwrap();
}

fn some_photos() -> Vec<PathBuf> {
    let mut photos = dev_photos("cat")[..3].to_vec();
    photos.extend_from_slice(&dev_photos("dog")[..3]);
    photos
}

macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::run::$test(super::World::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(world) = super::World::postgres().await {
                        super::run::$test(world).await;
                    }
                }
            )*
        }
    };
}

on_both_stores!(
    each_new_picture_is_stored_once_and_published,
    a_second_run_adds_nothing,
    two_runs_started_together_store_each_picture_once,
    runs_without_the_lease_still_store_each_picture_once,
    a_failed_publish_is_published_by_a_later_runs_sweep,
    a_failing_source_does_not_stop_the_others,
    a_run_stopped_by_storage_records_no_source_as_working,
    a_folder_works_again_once_its_only_file_is_known_to_be_bad,
);

// ---------------------------------------------------------------------------
// Runs, on both stores

mod run {
    use super::*;

    /// When each source last worked, by name.
    async fn last_successes(world: &World) -> Vec<(String, bool)> {
        let store = store::connect(&world.database_url, &ConnectOptions::default())
            .await
            .unwrap();
        let stats = store.stats().await.unwrap();
        stats
            .sources
            .into_iter()
            .map(|s| (s.name, s.last_success_at.is_some()))
            .collect()
    }

    pub async fn a_run_stopped_by_storage_records_no_source_as_working(world: World) {
        let folder = world.photo_folder(&some_photos());
        let ingestor = world.ingestor(folder_config(&folder)).await;
        // The objects folder becomes a plain file: every write fails, as on
        // a storage outage, after the store was opened.
        let objects = world.dir.join("objects");
        let _ = std::fs::remove_dir_all(&objects);
        std::fs::write(&objects, "not a folder").unwrap();

        let stopped = ingestor.run_once().await;
        assert!(stopped.is_err(), "{stopped:?}");
        let successes = last_successes(&world).await;
        assert!(
            successes.iter().all(|(_, worked)| !worked),
            "a run that stored nothing says a source worked: {successes:?}"
        );

        // Storage back: the next run stores them and the folder worked.
        std::fs::remove_file(&objects).unwrap();
        std::fs::create_dir_all(&objects).unwrap();
        let summary = ingestor.run_once().await.unwrap();
        assert_eq!(summary.stored, 6, "{summary:?}");
        assert_eq!(
            last_successes(&world).await,
            vec![("folder".to_owned(), true)]
        );
    }

    pub async fn a_folder_works_again_once_its_only_file_is_known_to_be_bad(world: World) {
        let folder = world.empty_folder("bad-only");
        write_not_a_picture(&folder.join("broken.jpg"));
        let ingestor = world.ingestor(folder_config(&folder)).await;

        let first = ingestor.run_once().await.unwrap();
        assert_eq!(first.errors.len(), 1, "{first:?}");
        assert_eq!(
            last_successes(&world).await,
            vec![("folder".to_owned(), false)],
            "every picture it gave failed: it did not work"
        );
        // Refused once, the file is skipped, not failed again: the folder
        // offers nothing new, which is working.
        let second = ingestor.run_once().await.unwrap();
        assert!(second.errors.is_empty(), "{second:?}");
        assert_eq!(
            last_successes(&world).await,
            vec![("folder".to_owned(), true)]
        );
    }

    pub async fn each_new_picture_is_stored_once_and_published(world: World) {
        let photos = some_photos();
        let folder = world.photo_folder(&photos);
        let ingestor = world.ingestor(folder_config(&folder)).await;

        let summary = ingestor.run_once().await.unwrap();
        assert_eq!(
            summary,
            IngestSummary {
                fetched: 6,
                stored: 6,
                duplicates: 0,
                published: 6,
                ..IngestSummary::default()
            }
        );

        let backends = world.backends().await;
        let mut ids = HashSet::new();
        for photo in &photos {
            let bytes = std::fs::read(photo).unwrap();
            let record = backends
                .store
                .find_by_digest(&Digest::of(&bytes))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{} was not stored", photo.display()));
            assert_eq!(record.status, Status::Pending);
            assert_eq!(record.source, "folder");
            assert!(
                record
                    .source_ref
                    .as_deref()
                    .unwrap()
                    .ends_with(&*photo.file_name().unwrap().to_string_lossy())
            );
            assert_eq!(record.content_type, "image/jpeg");
            assert_eq!(record.byte_size, bytes.len() as i64);
            assert!(record.published_at.is_some());
            let object = backends.objects.get(&record.object_name).await.unwrap();
            assert_eq!(object.bytes, bytes, "the original is kept byte for byte");
            assert_eq!(object.content_type, "image/jpeg");
            ids.insert(record.id);
        }
        assert_eq!(backends.objects.list().await.unwrap().len(), 6);

        let messages = world.messages();
        assert_eq!(messages.len(), 6);
        for message in &messages {
            assert!(ids.contains(&message.image_id));
            let record = backends.store.get(message.image_id).await.unwrap().unwrap();
            assert_eq!(message.object, record.object_name);
            assert_eq!(message.sha256, record.sha256);
        }
    }

    pub async fn a_second_run_adds_nothing(world: World) {
        let folder = world.photo_folder(&some_photos());
        let ingestor = world.ingestor(folder_config(&folder)).await;
        let first = ingestor.run_once().await.unwrap();
        assert_eq!(first.stored, 6);
        let after_first = world
            .backends()
            .await
            .store
            .gallery_state()
            .await
            .unwrap()
            .last_ingest_at;

        let second = ingestor.run_once().await.unwrap();
        assert_eq!(
            (second.stored, second.duplicates, second.published),
            (0, 6, 0)
        );
        // Another process, which has not seen the folder before, reads and
        // hashes every file and still adds nothing.
        let other = world.ingestor(folder_config(&folder)).await;
        let third = other.run_once().await.unwrap();
        assert_eq!(
            (
                third.fetched,
                third.stored,
                third.duplicates,
                third.published
            ),
            (6, 0, 6, 0)
        );

        let backends = world.backends().await;
        assert_eq!(backends.objects.list().await.unwrap().len(), 6);
        assert_eq!(world.messages().len(), 6, "nothing was published twice");
        let state = backends.store.gallery_state().await.unwrap();
        assert!(state.last_ingest_at > after_first, "each run is recorded");
    }

    pub async fn two_runs_started_together_store_each_picture_once(world: World) {
        let folder = world.photo_folder(&some_photos());
        // A source that takes a second to list, so the runs certainly overlap.
        let slow = SourceServer::start(&dev_photos("cat")[..0]).await;
        slow.always(
            "/api/breeds/image/random",
            Reply::Delay(Duration::from_secs(1)),
        );
        let mut config = folder_config(&folder);
        config.sources.push(SourceSpec::DogCeo);
        config.dogceo_base_url = Url::parse(&slow.base_url()).unwrap();
        let a = world.ingestor(config.clone()).await;
        let b = world.ingestor(config).await;
        let (first, second) = tokio::join!(a.run_once(), b.run_once());
        let (first, second) = (first.unwrap(), second.unwrap());
        // Whichever got the lease did the work; the other stood aside.
        assert_eq!(first.stored + second.stored, 6, "{first:?} {second:?}");
        assert!(first.skipped != second.skipped, "{first:?} {second:?}");
        let skipped = if first.skipped { &first } else { &second };
        assert_eq!(
            (skipped.fetched, skipped.stored, skipped.published),
            (0, 0, 0)
        );
        assert_eq!(world.messages().len(), 6);
        assert_eq!(world.object_count().await, 6);
    }

    /// When the lease cannot keep two runs apart (here it expires at once),
    /// the unique digest still does: each picture is stored, and published,
    /// once, and the loser's objects are removed.
    pub async fn runs_without_the_lease_still_store_each_picture_once(world: World) {
        let folder = world.photo_folder(&some_photos());
        let mut config = folder_config(&folder);
        config.lease_ttl = Duration::from_millis(1);
        let runs: Vec<Ingestor> =
            futures::future::join_all((0..3).map(|_| world.ingestor(config.clone()))).await;
        let summaries = futures::future::join_all(runs.iter().map(|r| r.run_once())).await;
        let summaries: Vec<IngestSummary> = summaries.into_iter().map(Result::unwrap).collect();
        let stored: u64 = summaries.iter().map(|s| s.stored).sum();
        let published: u64 = summaries.iter().map(|s| s.published).sum();
        assert_eq!(stored, 6, "{summaries:?}");
        assert_eq!(published, 6, "{summaries:?}");
        assert_eq!(world.messages().len(), 6);
        let ids: HashSet<ImageId> = world.messages().iter().map(|m| m.image_id).collect();
        assert_eq!(ids.len(), 6);
        assert_eq!(world.object_count().await, 6, "no orphan objects are left");
    }

    pub async fn a_failed_publish_is_published_by_a_later_runs_sweep(world: World) {
        let folder = world.photo_folder(&some_photos()[..3]);
        let mut config = folder_config(&folder);
        config.republish_after = Duration::from_secs(1);
        let backends = world.backends().await;
        let ingestor = Ingestor::new(
            config,
            Arc::clone(&backends.store),
            Arc::clone(&backends.objects),
            world.publisher(Duration::from_secs(1)).await,
        )
        .unwrap();

        world.pubsub.fail_next(u32::MAX);
        let first = ingestor.run_once().await.unwrap();
        assert_eq!((first.stored, first.published), (3, 0));
        assert!(
            first.errors.iter().all(|e| e.source == "pubsub"),
            "{:?}",
            first.errors
        );
        assert!(!first.errors.is_empty());
        assert!(world.messages().is_empty());

        world.pubsub.fail_next(0);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = ingestor.run_once().await.unwrap();
        assert_eq!(
            (
                second.stored,
                second.duplicates,
                second.published,
                second.republished
            ),
            (0, 3, 3, 3)
        );
        assert!(second.errors.is_empty(), "{:?}", second.errors);

        let messages = world.messages();
        assert_eq!(messages.len(), 3);
        let store = world.backends().await.store;
        for message in messages {
            let record = store.get(message.image_id).await.unwrap().unwrap();
            assert!(record.published_at.is_some());
        }
        // Published now: the next sweep leaves them alone.
        let third = ingestor.run_once().await.unwrap();
        assert_eq!(third.published, 0);
    }

    pub async fn a_failing_source_does_not_stop_the_others(world: World) {
        let cats = SourceServer::start(&dev_photos("cat")[..2]).await;
        let dogs = SourceServer::start(&dev_photos("dog")[..2]).await;
        cats.always("/v1/images/search", Reply::Status(500));
        let mut config = IngestConfig::new(vec![SourceSpec::TheCatApi, SourceSpec::DogCeo]);
        config.thecatapi_base_url = Url::parse(&cats.base_url()).unwrap();
        config.dogceo_base_url = Url::parse(&dogs.base_url()).unwrap();
        config.fetch.backoff = Duration::from_millis(50);
        let summary = world.ingestor(config).await.run_once().await.unwrap();

        assert_eq!((summary.stored, summary.published), (2, 2));
        assert_eq!(summary.errors.len(), 1, "{:?}", summary.errors);
        assert_eq!(summary.errors[0].source, "thecatapi");
        assert!(
            summary.errors[0].error.contains("500"),
            "{:?}",
            summary.errors
        );
        assert_eq!(cats.hits("/v1/images/search"), 3, "the listing was retried");

        let stats = world.backends().await.store.stats().await.unwrap();
        let cat_api = stats
            .sources
            .iter()
            .find(|s| s.name == "thecatapi")
            .expect("thecatapi in stats");
        assert!(
            cat_api
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("500")),
            "{cat_api:?}"
        );
        let dog_ceo = stats
            .sources
            .iter()
            .find(|s| s.name == "dogceo")
            .expect("dogceo in stats");
        assert_eq!(dog_ceo.last_error, None);
        assert!(dog_ceo.last_success_at.is_some());
    }
}

// ---------------------------------------------------------------------------
// Each source's contract, on SQLite

/// One run of an ingestor whose network sources point at `server`.
async fn run_against(
    world: &World,
    server: &SourceServer,
    sources: Vec<SourceSpec>,
) -> IngestSummary {
    let mut config = IngestConfig::new(sources);
    config.thecatapi_base_url = Url::parse(&server.base_url()).unwrap();
    config.dogceo_base_url = Url::parse(&server.base_url()).unwrap();
    config.fetch.backoff = Duration::from_millis(50);
    config.fetch.total_timeout = Duration::from_secs(3);
    config.batch_size = 3;
    world.ingestor(config).await.run_once().await.unwrap()
}

#[tokio::test]
async fn thecatapi_pictures_are_listed_with_the_key_and_downloaded() {
    let world = World::sqlite().await;
    let server = SourceServer::start(&dev_photos("cat")[..5]).await;
    let mut config = IngestConfig::new(vec![SourceSpec::TheCatApi]);
    config.thecatapi_base_url = Url::parse(&server.base_url()).unwrap();
    config.thecatapi_key = Some("test-key".into());
    config.batch_size = 3;
    let summary = world.ingestor(config).await.run_once().await.unwrap();
    assert_eq!(
        (summary.fetched, summary.stored, summary.published),
        (3, 3, 3)
    );
    assert_eq!(server.api_keys(), vec![Some("test-key".to_owned())]);

    for index in 0..3 {
        let record = world.record_of(&server.photo_bytes(index)).await.unwrap();
        assert_eq!(record.source, "thecatapi");
        let name = server
            .photo_path(index)
            .trim_start_matches("/images/")
            .to_owned();
        assert_eq!(record.source_ref, Some(name), "the Cat API's id is kept");
        // The server claimed image/png; the bytes say JPEG.
        assert_eq!(record.content_type, "image/jpeg");
    }
}

#[tokio::test]
async fn dogceo_pictures_are_listed_and_downloaded() {
    let world = World::sqlite().await;
    let server = SourceServer::start(&dev_photos("dog")[..4]).await;
    let summary = run_against(&world, &server, vec![SourceSpec::DogCeo]).await;
    assert_eq!((summary.stored, summary.published), (3, 3));
    let record = world.record_of(&server.photo_bytes(0)).await.unwrap();
    assert_eq!(record.source, "dogceo");
    assert_eq!(
        record.source_ref.as_deref(),
        Some(server.photo_path(0).trim_start_matches('/'))
    );
}

#[tokio::test]
async fn generator_pictures_arrive_base64_encoded() {
    let world = World::sqlite().await;
    let server = SourceServer::start(&dev_photos("cat")[5..8]).await;
    let generator = Url::parse(&server.url("/generate")).unwrap();
    let summary = run_against(&world, &server, vec![SourceSpec::Generator(generator)]).await;
    assert_eq!((summary.stored, summary.published), (3, 3));
    for index in 0..3 {
        let record = world.record_of(&server.photo_bytes(index)).await;
        assert_eq!(record.unwrap().source, "generator");
    }
}

#[tokio::test]
async fn bad_pictures_are_reported_and_the_good_ones_kept() {
    let world = World::sqlite().await;
    let server = SourceServer::start(&dev_photos("cat")[..3]).await;
    server.always(&server.photo_path(0), Reply::NotAnImage);
    server.always(&server.photo_path(1), Reply::Streamed(25 * 1024 * 1024));
    let summary = run_against(&world, &server, vec![SourceSpec::TheCatApi]).await;
    assert_eq!((summary.fetched, summary.stored), (1, 1));
    assert_eq!(summary.errors.len(), 2, "{:?}", summary.errors);
    let text = format!("{:?}", summary.errors);
    // What the public stats say: a kind, never the picture's URL.
    assert!(text.contains("picture: not a picture"), "{text}");
    assert!(text.contains("picture: too large"), "{text}");
    assert!(world.record_of(&server.photo_bytes(2)).await.is_some());
    assert_eq!(world.object_count().await, 1);
}

#[tokio::test]
async fn passing_failures_are_retried_within_the_run() {
    let world = World::sqlite().await;
    let server = SourceServer::start(&dev_photos("cat")[..3]).await;
    server.script("/v1/images/search", [Reply::Status(500)]);
    server.script(
        &server.photo_path(0),
        [Reply::TooManyRequests {
            retry_after_secs: 1,
        }],
    );
    server.script(
        &server.photo_path(1),
        [Reply::Status(503), Reply::Status(502)],
    );
    let summary = run_against(&world, &server, vec![SourceSpec::TheCatApi]).await;
    assert_eq!(
        (summary.stored, summary.published),
        (3, 3),
        "{:?}",
        summary.errors
    );
    assert!(summary.errors.is_empty());
}

#[tokio::test]
async fn a_folder_file_that_is_not_a_picture_is_reported_once_until_it_changes() {
    let world = World::sqlite().await;
    let folder = world.photo_folder(&dev_photos("cat")[..1]);
    let broken = folder.join("broken.jpg");
    write_not_a_picture(&broken);
    let ingestor = world.ingestor(folder_config(&folder)).await;

    let first = ingestor.run_once().await.unwrap();
    assert_eq!(first.stored, 1);
    assert_eq!(first.errors.len(), 1, "{:?}", first.errors);
    assert_eq!(first.errors[0].error, "picture: not a picture");

    // The same file, unchanged: neither read nor reported again.
    let second = ingestor.run_once().await.unwrap();
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!((second.stored, second.duplicates), (0, 1));

    // Changed (another size): tried, and reported, again.
    std::fs::write(&broken, "still not a picture, but longer than before").unwrap();
    let third = ingestor.run_once().await.unwrap();
    assert_eq!(third.errors.len(), 1, "{:?}", third.errors);
}

#[tokio::test]
async fn a_source_that_hangs_costs_its_timeout_and_no_more() {
    let world = World::sqlite().await;
    let slow = SourceServer::start(&dev_photos("cat")[..2]).await;
    let fine = SourceServer::start(&dev_photos("dog")[..2]).await;
    slow.always(&slow.photo_path(0), Reply::Drip);
    slow.always(&slow.photo_path(1), Reply::Hang);
    let mut config = IngestConfig::new(vec![SourceSpec::TheCatApi, SourceSpec::DogCeo]);
    config.thecatapi_base_url = Url::parse(&slow.base_url()).unwrap();
    config.dogceo_base_url = Url::parse(&fine.base_url()).unwrap();
    config.fetch.total_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let summary = world.ingestor(config).await.run_once().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(summary.stored, 2);
    assert_eq!(summary.errors.len(), 2, "{:?}", summary.errors);
    assert!(
        summary
            .errors
            .iter()
            .all(|e| e.source == "thecatapi" && e.error == "picture: timeout"),
        "{:?}",
        summary.errors
    );
}

/// Copies `photo` into `folder` as `name`, last modified `minutes` after a
/// fixed moment.
fn arrive(folder: &Path, name: &str, photo: &Path, minutes: u64) -> Vec<u8> {
    let bytes = std::fs::read(photo).unwrap();
    let path = folder.join(name);
    std::fs::write(&path, &bytes).unwrap();
    let moment = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + minutes * 60);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(moment)
        .unwrap();
    bytes
}

#[tokio::test]
async fn a_folder_with_a_batch_size_gives_its_oldest_new_files_a_batch_a_run() {
    let world = World::sqlite().await;
    let folder = world.empty_folder("arrivals");
    // Names run against age, so name order would take the newest first.
    let photos: Vec<Vec<u8>> = some_photos()
        .iter()
        .enumerate()
        .map(|(age, photo)| arrive(&folder, &format!("{}.jpg", 9 - age), photo, age as u64 + 1))
        .collect();
    // The oldest file of all is not a picture: refused, and no use of the batch.
    write_not_a_picture(&folder.join("z-broken.jpg"));
    std::fs::File::options()
        .write(true)
        .open(folder.join("z-broken.jpg"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap();
    let vars = catdog::config::Vars::from_map([
        ("INGEST_SOURCES", format!("folder:{}", folder.display())),
        ("INGEST_BATCH_SIZE", "2".to_owned()),
    ]);
    let settings: catdog::ingest::IngestSettings = catdog::config::parse(&vars).unwrap();
    let config = settings.config(catdog::config::parse(&vars).unwrap());
    let store = world.backends().await.store;
    let stored = |photos: &[Vec<u8>]| {
        let store = Arc::clone(&store);
        let digests: Vec<Digest> = photos.iter().map(|p| Digest::of(p)).collect();
        async move {
            let mut kept = Vec::new();
            for (i, digest) in digests.iter().enumerate() {
                if store.find_by_digest(digest).await.unwrap().is_some() {
                    kept.push(i);
                }
            }
            kept
        }
    };

    let ingestor = world.ingestor(config.clone()).await;
    let first = ingestor.run_once().await.unwrap();
    assert_eq!((first.stored, first.published), (2, 2), "{first:?}");
    assert_eq!(first.errors.len(), 1, "{:?}", first.errors);
    assert_eq!(
        stored(&photos).await,
        [0, 1],
        "the two oldest pictures first"
    );

    let second = ingestor.run_once().await.unwrap();
    assert_eq!(second.stored, 2, "{second:?}");
    assert_eq!(stored(&photos).await, [0, 1, 2, 3]);

    // Another process has not seen the folder: the files already stored
    // are found so (read and hashed) and do not use up its batch.
    let restarted = world.ingestor(config.clone()).await;
    let third = restarted.run_once().await.unwrap();
    assert_eq!((third.stored, third.duplicates), (2, 4), "{third:?}");
    assert_eq!(stored(&photos).await, [0, 1, 2, 3, 4, 5]);

    let fourth = restarted.run_once().await.unwrap();
    assert_eq!((fourth.stored, fourth.duplicates), (0, 6), "{fourth:?}");
    assert!(fourth.errors.is_empty(), "{:?}", fourth.errors);

    // A file that arrives later is the next run's.
    let late = arrive(&folder, "0-late.jpg", &dev_photos("cat")[3], 60);
    let fifth = restarted.run_once().await.unwrap();
    assert_eq!(fifth.stored, 1, "{fifth:?}");
    assert_eq!(stored(&[late]).await, [0]);
}

#[tokio::test]
async fn a_folder_of_over_a_thousand_pictures_is_stored_once() {
    let world = World::sqlite().await;
    let folder = world.empty_folder("many");
    // Small distinct BMP-headed files: the sniffing is what counts here.
    for i in 0..1100u32 {
        let mut bytes = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0".to_vec();
        bytes.extend_from_slice(&i.to_le_bytes());
        std::fs::write(folder.join(format!("{i:04}.bmp")), bytes).unwrap();
    }
    write_not_a_picture(&folder.join("broken.jpg"));
    let ingestor = world.ingestor(folder_config(&folder)).await;
    let summary = ingestor.run_once().await.unwrap();
    assert_eq!((summary.stored, summary.published), (1100, 1100));
    assert_eq!(
        summary.errors.len(),
        1,
        "{:?}",
        &summary.errors[..summary.errors.len().min(3)]
    );
    assert!(
        summary.errors[0].error == "picture: not a picture",
        "{:?}",
        summary.errors
    );
    assert_eq!(world.object_count().await, 1100);
    let again = ingestor.run_once().await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1100));
}

// ---------------------------------------------------------------------------
// POST /ingest

/// `POST {base}/ingest`, as Cloud Scheduler sends it.
async fn post_ingest(base: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/ingest"))
        .send()
        .await
        .expect("POST /ingest")
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn post_ingest_answers_the_runs_summary() {
    let world = World::sqlite().await;
    let folder = world.photo_folder(&some_photos()[..2]);
    let base = serve(catdog::ingest::routes(Arc::new(
        world.ingestor(folder_config(&folder)).await,
    )))
    .await;
    let client = reqwest::Client::new();

    let response = post_ingest(&base).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["fetched"], 2);
    assert_eq!(body["stored"], 2);
    assert_eq!(body["duplicates"], 0);
    assert_eq!(body["published"], 2);
    assert_eq!(body["errors"], serde_json::json!([]));
    assert_eq!(body["skipped"], false);

    let again: serde_json::Value = post_ingest(&base).await.json().await.unwrap();
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    let wrong_method = client.get(format!("{base}/ingest")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
}

#[tokio::test]
async fn post_ingest_while_another_run_holds_the_lease_is_skipped() {
    let world = World::sqlite().await;
    let folder = world.photo_folder(&some_photos()[..2]);
    let backends = world.backends().await;
    assert!(
        backends
            .store
            .try_acquire_ingest_lease("another-instance", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let base = serve(catdog::ingest::routes(Arc::new(
        world.ingestor(folder_config(&folder)).await,
    )))
    .await;
    let response = post_ingest(&base).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["skipped"], true);
    assert_eq!(body["stored"], 0);
    assert_eq!(world.object_count().await, 0, "no object was stored");
}

#[tokio::test]
async fn post_ingest_with_the_database_down_is_503() {
    let world = World::sqlite().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = store::connect(
        &format!("postgres://postgres@127.0.0.1:{port}/nowhere"),
        &ConnectOptions {
            pool_size: 2,
            timeout: Duration::from_millis(500),
        },
    )
    .await
    .unwrap();
    let backends = Backends {
        store,
        objects: world.backends().await.objects,
    };
    let ingestor = Ingestor::new(
        folder_config(&world.photo_folder(&some_photos()[..1])),
        Arc::clone(&backends.store),
        Arc::clone(&backends.objects),
        world.publisher(Duration::from_secs(1)).await,
    )
    .unwrap();
    let base = serve(catdog::ingest::routes(Arc::new(ingestor))).await;
    let started = std::time::Instant::now();
    let response = post_ingest(&base).await;
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(world.object_count().await, 0, "no object was stored");
}
