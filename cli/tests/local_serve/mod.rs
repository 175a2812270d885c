//! `catdog serve` as the cli tests start it: a data folder, no web page,
//! `MODEL_DIR` at the repository's built model, and the rest from the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use catdog::store::{ImageStore as _, SqliteStore};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `catdog serve --data-dir DATA --web-dir (none)`, run by `wrapper` when
/// given (prlimit, say, with its own arguments), with only `env`,
/// `LOG_FORMAT=json` and `MODEL_DIR` set.
pub fn serve(wrapper: Option<Command>, data: &Path, env: &[(&str, String)]) -> Command {
    let catdog = env!("CARGO_BIN_EXE_catdog");
    let mut command = match wrapper {
        Some(mut wrapper) => {
            wrapper.arg(catdog);
            wrapper
        }
        None => Command::new(catdog),
    };
    command
        .env_clear()
        .env("LOG_FORMAT", "json")
        .env("MODEL_DIR", catdog_testing::model::model_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--web-dir")
        .arg(data.join("no-page"));
    command
}

/// The store `catdog serve --data-dir DATA` opens (`DATA/catdog.db`),
/// opened and migrated before it starts, for the test to seed or look into.
pub async fn data_store(data: &Path) -> SqliteStore {
    let store = SqliteStore::open(data.join("catdog.db").to_str().unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// An empty folder in `dir` to ingest from: a run is quick and changes
/// nothing.
pub fn nothing_to_ingest(dir: &Path) -> PathBuf {
    let folder = dir.join("nothing-to-ingest");
    std::fs::create_dir_all(&folder).unwrap();
    folder
}
