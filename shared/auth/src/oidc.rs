//! Verifying a Google-signed OIDC identity token: the kind Cloud Scheduler and
//! Pub/Sub push attach as `Authorization: Bearer …` when they call a service
//! as a service account.
//!
//! Why this is hand-written: google-cloud-auth 1.18.0 (already a workspace
//! dependency; its `idtoken` feature, `credentials::idtoken::verifier`) was
//! checked and does not fit. It does take our audience, Google's two issuers,
//! `exp` with a clock skew, and a custom keys URL (`with_jwks_url`, so the
//! loopback key server of the tests would do). But:
//! - callers: `with_email` takes one address, compared case-sensitively; we
//!   allow a list (the Scheduler's and Pub/Sub's service accounts). `nbf` and
//!   a future `iat` are not checked.
//! - algorithm: it verifies with the algorithm the token's header names
//!   (RS256 or ES256), where we accept RS256 only.
//! - keys: its key cache keeps each key an hour whatever `Cache-Control`
//!   says, fetches again for every unknown `kid` (tokens with made-up kids
//!   hammer the keys URL), fetches with a client that has no timeout (a keys
//!   URL that hangs holds the request as long), keeps no key through an
//!   outage, and holds its cache lock across the fetch after `try_write`, so
//!   concurrent requests fail while one fetches. tests/oidc.rs pins each.
//! - errors: "unknown kid" and "keys URL down" are both `is_load_cert()`, so
//!   we could not answer 401 to the first and 503 to the second.
//!
//! Checking the email list ourselves would fix only the first point. Worth
//! checking again when google-cloud-auth moves on (1.19 was out, unchecked).

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::jwks::{JwksCache, JwksOptions};
use super::{AuthError, printable};

/// The issuers Google's identity tokens carry.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Tokens longer than this are refused unread (Google's are about 1 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Who called, once their token has been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub email: String,
}

/// How tokens are checked, besides the audience and the callers.
#[derive(Clone, Debug)]
pub struct VerifierOptions {
    pub jwks: JwksOptions,
    /// Clock difference tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        Self {
            jwks: JwksOptions::default(),
            leeway: Duration::from_secs(30),
        }
    }
}

/// Checks identity tokens: RS256 signature by one of the keys published at
/// the keys URL, Google's issuer, our audience, not expired, and a verified
/// email among the allowed callers.
pub struct OidcVerifier {
    keys: JwksCache,
    validation: Validation,
    allowed_emails: HashSet<String>,
    leeway: Duration,
}

/// The claims we read; jsonwebtoken checks `iss`, `aud`, `exp` and `nbf`.
#[derive(Deserialize)]
struct Claims {
    email: Option<String>,
    #[serde(default, deserialize_with = "bool_or_string")]
    email_verified: bool,
    iat: Option<u64>,
}

/// Google sends `email_verified` as a boolean; some issuers send `"true"`.
fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Text(t) => t.eq_ignore_ascii_case("true"),
    })
}

impl OidcVerifier {
    /// A verifier for tokens minted for `audience` on behalf of one of
    /// `allowed_emails`, with keys from `jwks_url`. Fetches nothing yet.
    pub fn new(
        audience: &str,
        allowed_emails: &[String],
        jwks_url: &str,
        options: VerifierOptions,
    ) -> Result<Self, reqwest::Error> {
        // Exactly one crypto backend is compiled in; installing it makes
        // that independent of cargo feature unification. A second install
        // (another verifier in the same process) is refused harmlessly.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&GOOGLE_ISSUERS);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = options.leeway.as_secs();
        Ok(Self {
            keys: JwksCache::new(jwks_url.to_owned(), options.jwks)?,
            validation,
            allowed_emails: allowed_emails
                .iter()
                .map(|e| e.trim().to_ascii_lowercase())
                .collect(),
            leeway: options.leeway,
        })
    }

    /// The caller, if `token` is a valid identity token for one of the
    /// allowed callers; otherwise why not. Never logs or returns the token.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Malformed(format!("unreadable header ({e})")))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("the header names no key (kid)".to_owned()))?;
        let key = self.keys.key(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|e| refusal(e.kind()))?
            .claims;
        let now = jsonwebtoken::get_current_timestamp();
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway.as_secs()))
        {
            return Err(AuthError::NotYetValid);
        }
        let email = claims.email.ok_or(AuthError::NoEmail)?;
        if !claims.email_verified {
            return Err(AuthError::EmailUnverified(printable(&email, 254)));
        }
        if !self.allowed_emails.contains(&email.to_ascii_lowercase()) {
            return Err(AuthError::EmailNotAllowed(printable(&email, 254)));
        }
        Ok(Caller { email })
    }
}

fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::WrongAlgorithm("not RS256".to_owned())
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::Malformed(format!("the claim {claim} is missing"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::Malformed(format!("the claim {claim} is not well formed"))
        }
        // Base64, JSON, UTF-8, a key that does not fit: a token we cannot read.
        other => AuthError::Malformed(format!("{other:?}").chars().take(120).collect()),
    }
}
