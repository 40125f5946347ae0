#!/usr/bin/env python3
"""Writes the seed corpora of the policy_file, daemon_packets, control_protocol and
nfqueue_message fuzz targets (see fuzz/README.md). Run from anywhere; it reads the
example policies, the malformed policies of crates/policy/tests/malformed and the
examples in docs/control-api.md.
"""
import glob
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def out_dir(target):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    return d


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(out_dir(target), name), "wb") as f:
        f.write(data)


# ---- policy_file: the example policies and the golden malformed ones ----

def policy_file():
    for path in sorted(glob.glob(os.path.join(ROOT, "examples/policies/*.toml"))):
        shutil.copy(path, os.path.join(out_dir("policy_file"), "example-" + os.path.basename(path)))
    for path in sorted(glob.glob(os.path.join(ROOT, "crates/policy/tests/malformed/*.toml"))):
        shutil.copy(path, os.path.join(out_dir("policy_file"), "malformed-" + os.path.basename(path)))


# ---- packets ----

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def v4(a):
    return bytes(int(x) for x in a.split("."))


def v6(a):
    import ipaddress
    return ipaddress.IPv6Address(a).packed


def ipv4(src, dst, proto, payload, frag=0x4000):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0, v4(src), v4(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + v6(src) + v6(dst) + payload


def tcp(sport, dport, flags):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def udp(sport, dport, payload=b"hello"):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(t, code):
    return struct.pack("!BBHHH", t, code, 0, 1, 1) + b"ping"


A, B = "192.0.2.10", "192.0.2.20"
A6, B6 = "2001:db8::10", "2001:db8::20"


def packets():
    syn, ack = 0x02, 0x10
    return {
        "v4_tcp_syn_out.bin": ipv4(A, B, 6, tcp(40000, 443, syn)),
        "v4_tcp_syn_in.bin": ipv4(B, A, 6, tcp(443, 40000, syn)),
        "v4_tcp_ack.bin": ipv4(A, B, 6, tcp(40000, 443, ack)),
        "v4_udp.bin": ipv4(A, B, 17, udp(5353, 53)),
        "v4_icmp_echo.bin": ipv4(A, B, 1, icmp(8, 0)),
        "v4_icmp_unreach.bin": ipv4(B, A, 1, icmp(3, 4)),
        "v4_other_host.bin": ipv4("198.51.100.7", A, 6, tcp(1234, 22, syn)),
        "v4_esp.bin": ipv4(A, B, 50, struct.pack("!II", 0xC0FFEE01, 1) + bytes(24)),
        "v4_sctp.bin": ipv4(A, B, 132, struct.pack("!HHI", 5000, 5001, 0) + bytes(8)),
        "v4_first_fragment.bin": ipv4(A, B, 17, udp(5000, 5001, bytes(16)), frag=0x2000),
        "v4_later_fragment.bin": ipv4(A, B, 17, bytes(16), frag=0x0003),
        "v4_short_tcp.bin": ipv4(A, B, 6, struct.pack("!HH", 40000, 443)),
        "v4_broadcast.bin": ipv4(A, "255.255.255.255", 17, udp(68, 67)),
        "v6_tcp_syn.bin": ipv6(A6, B6, 6, tcp(40000, 443, syn)),
        "v6_icmpv6_echo.bin": ipv6(A6, B6, 58, icmp(128, 0)),
        # Hop-by-hop (PadN), then a destination options header, then UDP.
        "v6_ext_udp.bin": ipv6(A6, B6, 0, bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([17, 0, 1, 4, 0, 0, 0, 0]) + udp(5000, 53)),
        # Fragment header, offset 0 with more fragments, then TCP.
        "v6_first_fragment.bin": ipv6(A6, B6, 44, struct.pack("!BBHI", 6, 0, 1, 7) + tcp(40000, 443, syn)),
        "v6_later_fragment.bin": ipv6(A6, B6, 44, struct.pack("!BBHI", 6, 0, 0x0010, 7) + bytes(16)),
        "v6_multicast.bin": ipv6(A6, "ff02::1", 17, udp(5000, 5000)),
        "v4_in_v4.bin": ipv4("198.51.100.1", "203.0.113.1", 4, ipv4(A, B, 6, tcp(40000, 443, syn))),
    }


def daemon_packets():
    for name, p in packets().items():
        write("daemon_packets", name, p)


# ---- nfqueue_message: the body after the netlink header, as the kernel sends it ----

NFQA_PACKET_HDR, NFQA_MARK, NFQA_TIMESTAMP, NFQA_IFINDEX_INDEV, NFQA_HWADDR, NFQA_PAYLOAD = 1, 3, 4, 5, 9, 10
NFQA_CT, NFQA_UID, NFQA_GID = 11, 16, 17


def attr(kind, value):
    a = struct.pack("=HH", 4 + len(value), kind) + value
    return a + bytes(-len(a) % 4)


def nfq(packet, pid=42, hook=1, mark=0x5042, ifindex=7, extra=b"", family=2):
    body = struct.pack("!BBH", family, 0, 0x5041)
    body += attr(NFQA_PACKET_HDR, struct.pack("!IHB", pid, 0x0800 if family == 2 else 0x86DD, hook))
    if mark is not None:
        body += attr(NFQA_MARK, struct.pack("!I", mark))
    if ifindex is not None:
        body += attr(NFQA_IFINDEX_INDEV, struct.pack("!I", ifindex))
    body += extra
    body += attr(NFQA_PAYLOAD, packet)
    return body


def nfqueue_message():
    p = packets()
    write("nfqueue_message", "unit_test_shape.bin", nfq(bytes([0x45, 1, 2])))
    write("nfqueue_message", "v4_tcp_syn.bin", nfq(p["v4_tcp_syn_in.bin"]))
    write("nfqueue_message", "v4_udp_no_mark.bin", nfq(p["v4_udp.bin"], mark=None))
    write("nfqueue_message", "v4_icmp_forward.bin", nfq(p["v4_icmp_unreach.bin"], hook=2, ifindex=None))
    write("nfqueue_message", "v6_tcp.bin", nfq(p["v6_tcp_syn.bin"], family=10))
    # Attributes the parser skips: timestamp, hardware address, uid/gid, a nested conntrack.
    extra = (attr(NFQA_TIMESTAMP, struct.pack("!QQ", 1764000000, 5))
             + attr(NFQA_HWADDR, struct.pack("!H", 6) + bytes([2, 0, 0, 0, 0, 1]) + bytes(2))
             + attr(NFQA_UID, struct.pack("!I", 0)) + attr(NFQA_GID, struct.pack("!I", 0))
             + attr(NFQA_CT | 0x8000, attr(1, attr(1, struct.pack("!I", 0xC0000201)))))
    write("nfqueue_message", "v4_with_skipped_attrs.bin", nfq(p["v4_udp.bin"], extra=extra))
    write("nfqueue_message", "payload_first.bin",
          struct.pack("!BBH", 2, 0, 0x5041) + attr(NFQA_PAYLOAD, p["v4_udp.bin"])
          + attr(NFQA_PACKET_HDR, struct.pack("!IHB", 7, 0x0800, 1)))
    write("nfqueue_message", "empty_payload.bin", nfq(b""))


# ---- control_protocol: lines of the control API, and palisaded.toml ----

def control_protocol():
    lines = []
    with open(os.path.join(ROOT, "docs/control-api.md")) as f:
        for line in f:
            if line.startswith(("C: ", "S: ")):
                text = line[3:].strip()
                try:
                    json.loads(text)
                except ValueError:
                    continue
                lines.append(text)
    for i, line in enumerate(lines):
        write("control_protocol", f"doc_{i:02}.jsonl", line + "\n")
    hello = json.dumps({"protocol": "palisade-control", "version": 1, "software": "palisade 0.1.0"})
    with open(os.path.join(ROOT, "examples/policies/exemptions.toml")) as f:
        exemptions = f.read()
    session = [
        hello,
        json.dumps({"type": "policy_diff", "file": "exemptions.toml", "text": exemptions}),
        json.dumps({"type": "policy_apply", "file": "exemptions.toml", "text": exemptions, "dry_run": False}),
        json.dumps({"type": "policy_export"}),
        json.dumps({"type": "filter_list", "layer": "outbound_transport_v4"}),
        json.dumps({"type": "explain", "layer": "outbound_transport_v4",
                    "fields": [["ip_remote_address", "192.0.2.20"], ["ip_protocol", "6"], ["ip_remote_port", "443"]]}),
    ]
    write("control_protocol", "session_apply.jsonl", "\n".join(session) + "\n")
    objects = [
        json.dumps({"type": "sublayer_add", "sublayer": {"name": "mine", "weight": 100}}),
        json.dumps({"type": "filter_add", "filter": {"name": "no telnet", "layer": "OUTBOUND_TRANSPORT_V4", "action": "block",
                    "conditions": [{"field": "ip_remote_port", "match": "equal", "value": {"scalar": {"u16": 23}}}]}}),
        json.dumps({"type": "filter_show", "id": "no telnet"}),
        json.dumps({"type": "sublayer_list"}),
        json.dumps({"type": "provider_list"}),
        json.dumps({"type": "context_list"}),
        json.dumps({"type": "context_show", "id": "transport-mode/db01: main-mode policy"}),
        json.dumps({"type": "filter_delete", "id": "no telnet"}),
        json.dumps({"type": "provider_delete", "id": "Palisade"}),
    ]
    write("control_protocol", "session_objects.jsonl", "\n".join(objects) + "\n")
    write("control_protocol", "policy_apply_malformed.jsonl",
          json.dumps({"type": "policy_apply", "file": "bad.toml", "text": "[policy]\nname = \"x\"\n[[rules]]\nname = \"r\"\nremote = \"192.0.2.300\"\naction = \"block\"\n"}) + "\n")
    with open(os.path.join(ROOT, "docs/operations.md")) as f:
        ops = f.read()
    start = ops.index("```toml\n") + len("```toml\n")
    write("control_protocol", "config_full.toml", ops[start:ops.index("```", start)])
    write("control_protocol", "config_tun.toml", "[tun]\nname = \"pal1\"\nmtu = 1500\n[metrics]\nlisten = \"[::1]:9477\"\n")


if __name__ == "__main__":
    policy_file()
    daemon_packets()
    nfqueue_message()
    control_protocol()
    print("seeds written", file=sys.stderr)
