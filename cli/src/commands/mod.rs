pub mod classify;
pub mod dead_letters;
pub mod eval;
pub mod failed;
pub mod import;
pub mod migrate;
pub mod relabel;
pub mod serve;
pub mod sweep_orphans;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use catdog::config::Env;
use catdog::local;
use catdog::startup::init;
use catdog::store::{self, ConnectOptions, ImageStore};

/// The database DATABASE_URL names, or local mode's in `data_dir`, migrated:
/// what the operator commands work on.
pub async fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn ImageStore>> {
    // The port is not used: only the database defaults matter here.
    open_migrated(&local::local_env(data_dir, 0)).await
}

/// The database `env`'s DATABASE_URL names, migrated.
pub async fn open_migrated(env: &Env) -> anyhow::Result<Arc<dyn ImageStore>> {
    let common = init(env)?;
    let options = ConnectOptions {
        pool_size: 1,
        timeout: common.database_timeout,
    };
    let store = store::connect(&common.database_url, &options)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}
