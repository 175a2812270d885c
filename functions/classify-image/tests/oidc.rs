//! The classify-image binary with `REQUIRE_OIDC=true`, as Terraform runs it:
//! `POST /pubsub/push` only for the push subscription's identity token, the
//! health checks open, and the refusals logged with their reason but never
//! with the token. Keys and tokens are made by the test (shared/testing).
//! Needs `.cache/model/backbone.onnx` (model/build.sh).

// Only its model_dir() here.
use catdog_testing::model;
use catdog_testing::private_function;

use std::path::Path;

use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_needs_the_push_identity_token_and_the_log_never_shows_a_token() {
    let dir = private_function::scratch_dir("classify-image-oidc");
    let model_dir = model::model_dir();
    assert!(
        model_dir.join("backbone.onnx").is_file(),
        "{} is missing: build the model with model/build.sh",
        model_dir.join("backbone.onnx").display()
    );
    let mut env = private_function::local_store_env(&dir);
    env.push(("MODEL_DIR", model_dir.display().to_string()));
    // Not a push envelope: past the token check, the handler answers 400.
    private_function::check_private_function(
        Path::new(env!("CARGO_BIN_EXE_classify-image")),
        &dir,
        env,
        "/pubsub/push",
        "{}",
        StatusCode::BAD_REQUEST,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
