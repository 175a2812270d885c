//! The repository's classifier model and the team's dev photos, for suites
//! that classify for real. The model is loaded once per test binary.
//!
//! Needs every backbone model/head.json names (`backbone.onnx` and
//! `backbone-lite2.onnx`) in `.cache/model` (or `MODEL_DIR`): build them
//! with model/build.sh.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use catdog::classifier::Classifier;

pub use crate::repo_root;

/// The folder holding the built model: `MODEL_DIR`, or `.cache/model`.
/// Fails the test, saying how to build it, when the model is not there.
pub fn model_dir() -> PathBuf {
    let dir = match std::env::var_os("MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => repo_root().join(dir),
        None => repo_root().join(".cache/model"),
    };
    for file in Classifier::backbone_files().expect("model/head.json") {
        let path = dir.join(file);
        assert!(
            path.is_file(),
            "{} is missing: build the model with model/build.sh",
            path.display()
        );
    }
    dir
}

/// A photo of the dev set by its path under `dev/`, e.g. `cat/cat.4210.jpg`.
pub fn dev_photo(relative: &str) -> Vec<u8> {
    let path = repo_root().join("../shared/data/images/dev").join(relative);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the team's shared data must sit beside the repository as ../shared)",
            path.display()
        )
    })
}

/// The dev photos the end-to-end suites ingest, by their folder under
/// `dev/`: three cats, three dogs and two other things.
pub const CATS: [&str; 3] = ["cat.4210.jpg", "cat.4212.jpg", "cat.4222.jpg"];
pub const DOGS: [&str; 3] = ["dog.4002.jpg", "dog.4015.jpg", "dog.4038.jpg"];
pub const OTHERS: [&str; 2] = ["brick.png", "coffee.png"];

/// `root/incoming/{cat,dog,other}/…`: copies of [`CATS`], [`DOGS`] and
/// [`OTHERS`], a folder source to ingest them from.
pub fn dev_photo_folder(root: &Path) -> PathBuf {
    let dev = repo_root().join("../shared/data/images/dev");
    let folder = root.join("incoming");
    for (kind, names) in [
        ("cat", &CATS[..]),
        ("dog", &DOGS[..]),
        ("other", &OTHERS[..]),
    ] {
        std::fs::create_dir_all(folder.join(kind)).unwrap();
        for name in names {
            let from = dev.join(kind).join(name);
            std::fs::copy(&from, folder.join(kind).join(name))
                .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
    }
    folder
}

pub fn classifier() -> Arc<Classifier> {
    static CLASSIFIER: OnceLock<Arc<Classifier>> = OnceLock::new();
    Arc::clone(CLASSIFIER.get_or_init(|| {
        Arc::new(Classifier::load(&model_dir()).unwrap_or_else(|e| {
            panic!("cannot load the model ({e}); build it with model/build.sh")
        }))
    }))
}

/// A dev photo stored as ingestion leaves it: the original in `objects`,
/// then a pending row in `store`. Returns the message that would be
/// published for it (not pushed yet).
pub async fn stage_dev_photo(
    store: &dyn catdog::store::ImageStore,
    objects: &dyn catdog::objects::ObjectStore,
    photo: &str,
) -> catdog::pubsub::ImageMessage {
    use catdog::domain::{Digest, ImageId, NewImage, ObjectName};
    let bytes = dev_photo(photo);
    let id = ImageId::new();
    let name = ObjectName::original(id);
    objects
        .put(&name, bytes.clone().into(), "image/jpeg")
        .await
        .unwrap();
    let digest = Digest::of(&bytes);
    store
        .insert_pending(&NewImage {
            source_ref: Some(photo.to_owned()),
            ..crate::rows::pending_image(id, &bytes)
        })
        .await
        .unwrap();
    catdog::pubsub::ImageMessage::new(id, name, digest)
}
