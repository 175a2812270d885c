//! What ingestion is told by its settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::fetch::FetchOptions;
use catdog_core::config::{MaxImageBytes, http_url};
use secrecy::SecretString;

/// One entry of `INGEST_SOURCES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// The Cat API: a JSON list of picture URLs, then each download.
    TheCatApi,
    /// The Dog CEO API: `{"message": [urls]}`, then each download.
    DogCeo,
    /// The original service's upstream: `POST URL` answers one picture, base64.
    Generator(Url),
    /// Every picture file under a folder (recursively), each stored once.
    Folder(PathBuf),
}

impl SourceSpec {
    /// The name the source is recorded under (images' `source`, the stats'
    /// source errors). Paths and generator URLs stay out of it: they are the
    /// operator's, and the stats are public.
    pub fn name(&self) -> &'static str {
        match self {
            SourceSpec::TheCatApi => "thecatapi",
            SourceSpec::DogCeo => "dogceo",
            SourceSpec::Generator(_) => "generator",
            SourceSpec::Folder(_) => "folder",
        }
    }

    /// Parses one `INGEST_SOURCES` entry.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        match entry {
            "thecatapi" => return Ok(SourceSpec::TheCatApi),
            "dogceo" => return Ok(SourceSpec::DogCeo),
            _ => {}
        }
        if let Some(url) = entry.strip_prefix("generator:") {
            let url = http_url(url)?;
            return Ok(SourceSpec::Generator(url));
        }
        if let Some(path) = entry.strip_prefix("folder:") {
            if path.trim().is_empty() {
                return Err("folder: needs a path".to_owned());
            }
            return Ok(SourceSpec::Folder(PathBuf::from(path.trim())));
        }
        Err(format!(
            "unknown source {entry:?}: expected thecatapi, dogceo, generator:URL or folder:PATH"
        ))
    }
}

/// Everything a run needs to know besides the stores and the publisher.
#[derive(Clone)]
pub struct IngestConfig {
    pub sources: Vec<SourceSpec>,
    /// Pictures asked of each network source per run.
    pub batch_size: u32,
    /// New pictures a folder source gives per run, its oldest files first;
    /// `None` takes every file not yet stored. Set from `INGEST_BATCH_SIZE`
    /// only when the operator sets it: a folder costs no one's rate limit,
    /// so by default it is taken whole.
    pub folder_batch_size: Option<u32>,
    pub max_image_bytes: u64,
    pub thecatapi_base_url: Url,
    pub thecatapi_key: Option<SecretString>,
    pub dogceo_base_url: Url,
    pub fetch: FetchOptions,
    /// The sweep republishes pending pictures whose message went out (or
    /// failed to) longer ago than this.
    pub republish_after: Duration,
    /// Publishes of one picture's message before the sweep gives up on it
    /// and marks it failed (each publish is itself delivered several times
    /// before it is dead-lettered).
    pub max_publishes: u32,
    /// A failed picture (our fault, never the picture's) is given another
    /// round of publishes this long after its last one, twice as long after
    /// each further round, at most `max_retries` rounds: a storage or
    /// database outage heals without an operator.
    pub retry_failed_after: Duration,
    pub max_retries: u32,
    /// Objects without a row younger than this are left alone by the
    /// orphan sweep: their row may still be on its way.
    pub orphan_grace: Duration,
    /// How far back (before the grace period) each run's orphan sweep looks.
    pub orphan_window: Duration,
    /// How long a run's lease lasts without being renewed; a run that dies
    /// blocks others for at most this long.
    pub lease_ttl: Duration,
    /// Pictures downloaded and stored at the same time.
    pub concurrency: usize,
}

impl fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestConfig")
            .field("sources", &self.sources)
            .field("batch_size", &self.batch_size)
            .field("folder_batch_size", &self.folder_batch_size)
            .field("max_image_bytes", &self.max_image_bytes)
            .field("thecatapi_base_url", &self.thecatapi_base_url.as_str())
            .field(
                "thecatapi_key",
                &self.thecatapi_key.as_ref().map(|_| "(secret)"),
            )
            .field("dogceo_base_url", &self.dogceo_base_url.as_str())
            .field("fetch", &self.fetch)
            .field("republish_after", &self.republish_after)
            .field("max_publishes", &self.max_publishes)
            .field("retry_failed_after", &self.retry_failed_after)
            .field("max_retries", &self.max_retries)
            .field("orphan_grace", &self.orphan_grace)
            .field("orphan_window", &self.orphan_window)
            .field("lease_ttl", &self.lease_ttl)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// `INGEST_SOURCES`: one or more [`SourceSpec`]s, comma-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceList(pub Vec<SourceSpec>);

impl SourceList {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let sources = raw
            .split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(SourceSpec::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if sources.is_empty() {
            return Err("names no source".to_owned());
        }
        Ok(Self(sources))
    }
}

/// Ingestion's settings, as declared ([`IngestSettings::config`] adds
/// `MAX_IMAGE_BYTES`, which classification reads too).
#[derive(Clone, Debug, clap::Args)]
pub struct IngestSettings {
    /// comma-separated sources: `thecatapi`, `dogceo`, `generator:URL`, `folder:PATH`
    #[arg(
        long,
        env = "INGEST_SOURCES",
        default_value = "thecatapi,dogceo",
        value_parser = SourceList::parse,
    )]
    pub ingest_sources: SourceList,
    /// pictures asked of each source per run (1 to 100; unset: 2); a folder source gives its oldest files not yet taken, and all of them when this is unset
    #[arg(
        long,
        env = "INGEST_BATCH_SIZE",
        value_parser = clap::value_parser!(u32).range(1..=100),
    )]
    pub ingest_batch_size: Option<u32>,
    /// base URL of The Cat API
    #[arg(
        long,
        env = "THECATAPI_BASE_URL",
        default_value = "https://api.thecatapi.com",
        value_parser = http_url,
    )]
    pub thecatapi_base_url: Url,
    /// API key sent as `x-api-key` to The Cat API
    #[arg(
        long,
        env = "THECATAPI_KEY",
        hide_env_values = true,
        value_parser = |key: &str| Ok::<_, std::convert::Infallible>(SecretString::from(key)),
    )]
    pub thecatapi_key: Option<SecretString>,
    /// base URL of the Dog CEO API
    #[arg(
        long,
        env = "DOGCEO_BASE_URL",
        default_value = "https://dog.ceo",
        value_parser = http_url,
    )]
    pub dogceo_base_url: Url,
}

impl IngestSettings {
    /// What a run is told: these settings, and every other value at its
    /// default.
    pub fn config(&self, max_image_bytes: MaxImageBytes) -> IngestConfig {
        let mut config = IngestConfig::new(self.ingest_sources.0.clone());
        if let Some(batch_size) = self.ingest_batch_size {
            config.batch_size = batch_size;
            // Set by the operator: folders too give at most this many.
            config.folder_batch_size = Some(batch_size);
        }
        config.max_image_bytes = max_image_bytes.max_image_bytes;
        config.thecatapi_base_url = self.thecatapi_base_url.clone();
        config.thecatapi_key = self.thecatapi_key.clone();
        config.dogceo_base_url = self.dogceo_base_url.clone();
        config
    }
}

impl IngestConfig {
    /// These sources with every other value at its default.
    pub fn new(sources: Vec<SourceSpec>) -> Self {
        Self {
            sources,
            batch_size: 2,
            folder_batch_size: None,
            max_image_bytes: 20 * 1024 * 1024,
            thecatapi_base_url: Url::parse("https://api.thecatapi.com").expect("a valid URL"),
            thecatapi_key: None,
            dogceo_base_url: Url::parse("https://dog.ceo").expect("a valid URL"),
            fetch: FetchOptions::default(),
            republish_after: Duration::from_secs(120),
            max_publishes: 5,
            // 15 min, 30, 1 h, 2 h: an outage of a few hours still heals.
            retry_failed_after: Duration::from_secs(15 * 60),
            max_retries: 4,
            orphan_grace: Duration::from_secs(300),
            orphan_window: Duration::from_secs(3600),
            lease_ttl: Duration::from_secs(120),
            concurrency: 4,
        }
    }

    /// The origins the operator configured. Only these may be on loopback or a
    /// private network: what a source answers (picture URLs, redirects) must
    /// lead to the public internet or back to the same configured origin.
    pub fn trusted_origins(&self) -> Vec<Url> {
        let mut origins = Vec::new();
        for spec in &self.sources {
            match spec {
                SourceSpec::TheCatApi => origins.push(self.thecatapi_base_url.clone()),
                SourceSpec::DogCeo => origins.push(self.dogceo_base_url.clone()),
                SourceSpec::Generator(url) => origins.push(url.clone()),
                SourceSpec::Folder(_) => {}
            }
        }
        origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catdog_core::config::{ConfigError, Vars, parse};

    fn config(vars: &[(&str, &str)]) -> Result<IngestConfig, ConfigError> {
        let vars = Vars::from_map(vars.iter().copied());
        let settings: IngestSettings = parse(&vars)?;
        Ok(settings.config(parse(&vars)?))
    }

    #[test]
    fn sources_parse_from_the_setting() {
        let config = config(&[(
            "INGEST_SOURCES",
            "thecatapi, dogceo,generator:http://127.0.0.1:9/gen,folder:../shared/data/images/dev",
        )])
        .unwrap();
        assert_eq!(config.sources.len(), 4);
        assert_eq!(config.sources[2].name(), "generator");
        assert_eq!(
            config.sources[3],
            SourceSpec::Folder("../shared/data/images/dev".into())
        );
        assert_eq!(config.batch_size, 2);
        assert_eq!(
            config.folder_batch_size, None,
            "unset: folders are taken whole"
        );
        assert_eq!(config.max_image_bytes, 20_971_520);
    }

    #[test]
    fn a_batch_size_the_operator_sets_limits_folders_too() {
        let set = config(&[("INGEST_SOURCES", "folder:/x"), ("INGEST_BATCH_SIZE", "7")]).unwrap();
        assert_eq!((set.batch_size, set.folder_batch_size), (7, Some(7)));
        // The default value written out is a choice too.
        let set = config(&[("INGEST_SOURCES", "folder:/x"), ("INGEST_BATCH_SIZE", "2")]).unwrap();
        assert_eq!(set.folder_batch_size, Some(2));
        let unset = config(&[("INGEST_SOURCES", "folder:/x"), ("INGEST_BATCH_SIZE", " ")]).unwrap();
        assert_eq!((unset.batch_size, unset.folder_batch_size), (2, None));
    }

    #[test]
    fn bad_sources_name_the_variable() {
        for bad in ["flickr", "generator:ftp://x", "folder:", ","] {
            let err = config(&[("INGEST_SOURCES", bad)]).unwrap_err();
            assert_eq!(err.var, "INGEST_SOURCES", "{bad}");
        }
        let err = config(&[("INGEST_BATCH_SIZE", "0")]).unwrap_err();
        assert_eq!(err.var, "INGEST_BATCH_SIZE");
        let err = config(&[("DOGCEO_BASE_URL", "dog.ceo")]).unwrap_err();
        assert_eq!(err.var, "DOGCEO_BASE_URL");
        let err = config(&[("MAX_IMAGE_BYTES", "12")]).unwrap_err();
        assert_eq!(err.var, "MAX_IMAGE_BYTES");
    }

    #[test]
    fn the_api_key_is_never_printed() {
        let vars = [("THECATAPI_KEY", "live_s3cr3t")];
        let config = config(&vars).unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let settings: IngestSettings = parse(&Vars::from_map(vars)).unwrap();
        assert!(!format!("{settings:?}").contains("s3cr3t"));
    }
}
