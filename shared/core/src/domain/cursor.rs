use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::Category;

/// Where the next page starts: next to the image at gallery position `seq` in
/// the listing of `category` (`None`: cats and dogs together), toward older
/// pictures (`next_cursor`) or newer ones (`prev_cursor`).
///
/// On the wire it is opaque: base64url of `v1.{category}.{seq}.{check}`
/// (older) or `v1.{category}.{seq}.newer.{check}`, where `check` is a short
/// hash of the rest; cursors issued before there were two directions keep
/// their meaning. The check is not a secret; it makes a
/// cursor that was edited by hand (or cut short) fail loudly as a 400 instead
/// of silently starting somewhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub category: Option<Category>,
    pub seq: i64,
    pub toward: Toward,
}

/// Which way a cursor pages from its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toward {
    Older,
    Newer,
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
        let newer = match self.toward {
            Toward::Older => "",
            Toward::Newer => ".newer",
        };
        let body = format!(
            "{VERSION}.{}.{}{newer}",
            scope_name(self.category),
            self.seq
        );
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
        let (Some(VERSION), Some(scope), Some(seq), toward, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(CursorError::Malformed);
        };
        let toward = match toward {
            None => Toward::Older,
            Some("newer") => Toward::Newer,
            Some(_) => return Err(CursorError::Malformed),
        };
        let seq: i64 = seq.parse().map_err(|_| CursorError::Malformed)?;
        if seq < 0 {
            return Err(CursorError::Malformed);
        }
        if scope != scope_name(category) {
            return Err(CursorError::WrongListing {
                issued_for: scope.to_owned(),
            });
        }
        Ok(Self {
            category,
            seq,
            toward,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for category in [
            None,
            Some(Category::Cat),
            Some(Category::Dog),
            Some(Category::Other),
        ] {
            for toward in [Toward::Older, Toward::Newer] {
                let c = Cursor {
                    category,
                    seq: 42,
                    toward,
                };
                assert_eq!(Cursor::decode(&c.encode(), category), Ok(c));
            }
        }
        // A cursor issued before there were two directions pages older.
        let old = URL_SAFE_NO_PAD.encode(format!("v1.cat.42.{}", check("v1.cat.42")));
        assert_eq!(
            Cursor::decode(&old, Some(Category::Cat)).map(|c| c.toward),
            Ok(Toward::Older)
        );
    }

    #[test]
    fn tampering_is_refused() {
        let c = Cursor {
            category: Some(Category::Cat),
            seq: 42,
            toward: Toward::Older,
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
