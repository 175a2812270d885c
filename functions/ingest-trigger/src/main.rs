//! ingest-trigger: `POST /ingest`, fired by Cloud Scheduler (Cloud Run
//! service). Each run stores the sources' new pictures and publishes one
//! Pub/Sub message per picture.

use std::process::ExitCode;
use std::sync::Arc;

use catdog_ingest::{self as ingest, IngestConfig, Ingestor};
use catdog_pubsub::{GcpPublisher, GcpPublisherConfig};
use catdog_server::startup::StartupError;

fn main() -> ExitCode {
    catdog_auth::run_private_service("ingest-trigger", |env, backends| async move {
        let config = IngestConfig::from_env(&env)?;
        // No topic is a start-up error here: this service's only output is
        // its messages (local mode uses its in-process queue instead).
        let pubsub = GcpPublisherConfig::from_env(&env)?;
        let publisher = GcpPublisher::connect(&pubsub)
            .await
            .map_err(|e| StartupError::Other(e.to_string()))?;
        let ingestor = Ingestor::new(
            config,
            Arc::clone(&backends.store),
            Arc::clone(&backends.objects),
            Arc::new(publisher),
        )
        .map_err(|e| StartupError::Other(e.to_string()))?;
        Ok::<_, StartupError>(ingest::routes(Arc::new(ingestor)))
    })
}
