//! The check both private functions (ingest-trigger, classify-image) must
//! pass when run as Terraform runs them, with `REQUIRE_OIDC=true`: health
//! checks open to anyone, the private route only for the expected caller's
//! identity token, and every refusal logged with its reason but never with
//! the token. Included beside `oidc_issuer` and `service_process`.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;

use crate::oidc_issuer::{self, AUDIENCE, CALLER, JwksServer, SigningKey};
use crate::service_process::ServiceProcess;

/// A scratch folder for one test, empty, with an `incoming` subfolder (a
/// folder source with nothing in it).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("incoming")).unwrap();
    dir
}

/// The settings every function needs in a test: SQLite and a folder store in
/// `dir`, migrated at start.
pub fn local_store_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("catdog.db").display()),
        ),
        ("MIGRATE_ON_START", "true".to_owned()),
        (
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        ),
    ]
}

/// Fails the test unless `/healthz` and `/readyz` answer 200 to a request
/// without a token: the platform's probes carry none.
pub async fn health_checks_need_no_token(client: &reqwest::Client, base: &str) {
    for path in ["/healthz", "/readyz"] {
        let status = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{path} needs no token");
    }
}

/// Starts `binary` with `env` plus the OIDC settings (our own keys URL),
/// checks the health routes need no token, sends every token case of
/// `oidc_issuer::cases` to `POST route` with `body` (`accepted` is the answer
/// past the token check), then stops it and checks its log.
pub async fn check_private_function(
    binary: &Path,
    dir: &Path,
    mut env: Vec<(&'static str, String)>,
    route: &str,
    body: &'static str,
    accepted: StatusCode,
) {
    let key = SigningKey::generate("caller-key");
    let jwks = JwksServer::start(&[&key]).await;
    env.extend([
        ("REQUIRE_OIDC", "true".to_owned()),
        ("OIDC_AUDIENCE", AUDIENCE.to_owned()),
        ("OIDC_ALLOWED_EMAILS", CALLER.to_owned()),
        ("OIDC_JWKS_URL", jwks.url()),
    ]);
    let name = binary.file_name().unwrap().to_string_lossy().into_owned();
    let mut service = ServiceProcess::start(binary, &env, dir.join(format!("{name}.log"))).await;
    let client = reqwest::Client::new();
    health_checks_need_no_token(&client, &service.base).await;

    let cases = oidc_issuer::cases(&key);
    let url = format!("{}{route}", service.base);
    oidc_issuer::send_cases(&client, &url, body, accepted, &cases).await;
    oidc_issuer::check_log(&service.stop(), &cases);
}
