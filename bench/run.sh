#!/usr/bin/env bash
# The benchmark suite (issue 7): builds what it measures, then runs every
# measurement on this machine and writes the results into BENCHMARKS.md
# (between its bench:start and bench:end markers).
#
#   bench/run.sh                 # full mode: 1k, 100k and 1M images, 1,000 photos (about 25 minutes)
#   bench/run.sh --quick         # small sizes, short runs; writes .cache/bench/BENCHMARKS.quick.md
#   bench/run.sh --only listing,cold   # some parts only: listing, classify, pipeline, cold, sizes, page
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust; BENCH_PG_URL to
# change), Python 3, Node.js, and the team's photos in ../shared/data/images.
# Installs Debian's wrk (and chromium, for Lighthouse) with apt-get when it
# runs as root and they are missing. Nothing here is a test: the figures
# depend on the machine and on whatever else it is doing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=full
out=BENCHMARKS.md
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) mode=quick; out=.cache/bench/BENCHMARKS.quick.md ;;
    --only) args+=(--only "$2"); shift ;;
    --out) out="$2"; shift ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "bench/run.sh: $*" >&2; }

if ! command -v wrk >/dev/null; then
  if [[ "$(id -u)" -eq 0 ]]; then
    log "installing Debian's wrk"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends wrk >/dev/null
  else
    log "wrk is missing and we are not root: install Debian's wrk package"
    exit 1
  fi
fi

log "building the release binaries and the floor server"
scripts/build-release.sh list-images ingest-trigger classify-image catdog-cli bench-floor
# The cloud images leave SQLite out (build-release.sh); local mode's catdog,
# which the SQLite listing runs as, has it, as scripts/serve.sh builds it.
cargo build --release --locked -p catdog-cli
log "making sure the model is built"
model/build.sh >/dev/null
if [[ ! -d frontend/node_modules ]]; then
  log "installing the page's dependencies"
  npm --prefix frontend ci --no-audit --no-fund
fi

mkdir -p "$(dirname "$out")"
python3 bench/bench.py --mode "$mode" --out "$out" "${args[@]}"
