//! SQLite implementation (rusqlite, bundled): the embedded default of local
//! mode. One connection serialises writes, which is also what makes gallery
//! positions increase in commit order. The reads visitors make (listings,
//! pictures, stats) go to a few read-only connections instead, which WAL lets
//! run beside each other and beside the writer, so a listing never queues
//! behind a classification or another listing.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backon::{BlockingRetryable, ConstantBuilder};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    ChangeFeed, ChangeProbe, GalleryListing, GalleryState, ImageStore, IngestRun, InsertOutcome,
    ListingCounts, ListingFilter, ListingWindow, RecordOutcome, RelabelOutcome, SourceStatus,
    Stats, StoreError, StoreResult, Window,
};
use crate::record::{self, corrupt, parse, parse_optional};
use crate::sql::{self, GIVE_UP_REASON, IMAGE_COLUMNS, in_sqlite};
use catdog_core::domain::{
    Category, Digest, ImageId, ImageRecord, NewImage, PageLimit, Status, Verdict, now_micros,
};

/// Read-only connections beside the writer: enough to keep both cores busy
/// with listings while a write is in progress, few enough that each keeps a
/// warm page cache.
const READERS: usize = 4;

/// The read-only connections, each behind its own lock, and as many permits:
/// a holder of a permit always finds a connection free.
struct Readers {
    conns: Arc<[Mutex<Connection>]>,
    permits: tokio::sync::Semaphore,
}

impl Readers {
    fn open(path: &str) -> rusqlite::Result<Self> {
        let conns = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(path, read_only_flags())?;
                conn.busy_timeout(Duration::from_secs(5))?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Self {
            conns: conns.into(),
            permits: tokio::sync::Semaphore::new(READERS),
        })
    }
}

fn read_only_flags() -> rusqlite::OpenFlags {
    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
}

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_initial.sql")),
    (2, include_str!("migrations/sqlite/0002_publish_count.sql")),
    (
        4,
        include_str!("migrations/sqlite/0004_breeds_and_relabels.sql"),
    ),
    (
        7,
        include_str!("migrations/sqlite/0007_failure_retries.sql"),
    ),
    (8, include_str!("migrations/sqlite/0008_status_counts.sql")),
];

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// `None` for an in-memory database, which only its one connection sees.
    readers: Option<Readers>,
    /// Moved after each of this store's own commits, and asks the file for
    /// other connections' (see [`ImageStore::changes`]).
    changes: ChangeFeed,
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path`;
    /// `:memory:` gives a private in-memory database.
    pub async fn open(path: &str) -> StoreResult<Self> {
        if path.is_empty() {
            return Err(StoreError::BadUrl("sqlite:// needs a file path".to_owned()));
        }
        let path = path.to_owned();
        type Opened = (Connection, Option<Readers>, ChangeFeed);
        let opened = tokio::task::spawn_blocking(move || -> StoreResult<Opened> {
            let parent = Path::new(&path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty());
            if let Some(parent) = parent.filter(|_| path != ":memory:") {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let conn = Connection::open(&path).map_err(unavailable)?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(unavailable)?;
            // Switching to WAL takes a lock that SQLite's busy handler does
            // not wait for, so several processes opening one file at once
            // can see "database is locked": wait for each other instead.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            (|| {
                conn.pragma_update(None, "journal_mode", "WAL")
                    .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            })
            .retry(
                ConstantBuilder::new()
                    .with_delay(Duration::from_millis(20))
                    .without_max_times(),
            )
            .when(|e| is_busy(e) && std::time::Instant::now() < deadline)
            .call()
            .map_err(unavailable)?;
            if path == ":memory:" {
                // No other connection can see it: no readers, no other writers.
                return Ok((conn, None, ChangeFeed::new(true)));
            }
            let readers = Readers::open(&path).map_err(unavailable)?;
            // A file whose watcher cannot be opened makes a feed that is not
            // live, so those who keep pages fall back to their time bound.
            let changes = {
                match OtherWriters::open(&path) {
                    Ok(watcher) => ChangeFeed::probing(watcher),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch the database for other connections' commits");
                        ChangeFeed::new(false)
                    }
                }
            };
            Ok((conn, Some(readers), changes))
        })
        .await
        .map_err(|e| StoreError::Other(e.to_string()))??;
        let (conn, readers, changes) = opened;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers,
            changes,
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let changes = self.changes.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-applied
            // transaction (rusqlite rolls back on drop), so a poisoned lock is
            // still safe to use.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            let before = guard.total_changes();
            let result = f(&mut guard);
            // Rows written (committed or not: a needless refresh is harmless).
            if guard.total_changes() != before {
                changes.changed();
            }
            result
        })
        .await
        .map_err(|e| StoreError::Other(format!("database task failed: {e}")))?
    }

    /// Runs `f` on a free read-only connection (the writer's, for an
    /// in-memory database). `f` must only read: the connection refuses
    /// writes anyway.
    async fn with_reader<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let Some(readers) = &self.readers else {
            return self.with_conn(f).await;
        };
        let _permit = readers
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Other(format!("the read connections are closed: {e}")))?;
        let conns = Arc::clone(&readers.conns);
        tokio::task::spawn_blocking(move || {
            // With a permit, at least one connection is free; a poisoned one
            // is still whole (a read has nothing to leave half done).
            let mut guard = conns
                .iter()
                .find_map(|conn| match conn.try_lock() {
                    Ok(guard) => Some(guard),
                    Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                    Err(std::sync::TryLockError::WouldBlock) => None,
                })
                .unwrap_or_else(|| conns[0].lock().unwrap_or_else(|p| p.into_inner()));
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Other(format!("database task failed: {e}")))?
    }
}

/// Another connection's commits to the same file, seen by a read-only
/// connection of our own: its `PRAGMA data_version` changes exactly when
/// some other connection has committed since it last asked.
struct OtherWriters {
    /// The connection and the version it last saw, behind one lock: the
    /// version is only meaningful next to the connection that read it.
    watch: Mutex<(Connection, Option<i64>)>,
}

impl OtherWriters {
    fn open(path: &str) -> rusqlite::Result<Self> {
        let conn = Connection::open_with_flags(path, read_only_flags())?;
        let watcher = Self {
            watch: Mutex::new((conn, None)),
        };
        watcher.changed_since_last_asked();
        Ok(watcher)
    }
}

impl ChangeProbe for OtherWriters {
    fn changed_since_last_asked(&self) -> bool {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let (conn, last) = &mut *watch;
        // Prepared once: a cached listing asks this on every request.
        let version = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)));
        match version {
            Ok(version) => last.replace(version) != Some(version),
            // Busy or failing: a needless refresh rather than a missed one.
            Err(_) => true,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
    )
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn db_error(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
                    // A full disk, or one that fails to read or write,
                    // passes: callers answer 503 with Retry-After and
                    // Pub/Sub redelivers.
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt(format!("time {us}")))
}

fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, index: usize) -> StoreResult<T> {
    row.get(index).map_err(db_error)
}

/// Reads a row selected with [`sql::IMAGE_COLUMNS`].
fn record(row: &Row<'_>) -> StoreResult<ImageRecord> {
    let number = |index: usize, what: &str| -> StoreResult<Option<u32>> {
        get::<Option<i64>>(row, index)?
            .map(|n| u32::try_from(n).map_err(|e| corrupt(what, e)))
            .transpose()
    };
    let time = |index: usize| -> StoreResult<Option<DateTime<Utc>>> {
        get::<Option<i64>>(row, index)?.map(from_micros).transpose()
    };
    let json = |index: usize, what: &str| -> StoreResult<Option<serde_json::Value>> {
        get::<Option<String>>(row, index)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt(what, e))
    };
    Ok(ImageRecord {
        id: parse(get(row, 0)?, "id")?,
        sha256: parse(get(row, 1)?, "sha256")?,
        source: get(row, 2)?,
        source_ref: get(row, 3)?,
        object_name: parse(get(row, 4)?, "object name")?,
        content_type: get(row, 5)?,
        byte_size: get(row, 6)?,
        width: number(7, "width")?,
        height: number(8, "height")?,
        status: parse(get(row, 9)?, "status")?,
        category: parse_optional(get(row, 10)?, "category")?,
        confidence: get::<Option<f64>>(row, 11)?.map(|c| c as f32),
        scores: json(12, "scores")?,
        model_version: get(row, 13)?,
        attempts: i32::try_from(get::<i64>(row, 14)?).map_err(|e| corrupt("attempts", e))?,
        last_error: get(row, 15)?,
        created_at: from_micros(get(row, 16)?)?,
        classified_at: time(17)?,
        published_at: time(18)?,
        thumbnail: record::thumbnail(
            get(row, 19)?,
            number(20, "thumbnail width")?,
            number(21, "thumbnail height")?,
            get(row, 22)?,
        )?,
        gallery_seq: get(row, 23)?,
        breed: record::breed(
            get(row, 24)?,
            get::<Option<f64>>(row, 25)?.map(|p| p as f32),
        ),
        why: record::why(json(26, "why")?)?,
        relabel: record::relabel(get(row, 27)?, time(28)?, get(row, 29)?)?,
    })
}

/// The ids an `UPDATE … RETURNING id` changed.
fn query_ids(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<ImageId>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    stmt.query_map(params, |row| row.get::<_, String>(0))
        .map_err(db_error)?
        .map(|id| {
            id.map_err(db_error)?
                .parse::<ImageId>()
                .map_err(|e| corrupt("id", e))
        })
        .collect()
}

fn query_records(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<ImageRecord>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_error)?;
    let mut rows = stmt.query(params).map_err(db_error)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        records.push(record(row)?);
    }
    Ok(records)
}

/// The condition on `images` that selects a listing's pictures; a breed is
/// bound as `:breed`.
fn listing_condition(filter: &ListingFilter) -> String {
    let listing = sql::listing_condition(filter.category);
    let breed = if filter.breed.is_some() {
        " AND lower(breed) = lower(:breed)"
    } else {
        ""
    };
    format!("{listing}{breed}")
}

/// Reads the records `sql` selects, binding `:breed` (when filtering by
/// breed) and the other named parameters given.
fn query_listing(
    conn: &Connection,
    sql: &str,
    filter: &ListingFilter,
    named: &[(&str, &dyn rusqlite::ToSql)],
) -> StoreResult<Vec<ImageRecord>> {
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = named.to_vec();
    if let Some(breed) = &filter.breed {
        params.push((":breed", breed));
    }
    query_records(conn, sql, params.as_slice())
}

fn count_listing(
    conn: &Connection,
    filter: &ListingFilter,
    above_seq: Option<i64>,
) -> StoreResult<i64> {
    let mut sql = format!(
        "SELECT COUNT(*) FROM images WHERE {}",
        listing_condition(filter)
    );
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
    if let Some(breed) = &filter.breed {
        params.push((":breed", breed));
    }
    if let Some(seq) = &above_seq {
        sql.push_str(" AND gallery_seq > :seq");
        params.push((":seq", seq));
    }
    conn.prepare_cached(&sql)
        .and_then(|mut statement| statement.query_row(params.as_slice(), |r| r.get(0)))
        .map_err(db_error)
}

/// The newest pictures of a listing below `after_seq` (all when `None`).
fn read_page(
    conn: &Connection,
    category: Option<Category>,
    limit: PageLimit,
    after_seq: Option<i64>,
) -> StoreResult<Vec<ImageRecord>> {
    let filter = ListingFilter {
        category,
        breed: None,
    };
    let sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {} AND gallery_seq < :seq \
         ORDER BY gallery_seq DESC LIMIT :limit",
        listing_condition(&filter)
    );
    let after = after_seq.unwrap_or(i64::MAX);
    query_listing(
        conn,
        &sql,
        &filter,
        &[(":seq", &after), (":limit", &limit.get())],
    )
}

/// A window of a listing, as [`ImageStore::listing_window`] describes it.
fn read_window(
    conn: &Connection,
    filter: &ListingFilter,
    window: Window,
    limit: PageLimit,
) -> StoreResult<ListingWindow> {
    let condition = listing_condition(filter);
    let older_sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {condition} AND gallery_seq < :seq \
         ORDER BY gallery_seq DESC LIMIT :limit"
    );
    let newer_sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {condition} AND gallery_seq > :seq \
         ORDER BY gallery_seq ASC LIMIT :limit"
    );
    let limit = i64::from(limit.get());
    let mut records = match window {
        Window::OlderThan(seq) => query_listing(
            conn,
            &older_sql,
            filter,
            &[(":seq", &seq), (":limit", &limit)],
        )?,
        Window::NewerThan(seq) => {
            let mut newer = query_listing(
                conn,
                &newer_sql,
                filter,
                &[(":seq", &seq), (":limit", &limit)],
            )?;
            newer.reverse();
            newer
        }
        Window::Around(seq) => {
            let half = (limit - 1) / 2;
            let mut newer = query_listing(
                conn,
                &newer_sql,
                filter,
                &[(":seq", &seq), (":limit", &half)],
            )?;
            newer.reverse();
            let rest = limit - newer.len() as i64;
            let from = seq.saturating_add(1);
            let older = query_listing(
                conn,
                &older_sql,
                filter,
                &[(":seq", &from), (":limit", &rest)],
            )?;
            newer.extend(older);
            newer
        }
    };
    records.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let state = read_state(conn)?;
    let total = match filter.breed {
        None => state.counts.of(filter.category),
        Some(_) => count_listing(conn, filter, None)?,
    };
    let first_seq = records.first().and_then(|r| r.gallery_seq);
    let position = match ListingWindow::count_above(first_seq, window) {
        Some(seq) => count_listing(conn, filter, Some(seq))? + 1,
        None => 1,
    };
    Ok(ListingWindow::at(state, records, position, total))
}

fn read_state(conn: &Connection) -> StoreResult<GalleryState> {
    #[allow(clippy::type_complexity)]
    let ((cats, dogs, seq, last, created), refused): ((i64, i64, i64, Option<i64>, i64), i64) =
        conn.prepare_cached(
            "SELECT cat_count, dog_count, gallery_seq, last_ingest_at, created_at, \
             other_count + rejected_count FROM gallery_state WHERE id = 1",
        )
        .and_then(|mut statement| {
            statement.query_row([], |r| {
                Ok((
                    (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                    r.get(5)?,
                ))
            })
        })
        .map_err(db_error)?;
    Ok(GalleryState {
        total_images: cats + dogs,
        counts: ListingCounts {
            cats,
            dogs,
            refused,
        },
        gallery_seq: seq,
        last_ingest_at: from_micros(last.unwrap_or(created))?,
    })
}

/// Hands out the next listing position, inside the caller's write transaction.
fn next_seq(tx: &rusqlite::Transaction<'_>) -> StoreResult<i64> {
    tx.query_row(
        "UPDATE gallery_state SET gallery_seq = gallery_seq + 1 WHERE id = 1 \
         RETURNING gallery_seq",
        [],
        |r| r.get(0),
    )
    .map_err(db_error)
}

/// The `gallery_state` column counting a category's pictures.
fn counter_of(category: Category) -> &'static str {
    match category {
        Category::Cat => "cat_count",
        Category::Dog => "dog_count",
        Category::Other => "other_count",
    }
}

/// An operator's correction, as [`ImageStore::relabel`] describes it.
fn relabel_image(
    conn: &mut Connection,
    id: ImageId,
    category: Category,
    by: &str,
) -> StoreResult<RelabelOutcome> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let found: Option<(String, Option<String>)> = tx
        .query_row(
            "SELECT status, category FROM images WHERE id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_error)?;
    let Some((status, current)) = found else {
        return Ok(RelabelOutcome::NotFound);
    };
    let current = match record::relabel_from(status, current, category)? {
        Ok(current) => current,
        Err(outcome) => return Ok(outcome),
    };
    let seq = next_seq(&tx)?;
    let (from, to) = (counter_of(current), counter_of(category));
    tx.execute(
        &format!("UPDATE gallery_state SET {from} = {from} - 1, {to} = {to} + 1 WHERE id = 1"),
        [],
    )
    .map_err(db_error)?;
    tx.execute(
        &in_sqlite(sql::RELABEL),
        params![
            id.to_string(),
            category.as_str(),
            by,
            micros(now_micros()),
            seq
        ],
    )
    .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    Ok(RelabelOutcome::Relabelled)
}

/// Finishes a pending (or failed) image, either classified or rejected.
fn finish_image(
    conn: &mut Connection,
    id: ImageId,
    verdict: Option<&Verdict>,
    rejection: Option<&str>,
) -> StoreResult<RecordOutcome> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let status: Option<String> = tx
        .query_row(
            "SELECT status FROM images WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_error)?;
    let Some(status) = status else {
        return Ok(RecordOutcome::NotFound);
    };
    if status == Status::Classified.as_str() || status == Status::Rejected.as_str() {
        return Ok(RecordOutcome::AlreadyDone);
    }
    let now = micros(now_micros());
    match (verdict, rejection) {
        (Some(v), _) => {
            let seq = next_seq(&tx)?;
            let counter = counter_of(v.category);
            tx.execute(
                &format!("UPDATE gallery_state SET {counter} = {counter} + 1 WHERE id = 1"),
                [],
            )
            .map_err(db_error)?;
            let why =
                serde_json::to_string(&v.why).map_err(|e| StoreError::Other(e.to_string()))?;
            tx.execute(
                &in_sqlite(sql::CLASSIFIED),
                params![
                    id.to_string(),
                    v.category.as_str(),
                    f64::from(v.confidence),
                    v.scores.to_string(),
                    v.model_version,
                    v.width,
                    v.height,
                    now,
                    v.thumbnail.object_name.as_str(),
                    v.thumbnail.width,
                    v.thumbnail.height,
                    v.thumbnail.placeholder,
                    seq,
                    v.breed.as_ref().map(|b| b.name.as_str()),
                    v.breed.as_ref().map(|b| f64::from(b.probability)),
                    why,
                ],
            )
            .map_err(db_error)?;
        }
        (None, reason) => {
            let seq = next_seq(&tx)?;
            tx.execute(
                "UPDATE gallery_state SET rejected_count = rejected_count + 1 WHERE id = 1",
                [],
            )
            .map_err(db_error)?;
            tx.execute(
                &in_sqlite(sql::REJECTED),
                params![id.to_string(), reason.unwrap_or("rejected"), now, seq],
            )
            .map_err(db_error)?;
        }
    }
    tx.commit().map_err(db_error)?;
    Ok(RecordOutcome::Recorded)
}

#[async_trait]
impl ImageStore for SqliteStore {
    async fn migrate(&self) -> StoreResult<()> {
        self.with_conn(|conn| {
            // IMMEDIATE takes the write lock first, so two processes migrating
            // the same file apply each step once.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let current: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(db_error)?;
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.execute_batch(sql).map_err(db_error)?;
                tx.pragma_update(None, "user_version", version)
                    .map_err(db_error)?;
            }
            tx.commit().map_err(db_error)
        })
        .await
    }

    fn changes(&self) -> ChangeFeed {
        self.changes.clone()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with_conn(|conn| {
            conn.query_row(sql::PING, [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    async fn insert_pending(&self, image: &NewImage) -> StoreResult<InsertOutcome> {
        let image = image.clone();
        self.with_conn(move |conn| {
            let inserted = conn
                .prepare_cached(&in_sqlite(sql::INSERT_PENDING))
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        image.id.to_string(),
                        image.sha256.as_str(),
                        image.source,
                        image.source_ref,
                        image.object_name.as_str(),
                        image.content_type,
                        image.byte_size,
                        micros(image.created_at),
                    ])
                })
                .map_err(db_error)?;
            if inserted == 1 {
                return Ok(InsertOutcome::Inserted);
            }
            let existing: String = conn
                .query_row(
                    &in_sqlite(sql::ID_BY_DIGEST),
                    [image.sha256.as_str()],
                    |r| r.get(0),
                )
                .map_err(db_error)?;
            Ok(InsertOutcome::Duplicate(
                existing.parse().map_err(|e| corrupt("id", e))?,
            ))
        })
        .await
    }

    async fn get(&self, id: ImageId) -> StoreResult<Option<ImageRecord>> {
        self.with_reader(move |conn| {
            let select = in_sqlite(sql::IMAGE_BY_ID);
            Ok(query_records(conn, &select, [id.to_string()])?.pop())
        })
        .await
    }

    async fn find_by_digest(&self, digest: &Digest) -> StoreResult<Option<ImageRecord>> {
        let digest = digest.to_string();
        self.with_conn(move |conn| {
            let select = in_sqlite(sql::IMAGE_BY_DIGEST);
            Ok(query_records(conn, &select, [digest])?.pop())
        })
        .await
    }

    async fn mark_published(&self, id: ImageId) -> StoreResult<()> {
        self.with_conn(move |conn| {
            conn.execute(
                &in_sqlite(sql::MARK_PUBLISHED),
                params![id.to_string(), micros(now_micros())],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn unpublished(
        &self,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ImageRecord>> {
        self.with_conn(move |conn| {
            let select = in_sqlite(sql::UNPUBLISHED);
            query_records(conn, &select, params![micros(stale_before), limit])
        })
        .await
    }

    async fn give_up_unanswered(
        &self,
        stale_before: DateTime<Utc>,
        max_publishes: u32,
        limit: u32,
    ) -> StoreResult<Vec<ImageId>> {
        self.with_conn(move |conn| {
            let sql = format!(
                "UPDATE images SET status = 'failed', last_error = {GIVE_UP_REASON} \
                 WHERE id IN (SELECT id FROM images \
                 WHERE status = 'pending' AND publishes >= ?2 AND published_at < ?1 \
                 ORDER BY created_at LIMIT ?3) RETURNING id"
            );
            query_ids(
                conn,
                &sql,
                params![micros(stale_before), max_publishes, limit],
            )
        })
        .await
    }

    async fn retry_failed(
        &self,
        now: DateTime<Utc>,
        backoff: Duration,
        max_retries: u32,
        limit: u32,
    ) -> StoreResult<Vec<ImageId>> {
        let backoff = i64::try_from(backoff.as_micros()).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            // `published_at` is the last publish of the round that failed;
            // each round waits twice as long as the one before.
            query_ids(
                conn,
                "UPDATE images SET status = 'pending', publishes = 0, retries = retries + 1 \
                 WHERE id IN (SELECT id FROM images WHERE status = 'failed' \
                 AND retries < ?2 AND published_at < ?1 - ?3 * (1 << retries) \
                 ORDER BY created_at LIMIT ?4) RETURNING id",
                params![micros(now), max_retries.min(30), backoff, limit],
            )
        })
        .await
    }

    async fn retry_images(&self, ids: &[ImageId]) -> StoreResult<Vec<ImageId>> {
        let ids: Vec<String> = ids.iter().map(ImageId::to_string).collect();
        self.with_conn(move |conn| {
            let mut retried = Vec::new();
            for id in &ids {
                retried.extend(query_ids(
                    conn,
                    "UPDATE images SET status = 'pending', publishes = 0 \
                     WHERE id = ?1 AND status = 'failed' RETURNING id",
                    params![id],
                )?);
            }
            Ok(retried)
        })
        .await
    }

    async fn failed_images(&self, limit: u32) -> StoreResult<Vec<ImageRecord>> {
        self.with_reader(move |conn| {
            let select = in_sqlite(sql::FAILED_IMAGES);
            query_records(conn, &select, [i64::from(limit)])
        })
        .await
    }

    async fn existing_ids(&self, ids: &[ImageId]) -> StoreResult<HashSet<ImageId>> {
        let ids: Vec<String> = ids.iter().map(ImageId::to_string).collect();
        self.with_conn(move |conn| {
            let mut found = HashSet::new();
            // SQLite allows a limited number of parameters per statement.
            for chunk in ids.chunks(500) {
                let placeholders = vec!["?"; chunk.len()].join(", ");
                let sql = format!("SELECT id FROM images WHERE id IN ({placeholders})");
                let mut stmt = conn.prepare(&sql).map_err(db_error)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(chunk), |row| {
                        row.get::<_, String>(0)
                    })
                    .map_err(db_error)?;
                for id in rows {
                    found.insert(
                        id.map_err(db_error)?
                            .parse::<ImageId>()
                            .map_err(|e| corrupt("id", e))?,
                    );
                }
            }
            Ok(found)
        })
        .await
    }

    async fn record_verdict(&self, id: ImageId, verdict: &Verdict) -> StoreResult<RecordOutcome> {
        let verdict = verdict.clone();
        self.with_conn(move |conn| finish_image(conn, id, Some(&verdict), None))
            .await
    }

    async fn mark_rejected(&self, id: ImageId, reason: &str) -> StoreResult<RecordOutcome> {
        let reason = reason.to_owned();
        self.with_conn(move |conn| finish_image(conn, id, None, Some(&reason)))
            .await
    }

    async fn record_failure(&self, id: ImageId, error: &str) -> StoreResult<()> {
        let error = error.to_owned();
        self.with_conn(move |conn| {
            conn.execute(
                &in_sqlite(sql::RECORD_FAILURE),
                params![id.to_string(), error],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn listing_window(
        &self,
        filter: &ListingFilter,
        window: Window,
        limit: PageLimit,
    ) -> StoreResult<ListingWindow> {
        let filter = filter.clone();
        self.with_reader(move |conn| {
            // One read transaction: one snapshot for the pictures and the counts.
            let tx = conn.transaction().map_err(db_error)?;
            let window = read_window(&tx, &filter, window, limit)?;
            tx.commit().map_err(db_error)?;
            Ok(window)
        })
        .await
    }

    async fn relabel(
        &self,
        id: ImageId,
        category: Category,
        by: &str,
    ) -> StoreResult<RelabelOutcome> {
        let by = by.to_owned();
        self.with_conn(move |conn| relabel_image(conn, id, category, &by))
            .await
    }

    async fn gallery_state(&self) -> StoreResult<GalleryState> {
        self.with_reader(|conn| read_state(conn)).await
    }

    async fn gallery_listing(
        &self,
        categories: &[Option<Category>],
        limit: PageLimit,
        after_seq: Option<i64>,
    ) -> StoreResult<GalleryListing> {
        let categories = categories.to_vec();
        self.with_reader(move |conn| {
            // One read transaction: one snapshot, even with another process
            // writing to the file.
            let tx = conn.transaction().map_err(db_error)?;
            let state = read_state(&tx)?;
            let pages = categories
                .into_iter()
                .map(|category| read_page(&tx, category, limit, after_seq))
                .collect::<StoreResult<Vec<_>>>()?;
            tx.commit().map_err(db_error)?;
            Ok(GalleryListing { state, pages })
        })
        .await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        self.with_reader(|conn| {
            let state = read_state(conn)?;
            let (cats, dogs, others): (i64, i64, i64) = conn
                .query_row(
                    "SELECT cat_count, dog_count, other_count FROM gallery_state WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(db_error)?;
            let counted = conn
                .prepare_cached(sql::STATUS_COUNTS)
                .and_then(|mut stmt| {
                    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db_error)?;
            let by_status = Stats::by_status(&counted);
            let relabelled: i64 = conn
                .query_row(sql::RELABELLED, [], |r| r.get(0))
                .map_err(db_error)?;
            let mut stmt = conn
                .prepare_cached(sql::SOURCE_STATUSES)
                .map_err(db_error)?;
            let raw = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .map_err(db_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_error)?;
            let sources = raw
                .into_iter()
                .map(|(name, last_error, err_at, ok_at)| {
                    Ok(SourceStatus {
                        name,
                        last_error,
                        last_error_at: err_at.map(from_micros).transpose()?,
                        last_success_at: ok_at.map(from_micros).transpose()?,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Stats::from_counts(
                state,
                relabelled,
                [cats, dogs, others],
                by_status,
                sources,
            ))
        })
        .await
    }

    async fn try_acquire_ingest_lease(&self, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let holder = holder.to_owned();
        self.with_conn(move |conn| {
            let now = micros(now_micros());
            let until = now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
            let changed = conn
                .execute(
                    "UPDATE gallery_state SET lease_holder = ?1, lease_until = ?2 \
                     WHERE id = 1 AND (lease_holder IS NULL OR lease_holder = ?1 \
                     OR lease_until < ?3)",
                    params![holder, until, now],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn finish_ingest(&self, holder: &str, run: &IngestRun) -> StoreResult<()> {
        let holder = holder.to_owned();
        let run = run.clone();
        self.with_conn(move |conn| {
            let now = micros(now_micros());
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let errors = serde_json::to_string(&run.errors).map_err(|e| StoreError::Other(e.to_string()))?;
            tx.execute(
                &in_sqlite(sql::INSERT_INGEST_RUN),
                params![
                    run.started_at.map(micros).unwrap_or(now),
                    now,
                    run.fetched,
                    run.stored,
                    run.duplicates,
                    run.published,
                    errors,
                ],
            )
            .map_err(db_error)?;
            for (source, error) in &run.errors {
                tx.execute(
                    "INSERT INTO source_status (name, last_error, last_error_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET last_error = ?2, last_error_at = ?3",
                    params![source, error, now],
                )
                .map_err(db_error)?;
            }
            for source in &run.succeeded_sources {
                tx.execute(
                    "INSERT INTO source_status (name, last_success_at) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET last_success_at = ?2",
                    params![source, now],
                )
                .map_err(db_error)?;
            }
            tx.execute(
                "UPDATE gallery_state SET last_ingest_at = ?1, \
                 lease_holder = CASE WHEN lease_holder = ?2 THEN NULL ELSE lease_holder END, \
                 lease_until = CASE WHEN lease_holder = ?2 THEN NULL ELSE lease_until END \
                 WHERE id = 1",
                params![now, holder],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)
        })
        .await
    }
}
