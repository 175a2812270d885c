use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use catdog::local::{self, AdminToken, LocalOptions, LocalSettings};
use catdog::startup::{Backends, init};
use secrecy::SecretString;

#[derive(clap::Args)]
pub struct Args {
    /// address `catdog serve` listens on; `0.0.0.0` shares the gallery on
    /// the network (its state-changing routes still answer only this machine,
    /// or holders of the admin token)
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on, instead of the PORT setting.
    #[arg(long)]
    port: Option<u16>,
    /// lets other machines call local mode's state-changing routes
    /// (`POST /ingest`, `POST /pubsub/push`) as `Authorization: Bearer TOKEN`;
    /// without it only loopback callers may
    #[arg(
        long,
        env = "CATDOG_ADMIN_TOKEN",
        hide_env_values = true,
        value_parser = |token: &str| Ok::<_, std::convert::Infallible>(SecretString::from(token)),
    )]
    admin_token: Option<SecretString>,
    /// Folder for the local database and pictures (ignored when DATABASE_URL
    /// and STORAGE_URL are set).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// the built web page `catdog serve` serves at `/`
    #[arg(long, env = "CATDOG_WEB_DIR", default_value = "frontend/build")]
    web_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut settings: LocalSettings = local::local_settings(&args.data_dir)?;
    if let Some(port) = args.port {
        settings.common.port = port;
    }
    init(&settings.common);
    let backends = Backends::connect(&settings.common, true)
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
        settings,
        backends,
        web_dir,
        data_dir: args.data_dir,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
