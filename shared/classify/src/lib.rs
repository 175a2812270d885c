//! Classification of one stored picture, as asked by one message: load its
//! record, fetch the original, run the classifier, store the thumbnail and
//! record the verdict. [`push`] is the HTTP side (`POST /pubsub/push`), which
//! decides what each outcome means to Pub/Sub (and to the local queue).
//!
//! Messages arrive at least once, possibly twice at the same moment and in
//! any order, so every step is safe to repeat: the thumbnail's name is fixed
//! by the image id and its bytes by the picture, and the store changes a
//! record only while it is pending, so a repeated message finds the work done.

mod inflight;
pub mod push;
mod relabel;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use catdog_core::config::{ConfigError, MaxImageBytes};
use catdog_core::domain::{Category, ImageId, ImageRecord, ObjectName, Status, Thumbnail, Verdict};
use catdog_core::pubsub::ImageMessage;
use catdog_model::{Analysis, Classifier, ClassifyError, DecodeLimits, ModelError};
use catdog_objects::{ObjectError, ObjectStore};
use catdog_store::{ImageStore, RecordOutcome, StoreError};

pub use push::{MAX_PUSH_BODY_BYTES, PUSH_ROUTE, routes};
pub use relabel::{RELABEL_ROUTE, RelabelRequest, RelabelResponse};

/// Classification's settings, as declared ([`ClassifySettings::config`]
/// adds `MAX_IMAGE_BYTES`, which ingestion reads too).
#[derive(Clone, Debug, clap::Args)]
pub struct ClassifySettings {
    /// folder holding `backbone.onnx` and `backbone-lite2.onnx` (built by `model/build.sh`)
    #[arg(long, env = "MODEL_DIR", default_value = catdog_model::DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
    /// largest picture accepted, in pixels, checked before decoding
    #[arg(
        long,
        env = "MAX_IMAGE_PIXELS",
        default_value = "40000000",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000_000),
    )]
    pub max_image_pixels: u64,
}

impl ClassifySettings {
    pub fn config(&self, max_image_bytes: MaxImageBytes) -> ClassifyConfig {
        ClassifyConfig {
            model_dir: self.model_dir.clone(),
            limits: DecodeLimits {
                // At most 1 GiB (its range): fits every usize we build for.
                max_bytes: usize::try_from(max_image_bytes.max_image_bytes).unwrap_or(usize::MAX),
                max_pixels: self.max_image_pixels,
            },
        }
    }
}

/// What classification is told by its settings.
#[derive(Clone, Debug)]
pub struct ClassifyConfig {
    pub model_dir: PathBuf,
    pub limits: DecodeLimits,
}

impl ClassifyConfig {
    /// Loads the model once for the whole process. A missing model is a
    /// start-up error that names `MODEL_DIR` and says how to build it.
    pub fn load_classifier(&self) -> Result<Classifier, ConfigError> {
        Classifier::load(&self.model_dir).map_err(|e| ConfigError::new("MODEL_DIR", e.to_string()))
    }
}

/// What one message did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The verdict was recorded now.
    Classified(Category),
    /// The picture cannot be decoded; recorded as rejected with this reason.
    Rejected(String),
    /// An earlier delivery already classified or rejected the image.
    AlreadyDone,
    /// No image has this id: nothing to do.
    UnknownImage,
}

/// Why a message could not be handled now. Each one is answered so that the
/// message comes back later, except [`ClassifyFailure::Mismatch`], which no
/// retry can fix.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Objects(ObjectError),
    /// The row exists but its original does not: storage lost it or has
    /// not got it back yet. Kept pending with the error; after the last
    /// redelivery the message waits in the dead letters.
    #[error("the original {0} is missing from object storage")]
    OriginalMissing(ObjectName),
    /// The model failed (not the picture): a deployment problem.
    #[error("the classifier failed: {0}")]
    Model(String),
    /// The message names an object or digest other than the stored image's:
    /// not a message ingestion made.
    #[error("the message does not match image {0}: {1}")]
    Mismatch(ImageId, &'static str),
}

impl ClassifyFailure {
    /// What the picture's row keeps: a kind and a short message from a fixed
    /// vocabulary.
    pub fn reason(&self) -> &'static str {
        match self {
            ClassifyFailure::Store(StoreError::Unavailable(_)) => "database: unavailable",
            ClassifyFailure::Store(_) => "database: error",
            ClassifyFailure::Objects(ObjectError::Unavailable(_)) => "storage: unavailable",
            ClassifyFailure::Objects(ObjectError::NotFound(_))
            | ClassifyFailure::OriginalMissing(_) => {
                "storage: the original is missing from object storage"
            }
            ClassifyFailure::Objects(_) => "storage: error",
            ClassifyFailure::Model(_) => "classifier: failed",
            ClassifyFailure::Mismatch(..) => "message: does not match the stored picture",
        }
    }
}

/// Everything classification needs, shared by every request.
#[derive(Clone)]
pub struct ClassifyService {
    store: Arc<dyn ImageStore>,
    objects: Arc<dyn ObjectStore>,
    classifier: Arc<Classifier>,
    limits: DecodeLimits,
    /// The classifier is CPU-bound: more pictures at once than cores only
    /// makes each one slower and holds more decoded pixels in memory.
    cpu_permits: Arc<Semaphore>,
    /// Deliveries of the same image in this process take turns, so a
    /// duplicate waits for the first and then finds the work done instead of
    /// classifying the picture again.
    in_flight: inflight::InFlight,
}

impl ClassifyService {
    pub fn new(
        store: Arc<dyn ImageStore>,
        objects: Arc<dyn ObjectStore>,
        classifier: Arc<Classifier>,
        limits: DecodeLimits,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            store,
            objects,
            classifier,
            limits,
            cpu_permits: Arc::new(Semaphore::new(cores)),
            in_flight: inflight::InFlight::default(),
        }
    }

    /// Handles one message. Safe to call again with the same message, at
    /// the same time or later: the image is classified once.
    pub async fn handle(&self, message: &ImageMessage) -> Result<Outcome, ClassifyFailure> {
        let id = message.image_id;
        let _turn = self.in_flight.wait_turn(id).await;
        let Some(record) = self.store.get(id).await? else {
            return Ok(Outcome::UnknownImage);
        };
        if message.object != record.object_name {
            return Err(ClassifyFailure::Mismatch(id, "object name"));
        }
        if message.sha256 != record.sha256 {
            return Err(ClassifyFailure::Mismatch(id, "digest"));
        }
        if matches!(record.status, Status::Classified | Status::Rejected) {
            return Ok(Outcome::AlreadyDone);
        }
        let result = self.classify_stored(&record).await;
        if let Err(failure) = &result {
            self.note_failure(id, failure).await;
        }
        result
    }

    /// Classifies a stored picture that is still waiting for its verdict.
    async fn classify_stored(&self, record: &ImageRecord) -> Result<Outcome, ClassifyFailure> {
        let id = record.id;
        let original = match self.objects.get(&record.object_name).await {
            Ok(object) => object,
            Err(ObjectError::NotFound(_)) => {
                return Err(ClassifyFailure::OriginalMissing(record.object_name.clone()));
            }
            Err(e) => return Err(ClassifyFailure::Objects(e)),
        };
        let analysis = match self.analyze(original.bytes).await {
            Ok(analysis) => analysis,
            Err(e) if e.is_bad_picture() => {
                let reason = e.to_string();
                return Ok(match self.store.mark_rejected(id, &reason).await? {
                    RecordOutcome::Recorded => Outcome::Rejected(reason),
                    RecordOutcome::AlreadyDone => Outcome::AlreadyDone,
                    RecordOutcome::NotFound => Outcome::UnknownImage,
                });
            }
            Err(e) => return Err(ClassifyFailure::Model(e.to_string())),
        };
        let category = analysis.classification.category;
        // The thumbnail first: a recorded verdict always has its thumbnail.
        let thumbnail_name = ObjectName::thumbnail(id);
        self.objects
            .put(
                &thumbnail_name,
                analysis.thumbnail.jpeg.clone().into(),
                "image/jpeg",
            )
            .await
            .map_err(ClassifyFailure::Objects)?;
        let verdict = verdict_of(analysis, thumbnail_name);
        Ok(match self.store.record_verdict(id, &verdict).await? {
            RecordOutcome::Recorded => Outcome::Classified(category),
            RecordOutcome::AlreadyDone => Outcome::AlreadyDone,
            RecordOutcome::NotFound => Outcome::UnknownImage,
        })
    }

    /// Runs the classifier on a blocking thread, at most one picture per core.
    async fn analyze(&self, bytes: bytes::Bytes) -> Result<Analysis, ClassifyError> {
        let _permit = Arc::clone(&self.cpu_permits)
            .acquire_owned()
            .await
            .map_err(|_| ModelError::Inference("the classifier is shutting down".to_owned()))?;
        let classifier = Arc::clone(&self.classifier);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || classifier.analyze(&bytes, &limits))
            .await
            .unwrap_or_else(|e| {
                Err(ModelError::Inference(format!("the classifier thread failed: {e}")).into())
            })
    }

    /// Keeps why on the record for operators (`catdog failed`), as a kind
    /// and a fixed short message: the full error, which may name a path, a
    /// bucket or a host, is the push handler's log line. Best effort: when
    /// the database is what failed, there is usually nowhere to write it.
    async fn note_failure(&self, id: ImageId, failure: &ClassifyFailure) {
        if let Err(e) = self.store.record_failure(id, failure.reason()).await {
            tracing::warn!(image_id = %id, error = %e, "could not record the failure");
        }
    }
}

fn verdict_of(analysis: Analysis, thumbnail_name: ObjectName) -> Verdict {
    let classification = analysis.classification;
    Verdict {
        category: classification.category,
        confidence: classification.confidence,
        scores: serde_json::to_value(classification.scores).unwrap_or_default(),
        model_version: classification.model_version,
        width: analysis.width,
        height: analysis.height,
        thumbnail: Thumbnail {
            object_name: thumbnail_name,
            width: analysis.thumbnail.width,
            height: analysis.thumbnail.height,
            placeholder: analysis.thumbnail.placeholder,
        },
        breed: classification.breed,
        why: classification.why,
    }
}
