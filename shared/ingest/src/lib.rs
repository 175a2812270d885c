//! Ingestion: fetch pictures from the configured sources, keep each new one
//! once (original first, then its pending row), and publish one message per
//! picture for classification.
//!
//! ```text
//! sources (thecatapi, dogceo, generator:URL, folder:PATH)
//!    └─ Fetcher (timeouts, size limit, retries, no private redirects)
//!        └─ Ingestor::run_once: lease → digest dedup → object → row → publish
//!           → sweeps (republish or give up; delete orphan objects)
//!            └─ POST /ingest (ingest-trigger), local mode's timer, `catdog import`
//! ```
//!
//! Callers build one [`Ingestor`] per process and call [`Ingestor::run_once`]
//! whenever a run is due; overlapping runs, in this process or another, are
//! kept apart by the database lease.

mod config;
mod fetch;
pub mod orphans;
mod routes;
mod run;
mod sources;

pub use config::{IngestConfig, IngestSettings, SourceList, SourceSpec};
pub use fetch::{FetchError, FetchOptions, Fetcher};
pub use routes::routes;
pub use run::{
    IngestError, IngestProgress, IngestSummary, Ingestor, NoProgress, PictureOutcome, SourceFailure,
};
pub use sources::SourceError;
