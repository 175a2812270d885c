//! `catdog serve` as the cli tests start it: a data folder, no web page,
//! `MODEL_DIR` at the repository's built model, and the rest from the test.

use std::path::{Path, PathBuf};
use std::process::Command;

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
        .env("MODEL_DIR", repo_root().join(".cache/model"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .arg("--web-dir")
        .arg(data.join("no-page"));
    command
}
