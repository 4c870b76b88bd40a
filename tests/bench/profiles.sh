#!/usr/bin/env bash
# The release profile chosen by measurement (BENCHMARKS.md § Release profile): builds the
# three functions under each opt-level × LTO pair, one package at a time as each is
# deployed, into target/profiles/<name>/, prints their stripped x86-64 sizes, then runs
# bench-cold-start over all of them in one run (the builds take turns exec by exec):
# cold start, the deployed API's cache hit through the Runtime API, peak RSS under load.
#
#   tests/bench/profiles.sh                      # all six pairs (about 40 min on 2 cores)
#   PROFILES="o3-thin:3:thin oz-fat:z:fat" tests/bench/profiles.sh
#   PACKAGES=reco-api tests/bench/profiles.sh    # sizes of the API only, no bench run
#
# Every other setting is the workspace's [profile.release] (codegen-units = 1, panic =
# abort, symbols stripped). Results: benchmarks/release-profiles.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILES=${PROFILES:-"o3-thin:3:thin o3-fat:3:fat os-thin:s:thin os-fat:s:fat oz-thin:z:thin oz-fat:z:fat"}
PACKAGES=${PACKAGES:-"reco-api reco-warmer reco-login"}
size() { if [ -f "$1" ]; then stat -c %s "$1"; else echo -; fi; }
bins=()
printf '%-8s %10s %10s %10s %8s\n' profile api warmer login build_s
for spec in $PROFILES; do
  IFS=: read -r name opt lto <<<"$spec"
  start=$(date +%s)
  for package in $PACKAGES; do
    CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt" CARGO_PROFILE_RELEASE_LTO="$lto" \
      CARGO_TARGET_DIR="target/profiles/$name" cargo build --release --quiet -p "$package"
  done
  mkdir -p "target/profiles/bins/$name"
  for package in $PACKAGES; do cp "target/profiles/$name/release/$package" "target/profiles/bins/$name/"; done
  printf '%-8s %10s %10s %10s %8s\n' "$name" \
    "$(size "target/profiles/bins/$name/reco-api")" \
    "$(size "target/profiles/bins/$name/reco-warmer")" \
    "$(size "target/profiles/bins/$name/reco-login")" \
    "$(( $(date +%s) - start ))"
  bins+=("$name=target/profiles/bins/$name")
done
[ "$PACKAGES" = "reco-api reco-warmer reco-login" ] || exit 0
cargo build --release --quiet -p reco-bench --bin bench-cold-start
IFS=,; target/release/bench-cold-start --runs "${RUNS:-20}" --load "${LOAD:-500}" \
  --bins "${bins[*]}" --out release-profiles
