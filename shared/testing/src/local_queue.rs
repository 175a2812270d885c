//! Local mode's in-process queue as the suites put it in front of a push
//! route.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use catdog::classify::PUSH_ROUTE;
use catdog::queue::{DeadLetters, LocalQueue, QueueOptions};

/// A queue whose push endpoint acknowledges everything, dead letters in
/// `dir`: for tests about storing, not classifying.
pub fn acknowledging(dir: &Path) -> Arc<LocalQueue> {
    let push = Router::new().route(PUSH_ROUTE, post(|| async { StatusCode::NO_CONTENT }));
    LocalQueue::start(
        push,
        PUSH_ROUTE,
        QueueOptions::default(),
        DeadLetters::in_dir(dir),
    )
}

/// Waits until nothing is in flight; fails the test after 30 s.
pub async fn drained(queue: &LocalQueue) {
    tokio::time::timeout(Duration::from_secs(30), queue.drained())
        .await
        .expect("the queue drains within 30 s");
}
