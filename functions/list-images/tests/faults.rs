//! Faults around the real list-images binary on PostgreSQL: the database
//! restarted under listing load, and SIGTERM while requests are in flight.
//!
//! Each test starts a PostgreSQL server of its own (see
//! shared/testing/src/pg_cluster.rs) so it can stop and start it for real.

use crate::support;

use catdog_testing::pg_cluster;
use catdog_testing::tcp_proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use catdog::domain::Category;
use catdog::store::{ConnectOptions, ImageStore};
use pg_cluster::PgCluster;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Service, seed_classified};
use tcp_proxy::TcpProxy;

/// What the service is told to wait for the database before answering 503.
const DATABASE_TIMEOUT: Duration = Duration::from_millis(500);

/// What every listing client asks, round and round.
const PATHS: [&str; 4] = [
    "/images?limit=5",
    "/api/v1/images?category=cat&limit=5",
    "/api/v1/stats",
    "/readyz",
];

/// One request of the load and how it went.
#[derive(Debug)]
struct Sample {
    path: &'static str,
    started: Instant,
    took: Duration,
    /// The status, whether it was a problem document with Retry-After; or
    /// the transport error.
    answer: Result<(StatusCode, bool), String>,
}

async fn seeded_store(url: &str) -> Arc<dyn ImageStore> {
    let store = catdog::store::connect(
        url,
        &ConnectOptions {
            pool_size: 2,
            timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    seed_classified(&store, Category::Cat, 6).await;
    seed_classified(&store, Category::Dog, 6).await;
    store
}

/// `workers` clients asking [`PATHS`] until `stop` is set, each on a
/// connection of its own (kept alive between its requests).
fn start_load(
    base: &str,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Sample>>> {
    (0..workers)
        .map(|worker| {
            let base = base.to_owned();
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                // The bound that keeps the test from hanging; the assertions
                // ask for far less.
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let mut samples = Vec::new();
                let mut turn = worker;
                while !stop.load(Ordering::Relaxed) {
                    let path = PATHS[turn % PATHS.len()];
                    turn += 1;
                    let started = Instant::now();
                    let answer = match client.get(format!("{base}{path}")).send().await {
                        Ok(response) => {
                            let status = response.status();
                            let problem = response
                                .headers()
                                .get("content-type")
                                .is_some_and(|v| v == "application/problem+json")
                                && response.headers().contains_key("retry-after");
                            match response.bytes().await {
                                Ok(_) => Ok((status, problem)),
                                Err(e) => Err(format!("body: {e}")),
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    samples.push(Sample {
                        path,
                        started,
                        took: started.elapsed(),
                        answer,
                    });
                    // Many clients, each asking a few times a second.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                samples
            })
        })
        .collect()
}

async fn collect(load: Vec<tokio::task::JoinHandle<Vec<Sample>>>) -> Vec<Sample> {
    let mut samples = Vec::new();
    for worker in load {
        samples.extend(worker.await.unwrap());
    }
    samples.sort_by_key(|s| s.started);
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_is_503_fast_and_recovers_by_itself() {
    let Some(mut cluster) = PgCluster::start() else {
        return;
    };
    let store = seeded_store(&cluster.url()).await;
    let timeout_ms = DATABASE_TIMEOUT.as_millis().to_string();
    let service = Service::start_on(
        &cluster.url(),
        store,
        &[
            ("DATABASE_TIMEOUT_MS", &timeout_ms),
            ("DATABASE_POOL_SIZE", "4"),
        ],
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&service.base, 8, &stop);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let outage_begins = Instant::now();
    // pg_ctl blocks; the load keeps running on the runtime meanwhile.
    cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let outage_ends = Instant::now();
    // Kept to the end of the test: dropping it stops the server.
    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again();
        cluster
    })
    .await
    .unwrap();
    let back = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = collect(load).await;

    let count = |from: Instant, to: Instant| {
        samples
            .iter()
            .filter(|s| s.started >= from && s.started + s.took <= to)
            .count()
    };
    eprintln!(
        "{} requests: {} before the outage, {} while down, {} after; stop took {:?}, start {:?}",
        samples.len(),
        count(samples[0].started, outage_begins),
        count(down, outage_ends),
        samples.iter().filter(|s| s.started >= back).count(),
        down - outage_begins,
        back - outage_ends,
    );

    // Every request had an answer, a 200 or a 503 problem with Retry-After,
    // and none waited much past the configured timeout.
    let slowest = samples.iter().map(|s| s.took).max().unwrap();
    eprintln!("slowest request: {slowest:?}");
    for sample in &samples {
        match &sample.answer {
            Ok((StatusCode::OK, _)) => {}
            Ok((StatusCode::SERVICE_UNAVAILABLE, true)) => {}
            other => panic!("{} answered {other:?}", sample.path),
        }
        assert!(
            sample.took < DATABASE_TIMEOUT + Duration::from_secs(1),
            "{} took {:?} (database timeout {DATABASE_TIMEOUT:?})",
            sample.path,
            sample.took
        );
    }
    let ok = |s: &&Sample| matches!(s.answer, Ok((StatusCode::OK, _)));
    // Before the outage: all served.
    let before: Vec<_> = samples
        .iter()
        .filter(|s| s.started + s.took < outage_begins)
        .collect();
    assert!(before.len() > 20, "too little load: {}", before.len());
    assert!(before.iter().all(ok), "failures before the outage");
    // While the database was down: every answer a 503.
    let during: Vec<_> = samples
        .iter()
        .filter(|s| s.started >= down && s.started + s.took <= outage_ends)
        .collect();
    assert!(
        during.len() > 20,
        "too little load while down: {}",
        during.len()
    );
    let served = during.iter().filter(|s| ok(s)).count();
    assert_eq!(served, 0, "{served} requests served with no database");
    // After it came back: served again within seconds, by the same process.
    let first_ok = samples
        .iter()
        .filter(|s| s.started >= back)
        .find(ok)
        .map(|s| s.started + s.took)
        .expect("nothing was served after the database came back");
    let recovery = first_ok.saturating_duration_since(back);
    eprintln!("first request served {recovery:?} after the database was back");
    assert!(
        recovery < Duration::from_secs(3),
        "recovery took {recovery:?}"
    );
    let late: Vec<_> = samples
        .iter()
        .filter(|s| s.started >= first_ok + Duration::from_millis(500))
        .collect();
    assert!(late.len() > 20, "too little load after recovery");
    let failed: Vec<_> = late.iter().filter(|s| !ok(s)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed after recovery: {:?}",
        failed.len(),
        late.len(),
        failed.first()
    );
}

/// The same URL through a proxy on `proxy_port`.
fn through(cluster: &PgCluster, proxy_port: u16) -> String {
    cluster
        .url()
        .replace(&format!(":{}/", cluster.port()), &format!(":{proxy_port}/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_hangs_under_load_is_503_within_the_timeout_and_recovers() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let store = seeded_store(&cluster.url()).await;
    // A network that stops passing packets (a failover, a partition): the
    // connections stay open and nothing comes back.
    let proxy = TcpProxy::start(([127, 0, 0, 1], cluster.port()).into()).await;
    let timeout_ms = DATABASE_TIMEOUT.as_millis().to_string();
    let service = Service::start_on(
        &through(&cluster, proxy.port()),
        store,
        &[
            ("DATABASE_TIMEOUT_MS", &timeout_ms),
            ("DATABASE_POOL_SIZE", "4"),
            // What is measured is how queries behave when the database
            // hangs. With pages kept (the default), a stalled network also
            // stalls the change notifications, and list-images keeps
            // answering the last pages it knows until its listener's
            // heartbeat notices (at most 2 s plus 1 s for its answer; see
            // shared/store/src/pg_listen.rs).
            ("LISTING_CACHE_MS", "0"),
        ],
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&service.base, 8, &stop);
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.freeze();
    let frozen = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.thaw();
    let thawed = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = collect(load).await;

    let slowest = samples.iter().map(|s| s.took).max().unwrap();
    eprintln!("{} requests; slowest {slowest:?}", samples.len());
    // A request may wait once for a connection and once for its query.
    let bound = DATABASE_TIMEOUT * 2 + Duration::from_millis(500);
    for sample in &samples {
        match &sample.answer {
            Ok((StatusCode::OK, _)) | Ok((StatusCode::SERVICE_UNAVAILABLE, true)) => {}
            other => panic!("{} answered {other:?}", sample.path),
        }
        assert!(
            sample.took < bound,
            "{} took {:?} with the database hanging (timeout {DATABASE_TIMEOUT:?})",
            sample.path,
            sample.took
        );
    }
    let ok = |s: &&Sample| matches!(s.answer, Ok((StatusCode::OK, _)));
    let during: Vec<_> = samples
        .iter()
        .filter(|s| s.started >= frozen && s.started + s.took <= thawed)
        .collect();
    assert!(
        during.len() > 10,
        "too little load while frozen: {}",
        during.len()
    );
    assert_eq!(
        during.iter().filter(|s| ok(s)).count(),
        0,
        "served while frozen"
    );
    let late: Vec<_> = samples
        .iter()
        .filter(|s| s.started >= thawed + Duration::from_secs(1))
        .collect();
    assert!(late.len() > 20, "too little load after the thaw");
    let failed = late.iter().filter(|s| !ok(s)).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} failed a second after the thaw",
        late.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_requests_and_refuses_new_ones() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let store = seeded_store(&cluster.url()).await;
    // The database behind a proxy the test can freeze: requests then wait
    // for it, which makes them certainly in flight when SIGTERM arrives.
    let mut proxy = TcpProxy::start(([127, 0, 0, 1], cluster.port()).into()).await;
    let url = through(&cluster, proxy.port());
    let mut service = Service::start_on(
        &url,
        store,
        &[("DATABASE_TIMEOUT_MS", "8000"), ("DATABASE_POOL_SIZE", "4")],
    )
    .await;
    assert_eq!(
        service.get("/api/v1/images?limit=3").await.status(),
        StatusCode::OK
    );

    proxy.freeze();
    let in_flight: Vec<_> = (0..12)
        .map(|i| {
            let url = service.url(PATHS[i % 3]);
            tokio::spawn(async move {
                // A client per request: twelve connections.
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body: Value = response.json().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, body))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        in_flight.iter().all(|r| !r.is_finished()),
        "requests finished while the database was frozen"
    );

    let signalled = Instant::now();
    service.terminate();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // New connections are refused: the listener is closed at once.
    let port: u16 = service.base.rsplit(':').next().unwrap().parse().unwrap();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "a new connection after SIGTERM: {refused:?}"
    );

    proxy.thaw();
    for request in in_flight {
        let (status, body) = request.await.unwrap().expect("an in-flight request failed");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let exit = service.wait_exit(Duration::from_secs(10)).await;
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    assert!(exit.success(), "exit status {exit:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    proxy.stop().await;
}
