//! `catdog eval DIR`: classify every picture under DIR/{cat,dog,other} and
//! report how often the classifier agrees with the folder it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use catdog::classifier::Classification;
use catdog::domain::Category;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::classify::{classify_file, load_from_settings, round};

#[derive(clap::Args)]
pub struct Args {
    /// A folder with subfolders `cat` and `dog`, and optionally `other`.
    pub dir: PathBuf,
    /// Also list every wrongly classified file with its scores and the
    /// classes behind the verdict, most confident mistakes first.
    #[arg(long)]
    pub errors: bool,
}

/// A picture the classifier got wrong.
struct Miss {
    file: PathBuf,
    truth: Category,
    classification: Classification,
}

/// Counts by (truth, predicted); pictures that failed to decode are counted apart.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<(&'static str, &'static str), usize>,
    errors: Vec<(PathBuf, String)>,
    misses: Vec<Miss>,
    millis: Vec<f64>,
}

impl Tally {
    fn count(&self, truth: Category, predicted: Category) -> usize {
        self.counts
            .get(&(truth.as_str(), predicted.as_str()))
            .copied()
            .unwrap_or(0)
    }

    fn total(&self, truth: Category) -> usize {
        Category::ALL.iter().map(|&p| self.count(truth, p)).sum()
    }

    /// Share right among pictures whose truth is one of `truths`; None if there are none.
    fn accuracy(&self, truths: &[Category]) -> Option<f64> {
        let total: usize = truths.iter().map(|&t| self.total(t)).sum();
        let right: usize = truths.iter().map(|&t| self.count(t, t)).sum();
        (total > 0).then(|| right as f64 / total as f64)
    }
}

fn pictures_in(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("cannot list {}", folder.display()))?
    {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_file() && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut work = Vec::new();
    for truth in Category::ALL {
        let folder = args.dir.join(truth.as_str());
        if folder.is_dir() {
            work.extend(pictures_in(&folder)?.into_iter().map(|file| (truth, file)));
        } else if truth != Category::Other {
            bail!(
                "{} has no `{}` folder (expected cat, dog and optionally other)",
                args.dir.display(),
                truth
            );
        }
    }
    if work.is_empty() {
        bail!("no pictures under {}", args.dir.display());
    }

    let (classifier, limits) = load_from_settings()?;
    let progress = ProgressBar::new(work.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({elapsed}, ~{eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut tally = Tally::default();
    for (truth, file) in &work {
        progress.set_message(
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        match classify_file(&classifier, &limits, file) {
            Ok((c, ms)) => {
                *tally
                    .counts
                    .entry((truth.as_str(), c.category.as_str()))
                    .or_default() += 1;
                tally.millis.push(ms);
                if c.category != *truth {
                    progress.println(format!(
                        "miss: {} is {truth}, classified {} ({:.2})",
                        file.display(),
                        c.category,
                        c.confidence
                    ));
                    tally.misses.push(Miss {
                        file: file.clone(),
                        truth: *truth,
                        classification: c,
                    });
                }
            }
            Err(e) => {
                progress.println(format!("error: {}: {e:#}", file.display()));
                tally.errors.push((file.clone(), format!("{e:#}")));
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();

    if args.errors {
        print_misses(&mut tally.misses);
    }
    print_report(&tally);
    Ok(ExitCode::SUCCESS)
}

/// One line per wrongly classified file, most confident mistakes first:
/// where to look, what it is, what the classifier said and why.
fn print_misses(misses: &mut [Miss]) {
    misses.sort_by(|a, b| {
        b.classification
            .confidence
            .total_cmp(&a.classification.confidence)
    });
    println!("wrongly classified: {}", misses.len());
    for miss in misses.iter() {
        let c = &miss.classification;
        let why: Vec<String> = c
            .why
            .iter()
            .map(|w| format!("{} {:.2}", w.label, w.probability))
            .collect();
        println!(
            "{}\tis {}, classified {} ({:.4})\tcat {:.4} dog {:.4} other {:.4}\twhy: {}",
            miss.file.display(),
            miss.truth,
            c.category,
            c.confidence,
            c.scores.cat,
            c.scores.dog,
            c.scores.other,
            why.join(", ")
        );
    }
}

fn print_report(tally: &Tally) {
    let present: Vec<Category> = Category::ALL
        .into_iter()
        .filter(|&t| tally.total(t) > 0)
        .collect();
    println!("confusion matrix (rows: folder, columns: classified)");
    println!(
        "{:>8} {:>6} {:>6} {:>6}   accuracy",
        "", "cat", "dog", "other"
    );
    for &truth in &present {
        let row: Vec<String> = Category::ALL
            .iter()
            .map(|&p| format!("{:>6}", tally.count(truth, p)))
            .collect();
        let accuracy = tally.accuracy(&[truth]).unwrap_or(0.0);
        println!(
            "{:>8} {}   {:.1}% of {}",
            truth.as_str(),
            row.join(" "),
            accuracy * 100.0,
            tally.total(truth)
        );
    }
    if !tally.errors.is_empty() {
        println!(
            "{} pictures could not be classified (listed above)",
            tally.errors.len()
        );
    }

    let mut millis = tally.millis.clone();
    millis.sort_by(f64::total_cmp);
    let confusion: serde_json::Map<String, serde_json::Value> = present
        .iter()
        .map(|&t| {
            let row: serde_json::Map<String, serde_json::Value> = Category::ALL
                .iter()
                .map(|&p| (p.as_str().to_owned(), json!(tally.count(t, p))))
                .collect();
            (t.as_str().to_owned(), serde_json::Value::Object(row))
        })
        .collect();
    let n: usize = present.iter().map(|&t| tally.total(t)).sum();
    let summary = json!({
        "n": n,
        "accuracy": tally.accuracy(&Category::ALL).map(|a| round(a, 4)),
        "cat_dog_accuracy": tally.accuracy(&[Category::Cat, Category::Dog]).map(|a| round(a, 4)),
        "other_recall": tally.accuracy(&[Category::Other]).map(|a| round(a, 4)),
        "confusion": confusion,
        "errors": tally.errors.len(),
        "p50_ms": round(percentile(&millis, 50.0), 1),
        "p99_ms": round(percentile(&millis, 99.0), 1),
    });
    println!("{summary}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn cat_dog_accuracy_ignores_the_other_folder() {
        let mut tally = Tally::default();
        tally.counts.insert(("cat", "cat"), 9);
        tally.counts.insert(("cat", "other"), 1);
        tally.counts.insert(("other", "dog"), 1);
        assert_eq!(tally.accuracy(&[Category::Cat, Category::Dog]), Some(0.9));
        assert_eq!(tally.accuracy(&[Category::Other]), Some(0.0));
        assert_eq!(tally.accuracy(&[Category::Dog]), None);
    }
}
