//! Deciding whether a picture shows a cat, a dog or neither, and making its
//! thumbnail on the way.
//!
//! The model is two ImageNet backbones, EfficientNet-Lite0 and Lite2, exported
//! to ONNX by model/build.sh into `MODEL_DIR` (default `.cache/model`) and run
//! with tract, followed by the small head in model/head.json, which names
//! them. MODEL.md describes all three.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use catdog_model::{Classifier, DecodeLimits};
//! let classifier = Classifier::load(std::path::Path::new(".cache/model"))?;
//! let bytes = std::fs::read("cat.jpg")?;
//! let analysis = classifier.analyze(&bytes, &DecodeLimits::default())?;
//! println!("{} ({:.2})", analysis.classification.category, analysis.classification.confidence);
//! # Ok(()) }
//! ```

mod backbone;
mod channels_last;
mod decode;
pub mod depthwise;
mod explain;
mod head;
pub mod pointwise;
mod preprocess;
mod resize;
pub mod stem;
mod thumbnail;

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use backbone::Backbone;
pub use backbone::{
    BACKBONE_FILE, BackboneOutput, ConvolutionKernels, OptimizedBackbone, run_plan,
};
pub use decode::{
    DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, DecodeError, DecodeLimits, DecodedImage,
    SupportedFormat, decode,
};
pub use head::{BackboneSpec, Scores};
pub use preprocess::{InputGeometry, ModelInput, preprocess};
pub use thumbnail::{RenderedThumbnail, THUMBNAIL_LONG_SIDE, ThumbnailError};

use catdog_core::domain::{BreedGuess, Category, ClassScore};
use head::Head;

/// The default of `MODEL_DIR`, relative to the repository root.
pub const DEFAULT_MODEL_DIR: &str = ".cache/model";

/// Something is wrong with the model or its files, not with the picture:
/// worth retrying after the deployment is fixed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{} is missing: run model/build.sh to build it", path.display())]
    Missing { path: PathBuf },
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not load the model {}: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    #[error("model/head.json does not fit: {0}")]
    Head(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The picture's fault: refusing it again later gives the same answer.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Thumbnail(#[from] ThumbnailError),
}

impl ClassifyError {
    /// True when the picture itself is unusable (so it is rejected, not retried).
    pub fn is_bad_picture(&self) -> bool {
        matches!(self, ClassifyError::Decode(_))
    }
}

/// The classifier's answer for one picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Classification {
    /// The class with the highest score.
    pub category: Category,
    /// The score of `category`.
    pub confidence: f32,
    pub scores: Scores,
    /// Which model decided: a digest of the backbone and the head.
    pub model_version: String,
    /// The breed (or cat kind) a cat or dog most resembles.
    pub breed: Option<BreedGuess>,
    /// The ImageNet classes the backbone saw most, most probable first.
    pub why: Vec<ClassScore>,
}

/// Everything one decode of a picture gives: its class, its upright size and
/// its thumbnail.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub classification: Classification,
    pub format: SupportedFormat,
    /// Size of the picture as shown (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    pub thumbnail: RenderedThumbnail,
}

/// One picture, preprocessed for each backbone the head reads (in the head's
/// order).
#[derive(Clone, Debug)]
pub struct ClassifierInput(Vec<ModelInput>);

/// The loaded model. Load it once per process and share it: every method
/// takes `&self` and it is `Send + Sync`.
pub struct Classifier {
    /// In the head's `backbones` order.
    backbones: Vec<Backbone>,
    head: Head,
    model_version: String,
}

impl Classifier {
    /// Loads every backbone the committed head names from `model_dir`
    /// (`backbone.onnx` and `backbone-lite2.onnx`) and optimises each for one
    /// picture at a time.
    pub fn load(model_dir: &Path) -> Result<Self, ModelError> {
        let head = Head::committed()?;
        let mut backbones = Vec::with_capacity(head.backbones.len());
        let mut digest = Sha256::new();
        for spec in &head.backbones {
            let path = model_dir.join(&spec.file);
            let backbone = Backbone::load(&path)?;
            let side = backbone.geometry().side;
            if side != spec.input_side {
                // A backbone built for another head (an older model/build.sh
                // run) would give features the head's weights do not fit.
                return Err(ModelError::Head(format!(
                    "{} was trained on {1}×{1} inputs, but {2} reads {side}×{side}: run model/build.sh",
                    spec.name,
                    spec.input_side,
                    path.display()
                )));
            }
            let bytes = std::fs::read(&path).map_err(|source| ModelError::Read {
                path: path.clone(),
                source,
            })?;
            digest.update(&bytes);
            backbones.push(backbone);
        }
        let model_version = model_version(&head.version, digest, head::HEAD_JSON);
        Ok(Self {
            backbones,
            head,
            model_version,
        })
    }

    /// The files [`load`](Self::load) reads from the model folder: every
    /// backbone the committed head names, in its order.
    pub fn backbone_files() -> Result<Vec<String>, ModelError> {
        Ok(Head::committed()?
            .backbones
            .into_iter()
            .map(|spec| spec.file)
            .collect())
    }

    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// The backbones the head reads, in its order.
    pub fn backbones(&self) -> &[BackboneSpec] {
        &self.head.backbones
    }

    /// Decodes, classifies and makes the thumbnail, from one decode.
    pub fn analyze(&self, bytes: &[u8], limits: &DecodeLimits) -> Result<Analysis, ClassifyError> {
        let picture = decode(bytes, limits)?;
        let classification = self.classify(&picture)?;
        let thumbnail = thumbnail::render(&picture.pixels)?;
        Ok(Analysis {
            classification,
            format: picture.format,
            width: picture.width(),
            height: picture.height(),
            thumbnail,
        })
    }

    pub fn classify(&self, picture: &DecodedImage) -> Result<Classification, ModelError> {
        self.classify_input(&self.preprocess(&picture.pixels))
    }

    /// Every backbone's input for an upright RGB picture.
    pub fn preprocess(&self, pixels: &image::RgbImage) -> ClassifierInput {
        ClassifierInput(
            self.backbones
                .iter()
                .map(|b| preprocess(pixels, b.geometry()))
                .collect(),
        )
    }

    /// Inference and head alone, on an already preprocessed picture.
    pub fn classify_input(&self, input: &ClassifierInput) -> Result<Classification, ModelError> {
        let outputs = self
            .backbones
            .iter()
            .zip(&input.0)
            .map(|(backbone, input)| backbone.run(input))
            .collect::<Result<Vec<_>, _>>()?;
        let scores = self.head.scores(&outputs);
        let category = scores.best();
        let (breed, why) = explain::explain(
            &outputs[self.head.explain_backbone].logits,
            category,
            &self.head.dog_classes,
            &self.head.cat_classes,
        );
        Ok(Classification {
            category,
            confidence: scores.get(category),
            scores,
            model_version: self.model_version.clone(),
            breed,
            why,
        })
    }

    /// The raw output (ImageNet logits and pooled features) of the backbone
    /// named `name` ("lite0"), on an input of its side; `None` when the head
    /// reads no backbone of that name.
    pub fn backbone_output(
        &self,
        name: &str,
        input: &ModelInput,
    ) -> Option<Result<BackboneOutput, ModelError>> {
        let index = self.head.backbones.iter().position(|b| b.name == name)?;
        Some(self.backbones[index].run(input))
    }
}

/// `<head version>+<first 16 hex digits of sha256(backbones ‖ head.json)>`,
/// `digest` having taken every backbone file in the head's order: changes
/// whenever any file does, so stored results say which model made them.
fn model_version(head_version: &str, mut digest: Sha256, head_json: &str) -> String {
    digest.update(head_json.as_bytes());
    let hex = hex::encode(digest.finalize());
    format!("{head_version}+{}", &hex[..16])
}
