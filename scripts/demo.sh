#!/usr/bin/env bash
# The live demo: `palisade lab`. Two hosts in network namespaces, palisaded on each with a
# transport-mode policy, a ping and a TCP transfer between them, the SAs with their
# counters, and a capture of the link that shows only IKE and ESP. Everything it creates
# is removed at the end. Needs root (network namespaces, TUN, raw sockets).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
if [ "$(id -u)" -ne 0 ]; then
    palisade_log "the demo creates network namespaces: run it as root (sudo bash scripts/demo.sh)"
    exit 1
fi
ensure_rust
ensure_cc
ensure_net_tools
palisade_log "building palisaded and palisade (release; the first build takes a few minutes)"
cargo build --quiet --release --locked -p palisaded -p palisade-cli
exec "$CARGO_TARGET_DIR/release/palisade" lab "$@"
