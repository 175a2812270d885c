//! `catdog serve` over a database seeded through the store API keeps the
//! original `GET /images` contract exactly, 422s included.

use crate::local_serve;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use catdog::domain::{Category, ImageId};
use catdog::store::SqliteStore;
use serde_json::Value;

async fn seed(store: &SqliteStore, category: Category) -> ImageId {
    catdog_testing::rows::insert_classified(store, category).await
}

/// `2026-11-23T10:15:30.123456`: UTC without a zone suffix.
fn is_naive_iso(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 26
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit())
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn seeded_serve_answers_the_original_contract() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = local_serve::data_store(&data).await;
    let mut cats = Vec::new();
    let mut dogs = Vec::new();
    for _ in 0..3 {
        cats.push(seed(&store, Category::Cat).await);
        dogs.push(seed(&store, Category::Dog).await);
    }
    seed(&store, Category::Other).await;
    let empty_source = local_serve::nothing_to_ingest(dir.path());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_catdog"))
            .arg("serve")
            .args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .arg("--web-dir")
            .arg(dir.path().join("no-page"))
            .env_clear()
            .env(
                "INGEST_SOURCES",
                format!("folder:{}", empty_source.display()),
            )
            .env("MODEL_DIR", catdog_testing::model::model_dir())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "catdog serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let body: Value = client
        .get(format!("{base}/images?limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let object = body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "cat_images",
            "dog_images",
            "last_retrieve_at",
            "total_images"
        ]
    );
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|item| {
                assert_eq!(item.as_object().unwrap().len(), 2, "{item}");
                assert!(is_naive_iso(item["created_at"].as_str().unwrap()), "{item}");
                item["id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(
        ids(&body["cat_images"]),
        [cats[2].to_string(), cats[1].to_string()]
    );
    assert_eq!(
        ids(&body["dog_images"]),
        [dogs[2].to_string(), dogs[1].to_string()]
    );
    assert_eq!(body["total_images"], 6);
    assert!(
        is_naive_iso(body["last_retrieve_at"].as_str().unwrap()),
        "{body}"
    );

    for limit in ["0", "101", "abc"] {
        let response = client
            .get(format!("{base}/images?limit={limit}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "limit={limit}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["detail"][0]["loc"],
            serde_json::json!(["query", "limit"])
        );
    }
}
