//! The whole of one classification on small pictures: decode, preprocess,
//! the model and the head, and the thumbnail. Slow (one inference per input
//! that decodes), so it complements decode_image rather than replacing it.
//!
//! Needs the backbone built by model/build.sh: `$MODEL_DIR`, or .cache/model
//! at the repository root.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use catdog::classifier::{Classifier, DecodeLimits, THUMBNAIL_LONG_SIDE};
use libfuzzer_sys::fuzz_target;

const LIMITS: DecodeLimits = DecodeLimits {
    max_bytes: 1 << 20,
    max_pixels: 1 << 18,
};

fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        let dir = std::env::var_os("MODEL_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/model"));
        match Classifier::load(&dir) {
            Ok(classifier) => classifier,
            Err(e) => {
                // Not a finding: say what to do and stop without a crash file.
                eprintln!("classify_image: {e}");
                std::process::exit(2);
            }
        }
    })
}

fuzz_target!(|bytes: &[u8]| {
    let classifier = classifier();
    let analysis = match classifier.analyze(bytes, &LIMITS) {
        Ok(analysis) => analysis,
        Err(e) => {
            assert!(e.is_bad_picture(), "not the picture's fault: {e}");
            return;
        }
    };
    let scores = analysis.classification.scores;
    for score in [scores.cat, scores.dog, scores.other] {
        assert!((0.0..=1.0).contains(&score), "score {score} in {scores:?}");
    }
    let sum = scores.cat + scores.dog + scores.other;
    assert!((sum - 1.0).abs() < 1e-3, "scores sum to {sum}");
    let thumbnail = &analysis.thumbnail;
    assert!(thumbnail.width.max(thumbnail.height) <= THUMBNAIL_LONG_SIDE);
    assert!(thumbnail.width > 0 && thumbnail.height > 0);
    assert!(thumbnail.jpeg.starts_with(&[0xFF, 0xD8]));
});
