//! The EfficientNet-Lite0 backbone, run with tract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::ModelError;
use super::preprocess::{INPUT_SIDE, ModelInput};

pub const BACKBONE_FILE: &str = "backbone.onnx";
pub const IMAGENET_CLASSES: usize = 1000;
pub const FEATURES: usize = 1280;

/// What the backbone says about one picture.
#[derive(Clone, Debug)]
pub struct BackboneOutput {
    /// The 1000 ImageNet logits.
    pub logits: Vec<f32>,
    /// The 1280 pooled features the cat/dog head reads.
    pub features: Vec<f32>,
}

/// The optimised model plan; running it takes `&self`, so one instance serves
/// every thread of the process.
pub struct Backbone {
    plan: Arc<TypedRunnableModel>,
    logits_output: usize,
    features_output: usize,
}

impl Backbone {
    /// Loads and optimises `path` for a fixed [1, 3, 224, 224] input.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Missing {
                path: path.to_path_buf(),
            });
        }
        let load_error = |e: TractError| ModelError::Load {
            path: PathBuf::from(path),
            reason: format!("{e:#}"),
        };
        let side = INPUT_SIDE as usize;
        let parsed = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(load_error)?;
        // Outputs are found by their ONNX names; optimisation keeps their order.
        let output_index = |name: &str| {
            let outlets = parsed.output_outlets().unwrap_or(&[]);
            outlets
                .iter()
                .position(|o| {
                    parsed.outlet_label(*o) == Some(name) || parsed.node(o.node).name == name
                })
                .ok_or_else(|| ModelError::Load {
                    path: path.to_path_buf(),
                    reason: format!("the model has no output named {name:?}"),
                })
        };
        let logits_output = output_index("logits")?;
        let features_output = output_index("features")?;
        let model = parsed
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .and_then(|m| m.into_optimized())
            .map_err(load_error)?;
        let plan = model.into_runnable().map_err(load_error)?;
        Ok(Self {
            plan,
            logits_output,
            features_output,
        })
    }

    pub fn run(&self, input: &ModelInput) -> Result<BackboneOutput, ModelError> {
        let inference = |e: TractError| ModelError::Inference(format!("{e:#}"));
        let outputs = self
            .plan
            .run(tvec!(input.0.clone().into_tvalue()))
            .map_err(inference)?;
        let flat = |index: usize, len: usize| -> Result<Vec<f32>, ModelError> {
            let values = outputs
                .get(index)
                .ok_or_else(|| ModelError::Inference(format!("output {index} is missing")))?
                .to_plain_array_view::<f32>()
                .map_err(inference)?;
            if values.len() != len {
                return Err(ModelError::Inference(format!(
                    "output {index} has {} values, expected {len}",
                    values.len()
                )));
            }
            Ok(values.iter().copied().collect())
        };
        Ok(BackboneOutput {
            logits: flat(self.logits_output, IMAGENET_CLASSES)?,
            features: flat(self.features_output, FEATURES)?,
        })
    }
}
