//! ingest-trigger: `POST /ingest`, fired by Cloud Scheduler (Cloud Run
//! service). Each run stores the sources' new pictures and publishes one
//! Pub/Sub message per picture.

use std::process::ExitCode;
use std::sync::Arc;

use catdog_auth::PrivateSettings;
use catdog_core::config::MaxImageBytes;
use catdog_ingest::{self as ingest, IngestSettings, Ingestor};
use catdog_pubsub::{GcpPublisher, PubSubSettings};
use catdog_server::startup::StartupError;

/// Everything ingest-trigger reads from its environment.
pub type Settings = PrivateSettings<IngestTriggerSettings>;

/// What ingest-trigger reads besides the settings of every private function.
#[derive(Clone, Debug, clap::Args)]
pub struct IngestTriggerSettings {
    #[command(flatten)]
    pub ingest: IngestSettings,
    #[command(flatten)]
    pub max_image_bytes: MaxImageBytes,
    /// Required here: this service's only output is its messages (local
    /// mode uses its in-process queue instead).
    #[command(flatten)]
    pub pubsub: PubSubSettings,
}

/// Reads the settings, then serves `POST /ingest` until SIGTERM.
pub fn run() -> ExitCode {
    catdog_auth::run_private_service(
        "ingest-trigger",
        |settings: Settings, backends| async move {
            let own = settings.own;
            let pubsub = own
                .pubsub
                .config(settings.common.google_cloud_project.as_deref())?;
            let publisher = GcpPublisher::connect(&pubsub)
                .await
                .map_err(|e| StartupError::Other(e.to_string()))?;
            let ingestor = Ingestor::new(
                own.ingest.config(own.max_image_bytes),
                Arc::clone(&backends.store),
                Arc::clone(&backends.objects),
                Arc::new(publisher),
            )
            .map_err(|e| StartupError::Other(e.to_string()))?;
            Ok::<_, StartupError>(ingest::routes(Arc::new(ingestor)))
        },
    )
}
