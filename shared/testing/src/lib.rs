//! What the workspace's tests share: real stand-ins for the services the
//! gallery talks to (PostgreSQL databases and clusters of the test's own,
//! fake-gcs-server, a loopback Pub/Sub Publisher and its push half, Google's
//! token issuer, the sources' HTTP contracts), our binaries run as
//! processes, pictures made in memory, and the team's dev photos and model.
//! A dev-dependency only; nothing here ships.

use std::path::{Path, PathBuf};

pub mod fake_gcs;
pub mod ingest_trigger;
pub mod local_queue;
pub mod log_capture;
pub mod model;
pub mod oidc_issuer;
pub mod pg_cluster;
pub mod pictures;
pub mod postgres;
pub mod private_function;
pub mod pubsub_push;
pub mod pubsub_server;
pub mod rows;
pub mod secrets;
pub mod service_process;
pub mod sources;
pub mod stats;
pub mod stored;
pub mod tcp_proxy;

/// The repository's root: the nearest folder above this crate with the
/// workspace's `Cargo.lock`. The team's data is `../shared` beside it.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(manifest_dir)
        .to_path_buf()
}
