#!/usr/bin/env bash
# Every test of the project, the second command of the README's quick start
# (and what .ci/run calls). Installs what it needs first, idempotently:
# Python tools into .cache/, the model, npm packages, Chromium when root.
#
# PostgreSQL: the one answering on TEST_DATABASE_URL (default 127.0.0.1:5432),
# else a throwaway cluster this script starts (and installs Debian's
# postgresql for, as root); see scripts/test-postgres.sh. With CI=true a
# missing service fails the run instead of skipping tests.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "PostgreSQL for the tests"
# shellcheck source=scripts/test-postgres.sh
source scripts/test-postgres.sh
ensure_test_postgres

step "tools: fake-gcs-server (Cloud Storage emulator)"
scripts/fake-gcs.sh install >/dev/null

step "model: build the classifier's backbone when missing"
model/build.sh

step "Rust: every crate's tests (all features, so the lambda build is tested too)"
cargo test --workspace --all-features --locked

step "web page: install, lint, type check, unit tests, build, size budget"
(
    cd frontend
    npm ci --no-audit --no-fund --loglevel=error
    npm run lint
    npm run check
    npm run test:unit
    npm run build
    npm run budget
)

step "web page: browser tests against the real catdog serve"
# The catdog binary the Rust tests ran (cargo test builds it for cli's tests):
# no second build of the dependencies with other features.
cargo test --locked --workspace --all-features --no-run
CATDOG_BIN="$CARGO_TARGET_DIR/debug/catdog" npm --prefix frontend run test:e2e

step "the API's contract: schemathesis and redocly against catdog serve, on SQLite and PostgreSQL"
CATDOG_BIN="$CARGO_TARGET_DIR/debug/catdog" scripts/contract.sh

step "deployment: terraform fmt, checkov, yamllint, consistency with the code"
deploy/check.sh

step "deployment: release binaries answer /healthz inside an empty root"
deploy/empty-root-test.sh

echo "all tests passed" >&2
