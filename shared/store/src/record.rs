//! How a row of `images` becomes an [`ImageRecord`], for both stores. Each
//! reads the columns in its own types (SQLite keeps times as microseconds and
//! JSON as text, PostgreSQL has types for them); what comes after, parsing
//! our own spellings back and grouping the columns that only mean something
//! together, is done here once.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{RelabelOutcome, StoreError, StoreResult};
use catdog_core::domain::{BreedGuess, Category, ClassScore, Relabel, Status, Thumbnail};

/// The row was read, but a value in it is not one we write.
pub(crate) fn corrupt(what: &str, e: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// A value we wrote as text (a digest, an object name, a status), read back.
pub(crate) fn parse<T>(text: String, what: &str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse().map_err(|e| corrupt(what, e))
}

/// [`parse`] for a column that may be `NULL`.
pub(crate) fn parse_optional<T>(text: Option<String>, what: &str) -> StoreResult<Option<T>>
where
    T: FromStr,
    T::Err: Display,
{
    text.map(|text| parse(text, what)).transpose()
}

/// `thumbnail_object`, `thumbnail_width`, `thumbnail_height` and
/// `placeholder`: a thumbnail when all four are there.
pub(crate) fn thumbnail(
    object: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    placeholder: Option<String>,
) -> StoreResult<Option<Thumbnail>> {
    Ok(match (object, width, height, placeholder) {
        (Some(object), Some(width), Some(height), Some(placeholder)) => Some(Thumbnail {
            object_name: parse(object, "thumbnail object")?,
            width,
            height,
            placeholder,
        }),
        _ => None,
    })
}

/// `breed` and `breed_probability`.
pub(crate) fn breed(name: Option<String>, probability: Option<f32>) -> Option<BreedGuess> {
    match (name, probability) {
        (Some(name), Some(probability)) => Some(BreedGuess { name, probability }),
        _ => None,
    }
}

/// `why`: no explanation when `NULL`.
pub(crate) fn why(json: Option<serde_json::Value>) -> StoreResult<Vec<ClassScore>> {
    Ok(json
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| corrupt("why", e))?
        .unwrap_or_default())
}

/// `relabelled_by`, `relabelled_at` and `relabelled_from`: a correction
/// when the first two are there.
pub(crate) fn relabel(
    by: Option<String>,
    at: Option<DateTime<Utc>>,
    previous: Option<String>,
) -> StoreResult<Option<Relabel>> {
    Ok(match (by, at) {
        (Some(by), Some(at)) => Some(Relabel {
            by,
            at,
            previous: parse_optional::<Category>(previous, "relabelled_from")?,
        }),
        _ => None,
    })
}

/// The category a picture is to be relabelled from, given its `status` and
/// `category` as read; or, when nothing is to change, what
/// [`crate::ImageStore::relabel`] answers.
pub(crate) fn relabel_from(
    status: String,
    current: Option<String>,
    to: Category,
) -> StoreResult<Result<Category, RelabelOutcome>> {
    let current = match (parse::<Status>(status, "status")?, current) {
        (Status::Classified, Some(current)) => parse::<Category>(current, "category")?,
        (status, _) => return Ok(Err(RelabelOutcome::NotClassified(status))),
    };
    Ok(if current == to {
        Err(RelabelOutcome::Unchanged)
    } else {
        Ok(current)
    })
}
