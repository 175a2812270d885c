use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::Category;

/// Where the next page starts: after the image at gallery position `after_seq`
/// in the listing of `category` (`None`: cats and dogs together).
///
/// On the wire it is opaque: base64url of `v1.{category}.{seq}.{check}`, where
/// `check` is a short hash of the rest. The check is not a secret; it makes a
/// cursor that was edited by hand (or cut short) fail loudly as a 400 instead
/// of silently starting somewhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub category: Option<Category>,
    pub after_seq: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("the cursor is not one this API issued")]
    Malformed,
    #[error("the cursor belongs to another listing (category {issued_for})")]
    WrongListing { issued_for: String },
}

const VERSION: &str = "v1";

fn scope_name(category: Option<Category>) -> &'static str {
    category.map_or("all", |c| c.as_str())
}

fn check(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..6])
}

impl Cursor {
    pub fn encode(&self) -> String {
        let body = format!("{VERSION}.{}.{}", scope_name(self.category), self.after_seq);
        let token = format!("{body}.{}", check(&body));
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Decodes a cursor issued for the listing of `category`.
    pub fn decode(raw: &str, category: Option<Category>) -> Result<Self, CursorError> {
        if raw.len() > 128 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| CursorError::Malformed)?;
        let token = std::str::from_utf8(&bytes).map_err(|_| CursorError::Malformed)?;
        let (body, sum) = token.rsplit_once('.').ok_or(CursorError::Malformed)?;
        if check(body) != sum {
            return Err(CursorError::Malformed);
        }
        let mut parts = body.split('.');
        let (Some(VERSION), Some(scope), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        let after_seq: i64 = seq.parse().map_err(|_| CursorError::Malformed)?;
        if after_seq < 0 {
            return Err(CursorError::Malformed);
        }
        if scope != scope_name(category) {
            return Err(CursorError::WrongListing {
                issued_for: scope.to_owned(),
            });
        }
        Ok(Self {
            category,
            after_seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for category in [None, Some(Category::Cat), Some(Category::Dog)] {
            let c = Cursor {
                category,
                after_seq: 42,
            };
            assert_eq!(Cursor::decode(&c.encode(), category), Ok(c));
        }
    }

    #[test]
    fn tampering_is_refused() {
        let c = Cursor {
            category: Some(Category::Cat),
            after_seq: 42,
        }
        .encode();
        let forged = URL_SAFE_NO_PAD.encode("v1.cat.41.000000000000");
        assert_eq!(
            Cursor::decode(&forged, Some(Category::Cat)),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            Cursor::decode(&c[..c.len() - 1], Some(Category::Cat)),
            Err(CursorError::Malformed)
        );
        assert_eq!(
            Cursor::decode("!!!", Some(Category::Cat)),
            Err(CursorError::Malformed)
        );
        assert_eq!(Cursor::decode("", None), Err(CursorError::Malformed));
        assert!(matches!(
            Cursor::decode(&c, Some(Category::Dog)),
            Err(CursorError::WrongListing { .. })
        ));
    }
}
