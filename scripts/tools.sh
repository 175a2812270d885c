# Installs a tool folder when its pinned requirements change; sourced by the
# scripts that run tools (deploy/check.sh, scripts/contract.sh). Each caller
# defines log() first.

# ensure_venv DIR REQUIREMENTS: (re)create DIR when REQUIREMENTS changed.
ensure_venv() {
  local venv=$1 requirements=$2 stamp want
  stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "installing $requirements into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" >"$stamp"
}

# ensure_npm DIR: `npm ci` in DIR when its lock file changed.
ensure_npm() {
  local dir=$1 stamp want
  stamp="$dir/node_modules/.lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  command -v npm >/dev/null || {
    log "npm is missing: install Node.js 20.9 or newer"
    return 1
  }
  log "installing $dir/package-lock.json (npm ci)"
  (cd "$dir" && npm ci --loglevel=error --no-audit --no-fund)
  echo "$want" >"$stamp"
}
