use std::process::ExitCode;

use anyhow::Context as _;
use catdog::config::Env;
use catdog::startup::{Backends, init};

pub async fn run() -> anyhow::Result<ExitCode> {
    let common = init(&Env::process())?;
    Backends::connect(&common, true)
        .await
        .context("migrating the database")?;
    tracing::info!("migrations applied");
    Ok(ExitCode::SUCCESS)
}
