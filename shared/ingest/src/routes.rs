//! `POST /ingest`: what Cloud Scheduler calls.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};

use super::run::{IngestError, IngestSummary, Ingestor};
use catdog_objects::ObjectError;
use catdog_server::http::ApiError;

/// `POST /ingest` → 200 with the run's [`IngestSummary`]. A run that finds
/// another one under way answers 200 too, with `"skipped": true`: the
/// Scheduler's job is done (the other run does the work), and a retry would
/// only be skipped again. The database or storage being down is a 503.
/// A body is not needed; one over [`MAX_INGEST_BODY_BYTES`] is a 413 and
/// starts no run.
pub fn routes(ingestor: Arc<Ingestor>) -> Router {
    Router::new()
        .route("/ingest", post(ingest))
        .layer(DefaultBodyLimit::max(MAX_INGEST_BODY_BYTES))
        .with_state(ingestor)
}

/// Cloud Scheduler sends an empty body; anything large is not Scheduler.
pub const MAX_INGEST_BODY_BYTES: usize = 4 * 1024;

async fn ingest(
    State(ingestor): State<Arc<Ingestor>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestSummary>, ApiError> {
    // Read (and so bounded in size and time) before any work starts.
    body?;
    // The run gets a task of its own so that a caller who hangs up (or the
    // request timeout) does not cut it short between writes.
    let run = tokio::spawn(async move { ingestor.run_once().await });
    let summary = run
        .await
        .map_err(|e| ApiError::Internal(format!("the ingestion run failed: {e}")))??;
    Ok(Json(summary))
}

/// How a run that stopped is answered: our storage being unavailable is a
/// 503 the Scheduler retries, anything else a 500.
impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(e) => e.into(),
            IngestError::Objects(e) => match e {
                ObjectError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
                other => ApiError::Internal(other.to_string()),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}
