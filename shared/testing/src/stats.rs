//! Waiting for a running gallery's pipeline through `GET /api/v1/stats`, as
//! a client would see it: until so many pictures are classified
//! ([`classified`]), until it has drained ([`drained`]), or until anything
//! else the counts can tell.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How often the stats are asked for while waiting.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The count `/api/v1/stats` gives for `status` (`classified`, `pending`, …);
/// 0 when it names none.
pub fn count(stats: &Value, status: &str) -> i64 {
    stats["by_status"][status].as_i64().unwrap_or(0)
}

/// The pictures that have their verdict: classified, rejected or failed.
pub fn settled(stats: &Value) -> i64 {
    count(stats, "classified") + count(stats, "rejected") + count(stats, "failed")
}

/// Asks `{base}/api/v1/stats` until `done` holds for the answer, and returns
/// that answer. Fails the test after `within`, with the last answer and
/// `context()` (a log, the state of a stand-in).
pub async fn wait_until(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
    context: impl Fn() -> String,
) -> Value {
    let started = Instant::now();
    loop {
        let response = client
            .get(format!("{base}/api/v1/stats"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/stats: {e}"));
        // A 503 (a database busy or full) is an answer to wait through.
        let ok = response.status().is_success();
        let stats: Value = response.json().await.unwrap_or_default();
        if ok && done(&stats) {
            return stats;
        }
        assert!(
            started.elapsed() < within,
            "not there within {within:?}: {stats}\n{}",
            context()
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// For [`wait_until`]: `n` pictures are classified.
pub fn classified(n: i64) -> impl Fn(&Value) -> bool {
    move |stats| count(stats, "classified") == n
}

/// For [`wait_until`]: nothing is pending and `n` pictures have their verdict.
pub fn drained(n: i64) -> impl Fn(&Value) -> bool {
    move |stats| count(stats, "pending") == 0 && settled(stats) == n
}
