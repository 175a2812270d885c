//! The page's typed client is generated from `frontend/openapi.json`; this
//! test fails when that file no longer describes the API the server serves,
//! so a server change the page has not caught up with cannot slip through.
//! (The frontend's own unit test then checks its generated types against the
//! file.)

use std::path::Path;

#[test]
fn the_page_is_typed_against_the_api_the_server_serves() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend/openapi.json");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let committed: serde_json::Value =
        serde_json::from_str(&committed).expect("frontend/openapi.json is JSON");
    let served: serde_json::Value =
        serde_json::from_str(&catdog::api::openapi_json()).expect("the server's document is JSON");

    assert!(
        committed == served,
        "frontend/openapi.json differs from the server's OpenAPI document; refresh both with\n  \
         cargo run -p catdog-cli -- openapi > frontend/openapi.json && npm --prefix frontend run gen:api\n\
         and fix the page where its type check then fails"
    );
}
