//! The floor of the listing benchmark (issue 7): an axum server on the same
//! runtime and HTTP stack as list-images, answering a fixed JSON body the size
//! of a small listing page with no store, no logging and no middleware. No
//! endpoint of ours can beat it on the same machine under the same load, so
//! bench/run.sh reports each listing as a ratio of it.
//!
//!   bench-floor [PORT]    # default 8090; GET /images answers the body

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// About the size of `GET /images?limit=10` with a few pictures: the floor
/// should pay for the bytes a real answer sends, not just for a tiny reply.
const BODY: &str = concat!(
    r#"{"cat_images":["#,
    r#"{"id":"0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7a","created_at":"2026-11-25T19:00:00.000000"},"#,
    r#"{"id":"0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7b","created_at":"2026-11-25T19:00:01.000000"},"#,
    r#"{"id":"0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7c","created_at":"2026-11-25T19:00:02.000000"}"#,
    r#"],"dog_images":["#,
    r#"{"id":"0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7d","created_at":"2026-11-25T19:00:03.000000"},"#,
    r#"{"id":"0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7e","created_at":"2026-11-25T19:00:04.000000"},"#,
    r#"{"id":"0192f1d6-7c3a-7b4e-9a51-2f1c0d9e8b7f","created_at":"2026-11-25T19:00:05.000000"}"#,
    r#"],"total_images":6,"last_retrieve_at":"2026-11-25T19:00:05.000000"}"#
);

async fn images() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    ([(header::CONTENT_TYPE, "application/json")], BODY)
}

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 8090,
        Some(Ok(port)) => port,
        Some(Err(e)) => {
            eprintln!("bench-floor: the port must be a number from 0 to 65535: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-floor: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async move {
        let app = Router::new()
            .route("/images", get(images))
            .route("/healthz", get(|| async { "ok" }));
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        axum::serve(listener, app).await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-floor: cannot serve on 127.0.0.1:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}
