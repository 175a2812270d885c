//! ingest-trigger's routes as the binary assembles them (`POST /ingest`
//! behind the identity token check, the health checks beside it, the common
//! layers around), served on loopback, against a stand-in for Google's
//! keys URL that publishes keys this test made. Tokens are signed here.
//!
//! The binaries themselves are tested in functions/*/tests/oidc.rs; this
//! suite varies what the binaries cannot: how often keys may be fetched and
//! how long a fetch may take.

use catdog_testing as support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catdog::auth::{self, JwksOptions, OidcVerifier, VerifierOptions};
use catdog::config::Vars;
use catdog::ingest;
use catdog::startup;
use reqwest::StatusCode;
use serde_json::Value;
use support::oidc_issuer::{AUDIENCE, Behaviour, CALLER, JwksServer, SigningKey, google_claims};
use support::pubsub_server::PubsubServer;

/// ingest-trigger's router on a loopback port, over SQLite and a folder,
/// ingesting from an empty folder (so a run is quick and changes nothing).
struct Service {
    base: String,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
    _pubsub: PubsubServer,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn options(min_refetch_interval: Duration, fetch_timeout: Duration) -> VerifierOptions {
    VerifierOptions {
        jwks: JwksOptions {
            fetch_timeout,
            min_refetch_interval,
        },
        ..VerifierOptions::default()
    }
}

async fn start_service(jwks_url: &str, options: VerifierOptions) -> Service {
    let dir = std::env::temp_dir().join(format!("catdog-oidc-{}", catdog::domain::ImageId::new()));
    std::fs::create_dir_all(dir.join("incoming")).unwrap();
    let pubsub = PubsubServer::start().await;
    let vars = Vars::from_map([
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("catdog.db").display()),
        ),
        (
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        ),
        (
            "INGEST_SOURCES",
            format!("folder:{}", dir.join("incoming").display()),
        ),
        ("PUBSUB_TOPIC", "images".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", "catdog-test".to_owned()),
        ("PUBSUB_ENDPOINT", pubsub.endpoint()),
    ]);
    let (backends, ingestor) = support::ingest_trigger::ingestor(&vars).await;
    let verifier = OidcVerifier::new(AUDIENCE, &[CALLER.to_owned()], jwks_url, options).unwrap();
    let app = startup::service_app(
        auth::guard(ingest::routes(Arc::new(ingestor)), Some(verifier)),
        &backends,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(catdog::http::serve(
        listener,
        app,
        catdog::http::ServeOptions::default(),
        std::future::pending(),
    ));
    Service {
        base,
        dir,
        task,
        _pubsub: pubsub,
    }
}

struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    content_type: Option<String>,
    body: Value,
    took: Duration,
}

async fn post_ingest(
    client: &reqwest::Client,
    service: &Service,
    authorization: Option<&str>,
) -> Answer {
    let mut request = client.post(format!("{}/ingest", service.base));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
        .await
        .expect("the service answers within 20 s")
        .expect("an HTTP answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, www_authenticate, content_type) = (
        response.status(),
        header("www-authenticate"),
        header("content-type"),
    );
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        www_authenticate,
        content_type,
        body,
        took: started.elapsed(),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST /ingest` with a valid Google token signed by `key`.
async fn post_signed(client: &reqwest::Client, service: &Service, key: &SigningKey) -> Answer {
    let authorization = bearer(&key.sign(&google_claims()));
    post_ingest(client, service, Some(&authorization)).await
}

impl Answer {
    fn expect(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
    }
}

#[tokio::test]
async fn only_valid_google_tokens_for_our_audience_and_caller_start_a_run() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(&jwks.url(), VerifierOptions::default()).await;
    let client = reqwest::Client::new();

    support::private_function::health_checks_need_no_token(&client, &service.base).await;

    for case in support::oidc_issuer::cases(&key) {
        let answer = post_ingest(&client, &service, case.authorization.as_deref()).await;
        if !case.refused {
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{}: {}",
                case.name,
                answer.body
            );
            assert!(
                answer.body["fetched"].is_number(),
                "{}: {}",
                case.name,
                answer.body
            );
            continue;
        }
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{}: {}",
            case.name,
            answer.body
        );
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json"),
            "{}",
            case.name
        );
        assert_eq!(answer.body["status"], 401, "{}", case.name);
        let challenge = answer.www_authenticate.unwrap_or_default();
        if case.authorization.is_none() {
            assert_eq!(challenge, "Bearer", "{}", case.name);
        } else {
            assert_eq!(challenge, "Bearer error=\"invalid_token\"", "{}", case.name);
        }
    }
    // One fetch served every token: the keys were cached (max-age=3600),
    // and the unknown kid refetched at most once.
    assert!(jwks.fetches() <= 2, "{} fetches", jwks.fetches());
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart_and_a_retired_one_stops_working() {
    let old = SigningKey::generate("key-old");
    let new = SigningKey::generate("key-new");
    let jwks = JwksServer::start(&[&old]).await;
    let min_refetch = Duration::from_millis(200);
    let service = start_service(&jwks.url(), options(min_refetch, Duration::from_secs(2))).await;
    let client = reqwest::Client::new();

    let answer = post_signed(&client, &service, &old).await;
    answer.expect(StatusCode::OK);
    assert_eq!(jwks.fetches(), 1);

    // Google publishes the new key next to the old one, then signs with it.
    // (no-store from here on, so that the withdrawal below is seen at once.)
    jwks.set_cache_control("no-store");
    jwks.publish(&[&old, &new]);
    tokio::time::sleep(min_refetch).await;
    let answer = post_signed(&client, &service, &new).await;
    answer.expect(StatusCode::OK);
    assert_eq!(jwks.fetches(), 2, "the unknown kid made one fetch");
    let answer = post_signed(&client, &service, &old).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the old key still works while published"
    );

    // The old key is withdrawn: once the set is fetched again, it is refused.
    jwks.publish(&[&new]);
    tokio::time::sleep(min_refetch).await;
    let answer = post_signed(&client, &service, &old).await;
    answer.expect(StatusCode::UNAUTHORIZED);
    let answer = post_signed(&client, &service, &new).await;
    answer.expect(StatusCode::OK);
}

#[tokio::test]
async fn tokens_with_made_up_key_ids_do_not_make_us_hammer_the_keys_url() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(
        &jwks.url(),
        options(Duration::from_secs(60), Duration::from_secs(2)),
    )
    .await;
    let client = reqwest::Client::new();
    let answer = post_signed(&client, &service, &key).await;
    assert_eq!(answer.status, StatusCode::OK);

    let forger = SigningKey::generate("unused");
    let forged: Vec<String> = (0..100)
        .map(|i| {
            bearer(&forger.sign_with_header(
                &serde_json::json!({"alg": "RS256", "kid": format!("made-up-{i}")}),
                &google_claims(),
            ))
        })
        .collect();
    let answers = futures::future::join_all(
        forged
            .iter()
            .map(|authorization| post_ingest(&client, &service, Some(authorization))),
    )
    .await;
    assert!(answers.iter().all(|a| a.status == StatusCode::UNAUTHORIZED));
    assert_eq!(
        jwks.fetches(),
        1,
        "made-up key ids fetched nothing within the interval"
    );

    // The valid caller is not slowed down by them.
    let answer = post_signed(&client, &service, &key).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_keys_url_that_refuses_connections_is_a_quick_503_and_recovery_needs_no_restart() {
    // A port that was free a moment ago: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/oauth2/v3/certs", closed.local_addr().unwrap());
    drop(closed);
    let key = SigningKey::generate("key-1");
    let min_refetch = Duration::from_millis(300);
    let service = start_service(&closed_url, options(min_refetch, Duration::from_secs(2))).await;
    let client = reqwest::Client::new();
    let token = bearer(&key.sign(&google_claims()));
    for _ in 0..3 {
        let answer = post_ingest(&client, &service, Some(&token)).await;
        answer.expect(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json")
        );
        assert!(
            answer.took < Duration::from_secs(1),
            "took {:?}",
            answer.took
        );
    }
    // A malformed token is still the caller's fault, keys or not.
    let answer = post_ingest(&client, &service, Some("Bearer nonsense")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_keys_url_that_fails_then_recovers() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(&[&key]).await;
    jwks.behave(Behaviour::Fail);
    let min_refetch = Duration::from_millis(300);
    let service = start_service(&jwks.url(), options(min_refetch, Duration::from_secs(2))).await;
    let client = reqwest::Client::new();
    let token = bearer(&key.sign(&google_claims()));
    let answer = post_ingest(&client, &service, Some(&token)).await;
    answer.expect(StatusCode::SERVICE_UNAVAILABLE);
    jwks.behave(Behaviour::Serve);
    tokio::time::sleep(min_refetch).await;
    let answer = post_ingest(&client, &service, Some(&token)).await;
    answer.expect(StatusCode::OK);
}

#[tokio::test]
async fn a_keys_url_that_hangs_costs_one_bounded_wait_not_a_hang() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(&[&key]).await;
    jwks.behave(Behaviour::Hang);
    let fetch_timeout = Duration::from_millis(500);
    let service = start_service(&jwks.url(), options(Duration::from_secs(60), fetch_timeout)).await;
    let client = reqwest::Client::new();
    let token = bearer(&key.sign(&google_claims()));
    // Twenty callers at once: one fetch, and nobody waits much longer than it.
    let answers =
        futures::future::join_all((0..20).map(|_| post_ingest(&client, &service, Some(&token))))
            .await;
    for answer in &answers {
        answer.expect(StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            answer.took < fetch_timeout + Duration::from_secs(1),
            "took {:?}",
            answer.took
        );
    }
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn keys_fetched_before_an_outage_keep_working_through_it() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(&[&key]).await;
    // Keys that must be fetched again as soon as the interval allows.
    jwks.set_cache_control("max-age=0");
    let min_refetch = Duration::from_millis(200);
    let fetch_timeout = Duration::from_millis(500);
    let service = start_service(&jwks.url(), options(min_refetch, fetch_timeout)).await;
    let client = reqwest::Client::new();
    let token = bearer(&key.sign(&google_claims()));
    assert_eq!(
        post_ingest(&client, &service, Some(&token)).await.status,
        StatusCode::OK
    );

    for behaviour in [Behaviour::Fail, Behaviour::Hang] {
        jwks.behave(behaviour);
        tokio::time::sleep(min_refetch).await;
        let fetches = jwks.fetches();
        let answer = post_ingest(&client, &service, Some(&token)).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{behaviour:?}: {}",
            answer.body
        );
        assert_eq!(
            jwks.fetches(),
            fetches + 1,
            "{behaviour:?}: it did try to refresh"
        );
        assert!(answer.took < fetch_timeout + Duration::from_secs(1));
    }
}

#[tokio::test]
async fn keys_are_cached_as_long_as_cache_control_says() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(&[&key]).await;
    let service = start_service(
        &jwks.url(),
        options(Duration::from_millis(1), Duration::from_secs(2)),
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let token = bearer(&key.sign(&google_claims()));
        assert_eq!(
            post_ingest(&client, &service, Some(&token)).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(jwks.fetches(), 1, "max-age=3600: fetched once");
}
