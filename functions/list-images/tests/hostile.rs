//! The real list-images binary against hostile callers: SQL in query strings,
//! numbers too big for any type, bytes that are not UTF-8, broken
//! percent-encoding, forged cursors, paths that climb out with `../`, huge
//! headers, and thousands of connections that never send a request.
//!
//! Each case must be the caller's error (4xx, never a 5xx): a problem
//! document on `/api/v1`, FastAPI's 422 on `/images`. The process must stay
//! up without a panic in its log, and what the gallery shows must not change.

use crate::support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use catdog::domain::{Category, Cursor, Toward};
use reqwest::StatusCode;
use serde_json::Value;
use support::{Service, seed_classified};

/// Everything a visitor can see, to compare before and after.
async fn gallery(service: &Service) -> (Value, Value, Value) {
    let images: Value = service.get("/images?limit=100").await.json().await.unwrap();
    let page: Value = service
        .get("/api/v1/images?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let mut stats: Value = service.get("/api/v1/stats").await.json().await.unwrap();
    // The only field that may move with the clock.
    if let Some(object) = stats.as_object_mut() {
        object.remove("next_ingest_at");
    }
    (images, page, stats)
}

/// One request written by hand, for what an HTTP client library refuses to
/// send (bytes that are not UTF-8, `..` segments it would resolve). Returns
/// the status, or None when the server closed without answering.
fn raw_request(base: &str, request: &[u8]) -> Option<u16> {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if stream.write_all(request).is_err() {
        return None;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn get_request(target: &[u8]) -> Vec<u8> {
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    request
}

/// Still answering, and nothing in its log says it panicked or failed.
async fn assert_alive(service: &Service) {
    let health = service.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK, "the process is gone");
    let log = service.log();
    assert!(!log.contains("panicked"), "a panic in the log:\n{log}");
    assert!(
        !log.contains("\"severity\":\"ERROR\""),
        "an error logged for the caller's mistake:\n{log}"
    );
}

/// The body a caller gets for `status` on `path`: a problem document on the
/// versioned API, FastAPI's validation error on the original `/images`.
fn assert_error_shape(path: &str, status: StatusCode, content_type: &str, body: &str) {
    let body: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{path}: {status} with a body that is not JSON ({e}): {body}"));
    if path.starts_with("/images") {
        assert_eq!(content_type, "application/json", "{path}");
        assert_eq!(body["detail"][0]["loc"][0], "query", "{path}: {body}");
    } else {
        assert_eq!(content_type, "application/problem+json", "{path}");
        assert_eq!(body["status"], status.as_u16(), "{path}: {body}");
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn hostile_query_strings_and_ids_are_4xx_and_change_nothing() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 3).await;
    let dogs = seed_classified(&service.store, Category::Dog, 2).await;
    let before = gallery(&service).await;

    let long = "9".repeat(10_000);
    let cases: Vec<(String, StatusCode)> = vec![
        // The original contract: every bad limit is FastAPI's 422.
        (
            "/images?limit=1;DROP%20TABLE%20images;--".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/images?limit=1%27%20OR%20%271%27=%271".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/images?limit=1e400".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/images?limit=340282366920938463463374607431768211456".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/images?limit=-9223372036854775808".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("/images?limit={long}"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/images?limit=%00".into(), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "/images?limit=%FF%FE".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/images?limit=%".into(), StatusCode::UNPROCESSABLE_ENTITY),
        ("/images?limit=%G1".into(), StatusCode::UNPROCESSABLE_ENTITY),
        ("/images?limit=".into(), StatusCode::UNPROCESSABLE_ENTITY),
        ("/images?limit=NaN".into(), StatusCode::UNPROCESSABLE_ENTITY),
        // Parameters nobody asked for are ignored, as FastAPI did.
        (
            "/images?x=%27;DROP%20TABLE%20images;--".into(),
            StatusCode::OK,
        ),
        ("/images?%FF=%FE&&&==&".into(), StatusCode::OK),
        // The versioned API: problems, 400.
        (
            "/api/v1/images?category=cat%27--".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/images?category=dog%20OR%201=1".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/images?category=%00".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/images?category=%FF".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/images?limit=99999999999999999999".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/images?limit=-1".into(), StatusCode::BAD_REQUEST),
        ("/api/v1/images?limit=0x10".into(), StatusCode::BAD_REQUEST),
        (
            format!("/api/v1/images?cursor={long}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/images?cursor=%27%20UNION%20SELECT%20*%20FROM%20images--".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/images?cursor=%FF%FE%FD".into(),
            StatusCode::BAD_REQUEST,
        ),
        // Ids: anything but a UUID is simply not found.
        (
            "/api/v1/images/%27;%20DELETE%20FROM%20images;--".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/images/..%2F..%2Fetc%2Fpasswd".into(),
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/images/%00".into(), StatusCode::NOT_FOUND),
        // Not UTF-8 once decoded: no such image either (axum's own `Path`
        // answered a plain-text 400 here).
        ("/api/v1/images/%FF%FE".into(), StatusCode::NOT_FOUND),
        ("/api/v1/images/%C3%28".into(), StatusCode::NOT_FOUND),
        (format!("/api/v1/images/{long}"), StatusCode::NOT_FOUND),
        (
            format!("/api/v1/images/{}%00", dogs[0]),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/images/00000000-0000-0000-0000-000000000000".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/stats?%27;DROP%20TABLE%20images;--=1".into(),
            StatusCode::OK,
        ),
    ];
    for (path, expected) in &cases {
        let response = service.get(path).await;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, *expected, "{path}: {body}");
        if status.is_client_error() {
            assert_error_shape(path, status, &content_type, &body);
        }
    }

    // reqwest resolves `%2e%2e` to `..` before sending: `/api/v1/` is no
    // route, and an unknown route is axum's bare 404, not a problem document.
    let response = service.get("/api/v1/images/%2e%2e").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // What a client library would not send: raw bytes and `..` segments.
    let targets: [&[u8]; 7] = [
        b"/api/v1/images/\xff\xfe",
        b"/api/v1/images?category=\xff",
        b"/images?limit=\xc3\x28",
        b"/api/v1/images/../../../etc/passwd",
        b"/../../etc/passwd",
        b"/api/v1/images/%2e%2e/%2e%2e/stats",
        b"//api/v1/stats",
    ];
    for target in targets {
        let status = raw_request(&service.base, &get_request(target));
        let shown = String::from_utf8_lossy(target);
        assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{shown}: {status:?}"
        );
    }

    assert_alive(&service).await;
    assert_eq!(gallery(&service).await, before, "stored data changed");
}

#[tokio::test]
async fn forged_cursors_are_400_and_a_real_one_still_works() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 4).await;
    let before = gallery(&service).await;
    let page: Value = service
        .get("/api/v1/images?category=cat&limit=2")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();

    let mut forged = Vec::new();
    // Every single character changed.
    for at in 0..cursor.len() {
        let mut bytes = cursor.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        forged.push(String::from_utf8(bytes).unwrap());
    }
    forged.push(cursor[..cursor.len() - 1].to_owned());
    forged.push(format!("{cursor}A"));
    forged.push(format!("{cursor}{cursor}"));
    forged.push(cursor.to_lowercase());
    // Well-formed, correctly checked, but not a position we hand out.
    forged.push(
        Cursor {
            category: Some(Category::Cat),
            seq: -1,
            toward: Toward::Older,
        }
        .encode(),
    );
    // Issued for another listing.
    forged.push(
        Cursor {
            category: Some(Category::Dog),
            seq: 1,
            toward: Toward::Older,
        }
        .encode(),
    );
    for forged in &forged {
        let path = format!("/api/v1/images?category=cat&cursor={forged}");
        let response = service.get(&path).await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_error_shape(&path, status, "application/problem+json", &body);
    }
    // The largest position there is, correctly signed: a valid, empty-or-not page.
    let far = Cursor {
        category: Some(Category::Cat),
        seq: i64::MAX,
        toward: Toward::Older,
    }
    .encode();
    let response = service
        .get(&format!("/api/v1/images?category=cat&cursor={far}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let next: Value = service
        .get(&format!(
            "/api/v1/images?category=cat&limit=2&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"].as_array().unwrap().len(), 2);
    assert_alive(&service).await;
    assert_eq!(gallery(&service).await, before);
}

#[tokio::test]
async fn huge_headers_wrong_methods_and_unread_bodies_are_4xx() {
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Dog, 1).await;
    let before = gallery(&service).await;

    let mut huge_header = b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge_header.extend(std::iter::repeat_n(b'a', 1 << 20));
    huge_header.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let mut many_headers = b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..500 {
        many_headers.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"Connection: close\r\n\r\n");
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("a 1 MiB header", huge_header),
        ("500 headers", many_headers),
        ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec()),
        ("no version", b"GET /images\r\n\r\n".to_vec()),
        ("absolute URI to elsewhere", get_request(b"http://169.254.169.254/computeMetadata/v1/")),
        (
            "a conflicting length",
            b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(),
        ),
    ];
    for (what, request) in &requests {
        let status = raw_request(&service.base, request);
        assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{what}: {status:?}"
        );
    }

    // Writing to a read-only API: 405, whatever the body. A client of its
    // own: the server may close these connections without reading the body,
    // and the checks below must not reuse one of them.
    let client = &support::http_client();
    for (method, path) in [
        (reqwest::Method::POST, "/images"),
        (reqwest::Method::PUT, "/api/v1/images"),
        (
            reqwest::Method::DELETE,
            "/api/v1/images/00000000-0000-0000-0000-000000000000",
        ),
        (reqwest::Method::PATCH, "/api/v1/stats"),
    ] {
        let response = client
            .request(method.clone(), service.url(path))
            .body(vec![b'x'; 2 << 20])
            .send()
            .await;
        // The server may answer before reading the body and close: either
        // way no 2xx and no 5xx.
        if let Ok(response) = response {
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    assert_alive(&service).await;
    assert_eq!(gallery(&service).await, before);
}

/// Raises this process's open-file limit to `want` (within the hard limit)
/// with util-linux's prlimit; the service started afterwards inherits it.
fn ensure_open_files(want: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if soft >= want {
        return;
    }
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={want}:{want}"),
        ])
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the open-file limit is {soft}; this test needs {want} (ulimit -n {want})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_silent_connections_neither_block_a_visitor_nor_stay_open() {
    const SILENT: usize = 2_000;
    ensure_open_files(3 * SILENT as u64);
    let service = Service::start(&[]).await;
    seed_classified(&service.store, Category::Cat, 2).await;
    let before = gallery(&service).await;
    let addr = service.base.trim_start_matches("http://").to_owned();

    let mut silent = Vec::with_capacity(SILENT);
    for i in 0..SILENT {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Every tenth starts a request and stops half-way through its headers.
        if i % 10 == 0 {
            use tokio::io::AsyncWriteExt as _;
            stream
                .write_all(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        silent.push(stream);
    }

    // A visitor is still answered (how fast is the benchmarks' business).
    let response = service.get("/api/v1/images?limit=10").await;
    assert_eq!(response.status(), StatusCode::OK);

    // The server hangs up on all of them after its 10 s header timeout; 40 s
    // bounds the test, it is not a speed the server must meet.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut open = silent.len();
    for stream in &mut silent {
        use tokio::io::AsyncReadExt as _;
        let left = deadline.saturating_duration_since(Instant::now());
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    open -= 1;
                    break;
                }
                Ok(Ok(_)) => continue, // a 408 before closing
                Err(_) => break,
            }
        }
    }
    assert_eq!(
        open, 0,
        "{open} silent connections were still open after 40 s"
    );
    assert_alive(&service).await;
    assert_eq!(gallery(&service).await, before);
}
