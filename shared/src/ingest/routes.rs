//! `POST /ingest`: what Cloud Scheduler calls.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::run::{IngestSummary, Ingestor};
use crate::http::ApiError;

/// `POST /ingest` → 200 with the run's [`IngestSummary`]. A run that finds
/// another one under way answers 200 too, with `"skipped": true`: the
/// Scheduler's job is done (the other run does the work), and a retry would
/// only be skipped again. The database or storage being down is a 503.
pub fn routes(ingestor: Arc<Ingestor>) -> Router {
    Router::new()
        .route("/ingest", post(ingest))
        .with_state(ingestor)
}

async fn ingest(State(ingestor): State<Arc<Ingestor>>) -> Result<Json<IngestSummary>, ApiError> {
    // The run gets a task of its own so that a caller who hangs up (or the
    // request timeout) does not cut it short between writes.
    let run = tokio::spawn(async move { ingestor.run_once().await });
    let summary = run
        .await
        .map_err(|e| ApiError::Internal(format!("the ingestion run failed: {e}")))??;
    Ok(Json(summary))
}
