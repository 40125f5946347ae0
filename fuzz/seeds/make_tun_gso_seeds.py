#!/usr/bin/env python3
"""Seeds for the tun_gso fuzz target: reads as a TUN with offloads hands them over (a
virtio-net header in the host's byte order, then one packet): TCP aggregates over IPv4
and IPv6, one with TCP options and CWR/PSH/FIN to place, a UDP aggregate, a packet
whose checksum is left to the reader (NEEDS_CSUM) and one without. The transport
checksum field holds the pseudo-header's sum, as the kernel leaves it (CHECKSUM_PARTIAL).
Run from fuzz/: python3 seeds/make_tun_gso_seeds.py"""
import os
import struct

from scapy.all import IP, IPv6, TCP, UDP, Raw, raw

OUT = os.path.join(os.path.dirname(__file__), "tun_gso")

NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, GSO_ECN = 0, 1, 4, 5, 0x80


def vnet(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset):
    return struct.pack("=BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def partial(pkt, l4, offset):
    """The packet with its transport checksum field set to the pseudo-header's sum."""
    b = bytearray(raw(pkt))
    ip_len = len(raw(pkt)) - len(raw(l4))
    l4_len = len(b) - ip_len
    if isinstance(pkt, IPv6):
        pseudo = sum(struct.unpack(">16H", b[8:40])) + pkt.nh + l4_len
    else:
        pseudo = sum(struct.unpack(">4H", b[12:20])) + pkt.proto + l4_len
    while pseudo > 0xFFFF:
        pseudo = (pseudo & 0xFFFF) + (pseudo >> 16)
    b[ip_len + offset:ip_len + offset + 2] = struct.pack(">H", pseudo)
    return bytes(b), ip_len


def payload(n):
    return Raw(bytes((i * 7 + 3) & 0xFF for i in range(n)))


def tcp_aggregate(ip, n, mss, flags="A", options=(), ecn=False):
    l4 = TCP(sport=5000, dport=443, seq=0xFFFFFF00, ack=7, flags=flags, options=list(options))
    pkt = ip / l4 / payload(n)
    b, iph = partial(pkt, pkt[TCP], 16)
    gso = (GSO_TCPV6 if isinstance(ip, IPv6) else GSO_TCPV4) | (GSO_ECN if ecn else 0)
    hdr_len = iph + len(raw(l4))
    return vnet(NEEDS_CSUM, gso, hdr_len, mss, iph, 16) + b


def udp_aggregate(ip, n, size):
    pkt = ip / UDP(sport=5000, dport=53) / payload(n)
    b, iph = partial(pkt, pkt[UDP], 6)
    return vnet(NEEDS_CSUM, GSO_UDP_L4, iph + 8, size, iph, 6) + b


V4 = IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", id=0xFFFE)
V6 = IPv6(src="fd00::1", dst="fd00::2")

single = V4 / TCP(sport=5000, dport=443, flags="PA") / payload(300)
single_partial, single_iph = partial(single, single[TCP], 16)

SEEDS = {
    "tcp4_aggregate": tcp_aggregate(V4, 5000, 1348),
    "tcp6_aggregate": tcp_aggregate(V6, 4000, 1328),
    "tcp4_options_flags": tcp_aggregate(V4, 2500, 1000, flags="FPAC",
                                        options=[("NOP", None), ("NOP", None),
                                                 ("Timestamp", (1, 2))], ecn=True),
    "udp4_aggregate": udp_aggregate(V4, 3000, 1200),
    "udp6_aggregate": udp_aggregate(V6, 2000, 700),
    "needs_csum": vnet(NEEDS_CSUM, GSO_NONE, 0, 0, single_iph, 16) + single_partial,
    "plain": vnet(0, GSO_NONE, 0, 0, 0, 0) + raw(single),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {OUT}")
