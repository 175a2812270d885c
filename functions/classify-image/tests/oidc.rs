//! The classify-image binary with `REQUIRE_OIDC=true`, as Terraform runs it:
//! `POST /pubsub/push` only for the push subscription's identity token, the
//! health checks open, and the refusals logged with their reason but never
//! with the token. Keys and tokens are made by the test (shared/tests/support).
//! Needs `.cache/model/backbone.onnx` (model/build.sh).

#[path = "../../../shared/tests/support/oidc_issuer.rs"]
mod oidc_issuer;
#[path = "../../../shared/tests/support/service_process.rs"]
mod service_process;

use std::path::{Path, PathBuf};

use oidc_issuer::{AUDIENCE, CALLER, JwksServer, SigningKey};
use reqwest::StatusCode;
use service_process::ServiceProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_needs_the_push_identity_token_and_the_log_never_shows_a_token() {
    let dir = std::env::temp_dir().join(format!("classify-image-oidc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("incoming")).unwrap();
    let key = SigningKey::generate("push-key");
    let jwks = JwksServer::start(&[&key]).await;
    let env = [
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("catdog.db").display()),
        ),
        ("MIGRATE_ON_START", "true".to_owned()),
        (
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        ),
        ("MODEL_DIR", model_dir().display().to_string()),
        ("REQUIRE_OIDC", "true".to_owned()),
        ("OIDC_AUDIENCE", AUDIENCE.to_owned()),
        ("OIDC_ALLOWED_EMAILS", CALLER.to_owned()),
        ("OIDC_JWKS_URL", jwks.url()),
    ];
    let mut service = ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_classify-image")),
        &env,
        dir.join("classify-image.log"),
    )
    .await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let status = client
            .get(format!("{}{path}", service.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{path} needs no token");
    }

    let cases = oidc_issuer::cases(&key);
    // Not a push envelope: past the token check, the handler answers 400.
    let url = format!("{}/pubsub/push", service.base);
    oidc_issuer::send_cases(&client, &url, "{}", StatusCode::BAD_REQUEST, &cases).await;
    oidc_issuer::check_log(&service.stop(), &cases);
    let _ = std::fs::remove_dir_all(&dir);
}

fn model_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = match std::env::var_os("MODEL_DIR").filter(|v| !v.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root.join(dir),
        None => root.join(".cache/model"),
    };
    assert!(
        dir.join("backbone.onnx").is_file(),
        "{} is missing: build the model with model/build.sh",
        dir.join("backbone.onnx").display()
    );
    dir
}
