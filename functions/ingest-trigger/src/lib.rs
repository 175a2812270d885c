//! ingest-trigger: `POST /ingest`, fired by Cloud Scheduler (Cloud Run
//! service). Each run stores the sources' new pictures and publishes one
//! Pub/Sub message per picture.

use std::process::ExitCode;
use std::sync::Arc;

use catdog_auth::{OidcSettings, PrivateServiceSettings};
use catdog_core::config::{CommonConfig, MaxImageBytes};
use catdog_ingest::{self as ingest, IngestSettings, Ingestor};
use catdog_pubsub::{GcpPublisher, PubSubSettings};
use catdog_server::startup::{ServiceSettings, StartupError};

/// Everything ingest-trigger reads from its environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub oidc: OidcSettings,
    #[command(flatten)]
    pub ingest: IngestSettings,
    #[command(flatten)]
    pub max_image_bytes: MaxImageBytes,
    /// Required here: this service's only output is its messages (local
    /// mode uses its in-process queue instead).
    #[command(flatten)]
    pub pubsub: PubSubSettings,
}

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl PrivateServiceSettings for Settings {
    fn oidc(&self) -> &OidcSettings {
        &self.oidc
    }
}

/// Reads the settings, then serves `POST /ingest` until SIGTERM.
pub fn run() -> ExitCode {
    catdog_auth::run_private_service(
        "ingest-trigger",
        |settings: Settings, backends| async move {
            let pubsub = settings
                .pubsub
                .config(settings.common.google_cloud_project.as_deref())?;
            let publisher = GcpPublisher::connect(&pubsub)
                .await
                .map_err(|e| StartupError::Other(e.to_string()))?;
            let ingestor = Ingestor::new(
                settings.ingest.config(settings.max_image_bytes),
                Arc::clone(&backends.store),
                Arc::clone(&backends.objects),
                Arc::new(publisher),
            )
            .map_err(|e| StartupError::Other(e.to_string()))?;
            Ok::<_, StartupError>(ingest::routes(Arc::new(ingestor)))
        },
    )
}
