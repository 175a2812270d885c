//! Loopback HTTP servers that speak the sources' contracts (The Cat API, Dog
//! CEO, the original generator) and serve real photos from
//! `../shared/data/images/dev`, plus every way a stranger's server misbehaves,
//! scripted per path: errors, 429 with Retry-After, hangs, drips, lies about
//! sizes, gzip bombs, redirects.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;

/// The team's development photos, `../shared/data/images/dev/{cat,dog,other}`.
pub fn dev_photos(kind: &str) -> Vec<PathBuf> {
    let dir = crate::repo_root()
        .join("../shared/data/images/dev")
        .join(kind);
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no photos in {}", dir.display());
    photos
}

/// What the server answers on one request for a path, instead of the
/// contract's normal answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The normal answer.
    Normal,
    /// That status with an empty body.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooManyRequests { retry_after_secs: u64 },
    /// Never answers.
    Hang,
    /// 200 with a JPEG's first bytes, then one byte a second, forever.
    Drip,
    /// 200, `Content-Type: image/jpeg`, and a web page.
    NotAnImage,
    /// 200 and this many bytes that start like a JPEG, without a Content-Length.
    Streamed(usize),
    /// 200 declaring `Content-Length: 10 GB`, then a few bytes and hangs.
    DeclaresHuge,
    /// 200, `Content-Encoding: gzip`: 10 MB of zeros gzipped to a few KB.
    GzipBomb,
    /// 302 to this URL.
    RedirectTo(String),
    /// The normal answer, this late.
    Delay(Duration),
}

struct ServerState {
    base: String,
    photos: Vec<(String, Bytes)>,
    /// Per path, what the next requests get before the normal answer.
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// Per path, how many requests came.
    hits: Mutex<HashMap<String, u32>>,
    api_keys: Mutex<Vec<Option<String>>>,
}

/// One loopback server speaking all three contracts:
/// - `GET /v1/images/search?limit=N` (The Cat API),
/// - `GET /api/breeds/image/random/N` (Dog CEO),
/// - `POST /generate` (the original generator, base64 body),
/// - `GET /images/{name}` (the photos the listings point at),
/// - `GET /loop` (redirects to itself).
///
/// Listings always offer the first N of its photos, like a catalogue that
/// does not change, so a second run finds only pictures already stored.
pub struct SourceServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl SourceServer {
    pub async fn start(photos: &[PathBuf]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let photos = photos
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned();
                let bytes =
                    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                (name, Bytes::from(bytes))
            })
            .collect();
        let state = Arc::new(ServerState {
            base: format!("http://{addr}"),
            photos,
            scripts: Mutex::new(HashMap::new()),
            hits: Mutex::new(HashMap::new()),
            api_keys: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/images/search", get(thecatapi_search))
            .route("/api/breeds/image/random/{n}", get(dogceo_random))
            .route("/generate", post(generate))
            .route("/images/{name}", get(photo))
            .route(
                "/loop",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
            )
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.state.base.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.base)
    }

    /// The URL the listings give for photo number `index`.
    pub fn photo_path(&self, index: usize) -> String {
        format!("/images/{}", self.state.photos[index].0)
    }

    pub fn photo_bytes(&self, index: usize) -> Bytes {
        self.state.photos[index].1.clone()
    }

    /// The next requests for `path` get `replies`, in order; later ones the
    /// normal answer.
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .insert(path.to_owned(), replies.into_iter().collect());
    }

    /// Every request for `path` gets `reply`.
    pub fn always(&self, path: &str, reply: Reply) {
        self.script(path, std::iter::repeat_n(reply, 10_000));
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_hits(&self) -> u32 {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// The `x-api-key` header of each Cat API listing request.
    pub fn api_keys(&self) -> Vec<Option<String>> {
        self.state.api_keys.lock().unwrap().clone()
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ServerState {
    /// Counts the request and says what to answer.
    fn next_reply(&self, path: &str) -> Reply {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default() += 1;
        self.scripts
            .lock()
            .unwrap()
            .get_mut(path)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Normal)
    }

    fn listing(&self, n: usize) -> Vec<(String, String)> {
        self.photos
            .iter()
            .take(n)
            .map(|(name, _)| (name.clone(), format!("{}/images/{name}", self.base)))
            .collect()
    }
}

/// The misbehaviour for `reply`, or `None` for the normal answer.
async fn misbehave(reply: Reply) -> Option<Response> {
    let response = match reply {
        Reply::Normal => return None,
        Reply::Delay(delay) => {
            tokio::time::sleep(delay).await;
            return None;
        }
        Reply::Status(code) => StatusCode::from_u16(code)
            .expect("a status code")
            .into_response(),
        Reply::TooManyRequests { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_secs.to_string())],
        )
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Reply::Drip => {
            let head = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"\xff\xd8\xff\xe0"))
            });
            let drip = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Some((Ok::<_, std::io::Error>(Bytes::from_static(b"\0")), ()))
            });
            image_response(Body::from_stream(futures::StreamExt::chain(head, drip)))
        }
        Reply::NotAnImage => image_response(Body::from(
            "<!doctype html><html><body>Sorry, this image is gone</body></html>",
        )),
        Reply::Streamed(len) => {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let chunks = len.div_ceil(chunk.len());
            let first = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"\xff\xd8\xff"))
            });
            let rest = futures::stream::iter((0..chunks).map(move |_| Ok(chunk.clone())));
            image_response(Body::from_stream(futures::StreamExt::chain(first, rest)))
        }
        Reply::DeclaresHuge => {
            let head = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"\xff\xd8\xff"))
            });
            let hang = futures::stream::once(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, std::io::Error>(Bytes::new())
            });
            let mut response =
                image_response(Body::from_stream(futures::StreamExt::chain(head, hang)));
            response.headers_mut().insert(
                header::CONTENT_LENGTH,
                HeaderValue::from_static("10000000000"),
            );
            response
        }
        Reply::GzipBomb => {
            let mut response = image_response(Body::from(gzip_bomb()));
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        Reply::RedirectTo(url) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
    };
    Some(response)
}

fn image_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    response
}

/// 10 MiB of zeros as ten gzip members of 1 MiB each (decoders concatenate
/// members), about 66 KB on the wire.
fn gzip_bomb() -> Vec<u8> {
    let member = zero_run_gzip_member(1 << 20);
    let mut bomb = Vec::new();
    for _ in 0..10 {
        bomb.write_all(&member).expect("write to a vector");
    }
    bomb
}

/// A gzip member holding `len` zero bytes, compressed with deflate's fixed
/// Huffman code: one literal zero, then length-258 back-references at
/// distance 1. Small and valid, which is all a bomb needs to be.
fn zero_run_gzip_member(len: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.push(1, 1); // BFINAL
    bits.push(0b01, 2); // BTYPE = fixed Huffman
    fixed_literal(&mut bits, 0);
    let mut remaining = len - 1;
    while remaining >= 258 {
        // Length 258 is code 285 (8 bits: 11000101), no extra bits.
        bits.push_reversed(0b1100_0101, 8);
        // Distance 1 is code 0 (5 bits), no extra bits.
        bits.push_reversed(0, 5);
        remaining -= 258;
    }
    for _ in 0..remaining {
        fixed_literal(&mut bits, 0);
    }
    bits.push_reversed(0, 7); // end of block, code 256
    let deflate = bits.finish();
    let crc = crc32(&vec![0u8; len]);
    let mut member = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    member.extend_from_slice(&deflate);
    member.extend_from_slice(&crc.to_le_bytes());
    member.extend_from_slice(&(len as u32).to_le_bytes());
    member
}

fn fixed_literal(bits: &mut BitWriter, byte: u8) {
    // Literals 0..=143 are 8-bit codes 00110000 + value.
    bits.push_reversed(0b0011_0000 + u32::from(byte), 8);
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    current: u32,
    filled: u32,
}

impl BitWriter {
    /// Pushes `count` bits of `value`, least significant first (header fields).
    fn push(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.bit((value >> i) & 1);
        }
    }

    /// Pushes a Huffman code, most significant bit first.
    fn push_reversed(&mut self, code: u32, count: u32) {
        for i in (0..count).rev() {
            self.bit((code >> i) & 1);
        }
    }

    fn bit(&mut self, bit: u32) {
        self.current |= bit << self.filled;
        self.filled += 1;
        if self.filled == 8 {
            self.out.push(self.current as u8);
            self.current = 0;
            self.filled = 0;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.out.push(self.current as u8);
        }
        self.out
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

async fn thecatapi_search(
    State(state): State<Arc<ServerState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    state.api_keys.lock().unwrap().push(
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    if let Some(response) = misbehave(state.next_reply("/v1/images/search")).await {
        return response;
    }
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(1);
    let items: Vec<_> = state
        .listing(limit)
        .into_iter()
        .map(|(name, url)| serde_json::json!({"id": name, "url": url, "width": 500, "height": 375}))
        .collect();
    axum::Json(items).into_response()
}

async fn dogceo_random(
    State(state): State<Arc<ServerState>>,
    UrlPath(n): UrlPath<usize>,
) -> Response {
    if let Some(response) = misbehave(state.next_reply("/api/breeds/image/random")).await {
        return response;
    }
    let urls: Vec<String> = state.listing(n).into_iter().map(|(_, url)| url).collect();
    axum::Json(serde_json::json!({"message": urls, "status": "success"})).into_response()
}

/// Each POST gives the next photo, base64-encoded, as the original upstream did.
async fn generate(State(state): State<Arc<ServerState>>) -> Response {
    if let Some(response) = misbehave(state.next_reply("/generate")).await {
        return response;
    }
    let index = (state.hits.lock().unwrap()["/generate"] as usize - 1) % state.photos.len();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&state.photos[index].1);
    (StatusCode::OK, encoded).into_response()
}

async fn photo(State(state): State<Arc<ServerState>>, UrlPath(name): UrlPath<String>) -> Response {
    let path = format!("/images/{name}");
    if let Some(response) = misbehave(state.next_reply(&path)).await {
        return response;
    }
    match state.photos.iter().find(|(n, _)| *n == name) {
        // Claims to be a PNG: the fetcher must believe the bytes, not this.
        Some((_, bytes)) => {
            let mut response = Response::new(Body::from(bytes.clone()));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
