//! `catdog serve` (every route in one process: the read API, `POST /ingest`,
//! `POST /pubsub/push`, `/media/…`) against hostile callers, over HTTP.
//! Hostile pictures through the push route: shared/tests/hostile_http.rs.
//! Nothing may be a 5xx, the process stays up, and the database file next to
//! the pictures can never be read through `/media`.
//!
//! Needs the model (model/build.sh).

use crate::local_serve;
use catdog_testing::service_process;

use std::path::Path;

use catdog::store::{ImageStore as _, SqliteStore};
use reqwest::StatusCode;
use service_process::{ServiceProcess, http_client};

struct Serve {
    process: ServiceProcess,
    client: reqwest::Client,
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Serve {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = local_serve::data_store(&data).await;
        let empty_source = local_serve::nothing_to_ingest(dir.path());
        let env = [
            (
                "INGEST_SOURCES",
                format!("folder:{}", empty_source.display()),
            ),
            ("INGEST_INTERVAL_SECS", "3600".to_owned()),
            (
                "MODEL_DIR",
                catdog_testing::model::model_dir().display().to_string(),
            ),
        ];
        let mut command = ServiceProcess::command(Path::new(env!("CARGO_BIN_EXE_catdog")), &env);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .arg("--web-dir")
            .arg(dir.path().join("no-page"));
        let mut process = ServiceProcess::spawn(command, dir.path().join("serve.log"));
        process.wait_until_ok("/healthz").await;
        Self {
            process,
            client: http_client(),
            store,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.process.base)
    }

    /// On a connection of its own: the server may answer 413 and close
    /// without reading the body, and the next request must not land on it.
    async fn post(&self, path: &str, body: Vec<u8>) -> (StatusCode, String) {
        match http_client().post(self.url(path)).body(body).send().await {
            Ok(response) => {
                let status = response.status();
                (status, response.text().await.unwrap_or_default())
            }
            // The server may answer 413 and close before reading it all.
            Err(e) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("connection closed: {e}"),
            ),
        }
    }

    /// Still answering, and nothing in its log says it failed.
    async fn alive(&self) {
        let health = self.client.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK, "catdog serve is gone");
        let log = self.process.log();
        assert!(
            !log.contains("\"severity\":\"ERROR\""),
            "an error logged for the caller's mistake:\n{log}"
        );
    }
}

#[tokio::test]
async fn oversized_and_malformed_post_bodies_are_4xx_and_start_nothing() {
    let serve = Serve::start().await;
    // Local mode ingests once at start-up, so only the gallery is compared.
    let shown = |s: catdog::store::GalleryState| (s.total_images, s.gallery_seq);
    let before = shown(serve.store.gallery_state().await.unwrap());

    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        ("/pubsub/push", vec![b' '; 64 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE),
        ("/pubsub/push", vec![b'{'; 10 << 20], StatusCode::PAYLOAD_TOO_LARGE),
        ("/ingest", vec![b'x'; 4 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE),
        ("/ingest", vec![b'x'; 10 << 20], StatusCode::PAYLOAD_TOO_LARGE),
        ("/pubsub/push", deep_json.as_bytes()[..60_000].to_vec(), StatusCode::BAD_REQUEST),
        ("/pubsub/push", b"\xff\xfe\x00{".to_vec(), StatusCode::BAD_REQUEST),
        (
            "/pubsub/push",
            br#"{"message":{"data":"eyJ2IjoxLCJpbWFnZV9pZCI6Ii4uLy4uL2V0Yy9wYXNzd2QiLCJvYmplY3QiOiIuLi8uLi9ldGMvcGFzc3dkIiwic2hhMjU2IjoiMCJ9","messageId":"1","publishTime":"t"},"subscription":"s"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, body, expected) in cases {
        let size = body.len();
        let (status, text) = serve.post(path, body).await;
        assert_eq!(status, expected, "POST {path} with {size} bytes: {text}");
    }
    serve.alive().await;
    assert_eq!(shown(serve.store.gallery_state().await.unwrap()), before);
}

#[tokio::test]
async fn media_paths_never_leave_the_objects_folder() {
    let serve = Serve::start().await;
    for path in [
        "/media/..%2Fcatdog.db",
        "/media/%2e%2e%2fcatdog.db",
        "/media/%2e%2e/catdog.db",
        "/media/thumbs/..%2F..%2Fcatdog.db",
        "/media/%2Fetc%2Fpasswd",
        "/media/..%5Ccatdog.db",
        "/media/%00",
        "/media/%FF%FE",
        "/media/thumbs/",
    ] {
        let response = serve.client.get(serve.url(path)).send().await.unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert!(status.is_client_error(), "{path}: {status}");
        assert!(
            !body.starts_with(b"SQLite format"),
            "{path} served the database"
        );
    }
    // A name that is not UTF-8 once decoded is as unknown as any other: a
    // 404 problem, not axum's plain-text 400 (on the read API too).
    for path in [
        "/media/%FF%FE",
        "/media/thumbs/%C3%28",
        "/api/v1/images/%FF%FE",
    ] {
        let response = serve.client.get(serve.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
        assert_eq!(content_type, "application/problem+json", "{path}");
    }
    serve.alive().await;
}
