//! `POST /pubsub/push`: a Pub/Sub push delivery, answered so that Pub/Sub
//! (and the local queue, which follows the same rules) does the right thing:
//!
//! | what happened | answer | what Pub/Sub does |
//! | --- | --- | --- |
//! | classified now, or already classified/rejected | 204 | forgets the message |
//! | the picture cannot be decoded (recorded as rejected) | 204 | forgets it |
//! | no image has this id (nothing will ever change that) | 204 | forgets it |
//! | malformed envelope or data, or not ingestion's message | 400 | redelivers, then dead-letters it for inspection |
//! | body over [`MAX_PUSH_BODY_BYTES`] | 413 | same |
//! | database or storage unavailable, original missing | 503 | redelivers with backoff |
//! | the model failed | 500 | redelivers with backoff |

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{post, put};

use super::{ClassifyFailure, ClassifyService, Outcome};
use catdog_core::pubsub::PushEnvelope;
use catdog_server::http::ApiError;

pub const PUSH_ROUTE: &str = "/pubsub/push";

/// A push envelope carries a few hundred bytes; anything near this is not one.
pub const MAX_PUSH_BODY_BYTES: usize = 64 * 1024;

pub fn routes(service: ClassifyService) -> Router {
    Router::new()
        .route(PUSH_ROUTE, post(push))
        .route(super::relabel::RELABEL_ROUTE, put(super::relabel::relabel))
        .layer(DefaultBodyLimit::max(MAX_PUSH_BODY_BYTES))
        .with_state(service)
}

async fn push(
    State(service): State<ClassifyService>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body?;
    let (envelope, message) = PushEnvelope::parse(&body).map_err(|e| {
        tracing::warn!(error = %e, "refused a malformed push delivery");
        ApiError::BadRequest(e.to_string())
    })?;
    let message_id = envelope.message.message_id.as_str();
    let image_id = message.image_id;
    match service.handle(&message).await {
        Ok(outcome) => {
            match &outcome {
                Outcome::Classified(category) => {
                    tracing::info!(%image_id, message_id, %category, "classified");
                }
                Outcome::Rejected(reason) => {
                    tracing::info!(%image_id, message_id, reason, "rejected the picture");
                }
                Outcome::AlreadyDone => {
                    tracing::info!(%image_id, message_id, "already done; acknowledged again");
                }
                Outcome::UnknownImage => {
                    tracing::warn!(%image_id, message_id, "no such image; acknowledged");
                }
            }
            Ok(StatusCode::NO_CONTENT)
        }
        Err(failure) => {
            tracing::warn!(%image_id, message_id, error = %failure, "not classified; the message will come back");
            Err(match failure {
                ClassifyFailure::Store(e) => e.into(),
                ClassifyFailure::Objects(e) => match ApiError::from(e) {
                    // Our own object store missing something is not the
                    // caller's 404: it is a reason to come back later.
                    ApiError::NotFound(detail) => ApiError::Unavailable(detail),
                    other => other,
                },
                e @ ClassifyFailure::OriginalMissing(_) => ApiError::Unavailable(e.to_string()),
                e @ ClassifyFailure::Model(_) => ApiError::Internal(e.to_string()),
                e @ ClassifyFailure::Mismatch(..) => ApiError::BadRequest(e.to_string()),
            })
        }
    }
}
