#!/usr/bin/env bash
# Installs what is missing and runs every test: `scripts/test.sh [cargo test filters]`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_cargo
ensure_lints
ensure_nats_server
ensure_chromium
ensure_browser_driver
cd "$BREWQ_ROOT"
# The habits first: one format, and no lint warning.
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Each cluster test runs three nats-servers; two at a time is what two cores hold without
# starving elections (see ARCHITECTURE.md, Testing).
cargo test --workspace --quiet -- --test-threads "${BREWQ_TEST_THREADS:-2}" "$@"
