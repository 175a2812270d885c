#!/usr/bin/env bash
# Installs a pinned cargo subcommand from crates.io into the ignored
# .cache/tools (never into ~/.cargo), and prints the path of its binary.
# Idempotent: a tool already there at the pinned version is not rebuilt.
#
#   scripts/cargo-tool.sh cargo-fuzz    # → .cache/tools/bin/cargo-fuzz
#   scripts/cargo-tool.sh cargo-deny    # → .cache/tools/bin/cargo-deny
#
# The build gets a target folder of its own under .cache/tools, so it never
# waits for, or mixes features with, the project's CARGO_TARGET_DIR.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$repo/.cache/tools"

tool="${1:?usage: scripts/cargo-tool.sh cargo-fuzz|cargo-deny}"
# One version of each, so every machine runs the same checks.
case "$tool" in
    cargo-fuzz) version="0.13.2" ;;
    cargo-deny) version="0.20.2" ;;
    *)
        echo "scripts/cargo-tool.sh: unknown tool $tool" >&2
        exit 2
        ;;
esac

# The compiled dependencies are kept outside the clone, like .ci/run's
# CARGO_TARGET_DIR, so a fresh clone on the same machine installs in seconds.
build="${CARGO_TOOLS_BUILD_DIR:-${HOME:-$repo}/.cache/catdog-tools-build}"

bin="$root/bin/$tool"
stamp="$root/.$tool.version"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
    echo "$bin"
    exit 0
fi

echo "scripts/cargo-tool.sh: installing $tool $version into .cache/tools (a few minutes, once)" >&2
mkdir -p "$root"
env -u CARGO_TARGET_DIR -u RUSTC_BOOTSTRAP \
    cargo install "$tool" --version "=$version" --locked \
    --root "$root" --target-dir "$build" --quiet >&2
echo "$version" >"$stamp"
echo "$bin"
