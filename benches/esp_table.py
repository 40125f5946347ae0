#!/usr/bin/env python3
"""Prints the ESP throughput table of BENCHMARKS.md from criterion's results.

Run after `cargo bench -p palisade-esp --bench throughput`; reads
$CARGO_TARGET_DIR/criterion (default target/criterion) and prints, for each suite and
size, the mean time and throughput of raw_seal, encap, raw_open, decap and the ratios
encap/raw_seal and decap/raw_open (as throughput ratios: raw time / Palisade time).
"""
import json
import os
import sys

root = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
suites = ["aes128gcm", "aes256gcm", "chacha20poly1305", "aes128cbc_sha256"]
sizes = [64, 512, 1400, 8192]
fns = ["raw_seal", "encap", "raw_open", "decap"]


def mean_ns(suite, size, fn):
    group = f"esp_{suite}_{size}"
    path = os.path.join(root, group, fn, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def gbps(size, ns):
    return size * 8 / ns  # bits per nanosecond = Gbit/s


print("| suite | bytes | raw_seal | encap | encap/raw_seal | raw_open | decap | decap/raw_open |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
missing = False
for suite in suites:
    for size in sizes:
        try:
            t = {fn: mean_ns(suite, size, fn) for fn in fns}
        except FileNotFoundError as e:
            missing = True
            print(f"missing: {e.filename}", file=sys.stderr)
            continue
        cell = lambda fn: f"{t[fn]:.0f} ns ({gbps(size, t[fn]):.2f} Gbit/s)"
        print(f"| {suite} | {size} | {cell('raw_seal')} | {cell('encap')} | "
              f"{t['raw_seal'] / t['encap'] * 100:.0f} % | {cell('raw_open')} | {cell('decap')} | "
              f"{t['raw_open'] / t['decap'] * 100:.0f} % |")
sys.exit(1 if missing else 0)
