//! The cat/dog head and the "neither" detector, as trained by model/train_head.py.
//!
//! model/head.json is the one source of truth: it is compiled in, so every
//! binary applies exactly the head that was committed.

use serde::Deserialize;

use super::ModelError;
use super::backbone::{BackboneOutput, FEATURES, IMAGENET_CLASSES};
use catdog_core::domain::Category;

/// The committed head, as text: part of the model version digest.
pub const HEAD_JSON: &str = include_str!("../../../model/head.json");

#[derive(Debug, Deserialize)]
struct HeadFile {
    version: String,
    /// The backbone input side the head was trained on (its features
    /// depend on it).
    input_side: u32,
    positive_class: String,
    weights: Vec<f32>,
    bias: f32,
    neither: NeitherFile,
}

#[derive(Debug, Deserialize)]
struct NeitherFile {
    dog_classes: [usize; 2],
    cat_classes: [usize; 2],
    mass_weight: f64,
    mass_bias: f64,
    weights: Vec<f32>,
    bias: f64,
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
    pub input_side: u32,
    weights: Vec<f32>,
    bias: f32,
    /// ImageNet classes that are a dog or a domestic cat.
    pet_classes: Vec<usize>,
    pub dog_classes: std::ops::RangeInclusive<usize>,
    pub cat_classes: std::ops::RangeInclusive<usize>,
    /// p(pet) = σ(mass_weight · ln(pet mass) + mass_bias) · σ(neither_weights · features + neither_bias).
    mass_weight: f64,
    mass_bias: f64,
    neither_weights: Vec<f32>,
    neither_bias: f64,
}

impl Head {
    pub fn committed() -> Result<Self, ModelError> {
        Self::parse(HEAD_JSON)
    }

    pub fn parse(json: &str) -> Result<Self, ModelError> {
        let file: HeadFile =
            serde_json::from_str(json).map_err(|e| ModelError::Head(e.to_string()))?;
        for weights in [&file.weights, &file.neither.weights] {
            if weights.len() != FEATURES {
                return Err(ModelError::Head(format!(
                    "{} weights, the backbone gives {FEATURES} features",
                    weights.len()
                )));
            }
        }
        if file.positive_class != "dog" {
            return Err(ModelError::Head(
                "the head must score dogs as positive".into(),
            ));
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
        let n = &file.neither;
        if !(n.mass_weight > 0.0 && n.mass_bias.is_finite() && n.bias.is_finite()) {
            return Err(ModelError::Head(
                "the neither detector needs mass_weight > 0 and finite biases".into(),
            ));
        }
        let (dog_classes, cat_classes) = (range(n.dog_classes)?, range(n.cat_classes)?);
        let pet_classes = dog_classes.clone().chain(cat_classes.clone()).collect();
        Ok(Self {
            version: file.version,
            input_side: file.input_side,
            weights: file.weights,
            bias: file.bias,
            pet_classes,
            dog_classes,
            cat_classes,
            mass_weight: n.mass_weight,
            mass_bias: n.mass_bias,
            neither_bias: n.bias,
            neither_weights: file.neither.weights,
        })
    }

    /// Scores from the backbone's output:
    /// - p(pet) = σ(mass weight · ln(pet mass) + mass bias) ·
    ///   σ(neither weights · features + neither bias): the ImageNet evidence
    ///   (the softmax summed over dog and domestic-cat classes) and a learned
    ///   pet-vs-neither score must both say pet;
    /// - p(dog | pet) = σ(weights · features + bias);
    /// - cat = p(pet)·(1 − p(dog | pet)), dog = p(pet)·p(dog | pet), other = 1 − p(pet).
    pub fn scores(&self, output: &BackboneOutput) -> Scores {
        let max = output
            .logits
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let exp = |l: f32| f64::from(l - max).exp();
        let total: f64 = output.logits.iter().map(|&l| exp(l)).sum();
        let pet: f64 = self
            .pet_classes
            .iter()
            .map(|&i| exp(output.logits[i]))
            .sum();
        let pet_mass = (pet / total).max(f64::MIN_POSITIVE);
        let p_pet = sigmoid(self.mass_weight * pet_mass.ln() + self.mass_bias)
            * sigmoid(dot(&self.neither_weights, &output.features) + self.neither_bias);
        let p_dog = sigmoid(dot(&self.weights, &output.features) + f64::from(self.bias));
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

    #[test]
    fn the_committed_head_parses() {
        let head = Head::committed().expect("model/head.json");
        assert_eq!(head.pet_classes.len(), 118 + 5);
    }

    #[test]
    fn a_head_for_another_backbone_is_refused() {
        let json = HEAD_JSON.replacen("\"weights\": [", "\"weights\": [0.5,", 1);
        let error = Head::parse(&json).unwrap_err();
        assert!(error.to_string().contains("1281 weights"), "{error}");
    }

    #[test]
    fn a_neither_detector_for_another_backbone_is_refused() {
        let at = HEAD_JSON.find("\"neither\"").expect("a neither section");
        let (before, after) = HEAD_JSON.split_at(at);
        let json = format!(
            "{before}{}",
            after.replacen("\"weights\": [", "\"weights\": [0.5,", 1)
        );
        let error = Head::parse(&json).unwrap_err();
        assert!(error.to_string().contains("1281 weights"), "{error}");
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
