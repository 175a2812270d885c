//! `catdog sweep-orphans`: deletes every object (original or thumbnail) that
//! no image row refers to and that is older than the grace period. Each
//! ingestion run already sweeps the last hour; this walks the whole bucket
//! or folder, for after a long storage or database outage.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use catdog::config::{self, CommonConfig, Vars};
use catdog::ingest::orphans::{OrphanSweep, sweep_orphans};
use catdog::startup::{Backends, init};

#[derive(clap::Args)]
pub struct Args {
    /// Leave objects younger than this many seconds alone: their row may
    /// still be on its way.
    #[arg(long, default_value_t = 300)]
    pub grace_secs: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let common: CommonConfig = config::parse(&Vars::process())?;
    init(&common);
    let backends = Backends::connect(&common, false)
        .await
        .context("connecting to the database and object storage")?;
    let options = OrphanSweep::everything(Duration::from_secs(args.grace_secs));
    let report = sweep_orphans(backends.store.as_ref(), backends.objects.as_ref(), &options)
        .await
        .context("sweeping orphan objects")?;
    for name in &report.deleted {
        println!("deleted {name}");
    }
    println!(
        "{} objects examined, {} without an image row deleted",
        report.examined,
        report.deleted.len()
    );
    Ok(ExitCode::SUCCESS)
}
