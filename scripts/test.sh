#!/usr/bin/env bash
# The whole test suite against real services (redis-server, moto_server, the fake YouTube),
# plus the format and lint gates. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "[test] cfn-lint template.yaml" >&2
.venv/bin/cfn-lint template.yaml
echo "[test] cargo fmt --check" >&2
cargo fmt --all -- --check
echo "[test] cargo clippy (warnings are errors)" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "[test] the login function alone (reco-core without its recommend feature)" >&2
cargo clippy -p reco-login --all-targets --quiet -- -D warnings
echo "[test] cargo deny: one TLS stack, one version of each crate, licenses, sources (deny.toml)" >&2
# cargo-deny reads `cargo metadata` for every platform, offline: fetch every platform's crates
# first (a clean machine has only the host's after clippy).
cargo fetch --locked --quiet
cargo deny --offline check --hide-inclusion-graph bans licenses sources
echo "[test] cargo machete: no unused dependencies" >&2
cargo machete shared functions tests/integration tests/bench tests/fake-youtube fuzz   # not the workspace-hack: it is all features
echo "[test] building every target once" >&2
cargo build --workspace --all-targets --quiet
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  cargo test --workspace --no-fail-fast
fi
bash scripts/fuzz.sh   # cargo-fuzz targets, FUZZ_SECONDS (25) each
