#!/usr/bin/env bash
# Installs what the demo, the tests and the builds need, and nothing that is already there.
# Idempotent: a second run only checks. Safe on a fresh Debian machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

# Pinned versions of the Python-packaged tools (PyPI).
MOTO_VERSION=5.2.5
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1
CFN_LINT_VERSION=1.58.0

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
   || ! command -v openssl >/dev/null 2>&1; then
  log "installing redis-server and openssl from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server openssl >/dev/null
  # The package starts a system-wide instance on 6379; the project starts its own on ephemeral ports.
  (as_root systemctl disable --now redis-server >/dev/null 2>&1 || as_root service redis-server stop >/dev/null 2>&1) || true
fi

# The demo page's browser test: Debian's Chromium (driven by playwright-core, never a
# downloaded browser) and Node.js with npm for the page's pinned packages below.
if [ ! -x /usr/bin/chromium ] || ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs="chromium"
  command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
  log "installing $pkgs from Debian"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $pkgs >/dev/null
fi

# The page's OpenAPI renderer (swagger-ui-dist) and the browser test's driver
# (playwright-core), exactly as web/package-lock.json pins them, into web/node_modules
# (gitignored). No install scripts run; no analytics.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  log "error: Node.js $(node --version) is too old for playwright-core (18 or newer; Debian 12 has 18)"
  exit 1
fi
web_stamp="$ROOT/web/node_modules/.reco-setup-$(sha256sum < "$ROOT/web/package-lock.json" | cut -c1-16)"
if [ ! -f "$web_stamp" ]; then
  log "installing the demo page's npm packages into web/node_modules (npm ci)"
  rm -rf "$ROOT/web/node_modules"
  SCARF_ANALYTICS=false npm ci --prefix "$ROOT/web" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  touch "$web_stamp"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating the project virtualenv in .venv"
  python3 -m venv "$VENV"
fi

# fastapi, mangum and redis: the earlier design's API function, which bench-tail runs
# (tests/bench/baseline/earlier_design.py).
want="moto[server]==$MOTO_VERSION cargo-lambda==$CARGO_LAMBDA_VERSION ziglang==$ZIGLANG_VERSION cfn-lint==$CFN_LINT_VERSION fastapi==0.165.0 mangum==0.22.0 redis==8.1.0"
stamp="$VENV/.reco-setup-$(echo "$want" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  log "installing $want into .venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check $want
  touch "$stamp"
fi

if ! rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
  log "adding the aarch64-unknown-linux-gnu Rust target (for arm64 Lambda builds)"
  rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || log "warning: could not add the arm64 target"
fi

# The dependency gates of scripts/test.sh, from crates.io, built once into .venv/bin:
# cargo-deny (one TLS stack and one version of each HTTP crate in the functions, licenses,
# sources; deny.toml) and cargo-machete (unused dependencies, on stable Rust).
CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2
install_crate() {  # name version (cargo install records what it put in .venv/.crates.toml)
  if [ ! -x "$VENV/bin/$1" ] || ! grep -qF "\"$1 $2 (" "$VENV/.crates.toml" 2>/dev/null; then
    log "installing $1 $2 from crates.io into .venv/bin (built once: a few minutes)"
    cargo install --quiet --locked --root "$VENV" --version "$2" "$1"
  fi
}
install_crate cargo-deny "$CARGO_DENY_VERSION"
install_crate cargo-machete "$CARGO_MACHETE_VERSION"

# cargo-fuzz, only for scripts/fuzz.sh (`scripts/setup.sh --fuzz`).
CARGO_FUZZ_VERSION=0.13.2
if [ "${1:-}" = "--fuzz" ] && ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" >/dev/null
fi

log "ready: redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), .venv with moto $MOTO_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION, cargo-deny $CARGO_DENY_VERSION, cargo-machete $CARGO_MACHETE_VERSION, $(/usr/bin/chromium --version 2>/dev/null | head -1), node $(node --version)"
