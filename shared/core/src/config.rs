//! Settings, read from environment variables and checked at start-up.
//!
//! [`SETTINGS`] is the one list of every variable: its default, whether it is
//! a secret, and which binaries read it. README.md's table and the deployment
//! checks (`deploy/tests`) are held to it, so keep each entry on the lines of
//! the `setting!` form below.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The binaries that read settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    ListImages,
    IngestTrigger,
    ClassifyImage,
    /// `catdog serve` and the other `catdog` commands.
    Catdog,
}

impl Binary {
    pub fn name(&self) -> &'static str {
        match self {
            Binary::ListImages => "list-images",
            Binary::IngestTrigger => "ingest-trigger",
            Binary::ClassifyImage => "classify-image",
            Binary::Catdog => "catdog",
        }
    }
}

/// One environment variable the system reads.
#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    /// `None`: unset unless given.
    pub default: Option<&'static str>,
    pub read_by: &'static [Binary],
    /// Never logged, never shown.
    pub secret: bool,
    pub meaning: &'static str,
}

use Binary::{
    Catdog as CLI, ClassifyImage as CLASSIFY, IngestTrigger as INGEST, ListImages as LIST,
};

const ALL: &[Binary] = &[LIST, INGEST, CLASSIFY, CLI];

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "PORT",
        default: Some("8080"),
        read_by: ALL,
        secret: false,
        meaning: "TCP port to listen on (the functions: on all interfaces)",
    },
    Setting {
        name: "HOST",
        default: Some("127.0.0.1"),
        read_by: &[CLI],
        secret: false,
        meaning: "address `catdog serve` listens on; `0.0.0.0` shares the gallery on the network",
    },
    Setting {
        name: "CATDOG_ADMIN_TOKEN",
        default: None,
        read_by: &[CLI],
        secret: true,
        meaning: "lets other machines call local mode's state-changing routes as `Authorization: Bearer TOKEN`; without it only loopback callers may",
    },
    Setting {
        name: "DATABASE_URL",
        default: Some("sqlite://data/catdog.db"),
        read_by: ALL,
        secret: true,
        meaning: "`postgres://…` (Cloud SQL: `postgres://USER:PASS@/DB?host=/cloudsql/PROJECT:REGION:INSTANCE`) or `sqlite://PATH`",
    },
    Setting {
        name: "MAX_CONNECTIONS",
        default: None,
        read_by: ALL,
        secret: false,
        meaning: "client connections held at once; at the cap, new ones wait in the listen queue (16 to 100000; unset: the open-file limit, which start-up raises to its hard limit, less a quarter and at least 64 files kept for the work, at most 10000)",
    },
    Setting {
        name: "DATABASE_POOL_SIZE",
        default: Some("8"),
        read_by: ALL,
        secret: false,
        meaning: "PostgreSQL connections per process",
    },
    Setting {
        name: "DATABASE_TIMEOUT_MS",
        default: Some("2000"),
        read_by: ALL,
        secret: false,
        meaning: "how long to wait for the database before answering 503",
    },
    Setting {
        name: "MIGRATE_ON_START",
        default: Some("false"),
        read_by: ALL,
        secret: false,
        meaning: "apply database migrations at start-up (safe with several instances); `catdog serve` always does",
    },
    Setting {
        name: "STORAGE_URL",
        default: Some("file://data/objects"),
        read_by: ALL,
        secret: false,
        meaning: "`gs://BUCKET[/PREFIX]` or `file://DIR`: where originals and thumbnails are kept",
    },
    Setting {
        name: "STORAGE_ENDPOINT",
        default: None,
        read_by: ALL,
        secret: false,
        meaning: "Cloud Storage endpoint without credentials (tests: fake-gcs-server)",
    },
    Setting {
        name: "PUBLIC_STORAGE_BASE_URL",
        default: Some("/media"),
        read_by: &[LIST, CLI],
        secret: false,
        meaning: "URL prefix under which originals and thumbnails are served",
    },
    Setting {
        name: "IMAGES_LIMIT",
        default: Some("10"),
        read_by: &[LIST, CLI],
        secret: false,
        meaning: "default `limit` of `GET /images` (1 to 100)",
    },
    Setting {
        name: "LISTING_CACHE_MS",
        default: Some("1000"),
        read_by: &[LIST, CLI],
        secret: false,
        meaning: "first pages of listings are kept rendered until the database reports a change; while that report is down (PostgreSQL's notification connection), this many milliseconds at most; `/api/v1/stats` is kept the same way and never longer than this (0 to 5000; 0: keep nothing)",
    },
    Setting {
        name: "INGEST_INTERVAL_SECS",
        default: Some("60"),
        read_by: &[LIST, CLI],
        secret: false,
        meaning: "seconds between ingestions (the Scheduler's period; local mode's timer)",
    },
    Setting {
        name: "LOG_FORMAT",
        default: Some("auto"),
        read_by: ALL,
        secret: false,
        meaning: "`json` (Cloud Logging), `pretty`, or `auto`: json unless stdout is a terminal",
    },
    Setting {
        name: "MODEL_DIR",
        default: Some(".cache/model"),
        read_by: &[CLASSIFY, CLI],
        secret: false,
        meaning: "folder holding `backbone.onnx` (built by `model/build.sh`)",
    },
    Setting {
        name: "MAX_IMAGE_BYTES",
        default: Some("20971520"),
        read_by: &[INGEST, CLASSIFY, CLI],
        secret: false,
        meaning: "largest picture accepted, in bytes",
    },
    Setting {
        name: "MAX_IMAGE_PIXELS",
        default: Some("40000000"),
        read_by: &[CLASSIFY, CLI],
        secret: false,
        meaning: "largest picture accepted, in pixels, checked before decoding",
    },
    Setting {
        name: "INGEST_SOURCES",
        default: Some("thecatapi,dogceo"),
        read_by: &[INGEST, CLI],
        secret: false,
        meaning: "comma-separated sources: `thecatapi`, `dogceo`, `generator:URL`, `folder:PATH`",
    },
    Setting {
        name: "INGEST_BATCH_SIZE",
        default: Some("2"),
        read_by: &[INGEST, CLI],
        secret: false,
        meaning: "pictures asked of each source per run; a folder source gives its oldest files not yet taken, and all of them when this is unset",
    },
    Setting {
        name: "THECATAPI_BASE_URL",
        default: Some("https://api.thecatapi.com"),
        read_by: &[INGEST, CLI],
        secret: false,
        meaning: "base URL of The Cat API",
    },
    Setting {
        name: "THECATAPI_KEY",
        default: None,
        read_by: &[INGEST, CLI],
        secret: true,
        meaning: "API key sent as `x-api-key` to The Cat API",
    },
    Setting {
        name: "DOGCEO_BASE_URL",
        default: Some("https://dog.ceo"),
        read_by: &[INGEST, CLI],
        secret: false,
        meaning: "base URL of the Dog CEO API",
    },
    Setting {
        name: "PUBSUB_TOPIC",
        default: None,
        read_by: &[INGEST],
        secret: false,
        meaning: "topic id that ingest-trigger publishes one message per picture to",
    },
    Setting {
        name: "GOOGLE_CLOUD_PROJECT",
        default: None,
        read_by: &[INGEST, LIST, CLASSIFY],
        secret: false,
        meaning: "project of the topic; also names the project in log trace ids",
    },
    Setting {
        name: "PUBSUB_ENDPOINT",
        default: None,
        read_by: &[INGEST],
        secret: false,
        meaning: "Pub/Sub endpoint without credentials (tests: a loopback server)",
    },
    Setting {
        name: "REQUIRE_OIDC",
        default: Some("false"),
        read_by: &[INGEST, CLASSIFY],
        secret: false,
        meaning: "accept only callers with a valid Google-signed identity token (`/healthz` and `/readyz` stay open); `catdog serve` never asks for one",
    },
    Setting {
        name: "OIDC_AUDIENCE",
        default: None,
        read_by: &[INGEST, CLASSIFY],
        secret: false,
        meaning: "expected `aud` of identity tokens (the service URL)",
    },
    Setting {
        name: "OIDC_ALLOWED_EMAILS",
        default: None,
        read_by: &[INGEST, CLASSIFY],
        secret: false,
        meaning: "comma-separated service accounts allowed to call",
    },
    Setting {
        name: "OIDC_JWKS_URL",
        default: Some("https://www.googleapis.com/oauth2/v3/certs"),
        read_by: &[INGEST, CLASSIFY],
        secret: false,
        meaning: "where Google's token signing keys are published",
    },
];

/// A setting that is present but wrong. Its message is one line naming the
/// variable, which is what start-up prints before exiting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// Where settings are read from: the process environment, or a map in tests.
/// Its `Debug` output shows the names only, never the values (some are secrets).
#[derive(Clone, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.overrides {
            None => f.write_str("Env(process)"),
            Some(map) => {
                let mut names: Vec<&String> = map.keys().collect();
                names.sort();
                f.debug_tuple("Env").field(&names).finish()
            }
        }
    }
}

impl Env {
    pub fn process() -> Self {
        Self { overrides: None }
    }

    /// Settings from a map only, ignoring the process environment.
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            overrides: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    fn setting(name: &str) -> &'static Setting {
        SETTINGS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} is missing from config::SETTINGS"))
    }

    /// The raw value, or the default; empty counts as unset.
    pub fn raw(&self, name: &'static str) -> Option<String> {
        let value = match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value
            .filter(|v| !v.trim().is_empty())
            .or_else(|| Self::setting(name).default.map(str::to_owned))
    }

    pub fn string(&self, name: &'static str) -> Option<String> {
        self.raw(name)
    }

    /// Whether the operator gave a value (empty counts as unset), as opposed
    /// to the setting being left at its default.
    pub fn is_set(&self, name: &'static str) -> bool {
        Self::setting(name);
        let value = match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.is_some_and(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.raw(name).ok_or(ConfigError {
            var: name,
            reason: "must be set".to_owned(),
        })
    }

    pub fn parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.raw(name)
            .map(|raw| {
                raw.trim().parse::<T>().map_err(|e| ConfigError {
                    var: name,
                    reason: format!("{raw:?} is not valid: {e}"),
                })
            })
            .transpose()
    }

    /// A whole number within `range`.
    pub fn number(
        &self,
        name: &'static str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let n: u64 = self.parsed(name)?.ok_or(ConfigError {
            var: name,
            reason: "must be set".to_owned(),
        })?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError {
                var: name,
                reason: format!("{n} is out of range {}..={}", range.start(), range.end()),
            })
        }
    }

    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.raw(name).as_deref().map(str::trim) {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ConfigError {
                var: name,
                reason: format!("{other:?} is not a boolean (true or false)"),
            }),
        }
    }
}

/// Settings every binary needs: where to listen, the database, the storage.
/// Its `Debug` output hides the database URL, which holds the password.
#[derive(Clone)]
pub struct CommonConfig {
    pub port: u16,
    pub database_url: String,
    pub pool_size: usize,
    pub database_timeout: Duration,
    pub migrate_on_start: bool,
    pub storage_url: String,
    pub storage_endpoint: Option<String>,
    pub google_cloud_project: Option<String>,
    /// `MAX_CONNECTIONS`; `None`: derived from the open-file limit.
    pub max_connections: Option<usize>,
}

impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The scheme says which store; the rest may carry the password.
        let scheme = self.database_url.split("://").next().unwrap_or_default();
        f.debug_struct("CommonConfig")
            .field("port", &self.port)
            .field("database_url", &format_args!("{scheme}://(secret)"))
            .field("pool_size", &self.pool_size)
            .field("database_timeout", &self.database_timeout)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("storage_url", &self.storage_url)
            .field("storage_endpoint", &self.storage_endpoint)
            .field("google_cloud_project", &self.google_cloud_project)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl CommonConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let database_url = env.required("DATABASE_URL")?;
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite://"))
        {
            return Err(ConfigError {
                var: "DATABASE_URL",
                reason: "must start with postgres:// or sqlite://".to_owned(),
            });
        }
        let storage_url = env.required("STORAGE_URL")?;
        if !(storage_url.starts_with("gs://") || storage_url.starts_with("file://")) {
            return Err(ConfigError {
                var: "STORAGE_URL",
                reason: format!("{storage_url:?} must start with gs:// or file://"),
            });
        }
        Ok(Self {
            port: env.number("PORT", 0..=65535)? as u16,
            database_url,
            pool_size: env.number("DATABASE_POOL_SIZE", 1..=512)? as usize,
            database_timeout: Duration::from_millis(
                env.number("DATABASE_TIMEOUT_MS", 10..=600_000)?,
            ),
            migrate_on_start: env.flag("MIGRATE_ON_START")?,
            storage_url,
            storage_endpoint: env.string("STORAGE_ENDPOINT"),
            google_cloud_project: env.string("GOOGLE_CLOUD_PROJECT"),
            max_connections: match env.string("MAX_CONNECTIONS") {
                Some(_) => Some(env.number("MAX_CONNECTIONS", 16..=100_000)? as usize),
                None => None,
            },
        })
    }
}

/// Settings of the read API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub public_storage_base_url: String,
    pub images_limit: crate::domain::PageLimit,
    pub ingest_interval: Duration,
    /// How long a rendered first page may be kept while the store's change
    /// feed is not live (zero: pages are not kept at all).
    pub listing_cache: Duration,
}

impl ApiConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let limit = env.number("IMAGES_LIMIT", 1..=u64::from(crate::domain::PageLimit::MAX))?;
        Ok(Self {
            public_storage_base_url: env
                .required("PUBLIC_STORAGE_BASE_URL")?
                .trim_end_matches('/')
                .to_owned(),
            images_limit: crate::domain::PageLimit::new(limit as u32).ok_or(ConfigError {
                var: "IMAGES_LIMIT",
                reason: "must be 1 to 100".to_owned(),
            })?,
            ingest_interval: Duration::from_secs(env.number("INGEST_INTERVAL_SECS", 1..=86_400)?),
            listing_cache: Duration::from_millis(env.number("LISTING_CACHE_MS", 0..=5_000)?),
        })
    }
}

/// `MAX_IMAGE_BYTES`, read alike by ingestion (which refuses larger
/// downloads) and classification (which refuses larger originals).
pub fn max_image_bytes(env: &Env) -> Result<u64, ConfigError> {
    env.number("MAX_IMAGE_BYTES", 1024..=1 << 30)
}

/// The README's table of settings, made from [`SETTINGS`].
pub fn settings_markdown() -> String {
    let mut out =
        String::from("| variable | default | read by | meaning |\n| --- | --- | --- | --- |\n");
    for s in SETTINGS {
        let read_by: Vec<&str> = s.read_by.iter().map(Binary::name).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {}{} |\n",
            s.name,
            s.default.map_or("unset".to_owned(), |d| format!("`{d}`")),
            read_by.join(", "),
            s.meaning,
            if s.secret { " (secret)" } else { "" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_working_local_config() {
        let env = Env::from_map::<[(&str, &str); 0], _, _>([]);
        let common = CommonConfig::from_env(&env).unwrap();
        assert_eq!(common.port, 8080);
        assert!(common.database_url.starts_with("sqlite://"));
        let api = ApiConfig::from_env(&env).unwrap();
        assert_eq!(api.images_limit.get(), 10);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_map([("PORT", "eighty")]);
        let err = CommonConfig::from_env(&env).unwrap_err();
        assert_eq!(err.var, "PORT");
        assert!(err.to_string().starts_with("PORT: "));
        let env = Env::from_map([("IMAGES_LIMIT", "0")]);
        assert_eq!(ApiConfig::from_env(&env).unwrap_err().var, "IMAGES_LIMIT");
        let env = Env::from_map([("DATABASE_URL", "mysql://x")]);
        assert_eq!(
            CommonConfig::from_env(&env).unwrap_err().var,
            "DATABASE_URL"
        );
        let env = Env::from_map([("MIGRATE_ON_START", "maybe")]);
        assert_eq!(
            CommonConfig::from_env(&env).unwrap_err().var,
            "MIGRATE_ON_START"
        );
        let env = Env::from_map([("MAX_CONNECTIONS", "8")]);
        assert_eq!(
            CommonConfig::from_env(&env).unwrap_err().var,
            "MAX_CONNECTIONS"
        );
    }

    #[test]
    fn the_connection_cap_is_derived_unless_set() {
        let unset = Env::from_map::<[(&str, &str); 0], _, _>([]);
        assert_eq!(
            CommonConfig::from_env(&unset).unwrap().max_connections,
            None
        );
        let set = Env::from_map([("MAX_CONNECTIONS", "300")]);
        assert_eq!(
            CommonConfig::from_env(&set).unwrap().max_connections,
            Some(300)
        );
    }

    #[test]
    fn debug_output_hides_the_database_password() {
        let env = Env::from_map([(
            "DATABASE_URL",
            "postgres://catdog:hunter2-s3cr3t@/catdog?host=/cloudsql/p:r:i",
        )]);
        let shown = format!("{:?}", CommonConfig::from_env(&env).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://(secret)"), "{shown}");
        let shown = format!("{env:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("DATABASE_URL"),
            "{shown}"
        );
    }

    #[test]
    fn readme_lists_every_setting_as_the_code_does() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&settings_markdown()),
            "README.md's settings table is out of date: put `catdog settings` between its settings markers"
        );
    }

    #[test]
    fn every_setting_is_read_by_someone_and_named_once() {
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
        assert!(SETTINGS.iter().all(|s| !s.read_by.is_empty()));
    }
}
