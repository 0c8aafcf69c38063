#!/usr/bin/env bash
# The one test command (README quick start; .ci/run calls it).
# Installs what the tests need when it is missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

# System packages later tests need (nats-server, Xvfb, Mesa Vulkan) are
# installed here once those tests exist; the protocol needs none.

echo "==> cargo test --workspace"
cargo test --workspace "$@"
