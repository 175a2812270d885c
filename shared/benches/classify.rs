//! One classification, whole (decode + preprocess + inference + head) and
//! inference alone, on a real dev photo, single-threaded.
//!
//!   model/build.sh && cargo bench -p catdog --bench classify
//!
//! model/compare-speed.sh compares inference alone with onnxruntime on the
//! same model (MODEL.md, "Speed").

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use catdog::classifier::{Classifier, DecodeLimits, decode};
use criterion::{Criterion, criterion_group, criterion_main};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model_dir() -> PathBuf {
    match std::env::var_os("MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => repo_root().join(dir),
        None => repo_root().join(".cache/model"),
    }
}

fn classify(c: &mut Criterion) {
    let started = Instant::now();
    let classifier = Classifier::load(&model_dir())
        .unwrap_or_else(|e| panic!("cannot load the model ({e}); build it with model/build.sh"));
    eprintln!("model load (read + optimise): {:?}", started.elapsed());

    let photo = repo_root().join("../shared/data/images/dev/cat/cat.4210.jpg");
    let bytes = std::fs::read(&photo).unwrap_or_else(|e| panic!("{}: {e}", photo.display()));
    let limits = DecodeLimits::default();
    let input = classifier.preprocess(&decode(&bytes, &limits).expect("dev photo decodes").pixels);

    let mut group = c.benchmark_group("classify");
    group.sample_size(30);
    group.bench_function("decode+preprocess+inference", |b| {
        b.iter(|| {
            let picture = decode(black_box(&bytes), &limits).unwrap();
            classifier.classify(&picture).unwrap()
        })
    });
    group.bench_function("inference", |b| {
        b.iter(|| classifier.classify_input(black_box(&input)).unwrap())
    });
    group.bench_function("decode+classify+thumbnail", |b| {
        b.iter(|| classifier.analyze(black_box(&bytes), &limits).unwrap())
    });
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
