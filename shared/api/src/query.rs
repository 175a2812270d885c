use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use catdog_server::http::{ApiError, InvalidParam};

/// A request's query string split into pairs, percent-decoded. Values that
/// are not valid UTF-8 after percent-decoding are kept with replacement
/// characters, so they fail the parameter's own validation with a clear
/// message instead of a 500. As an extractor it never refuses a request:
/// each handler says what is wrong with which parameter.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let raw = parts.uri.query().unwrap_or("");
        Ok(Self(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

pub fn invalid(name: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidParam(InvalidParam {
        name: name.to_owned(),
        reason: reason.into(),
    })
}
