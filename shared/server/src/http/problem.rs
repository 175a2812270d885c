use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use catdog_objects::ObjectError;
use catdog_store::StoreError;

/// A query or path parameter the caller got wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvalidParam {
    pub name: String,
    pub reason: String,
}

/// The original service's 422 body (FastAPI's validation error), which its
/// clients read: `{"detail": [{"type", "loc", "msg"}]}`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LegacyValidationError {
    pub detail: Vec<LegacyValidationDetail>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LegacyValidationDetail {
    /// Always `value_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where: `["query", NAME]`.
    pub loc: Vec<String>,
    pub msg: String,
}

/// Every error any handler answers with. The status and the body are decided
/// here and nowhere else. Bodies are `application/problem+json` (RFC 9457),
/// except the original `/images` contract's 422, which keeps FastAPI's shape
/// because its clients read it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid parameter {}: {}", .0.name, .0.reason)]
    InvalidParam(InvalidParam),
    /// The original service's validation error (FastAPI's 422 shape).
    #[error("invalid query parameter {}: {}", .0.name, .0.reason)]
    LegacyValidation(InvalidParam),
    #[error("{0}")]
    NotFound(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// The request is valid but the resource's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalid_params: Option<Vec<&'a InvalidParam>>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidParam(_) => StatusCode::BAD_REQUEST,
            ApiError::LegacyValidation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response, as a plain value (for layers that need one outside a handler).
    pub fn into_response_parts(self) -> Response {
        self.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        }
        if let ApiError::LegacyValidation(param) = &self {
            let body = LegacyValidationError {
                detail: vec![LegacyValidationDetail {
                    kind: "value_error".to_owned(),
                    loc: vec!["query".to_owned(), param.name.clone()],
                    msg: param.reason.clone(),
                }],
            };
            return (status, Json(body)).into_response();
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let invalid_params = match &self {
            ApiError::InvalidParam(p) => Some(vec![p]),
            _ => None,
        };
        // Internal details stay in the log; the caller gets a generic line.
        let detail = match &self {
            ApiError::Internal(_) => "the server could not answer; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let body = Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail,
            invalid_params,
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::NotFound(name) => ApiError::NotFound(format!("no object {name}")),
            ObjectError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A request body that could not be read: over the route's limit (413), or
/// cut off or too slow to arrive (400). Both are the caller's doing.
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

/// A path parameter that names something stored: an image id, an object
/// name. Use it instead of axum's `Path`, whose rejection is a plain-text 400:
/// a segment that cannot be read (`/api/v1/images/%FF%FE` is not UTF-8 once
/// percent-decoded) names nothing we store, so the caller gets the same 404
/// problem as for any unknown name.
pub struct ResourcePath<T>(pub T);

impl<T, S> FromRequestParts<S> for ResourcePath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A path segment that cannot be decoded is the caller's (404); a route
/// declared without the parameter its handler takes is ours (500).
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        if rejection.status().is_server_error() {
            ApiError::Internal(rejection.body_text())
        } else {
            ApiError::NotFound("nothing has this name".to_owned())
        }
    }
}
