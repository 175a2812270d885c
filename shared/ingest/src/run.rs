//! One ingestion run: take the lease, fetch from every source, keep each new
//! picture once, publish its message, sweep up messages that failed before,
//! record the run.
//!
//! The order of writes is what keeps a crash from losing or inventing
//! pictures: the original object is written first, then the pending row
//! (whose unique digest settles races), then the message is published and
//! the row marked. A crash after the object leaves an orphan object that the
//! orphan sweep ([`super::orphans`]) removes; a crash after the row leaves an
//! unpublished row that the next run's sweep publishes. A picture whose
//! message keeps going unanswered (dead-lettered each time) is republished a
//! bounded number of times and then marked failed with the reason.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use super::config::{IngestConfig, SourceSpec};
use super::fetch::{FetchError, Fetcher};
use super::orphans::{OrphanSweep, sweep_orphans};
use super::sources::{self, Candidate, FolderFile, SourceError};
use catdog_core::domain::{Digest, ImageId, NewImage, ObjectName, now_micros};
use catdog_core::pubsub::{ImageMessage, Publisher};
use catdog_objects::{ObjectError, ObjectStore};
use catdog_store::{ImageStore, IngestRun, InsertOutcome, StoreError};

/// How many stale pending pictures one run republishes at most.
const SWEEP_LIMIT: u32 = 200;

/// What one run did; the body of `POST /ingest`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestSummary {
    /// Pictures the sources gave this run (a folder's file that is already
    /// stored and unchanged counts without being read again).
    pub fetched: u64,
    /// New pictures stored (object and pending row).
    pub stored: u64,
    /// Pictures that were already stored.
    pub duplicates: u64,
    /// Messages handed to the queue: the new pictures' and the sweep's.
    pub published: u64,
    /// Of `published`, the sweep's: pictures stored earlier whose message had
    /// failed or gone unanswered.
    pub republished: u64,
    /// Pictures the sweep gave up on: their message was published the
    /// maximum number of times without a verdict. Now `failed`.
    #[serde(default)]
    pub given_up: u64,
    /// Failed pictures given another round of publishes by the sweep.
    #[serde(default)]
    pub retried: u64,
    /// Objects no row refers to, deleted by the orphan sweep.
    #[serde(default)]
    pub orphans_deleted: u64,
    /// What went wrong, per source (and `pubsub` for publishing).
    pub errors: Vec<SourceFailure>,
    /// True when another run held the lease: this one did nothing.
    pub skipped: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFailure {
    pub source: String,
    pub error: String,
}

/// The name publishing failures are reported under in [`IngestSummary::errors`].
const PUBLISH_ERRORS: &str = "pubsub";

/// A run that could not go on: a dependency of ours failed (sources failing
/// are not this; they are reported in the summary).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("cannot set up downloads: {0}")]
    Fetcher(#[from] FetchError),
    #[error("the ingestion run stopped: {0}")]
    Aborted(String),
}

/// What happened to one picture, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PictureOutcome {
    Stored,
    Duplicate,
    Failed,
}

/// Hears about a run as it goes (`catdog import` draws its progress bar).
pub trait IngestProgress: Send + Sync {
    /// The sources answered: this many pictures will be looked at.
    fn planned(&self, _pictures: u64) {}
    fn picture_done(&self, _outcome: PictureOutcome) {}
}

/// Reports nothing.
pub struct NoProgress;

impl IngestProgress for NoProgress {}

/// Runs ingestion against one set of stores, sources and queue. Build one per
/// process and share it (`Arc`); runs may be started from anywhere at any
/// time, the lease keeps them apart.
pub struct Ingestor {
    config: IngestConfig,
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    publisher: Arc<dyn Publisher>,
    fetcher: Fetcher,
    /// Folder files this process has seen stored, so that later runs do not
    /// read and hash them again. Keyed by path, size and modification time.
    known_files: Mutex<HashSet<FolderFile>>,
    /// Folder files that are not a picture or too large, as they were when
    /// tried; a file that changes is tried again.
    refused_files: Mutex<HashSet<FolderFile>>,
}

/// Why one picture was not stored.
enum PictureError {
    /// The picture's or its source's fault: reported, the run goes on.
    Source(SourceError),
    /// Ours: the run stops.
    Dependency(IngestError),
}

impl From<StoreError> for PictureError {
    fn from(e: StoreError) -> Self {
        PictureError::Dependency(e.into())
    }
}

impl From<ObjectError> for PictureError {
    fn from(e: ObjectError) -> Self {
        PictureError::Dependency(e.into())
    }
}

enum Kept {
    Stored { publish_error: Option<String> },
    Duplicate,
}

/// What the sources offer this run, by each source's place in the
/// configuration.
struct Plan {
    /// To load now, interleaved across sources.
    now: Vec<(usize, Candidate)>,
    /// Per folder source with a batch size: its files after the batch,
    /// oldest first.
    held_back: HashMap<usize, Vec<Candidate>>,
}

/// Counts kept while a run goes.
#[derive(Default)]
struct Tally {
    summary: IngestSummary,
    /// How many candidates each source's listing gave; a source whose
    /// listing failed is not here.
    listed: HashMap<&'static str, usize>,
    /// Sources with at least one picture kept (stored, or found already
    /// stored) this run.
    kept: HashSet<&'static str>,
}

impl Tally {
    fn error(&mut self, source: &str, error: String) {
        self.summary.errors.push(SourceFailure {
            source: source.to_owned(),
            error,
        });
    }

    /// The sources that worked this run: their listing answered, and it was
    /// empty or at least one of its pictures was kept. A source whose every
    /// picture failed (an unreachable generator, a dead CDN) did not work,
    /// however well its listing answered.
    fn succeeded(&self) -> Vec<String> {
        self.listed
            .iter()
            .filter(|(source, listed)| **listed == 0 || self.kept.contains(*source))
            .map(|(source, _)| (*source).to_owned())
            .collect()
    }
}

impl Ingestor {
    /// Ingestion with these ports: where rows, originals and messages go.
    pub fn new(
        config: IngestConfig,
        store: Arc<dyn ImageStore>,
        objects: Arc<dyn ObjectStore>,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, IngestError> {
        let fetcher = Fetcher::new(config.fetch.clone(), &config.trusted_origins())?;
        Ok(Self {
            config,
            store,
            objects,
            publisher,
            fetcher,
            known_files: Mutex::new(HashSet::new()),
            refused_files: Mutex::new(HashSet::new()),
        })
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// One run. `Ok` with `skipped: true` when another run holds the lease;
    /// `Err` only when the database or object storage failed (sources failing
    /// are reported in the summary and recorded for `/api/v1/stats`).
    pub async fn run_once(&self) -> Result<IngestSummary, IngestError> {
        self.run_with_progress(&NoProgress).await
    }

    /// [`run_once`](Self::run_once), reporting each picture to `progress`.
    pub async fn run_with_progress(
        &self,
        progress: &dyn IngestProgress,
    ) -> Result<IngestSummary, IngestError> {
        let holder = format!("ingest-{}", uuid::Uuid::now_v7());
        let started_at = now_micros();
        if !self
            .store
            .try_acquire_ingest_lease(&holder, self.config.lease_ttl)
            .await?
        {
            tracing::info!("another ingestion run holds the lease; skipping");
            return Ok(IngestSummary {
                skipped: true,
                ..IngestSummary::default()
            });
        }
        let _renewal = LeaseRenewal::start(
            Arc::clone(&self.store),
            holder.clone(),
            self.config.lease_ttl,
        );
        let mut tally = Tally::default();
        let outcome = self.work(&mut tally, progress).await;
        let run = IngestRun {
            started_at: Some(started_at),
            fetched: tally.summary.fetched as i64,
            stored: tally.summary.stored as i64,
            duplicates: tally.summary.duplicates as i64,
            published: tally.summary.published as i64,
            errors: tally
                .summary
                .errors
                .iter()
                .filter(|e| e.source != PUBLISH_ERRORS)
                .map(|e| (e.source.clone(), e.error.clone()))
                .collect(),
            // A run that stopped on our own storage or database proved
            // nothing about its sources: none is recorded as working.
            succeeded_sources: if outcome.is_ok() {
                tally.succeeded()
            } else {
                Vec::new()
            },
        };
        match outcome {
            Ok(()) => {
                self.store.finish_ingest(&holder, &run).await?;
                let s = &tally.summary;
                tracing::info!(
                    fetched = s.fetched,
                    stored = s.stored,
                    duplicates = s.duplicates,
                    published = s.published,
                    republished = s.republished,
                    errors = s.errors.len(),
                    "ingestion run finished"
                );
                Ok(tally.summary)
            }
            Err(error) => {
                // Record what was done and free the lease if the database lets us.
                if let Err(e) = self.store.finish_ingest(&holder, &run).await {
                    tracing::warn!(error = %e, "could not record the failed ingestion run");
                }
                tracing::error!(error = %error, "ingestion run stopped");
                Err(error)
            }
        }
    }

    async fn work(
        &self,
        tally: &mut Tally,
        progress: &dyn IngestProgress,
    ) -> Result<(), IngestError> {
        let Plan {
            mut now,
            mut held_back,
        } = self.list_sources(tally).await;
        let mut planned = 0;
        let mut stored_from = HashMap::new();
        while !now.is_empty() {
            planned += now.len() as u64;
            progress.planned(planned);
            self.keep_all(std::mem::take(&mut now), tally, &mut stored_from, progress)
                .await?;
            // A folder's files that were already stored, or refused, did not
            // use up its batch: the next oldest take their places.
            let limit = self.config.folder_batch_size.unwrap_or(u32::MAX) as usize;
            for (source, files) in held_back.iter_mut() {
                let stored = stored_from.get(source).copied().unwrap_or(0);
                let wanted = limit.saturating_sub(stored).min(files.len());
                now.extend(files.drain(..wanted).map(|file| (*source, file)));
            }
        }
        self.sweep(tally).await
    }

    /// Loads and keeps `candidates`, a few at a time, counting what each
    /// source (by its place in the configuration) stored.
    async fn keep_all(
        &self,
        candidates: Vec<(usize, Candidate)>,
        tally: &mut Tally,
        stored_from: &mut HashMap<usize, usize>,
        progress: &dyn IngestProgress,
    ) -> Result<(), IngestError> {
        // Futures do nothing until polled, so making them all up front holds
        // only the candidates; `buffer_unordered` loads a few at a time.
        let pending: Vec<_> = candidates
            .into_iter()
            .map(|(index, candidate)| self.keep_candidate(index, candidate))
            .collect();
        let stream =
            futures::stream::iter(pending).buffer_unordered(self.config.concurrency.max(1));
        futures::pin_mut!(stream);
        while let Some((index, candidate, result)) = stream.next().await {
            let source = self.config.sources[index].name();
            match result {
                Ok(Kept::Stored { publish_error }) => {
                    tally.kept.insert(source);
                    *stored_from.entry(index).or_default() += 1;
                    tally.summary.fetched += 1;
                    tally.summary.stored += 1;
                    match publish_error {
                        None => tally.summary.published += 1,
                        Some(error) => tally.error(PUBLISH_ERRORS, error),
                    }
                    progress.picture_done(PictureOutcome::Stored);
                }
                Ok(Kept::Duplicate) => {
                    tally.kept.insert(source);
                    tally.summary.fetched += 1;
                    tally.summary.duplicates += 1;
                    progress.picture_done(PictureOutcome::Duplicate);
                }
                Err(PictureError::Source(error)) => {
                    if let (
                        Candidate::File(file),
                        SourceError::NotAPicture | SourceError::TooLarge { .. },
                    ) = (&candidate, &error)
                    {
                        // The file is what it is until it changes: tried again
                        // only when its size or time changes, so it neither
                        // fails every run nor holds a place in every batch.
                        self.refused_files
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(file.clone());
                    }
                    tracing::warn!(source, picture = %candidate.describe(), %error, "picture not fetched");
                    tally.error(source, format!("picture: {}", error.public_kind()));
                    progress.picture_done(PictureOutcome::Failed);
                }
                Err(PictureError::Dependency(error)) => return Err(error),
            }
        }
        Ok(())
    }

    /// Asks every source at once what it offers; a source that fails is
    /// reported and the others go on. The candidates are interleaved across
    /// sources so that a slow source does not hold the others up. A folder
    /// with a batch size offers its oldest files not yet taken, one batch
    /// now and the rest held back in case some of the batch is not new.
    async fn list_sources(&self, tally: &mut Tally) -> Plan {
        let listings = futures::future::join_all(self.config.sources.iter().enumerate().map(
            |(index, spec)| async move {
                (
                    index,
                    spec,
                    sources::list(spec, &self.config, &self.fetcher).await,
                )
            },
        ))
        .await;
        let mut queues = Vec::new();
        let mut held_back = HashMap::new();
        for (index, spec, listing) in listings {
            match listing {
                Ok(candidates) => {
                    let known_before = tally.summary.duplicates;
                    let mut candidates = self.skip_known_files(spec, candidates, tally);
                    let known = (tally.summary.duplicates - known_before) as usize;
                    // Files refused before (not a picture, too large) are
                    // not counted: one bad file does not fail its folder on
                    // every run. Files it gave before, still stored, count
                    // as kept.
                    tally.listed.insert(spec.name(), candidates.len() + known);
                    if known > 0 {
                        tally.kept.insert(spec.name());
                    }
                    if let (SourceSpec::Folder(_), Some(limit)) =
                        (spec, self.config.folder_batch_size)
                    {
                        let rest = candidates.split_off((limit as usize).min(candidates.len()));
                        held_back.insert(index, rest);
                    }
                    queues.push((index, candidates.into_iter()));
                }
                Err(error) => {
                    tracing::warn!(source = spec.name(), %error, "source failed");
                    tally.error(spec.name(), format!("listing: {}", error.public_kind()));
                }
            }
        }
        let mut now = Vec::new();
        loop {
            let before = now.len();
            for (index, queue) in queues.iter_mut() {
                if let Some(candidate) = queue.next() {
                    now.push((*index, candidate));
                }
            }
            if now.len() == before {
                return Plan { now, held_back };
            }
        }
    }

    /// Drops the folder files this process already stored and that have not
    /// changed since, counting them as duplicates, and those it refused as
    /// not a picture or too large (reported once, when first tried).
    fn skip_known_files(
        &self,
        spec: &SourceSpec,
        candidates: Vec<Candidate>,
        tally: &mut Tally,
    ) -> Vec<Candidate> {
        if !matches!(spec, SourceSpec::Folder(_)) {
            return candidates;
        }
        let known = self.known_files.lock().unwrap_or_else(|e| e.into_inner());
        let refused = self.refused_files.lock().unwrap_or_else(|e| e.into_inner());
        let before = candidates.len();
        let mut fresh: Vec<FolderFile> = candidates
            .into_iter()
            .filter_map(|c| match c {
                Candidate::File(file) if !known.contains(&file) => Some(file),
                _ => None,
            })
            .collect();
        let skipped = (before - fresh.len()) as u64;
        fresh.retain(|file| !refused.contains(file));
        tally.summary.fetched += skipped;
        tally.summary.duplicates += skipped;
        fresh.into_iter().map(Candidate::File).collect()
    }

    fn remember(&self, candidate: &Candidate) {
        if let Candidate::File(file) = candidate {
            self.known_files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(file.clone());
        }
    }

    async fn keep_candidate(
        &self,
        index: usize,
        candidate: Candidate,
    ) -> (usize, Candidate, Result<Kept, PictureError>) {
        let result = self
            .keep(self.config.sources[index].name(), &candidate)
            .await;
        (index, candidate, result)
    }

    /// Loads one picture and keeps it unless it is already stored.
    async fn keep(
        &self,
        source: &'static str,
        candidate: &Candidate,
    ) -> Result<Kept, PictureError> {
        let picture = candidate
            .load(&self.fetcher, self.config.max_image_bytes)
            .await
            .map_err(PictureError::Source)?;
        let digest = Digest::of(&picture.bytes);
        if self.store.find_by_digest(&digest).await?.is_some() {
            self.remember(candidate);
            return Ok(Kept::Duplicate);
        }
        let id = ImageId::new();
        let object = ObjectName::original(id);
        let byte_size = picture.bytes.len() as i64;
        let content_type = picture.format.content_type();
        self.objects
            .put(&object, picture.bytes, content_type)
            .await?;
        let image = NewImage {
            id,
            sha256: digest.clone(),
            source: source.to_owned(),
            source_ref: picture.source_ref,
            object_name: object.clone(),
            content_type: content_type.to_owned(),
            byte_size,
            created_at: now_micros(),
        };
        match self.store.insert_pending(&image).await {
            Ok(InsertOutcome::Inserted) => {}
            Ok(InsertOutcome::Duplicate(_)) => {
                // Another run stored the same picture between our look-up and
                // our insert: its object is the one that stays.
                self.delete_unrecorded(&object).await;
                self.remember(candidate);
                return Ok(Kept::Duplicate);
            }
            // The insert may have committed even though we saw an error
            // (a timeout or a connection lost after the server wrote it):
            // deleting the object now could leave a row without its
            // original. The orphan sweep deletes it once it is sure no row
            // refers to it.
            Err(error) => return Err(error.into()),
        }
        self.remember(candidate);
        let message = ImageMessage::new(id, object, digest);
        let publish_error = match self.publisher.publish(&message).await {
            Ok(()) => {
                self.store.mark_published(id).await?;
                None
            }
            Err(error) => {
                tracing::warn!(image_id = %id, %error, "publish failed; the sweep will retry");
                // The queue's error may name its endpoint: the log has it.
                Some(format!("image {id}: publish failed"))
            }
        };
        Ok(Kept::Stored { publish_error })
    }

    /// Removes an object no row points to. A failure leaves it to the orphan sweep.
    async fn delete_unrecorded(&self, object: &ObjectName) {
        if let Err(error) = self.objects.delete(object).await {
            tracing::warn!(%object, %error, "could not delete an unrecorded object; the orphan sweep will");
        }
    }

    /// The sweeps that follow every run: pending pictures, then orphans.
    async fn sweep(&self, tally: &mut Tally) -> Result<(), IngestError> {
        self.sweep_pending(tally).await?;
        self.sweep_orphans(tally).await;
        Ok(())
    }

    /// Publishes again the messages of pictures stored earlier that are still
    /// pending: never published, or published long enough ago that the
    /// message must have been lost or dead-lettered. A picture published
    /// [`IngestConfig::max_publishes`] times already is given up on instead.
    async fn sweep_pending(&self, tally: &mut Tally) -> Result<(), IngestError> {
        let stale_before = now_micros()
            - chrono::TimeDelta::from_std(self.config.republish_after)
                .unwrap_or(chrono::TimeDelta::MAX);
        let given_up = self
            .store
            .give_up_unanswered(stale_before, self.config.max_publishes, SWEEP_LIMIT)
            .await?;
        for id in &given_up {
            tracing::warn!(
                image_id = %id,
                publishes = self.config.max_publishes,
                "no verdict after the last publish; the picture is marked failed"
            );
        }
        tally.summary.given_up += given_up.len() as u64;
        // Failed pictures get another round once their wait is over; they
        // are pending again, so the republish below sends them.
        let retried = self
            .store
            .retry_failed(
                now_micros(),
                self.config.retry_failed_after,
                self.config.max_retries,
                SWEEP_LIMIT,
            )
            .await?;
        for id in &retried {
            tracing::info!(image_id = %id, "a failed picture gets another round of publishes");
        }
        tally.summary.retried += retried.len() as u64;
        let stale = self.store.unpublished(stale_before, SWEEP_LIMIT).await?;
        for record in stale {
            let message =
                ImageMessage::new(record.id, record.object_name.clone(), record.sha256.clone());
            match self.publisher.publish(&message).await {
                Ok(()) => {
                    self.store.mark_published(record.id).await?;
                    tally.summary.published += 1;
                    tally.summary.republished += 1;
                }
                Err(error) => {
                    tracing::warn!(image_id = %record.id, %error, "republish failed");
                    tally.error(
                        PUBLISH_ERRORS,
                        format!("image {}: publish failed", record.id),
                    );
                    // The queue is down; the rest would fail the same way.
                    break;
                }
            }
        }
        Ok(())
    }

    /// Deletes objects of the last [`IngestConfig::orphan_window`] that no
    /// row refers to. Its failures do not fail the run: the next run sweeps
    /// the same window again.
    async fn sweep_orphans(&self, tally: &mut Tally) {
        // Interrupted writes' files, once no write could still be finishing
        // them (the same grace the orphan sweep gives objects).
        match self.objects.sweep_leftovers(self.config.orphan_grace).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed files left by interrupted writes"),
            Err(error) => {
                tracing::warn!(%error, "the leftover-file sweep stopped; the next run tries again")
            }
        }
        let options = OrphanSweep::per_run(self.config.orphan_grace, self.config.orphan_window);
        match sweep_orphans(self.store.as_ref(), self.objects.as_ref(), &options).await {
            Ok(report) => tally.summary.orphans_deleted += report.deleted.len() as u64,
            Err(error) => {
                tracing::warn!(%error, "the orphan sweep stopped; the next run tries again")
            }
        }
    }
}

/// Keeps the lease while a run lasts longer than its time to live; stops
/// when dropped.
struct LeaseRenewal(tokio::task::JoinHandle<()>);

impl LeaseRenewal {
    fn start(store: Arc<dyn ImageStore>, holder: String, ttl: Duration) -> Self {
        // Renewed three times per lifetime, but not more than twice a second.
        let every = (ttl / 3).max(Duration::from_millis(500));
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match store.try_acquire_ingest_lease(&holder, ttl).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!("the ingestion lease was taken over"),
                    Err(error) => tracing::warn!(%error, "could not renew the ingestion lease"),
                }
            }
        }))
    }
}

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}
