//! classify-image: the Pub/Sub push endpoint (`POST /pubsub/push`) that
//! classifies each stored picture (Cloud Run service).

use std::process::ExitCode;
use std::sync::Arc;

use catdog_auth::PrivateSettings;
use catdog_classify::{self as classify, ClassifyService, ClassifySettings};
use catdog_core::config::MaxImageBytes;
use catdog_server::startup::StartupError;

/// Everything classify-image reads from its environment.
pub type Settings = PrivateSettings<ClassifyImageSettings>;

/// What classify-image reads besides the settings of every private function.
#[derive(Clone, Debug, clap::Args)]
pub struct ClassifyImageSettings {
    #[command(flatten)]
    pub classify: ClassifySettings,
    #[command(flatten)]
    pub max_image_bytes: MaxImageBytes,
}

/// Reads the settings, loads the model, then serves `POST /pubsub/push`
/// until SIGTERM.
pub fn run() -> ExitCode {
    catdog_auth::run_private_service(
        "classify-image",
        |settings: Settings, backends| async move {
            let own = settings.own;
            let config = own.classify.config(own.max_image_bytes);
            // Once per process: every request shares the loaded model.
            let classifier = Arc::new(config.load_classifier()?);
            let service =
                ClassifyService::new(backends.store, backends.objects, classifier, config.limits);
            Ok::<_, StartupError>(classify::routes(service))
        },
    )
}
