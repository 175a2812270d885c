//! Google's token signing keys (a JSON Web Key Set), fetched on demand and
//! cached.
//!
//! - The set is kept for as long as its `Cache-Control: max-age` says
//!   (Google publishes about six hours), at most a day.
//! - A token naming a key the set lacks makes us fetch again: that is how a
//!   key rotation reaches a running process without a restart.
//! - Fetches, for whatever reason, happen at most once per
//!   `min_refetch_interval`, one at a time: a flood of tokens with made-up key
//!   ids cannot make us hammer the keys URL, and a keys URL that is down costs
//!   each request at most one bounded wait, not one per request.
//! - When a fetch fails, keys fetched before stay in use (Google announces a
//!   new key well before signing with it and keeps the old one for a while).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::time::Instant;

use super::{AuthError, printable};

/// The largest key set we read. Google's is about 2 KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long keys are kept when the answer carries no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Keys are fetched again after a day at the latest, whatever `max-age` says.
const LONGEST_MAX_AGE: Duration = Duration::from_secs(86_400);

/// The keys we hold and until when they are fresh.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// `None` until a fetch has succeeded.
    fresh_until: Option<Instant>,
}

impl KeySet {
    fn is_fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_some_and(|until| now < until)
    }
}

/// How the key set is fetched.
#[derive(Clone, Debug)]
pub struct JwksOptions {
    /// A fetch that takes longer fails (connection and answer together).
    pub fetch_timeout: Duration,
    /// Fetches happen at most this often, whatever the tokens say.
    pub min_refetch_interval: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_secs(3),
            min_refetch_interval: Duration::from_secs(30),
        }
    }
}

pub(super) struct JwksCache {
    url: String,
    client: reqwest::Client,
    options: JwksOptions,
    keys: RwLock<Arc<KeySet>>,
    /// Held while fetching, so that one request fetches and the others wait
    /// for its result; holds when the last fetch started.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub(super) fn new(url: String, options: JwksOptions) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(options.fetch_timeout)
            .connect_timeout(options.fetch_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Self {
            url,
            client,
            options,
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a whole Arc: nothing is half-written.
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The key named `kid`, fetching the set when it is stale or lacks it.
    pub(super) async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, AuthError> {
        let held = self.snapshot();
        if held.is_fresh(Instant::now())
            && let Some(key) = held.keys.get(kid)
        {
            return Ok(Arc::clone(key));
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited.
        let held = self.snapshot();
        let now = Instant::now();
        if held.is_fresh(now)
            && let Some(key) = held.keys.get(kid)
        {
            return Ok(Arc::clone(key));
        }
        let too_soon =
            last_fetch.is_some_and(|at| now.duration_since(at) < self.options.min_refetch_interval);
        if too_soon {
            return match held.keys.get(kid) {
                // Stale but known: better than refusing a valid caller.
                Some(key) => Ok(Arc::clone(key)),
                None if held.fresh_until.is_none() => Err(AuthError::KeysUnavailable(
                    "the last attempt to fetch them failed; trying again shortly".to_owned(),
                )),
                None => Err(AuthError::UnknownKey(printable(kid, 64))),
            };
        }
        *last_fetch = Some(now);
        match self.fetch().await {
            Ok(fetched) => {
                tracing::info!(
                    keys = fetched.keys.len(),
                    kids = ?fetched.keys.keys().collect::<Vec<_>>(),
                    "fetched the identity token signing keys"
                );
                let found = fetched.keys.get(kid).cloned();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fetched);
                found.ok_or_else(|| AuthError::UnknownKey(printable(kid, 64)))
            }
            Err(reason) => {
                tracing::warn!(url = %self.url, %reason, "cannot fetch the identity token signing keys");
                match held.keys.get(kid) {
                    Some(key) => Ok(Arc::clone(key)),
                    None => Err(AuthError::KeysUnavailable(reason)),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(fetch_failure)?;
        if !response.status().is_success() {
            return Err(format!("the keys URL answered {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map_or(DEFAULT_MAX_AGE, max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_failure)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_key_set(&body)?;
        Ok(KeySet {
            keys,
            fresh_until: Some(Instant::now() + max_age),
        })
    }
}

/// `{"keys": [{"kty": "RSA", "kid": …, "n": …, "e": …, "alg": "RS256", "use": "sig"}]}`
#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
}

/// The RS256 signing keys of a key set, by key id. Other keys are skipped;
/// a set without a single usable key is an error.
fn parse_key_set(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|e| format!("the key set is not a JWK set: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in set.keys {
        let usable = jwk.kty == "RSA"
            && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
            && jwk.use_.as_deref().is_none_or(|u| u == "sig");
        let (true, Some(kid), Some(n), Some(e)) = (usable, jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        match DecodingKey::from_rsa_components(&n, &e) {
            Ok(key) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(err) => {
                tracing::warn!(kid = %printable(&kid, 64), error = %err, "skipping a malformed signing key")
            }
        }
    }
    if keys.is_empty() {
        return Err("the key set holds no RS256 signing key".to_owned());
    }
    Ok(keys)
}

/// How long an answer may be kept, from its `Cache-Control` header.
fn max_age(cache_control: &str) -> Duration {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse::<u64>().ok();
        }
    }
    age.map_or(DEFAULT_MAX_AGE, Duration::from_secs)
        .min(LONGEST_MAX_AGE)
}

/// Why a fetch failed, in a few words (reqwest's own text omits the cause).
fn fetch_failure(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "the keys URL did not answer in time".to_owned()
    } else if error.is_connect() {
        "cannot connect to the keys URL".to_owned()
    } else {
        error.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_follows_cache_control() {
        assert_eq!(
            max_age("public, max-age=19379, must-revalidate, no-transform"),
            Duration::from_secs(19379)
        );
        assert_eq!(max_age("no-store"), Duration::ZERO);
        assert_eq!(max_age("public"), DEFAULT_MAX_AGE);
        assert_eq!(max_age("max-age=nonsense"), DEFAULT_MAX_AGE);
        assert_eq!(max_age("max-age=99999999"), LONGEST_MAX_AGE);
    }

    #[test]
    fn only_rs256_signing_keys_are_kept() {
        let body = br#"{"keys": [
            {"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB", "alg": "RS256", "use": "sig"},
            {"kty": "RSA", "kid": "enc", "n": "AQAB", "e": "AQAB", "use": "enc"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AQAB", "y": "AQAB"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "bad", "n": "!!!", "e": "AQAB"}
        ]}"#;
        let keys = parse_key_set(body).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(parse_key_set(br#"{"keys": []}"#).is_err());
        assert!(parse_key_set(b"<html>").is_err());
    }
}
