//! Local mode: the three functions' routes in one process on one port, over
//! the embedded defaults (SQLite and a folder), plus what the cloud gets from
//! its buckets: originals under `/media/`, the built page at `/` and its
//! `config.json`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::domain::ObjectName;
use crate::http::ApiError;
use crate::objects::ObjectStore;

/// The page's Content-Security-Policy: no inline script, no framing. The
/// bucket/CDN deployment sets the same headers (see README).
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob: https:; connect-src 'self' https:; font-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// What `config.json` tells the page.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageConfig {
    pub api_base_url: String,
    pub media_base_url: String,
    pub refresh_interval_secs: u64,
}

/// `GET /media/{object}`: an original or a thumbnail, from object storage.
pub fn media_routes(objects: Arc<dyn ObjectStore>) -> Router {
    Router::new()
        .route("/media/{*name}", get(media))
        .with_state(objects)
}

async fn media(
    State(objects): State<Arc<dyn ObjectStore>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    // Only names we make are looked up: `../`, encoded or not, is a 404.
    let name: ObjectName = name
        .parse()
        .map_err(|_| ApiError::NotFound("no such picture".to_owned()))?;
    let object = objects.get(&name).await?;
    let mut response = Response::new(Body::from(object.bytes));
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&object.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    // Objects never change under a name: cache them for good.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

/// The built page (`frontend/build`) at `/`, with its `config.json`. Unknown
/// paths get `index.html`, so a shared link to a picture opens the page.
pub fn page_routes(web_dir: Option<PathBuf>, config: PageConfig) -> Router {
    let config = Arc::new(config);
    let router = Router::new().route(
        "/config.json",
        get(move || {
            let config = Arc::clone(&config);
            async move {
                (
                    [(header::CACHE_CONTROL, "no-cache")],
                    axum::Json(config.as_ref().clone()),
                )
            }
        }),
    );
    let router = match web_dir {
        Some(dir) => {
            let index = dir.join("index.html");
            router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)))
        }
        None => router.fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "The web page is not built. Run `npm --prefix frontend run build`, or use the README's quick start.",
            )
                .into_response()
        }),
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// Everything `catdog serve` has worked out before serving.
pub struct LocalOptions {
    pub env: crate::config::Env,
    pub common: crate::config::CommonConfig,
    pub api: crate::config::ApiConfig,
    pub backends: crate::startup::Backends,
    pub web_dir: Option<PathBuf>,
}

/// Serves local mode until SIGTERM or Ctrl-C.
pub async fn run(options: LocalOptions) -> Result<(), crate::startup::StartupError> {
    let LocalOptions {
        env: _env,
        common,
        api,
        backends,
        web_dir,
    } = options;
    let page = PageConfig {
        api_base_url: String::new(),
        media_base_url: api.public_storage_base_url.clone(),
        refresh_interval_secs: api.ingest_interval.as_secs(),
    };
    let routes = crate::startup::list_images_routes(&backends, api)
        .merge(crate::http::health_routes(Arc::clone(&backends.store)))
        .merge(media_routes(Arc::clone(&backends.objects)))
        .merge(page_routes(web_dir, page));
    let app = crate::http::with_common_layers(routes, crate::startup::REQUEST_TIMEOUT);
    let listener = crate::http::bind(common.port).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "catdog serve: open http://localhost:{}/", addr.port());
    println!("CatDog Gallery is running: open http://localhost:{}/", addr.port());
    crate::http::serve(
        listener,
        app,
        crate::http::ServeOptions::default(),
        crate::http::shutdown_signal(),
    )
    .await;
    Ok(())
}
