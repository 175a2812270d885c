//! list-images: the public, read-only gallery API (Cloud Run service).

use std::process::ExitCode;
use std::sync::Arc;

use catdog_api::ApiState;
use catdog_core::config::{ApiConfig, CommonConfig};
use catdog_server::startup::{self, ServiceSettings, StartupError};

/// Everything list-images reads from its environment.
#[derive(Clone, Debug, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonConfig,
    #[command(flatten)]
    pub api: ApiConfig,
}

impl ServiceSettings for Settings {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

/// Reads the settings, then serves the API (kept first pages through the
/// fast lane) until SIGTERM.
pub fn run() -> ExitCode {
    startup::run_service("list-images", |settings: Settings, backends| async move {
        Ok::<_, StartupError>(catdog_api::app(ApiState::new(
            Arc::clone(&backends.store),
            settings.api,
        )))
    })
}
