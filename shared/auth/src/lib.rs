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

use catdog_core::config::{CommonConfig, ConfigError};
use catdog_server::http::ApiError;
use catdog_server::startup::{Backends, ServiceSettings, StartupError, run_service};

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

/// The identity-token check's settings, as declared; [`OidcSettings::config`]
/// checks that they agree with each other.
#[derive(Clone, Debug, clap::Args)]
pub struct OidcSettings {
    /// accept only callers with a valid Google-signed identity token (`/healthz` and `/readyz` stay open); `catdog serve` never asks for one
    #[arg(
        long,
        env = "REQUIRE_OIDC",
        default_value = "false",
        action = clap::ArgAction::Set,
        value_parser = catdog_core::config::flag,
    )]
    pub require_oidc: bool,
    /// expected `aud` of identity tokens (the service URL)
    #[arg(long, env = "OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// comma-separated service accounts allowed to call
    #[arg(long, env = "OIDC_ALLOWED_EMAILS")]
    pub oidc_allowed_emails: Option<String>,
    /// where Google's token signing keys are published
    #[arg(
        long,
        env = "OIDC_JWKS_URL",
        default_value = "https://www.googleapis.com/oauth2/v3/certs",
        value_parser = catdog_core::config::http_url,
    )]
    pub oidc_jwks_url: url::Url,
}

impl OidcSettings {
    /// With `REQUIRE_OIDC=true`, a missing audience or an empty list of
    /// callers is an error: the service would refuse everyone (or, worse,
    /// check nothing).
    pub fn config(&self) -> Result<OidcConfig, ConfigError> {
        let allowed_emails: Vec<String> = self
            .oidc_allowed_emails
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if self.require_oidc {
            if self.oidc_audience.is_none() {
                return Err(ConfigError::new(
                    "OIDC_AUDIENCE",
                    "must be set when REQUIRE_OIDC is true",
                ));
            }
            if allowed_emails.is_empty() {
                return Err(ConfigError::new(
                    "OIDC_ALLOWED_EMAILS",
                    "must name at least one caller when REQUIRE_OIDC is true",
                ));
            }
        }
        Ok(OidcConfig {
            required: self.require_oidc,
            audience: self.oidc_audience.clone(),
            allowed_emails,
            jwks_url: self.oidc_jwks_url.to_string(),
        })
    }
}

/// Who may call, as [`OidcSettings`] say.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub required: bool,
    pub audience: Option<String>,
    pub allowed_emails: Vec<String>,
    pub jwks_url: String,
}

impl OidcConfig {
    /// The verifier these settings call for; `None` when `REQUIRE_OIDC` is off.
    pub fn verifier(&self, options: VerifierOptions) -> Result<Option<OidcVerifier>, ConfigError> {
        if !self.required {
            return Ok(None);
        }
        let audience = self.audience.as_deref().ok_or(ConfigError::new(
            "OIDC_AUDIENCE",
            "must be set when REQUIRE_OIDC is true",
        ))?;
        OidcVerifier::new(audience, &self.allowed_emails, &self.jwks_url, options)
            .map(Some)
            .map_err(|e| {
                ConfigError::new(
                    "OIDC_JWKS_URL",
                    format!("cannot set up the HTTP client: {e}"),
                )
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

/// The settings of a private function: the common ones and the
/// identity-token check's, beside its own (`S`).
#[derive(Clone, Debug, clap::Args)]
pub struct PrivateSettings<S: clap::Args> {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub oidc: OidcSettings,
    #[command(flatten)]
    pub own: S,
}

impl<S: clap::Args + Send + 'static> ServiceSettings for PrivateSettings<S> {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

/// Runs a private function (ingest-trigger, classify-image) as
/// [`run_service`] does, with its routes, not the health checks, behind the
/// identity token check that `REQUIRE_OIDC` asks for (see [`guard`]).
/// The OIDC settings are checked before `build` runs.
pub fn run_private_service<S, F, Fut>(name: &'static str, build: F) -> ExitCode
where
    S: clap::Args + Send + 'static,
    F: FnOnce(PrivateSettings<S>, Backends) -> Fut,
    Fut: Future<Output = Result<Router, StartupError>>,
{
    run_service(name, |settings: PrivateSettings<S>, backends| async move {
        let oidc = settings.oidc.config()?;
        let verifier = oidc.verifier(VerifierOptions::default())?;
        let routes = build(settings, backends).await?;
        Ok(guard(routes, verifier))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(vars: &[(&str, &str)]) -> Result<OidcConfig, ConfigError> {
        let settings: OidcSettings =
            catdog_core::config::parse(&catdog_core::config::Vars::from_map(vars.iter().copied()))?;
        settings.config()
    }

    #[test]
    fn required_oidc_needs_an_audience_and_callers() {
        let off = oidc(&[]).unwrap();
        assert!(!off.required);
        assert_eq!(off.jwks_url, "https://www.googleapis.com/oauth2/v3/certs");
        let err = oidc(&[("REQUIRE_OIDC", "true")]).unwrap_err();
        assert_eq!(err.var, "OIDC_AUDIENCE");
        let err = oidc(&[
            ("REQUIRE_OIDC", "true"),
            ("OIDC_AUDIENCE", "https://x.run.app"),
            ("OIDC_ALLOWED_EMAILS", " , "),
        ])
        .unwrap_err();
        assert_eq!(err.var, "OIDC_ALLOWED_EMAILS");
        let on = oidc(&[
            ("REQUIRE_OIDC", "true"),
            ("OIDC_AUDIENCE", "https://x.run.app"),
            (
                "OIDC_ALLOWED_EMAILS",
                "a@p.iam.gserviceaccount.com, b@p.iam.gserviceaccount.com",
            ),
        ])
        .unwrap();
        assert_eq!(on.allowed_emails.len(), 2);
        let err = oidc(&[("OIDC_JWKS_URL", "file:///etc/keys")]).unwrap_err();
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
