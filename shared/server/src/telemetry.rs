//! Logging set up once per process: JSON lines in the shape Cloud Logging
//! reads (`severity`, `message`, fields, and the request's trace), or
//! human-readable lines on a terminal.

use std::fmt;
use std::io::IsTerminal;

use catdog_core::config::LogFormatSetting;
use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// What `LOG_FORMAT` asks for; `auto` is json unless stdout is a terminal.
    pub fn from_setting(setting: LogFormatSetting) -> Self {
        match setting {
            LogFormatSetting::Json => Self::Json,
            LogFormatSetting::Pretty => Self::Pretty,
            LogFormatSetting::Auto if std::io::stdout().is_terminal() => Self::Pretty,
            LogFormatSetting::Auto => Self::Json,
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`).
/// Calling it twice is harmless (tests do).
pub fn init(format: LogFormat, project: Option<String>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Pretty => builder.with_writer(std::io::stderr).try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(CloudLoggingFormat { project })
            .try_init(),
    };
}

/// Writes one JSON object per event. Fields of the enclosing spans are
/// merged in; a `trace_id` field becomes Cloud Logging's trace key, so every
/// line of one request is grouped with its trace.
struct CloudLoggingFormat {
    project: Option<String>,
}

fn severity(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARNING",
        tracing::Level::INFO => "INFO",
        tracing::Level::DEBUG | tracing::Level::TRACE => "DEBUG",
    }
}

#[derive(Default)]
struct FieldVisitor(Map<String, Value>);

impl tracing::field::Visit for FieldVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for CloudLoggingFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let fields = extensions
                    .get::<FormattedFields<N>>()
                    .and_then(|f| serde_json::from_str::<Value>(f).ok());
                if let Some(Value::Object(map)) = fields {
                    line.extend(map);
                }
            }
        }
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        line.extend(visitor.0);
        let message = line.remove("message").unwrap_or(Value::from(""));
        line.insert("message".to_owned(), message);
        line.insert(
            "severity".to_owned(),
            Value::from(severity(event.metadata().level())),
        );
        line.insert(
            "time".to_owned(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("target".to_owned(), Value::from(event.metadata().target()));
        if let Some(Value::String(trace)) = line.remove("trace_id") {
            let key = "logging.googleapis.com/trace";
            let value = match &self.project {
                Some(project) => format!("projects/{project}/traces/{trace}"),
                None => trace,
            };
            line.insert(key.to_owned(), Value::from(value));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The trace id of an incoming request: from W3C `traceparent`
/// (`00-TRACEID-SPANID-FLAGS`) or Google's `X-Cloud-Trace-Context`
/// (`TRACEID/SPANID;o=1`). Only well-formed hex ids are taken, so a caller
/// cannot inject text into our logs.
pub fn trace_id(headers: &http::HeaderMap) -> Option<String> {
    let valid = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        let mut parts = tp.split('-');
        if let (Some(_version), Some(id)) = (parts.next(), parts.next())
            && valid(id)
        {
            return Some(id.to_ascii_lowercase());
        }
    }
    let ctx = headers
        .get("x-cloud-trace-context")
        .and_then(|v| v.to_str().ok())?;
    let id = ctx.split('/').next()?;
    valid(id).then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_either_header() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            trace_id(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-cloud-trace-context",
            "105445AA7843BC8BF206B12000100000/1;o=1".parse().unwrap(),
        );
        assert_eq!(
            trace_id(&h).as_deref(),
            Some("105445aa7843bc8bf206b12000100000")
        );
        let mut h = http::HeaderMap::new();
        h.insert("x-cloud-trace-context", "\"}{injected/1".parse().unwrap());
        assert_eq!(trace_id(&h), None);
    }
}
