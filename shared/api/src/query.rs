use std::borrow::Cow;

use catdog_server::http::{ApiError, InvalidParam};

/// A query string split into pairs, borrowed from it unless a pair had to
/// be percent-decoded. Values that are not valid UTF-8 after percent-decoding
/// are kept with replacement characters, so they fail the parameter's own
/// validation with a clear message instead of a 500.
pub struct QueryParams<'q>(Vec<(Cow<'q, str>, Cow<'q, str>)>);

impl<'q> QueryParams<'q> {
    pub fn parse(raw: Option<&'q str>) -> Self {
        Self(form_urlencoded::parse(raw.unwrap_or("").as_bytes()).collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

pub fn invalid(name: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidParam(InvalidParam {
        name: name.to_owned(),
        reason: reason.into(),
    })
}
