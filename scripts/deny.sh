#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, banned crates, and that every crate
# comes from crates.io. Installs cargo-deny into .cache/tools the first time.
# The advisories check is not run: it downloads the RustSec database, which
# these machines cannot reach.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo_deny="$(scripts/cargo-tool.sh cargo-deny)"
"$cargo_deny" --locked check licenses bans sources
# The fuzz crate has its own lock file: the same rules apply to it.
"$cargo_deny" --locked --manifest-path fuzz/Cargo.toml check licenses bans sources
