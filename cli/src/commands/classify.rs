//! `catdog classify FILE…`: one JSON line per file, on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use catdog::classifier::{Classification, Classifier, DecodeLimits, decode};
use catdog::classify::ClassifySettings;
use catdog::config::{self, MaxImageBytes, Vars};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Pictures to classify (JPEG, PNG, WebP, GIF, BMP or TIFF).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The model and limits from `MODEL_DIR`, `MAX_IMAGE_BYTES` and
/// `MAX_IMAGE_PIXELS`, read as classify-image reads them.
pub fn load_from_settings() -> anyhow::Result<(Classifier, DecodeLimits)> {
    let vars = Vars::process();
    let settings: ClassifySettings = config::parse(&vars)?;
    let config = settings.config(config::parse::<MaxImageBytes>(&vars)?);
    let classifier = config.load_classifier()?;
    Ok((classifier, config.limits))
}

/// Reads, decodes and classifies one file; the time covers decode and
/// classification, not reading the file.
pub fn classify_file(
    classifier: &Classifier,
    limits: &DecodeLimits,
    file: &Path,
) -> anyhow::Result<(Classification, f64)> {
    let bytes = std::fs::read(file).context("cannot read the file")?;
    let started = Instant::now();
    let picture = decode(&bytes, limits)?;
    let classification = classifier.classify(&picture)?;
    Ok((classification, started.elapsed().as_secs_f64() * 1000.0))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (classifier, limits) = load_from_settings()?;
    let mut failed = false;
    for file in &args.files {
        let line = match classify_file(&classifier, &limits, file) {
            Ok((c, ms)) => json!({
                "file": file.display().to_string(),
                "category": c.category,
                "confidence": round(f64::from(c.confidence), 4),
                "scores": {
                    "cat": round(f64::from(c.scores.cat), 4),
                    "dog": round(f64::from(c.scores.dog), 4),
                    "other": round(f64::from(c.scores.other), 4),
                },
                "breed": c.breed.as_ref().map(|b| &b.name),
                "breed_probability": c.breed.as_ref().map(|b| round(f64::from(b.probability), 4)),
                "why": c.why.iter().map(|w| json!({
                    "label": w.label,
                    "probability": round(f64::from(w.probability), 4),
                })).collect::<Vec<_>>(),
                "ms": round(ms, 1),
            }),
            Err(e) => {
                failed = true;
                json!({"file": file.display().to_string(), "error": format!("{e:#}")})
            }
        };
        println!("{line}");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
