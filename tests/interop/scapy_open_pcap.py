#!/usr/bin/env python3
"""Opens the ESP-in-UDP packets of the demo's pcap with scapy, an implementation
independent of Palisade, using the SA written next to it (sa.txt)."""
import sys

from scapy.all import IP, UDP, rdpcap
from scapy.layers.ipsec import SecurityAssociation, ESP

out = sys.argv[1]
sa = dict(line.split("=", 1) for line in open(f"{out}/sa.txt").read().split())
assoc = SecurityAssociation(ESP, spi=int(sa["spi"], 16), crypt_algo="AES-GCM",
                            crypt_key=bytes.fromhex(sa["key"]),
                            tunnel_header=IP(src=sa["src"], dst=sa["dst"]),
                            nat_t_header=UDP(sport=4500, dport=4500))
n = 0
for raw in rdpcap(f"{out}/esp.pcap"):
    pkt = IP(bytes(raw))
    seq = pkt[ESP].seq
    inner = assoc.decrypt(pkt)
    print(f"scapy opens seq {seq}: {inner[IP].src} -> {inner[IP].dst} {bytes(inner[UDP].payload)!r}")
    n += 1
print(f"scapy opened {n} of Palisade's packets")
sys.exit(0 if n else 1)
