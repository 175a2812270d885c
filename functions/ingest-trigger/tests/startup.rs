//! ingest-trigger refuses to start without somewhere to publish, and says
//! which setting is missing.

use catdog_testing::private_function;
use catdog_testing::service_process::ServiceProcess;

use std::path::Path;

fn run_without(missing: &str) -> std::process::Output {
    let dir = private_function::scratch_dir(&format!("ingest-trigger-startup-{missing}"));
    let mut env = private_function::local_store_env(&dir);
    env.extend([
        ("PUBSUB_TOPIC", "images".to_owned()),
        ("GOOGLE_CLOUD_PROJECT", "gallery".to_owned()),
        // Nothing listens here; start-up must fail before serving anyway.
        ("PUBSUB_ENDPOINT", "http://127.0.0.1:9".to_owned()),
    ]);
    env.retain(|(name, _)| *name != missing);
    let output = ServiceProcess::command(Path::new(env!("CARGO_BIN_EXE_ingest-trigger")), &env)
        .env("PORT", "0")
        .output()
        .expect("run ingest-trigger");
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
