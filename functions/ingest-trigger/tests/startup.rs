//! ingest-trigger refuses to start without somewhere to publish, and says
//! which setting is missing.

use std::process::Command;

fn run_without(missing: &str) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!(
        "ingest-trigger-startup-{}-{missing}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ingest-trigger"));
    command
        .env_clear()
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("MIGRATE_ON_START", "true")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("catdog.db").display()),
        )
        .env(
            "STORAGE_URL",
            format!("file://{}", dir.join("objects").display()),
        )
        .env("PUBSUB_TOPIC", "images")
        .env("GOOGLE_CLOUD_PROJECT", "gallery")
        // Nothing listens here; start-up must fail before serving anyway.
        .env("PUBSUB_ENDPOINT", "http://127.0.0.1:9")
        .env_remove(missing);
    let output = command.output().expect("run ingest-trigger");
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[test]
fn a_missing_topic_stops_start_up_naming_the_variable() {
    let output = run_without("PUBSUB_TOPIC");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PUBSUB_TOPIC: must be set"), "{stderr}");
}

#[test]
fn a_missing_project_stops_start_up_naming_the_variable() {
    let output = run_without("GOOGLE_CLOUD_PROJECT");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("GOOGLE_CLOUD_PROJECT: must be set"),
        "{stderr}"
    );
}
