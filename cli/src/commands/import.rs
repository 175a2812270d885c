//! `catdog import DIR`: store every picture under DIR once and classify it,
//! through the same ingestion run, queue and push handler as `catdog serve`,
//! with progress bars until the queue is drained, then a summary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use catdog::classify::ClassifySettings;
use catdog::config::{self, CommonConfig, MaxImageBytes, Vars};
use catdog::ingest::{IngestConfig, IngestProgress, IngestSettings, PictureOutcome, SourceSpec};
use catdog::local::{self, Pipeline};
use catdog::startup::Backends;
use catdog::store::Stats;
use catdog::telemetry::{self, LogFormat};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    /// The folder of pictures (searched recursively; content is sniffed).
    pub dir: PathBuf,
    /// Folder for the local database and pictures (ignored when DATABASE_URL
    /// and STORAGE_URL are set).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    // Only the stores take local mode's defaults.
    let common: CommonConfig = local::local_settings(&args.data_dir)?;
    let vars = Vars::process();
    let ingest: IngestSettings = config::parse(&vars)?;
    let classify: ClassifySettings = config::parse(&vars)?;
    let max_image_bytes: MaxImageBytes = config::parse(&vars)?;
    // The progress bars own the terminal; logs only when asked for.
    if std::env::var_os("RUST_LOG").is_some() {
        telemetry::init(LogFormat::Pretty, None);
    }
    let backends = Backends::connect(&common, true)
        .await
        .context("opening the local stores")?;
    let pipeline = Pipeline::start(
        &classify.config(max_image_bytes),
        &backends,
        &args.data_dir,
        import_config(ingest.config(max_image_bytes), args.dir.clone()),
    )?;
    let before = backends
        .store
        .stats()
        .await
        .context("reading the gallery's counts")?;

    let started = Instant::now();
    let bars = Bars::new();
    let summary = pipeline
        .ingestor
        .run_with_progress(&bars)
        .await
        .context("the import stopped")?;
    bars.stored.finish();
    if summary.skipped {
        bail!("another ingestion run (catdog serve?) holds the lease; try again when it is done");
    }
    follow_classification(&pipeline, &bars.classified).await;
    let after = backends
        .store
        .stats()
        .await
        .context("reading the gallery's counts")?;

    println!(
        "Imported {} in {:.1}s: {} pictures looked at, {} new, {} already stored.",
        args.dir.display(),
        started.elapsed().as_secs_f64(),
        summary.fetched,
        summary.stored,
        summary.duplicates,
    );
    let progress = pipeline.queue.progress();
    println!("{}", difference(&before, &after));
    for failure in &summary.errors {
        println!("  error ({}): {}", failure.source, failure.error);
    }
    if progress.dead_lettered > 0 {
        println!(
            "  {} could not be classified after every retry: see `catdog dead-letters`",
            progress.dead_lettered
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The folder as the only source, taken whole whatever
/// `INGEST_BATCH_SIZE` says; everything else from the settings.
fn import_config(mut config: IngestConfig, dir: PathBuf) -> IngestConfig {
    config.sources = vec![SourceSpec::Folder(dir)];
    config.folder_batch_size = None;
    config
}

/// Waits until every message is acknowledged or dead, moving the bar.
async fn follow_classification(pipeline: &Pipeline, bar: &ProgressBar) {
    let mut progress = pipeline.queue.watch_progress();
    loop {
        let now = *progress.borrow_and_update();
        bar.set_length(now.published);
        bar.set_position(now.acknowledged + now.dead_lettered);
        if now.outstanding() == 0 {
            break;
        }
        // The counts change on every delivery; the timeout only keeps the
        // elapsed time on the bar moving.
        let _ = tokio::time::timeout(Duration::from_millis(500), progress.changed()).await;
    }
    bar.finish();
}

struct Bars {
    stored: ProgressBar,
    classified: ProgressBar,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = |prefix: &'static str| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style.clone());
            bar.set_prefix(prefix);
            bar
        };
        Self {
            stored: bar("stored"),
            classified: bar("classified"),
        }
    }
}

impl IngestProgress for Bars {
    fn planned(&self, pictures: u64) {
        self.stored.set_length(pictures);
    }

    fn picture_done(&self, _outcome: PictureOutcome) {
        self.stored.inc(1);
    }
}

/// What the import changed, in the gallery's own counts.
fn difference(before: &Stats, after: &Stats) -> String {
    fn delta<K: Eq + std::hash::Hash + Copy>(
        before: &[(K, i64)],
        after: &[(K, i64)],
        key: K,
    ) -> i64 {
        let map: HashMap<K, i64> = before.iter().copied().collect();
        let now = after.iter().find(|(k, _)| *k == key).map_or(0, |(_, n)| *n);
        now - map.get(&key).copied().unwrap_or(0)
    }
    use catdog::domain::{Category, Status};
    let categories: Vec<String> = Category::ALL
        .iter()
        .map(|&c| {
            format!(
                "{} {}",
                delta(&before.by_category, &after.by_category, c),
                c
            )
        })
        .collect();
    let rejected = delta(&before.by_status, &after.by_status, Status::Rejected);
    let pending = after
        .by_status
        .iter()
        .find(|(s, _)| *s == Status::Pending)
        .map_or(0, |(_, n)| *n);
    format!(
        "Classified: {}; rejected (not a usable picture): {rejected}; still pending in the gallery: {pending}.",
        categories.join(", ")
    )
}
