#!/usr/bin/env bash
# Fetches the Debian packages whose pictures train the "neither" detector
# (model/negatives.py, model/negatives/manifest.tsv) into $NEGATIVES_DIR
# (default .cache/negatives): pinned versions, sha256 checked, unpacked with
# dpkg-deb into $NEGATIVES_DIR/x/<package>. Idempotent. Needs apt-get (run
# `apt-get update` once first) and dpkg-deb; about 970 MB of packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NEG_DIR="${NEGATIVES_DIR:-.cache/negatives}"

# package  version  sha256 of the .deb (Debian 12, "bookworm")
PACKAGES="
gnome-backgrounds           43.1-1               a670dea21572652127d6e55f9cdb3a226d0037854fdbfd037003c7d00ee0dc4e
mate-backgrounds            1.26.0-1             7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04
plasma-workspace-wallpapers 4:5.27.5-2           32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b
ukui-wallpapers             20.04.3-1.1          6d49be70152e6d603163458e177e501deb0be8f2916389ccbfcf59b0d7fc0262
sway-backgrounds            1.7-6                bbd637e4a27eb305beb88f2a5ba34ab53f86b2027066ffe3ed814d6b221220b5
lomiri-wallpapers           20.04.0-2            6b75961132a2035f9c4db79f725a7290092619c5c8f672071c84cb5b10898e07
desktop-base                12.0.6+nmu1~deb12u1  0d0e36a9853f778cf44c31311c5f97adeadf762ae00589ef221b8328d3409c6e
openarena-081-textures      0.8.5split-14        72bf05abd5286a1523b56ca04e25bceb775813d747f92ecd20749d512361a81f
colobot-common-textures     0.2.0-2              5b828825fe10602724e88865f2930719a61b0b90436e24ccfec3488a7fa49275
openclipart-png             1:0.18+dfsg-19       f07f1545a2970c2cf3fa339bc2405da1a95cf2b1827bfa05bf73eb1c20291c02
tuxpaint-stamps-default     2022.06.04-1         6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34
tuxpaint-data               1:0.9.28-sdl2-1      f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5
palapeli-data               4:22.12.3-1          69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058
opencv-doc                  4.6.0+dfsg-12        4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a
gimp-help-en                2.10.34-2            a2deec76763aaf2fcdd197bac0736cdcb0770ba993d48d233329e1c92b0bfe36
sweethome3d-furniture       1.8-1                3ccb90c63f9525e887a767b9cd5c8b6933b8b6b2973a615a5359ee68a2118668
"

log() { echo "model/negatives.sh: $*" >&2; }

mkdir -p "$NEG_DIR/debs" "$NEG_DIR/x"
while read -r package version sha; do
  [[ -n "$package" ]] || continue
  stamp="$NEG_DIR/x/$package.sha256"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sha" ]]; then
    continue
  fi
  deb="$(find "$NEG_DIR/debs" -maxdepth 1 -name "${package}_*.deb" | head -n 1)"
  if [[ -z "$deb" || "$(sha256sum "$deb" | cut -d' ' -f1)" != "$sha" ]]; then
    rm -f "$NEG_DIR/debs/${package}"_*.deb
    log "downloading $package=$version"
    (cd "$NEG_DIR/debs" && apt-get download -q "$package=$version" >&2)
    deb="$(find "$NEG_DIR/debs" -maxdepth 1 -name "${package}_*.deb" | head -n 1)"
  fi
  got="$(sha256sum "$deb" | cut -d' ' -f1)"
  if [[ "$got" != "$sha" ]]; then
    log "$package: digest mismatch: got $got, want $sha"
    exit 1
  fi
  rm -rf "$NEG_DIR/x/$package"
  mkdir -p "$NEG_DIR/x/$package"
  dpkg-deb -x "$deb" "$NEG_DIR/x/$package"
  echo "$sha" >"$stamp"
done <<<"$PACKAGES"
log "negatives ready in $NEG_DIR/x"
