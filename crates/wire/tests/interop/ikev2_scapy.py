#!/usr/bin/env python3
"""Cross-check of Palisade's IKEv2 wire formats against scapy.contrib.ikev2.

Usage: ikev2_scapy.py IN OUT

IN holds one "name<TAB>hex" line per message Palisade emitted; each is
dissected by scapy and written to OUT as "DISSECTED<TAB>name<TAB>desc".
scapy also builds its own messages, written as
"BUILT<TAB>name<TAB>hex<TAB>desc". `desc` is a canonical description that
crates/wire/tests/ikev2_scapy.rs produces independently from Palisade's
parse of the same bytes, so equal strings mean equal values.
"""

import ipaddress
import socket
import sys

from scapy.config import conf

conf.verb = 0
from scapy.contrib.ikev2 import (  # noqa: E402
    IKEv2, IKEv2_AUTH, IKEv2_CP, IKEv2_Delete, IKEv2_IDi, IKEv2_IDr, IKEv2_KE,
    IKEv2_Nonce, IKEv2_Notify, IKEv2_Proposal, IKEv2_SA, IKEv2_Transform,
    IKEv2_TSi, IKEv2_TSr, IKEv2_VendorID, IPv4TrafficSelector,
    IPv6TrafficSelector, ConfigurationAttribute,
)
from scapy.packet import Raw  # noqa: E402


def h(b):
    return bytes(b).hex() if b else "-"


def ip_bytes(v):
    if isinstance(v, bytes):
        return v
    s = str(v)
    fam = socket.AF_INET6 if ":" in s else socket.AF_INET
    return socket.inet_pton(fam, s)


def transforms(t):
    out = []
    while t is not None and isinstance(t, IKEv2_Transform):
        kl = t.key_length if t.length > 8 else None
        out.append("T%d/%d/%s" % (t.transform_type, t.transform_id, "-" if kl is None else kl))
        t = t.payload if isinstance(t.payload, IKEv2_Transform) else None
    return out


def proposals(p):
    out = []
    while p is not None and isinstance(p, IKEv2_Proposal):
        ts = transforms(p.trans)
        out.append("P%d/%d/%s/%d:%s" % (p.proposal, p.proto, h(p.SPI), p.trans_nb, ",".join(ts)))
        p = p.payload if isinstance(p.payload, IKEv2_Proposal) else None
    return out


def selector(s):
    kind = 7 if isinstance(s, IPv4TrafficSelector) else 8
    a = s.starting_address_v4 if kind == 7 else s.starting_address_v6
    b = s.ending_address_v4 if kind == 7 else s.ending_address_v6
    return "R%d/%d/%d-%d/%s-%s" % (
        kind, s.IP_protocol_ID, s.start_port, s.end_port,
        ipaddress.ip_address(a).compressed, ipaddress.ip_address(b).compressed)


def describe(pkt):
    parts = ["HDR %016x %016x %d %d %d %d" % (
        int.from_bytes(pkt.init_SPI, "big"), int.from_bytes(pkt.resp_SPI, "big"),
        pkt.exch_type, int(pkt.flags), pkt.id, pkt.length)]
    p = pkt.payload
    while p is not None and not isinstance(p, (Raw,)) and p.name != "NoPayload":
        if isinstance(p, IKEv2_SA):
            parts.append("SA " + " ".join(proposals(p.prop)))
        elif isinstance(p, IKEv2_KE):
            parts.append("KE %d %s" % (p.group, h(p.ke)))
        elif isinstance(p, IKEv2_Nonce):
            parts.append("NONCE %s" % h(p.nonce))
        elif isinstance(p, IKEv2_Notify):
            parts.append("N %d %s %d %s" % (p.proto or 0, h(p.SPI), p.type, h(p.notify)))
        elif isinstance(p, (IKEv2_IDi, IKEv2_IDr)):
            tag = "IDI" if isinstance(p, IKEv2_IDi) else "IDR"
            data = ip_bytes(p.ID) if p.IDtype in (1, 5) else bytes(p.ID)
            parts.append("%s %d %s" % (tag, p.IDtype, h(data)))
        elif isinstance(p, IKEv2_AUTH):
            parts.append("AUTH %d %s" % (p.auth_type, h(p.load)))
        elif isinstance(p, (IKEv2_TSi, IKEv2_TSr)):
            tag = "TSI" if isinstance(p, IKEv2_TSi) else "TSR"
            parts.append("%s %d %s" % (tag, p.number_of_TSs,
                                      " ".join(selector(s) for s in p.traffic_selector)))
        elif isinstance(p, IKEv2_Delete):
            spis = ",".join(h(s) for s in p.SPI) or "-"
            parts.append("D %d %d %d %s" % (p.proto, p.SPIsize or 0, p.SPInum, spis))
        elif isinstance(p, IKEv2_CP):
            attrs = []
            for a in p.attributes:
                v = a.value
                if not isinstance(v, bytes):
                    v = ip_bytes(v)
                attrs.append("A%d:%s" % (a.type, h(v)))
            parts.append("CP %d %s" % (p.CFGType, " ".join(attrs) or "-"))
        elif isinstance(p, IKEv2_VendorID):
            parts.append("V %s" % h(p.vendorID))
        else:
            parts.append("? %s" % p.name)
        p = p.payload
    return " | ".join(parts)


SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("a1a2a3a4a5a6a7a8")


def t(tt, tid, kl=None):
    if kl is None:
        return IKEv2_Transform(transform_type=tt, transform_id=tid)
    return IKEv2_Transform(transform_type=tt, transform_id=tid, length=12, key_length=kl)


def chain(*ts):
    out = ts[0]
    for x in ts[1:]:
        out = out / x
    return out


def scapy_messages():
    p1 = IKEv2_Proposal(proposal=1, proto=1, trans_nb=6, trans=chain(
        t(1, 12, 256), t(1, 12, 128), t(2, 5), t(3, 12), t(4, 14), t(4, 19)))
    p2 = IKEv2_Proposal(proposal=2, proto=1, trans_nb=4, trans=chain(
        t(1, 20, 256), t(2, 7), t(4, 31), t(6, 36)))
    init = (IKEv2(init_SPI=SPI_I, exch_type=34, flags="Initiator", id=0)
            / IKEv2_SA(prop=p1 / p2)
            / IKEv2_KE(group=14, ke=bytes(range(256)))
            / IKEv2_Nonce(nonce=bytes(range(100, 132)))
            / IKEv2_Notify(type=16388, notify=b"\x11" * 20)
            / IKEv2_Notify(type=16389, notify=b"\x22" * 20)
            / IKEv2_Notify(type=16430)
            / IKEv2_VendorID(vendorID=b"palisade-scapy"))
    esp = IKEv2_Proposal(proposal=1, proto=3, SPI=b"\xc0\xff\xee\x01", trans_nb=3, trans=chain(
        t(1, 12, 128), t(3, 12), t(5, 0)))
    auth = (IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=35, flags="Initiator", id=1)
            / IKEv2_IDi(IDtype=2, ID=b"carol.example")
            / IKEv2_IDr(IDtype=1, ID="192.0.2.7")
            / IKEv2_AUTH(auth_type=2, load=b"\x5a" * 32)
            / IKEv2_CP(CFGType=1, attributes=[
                ConfigurationAttribute(type=1, value=b""),
                ConfigurationAttribute(type=3, value=socket.inet_aton("192.0.2.53"))])
            / IKEv2_Notify(type=16391)
            / IKEv2_SA(prop=esp)
            / IKEv2_TSi(traffic_selector=[
                IPv4TrafficSelector(IP_protocol_ID=0, start_port=0, end_port=65535,
                                    starting_address_v4="10.1.0.0",
                                    ending_address_v4="10.1.255.255"),
                # scapy (2.8.0 here) defaults this length to 20; RFC 7296 §3.13.1
                # makes an IPv6 range 40 bytes.
                IPv6TrafficSelector(length=40, IP_protocol_ID=17, start_port=500, end_port=4500,
                                    starting_address_v6="fd00::1",
                                    ending_address_v6="fd00::ffff")])
            / IKEv2_TSr(traffic_selector=[
                IPv4TrafficSelector(IP_protocol_ID=6, start_port=80, end_port=80,
                                    starting_address_v4="10.2.0.1",
                                    ending_address_v4="10.2.0.1")]))
    rekey = (IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=37, flags="Response", id=7)
             / IKEv2_Delete(proto=3, SPIsize=4, SPI=[b"\xc0\xff\xee\x01", b"\xc0\xff\xee\x02"], SPInum=2)
             / IKEv2_Notify(proto=3, SPI=b"\xc0\xff\xee\x03", type=16393))
    delete_ike = (IKEv2(init_SPI=SPI_I, resp_SPI=SPI_R, exch_type=37, flags="Initiator", id=8)
                  / IKEv2_Delete(proto=1, SPInum=0))
    return [("ike_sa_init", init), ("ike_auth_plain", auth),
            ("informational_delete", rekey), ("informational_delete_ike", delete_ike)]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    out = []
    for name, pkt in scapy_messages():
        raw = bytes(pkt)
        # Describe what scapy reads back, so both sides describe bytes.
        out.append("BUILT\t%s\t%s\t%s" % (name, raw.hex(), describe(IKEv2(raw))))
    with open(src) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            name, data = line.split("\t")
            out.append("DISSECTED\t%s\t%s" % (name, describe(IKEv2(bytes.fromhex(data)))))
    with open(dst, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
