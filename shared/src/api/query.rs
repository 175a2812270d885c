use crate::http::{ApiError, InvalidParam};

/// A query string split into pairs. Values that are not valid UTF-8 after
/// percent-decoding are kept with replacement characters, so they fail the
/// parameter's own validation with a clear message instead of a 500.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn invalid(name: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidParam(InvalidParam {
        name: name.to_owned(),
        reason: reason.into(),
    })
}
