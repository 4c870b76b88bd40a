#!/usr/bin/env bash
# Fuzzes the input parsers with cargo-fuzz (libFuzzer): API Gateway events → the API
# handler, the SQS warm-request body, YouTube Data API responses (seeded with the captured
# real ones). A bounded run per target; any crash fails the script and leaves its input in
# fuzz/artifacts/<target>/ (turn it into a regression test in the crate concerned).
#
#   scripts/fuzz.sh                    # CI: FUZZ_SECONDS (default 25) per target, dev build
#   FUZZ_RELEASE=1 FUZZ_SECONDS=600 scripts/fuzz.sh   # a longer run, optimised build
#   scripts/fuzz.sh api_event          # one target
#
# Only stable Rust is available here: cargo-fuzz needs nightly flags, so RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-25}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(api_event warm_message youtube_response)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "[fuzz] cargo-fuzz is missing: scripts/setup.sh --fuzz installs it" >&2
  bash scripts/setup.sh --fuzz
fi

export RUSTC_BOOTSTRAP=1
# The workspace's resolved versions, so the fuzzed code is the code that ships.
cp Cargo.lock fuzz/Cargo.lock
# Safe Rust: the sanitizer adds little and slows the build; libFuzzer's coverage and
# panic = crash are what find the bugs here. Debug assertions stay on (overflow checks).
# The short CI run uses an unoptimised build (half the compile time on 2 cores; fewer
# executions per second, plenty for a smoke run); FUZZ_RELEASE=1 for long runs.
BUILD_FLAGS=(--sanitizer none --debug-assertions)
if [ "${FUZZ_RELEASE:-0}" != 1 ]; then
  BUILD_FLAGS+=(--dev)
fi
echo "[fuzz] building ${TARGETS[*]}" >&2
for target in "${TARGETS[@]}"; do
  cargo fuzz build "${BUILD_FLAGS[@]}" "$target"
done
for target in "${TARGETS[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  # Seeds: the captured real YouTube responses, the sample API Gateway events (and the
  # regression ones in tests/fixtures/events), and fuzz/seeds/<target> for the rest.
  case "$target" in
    youtube_response) cp -n tests/fixtures/youtube-samples/*.json "$corpus"/ ;;
    api_event) cp -n events/apigw-*.json tests/fixtures/events/apigw-*.json "$corpus"/ ;;
  esac
  cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
  echo "[fuzz] $target for ${SECONDS_PER_TARGET}s" >&2
  log="fuzz/artifacts/$target.log"
  mkdir -p fuzz/artifacts
  if cargo fuzz run "${BUILD_FLAGS[@]}" "$target" "$corpus" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::new_units_added)' "$log" \
      | sed "s/^/[fuzz] $target: /" >&2 || true
  else
    status=$?
    tail -n 40 "$log" >&2
    echo "[fuzz] $target FAILED (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
done
echo "[fuzz] no crash in ${TARGETS[*]}" >&2
