//! CatDog Gallery's library: everything the three functions and the `catdog`
//! command share. Binaries only read configuration, call into here and serve.

pub mod api;
pub mod auth;
pub mod classifier;
pub mod classify;
pub mod config;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod local;
pub mod objects;
pub mod pubsub;
pub mod queue;
pub mod startup;
pub mod store;
pub mod telemetry;
