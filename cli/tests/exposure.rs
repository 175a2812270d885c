//! Local mode is private by default: `catdog serve` listens on loopback only,
//! and even when shared on a network (`--host 0.0.0.0`) its state-changing
//! routes refuse callers from other addresses unless they hold the admin
//! token.
//!
//! "Another machine" is an address that is not loopback: 192.0.2.1
//! (TEST-NET-1, reserved for documentation) added to the loopback device of
//! a network namespace of the test's own (`unshare --net`), so nothing
//! outside this process tree is touched or reached. A connection from the
//! namespace to 192.0.2.1 comes from 192.0.2.1, so the server sees a peer
//! that is not loopback.
//! Needs root (CI runs as root); elsewhere it skips loudly, and with CI=true
//! it fails instead.

use std::process::Command;

use catdog_testing::model::model_dir;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Starts `catdog serve` three ways inside a fresh network namespace and
/// prints one `name=value` line per probe.
const SCRIPT: &str = r#"
set -euo pipefail
bin=$1 data=$2
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
mkdir -p "$data/empty"
export INGEST_SOURCES="folder:$data/empty" INGEST_INTERVAL_SECS=3600

pid=""
start() {
  "$bin" serve --port 18080 --data-dir "$data" --web-dir "$data/no-page" "$@" >>"$data/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    if curl -s -o /dev/null http://127.0.0.1:18080/healthz; then return; fi
    sleep 0.1
  done
  echo "catdog serve did not start:" >&2
  cat "$data/serve.log" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" || true; }
# The HTTP status, or "refused" when curl could not even connect.
status() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@") || code="refused"
  echo "$code"
}

start
echo "default_healthz_loopback=$(status http://127.0.0.1:18080/healthz)"
echo "default_healthz_other=$(status http://192.0.2.1:18080/healthz)"
stop

start --host 0.0.0.0
echo "shared_healthz_other=$(status http://192.0.2.1:18080/healthz)"
echo "shared_images_other=$(status http://192.0.2.1:18080/api/v1/images)"
echo "shared_ingest_other=$(status -X POST http://192.0.2.1:18080/ingest)"
echo "shared_push_other=$(status -X POST -H 'content-type: application/json' -d '{}' http://192.0.2.1:18080/pubsub/push)"
echo "shared_ingest_loopback=$(status -X POST http://127.0.0.1:18080/ingest)"
stop

start --host 0.0.0.0 --admin-token s3cret-token
echo "token_ingest_other=$(status -X POST -H 'authorization: Bearer s3cret-token' http://192.0.2.1:18080/ingest)"
echo "wrong_token_ingest_other=$(status -X POST -H 'authorization: Bearer nope' http://192.0.2.1:18080/ingest)"
stop
"#;

#[test]
fn serve_is_private_by_default_and_writes_stay_local_when_shared() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: this test needs root for its network namespace"
        );
        eprintln!("SKIPPED: needs root for `unshare --net` (CI runs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new("unshare")
        .args(["--net", "--fork", "bash", "-c", SCRIPT, "exposure"])
        .arg(env!("CARGO_BIN_EXE_catdog"))
        .arg(dir.path())
        .env("MODEL_DIR", model_dir())
        .env("LOG_FORMAT", "pretty")
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the probe script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probe = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))
            .to_owned()
    };
    // No --host: loopback answers, another address is not even listening.
    assert_eq!(probe("default_healthz_loopback"), "200");
    assert_eq!(probe("default_healthz_other"), "refused");
    // Shared: the gallery is readable from elsewhere, writes are not.
    assert_eq!(probe("shared_healthz_other"), "200");
    assert_eq!(probe("shared_images_other"), "200");
    assert_eq!(probe("shared_ingest_other"), "403");
    assert_eq!(probe("shared_push_other"), "403");
    assert_eq!(probe("shared_ingest_loopback"), "200");
    // The admin token lets another machine write; a wrong one does not.
    assert_eq!(probe("token_ingest_other"), "200");
    assert_eq!(probe("wrong_token_ingest_other"), "403");
}
