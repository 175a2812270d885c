//! `GET /images`: the original FastAPI service's contract, which its page and
//! other clients still call. Field names, the 422 shape and the timestamp
//! format (UTC, no zone suffix: the old client appends `Z` itself) are kept.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ApiState;
use super::caching;
use super::query::QueryParams;
use crate::domain::{Category, ImageRecord, PageLimit};
use crate::http::{ApiError, InvalidParam};
use crate::store::GalleryState;

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

pub fn naive_utc(t: DateTime<Utc>) -> String {
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
    params(("limit" = Option<u32>, Query, description = "1 to 100; default IMAGES_LIMIT (10)")),
    responses(
        (status = 200, body = LegacyImages),
        (status = 422, description = "limit is not an integer from 1 to 100"),
        (status = 503, description = "the database is unavailable"),
    ),
    tag = "original"
)]
pub async fn list_images(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref());
    let limit = match params.get("limit") {
        None => state.config.images_limit,
        Some(raw) => PageLimit::parse(raw).map_err(|reason| {
            ApiError::LegacyValidation(InvalidParam {
                name: "limit".to_owned(),
                reason,
            })
        })?,
    };
    let key = limit.get().to_string();
    let etag_of = |gallery: &GalleryState| caching::etag(gallery, "images", &key);
    if let Some(not_modified) = caching::revalidate_early(&*state.store, &headers, etag_of).await? {
        return Ok(not_modified);
    }
    let listing = state
        .store
        .gallery_listing(&[Some(Category::Cat), Some(Category::Dog)], limit, None)
        .await?;
    let etag = etag_of(&listing.state);
    if let Some(not_modified) = caching::revalidate(&headers, &etag) {
        return Ok(not_modified);
    }
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
    Ok(caching::with_validators(Json(body).into_response(), &etag))
}
