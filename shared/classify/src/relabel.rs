//! `PUT /images/{id}/category`: an operator corrects a verdict. Behind the
//! same identity check as the push route (in the cloud, the callers
//! Terraform allows; in local mode, this machine or the admin token). The
//! store records who, when and the category before; a later redelivery of
//! the picture's message leaves the correction alone.
//!
//! | what happened | answer |
//! | --- | --- |
//! | the category was changed, or already was the one asked for | 200 with the picture's new state |
//! | malformed id or body, or a category other than cat/dog/other | 400 |
//! | no picture with this id | 404 |
//! | the picture is not classified (pending, failed or rejected) | 409 |
//! | the database is unavailable | 503 |

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use serde::{Deserialize, Serialize};

use super::ClassifyService;
use catdog_core::domain::{Category, ImageId};
use catdog_server::http::{ApiError, CallerIdentity, ResourcePath};
use catdog_store::RelabelOutcome;

pub const RELABEL_ROUTE: &str = "/images/{id}/category";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelRequest {
    pub category: String,
}

#[derive(Debug, Serialize)]
pub struct RelabelResponse {
    pub id: String,
    pub category: Category,
    /// False when the picture already had this category.
    pub changed: bool,
}

pub(crate) async fn relabel(
    State(service): State<ClassifyService>,
    caller: Option<Extension<CallerIdentity>>,
    ResourcePath(raw_id): ResourcePath<String>,
    body: Result<Json<RelabelRequest>, JsonRejection>,
) -> Result<Json<RelabelResponse>, ApiError> {
    let id: ImageId = raw_id
        .parse()
        .map_err(|_| ApiError::BadRequest("the id is not a picture's id (a UUID)".to_owned()))?;
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let category: Category = request
        .category
        .parse()
        .map_err(|_| ApiError::BadRequest("category must be cat, dog or other".to_owned()))?;
    // Without an identity check (REQUIRE_OIDC off) nobody vouches for the caller.
    let by = caller.map_or_else(|| "unverified caller".to_owned(), |Extension(c)| c.0);
    let changed = match service.store.relabel(id, category, &by).await? {
        RelabelOutcome::Relabelled => true,
        RelabelOutcome::Unchanged => false,
        RelabelOutcome::NotFound => {
            return Err(ApiError::NotFound("no picture with this id".to_owned()));
        }
        RelabelOutcome::NotClassified(status) => {
            return Err(ApiError::Conflict(format!(
                "the picture is {}, not classified: only a verdict can be corrected",
                status.as_str()
            )));
        }
    };
    tracing::info!(image_id = %id, %category, by, changed, "relabelled a picture");
    Ok(Json(RelabelResponse {
        id: id.to_string(),
        category,
        changed,
    }))
}
