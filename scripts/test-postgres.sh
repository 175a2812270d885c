# Sourced by scripts/test.sh: makes sure the tests have a PostgreSQL.
#
# When a server answers on $TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) the tests use it. Otherwise this
# starts a throwaway cluster of the tests' own on a free loopback port
# (installing Debian's `postgresql` first when it is missing and we are root),
# exports TEST_DATABASE_URL for it, and stops and removes it when the calling
# shell exits. With CI=true a PostgreSQL that cannot be had is a failure, never
# a skip. The psql client is made sure of too: deploy/empty-root-test.sh uses it.

test_postgres_log() { echo "test-postgres: $*" >&2; }

# Whether a PostgreSQL server answers at host:port: the protocol's SSLRequest,
# to which a server replies with a single 'S' or 'N'. No client tools needed.
test_postgres_answers() {
  python3 - "$1" <<'EOF'
import socket, struct, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
try:
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=2) as s:
        s.sendall(struct.pack("!ii", 8, 80877103))
        sys.exit(0 if s.recv(1) in (b"S", b"N") else 1)
except OSError:
    sys.exit(1)
EOF
}

# The directory of initdb and pg_ctl: PG_BIN_DIR, pg_config's, or the newest
# Debian-installed version's.
test_postgres_bindir() {
  if [[ -n "${PG_BIN_DIR:-}" && -x "$PG_BIN_DIR/initdb" ]]; then
    echo "$PG_BIN_DIR"
    return
  fi
  if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
    pg_config --bindir
    return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

test_postgres_install() {
  if [[ $(id -u) -ne 0 ]]; then
    return 1
  fi
  test_postgres_log "installing Debian's postgresql (we are root)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null
}

test_postgres_fail() {
  test_postgres_log "FAILED: $*"
  exit 1
}

ensure_test_postgres() {
  local url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if test_postgres_answers "$url"; then
    test_postgres_log "using the PostgreSQL that answers on $(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(f"{p.hostname}:{p.port or 5432}")' "$url")"
    export TEST_DATABASE_URL="$url"
  else
    test_postgres_log "no PostgreSQL answers on TEST_DATABASE_URL; starting a throwaway cluster of the tests' own"
    local bin
    bin=$(test_postgres_bindir) || true
    if [[ -z "$bin" ]]; then
      test_postgres_install || test_postgres_fail "PostgreSQL's server (initdb, pg_ctl) is not installed and we are not root to install it: install postgresql or set TEST_DATABASE_URL"
      bin=$(test_postgres_bindir) || test_postgres_fail "installed postgresql but found no initdb"
    fi
    # PostgreSQL refuses to run as root: then the cluster belongs to the
    # `postgres` user the package made, in a folder that user can reach
    # (the repository may sit under root's private home, so a fresh temporary
    # folder; as another user, .cache/ in the repository).
    local run=() dir
    if [[ $(id -u) -eq 0 ]]; then
      id postgres >/dev/null 2>&1 || test_postgres_fail "running as root needs the postgres user (Debian's postgresql package makes it)"
      dir=$(mktemp -d "${TMPDIR:-/tmp}/catdog-test-postgres.XXXXXX")
      chown postgres: "$dir"
      run=(runuser -u postgres --)
    else
      mkdir -p "$repo/.cache"
      dir=$(mktemp -d "$repo/.cache/test-postgres.XXXXXX")
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync --no-instructions >"$dir/initdb.log" 2>&1 ||
      test_postgres_fail "initdb failed: $(tail -n5 "$dir/initdb.log")"
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null ||
      test_postgres_fail "the cluster did not start: $(tail -n5 "$dir/server.log")"
    TEST_POSTGRES_STOP=("${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop)
    TEST_POSTGRES_DIR="$dir"
    trap 'test_postgres_stop' EXIT
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    # The fault tests start clusters of their own with the same binaries.
    export PG_BIN_DIR="$bin"
    test_postgres_log "started PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port in $dir; the tests use it and it is removed at the end"
  fi
  if ! command -v psql >/dev/null; then
    test_postgres_install || test_postgres_fail "psql is missing (deploy/empty-root-test.sh needs it): install postgresql-client"
  fi
}

test_postgres_stop() {
  if [[ -n "${TEST_POSTGRES_DIR:-}" ]]; then
    "${TEST_POSTGRES_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$TEST_POSTGRES_DIR"
    test_postgres_log "stopped and removed the throwaway cluster"
  fi
}
