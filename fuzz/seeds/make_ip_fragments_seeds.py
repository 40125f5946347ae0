#!/usr/bin/env python3
"""Seeds for the ip_fragments fuzz target: two bytes that pick the MTU, then packets,
each behind a two-byte big-endian length. The fragments are scapy's (fragment() for
IPv4, fragment6() for IPv6), an implementation independent of ours: in order, in
reverse, two datagrams interleaved, a duplicate (an overlap), IPv4 with options, IPv6
with a Hop-by-Hop header before the Fragment header.
Run from fuzz/: python3 seeds/make_ip_fragments_seeds.py"""
import os
import struct

from scapy.all import (IP, UDP, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPOption_RR,
                       IPOption_Router_Alert, Raw, fragment, fragment6, raw)

OUT = os.path.join(os.path.dirname(__file__), "ip_fragments")


def payload(n, seed):
    return bytes((i * 31 ^ seed) & 0xFF for i in range(n))


def v4(n, ident, seed=0, options=None):
    ip = IP(src="192.0.2.1", dst="198.51.100.7", id=ident, flags=0)
    if options:
        ip.options = options
    return ip / UDP(sport=5000, dport=53) / Raw(payload(n, seed))


def v6(n, ident, seed=0, hbh=False):
    p = IPv6(src="2001:db8::1", dst="2001:db8::2")
    if hbh:
        p = p / IPv6ExtHdrHopByHop()
    return p / IPv6ExtHdrFragment(id=ident) / UDP(sport=5000, dport=53) / Raw(payload(n, seed))


def frags4(pkt, size=1400):
    return [raw(f) for f in fragment(pkt, fragsize=size)]


def frags6(pkt, size=1280):
    return [raw(f) for f in fragment6(pkt, size)]


def seed(name, mtu_pick, packets):
    data = struct.pack(">H", mtu_pick)
    for p in packets:
        data += struct.pack(">H", len(p)) + p
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    a = frags4(v4(4000, 0x1234))
    b = frags4(v4(3000, 0x1235, seed=9), size=1000)
    seed("v4_in_order", 103, a)
    seed("v4_reversed", 0, list(reversed(a)))
    seed("v4_interleaved", 40, [x for pair in zip(a, b) for x in pair] + b[len(a):])
    seed("v4_duplicate", 103, [a[0], a[0]] + a[1:])
    seed("v4_options", 103, frags4(v4(5000, 7, options=[IPOption_Router_Alert(),
                                                         IPOption_RR(routers=["0.0.0.0"])])))
    seed("v4_near_limit", 103, frags4(v4(9000, 8)))
    seed("v6_in_order", 88, frags6(v6(4000, 0xabcdef)))
    seed("v6_hop_by_hop_reversed", 88, list(reversed(frags6(v6(6000, 3, hbh=True)))))
    seed("v6_and_v4", 0, frags6(v6(3000, 1234)) + a)


if __name__ == "__main__":
    main()
