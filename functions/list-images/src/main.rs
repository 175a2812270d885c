//! list-images: the public, read-only gallery API (Cloud Run service).

use std::process::ExitCode;
use std::sync::Arc;

use catdog_api::ApiState;
use catdog_core::config::ApiConfig;
use catdog_server::startup::{self, StartupError};

fn main() -> ExitCode {
    startup::run_service("list-images", |env, backends| async move {
        let api = ApiConfig::from_env(&env).map_err(StartupError::from)?;
        Ok(catdog_api::router(ApiState::new(
            Arc::clone(&backends.store),
            api,
        )))
    })
}
