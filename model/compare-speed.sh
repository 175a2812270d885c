#!/usr/bin/env bash
# tract against onnxruntime on the same backbone.onnx, one thread each, in the
# same run: the classification rows of BENCHMARKS.md (MODEL.md, "Speed").
#
#   model/compare-speed.sh [--rounds N] [--runs N] [--profile] [--backbone FILE]
#
# Builds the model and the tract timing binary first (not timed), then runs
# the engines in turns, ROUNDS times (default 3), each time loading the model
# afresh and timing RUNS single inferences (default 30) after a warm-up, so
# that a burst of load on a shared machine hits all of them: tract as the
# classifier runs it (the depthwise convolutions by our own op), tract with
# its own depthwise convolutions in the mixed layout (before that op), tract
# with every depthwise convolution its own and channels-first (its default
# layout, before MODEL.md's "Speed" change), tract through its
# own `run` (without the classifier's per-node clearing of the wide-vector
# state), onnxruntime. Each turn's JSON line
# goes to stderr; stdout gets one JSON line, medians over every run:
#   {"bench": "classification", "tract_ms": …, "onnxruntime_ms": …, "ratio": …,
#    "tract_cpu_ms": …, "onnxruntime_cpu_ms": …, "cpu_ratio": …,
#    "tract_min_ms": …, "onnxruntime_min_ms": …, "min_ratio": …,
#    "tract_plain_run_ms": …, "tract_plain_run_cpu_ms": …,
#    "tract_depthwise_ms": …, "tract_depthwise_cpu_ms": …,
#    "tract_channels_first_ms": …, "tract_channels_first_cpu_ms": …,
#    "model_load_ms": …, "onnxruntime_load_ms": …, …}
# ratio = tract_ms / onnxruntime_ms, medians of wall-clock times (aim: at
# most 1.5). On a busy machine the wall clock also counts time spent waiting
# for a core; the CPU times (mean CPU time per inference, median over the
# rounds) and the minimums are steadier. model_load_ms is tract's read +
# optimise + plan, the cold start of classify-image (aim: under 500).
# --profile adds tract's per-op profile (last round) to stderr. --backbone
# names the backbone in $MODEL_DIR to time: backbone.onnx (Lite0, the
# default) or backbone-lite2.onnx; the classifier runs both per picture.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROUNDS=3
RUNS=30
PROFILE=()
BACKBONE=backbone.onnx
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --profile) PROFILE=(--profile); shift ;;
    --backbone) BACKBONE="$2"; shift 2 ;;
    *) echo "usage: model/compare-speed.sh [--rounds N] [--runs N] [--profile] [--backbone FILE]" >&2; exit 2 ;;
  esac
done

log() { echo "model/compare-speed.sh: $*" >&2; }

export MODEL_DIR="${MODEL_DIR:-.cache/model}"
model/build.sh >/dev/null
ONNX="$MODEL_DIR/$BACKBONE"
if [[ ! -f "$ONNX" ]]; then
  log "$ONNX is not a backbone model/build.sh builds"
  exit 2
fi
PYTHON="${MODEL_VENV:-.cache/venv-model}/bin/python"

log "building the tract timing binary (cargo bench --no-run)"
TRACT_BIN="$(
  cargo bench -p catdog --all-features --locked --bench tract_speed --no-run --message-format=json 2>/dev/null |
    "$PYTHON" -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "tract_speed" and msg.get("executable"):
        print(msg["executable"])
'
)"
if [[ -z "$TRACT_BIN" || ! -x "$TRACT_BIN" ]]; then
  log "could not build shared/benches/tract_speed.rs; run: cargo bench -p catdog --all-features --bench tract_speed --no-run"
  exit 1
fi

RESULTS="$(mktemp)"
trap 'rm -f "$RESULTS"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  log "round $round/$ROUNDS: tract"
  extra=()
  [[ $round -eq $ROUNDS ]] && extra=("${PROFILE[@]}")
  "$TRACT_BIN" --backbone "$BACKBONE" --runs "$RUNS" "${extra[@]}" | tee -a "$RESULTS" >&2
  log "round $round/$ROUNDS: tract's own run, without the per-node clearing (before)"
  "$TRACT_BIN" --backbone "$BACKBONE" --runs "$RUNS" --plain-run | tee -a "$RESULTS" >&2
  log "round $round/$ROUNDS: tract, its own depthwise convolutions in the mixed layout (before)"
  "$TRACT_BIN" --backbone "$BACKBONE" --runs "$RUNS" --tract-depthwise | tee -a "$RESULTS" >&2
  log "round $round/$ROUNDS: tract, every depthwise convolution its own and channels-first (before that)"
  "$TRACT_BIN" --backbone "$BACKBONE" --runs "$RUNS" --channels-first | tee -a "$RESULTS" >&2
  log "round $round/$ROUNDS: onnxruntime"
  "$PYTHON" model/ort_speed.py "$ONNX" --runs "$RUNS" | tee -a "$RESULTS" >&2
done

BACKBONE="$BACKBONE" "$PYTHON" - "$RESULTS" "$ROUNDS" "$RUNS" <<'PY'
import json, os, statistics, sys
path, rounds, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
turns = [json.loads(line) for line in open(path) if line.strip()]
def pick(engine, key):
    return [t[key] for t in turns if t["engine"] == engine]
def times(engine):
    return [x for ts in pick(engine, "times_ms") for x in ts]
tract, ort = times("tract"), times("onnxruntime")
tract_ms, ort_ms = statistics.median(tract), statistics.median(ort)
lock = open("Cargo.lock").read().split("[[package]]")
tract_version = next(
    (p.split('version = "')[1].split('"')[0] for p in lock if 'name = "tract-onnx"\n' in p), None
)
summary = {
    "bench": "classification",
    "backbone": os.path.basename(os.environ["BACKBONE"]),
    "tract_ms": round(tract_ms, 2),
    "onnxruntime_ms": round(ort_ms, 2),
    "ratio": round(tract_ms / ort_ms, 2),
    "tract_cpu_ms": round(statistics.median(pick("tract", "cpu_ms")), 2),
    "onnxruntime_cpu_ms": round(statistics.median(pick("onnxruntime", "cpu_ms")), 2),
    "cpu_ratio": round(statistics.median(pick("tract", "cpu_ms")) / statistics.median(pick("onnxruntime", "cpu_ms")), 2),
    "tract_min_ms": round(min(tract), 2),
    "tract_plain_run_ms": round(statistics.median(times("tract-plain-run")), 2),
    "tract_plain_run_cpu_ms": round(statistics.median(pick("tract-plain-run", "cpu_ms")), 2),
    "tract_depthwise_ms": round(statistics.median(times("tract-depthwise")), 2),
    "tract_depthwise_cpu_ms": round(statistics.median(pick("tract-depthwise", "cpu_ms")), 2),
    "tract_channels_first_ms": round(statistics.median(times("tract-channels-first")), 2),
    "tract_channels_first_cpu_ms": round(statistics.median(pick("tract-channels-first", "cpu_ms")), 2),
    "onnxruntime_min_ms": round(min(ort), 2),
    "min_ratio": round(min(tract) / min(ort), 2),
    "model_load_ms": round(statistics.median(pick("tract", "load_ms")), 1),
    "onnxruntime_load_ms": round(statistics.median(pick("onnxruntime", "load_ms")), 1),
    "tract_version": tract_version,
    "onnxruntime_version": pick("onnxruntime", "version")[0],
    "rounds": rounds,
    "runs_per_round": runs,
    "load_average": round(os.getloadavg()[0], 2),
}
print(json.dumps(summary))
PY
