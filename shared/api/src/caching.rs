//! Conditional requests. Every listing is a function of the gallery state
//! (its highest position, its size, the last ingestion) and the query, so
//! that is what the ETag hashes: a browser or CDN revalidating gets a 304
//! without a page query, and a new picture changes the tag at once.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::listing_cache::RenderedListing;
use catdog_server::http::ApiError;
use catdog_store::{GalleryState, ImageStore, StoreResult};

/// Short enough that no one sees a page older than a few seconds, long
/// enough for a CDN to absorb bursts; revalidation is then a cheap 304.
pub const CACHE_CONTROL: &str = "public, max-age=5, must-revalidate";

pub fn etag(state: &GalleryState, route: &str, key: &str) -> HeaderValue {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    hasher.update(state.gallery_seq.to_le_bytes());
    hasher.update(state.total_images.to_le_bytes());
    hasher.update(state.last_ingest_at.timestamp_micros().to_le_bytes());
    let tag = format!("\"{}\"", hex::encode(&hasher.finalize()[..12]));
    // Quotes around hex digits are always a valid header value; the
    // fallback is never taken.
    HeaderValue::try_from(tag).unwrap_or(HeaderValue::from_static("\"\""))
}

/// A strong validator for an answer that is not a function of the gallery
/// state alone (the stats): its body's digest.
pub fn etag_of_body(body: &[u8]) -> HeaderValue {
    let tag = format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]));
    HeaderValue::try_from(tag).unwrap_or(HeaderValue::from_static("\"\""))
}

pub fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == etag || tag == b"*" || tag.strip_prefix(b"W/") == Some(etag))
}

/// A 304 for a client that already has this version, else `None`.
pub fn revalidate(headers: &HeaderMap, etag: &HeaderValue) -> Option<Response> {
    not_modified(headers, etag)
        .then(|| with_validators(StatusCode::NOT_MODIFIED.into_response(), etag))
}

/// For a client that revalidates (sends `If-None-Match`): a 304 when its
/// copy is current, decided from the gallery state alone, without a page
/// query. Other requests read the state with their pages in one go instead
/// (see `ImageStore::gallery_listing`), so this costs them nothing.
pub async fn revalidate_early(
    store: &dyn ImageStore,
    headers: &HeaderMap,
    etag_of: impl Fn(&GalleryState) -> HeaderValue,
) -> StoreResult<Option<Response>> {
    if !headers.contains_key(header::IF_NONE_MATCH) {
        return Ok(None);
    }
    let state = store.gallery_state().await?;
    Ok(revalidate(headers, &etag_of(&state)))
}

/// Adds the ETag and Cache-Control headers.
pub fn with_validators(mut response: Response, etag: &HeaderValue) -> Response {
    response.headers_mut().insert(header::ETAG, etag.clone());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

/// A listing's JSON body, ready to send or to keep.
pub fn json_body(value: &impl Serialize) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("serialising a listing: {e}")))
}

/// The answer for a rendered listing: a 304 when the client has this
/// version, else the body; either way with its validators.
pub fn respond(headers: &HeaderMap, listing: &RenderedListing) -> Response {
    if let Some(not_modified) = revalidate(headers, &listing.etag) {
        return not_modified;
    }
    let response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        listing.body.clone(),
    )
        .into_response();
    with_validators(response, &listing.etag)
}
