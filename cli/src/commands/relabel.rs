//! `catdog relabel ID cat|dog|other`: an operator corrects a verdict in the
//! database DATABASE_URL names (local mode's, in `--data-dir`, when unset).
//! A running `catdog serve` shows it at once. The store records
//! who (`cli:$USER`), when and the category before; a redelivered message
//! leaves the correction alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use catdog::domain::{Category, ImageId};
use catdog::local;
use catdog::startup::init;
use catdog::store::{self, ConnectOptions, RelabelOutcome};

#[derive(clap::Args)]
pub struct Args {
    /// The picture's id (as in the API and the page's links).
    pub id: ImageId,
    /// Its category: cat, dog or other.
    pub category: Category,
    /// Local mode's folder (as `catdog serve --data-dir`), when DATABASE_URL
    /// is not set.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The port is not used: only the database defaults matter here.
    let common = init(&local::local_env(&args.data_dir, 0))?;
    let options = ConnectOptions {
        pool_size: 1,
        timeout: common.database_timeout,
    };
    let store = store::connect(&common.database_url, &options)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("migrating the database")?;
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let by = format!("cli:{user}");
    match store
        .relabel(args.id, args.category, &by)
        .await
        .context("relabelling")?
    {
        RelabelOutcome::Relabelled => println!("{} is now {}", args.id, args.category),
        RelabelOutcome::Unchanged => println!("{} already is {}", args.id, args.category),
        RelabelOutcome::NotFound => bail!("no picture has the id {}", args.id),
        RelabelOutcome::NotClassified(status) => bail!(
            "{} is {}, not classified: only a verdict can be corrected",
            args.id,
            status.as_str()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
