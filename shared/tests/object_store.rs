//! One behaviour suite for both object stores: the folder store on a temporary
//! directory and the Cloud Storage store on fake-gcs-server (started by the
//! test; see `catdog_testing::fake_gcs`). Every test opens its stores through
//! `objects::open` with a storage URL, as the binaries do.

use catdog_testing as support;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use catdog::domain::{ImageId, ObjectName};
use catdog::objects::{self, ObjectError, ObjectStore, StorageOptions};
use support::fake_gcs::FakeGcs;

/// Where one test's objects live: a fresh folder, or a fresh bucket on its
/// own emulator.
enum Backing {
    Folder(TempDir),
    Gcs { emulator: FakeGcs, bucket: String },
}

impl Backing {
    async fn folder() -> Self {
        Backing::Folder(TempDir::new())
    }

    async fn gcs() -> Self {
        let emulator = FakeGcs::start().await;
        let bucket = format!("catdog-test-{}", ImageId::new());
        emulator.create_bucket(&bucket).await;
        Backing::Gcs { emulator, bucket }
    }

    fn url(&self, prefix: &str) -> String {
        match self {
            Backing::Folder(dir) => {
                let dir = dir.0.join(prefix);
                format!("file://{}", dir.display())
            }
            Backing::Gcs { bucket, .. } if prefix.is_empty() => format!("gs://{bucket}"),
            Backing::Gcs { bucket, .. } => format!("gs://{bucket}/{prefix}"),
        }
    }

    fn options(&self) -> StorageOptions {
        match self {
            Backing::Folder(_) => StorageOptions::default(),
            Backing::Gcs { emulator, .. } => StorageOptions {
                endpoint: Some(emulator.endpoint.clone()),
            },
        }
    }

    /// The store at `prefix` (a sub-folder, or an object-name prefix);
    /// `""` is the folder or bucket itself.
    async fn open(&self, prefix: &str) -> Arc<dyn ObjectStore> {
        let url = self.url(prefix);
        objects::open(&url, &self.options())
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"))
    }

    /// Leaves something that is not one of our objects where a store lives.
    async fn put_foreign(&self, path: &str) {
        match self {
            Backing::Folder(dir) => {
                let path = dir.0.join(path);
                std::fs::create_dir_all(path.parent().expect("a parent folder"))
                    .expect("create folder");
                std::fs::write(path, b"not ours").expect("write a foreign file");
            }
            Backing::Gcs { emulator, bucket } => emulator.put_raw(bucket, path, b"not ours").await,
        }
    }
}

/// A folder under the system temp dir, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("catdog-objects-{}", ImageId::new()));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn original() -> ObjectName {
    ObjectName::original(ImageId::new())
}

/// Bytes that break a naive multipart parser: CRLFs, lines that look like
/// boundaries and part headers, JSON, every byte value, and a few MB of a
/// pseudo-random stream.
fn tricky_bytes(len: usize) -> Bytes {
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(b"\r\n--\r\n--boundary\r\nContent-Type: application/json\r\n\r\n");
    bytes.extend_from_slice(b"{\"crc32c\":\"AAAAAA==\"}\r\n--boundary--\r\n\n\r\r\n");
    bytes.extend((0..=255u8).cycle().take(512));
    let mut state: u32 = 0x9e37_79b9;
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes.extend_from_slice(&state.to_le_bytes());
        if state.is_multiple_of(97) {
            bytes.extend_from_slice(b"\r\n--");
        }
    }
    bytes.truncate(len.saturating_sub(6));
    bytes.extend_from_slice(&b"\r\n--\r\n"[..len.min(6)]);
    assert_eq!(bytes.len(), len);
    Bytes::from(bytes)
}

async fn assert_round_trip(
    store: &dyn ObjectStore,
    name: &ObjectName,
    bytes: Bytes,
    content_type: &str,
) {
    store
        .put(name, bytes.clone(), content_type)
        .await
        .unwrap_or_else(|e| panic!("put {name} ({} bytes): {e}", bytes.len()));
    let read = store
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"));
    assert_eq!(read.content_type, content_type, "content type of {name}");
    assert_eq!(read.bytes.len(), bytes.len(), "length of {name}");
    assert!(read.bytes == bytes, "{name} read back different bytes");
}

// ---------------------------------------------------------------- behaviours

async fn reads_back_exactly_what_was_written(backing: Backing) {
    let store = backing.open("").await;
    assert_round_trip(
        &*store,
        &original(),
        tricky_bytes(3 * 1024 * 1024 + 7),
        "image/jpeg",
    )
    .await;
    assert_round_trip(
        &*store,
        &original(),
        Bytes::from_static(b"\r\n--x--\r\n"),
        "image/png",
    )
    .await;
    assert_round_trip(&*store, &original(), Bytes::new(), "image/webp").await;
    let thumbnail = ObjectName::thumbnail(ImageId::new());
    assert_round_trip(&*store, &thumbnail, tricky_bytes(40_000), "image/jpeg").await;
}

/// Above 16 MiB the Cloud Storage client switches to a resumable upload; our
/// largest accepted image (MAX_IMAGE_BYTES) is 20 MiB.
async fn reads_back_a_large_object(backing: Backing) {
    let store = backing.open("").await;
    assert_round_trip(
        &*store,
        &original(),
        tricky_bytes(20 * 1024 * 1024),
        "image/jpeg",
    )
    .await;
}

async fn overwriting_replaces_bytes_and_type(backing: Backing) {
    let store = backing.open("").await;
    let name = original();
    assert_round_trip(&*store, &name, tricky_bytes(100_000), "image/png").await;
    assert_round_trip(&*store, &name, Bytes::from_static(b"short"), "image/gif").await;
}

async fn missing_object_is_not_found(backing: Backing) {
    let store = backing.open("").await;
    let name = original();
    match store.get(&name).await {
        Err(ObjectError::NotFound(what)) => assert!(what.contains(name.as_str())),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn delete_removes_and_is_idempotent(backing: Backing) {
    let store = backing.open("").await;
    let (gone, kept) = (original(), original());
    store
        .put(&gone, tricky_bytes(1000), "image/jpeg")
        .await
        .expect("put");
    store
        .put(&kept, tricky_bytes(1000), "image/jpeg")
        .await
        .expect("put");

    store.delete(&gone).await.expect("delete");
    assert!(matches!(
        store.get(&gone).await,
        Err(ObjectError::NotFound(_))
    ));
    store.delete(&gone).await.expect("deleting again is fine");
    store
        .delete(&original())
        .await
        .expect("deleting what never was is fine");

    assert_eq!(
        store
            .get(&kept)
            .await
            .expect("the other object stays")
            .bytes
            .len(),
        1000
    );
    assert_eq!(store.list().await.expect("list"), vec![kept]);
}

async fn list_reports_only_our_objects(backing: Backing) {
    let store = backing.open("").await;
    assert_eq!(
        store.list().await.expect("list an empty store"),
        Vec::<ObjectName>::new()
    );

    let id = ImageId::new();
    let mut ours = vec![
        ObjectName::original(id),
        ObjectName::thumbnail(id),
        original(),
    ];
    for name in &ours {
        store
            .put(name, Bytes::from_static(b"x"), "image/jpeg")
            .await
            .expect("put");
    }
    backing.put_foreign("notes.txt").await;
    backing.put_foreign("thumbs/notes.jpg").await;
    backing.put_foreign(&format!("thumbs/{id}.png")).await;

    ours.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(store.list().await.expect("list"), ours);
}

async fn prefixes_keep_stores_apart(backing: Backing) {
    let a = backing.open("a").await;
    let ab = backing.open("ab").await;
    let nested = backing.open("a/b").await;
    let root = backing.open("").await;
    let name = original();
    a.put(&name, Bytes::from_static(b"in a"), "image/jpeg")
        .await
        .expect("put in a");

    for (other, label) in [(&ab, "ab"), (&nested, "a/b"), (&root, "root")] {
        assert!(
            matches!(other.get(&name).await, Err(ObjectError::NotFound(_))),
            "{label} sees a's object"
        );
        assert_eq!(
            other.list().await.expect("list"),
            vec![],
            "{label} lists a's object"
        );
        other.delete(&name).await.expect("delete elsewhere");
    }
    assert_eq!(
        a.get(&name).await.expect("a keeps its object").bytes,
        "in a"
    );
    assert_eq!(a.list().await.expect("list a"), vec![name]);
}

macro_rules! for_both_stores {
    ($($behaviour:ident),* $(,)?) => {
        mod folder {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(super::Backing::folder().await).await;
                }
            )*
        }
        mod gcs {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(super::Backing::gcs().await).await;
                }
            )*
        }
    };
}

for_both_stores!(
    reads_back_exactly_what_was_written,
    reads_back_a_large_object,
    overwriting_replaces_bytes_and_type,
    missing_object_is_not_found,
    delete_removes_and_is_idempotent,
    list_reports_only_our_objects,
    prefixes_keep_stores_apart,
);

// ------------------------------------------------- Cloud Storage being down

/// What a request handler may wait for a storage that is down before it can
/// answer 503: the store's deadline plus its grace, plus scheduling slack.
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(7);

async fn assert_unavailable_soon<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, ObjectError>>,
) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(ObjectError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
    assert!(took < UNAVAILABLE_WITHIN, "{what}: took {took:?}");
    eprintln!("{what}: Unavailable after {took:?}");
}

async fn assert_every_operation_unavailable(store: Arc<dyn ObjectStore>) {
    let name = original();
    // Concurrently, so the suite waits for one deadline, not four.
    tokio::join!(
        assert_unavailable_soon("put", store.put(&name, tricky_bytes(1000), "image/jpeg")),
        assert_unavailable_soon("get", store.get(&name)),
        assert_unavailable_soon("delete", store.delete(&name)),
        assert_unavailable_soon("list", store.list()),
    );
}

#[tokio::test]
async fn gcs_stopped_emulator_is_unavailable() {
    let backing = Backing::gcs().await;
    let store = backing.open("").await;
    store
        .put(&original(), Bytes::from_static(b"x"), "image/jpeg")
        .await
        .expect("put while up");
    let Backing::Gcs { mut emulator, .. } = backing else {
        unreachable!()
    };
    emulator.stop();
    assert_every_operation_unavailable(store).await;
}

/// A peer that accepts connections and never answers: the store must give up
/// on its own deadline rather than wait for TCP.
#[tokio::test]
async fn gcs_silent_endpoint_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = StorageOptions {
        endpoint: Some(endpoint),
    };
    let store = objects::open("gs://catdog-silent", &options)
        .await
        .expect("open");
    assert_every_operation_unavailable(store).await;
    holder.abort();
}

#[tokio::test]
async fn gcs_urls_that_name_no_single_place_are_refused() {
    let options = StorageOptions {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
    };
    for url in [
        "gs://",
        "gs://UPPER",
        "gs://bucket?x=1",
        "gs://bucket/a/../b",
        "gs://bucket/a//b",
    ] {
        assert!(
            matches!(
                objects::open(url, &options).await,
                Err(ObjectError::BadUrl(_))
            ),
            "{url} was accepted"
        );
    }
}

/// What interrupted writes leave in a folder store goes once it is old
/// enough that no write can still be finishing it; live objects, their
/// types, and young temporary files stay.
#[tokio::test]
async fn folder_leftovers_of_interrupted_writes_are_swept_and_live_objects_kept() {
    let dir = std::env::temp_dir().join(format!("catdog-leftovers-{}", ImageId::new()));
    let store = objects::open(
        &format!("file://{}", dir.display()),
        &StorageOptions::default(),
    )
    .await
    .unwrap();
    let live = original();
    store
        .put(&live, Bytes::from_static(b"live"), "image/jpeg")
        .await
        .unwrap();
    let thumb: ObjectName = format!("thumbs/{}.jpg", ImageId::new()).parse().unwrap();
    store
        .put(&thumb, Bytes::from_static(b"thumb"), "image/jpeg")
        .await
        .unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let aged = |path: PathBuf| {
        std::fs::write(&path, b"left behind").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        path
    };
    let gone = [
        aged(dir.join(format!("{}.tmp-{}", ImageId::new(), ImageId::new()))),
        aged(dir.join(format!(
            "thumbs/{}.jpg.tmp-{}",
            ImageId::new(),
            ImageId::new()
        ))),
        aged(dir.join(format!("{}.content-type", ImageId::new()))),
    ];
    let young_tmp = dir.join(format!("{}.tmp-{}", ImageId::new(), ImageId::new()));
    std::fs::write(&young_tmp, b"being written").unwrap();
    // A live object's type file, however old, stays with its object.
    std::fs::File::options()
        .write(true)
        .open(dir.join(format!("{live}.content-type")))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();

    let removed = store
        .sweep_leftovers(Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(removed, gone.len());
    for path in &gone {
        assert!(!path.exists(), "{} is left", path.display());
    }
    assert!(young_tmp.exists(), "a write in progress was removed");
    for name in [&live, &thumb] {
        let object = store.get(name).await.unwrap();
        assert_eq!(object.content_type, "image/jpeg", "{name}");
    }
    assert_eq!(
        store
            .sweep_leftovers(Duration::from_secs(300))
            .await
            .unwrap(),
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}
