//! classify-image's integration tests, built as one test binary: each file used to be its own
//! binary, each linking the whole crate and its dependencies.
//!
//! Run one file's tests with `cargo test --workspace --all-features --test
//! integration -- FILE::`.

mod faults;
mod oidc;
mod relabel;
