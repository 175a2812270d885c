//! Who may call the private functions (ingest-trigger, classify-image).
//!
//! In the cloud their only callers are Cloud Scheduler and Pub/Sub push, each
//! sending a Google-signed OIDC identity token. Cloud Run's IAM checks that
//! token before a request reaches us; with `REQUIRE_OIDC=true` (what Terraform
//! sets) the functions check it again themselves ([`OidcVerifier`]), so a
//! service made public by mistake still lets no one in. Health checks stay
//! open; local mode (`catdog serve`) has no such callers and checks nothing.

mod jwks;
mod oidc;

pub use jwks::JwksOptions;
pub use oidc::{Caller, GOOGLE_ISSUERS, OidcVerifier, VerifierOptions};

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use catdog_core::config::{ConfigError, Env};
use catdog_server::http::ApiError;
use catdog_server::startup::{Backends, StartupError, run_service};

/// Why a request's identity token was refused. The texts never include the
/// token; they are logged, and the caller only gets a generic 401 (or a 503
/// when the keys cannot be had).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token is signed with {0}, not RS256")]
    WrongAlgorithm(String),
    #[error("the token names a key the keys URL does not publish (kid {0})")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued by Google")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token carries no email")]
    NoEmail,
    #[error("the token's email {0} is not verified")]
    EmailUnverified(String),
    #[error("{0} is not allowed to call this service")]
    EmailNotAllowed(String),
    #[error("cannot get the token signing keys: {0}")]
    KeysUnavailable(String),
}

impl AuthError {
    /// The fault is ours (the keys could not be had), not the caller's: the
    /// answer is 503, so Pub/Sub and the Scheduler try again later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable(_))
    }
}

/// The `REQUIRE_OIDC`, `OIDC_AUDIENCE`, `OIDC_ALLOWED_EMAILS` and
/// `OIDC_JWKS_URL` settings.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub required: bool,
    pub audience: Option<String>,
    pub allowed_emails: Vec<String>,
    pub jwks_url: String,
}

impl OidcConfig {
    /// Reads the settings. With `REQUIRE_OIDC=true`, a missing audience or
    /// an empty list of callers is an error: the service would refuse
    /// everyone (or, worse, check nothing).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let required = env.flag("REQUIRE_OIDC")?;
        let audience = env.string("OIDC_AUDIENCE").map(|a| a.trim().to_owned());
        let allowed_emails: Vec<String> = env
            .string("OIDC_ALLOWED_EMAILS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        let jwks_url = env.required("OIDC_JWKS_URL")?;
        if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
            return Err(ConfigError {
                var: "OIDC_JWKS_URL",
                reason: format!("{jwks_url:?} must start with https:// or http://"),
            });
        }
        if required {
            if audience.is_none() {
                return Err(ConfigError {
                    var: "OIDC_AUDIENCE",
                    reason: "must be set when REQUIRE_OIDC is true".to_owned(),
                });
            }
            if allowed_emails.is_empty() {
                return Err(ConfigError {
                    var: "OIDC_ALLOWED_EMAILS",
                    reason: "must name at least one caller when REQUIRE_OIDC is true".to_owned(),
                });
            }
        }
        Ok(Self {
            required,
            audience,
            allowed_emails,
            jwks_url,
        })
    }

    /// The verifier these settings call for; `None` when `REQUIRE_OIDC` is off.
    pub fn verifier(&self, options: VerifierOptions) -> Result<Option<OidcVerifier>, ConfigError> {
        if !self.required {
            return Ok(None);
        }
        let audience = self.audience.as_deref().ok_or(ConfigError {
            var: "OIDC_AUDIENCE",
            reason: "must be set when REQUIRE_OIDC is true".to_owned(),
        })?;
        OidcVerifier::new(audience, &self.allowed_emails, &self.jwks_url, options)
            .map(Some)
            .map_err(|e| ConfigError {
                var: "OIDC_JWKS_URL",
                reason: format!("cannot set up the HTTP client: {e}"),
            })
    }
}

/// `routes` with every request checked by `verifier`, or unchanged (with a
/// warning in the log) when there is no verifier. Apply it before merging
/// the health checks, which must stay open.
pub fn guard(routes: Router, verifier: Option<OidcVerifier>) -> Router {
    match verifier {
        Some(verifier) => routes.route_layer(axum::middleware::from_fn_with_state(
            Arc::new(verifier),
            require_identity,
        )),
        None => {
            tracing::warn!(
                "REQUIRE_OIDC is false: the private routes accept any caller that reaches them"
            );
            routes
        }
    }
}

async fn require_identity(
    State(verifier): State<Arc<OidcVerifier>>,
    mut request: Request,
    next: Next,
) -> Response {
    let checked = match bearer_token(request.headers()) {
        Ok(token) => verifier.verify(token).await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(caller) => {
            tracing::debug!(caller = %caller.email, "identity token verified");
            request
                .extensions_mut()
                .insert(catdog_server::http::CallerIdentity(caller.email));
            next.run(request).await
        }
        Err(e) => refuse(&e),
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::NotBearer);
    }
    Ok(token)
}

fn refuse(reason: &AuthError) -> Response {
    if reason.is_unavailable() {
        tracing::warn!(%reason, "cannot check the caller's identity token");
        return ApiError::Unavailable("cannot check the identity token now".to_owned())
            .into_response();
    }
    tracing::warn!(%reason, "refused a request without a valid identity token");
    let mut response = ApiError::Unauthorized.into_response();
    // RFC 6750: a request without credentials gets the bare challenge; one
    // with a bad token is told so (but not why: that is in our log).
    if *reason != AuthError::Missing {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    response
}

/// Text taken from a token (a key id, an email), made safe for a log line:
/// no control characters, at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Runs a private function (ingest-trigger, classify-image) as
/// [`run_service`] does, with its routes, not the health checks, behind the
/// identity token check that `REQUIRE_OIDC` asks for (see [`guard`]).
/// The OIDC settings are checked before `build` runs.
pub fn run_private_service<F, Fut>(name: &'static str, build: F) -> ExitCode
where
    F: FnOnce(Env, Backends) -> Fut,
    Fut: Future<Output = Result<Router, StartupError>>,
{
    run_service(name, |env, backends| async move {
        let oidc = OidcConfig::from_env(&env)?;
        let verifier = oidc.verifier(VerifierOptions::default())?;
        let routes = build(env, backends).await?;
        Ok(guard(routes, verifier))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_map(vars.iter().copied())
    }

    #[test]
    fn required_oidc_needs_an_audience_and_callers() {
        let off = OidcConfig::from_env(&env(&[])).unwrap();
        assert!(!off.required);
        assert_eq!(off.jwks_url, "https://www.googleapis.com/oauth2/v3/certs");
        let err = OidcConfig::from_env(&env(&[("REQUIRE_OIDC", "true")])).unwrap_err();
        assert_eq!(err.var, "OIDC_AUDIENCE");
        let err = OidcConfig::from_env(&env(&[
            ("REQUIRE_OIDC", "true"),
            ("OIDC_AUDIENCE", "https://x.run.app"),
            ("OIDC_ALLOWED_EMAILS", " , "),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "OIDC_ALLOWED_EMAILS");
        let on = OidcConfig::from_env(&env(&[
            ("REQUIRE_OIDC", "true"),
            ("OIDC_AUDIENCE", "https://x.run.app"),
            (
                "OIDC_ALLOWED_EMAILS",
                "a@p.iam.gserviceaccount.com, b@p.iam.gserviceaccount.com",
            ),
        ]))
        .unwrap();
        assert_eq!(on.allowed_emails.len(), 2);
        let err = OidcConfig::from_env(&env(&[("OIDC_JWKS_URL", "file:///etc/keys")])).unwrap_err();
        assert_eq!(err.var, "OIDC_JWKS_URL");
    }

    #[test]
    fn only_bearer_tokens_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), Err(AuthError::Missing));
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(bearer_token(&headers), Err(AuthError::NotBearer), "{bad}");
        }
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer a.b.c"),
        );
        assert_eq!(bearer_token(&headers), Ok("a.b.c"));
    }

    #[test]
    fn text_from_tokens_is_made_printable_before_logging() {
        assert_eq!(printable("a\nb\u{1b}[31m", 64), "ab[31m");
        assert_eq!(printable(&"x".repeat(500), 64).len(), 64);
    }
}
