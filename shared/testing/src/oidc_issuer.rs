//! A stand-in for Google's token issuer: RSA keys made by the test (never
//! committed), identity tokens signed with them, and a loopback HTTP server
//! publishing the public keys as a JWK set, as
//! `https://www.googleapis.com/oauth2/v3/certs` does. It can be told to
//! publish other keys (a rotation), answer 500, or hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://accounts.google.com";
/// The service URL the tokens are minted for (`OIDC_AUDIENCE`).
pub const AUDIENCE: &str = "https://private-function-123456789.europe-west1.run.app";
/// The one caller allowed (`OIDC_ALLOWED_EMAILS`).
pub const CALLER: &str = "scheduler@catdog-test.iam.gserviceaccount.com";

/// An RSA key pair with a key id, made fresh for the test.
pub struct SigningKey {
    pub kid: String,
    pair: RsaKeyPair,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: RsaKeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key"),
        }
    }

    /// The public key as a JWK, as Google publishes it.
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A compact JWS of `claims` with `header`, signed RS256 by this key
    /// (whatever `alg` and `kid` the header claims).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("sign");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A token with Google's header for this key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The claims of a token Cloud Scheduler would send as `CALLER` to `AUDIENCE`.
pub fn google_claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "azp": "104857600000000000001",
        "sub": "104857600000000000001",
        "email": CALLER,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    })
}

/// `google_claims()` with `changes` applied (a `null` removes the claim).
pub fn claims_with(changes: Value) -> Value {
    let mut claims = google_claims();
    for (name, value) in changes.as_object().expect("an object of changes") {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Serve,
    Fail,
    Hang,
}

struct Published {
    keys: Vec<Value>,
    cache_control: String,
    behaviour: Behaviour,
}

struct Shared {
    published: Mutex<Published>,
    fetches: AtomicUsize,
}

/// The loopback keys URL.
pub struct JwksServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            published: Mutex::new(Published {
                keys: keys.iter().map(|k| k.jwk()).collect(),
                cache_control: "public, max-age=3600, must-revalidate, no-transform".to_owned(),
                behaviour: Behaviour::Serve,
            }),
            fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/oauth2/v3/certs", get(certs))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/oauth2/v3/certs", self.addr)
    }

    /// Publishes these keys from now on (a rotation).
    pub fn publish(&self, keys: &[&SigningKey]) {
        self.shared.published.lock().unwrap().keys = keys.iter().map(|k| k.jwk()).collect();
    }

    pub fn set_cache_control(&self, value: &str) {
        self.shared.published.lock().unwrap().cache_control = value.to_owned();
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.shared.published.lock().unwrap().behaviour = behaviour;
    }

    /// How many times the key set was asked for.
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn certs(State(shared): State<Arc<Shared>>) -> Response {
    shared.fetches.fetch_add(1, Ordering::SeqCst);
    let (keys, cache_control, behaviour) = {
        let published = shared.published.lock().unwrap();
        (
            published.keys.clone(),
            published.cache_control.clone(),
            published.behaviour,
        )
    };
    match behaviour {
        Behaviour::Serve => (
            [(header::CACHE_CONTROL, cache_control)],
            axum::Json(json!({ "keys": keys })),
        )
            .into_response(),
        Behaviour::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        Behaviour::Hang => std::future::pending().await,
    }
}

/// One request to a private route: its `Authorization` header (if any) and
/// the status the service must answer.
pub struct Case {
    pub name: &'static str,
    pub authorization: Option<String>,
    /// 401 for every refusal; the accepted ones get the route's own answer.
    pub refused: bool,
}

fn bearer(token: String) -> Option<String> {
    Some(format!("Bearer {token}"))
}

/// Every kind of token a caller might send, signed by `key` (the one the
/// keys URL publishes) unless said otherwise: the valid ones first.
pub fn cases(key: &SigningKey) -> Vec<Case> {
    let now = now();
    let impostor = SigningKey::generate(&key.kid);
    let unpublished = SigningKey::generate("kid-nobody-published");
    let valid = key.sign(&google_claims());
    let (header, _, signature) = {
        let mut parts = valid.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let other_payload =
        URL_SAFE_NO_PAD.encode(claims_with(json!({"email": "attacker@evil.example"})).to_string());
    let accept = |name, authorization| Case {
        name,
        authorization,
        refused: false,
    };
    let refuse = |name, authorization| Case {
        name,
        authorization,
        refused: true,
    };
    vec![
        accept("valid token", bearer(valid.clone())),
        accept(
            "valid token, issuer without https://",
            bearer(key.sign(&claims_with(json!({"iss": "accounts.google.com"})))),
        ),
        accept(
            "valid token, scheme in lower case",
            Some(format!("bearer {valid}")),
        ),
        accept(
            "expired 5 s ago: within the leeway",
            bearer(key.sign(&claims_with(json!({"exp": now - 5})))),
        ),
        refuse("no Authorization header", None),
        refuse(
            "Basic credentials",
            Some("Basic c2NoZWR1bGVyOmh1bnRlcjI=".to_owned()),
        ),
        refuse("Bearer without a token", Some("Bearer ".to_owned())),
        refuse("not a JWT", bearer("not-a-token".to_owned())),
        refuse("three garbage segments", bearer("a.b.c".to_owned())),
        refuse("oversized token", bearer("a".repeat(20_000))),
        refuse(
            "signed by another key with the same kid",
            bearer(impostor.sign(&google_claims())),
        ),
        refuse(
            "claims changed after signing",
            bearer(format!("{header}.{other_payload}.{signature}")),
        ),
        refuse(
            "signature removed",
            bearer(format!("{header}.{other_payload}.")),
        ),
        refuse(
            "alg none",
            bearer(format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": key.kid}).to_string()),
                URL_SAFE_NO_PAD.encode(google_claims().to_string())
            )),
        ),
        refuse(
            "alg HS256 (key confusion)",
            bearer(key.sign_with_header(
                &json!({"alg": "HS256", "kid": key.kid, "typ": "JWT"}),
                &google_claims(),
            )),
        ),
        refuse(
            "no kid",
            bearer(key.sign_with_header(&json!({"alg": "RS256", "typ": "JWT"}), &google_claims())),
        ),
        refuse("unknown kid", bearer(unpublished.sign(&google_claims()))),
        refuse(
            "wrong audience",
            bearer(key.sign(&claims_with(
                json!({"aud": "https://list-images-123456789.europe-west1.run.app"}),
            ))),
        ),
        refuse(
            "no audience",
            bearer(key.sign(&claims_with(json!({"aud": null})))),
        ),
        refuse(
            "wrong issuer",
            bearer(key.sign(&claims_with(json!({"iss": "https://evil.example"})))),
        ),
        refuse(
            "no issuer",
            bearer(key.sign(&claims_with(json!({"iss": null})))),
        ),
        refuse(
            "expired 10 minutes ago",
            bearer(key.sign(&claims_with(json!({"iat": now - 4200, "exp": now - 600})))),
        ),
        refuse(
            "no expiry",
            bearer(key.sign(&claims_with(json!({"exp": null})))),
        ),
        refuse(
            "not valid before an hour from now",
            bearer(key.sign(&claims_with(json!({"nbf": now + 3600})))),
        ),
        refuse(
            "issued an hour from now",
            bearer(key.sign(&claims_with(json!({"iat": now + 3600, "exp": now + 7200})))),
        ),
        refuse(
            "email not allowed",
            bearer(key.sign(&claims_with(
                json!({"email": "someone-else@catdog-test.iam.gserviceaccount.com"}),
            ))),
        ),
        refuse(
            "email not verified",
            bearer(key.sign(&claims_with(json!({"email_verified": false})))),
        ),
        refuse(
            "no email",
            bearer(key.sign(&claims_with(json!({"email": null})))),
        ),
    ]
}

/// The token of an `Authorization` value, for looking for it in logs.
pub fn token_of(authorization: &str) -> Option<&str> {
    authorization
        .split_once(' ')
        .map(|(_, token)| token.trim())
        .filter(|token| token.len() >= 20)
}

/// Sends each case to `POST url` with `body` (JSON) and checks the answer:
/// 401 for the refused ones, `accepted` for the others.
pub async fn send_cases(
    client: &reqwest::Client,
    url: &str,
    body: &'static str,
    accepted: reqwest::StatusCode,
    cases: &[Case],
) {
    for case in cases {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(value) = &case.authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let expected = if case.refused {
            reqwest::StatusCode::UNAUTHORIZED
        } else {
            accepted
        };
        assert_eq!(status, expected, "{}: {text}", case.name);
    }
}

/// A service's log after `cases` were sent: one line per refusal, with its
/// reason, and no token anywhere (neither whole nor its signature).
pub fn check_log(log: &str, cases: &[Case]) {
    let refusals = log
        .lines()
        .filter(|line| line.contains("refused a request without a valid identity token"))
        .count();
    assert_eq!(
        refusals,
        cases.iter().filter(|c| c.refused).count(),
        "one log line per refusal:\n{log}"
    );
    for reason in [
        "no Authorization header",
        "the token has expired",
        "the token is meant for another audience",
        "the token was not issued by Google",
        "the token's signature does not verify",
        "is not allowed to call this service",
        "is not verified",
    ] {
        assert!(
            log.contains(reason),
            "the log gives the reason {reason:?}:\n{log}"
        );
    }
    for case in cases {
        let Some(token) = case.authorization.as_deref().and_then(token_of) else {
            continue;
        };
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(
            !log.contains(token),
            "{}: the token is in the log",
            case.name
        );
        assert!(
            signature.len() < 20 || !log.contains(signature),
            "{}: the token's signature is in the log",
            case.name
        );
    }
}
