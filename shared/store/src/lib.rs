//! The metadata store: one API ([`ImageStore`]) with two implementations,
//! chosen by the database URL. PostgreSQL is production (Cloud SQL); SQLite is
//! the embedded default of local mode. `tests/store_contract.rs` holds both to
//! the same behaviour.

mod changes;
#[cfg(feature = "postgres")]
mod pg_listen;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod record;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use catdog_core::domain::{
    Category, Digest, ImageId, ImageRecord, NewImage, PageLimit, Status, Verdict,
};

pub use changes::{ChangeFeed, ChangeProbe};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time. Callers
    /// answer 503 so that clients (and Pub/Sub) come back later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The stored data is not what this version of the code understands.
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whether an insert added a row or found the same picture already stored.
#[derive(Clone, Debug, PartialEq)]
pub enum InsertOutcome {
    Inserted,
    /// The digest is already stored, under this image.
    Duplicate(ImageId),
}

/// Whether a verdict (or a rejection) changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    Recorded,
    /// The image was already classified or rejected: nothing changed.
    AlreadyDone,
    /// No such image.
    NotFound,
}

/// The few numbers every listing depends on, read in one cheap query. Their
/// change is what invalidates cached pages.
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryState {
    /// Cats plus dogs classified: the images shown in the gallery.
    pub total_images: i64,
    /// How many pictures each listing holds.
    pub counts: ListingCounts,
    /// The highest gallery position handed out so far.
    pub gallery_seq: i64,
    /// When ingestion last finished, or when the database was created.
    pub last_ingest_at: DateTime<Utc>,
}

/// The size of each listing, from the counters the writes keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListingCounts {
    pub cats: i64,
    pub dogs: i64,
    /// Judged neither, plus files that could not be used (rejected).
    pub refused: i64,
}

impl ListingCounts {
    /// The size of the listing of `category` (`None`: cats and dogs;
    /// `Other`: the refused pictures).
    pub fn of(&self, category: Option<Category>) -> i64 {
        match category {
            None => self.cats + self.dogs,
            Some(Category::Cat) => self.cats,
            Some(Category::Dog) => self.dogs,
            Some(Category::Other) => self.refused,
        }
    }
}

/// Which part of a listing to read, in gallery positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The newest pictures with a position below this one.
    OlderThan(i64),
    /// The oldest pictures with a position above this one (shown newest first).
    NewerThan(i64),
    /// The picture at this position, about half a page of newer ones before
    /// it and older ones after it.
    Around(i64),
}

/// A listing: `category` `None` is cats and dogs together, `Other` the
/// refused pictures; `breed` narrows it to one breed, case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListingFilter {
    pub category: Option<Category>,
    pub breed: Option<String>,
}

/// A window of a listing with where it sits in it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListingWindow {
    pub state: GalleryState,
    /// Newest first.
    pub records: Vec<ImageRecord>,
    /// 1-based position of the first record in the listing (newest first).
    pub position: i64,
    /// How many pictures the listing holds.
    pub total: i64,
    pub has_newer: bool,
    pub has_older: bool,
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl ListingWindow {
    /// Whose gallery position the store counts the pictures above of, to
    /// place a window that starts with `first_seq` (`None`: the window is
    /// empty): the window's position is that count plus one. `None` back:
    /// the window is at the very top.
    fn count_above(first_seq: Option<i64>, window: Window) -> Option<i64> {
        match (first_seq, window) {
            (Some(first), _) => Some(first),
            (None, Window::NewerThan(_)) => None,
            (None, Window::OlderThan(seq) | Window::Around(seq)) => Some(seq.saturating_sub(1)),
        }
    }

    /// The window of `records` at `position` in a listing of `total`.
    fn at(state: GalleryState, records: Vec<ImageRecord>, position: i64, total: i64) -> Self {
        let shown = records.len() as i64;
        Self {
            state,
            records,
            position,
            total,
            has_newer: position > 1,
            has_older: position - 1 + shown < total,
        }
    }
}

/// Why a relabel changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelabelOutcome {
    Relabelled,
    /// The picture already has this category: nothing changed.
    Unchanged,
    NotFound,
    /// Only classified pictures can be relabelled (a pending one has no
    /// verdict yet; a rejected file has nothing to show).
    NotClassified(Status),
}

/// What one listing shows, read at once: the gallery state and its pages,
/// from the same snapshot of the database (so the count, the ETag and the
/// pictures always agree).
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryListing {
    pub state: GalleryState,
    /// One page per category asked for, in the order asked.
    pub pages: Vec<Vec<ImageRecord>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceStatus {
    pub name: String,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub state: GalleryState,
    /// Pictures whose category an operator corrected.
    pub relabelled: i64,
    pub by_category: Vec<(Category, i64)>,
    pub by_status: Vec<(Status, i64)>,
    pub sources: Vec<SourceStatus>,
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl Stats {
    /// Every status with its count, from the rows of `status_counts`
    /// (a status without a row counts 0).
    fn by_status(counted: &[(String, i64)]) -> Vec<(Status, i64)> {
        Status::ALL
            .into_iter()
            .map(|status| {
                let n = counted
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                (status, n)
            })
            .collect()
    }

    /// The stats from what each store counts: `[cats, dogs, others]` in
    /// that order.
    fn from_counts(
        state: GalleryState,
        relabelled: i64,
        [cats, dogs, others]: [i64; 3],
        by_status: Vec<(Status, i64)>,
        sources: Vec<SourceStatus>,
    ) -> Self {
        Self {
            state,
            relabelled,
            by_category: vec![
                (Category::Cat, cats),
                (Category::Dog, dogs),
                (Category::Other, others),
            ],
            by_status,
            sources,
        }
    }
}

/// What one ingestion run did, as recorded when it finishes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestRun {
    pub started_at: Option<DateTime<Utc>>,
    pub fetched: i64,
    pub stored: i64,
    pub duplicates: i64,
    pub published: i64,
    /// `(source, error)` for each source that failed in this run.
    pub errors: Vec<(String, String)>,
    /// Sources that were asked and answered in this run.
    pub succeeded_sources: Vec<String>,
}

#[async_trait]
pub trait ImageStore: Send + Sync + 'static {
    /// Applies every migration not yet applied. Safe when several processes
    /// start at once: they wait for each other.
    async fn migrate(&self) -> StoreResult<()>;

    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;

    /// The feed of this database's changes, for readers that keep what they
    /// read (see [`ChangeFeed`]). The first call starts whatever watches the
    /// database (on PostgreSQL, a listening connection), so it must be made
    /// inside a Tokio runtime, and only by processes that keep pages.
    fn changes(&self) -> ChangeFeed;

    /// Records a stored picture as pending. The digest is unique: a second
    /// picture with the same bytes is not inserted.
    async fn insert_pending(&self, image: &NewImage) -> StoreResult<InsertOutcome>;

    async fn get(&self, id: ImageId) -> StoreResult<Option<ImageRecord>>;

    async fn find_by_digest(&self, digest: &Digest) -> StoreResult<Option<ImageRecord>>;

    /// Notes that the image's message was handed to the queue (once more:
    /// each call counts one publish).
    async fn mark_published(&self, id: ImageId) -> StoreResult<()>;

    /// Pending images that need their message (re)published: created before
    /// `stale_before` and either never published or last published before it.
    /// This is the sweep that keeps a failed publish from losing a picture.
    async fn unpublished(
        &self,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ImageRecord>>;

    /// Gives failed pictures another round of publishes: those given up on
    /// at least `backoff · 2^retries` after their last publish, and given
    /// fewer than `max_retries` rounds before. A failure is always ours
    /// (storage, database, a timeout; a picture that cannot be decoded is
    /// rejected instead), so once the fault is gone a round classifies it.
    /// They become pending with their publish count reset, and the sweep
    /// republishes them; `last_error` keeps why they failed until a verdict.
    /// Returns the images retried, at most `limit`.
    async fn retry_failed(
        &self,
        now: DateTime<Utc>,
        backoff: Duration,
        max_retries: u32,
        limit: u32,
    ) -> StoreResult<Vec<ImageId>>;

    /// An operator's retry of chosen failed pictures (`catdog retry`): made
    /// pending now, whatever their rounds. Returns those that were failed.
    async fn retry_images(&self, ids: &[ImageId]) -> StoreResult<Vec<ImageId>>;

    /// The newest failed pictures, with their errors (`catdog failed`).
    async fn failed_images(&self, limit: u32) -> StoreResult<Vec<ImageRecord>>;

    /// Gives up on pending images whose message was published
    /// `max_publishes` times or more, the last time before `stale_before`,
    /// without a verdict: each such message was dead-lettered or lost every
    /// time. They become `failed`, with `last_error` saying so (and keeping
    /// the error classification last recorded), so the sweep stops
    /// republishing them; a late delivery can still classify them. Returns
    /// the images given up on, at most `limit`.
    async fn give_up_unanswered(
        &self,
        stale_before: DateTime<Utc>,
        max_publishes: u32,
        limit: u32,
    ) -> StoreResult<Vec<ImageId>>;

    /// Which of `ids` have a row, whatever their status (the orphan sweep
    /// keeps every object whose image is recorded).
    async fn existing_ids(&self, ids: &[ImageId]) -> StoreResult<HashSet<ImageId>>;

    /// Records the classifier's verdict. Only a pending (or failed) image
    /// changes; cats and dogs get the next gallery position.
    async fn record_verdict(&self, id: ImageId, verdict: &Verdict) -> StoreResult<RecordOutcome>;

    /// Records that the picture cannot be decoded; it is never retried.
    async fn mark_rejected(&self, id: ImageId, reason: &str) -> StoreResult<RecordOutcome>;

    /// Counts a failed attempt (our fault, not the picture's) and keeps the error.
    async fn record_failure(&self, id: ImageId, error: &str) -> StoreResult<()>;

    async fn gallery_state(&self) -> StoreResult<GalleryState>;

    /// [`gallery_state`](Self::gallery_state) and, for each of `categories`,
    /// the listing's newest pictures (or those below `after_seq`), in one
    /// read of one snapshot: what a listing request needs, in one round
    /// trip on PostgreSQL. `None` lists cats and dogs together, `Other` the
    /// refused pictures.
    async fn gallery_listing(
        &self,
        categories: &[Option<Category>],
        limit: PageLimit,
        after_seq: Option<i64>,
    ) -> StoreResult<GalleryListing>;

    /// A window of a listing, with its position and size, from one snapshot:
    /// cursor pages both ways, pages around a picture, and `breed=` filters.
    async fn listing_window(
        &self,
        filter: &ListingFilter,
        window: Window,
        limit: PageLimit,
    ) -> StoreResult<ListingWindow>;

    /// Sets a classified picture's category by an operator's decision:
    /// clears the breed guess, records who, when and the category before,
    /// and gives it a new position so it shows at the top of its listing.
    async fn relabel(
        &self,
        id: ImageId,
        category: Category,
        by: &str,
    ) -> StoreResult<RelabelOutcome>;

    async fn stats(&self) -> StoreResult<Stats>;

    /// Takes the ingestion lease for `holder` unless another holder has it and
    /// it has not expired. Two overlapping runs never both get it.
    async fn try_acquire_ingest_lease(&self, holder: &str, ttl: Duration) -> StoreResult<bool>;

    /// Records a finished run, moves `last_ingest_at` forward, keeps each
    /// source's last error, and releases `holder`'s lease.
    async fn finish_ingest(&self, holder: &str, run: &IngestRun) -> StoreResult<()>;
}

/// Opens the store a database URL names: `postgres://…` / `postgresql://…`
/// (including `host=/cloudsql/…` sockets) or `sqlite://PATH`.
pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Arc<dyn ImageStore>> {
    #[cfg(not(feature = "postgres"))]
    let _ = options;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(PostgresStore::connect(url, options)?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::BadUrl(
            "this build has no PostgreSQL support (cargo feature `postgres`)".to_owned(),
        ));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        #[cfg(feature = "sqlite")]
        return Ok(Arc::new(SqliteStore::open(path).await?));
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = path;
            return Err(StoreError::BadUrl(
                "this build has no SQLite support (cargo feature `sqlite`); use postgres://…"
                    .to_owned(),
            ));
        }
    }
    {
        Err(StoreError::BadUrl(
            "expected postgres://… or sqlite://PATH".to_owned(),
        ))
    }
}

/// How the PostgreSQL pool behaves.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub pool_size: usize,
    /// How long to wait for a connection or a query before answering 503.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            timeout: Duration::from_secs(2),
        }
    }
}
