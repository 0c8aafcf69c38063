#!/usr/bin/env bash
# The one test command (README quick start; .ci/run calls it).
# Installs what the tests need when it is missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install a Rust toolchain (https://rustup.rs) first" >&2
    exit 1
fi

# The client smoke test draws in a real window: Xvfb and Mesa's software
# Vulkan (lavapipe). Install them from Debian/Ubuntu when missing.
need=()
command -v xvfb-run >/dev/null 2>&1 || need+=(xvfb xauth)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
# Cluster tests start their own nats-server (with JetStream) on a free port.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
if [ ${#need[@]} -gt 0 ]; then
    echo "==> installing ${need[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}"
fi

# A clean build of every test binary needs a few GB under target/; say so
# up front rather than let the linker die on a full disk.
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_kb=$(df -Pk "$target_dir" | awk 'NR==2 {print $4}')
if [ "${free_kb:-0}" -lt $((5 * 1024 * 1024)) ]; then
    echo "warning: only $((free_kb / 1024)) MB free under $target_dir; a clean test build needs about 5 GB" >&2
fi

echo "==> cargo test --workspace"
cargo test --workspace "$@"
