//! Local mode end to end, through HTTP only: the real `catdog serve` binary
//! over a folder of dev photos (cats, dogs and other things). Its timer runs
//! ingestion at start; the in-process queue delivers every message to the
//! push handler; the test waits for the pipeline to drain and checks what the
//! original `GET /images` contract shows. A second ingestion adds nothing.
//!
//! Needs `.cache/model/backbone.onnx` (or `MODEL_DIR`): build it with
//! model/build.sh.

use catdog_testing::model::{self, CATS, DOGS, OTHERS};
use catdog_testing::service_process;
use catdog_testing::stats;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use service_process::{ServiceProcess, http_client};

struct Serve {
    process: ServiceProcess,
    base: String,
    client: reqwest::Client,
}

impl Serve {
    fn start(dir: &Path, sources: &Path) -> Self {
        let binary = Path::new(env!("CARGO_BIN_EXE_catdog"));
        let env = [
            ("INGEST_SOURCES", format!("folder:{}", sources.display())),
            // Only the first run at start-up; the second is the test's.
            ("INGEST_INTERVAL_SECS", "3600".to_owned()),
            ("MODEL_DIR", model::model_dir().display().to_string()),
        ];
        let mut command = ServiceProcess::command(binary, &env);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--web-dir")
            .arg(dir.join("no-page"))
            .current_dir(dir);
        let process = ServiceProcess::spawn(command, dir.join("serve.log"));
        Self {
            base: process.base.clone(),
            process,
            client: http_client(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    /// Waits until nothing is pending and `expected` images are settled.
    async fn wait_drained(&self, expected: i64) -> Value {
        stats::wait_until(
            &self.client,
            &self.base,
            Duration::from_secs(120),
            stats::drained(expected),
            || "the pipeline did not drain".to_owned(),
        )
        .await
    }

    /// The folder path each listed image came from.
    async fn sources_of(&self, items: &Value) -> BTreeSet<String> {
        let mut refs = BTreeSet::new();
        for item in items.as_array().expect("a list") {
            let id = item["id"].as_str().unwrap();
            let image = self.get(&format!("/api/v1/images/{id}")).await;
            refs.insert(image["source_ref"].as_str().unwrap_or_default().to_owned());
        }
        refs
    }
}

fn expected(kind: &str, names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("{kind}/{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_ingests_a_folder_and_classifies_every_picture_once() {
    let dir = tempfile::tempdir().unwrap();
    let sources = model::dev_photo_folder(dir.path());
    let started = Instant::now();
    let mut serve = Serve::start(dir.path(), &sources);
    serve.process.wait_until_ok("/readyz").await;
    let ready_after = started.elapsed();

    let total = (CATS.len() + DOGS.len() + OTHERS.len()) as i64;
    let stats = serve.wait_drained(total).await;
    let drained_after = started.elapsed();
    assert_eq!(stats["by_category"]["other"], OTHERS.len(), "{stats}");

    let images = serve.get("/images?limit=100").await;
    assert_eq!(
        serve.sources_of(&images["cat_images"]).await,
        expected("cat", &CATS),
        "{images}"
    );
    assert_eq!(
        serve.sources_of(&images["dog_images"]).await,
        expected("dog", &DOGS),
        "{images}"
    );
    assert_eq!(images["total_images"], CATS.len() + DOGS.len());
    // The run finished after it stored the pictures: last_retrieve_at is
    // no earlier than the newest picture (same fixed-width UTC format).
    let last_retrieve_at = images["last_retrieve_at"].as_str().unwrap().to_owned();
    let newest = images["cat_images"]
        .as_array()
        .unwrap()
        .iter()
        .chain(images["dog_images"].as_array().unwrap())
        .map(|item| item["created_at"].as_str().unwrap().to_owned())
        .max()
        .unwrap();
    assert!(last_retrieve_at >= newest, "{last_retrieve_at} < {newest}");

    // A second ingestion finds everything stored already.
    let response = serve
        .client
        .post(format!("{}/ingest", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let summary: Value = response.json().await.unwrap();
    assert_eq!(summary["stored"], 0, "{summary}");
    assert_eq!(summary["published"], 0, "{summary}");
    assert_eq!(summary["fetched"], total, "{summary}");
    serve.wait_drained(total).await;
    let again = serve.get("/images?limit=100").await;
    assert_eq!(again["cat_images"], images["cat_images"]);
    assert_eq!(again["dog_images"], images["dog_images"]);
    assert!(
        again["last_retrieve_at"].as_str().unwrap() > last_retrieve_at.as_str(),
        "the second run moved last_retrieve_at forward"
    );
    eprintln!(
        "timings: ready after {:.1}s, {} pictures drained after {:.1}s, whole test {:.1}s",
        ready_after.as_secs_f64(),
        total,
        drained_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn serve_without_the_model_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_catdog"))
        .arg("serve")
        .args(["--port", "0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_clear()
        .env("MODEL_DIR", dir.path().join("no-model"))
        .env("LOG_FORMAT", "json")
        .current_dir(dir.path())
        .output()
        .expect("run catdog serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MODEL_DIR") && stderr.contains("model/build.sh"),
        "the error should name MODEL_DIR and model/build.sh: {stderr}"
    );
}

#[test]
fn import_classifies_a_folder_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let sources = model::dev_photo_folder(dir.path());
    // Not a picture: sniffed and reported, not stored.
    std::fs::write(sources.join("notes.jpg"), b"not a picture").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_catdog"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_clear()
            .env("MODEL_DIR", model::model_dir())
            .current_dir(dir.path())
            .output()
            .expect("run catdog")
    };
    let output = run(&["import", sources.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("8 new, 0 already stored"), "{stdout}");
    assert!(
        stdout.contains("Classified: 3 cat, 3 dog, 2 other"),
        "{stdout}"
    );

    let again = run(&["import", sources.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("0 new, 8 already stored"), "{stdout}");
    assert!(
        stdout.contains("Classified: 0 cat, 0 dog, 0 other"),
        "{stdout}"
    );

    let letters = run(&["dead-letters"]);
    assert!(letters.status.success());
    assert!(String::from_utf8_lossy(&letters.stdout).starts_with("No dead letters"));
}
