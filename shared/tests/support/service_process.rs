//! One function binary run as its own process on a free loopback port, its
//! log (stdout, JSON lines) kept in a file for the test to read. SIGTERM,
//! then SIGKILL, when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ServiceProcess {
    pub name: String,
    pub base: String,
    pub log_path: PathBuf,
    child: Child,
}

impl ServiceProcess {
    /// Starts `binary` with only `env` (and `PORT`, `LOG_FORMAT=json`) set,
    /// and waits until `/healthz` answers.
    pub async fn start(binary: &Path, env: &[(&str, String)], log_path: PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = std::fs::File::create(&log_path).expect("create the log file");
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::from(log))
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut service = Self {
            name,
            base: format!("http://127.0.0.1:{port}"),
            log_path,
            child,
        };
        service.wait_healthy().await;
        service
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = client.get(format!("{}/healthz", self.base)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited early ({status}); its log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log_path).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s) and returns its log.
    pub fn stop(&mut self) -> String {
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
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
