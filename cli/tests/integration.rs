//! `catdog`'s integration tests, built as one test binary: each file used to be its own
//! binary, each linking the whole crate and its dependencies.
//!
//! Run one file's tests with `cargo test --workspace --all-features --test
//! integration -- FILE::`.

mod exposure;
mod failed;
mod hostile;
mod local_serve;
mod model_commands;
mod operator;
mod overload;
mod public_answers;
mod relabel;
mod serve_pipeline;
mod serve_seeded;
mod storage_full;
