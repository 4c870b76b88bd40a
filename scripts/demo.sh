#!/usr/bin/env bash
# The end-to-end demo: sign-in → warm → three refreshes with new videos, then the quota spent.
# Uses the fake YouTube unless YOUTUBE_API_KEY is set. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "[demo] building the workspace (first run: several minutes on 2 cores)" >&2
cargo build --workspace --bins --quiet
exec ./target/debug/reco-demo
