#!/usr/bin/env python3
"""Seeds for the tun_gro fuzz target: batches of TCP segments and UDP datagrams (IPv4
and IPv6, valid checksums, runs that coalesce and packets that must go alone), in the
target's format: a flags byte (bit 0: UDP coalescing on), then 16-bit length-prefixed
packets. Run from fuzz/: python3 seeds/make_tun_gro_seeds.py"""
import os
import struct

from scapy.all import IP, IPv6, TCP, UDP, Raw, raw

OUT = os.path.join(os.path.dirname(__file__), "tun_gro")


def batch(flags, packets):
    b = bytes([flags])
    for p in packets:
        b += struct.pack(">H", len(p)) + p
    return b


def tcp4(seq, n, flags="A"):
    return raw(IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", id=seq // 100)
               / TCP(sport=1000, dport=443, seq=seq, ack=7, flags=flags)
               / Raw(bytes((seq + i) & 0xff for i in range(n))))


def tcp6(seq, n):
    return raw(IPv6(src="fd00::1", dst="fd00::2")
               / TCP(sport=1000, dport=443, seq=seq, ack=7, flags="A")
               / Raw(bytes((seq + i) & 0xff for i in range(n))))


def udp4(k, n, sport=5000, chksum=None):
    u = UDP(sport=sport, dport=53)
    if chksum is not None:
        u.chksum = chksum
    return raw(IP(src="10.0.0.1", dst="10.0.0.2", id=k) / u / Raw(bytes([k]) * n))


def udp6(k, n):
    return raw(IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5000, dport=53)
               / Raw(bytes([k]) * n))


SEEDS = {
    "tcp4_run": batch(1, [tcp4(i * 100, 100) for i in range(4)] + [tcp4(400, 40, "PA")]),
    "tcp6_run": batch(0, [tcp6(i * 200, 200) for i in range(3)]),
    "tcp_flags_alone": batch(1, [tcp4(0, 100), tcp4(100, 100, "FA"), tcp4(200, 100)]),
    "udp4_run": batch(1, [udp4(k, 120) for k in range(5)] + [udp4(5, 60)]),
    "udp6_run": batch(1, [udp6(k, 300) for k in range(3)]),
    "udp_without_uso": batch(0, [udp4(k, 120) for k in range(3)]),
    "udp_no_checksum": batch(1, [udp4(0, 80), udp4(1, 80, chksum=0), udp4(2, 80)]),
    "mixed": batch(1, [tcp4(0, 100), udp4(0, 50), tcp4(100, 100), udp4(1, 50, 6000),
                       udp4(2, 50), tcp6(0, 64)]),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {OUT}")
