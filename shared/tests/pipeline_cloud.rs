//! End to end in the cloud shape: list-images, ingest-trigger and
//! classify-image as three processes on PostgreSQL (a fresh database) and
//! fake-gcs-server, with a loopback Pub/Sub: the real client publishes to a
//! gRPC Publisher server, and a push stand-in delivers each message to
//! classify-image's `POST /pubsub/push` as a push subscription does. The
//! test only speaks HTTP to the three services.
//!
//! Needs PostgreSQL (`TEST_DATABASE_URL`), fake-gcs-server
//! (`scripts/fake-gcs.sh install`) and `.cache/model/backbone.onnx`
//! (model/build.sh). The three binaries are built by the test with cargo.

#[allow(dead_code)]
use catdog_testing as support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::fake_gcs::FakeGcs;
use support::model::{self, CATS, DOGS, OTHERS};
use support::postgres::TestDatabase;
use support::pubsub_push::{PushOptions, PushSubscription};
use support::pubsub_server::PubsubServer;
use support::service_process::{ServiceProcess, function_env};

fn function_binaries() -> PathBuf {
    support::service_process::workspace_binaries(&support::repo_root())
}

/// One function on the cloud settings `env`, migrating the database at start.
fn start_function(
    bin_dir: &Path,
    name: &str,
    env: &[(&str, String)],
    logs: &Path,
) -> ServiceProcess {
    let mut env = env.to_vec();
    env.push(("MIGRATE_ON_START", "true".to_owned()));
    ServiceProcess::spawn(
        ServiceProcess::command(&bin_dir.join(name), &env),
        logs.join(format!("{name}.log")),
    )
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    let response = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.json().await.unwrap()
}

async fn ingest(client: &reqwest::Client, trigger: &ServiceProcess) -> Value {
    let response = client
        .post(format!("{}/ingest", trigger.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn wait_drained(
    client: &reqwest::Client,
    list: &ServiceProcess,
    push: &PushSubscription,
    expected: i64,
) {
    let drained = support::stats::drained(expected);
    support::stats::wait_until(
        client,
        &list.base,
        Duration::from_secs(120),
        |stats| drained(stats) && push.counts().outstanding() == 0,
        || format!("the pipeline did not drain: {:?}", push.counts()),
    )
    .await;
}

async fn sources_of(
    client: &reqwest::Client,
    list: &ServiceProcess,
    items: &Value,
) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for item in items.as_array().expect("a list") {
        let id = item["id"].as_str().unwrap();
        let image = get(client, format!("{}/api/v1/images/{id}", list.base)).await;
        refs.insert(image["source_ref"].as_str().unwrap_or_default().to_owned());
    }
    refs
}

fn expected(kind: &str, names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("{kind}/{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_functions_on_postgres_gcs_and_pubsub_classify_every_picture_once() {
    let bin_dir = function_binaries();
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let started = Instant::now();
    let gcs = FakeGcs::start().await;
    let bucket = "catdog-e2e";
    gcs.create_bucket(bucket).await;
    let pubsub = Arc::new(PubsubServer::start().await);
    let dir = tempfile_dir();
    let sources = model::dev_photo_folder(&dir);

    let common = [
        ("DATABASE_URL", db.url.clone()),
        ("STORAGE_URL", format!("gs://{bucket}")),
        ("STORAGE_ENDPOINT", gcs.endpoint.clone()),
        ("GOOGLE_CLOUD_PROJECT", "catdog-test".to_owned()),
    ];
    let client = reqwest::Client::new();
    // All three start at once; each is ready when its database answers.
    let mut classify = start_function(
        &bin_dir,
        "classify-image",
        &function_env(
            &common,
            &[("MODEL_DIR", model::model_dir().display().to_string())],
        ),
        &dir,
    );
    let mut trigger = start_function(
        &bin_dir,
        "ingest-trigger",
        &function_env(
            &common,
            &[
                ("INGEST_SOURCES", format!("folder:{}", sources.display())),
                ("PUBSUB_TOPIC", "images".to_owned()),
                ("PUBSUB_ENDPOINT", pubsub.endpoint()),
            ],
        ),
        &dir,
    );
    let mut list = start_function(&bin_dir, "list-images", &function_env(&common, &[]), &dir);
    for function in [&mut classify, &mut trigger, &mut list] {
        function.wait_until_ok("/readyz").await;
    }
    let push = PushSubscription::start(
        Arc::clone(&pubsub),
        PushOptions {
            endpoint: format!("{}/pubsub/push", classify.base),
            subscription: "projects/catdog-test/subscriptions/classify-image".to_owned(),
            max_attempts: 5,
            first_backoff: Duration::from_millis(500),
        },
    );
    let ready_after = started.elapsed();

    let summary = ingest(&client, &trigger).await;
    let total = (CATS.len() + DOGS.len() + OTHERS.len()) as i64;
    assert_eq!(summary["stored"], total, "{summary}");
    assert_eq!(summary["published"], total, "{summary}");
    wait_drained(&client, &list, &push, total).await;
    let drained_after = started.elapsed();
    let received = pubsub.received();
    assert_eq!(received.len() as i64, total, "one message per picture");
    assert!(
        received
            .iter()
            .all(|r| r.topic == "projects/catdog-test/topics/images")
    );

    let images = get(&client, format!("{}/images?limit=100", list.base)).await;
    assert_eq!(
        sources_of(&client, &list, &images["cat_images"]).await,
        expected("cat", &CATS),
        "{images}"
    );
    assert_eq!(
        sources_of(&client, &list, &images["dog_images"]).await,
        expected("dog", &DOGS),
        "{images}"
    );
    let last_retrieve_at = images["last_retrieve_at"].as_str().unwrap().to_owned();

    // The second run stores and publishes nothing, and the gallery is unchanged.
    let summary = ingest(&client, &trigger).await;
    assert_eq!(
        (summary["stored"].as_u64(), summary["published"].as_u64()),
        (Some(0), Some(0)),
        "{summary}"
    );
    wait_drained(&client, &list, &push, total).await;
    let again = get(&client, format!("{}/images?limit=100", list.base)).await;
    assert_eq!(again["cat_images"], images["cat_images"]);
    assert_eq!(again["dog_images"], images["dog_images"]);
    assert!(again["last_retrieve_at"].as_str().unwrap() > last_retrieve_at.as_str());
    assert_eq!(pubsub.received().len() as i64, total);
    let counts = push.counts();
    assert_eq!(
        (counts.acknowledged, counts.dead_lettered),
        (total as u64, 0),
        "{counts:?}"
    );

    eprintln!(
        "timings: services ready after {:.1}s, {total} pictures drained after {:.1}s, whole test {:.1}s",
        ready_after.as_secs_f64(),
        drained_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "catdog-cloud-e2e-{}",
        catdog::domain::ImageId::new()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
