#!/usr/bin/env python3
"""Writes the seed corpus of the esp_decap fuzz target (see fuzz_targets/esp_decap.rs).

Odd first byte: [1, receiver index, ESP plaintext...]; the target seals the plaintext
with that receiver's keys. Even first byte: [0, received packet...].
"""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "esp_decap")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, tos=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), 1, 0x4000, 64, proto, 0,
                    bytes(src), bytes(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload, tc=0):
    return struct.pack("!IHBB", (6 << 28) | (tc << 20), len(payload), nh, 64) + bytes(src) + bytes(dst) + payload


def trailer(payload, nh, align):
    pad = (-(len(payload) + 2)) % align
    return payload + bytes(range(1, pad + 1)) + bytes([pad, nh])


udp = struct.pack("!HHHH", 40000, 5001, 12, 0) + b"seed"
inner4 = ipv4([10, 1, 0, 1], [10, 2, 0, 1], 17, udp, tos=2)
inner6 = ipv6([0xfd] + [0] * 14 + [1], [0xfd] + [0] * 14 + [2], 17, udp, tc=2)
seeds = {
    # receiver 0: AES-GCM tunnel IPv4
    "gcm_tunnel_v4": bytes([1, 0]) + trailer(inner4, 4, 4),
    "gcm_tunnel_dummy": bytes([1, 0]) + trailer(b"", 59, 4),
    "gcm_tunnel_bad_pad": bytes([1, 0]) + inner4 + bytes([9, 9, 2, 4]),
    # receiver 1: CBC-SHA256 transport IPv6 in UDP
    "cbc_transport_v6_udp": bytes([1, 1]) + trailer(udp, 17, 16),
    # receiver 2: ChaCha20 transport IPv4, ESN
    "chacha_transport_v4": bytes([1, 2]) + trailer(udp, 17, 4),
    # receiver 3: GMAC tunnel IPv6, ESN
    "gmac_tunnel_v6": bytes([1, 3]) + trailer(inner6, 41, 4),
    "gmac_tunnel_wrong_version": bytes([1, 3]) + trailer(inner4, 41, 4),
    # raw packets as received
    "raw_esp_v4": bytes([0]) + ipv4([192, 0, 2, 1], [192, 0, 2, 2], 50, struct.pack("!II", 0x100, 1) + bytes(40)),
    "raw_ah_v4": bytes([0]) + ipv4([192, 0, 2, 1], [192, 0, 2, 2], 51,
                                   struct.pack("!BBHII", 17, 4, 0, 0x500, 1) + bytes(16) + udp),
    "raw_esp_in_udp_v6": bytes([0]) + ipv6([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1],
                                          [0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [2], 17,
                                          struct.pack("!HHHH", 4500, 4500, 8 + 48, 0) + struct.pack("!II", 0x200, 1) + bytes(40)),
}
os.makedirs(HERE, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {HERE}")
