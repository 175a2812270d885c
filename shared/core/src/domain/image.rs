use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// What every id kept as its text shares: `as_str`, `Display` as that
/// text, and serde's way in and out through `String` (in: checked by the
/// type's `FromStr`, so a stored or sent value is never taken unchecked).
macro_rules! text_newtype {
    ($name:ident, $invalid:ty) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $invalid;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An image's identity: a UUID v7, so ids sort roughly by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageId(Uuid);

impl ImageId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }
}

impl Default for ImageId {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not an image id: expected a UUID like 0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7a")]
pub struct InvalidImageId;

impl FromStr for ImageId {
    type Err = InvalidImageId;

    /// Only the canonical lower-case hyphenated form is accepted, so one image
    /// has exactly one spelling (and one object name).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = Uuid::try_parse(s).map_err(|_| InvalidImageId)?;
        if id.hyphenated().to_string() != s {
            return Err(InvalidImageId);
        }
        Ok(Self(id))
    }
}

impl TryFrom<String> for ImageId {
    type Error = InvalidImageId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ImageId> for String {
    fn from(id: ImageId) -> String {
        id.to_string()
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What the classifier decided a picture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Cat,
    Dog,
    Other,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Cat, Category::Dog, Category::Other];

    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Cat => "cat",
            Category::Dog => "dog",
            Category::Other => "other",
        }
    }

    /// Cats and dogs are shown in the gallery; everything else is kept but hidden.
    pub fn is_shown(&self) -> bool {
        matches!(self, Category::Cat | Category::Dog)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown category {0:?}: expected cat, dog or other")]
pub struct InvalidCategory(pub String);

impl FromStr for Category {
    type Err = InvalidCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cat" => Ok(Category::Cat),
            "dog" => Ok(Category::Dog),
            "other" => Ok(Category::Other),
            _ => Err(InvalidCategory(s.to_owned())),
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an image is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stored and waiting for classification.
    Pending,
    /// Classified; shown in the gallery when it is a cat or a dog.
    Classified,
    /// The picture could not be decoded; kept with the reason, never retried.
    Rejected,
    /// Classification kept failing for reasons of our own (see `last_error`).
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Classified,
        Status::Rejected,
        Status::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Classified => "classified",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// The SHA-256 of a picture's bytes, lower-case hex. Unique in the store: the
/// same picture is never kept twice.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a SHA-256 digest: expected 64 lower-case hex digits")]
pub struct InvalidDigest;

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidDigest)
        }
    }
}

text_newtype!(Digest, InvalidDigest);

/// The name of an object in the bucket or folder. Only made by us, from an
/// image id, so it can never climb out of the configured storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectName(String);

impl ObjectName {
    pub fn original(id: ImageId) -> Self {
        Self(id.to_string())
    }

    pub fn thumbnail(id: ImageId) -> Self {
        Self(format!("thumbs/{id}.jpg"))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not an object name of ours: {0:?}")]
pub struct InvalidObjectName(pub String);

impl FromStr for ObjectName {
    type Err = InvalidObjectName;

    /// Accepts exactly the two shapes we make: `{id}` and `thumbs/{id}.jpg`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id_part = s
            .strip_prefix("thumbs/")
            .and_then(|rest| rest.strip_suffix(".jpg"))
            .unwrap_or(s);
        match id_part.parse::<ImageId>() {
            Ok(_) => Ok(Self(s.to_owned())),
            Err(_) => Err(InvalidObjectName(s.to_owned())),
        }
    }
}

text_newtype!(ObjectName, InvalidObjectName);

/// How many images one page holds: 1 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const MAX: u32 = 100;

    pub fn new(n: u32) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(Self(n))
    }

    /// Parses a query value; the error says what was wrong in words a caller
    /// can act on.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n: i64 = raw
            .trim()
            .parse()
            .map_err(|_| "Input should be a valid integer".to_owned())?;
        u32::try_from(n)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| format!("Input should be between 1 and {}", Self::MAX))
    }

    pub fn get(&self) -> u32 {
        self.0
    }
}

/// A picture as ingestion hands it to the store: stored, not yet classified.
#[derive(Clone, Debug)]
pub struct NewImage {
    pub id: ImageId,
    pub sha256: Digest,
    pub source: String,
    pub source_ref: Option<String>,
    pub object_name: ObjectName,
    pub content_type: String,
    pub byte_size: i64,
    pub created_at: DateTime<Utc>,
}

/// What the web page needs to lay a picture out before it loads.
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    pub object_name: ObjectName,
    pub width: u32,
    pub height: u32,
    /// A ThumbHash, base64-encoded.
    pub placeholder: String,
}

/// The classifier's decision about one picture, with what was learnt while
/// decoding it.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub category: Category,
    pub confidence: f32,
    /// Per-class scores, e.g. `{"cat": 0.97, "dog": 0.02, "other": 0.01}`.
    pub scores: serde_json::Value,
    pub model_version: String,
    pub width: u32,
    pub height: u32,
    pub thumbnail: Thumbnail,
    /// The breed (or cat kind) the picture most resembles; `None` for "other".
    pub breed: Option<BreedGuess>,
    /// The ImageNet classes behind the verdict, most probable first (three).
    pub why: Vec<ClassScore>,
}

/// Below this probability a breed is a guess among several ("mixed /
/// unsure"), never shown as a fact.
pub const BREED_SURE: f32 = 0.5;

/// The breed (or cat kind) a cat or dog most resembles, and how likely it is
/// among the breeds of its category.
#[derive(Clone, Debug, PartialEq)]
pub struct BreedGuess {
    pub name: String,
    pub probability: f32,
}

/// One ImageNet class and its probability: part of why a picture got its verdict.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassScore {
    pub label: String,
    pub probability: f32,
}

/// An operator's correction of a verdict. It outlives redelivery and
/// re-classification: a relabelled picture keeps the operator's category.
#[derive(Clone, Debug, PartialEq)]
pub struct Relabel {
    /// Who corrected it: an account's e-mail, or `local:USER` in local mode.
    pub by: String,
    pub at: DateTime<Utc>,
    /// The category before the correction (the classifier's, for the first one).
    pub previous: Option<Category>,
}

/// One stored image with everything the store knows about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    pub id: ImageId,
    pub sha256: Digest,
    pub source: String,
    pub source_ref: Option<String>,
    pub object_name: ObjectName,
    pub content_type: String,
    pub byte_size: i64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub status: Status,
    pub category: Option<Category>,
    pub confidence: Option<f32>,
    pub scores: Option<serde_json::Value>,
    pub model_version: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub classified_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    pub thumbnail: Option<Thumbnail>,
    /// Position in its listing: set when a picture is classified, rejected or
    /// relabelled, and increasing in commit order, so keyset pages never
    /// skip or repeat.
    pub gallery_seq: Option<i64>,
    pub breed: Option<BreedGuess>,
    pub why: Vec<ClassScore>,
    pub relabel: Option<Relabel>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_have_one_spelling() {
        let id = ImageId::new();
        assert_eq!(id.to_string().parse::<ImageId>().unwrap(), id);
        assert!(id.to_string().to_uppercase().parse::<ImageId>().is_err());
        assert!("../etc/passwd".parse::<ImageId>().is_err());
        assert!(
            id.as_uuid()
                .simple()
                .to_string()
                .parse::<ImageId>()
                .is_err()
        );
    }

    #[test]
    fn object_names_are_only_ours() {
        let id = ImageId::new();
        assert_eq!(
            ObjectName::original(id)
                .as_str()
                .parse::<ObjectName>()
                .unwrap(),
            ObjectName::original(id)
        );
        assert!(
            ObjectName::thumbnail(id)
                .as_str()
                .parse::<ObjectName>()
                .is_ok()
        );
        for bad in [
            "../x",
            "thumbs/../../x.jpg",
            "",
            "/abs",
            "thumbs/x.jpg",
            "%2e%2e/x",
        ] {
            assert!(bad.parse::<ObjectName>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn page_limits_are_one_to_a_hundred() {
        assert_eq!(PageLimit::parse("1").unwrap().get(), 1);
        assert_eq!(PageLimit::parse("100").unwrap().get(), 100);
        for bad in ["0", "101", "-1", "abc", "", "1.5", "99999999999999999999"] {
            assert!(PageLimit::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn digests_are_sha256_hex() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!("xyz".parse::<Digest>().is_err());
        assert!(d.as_str().to_uppercase().parse::<Digest>().is_err());
    }
}
