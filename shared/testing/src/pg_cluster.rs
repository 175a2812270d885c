//! A PostgreSQL server of the test's own (initdb + pg_ctl in a temporary
//! folder, on a free loopback port), so that a test can really stop the
//! database and start it again, as a restart or a failover of Cloud SQL
//! does, without touching the shared server everyone else's tests use.
//!
//! PostgreSQL refuses to run as root: when the tests run as root (CI does),
//! the server runs as the `postgres` user through `runuser`.
//!
//! The binaries come from `PG_BIN_DIR`, else `pg_config --bindir`, else the
//! newest `/usr/lib/postgresql/*/bin`. Without them the test fails, except
//! outside CI with `CATDOG_SKIP_POSTGRES=1`, which skips it loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Run the server as `postgres` (we are root).
    as_postgres: bool,
    running: bool,
}

impl PgCluster {
    /// Creates and starts a fresh cluster. `None` only when PostgreSQL is not
    /// installed and skipping was asked for.
    pub fn start() -> Option<Self> {
        let Some(bin) = binaries() else {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            let skip = std::env::var("CATDOG_SKIP_POSTGRES").is_ok_and(|v| v == "1");
            if skip && !ci {
                eprintln!("SKIPPED (CATDOG_SKIP_POSTGRES=1): PostgreSQL's initdb/pg_ctl not found");
                return None;
            }
            panic!(
                "PostgreSQL's server binaries (initdb, pg_ctl) were not found: install \
                 postgresql or set PG_BIN_DIR{}",
                if ci {
                    " (CI=true: a missing PostgreSQL is a failure)"
                } else {
                    ""
                }
            );
        };
        let dir = unique_dir();
        std::fs::create_dir_all(&dir).expect("create the cluster's folder");
        let as_postgres = running_as_root();
        if as_postgres {
            run(Command::new("chown").args(["postgres:", &dir.display().to_string()]));
        }
        let mut cluster = Self {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            running: false,
        };
        // Trust on loopback, as the shared test server; no fsync: the data
        // only has to survive a clean restart, not a power cut.
        let data = cluster.data_dir();
        run(cluster
            .tool("initdb")
            .args(["-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--no-sync", "--no-instructions"]));
        cluster.start_again();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the cluster is the
    /// test's own, so its default database is too.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The same URL with another port: a proxy in front of the server.
    pub fn url_through(&self, proxy_port: u16) -> String {
        self.url()
            .replace(&format!(":{}/", self.port), &format!(":{proxy_port}/"))
    }

    /// The test's own connection to the server, with the schema migrated.
    pub async fn migrated_store(&self) -> std::sync::Arc<dyn catdog::store::ImageStore> {
        let store = catdog::store::connect(
            &self.url(),
            &catdog::store::ConnectOptions {
                pool_size: 2,
                timeout: std::time::Duration::from_secs(5),
            },
        )
        .await
        .expect("connect to the test's PostgreSQL server");
        store.migrate().await.expect("migrate");
        store
    }

    /// Stops the server the way a restart does (`pg_ctl stop -m fast`): open
    /// connections are ended, transactions in progress are rolled back, and
    /// the port is closed until [`PgCluster::start_again`].
    pub fn stop(&mut self) {
        self.stop_with("fast");
    }

    /// Stops the server as a crash would (`-m immediate`): no checkpoint;
    /// the next start recovers from the write-ahead log.
    pub fn crash(&mut self) {
        self.stop_with("immediate");
    }

    /// Starts the server on the same port and waits until it accepts
    /// connections.
    pub fn start_again(&mut self) {
        let data = self.data_dir();
        let log = self.dir.join("server.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
             -c fsync=off -c full_page_writes=off -c max_connections=60",
            self.port
        );
        let output = self
            .tool("pg_ctl")
            .args([
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ])
            .output()
            .expect("run pg_ctl start");
        if !output.status.success() {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\n{}\n{server_log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        self.running = true;
    }

    fn stop_with(&mut self, mode: &str) {
        let data = self.data_dir();
        run(self
            .tool("pg_ctl")
            .args(["-D", &data, "-m", mode, "-w", "-t", "30", "stop"]));
        self.running = false;
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        // The server must not inherit the test's pipes: a test harness that
        // waits for them to close would wait for the server.
        command.stdin(Stdio::null());
        command
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self
                .tool("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn binaries() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir)).filter(|d| has_tools(d));
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_tools(d)) {
        return Some(dir);
    }
    // Debian keeps the server binaries off PATH, one folder per version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "catdog-pg-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
