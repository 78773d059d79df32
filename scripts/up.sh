#!/usr/bin/env bash
# Installs what is missing, builds brewq and runs the whole system: `scripts/up.sh [brewq up flags]`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_cargo
ensure_nats_server
cd "$BREWQ_ROOT"
echo "building brewq (a release build: a few minutes the first time) ..." >&2
cargo build --release --bin brewq
exec "$BREWQ_ROOT/target/release/brewq" up "$@"
