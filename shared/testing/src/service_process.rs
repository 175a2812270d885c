//! One of our binaries run as its own process on a free loopback port (its
//! `PORT`), its log (stdout, JSON lines) kept in a file for the test to read.
//! SIGTERM, then SIGKILL, when dropped. For the tests that start a function
//! or `catdog serve`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to start answering; the model load and
/// migrations of a debug build on a busy machine fit well within it.
const START_WITHIN: Duration = Duration::from_secs(60);

pub struct ServiceProcess {
    pub name: String,
    pub base: String,
    pub port: u16,
    pub log_path: PathBuf,
    child: Child,
}

/// A client for our servers that forgets a pooled connection after 2 s
/// idle, well before a server closes idle connections (10 s, its header
/// timeout). With reqwest's default of 90 s, a test that waits about 10 s
/// between requests sends the next one on a connection the server is
/// closing that instant, and gets an error no client can tell from a server
/// that died mid-answer.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

/// One function's environment: the settings the gallery's functions share
/// (its database, its storage), then the function's own.
pub fn function_env(
    shared: &[(&'static str, String)],
    own: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    shared.iter().chain(own).cloned().collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl ServiceProcess {
    /// Starts `binary` with only `env` (and `PORT`, `LOG_FORMAT=json`) set,
    /// and waits until `/healthz` answers.
    pub async fn start(binary: &Path, env: &[(&str, String)], log_path: PathBuf) -> Self {
        let mut service = Self::spawn(Self::command(binary, env), log_path);
        service.wait_until_ok("/healthz").await;
        service
    }

    /// `binary` with only `LOG_FORMAT=json` and `env` set, for a caller that
    /// adds arguments or a working folder before [`ServiceProcess::spawn`].
    pub fn command(binary: &Path, env: &[(&str, String)]) -> Command {
        let mut command = Command::new(binary);
        command.env_clear().env("LOG_FORMAT", "json");
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// Runs `command` on a free port, its stdout into `log_path`; does not
    /// wait for it to answer (see [`ServiceProcess::wait_until_ok`]).
    pub fn spawn(mut command: Command, log_path: PathBuf) -> Self {
        let port = free_port();
        let name = Path::new(command.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = std::fs::File::create(&log_path).expect("create the log file");
        let child = command
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            name,
            base: format!("http://127.0.0.1:{port}"),
            port,
            log_path,
            child,
        }
    }

    /// Waits until `GET path` answers 2xx. Fails the test, with the log, if
    /// the process exits first or does not answer within a minute.
    pub async fn wait_until_ok(&mut self, path: &str) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + START_WITHIN;
        loop {
            let answer = client.get(format!("{}{path}", self.base)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited early ({status}); its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer {path} within {START_WITHIN:?}; its log:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends `signal` (`"-TERM"`, `"-KILL"`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.name);
    }

    /// Waits for the process to exit; fails the test after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the process's status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s) and returns its log.
    pub fn stop(&mut self) -> String {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The workspace's binaries, as the test command's own `cargo test
/// --workspace --all-features` builds them for their packages' tests (cargo
/// puts them in target/debug), for tests that start a binary of another
/// package than their own. Asking for exactly that build again is a no-op
/// inside the test command, builds what is missing when a test runs alone,
/// and never compiles the dependencies a second time with other features, as
/// `cargo build --bins` would.
pub fn workspace_binaries(workspace_root: &Path) -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    // What cargo sets for a running test (CARGO_MANIFEST_DIR, CARGO_PKG_*,
    // …) would reach build scripts that watch the environment and make the
    // inner build differ from the outer one.
    for (key, _) in std::env::vars() {
        let set_for_tests =
            key.starts_with("CARGO_") && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR");
        if set_for_tests || key == "OUT_DIR" || key == "RUST_RECURSION_COUNT" {
            cargo.env_remove(key);
        }
    }
    let status = cargo
        .args(["test", "--workspace", "--all-features", "--no-run"])
        .current_dir(workspace_root)
        .stdout(Stdio::null())
        .status()
        .expect("run cargo test --no-run");
    assert!(status.success(), "building the workspace's binaries failed");
    // target/debug/deps/<test>-… → target/debug
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf()
}
