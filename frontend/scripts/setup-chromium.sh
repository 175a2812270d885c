#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests.
# Idempotent: does nothing when /usr/bin/chromium is already there.
# We never download a browser build of our own; the distribution's package is
# the one browser the tests drive.
set -euo pipefail

CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"

have_emoji_font() {
  [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]
}

if [ -x "$CHROMIUM_BIN" ] && have_emoji_font; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if [ -x "$CHROMIUM_BIN" ]; then
    exit 0 # the emoji font only makes screenshots prettier
  fi
  echo "setup-chromium: $CHROMIUM_BIN is missing and we are not root; install the 'chromium' package" >&2
  exit 1
fi

echo "setup-chromium: installing Debian's chromium package and fonts" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-noto-color-emoji >/dev/null

if [ ! -x "$CHROMIUM_BIN" ]; then
  echo "setup-chromium: apt-get finished but $CHROMIUM_BIN is still missing" >&2
  exit 1
fi
