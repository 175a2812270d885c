#!/usr/bin/env bash
# The whole gallery on this machine, the first command of the README's quick
# start: builds the model, the web page and the Rust binaries when needed,
# then runs `catdog serve` (SQLite and a folder under ./data, ingestion every
# minute, classification in-process). Extra arguments go to `catdog serve`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

echo "==> model" >&2
model/build.sh
echo "==> web page" >&2
(
    cd frontend
    npm ci --no-audit --no-fund --loglevel=error
    npm run build
)
echo "==> catdog" >&2
cargo build --release --locked -p catdog-cli
exec "$CARGO_TARGET_DIR/release/catdog" serve --web-dir frontend/build "$@"
