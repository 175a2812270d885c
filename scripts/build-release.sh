#!/usr/bin/env bash
# Builds the release binaries that the containers ship. The Dockerfile and CI
# both call this script, so what runs in the cloud is built the way CI builds it.
#
#   scripts/build-release.sh                              # all three functions and catdog
#   scripts/build-release.sh list-images classify-image  # only these packages
#
# Binaries land in ${CARGO_TARGET_DIR:-target}/release/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $# -eq 0 ]]; then
  set -- list-images ingest-trigger classify-image catdog-cli
fi

package_args=()
for package in "$@"; do
  # The CLI's package is catdog-cli but its binary is catdog; accept either name.
  [[ "$package" == "catdog" ]] && package="catdog-cli"
  package_args+=(-p "$package")
done

# Without default features: the cloud images carry PostgreSQL only, no SQLite
# (the `catdog` command's `sqlite` feature is local mode's).
cargo build --release --locked --no-default-features "${package_args[@]}"
