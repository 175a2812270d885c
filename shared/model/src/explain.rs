//! What a verdict rests on, in words: the breed (or cat kind) a cat or dog
//! most resembles, and the ImageNet classes the backbone saw most.

use std::ops::RangeInclusive;
use std::sync::LazyLock;

use catdog_core::domain::{BreedGuess, Category, ClassScore};

/// The 1000 ImageNet class names in the backbone's output order, written by
/// model/imagenet_labels.py.
const LABELS_TXT: &str = include_str!("../../../model/imagenet-classes.txt");

static LABELS: LazyLock<Vec<&'static str>> = LazyLock::new(|| LABELS_TXT.lines().collect());

/// How many classes `why` lists.
pub const WHY_CLASSES: usize = 3;

/// The name of ImageNet class `index` ("class 123" if the file is short,
/// which a test rules out).
fn label(index: usize) -> String {
    LABELS
        .get(index)
        .map_or_else(|| format!("class {index}"), |name| (*name).to_owned())
}

/// The softmax of the backbone's logits.
fn probabilities(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}

/// The breed guess and the top classes for a picture classified as
/// `category`. The breed's probability is its share among the breeds of that
/// category (dog breeds for a dog, cat kinds for a cat), so a mix of two
/// breeds reads as about a half each; a picture judged neither has no breed.
pub fn explain(
    logits: &[f32],
    category: Category,
    dog_classes: &RangeInclusive<usize>,
    cat_classes: &RangeInclusive<usize>,
) -> (Option<BreedGuess>, Vec<ClassScore>) {
    let p = probabilities(logits);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let why = order
        .iter()
        .take(WHY_CLASSES)
        .map(|&i| ClassScore {
            label: label(i),
            probability: p[i] as f32,
        })
        .collect();
    let breeds = match category {
        Category::Dog => dog_classes,
        Category::Cat => cat_classes,
        Category::Other => return (None, why),
    };
    let share: f64 = breeds.clone().filter_map(|i| p.get(i)).sum();
    let best = breeds
        .clone()
        .filter(|&i| i < p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]));
    let breed = best.filter(|_| share > 0.0).map(|i| BreedGuess {
        name: label(i),
        probability: (p[i] / share) as f32,
    });
    (breed, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_a_name_for_every_imagenet_class() {
        assert_eq!(LABELS.len(), super::super::backbone::IMAGENET_CLASSES);
        assert_eq!(LABELS[281], "tabby");
        assert_eq!(LABELS[207], "golden retriever");
    }

    fn logits_with(peaks: &[(usize, f32)]) -> Vec<f32> {
        let mut logits = vec![0.0; 1000];
        for &(i, l) in peaks {
            logits[i] = l;
        }
        logits
    }

    #[test]
    fn a_clear_dog_gets_its_breed_and_the_classes_behind_it() {
        let logits = logits_with(&[(207, 12.0), (208, 9.0), (281, 4.0)]);
        let (breed, why) = explain(&logits, Category::Dog, &(151..=268), &(281..=285));
        let breed = breed.unwrap();
        assert_eq!(breed.name, "golden retriever");
        assert!(breed.probability > 0.9, "{breed:?}");
        assert_eq!(why.len(), 3);
        assert_eq!(why[0].label, "golden retriever");
        assert_eq!(why[1].label, "Labrador retriever");
        assert!(why[0].probability > why[1].probability);
    }

    #[test]
    fn a_mix_of_two_breeds_is_unsure() {
        let logits = logits_with(&[(281, 10.0), (282, 10.0)]);
        let (breed, _) = explain(&logits, Category::Cat, &(151..=268), &(281..=285));
        let breed = breed.unwrap();
        assert!(
            breed.probability < catdog_core::domain::BREED_SURE,
            "{breed:?}"
        );
    }

    #[test]
    fn neither_has_no_breed() {
        let logits = logits_with(&[(207, 12.0)]);
        let (breed, why) = explain(&logits, Category::Other, &(151..=268), &(281..=285));
        assert!(breed.is_none());
        assert_eq!(why.len(), 3);
    }
}
