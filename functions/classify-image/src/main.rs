//! classify-image: the Pub/Sub push endpoint (`POST /pubsub/push`) that
//! classifies each stored picture (Cloud Run service).

use std::process::ExitCode;
use std::sync::Arc;

use catdog_classify::{self as classify, ClassifyConfig, ClassifyService};
use catdog_server::startup::StartupError;

fn main() -> ExitCode {
    catdog_auth::run_private_service("classify-image", |env, backends| async move {
        let config = ClassifyConfig::from_env(&env)?;
        // Once per process: every request shares the loaded model.
        let classifier = Arc::new(config.load_classifier()?);
        let service =
            ClassifyService::new(backends.store, backends.objects, classifier, config.limits);
        Ok::<_, StartupError>(classify::routes(service))
    })
}
