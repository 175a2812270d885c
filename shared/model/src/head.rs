//! The cat/dog head and the "neither" detector, as trained by model/train_head.py.
//!
//! model/head.json is the one source of truth: it is compiled in, so every
//! binary applies exactly the head that was committed. It names the backbones
//! it reads (EfficientNet-Lite0 and Lite2 for `catdog-head-3`) and which of
//! them each piece of evidence comes from; MODEL.md says why two.

use serde::Deserialize;

use super::ModelError;
use super::backbone::{BackboneOutput, FEATURES, IMAGENET_CLASSES};
use catdog_core::domain::Category;

/// The committed head, as text: part of the model version digest.
pub const HEAD_JSON: &str = include_str!("../../../model/head.json");

#[derive(Debug, Deserialize)]
struct HeadFile {
    version: String,
    backbones: Vec<BackboneFile>,
    positive_class: String,
    catdog: CatDogFile,
    neither: NeitherFile,
    explain_backbone: usize,
}

#[derive(Debug, Deserialize)]
struct BackboneFile {
    name: String,
    file: String,
    input_side: u32,
    feature_len: usize,
}

#[derive(Debug, Deserialize)]
struct CatDogFile {
    backbone: usize,
    weights: Vec<f32>,
    bias: f64,
}

#[derive(Debug, Deserialize)]
struct NeitherFile {
    dog_classes: [usize; 2],
    cat_classes: [usize; 2],
    mass_backbone: usize,
    mass_weight: f64,
    mass_bias: f64,
    /// One weight vector per backbone, in `backbones` order.
    weights: Vec<Vec<f32>>,
    bias: f64,
}

/// A backbone the head reads: its file in `MODEL_DIR` and the square it was
/// trained on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackboneSpec {
    /// A short name ("lite0"), for messages and for picking one in tests.
    pub name: String,
    /// A plain file name, looked up in `MODEL_DIR`.
    pub file: String,
    /// The input side the head's features were computed at.
    pub input_side: u32,
}

/// Per-class scores; they sum to 1.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub cat: f32,
    pub dog: f32,
    pub other: f32,
}

impl Scores {
    pub fn get(&self, category: Category) -> f32 {
        match category {
            Category::Cat => self.cat,
            Category::Dog => self.dog,
            Category::Other => self.other,
        }
    }

    /// The category with the highest score; on a tie, the earlier of cat, dog, other.
    pub fn best(&self) -> Category {
        Category::ALL
            .into_iter()
            .reduce(|best, c| {
                if self.get(c) > self.get(best) {
                    c
                } else {
                    best
                }
            })
            .unwrap_or(Category::Other)
    }
}

#[derive(Debug)]
pub struct Head {
    pub version: String,
    /// What each backbone is; `scores` takes their outputs in this order.
    pub backbones: Vec<BackboneSpec>,
    /// p(dog | pet) = σ(catdog_weights · features[catdog_backbone] + catdog_bias).
    catdog_backbone: usize,
    catdog_weights: Vec<f32>,
    catdog_bias: f64,
    /// ImageNet classes that are a dog or a domestic cat.
    pet_classes: Vec<usize>,
    pub dog_classes: std::ops::RangeInclusive<usize>,
    pub cat_classes: std::ops::RangeInclusive<usize>,
    /// p(pet) = σ(mass_weight · ln(pet mass of mass_backbone) + mass_bias) ·
    /// σ(Σₖ neither_weights[k] · features[k] + neither_bias).
    mass_backbone: usize,
    mass_weight: f64,
    mass_bias: f64,
    neither_weights: Vec<Vec<f32>>,
    neither_bias: f64,
    /// Whose ImageNet logits name the breed and the classes behind a verdict.
    pub explain_backbone: usize,
}

impl Head {
    pub fn committed() -> Result<Self, ModelError> {
        Self::parse(HEAD_JSON)
    }

    pub fn parse(json: &str) -> Result<Self, ModelError> {
        let file: HeadFile =
            serde_json::from_str(json).map_err(|e| ModelError::Head(e.to_string()))?;
        let bad = |reason: String| Err(ModelError::Head(reason));
        let count = file.backbones.len();
        if count == 0 {
            return bad("it names no backbone".into());
        }
        let mut backbones = Vec::with_capacity(count);
        for b in file.backbones {
            // The file is joined to MODEL_DIR: a path could point anywhere.
            let plain = !b.file.is_empty()
                && !b.file.contains(['/', '\\'])
                && b.file != "."
                && b.file != "..";
            if !plain {
                return bad(format!(
                    "backbone file {:?} is not a plain file name",
                    b.file
                ));
            }
            if b.feature_len != FEATURES {
                return bad(format!(
                    "backbone {} gives {} features, the code reads {FEATURES}",
                    b.name, b.feature_len
                ));
            }
            if backbones.iter().any(|o: &BackboneSpec| o.file == b.file) {
                return bad(format!("backbone file {} is named twice", b.file));
            }
            backbones.push(BackboneSpec {
                name: b.name,
                file: b.file,
                input_side: b.input_side,
            });
        }
        let n = &file.neither;
        for (what, index) in [
            ("catdog.backbone", file.catdog.backbone),
            ("neither.mass_backbone", n.mass_backbone),
            ("explain_backbone", file.explain_backbone),
        ] {
            if index >= count {
                return bad(format!(
                    "{what} is {index}, but there are {count} backbones"
                ));
            }
        }
        if n.weights.len() != count {
            return bad(format!(
                "the neither score has {} weight vectors for {count} backbones",
                n.weights.len()
            ));
        }
        for weights in std::iter::once(&file.catdog.weights).chain(&n.weights) {
            if weights.len() != FEATURES {
                return bad(format!(
                    "{} weights, the backbone gives {FEATURES} features",
                    weights.len()
                ));
            }
        }
        if file.positive_class != "dog" {
            return bad("the head must score dogs as positive".into());
        }
        let range = |[first, last]: [usize; 2]| {
            if first <= last && last < IMAGENET_CLASSES {
                Ok(first..=last)
            } else {
                Err(ModelError::Head(format!(
                    "bad ImageNet class range {first}..={last}"
                )))
            }
        };
        let finite = n.mass_bias.is_finite() && n.bias.is_finite() && file.catdog.bias.is_finite();
        if !(n.mass_weight > 0.0 && finite) {
            return bad("the head needs mass_weight > 0 and finite biases".into());
        }
        let (dog_classes, cat_classes) = (range(n.dog_classes)?, range(n.cat_classes)?);
        let pet_classes = dog_classes.clone().chain(cat_classes.clone()).collect();
        Ok(Self {
            version: file.version,
            backbones,
            catdog_backbone: file.catdog.backbone,
            catdog_weights: file.catdog.weights,
            catdog_bias: file.catdog.bias,
            pet_classes,
            dog_classes,
            cat_classes,
            mass_backbone: n.mass_backbone,
            mass_weight: n.mass_weight,
            mass_bias: n.mass_bias,
            neither_bias: n.bias,
            neither_weights: file.neither.weights,
            explain_backbone: file.explain_backbone,
        })
    }

    /// Scores from the backbones' outputs, one per backbone in `backbones` order:
    /// - p(pet) = σ(mass weight · ln(pet mass) + mass bias) ·
    ///   σ(Σₖ neither weightsₖ · featuresₖ + neither bias): the ImageNet
    ///   evidence (the softmax summed over dog and domestic-cat classes) and a
    ///   learned pet-vs-neither score, which every backbone feeds, must both say pet;
    /// - p(dog | pet) = σ(weights · features + bias) on the cat/dog backbone;
    /// - cat = p(pet)·(1 − p(dog | pet)), dog = p(pet)·p(dog | pet), other = 1 − p(pet).
    ///
    /// # Panics
    /// If `outputs` does not hold one output per backbone: the caller
    /// ([`crate::Classifier`]) runs exactly those.
    pub fn scores(&self, outputs: &[BackboneOutput]) -> Scores {
        assert_eq!(
            outputs.len(),
            self.backbones.len(),
            "one output per backbone"
        );
        let logits = &outputs[self.mass_backbone].logits;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp = |l: f32| f64::from(l - max).exp();
        let total: f64 = logits.iter().map(|&l| exp(l)).sum();
        let pet: f64 = self.pet_classes.iter().map(|&i| exp(logits[i])).sum();
        let pet_mass = (pet / total).max(f64::MIN_POSITIVE);
        let learned: f64 = self
            .neither_weights
            .iter()
            .zip(outputs)
            .map(|(weights, output)| dot(weights, &output.features))
            .sum();
        let p_pet = sigmoid(self.mass_weight * pet_mass.ln() + self.mass_bias)
            * sigmoid(learned + self.neither_bias);
        let catdog = &outputs[self.catdog_backbone].features;
        let p_dog = sigmoid(dot(&self.catdog_weights, catdog) + self.catdog_bias);
        Scores {
            cat: (p_pet * (1.0 - p_dog)) as f32,
            dog: (p_pet * p_dog) as f32,
            other: (1.0 - p_pet) as f32,
        }
    }
}

fn dot(weights: &[f32], features: &[f32]) -> f64 {
    weights
        .iter()
        .zip(features)
        .map(|(&w, &f)| f64::from(w) * f64::from(f))
        .sum()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut json: serde_json::Value = serde_json::from_str(HEAD_JSON).unwrap();
        edit(&mut json);
        json.to_string()
    }

    fn refusal(json: &str) -> String {
        Head::parse(json).unwrap_err().to_string()
    }

    #[test]
    fn the_committed_head_parses() {
        let head = Head::committed().expect("model/head.json");
        assert_eq!(head.pet_classes.len(), 118 + 5);
        assert!(!head.backbones.is_empty());
    }

    #[test]
    fn a_head_for_another_backbone_is_refused() {
        let json = edited(|j| {
            j["catdog"]["weights"]
                .as_array_mut()
                .unwrap()
                .push(0.5.into())
        });
        assert!(
            refusal(&json).contains("1281 weights"),
            "{}",
            refusal(&json)
        );
    }

    #[test]
    fn a_neither_detector_for_another_backbone_is_refused() {
        let json = edited(|j| {
            j["neither"]["weights"][0]
                .as_array_mut()
                .unwrap()
                .push(0.5.into());
        });
        assert!(
            refusal(&json).contains("1281 weights"),
            "{}",
            refusal(&json)
        );
        let json = edited(|j| {
            j["neither"]["weights"].as_array_mut().unwrap().pop();
        });
        assert!(
            refusal(&json).contains("weight vectors"),
            "{}",
            refusal(&json)
        );
    }

    #[test]
    fn a_backbone_index_out_of_range_is_refused() {
        let json = edited(|j| j["catdog"]["backbone"] = 9.into());
        assert!(
            refusal(&json).contains("catdog.backbone is 9"),
            "{}",
            refusal(&json)
        );
        let json = edited(|j| j["explain_backbone"] = 9.into());
        assert!(
            refusal(&json).contains("explain_backbone is 9"),
            "{}",
            refusal(&json)
        );
    }

    #[test]
    fn a_backbone_file_outside_the_model_folder_is_refused() {
        let json = edited(|j| j["backbones"][0]["file"] = "../../etc/passwd".into());
        assert!(
            refusal(&json).contains("not a plain file name"),
            "{}",
            refusal(&json)
        );
    }

    #[test]
    fn the_best_score_wins() {
        let scores = Scores {
            cat: 0.2,
            dog: 0.5,
            other: 0.3,
        };
        assert_eq!(scores.best(), Category::Dog);
    }
}
