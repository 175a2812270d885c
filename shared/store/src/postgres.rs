//! PostgreSQL implementation (tokio-postgres behind a deadpool pool): the
//! production store, on Cloud SQL.
//!
//! Every call is bounded in time: getting a connection (waiting for a free
//! one or opening a new one) takes at most `ConnectOptions::timeout`, and so
//! does the work done with it; the server also cancels any statement that
//! runs longer (`statement_timeout`) and ends any transaction whose client
//! has been silent that long (`idle_in_transaction_session_timeout`), so a
//! caller that has gone keeps no locks. A database that is down or hangs is
//! therefore a quick `StoreError::Unavailable`, and since the pool opens
//! connections lazily and throws broken ones away, it recovers by itself when
//! the database comes back.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};
use uuid::Uuid;

use super::{
    ChangeFeed, ConnectOptions, GalleryListing, GalleryState, ImageStore, IngestRun, InsertOutcome,
    ListingCounts, ListingFilter, ListingWindow, RecordOutcome, RelabelOutcome, SourceStatus,
    Stats, StoreError, StoreResult, Window,
};
use crate::record::{self, corrupt, parse, parse_optional};
use crate::sql::{self, GIVE_UP_REASON, IMAGE_COLUMNS};
use catdog_core::domain::{
    Category, Digest, ImageId, ImageRecord, NewImage, PageLimit, Status, Verdict, now_micros,
};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres/0001_initial.sql")),
    (
        2,
        include_str!("migrations/postgres/0002_publish_count.sql"),
    ),
    (
        3,
        include_str!("migrations/postgres/0003_workload_roles.sql"),
    ),
    (
        4,
        include_str!("migrations/postgres/0004_breeds_and_relabels.sql"),
    ),
    (
        6,
        include_str!("migrations/postgres/0006_gallery_notify.sql"),
    ),
    (
        7,
        include_str!("migrations/postgres/0007_failure_retries.sql"),
    ),
    (
        8,
        include_str!("migrations/postgres/0008_status_counts.sql"),
    ),
];

/// The advisory lock every migrating process takes, so that several instances
/// starting at once apply each migration exactly once. Any constant works as
/// long as it never changes; this one spells "catdogmg".
const MIGRATION_LOCK: i64 = 0x6361_7464_6f67_6d67;

/// Migrations may wait for another instance's migrations and may rewrite
/// tables, so they get far longer than an ordinary call.
const MIGRATION_TIMEOUT_FACTOR: u32 = 30;
const MIN_MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest ingestion lease we store; longer requests are cut to it so the
/// interval arithmetic in SQL cannot overflow.
const MAX_LEASE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pub struct PostgresStore {
    pool: Pool,
    timeout: Duration,
    /// What the change listener connects with (see [`ImageStore::changes`]).
    config: tokio_postgres::Config,
    changes: OnceLock<ChangeFeed>,
}

impl PostgresStore {
    /// Builds the pool; no connection is opened until the first call, so this
    /// succeeds even while the database is down.
    pub fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        let config = client_config(url, options.timeout)?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A connection that broke is noticed as closed; one that
                // hangs is thrown away when its call times out (see
                // `settle`). So no extra round trip on every checkout.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| StoreError::Other(format!("cannot build the connection pool: {e}")))?;
        Ok(Self {
            pool,
            timeout: options.timeout,
            config,
            changes: OnceLock::new(),
        })
    }

    /// A pooled connection, or `Unavailable` within the timeout.
    async fn client(&self) -> StoreResult<Object> {
        match tokio::time::timeout(self.timeout, self.pool.get()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(pool_error(e)),
            Err(_) => Err(self.too_slow("waiting for a connection")),
        }
    }

    /// Runs `work` on a pooled connection, the whole call bounded as the
    /// module describes (see [`settle`](Self::settle) for what a timeout does
    /// to the connection).
    async fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&mut Object) -> Work<T>,
    ) -> StoreResult<T> {
        let mut client = self.client().await?;
        let outcome = tokio::time::timeout(self.timeout, work(&mut client)).await;
        self.settle(client, outcome)
    }

    fn too_slow(&self, doing: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "no answer within {} ms while {doing}",
            self.timeout.as_millis()
        ))
    }

    /// Turns the bounded result of work done on `client` into the call's
    /// result. A connection whose work timed out may still be waiting for an
    /// answer that will never come, so it is taken out of the pool rather
    /// than handed to the next caller.
    fn settle<T>(
        &self,
        client: Object,
        outcome: Result<Result<T, Failure>, tokio::time::error::Elapsed>,
    ) -> StoreResult<T> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Store(e))) => Err(e),
            Ok(Err(Failure::Pg(e))) => Err(classify(&e)),
            Err(_) => {
                drop(Object::take(client));
                Err(self.too_slow("running a query"))
            }
        }
    }
}

/// Parses a `postgres://` URL, including the Cloud SQL socket form
/// `postgres://USER:PASS@/DB?host=/cloudsql/PROJECT:REGION:INSTANCE` (a
/// `host` starting with `/` is a socket directory), and adds our time bounds.
fn client_config(url: &str, timeout: Duration) -> StoreResult<tokio_postgres::Config> {
    // tokio-postgres's parse errors name the part that is wrong but never
    // echo the URL, so the password cannot leak through them.
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::BadUrl(error_chain(&e)))?;
    if config.get_hosts().is_empty() {
        return Err(StoreError::BadUrl(
            "no host: expected postgres://USER:PASS@HOST:PORT/DB or \
             postgres://USER:PASS@/DB?host=/cloudsql/PROJECT:REGION:INSTANCE"
                .to_owned(),
        ));
    }
    config.connect_timeout(timeout);
    // The server gives up when we would, instead of holding locks for a
    // caller that has left: on a statement that runs (or waits for a lock)
    // longer than our timeout, and on a transaction whose client has sent
    // nothing for that long. Without the second, an instance frozen or cut
    // off between a verdict's UPDATE and its COMMIT keeps the gallery's
    // counter rows locked until TCP notices, which can take hours, and every
    // other verdict and every ingested picture waits behind it.
    let millis = timeout.as_millis().max(1);
    let bounds =
        format!("-c statement_timeout={millis} -c idle_in_transaction_session_timeout={millis}");
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {bounds}"),
        _ => bounds,
    };
    config.options(&options);
    if config.get_application_name().is_none() {
        config.application_name("catdog");
    }
    Ok(config)
}

/// Why work on a connection stopped: the driver's error (classified later)
/// or one of ours, such as a row we cannot read.
enum Failure {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

type Work<T> = Result<T, Failure>;

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        // Every backend error the pool reports comes from opening a
        // connection: refused, unreachable, authentication, no such
        // database. None of them is the caller's fault; all mean "later".
        PoolError::Backend(e) => {
            StoreError::Unavailable(format!("cannot connect: {}", describe(&e)))
        }
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("timed out getting a connection ({kind:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".to_owned()),
        PoolError::PostCreateHook(e) => StoreError::Unavailable(e.to_string()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Other("the connection pool has no runtime".to_owned())
        }
    }
}

/// The server's own words when it sent an error, else the driver's chain.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error_chain(e),
    }
}

/// Sorts a driver error into what the caller should do about it.
fn classify(e: &tokio_postgres::Error) -> StoreError {
    let text = describe(e);
    if let Some(code) = e.code() {
        let code = code.code();
        // 08: connection exception; 53: out of resources (too many
        // connections); 57: operator intervention (shutdown, statement
        // timeout); 40001/40P01: serialization failure and deadlock, which
        // succeed when tried again; 55P03: lock not available.
        let transient = code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || matches!(code, "40001" | "40P01" | "55P03");
        return if transient {
            StoreError::Unavailable(text)
        } else {
            StoreError::Other(text)
        };
    }
    // Without a server error, it is either the connection (closed, I/O,
    // timeout) or a value we could not convert.
    let top = e.to_string();
    if top.starts_with("error deserializing") {
        StoreError::Corrupt(text)
    } else if top.starts_with("error serializing") || top.starts_with("expected ") {
        StoreError::Other(text)
    } else {
        StoreError::Unavailable(text)
    }
}

fn to_i32(what: &str, n: u32) -> StoreResult<i32> {
    i32::try_from(n).map_err(|_| StoreError::Other(format!("{what} {n} is too large to store")))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    what: &str,
) -> StoreResult<T> {
    row.try_get(index)
        .map_err(|e| corrupt(what, error_chain(&e)))
}

/// Reads a row selected with [`sql::IMAGE_COLUMNS`].
fn record(row: &Row) -> StoreResult<ImageRecord> {
    let dimension = |index: usize, what: &str| -> StoreResult<Option<u32>> {
        get::<Option<i32>>(row, index, what)?
            .map(|n| u32::try_from(n).map_err(|e| corrupt(what, e)))
            .transpose()
    };
    Ok(ImageRecord {
        id: ImageId::from_uuid(get::<Uuid>(row, 0, "id")?),
        sha256: parse(get(row, 1, "sha256")?, "sha256")?,
        source: get(row, 2, "source")?,
        source_ref: get(row, 3, "source_ref")?,
        object_name: parse(get(row, 4, "object name")?, "object name")?,
        content_type: get(row, 5, "content type")?,
        byte_size: get(row, 6, "byte size")?,
        width: dimension(7, "width")?,
        height: dimension(8, "height")?,
        status: parse(get(row, 9, "status")?, "status")?,
        category: parse_optional(get(row, 10, "category")?, "category")?,
        confidence: get(row, 11, "confidence")?,
        scores: get(row, 12, "scores")?,
        model_version: get(row, 13, "model version")?,
        attempts: get(row, 14, "attempts")?,
        last_error: get(row, 15, "last error")?,
        created_at: get(row, 16, "created_at")?,
        classified_at: get(row, 17, "classified_at")?,
        published_at: get(row, 18, "published_at")?,
        thumbnail: record::thumbnail(
            get(row, 19, "thumbnail object")?,
            dimension(20, "thumbnail width")?,
            dimension(21, "thumbnail height")?,
            get(row, 22, "placeholder")?,
        )?,
        gallery_seq: get(row, 23, "gallery_seq")?,
        breed: record::breed(get(row, 24, "breed")?, get(row, 25, "breed probability")?),
        why: record::why(get(row, 26, "why")?)?,
        relabel: record::relabel(
            get(row, 27, "relabelled_by")?,
            get(row, 28, "relabelled_at")?,
            get(row, 29, "relabelled_from")?,
        )?,
    })
}

/// The condition on `images` that selects a listing's pictures; the breed,
/// when filtering by one, is the parameter `${breed_param}`.
fn listing_condition(filter: &ListingFilter, breed_param: usize) -> String {
    let listing = sql::listing_condition(filter.category);
    let breed = if filter.breed.is_some() {
        format!(" AND lower(breed) = lower(${breed_param})")
    } else {
        String::new()
    };
    format!("{listing}{breed}")
}

/// A gallery page; `$1` is the position to continue after. The category
/// (our own enum's spelling) and the limit (1 to 100) are written into the
/// statement: with `LIMIT $2`, PostgreSQL cannot cost a generic plan and
/// plans every execution anew, which cost more than running it.
fn page_sql(category: Option<Category>, limit: PageLimit, columns: &str) -> String {
    let filter = ListingFilter {
        category,
        breed: None,
    };
    format!(
        "SELECT {columns} FROM images WHERE {} AND gallery_seq < $1 \
         ORDER BY gallery_seq DESC LIMIT {}",
        listing_condition(&filter, 0),
        limit.get()
    )
}

/// One statement for a whole listing: the state row, left-joined to every
/// page (so it comes back even when the pages are empty). Each row holds
/// [`IMAGE_COLUMNS`], then its page's index (`NULL`: no picture), then the state.
fn listing_sql(categories: &[Option<Category>], limit: PageLimit) -> String {
    let pages = categories
        .iter()
        .enumerate()
        .map(|(index, category)| {
            let columns = format!("{IMAGE_COLUMNS}, {index} AS page");
            format!("({})", page_sql(*category, limit, &columns))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "SELECT p.*, s.* FROM (SELECT {STATE_COLUMNS} \
         FROM gallery_state WHERE id = 1) AS s LEFT JOIN ({pages}) AS p ON true \
         ORDER BY p.page, p.gallery_seq DESC"
    )
}

/// Where the page index and the state sit in a [`listing_sql`] row.
const LISTING_PAGE: usize = 30;
const LISTING_STATE: usize = 31;

/// The state row's columns, as [`state_from`] reads them.
const STATE_COLUMNS: &str = "cat_count AS state_cats, dog_count AS state_dogs, \
    other_count + rejected_count AS state_refused, gallery_seq AS state_seq, \
    COALESCE(last_ingest_at, created_at) AS state_at";

/// Reads [`STATE_COLUMNS`] starting at column `at`.
fn state_from(row: &Row, at: usize) -> StoreResult<GalleryState> {
    let counts = ListingCounts {
        cats: get(row, at, "cat count")?,
        dogs: get(row, at + 1, "dog count")?,
        refused: get(row, at + 2, "refused count")?,
    };
    Ok(GalleryState {
        total_images: counts.cats + counts.dogs,
        counts,
        gallery_seq: get(row, at + 3, "gallery_seq")?,
        last_ingest_at: get(row, at + 4, "last_ingest_at")?,
    })
}

async fn query_records(
    client: &Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Work<Vec<ImageRecord>> {
    let statement = client.prepare_cached(sql).await?;
    let rows = client.query(&statement, params).await?;
    Ok(rows.iter().map(record).collect::<StoreResult<Vec<_>>>()?)
}

/// The ids an `UPDATE … RETURNING id` changed.
async fn query_ids(
    client: &Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Work<Vec<ImageId>> {
    let statement = client.prepare_cached(sql).await?;
    let rows = client.query(&statement, params).await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        ids.push(ImageId::from_uuid(row.try_get(0)?));
    }
    Ok(ids)
}

/// A read-only transaction on one snapshot, so that what it reads agrees
/// with itself.
async fn read_snapshot(client: &mut Object) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

async fn read_state(tx: &Transaction<'_>) -> Work<(GalleryState, [i64; 3])> {
    let statement = tx
        .prepare_cached(&format!(
            "SELECT {STATE_COLUMNS}, other_count FROM gallery_state WHERE id = 1"
        ))
        .await?;
    let row = tx.query_one(&statement, &[]).await?;
    let state = state_from(&row, 0)?;
    let others: i64 = row.try_get(5)?;
    let counts = state.counts;
    Ok((state, [counts.cats, counts.dogs, others]))
}

/// A window of a listing, as [`ImageStore::listing_window`] describes it.
async fn read_window(
    tx: &Transaction<'_>,
    filter: &ListingFilter,
    window: Window,
    limit: PageLimit,
) -> Work<ListingWindow> {
    // $1: a position, $2: a limit, $3: the breed (when filtering by one).
    let condition = listing_condition(filter, 3);
    let older_sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {condition} AND gallery_seq < $1 \
         ORDER BY gallery_seq DESC LIMIT $2"
    );
    let newer_sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {condition} AND gallery_seq > $1 \
         ORDER BY gallery_seq ASC LIMIT $2"
    );
    // $1: a position, $2: the breed.
    let count_sql = format!(
        "SELECT count(*) FROM images WHERE {} AND gallery_seq > $1",
        listing_condition(filter, 2)
    );
    let breed = filter.breed.as_deref();
    let read = |sql: String, seq: i64, n: i64| async move {
        let statement = tx.prepare_cached(&sql).await?;
        let rows = match breed {
            Some(breed) => tx.query(&statement, &[&seq, &n, &breed]).await?,
            None => tx.query(&statement, &[&seq, &n]).await?,
        };
        Ok::<_, Failure>(rows.iter().map(record).collect::<StoreResult<Vec<_>>>()?)
    };
    let limit = i64::from(limit.get());
    let mut records = match window {
        Window::OlderThan(seq) => read(older_sql, seq, limit).await?,
        Window::NewerThan(seq) => {
            let mut newer = read(newer_sql, seq, limit).await?;
            newer.reverse();
            newer
        }
        Window::Around(seq) => {
            let mut newer = read(newer_sql, seq, (limit - 1) / 2).await?;
            newer.reverse();
            let rest = limit - newer.len() as i64;
            newer.extend(read(older_sql, seq.saturating_add(1), rest).await?);
            newer
        }
    };
    records.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let (state, _) = read_state(tx).await?;
    let count_above = |seq: i64| {
        let sql = count_sql.clone();
        async move {
            let statement = tx.prepare_cached(&sql).await?;
            let row = match breed {
                Some(breed) => tx.query_one(&statement, &[&seq, &breed]).await?,
                None => tx.query_one(&statement, &[&seq]).await?,
            };
            Ok::<i64, Failure>(row.try_get(0)?)
        }
    };
    let total = match filter.breed {
        None => state.counts.of(filter.category),
        Some(_) => count_above(-1).await?,
    };
    let first_seq = records.first().and_then(|r| r.gallery_seq);
    let position = match ListingWindow::count_above(first_seq, window) {
        Some(seq) => count_above(seq).await? + 1,
        None => 1,
    };
    Ok(ListingWindow::at(state, records, position, total))
}

/// An operator's correction, as [`ImageStore::relabel`] describes it.
async fn relabel_image(
    client: &mut Object,
    id: ImageId,
    category: Category,
    by: &str,
) -> Work<RelabelOutcome> {
    let tx = client.transaction().await?;
    let lock = tx
        .prepare_cached("SELECT status, category FROM images WHERE id = $1 FOR UPDATE")
        .await?;
    let Some(row) = tx.query_opt(&lock, &[&id.as_uuid()]).await? else {
        return Ok(RelabelOutcome::NotFound);
    };
    let current = match record::relabel_from(row.try_get(0)?, row.try_get(1)?, category)? {
        Ok(current) => current,
        Err(outcome) => return Ok(outcome),
    };
    let (from, to) = (counter_of(current), counter_of(category));
    // Our own column names, never input.
    let counters = tx
        .prepare_cached(&format!(
            "UPDATE gallery_state SET gallery_seq = gallery_seq + 1, \
             {from} = {from} - 1, {to} = {to} + 1 WHERE id = 1 RETURNING gallery_seq"
        ))
        .await?;
    let seq: i64 = tx.query_one(&counters, &[]).await?.try_get(0)?;
    let update = tx.prepare_cached(sql::RELABEL).await?;
    tx.execute(
        &update,
        &[&id.as_uuid(), &category.as_str(), &by, &now_micros(), &seq],
    )
    .await?;
    tx.commit().await?;
    Ok(RelabelOutcome::Relabelled)
}

/// The `gallery_state` column counting a category's pictures.
fn counter_of(category: Category) -> &'static str {
    match category {
        Category::Cat => "cat_count",
        Category::Dog => "dog_count",
        Category::Other => "other_count",
    }
}

/// What finishes a pending (or failed) image.
enum Finish<'a> {
    Classified(&'a Verdict),
    Rejected(&'a str),
}

/// Finishes an image in one transaction. The image's row lock makes
/// concurrent deliveries of the same message wait for each other (the later
/// ones then see it done); the `gallery_state` row lock, held until commit,
/// hands out gallery positions in commit order, so a reader never sees a
/// position before every smaller one is visible.
async fn finish_image(client: &mut Object, id: ImageId, how: Finish<'_>) -> Work<RecordOutcome> {
    let tx = client.transaction().await?;
    let lock = tx
        .prepare_cached("SELECT status FROM images WHERE id = $1 FOR UPDATE")
        .await?;
    let Some(row) = tx.query_opt(&lock, &[&id.as_uuid()]).await? else {
        return Ok(RecordOutcome::NotFound);
    };
    let status: String = row.try_get(0)?;
    if status == Status::Classified.as_str() || status == Status::Rejected.as_str() {
        return Ok(RecordOutcome::AlreadyDone);
    }
    let now = now_micros();
    match how {
        Finish::Classified(verdict) => {
            // Static statements per category, so each is prepared once.
            let counter = match verdict.category {
                Category::Cat => {
                    "UPDATE gallery_state SET gallery_seq = gallery_seq + 1, \
                     cat_count = cat_count + 1 WHERE id = 1 RETURNING gallery_seq"
                }
                Category::Dog => {
                    "UPDATE gallery_state SET gallery_seq = gallery_seq + 1, \
                     dog_count = dog_count + 1 WHERE id = 1 RETURNING gallery_seq"
                }
                Category::Other => {
                    "UPDATE gallery_state SET gallery_seq = gallery_seq + 1, \
                     other_count = other_count + 1 WHERE id = 1 RETURNING gallery_seq"
                }
            };
            let counter = tx.prepare_cached(counter).await?;
            let seq: i64 = tx.query_one(&counter, &[]).await?.try_get(0)?;
            let why =
                serde_json::to_value(&verdict.why).map_err(|e| StoreError::Other(e.to_string()))?;
            let update = tx.prepare_cached(sql::CLASSIFIED).await?;
            let thumbnail = &verdict.thumbnail;
            tx.execute(
                &update,
                &[
                    &id.as_uuid(),
                    &verdict.category.as_str(),
                    &verdict.confidence,
                    &verdict.scores,
                    &verdict.model_version,
                    &to_i32("width", verdict.width)?,
                    &to_i32("height", verdict.height)?,
                    &now,
                    &thumbnail.object_name.as_str(),
                    &to_i32("thumbnail width", thumbnail.width)?,
                    &to_i32("thumbnail height", thumbnail.height)?,
                    &thumbnail.placeholder,
                    &seq,
                    &verdict.breed.as_ref().map(|b| b.name.as_str()),
                    &verdict.breed.as_ref().map(|b| b.probability),
                    &why,
                ],
            )
            .await?;
        }
        Finish::Rejected(reason) => {
            let counter = tx
                .prepare_cached(
                    "UPDATE gallery_state SET gallery_seq = gallery_seq + 1, \
                     rejected_count = rejected_count + 1 WHERE id = 1 RETURNING gallery_seq",
                )
                .await?;
            let seq: i64 = tx.query_one(&counter, &[]).await?.try_get(0)?;
            let update = tx.prepare_cached(sql::REJECTED).await?;
            tx.execute(&update, &[&id.as_uuid(), &reason, &now, &seq])
                .await?;
        }
    }
    tx.commit().await?;
    Ok(RecordOutcome::Recorded)
}

#[async_trait]
impl ImageStore for PostgresStore {
    async fn migrate(&self) -> StoreResult<()> {
        let limit = (self.timeout * MIGRATION_TIMEOUT_FACTOR).max(MIN_MIGRATION_TIMEOUT);
        let mut client = self.client().await?;
        let outcome = tokio::time::timeout(limit, async {
            let tx = client.transaction().await?;
            tx.batch_execute(&format!(
                "SET LOCAL statement_timeout = {}",
                limit.as_millis()
            ))
            .await?;
            // Held until commit: a second instance waits here and then
            // finds everything applied.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version bigint PRIMARY KEY, \
                 applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
            )
            .await?;
            let applied: Vec<i64> = tx
                .query("SELECT version FROM schema_migrations", &[])
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await;
        match outcome {
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::Unavailable(format!(
                    "migrations did not finish within {} s",
                    limit.as_secs()
                )))
            }
            other => self.settle(client, other),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        // Like SQLite's: not ready until the schema is there either.
        self.with_client(async |client| {
            let statement = client.prepare_cached(sql::PING).await?;
            client.query(&statement, &[]).await?;
            Ok(())
        })
        .await
        .map_err(|e| match e {
            StoreError::Other(text) | StoreError::Corrupt(text) => StoreError::Unavailable(text),
            e => e,
        })
    }

    fn changes(&self) -> ChangeFeed {
        self.changes
            .get_or_init(|| {
                let feed = ChangeFeed::new(false);
                super::pg_listen::spawn(
                    self.config.clone(),
                    self.pool.clone(),
                    self.timeout,
                    feed.clone(),
                );
                feed
            })
            .clone()
    }

    async fn insert_pending(&self, image: &NewImage) -> StoreResult<InsertOutcome> {
        self.with_client(async |client| {
            let insert = client.prepare_cached(sql::INSERT_PENDING).await?;
            let inserted = client
                .execute(
                    &insert,
                    &[
                        &image.id.as_uuid(),
                        &image.sha256.as_str(),
                        &image.source,
                        &image.source_ref,
                        &image.object_name.as_str(),
                        &image.content_type,
                        &image.byte_size,
                        &image.created_at,
                    ],
                )
                .await?;
            if inserted == 1 {
                return Ok(InsertOutcome::Inserted);
            }
            // ON CONFLICT waited for the other insert to commit, so the
            // existing row is visible to this next statement.
            let existing = client.prepare_cached(sql::ID_BY_DIGEST).await?;
            let id: Uuid = client
                .query_one(&existing, &[&image.sha256.as_str()])
                .await?
                .try_get(0)?;
            Ok(InsertOutcome::Duplicate(ImageId::from_uuid(id)))
        })
        .await
    }

    async fn get(&self, id: ImageId) -> StoreResult<Option<ImageRecord>> {
        self.with_client(async |client| {
            Ok(query_records(client, sql::IMAGE_BY_ID, &[&id.as_uuid()])
                .await?
                .pop())
        })
        .await
    }

    async fn find_by_digest(&self, digest: &Digest) -> StoreResult<Option<ImageRecord>> {
        self.with_client(async |client| {
            Ok(
                query_records(client, sql::IMAGE_BY_DIGEST, &[&digest.as_str()])
                    .await?
                    .pop(),
            )
        })
        .await
    }

    async fn mark_published(&self, id: ImageId) -> StoreResult<()> {
        self.with_client(async |client| {
            let update = client.prepare_cached(sql::MARK_PUBLISHED).await?;
            client
                .execute(&update, &[&id.as_uuid(), &now_micros()])
                .await?;
            Ok(())
        })
        .await
    }

    async fn unpublished(
        &self,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ImageRecord>> {
        self.with_client(async |client| {
            query_records(
                client,
                sql::UNPUBLISHED,
                &[&stale_before, &i64::from(limit)],
            )
            .await
        })
        .await
    }

    async fn give_up_unanswered(
        &self,
        stale_before: DateTime<Utc>,
        max_publishes: u32,
        limit: u32,
    ) -> StoreResult<Vec<ImageId>> {
        // The status is checked again by the UPDATE itself: a verdict that
        // commits meanwhile wins, and the image is not given up.
        let sql = format!(
            "UPDATE images SET status = 'failed', last_error = {GIVE_UP_REASON} \
             WHERE status = 'pending' AND id IN (SELECT id FROM images \
             WHERE status = 'pending' AND publishes >= $2 AND published_at < $1 \
             ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id"
        );
        let max_publishes = to_i32("publish count", max_publishes)?;
        let params: [&(dyn ToSql + Sync); 3] = [&stale_before, &max_publishes, &i64::from(limit)];
        self.with_client(async |client| query_ids(client, &sql, &params).await)
            .await
    }

    async fn retry_failed(
        &self,
        now: DateTime<Utc>,
        backoff: Duration,
        max_retries: u32,
        limit: u32,
    ) -> StoreResult<Vec<ImageId>> {
        // `published_at` is the last publish of the round that failed; each
        // round waits twice as long as the one before.
        let sql = "UPDATE images SET status = 'pending', publishes = 0, retries = retries + 1 \
             WHERE status = 'failed' AND id IN (SELECT id FROM images \
             WHERE status = 'failed' AND retries < $2 \
             AND published_at < $1::timestamptz - make_interval(secs => $3::float8 * power(2, retries)) \
             ORDER BY created_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id";
        let max_retries = to_i32("retry count", max_retries.min(30))?;
        let backoff = backoff.as_secs_f64();
        let params: [&(dyn ToSql + Sync); 4] = [&now, &max_retries, &backoff, &i64::from(limit)];
        self.with_client(async |client| query_ids(client, sql, &params).await)
            .await
    }

    async fn retry_images(&self, ids: &[ImageId]) -> StoreResult<Vec<ImageId>> {
        let uuids: Vec<uuid::Uuid> = ids.iter().map(ImageId::as_uuid).collect();
        let sql = "UPDATE images SET status = 'pending', publishes = 0 \
                   WHERE id = ANY($1) AND status = 'failed' RETURNING id";
        self.with_client(async |client| query_ids(client, sql, &[&uuids]).await)
            .await
    }

    async fn failed_images(&self, limit: u32) -> StoreResult<Vec<ImageRecord>> {
        self.with_client(async |client| {
            query_records(client, sql::FAILED_IMAGES, &[&i64::from(limit)]).await
        })
        .await
    }

    async fn existing_ids(&self, ids: &[ImageId]) -> StoreResult<HashSet<ImageId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let uuids: Vec<Uuid> = ids.iter().map(ImageId::as_uuid).collect();
        self.with_client(async |client| {
            let select = client
                .prepare_cached("SELECT id FROM images WHERE id = ANY($1)")
                .await?;
            let mut found = HashSet::new();
            for row in client.query(&select, &[&uuids]).await? {
                found.insert(ImageId::from_uuid(row.try_get(0)?));
            }
            Ok(found)
        })
        .await
    }

    async fn record_verdict(&self, id: ImageId, verdict: &Verdict) -> StoreResult<RecordOutcome> {
        self.with_client(async |client| finish_image(client, id, Finish::Classified(verdict)).await)
            .await
    }

    async fn mark_rejected(&self, id: ImageId, reason: &str) -> StoreResult<RecordOutcome> {
        self.with_client(async |client| finish_image(client, id, Finish::Rejected(reason)).await)
            .await
    }

    async fn record_failure(&self, id: ImageId, error: &str) -> StoreResult<()> {
        self.with_client(async |client| {
            let update = client.prepare_cached(sql::RECORD_FAILURE).await?;
            client.execute(&update, &[&id.as_uuid(), &error]).await?;
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
        self.with_client(async |client| {
            // One snapshot for the pictures, their position and the counts.
            let tx = read_snapshot(client).await?;
            let window = read_window(&tx, filter, window, limit).await?;
            tx.commit().await?;
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
        self.with_client(async |client| relabel_image(client, id, category, by).await)
            .await
    }

    async fn gallery_listing(
        &self,
        categories: &[Option<Category>],
        limit: PageLimit,
        after_seq: Option<i64>,
    ) -> StoreResult<GalleryListing> {
        if categories.is_empty() {
            let state = self.gallery_state().await?;
            return Ok(GalleryListing {
                state,
                pages: Vec::new(),
            });
        }
        let after = after_seq.unwrap_or(i64::MAX);
        let sql = listing_sql(categories, limit);
        self.with_client(async |client| {
            let statement = client.prepare_cached(&sql).await?;
            let rows = client.query(&statement, &[&after]).await?;
            let first = rows.first().ok_or_else(|| {
                StoreError::Corrupt("the gallery_state row is missing".to_owned())
            })?;
            let state = state_from(first, LISTING_STATE)?;
            let mut pages = vec![Vec::new(); categories.len()];
            for row in &rows {
                let Some(index) = get::<Option<i32>>(row, LISTING_PAGE, "page")? else {
                    continue;
                };
                let page = usize::try_from(index)
                    .ok()
                    .and_then(|index| pages.get_mut(index))
                    .ok_or_else(|| corrupt("page", index))?;
                page.push(record(row)?);
            }
            Ok(GalleryListing { state, pages })
        })
        .await
    }

    async fn gallery_state(&self) -> StoreResult<GalleryState> {
        self.with_client(async |client| {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {STATE_COLUMNS} FROM gallery_state WHERE id = 1"
                ))
                .await?;
            let row = client.query_one(&statement, &[]).await?;
            Ok(state_from(&row, 0)?)
        })
        .await
    }

    async fn stats(&self) -> StoreResult<Stats> {
        self.with_client(async |client| {
            // One snapshot, so the counts agree with each other.
            let tx = read_snapshot(client).await?;
            let (state, [cats, dogs, others]) = read_state(&tx).await?;
            let by_status_sql = tx.prepare_cached(sql::STATUS_COUNTS).await?;
            let mut counted: Vec<(String, i64)> = Vec::new();
            for row in tx.query(&by_status_sql, &[]).await? {
                counted.push((row.try_get(0)?, row.try_get(1)?));
            }
            let by_status = Stats::by_status(&counted);
            let relabelled_sql = tx.prepare_cached(sql::RELABELLED).await?;
            let relabelled: i64 = tx.query_one(&relabelled_sql, &[]).await?.try_get(0)?;
            let sources_sql = tx.prepare_cached(sql::SOURCE_STATUSES).await?;
            let mut sources = Vec::new();
            for row in tx.query(&sources_sql, &[]).await? {
                sources.push(SourceStatus {
                    name: row.try_get(0)?,
                    last_error: row.try_get(1)?,
                    last_error_at: row.try_get(2)?,
                    last_success_at: row.try_get(3)?,
                });
            }
            tx.commit().await?;
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
        let ttl_micros = i64::try_from(ttl.min(MAX_LEASE).as_micros()).unwrap_or(i64::MAX);
        self.with_client(async |client| {
            // The database's clock, not ours: instances whose clocks differ
            // still agree on when a lease has run out.
            let update = client
                .prepare_cached(
                    "UPDATE gallery_state SET lease_holder = $1, \
                     lease_until = clock_timestamp() + $2::bigint * interval '1 microsecond' \
                     WHERE id = 1 AND (lease_holder IS NULL OR lease_holder = $1 \
                     OR lease_until < clock_timestamp())",
                )
                .await?;
            let changed = client.execute(&update, &[&holder, &ttl_micros]).await?;
            Ok(changed == 1)
        })
        .await
    }

    async fn finish_ingest(&self, holder: &str, run: &IngestRun) -> StoreResult<()> {
        let errors =
            serde_json::to_value(&run.errors).map_err(|e| StoreError::Other(e.to_string()))?;
        self.with_client(async |client| {
            let now = now_micros();
            let tx = client.transaction().await?;
            let insert_run = tx.prepare_cached(sql::INSERT_INGEST_RUN).await?;
            tx.execute(
                &insert_run,
                &[
                    &run.started_at.unwrap_or(now),
                    &now,
                    &run.fetched,
                    &run.stored,
                    &run.duplicates,
                    &run.published,
                    &errors,
                ],
            )
            .await?;
            let source_failed = tx
                .prepare_cached(
                    "INSERT INTO source_status (name, last_error, last_error_at) \
                     VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
                     SET last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at",
                )
                .await?;
            for (source, error) in &run.errors {
                tx.execute(&source_failed, &[source, error, &now]).await?;
            }
            let source_answered = tx
                .prepare_cached(
                    "INSERT INTO source_status (name, last_success_at) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET last_success_at = EXCLUDED.last_success_at",
                )
                .await?;
            for source in &run.succeeded_sources {
                tx.execute(&source_answered, &[source, &now]).await?;
            }
            // GREATEST: two instances finishing close together (with clocks
            // a little apart) never move the time backwards.
            let release = tx
                .prepare_cached(
                    "UPDATE gallery_state SET \
                     last_ingest_at = GREATEST(COALESCE(last_ingest_at, $1), $1), \
                     lease_holder = CASE WHEN lease_holder = $2 THEN NULL ELSE lease_holder END, \
                     lease_until = CASE WHEN lease_holder = $2 THEN NULL ELSE lease_until END \
                     WHERE id = 1",
                )
                .await?;
            tx.execute(&release, &[&now, &holder]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use tokio_postgres::config::Host;

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(1500);

    #[test]
    fn cloud_sql_socket_urls_name_the_socket_directory() {
        let config = client_config(
            "postgres://catdog:s3cret@/gallery?host=/cloudsql/my-project:europe-west1:catdog",
            TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            config.get_hosts(),
            [Host::Unix(
                "/cloudsql/my-project:europe-west1:catdog".into()
            )]
        );
        assert_eq!(config.get_dbname(), Some("gallery"));
        assert_eq!(config.get_user(), Some("catdog"));
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        // No port given: the socket file is .s.PGSQL.5432 in that directory.
        assert!(config.get_ports().iter().all(|&p| p == 5432));
    }

    #[test]
    fn tcp_urls_keep_host_port_and_database() {
        let config = client_config("postgresql://u:p@db.internal:6543/catdog", TIMEOUT).unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("db.internal".into())]);
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!(config.get_dbname(), Some("catdog"));
    }

    #[test]
    fn our_time_bounds_are_added_to_the_callers_options() {
        let config = client_config("postgres://u@h/d", TIMEOUT).unwrap();
        assert_eq!(config.get_connect_timeout(), Some(&TIMEOUT));
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=1500 -c idle_in_transaction_session_timeout=1500")
        );
        assert_eq!(config.get_application_name(), Some("catdog"));

        let config =
            client_config("postgres://u@h/d?options=-c%20search_path%3Dx", TIMEOUT).unwrap();
        assert_eq!(
            config.get_options(),
            Some(
                "-c search_path=x -c statement_timeout=1500 \
                 -c idle_in_transaction_session_timeout=1500"
            )
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_password() {
        for url in [
            "postgres://u:hunter2@h:notaport/d",
            "postgres://u:hunter2@/d",
            "postgres://u:hunter2@h/d?nosuchparam=1",
        ] {
            match client_config(url, TIMEOUT) {
                Err(StoreError::BadUrl(text)) => assert!(!text.contains("hunter2"), "{text}"),
                other => panic!("{url}: expected BadUrl, got {:?}", other.map(|_| ())),
            }
        }
    }
}
