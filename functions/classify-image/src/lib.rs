//! classify-image: the Pub/Sub push endpoint (`POST /pubsub/push`) that
//! classifies each stored picture (Cloud Run service).

use std::process::ExitCode;
use std::sync::Arc;

use catdog_auth::{OidcSettings, PrivateServiceSettings};
use catdog_classify::{self as classify, ClassifyService, ClassifySettings};
use catdog_core::config::{CommonConfig, MaxImageBytes};
use catdog_server::startup::{ServiceSettings, StartupError};

/// Everything classify-image reads from its environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub oidc: OidcSettings,
    #[command(flatten)]
    pub classify: ClassifySettings,
    #[command(flatten)]
    pub max_image_bytes: MaxImageBytes,
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

/// Reads the settings, loads the model, then serves `POST /pubsub/push`
/// until SIGTERM.
pub fn run() -> ExitCode {
    catdog_auth::run_private_service(
        "classify-image",
        |settings: Settings, backends| async move {
            let config = settings.classify.config(settings.max_image_bytes);
            // Once per process: every request shares the loaded model.
            let classifier = Arc::new(config.load_classifier()?);
            let service =
                ClassifyService::new(backends.store, backends.objects, classifier, config.limits);
            Ok::<_, StartupError>(classify::routes(service))
        },
    )
}
