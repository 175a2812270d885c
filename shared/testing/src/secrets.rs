//! The made-up secrets the secrets suites hand the gallery (a database
//! password inside `DATABASE_URL`, a `THECATAPI_KEY`), and the check that a
//! text shows neither.

pub const DB_PASSWORD: &str = "hunter2-db-s3cr3t";
pub const API_KEY: &str = "live_catapi_s3cr3t_0123456789";

/// Fails the test when `text` (`what` names it) shows either secret.
pub fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(DB_PASSWORD),
        "{what} shows the database password:\n{text}"
    );
    assert!(
        !text.contains(API_KEY),
        "{what} shows THECATAPI_KEY:\n{text}"
    );
}
