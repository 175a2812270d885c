//! The gallery's vocabulary. Values are parsed once at the edge and are valid
//! from then on: holding an `ImageId` or a `PageLimit` means it was checked.

mod cursor;
mod image;
mod picture_format;

pub use cursor::{Cursor, CursorError, Toward};
pub use image::{
    BREED_SURE, BreedGuess, Category, ClassScore, Digest, ImageId, ImageRecord, NewImage,
    ObjectName, PageLimit, Relabel, Status, Thumbnail, Verdict,
};
pub use picture_format::PictureFormat;

/// Timestamps are kept to the microsecond, the precision both PostgreSQL and
/// our SQLite encoding store, so a value reads back exactly as written.
pub fn now_micros() -> chrono::DateTime<chrono::Utc> {
    truncate_to_micros(chrono::Utc::now())
}

pub fn truncate_to_micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
