//! The gallery's first pages answered in front of the router.
//!
//! Almost every request list-images gets is `GET /images` or a first page
//! of `GET /api/v1/images`, and with the exact listing cache almost every
//! one of those is already rendered. This lane answers them from the cache
//! (200, or 304 when the client has that version) without routing; anything
//! else (a page that is not kept or no longer fresh, a cursor, a breed, an
//! invalid parameter, HEAD) goes to the router, which renders, keeps and
//! answers it as before. Answers match the router's byte for byte but for
//! the order of the headers: `shared/tests/listing_fast_lane.rs` checks it.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;

use super::listing_cache::{ListingKey, RenderedListing};
use super::{ApiState, caching, legacy, v1};
use catdog_server::http::{FastLane, LaneRequest};

/// Answers kept first pages; see the module's documentation.
pub struct CachedListingLane {
    state: ApiState,
}

impl CachedListingLane {
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }

    /// The cache key of a request the router would answer from the cache,
    /// `None` for any other.
    fn key(&self, path: &str, query: &str) -> Option<ListingKey> {
        match path {
            "/images" => {
                let [limit] = first_values(query, ["limit"]);
                let limit = legacy::limit_param(limit.as_deref(), self.state.config.images_limit);
                Some(ListingKey::Original {
                    limit: limit.ok()?.get(),
                })
            }
            "/api/v1/images" => {
                let [category, limit, cursor, breed, around] =
                    first_values(query, ["category", "limit", "cursor", "breed", "around"]);
                // Only whole listings' first pages are kept.
                if [cursor, breed, around]
                    .iter()
                    .any(|value| value.as_deref().is_some_and(|v| !v.is_empty()))
                {
                    return None;
                }
                Some(ListingKey::FirstPage {
                    category: v1::category_param(category.as_deref()).ok()?,
                    limit: v1::limit_param(limit.as_deref(), self.state.config.images_limit)
                        .ok()?
                        .get(),
                })
            }
            _ => None,
        }
    }
}

impl FastLane for CachedListingLane {
    fn answer(&self, request: LaneRequest<'_>) -> Option<Response<Full<Bytes>>> {
        if request.method != Method::GET {
            return None;
        }
        let key = self.key(request.uri.path(), request.uri.query().unwrap_or(""))?;
        let listing = self.state.listings.fresh(key)?;
        Some(respond(request.headers, &listing))
    }
}

/// The first value of each of `names` in a query string, percent-decoded as
/// the handlers' `QueryParams` decodes it, without copying values that need
/// no decoding.
fn first_values<'q, const N: usize>(query: &'q str, names: [&str; N]) -> [Option<Cow<'q, str>>; N] {
    let mut found = [const { None }; N];
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if let Some(i) = names.iter().position(|n| *n == name)
            && found[i].is_none()
        {
            found[i] = Some(value);
        }
    }
    found
}

/// The headers the router's layers add to every listing (see `router`):
/// CORS for any origin, then `nosniff` and the referrer policy.
fn layer_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            header::VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        ),
        (
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag"),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
    ]
}

/// What `caching::respond` and the router's layers make of a kept listing.
fn respond(request_headers: &HeaderMap, listing: &RenderedListing) -> Response<Full<Bytes>> {
    let not_modified = caching::not_modified(request_headers, &listing.etag);
    let mut response = Response::new(Full::new(if not_modified {
        Bytes::new()
    } else {
        listing.body.clone()
    }));
    let headers = response.headers_mut();
    headers.reserve(8);
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    } else {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let headers = response.headers_mut();
    headers.insert(header::ETAG, listing.etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(caching::CACHE_CONTROL),
    );
    for (name, value) in layer_headers() {
        headers.insert(name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_values_decodes_as_the_handlers_do_and_keeps_the_first() {
        let [a, b, c] = first_values("a=1&b=x%20y&a=2&b=&d=+", ["a", "b", "c"]);
        assert_eq!(a.as_deref(), Some("1"));
        assert_eq!(b.as_deref(), Some("x y"));
        assert_eq!(c, None);
        let [limit] = first_values("li%6Dit=5", ["limit"]);
        assert_eq!(limit.as_deref(), Some("5"), "names are decoded too");
    }
}
