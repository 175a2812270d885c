#!/usr/bin/env bash
# Fuzzing campaigns (cargo-fuzz, libFuzzer) on the code that reads what
# strangers send. Builds every target, then runs each for SECONDS (default 20)
# from the seeds in fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh                       # every target, 20 s each
#   scripts/fuzz.sh 600                   # every target, 10 minutes each
#   scripts/fuzz.sh 300 decode_image      # one target
#   FUZZ_SANITIZER=address scripts/fuzz.sh 60   # with AddressSanitizer
#
# Targets: push_envelope (the Pub/Sub push body), cursor (the listing
# cursor), decode_image (picture decoding), classify_image (decoding, the
# model and the thumbnail; builds the model with model/build.sh if needed).
#
# The toolchain here is stable, and cargo-fuzz needs nightly compiler flags:
# this script sets RUSTC_BOOTSTRAP=1, which lets stable rustc accept them.
# cargo-fuzz itself is installed into .cache/tools by scripts/cargo-tool.sh.
#
# New inputs the fuzzer finds go to .cache/fuzz/corpus/<target>/ (ignored).
# After a campaign without a crash, those that reach code the committed
# corpus does not are merged into fuzz/corpus/<target>/ (libFuzzer's
# -merge=1): commit them, so the next campaign, anyone's, starts from there.
# A crash is written to fuzz/artifacts/<target>/ and the script exits 1
# naming it: commit the file and add a regression test for it to the normal
# test suite.
# The build has its own target folder (FUZZ_TARGET_DIR, default
# ~/.cache/catdog-fuzz-target) so it never mixes with the main build.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

seconds="${1:-20}"
shift || true
all_targets=(push_envelope cursor decode_image classify_image)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all_targets[@]}")
fi
sanitizer="${FUZZ_SANITIZER:-none}"

cargo_fuzz="$(scripts/cargo-tool.sh cargo-fuzz)"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/catdog-fuzz-target}"

for target in "${targets[@]}"; do
    if [[ "$target" == classify_image ]]; then
        model/build.sh >&2
        export MODEL_DIR="${MODEL_DIR:-$repo/.cache/model}"
    fi
done

echo "==> building the fuzz targets (sanitizer: $sanitizer)" >&2
"$cargo_fuzz" build --sanitizer "$sanitizer" >&2

# Per target: longest input, and the memory a run may use. The decoders get
# 1 MiB-pixel limits in the targets, so 1 GiB of RSS means a limit failed.
max_len() {
    case "$1" in
        push_envelope | cursor) echo 4096 ;;
        *) echo 65536 ;;
    esac
}

failed=()
for target in "${targets[@]}"; do
    work="$repo/.cache/fuzz/corpus/$target"
    artifacts="$repo/fuzz/artifacts/$target"
    log="$repo/.cache/fuzz/logs/$target.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    echo "==> $target for ${seconds}s (log: .cache/fuzz/logs/$target.log)" >&2
    if "$cargo_fuzz" run --sanitizer "$sanitizer" "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" \
        -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units)' "$log" | tail -1 >&2 || true
        echo "    corpus: $(find "$work" -type f | wc -l) inputs" >&2
        before="$(find "fuzz/corpus/$target" -type f | wc -l)"
        "$cargo_fuzz" run --sanitizer "$sanitizer" "$target" "fuzz/corpus/$target" "$work" -- \
            -merge=1 -max_len="$(max_len "$target")" -rss_limit_mb=2048 >>"$log" 2>&1
        echo "    fuzz/corpus/$target: $before -> $(find "fuzz/corpus/$target" -type f | wc -l) inputs (commit the new ones)" >&2
    else
        echo "    FAILED: $(grep -E 'Test unit written to' "$log" | tail -1)" >&2
        tail -40 "$log" >&2
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found crashes in: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzzing: no crash in ${targets[*]} (${seconds}s each)" >&2
