use std::process::ExitCode;

use catdog::config::Env;

use super::open_migrated;

/// Migrates the database only: the Cloud Run job that runs this has no
/// business with object storage.
pub async fn run() -> anyhow::Result<ExitCode> {
    open_migrated(&Env::process()).await?;
    tracing::info!("migrations applied");
    Ok(ExitCode::SUCCESS)
}
