//! HTTP plumbing shared by every function: the server loop with graceful
//! shutdown, the middleware stack, health checks and the one error type.

mod fast_lane;
mod limits;
mod problem;
mod server;

pub use fast_lane::{App, FastLane, LaneRequest};
pub use problem::{
    ApiError, InvalidParam, LegacyValidationDetail, LegacyValidationError, ResourcePath,
};
pub use server::{ServeOptions, bind, bind_to, serve, shutdown_signal};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use catdog_store::ImageStore;

/// Who made a request, as the identity check found it (an account's e-mail):
/// put in the request's extensions for handlers that record who did what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity(pub String);

/// `GET /healthz` (the process answers) and `GET /readyz` (the database does).
pub fn health_routes(store: Arc<dyn ImageStore>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(store)
}

async fn readyz(State(store): State<Arc<dyn ImageStore>>) -> Result<&'static str, ApiError> {
    store.ping().await?;
    Ok("ready")
}

/// The layers every service gets: a span per request carrying its trace id,
/// a time limit, and a panic turned into a 500 instead of a dropped
/// connection.
pub fn with_common_layers(router: Router, request_timeout: Duration) -> Router {
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("the server failed while answering".to_owned()).into_response_parts()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let trace_id = crate::telemetry::trace_id(request.headers()).unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    trace_id = %trace_id,
                )
            }),
        )
}
