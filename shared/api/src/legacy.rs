//! `GET /images`: the original FastAPI service's contract, which its page and
//! other clients still call. Field names, the 422 shape and the timestamp
//! format (UTC, no zone suffix: the old client appends `Z` itself) are kept.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::Serialize;

use super::ApiState;
use super::caching;
use super::listing_cache::{ListingKey, RenderedListing};
use super::query::QueryParams;
use catdog_core::domain::{Category, ImageRecord, PageLimit};
use catdog_server::http::{ApiError, InvalidParam, LegacyValidationError};
use catdog_store::GalleryState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct LegacyImage {
    pub id: String,
    /// UTC, ISO 8601 without a zone suffix, e.g. `2026-11-23T10:15:30.123456`.
    pub created_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LegacyImages {
    pub cat_images: Vec<LegacyImage>,
    pub dog_images: Vec<LegacyImage>,
    pub total_images: i64,
    pub last_retrieve_at: String,
}

/// The original's timestamp form: `2026-11-23T10:15:30.123456`.
///
/// For the years 0–9999 this is chrono's RFC 3339 writer without its `Z`,
/// which writes the digits directly; a strftime pattern is re-parsed on every
/// call, and the listing formats one timestamp per item (it showed in the
/// listing's profile). Other years keep the pattern's output.
pub fn naive_utc(t: DateTime<Utc>) -> String {
    if (0..=9999).contains(&t.year()) {
        let mut written = t.to_rfc3339_opts(SecondsFormat::Micros, true);
        if written.pop() == Some('Z') {
            return written;
        }
    }
    t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn legacy_item(record: ImageRecord) -> LegacyImage {
    LegacyImage {
        id: record.id.to_string(),
        created_at: naive_utc(record.created_at),
    }
}

/// The newest `limit` cats and the newest `limit` dogs.
#[utoipa::path(
    get,
    path = "/images",
    operation_id = "list_original_images",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "how many cats and how many dogs, 1 to 100; default IMAGES_LIMIT (10)")),
    responses(
        (status = 200, body = LegacyImages, description = "the newest cats and dogs", headers(("ETag" = String, description = "for If-None-Match"), ("Cache-Control" = String)), example = json!({"cat_images": [{"id": "0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "created_at": "2026-12-04T09:30:12.123456"}], "dog_images": [{"id": "0193a1b2-8d5e-7f60-9bac-1d2e3f4a5b6c", "created_at": "2026-12-04T09:29:58.654321"}], "total_images": 120, "last_retrieve_at": "2026-12-04T09:30:00.000000"})),
        (status = 304, description = "not modified since the ETag given in If-None-Match"),
        (status = 422, body = LegacyValidationError, description = "limit is not an integer from 1 to 100: the original service's (FastAPI's) validation error, kept for its clients", example = json!({"detail": [{"type": "value_error", "loc": ["query", "limit"], "msg": "Input should be between 1 and 100"}]})),
        (status = 503, body = crate::v1::Problem, content_type = "application/problem+json", description = "the database is unavailable; come back after Retry-After seconds", headers(("Retry-After" = u32, description = "seconds"))),
    ),
    tag = "original"
)]
pub async fn list_images(
    State(state): State<ApiState>,
    params: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = limit_param(params.get("limit"), state.config.images_limit)?;
    let etag_of =
        |gallery: &GalleryState| caching::etag(gallery, "images", &limit.get().to_string());
    let key = Some(ListingKey::Original { limit: limit.get() });
    // A page the cache serves answers revalidations from the kept listing;
    // any other from the gallery state alone, without a page query.
    if !state.listings.serves(key)
        && let Some(not_modified) =
            caching::revalidate_early(&*state.store, &headers, etag_of).await?
    {
        return Ok(not_modified);
    }
    let listing = state
        .listings
        .get_or_render(key, render(&state, limit, etag_of))
        .await?;
    Ok(caching::respond(&headers, &listing))
}

/// The page size asked for: `default` when `limit` is absent, a 422 in the
/// original's shape when it is not an integer from 1 to 100.
pub(crate) fn limit_param(raw: Option<&str>, default: PageLimit) -> Result<PageLimit, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => PageLimit::parse(raw).map_err(|reason| {
            ApiError::LegacyValidation(InvalidParam {
                name: "limit".to_owned(),
                reason,
            })
        }),
    }
}

/// The newest `limit` cats and dogs, as sent.
async fn render(
    state: &ApiState,
    limit: PageLimit,
    etag_of: impl Fn(&GalleryState) -> HeaderValue,
) -> Result<RenderedListing, ApiError> {
    let listing = state
        .store
        .gallery_listing(&[Some(Category::Cat), Some(Category::Dog)], limit, None)
        .await?;
    let mut pages = listing.pages.into_iter();
    let mut items = || -> Vec<LegacyImage> {
        pages
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(legacy_item)
            .collect()
    };
    let body = LegacyImages {
        cat_images: items(),
        dog_images: items(),
        total_images: listing.state.total_images,
        last_retrieve_at: naive_utc(listing.state.last_ingest_at),
    };
    Ok(RenderedListing {
        etag: etag_of(&listing.state),
        body: caching::json_body(&body)?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn by_pattern(t: DateTime<Utc>) -> String {
        t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }

    #[test]
    fn naive_utc_matches_the_original_pattern() {
        let mut cases = vec![
            Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 30).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 6, 1, 12, 0, 0).unwrap(),
        ];
        // A leap second, and sub-microsecond digits that must be cut, not rounded.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_999_999_999)
            .unwrap();
        cases.push(Utc.from_utc_datetime(&leap));
        let mut nanos: u32 = 7;
        for day in 0..2000 {
            nanos = nanos.wrapping_mul(1_103_515_245).wrapping_add(12_345) % 1_000_000_000;
            let t = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::days(day * 3)
                + chrono::Duration::seconds(day * 7919)
                + chrono::Duration::nanoseconds(i64::from(nanos));
            cases.push(t);
        }
        for t in cases {
            assert_eq!(naive_utc(t), by_pattern(t), "{t:?}");
        }
    }
}
