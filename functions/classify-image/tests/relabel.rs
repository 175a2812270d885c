//! `PUT /images/{id}/category` on the classify-image binary, as Terraform
//! runs it (`REQUIRE_OIDC=true`): an operator with an allowed identity token
//! corrects a verdict, the store records who, and a redelivered push for the
//! picture leaves the correction alone. On SQLite and on PostgreSQL.
//! Needs `.cache/model/backbone.onnx` (model/build.sh).

use catdog_testing::model;
use catdog_testing::oidc_issuer;
use catdog_testing::postgres;
use catdog_testing::private_function;
use catdog_testing::service_process;

use std::path::Path;
use std::sync::Arc;

use catdog::domain::{Category, Digest, ImageId, ObjectName, Status};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::{ConnectOptions, ImageStore, connect};
use oidc_issuer::{AUDIENCE, CALLER, JwksServer, SigningKey, google_claims};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_process::ServiceProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_relabels_on_sqlite_and_redelivery_keeps_it() {
    let dir = private_function::scratch_dir("classify-image-relabel");
    let url = format!("sqlite://{}", dir.join("catdog.db").display());
    relabel_through_the_route(&dir, &url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_relabels_on_postgres_and_redelivery_keeps_it() {
    let Some(database) = postgres::TestDatabase::create().await else {
        return;
    };
    let dir = private_function::scratch_dir("classify-image-relabel-pg");
    relabel_through_the_route(&dir, &database.url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn relabel_through_the_route(dir: &Path, database_url: &str) {
    let model_dir = model::model_dir();
    assert!(
        model_dir.join("backbone.onnx").is_file(),
        "build the model with model/build.sh"
    );
    let options = ConnectOptions::default();
    let store = connect(database_url, &options).await.unwrap();
    store.migrate().await.unwrap();
    let cat = seed(&store, Some(Category::Cat)).await;
    let pending = seed(&store, None).await;

    let key = SigningKey::generate("operator-key");
    let jwks = JwksServer::start(&[&key]).await;
    let env = vec![
        ("DATABASE_URL", database_url.to_owned()),
        (
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        ),
        ("MODEL_DIR", model_dir.display().to_string()),
        ("REQUIRE_OIDC", "true".to_owned()),
        ("OIDC_AUDIENCE", AUDIENCE.to_owned()),
        ("OIDC_ALLOWED_EMAILS", CALLER.to_owned()),
        ("OIDC_JWKS_URL", jwks.url()),
    ];
    let mut service = ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_classify-image")),
        &env,
        dir.join("classify-image.log"),
    )
    .await;
    service.wait_until_ok("/healthz").await;
    let client = service_process::http_client();
    let token = key.sign(&google_claims());
    let relabel = |id: String, body: Value, token: Option<String>| {
        let mut request = client
            .put(format!("{}/images/{id}/category", service.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // No token: refused, nothing changed.
    let answer = relabel(cat.to_string(), json!({"category": "dog"}), None)
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(category_of(&store, cat).await, Some(Category::Cat));

    // Bad requests say what is wrong and change nothing.
    for (id, body, expected) in [
        (
            cat.to_string(),
            json!({"category": "horse"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            cat.to_string(),
            json!({"colour": "dog"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not-an-id".to_owned(),
            json!({"category": "dog"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            ImageId::new().to_string(),
            json!({"category": "dog"}),
            StatusCode::NOT_FOUND,
        ),
        (
            pending.to_string(),
            json!({"category": "dog"}),
            StatusCode::CONFLICT,
        ),
    ] {
        let answer = relabel(id.clone(), body.clone(), Some(token.clone()))
            .await
            .unwrap();
        assert_eq!(answer.status(), expected, "{id} {body}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/problem+json",
            "{id} {body}"
        );
    }
    assert_eq!(category_of(&store, cat).await, Some(Category::Cat));
    assert_eq!(
        store.get(pending).await.unwrap().unwrap().status,
        Status::Pending
    );

    // The operator's correction, recorded with the token's e-mail.
    let answer = relabel(
        cat.to_string(),
        json!({"category": "dog"}),
        Some(token.clone()),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        (body["category"].as_str(), body["changed"].as_bool()),
        (Some("dog"), Some(true))
    );
    let record = store.get(cat).await.unwrap().unwrap();
    assert_eq!(record.category, Some(Category::Dog));
    let relabel_record = record.relabel.expect("the correction is recorded");
    assert_eq!(relabel_record.by, CALLER);
    assert_eq!(relabel_record.previous, Some(Category::Cat));
    assert_eq!(store.stats().await.unwrap().relabelled, 1);

    // Pub/Sub delivers the picture's message again: acknowledged, and the
    // operator's category stays.
    let message = ImageMessage::new(
        cat,
        ObjectName::original(cat),
        Digest::of(cat.to_string().as_bytes()),
    );
    let envelope = PushEnvelope::wrap(
        &message,
        "redelivered-1",
        "projects/catdog-test/subscriptions/classify-image",
    );
    let answer = client
        .post(format!("{}/pubsub/push", service.base))
        .bearer_auth(&token)
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    assert_eq!(category_of(&store, cat).await, Some(Category::Dog));
    service.stop();
}

async fn category_of(store: &Arc<dyn ImageStore>, id: ImageId) -> Option<Category> {
    store.get(id).await.unwrap().unwrap().category
}

/// A stored picture, classified as `category` (or left pending with `None`).
async fn seed(store: &Arc<dyn ImageStore>, category: Option<Category>) -> ImageId {
    match category {
        Some(category) => catdog_testing::rows::insert_classified(store.as_ref(), category).await,
        None => catdog_testing::rows::insert_made_up(store.as_ref()).await,
    }
}
