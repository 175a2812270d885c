//! `catdog failed` and `catdog retry`: the pictures classification gave up
//! on, with why, and another round for chosen ones. A failure is always ours
//! (storage, the database, the queue; a picture that is not one is rejected
//! instead), and the ingestion sweep already retries each a few times with a
//! doubling wait; these are for the operator who fixed the fault and does
//! not want to wait, or who wants to know what is stuck.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use catdog::domain::ImageId;

use super::open_store;

#[derive(clap::Args)]
pub struct ListArgs {
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Local mode's folder (as `catdog serve --data-dir`), when DATABASE_URL
    /// is not set.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct RetryArgs {
    /// The failed pictures' ids (as `catdog failed` prints them).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<ImageId>,
    /// Every failed picture.
    #[arg(long)]
    pub all: bool,
    /// Local mode's folder (as `catdog serve --data-dir`), when DATABASE_URL
    /// is not set.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

/// One line per failed picture: id, when it was stored, how many
/// classification attempts failed, and the reason recorded.
pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&args.data_dir).await?;
    let failed = store
        .failed_images(args.limit)
        .await
        .context("reading the failed pictures")?;
    if failed.is_empty() {
        println!("no failed pictures");
    }
    for record in failed {
        println!(
            "{}\t{}\t{} failed attempts\t{}",
            record.id,
            record.created_at.to_rfc3339(),
            record.attempts,
            record.last_error.as_deref().unwrap_or("no reason recorded"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes the pictures pending again; the next ingestion run's sweep
/// publishes them (in local mode, `catdog serve` runs one every
/// INGEST_INTERVAL_SECS).
pub async fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    /// How many `--all` takes in one go; run it again for more.
    const ALL_AT_ONCE: u32 = 10_000;
    let store = open_store(&args.data_dir).await?;
    let ids: Vec<ImageId> = if args.all {
        store
            .failed_images(ALL_AT_ONCE)
            .await
            .context("reading the failed pictures")?
            .into_iter()
            .map(|record| record.id)
            .collect()
    } else {
        args.ids
    };
    let retried = store
        .retry_images(&ids)
        .await
        .context("marking the pictures for another round")?;
    for id in &ids {
        if retried.contains(id) {
            println!("{id} will be published again by the next ingestion run");
        } else {
            println!("{id} is not a failed picture: left alone");
        }
    }
    if retried.is_empty() && !ids.is_empty() {
        bail!("none of the pictures given is failed");
    }
    Ok(ExitCode::SUCCESS)
}
