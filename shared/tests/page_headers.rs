//! The page as local mode serves it (`catdog serve`'s page routes over a
//! built page) carries its security headers on every answer: a
//! Content-Security-Policy that forbids inline script and framing, a
//! referrer policy, nosniff. README documents the same headers for the
//! bucket/CDN, and says so word for word.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catdog::local::{PAGE_CSP, PAGE_HEADERS, PageConfig, page_routes};
use tower::ServiceExt;

fn built_page() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("catdog-page-{}", catdog::domain::ImageId::new()));
    std::fs::create_dir_all(dir.join("_app/immutable")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><html><head><script src=\"./_app/immutable/bootstrap.0123456789.js\"></script></head><body></body></html>",
    )
    .unwrap();
    std::fs::write(
        dir.join("_app/immutable/bootstrap.0123456789.js"),
        "void 0;\n",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn every_answer_of_the_page_carries_the_security_headers() {
    let dir = built_page();
    let router = page_routes(
        Some(dir.clone()),
        PageConfig {
            api_base_url: String::new(),
            media_base_url: "/media".to_owned(),
            refresh_interval_secs: 60,
        },
    );
    for path in [
        "/",
        "/index.html",
        "/a/shared/link/to/a/picture",
        "/config.json",
        "/_app/immutable/bootstrap.0123456789.js",
        "/missing.js",
    ] {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(
            response.status() == StatusCode::OK || response.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            response.status()
        );
        let header = |name: &str| header_of(&response, name);
        let csp = header("content-security-policy");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(directives.contains(&"script-src 'self'"), "{path}: {csp}");
        assert!(
            directives.contains(&"frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(directives.contains(&"object-src 'none'"), "{path}: {csp}");
        // No inline or eval'd script; inline styles are allowed (local.rs says why).
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert!(
            directives
                .iter()
                .filter(|d| d.starts_with("script-src") || d.starts_with("default-src"))
                .all(|d| !d.contains("unsafe-inline")),
            "{path}: {csp}"
        );
        assert_eq!(
            header("referrer-policy"),
            "strict-origin-when-cross-origin",
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn readme_documents_the_headers_local_mode_sends() {
    let readme = include_str!("../../README.md");
    for (name, value) in PAGE_HEADERS {
        let line = format!("{}: {value}", canonical(name.as_str()));
        assert!(
            readme.contains(&line),
            "README.md's security headers do not include `{line}` (local.rs sends it)"
        );
    }
    assert!(readme.contains(&format!("Content-Security-Policy: {PAGE_CSP}")));
}

/// `content-security-policy` → `Content-Security-Policy`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

async fn get(router: &axum::Router, path: &str) -> axum::response::Response {
    router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

fn header_of(response: &axum::response::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn local_page(dir: &std::path::Path) -> axum::Router {
    page_routes(
        Some(dir.to_path_buf()),
        PageConfig {
            api_base_url: String::new(),
            media_base_url: "/media".to_owned(),
            refresh_interval_secs: 60,
        },
    )
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_unknown_paths_are_404() {
    let dir = built_page();
    std::fs::write(
        dir.join("404.html"),
        "<!doctype html><title>Not found</title>",
    )
    .unwrap();
    let router = local_page(&dir);

    let asset = get(&router, "/_app/immutable/bootstrap.0123456789.js").await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        header_of(&asset, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    // The page itself and a missing asset are not kept forever.
    let page = get(&router, "/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(!header_of(&page, "cache-control").contains("immutable"));
    let missing = get(&router, "/_app/immutable/gone.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(!header_of(&missing, "cache-control").contains("immutable"));

    // An unknown path is the build's 404 page with status 404, not the gallery.
    let unknown = get(&router, "/nonexistent").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body = axum::body::to_bytes(unknown.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("Not found"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_pages_text_is_sent_gzipped_to_browsers_that_take_it() {
    let dir = built_page();
    let script = "export function greet(name) { return `hello, ${name}`; }\n".repeat(200);
    std::fs::write(dir.join("_app/immutable/app.0123456789.js"), &script).unwrap();
    let router = local_page(&dir);
    let fetch = |encoding: Option<&'static str>| {
        let router = router.clone();
        async move {
            let mut request = Request::get("/_app/immutable/app.0123456789.js");
            if let Some(encoding) = encoding {
                request = request.header("accept-encoding", encoding);
            }
            let response = router
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (headers, body)
        }
    };

    let (headers, body) = fetch(Some("gzip, deflate, br")).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(
        headers["vary"]
            .to_str()
            .unwrap()
            .contains("accept-encoding"),
        "{headers:?}"
    );
    assert_eq!(&body[..2], b"\x1f\x8b", "a gzip stream");
    assert!(body.len() * 10 < script.len(), "{} bytes", body.len());
    assert_eq!(
        headers["cache-control"], "public, max-age=31536000, immutable",
        "still kept for good"
    );

    // A client that does not say it takes gzip gets the file as it is.
    let (headers, body) = fetch(None).await;
    assert!(headers.get("content-encoding").is_none(), "{headers:?}");
    assert_eq!(body, script.as_bytes());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_api_answer_says_nosniff_and_a_referrer_policy() {
    use catdog::api::{ApiState, router};
    use catdog::store::{ImageStore, SqliteStore};
    let dir = std::env::temp_dir().join(format!("catdog-api-{}", catdog::domain::ImageId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(dir.join("db.sqlite").to_str().unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let vars = catdog::config::Vars::from_map::<[(&str, &str); 0], _, _>([]);
    let api = router(ApiState::new(
        std::sync::Arc::new(store),
        catdog::config::parse(&vars).unwrap(),
    ));
    for (path, status) in [
        ("/images", StatusCode::OK),
        ("/images?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/images?category=cat", StatusCode::OK),
        ("/api/v1/images?limit=0", StatusCode::BAD_REQUEST),
        ("/api/v1/images/not-an-id", StatusCode::NOT_FOUND),
        ("/api/v1/stats", StatusCode::OK),
        ("/api/v1/openapi.json", StatusCode::OK),
    ] {
        let response = get(&api, path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            header_of(&response, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(
            header_of(&response, "referrer-policy"),
            "strict-origin-when-cross-origin",
            "{path}"
        );
    }
    // The stats are as fresh as a listing, and say so.
    let stats = get(&api, "/api/v1/stats").await;
    assert_eq!(
        header_of(&stats, "cache-control"),
        "public, max-age=5, must-revalidate"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
