//! Settings, read from environment variables and checked at start-up.
//!
//! Each binary has one settings struct, composed with `#[command(flatten)]`
//! from the capability groups it runs (this module's [`CommonConfig`],
//! [`ApiConfig`] and [`MaxImageBytes`]; ingestion's, classification's,
//! the identity-token check's and the publisher's in their crates). Every
//! variable is declared once, as a clap argument with its `env` name, default,
//! range and meaning; [`parse`] reads a struct, and [`settings`] makes the
//! table of every variable (`catdog settings`, README.md) from the same
//! declarations.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};
use secrecy::{ExposeSecret as _, SecretString};

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
    pub const ALL: [Binary; 4] = [
        Binary::ListImages,
        Binary::IngestTrigger,
        Binary::ClassifyImage,
        Binary::Catdog,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Binary::ListImages => "list-images",
            Binary::IngestTrigger => "ingest-trigger",
            Binary::ClassifyImage => "classify-image",
            Binary::Catdog => "catdog",
        }
    }
}

/// A setting that is present but wrong. Its message is one line naming the
/// variable, which is what start-up prints before exiting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// Where settings are read from: the process environment, or a map (tests).
/// Values are trimmed, and one that is empty or only spaces counts as unset.
/// Its `Debug` output shows the names only, never the values (some are
/// secrets).
#[derive(Clone, Default)]
pub struct Vars {
    map: Option<HashMap<String, String>>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.map {
            None => f.write_str("Vars(process)"),
            Some(map) => {
                let mut names: Vec<&String> = map.keys().collect();
                names.sort();
                f.debug_tuple("Vars").field(&names).finish()
            }
        }
    }
}

impl Vars {
    /// The process environment.
    pub fn process() -> Self {
        Self { map: None }
    }

    /// These variables only, ignoring the process environment.
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            map: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        let value = match &self.map {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Reads the settings group (or a binary's whole settings) `S` from `vars`,
/// each variable through its clap argument: default, range and parser.
///
/// clap would read the environment itself, but it takes an empty variable as
/// a value and reads only the process's: here each variable is looked up in
/// `vars` (empty counts as unset, as it always has) and handed to clap as its
/// argument, so tests and local mode can give a map. The functions' command
/// line is not read at all: Cloud Run passes none, and settings come from the
/// environment alone.
pub fn parse<S: clap::Args>(vars: &Vars) -> Result<S, ConfigError> {
    parse_with(vars, |command| command)
}

/// [`parse`], with the command adjusted first (local mode's defaults).
pub fn parse_with<S: clap::Args>(
    vars: &Vars,
    adjust: impl FnOnce(Command) -> Command,
) -> Result<S, ConfigError> {
    let command = adjust(S::augment_args(
        Command::new("settings")
            .disable_help_flag(true)
            .disable_version_flag(true),
    ));
    let declared = declared(&command);
    let mut command = command.mut_args(|arg| arg.env(None::<&'static str>));
    let mut argv: Vec<OsString> = vec!["settings".into()];
    for setting in &declared {
        if let Some(value) = vars.get(&setting.env) {
            argv.push(format!("--{}={value}", setting.long).into());
        }
    }
    let matches = command
        .try_get_matches_from_mut(argv)
        .map_err(|e| config_error(&declared, &e))?;
    <S as clap::FromArgMatches>::from_arg_matches(&matches).map_err(|e| config_error(&declared, &e))
}

/// One argument of a command that is a setting: it has an `env` name.
struct Declared {
    env: String,
    long: String,
    secret: bool,
}

fn declared(command: &Command) -> Vec<Declared> {
    command
        .get_arguments()
        .filter_map(|arg| {
            Some(Declared {
                env: arg.get_env()?.to_string_lossy().into_owned(),
                long: arg.get_long()?.to_owned(),
                secret: arg.is_hide_env_values_set(),
            })
        })
        .collect()
}

/// A clap error as one line naming the variable (clap names the argument,
/// which no one passed: the variables are handed to it as arguments).
fn config_error(declared: &[Declared], error: &clap::Error) -> ConfigError {
    let arg_text = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        Some(ContextValue::Strings(texts)) => texts.first().map(String::as_str),
        _ => None,
    };
    // `--port <PORT>`: the long name, then the value's name.
    let setting = arg_text.and_then(|text| {
        let long = text
            .trim_start_matches("--")
            .split([' ', '='])
            .next()
            .unwrap_or_default();
        declared.iter().find(|d| d.long == long)
    });
    let Some(setting) = setting else {
        return ConfigError::new("settings", error.kind().to_string());
    };
    let value = match error.get(ContextKind::InvalidValue) {
        // A secret's value is never repeated, not even in an error.
        Some(ContextValue::String(v)) if !setting.secret => format!("{v:?} is not valid: "),
        _ => String::new(),
    };
    let reason = match error.kind() {
        ErrorKind::MissingRequiredArgument => "must be set".to_owned(),
        ErrorKind::InvalidValue => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => {
                format!("{value}not one of {}", valid.join(", "))
            }
            _ => format!("{value}not one of the accepted values"),
        },
        _ => match std::error::Error::source(error) {
            Some(source) => format!("{value}{source}"),
            None => format!("{value}{}", error.kind()),
        },
    };
    ConfigError::new(setting.env.clone(), reason)
}

/// `true`, `1`, `yes` or `false`, `0`, `no`: how boolean settings are written.
pub fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("not a boolean (true or false)".to_owned()),
    }
}

/// An absolute `http://` or `https://` URL with a host: how every setting
/// that names a web address is checked (source APIs, the identity keys).
pub fn http_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} is not an http(s) URL"));
    }
    Ok(url)
}

fn database_url(raw: &str) -> Result<SecretString, String> {
    if ["postgres://", "postgresql://", "sqlite://"]
        .iter()
        .any(|scheme| raw.starts_with(scheme))
    {
        Ok(SecretString::from(raw))
    } else {
        // Not the value: it may hold a password.
        Err("must start with postgres:// or sqlite://".to_owned())
    }
}

fn storage_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("gs://") || raw.starts_with("file://") {
        Ok(raw.to_owned())
    } else {
        Err("must start with gs:// or file://".to_owned())
    }
}

/// `LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatSetting {
    Json,
    Pretty,
    Auto,
}

/// Settings every binary needs: where to listen, the database, the storage,
/// the logs. Its `Debug` output hides the database URL, which holds the
/// password.
#[derive(Clone, clap::Args)]
pub struct CommonConfig {
    /// TCP port to listen on (the functions: on all interfaces)
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// `postgres://…` (Cloud SQL: `postgres://USER:PASS@/DB?host=/cloudsql/PROJECT:REGION:INSTANCE`) or `sqlite://PATH`
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/catdog.db",
        hide_env_values = true,
        value_parser = database_url,
    )]
    pub database_url: SecretString,
    /// client connections held at once; at the cap, new ones wait in the listen queue (16 to 100000; unset: the open-file limit, which start-up raises to its hard limit, less a quarter and at least 64 files kept for the work, at most 10000)
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u64).range(16..=100_000).map(|n| n as usize),
    )]
    pub max_connections: Option<usize>,
    /// PostgreSQL connections per process
    #[arg(
        long = "database-pool-size",
        env = "DATABASE_POOL_SIZE",
        default_value = "8",
        value_parser = clap::value_parser!(u64).range(1..=512).map(|n| n as usize),
    )]
    pub pool_size: usize,
    /// how long to wait for the database before answering 503
    #[arg(
        long = "database-timeout-ms",
        env = "DATABASE_TIMEOUT_MS",
        default_value = "2000",
        value_parser = clap::value_parser!(u64).range(10..=600_000).map(Duration::from_millis),
    )]
    pub database_timeout: Duration,
    /// apply database migrations at start-up (safe with several instances); `catdog serve` always does
    #[arg(
        long,
        env = "MIGRATE_ON_START",
        default_value = "false",
        action = ArgAction::Set,
        value_parser = flag,
    )]
    pub migrate_on_start: bool,
    /// `gs://BUCKET[/PREFIX]` or `file://DIR`: where originals and thumbnails are kept
    #[arg(
        long,
        env = "STORAGE_URL",
        default_value = "file://data/objects",
        value_parser = storage_url,
    )]
    pub storage_url: String,
    /// Cloud Storage endpoint without credentials (tests: fake-gcs-server)
    #[arg(long, env = "STORAGE_ENDPOINT")]
    pub storage_endpoint: Option<String>,
    /// project of the topic; also names the project in log trace ids
    #[arg(long, env = "GOOGLE_CLOUD_PROJECT")]
    pub google_cloud_project: Option<String>,
    /// `json` (Cloud Logging), `pretty`, or `auto`: json unless stdout is a terminal
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormatSetting,
}

impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The scheme says which store; the rest may carry the password.
        let scheme = self
            .database_url
            .expose_secret()
            .split("://")
            .next()
            .unwrap_or_default();
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
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl CommonConfig {
    /// Local mode's defaults: the database and the pictures under `data_dir`
    /// unless `DATABASE_URL` and `STORAGE_URL` name other stores.
    pub fn local_defaults(command: Command, data_dir: &std::path::Path) -> Command {
        let data = data_dir.display().to_string();
        command
            .mut_arg("database_url", |arg: Arg| {
                arg.default_value(format!("sqlite://{data}/catdog.db"))
            })
            .mut_arg("storage_url", |arg: Arg| {
                arg.default_value(format!("file://{data}/objects"))
            })
    }
}

/// Settings of the read API.
#[derive(Clone, Debug, clap::Args)]
pub struct ApiConfig {
    /// URL prefix under which originals and thumbnails are served
    #[arg(
        long,
        env = "PUBLIC_STORAGE_BASE_URL",
        default_value = "/media",
        value_parser = clap::builder::StringValueParser::new()
            .map(|url| url.trim_end_matches('/').to_owned()),
    )]
    pub public_storage_base_url: String,
    /// default `limit` of `GET /images` (1 to 100)
    #[arg(
        long,
        env = "IMAGES_LIMIT",
        default_value = "10",
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(crate::domain::PageLimit::MAX))
            .try_map(|n| crate::domain::PageLimit::new(n).ok_or("must be 1 to 100")),
    )]
    pub images_limit: crate::domain::PageLimit,
    /// first pages of listings are kept rendered until the database reports a change; while that report is down (PostgreSQL's notification connection), this many milliseconds at most; `/api/v1/stats` is kept the same way and never longer than this (0 to 5000; 0: keep nothing)
    #[arg(
        long = "listing-cache-ms",
        env = "LISTING_CACHE_MS",
        default_value = "1000",
        value_parser = clap::value_parser!(u64).range(0..=5_000).map(Duration::from_millis),
    )]
    pub listing_cache: Duration,
    /// seconds between ingestions (the Scheduler's period; local mode's timer)
    #[arg(
        long = "ingest-interval-secs",
        env = "INGEST_INTERVAL_SECS",
        default_value = "60",
        value_parser = clap::value_parser!(u64).range(1..=86_400).map(Duration::from_secs),
    )]
    pub ingest_interval: Duration,
}

/// `MAX_IMAGE_BYTES`, read alike by ingestion (which refuses larger
/// downloads) and classification (which refuses larger originals): its own
/// group, so a binary that runs both declares it once.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct MaxImageBytes {
    /// largest picture accepted, in bytes
    #[arg(
        long,
        env = "MAX_IMAGE_BYTES",
        default_value = "20971520",
        value_parser = clap::value_parser!(u64).range(1024..=1 << 30),
    )]
    pub max_image_bytes: u64,
}

/// One environment variable the system reads, as its settings declare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    /// `None`: unset unless given.
    pub default: Option<String>,
    pub read_by: Vec<Binary>,
    /// Never logged, never shown (`hide_env_values` on its argument).
    pub secret: bool,
    pub meaning: String,
}

/// Every variable that the binaries' settings declare, in the order first
/// met: `readers` is each binary with the commands that hold its settings
/// (subcommands included). A variable declared by several binaries must be
/// declared alike (it is, when it comes from the same group).
pub fn settings(readers: &[(Binary, Vec<Command>)]) -> Vec<Setting> {
    let mut list: Vec<Setting> = Vec::new();
    for (binary, commands) in readers {
        for command in commands {
            collect(*binary, command, &mut list);
        }
    }
    for setting in &mut list {
        setting
            .read_by
            .sort_by_key(|b| Binary::ALL.iter().position(|a| a == b));
        setting.read_by.dedup();
    }
    list
}

fn collect(binary: Binary, command: &Command, list: &mut Vec<Setting>) {
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let name = env.to_string_lossy().into_owned();
        match list.iter_mut().find(|s| s.name == name) {
            Some(known) => known.read_by.push(binary),
            None => list.push(Setting {
                name,
                default: arg
                    .get_default_values()
                    .first()
                    .map(|d| d.to_string_lossy().into_owned()),
                read_by: vec![binary],
                secret: arg.is_hide_env_values_set(),
                meaning: arg.get_help().map(ToString::to_string).unwrap_or_default(),
            }),
        }
    }
    for sub in command.get_subcommands() {
        collect(binary, sub, list);
    }
}

/// The command that holds settings group `S`, for [`settings`].
pub fn command_of<S: clap::Args>(name: &'static str) -> Command {
    S::augment_args(Command::new(name))
}

/// The README's table of `settings`.
pub fn settings_markdown(settings: &[Setting]) -> String {
    let mut out =
        String::from("| variable | default | read by | meaning |\n| --- | --- | --- | --- |\n");
    for s in settings {
        let read_by: Vec<&str> = s.read_by.iter().map(Binary::name).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {}{} |\n",
            s.name,
            s.default
                .as_ref()
                .map_or("unset".to_owned(), |d| format!("`{d}`")),
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

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars::from_map(pairs.iter().copied())
    }

    #[test]
    fn defaults_make_a_working_local_config() {
        let common: CommonConfig = parse(&vars(&[])).unwrap();
        assert_eq!(common.port, 8080);
        assert!(common.database_url.expose_secret().starts_with("sqlite://"));
        assert_eq!(common.database_timeout, Duration::from_millis(2000));
        assert_eq!(common.log_format, LogFormatSetting::Auto);
        let api: ApiConfig = parse(&vars(&[])).unwrap();
        assert_eq!(api.images_limit.get(), 10);
        assert_eq!(api.public_storage_base_url, "/media");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse::<CommonConfig>(&vars(&[("PORT", "eighty")])).unwrap_err();
        assert_eq!(err.var, "PORT");
        assert!(err.to_string().starts_with("PORT: \"eighty\""), "{err}");
        let err = parse::<ApiConfig>(&vars(&[("IMAGES_LIMIT", "0")])).unwrap_err();
        assert_eq!(err.var, "IMAGES_LIMIT");
        assert!(err.reason.contains("1..=100"), "{err}");
        for (var, bad) in [
            ("DATABASE_URL", "mysql://x"),
            ("STORAGE_URL", "s3://bucket"),
            ("MIGRATE_ON_START", "maybe"),
            ("MAX_CONNECTIONS", "8"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_TIMEOUT_MS", "5"),
        ] {
            let err = parse::<CommonConfig>(&vars(&[(var, bad)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn empty_values_count_as_unset() {
        let common: CommonConfig = parse(&vars(&[("PORT", " "), ("MAX_CONNECTIONS", "")])).unwrap();
        assert_eq!((common.port, common.max_connections), (8080, None));
    }

    #[test]
    fn the_connection_cap_is_derived_unless_set() {
        let unset: CommonConfig = parse(&vars(&[])).unwrap();
        assert_eq!(unset.max_connections, None);
        let set: CommonConfig = parse(&vars(&[("MAX_CONNECTIONS", "300")])).unwrap();
        assert_eq!(set.max_connections, Some(300));
    }

    #[test]
    fn flags_read_as_they_always_have() {
        for (raw, want) in [("true", true), ("1", true), ("yes", true), ("no", false)] {
            let common: CommonConfig = parse(&vars(&[("MIGRATE_ON_START", raw)])).unwrap();
            assert_eq!(common.migrate_on_start, want, "{raw}");
        }
    }

    #[test]
    fn debug_output_and_errors_hide_the_database_password() {
        let vars = vars(&[(
            "DATABASE_URL",
            "postgres://catdog:hunter2-s3cr3t@/catdog?host=/cloudsql/p:r:i",
        )]);
        let shown = format!("{:?}", parse::<CommonConfig>(&vars).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://(secret)"), "{shown}");
        let shown = format!("{vars:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("DATABASE_URL"),
            "{shown}"
        );
        let err = parse::<CommonConfig>(&super::tests::vars(&[(
            "DATABASE_URL",
            "mysql://catdog:hunter2@db",
        )]))
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn local_mode_keeps_its_stores_in_its_folder_unless_told() {
        let dir = std::path::Path::new("/tmp/gallery");
        let local = |pairs: &[(&str, &str)]| -> CommonConfig {
            parse_with(&vars(pairs), |c| CommonConfig::local_defaults(c, dir)).unwrap()
        };
        let common = local(&[]);
        assert_eq!(
            common.database_url.expose_secret(),
            "sqlite:///tmp/gallery/catdog.db"
        );
        assert_eq!(common.storage_url, "file:///tmp/gallery/objects");
        let common = local(&[("STORAGE_URL", "gs://bucket")]);
        assert_eq!(common.storage_url, "gs://bucket");
    }

    #[test]
    fn the_table_takes_names_defaults_and_secrets_from_the_declarations() {
        let list = settings(&[
            (Binary::ListImages, vec![command_of::<CommonConfig>("a")]),
            (
                Binary::Catdog,
                vec![
                    command_of::<ApiConfig>("b"),
                    command_of::<CommonConfig>("c"),
                ],
            ),
        ]);
        let port = list.iter().find(|s| s.name == "PORT").unwrap();
        assert_eq!(port.default.as_deref(), Some("8080"));
        assert_eq!(port.read_by, [Binary::ListImages, Binary::Catdog]);
        let database = list.iter().find(|s| s.name == "DATABASE_URL").unwrap();
        assert!(database.secret);
        let limit = list.iter().find(|s| s.name == "IMAGES_LIMIT").unwrap();
        assert_eq!(limit.read_by, [Binary::Catdog]);
        assert_eq!(limit.meaning, "default `limit` of `GET /images` (1 to 100)");
    }
}
