#!/usr/bin/env bash
# The live demo. Until the daemon lands it shows the data plane: Palisade seals and
# opens tunnel-mode ESP in UDP, refuses tampered and replayed packets, and scapy (an
# independent IPsec implementation) opens what Palisade sent.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_rust
ensure_cc
ensure_python_deps
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
palisade_log "building and running the demo (first build takes a minute or two)"
cargo run --quiet --release --locked -p palisade-esp --example demo -- "$out"
echo
palisade_log "independent check with scapy"
python3 tests/interop/scapy_open_pcap.py "$out"
