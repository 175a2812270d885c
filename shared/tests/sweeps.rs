//! Ingestion's two sweeps, on real stores (SQLite and PostgreSQL, a folder of
//! objects and fake-gcs-server) with the real queue, push handler and model:
//!
//! - the pending sweep republishes a picture whose message went unanswered,
//!   but only a bounded number of times: a picture whose message is
//!   dead-lettered every time ends `failed` with the reason, instead of being
//!   republished forever; a picture that cannot be decoded ends `rejected`;
//! - the orphan sweep deletes objects no row refers to once they are older
//!   than the grace period, and nothing else.
//!
//! Tests named `sqlite::*` / `postgres::*` run on both databases.

use catdog_testing as support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use catdog::classifier::DecodeLimits;
use catdog::classify::{self, ClassifyService, PUSH_ROUTE};
use catdog::domain::{Digest, ImageId, ObjectName, PageLimit, Status};
use catdog::ingest::orphans::{OrphanSweep, sweep_orphans};
use catdog::ingest::{IngestConfig, Ingestor, SourceSpec};
use catdog::objects::{self, FolderStore, ObjectStore, StorageOptions};
use catdog::pubsub::Publisher;
use catdog::queue::{DeadLetters, LocalQueue, QueueOptions};
use catdog::store::{self, ConnectOptions, ImageStore};
use support::fake_gcs::FakeGcs;
use support::local_queue;
use support::model::{classifier, dev_photo};
use support::postgres::TestDatabase;
use support::stored::{self, object_names};

// ---------------------------------------------------------------------------
// Harness

/// One test's database and folders, removed when dropped.
struct World {
    dir: PathBuf,
    database_url: String,
    postgres: Option<TestDatabase>,
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
}

impl World {
    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("catdog-sweeps-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        dir
    }

    async fn sqlite() -> Self {
        let dir = Self::temp_dir();
        let url = format!("sqlite://{}", dir.join("catdog.db").display());
        Self::open(dir, url, None).await
    }

    async fn postgres() -> Option<Self> {
        let database = TestDatabase::create().await?;
        Some(Self::open(Self::temp_dir(), database.url.clone(), Some(database)).await)
    }

    async fn open(dir: PathBuf, database_url: String, postgres: Option<TestDatabase>) -> Self {
        let store = store::connect(&database_url, &ConnectOptions::default())
            .await
            .expect("open the store");
        store.migrate().await.expect("migrate");
        let objects: Arc<dyn ObjectStore> = Arc::new(
            FolderStore::open(&dir.join("objects").display().to_string())
                .await
                .expect("open the object folder"),
        );
        Self {
            dir,
            database_url,
            postgres,
            store,
            objects,
        }
    }

    /// An ingestor over this world's stores, publishing to `publisher`.
    fn ingestor(&self, config: IngestConfig, publisher: Arc<dyn Publisher>) -> Ingestor {
        Ingestor::new(
            config,
            Arc::clone(&self.store),
            Arc::clone(&self.objects),
            publisher,
        )
        .expect("an ingestor")
    }

    /// Local mode's queue in front of the real push handler, giving up on a
    /// message after two deliveries.
    fn classifying_queue(&self) -> Arc<LocalQueue> {
        let push = classify::routes(ClassifyService::new(
            Arc::clone(&self.store),
            Arc::clone(&self.objects),
            classifier(),
            DecodeLimits::default(),
        ));
        let options = QueueOptions {
            max_attempts: 2,
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
            ..QueueOptions::default()
        };
        LocalQueue::start(push, PUSH_ROUTE, options, DeadLetters::in_dir(&self.dir))
    }

    fn dead_letters(&self) -> DeadLetters {
        DeadLetters::in_dir(&self.dir)
    }

    /// A pending row for `bytes` whose original was never written (or was
    /// lost): classification can only answer 503 for it.
    async fn pending_without_original(&self, bytes: &[u8]) -> ImageId {
        let id = ImageId::new();
        self.store
            .insert_pending(&catdog_testing::rows::pending_image(id, bytes))
            .await
            .expect("insert a pending row");
        id
    }

    /// Makes every insert into `images` fail (a full disk, a constraint
    /// gone wrong), or lets them through again.
    async fn refuse_inserts(&self, refuse: bool) {
        match &self.postgres {
            None => {
                let path = self.database_url.trim_start_matches("sqlite://").to_owned();
                tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(path).expect("open the database");
                    conn.busy_timeout(Duration::from_secs(5)).unwrap();
                    conn.execute_batch(if refuse {
                        "CREATE TRIGGER refuse_inserts BEFORE INSERT ON images \
                         BEGIN SELECT RAISE(ABORT, 'no space left (test)'); END;"
                    } else {
                        "DROP TRIGGER refuse_inserts;"
                    })
                    .expect("change the trigger");
                })
                .await
                .unwrap();
            }
            Some(database) => {
                let client = support::postgres::connect(&database.url)
                    .await
                    .expect("connect to the test database");
                client
                    .batch_execute(if refuse {
                        "CREATE FUNCTION refuse_inserts() RETURNS trigger LANGUAGE plpgsql AS \
                         $$ BEGIN RAISE EXCEPTION 'no space left (test)'; END $$; \
                         CREATE TRIGGER refuse_inserts BEFORE INSERT ON images \
                         FOR EACH ROW EXECUTE FUNCTION refuse_inserts();"
                    } else {
                        "DROP TRIGGER refuse_inserts ON images; DROP FUNCTION refuse_inserts();"
                    })
                    .await
                    .expect("change the trigger");
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn photo_folder(dir: &std::path::Path, photos: &[(&str, Vec<u8>)]) -> PathBuf {
    let folder = dir.join("inbox");
    std::fs::create_dir_all(&folder).unwrap();
    for (name, bytes) in photos {
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    folder
}

/// An image id made `ago` in the past (UUID v7 carries its creation time).
fn id_from(ago: Duration) -> ImageId {
    let t = std::time::SystemTime::now() - ago;
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap();
    ImageId::from_uuid(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        since.as_secs(),
        since.subsec_nanos(),
    )))
}

macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::World::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(world) = super::World::postgres().await {
                        super::$test(world).await;
                    }
                }
            )*
        }
    };
}

on_both_databases!(
    a_dead_lettered_picture_is_republished_a_bounded_number_of_times_then_failed,
    a_failed_picture_is_retried_until_the_fault_is_gone_and_then_shown,
    an_insert_that_fails_leaves_an_object_that_the_next_sweep_deletes,
    the_orphan_sweep_deletes_only_old_objects_without_a_row,
);

// ---------------------------------------------------------------------------
// The pending sweep (issue 4's defect)

/// Before the fix, a picture whose message was dead-lettered stayed pending
/// and every run's sweep republished it, forever.
async fn a_dead_lettered_picture_is_republished_a_bounded_number_of_times_then_failed(
    world: World,
) {
    let queue = world.classifying_queue();
    // A picture classification can never finish (its original is gone), and
    // one that is not an image at all (a JPEG cut off after 200 bytes).
    let lost = world
        .pending_without_original(&dev_photo("cat/cat.4210.jpg"))
        .await;
    let cut = dev_photo("dog/dog.4002.jpg")[..200].to_vec();
    let folder = photo_folder(&world.dir, &[("cut.jpg", cut.clone())]);
    let mut config = IngestConfig::new(vec![SourceSpec::Folder(folder)]);
    config.republish_after = Duration::from_millis(300);
    config.max_publishes = 3;
    let ingestor = world.ingestor(config, queue.clone());

    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut republished = 0;
    let mut given_up = 0;
    for run in 1..=5 {
        let summary = ingestor.run_once().await.unwrap();
        local_queue::drained(&queue).await;
        republished += summary.republished;
        given_up += summary.given_up;
        if run == 1 {
            assert_eq!((summary.stored, summary.published), (1, 2), "{summary:?}");
        }
        tokio::time::sleep(Duration::from_millis(350)).await;
    }
    assert_eq!(republished, 3, "the lost picture was published three times");
    assert_eq!(given_up, 1);

    let record = world.store.get(lost).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Failed);
    let reason = record.last_error.unwrap_or_default();
    assert!(
        reason.contains("no verdict after 3 publishes")
            && reason.contains("missing from object storage"),
        "{reason}"
    );
    // Each publish was delivered twice and then dead-lettered.
    let letters = world.dead_letters().list().await.unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert!(letters.iter().all(|l| l.message.image_id == lost));
    let progress = queue.progress();
    assert_eq!(
        (progress.published, progress.dead_lettered),
        (4, 3),
        "the cut picture once, the lost one three times, and no more"
    );

    // The picture that is not one was refused for good, with its reason,
    // on its first delivery: rejected, never republished.
    let cut_record = world
        .store
        .find_by_digest(&Digest::of(&cut))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cut_record.status, Status::Rejected);
    assert!(cut_record.last_error.is_some());

    let stats = world.store.stats().await.unwrap();
    let count = |status: Status| {
        stats
            .by_status
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        (
            count(Status::Pending),
            count(Status::Failed),
            count(Status::Rejected)
        ),
        (0, 1, 1)
    );
}

// ---------------------------------------------------------------------------
// The orphan sweep

/// The object is written before its row; when the row cannot be written the
/// object stays behind (deleting it at once is not safe: the insert may have
/// committed even though we saw an error), and the sweep of a later run
/// deletes it once the grace period is over.
/// Issue 21: a picture that failed because of us (here its original was
/// missing from storage) used to stay failed for good. Now the sweep gives it
/// further rounds after a doubling wait: once the original is back it is
/// classified and shown; one whose fault never goes away stays failed after
/// `max_retries` rounds, with its reason, until an operator retries it.
async fn a_failed_picture_is_retried_until_the_fault_is_gone_and_then_shown(world: World) {
    let queue = world.classifying_queue();
    let cat = dev_photo("cat/cat.4210.jpg");
    let healed = world.pending_without_original(&cat).await;
    let never = world
        .pending_without_original(&dev_photo("dog/dog.4002.jpg"))
        .await;
    let mut config = IngestConfig::new(vec![SourceSpec::Folder(photo_folder(&world.dir, &[]))]);
    config.republish_after = Duration::from_millis(300);
    config.max_publishes = 1;
    config.retry_failed_after = Duration::from_millis(300);
    config.max_retries = 2;
    let ingestor = world.ingestor(config, queue.clone());
    let status = |id| {
        let store = Arc::clone(&world.store);
        async move { store.get(id).await.unwrap().unwrap().status }
    };

    let mut restored = false;
    let mut retried = 0;
    // Rounds given in the last runs, once both pictures have settled.
    let mut settled_runs = Vec::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(350)).await;
        let summary = ingestor.run_once().await.unwrap();
        local_queue::drained(&queue).await;
        retried += summary.retried;
        if !restored && status(healed).await == Status::Failed {
            // The fault is gone: the original is back in storage.
            world
                .objects
                .put(
                    &ObjectName::original(healed),
                    cat.clone().into(),
                    "image/jpeg",
                )
                .await
                .unwrap();
            restored = true;
        }
        if status(healed).await == Status::Classified && status(never).await == Status::Failed {
            settled_runs.push(summary.retried);
            // Longer than the last round's wait (300 ms · 2²): a third
            // round would have come.
            if settled_runs.len() == 6 {
                break;
            }
        }
    }
    assert!(restored, "the picture never failed");
    assert_eq!(status(healed).await, Status::Classified);
    let shown = world
        .store
        .gallery_listing(&[None], PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert!(
        shown.pages[0].iter().any(|r| r.id == healed),
        "the healed picture is not shown"
    );
    // At least one round for the healed picture (two when a run took longer
    // than the first wait) and the bound, 2, for the other, which then
    // stays failed with its reason.
    assert_eq!(
        settled_runs.len(),
        6,
        "the pictures did not settle: {retried} rounds"
    );
    assert!(retried >= 3, "rounds given: {retried}");
    assert!(
        settled_runs[1..].iter().all(|&n| n == 0),
        "rounds went on past the bound: {settled_runs:?}"
    );
    let record = world.store.get(never).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Failed);
    let reason = record.last_error.unwrap_or_default();
    assert!(reason.contains("missing from object storage"), "{reason}");
    let failed = world.store.failed_images(10).await.unwrap();
    assert_eq!(failed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![never]);

    // An operator's retry makes it pending again, whatever its rounds;
    // anything not failed is left alone.
    let retried_now = world.store.retry_images(&[never, healed]).await.unwrap();
    assert_eq!(retried_now, vec![never]);
    assert_eq!(status(never).await, Status::Pending);
    assert_eq!(status(healed).await, Status::Classified);
}

async fn an_insert_that_fails_leaves_an_object_that_the_next_sweep_deletes(world: World) {
    let photos: Vec<(String, Vec<u8>)> =
        ["cat/cat.4210.jpg", "dog/dog.4002.jpg", "cat/cat.4212.jpg"]
            .iter()
            .map(|p| (p.replace('/', "-"), dev_photo(p)))
            .collect();
    let folder = photo_folder(
        &world.dir,
        &photos
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect::<Vec<_>>(),
    );
    let mut config = IngestConfig::new(vec![SourceSpec::Folder(folder)]);
    config.orphan_grace = Duration::from_secs(1);
    let queue = local_queue::acknowledging(&world.dir);
    let ingestor = world.ingestor(config, queue);

    world.refuse_inserts(true).await;
    let failed = ingestor.run_once().await;
    assert!(failed.is_err(), "{failed:?}");
    let left = object_names(world.objects.as_ref()).await;
    assert!(!left.is_empty(), "the object was written before the row");
    for (_, bytes) in &photos {
        assert!(
            world
                .store
                .find_by_digest(&Digest::of(bytes))
                .await
                .unwrap()
                .is_none()
        );
    }

    world.refuse_inserts(false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = ingestor.run_once().await.unwrap();
    assert_eq!(summary.stored, 3, "{summary:?}");
    assert_eq!(summary.orphans_deleted, left.len() as u64, "{summary:?}");

    let mut ids = Vec::new();
    for (_, bytes) in &photos {
        let record = world
            .store
            .find_by_digest(&Digest::of(bytes))
            .await
            .unwrap()
            .unwrap();
        ids.push(record.id);
    }
    let referenced =
        stored::objects_of_rows(world.store.as_ref(), world.objects.as_ref(), &ids).await;
    assert_eq!(
        object_names(world.objects.as_ref()).await,
        referenced,
        "every object has its row and every row its object"
    );
}

async fn the_orphan_sweep_deletes_only_old_objects_without_a_row(world: World) {
    orphan_sweep_keeps_what_it_must(world.store.as_ref(), world.objects.as_ref()).await;
}

/// The orphan sweep against Cloud Storage's JSON API (listing by name range
/// with write times), on fake-gcs-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orphan_sweep_works_on_cloud_storage() {
    let world = World::sqlite().await;
    let emulator = FakeGcs::start().await;
    emulator.create_bucket("gallery").await;
    // Things in the bucket that are not ours are never listed or touched.
    emulator
        .put_raw("gallery", "notes/readme.txt", b"not ours")
        .await;
    let gcs = objects::open(
        "gs://gallery/site",
        &StorageOptions {
            endpoint: Some(emulator.endpoint.clone()),
        },
    )
    .await
    .unwrap();
    orphan_sweep_keeps_what_it_must(world.store.as_ref(), gcs.as_ref()).await;
}

async fn orphan_sweep_keeps_what_it_must(store: &dyn ImageStore, objects: &dyn ObjectStore) {
    let jpeg = dev_photo("cat/cat.4210.jpg");
    let put = |name: ObjectName| {
        let bytes = jpeg.clone();
        async move {
            objects
                .put(&name, bytes.into(), "image/jpeg")
                .await
                .unwrap()
        }
    };
    // A recorded image, pending, whose thumbnail is already written (the
    // verdict comes after it): both objects are its.
    let recorded = ImageId::new();
    put(ObjectName::original(recorded)).await;
    put(ObjectName::thumbnail(recorded)).await;
    store
        .insert_pending(&catdog_testing::rows::pending_image(recorded, &jpeg))
        .await
        .unwrap();
    // Orphans: one of now (and its thumbnail), and one whose id is two
    // hours old, outside the window every ingestion run looks at.
    let orphan = ImageId::new();
    put(ObjectName::original(orphan)).await;
    put(ObjectName::thumbnail(orphan)).await;
    let old = id_from(Duration::from_secs(2 * 3600));
    put(ObjectName::original(old)).await;

    let grace = Duration::from_secs(1);
    let per_run = OrphanSweep::per_run(grace, Duration::from_secs(3600));
    // Within the grace period nothing is touched: rows may be on their way.
    let report = sweep_orphans(store, objects, &per_run).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Written just now, without a row yet.
    let young = ImageId::new();
    put(ObjectName::original(young)).await;

    let report = sweep_orphans(store, objects, &per_run).await.unwrap();
    let deleted: HashSet<String> = report
        .deleted
        .iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    let expected: HashSet<String> = [ObjectName::original(orphan), ObjectName::thumbnail(orphan)]
        .iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    assert_eq!(deleted, expected);
    assert!(report.complete);
    let left = object_names(objects).await;
    for kept in [
        ObjectName::original(recorded),
        ObjectName::thumbnail(recorded),
        ObjectName::original(old),
        ObjectName::original(young),
    ] {
        assert!(left.contains(kept.as_str()), "{kept} was deleted");
    }
    assert_eq!(left.len(), 4, "{left:?}");

    // The full sweep (`catdog sweep-orphans`) also reaches the old one.
    let everything = OrphanSweep::everything(grace);
    let report = sweep_orphans(store, objects, &everything).await.unwrap();
    assert_eq!(report.deleted, vec![ObjectName::original(old)]);

    // One sweep after its grace period, the young orphan is gone too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = sweep_orphans(store, objects, &per_run).await.unwrap();
    assert_eq!(report.deleted, vec![ObjectName::original(young)]);
    let left = object_names(objects).await;
    let recorded_objects: HashSet<String> = [
        ObjectName::original(recorded),
        ObjectName::thumbnail(recorded),
    ]
    .iter()
    .map(|n| n.as_str().to_owned())
    .collect();
    assert_eq!(left, recorded_objects);

    // A bounded sweep stops at its bound and says so.
    let orphans: Vec<ImageId> = (0..3).map(|_| ImageId::new()).collect();
    for id in &orphans {
        put(ObjectName::original(*id)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bounded = OrphanSweep {
        max_deleted: 2,
        ..per_run.clone()
    };
    let report = sweep_orphans(store, objects, &bounded).await.unwrap();
    assert_eq!(report.deleted.len(), 2);
    assert!(!report.complete);
    let report = sweep_orphans(store, objects, &per_run).await.unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(object_names(objects).await, recorded_objects);
}
