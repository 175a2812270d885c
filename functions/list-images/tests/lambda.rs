//! The `lambda` build answers a real API Gateway v2 (HTTP API) event, fed to
//! it through a loopback server speaking the Lambda runtime API.

#![cfg(feature = "lambda")]

use crate::support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use catdog::domain::Category;
use catdog::store::{ImageStore, SqliteStore};
use serde_json::Value;

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

fn api_gateway_event() -> Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/images",
        "rawQueryString": "limit=1",
        "headers": {"accept": "application/json", "host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "queryStringParameters": {"limit": "1"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc",
            "http": {
                "method": "GET",
                "path": "/images",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test"
            },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600800000i64
        },
        "isBase64Encoded": false
    })
}

#[derive(Clone, Default)]
struct Runtime {
    served: Arc<Mutex<bool>>,
    response: Arc<Mutex<Option<Value>>>,
}

async fn next(State(rt): State<Runtime>) -> impl IntoResponse {
    let first = {
        let mut served = rt.served.lock().unwrap();
        !std::mem::replace(&mut *served, true)
    };
    if !first {
        // One event is all this test sends; hold the next poll open.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let deadline = (chrono::Utc::now().timestamp_millis() + 30_000).to_string();
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", REQUEST_ID.parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", deadline.parse().unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:list-images"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".parse().unwrap(),
    );
    (headers, api_gateway_event().to_string())
}

async fn respond(State(rt): State<Runtime>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    assert_eq!(id, REQUEST_ID);
    *rt.response.lock().unwrap() = serde_json::from_slice(&body).ok();
    StatusCode::ACCEPTED
}

#[tokio::test]
async fn an_api_gateway_event_gets_the_images_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catdog.db");
    let store: Arc<dyn ImageStore> =
        Arc::new(SqliteStore::open(db.to_str().unwrap()).await.unwrap());
    store.migrate().await.unwrap();
    let cats = support::seed_classified(&store, Category::Cat, 2).await;

    let runtime = Runtime::default();
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .with_state(runtime.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut child = Command::new(env!("CARGO_BIN_EXE_list-images"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "list-images")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "group")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env(
            "STORAGE_URL",
            format!("file://{}", dir.path().join("objects").display()),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        if let Some(r) = runtime.response.lock().unwrap().clone() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no invocation response within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();

    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["cat_images"][0]["id"], cats[1].to_string());
    assert_eq!(body["cat_images"].as_array().unwrap().len(), 1);
    assert_eq!(body["total_images"], 2);
}
