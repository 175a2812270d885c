//! What the operator commands' tests share: the two databases a command may
//! work on, as the command finds them (local mode's in `--data-dir`, or
//! DATABASE_URL), and a handle on the same database for the test to check.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use catdog::store::{ConnectOptions, ImageStore, connect};

use catdog_testing::postgres;

/// A database an operator command is pointed at, and how.
pub struct OperatorDb {
    pub store: Arc<dyn ImageStore>,
    /// `--data-dir`, in a folder removed with this.
    data_dir: PathBuf,
    _dir: tempfile::TempDir,
    /// DATABASE_URL, when not local mode's.
    url: Option<String>,
    _postgres: Option<postgres::TestDatabase>,
}

impl OperatorDb {
    /// Local mode's SQLite database in a fresh `--data-dir`, no DATABASE_URL.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let url = format!("sqlite://{}", data_dir.join("catdog.db").display());
        Self {
            store: migrated(&url).await,
            _dir: dir,
            data_dir,
            url: None,
            _postgres: None,
        }
    }

    /// A fresh PostgreSQL database named by DATABASE_URL; `None` when there
    /// is no server and the tests may skip (never with CI=true).
    pub async fn postgres() -> Option<Self> {
        let database = postgres::TestDatabase::create().await?;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        Some(Self {
            store: migrated(&database.url).await,
            _dir: dir,
            data_dir,
            url: Some(database.url.clone()),
            _postgres: Some(database),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The environment the command runs with.
    pub fn env(&self) -> Vec<(&str, &str)> {
        self.url
            .as_deref()
            .map(|url| vec![("DATABASE_URL", url)])
            .unwrap_or_default()
    }
}

async fn migrated(url: &str) -> Arc<dyn ImageStore> {
    let store = connect(url, &ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Runs `catdog ARGS --data-dir DIR` with only `env` (and `USER=tester`);
/// its exit status, and its standard output and error together.
pub fn catdog(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_catdog"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_clear()
        .env("USER", "tester")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}
