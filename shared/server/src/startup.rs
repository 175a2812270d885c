//! What every binary does before and around serving: read settings, set up
//! logging, connect the stores, migrate when asked, build the routes, serve
//! until SIGTERM. Each function names its settings and routes and calls
//! [`run_service`].

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use secrecy::ExposeSecret as _;

use crate::http::App;
use crate::telemetry::{self, LogFormat};
use catdog_core::config::{self, CommonConfig, ConfigError, Vars};
use catdog_objects::{ObjectError, ObjectStore, StorageOptions};
use catdog_store::{ConnectOptions, ImageStore, StoreError};

/// Why a binary could not start. Printed as one line before exiting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot open object storage: {0}")]
    Objects(#[from] ObjectError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// The stores every function works against.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn ImageStore>,
    pub objects: Arc<dyn ObjectStore>,
}

impl Backends {
    /// Connects both stores, applying migrations first when `migrate` is set.
    pub async fn connect(common: &CommonConfig, migrate: bool) -> Result<Self, StartupError> {
        let store = catdog_store::connect(
            common.database_url.expose_secret(),
            &ConnectOptions {
                pool_size: common.pool_size,
                timeout: common.database_timeout,
            },
        )
        .await?;
        if migrate {
            store.migrate().await?;
        }
        let objects = catdog_objects::open(
            &common.storage_url,
            &StorageOptions {
                endpoint: common.storage_endpoint.clone(),
            },
        )
        .await?;
        Ok(Self { store, objects })
    }
}

/// How long one request may take before the server answers 503 itself.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A function's settings: one struct per binary, composed of the capability
/// groups it runs; the common ones are in every binary's.
pub trait ServiceSettings: clap::Args + Send + 'static {
    fn common(&self) -> &CommonConfig;
}

/// Runs one function: reads its settings `S` from the environment, sets up
/// logging, connects the stores, lets `build` make the routes, and serves
/// them on `$PORT` until SIGTERM. A failure to start is printed as one line
/// and exits with status 1.
pub fn run_service<S, F, Fut, A>(name: &'static str, build: F) -> ExitCode
where
    S: ServiceSettings,
    F: FnOnce(S, Backends) -> Fut,
    Fut: Future<Output = Result<A, StartupError>>,
    A: Into<App>,
{
    let settings: S = match config::parse(&Vars::process()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let common = settings.common().clone();
        init(&common);
        let backends = Backends::connect(&common, common.migrate_on_start).await?;
        let App { router, fast_lane } = build(settings, backends.clone()).await?.into();
        let app = App {
            router: service_app(router, &backends),
            fast_lane,
        };
        serve_app(name, app, common.port, common.max_connections).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{name} could not start");
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a function serves: its `routes` and the health checks, under the
/// common layers.
pub fn service_app(routes: Router, backends: &Backends) -> Router {
    crate::http::with_common_layers(
        routes.merge(crate::http::health_routes(Arc::clone(&backends.store))),
        REQUEST_TIMEOUT,
    )
}

/// Sets up logging as the common settings ask.
pub fn init(common: &CommonConfig) {
    telemetry::init(
        LogFormat::from_setting(common.log_format),
        common.google_cloud_project.clone(),
    );
}

async fn serve_app(
    name: &'static str,
    app: App,
    port: u16,
    max_connections: Option<usize>,
) -> Result<(), StartupError> {
    #[cfg(feature = "lambda")]
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        // Built with `lambda` and started by the Lambda runtime: the same
        // routes answer API Gateway events instead of a port.
        tracing::info!("{name} running on AWS Lambda");
        // Events do not pass through the server loop, so a fast lane is
        // not asked: the router answers them all, as it would without one.
        return lambda_http::run(app.router)
            .await
            .map_err(|e| StartupError::Other(format!("lambda runtime: {e}")));
    }
    let listener = crate::http::bind(port).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "{name} listening");
    crate::http::serve(
        listener,
        app,
        crate::http::ServeOptions::for_this_process(max_connections),
        crate::http::shutdown_signal(),
    )
    .await;
    Ok(())
}
