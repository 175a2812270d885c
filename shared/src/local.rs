//! Local mode: the three functions' routes in one process on one port, over
//! the embedded defaults (SQLite and a folder), plus what the cloud gets from
//! its buckets: originals under `/media/`, the built page at `/` and its
//! `config.json`.
//!
//! What Google Cloud runs as separate services is wired here in-process:
//!
//! ```text
//! timer (Cloud Scheduler) ─► Ingestor::run_once ─► LocalQueue (Pub/Sub)
//!                                                     └─► POST /pubsub/push (classify-image)
//! ```
//!
//! The queue delivers through the same router and envelope as a push
//! subscription, so local mode exercises the production handler.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::classify::{self, ClassifyConfig, ClassifyService};
use crate::config::Env;
use crate::domain::ObjectName;
use crate::http::{ApiError, ResourcePath};
use crate::ingest::{self, IngestConfig, Ingestor};
use crate::objects::ObjectStore;
use crate::pubsub::Publisher;
use crate::queue::{DeadLetters, LocalQueue, QueueOptions};
use crate::startup::{Backends, REQUEST_TIMEOUT, StartupError};

/// The page's Content-Security-Policy: no inline script, no framing,
/// everything from the page's own origin (the API and `/media/` are on it
/// here). Inline styles are allowed: Svelte sets `style` attributes from
/// script (placeholder colours, aspect ratios), which `style-src 'self'`
/// blocks; styles cannot run code. The load balancer in front of the website bucket sends the
/// same policy (`terraform/main.tf`, README "Security headers of the page"),
/// so the browser tests, which run against `catdog serve`, check the policy
/// the cloud enforces.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; \
    form-action 'none'; object-src 'none'";

/// The other headers of the page, beside [`PAGE_CSP`].
pub const PAGE_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
];

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
    ResourcePath(name): ResourcePath<String>,
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
    PAGE_HEADERS
        .into_iter()
        .fold(router, |router, (name, value)| {
            router.layer(SetResponseHeaderLayer::if_not_present(
                name,
                HeaderValue::from_static(value),
            ))
        })
}

/// The settings local mode starts from: the process environment, with the
/// database and pictures under `data_dir` unless `DATABASE_URL` and
/// `STORAGE_URL` name other stores.
pub fn local_env(data_dir: &FsPath, port: u16) -> Env {
    let data = data_dir.display().to_string();
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    let defaults = [
        ("DATABASE_URL", format!("sqlite://{data}/catdog.db")),
        ("STORAGE_URL", format!("file://{data}/objects")),
        ("PORT", port.to_string()),
    ];
    for (name, value) in defaults {
        match vars.iter_mut().find(|(k, _)| k == name) {
            Some(existing) if name == "PORT" => existing.1 = value,
            Some(existing) if !existing.1.trim().is_empty() => {}
            Some(existing) => existing.1 = value,
            None => vars.push((name.to_owned(), value)),
        }
    }
    Env::from_map(vars)
}

/// Ingestion and classification joined by the in-process queue.
pub struct Pipeline {
    pub ingestor: Arc<Ingestor>,
    pub queue: Arc<LocalQueue>,
    /// `POST /ingest` and `POST /pubsub/push`, as the two functions serve them.
    pub routes: Router,
}

impl Pipeline {
    /// Loads the model (a missing one is an error that says how to build it),
    /// and starts the queue; dead letters are kept in `data_dir`.
    pub fn start(
        env: &Env,
        backends: &Backends,
        data_dir: &FsPath,
        ingest: IngestConfig,
    ) -> Result<Self, StartupError> {
        let classify_config = ClassifyConfig::from_env(env)?;
        let classifier = Arc::new(classify_config.load_classifier()?);
        let push = classify::routes(ClassifyService::new(
            Arc::clone(&backends.store),
            Arc::clone(&backends.objects),
            classifier,
            classify_config.limits,
        ));
        // The same layers as the served routes: a panic is a 500 and a hung
        // classification a 503, so the queue redelivers instead of stalling.
        let queue = LocalQueue::start(
            crate::http::with_common_layers(push.clone(), REQUEST_TIMEOUT),
            QueueOptions::default(),
            DeadLetters::in_dir(data_dir),
        );
        let publisher: Arc<dyn Publisher> = queue.clone();
        let ingestor = Arc::new(
            Ingestor::new(ingest, backends, publisher)
                .map_err(|e| StartupError::Other(format!("cannot set up ingestion: {e}")))?,
        );
        let routes = push.merge(ingest::routes(Arc::clone(&ingestor)));
        Ok(Self {
            ingestor,
            queue,
            routes,
        })
    }
}

/// Runs ingestion at once and then every `interval`, as Cloud Scheduler
/// does in the cloud. A failed run is logged; the next one tries again.
pub fn start_ingest_timer(
    ingestor: Arc<Ingestor>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        // A run longer than the interval delays the next one instead of
        // starting a burst of catch-up runs.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match ingestor.run_once().await {
                Ok(summary) => tracing::info!(?summary, "ingestion run finished"),
                Err(e) => {
                    tracing::warn!(error = %e, "ingestion run failed; the next one will try again")
                }
            }
        }
    })
}

/// Everything `catdog serve` has worked out before serving.
pub struct LocalOptions {
    pub env: Env,
    pub common: crate::config::CommonConfig,
    pub api: crate::config::ApiConfig,
    pub backends: Backends,
    pub web_dir: Option<PathBuf>,
    /// Where local state other than the stores is kept (the dead letters).
    pub data_dir: PathBuf,
}

/// Serves local mode until SIGTERM or Ctrl-C.
pub async fn run(options: LocalOptions) -> Result<(), StartupError> {
    let LocalOptions {
        env,
        common,
        api,
        backends,
        web_dir,
        data_dir,
    } = options;
    let pipeline = Pipeline::start(&env, &backends, &data_dir, IngestConfig::from_env(&env)?)?;
    let page = PageConfig {
        api_base_url: String::new(),
        media_base_url: api.public_storage_base_url.clone(),
        refresh_interval_secs: api.ingest_interval.as_secs(),
    };
    let ingest_interval = api.ingest_interval;
    let routes = crate::startup::list_images_routes(&backends, api)
        .merge(pipeline.routes)
        .merge(crate::http::health_routes(Arc::clone(&backends.store)))
        .merge(media_routes(Arc::clone(&backends.objects)))
        .merge(page_routes(web_dir, page));
    let app = crate::http::with_common_layers(routes, REQUEST_TIMEOUT);
    let listener = crate::http::bind(common.port).await?;
    let addr = listener.local_addr()?;
    let timer = start_ingest_timer(Arc::clone(&pipeline.ingestor), ingest_interval);
    tracing::info!(%addr, "catdog serve: open http://localhost:{}/", addr.port());
    println!(
        "CatDog Gallery is running: open http://localhost:{}/",
        addr.port()
    );
    crate::http::serve(
        listener,
        app,
        crate::http::ServeOptions::default(),
        crate::http::shutdown_signal(),
    )
    .await;
    timer.abort();
    Ok(())
}
