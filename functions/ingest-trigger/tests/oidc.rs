//! The ingest-trigger binary with `REQUIRE_OIDC=true`, as Terraform runs it:
//! `POST /ingest` only for Cloud Scheduler's identity token, the health
//! checks open, and the refusals logged with their reason but never with
//! the token. Keys and tokens are made by the test (shared/testing).

use catdog_testing::oidc_issuer;
use catdog_testing::private_function;
use catdog_testing::service_process::ServiceProcess;

use std::path::Path;

use oidc_issuer::CALLER;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_needs_the_schedulers_identity_token_and_the_log_never_shows_a_token() {
    let dir = private_function::scratch_dir("ingest-trigger-oidc");
    let mut env = private_function::local_store_env(&dir);
    env.extend([
        // An empty folder: a run is quick and publishes nothing.
        (
            "INGEST_SOURCES",
            format!("folder:{}", dir.join("incoming").display()),
        ),
        ("PUBSUB_TOPIC", "images".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", "catdog-test".to_owned()),
        ("PUBSUB_ENDPOINT", "http://127.0.0.1:9".to_owned()),
    ]);
    // A run over an empty folder: 200 with nothing fetched.
    private_function::check_private_function(
        Path::new(env!("CARGO_BIN_EXE_ingest-trigger")),
        &dir,
        env,
        "/ingest",
        "",
        StatusCode::OK,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn required_oidc_without_an_audience_stops_start_up_naming_the_variable() {
    let dir = private_function::scratch_dir("ingest-trigger-oidc-conf");
    let mut env = private_function::local_store_env(&dir);
    env.extend([
        ("PUBSUB_TOPIC", "images".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", "catdog-test".to_owned()),
        ("REQUIRE_OIDC", "true".to_owned()),
        ("OIDC_ALLOWED_EMAILS", CALLER.to_owned()),
    ]);
    let output = ServiceProcess::command(Path::new(env!("CARGO_BIN_EXE_ingest-trigger")), &env)
        .env("PORT", "0")
        .output()
        .expect("run ingest-trigger");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OIDC_AUDIENCE: must be set when REQUIRE_OIDC is true"),
        "{stderr}"
    );
}
