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

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::queue::{DeadLetters, LocalQueue, QueueOptions};
use catdog_classify::{ClassifyConfig, ClassifyService, ClassifySettings};
use catdog_core::config::{self, ApiConfig, CommonConfig, ConfigError, MaxImageBytes, Vars};
use catdog_core::domain::ObjectName;
use catdog_core::pubsub::Publisher;
use catdog_ingest::{IngestConfig, IngestSettings, Ingestor};
use catdog_objects::ObjectStore;
use catdog_server::http::{ApiError, App, ResourcePath};
use catdog_server::startup::{Backends, REQUEST_TIMEOUT, StartupError};

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
            // The page is one route (`/`, its state in the query string), so
            // any other path that is not a file is a real 404, with the
            // build's 404 page when it has one.
            let not_found = dir.join("404.html");
            let not_found = if not_found.is_file() {
                not_found
            } else {
                dir.join("index.html")
            };
            let files = ServeDir::new(dir).not_found_service(ServeFile::new(not_found));
            // The page's script, styles and HTML are text: gzip takes them to
            // about a third, which on a phone's link is most of the time to
            // the first paint. Pictures are left as they are (already
            // compressed; the predicate skips images).
            router
                .fallback_service(files)
                .layer(middleware::from_fn(immutable_assets))
                .layer(CompressionLayer::new())
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

/// SvelteKit names the files under `/_app/immutable/` by their content's
/// hash, so a browser may keep them for good (as the bucket's objects are
/// published).
async fn immutable_assets(request: Request, next: Next) -> Response {
    let immutable = request.uri().path().starts_with("/_app/immutable/");
    let mut response = next.run(request).await;
    if immutable && response.status().is_success() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

/// What local mode reads from its settings: what the three functions read,
/// less the identity-token check and the publisher (its queue is in-process).
/// `catdog serve`'s own flags (`--host`, the admin token, the page's folder)
/// are the `catdog` command's.
#[derive(Clone, Debug, clap::Args)]
pub struct LocalSettings {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub api: ApiConfig,
    #[command(flatten)]
    pub ingest: IngestSettings,
    #[command(flatten)]
    pub classify: ClassifySettings,
    #[command(flatten)]
    pub max_image_bytes: MaxImageBytes,
}

/// Reads settings group `S` from the process environment as local mode sees
/// it: the database and pictures under `data_dir` unless `DATABASE_URL` and
/// `STORAGE_URL` name other stores. Any group works, so each `catdog`
/// command reads only what it uses.
pub fn local_settings<S: clap::Args>(data_dir: &FsPath) -> Result<S, ConfigError> {
    config::parse_with(&Vars::process(), |command| {
        CommonConfig::local_defaults(command, data_dir)
    })
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
        classify_config: &ClassifyConfig,
        backends: &Backends,
        data_dir: &FsPath,
        ingest: IngestConfig,
    ) -> Result<Self, StartupError> {
        let classifier = Arc::new(classify_config.load_classifier()?);
        let push = catdog_classify::routes(ClassifyService::new(
            Arc::clone(&backends.store),
            Arc::clone(&backends.objects),
            classifier,
            classify_config.limits,
        ));
        // The same layers as the served routes: a panic is a 500 and a hung
        // classification a 503, so the queue redelivers instead of stalling.
        let queue = LocalQueue::start(
            catdog_server::http::with_common_layers(push.clone(), REQUEST_TIMEOUT),
            catdog_classify::PUSH_ROUTE,
            QueueOptions::default(),
            DeadLetters::in_dir(data_dir),
        );
        let publisher: Arc<dyn Publisher> = queue.clone();
        let ingestor = Arc::new(
            Ingestor::new(
                ingest,
                Arc::clone(&backends.store),
                Arc::clone(&backends.objects),
                publisher,
            )
            .map_err(|e| StartupError::Other(format!("cannot set up ingestion: {e}")))?,
        );
        let routes = push.merge(catdog_ingest::routes(Arc::clone(&ingestor)));
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
            // The run logs its own one line: the summary, or why it stopped
            // (the next tick tries again).
            let _ = ingestor.run_once().await;
        }
    })
}

/// Everything `catdog serve` has worked out before serving.
pub struct LocalOptions {
    /// The address to listen on: loopback unless the owner shares the
    /// gallery on a network (`--host 0.0.0.0`).
    pub host: IpAddr,
    /// Lets callers that are not on this machine use the routes that change
    /// state, when they send it as a bearer token. Without it only loopback
    /// callers may.
    pub admin_token: Option<AdminToken>,
    pub settings: LocalSettings,
    pub backends: Backends,
    pub web_dir: Option<PathBuf>,
    /// Where local state other than the stores is kept (the dead letters).
    pub data_dir: PathBuf,
}

/// Serves local mode until SIGTERM or Ctrl-C.
pub async fn run(options: LocalOptions) -> Result<(), StartupError> {
    let LocalOptions {
        host,
        admin_token,
        settings,
        backends,
        web_dir,
        data_dir,
    } = options;
    let LocalSettings {
        common,
        api,
        ingest,
        classify,
        max_image_bytes,
    } = settings;
    let pipeline = Pipeline::start(
        &classify.config(max_image_bytes),
        &backends,
        &data_dir,
        ingest.config(max_image_bytes),
    )?;
    let page = PageConfig {
        api_base_url: String::new(),
        media_base_url: api.public_storage_base_url.clone(),
        refresh_interval_secs: api.ingest_interval.as_secs(),
    };
    let ingest_interval = api.ingest_interval;
    let admin_token_set = admin_token.is_some();
    // The read API as list-images serves it (kept first pages answered by
    // its lane, in front of everything), plus local mode's own routes.
    let App {
        router: api_routes,
        fast_lane,
    } = catdog_api::app(catdog_api::ApiState::new(Arc::clone(&backends.store), api));
    let routes = api_routes
        .merge(loopback_only(pipeline.routes, admin_token))
        .merge(catdog_server::http::health_routes(Arc::clone(
            &backends.store,
        )))
        .merge(media_routes(Arc::clone(&backends.objects)))
        .merge(page_routes(web_dir, page));
    let app = App {
        router: catdog_server::http::with_common_layers(routes, REQUEST_TIMEOUT),
        fast_lane,
    };
    let listener = catdog_server::http::bind_to(SocketAddr::new(host, common.port)).await?;
    let addr = listener.local_addr()?;
    if !host.is_loopback() {
        tracing::info!(
            %addr,
            "the gallery is reachable from other machines; its state-changing routes are not, {}",
            if admin_token_set { "except with the admin token" } else { "as no admin token is set" }
        );
    }
    let timer = start_ingest_timer(Arc::clone(&pipeline.ingestor), ingest_interval);
    tracing::info!(%addr, "catdog serve: open http://localhost:{}/", addr.port());
    println!(
        "CatDog Gallery is running: open http://localhost:{}/",
        addr.port()
    );
    catdog_server::http::serve(
        listener,
        app,
        catdog_server::http::ServeOptions::for_this_process(common.max_connections),
        catdog_server::http::shutdown_signal(),
    )
    .await;
    timer.abort();
    Ok(())
}

/// A shared secret that lets non-loopback callers use the state-changing
/// routes. Never printed: its `Debug` is a placeholder.
#[derive(Clone)]
pub struct AdminToken(SecretString);

impl AdminToken {
    /// `None` for an empty value, so an empty variable means "no token".
    pub fn new(token: SecretString) -> Option<Self> {
        (!token.expose_secret().is_empty()).then_some(Self(token))
    }

    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.expose_secret().as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<secret>)")
    }
}

/// The routes that change state (`POST /ingest`, `POST /pubsub/push`,
/// `PUT /images/{id}/category`)
/// answer callers on this machine only, or callers that present the admin
/// token: local mode has no identity tokens, and a gallery shared on a
/// network must not let its visitors write.
fn loopback_only(routes: Router, admin_token: Option<AdminToken>) -> Router {
    routes.layer(middleware::from_fn(
        move |mut request: Request, next: Next| {
            let admin_token = admin_token.clone();
            async move {
                let peer = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(peer)| peer.ip());
                let local = peer.is_some_and(|ip| ip.to_canonical().is_loopback());
                let token_ok = admin_token.as_ref().is_some_and(|token| {
                    request
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .is_some_and(|presented| token.matches(presented.trim()))
                });
                if local || token_ok {
                    // What a relabel records as its author.
                    let who = if token_ok {
                        "local mode (admin token)"
                    } else {
                        "local mode (this machine)"
                    };
                    request
                        .extensions_mut()
                        .insert(catdog_server::http::CallerIdentity(who.to_owned()));
                    return next.run(request).await;
                }
                tracing::warn!(
                    peer = ?peer,
                    path = %request.uri().path(),
                    "refused a state-changing request from another machine"
                );
                ApiError::Forbidden(
                    "this route answers callers on the same machine only (or with the admin token)"
                        .to_owned(),
                )
                .into_response()
            }
        },
    ))
}
