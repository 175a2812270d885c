//! The fast lane for kept listings (`catdog::api::CachedListingLane`)
//! answers exactly as the router would, and only when it can.
//!
//! Two servers run the real server loop over one SQLite gallery: one serves
//! the API as list-images does (the lane in front of the router), the other
//! the router alone. Every request is sent to each, on raw HTTP/1.1, twice
//! (the first renders and keeps the page; the second is answered from the
//! cache, by the lane where there is one), and the second answers must be
//! the same: status, every header but `date` (as a set: order carries no
//! meaning), and body. The lane itself is also asked directly, to show it is
//! the one answering the kept pages and that it declines everything else.

use catdog_testing as support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use catdog::api::{self, ApiState, CachedListingLane};
use catdog::config::{Vars, parse};
use catdog::domain::{Category, ImageId};
use catdog::http::{App, FastLane, LaneRequest, ServeOptions, serve, with_common_layers};
use catdog::store::{ImageStore, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Gallery {
    store: Arc<dyn ImageStore>,
    dir: std::path::PathBuf,
}

impl Drop for Gallery {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Gallery {
    /// A SQLite gallery with a few cats, dogs and refused pictures.
    async fn seeded() -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-fast-lane-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("catdog.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn ImageStore> = Arc::new(store);
        for category in [Category::Cat, Category::Dog, Category::Other].repeat(4) {
            support::rows::insert_classified(&*store, category).await;
        }
        Self { store, dir }
    }

    /// The API over this gallery with the default settings.
    fn api(&self) -> ApiState {
        let vars = Vars::from_map::<[(&str, &str); 0], _, _>([]);
        ApiState::new(Arc::clone(&self.store), parse(&vars).unwrap())
    }
}

/// Serves `app` on a free loopback port until the test ends.
async fn start(app: App) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        app,
        ServeOptions::default(),
        std::future::pending(),
    ));
    addr
}

fn routed(state: ApiState) -> Router {
    with_common_layers(api::router(state), Duration::from_secs(30))
}

/// An answer as a client sees it, less its `date`.
#[derive(Debug, PartialEq)]
struct Answer {
    status_line: String,
    /// (name, value), sorted.
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method target` with `headers` on a new connection and reads the
/// whole answer.
async fn ask(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: gallery\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let mut headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .filter(|(name, _)| name != "date")
        .collect();
    headers.sort();
    Answer {
        status_line,
        headers,
        body: String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
    }
}

/// Whether the lane answers this request itself.
fn lane_answers(lane: &CachedListingLane, method: &Method, target: &str, etag: &str) -> bool {
    let uri: Uri = target.parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("if-none-match", HeaderValue::from_str(etag).unwrap());
    lane.answer(LaneRequest {
        method,
        uri: &uri,
        headers: &headers,
    })
    .is_some()
}

/// First pages that are kept, so the lane answers them once rendered.
const KEPT: &[&str] = &[
    "/images",
    "/images?limit=3",
    "/images?limit=3&limit=5",
    "/images?li%6Dit=4&unknown=1",
    "/api/v1/images",
    "/api/v1/images?category=cat&limit=5",
    "/api/v1/images?category=&limit=100",
    "/api/v1/images?category=other",
    "/api/v1/images?category=dog&cursor=&breed=&around=",
];

/// Requests the lane leaves to the router: invalid parameters, pages that
/// are not kept, other routes.
const ROUTED: &[&str] = &[
    "/images?limit=0",
    "/images?limit=101",
    "/images?limit=ten",
    "/api/v1/images?limit=0",
    "/api/v1/images?category=bird",
    "/api/v1/images?breed=tabby",
    "/api/v1/images?cursor=not-a-cursor",
    "/api/v1/images?around=00000000-0000-0000-0000-000000000000",
    "/api/v1/images/00000000-0000-0000-0000-000000000000",
    "/api/v1/stats",
    "/images/",
];

#[tokio::test]
async fn kept_listings_are_answered_by_the_lane_exactly_as_by_the_router() {
    let gallery = Gallery::seeded().await;
    let state = gallery.api();
    let lane = Arc::new(CachedListingLane::new(state.clone()));
    let with_lane = start(App::with_fast_lane(routed(state), lane.clone())).await;
    let without = start(routed(gallery.api()).into()).await;

    let client_headers: [&[(&str, &str)]; 3] = [
        &[],
        &[("origin", "https://example.org")],
        &[("if-none-match", "\"not-this-one\""), ("accept", "*/*")],
    ];
    for target in KEPT.iter().chain(ROUTED) {
        for headers in client_headers {
            for server in [with_lane, without] {
                ask(server, "GET", target, headers).await;
            }
            let (lane_answer, router_answer) = (
                ask(with_lane, "GET", target, headers).await,
                ask(without, "GET", target, headers).await,
            );
            assert_eq!(lane_answer, router_answer, "GET {target} with {headers:?}");
        }
        let fresh = ask(without, "GET", target, &[]).await;
        // A client holding the current version, in each way it may say so.
        if let Some(etag) = fresh.header("etag") {
            let weak = format!("W/{etag}");
            let listed = format!("\"other\", {etag}");
            for held in [etag, &weak, &listed, "*"] {
                let headers = [("if-none-match", held)];
                let lane_answer = ask(with_lane, "GET", target, &headers).await;
                assert_eq!(lane_answer.status_line, "HTTP/1.1 304 Not Modified");
                assert_eq!(
                    lane_answer,
                    ask(without, "GET", target, &headers).await,
                    "GET {target} holding {held}"
                );
            }
        }
        let expect_lane = KEPT.contains(target);
        assert_eq!(
            lane_answers(&lane, &Method::GET, target, "\"x\""),
            expect_lane,
            "the lane answers GET {target} itself: {expect_lane}"
        );
        assert!(
            !lane_answers(&lane, &Method::HEAD, target, "\"x\""),
            "HEAD {target} goes to the router"
        );
        assert_eq!(
            ask(with_lane, "HEAD", target, &[]).await,
            ask(without, "HEAD", target, &[]).await,
            "HEAD {target}"
        );
    }
}

#[tokio::test]
async fn the_lane_never_answers_with_a_page_a_write_has_changed() {
    let gallery = Gallery::seeded().await;
    let state = gallery.api();
    let lane = Arc::new(CachedListingLane::new(state.clone()));
    let server = start(App::with_fast_lane(routed(state), lane.clone())).await;
    let target = "/api/v1/images?category=cat&limit=2";
    let before = ask(server, "GET", target, &[]).await;
    assert!(lane_answers(&lane, &Method::GET, target, "\"x\""));

    let newest = support::rows::insert_classified(&*gallery.store, Category::Cat).await;
    assert!(
        !lane_answers(&lane, &Method::GET, target, "\"x\""),
        "the kept page is dropped by the write"
    );
    let after = ask(server, "GET", target, &[]).await;
    assert!(
        after.body.contains(&newest.to_string()),
        "the new cat is listed: {}",
        after.body
    );
    assert_ne!(before.header("etag"), after.header("etag"));
    // A client holding the old version gets the new one, not a 304.
    let held = before.header("etag").unwrap();
    let revalidated = ask(server, "GET", target, &[("if-none-match", held)]).await;
    assert_eq!(revalidated.status_line, "HTTP/1.1 200 OK");
    assert_eq!(revalidated.body, after.body);
}

/// Panics on every request it is asked about.
struct PanickingLane;

impl FastLane for PanickingLane {
    fn answer(
        &self,
        _: LaneRequest<'_>,
    ) -> Option<axum::http::Response<http_body_util::Full<axum::body::Bytes>>> {
        panic!("a lane that fails");
    }
}

#[tokio::test]
async fn a_lane_that_panics_gets_a_500_and_the_server_keeps_serving() {
    let gallery = Gallery::seeded().await;
    let server = start(App::with_fast_lane(
        routed(gallery.api()),
        Arc::new(PanickingLane),
    ))
    .await;
    for _ in 0..3 {
        let answer = ask(server, "GET", "/images", &[]).await;
        assert_eq!(answer.status_line, "HTTP/1.1 500 Internal Server Error");
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json")
        );
    }
}
