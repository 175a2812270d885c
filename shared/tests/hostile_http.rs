//! The HTTP server loop (`catdog::http::serve`) against clients that do not
//! play fair: ones that connect and say nothing, send their headers or their
//! body a byte at a time, stall half-way through the HTTP/2 preface, or
//! finish it and then say nothing. The server runs the real push route with
//! short timeouts so each test takes a second or two; the binaries use the
//! same loop with the defaults (10 s), which
//! functions/list-images/tests/hostile.rs checks end to end. Last, hostile
//! pictures pushed through that route are rejected with a recorded reason or
//! classified.
//!
//! Timings here bound how long a test may wait for the server to act; none
//! is a speed the server must meet.
//!
//! Needs the model (model/build.sh), as the push route loads it.

use catdog_testing as support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use catdog::classifier::DecodeLimits;
use catdog::classify::{self, ClassifyService};
use catdog::domain::{Digest, ImageId, NewImage, ObjectName, Status, now_micros};
use catdog::http::{ServeOptions, serve, with_common_layers};
use catdog::objects::{FolderStore, ObjectStore};
use catdog::pubsub::{ImageMessage, PushEnvelope};
use catdog::store::{ImageStore, SqliteStore};
use image::{DynamicImage, ImageEncoder as _, ImageFormat, RgbImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_millis(600);
const BODY_TIMEOUT: Duration = Duration::from_millis(600);
/// How long a test waits for the server to act on one of those timeouts
/// before calling it a failure: generous, for a busy machine.
const BOUND: Duration = Duration::from_secs(20);

struct Server {
    addr: std::net::SocketAddr,
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// The push route over an empty SQLite store, with the common layers,
    /// served by the real loop on a free loopback port.
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-hostile-http-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(dir.join("catdog.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let objects = FolderStore::open(dir.join("objects").to_str().unwrap())
            .await
            .unwrap();
        let store: Arc<dyn ImageStore> = Arc::new(store);
        let objects: Arc<dyn ObjectStore> = Arc::new(objects);
        let service = ClassifyService::new(
            Arc::clone(&store),
            Arc::clone(&objects),
            support::model::classifier(),
            DecodeLimits::default(),
        );
        let app: Router = with_common_layers(classify::routes(service), Duration::from_secs(30));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = ServeOptions {
            header_read_timeout: HEADER_TIMEOUT,
            body_read_timeout: BODY_TIMEOUT,
            // Longer than any test waits: a shutdown held up by idle
            // connections fails the test instead of ending with the grace.
            shutdown_grace: Duration::from_secs(60),
            ..ServeOptions::default()
        };
        let done = tokio::spawn(serve(listener, app, options, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            store,
            objects,
            stop: Some(stop),
            done,
            dir,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

/// Reads until the server closes the connection (or `within` passes) and
/// returns what it sent and, if it closed, after how long.
async fn read_until_closed_bytes(
    stream: &mut TcpStream,
    within: Duration,
) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, Some(started.elapsed())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (received, None),
        }
    }
}

/// [`read_until_closed_bytes`] as text.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Option<Duration>) {
    let (received, closed) = read_until_closed_bytes(stream, within).await;
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = Server::start().await;
    let mut silent = server.connect().await;
    let (_, closed) = read_until_closed(&mut silent, BOUND).await;
    assert!(closed.is_some(), "the silent connection was still open");
}

#[tokio::test]
async fn a_stalled_http2_preface_is_closed_too() {
    let server = Server::start().await;
    let mut stalled = server.connect().await;
    stalled.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let (_, closed) = read_until_closed(&mut stalled, BOUND).await;
    assert!(closed.is_some(), "half a preface kept the connection open");
}

/// The frames in what an HTTP/2 server sent: (type, payload).
fn http2_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let end = (9 + len).min(bytes.len());
        frames.push((bytes[3], bytes[9..end].to_vec()));
        bytes = &bytes[end..];
    }
    frames
}

const HTTP2_SETTINGS: u8 = 0x4;
const HTTP2_GOAWAY: u8 = 0x7;

#[tokio::test]
async fn a_silent_http2_connection_is_told_goodbye_and_closed() {
    let server = Server::start().await;
    let mut silent = server.connect().await;
    // The whole preface and an empty SETTINGS frame: a valid HTTP/2
    // connection, which then never sends another byte (not even the
    // acknowledgements the server asks for).
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let (received, closed) = read_until_closed_bytes(&mut silent, BOUND).await;
    assert!(
        closed.is_some(),
        "a silent HTTP/2 connection was still open after {BOUND:?}"
    );
    let kinds: Vec<u8> = http2_frames(&received).iter().map(|f| f.0).collect();
    assert_eq!(kinds.first(), Some(&HTTP2_SETTINGS), "{kinds:?}");
    assert!(
        kinds.contains(&HTTP2_GOAWAY),
        "closed without a GOAWAY: {kinds:?}"
    );
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let server = Server::start().await;
    let mut slow = server.connect().await;
    // At 20 bytes a second this takes longer than BOUND to send whole.
    let mut request =
        b"POST /pubsub/push HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Slow: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 500));
    request.extend_from_slice(b"\r\n\r\n{}");
    let started = Instant::now();
    for byte in &request {
        if slow.write_all(&[*byte]).await.is_err() {
            break; // the server hung up: what we want
        }
        if started.elapsed() > BOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (answer, closed) = read_until_closed(&mut slow, BOUND).await;
    assert!(closed.is_some(), "still open after {:?}", started.elapsed());
    // hyper answers 408 or just closes; never a 2xx or a 5xx.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_body_that_drips_in_is_refused_at_the_body_deadline() {
    let server = Server::start().await;
    let mut slow = server.connect().await;
    slow.write_all(
        b"POST /pubsub/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    let started = Instant::now();
    // One byte every 100 ms: each arrives well within any idle timeout, the
    // whole body never within the deadline. Read between bytes, so the answer
    // is taken as soon as it comes.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < BOUND {
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {
                if !answer.is_empty() || slow.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "expected a 400 for the late body, got {answer:?}"
    );
    assert!(answer.contains("did not arrive within"), "{answer}");
}

#[tokio::test]
async fn a_normal_request_is_answered_while_slow_clients_hang_on() {
    let server = Server::start().await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        let mut stream = server.connect().await;
        stream
            .write_all(b"POST /pubsub/push HTTP/1.1\r\n")
            .await
            .unwrap();
        idle.push(stream);
    }
    let mut client = server.connect().await;
    client
        .write_all(b"POST /pubsub/push HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut client, BOUND).await;
    // `{}` is not an envelope: the handler's own answer, while 200 others wait.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    drop(idle);
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_idle_connections() {
    let mut server = Server::start().await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(server.connect().await);
    }
    // One idle after a request it was answered, kept alive.
    let mut answered = server.connect().await;
    answered
        .write_all(b"POST /pubsub/push HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = answered.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 400"));
    // Let the server accept them all before it is told to stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.stop.take().unwrap().send(());
    // Held up by them, serve would wait out its 60 s grace period.
    tokio::time::timeout(BOUND, &mut server.done)
        .await
        .expect("serve did not return while idle connections stayed open")
        .unwrap();
    drop(idle);
}

#[tokio::test]
async fn the_route_still_answers_a_well_formed_request_before_its_deadline() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    // Headers, then the body 200 ms later: slow but within the deadline.
    client
        .write_all(b"POST /pubsub/push HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.write_all(b"{}").await.unwrap();
    let (answer, _) = read_until_closed(&mut client, BOUND).await;
    // `{}` is not an envelope: the handler's own 400, not the deadline's.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("did not arrive"), "{answer}");
}

impl Server {
    /// Stores a picture as ingestion does (object first, then the pending row).
    async fn store_picture(&self, bytes: &[u8]) -> ImageMessage {
        let id = ImageId::new();
        let name = ObjectName::original(id);
        self.objects
            .put(&name, bytes.to_vec().into(), "application/octet-stream")
            .await
            .unwrap();
        let digest = Digest::of(bytes);
        self.store
            .insert_pending(&NewImage {
                id,
                sha256: digest.clone(),
                source: "hostile".to_owned(),
                source_ref: None,
                object_name: name.clone(),
                content_type: "application/octet-stream".to_owned(),
                byte_size: bytes.len() as i64,
                created_at: now_micros(),
            })
            .await
            .unwrap();
        ImageMessage::new(id, name, digest)
    }

    /// POSTs the message's push envelope over HTTP; returns the status line.
    async fn push(&self, message: &ImageMessage) -> String {
        let body = serde_json::to_vec(&PushEnvelope::wrap(message, "1", "s")).unwrap();
        let mut stream = self.connect().await;
        let head = format!(
            "POST /pubsub/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(30)).await;
        answer.lines().next().unwrap_or_default().to_owned()
    }
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

#[tokio::test]
async fn hostile_pictures_pushed_end_rejected_with_a_reason_or_classified() {
    let server = Server::start().await;
    let photo = RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
    });
    let photo = DynamicImage::ImageRgb8(photo);
    let jpeg = encode(&photo, ImageFormat::Jpeg);
    // 9000×9000 zeros: 81 megapixels in well under 200 KB.
    let mut bomb = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut bomb,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(
        &vec![0u8; 9_000 * 9_000],
        9_000,
        9_000,
        image::ExtendedColorType::L8,
    )
    .unwrap();
    let cmyk: Vec<u8> = photo
        .to_rgb8()
        .pixels()
        .flat_map(|p| [255 - p.0[0], 255 - p.0[1], 255 - p.0[2], 0])
        .collect();
    let mut cmyk_jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut cmyk_jpeg, 90)
        .encode(&cmyk, 64, 48, jpeg_encoder::ColorType::Cmyk)
        .unwrap();

    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        (
            "truncated JPEG",
            jpeg[..jpeg.len() / 2].to_vec(),
            "does not decode",
        ),
        (
            "not an image",
            b"just some text".to_vec(),
            "not a supported image",
        ),
        (
            "SVG with a script",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
            "not a supported image",
        ),
        (
            "HTML",
            b"<!doctype html><p>404</p>".to_vec(),
            "not a supported image",
        ),
        ("decompression bomb", bomb, "more than the limit"),
    ];
    let accepted: Vec<(&str, Vec<u8>)> = vec![
        (
            "16-bit PNG",
            encode(
                &DynamicImage::ImageRgb16(photo.to_rgb16()),
                ImageFormat::Png,
            ),
        ),
        ("GIF", encode(&photo, ImageFormat::Gif)),
        ("CMYK JPEG", cmyk_jpeg),
    ];
    for (what, bytes, reason) in &refused {
        let message = server.store_picture(bytes).await;
        let status = server.push(&message).await;
        assert!(status.starts_with("HTTP/1.1 204"), "{what}: {status}");
        let record = server.store.get(message.image_id).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Rejected, "{what}");
        let recorded = record.last_error.unwrap_or_default();
        assert!(recorded.contains(reason), "{what}: recorded {recorded:?}");
    }
    for (what, bytes) in &accepted {
        let message = server.store_picture(bytes).await;
        let status = server.push(&message).await;
        assert!(status.starts_with("HTTP/1.1 204"), "{what}: {status}");
        let record = server.store.get(message.image_id).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Classified, "{what}: {record:?}");
        assert_eq!(
            (record.width, record.height),
            (Some(64), Some(48)),
            "{what}"
        );
    }
}
