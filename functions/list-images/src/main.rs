//! list-images: the public, read-only gallery API (Cloud Run service).

use std::process::ExitCode;

use catdog::config::ApiConfig;
use catdog::startup::{self, StartupError};

fn main() -> ExitCode {
    startup::run_service("list-images", |env, backends| async move {
        let api = ApiConfig::from_env(&env).map_err(StartupError::from)?;
        Ok(startup::list_images_routes(&backends, api))
    })
}
