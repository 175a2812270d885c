//! `/api/v1`: what our own page uses. Keyset pages over gallery positions,
//! so paging while new pictures arrive never repeats or skips one.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::OpenApi;

use super::listing_cache::{ListingKey, RenderedListing};
use super::query::{QueryParams, invalid};
use super::{ApiState, caching, legacy};
use catdog_core::domain::{Category, Cursor, CursorError, ImageId, ImageRecord, PageLimit, Status};
use catdog_server::http::{ApiError, InvalidParam, ResourcePath};
use catdog_store::GalleryState;

/// The page size when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 24;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CatDog Gallery API",
        description = "Cats and dogs, classified. `/images` is the original service's contract; `/api/v1` is the versioned API."
    ),
    paths(legacy::list_images, list_images, get_image, stats),
    components(schemas(
        ImageItem,
        ImagePage,
        StatsResponse,
        CategoryCounts,
        StatusCounts,
        SourceHealth,
        legacy::LegacyImages,
        legacy::LegacyImage,
        Problem,
        InvalidParam,
        Category,
        Status
    ))
)]
pub struct ApiDoc;

/// One picture in the gallery.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ImageItem {
    pub id: String,
    pub status: Status,
    pub category: Option<Category>,
    /// 0 to 1: how sure the classifier is of `category`.
    pub confidence: Option<f32>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub classified_at: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The original picture.
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub thumbnail_width: Option<u32>,
    pub thumbnail_height: Option<u32>,
    /// A ThumbHash (base64) to show, blurred, until the thumbnail loads.
    pub placeholder: Option<String>,
    pub source: String,
    pub source_ref: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImagePage {
    pub items: Vec<ImageItem>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CategoryCounts {
    pub cat: i64,
    pub dog: i64,
    pub other: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub classified: i64,
    pub rejected: i64,
    pub failed: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceHealth {
    pub name: String,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_success_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatsResponse {
    /// Cats and dogs shown in the gallery.
    pub total_images: i64,
    pub by_category: CategoryCounts,
    pub by_status: StatusCounts,
    /// When ingestion last ran (before the first run: when the database was made).
    pub last_ingest_at: String,
    /// When the next ingestion is due.
    pub next_ingest_at: String,
    pub ingest_interval_secs: u64,
    pub sources: Vec<SourceHealth>,
}

/// An `application/problem+json` error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub invalid_params: Option<Vec<InvalidParam>>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl ImageItem {
    pub fn from_record(record: ImageRecord, media_base: &str) -> Self {
        let thumbnail = record.thumbnail.as_ref();
        Self {
            id: record.id.to_string(),
            status: record.status,
            category: record.category,
            confidence: record.confidence,
            created_at: rfc3339(record.created_at),
            classified_at: record.classified_at.map(rfc3339),
            width: record.width,
            height: record.height,
            url: format!("{media_base}/{}", record.object_name),
            thumbnail_url: thumbnail.map(|t| format!("{media_base}/{}", t.object_name)),
            thumbnail_width: thumbnail.map(|t| t.width),
            thumbnail_height: thumbnail.map(|t| t.height),
            placeholder: thumbnail.map(|t| t.placeholder.clone()),
            source: record.source,
            source_ref: record.source_ref,
        }
    }
}

/// A page of the gallery, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/images",
    params(
        ("category" = Option<String>, Query, description = "`cat` or `dog`; absent: both"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 24"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = ImagePage),
        (status = 304, description = "not modified since the ETag given in If-None-Match"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    tag = "v1"
)]
pub async fn list_images(
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw.as_deref());
    let category = match params.get("category") {
        None | Some("") => None,
        Some("cat") => Some(Category::Cat),
        Some("dog") => Some(Category::Dog),
        Some(_) => return Err(invalid("category", "must be cat or dog")),
    };
    let limit = match params.get("limit") {
        None => PageLimit::new(DEFAULT_PAGE_SIZE).unwrap_or(state.config.images_limit),
        Some(raw) => PageLimit::parse(raw).map_err(|reason| invalid("limit", reason))?,
    };
    let cursor = params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|raw| Cursor::decode(raw, category))
        .transpose()
        .map_err(|e| match e {
            CursorError::Malformed | CursorError::WrongListing { .. } => {
                invalid("cursor", e.to_string())
            }
        })?;

    let etag_of = |gallery: &GalleryState| {
        let key = format!(
            "{}|{}|{}",
            category.map_or("all", |c| c.as_str()),
            limit.get(),
            cursor.map_or(-1, |c| c.after_seq)
        );
        caching::etag(gallery, "v1/images", &key)
    };
    // Cursor pages are never kept: few visitors share them.
    let key = cursor.is_none().then_some(ListingKey::FirstPage {
        category,
        limit: limit.get(),
    });
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
        .get_or_render(key, render_page(&state, category, limit, cursor, etag_of))
        .await?;
    Ok(caching::respond(&headers, &listing))
}

/// One page of the listing, as sent.
async fn render_page(
    state: &ApiState,
    category: Option<Category>,
    limit: PageLimit,
    cursor: Option<Cursor>,
    etag_of: impl Fn(&GalleryState) -> HeaderValue,
) -> Result<RenderedListing, ApiError> {
    let listing = state
        .store
        .gallery_listing(&[category], limit, cursor.map(|c| c.after_seq))
        .await?;
    let etag = etag_of(&listing.state);
    let records = listing.pages.into_iter().next().unwrap_or_default();
    let next_cursor = if records.len() == limit.get() as usize {
        records.last().and_then(|r| r.gallery_seq).map(|after_seq| {
            Cursor {
                category,
                after_seq,
            }
            .encode()
        })
    } else {
        None
    };
    let media = &state.config.public_storage_base_url;
    let body = ImagePage {
        items: records
            .into_iter()
            .map(|r| ImageItem::from_record(r, media))
            .collect(),
        next_cursor,
    };
    Ok(RenderedListing {
        etag,
        body: caching::json_body(&body)?,
    })
}

/// One picture by id.
#[utoipa::path(
    get,
    path = "/api/v1/images/{id}",
    params(("id" = String, Path, description = "image id (a UUID)")),
    responses(
        (status = 200, body = ImageItem),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    tag = "v1"
)]
pub async fn get_image(
    State(state): State<ApiState>,
    ResourcePath(raw_id): ResourcePath<String>,
) -> Result<Json<ImageItem>, ApiError> {
    // An id that cannot be ours cannot be stored: 404, same as an unknown one.
    let not_found = || ApiError::NotFound("no image with this id".to_owned());
    let id: ImageId = raw_id.parse().map_err(|_| not_found())?;
    let record = state.store.get(id).await?.ok_or_else(not_found)?;
    Ok(Json(ImageItem::from_record(
        record,
        &state.config.public_storage_base_url,
    )))
}

/// Counts, ingestion times and the health of each source.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    responses((status = 200, body = StatsResponse), (status = 503, body = Problem)),
    tag = "v1"
)]
pub async fn stats(
    State(state): State<ApiState>,
) -> Result<([(HeaderName, &'static str); 1], Json<StatsResponse>), ApiError> {
    let stats = state.store.stats().await?;
    let count_of = |c: Category| {
        stats
            .by_category
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, n)| *n)
    };
    let status_of = |s: Status| {
        stats
            .by_status
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(0, |(_, n)| *n)
    };
    let interval = state.config.ingest_interval;
    let next = stats.state.last_ingest_at
        + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::seconds(60));
    // As fresh as a listing: the same few seconds a CDN or browser may keep it.
    Ok((
        [(header::CACHE_CONTROL, caching::CACHE_CONTROL)],
        Json(StatsResponse {
            total_images: stats.state.total_images,
            by_category: CategoryCounts {
                cat: count_of(Category::Cat),
                dog: count_of(Category::Dog),
                other: count_of(Category::Other),
            },
            by_status: StatusCounts {
                pending: status_of(Status::Pending),
                classified: status_of(Status::Classified),
                rejected: status_of(Status::Rejected),
                failed: status_of(Status::Failed),
            },
            last_ingest_at: rfc3339(stats.state.last_ingest_at),
            next_ingest_at: rfc3339(next),
            ingest_interval_secs: interval.as_secs(),
            sources: stats
                .sources
                .into_iter()
                .map(|s| SourceHealth {
                    name: s.name,
                    last_error: s.last_error,
                    last_error_at: s.last_error_at.map(rfc3339),
                    last_success_at: s.last_success_at.map(rfc3339),
                })
                .collect(),
        }),
    ))
}

pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
