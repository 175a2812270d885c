use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use catdog::config::{ApiConfig, Env};
use catdog::local::{self, LocalOptions};
use catdog::startup::{Backends, init};

#[derive(clap::Args)]
pub struct Args {
    /// Port to listen on (all interfaces).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// Folder for the local database and pictures (ignored when DATABASE_URL
    /// and STORAGE_URL are set).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The built web page to serve at `/`.
    #[arg(long, env = "CATDOG_WEB_DIR", default_value = "frontend/build")]
    web_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Local mode's embedded defaults live under the data folder unless the
    // caller chose other stores.
    let data = args.data_dir.display().to_string();
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    let defaults = [
        ("DATABASE_URL", format!("sqlite://{data}/catdog.db")),
        ("STORAGE_URL", format!("file://{data}/objects")),
        ("PORT", args.port.to_string()),
    ];
    for (name, value) in defaults {
        match vars.iter_mut().find(|(k, _)| k == name) {
            Some(existing) if name == "PORT" => existing.1 = value,
            Some(existing) if !existing.1.trim().is_empty() => {}
            Some(existing) => existing.1 = value,
            None => vars.push((name.to_owned(), value)),
        }
    }
    let env = Env::from_map(vars);
    let common = init(&env)?;
    let api = ApiConfig::from_env(&env)?;
    let backends = Backends::connect(&common, true)
        .await
        .context("opening the local stores")?;
    let web_dir = args
        .web_dir
        .join("index.html")
        .is_file()
        .then_some(args.web_dir.clone());
    if web_dir.is_none() {
        tracing::warn!(dir = %args.web_dir.display(), "the web page is not built; serving the API only");
    }
    local::run(LocalOptions {
        env,
        common,
        api,
        backends,
        web_dir,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
