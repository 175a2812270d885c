#!/usr/bin/env bash
# Proves, without a container engine, that each final image holds everything
# its binary needs: the binary runs in an otherwise empty root file system laid
# out like gcr.io/distroless/cc-debian12:nonroot plus what the Dockerfile copies
# in, as uid 65532, and must answer GET /healthz with 200.
#
#   deploy/empty-root-test.sh                  # build (scripts/build-release.sh), then test all
#   deploy/empty-root-test.sh --no-build       # test the binaries already in the target folder
#   deploy/empty-root-test.sh --no-build classify-image
#
# `migrate` is the migration job's image: `catdog migrate` must apply the
# migrations to a fresh PostgreSQL database from its empty root and exit 0.
# The images are built without SQLite (scripts/build-release.sh), as the
# Dockerfile builds them, so every binary here talks to a throwaway database
# made on $TEST_DATABASE_URL's server (default postgres@127.0.0.1:5432).
#
# The root holds only:
#   - the binary at /usr/local/bin/<name> (as the Dockerfile puts it);
#   - the shared libraries `ldd` says it needs, copied from this Debian 12
#     host, and only if they belong to a package distroless/cc ships (glibc,
#     libgcc, libstdc++, libgomp, OpenSSL): any other library fails the test,
#     because the image would not have it;
#   - /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with
#     nonroot (65532), /etc/nsswitch.conf, /home/nonroot and /tmp, as distroless has;
#   - for classify-image, /model/backbone.onnx and backbone-lite2.onnx (the model stage's output) and MODEL_DIR=/model;
#   - what every container runtime provides: /proc and the standard /dev nodes.
# Needs root (chroot, mknod, namespaces). Prints each binary's size and time to healthy.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)

log() { echo "empty-root-test: $*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

build=1
binaries=()
for arg in "$@"; do
  case "$arg" in
  --no-build) build=0 ;;
  list-images | ingest-trigger | classify-image | migrate) binaries+=("$arg") ;;
  *) die "unknown argument $arg (expected --no-build and/or list-images, ingest-trigger, classify-image, migrate)" ;;
  esac
done
((${#binaries[@]})) || binaries=(list-images ingest-trigger classify-image migrate)

[[ $(id -u) -eq 0 ]] || die "must run as root: it uses chroot, mknod and a new PID namespace"
for tool in unshare chroot ldd dpkg-query curl python3 mknod awk timeout psql; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

NONROOT_UID=65532
# Packages whose files gcr.io/distroless/cc-debian12 contains (base: libc6,
# libssl3, ca-certificates, tzdata, netbase; cc adds libgcc-s1, libgomp1, libstdc++6).
DISTROLESS_CC_PACKAGES=(libc6 libssl3 libgcc-s1 libgomp1 libstdc++6)
HEALTHY_WITHIN_SECS=20

release_dir="${CARGO_TARGET_DIR:-$REPO/target}/release"

if ((build)); then
  packages=()
  for name in "${binaries[@]}"; do
    [[ $name == migrate ]] && packages+=(catdog-cli) || packages+=("$name")
  done
  log "building ${packages[*]} with scripts/build-release.sh"
  scripts/build-release.sh "${packages[@]}"
fi

work=$(mktemp -d /tmp/empty-root-test.XXXXXX)
server_pid=""
# A throwaway database on the test server; the binaries reach it over TCP.
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
database="catdog_empty_root_$$"
database_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$admin_url" "$database")
psql "$admin_url" -qAtc "CREATE DATABASE $database" >/dev/null ||
  die "cannot create a database on $admin_url: the binaries are built for PostgreSQL only"
cleanup() {
  psql "$admin_url" -qAtc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # proc is mounted inside the PID namespace's own mount namespace, so nothing is left mounted here.
  rm -rf "$work"
}
trap cleanup EXIT

owning_package() {
  # dpkg knows library paths as installed (/lib/... or /usr/lib/...); try both spellings.
  local path=$1 candidates=("$1")
  [[ $path == /usr/* ]] && candidates+=("${path#/usr}") || candidates+=("/usr$path")
  for candidate in "${candidates[@]}"; do
    if dpkg-query -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1; then
      return
    fi
  done
}

# copy_libraries BINARY ROOT: the libraries ldd lists, at the same paths; fails for any outside distroless/cc.
copy_libraries() {
  local binary=$1 root=$2 line path package
  local ldd_out
  if ! ldd_out=$(ldd "$binary" 2>&1); then
    if grep -q "not a dynamic executable" <<<"$ldd_out"; then
      log "$(basename "$binary") is statically linked"
      return
    fi
    die "ldd $binary: $ldd_out"
  fi
  if grep -q "not found" <<<"$ldd_out"; then
    die "$(basename "$binary") needs libraries this machine does not even have: $(grep 'not found' <<<"$ldd_out")"
  fi
  while read -r line; do
    case "$line" in
    *"=> "/*) path=$(sed -E 's/.*=> ([^ ]+) .*/\1/' <<<"$line") ;;
    /*) path=${line%% *} ;; # the dynamic loader, listed by its own path
    *) continue ;;          # linux-vdso: provided by the kernel
    esac
    package=$(owning_package "$path")
    package=${package%%:*}
    [[ -n "$package" ]] || die "$(basename "$binary") needs $path, which no Debian package owns"
    local allowed=0 p
    for p in "${DISTROLESS_CC_PACKAGES[@]}"; do [[ $package == "$p" ]] && allowed=1; done
    ((allowed)) || die "$(basename "$binary") needs $path from package $package, which gcr.io/distroless/cc-debian12 does not contain"
    mkdir -p "$root$(dirname "$path")"
    cp -L "$path" "$root$path"
  done <<<"$ldd_out"
}

# The executable an image runs: the migration job's image runs catdog.
binary_of() {
  if [[ $1 == migrate ]]; then echo catdog; else echo "$1"; fi
}

make_root() {
  local name=$1 root=$2 exe
  exe=$(binary_of "$name")
  mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp,proc,dev,home/nonroot}
  chmod 1777 "$root/tmp"
  chown "$NONROOT_UID:$NONROOT_UID" "$root/home/nonroot"

  cp "$release_dir/$exe" "$root/usr/local/bin/$exe"
  copy_libraries "$root/usr/local/bin/$exe" "$root"

  [[ -f /etc/ssl/certs/ca-certificates.crt ]] || die "this machine has no /etc/ssl/certs/ca-certificates.crt to copy"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$NONROOT_UID" "$NONROOT_UID" >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$NONROOT_UID" >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

  # The device nodes every OCI runtime creates.
  mknod -m 666 "$root/dev/null" c 1 3
  mknod -m 666 "$root/dev/zero" c 1 5
  mknod -m 666 "$root/dev/full" c 1 7
  mknod -m 666 "$root/dev/random" c 1 8
  mknod -m 666 "$root/dev/urandom" c 1 9

  if [[ $name == classify-image ]]; then
    local model="${MODEL_DIR:-$REPO/.cache/model}"
    if [[ ! -f "$model/backbone.onnx" || ! -f "$model/backbone-lite2.onnx" ]]; then
      log "no backbones in $model: building them with model/build.sh, as the image's model stage does"
      MODEL_DIR="$model" model/build.sh >/dev/null
    fi
    mkdir -p "$root/model"
    cp "$model/backbone.onnx" "$model/backbone-lite2.onnx" "$root/model/"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The process whose executable is the binary inside this root.
find_server_process() {
  local exe=$1 pid
  for pid in /proc/[0-9]*; do
    if [[ "$(readlink "$pid/exe" 2>/dev/null)" == "$exe" ]]; then
      echo "${pid#/proc/}"
      return
    fi
  done
}

passed=0
failed=0
report=()

# The migration job's image: `catdog migrate` on a fresh database, exit status 0.
test_migrate() {
  local root="$work/migrate" binary="$release_dir/catdog"
  [[ -x "$binary" ]] || die "$binary does not exist: build it with scripts/build-release.sh catdog-cli"
  make_root migrate "$root"
  local logfile="$work/migrate.log" status=0 started=$SECONDS
  env -i DATABASE_URL="$database_url" STORAGE_URL="file:///tmp/objects" \
    timeout 60 "$(command -v unshare)" --pid --fork --kill-child --mount-proc="$root/proc" \
    "$(command -v chroot)" --userspec="$NONROOT_UID:$NONROOT_UID" "$root" /usr/local/bin/catdog migrate \
    >"$logfile" 2>&1 || status=$?
  local size
  size=$(stat -c %s "$binary")
  local applied
  applied=$(psql "$database_url" -qAtc "SELECT count(*) FROM schema_migrations" 2>/dev/null || echo 0)
  if [[ $status -eq 0 && $applied -gt 0 ]]; then
    passed=$((passed + 1))
    report+=("$(printf '%-15s ok    %6.1f MiB  catdog migrate exited 0 after %ss, %s migrations applied' "migrate" "$(awk -v b="$size" 'BEGIN {print b / 1048576}')" "$((SECONDS - started))" "$applied")")
  else
    failed=$((failed + 1))
    report+=("$(printf '%-15s FAIL  catdog migrate exited %s' migrate "$status")")
    log "catdog migrate failed in its empty root; its output:"
    sed 's/^/    /' "$logfile" >&2
  fi
}

test_binary() {
  local name=$1
  [[ $name == migrate ]] && {
    test_migrate
    return
  }
  local root="$work/$name"
  local binary="$release_dir/$name"
  [[ -x "$binary" ]] || die "$binary does not exist: build it with scripts/build-release.sh $name"

  make_root "$name" "$root"
  local port
  port=$(free_port)
  local env=(PORT="$port" DATABASE_URL="$database_url" STORAGE_URL="file:///tmp/objects")
  [[ $name == classify-image ]] && env+=(MODEL_DIR=/model)
  # ingest-trigger refuses to start without a topic; nothing is published here.
  [[ $name == ingest-trigger ]] && env+=(PUBSUB_TOPIC=catdog-images GOOGLE_CLOUD_PROJECT=empty-root-test)
  local logfile="$work/$name.log"

  log "$name: $(find "$root" -type f | wc -l) files in its root, listening on 127.0.0.1:$port"
  local started=$SECONDS
  # A new PID namespace with its own /proc, then chroot and drop to nonroot; no environment but ours.
  env -i "${env[@]}" "$(command -v unshare)" --pid --fork --kill-child --mount-proc="$root/proc" \
    "$(command -v chroot)" --userspec="$NONROOT_UID:$NONROOT_UID" "$root" "/usr/local/bin/$name" >"$logfile" 2>&1 &
  server_pid=$!

  local status="" deadline=$((SECONDS + HEALTHY_WITHIN_SECS))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      break
    fi
    status=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz" || true)
    [[ $status == 000 ]] && status="" # no HTTP answer at all
    [[ $status == 200 ]] && break
    sleep 0.2
  done
  local elapsed=$((SECONDS - started))

  local server uid=""
  server=$(find_server_process "$root/usr/local/bin/$name")
  [[ -n "$server" ]] && uid=$(awk '/^Uid:/ {print $2}' "/proc/$server/status")

  # Cloud Run stops an instance with SIGTERM, then SIGKILL 10 s later.
  [[ -n "$server" ]] && kill -TERM "$server" 2>/dev/null || true
  local waited=0 stopped="ignored SIGTERM for 10s"
  while ((waited < 100)); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      stopped="stopped $(awk -v t="$waited" 'BEGIN {print t / 10}')s after SIGTERM"
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""

  local size
  size=$(stat -c %s "$binary")
  if [[ $status == 200 && $uid == "$NONROOT_UID" ]]; then
    passed=$((passed + 1))
    report+=("$(printf '%-15s ok    %6.1f MiB  healthy after %ss as uid %s, %s' "$name" "$(awk -v b="$size" 'BEGIN {print b / 1048576}')" "$elapsed" "$uid" "$stopped")")
  else
    failed=$((failed + 1))
    report+=("$(printf '%-15s FAIL  /healthz answered %s, uid %s' "$name" "${status:-nothing}" "${uid:-unknown}")")
    log "$name did not become healthy in its empty root; its output:"
    sed 's/^/    /' "$logfile" >&2
  fi
}

for name in "${binaries[@]}"; do
  test_binary "$name"
done

printf '%s\n' "${report[@]}"
echo "$passed passed, $failed failed"
((failed == 0))
