//! The read API that list-images serves: the original service's
//! `GET /images`, kept exactly, and the versioned `/api/v1` for our page.

mod cached_listing_lane;
mod caching;
mod legacy;
mod listing_cache;
mod query;
mod v1;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use catdog_core::config::ApiConfig;
use catdog_server::http::{ApiError, App};
use catdog_store::ImageStore;
use listing_cache::ListingCache;

pub use cached_listing_lane::CachedListingLane;
pub use v1::{ApiDoc, ImageItem, ImagePage, StatsResponse};

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn ImageStore>,
    pub config: Arc<ApiConfig>,
    listings: Arc<ListingCache<ApiError>>,
    /// `/api/v1/stats`, kept at most `LISTING_CACHE_MS` (see listing_cache).
    stats: Arc<ListingCache<ApiError>>,
}

impl ApiState {
    pub fn new(store: Arc<dyn ImageStore>, config: ApiConfig) -> Self {
        let listings = Arc::new(ListingCache::new(store.changes(), config.listing_cache));
        let stats = Arc::new(ListingCache::bounded(store.changes(), config.listing_cache));
        Self {
            store,
            config: Arc::new(config),
            listings,
            stats,
        }
    }
}

/// The list-images routes with the lane that answers kept first pages in
/// front of them: what list-images and `catdog serve` serve.
pub fn app(state: ApiState) -> App {
    let lane = Arc::new(CachedListingLane::new(state.clone()));
    App::with_fast_lane(router(state), lane)
}

/// The list-images routes. The API is public and read-only, so any origin
/// may GET it.
pub fn router(state: ApiState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::IF_NONE_MATCH, header::CONTENT_TYPE])
        .expose_headers([header::ETAG]);
    Router::new()
        .route("/images", get(legacy::list_images))
        .route("/api/v1/images", get(v1::list_images))
        .route("/api/v1/images/{id}", get(v1::get_image))
        .route("/api/v1/stats", get(v1::stats))
        .route("/api/v1/openapi.json", get(v1::openapi))
        .with_state(state)
        .layer(cors)
        // JSON is never to be sniffed into something else, and links
        // followed from an answer tell no more than the origin.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
}

/// The OpenAPI document as pretty JSON (what `catdog openapi` prints and the
/// page's typed client is generated from).
pub fn openapi_json() -> String {
    use utoipa::OpenApi as _;
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
