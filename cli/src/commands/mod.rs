pub mod classify;
pub mod dead_letters;
pub mod eval;
pub mod failed;
pub mod import;
pub mod migrate;
pub mod relabel;
pub mod serve;
pub mod sweep_orphans;

pub mod settings;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use catdog::config::CommonConfig;
use catdog::local;
use catdog::startup::init;
use catdog::store::{self, ConnectOptions, ImageStore};
use secrecy::ExposeSecret as _;

/// The database DATABASE_URL names, or local mode's in `data_dir`, migrated:
/// what the operator commands work on.
pub async fn open_store(data_dir: &Path) -> anyhow::Result<Arc<dyn ImageStore>> {
    open_migrated(&local::local_settings(data_dir)?).await
}

/// The database `common`'s DATABASE_URL names, migrated.
pub async fn open_migrated(common: &CommonConfig) -> anyhow::Result<Arc<dyn ImageStore>> {
    init(common);
    let options = ConnectOptions {
        pool_size: 1,
        timeout: common.database_timeout,
    };
    let store = store::connect(common.database_url.expose_secret(), &options)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}
