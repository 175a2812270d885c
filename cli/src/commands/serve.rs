use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use catdog::config::ApiConfig;
use catdog::local::{self, AdminToken, LocalOptions};
use catdog::startup::{Backends, init};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on. The default keeps the gallery on this machine;
    /// `--host 0.0.0.0` shares it on the network (its state-changing routes
    /// still answer only this machine, or holders of the admin token).
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// A shared secret that lets other machines call the state-changing
    /// routes (`POST /ingest`, `POST /pubsub/push`) as `Authorization: Bearer
    /// TOKEN`. Without it only callers on this machine may.
    #[arg(long, env = "CATDOG_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Folder for the local database and pictures (ignored when DATABASE_URL
    /// and STORAGE_URL are set).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// The built web page to serve at `/`.
    #[arg(long, env = "CATDOG_WEB_DIR", default_value = "frontend/build")]
    web_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let env = local::local_env(&args.data_dir, args.port);
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
        host: args.host,
        admin_token: args.admin_token.and_then(AdminToken::new),
        env,
        common,
        api,
        backends,
        web_dir,
        data_dir: args.data_dir,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
