//! The `catdog` umbrella crate: every capability crate under one name, plus
//! local mode (`catdog serve`: one process, the in-process queue, the page).
//! The cloud functions do not depend on it; each takes only the crates it
//! runs (see README's layout table). The `catdog` command and the
//! cross-capability tests in `shared/tests` do.

pub use catdog_api as api;
pub use catdog_auth as auth;
pub use catdog_classify as classify;
pub use catdog_core::{config, domain};
pub use catdog_ingest as ingest;
pub use catdog_model as classifier;
pub use catdog_objects as objects;
pub use catdog_server::{http, startup, telemetry};
pub use catdog_store as store;

/// The message between ingestion and classification, and both publishers.
pub mod pubsub {
    pub use catdog_core::pubsub::*;
    pub use catdog_pubsub::{GcpPublisher, GcpPublisherConfig, PubSubSettings};
}

pub mod local;
pub mod queue;
