//! `catdog relabel ID CATEGORY` corrects a verdict in local mode's SQLite
//! database and in a PostgreSQL one (DATABASE_URL), refuses what it cannot
//! do with a clear message, and records who did it.

#[allow(dead_code)]
#[path = "../../shared/tests/support/postgres.rs"]
mod postgres;

use std::path::Path;
use std::process::Command;

use catdog::domain::{
    Category, Digest, ImageId, NewImage, ObjectName, Thumbnail, Verdict, now_micros,
};
use catdog::store::{ConnectOptions, ImageStore, connect};

async fn seed(store: &dyn ImageStore, category: Category) -> ImageId {
    let id = ImageId::new();
    store
        .insert_pending(&NewImage {
            id,
            sha256: Digest::of(id.to_string().as_bytes()),
            source: "seed".to_owned(),
            source_ref: None,
            object_name: ObjectName::original(id),
            content_type: "image/jpeg".to_owned(),
            byte_size: 10,
            created_at: now_micros(),
        })
        .await
        .unwrap();
    let verdict = Verdict {
        category,
        confidence: 0.9,
        scores: serde_json::json!({}),
        model_version: "seed".to_owned(),
        width: 4,
        height: 3,
        thumbnail: Thumbnail {
            object_name: ObjectName::thumbnail(id),
            width: 4,
            height: 3,
            placeholder: String::new(),
        },
        breed: None,
        why: Vec::new(),
    };
    store.record_verdict(id, &verdict).await.unwrap();
    id
}

/// Runs `catdog relabel ARGS` with only `env`; its exit status and output.
fn relabel(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_catdog"))
        .arg("relabel")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_clear()
        .env("USER", "tester")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn relabel_and_check(store: &dyn ImageStore, data_dir: &Path, env: &[(&str, &str)]) {
    let cat = seed(store, Category::Cat).await;
    let cat_id = cat.to_string();
    let (ok, out) = relabel(data_dir, env, &[&cat_id, "dog"]);
    assert!(ok, "{out}");
    assert!(out.contains("is now dog"), "{out}");
    let record = store.get(cat).await.unwrap().unwrap();
    assert_eq!(record.category, Some(Category::Dog));
    let correction = record.relabel.unwrap();
    assert_eq!(correction.by, "cli:tester");
    assert_eq!(correction.previous, Some(Category::Cat));

    let (ok, out) = relabel(data_dir, env, &[&cat_id, "dog"]);
    assert!(ok && out.contains("already is dog"), "{out}");
    let unknown = ImageId::new().to_string();
    let (ok, out) = relabel(data_dir, env, &[&unknown, "cat"]);
    assert!(!ok && out.contains("no picture has the id"), "{out}");
    let (ok, out) = relabel(data_dir, env, &[&cat_id, "horse"]);
    assert!(!ok && out.contains("horse"), "{out}");
    assert_eq!(
        store.get(cat).await.unwrap().unwrap().category,
        Some(Category::Dog)
    );
}

#[tokio::test]
async fn relabel_in_local_mode_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("catdog.db").display());
    let store = connect(&url, &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    // No DATABASE_URL: local mode's database in --data-dir.
    relabel_and_check(store.as_ref(), &data, &[]).await;
}

#[tokio::test]
async fn relabel_on_postgres() {
    let Some(database) = postgres::TestDatabase::create().await else {
        return;
    };
    let store = connect(&database.url, &ConnectOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    relabel_and_check(
        store.as_ref(),
        dir.path(),
        &[("DATABASE_URL", database.url.as_str())],
    )
    .await;
}
