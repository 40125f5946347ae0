#!/usr/bin/env python3
"""Independent check of Palisade's ESP/AH packets with scapy's IPsec implementation.

Reads a JSON file of cases written by crates/esp/tests/scapy_interop.rs. For each case:
  1. every packet Palisade sealed is opened by scapy (scapy.layers.ipsec) and must equal
     the clear packet byte for byte;
  2. scapy seals the same clear packets with the reverse SA, and also writes a tampered
     copy of each and a replay of the first one, for Palisade to open or reject.
Writes the results as JSON. Exit status 0 means the file was processed; the Rust side
asserts on the results.
"""
import json
import sys

from scapy.all import IP, UDP, IPv6, Raw
from scapy.layers.ipsec import AH, ESP, SecurityAssociation


def outer(family, src, dst):
    return IP(src=src, dst=dst) if family == 4 else IPv6(src=src, dst=dst)


def parse(family, data):
    return IP(data) if family == 4 else IPv6(data)


def make_sa(case, spi, crypt_key, auth_key, src, dst):
    kw = {}
    if case["proto"] == "ESP":
        kw["crypt_algo"] = case["crypt_algo"]
        kw["crypt_key"] = bytes.fromhex(crypt_key)
    if case["auth_algo"] != "NULL":
        kw["auth_algo"] = case["auth_algo"]
        kw["auth_key"] = bytes.fromhex(auth_key)
    if case["mode"] == "tunnel":
        kw["tunnel_header"] = outer(case["outer_family"], src, dst)
    if case["nat_t"]:
        kw["nat_t_header"] = UDP(sport=case["peer_port"], dport=case["palisade_port"]) if src == case["peer"] \
            else UDP(sport=case["palisade_port"], dport=case["peer_port"])
    proto = ESP if case["proto"] == "ESP" else AH
    return SecurityAssociation(proto, spi=spi, esn_en=case["esn"], **kw)


def run_case(case):
    res = {"name": case["name"], "opened": [], "errors": [], "sealed": [], "tampered": [], "replayed": None}
    fam = case["outer_family"]
    # 1. Palisade -> scapy: scapy opens what Palisade sealed.
    sa_in = make_sa(case, case["spi_p2s"], case["crypt_key_p2s"], case["auth_key_p2s"],
                    case["palisade"], case["peer"])
    for plain_hex, sealed_hex, seq in zip(case["plain"], case["sealed"], case["seqs"]):
        try:
            pkt = parse(fam, bytes.fromhex(sealed_hex))
            dec = sa_in.decrypt(pkt, esn_en=case["esn"], esn=seq >> 32)
            got = bytes(dec)
            ok = got == bytes.fromhex(plain_hex)
            res["opened"].append(ok)
            if not ok:
                res["errors"].append(f"seq {seq}: scapy opened {got.hex()} want {plain_hex}")
        except Exception as e:  # scapy raises on ICV mismatch and on parse trouble
            res["opened"].append(False)
            res["errors"].append(f"seq {seq}: scapy failed: {e!r}")
    # 2. scapy -> Palisade: scapy seals, Palisade opens.
    sa_out = make_sa(case, case["spi_s2p"], case["crypt_key_s2p"], case["auth_key_s2p"],
                     case["peer"], case["palisade"])
    inner_fam = case["inner_family"]
    for plain_hex, seq in zip(case["plain_s2p"], case["seqs_s2p"]):
        clear = parse(inner_fam, bytes.fromhex(plain_hex))
        enc = sa_out.encrypt(clear, seq_num=seq & 0xFFFFFFFF, esn_en=case["esn"], esn=seq >> 32)
        wire = bytes(enc)
        res["sealed"].append(wire.hex())
        bad = bytearray(wire)
        bad[len(bad) - 3] ^= 0x01  # inside the ICV (ESP) or payload (AH)
        res["tampered"].append(bytes(bad).hex())
    res["replayed"] = res["sealed"][0] if res["sealed"] else None
    return res


def main():
    cases = json.load(open(sys.argv[1]))["cases"]
    out = {"scapy": __import__("scapy").__version__, "cases": [run_case(c) for c in cases]}
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
