//! `catdog relabel ID CATEGORY` corrects a verdict in local mode's SQLite
//! database and in a PostgreSQL one (DATABASE_URL), refuses what it cannot
//! do with a clear message, and records who did it.

use crate::operator;

use std::path::Path;

use catdog::domain::{Category, ImageId};
use catdog::store::ImageStore;
use operator::OperatorDb;

async fn seed(store: &dyn ImageStore, category: Category) -> ImageId {
    catdog_testing::rows::insert_classified(store, category).await
}

/// Runs `catdog relabel ARGS`.
fn relabel(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    operator::catdog(data_dir, env, &[&["relabel"], args].concat())
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
    let db = OperatorDb::sqlite().await;
    relabel_and_check(db.store.as_ref(), db.data_dir(), &db.env()).await;
}

#[tokio::test]
async fn relabel_on_postgres() {
    let Some(db) = OperatorDb::postgres().await else {
        return;
    };
    relabel_and_check(db.store.as_ref(), db.data_dir(), &db.env()).await;
}
