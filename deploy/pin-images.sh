#!/usr/bin/env bash
# Refreshes the digests of the pinned images: every `IMAGE:TAG@sha256:...` in
# the Dockerfile (FROM), cloudbuild.yaml (steps' `name:`) and terraform/*.tf
# gets the digest its tag points to now. Needs network access to the
# registries and one of: crane, `docker buildx imagetools`, skopeo.
#
#   deploy/pin-images.sh            # rewrite the files in place
#   deploy/pin-images.sh --check    # only list what would change; exit 1 if anything would
#
# To pin a new image, write it once as IMAGE:TAG@sha256: followed by 64 zeros
# and run this script. Review the diff, run deploy/check.sh, commit.
# PIN_IMAGES_RESOLVER=COMMAND replaces the lookup (COMMAND IMAGE:TAG prints the
# digest); the tests use it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
[[ ${1:-} == --check ]] && check=1

resolve() {
  local ref=$1
  if [[ -n ${PIN_IMAGES_RESOLVER:-} ]]; then
    $PIN_IMAGES_RESOLVER "$ref"
  elif command -v crane >/dev/null; then
    crane digest "$ref"
  elif command -v docker >/dev/null && docker buildx version >/dev/null 2>&1; then
    docker buildx imagetools inspect "$ref" --format '{{json .Manifest.Digest}}' | tr -d '"'
  elif command -v skopeo >/dev/null; then
    skopeo inspect --format '{{.Digest}}' "docker://$ref"
  else
    echo "pin-images: need crane, docker buildx or skopeo to look up $ref" >&2
    return 1
  fi
}

files=(Dockerfile cloudbuild.yaml terraform/*.tf)
mapfile -t refs < <(grep -ohE '[a-z0-9][a-z0-9./_-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}' "${files[@]}" | sed 's/@sha256:.*//' | sort -u)
((${#refs[@]})) || {
  echo "pin-images: no pinned images found" >&2
  exit 1
}

changed=0
for ref in "${refs[@]}"; do
  digest=$(resolve "$ref")
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || {
    echo "pin-images: $ref resolved to '$digest', not a sha256 digest" >&2
    exit 1
  }
  for file in "${files[@]}"; do
    old=$(grep -oE "$(printf '%s' "$ref" | sed 's/[.[\*^$/]/\\&/g')@sha256:[0-9a-f]{64}" "$file" | sort -u || true)
    for pinned in $old; do
      [[ $pinned == "$ref@$digest" ]] && continue
      changed=1
      echo "$file: $pinned -> $ref@$digest"
      ((check)) || sed -i "s|$pinned|$ref@$digest|g" "$file"
    done
  done
done

if ((check && changed)); then
  exit 1
fi
((changed)) || echo "pin-images: every digest is current" >&2
