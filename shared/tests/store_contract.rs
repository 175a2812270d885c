//! The metadata store's contract: one suite of behaviour tests, written once
//! against `ImageStore` and run on both implementations, SQLite (a fresh file
//! per test) and PostgreSQL (a fresh database per test on the server at
//! `TEST_DATABASE_URL`, see `catdog_testing::postgres`). After the suite come the
//! PostgreSQL-only tests of what SQLite cannot do: a server that is down,
//! goes away, hangs, or is reached through a unix socket.

use catdog_testing as support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::domain::{
    BreedGuess, Category, ClassScore, Digest, ImageId, ImageRecord, NewImage, ObjectName,
    PageLimit, Status, Thumbnail, Verdict, now_micros,
};
use catdog::store::{
    ConnectOptions, ImageStore, IngestRun, InsertOutcome, ListingFilter, RecordOutcome,
    RelabelOutcome, StoreError, Window, connect,
};
use chrono::{DateTime, TimeDelta, Utc};
use support::postgres::TestDatabase;

// ---------------------------------------------------------------------------
// The two backends

/// One test's database, on either backend. Dropping it removes the database.
struct TestDb {
    url: String,
    backend: Backend,
}

enum Backend {
    Sqlite { dir: std::path::PathBuf },
    Postgres(TestDatabase),
}

impl TestDb {
    fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "catdog-store-contract-{}-{}",
            std::process::id(),
            ImageId::new()
        ));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Self {
            url: format!("sqlite://{}", dir.join("catdog.db").display()),
            backend: Backend::Sqlite { dir },
        }
    }

    async fn postgres() -> Option<Self> {
        let database = TestDatabase::create().await?;
        Some(Self {
            url: database.url.clone(),
            backend: Backend::Postgres(database),
        })
    }

    /// A new handle on the same database, as another process would open it.
    async fn open(&self) -> Arc<dyn ImageStore> {
        connect(&self.url, &ConnectOptions::default())
            .await
            .expect("open the store")
    }

    async fn migrated(&self) -> Arc<dyn ImageStore> {
        let store = self.open().await;
        store.migrate().await.expect("migrate");
        store
    }

    /// The schema versions the database records as applied.
    async fn applied_migrations(&self) -> Vec<i64> {
        match &self.backend {
            Backend::Sqlite { .. } => {
                let path = self.url.trim_start_matches("sqlite://").to_owned();
                let version: i64 = rusqlite::Connection::open(path)
                    .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
                    .expect("read user_version");
                // SQLite has no 3 (PostgreSQL's roles): it records the last applied.
                self.all_migrations()
                    .into_iter()
                    .filter(|v| *v <= version)
                    .collect()
            }
            Backend::Postgres(database) => database.applied_migrations().await,
        }
    }

    /// Every migration of this backend: PostgreSQL has one more, the
    /// workloads' database roles, which SQLite has no notion of.
    fn all_migrations(&self) -> Vec<i64> {
        match &self.backend {
            Backend::Sqlite { .. } => vec![1, 2, 4, 7, 8],
            Backend::Postgres(_) => vec![1, 2, 3, 4, 6, 7, 8],
        }
    }
}

impl TestDb {
    /// The pictures by status, counted from their rows, as the stats did
    /// before the database kept the counts.
    async fn count_rows_by_status(&self) -> Vec<(Status, i64)> {
        let sql = "SELECT status, count(*) FROM images GROUP BY status";
        let counted: Vec<(String, i64)> = match &self.backend {
            Backend::Sqlite { .. } => {
                let conn = rusqlite::Connection::open(self.url.trim_start_matches("sqlite://"))
                    .expect("open the database");
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            Backend::Postgres(database) => support::postgres::connect(&database.url)
                .await
                .expect("connect")
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect(),
        };
        Status::ALL
            .into_iter()
            .map(|status| {
                let n = counted.iter().find(|(s, _)| s == status.as_str());
                (status, n.map_or(0, |(_, n)| *n))
            })
            .collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Backend::Sqlite { dir } = &self.backend {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes each contract test twice: `sqlite::NAME` and `postgres::NAME`.
macro_rules! contract_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(db) = super::TestDb::postgres().await {
                        super::$test(db).await;
                    }
                }
            )*
        }
    };
}

contract_tests!(
    migrating_twice_changes_nothing,
    concurrent_migrations_apply_the_schema_once,
    ping_answers_once_migrated,
    a_picture_is_stored_once,
    timestamps_read_back_to_the_microsecond,
    a_verdict_is_recorded_once,
    rejected_pictures_are_never_shown,
    other_pictures_are_kept_but_not_shown,
    failures_are_counted_and_cleared_by_a_verdict,
    gallery_pages_are_newest_first_per_category,
    a_listing_reads_the_state_and_its_pages_at_once,
    paging_neither_repeats_nor_skips_while_pictures_arrive,
    gallery_state_counts_shown_pictures_and_last_ingestion,
    stats_count_by_category_and_status_and_keep_source_errors,
    the_ingest_lease_has_one_holder_at_a_time,
    racing_for_the_lease_gives_it_to_one,
    the_sweep_finds_pending_pictures_whose_publish_is_stale,
    concurrent_deliveries_of_one_picture_record_it_once,
    concurrent_classifications_get_distinct_positions,
    readers_never_see_a_gap_in_gallery_positions,
    the_breed_and_its_reasons_read_back,
    windows_page_both_ways_and_know_their_position,
    a_window_around_a_picture_holds_it_and_its_neighbours,
    a_breed_filter_narrows_a_listing,
    a_relabel_moves_a_picture_and_is_kept,
    only_classified_pictures_can_be_relabelled,
    changes_to_listings_move_the_change_feed_and_reads_do_not,
    status_counts_are_kept_through_every_kind_of_change,
);

// ---------------------------------------------------------------------------
// Helpers

fn new_image(created_at: DateTime<Utc>) -> NewImage {
    let id = ImageId::new();
    NewImage {
        id,
        // The id makes the content unique; tests that want a duplicate reuse it.
        sha256: Digest::of(id.to_string().as_bytes()),
        source: "thecatapi".to_owned(),
        source_ref: Some(format!("ref-{id}")),
        object_name: ObjectName::original(id),
        content_type: "image/jpeg".to_owned(),
        byte_size: 123_456,
        created_at,
    }
}

/// One listing's page, as a listing request reads it.
trait PageOf {
    async fn gallery_page(
        &self,
        category: Option<Category>,
        limit: PageLimit,
        after_seq: Option<i64>,
    ) -> Result<Vec<ImageRecord>, StoreError>;
}

impl PageOf for Arc<dyn ImageStore> {
    async fn gallery_page(
        &self,
        category: Option<Category>,
        limit: PageLimit,
        after_seq: Option<i64>,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let listing = self.gallery_listing(&[category], limit, after_seq).await?;
        Ok(listing.pages.into_iter().next().unwrap_or_default())
    }
}

fn verdict(id: ImageId, category: Category) -> Verdict {
    Verdict {
        category,
        // Exactly representable, so it reads back equal in f32 and f64 columns.
        confidence: 0.875,
        scores: serde_json::json!({"cat": 0.875, "dog": 0.0625, "other": 0.0625}),
        model_version: "efficientnet-lite0+head-v1".to_owned(),
        width: 1024,
        height: 768,
        thumbnail: Thumbnail {
            object_name: ObjectName::thumbnail(id),
            width: 480,
            height: 360,
            placeholder: "1QcSHQRnh493V4dIh4eXh1h4kJUI".to_owned(),
        },
        breed: (category != Category::Other).then(|| BreedGuess {
            name: if category == Category::Cat {
                "Siamese cat"
            } else {
                "golden retriever"
            }
            .to_owned(),
            // Exactly representable, like the confidence.
            probability: 0.75,
        }),
        why: vec![ClassScore {
            label: "tabby".to_owned(),
            probability: 0.5,
        }],
    }
}

async fn insert(store: &Arc<dyn ImageStore>) -> ImageId {
    let image = new_image(now_micros());
    assert_eq!(
        store.insert_pending(&image).await.unwrap(),
        InsertOutcome::Inserted
    );
    image.id
}

/// Inserts and classifies one picture, returning its id and gallery position.
async fn classified(store: &Arc<dyn ImageStore>, category: Category) -> (ImageId, Option<i64>) {
    let id = insert(store).await;
    assert_eq!(
        store
            .record_verdict(id, &verdict(id, category))
            .await
            .unwrap(),
        RecordOutcome::Recorded
    );
    let seq = store.get(id).await.unwrap().unwrap().gallery_seq;
    (id, seq)
}

fn limit(n: u32) -> PageLimit {
    PageLimit::new(n).unwrap()
}

fn ids(records: &[ImageRecord]) -> Vec<ImageId> {
    records.iter().map(|r| r.id).collect()
}

async fn everything_shown(store: &Arc<dyn ImageStore>) -> Vec<ImageId> {
    ids(&store.gallery_page(None, limit(100), None).await.unwrap())
}

fn count<T: PartialEq + std::fmt::Debug>(pairs: &[(T, i64)], key: T) -> i64 {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("{key:?} missing from {pairs:?}"))
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

// ---------------------------------------------------------------------------
// The contract

async fn migrating_twice_changes_nothing(db: TestDb) {
    let store = db.migrated().await;
    let (id, _) = classified(&store, Category::Cat).await;
    let state = store.gallery_state().await.unwrap();

    store.migrate().await.expect("second migrate");
    db.open()
        .await
        .migrate()
        .await
        .expect("migrate from another handle");

    assert_eq!(db.applied_migrations().await, db.all_migrations());
    assert_eq!(store.gallery_state().await.unwrap(), state);
    assert_eq!(everything_shown(&store).await, vec![id]);
}

async fn concurrent_migrations_apply_the_schema_once(db: TestDb) {
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(db.open().await);
    }
    let results = futures::future::join_all(handles.iter().map(|store| store.migrate())).await;
    for (i, result) in results.into_iter().enumerate() {
        result.unwrap_or_else(|e| panic!("migration {i} failed: {e}"));
    }
    assert_eq!(db.applied_migrations().await, db.all_migrations());
    let store = &handles[0];
    let (id, _) = classified(store, Category::Dog).await;
    assert_eq!(everything_shown(&handles[3]).await, vec![id]);
}

async fn ping_answers_once_migrated(db: TestDb) {
    let store = db.migrated().await;
    store.ping().await.expect("ping");
}

async fn a_picture_is_stored_once(db: TestDb) {
    let store = db.migrated().await;
    let created_at = now_micros();
    let first = new_image(created_at);
    assert_eq!(
        store.insert_pending(&first).await.unwrap(),
        InsertOutcome::Inserted
    );

    // The same bytes again, under a new id, as a second source would bring them.
    let mut again = new_image(now_micros());
    again.sha256 = first.sha256.clone();
    assert_eq!(
        store.insert_pending(&again).await.unwrap(),
        InsertOutcome::Duplicate(first.id)
    );
    assert_eq!(store.get(again.id).await.unwrap(), None);

    let stored = store.get(first.id).await.unwrap().expect("stored");
    let expected = ImageRecord {
        id: first.id,
        sha256: first.sha256.clone(),
        source: "thecatapi".to_owned(),
        source_ref: first.source_ref.clone(),
        object_name: ObjectName::original(first.id),
        content_type: "image/jpeg".to_owned(),
        byte_size: 123_456,
        width: None,
        height: None,
        status: Status::Pending,
        category: None,
        confidence: None,
        scores: None,
        model_version: None,
        attempts: 0,
        last_error: None,
        created_at,
        classified_at: None,
        published_at: None,
        thumbnail: None,
        gallery_seq: None,
        breed: None,
        why: Vec::new(),
        relabel: None,
    };
    assert_eq!(stored, expected);
    assert_eq!(
        store.find_by_digest(&first.sha256).await.unwrap(),
        Some(expected)
    );

    assert_eq!(store.get(ImageId::new()).await.unwrap(), None);
    assert_eq!(
        store
            .find_by_digest(&Digest::of(b"never stored"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.stats().await.unwrap().by_status[0],
        (Status::Pending, 1)
    );
}

async fn timestamps_read_back_to_the_microsecond(db: TestDb) {
    let store = db.migrated().await;
    for text in [
        "2026-11-23T10:15:30.123456Z",
        "2026-11-23T10:15:30.000001Z",
        "2026-11-23T10:15:30.999999Z",
        "1999-12-31T23:59:59.500000Z",
    ] {
        let image = new_image(at(text));
        store.insert_pending(&image).await.unwrap();
        assert_eq!(
            store.get(image.id).await.unwrap().unwrap().created_at,
            at(text)
        );
    }

    let id = insert(&store).await;
    let before = now_micros();
    store.mark_published(id).await.unwrap();
    store
        .record_verdict(id, &verdict(id, Category::Cat))
        .await
        .unwrap();
    let after = now_micros();
    let record = store.get(id).await.unwrap().unwrap();
    for (what, t) in [
        ("published_at", record.published_at.unwrap()),
        ("classified_at", record.classified_at.unwrap()),
    ] {
        assert!(
            before <= t && t <= after,
            "{what} {t} not in [{before}, {after}]"
        );
        assert_eq!(
            t.timestamp_subsec_nanos() % 1000,
            0,
            "{what} {t} below a microsecond"
        );
    }
}

async fn a_verdict_is_recorded_once(db: TestDb) {
    let store = db.migrated().await;
    let id = insert(&store).await;
    let cat = verdict(id, Category::Cat);
    assert_eq!(
        store.record_verdict(id, &cat).await.unwrap(),
        RecordOutcome::Recorded
    );

    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Classified);
    assert_eq!(record.category, Some(Category::Cat));
    assert_eq!(record.confidence, Some(0.875));
    assert_eq!(record.scores, Some(cat.scores.clone()));
    assert_eq!(
        record.model_version.as_deref(),
        Some("efficientnet-lite0+head-v1")
    );
    assert_eq!((record.width, record.height), (Some(1024), Some(768)));
    assert_eq!(record.thumbnail, Some(cat.thumbnail.clone()));
    assert_eq!(record.attempts, 1);
    assert_eq!(record.gallery_seq, Some(1));
    assert!(record.classified_at.is_some());
    let stats = store.stats().await.unwrap();

    // A redelivery, even with another answer, changes nothing.
    let dog = verdict(id, Category::Dog);
    assert_eq!(
        store.record_verdict(id, &dog).await.unwrap(),
        RecordOutcome::AlreadyDone
    );
    assert_eq!(
        store.mark_rejected(id, "late").await.unwrap(),
        RecordOutcome::AlreadyDone
    );
    assert_eq!(store.get(id).await.unwrap().unwrap(), record);
    assert_eq!(store.stats().await.unwrap(), stats);
    assert_eq!(count(&stats.by_category, Category::Cat), 1);
    assert_eq!(count(&stats.by_category, Category::Dog), 0);
    assert_eq!(stats.state.total_images, 1);

    let unknown = ImageId::new();
    assert_eq!(
        store
            .record_verdict(unknown, &verdict(unknown, Category::Cat))
            .await
            .unwrap(),
        RecordOutcome::NotFound
    );
    assert_eq!(
        store.mark_rejected(unknown, "x").await.unwrap(),
        RecordOutcome::NotFound
    );
}

async fn rejected_pictures_are_never_shown(db: TestDb) {
    let store = db.migrated().await;
    let (cat, _) = classified(&store, Category::Cat).await;
    let id = insert(&store).await;
    assert_eq!(
        store.mark_rejected(id, "not an image: HTML").await.unwrap(),
        RecordOutcome::Recorded
    );
    // A redelivered message must not resurrect it.
    assert_eq!(
        store
            .record_verdict(id, &verdict(id, Category::Dog))
            .await
            .unwrap(),
        RecordOutcome::AlreadyDone
    );
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Rejected);
    assert_eq!(record.last_error.as_deref(), Some("not an image: HTML"));
    assert_eq!(record.category, None);
    // It is listed with the refused pictures, with its reason, and nowhere else.
    assert_eq!(everything_shown(&store).await, vec![cat]);
    let refused = store
        .gallery_page(Some(Category::Other), limit(100), None)
        .await
        .unwrap();
    assert_eq!(ids(&refused), vec![id]);
    assert_eq!(refused[0].last_error.as_deref(), Some("not an image: HTML"));
    assert!(
        store
            .gallery_page(Some(Category::Dog), limit(100), None)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.state.total_images, 1);
    assert_eq!(count(&stats.by_status, Status::Rejected), 1);
    assert_eq!(stats.state.counts.refused, 1);
}

async fn other_pictures_are_kept_but_not_shown(db: TestDb) {
    let store = db.migrated().await;
    let (other, seq) = classified(&store, Category::Other).await;
    assert_eq!(seq, Some(1), "refused pictures have their own listing");
    let (dog, dog_seq) = classified(&store, Category::Dog).await;
    assert_eq!(dog_seq, Some(2));

    let record = store.get(other).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.category),
        (Status::Classified, Some(Category::Other))
    );
    assert_eq!(everything_shown(&store).await, vec![dog]);
    assert_eq!(
        ids(&store
            .gallery_page(Some(Category::Other), limit(100), None)
            .await
            .unwrap()),
        vec![other]
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.state.total_images, 1);
    assert_eq!(stats.state.counts.refused, 1);
    assert_eq!(count(&stats.by_category, Category::Other), 1);
    assert_eq!(count(&stats.by_status, Status::Classified), 2);
}

async fn failures_are_counted_and_cleared_by_a_verdict(db: TestDb) {
    let store = db.migrated().await;
    let id = insert(&store).await;
    store.record_failure(id, "storage: 503").await.unwrap();
    store.record_failure(id, "storage: timeout").await.unwrap();
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Pending);
    assert_eq!(record.attempts, 2);
    assert_eq!(record.last_error.as_deref(), Some("storage: timeout"));

    store
        .record_verdict(id, &verdict(id, Category::Cat))
        .await
        .unwrap();
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.last_error), (3, None));

    // Failures reported after the fact do not touch a finished image.
    store.record_failure(id, "late").await.unwrap();
    assert_eq!(store.get(id).await.unwrap().unwrap().attempts, 3);
}

async fn gallery_pages_are_newest_first_per_category(db: TestDb) {
    let store = db.migrated().await;
    let (c1, _) = classified(&store, Category::Cat).await;
    let (d1, _) = classified(&store, Category::Dog).await;
    let (c2, c2_seq) = classified(&store, Category::Cat).await;
    classified(&store, Category::Other).await;
    let (d2, _) = classified(&store, Category::Dog).await;
    let (c3, _) = classified(&store, Category::Cat).await;
    insert(&store).await; // still pending

    assert_eq!(everything_shown(&store).await, vec![c3, d2, c2, d1, c1]);
    let cats = store
        .gallery_page(Some(Category::Cat), limit(10), None)
        .await
        .unwrap();
    assert_eq!(ids(&cats), vec![c3, c2, c1]);
    assert!(cats.iter().all(|r| r.category == Some(Category::Cat)));
    let dogs = store
        .gallery_page(Some(Category::Dog), limit(10), None)
        .await
        .unwrap();
    assert_eq!(ids(&dogs), vec![d2, d1]);

    let first_two = store.gallery_page(None, limit(2), None).await.unwrap();
    assert_eq!(ids(&first_two), vec![c3, d2]);
    let after_c2 = store
        .gallery_page(Some(Category::Cat), limit(10), c2_seq)
        .await
        .unwrap();
    assert_eq!(ids(&after_c2), vec![c1]);
    let past_the_end = store.gallery_page(None, limit(10), Some(1)).await.unwrap();
    assert!(past_the_end.is_empty());
}

async fn a_listing_reads_the_state_and_its_pages_at_once(db: TestDb) {
    let store = db.migrated().await;
    let both_kinds = [Some(Category::Cat), Some(Category::Dog)];
    let empty = store
        .gallery_listing(&both_kinds, limit(10), None)
        .await
        .unwrap();
    assert_eq!(empty.state, store.gallery_state().await.unwrap());
    assert_eq!(empty.pages, vec![Vec::new(), Vec::new()]);

    let (c1, _) = classified(&store, Category::Cat).await;
    let (d1, _) = classified(&store, Category::Dog).await;
    let (c2, c2_seq) = classified(&store, Category::Cat).await;
    classified(&store, Category::Other).await;
    let (d2, _) = classified(&store, Category::Dog).await;
    insert(&store).await; // still pending

    let listing = store
        .gallery_listing(&both_kinds, limit(10), None)
        .await
        .unwrap();
    assert_eq!(listing.state, store.gallery_state().await.unwrap());
    assert_eq!(listing.state.total_images, 4);
    assert_eq!(ids(&listing.pages[0]), vec![c2, c1]);
    assert_eq!(ids(&listing.pages[1]), vec![d2, d1]);
    // Whole records, exactly as a page alone reads them.
    for (page, category) in listing.pages.iter().zip([Category::Cat, Category::Dog]) {
        let alone = store
            .gallery_page(Some(category), limit(10), None)
            .await
            .unwrap();
        assert_eq!(page, &alone);
    }

    let newest = store
        .gallery_listing(&[None], limit(3), None)
        .await
        .unwrap();
    assert_eq!(newest.pages.len(), 1);
    assert_eq!(ids(&newest.pages[0]), vec![d2, c2, d1]);
    let after_c2 = store
        .gallery_listing(&[Some(Category::Cat)], limit(5), c2_seq)
        .await
        .unwrap();
    assert_eq!(ids(&after_c2.pages[0]), vec![c1]);
}

async fn paging_neither_repeats_nor_skips_while_pictures_arrive(db: TestDb) {
    let store = db.migrated().await;
    for category in [Some(Category::Cat), None] {
        let start = store.gallery_state().await.unwrap().gallery_seq;
        let mut present = Vec::new();
        for i in 0..7 {
            let kind = if category.is_none() && i % 2 == 1 {
                Category::Dog
            } else {
                Category::Cat
            };
            present.push(classified(&store, kind).await.0);
        }
        present.reverse(); // newest first
        // Earlier rounds' images are older still; they follow ours.
        let older = ids(&store
            .gallery_page(category, limit(100), Some(start + 1))
            .await
            .unwrap());

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.gallery_page(category, limit(3), after).await.unwrap();
            if page.is_empty() {
                break;
            }
            seen.extend(ids(&page));
            after = page.last().unwrap().gallery_seq;
            // New pictures arrive between pages.
            classified(&store, Category::Cat).await;
            classified(&store, Category::Dog).await;
        }
        let expected: Vec<_> = present.iter().chain(older.iter()).copied().collect();
        assert_eq!(seen, expected, "listing {category:?}");
    }
}

async fn gallery_state_counts_shown_pictures_and_last_ingestion(db: TestDb) {
    let before_creation = now_micros();
    let store = db.migrated().await;
    let after_creation = now_micros();

    let state = store.gallery_state().await.unwrap();
    assert_eq!((state.total_images, state.gallery_seq), (0, 0));
    // Before the first ingestion it is when the database was made. The
    // database's clock sets it; a second of slack covers a server whose
    // clock is a little off ours.
    let created = state.last_ingest_at;
    assert!(
        before_creation - TimeDelta::seconds(1) <= created
            && created <= after_creation + TimeDelta::seconds(1),
        "{created} not near [{before_creation}, {after_creation}]"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.gallery_state().await.unwrap().last_ingest_at,
        created,
        "not a clock"
    );

    classified(&store, Category::Cat).await;
    classified(&store, Category::Cat).await;
    classified(&store, Category::Dog).await;
    classified(&store, Category::Other).await;
    let rejected = insert(&store).await;
    store.mark_rejected(rejected, "truncated").await.unwrap();
    insert(&store).await;
    let state = store.gallery_state().await.unwrap();
    // Every verdict and every refusal moves the sequence (the refused
    // listing changes too); the total is the gallery's cats and dogs.
    assert_eq!((state.total_images, state.gallery_seq), (3, 5));
    assert_eq!(
        (state.counts.cats, state.counts.dogs, state.counts.refused),
        (2, 1, 2)
    );
    assert_eq!(state.last_ingest_at, created);

    let before = now_micros();
    store
        .finish_ingest("run-1", &IngestRun::default())
        .await
        .unwrap();
    let after = now_micros();
    let first = store.gallery_state().await.unwrap().last_ingest_at;
    assert!(
        before <= first && first <= after,
        "{first} not in [{before}, {after}]"
    );
    assert!(first > created);

    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .finish_ingest("run-2", &IngestRun::default())
        .await
        .unwrap();
    let second = store.gallery_state().await.unwrap().last_ingest_at;
    assert!(second > first, "{second} did not move past {first}");
}

async fn stats_count_by_category_and_status_and_keep_source_errors(db: TestDb) {
    let store = db.migrated().await;
    let empty = store.stats().await.unwrap();
    assert!(empty.by_category.iter().all(|(_, n)| *n == 0));
    assert_eq!(
        empty.by_status.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        Status::ALL
    );
    assert!(empty.by_status.iter().all(|(_, n)| *n == 0));
    assert!(empty.sources.is_empty());

    classified(&store, Category::Cat).await;
    classified(&store, Category::Cat).await;
    classified(&store, Category::Dog).await;
    classified(&store, Category::Other).await;
    let rejected = insert(&store).await;
    store.mark_rejected(rejected, "svg").await.unwrap();
    let failing = insert(&store).await;
    store
        .record_failure(failing, "model missing")
        .await
        .unwrap();
    insert(&store).await;

    let run = IngestRun {
        started_at: Some(now_micros() - TimeDelta::seconds(3)),
        fetched: 4,
        stored: 3,
        duplicates: 1,
        published: 3,
        errors: vec![("thecatapi".to_owned(), "HTTP 500 from upstream".to_owned())],
        succeeded_sources: vec!["dogceo".to_owned()],
    };
    store.finish_ingest("run-1", &run).await.unwrap();

    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.by_category,
        vec![(Category::Cat, 2), (Category::Dog, 1), (Category::Other, 1)]
    );
    assert_eq!(
        stats.by_status,
        vec![
            (Status::Pending, 2),
            (Status::Classified, 4),
            (Status::Rejected, 1),
            (Status::Failed, 0)
        ]
    );
    assert_eq!(stats.state, store.gallery_state().await.unwrap());
    assert_eq!(stats.state.total_images, 3);
    let names: Vec<_> = stats.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["dogceo", "thecatapi"]);
    let (dogceo, thecatapi) = (&stats.sources[0], &stats.sources[1]);
    assert_eq!(
        (dogceo.last_error.as_deref(), dogceo.last_error_at),
        (None, None)
    );
    assert!(dogceo.last_success_at.is_some());
    assert_eq!(
        thecatapi.last_error.as_deref(),
        Some("HTTP 500 from upstream")
    );
    assert_eq!(thecatapi.last_error_at, Some(stats.state.last_ingest_at));
    assert_eq!(thecatapi.last_success_at, None);

    // The next run reaches thecatapi: its error stays on record, older than
    // its success, so a reader can tell it recovered.
    let recovered = IngestRun {
        succeeded_sources: vec!["thecatapi".to_owned(), "dogceo".to_owned()],
        ..IngestRun::default()
    };
    store.finish_ingest("run-2", &recovered).await.unwrap();
    let stats = store.stats().await.unwrap();
    let thecatapi = &stats.sources[1];
    assert_eq!(
        thecatapi.last_error.as_deref(),
        Some("HTTP 500 from upstream")
    );
    assert!(thecatapi.last_success_at.unwrap() > thecatapi.last_error_at.unwrap());
}

async fn the_ingest_lease_has_one_holder_at_a_time(db: TestDb) {
    let store = db.migrated().await;
    let long = Duration::from_secs(60);
    assert!(store.try_acquire_ingest_lease("a", long).await.unwrap());
    assert!(!store.try_acquire_ingest_lease("b", long).await.unwrap());
    assert!(
        store.try_acquire_ingest_lease("a", long).await.unwrap(),
        "the holder renews"
    );

    // Only the holder's own finish releases it.
    store
        .finish_ingest("b", &IngestRun::default())
        .await
        .unwrap();
    assert!(!store.try_acquire_ingest_lease("c", long).await.unwrap());
    store
        .finish_ingest("a", &IngestRun::default())
        .await
        .unwrap();
    assert!(store.try_acquire_ingest_lease("c", long).await.unwrap());
    store
        .finish_ingest("c", &IngestRun::default())
        .await
        .unwrap();

    // A holder that died lets the lease run out.
    assert!(
        store
            .try_acquire_ingest_lease("d", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(!store.try_acquire_ingest_lease("e", long).await.unwrap());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.try_acquire_ingest_lease("e", long).await.unwrap());
    assert!(!store.try_acquire_ingest_lease("d", long).await.unwrap());
}

async fn racing_for_the_lease_gives_it_to_one(db: TestDb) {
    db.migrated().await;
    let mut tasks = Vec::new();
    for i in 0..5 {
        let store = db.open().await;
        tasks.push(tokio::spawn(async move {
            store
                .try_acquire_ingest_lease(&format!("instance-{i}"), Duration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    let granted = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(granted, 1);
}

async fn the_sweep_finds_pending_pictures_whose_publish_is_stale(db: TestDb) {
    let store = db.migrated().await;
    let now = now_micros();
    let minutes_ago = |m: i64| now - TimeDelta::minutes(m);
    let mut oldest = new_image(minutes_ago(20));
    oldest.source = "folder".to_owned();
    let never_published = new_image(minutes_ago(10));
    let just_published = new_image(minutes_ago(9));
    let fresh = new_image(now);
    let done = new_image(minutes_ago(30));
    for image in [&oldest, &never_published, &just_published, &fresh, &done] {
        store.insert_pending(image).await.unwrap();
    }
    store.mark_published(just_published.id).await.unwrap();
    store
        .record_verdict(done.id, &verdict(done.id, Category::Cat))
        .await
        .unwrap();

    let stale_before = minutes_ago(5);
    let due = store.unpublished(stale_before, 10).await.unwrap();
    assert_eq!(ids(&due), vec![oldest.id, never_published.id]);
    assert_eq!(due[0].source, "folder");
    assert_eq!(
        ids(&store.unpublished(stale_before, 1).await.unwrap()),
        vec![oldest.id]
    );

    // Much later, a publish that never led to a verdict is due again.
    let later = now_micros() + TimeDelta::minutes(1);
    let due = store.unpublished(later, 10).await.unwrap();
    assert_eq!(
        ids(&due),
        vec![oldest.id, never_published.id, just_published.id, fresh.id]
    );
}

async fn concurrent_deliveries_of_one_picture_record_it_once(db: TestDb) {
    let store = db.migrated().await;
    let id = insert(&store).await;
    let mut tasks = Vec::new();
    for i in 0..5 {
        // Separate handles, as five instances of classify-image would have.
        let store = db.open().await;
        let category = if i % 2 == 0 {
            Category::Cat
        } else {
            Category::Dog
        };
        tasks.push(tokio::spawn(async move {
            store
                .record_verdict(id, &verdict(id, category))
                .await
                .unwrap()
        }));
    }
    let outcomes: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RecordOutcome::Recorded)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RecordOutcome::AlreadyDone)
            .count(),
        4,
        "{outcomes:?}"
    );
    let state = store.gallery_state().await.unwrap();
    assert_eq!((state.total_images, state.gallery_seq), (1, 1));
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!((record.attempts, record.gallery_seq), (1, Some(1)));
    assert_eq!(everything_shown(&store).await, vec![id]);
}

async fn concurrent_classifications_get_distinct_positions(db: TestDb) {
    let store = db.migrated().await;
    let mut ids_ = Vec::new();
    for _ in 0..20 {
        ids_.push(insert(&store).await);
    }
    let mut tasks = Vec::new();
    for (i, id) in ids_.iter().copied().enumerate() {
        let store = Arc::clone(&store);
        let category = if i % 3 == 0 {
            Category::Dog
        } else {
            Category::Cat
        };
        tasks.push(tokio::spawn(async move {
            store
                .record_verdict(id, &verdict(id, category))
                .await
                .unwrap()
        }));
    }
    for outcome in futures::future::join_all(tasks).await {
        assert_eq!(outcome.unwrap(), RecordOutcome::Recorded);
    }
    let mut seqs = Vec::new();
    for id in &ids_ {
        seqs.push(store.get(*id).await.unwrap().unwrap().gallery_seq.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>());
    let state = store.gallery_state().await.unwrap();
    assert_eq!((state.total_images, state.gallery_seq), (20, 20));
    let shown: HashSet<_> = everything_shown(&store).await.into_iter().collect();
    assert_eq!(shown, ids_.into_iter().collect());
}

/// Positions are handed out in commit order, so whatever a reader sees is
/// always every position from the newest down to 1, never one with a hole
/// that fills in later (which would make a keyset page skip it).
async fn readers_never_see_a_gap_in_gallery_positions(db: TestDb) {
    let store = db.migrated().await;
    let mut pending = Vec::new();
    for _ in 0..40 {
        pending.push(insert(&store).await);
    }
    // Four writers commit concurrently while one reader lists. Each writer's
    // k-th verdict waits for the reader's k-th listing, and the reader lists
    // again as soon as anything more is committed, so reads are guaranteed to
    // land while writes are in flight, however fast the machine is.
    let (reads_tx, reads_rx) = tokio::sync::watch::channel(0usize);
    let committed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for chunk in pending.chunks(10) {
        let store = db.open().await;
        let chunk = chunk.to_vec();
        let mut reads_rx = reads_rx.clone();
        let committed = committed.clone();
        let progress = progress.clone();
        writers.push(tokio::spawn(async move {
            for (k, id) in chunk.into_iter().enumerate() {
                reads_rx.wait_for(|reads| *reads > k).await.unwrap();
                store
                    .record_verdict(id, &verdict(id, Category::Cat))
                    .await
                    .unwrap();
                committed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                progress.notify_one();
            }
        }));
    }
    let reader = db.open().await;
    let mut reads = 0;
    let mut partial_reads = 0;
    loop {
        let seen = committed.load(std::sync::atomic::Ordering::SeqCst);
        let done = writers.iter().all(|w| w.is_finished());
        let page = reader.gallery_page(None, limit(100), None).await.unwrap();
        let seqs: Vec<i64> = page.iter().map(|r| r.gallery_seq.unwrap()).collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).rev().collect();
        assert_eq!(seqs, expected, "a reader saw a gap");
        if !seqs.is_empty() && seqs.len() < 40 {
            partial_reads += 1;
        }
        reads += 1;
        reads_tx.send_replace(reads);
        if done {
            break;
        }
        if committed.load(std::sync::atomic::Ordering::SeqCst) == seen {
            // A wake-up can be missed between the load and the wait; the
            // timeout only bounds that case.
            let _ = tokio::time::timeout(Duration::from_millis(50), progress.notified()).await;
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(everything_shown(&store).await.len(), 40);
    assert!(
        partial_reads > 0,
        "no listing ran while verdicts were being committed ({reads} reads)"
    );
}

// ---------------------------------------------------------------------------
// PostgreSQL only: a server that is down, goes away, hangs, or is reached
// through a unix socket.

const SHORT: Duration = Duration::from_millis(500);

fn short_options() -> ConnectOptions {
    ConnectOptions {
        pool_size: 2,
        timeout: SHORT,
    }
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_that_is_not_there_is_unavailable_at_once() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://catdog:secret@127.0.0.1:{port}/catdog");
    let store = connect(&url, &short_options())
        .await
        .expect("the pool opens lazily");
    let started = Instant::now();
    assert_unavailable(store.ping().await, "ping");
    assert_unavailable(store.gallery_state().await, "gallery_state");
    assert_unavailable(store.get(ImageId::new()).await, "get");
    match store.migrate().await {
        Err(StoreError::Unavailable(message)) => {
            assert!(
                !message.contains("secret"),
                "the password leaked: {message}"
            )
        }
        other => panic!("migrate: expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < SHORT * 4,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_unavailable_and_recovers_by_itself() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (mut proxy, url) = db.behind_proxy().await;
    let store = connect(&url, &short_options()).await.unwrap();
    store.migrate().await.unwrap();
    let (id, _) = classified(&store, Category::Cat).await;

    proxy.stop().await;
    for attempt in 0..3 {
        let started = Instant::now();
        assert_unavailable(store.gallery_page(None, limit(10), None).await, "listing");
        assert_unavailable(store.ping().await, "ping");
        assert!(
            started.elapsed() < SHORT * 3,
            "attempt {attempt} took {:?}",
            started.elapsed()
        );
    }

    proxy.restart().await;
    let back = Instant::now();
    loop {
        match store.gallery_page(None, limit(10), None).await {
            Ok(page) => {
                assert_eq!(ids(&page), vec![id]);
                break;
            }
            Err(e) if back.elapsed() < Duration::from_secs(5) => {
                eprintln!("not back yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("did not recover within 5 s: {e}"),
        }
    }
    eprintln!(
        "recovered {:?} after the database came back",
        back.elapsed()
    );
    let (another, _) = classified(&store, Category::Dog).await;
    assert_eq!(everything_shown(&store).await, vec![another, id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_that_hangs_is_unavailable_within_the_timeout() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (proxy, url) = db.behind_proxy().await;
    let store = connect(&url, &short_options()).await.unwrap();
    store.migrate().await.unwrap();
    let id = insert(&store).await;

    proxy.freeze();
    for what in ["verdict", "state", "ping"] {
        let started = Instant::now();
        let result = match what {
            "verdict" => store
                .record_verdict(id, &verdict(id, Category::Cat))
                .await
                .map(|_| ()),
            "state" => store.gallery_state().await.map(|_| ()),
            _ => store.ping().await,
        };
        assert_unavailable(result, what);
        let took = started.elapsed();
        assert!(
            took >= SHORT / 2 && took < SHORT * 3,
            "{what} took {took:?}"
        );
    }

    proxy.thaw();
    // The verdict sent while frozen was rolled back with its abandoned
    // connection, so this one is the one recorded.
    assert_eq!(verdict_once_back(&store, id).await, RecordOutcome::Recorded);
    assert_eq!(store.gallery_state().await.unwrap().gallery_seq, 1);
}

/// The outcome of recording a cat verdict for `id` with `store`, retried
/// while the store is unavailable, for at most 5 s.
async fn verdict_once_back(store: &Arc<dyn ImageStore>, id: ImageId) -> RecordOutcome {
    let back = Instant::now();
    loop {
        match store.record_verdict(id, &verdict(id, Category::Cat)).await {
            Ok(outcome) => return outcome,
            Err(e) if back.elapsed() < Duration::from_secs(5) => {
                eprintln!("not back yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("did not recover within 5 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_gone_silent_mid_verdict_holds_up_the_others_only_for_the_timeout() {
    // A classify-image instance frozen or cut off between two statements of
    // a verdict's transaction holds the gallery's counter rows. The server
    // ends such a transaction once its client has been silent for the
    // store's timeout; otherwise every other verdict and every ingested
    // picture would wait until TCP noticed, or time out.
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (proxy, url) = db.behind_proxy().await;
    let silent_timeout = Duration::from_secs(3);
    let silent = connect(
        &url,
        &ConnectOptions {
            pool_size: 1,
            timeout: silent_timeout,
        },
    )
    .await
    .unwrap();
    silent.migrate().await.unwrap();
    // Long enough to outwait the silent transaction, short enough that
    // waiting for TCP instead would fail the test.
    let others = connect(
        &db.url,
        &ConnectOptions {
            pool_size: 2,
            timeout: silent_timeout * 5,
        },
    )
    .await
    .unwrap();
    let stuck = insert(&silent).await;
    let next = insert(&others).await;

    // Stop the verdict in the middle of its transaction: an outside session
    // holds the `classified` counter, so the verdict waits there, having
    // locked its picture, the gallery state and, once let go, the `pending`
    // counter. The network freezes while it waits; then the counter is
    // released, the server finishes the statement and its answer is held by
    // the frozen network: the transaction sits idle, holding its locks.
    let blocker = support::postgres::connect(&db.url).await.unwrap();
    blocker
        .batch_execute("BEGIN; SELECT n FROM status_counts WHERE status = 'classified' FOR UPDATE")
        .await
        .unwrap();
    let held = tokio::spawn({
        let silent = Arc::clone(&silent);
        async move {
            silent
                .record_verdict(stuck, &verdict(stuck, Category::Cat))
                .await
        }
    });
    let sessions = support::postgres::connect(&db.url).await.unwrap();
    let waiting_for = |state: &'static str, wait_event: Option<&'static str>| {
        let sessions = &sessions;
        let database = db.name.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let n: i64 = sessions
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                         AND state = $2 AND wait_event_type IS NOT DISTINCT FROM $3 \
                         AND pid <> pg_backend_pid()",
                        &[&database, &state, &wait_event],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "no session reached {state}/{wait_event:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    waiting_for("active", Some("Lock")).await;
    proxy.freeze();
    blocker.batch_execute("COMMIT").await.unwrap();
    waiting_for("idle in transaction", Some("Client")).await;

    // Another instance's verdict needs the gallery state, a newly ingested
    // picture the `pending` counter: both go through once the silent
    // transaction is ended.
    let started = Instant::now();
    assert_eq!(
        others
            .record_verdict(next, &verdict(next, Category::Dog))
            .await
            .unwrap(),
        RecordOutcome::Recorded
    );
    let ingested = insert(&others).await;
    eprintln!(
        "the others waited {:?} for a transaction silent since the freeze",
        started.elapsed()
    );

    // The silent verdict was rolled back: its picture is still pending with
    // no position, and when the instance's network comes back its call has
    // failed as unavailable and a redelivery records the picture once.
    let record = others.get(stuck).await.unwrap().unwrap();
    assert_eq!((record.status, record.gallery_seq), (Status::Pending, None));
    proxy.thaw();
    assert_unavailable(held.await.unwrap(), "the silent verdict");
    assert_eq!(
        verdict_once_back(&silent, stuck).await,
        RecordOutcome::Recorded
    );
    assert_eq!(everything_shown(&others).await, vec![stuck, next]);
    assert_eq!(
        others.get(ingested).await.unwrap().unwrap().status,
        Status::Pending
    );
}

/// The Cloud SQL form, `?host=/DIRECTORY`, against the local server's socket
/// directory (`TEST_DATABASE_SOCKET_DIR`, default /var/run/postgresql).
#[tokio::test]
async fn postgres_over_a_unix_socket_directory() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let dir = std::env::var("TEST_DATABASE_SOCKET_DIR")
        .unwrap_or_else(|_| "/var/run/postgresql".to_owned());
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let url = format!("postgres://{user}@/{}?host={dir}", db.name);
    let store = connect(&url, &short_options()).await.unwrap();
    if let Err(e) = store.migrate().await {
        support::postgres::unreachable_server(&url, &e);
        return;
    }
    let (id, _) = classified(&store, Category::Cat).await;
    assert_eq!(everything_shown(&store).await, vec![id]);
}

// ---------------------------------------------------------------------------
// Breeds, windows and relabels

async fn the_breed_and_its_reasons_read_back(db: TestDb) {
    let store = db.migrated().await;
    let (cat, _) = classified(&store, Category::Cat).await;
    let (other, _) = classified(&store, Category::Other).await;
    let record = store.get(cat).await.unwrap().unwrap();
    assert_eq!(
        record.breed,
        Some(BreedGuess {
            name: "Siamese cat".to_owned(),
            probability: 0.75
        })
    );
    assert_eq!(
        record.why,
        vec![ClassScore {
            label: "tabby".to_owned(),
            probability: 0.5
        }]
    );
    assert_eq!(record.relabel, None);
    assert_eq!(store.get(other).await.unwrap().unwrap().breed, None);
}

/// `n` cats, oldest first.
async fn cats(store: &Arc<dyn ImageStore>, n: usize) -> Vec<(ImageId, i64)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let (id, seq) = classified(store, Category::Cat).await;
        out.push((id, seq.unwrap()));
    }
    out
}

fn cats_only() -> ListingFilter {
    ListingFilter {
        category: Some(Category::Cat),
        breed: None,
    }
}

async fn windows_page_both_ways_and_know_their_position(db: TestDb) {
    let store = db.migrated().await;
    let cats = cats(&store, 7).await;
    classified(&store, Category::Dog).await;
    let newest_first: Vec<ImageId> = cats.iter().rev().map(|(id, _)| *id).collect();

    // The second page of three, reached from the first page's last picture.
    let first = store
        .listing_window(&cats_only(), Window::OlderThan(i64::MAX), limit(3))
        .await
        .unwrap();
    assert_eq!(ids(&first.records), newest_first[..3]);
    assert_eq!((first.position, first.total), (1, 7));
    assert!(!first.has_newer && first.has_older);
    let last_seq = first.records[2].gallery_seq.unwrap();
    let second = store
        .listing_window(&cats_only(), Window::OlderThan(last_seq), limit(3))
        .await
        .unwrap();
    assert_eq!(ids(&second.records), newest_first[3..6]);
    assert_eq!(second.position, 4);
    assert!(second.has_newer && second.has_older);
    let third = store
        .listing_window(
            &cats_only(),
            Window::OlderThan(second.records[2].gallery_seq.unwrap()),
            limit(3),
        )
        .await
        .unwrap();
    assert_eq!(ids(&third.records), newest_first[6..]);
    assert_eq!(third.position, 7);
    assert!(third.has_newer && !third.has_older);

    // And back: the page of newer pictures before the third page's first.
    let back = store
        .listing_window(
            &cats_only(),
            Window::NewerThan(third.records[0].gallery_seq.unwrap()),
            limit(3),
        )
        .await
        .unwrap();
    assert_eq!(ids(&back.records), newest_first[3..6]);
    assert_eq!(back.position, 4);
    let top = store
        .listing_window(
            &cats_only(),
            Window::NewerThan(back.records[0].gallery_seq.unwrap()),
            limit(3),
        )
        .await
        .unwrap();
    assert_eq!(ids(&top.records), newest_first[..3]);
    assert!(!top.has_newer && top.has_older);
}

async fn a_window_around_a_picture_holds_it_and_its_neighbours(db: TestDb) {
    let store = db.migrated().await;
    let cats = cats(&store, 9).await;
    let newest_first: Vec<ImageId> = cats.iter().rev().map(|(id, _)| *id).collect();
    // The 6th newest: two newer before it, two older after it.
    let (_, seq) = cats[3];
    let window = store
        .listing_window(&cats_only(), Window::Around(seq), limit(5))
        .await
        .unwrap();
    assert_eq!(ids(&window.records), newest_first[3..8]);
    assert_eq!(window.records[2].id, newest_first[5]);
    assert_eq!((window.position, window.total), (4, 9));
    assert!(window.has_newer && window.has_older);
    // At the top there is nothing newer: the page starts with it.
    let (_, newest) = cats[8];
    let window = store
        .listing_window(&cats_only(), Window::Around(newest), limit(5))
        .await
        .unwrap();
    assert_eq!(ids(&window.records), newest_first[..5]);
    assert_eq!(window.position, 1);
    assert!(!window.has_newer);
}

async fn a_breed_filter_narrows_a_listing(db: TestDb) {
    let store = db.migrated().await;
    let (cat, _) = classified(&store, Category::Cat).await;
    let (dog, _) = classified(&store, Category::Dog).await;
    let golden = |category| ListingFilter {
        category,
        breed: Some("Golden Retriever".to_owned()),
    };
    let found = store
        .listing_window(&golden(None), Window::OlderThan(i64::MAX), limit(10))
        .await
        .unwrap();
    assert_eq!(ids(&found.records), vec![dog]);
    assert_eq!(found.total, 1);
    let none = store
        .listing_window(
            &golden(Some(Category::Cat)),
            Window::OlderThan(i64::MAX),
            limit(10),
        )
        .await
        .unwrap();
    assert!(none.records.is_empty());
    assert_eq!(none.total, 0);
    let siamese = ListingFilter {
        category: None,
        breed: Some("siamese cat".to_owned()),
    };
    let found = store
        .listing_window(&siamese, Window::OlderThan(i64::MAX), limit(10))
        .await
        .unwrap();
    assert_eq!(ids(&found.records), vec![cat]);
}

async fn a_relabel_moves_a_picture_and_is_kept(db: TestDb) {
    let store = db.migrated().await;
    let (cat, cat_seq) = classified(&store, Category::Cat).await;
    let (dog, _) = classified(&store, Category::Dog).await;
    let before = store.gallery_state().await.unwrap();

    assert_eq!(
        store
            .relabel(cat, Category::Dog, "ops@example.com")
            .await
            .unwrap(),
        RelabelOutcome::Relabelled
    );
    let record = store.get(cat).await.unwrap().unwrap();
    assert_eq!(record.category, Some(Category::Dog));
    assert_eq!(record.breed, None, "the cat's breed no longer applies");
    let relabel = record.relabel.expect("recorded");
    assert_eq!(relabel.by, "ops@example.com");
    assert_eq!(relabel.previous, Some(Category::Cat));
    // It moved to the top of the dogs, and the listings changed (new ETags).
    assert!(record.gallery_seq > cat_seq);
    let dogs = store
        .gallery_page(Some(Category::Dog), limit(10), None)
        .await
        .unwrap();
    assert_eq!(ids(&dogs), vec![cat, dog]);
    assert!(
        store
            .gallery_page(Some(Category::Cat), limit(10), None)
            .await
            .unwrap()
            .is_empty()
    );
    let after = store.gallery_state().await.unwrap();
    assert_ne!(after.gallery_seq, before.gallery_seq);
    assert_eq!((after.counts.cats, after.counts.dogs), (0, 2));
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.relabelled, 1);
    assert_eq!(count(&stats.by_category, Category::Dog), 2);

    // A redelivered message for the picture leaves the operator's category.
    assert_eq!(
        store
            .record_verdict(cat, &verdict(cat, Category::Cat))
            .await
            .unwrap(),
        RecordOutcome::AlreadyDone
    );
    assert_eq!(
        store.get(cat).await.unwrap().unwrap().category,
        Some(Category::Dog)
    );
    // Asking again changes nothing; a second correction keeps the classifier's
    // category as the one before.
    assert_eq!(
        store
            .relabel(cat, Category::Dog, "ops@example.com")
            .await
            .unwrap(),
        RelabelOutcome::Unchanged
    );
    assert_eq!(
        store
            .relabel(cat, Category::Other, "lead@example.com")
            .await
            .unwrap(),
        RelabelOutcome::Relabelled
    );
    let relabel = store.get(cat).await.unwrap().unwrap().relabel.unwrap();
    assert_eq!(relabel.by, "lead@example.com");
    assert_eq!(relabel.previous, Some(Category::Cat));
    let state = store.gallery_state().await.unwrap();
    assert_eq!((state.counts.dogs, state.counts.refused), (1, 1));
}

async fn only_classified_pictures_can_be_relabelled(db: TestDb) {
    let store = db.migrated().await;
    let pending = insert(&store).await;
    assert_eq!(
        store.relabel(pending, Category::Cat, "ops").await.unwrap(),
        RelabelOutcome::NotClassified(Status::Pending)
    );
    let rejected = insert(&store).await;
    store.mark_rejected(rejected, "not an image").await.unwrap();
    assert_eq!(
        store.relabel(rejected, Category::Cat, "ops").await.unwrap(),
        RelabelOutcome::NotClassified(Status::Rejected)
    );
    assert_eq!(
        store
            .relabel(ImageId::new(), Category::Cat, "ops")
            .await
            .unwrap(),
        RelabelOutcome::NotFound
    );
    assert_eq!(store.stats().await.unwrap().relabelled, 0);
}

/// What the read API's exact listing cache relies on: every change a
/// listing shows moves the store's change feed soon after it commits, also
/// when another handle wrote it (another process; on PostgreSQL another
/// instance), and reads move nothing.
async fn changes_to_listings_move_the_change_feed_and_reads_do_not(db: TestDb) {
    let store = db.migrated().await;
    let writer = db.open().await;
    let feed = store.changes();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !feed.is_live() {
        assert!(Instant::now() < deadline, "the feed never went live");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let moved_since = |before: u64| {
        let feed = feed.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            while feed.epoch() == before {
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            true
        }
    };

    let before = feed.epoch();
    let (id, _) = classified(&writer, Category::Cat).await;
    assert!(moved_since(before).await, "a verdict");
    let before = feed.epoch();
    writer.relabel(id, Category::Dog, "test").await.unwrap();
    assert!(moved_since(before).await, "a relabel");
    let rejected = insert(&writer).await;
    let before = feed.epoch();
    writer
        .mark_rejected(rejected, "not a picture")
        .await
        .unwrap();
    assert!(moved_since(before).await, "a refusal");
    let (own, _) = classified(&store, Category::Dog).await;
    assert_ne!(own, id);

    // Let the last notification land, then only read.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = feed.epoch();
    store.gallery_state().await.unwrap();
    store.stats().await.unwrap();
    writer.get(id).await.unwrap();
    store
        .gallery_listing(
            &[None, Some(Category::Cat)],
            PageLimit::new(10).unwrap(),
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(feed.epoch(), before, "reads are not changes");
}

/// The stats' counts by status are kept by the database as rows change
/// (migration 0008), not counted per request: after each kind of change, and
/// after many at once from several tasks, they are what a count of the rows
/// says.
async fn status_counts_are_kept_through_every_kind_of_change(db: TestDb) {
    let store = db.migrated().await;
    async fn kept(store: &Arc<dyn ImageStore>, db: &TestDb, step: &str) -> Vec<i64> {
        let kept = store.stats().await.unwrap().by_status;
        assert_eq!(kept, db.count_rows_by_status().await, "{step}");
        kept.into_iter().map(|(_, n)| n).collect()
    }
    // In Status::ALL's order: pending, classified, rejected, failed.
    assert_eq!(kept(&store, &db, "empty").await, [0, 0, 0, 0]);

    let mut pending = Vec::new();
    for _ in 0..6 {
        pending.push(insert(&store).await);
    }
    assert_eq!(kept(&store, &db, "inserted").await, [6, 0, 0, 0]);

    let (cat, other, rejected, given_up) =
        (pending[0], pending[1], pending[2], [pending[3], pending[4]]);
    store
        .record_verdict(cat, &verdict(cat, Category::Cat))
        .await
        .unwrap();
    store
        .record_verdict(other, &verdict(other, Category::Other))
        .await
        .unwrap();
    store
        .mark_rejected(rejected, "not a picture")
        .await
        .unwrap();
    // A redelivered verdict and a failure that stays pending move nothing.
    store
        .record_verdict(cat, &verdict(cat, Category::Cat))
        .await
        .unwrap();
    store
        .record_failure(pending[5], "storage: unavailable")
        .await
        .unwrap();
    assert_eq!(kept(&store, &db, "verdicts").await, [3, 2, 1, 0]);

    for id in given_up {
        store.mark_published(id).await.unwrap();
    }
    let later = now_micros() + TimeDelta::minutes(1);
    let failed = store.give_up_unanswered(later, 1, 10).await.unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(kept(&store, &db, "given up").await, [1, 2, 1, 2]);

    assert_eq!(
        store.retry_images(&[given_up[0]]).await.unwrap(),
        [given_up[0]]
    );
    assert_eq!(kept(&store, &db, "retried by hand").await, [2, 2, 1, 1]);
    let much_later = now_micros() + TimeDelta::days(1);
    let retried = store
        .retry_failed(much_later, Duration::from_millis(1), 4, 10)
        .await
        .unwrap();
    assert_eq!(retried, [given_up[1]]);
    assert_eq!(
        kept(&store, &db, "retried by the sweep").await,
        [3, 2, 1, 0]
    );

    // Inserts and verdicts from several tasks at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (n, id) in [pending[3], pending[4], pending[5]].into_iter().enumerate() {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let category = [Category::Dog, Category::Cat, Category::Other][n];
            store
                .record_verdict(id, &verdict(id, category))
                .await
                .unwrap();
        });
    }
    for _ in 0..12 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            insert(&store).await;
        });
    }
    tasks.join_all().await;
    assert_eq!(kept(&store, &db, "concurrent changes").await, [12, 5, 1, 0]);
}
