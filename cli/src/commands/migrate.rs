use std::process::ExitCode;

use catdog::config::{self, Vars};

use super::open_migrated;

/// Migrates the database only: the Cloud Run job that runs this has no
/// business with object storage.
pub async fn run() -> anyhow::Result<ExitCode> {
    open_migrated(&config::parse(&Vars::process())?).await?;
    tracing::info!("migrations applied");
    Ok(ExitCode::SUCCESS)
}
