//! Nothing of the operator's reaches a public answer: `catdog serve` with a
//! folder source at a private path and a generator whose URL carries a
//! token, both failing. The stats still name both sources as failing, with
//! a kind from a fixed vocabulary; neither the path nor the token appears in
//! any public answer, nor in the log.

use catdog_testing::model::model_dir;
use catdog_testing::postgres;
use catdog_testing::service_process;
use catdog_testing::stats;

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use service_process::{ServiceProcess, http_client};

const PRIVATE_PATH: &str = "/some/private/path";
const SECRET: &str = "SECRET-7f3a";

async fn nothing_private_in_public_answers(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        (
            "INGEST_SOURCES",
            format!("folder:{PRIVATE_PATH},generator:http://127.0.0.1:1/gen?token={SECRET}"),
        ),
        ("INGEST_INTERVAL_SECS", "3600".to_owned()),
        ("MODEL_DIR", model_dir().display().to_string()),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
        env.push((
            "STORAGE_URL",
            format!("file://{}", dir.path().join("objects").display()),
        ));
    }
    let mut command = ServiceProcess::command(Path::new(env!("CARGO_BIN_EXE_catdog")), &env);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--web-dir")
        .arg(dir.path().join("no-page"))
        .current_dir(dir.path());
    let mut serve = ServiceProcess::spawn(command, dir.path().join("serve.log"));
    serve.wait_until_ok("/readyz").await;
    let client = http_client();

    // One run the test waits for (the one at start-up may still be going).
    let run = client
        .post(format!("{}/ingest", serve.base))
        .send()
        .await
        .unwrap();
    let run_status = run.status();
    let run_body = run.text().await.unwrap();
    assert!(
        run_status == StatusCode::OK || run_status == StatusCode::CONFLICT,
        "{run_status}: {run_body}"
    );

    // Whichever run it was, wait until both sources have a recorded result.
    stats::wait_until(
        &client,
        &serve.base,
        std::time::Duration::from_secs(90),
        |stats| stats["sources"].as_array().is_some_and(|s| s.len() == 2),
        || "no ingestion run finished".to_owned(),
    )
    .await;

    let mut answers = vec![("POST /ingest".to_owned(), run_body)];
    for path in [
        "/api/v1/stats",
        "/api/v1/images",
        "/api/v1/images?category=other",
        "/images",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
    ] {
        let answer = client
            .get(format!("{}{path}", serve.base))
            .send()
            .await
            .unwrap();
        answers.push((format!("GET {path}"), answer.text().await.unwrap()));
    }
    for (what, body) in &answers {
        for private in [PRIVATE_PATH, SECRET, "token="] {
            assert!(!body.contains(private), "{what} shows {private}: {body}");
        }
    }

    let stats: Value = serde_json::from_str(&answers[1].1).unwrap();
    let error_of = |name: &str| -> String {
        stats["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no source {name} in {stats}"))["last_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} is not failing in {stats}"))
            .to_owned()
    };
    assert_eq!(error_of("folder"), "listing: unreadable file");
    assert_eq!(error_of("generator"), "picture: unreachable");

    let log = serve.stop();
    assert!(!log.contains(SECRET), "the log shows the token: {log}");
    // The operator's log still says what failed, with the folder's path.
    assert!(
        log.contains("source failed") && log.contains(PRIVATE_PATH),
        "{log}"
    );
    assert!(log.contains("picture not fetched"), "{log}");
}

#[tokio::test]
async fn sqlite_public_answers_carry_no_private_path_or_token() {
    nothing_private_in_public_answers(None).await;
}

#[tokio::test]
async fn postgres_public_answers_carry_no_private_path_or_token() {
    let Some(db) = postgres::TestDatabase::create().await else {
        return;
    };
    nothing_private_in_public_answers(Some(db.url.clone())).await;
}
