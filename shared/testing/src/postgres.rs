//! The PostgreSQL server the tests use: `TEST_DATABASE_URL`, by default the
//! local one. Every test gets a database of its own, made fresh and dropped
//! when the test ends (also when it panics), so tests never see each other's
//! rows and the server is left as it was found.
//!
//! A server that cannot be reached fails the test, with one way out for a
//! developer without PostgreSQL: `CATDOG_SKIP_POSTGRES=1`, which is ignored
//! when `CI=true` and says loudly what it skipped.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::tcp_proxy::TcpProxy;

pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// A database of its own for one test, dropped with this value.
pub struct TestDatabase {
    pub name: String,
    /// The database's URL, for `catdog::store::connect`.
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// `None` only when the server is unreachable and skipping was asked for.
    pub async fn create() -> Option<Self> {
        let admin_url = server_url();
        let admin = match connect(&admin_url).await {
            Ok(client) => client,
            Err(e) => {
                unreachable_server(&admin_url, &e);
                return None;
            }
        };
        let name = unique_name();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        Some(Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        })
    }

    /// A proxy on loopback in front of the test server, and this database's
    /// URL through it: a test stops or freezes the proxy to stage an outage
    /// without touching the server everyone else's tests use.
    pub async fn behind_proxy(&self) -> (TcpProxy, String) {
        let proxy = TcpProxy::start(server_address().await).await;
        let url = through_loopback_port(&self.url, proxy.port());
        (proxy, url)
    }

    /// The schema versions recorded as applied, in order.
    pub async fn applied_migrations(&self) -> Vec<i64> {
        let client = connect(&self.url)
            .await
            .expect("connect to the test database");
        client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .expect("read schema_migrations")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context we could borrow (and possibly
        // while panicking), so the cleanup gets a thread and runtime of its own.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = connect(&admin_url).await.map_err(|e| e.to_string())?;
                // FORCE ends the store's pooled connections, which may
                // outlive the test body by a moment.
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: test database {} was not dropped: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Fails the test (or, outside CI and only when asked, skips it loudly).
pub fn unreachable_server(url: &str, error: &dyn std::fmt::Display) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = std::env::var("CATDOG_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    let shown = redact(url);
    if skip && !ci {
        eprintln!(
            "SKIPPED (CATDOG_SKIP_POSTGRES=1): PostgreSQL at {shown} is unreachable: {error}"
        );
        return;
    }
    panic!(
        "PostgreSQL at {shown} is unreachable: {error}. Start it or point TEST_DATABASE_URL at \
         one{}.",
        if ci {
            " (CI=true: a missing PostgreSQL is a failure)"
        } else {
            ", or set CATDOG_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
        }
    );
}

pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!(
        "catdog_test_{}_{micros}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where the test server listens (`TEST_DATABASE_URL`), for a proxy to
/// forward to.
async fn server_address() -> std::net::SocketAddr {
    let config: tokio_postgres::Config = server_url().parse().expect("TEST_DATABASE_URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("a proxy needs a TCP server, not {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve the test server")
        .next()
        .expect("an address for the test server")
}

/// The same URL (user, password, database, parameters) with the server at
/// `127.0.0.1:port`.
fn through_loopback_port(url: &str, port: u16) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find('/')
        .map_or(url.len(), |i| authority_start + i);
    let credentials = url[authority_start..authority_end]
        .rsplit_once('@')
        .map(|(c, _)| format!("{c}@"))
        .unwrap_or_default();
    format!(
        "{}{credentials}127.0.0.1:{port}{}",
        &url[..authority_start],
        &url[authority_end..]
    )
}

/// The same server URL naming another database.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    match url[authority_start..].find('@') {
        Some(at) => {
            let credentials = &url[authority_start..authority_start + at];
            match credentials.split_once(':') {
                Some((user, _)) => url.replacen(credentials, &format!("{user}:***"), 1),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}
