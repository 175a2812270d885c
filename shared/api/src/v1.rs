//! `/api/v1`: what our own page uses. Keyset pages over gallery positions,
//! so paging while new pictures arrive never repeats or skips one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::OpenApi;

use super::listing_cache::{ListingKey, RenderedListing};
use super::query::{QueryParams, invalid};
use super::{ApiState, caching, legacy};
use catdog_core::domain::{
    Category, Cursor, CursorError, ImageId, ImageRecord, PageLimit, Status, Toward,
};
use catdog_server::http::{
    ApiError, InvalidParam, LegacyValidationDetail, LegacyValidationError, ResourcePath,
};
use catdog_store::{GalleryState, ListingFilter, Window};

/// The page size when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 24;

/// The longest `breed` filter accepted (the longest ImageNet name is 30).
pub const MAX_BREED_LEN: usize = 64;

/// What a picture judged neither is refused for, in words.
pub const NOT_A_PET: &str = "not a cat or a dog";

/// A listing's answer when the caller's copy is current.
const NOT_MODIFIED: &str = "not modified since the ETag given in If-None-Match";

/// 503: the database did not answer in time; `Retry-After` says when to
/// come back.
const UNAVAILABLE: &str = "the database is unavailable; come back after Retry-After seconds";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CatDog Gallery API",
        description = "Cats and dogs, classified. `/images` is the original service's contract; `/api/v1` is the versioned API. Public and read-only: no operation needs credentials.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers((url = "/", description = "the origin that serves this document")),
    paths(legacy::list_images, list_images, get_image, stats),
    modifiers(&PublicOperations),
    tags(
        (name = "original", description = "The original service's contract, kept exactly for its clients."),
        (name = "v1", description = "The versioned API the gallery's page uses.")
    ),
    components(schemas(
        ImageItem,
        ImagePage,
        WhyClass,
        StatsResponse,
        CategoryCounts,
        StatusCounts,
        SourceHealth,
        legacy::LegacyImages,
        legacy::LegacyImage,
        LegacyValidationError,
        LegacyValidationDetail,
        Problem,
        InvalidParam,
        Category,
        Status
    ))
)]
pub struct ApiDoc;

/// Every operation here is public: `security: []` says so explicitly (an
/// absent `security` would mean "not stated"), which generated clients and
/// linters read.
struct PublicOperations;

impl utoipa::Modify for PublicOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                operation.security = Some(Vec::new());
            }
        }
    }
}

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
    /// The breed (or cat kind) the picture most resembles, when known.
    pub breed: Option<String>,
    /// 0 to 1: the breed's share among its category's breeds. Below 0.5 it
    /// is a guess among several: show "mixed / unsure", not the breed.
    pub breed_probability: Option<f32>,
    /// The ImageNet classes behind the verdict, most probable first (empty
    /// for pictures classified before they were kept).
    pub why: Vec<WhyClass>,
    /// Why a refused picture is not in the gallery: "not a cat or a dog", or
    /// what was wrong with the file. `null` for cats and dogs.
    pub reason: Option<String>,
    /// An operator corrected this picture's category.
    pub relabelled: bool,
}

/// One ImageNet class the classifier saw, with its probability.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WhyClass {
    pub label: String,
    pub probability: f32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImagePage {
    pub items: Vec<ImageItem>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    pub next_cursor: Option<String>,
    /// Pass as `cursor` for the page of newer pictures before `items[0]`;
    /// `null` when `items[0]` is the newest.
    pub prev_cursor: Option<String>,
    /// 1-based position of `items[0]` in this listing, newest first.
    pub position: i64,
    /// How many pictures this listing holds.
    pub total: i64,
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
    /// Pictures whose category an operator corrected (counted in
    /// `by_category` under the corrected category).
    pub relabelled: i64,
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
            breed: record.breed.as_ref().map(|b| b.name.clone()),
            breed_probability: record.breed.as_ref().map(|b| b.probability),
            why: record
                .why
                .into_iter()
                .map(|w| WhyClass {
                    label: w.label,
                    probability: w.probability,
                })
                .collect(),
            reason: match (record.status, record.category) {
                (Status::Rejected, _) => {
                    Some(record.last_error.unwrap_or_else(|| "rejected".to_owned()))
                }
                (_, Some(Category::Other)) => Some(NOT_A_PET.to_owned()),
                _ => None,
            },
            relabelled: record.relabel.is_some(),
        }
    }
}

/// A page of the gallery, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/images",
    params(
        ("category" = Option<String>, Query, pattern = "^(cat|dog|other)?$", description = "`cat`, `dog` or `other` (the refused pictures); absent or empty: cats and dogs"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "page size, 1 to 100; default 24"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{0,128}$", description = "`next_cursor` or `prev_cursor` of a page of the same listing, as given (opaque; any other value is a 400)"),
        ("around" = Option<String>, Query, pattern = "^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$", description = "a picture's id (lower-case UUID): the page holding it, with newer pictures before it and older after; not with `cursor`"),
        ("breed" = Option<String>, Query, max_length = 64, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description = "only this breed (as the API spells it, any case); at most 64 printable characters"),
    ),
    responses(
        (status = 200, body = ImagePage, description = "a page of the listing, newest first", headers(("ETag" = String, description = "for If-None-Match"), ("Cache-Control" = String)), example = json!({"items": [{"id": "0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "status": "classified", "category": "cat", "confidence": 0.994, "created_at": "2026-12-04T09:30:12.123456Z", "classified_at": "2026-12-04T09:30:13.456789Z", "width": 1024, "height": 768, "url": "/media/originals/0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "thumbnail_url": "/media/thumbs/0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b.jpg", "thumbnail_width": 320, "thumbnail_height": 240, "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "source": "thecatapi", "source_ref": "MTY3ODIyMQ", "breed": "tabby", "breed_probability": 0.81, "why": [{"label": "tabby", "probability": 0.62}, {"label": "tiger cat", "probability": 0.21}, {"label": "Egyptian cat", "probability": 0.09}], "reason": null, "relabelled": false}], "next_cursor": "MS5jYXQuNDEuYzNkNWUx", "prev_cursor": null, "position": 1, "total": 60})),
        (status = 304, description = NOT_MODIFIED),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "a parameter is out of range or malformed (`invalid_params` names it), or `around` and `cursor` were both given"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "`around` names no picture of this listing"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = UNAVAILABLE, headers(("Retry-After" = u32, description = "seconds"))),
    ),
    tag = "v1"
)]
pub async fn list_images(
    State(state): State<ApiState>,
    params: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let category = category_param(params.get("category"))?;
    let limit = limit_param(params.get("limit"), state.config.images_limit)?;
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
    let breed = match params.get("breed") {
        None | Some("") => None,
        Some(b) if b.chars().count() > MAX_BREED_LEN || b.chars().any(char::is_control) => {
            return Err(invalid(
                "breed",
                format!("must be at most {MAX_BREED_LEN} printable characters"),
            ));
        }
        Some(b) => Some(b.to_owned()),
    };
    let around = match params.get("around") {
        None | Some("") => None,
        Some(_) if cursor.is_some() => {
            return Err(invalid("around", "give either around or cursor, not both"));
        }
        Some(raw) => Some(
            raw.parse::<ImageId>()
                .map_err(|_| invalid("around", "must be a picture's id (a UUID)"))?,
        ),
    };
    let filter = ListingFilter { category, breed };

    let etag_of = |gallery: &GalleryState| {
        let key = format!(
            "{}|{}|{}|{}|{}",
            category.map_or("all", |c| c.as_str()),
            limit.get(),
            cursor.map_or_else(|| "-".to_owned(), |c| c.encode()),
            around.map_or_else(|| "-".to_owned(), |id| id.to_string()),
            filter.breed.as_deref().unwrap_or("-").to_lowercase(),
        );
        caching::etag(gallery, "v1/images", &key)
    };
    // Only the first page of a whole listing is kept: few visitors share the others.
    let key = (cursor.is_none() && around.is_none() && filter.breed.is_none()).then_some(
        ListingKey::FirstPage {
            category,
            limit: limit.get(),
        },
    );
    // A page the cache serves answers revalidations from the kept listing;
    // any other from the gallery state alone, without a page query.
    if !state.listings.serves(key)
        && let Some(not_modified) =
            caching::revalidate_early(&*state.store, &headers, etag_of).await?
    {
        return Ok(not_modified);
    }
    let page = match (cursor, around) {
        (None, None) if filter.breed.is_none() => None,
        (Some(cursor), _) => Some(match cursor.toward {
            Toward::Older => Window::OlderThan(cursor.seq),
            Toward::Newer => Window::NewerThan(cursor.seq),
        }),
        (None, Some(id)) => Some(Window::Around(position_of(&state, &filter, id).await?)),
        (None, None) => Some(Window::OlderThan(i64::MAX)),
    };
    let listing = match page {
        None => {
            state
                .listings
                .get_or_render(key, render_first_page(&state, category, limit, etag_of))
                .await?
        }
        Some(window) => render_window(&state, &filter, window, limit, etag_of).await?,
    };
    Ok(caching::respond(&headers, &listing))
}

/// Which listing: cats and dogs when `category` is absent or empty.
pub(crate) fn category_param(raw: Option<&str>) -> Result<Option<Category>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some("cat") => Ok(Some(Category::Cat)),
        Some("dog") => Ok(Some(Category::Dog)),
        Some("other") => Ok(Some(Category::Other)),
        Some(_) => Err(invalid("category", "must be cat, dog or other")),
    }
}

/// The page size: [`DEFAULT_PAGE_SIZE`] when `limit` is absent.
pub(crate) fn limit_param(raw: Option<&str>, fallback: PageLimit) -> Result<PageLimit, ApiError> {
    match raw {
        None => Ok(PageLimit::new(DEFAULT_PAGE_SIZE).unwrap_or(fallback)),
        Some(raw) => PageLimit::parse(raw).map_err(|reason| invalid("limit", reason)),
    }
}

/// The gallery position of picture `id` in the listing `filter` selects;
/// 404 when it is not there.
async fn position_of(
    state: &ApiState,
    filter: &ListingFilter,
    id: ImageId,
) -> Result<i64, ApiError> {
    let record = state.store.get(id).await?;
    let in_listing = |r: &ImageRecord| {
        let listed = match filter.category {
            None => matches!(r.category, Some(Category::Cat | Category::Dog)),
            Some(Category::Other) => {
                r.status == Status::Rejected || r.category == Some(Category::Other)
            }
            Some(c) => r.category == Some(c),
        };
        let breed = match &filter.breed {
            None => true,
            Some(wanted) => r
                .breed
                .as_ref()
                .is_some_and(|b| b.name.to_lowercase() == wanted.to_lowercase()),
        };
        listed && breed
    };
    record
        .filter(in_listing)
        .and_then(|r| r.gallery_seq)
        .ok_or_else(|| ApiError::NotFound("no picture with this id in this listing".to_owned()))
}

fn page_body(
    state: &ApiState,
    category: Option<Category>,
    records: Vec<ImageRecord>,
    position: i64,
    total: i64,
    (has_newer, has_older): (bool, bool),
) -> ImagePage {
    let cursor = |record: Option<&ImageRecord>, toward| {
        record.and_then(|r| r.gallery_seq).map(|seq| {
            Cursor {
                category,
                seq,
                toward,
            }
            .encode()
        })
    };
    let next_cursor = has_older
        .then(|| cursor(records.last(), Toward::Older))
        .flatten();
    let prev_cursor = has_newer
        .then(|| cursor(records.first(), Toward::Newer))
        .flatten();
    let media = &state.config.public_storage_base_url;
    ImagePage {
        items: records
            .into_iter()
            .map(|r| ImageItem::from_record(r, media))
            .collect(),
        next_cursor,
        prev_cursor,
        position,
        total,
    }
}

/// The newest page of a whole listing, as sent.
async fn render_first_page(
    state: &ApiState,
    category: Option<Category>,
    limit: PageLimit,
    etag_of: impl Fn(&GalleryState) -> HeaderValue,
) -> Result<RenderedListing, ApiError> {
    let listing = state
        .store
        .gallery_listing(&[category], limit, None)
        .await?;
    let etag = etag_of(&listing.state);
    let records = listing.pages.into_iter().next().unwrap_or_default();
    let total = listing.state.counts.of(category);
    let has_older = (records.len() as i64) < total;
    let body = page_body(state, category, records, 1, total, (false, has_older));
    Ok(RenderedListing {
        etag,
        body: caching::json_body(&body)?,
    })
}

/// A page of a listing away from its top (a cursor's, one around a picture,
/// or one breed's), as sent.
async fn render_window(
    state: &ApiState,
    filter: &ListingFilter,
    window: Window,
    limit: PageLimit,
    etag_of: impl Fn(&GalleryState) -> HeaderValue,
) -> Result<RenderedListing, ApiError> {
    let found = state.store.listing_window(filter, window, limit).await?;
    let etag = etag_of(&found.state);
    let body = page_body(
        state,
        filter.category,
        found.records,
        found.position,
        found.total,
        (found.has_newer, found.has_older),
    );
    Ok(RenderedListing {
        etag,
        body: caching::json_body(&body)?,
    })
}

/// One picture by id.
#[utoipa::path(
    get,
    path = "/api/v1/images/{id}",
    params(("id" = String, Path, description = "image id (a UUID; anything else is simply not found)")),
    responses(
        (status = 200, body = ImageItem, description = "the picture", example = json!({"id": "0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "status": "classified", "category": "cat", "confidence": 0.994, "created_at": "2026-12-04T09:30:12.123456Z", "classified_at": "2026-12-04T09:30:13.456789Z", "width": 1024, "height": 768, "url": "/media/originals/0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", "thumbnail_url": "/media/thumbs/0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b.jpg", "thumbnail_width": 320, "thumbnail_height": 240, "placeholder": "1QcSHQRnh493V4dIh4eXh1h4kJUI", "source": "thecatapi", "source_ref": "MTY3ODIyMQ", "breed": "tabby", "breed_probability": 0.81, "why": [{"label": "tabby", "probability": 0.62}, {"label": "tiger cat", "probability": 0.21}, {"label": "Egyptian cat", "probability": 0.09}], "reason": null, "relabelled": false})),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no picture with this id"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = UNAVAILABLE, headers(("Retry-After" = u32, description = "seconds"))),
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
    responses(
        (status = 200, body = StatsResponse, description = "the gallery's counts and the sources' health (at most `LISTING_CACHE_MS` old, 1 s by default)", headers(("ETag" = String, description = "for If-None-Match"), ("Cache-Control" = String)), example = json!({"total_images": 120, "by_category": {"cat": 60, "dog": 60, "other": 9}, "by_status": {"pending": 2, "classified": 129, "rejected": 1, "failed": 0}, "last_ingest_at": "2026-12-04T09:30:00.000000Z", "next_ingest_at": "2026-12-04T09:31:00.000000Z", "ingest_interval_secs": 60, "sources": [{"name": "thecatapi", "last_error": null, "last_error_at": null, "last_success_at": "2026-12-04T09:30:00.000000Z"}], "relabelled": 1})),
        (status = 304, description = NOT_MODIFIED),
        (status = 503, body = Problem, content_type = "application/problem+json", description = UNAVAILABLE, headers(("Retry-After" = u32, description = "seconds"))),
    ),
    tag = "v1"
)]
pub async fn stats(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rendered = state
        .stats
        .get_or_render(Some(ListingKey::Stats), render_stats(&state))
        .await?;
    Ok(caching::respond(&headers, &rendered))
}

/// The stats as sent. They count the whole table, so they are kept (see
/// `ApiState::stats`); the ETag is the body's digest.
async fn render_stats(state: &ApiState) -> Result<RenderedListing, ApiError> {
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
    let body = caching::json_body(&StatsResponse {
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
        relabelled: stats.relabelled,
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
    })?;
    // As fresh as a listing: the same few seconds a CDN or browser may keep it.
    Ok(RenderedListing {
        etag: caching::etag_of_body(&body),
        body,
    })
}

pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
