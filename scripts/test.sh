#!/usr/bin/env bash
# Runs Palisade's whole test suite: unit and property tests, RFC test vectors, and the
# byte-for-byte interop tests against scapy's ESP/AH, and the IKEv2 tests against
# strongSwan in network namespaces (as root). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_rust
ensure_cc
ensure_python_deps
ensure_strongswan
ensure_net_tools
trim_target_dir
palisade_log "cargo test (build output in $CARGO_TARGET_DIR)"
cargo test --workspace --locked
