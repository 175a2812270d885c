//! The library's integration tests, one module per capability, built as one
//! test binary: each file used to be its own binary, and linking eighteen
//! binaries against the whole library cost more than running them.
//!
//! Run one module with `cargo test --workspace --all-features --test
//! integration -- store_contract::`.

mod classifier;
mod classify;
mod faults_storage;
mod hostile_http;
mod hostile_pictures;
mod ingest_fetch;
mod ingest_run;
mod listing_fast_lane;
mod listing_freshness;
mod object_store;
mod oidc;
mod openapi_contract;
mod page_headers;
mod pipeline_cloud;
mod pipeline_queue;
mod pubsub_publish;
mod secrets;
mod store_contract;
mod sweeps;
