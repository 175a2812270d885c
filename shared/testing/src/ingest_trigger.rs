//! ingest-trigger's parts assembled in the test's own process from its
//! settings, the way its binary assembles them, for suites that vary what
//! the binary cannot or look at what it hides.

use std::sync::Arc;

use catdog::config::{CommonConfig, MaxImageBytes, Vars, parse};
use catdog::ingest::{IngestSettings, Ingestor};
use catdog::pubsub::{GcpPublisher, PubSubSettings};
use catdog::startup::Backends;

/// The stores (migrated) and the ingestor, publishing with the real Pub/Sub
/// client, that ingest-trigger would run on `vars`.
pub async fn ingestor(vars: &Vars) -> (Backends, Ingestor) {
    let common: CommonConfig = parse(vars).expect("the common settings");
    let backends = Backends::connect(&common, true).await.expect("the stores");
    let pubsub: PubSubSettings = parse(vars).expect("the Pub/Sub settings");
    let publisher = GcpPublisher::connect(
        &pubsub
            .config(common.google_cloud_project.as_deref())
            .expect("the Pub/Sub topic"),
    )
    .await
    .expect("a Pub/Sub client");
    let ingest: IngestSettings = parse(vars).expect("the ingestion settings");
    let max_image_bytes: MaxImageBytes = parse(vars).expect("MAX_IMAGE_BYTES");
    let ingestor = Ingestor::new(
        ingest.config(max_image_bytes),
        Arc::clone(&backends.store),
        Arc::clone(&backends.objects),
        Arc::new(publisher),
    )
    .expect("an ingestor");
    (backends, ingestor)
}
