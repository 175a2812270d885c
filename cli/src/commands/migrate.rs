use std::process::ExitCode;

use anyhow::Context as _;
use catdog::config::Env;
use catdog::startup::init;
use catdog::store::{self, ConnectOptions};

/// Migrates the database only: the Cloud Run job that runs this has no
/// business with object storage.
pub async fn run() -> anyhow::Result<ExitCode> {
    let common = init(&Env::process())?;
    let options = ConnectOptions {
        pool_size: 1,
        timeout: common.database_timeout,
    };
    let store = store::connect(&common.database_url, &options)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    tracing::info!("migrations applied");
    Ok(ExitCode::SUCCESS)
}
