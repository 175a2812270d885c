#!/usr/bin/env bash
# The API's contract, held by tools no one here wrote (issue 22): against
# `catdog serve` with pictures in it, first on SQLite, then on PostgreSQL,
#   - schemathesis (scripts/requirements-contract.txt) sends requests made
#     from the served OpenAPI document, every phase and every check, once
#     with a fixed seed and once with a random one (printed, so a failure can
#     be replayed with CONTRACT_SEED=N), and fails on any answer the
#     document does not describe or any valid request the server refuses;
#   - Redocly CLI (tools/openapi-lint) lints the served document with its
#     recommended rules, warnings counted as errors
#     (tools/openapi-lint/redocly.yaml says which rule is off and why).
#
#   scripts/contract.sh [sqlite|postgres]...   # default: both
#
# CATDOG_BIN: the catdog binary (default: $CARGO_TARGET_DIR/debug/catdog, as
# the test command's cargo test builds it). PostgreSQL: a throwaway database
# on TEST_DATABASE_URL's server (default 127.0.0.1:5432), made and dropped
# with psql. Pictures: a few of ../shared's dev photos when it is there,
# else pictures drawn here; the model comes from model/build.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
log() { echo "contract.sh: $*" >&2; }
# shellcheck source=scripts/tools.sh
source scripts/tools.sh

stores=("$@")
[[ ${#stores[@]} -gt 0 ]] || stores=(sqlite postgres)
catdog="${CATDOG_BIN:-$CARGO_TARGET_DIR/debug/catdog}"
[[ -x "$catdog" ]] || {
  log "no catdog binary at $catdog: build it with cargo test --workspace --all-features --no-run"
  exit 1
}
ensure_venv .cache/venv-contract scripts/requirements-contract.txt
ensure_npm tools/openapi-lint
model_dir="$repo/$(dirname "$(model/build.sh | tail -1)")"
python=.cache/venv-contract/bin/python
fixed_seed=1
random_seed="${CONTRACT_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"

work="$(mktemp -d)"
server_pid=""
databases=()
cleanup() {
  [[ -z "$server_pid" ]] || kill "$server_pid" 2>/dev/null || true
  for db in "${databases[@]}"; do
    psql -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Pictures: cats, dogs and one of neither, so every listing has pages.
pictures="$work/pictures"
mkdir -p "$pictures"
if [[ -d ../shared/data/images/dev/cat ]]; then
  for kind in cat dog; do
    find "../shared/data/images/dev/$kind" -type f | sort | head -n 12 |
      xargs -I{} cp {} "$pictures/"
  done
  find ../shared/data/images/dev/other -type f | sort | head -n 2 | xargs -I{} cp {} "$pictures/"
else
  log "../shared is missing: drawing pictures instead of the dev photos"
  .cache/venv-model/bin/python - "$pictures" <<'PY'
import sys
from PIL import Image, ImageDraw

for i in range(16):
    picture = Image.new("RGB", (320, 240), (40 + 12 * i, 120, 200 - 10 * i))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((60 + 4 * i, 40, 260, 200), fill=(200, 150 - 5 * i, 90))
    picture.save(f"{sys.argv[1]}/drawn-{i:02}.jpg", quality=85)
PY
fi

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

check_store() {
  local store=$1 dir="$work/$1" port database_url
  mkdir -p "$dir"
  case "$store" in
    sqlite) database_url="sqlite://$dir/catdog.db" ;;
    postgres)
      local name="catdog_contract_$$"
      psql -q "$admin_url" -c "CREATE DATABASE \"$name\"" >/dev/null
      databases+=("$name")
      database_url="${admin_url%/*}/$name"
      ;;
    *) log "unknown store $store (sqlite or postgres)"; return 2 ;;
  esac
  export DATABASE_URL="$database_url" STORAGE_URL="file://$dir/objects" MODEL_DIR="$model_dir"
  # Ingestion would reach the internet: the folder it already took instead.
  export INGEST_SOURCES="folder:$pictures" INGEST_INTERVAL_SECS=86400
  "$catdog" migrate >/dev/null
  "$catdog" import "$pictures" >"$dir/import.log"
  port="$(free_port)"
  mkdir -p "$dir/no-page"
  "$catdog" serve --port "$port" --web-dir "$dir/no-page" >"$dir/serve.log" 2>&1 &
  server_pid=$!
  local base="http://127.0.0.1:$port" ready=""
  for _ in $(seq 1 150); do
    if "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "$base/readyz" 2>/dev/null; then
      ready=yes
      break
    fi
    sleep 0.2
  done
  if [[ -z "$ready" ]]; then
    log "$store: catdog serve did not become ready; its log:"
    tail -n 20 "$dir/serve.log" >&2
    return 1
  fi
  "$python" -c "import urllib.request, sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" \
    "$base/api/v1/openapi.json" >"$dir/openapi.json"

  log "$store: redocly lint (recommended rules, warnings as errors)"
  tools/openapi-lint/node_modules/.bin/redocly lint --config tools/openapi-lint/redocly.yaml \
    --format stylish "$dir/openapi.json"

  local seed
  for seed in "$fixed_seed" "$random_seed"; do
    log "$store: schemathesis, every phase and check, seed $seed (replay: CONTRACT_SEED=$seed scripts/contract.sh $store)"
    .cache/venv-contract/bin/st --config-file tools/contract/schemathesis.toml run \
      "$base/api/v1/openapi.json" --url "$base" --checks all --seed "$seed" \
      --phases examples,coverage,fuzzing,stateful --max-failures 20 --no-color
  done
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

started=$SECONDS
for store in "${stores[@]}"; do
  check_store "$store"
done
log "the contract holds on ${stores[*]} ($((SECONDS - started)) s)"
