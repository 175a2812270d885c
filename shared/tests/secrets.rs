//! The secrets (the database password inside `DATABASE_URL`, `THECATAPI_KEY`)
//! never show: not in `Debug` output of the settings, not in errors about an
//! unreachable database, and not in the log, the run summary or
//! `/api/v1/stats` when The Cat API answers with our key in its error.
//! The binaries' own logs are checked in functions/ingest-trigger/tests/secrets.rs.

use catdog_testing as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use catdog::api::{self, ApiState};
use catdog::auth::OidcSettings;
use catdog::config::{ApiConfig, CommonConfig, Vars, parse};
use catdog::http::ApiError;
use catdog::ingest::IngestSettings;
use catdog::store::{self, ConnectOptions};
use http_body_util::BodyExt;
use support::log_capture::LogCapture;
use support::secrets::{API_KEY, DB_PASSWORD, assert_hidden};
use tower::ServiceExt;

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn debug_output_of_the_settings_hides_the_secrets() {
    let vars = Vars::from_map([
        (
            "DATABASE_URL",
            format!("postgres://catdog:{DB_PASSWORD}@127.0.0.1:5432/catdog"),
        ),
        ("THECATAPI_KEY", API_KEY.to_owned()),
        ("INGEST_SOURCES", "thecatapi".to_owned()),
    ]);
    assert_hidden("Vars", &format!("{vars:?}"));
    assert_hidden(
        "CommonConfig",
        &format!("{:?}", parse::<CommonConfig>(&vars).unwrap()),
    );
    let ingest: IngestSettings = parse(&vars).unwrap();
    assert_hidden("IngestSettings", &format!("{ingest:?}"));
    assert_hidden(
        "IngestConfig",
        &format!("{:?}", ingest.config(parse(&vars).unwrap())),
    );
    assert_hidden(
        "ApiConfig",
        &format!("{:?}", parse::<ApiConfig>(&vars).unwrap()),
    );
    assert_hidden(
        "OidcSettings",
        &format!("{:?}", parse::<OidcSettings>(&vars).unwrap()),
    );
    // A secret that does not parse is not repeated in the error either.
    let err = parse::<CommonConfig>(&Vars::from_map([(
        "DATABASE_URL",
        format!("mysql://catdog:{DB_PASSWORD}@db/catdog"),
    )]))
    .unwrap_err();
    assert_hidden("the settings error", &err.to_string());
}

#[tokio::test]
async fn an_unreachable_database_is_reported_without_its_password() {
    let url = format!(
        "postgres://catdog:{DB_PASSWORD}@127.0.0.1:{}/catdog",
        closed_port()
    );
    let options = ConnectOptions {
        pool_size: 2,
        timeout: Duration::from_millis(500),
    };
    let error = match store::connect(&url, &options).await {
        Err(e) => e,
        Ok(store) => store.ping().await.expect_err("nothing listens there"),
    };
    assert_hidden("the store error", &format!("{error} {error:?}"));
    let response = ApiError::from(error).into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_hidden("the 503 body", &String::from_utf8_lossy(&body));

    // A URL the driver cannot parse, password and all.
    let bad = format!("postgres://catdog:{DB_PASSWORD}@127.0.0.1:notaport/catdog");
    if let Err(error) = store::connect(&bad, &options).await {
        assert_hidden("the bad URL error", &format!("{error} {error:?}"));
    }
}

/// A Cat API that echoes the key it was sent in each kind of error answer.
#[derive(Clone, Default)]
struct EchoingCatApi {
    keys_seen: Arc<Mutex<Vec<String>>>,
}

async fn search(State(api): State<EchoingCatApi>, headers: HeaderMap) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let attempt = {
        let mut seen = api.keys_seen.lock().unwrap();
        seen.push(key.clone());
        seen.len()
    };
    let echo = format!("invalid api key {key}");
    match attempt % 4 {
        // A JSON string where a list was expected: serde quotes it.
        1 => axum::Json(serde_json::json!(echo)).into_response(),
        // An error status with the key in the body.
        2 => (StatusCode::UNAUTHORIZED, echo).into_response(),
        // A list whose entry is not a picture URL.
        3 => axum::Json(serde_json::json!([{"id": "x", "url": echo, "width": 1, "height": 1}]))
            .into_response(),
        // Not JSON at all.
        _ => echo.into_response(),
    }
}

#[tokio::test]
async fn an_api_answer_that_echoes_our_key_stays_out_of_the_log_the_summary_and_stats() {
    let logs = LogCapture::install();
    let api = EchoingCatApi::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/images/search", get(search))
        .with_state(api.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir =
        std::env::temp_dir().join(format!("catdog-secrets-{}", catdog::domain::ImageId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let vars = Vars::from_map([
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("catdog.db").display()),
        ),
        (
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        ),
        ("INGEST_SOURCES", "thecatapi".to_owned()),
        ("THECATAPI_BASE_URL", base),
        ("THECATAPI_KEY", API_KEY.to_owned()),
        ("PUBSUB_TOPIC", "images".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", "catdog-test".to_owned()),
        // Nothing is published: no picture is ever stored.
        ("PUBSUB_ENDPOINT", "http://127.0.0.1:9".to_owned()),
    ]);
    let (backends, ingestor) = support::ingest_trigger::ingestor(&vars).await;

    for _ in 0..4 {
        let summary = ingestor.run_once().await.expect("the run itself works");
        assert!(!summary.errors.is_empty(), "the source failed: {summary:?}");
        assert_hidden("the run summary", &serde_json::to_string(&summary).unwrap());
        assert_hidden("the run summary (Debug)", &format!("{summary:?}"));
    }
    let seen = api.keys_seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 4 && seen.iter().all(|k| k == API_KEY),
        "the key was sent: {seen:?}"
    );

    let router = api::router(ApiState::new(
        Arc::clone(&backends.store),
        parse::<ApiConfig>(&vars).unwrap(),
    ));
    let response = router
        .oneshot(Request::get("/api/v1/stats").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stats = String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes())
        .into_owned();
    assert!(stats.contains("thecatapi"), "{stats}");
    assert_hidden("/api/v1/stats", &stats);

    let log = logs.text();
    assert!(
        log.contains("source failed"),
        "the failures were logged:\n{log}"
    );
    assert_hidden("the log", &log);
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
