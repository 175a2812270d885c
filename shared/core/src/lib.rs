//! What every part of CatDog Gallery agrees on: the domain types (ids,
//! categories, cursors, records), the settings, and the message between
//! ingestion and classification with the publisher port that carries it.
//! No I/O lives here.

pub mod config;
pub mod domain;
pub mod pubsub;
