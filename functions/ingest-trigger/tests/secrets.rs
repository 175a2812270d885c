//! The ingest-trigger binary, given a database URL with a password (for a
//! database that does not answer) and a Cat API key, never shows either:
//! not in its start-up log, not in the 503s it answers, not in the log of
//! the failures.

use catdog_testing::secrets::{API_KEY, DB_PASSWORD, assert_hidden};
use catdog_testing::service_process;

use std::path::Path;

use reqwest::StatusCode;
use service_process::ServiceProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_the_database_password_nor_the_api_key_reach_the_log_or_the_answers() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ingest-trigger-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = [
        (
            "DATABASE_URL",
            format!("postgres://catdog:{DB_PASSWORD}@127.0.0.1:{closed_port}/catdog"),
        ),
        ("DATABASE_TIMEOUT_MS", "500".to_owned()),
        (
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        ),
        ("INGEST_SOURCES", "thecatapi".to_owned()),
        (
            "THECATAPI_BASE_URL",
            format!("http://127.0.0.1:{closed_port}"),
        ),
        ("THECATAPI_KEY", API_KEY.to_owned()),
        ("PUBSUB_TOPIC", "images".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", "catdog-test".to_owned()),
        ("PUBSUB_ENDPOINT", "http://127.0.0.1:9".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    let mut service = ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_ingest-trigger")),
        &env,
        dir.join("ingest-trigger.log"),
    )
    .await;
    let client = reqwest::Client::new();
    let readyz = client
        .get(format!("{}/readyz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_hidden("/readyz", &readyz.text().await.unwrap());
    let ingest = client
        .post(format!("{}/ingest", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_hidden("POST /ingest", &ingest.text().await.unwrap());

    let log = service.stop();
    assert!(log.contains("listening"), "the start-up was logged:\n{log}");
    assert_hidden("the log", &log);
    let _ = std::fs::remove_dir_all(&dir);
}
