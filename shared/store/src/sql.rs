//! The statements both databases run as they are, written once. They number
//! their parameters as PostgreSQL does (`$1`); SQLite takes them through
//! [`in_sqlite`], since its `?1` numbers parameters the same way. (SQLite
//! reads `$1` too, but as a name, numbered by first appearance.) Statements
//! whose dialects differ stay with their store.

use catdog_core::domain::Category;

/// The columns of `images`, in the order [`crate::record::ImageRow`] is read.
macro_rules! image_columns {
    () => {
        "id, sha256, source, source_ref, object_name, content_type, byte_size, \
         width, height, status, category, confidence, scores, model_version, attempts, \
         last_error, created_at, classified_at, published_at, thumbnail_object, \
         thumbnail_width, thumbnail_height, placeholder, gallery_seq, breed, \
         breed_probability, why, relabelled_by, relabelled_at, relabelled_from"
    };
}

/// The same columns, for the statements a store puts together itself.
pub(crate) const IMAGE_COLUMNS: &str = image_columns!();

/// The `last_error` of an image given up on (see
/// [`crate::ImageStore::give_up_unanswered`]), as an SQL expression both
/// databases evaluate alike: it counts the publishes and keeps the error last
/// recorded.
pub(crate) const GIVE_UP_REASON: &str = "'no verdict after ' || publishes || \
    ' publishes of its message (each one dead-lettered or lost); last error: ' || \
    COALESCE(last_error, 'none recorded')";

/// Answers once the schema is there.
pub(crate) const PING: &str = "SELECT 1 FROM gallery_state";

/// `$1` id, `$2` sha256, `$3` source, `$4` source_ref, `$5` object name,
/// `$6` content type, `$7` byte size, `$8` created at.
pub(crate) const INSERT_PENDING: &str = "INSERT INTO images (id, sha256, source, source_ref, \
    object_name, content_type, byte_size, status, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) \
    ON CONFLICT (sha256) DO NOTHING";

/// `$1` sha256.
pub(crate) const ID_BY_DIGEST: &str = "SELECT id FROM images WHERE sha256 = $1";

/// `$1` id.
pub(crate) const IMAGE_BY_ID: &str =
    concat!("SELECT ", image_columns!(), " FROM images WHERE id = $1");

/// `$1` sha256.
pub(crate) const IMAGE_BY_DIGEST: &str = concat!(
    "SELECT ",
    image_columns!(),
    " FROM images WHERE sha256 = $1"
);

/// `$1` id, `$2` now.
pub(crate) const MARK_PUBLISHED: &str =
    "UPDATE images SET published_at = $2, publishes = publishes + 1 WHERE id = $1";

/// `$1` stale before, `$2` limit.
pub(crate) const UNPUBLISHED: &str = concat!(
    "SELECT ",
    image_columns!(),
    " FROM images WHERE status = 'pending' AND created_at < $1 \
     AND (published_at IS NULL OR published_at < $1) \
     ORDER BY created_at LIMIT $2"
);

/// `$1` limit.
pub(crate) const FAILED_IMAGES: &str = concat!(
    "SELECT ",
    image_columns!(),
    " FROM images WHERE status = 'failed' ORDER BY created_at DESC LIMIT $1"
);

/// `$1` id, `$2` category, `$3` by, `$4` at, `$5` gallery sequence number.
pub(crate) const RELABEL: &str = "UPDATE images SET category = $2, breed = NULL, \
    breed_probability = NULL, relabelled_from = COALESCE(relabelled_from, category), \
    relabelled_by = $3, relabelled_at = $4, gallery_seq = $5 WHERE id = $1";

/// `$1` id, `$2` category, `$3` confidence, `$4` scores, `$5` model version,
/// `$6` width, `$7` height, `$8` classified at, `$9` thumbnail object,
/// `$10` thumbnail width, `$11` thumbnail height, `$12` placeholder,
/// `$13` gallery sequence number, `$14` breed, `$15` breed probability,
/// `$16` why.
pub(crate) const CLASSIFIED: &str = "UPDATE images SET status = 'classified', category = $2, \
    confidence = $3, scores = $4, model_version = $5, width = $6, height = $7, \
    classified_at = $8, thumbnail_object = $9, thumbnail_width = $10, \
    thumbnail_height = $11, placeholder = $12, gallery_seq = $13, \
    attempts = attempts + 1, last_error = NULL, breed = $14, \
    breed_probability = $15, why = $16 WHERE id = $1";

/// `$1` id, `$2` reason, `$3` classified at, `$4` gallery sequence number.
pub(crate) const REJECTED: &str = "UPDATE images SET status = 'rejected', last_error = $2, \
    classified_at = $3, attempts = attempts + 1, gallery_seq = $4 WHERE id = $1";

/// `$1` id, `$2` error.
pub(crate) const RECORD_FAILURE: &str = "UPDATE images SET attempts = attempts + 1, \
    last_error = $2 WHERE id = $1 AND status IN ('pending', 'failed')";

/// How many pictures an operator has relabelled (a partial index holds only
/// them, migration 0008).
pub(crate) const RELABELLED: &str = "SELECT count(*) FROM images WHERE relabelled_by IS NOT NULL";

/// How many pictures each status holds, as migration 0008's triggers keep
/// them: four rows, however many pictures there are.
pub(crate) const STATUS_COUNTS: &str = "SELECT status, n FROM status_counts";

/// Every source's last result, by name.
pub(crate) const SOURCE_STATUSES: &str = "SELECT name, last_error, last_error_at, \
    last_success_at FROM source_status ORDER BY name";

/// `$1` started at, `$2` finished at, `$3` fetched, `$4` stored,
/// `$5` duplicates, `$6` published, `$7` errors.
pub(crate) const INSERT_INGEST_RUN: &str = "INSERT INTO ingest_runs (started_at, finished_at, \
    fetched, stored, duplicates, published, errors) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The condition on `images` that selects a listing's pictures, but for the
/// breed (whose parameter each store binds its own way). Categories are our
/// own enum's spellings, written into the statement.
pub(crate) fn listing_condition(category: Option<Category>) -> &'static str {
    match category {
        None => "gallery_seq IS NOT NULL AND category IN ('cat', 'dog')",
        Some(Category::Cat) => "gallery_seq IS NOT NULL AND category = 'cat'",
        Some(Category::Dog) => "gallery_seq IS NOT NULL AND category = 'dog'",
        Some(Category::Other) => {
            "gallery_seq IS NOT NULL AND (category = 'other' OR status = 'rejected')"
        }
    }
}

/// `sql` as SQLite numbers its parameters: `?1` for `$1`.
#[cfg(feature = "sqlite")]
pub(crate) fn in_sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$` in these statements is a parameter, so [`in_sqlite`]
    /// changes nothing else.
    #[test]
    fn dollars_are_only_parameters() {
        for sql in [
            IMAGE_COLUMNS,
            GIVE_UP_REASON,
            PING,
            INSERT_PENDING,
            ID_BY_DIGEST,
            IMAGE_BY_ID,
            IMAGE_BY_DIGEST,
            MARK_PUBLISHED,
            UNPUBLISHED,
            FAILED_IMAGES,
            RELABEL,
            CLASSIFIED,
            REJECTED,
            RECORD_FAILURE,
            RELABELLED,
            STATUS_COUNTS,
            SOURCE_STATUSES,
            INSERT_INGEST_RUN,
        ] {
            for (at, _) in sql.match_indices('$') {
                assert!(
                    sql[at + 1..].starts_with(|c: char| c.is_ascii_digit()),
                    "{sql}"
                );
            }
        }
    }
}
