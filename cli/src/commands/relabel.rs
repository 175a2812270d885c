//! `catdog relabel ID cat|dog|other`: an operator corrects a verdict in the
//! database DATABASE_URL names (local mode's, in `--data-dir`, when unset).
//! A running `catdog serve` shows it at once. The store records
//! who (`cli:$USER`), when and the category before; a redelivered message
//! leaves the correction alone.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use catdog::domain::{Category, ImageId};
use catdog::store::RelabelOutcome;

use super::open_store;

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
    let store = open_store(&args.data_dir).await?;
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
