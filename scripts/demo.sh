#!/usr/bin/env bash
# The end-to-end demo: sign-in → warm → three refreshes with new videos, then the quota spent,
# then the demo page (http://127.0.0.1:8080/) served until Ctrl-C.
# Uses the fake YouTube unless YOUTUBE_API_KEY is set. Installs what is missing first.
# Options: --port N (the page's port; or RECO_DEMO_PORT), --once (exit instead of serving).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "[demo] building the workspace (first run: several minutes on 2 cores)" >&2
cargo build --workspace --bins --quiet
exec ./target/debug/reco-demo "$@"
