//! `catdog failed` lists the pictures classification gave up on, with their
//! reasons, and `catdog retry` makes chosen ones pending again, on local
//! mode's SQLite database and on PostgreSQL (DATABASE_URL).

use crate::operator;

use std::path::Path;
use std::time::Duration;

use catdog::domain::{ImageId, Status, now_micros};
use catdog::store::ImageStore;
use operator::{OperatorDb, catdog};

/// A picture whose one publish went unanswered, after a failed attempt that
/// recorded `error`: given up on, as the sweep does.
async fn failed_picture(store: &dyn ImageStore, error: &str) -> ImageId {
    let id = catdog_testing::rows::insert_made_up(store).await;
    store.mark_published(id).await.unwrap();
    store.record_failure(id, error).await.unwrap();
    let later = now_micros() + Duration::from_secs(1);
    assert_eq!(
        store.give_up_unanswered(later, 1, 100).await.unwrap(),
        vec![id]
    );
    id
}

async fn list_and_retry(store: &dyn ImageStore, data_dir: &Path, env: &[(&str, &str)]) {
    let (ok, out) = catdog(data_dir, env, &["failed"]);
    assert!(ok && out.contains("no failed pictures"), "{out}");

    let first = failed_picture(store, "storage: the original is missing").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = failed_picture(store, "storage: timed out").await;
    let (ok, out) = catdog(data_dir, env, &["failed"]);
    assert!(ok, "{out}");
    // The log's JSON lines go to standard output too.
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(lines.len(), 2, "{out}");
    // Newest first, each with its reason and its failed attempts.
    assert!(lines[0].starts_with(&second.to_string()), "{out}");
    assert!(lines[0].contains("storage: timed out"), "{out}");
    assert!(lines[1].starts_with(&first.to_string()), "{out}");
    assert!(lines[1].contains("1 failed attempts"), "{out}");
    assert!(lines[1].contains("the original is missing"), "{out}");

    let (ok, out) = catdog(data_dir, env, &["retry", &first.to_string()]);
    assert!(ok && out.contains("will be published again"), "{out}");
    let record = store.get(first).await.unwrap().unwrap();
    assert_eq!(record.status, Status::Pending);
    assert_eq!(
        store.get(second).await.unwrap().unwrap().status,
        Status::Failed
    );

    // Not failed (any more), or unknown: left alone, and an error when
    // nothing was retried.
    let unknown = ImageId::new().to_string();
    let (ok, out) = catdog(data_dir, env, &["retry", &first.to_string(), &unknown]);
    assert!(!ok && out.contains("left alone"), "{out}");
    let (ok, out) = catdog(data_dir, env, &["retry", "not-an-id"]);
    assert!(!ok && out.contains("not-an-id"), "{out}");

    let (ok, out) = catdog(data_dir, env, &["retry", "--all"]);
    assert!(ok && out.contains(&second.to_string()), "{out}");
    assert_eq!(
        store.get(second).await.unwrap().unwrap().status,
        Status::Pending
    );
    let (ok, out) = catdog(data_dir, env, &["failed"]);
    assert!(ok && out.contains("no failed pictures"), "{out}");
}

#[tokio::test]
async fn failed_and_retry_in_local_mode_sqlite() {
    let db = OperatorDb::sqlite().await;
    list_and_retry(db.store.as_ref(), db.data_dir(), &db.env()).await;
}

#[tokio::test]
async fn failed_and_retry_on_postgres() {
    let Some(db) = OperatorDb::postgres().await else {
        return;
    };
    list_and_retry(db.store.as_ref(), db.data_dir(), &db.env()).await;
}
