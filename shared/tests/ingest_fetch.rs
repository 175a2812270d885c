//! The fetcher against servers on loopback that misbehave the way strangers'
//! servers do: errors, rate limits, hangs, drips, lies about sizes, gzip
//! bombs, redirect loops and redirects into our own network. Each test is
//! bounded in time and says how long it may take.

use catdog_testing as support;

use std::time::{Duration, Instant};

use catdog::ingest::{FetchError, FetchOptions, Fetcher};
use reqwest::Url;
use reqwest::header::HeaderMap;
use support::sources::{Reply, SourceServer, dev_photos};

const LIMIT: u64 = 2 * 1024 * 1024;

fn quick_options() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(2),
        attempts: 3,
        backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(3),
        max_redirects: 5,
    }
}

async fn server() -> SourceServer {
    SourceServer::start(&dev_photos("cat")[..3]).await
}

/// A fetcher that trusts `server`'s origin, as when the operator configured it.
fn fetcher_for(server: &SourceServer) -> Fetcher {
    Fetcher::new(quick_options(), &[Url::parse(&server.base_url()).unwrap()]).unwrap()
}

async fn get(fetcher: &Fetcher, url: &str) -> Result<bytes::Bytes, FetchError> {
    fetcher
        .get(&Url::parse(url).unwrap(), HeaderMap::new(), LIMIT)
        .await
}

#[tokio::test]
async fn a_photo_downloads_whole() {
    let server = server().await;
    let bytes = get(&fetcher_for(&server), &server.url(&server.photo_path(0)))
        .await
        .unwrap();
    assert_eq!(bytes, server.photo_bytes(0));
}

#[tokio::test]
async fn server_errors_are_retried_until_the_photo_comes() {
    let server = server().await;
    let path = server.photo_path(0);
    server.script(&path, [Reply::Status(500), Reply::Status(503)]);
    let bytes = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap();
    assert_eq!(bytes, server.photo_bytes(0));
    assert_eq!(server.hits(&path), 3);
}

#[tokio::test]
async fn server_errors_give_up_after_the_last_attempt() {
    let server = server().await;
    let path = server.photo_path(0);
    server.always(&path, Reply::Status(502));
    let error = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Status(502)), "{error:?}");
    assert_eq!(server.hits(&path), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = server().await;
    let error = get(&fetcher_for(&server), &server.url("/images/missing.jpg"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Status(404)), "{error:?}");
    assert_eq!(server.hits("/images/missing.jpg"), 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = server().await;
    let path = server.photo_path(1);
    server.script(
        &path,
        [Reply::TooManyRequests {
            retry_after_secs: 1,
        }],
    );
    let started = Instant::now();
    let bytes = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap();
    assert_eq!(bytes, server.photo_bytes(1));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "came back after {:?}",
        started.elapsed()
    );
    assert_eq!(server.hits(&path), 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_ends_the_download_at_once() {
    let server = server().await;
    let path = server.photo_path(1);
    server.script(
        &path,
        [Reply::TooManyRequests {
            retry_after_secs: 3600,
        }],
    );
    let started = Instant::now();
    let error = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::RetryAfterTooLong(d) if d == Duration::from_secs(3600)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.hits(&path), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = server().await;
    let path = server.photo_path(0);
    server.always(&path, Reply::Hang);
    let started = Instant::now();
    let error = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Timeout(_)), "{error:?}");
    // One attempt of 2 s: a slow server is not asked again in the same run.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.hits(&path), 1);
}

#[tokio::test]
async fn a_dripping_server_is_cut_off_at_the_total_timeout() {
    let server = server().await;
    let path = server.photo_path(0);
    server.always(&path, Reply::Drip);
    let started = Instant::now();
    let error = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Timeout(_)), "{error:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_while_it_streams() {
    let server = server().await;
    let path = server.photo_path(0);
    server.always(&path, Reply::Streamed(50 * 1024 * 1024));
    let error = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::TooLarge { limit: LIMIT }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_gigantic_content_length_is_refused_before_reading() {
    let server = server().await;
    let path = server.photo_path(0);
    // The server declares 10 GB, sends three bytes and hangs.
    server.always(&path, Reply::DeclaresHuge);
    let started = Instant::now();
    let error = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::TooLarge { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_gzip_bomb_is_not_inflated() {
    let server = server().await;
    let path = server.photo_path(0);
    server.always(&path, Reply::GzipBomb);
    let bytes = get(&fetcher_for(&server), &server.url(&path))
        .await
        .unwrap();
    // What came is what was sent: the compressed bytes, not 10 MiB of zeros.
    assert!(bytes.starts_with(b"\x1f\x8b"), "{:?}", &bytes[..4]);
    assert!(bytes.len() < 200 * 1024, "{} bytes", bytes.len());
    assert!(catdog::domain::PictureFormat::sniff(&bytes).is_none());
}

#[tokio::test]
async fn redirects_within_the_configured_origin_are_followed() {
    let server = server().await;
    let from = server.photo_path(0);
    server.script(&from, [Reply::RedirectTo(server.photo_path(2))]);
    let bytes = get(&fetcher_for(&server), &server.url(&from))
        .await
        .unwrap();
    assert_eq!(bytes, server.photo_bytes(2));
}

#[tokio::test]
async fn an_endless_redirect_chain_ends() {
    let server = server().await;
    let started = Instant::now();
    let error = get(&fetcher_for(&server), &server.url("/loop"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::TooManyRedirects), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn redirects_into_our_network_are_refused() {
    let source = server().await;
    // An internal service on loopback that the source must not reach through
    // us, holding other photos so that nothing it serves passes for the source's.
    let internal = SourceServer::start(&dev_photos("dog")[..1]).await;
    let port = internal.addr.port();
    let path = source.photo_path(0);
    let internal_path = internal.photo_path(0);
    let targets = [
        format!("http://127.0.0.1:{port}{internal_path}"),
        format!("http://localhost:{port}{internal_path}"),
        // 127.0.0.1 spelt as one number and in hex.
        format!("http://2130706433:{port}{internal_path}"),
        format!("http://0x7f.0.0.1:{port}{internal_path}"),
        format!("http://[::ffff:127.0.0.1]:{port}{internal_path}"),
        format!("http://[::1]:{port}{internal_path}"),
        "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
            .to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://192.168.1.1/".to_owned(),
        "file:///etc/passwd".to_owned(),
    ];
    let fetcher = fetcher_for(&source);
    for target in targets {
        // Every request is redirected, so a retry could not pass for a refusal.
        source.always(&path, Reply::RedirectTo(target.clone()));
        let started = Instant::now();
        let result = get(&fetcher, &source.url(&path)).await;
        assert!(
            matches!(result, Err(FetchError::Refused(_))),
            "{target}: {:?}",
            result.map(|b| b.len())
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{target} took {:?}",
            started.elapsed()
        );
    }
    // Refusals are final: the source was not asked again.
    assert_eq!(source.hits(&path), 10);
    assert_eq!(internal.total_hits(), 0, "the internal server was reached");
}

#[tokio::test]
async fn a_loopback_url_the_operator_did_not_configure_is_refused() {
    let configured = server().await;
    let other = server().await;
    let error = get(&fetcher_for(&configured), &other.url(&other.photo_path(0)))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Refused(_)), "{error:?}");
    assert_eq!(other.total_hits(), 0);
}

#[tokio::test]
async fn refused_connections_are_retried_with_backoff() {
    // A configured origin where nothing listens (the port was just freed).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/images/x.jpg");
    let fetcher = Fetcher::new(quick_options(), &[Url::parse(&url).unwrap()]).unwrap();
    let started = Instant::now();
    let error = get(&fetcher, &url).await.unwrap_err();
    assert!(matches!(error, FetchError::Network(_)), "{error:?}");
    // Backoff 100 ms, then 200 ms, between the three attempts.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "took {elapsed:?}"
    );
}
