//! `catdog classify` and `catdog eval --errors` as an operator runs them on
//! real photos of the team's dev set (../shared/data/images/dev) with the
//! built model (model/build.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dev(relative: &str) -> PathBuf {
    let path = repo().join("../shared/data/images/dev").join(relative);
    assert!(
        path.is_file(),
        "{} is missing: the team's shared data must sit beside the repository as ../shared",
        path.display()
    );
    path
}

fn catdog(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_catdog"))
        .args(args)
        .env("MODEL_DIR", repo().join(".cache/model"))
        .output()
        .unwrap();
    assert!(
        output.status.success() || !output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn classify_names_the_breed_and_the_classes_behind_the_verdict() {
    let cat = dev("cat/cat.4210.jpg");
    let (ok, out) = catdog(&["classify".as_ref(), cat.as_os_str()]);
    assert!(ok, "{out}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["category"], "cat", "{line}");
    let cat_kinds = [
        "tabby",
        "tiger cat",
        "Persian cat",
        "Siamese cat",
        "Egyptian cat",
    ];
    let breed = line["breed"].as_str().expect("a breed for a cat");
    assert!(cat_kinds.contains(&breed), "{line}");
    let p = line["breed_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{line}");
    let why = line["why"].as_array().unwrap();
    assert_eq!(why.len(), 3, "{line}");
    let probabilities: Vec<f64> = why
        .iter()
        .map(|w| w["probability"].as_f64().unwrap())
        .collect();
    assert!(
        probabilities.windows(2).all(|w| w[0] >= w[1]),
        "most probable first: {line}"
    );
    assert!(why.iter().all(|w| !w["label"].as_str().unwrap().is_empty()));
}

#[test]
fn eval_errors_lists_each_wrongly_classified_file_with_its_scores() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["cat", "dog"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    // A dog filed under cat: the one mistake eval must point at.
    std::fs::copy(dev("dog/dog.4002.jpg"), dir.path().join("cat/misfiled.jpg")).unwrap();
    std::fs::copy(dev("cat/cat.4212.jpg"), dir.path().join("cat/cat.jpg")).unwrap();
    std::fs::copy(dev("dog/dog.4015.jpg"), dir.path().join("dog/dog.jpg")).unwrap();

    let (ok, out) = catdog(&["eval".as_ref(), "--errors".as_ref(), dir.path().as_os_str()]);
    assert!(ok, "{out}");
    assert!(out.contains("wrongly classified: 1"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("misfiled.jpg"))
        .unwrap_or_else(|| panic!("the misfiled picture is not listed:\n{out}"));
    assert!(line.contains("is cat, classified dog"), "{line}");
    assert!(line.contains("cat 0.") && line.contains("why: "), "{line}");
    assert!(!out.contains("cat/cat.jpg\t"), "{out}");

    // Without the flag, only the summary.
    let (_, out) = catdog(&["eval".as_ref(), dir.path().as_os_str()]);
    assert!(!out.contains("misfiled.jpg"), "{out}");
}
