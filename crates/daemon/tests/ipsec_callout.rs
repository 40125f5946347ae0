//! The IPsec callouts over the example policy files (examples/policies/*.toml), compiled
//! and applied to an engine: what the data plane is told for representative flows of
//! each scenario of spec §4, and that the cache answers what the naive classifier does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use palisade_filter::guids as g;
use palisade_filter::policy::TrafficSelector;
use palisade_filter::{
    Action, Caller, Callout, CalloutFlags, Condition, ConditionValue, Engine, Family, Field,
    Filter, FilterFlags, Layer, MatchType, Principal, Scalar, SecurityDescriptor, SessionOptions,
    TxnKind, Weight,
};
use palisaded::ipsec_callout::{
    FLOW_CACHE_BOUND, Flow, Inbound, IpsecCallout, LocalOwner, Outbound, Protection,
    ProtectionMode, SaSelectors, SocketOwners, SocketOwnersFactory, reason,
};
use palisaded::net::IpNet;
use proptest::prelude::*;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

// ---- policy ----

fn example(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn engine_for(file: &str) -> Engine {
    engine_from(file, &example(file))
}

fn engine_from(file: &str, text: &str) -> Engine {
    let compiled = palisade_policy::compile_str(file, text).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    palisade_policy::apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
    engine
}

fn callout_for(file: &str) -> IpsecCallout {
    IpsecCallout::new(engine_for(file))
}

/// The runtime id of the filter the policy compiler named `name` ("rule: role").
fn filter_id(c: &IpsecCallout, layer: Layer, name: &str) -> u64 {
    let snapshot = c.engine().snapshot();
    snapshot
        .layer(layer)
        .filters
        .iter()
        .find(|f| f.record.object.name == name)
        .map(|f| f.id())
        .unwrap_or_else(|| panic!("no filter {name:?} at {layer:?}"))
}

// ---- packets ----

fn ipv4(src: &str, dst: &str, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let src: Ipv4Addr = src.parse().expect("v4");
    let dst: Ipv4Addr = dst.parse().expect("v4");
    let total = u16::try_from(20 + payload.len()).expect("length");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

fn ipv6(src: &str, dst: &str, next: u8, payload: &[u8]) -> Vec<u8> {
    let src: Ipv6Addr = src.parse().expect("v6");
    let dst: Ipv6Addr = dst.parse().expect("v6");
    let len = u16::try_from(payload.len()).expect("length");
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

fn ip(src: &str, dst: &str, protocol: u8, payload: &[u8]) -> Vec<u8> {
    if src.contains(':') {
        ipv6(src, dst, protocol, payload)
    } else {
        ipv4(src, dst, protocol, payload)
    }
}

fn tcp_header(sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50]);
    t.push(if syn { 0x02 } else { 0x10 });
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16, syn: bool) -> Vec<u8> {
    ip(src, dst, TCP, &tcp_header(sport, dport, syn))
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    ip(src, dst, UDP, &u)
}

fn icmp(src: &str, dst: &str, icmp_type: u8, code: u8) -> Vec<u8> {
    let proto = if src.contains(':') { ICMPV6 } else { ICMP };
    ip(src, dst, proto, &[icmp_type, code, 0, 0, 0, 1, 0, 1])
}

fn out_flow(packet: &[u8]) -> Flow {
    Flow::outbound(packet).expect("well-formed packet")
}

fn in_flow(packet: &[u8]) -> Flow {
    Flow::inbound(packet).expect("well-formed packet")
}

fn addr(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

fn protect(o: Outbound) -> Protection {
    match o {
        Outbound::Protect(p) => p,
        other => panic!("expected Protect, got {other:?}"),
    }
}

fn range(from: &str, to: &str) -> TrafficSelector {
    TrafficSelector::range(addr(from), addr(to))
}

fn transport_sa(local: TrafficSelector, remote: TrafficSelector) -> SaSelectors {
    SaSelectors {
        local: vec![local],
        remote: vec![remote],
        mode: ProtectionMode::Transport,
        encrypting: true,
        peer_names: vec![],
    }
}

// ---- flows ----

#[test]
fn flows_are_read_from_our_side_with_icmp_type_and_code_in_the_ports() {
    let p = tcp("192.0.2.10", 40000, "192.0.2.20", 443, true);
    let out = out_flow(&p);
    assert_eq!(out.family, Family::V4);
    assert_eq!(
        (out.local, out.remote),
        (addr("192.0.2.10"), addr("192.0.2.20"))
    );
    assert_eq!(
        (out.protocol, out.local_port, out.remote_port),
        (TCP, 40000, 443)
    );
    assert!(out.tcp_syn);
    let inb = in_flow(&p);
    assert_eq!(
        (inb.local, inb.remote),
        (addr("192.0.2.20"), addr("192.0.2.10"))
    );
    assert_eq!((inb.local_port, inb.remote_port), (443, 40000));
    assert!(!in_flow(&tcp("192.0.2.10", 1, "192.0.2.20", 2, false)).tcp_syn);

    for f in [
        out_flow(&icmp("192.0.2.10", "192.0.2.20", 8, 0)),
        in_flow(&icmp("192.0.2.20", "192.0.2.10", 8, 0)),
    ] {
        assert_eq!((f.protocol, f.local_port, f.remote_port), (ICMP, 8, 0));
    }
    let f = out_flow(&icmp("2001:db8::1", "2001:db8::2", 1, 4));
    assert_eq!(f.family, Family::V6);
    assert_eq!((f.protocol, f.local_port, f.remote_port), (ICMPV6, 1, 4));

    // IPv4 with options (IHL 6): the ports come after them.
    let mut opts = udp("192.0.2.10", 5000, "192.0.2.20", 53);
    opts[0] = 0x46;
    opts.splice(20..20, [1, 1, 1, 0]);
    opts[3] += 4;
    let f = out_flow(&opts);
    assert_eq!((f.protocol, f.local_port, f.remote_port), (UDP, 5000, 53));

    // IPv6 with a Destination Options header before UDP: the ports come after it.
    let mut ext = vec![UDP, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]);
    let f = out_flow(&ipv6("2001:db8::1", "2001:db8::2", 60, &ext));
    assert_eq!((f.protocol, f.local_port, f.remote_port), (UDP, 5000, 53));
}

#[test]
fn later_fragments_have_no_ports_and_malformed_packets_no_flow() {
    let mut frag = udp("192.0.2.10", 5000, "192.0.2.20", 53);
    frag[6] = 0x00;
    frag[7] = 0x10; // offset 16 × 8 bytes
    let f = out_flow(&frag);
    assert!(f.later_fragment);
    assert_eq!((f.local_port, f.remote_port), (0, 0));

    let good = tcp("192.0.2.10", 40000, "192.0.2.20", 443, true);
    let mut bad_version = good.clone();
    bad_version[0] = 0x55;
    let mut long_total = good.clone();
    long_total[3] = 0xff;
    let short_tcp = ipv4(
        "192.0.2.10",
        "192.0.2.20",
        TCP,
        &[0x9c, 0x40, 0x01, 0xbb, 0, 0],
    );
    let short_udp = ipv4("192.0.2.10", "192.0.2.20", UDP, &[0x9c, 0x40]);
    let short_icmp = ipv4("192.0.2.10", "192.0.2.20", ICMP, &[8]);
    let mut short_v6 = tcp("2001:db8::1", 1, "2001:db8::2", 2, false);
    short_v6.truncate(50);
    for (what, p) in [
        ("empty", &[][..]),
        ("header cut", &good[..12]),
        ("version 5", &bad_version[..]),
        ("total length past the buffer", &long_total[..]),
        ("TCP header cut", &short_tcp[..]),
        ("UDP ports cut", &short_udp[..]),
        ("ICMP code missing", &short_icmp[..]),
        ("IPv6 payload cut", &short_v6[..]),
    ] {
        assert_eq!(Flow::outbound(p), None, "{what}");
        assert_eq!(Flow::inbound(p), None, "{what}");
    }
}

#[test]
fn sa_selectors_cover_by_address_protocol_and_port() {
    let ports = |ts: TrafficSelector, protocol: u8, lo: u16, hi: u16| TrafficSelector {
        protocol_id: protocol,
        port_start: lo,
        port_end: hi,
        ..ts
    };
    let us = range("192.0.2.1", "192.0.2.1");
    let them = range("192.0.2.0", "192.0.2.255");
    let flow = in_flow(&tcp("192.0.2.9", 40000, "192.0.2.1", 443, false));
    assert!(transport_sa(us, them).covers(&flow));
    assert!(transport_sa(ports(us, TCP, 443, 443), ports(them, TCP, 1024, 65535)).covers(&flow));
    assert!(!transport_sa(ports(us, TCP, 80, 80), them).covers(&flow));
    assert!(!transport_sa(ports(us, UDP, 443, 443), them).covers(&flow));
    assert!(!transport_sa(us, range("192.0.2.10", "192.0.2.255")).covers(&flow));
    assert!(!transport_sa(range("::", "::1"), them).covers(&flow));

    // ICMP type and code as RFC 7296 §3.13.1 encodes them: type high, code low.
    let echo = in_flow(&icmp("192.0.2.9", "192.0.2.1", 8, 0));
    assert!(
        transport_sa(
            ports(us, ICMP, 0x0800, 0x0800),
            ports(them, ICMP, 0x0800, 0x08ff)
        )
        .covers(&echo)
    );
    assert!(!transport_sa(ports(us, ICMP, 0x0300, 0x03ff), them).covers(&echo));

    // A later fragment has no ports: only selectors of every port hold it.
    let mut frag = udp("192.0.2.9", 5000, "192.0.2.1", 53);
    frag[7] = 0x10;
    let frag = in_flow(&frag);
    assert!(transport_sa(ports(us, UDP, 0, 65535), them).covers(&frag));
    assert!(!transport_sa(ports(us, UDP, 53, 53), them).covers(&frag));
}

// ---- scenarios ----

#[test]
fn transport_mode_protects_the_peer_and_exempts_icmp() {
    let mut c = callout_for("transport-mode.toml");
    let out_id = filter_id(
        &c,
        Layer::OutboundTransportV4,
        "db01: outbound-transport-v4",
    );
    let in_id = filter_id(&c, Layer::InboundTransportV4, "db01: inbound-transport-v4");

    let p = protect(c.outbound(&out_flow(&tcp(
        "192.0.2.10",
        40000,
        "192.0.2.20",
        443,
        true,
    ))));
    assert_eq!(p.mode, ProtectionMode::Transport);
    assert_eq!((p.local, p.peer), (addr("192.0.2.10"), addr("192.0.2.20")));
    assert_eq!(p.filter_id, out_id);
    assert!(!p.clear_fallback && !p.require_encryption);
    assert_eq!(p.traffic.local.protocol_id, TCP);
    assert_eq!(
        (p.traffic.local.port_start, p.traffic.local.port_end),
        (40000, 40000)
    );
    assert_eq!(
        (p.traffic.remote.port_start, p.traffic.remote.port_end),
        (443, 443)
    );
    assert_eq!(p.traffic.remote.start_address, addr("192.0.2.20"));
    assert_eq!(p.traffic.remote.end_address, addr("192.0.2.20"));

    // ICMP is exempt, other hosts and other local addresses are not in the policy.
    assert_eq!(
        c.outbound(&out_flow(&icmp("192.0.2.10", "192.0.2.20", 8, 0))),
        Outbound::Clear
    );
    assert_eq!(
        c.outbound(&out_flow(&tcp(
            "192.0.2.10",
            40000,
            "192.0.2.30",
            443,
            true
        ))),
        Outbound::Clear
    );
    assert_eq!(
        c.outbound(&out_flow(&tcp(
            "192.0.2.11",
            40000,
            "192.0.2.20",
            443,
            true
        ))),
        Outbound::Clear
    );
    // IKE itself (UDP 500 and 4500) is exempt (spec §4.4).
    assert_eq!(
        c.outbound(&out_flow(&udp("192.0.2.10", 500, "192.0.2.20", 500))),
        Outbound::Clear
    );
    assert_eq!(
        c.outbound(&out_flow(&udp("192.0.2.10", 4500, "192.0.2.20", 4500))),
        Outbound::Clear
    );
    assert!(matches!(
        c.outbound(&out_flow(&udp("192.0.2.10", 501, "192.0.2.20", 500))),
        Outbound::Protect(_)
    ));

    // Clear text from the peer is dropped, ICMP and IKE pass.
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp(
            "192.0.2.20",
            443,
            "192.0.2.10",
            40000,
            false
        ))),
        Inbound::Block {
            filter_id: Some(in_id),
            reason: reason::CLEAR_WHERE_REQUIRED
        }
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&icmp("192.0.2.20", "192.0.2.10", 0, 0))),
        Inbound::Permit
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&udp("192.0.2.20", 500, "192.0.2.10", 500))),
        Inbound::Permit
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp(
            "192.0.2.30",
            443,
            "192.0.2.10",
            40000,
            false
        ))),
        Inbound::Permit
    );

    // Protected: on a transport SA whose selectors cover it, yes; otherwise no.
    let flow = in_flow(&tcp("192.0.2.20", 443, "192.0.2.10", 40000, false));
    let host = |a: &str| range(a, a);
    let sa = transport_sa(host("192.0.2.10"), host("192.0.2.20"));
    assert_eq!(c.inbound_protected(&flow, &sa), Inbound::Permit);
    let elsewhere = transport_sa(host("192.0.2.10"), host("192.0.2.21"));
    assert_eq!(
        c.inbound_protected(&flow, &elsewhere),
        Inbound::Block {
            filter_id: None,
            reason: reason::OUTSIDE_SELECTORS
        }
    );
    let mut udp_only = sa.clone();
    udp_only.remote[0].protocol_id = UDP;
    assert_eq!(
        c.inbound_protected(&flow, &udp_only),
        Inbound::Block {
            filter_id: None,
            reason: reason::OUTSIDE_SELECTORS
        }
    );
    let mut port_443 = sa.clone();
    port_443.remote[0].port_start = 443;
    port_443.remote[0].port_end = 443;
    assert_eq!(c.inbound_protected(&flow, &port_443), Inbound::Permit);
    let mut tunnel = sa.clone();
    tunnel.mode = ProtectionMode::Tunnel {
        local: addr("192.0.2.10"),
        remote: addr("192.0.2.20"),
    };
    assert_eq!(
        c.inbound_protected(&flow, &tunnel),
        Inbound::Block {
            filter_id: Some(in_id),
            reason: reason::WRONG_MODE
        }
    );

    let s = c.scopes();
    assert_eq!(s.route_prefixes, [net("192.0.2.20/32")]);
    assert_eq!(s.peers, [addr("192.0.2.20")]);
}

#[test]
fn tunnel_mode_protects_subnet_to_subnet_between_the_gateways() {
    let mut c = callout_for("tunnel-mode.toml");
    let out_id = filter_id(
        &c,
        Layer::OutboundTransportV4,
        "paris-to-berlin: outbound-tunnel-v4",
    );
    let in_id = filter_id(
        &c,
        Layer::InboundTransportV4,
        "paris-to-berlin: inbound-tunnel-v4",
    );
    let gateways = ProtectionMode::Tunnel {
        local: addr("198.51.100.1"),
        remote: addr("203.0.113.1"),
    };

    for remote in ["10.2.3.4", "10.3.0.1", "10.3.0.254"] {
        let p = protect(c.outbound(&out_flow(&tcp("10.1.0.5", 40000, remote, 22, true))));
        assert_eq!(p.mode, gateways, "{remote}");
        assert_eq!(
            (p.local, p.peer),
            (addr("198.51.100.1"), addr("203.0.113.1"))
        );
        assert_eq!(p.filter_id, out_id);
        assert_eq!(p.traffic.local.start_address, addr("10.1.0.5"));
        assert_eq!(p.traffic.remote.start_address, addr(remote));
    }
    for (local, remote) in [("10.1.0.5", "10.3.0.255"), ("10.9.0.1", "10.2.3.4")] {
        assert_eq!(
            c.outbound(&out_flow(&tcp(local, 40000, remote, 22, true))),
            Outbound::Clear,
            "{local} -> {remote}"
        );
    }

    let flow = in_flow(&tcp("10.2.3.4", 22, "10.1.0.5", 40000, false));
    assert_eq!(
        c.inbound_clear(&flow),
        Inbound::Block {
            filter_id: Some(in_id),
            reason: reason::CLEAR_WHERE_TUNNEL
        }
    );
    let through = SaSelectors {
        local: vec![range("10.1.0.0", "10.1.255.255")],
        remote: vec![range("10.2.0.0", "10.2.255.255")],
        mode: gateways,
        encrypting: true,
        peer_names: vec!["gw-berlin".into()],
    };
    assert_eq!(c.inbound_protected(&flow, &through), Inbound::Permit);
    let mut other_gateway = through.clone();
    other_gateway.mode = ProtectionMode::Tunnel {
        local: addr("198.51.100.1"),
        remote: addr("203.0.113.9"),
    };
    let wrong_tunnel = Inbound::Block {
        filter_id: Some(in_id),
        reason: reason::WRONG_TUNNEL,
    };
    assert_eq!(c.inbound_protected(&flow, &other_gateway), wrong_tunnel);
    let mut transport = through.clone();
    transport.mode = ProtectionMode::Transport;
    assert_eq!(c.inbound_protected(&flow, &transport), wrong_tunnel);

    let s = c.scopes();
    assert!(
        s.route_prefixes.contains(&net("10.2.0.0/16")),
        "{:?}",
        s.route_prefixes
    );
    let routed = |a: &str| s.route_prefixes.iter().any(|n| n.contains(addr(a)));
    for inside in [
        "10.2.0.0",
        "10.2.255.255",
        "10.3.0.1",
        "10.3.0.128",
        "10.3.0.254",
    ] {
        assert!(
            routed(inside),
            "{inside} not routed: {:?}",
            s.route_prefixes
        );
    }
    for outside in [
        "10.3.0.0",
        "10.3.0.255",
        "10.1.0.5",
        "203.0.113.1",
        "10.4.0.0",
    ] {
        assert!(!routed(outside), "{outside} routed: {:?}", s.route_prefixes);
    }
    assert_eq!(s.peers, [addr("203.0.113.1")]);
}

#[test]
fn exemptions_and_blocks_outrank_the_domain_rule() {
    let mut c = callout_for("exemptions.toml");
    let block_out = filter_id(
        &c,
        Layer::OutboundTransportV4,
        "quarantined: block-outbound-v4",
    );
    let block_in = filter_id(
        &c,
        Layer::InboundTransportV4,
        "quarantined: block-inbound-v4",
    );
    let domain_in = filter_id(
        &c,
        Layer::InboundTransportV4,
        "domain: inbound-transport-v4",
    );

    for exempt in ["10.0.0.53", "10.0.0.67"] {
        assert_eq!(
            c.outbound(&out_flow(&udp("10.9.9.9", 5353, exempt, 53))),
            Outbound::Clear,
            "{exempt}"
        );
        assert_eq!(
            c.inbound_clear(&in_flow(&udp(exempt, 53, "10.9.9.9", 5353))),
            Inbound::Permit
        );
    }
    assert_eq!(
        c.outbound(&out_flow(&tcp("10.9.9.9", 40000, "10.0.66.5", 80, true))),
        Outbound::Block {
            filter_id: Some(block_out)
        }
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp("10.0.66.5", 80, "10.9.9.9", 40000, false))),
        Inbound::Block {
            filter_id: Some(block_in),
            reason: reason::BLOCKED_BY_FILTER
        }
    );
    // A block stays a block when the packet arrives protected.
    let any = transport_sa(
        range("0.0.0.0", "255.255.255.255"),
        range("0.0.0.0", "255.255.255.255"),
    );
    assert_eq!(
        c.inbound_protected(
            &in_flow(&tcp("10.0.66.5", 80, "10.9.9.9", 40000, false)),
            &any
        ),
        Inbound::Block {
            filter_id: Some(block_in),
            reason: reason::BLOCKED_BY_FILTER
        }
    );

    let p = protect(c.outbound(&out_flow(&tcp("10.9.9.9", 40000, "10.5.5.5", 80, true))));
    assert_eq!(
        (p.mode, p.peer, p.local),
        (
            ProtectionMode::Transport,
            addr("10.5.5.5"),
            addr("10.9.9.9")
        )
    );
    assert!(!p.clear_fallback);
    assert_eq!(
        c.outbound(&out_flow(&icmp("10.9.9.9", "10.5.5.5", 8, 0))),
        Outbound::Clear
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp("10.5.5.5", 80, "10.9.9.9", 40000, false))),
        Inbound::Block {
            filter_id: Some(domain_in),
            reason: reason::CLEAR_WHERE_REQUIRED
        }
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&icmp("10.5.5.5", "10.9.9.9", 0, 0))),
        Inbound::Permit
    );
    // Exempt traffic that arrives protected anyway is accepted.
    assert_eq!(
        c.inbound_protected(&in_flow(&udp("10.0.0.53", 53, "10.9.9.9", 5353)), &any),
        Inbound::Permit
    );

    let s = c.scopes();
    assert_eq!(s.route_prefixes, [net("10.0.0.0/8")]);
    assert!(s.peers.is_empty(), "{:?}", s.peers);
}

#[test]
fn guaranteed_encryption_needs_an_encrypting_sa_and_never_falls_back_to_clear() {
    let mut c = callout_for("guaranteed-encryption.toml");
    let accept_id = filter_id(&c, Layer::AleAuthRecvAcceptV4, "payroll: recv-accept-v4");
    let in_id = filter_id(
        &c,
        Layer::InboundTransportV4,
        "payroll: inbound-transport-v4",
    );

    // Our server's replies from port 5555.
    let p = protect(c.outbound(&out_flow(&tcp("10.9.0.1", 5555, "10.20.1.1", 40000, false))));
    assert!(p.require_encryption);
    assert!(!p.clear_fallback, "request, but encryption is guaranteed");
    assert_eq!(
        c.outbound(&out_flow(&tcp("10.9.0.1", 5556, "10.20.1.1", 40000, false))),
        Outbound::Clear
    );

    // A clear connection to 5555 is refused; clear packets of a flow are accepted
    // (negotiation discovery) until the flow has once arrived protected.
    let syn = in_flow(&tcp("10.20.1.1", 40000, "10.9.0.1", 5555, true));
    let ack = in_flow(&tcp("10.20.1.1", 40000, "10.9.0.1", 5555, false));
    assert_eq!(
        c.inbound_clear(&syn),
        Inbound::Block {
            filter_id: Some(accept_id),
            reason: reason::CLEAR_CONNECTION
        }
    );
    assert_eq!(c.inbound_clear(&ack), Inbound::Permit);

    let any = |encrypting| SaSelectors {
        encrypting,
        ..transport_sa(
            range("10.9.0.1", "10.9.0.1"),
            range("10.20.0.0", "10.20.255.255"),
        )
    };
    assert_eq!(
        c.inbound_protected(&syn, &any(false)),
        Inbound::Block {
            filter_id: Some(accept_id),
            reason: reason::NOT_ENCRYPTED
        }
    );
    assert_eq!(c.inbound_protected(&syn, &any(true)), Inbound::Permit);
    assert_eq!(
        c.inbound_clear(&ack),
        Inbound::Block {
            filter_id: Some(in_id),
            reason: reason::CLEAR_AFTER_SECURED
        }
    );
    assert_eq!(
        c.inbound_clear_naive(&ack),
        c.inbound_clear(&ack),
        "the reference sees the secured flow too"
    );
}

#[test]
fn callouts_shared_between_threads_remember_secured_flows_together() {
    let mut data_plane = callout_for("negotiation-discovery.toml");
    let mut queue = data_plane.share();
    let mut unrelated = IpsecCallout::new(data_plane.engine().clone());
    let flow = in_flow(&tcp("198.51.100.7", 40000, "192.0.2.1", 80, false));
    let sa = transport_sa(
        range("192.0.2.1", "192.0.2.1"),
        range("198.51.100.7", "198.51.100.7"),
    );
    assert_eq!(queue.inbound_clear(&flow), Inbound::Permit);
    assert_eq!(data_plane.inbound_protected(&flow, &sa), Inbound::Permit);
    assert!(matches!(
        queue.inbound_clear(&flow),
        Inbound::Block {
            reason: reason::CLEAR_AFTER_SECURED,
            ..
        }
    ));
    assert_eq!(unrelated.inbound_clear(&flow), Inbound::Permit);
    // Another flow of the same peer is still in negotiation discovery's clear window.
    let other = in_flow(&tcp("198.51.100.7", 40001, "192.0.2.1", 80, false));
    assert_eq!(queue.inbound_clear(&other), Inbound::Permit);
}

#[test]
fn negotiation_discovery_allows_clear_fallback_and_secures_the_ring_inbound() {
    let mut c = callout_for("negotiation-discovery.toml");

    let p = protect(c.outbound(&out_flow(&tcp(
        "192.0.2.1",
        40000,
        "198.51.100.7",
        80,
        true,
    ))));
    assert!(p.clear_fallback);
    assert!(!p.require_encryption);
    assert_eq!(p.peer, addr("198.51.100.7"));
    // Boundary zone: inbound clear allowed, connections too.
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp("198.51.100.7", 40000, "192.0.2.1", 80, true))),
        Inbound::Permit
    );

    let p = protect(c.outbound(&out_flow(&tcp(
        "2001:db8::1",
        40000,
        "2001:db8:10::5",
        80,
        true,
    ))));
    assert!(p.clear_fallback);
    assert_eq!(
        (p.local, p.peer),
        (addr("2001:db8::1"), addr("2001:db8:10::5"))
    );
    // Secure ring: an inbound connection must arrive secured; other clear packets pass.
    let accept_id = filter_id(
        &c,
        Layer::AleAuthRecvAcceptV6,
        "secure-ring: recv-accept-v6",
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp(
            "2001:db8:10::5",
            40000,
            "2001:db8::1",
            22,
            true
        ))),
        Inbound::Block {
            filter_id: Some(accept_id),
            reason: reason::CLEAR_CONNECTION
        }
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp(
            "2001:db8:10::5",
            80,
            "2001:db8::1",
            40000,
            false
        ))),
        Inbound::Permit
    );
    let sa = transport_sa(
        range("2001:db8::1", "2001:db8::1"),
        range("2001:db8:10::5", "2001:db8:10::5"),
    );
    assert_eq!(
        c.inbound_protected(
            &in_flow(&tcp("2001:db8:10::5", 40000, "2001:db8::1", 22, true)),
            &sa
        ),
        Inbound::Permit
    );

    let s = c.scopes();
    assert_eq!(
        s.route_prefixes,
        [net("198.51.100.0/24"), net("2001:db8:10::/48")]
    );
    assert!(s.peers.is_empty());
}

#[test]
fn remote_identity_authorization_admits_only_the_named_peers() {
    let mut c = callout_for("remote-identity-authorization.toml");
    let blocker = filter_id(
        &c,
        Layer::AleAuthRecvAcceptV4,
        "isolated-server: recv-accept-unauthorized-v4",
    );
    let syn = in_flow(&tcp("192.0.2.77", 40000, "192.0.2.1", 5555, true));
    let sa = |names: &[&str]| SaSelectors {
        peer_names: names.iter().map(|s| (*s).to_owned()).collect(),
        ..transport_sa(
            range("192.0.2.1", "192.0.2.1"),
            range("192.0.2.77", "192.0.2.77"),
        )
    };
    let refused = Inbound::Block {
        filter_id: Some(blocker),
        reason: reason::CONNECTION_BLOCKED,
    };
    assert_eq!(c.inbound_clear(&syn), refused);
    assert_eq!(
        c.inbound_protected(&syn, &sa(&["admin1.example.com"])),
        Inbound::Permit
    );
    assert_eq!(
        c.inbound_protected(&syn, &sa(&["ADMIN2.example.com"])),
        Inbound::Permit
    );
    assert_eq!(
        c.inbound_protected(&syn, &sa(&["mallory.example.com"])),
        refused
    );
    // Not a connection start: ALE is not consulted again for the rest of the connection.
    let data = in_flow(&tcp("192.0.2.77", 40000, "192.0.2.1", 5555, false));
    assert_eq!(
        c.inbound_protected(&data, &sa(&["mallory.example.com"])),
        Inbound::Permit
    );
    // Once the flow arrived protected, it may not continue in clear.
    assert!(matches!(
        c.inbound_clear(&syn),
        Inbound::Block {
            reason: reason::CLEAR_AFTER_SECURED,
            ..
        }
    ));
    // Other ports are not the isolated server's business.
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp("192.0.2.77", 40000, "192.0.2.1", 22, true))),
        Inbound::Permit
    );

    // The rule names no addresses: every remote address is in scope.
    let s = c.scopes();
    assert_eq!(s.route_prefixes, [net("0.0.0.0/0"), net("::/0")]);
    let p = protect(c.outbound(&out_flow(&tcp(
        "192.0.2.1",
        5555,
        "192.0.2.77",
        40000,
        false,
    ))));
    assert!(p.clear_fallback);
}

#[test]
fn udp_is_authorized_per_flow_and_identity_and_answers_to_our_flows_pass() {
    // The example's isolated server, offering a UDP service instead.
    let text = example("remote-identity-authorization.toml")
        .replace(r#"protocol = "tcp""#, r#"protocol = "udp""#);
    let mut c = IpsecCallout::new(engine_from("udp-authorization.toml", &text));
    let blocker = filter_id(
        &c,
        Layer::AleAuthRecvAcceptV4,
        "isolated-server: recv-accept-unauthorized-v4",
    );
    let refused = Inbound::Block {
        filter_id: Some(blocker),
        reason: reason::CONNECTION_BLOCKED,
    };
    let sa = |names: &[&str]| SaSelectors {
        peer_names: names.iter().map(|s| (*s).to_owned()).collect(),
        ..transport_sa(
            range("192.0.2.1", "192.0.2.1"),
            range("192.0.2.0", "192.0.2.255"),
        )
    };
    let query = in_flow(&udp("192.0.2.77", 40000, "192.0.2.1", 5555));
    assert!(query.connection_start());
    // Every datagram is judged, in clear as protected: no handshake says which start.
    assert_eq!(c.inbound_clear(&query), refused);
    assert_eq!(c.inbound_clear(&query), refused, "cached");
    assert_eq!(
        c.inbound_protected(&query, &sa(&["mallory.example.com"])),
        refused
    );
    // The same flow from another SA is judged by that SA's identity, not the cache's.
    assert_eq!(
        c.inbound_protected(&query, &sa(&["admin1.example.com"])),
        Inbound::Permit
    );
    assert_eq!(
        c.inbound_protected(&query, &sa(&["mallory.example.com"])),
        refused
    );
    assert_eq!(
        c.inbound_protected(&query, &sa(&["admin1.example.com"])),
        Inbound::Permit
    );

    // Our own flow out of the service's port (the server asking a peer something):
    // the answers are not inbound connections, from any peer; a flow we did not
    // start still is one.
    let ours = out_flow(&udp("192.0.2.1", 5555, "192.0.2.99", 7000));
    let answer = in_flow(&udp("192.0.2.99", 7000, "192.0.2.1", 5555));
    assert_eq!(
        c.inbound_protected(&answer, &sa(&["mallory.example.com"])),
        refused
    );
    protect(c.outbound(&ours));
    assert_eq!(
        c.inbound_protected(&answer, &sa(&["mallory.example.com"])),
        Inbound::Permit,
        "an answer, though a block for it was cached"
    );
    assert_eq!(
        c.inbound_protected_naive(&answer, &sa(&["mallory.example.com"])),
        Inbound::Permit
    );
    let other = in_flow(&udp("192.0.2.99", 7001, "192.0.2.1", 5555));
    assert_eq!(
        c.inbound_protected(&other, &sa(&["mallory.example.com"])),
        refused
    );

    // A callout of another thread knows the flows this one started.
    let mut shared = c.share();
    assert_eq!(
        shared.inbound_protected(&answer, &sa(&["mallory.example.com"])),
        Inbound::Permit
    );
    // A later fragment shows no ports, and is no connection start.
    let mut later = query;
    later.later_fragment = true;
    (later.local_port, later.remote_port) = (0, 0);
    assert!(!later.connection_start());
}

#[test]
fn domain_isolation_requires_inbound_in_the_domain_and_exempts_infrastructure() {
    let mut c = callout_for("domain-isolation.toml");
    assert_eq!(
        c.outbound(&out_flow(&tcp("10.9.0.1", 40000, "10.0.0.5", 389, true))),
        Outbound::Clear
    );
    let p = protect(c.outbound(&out_flow(&tcp("10.9.0.1", 40000, "10.1.1.1", 445, true))));
    assert!(p.clear_fallback);
    assert!(matches!(
        c.inbound_clear(&in_flow(&tcp("10.1.1.1", 40000, "10.9.0.1", 445, true))),
        Inbound::Block {
            reason: reason::CLEAR_CONNECTION,
            ..
        }
    ));
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp("172.16.5.5", 40000, "10.9.0.1", 445, true))),
        Inbound::Permit
    );
    assert_eq!(
        c.inbound_clear(&in_flow(&tcp("10.0.0.5", 40000, "10.9.0.1", 445, true))),
        Inbound::Permit
    );
    let s = c.scopes();
    assert_eq!(s.route_prefixes, [net("10.0.0.0/8"), net("172.16.0.0/12")]);
}

#[test]
fn callouts_that_cannot_do_their_work_fail_closed() {
    let mut c = callout_for("transport-mode.toml");
    let engine = c.engine().clone();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let remote = |a: [u8; 4]| {
        Condition::new(
            Field::IpRemoteAddress,
            MatchType::Equal,
            ConditionValue::Scalar(Scalar::V4(Ipv4Addr::from(a))),
        )
    };
    let mut txn = s.begin(TxnKind::Write).expect("txn");
    for key in [0x5041, 0x5042] {
        txn.add_callout(Callout {
            key: uuid::Uuid::from_u128(key),
            name: "a third party's callout, not registered".into(),
            description: String::new(),
            flags: CalloutFlags::NONE,
            provider: None,
            layer: Layer::OutboundTransportV4,
        })
        .expect("callout");
    }
    // A tunnel filter without a tunnel policy does not know where the tunnel goes.
    let (_, tunnel) = txn
        .add_filter(
            Filter::new(
                Layer::OutboundTransportV4,
                Action::CalloutTerminating(g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4),
            )
            .condition(remote([192, 0, 2, 40])),
        )
        .expect("tunnel filter");
    // A callout no one registered acts as a block...
    let (_, unknown) = txn
        .add_filter(
            Filter::new(
                Layer::OutboundTransportV4,
                Action::CalloutTerminating(uuid::Uuid::from_u128(0x5041)),
            )
            .condition(remote([192, 0, 2, 41])),
        )
        .expect("unknown callout filter");
    // ...unless the filter says PERMIT_IF_CALLOUT_UNREGISTERED.
    txn.add_filter(
        Filter::new(
            Layer::OutboundTransportV4,
            Action::CalloutTerminating(uuid::Uuid::from_u128(0x5042)),
        )
        .flags(FilterFlags::PERMIT_IF_CALLOUT_UNREGISTERED)
        .condition(remote([192, 0, 2, 42])),
    )
    .expect("permit-if-unregistered filter");
    txn.commit().expect("commit");

    let to = |dst: &str| out_flow(&tcp("192.0.2.10", 40000, dst, 80, true));
    for (dst, id) in [("192.0.2.40", tunnel), ("192.0.2.41", unknown)] {
        let want = Outbound::Block {
            filter_id: Some(id),
        };
        assert_eq!(c.outbound(&to(dst)), want, "{dst}");
        assert_eq!(c.outbound_naive(&to(dst)), want, "{dst}");
    }
    assert_eq!(c.outbound(&to("192.0.2.42")), Outbound::Clear);
    // The tunnel filter names no peer, but its remote is routed.
    let routed = c.scopes().route_prefixes;
    assert!(routed.contains(&net("192.0.2.40/32")), "{routed:?}");
}

#[test]
fn policy_is_for_unicast_traffic() {
    let mut c = callout_for("remote-identity-authorization.toml");
    assert!(matches!(
        c.outbound(&out_flow(&tcp(
            "192.0.2.1",
            5555,
            "192.0.2.77",
            40000,
            false
        ))),
        Outbound::Protect(_)
    ));
    for dst in ["224.0.0.251", "255.255.255.255"] {
        assert_eq!(
            c.outbound(&out_flow(&tcp("192.0.2.1", 5555, dst, 40000, false))),
            Outbound::Clear,
            "{dst}"
        );
    }
    assert_eq!(
        c.outbound(&out_flow(&tcp(
            "2001:db8::1",
            5555,
            "ff02::1",
            40000,
            false
        ))),
        Outbound::Clear
    );
}

const PORT_POLICY: &str = r#"
[policy]
name = "ports"

[auth_sets.psk]
method = "preshared_key"
key = "a secret"

[[rules]]
name = "udp-to-60"
remote = "192.0.2.60"
protocol = "udp"
action = "exempt"

[[rules]]
name = "syslog"
remote = ["192.0.2.50", "192.0.2.60"]
protocol = "udp"
remote_ports = [514]
action = "require"
auth = "psk"
"#;

#[test]
fn later_fragments_of_flows_port_specific_policy_may_protect_are_not_clear() {
    let compiled =
        palisade_policy::compile_str("ports.toml", PORT_POLICY).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    palisade_policy::apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
    let mut c = IpsecCallout::new(engine);
    let out_id = filter_id(
        &c,
        Layer::OutboundTransportV4,
        "syslog: outbound-transport-v4",
    );
    let in_id = filter_id(
        &c,
        Layer::InboundTransportV4,
        "syslog: inbound-transport-v4",
    );
    let later = |mut p: Vec<u8>| {
        p[7] = 0x10;
        p
    };

    let whole = out_flow(&udp("192.0.2.1", 5000, "192.0.2.50", 514));
    assert!(matches!(c.outbound(&whole), Outbound::Protect(p) if p.filter_id == out_id));
    let frag = out_flow(&later(udp("192.0.2.1", 5000, "192.0.2.50", 514)));
    assert_eq!(
        c.outbound(&frag),
        Outbound::Block {
            filter_id: Some(out_id)
        }
    );
    assert_eq!(c.outbound_naive(&frag), c.outbound(&frag));
    let frag_in = in_flow(&later(udp("192.0.2.50", 514, "192.0.2.1", 5000)));
    assert_eq!(
        c.inbound_clear(&frag_in),
        Inbound::Block {
            filter_id: Some(in_id),
            reason: reason::CLEAR_WHERE_REQUIRED
        }
    );
    assert_eq!(c.inbound_clear_naive(&frag_in), c.inbound_clear(&frag_in));

    // No policy for that host, or an exemption that outranks the rule: clear.
    for dst in ["192.0.2.51", "192.0.2.60"] {
        let frag = out_flow(&later(udp("192.0.2.1", 5000, dst, 514)));
        assert_eq!(c.outbound(&frag), Outbound::Clear, "{dst}");
        let frag_in = in_flow(&later(udp(dst, 514, "192.0.2.1", 5000)));
        assert_eq!(c.inbound_clear(&frag_in), Inbound::Permit, "{dst}");
    }
}

// ---- the cache ----

#[test]
fn the_cache_follows_the_engine_to_a_new_snapshot() {
    let mut c = callout_for("transport-mode.toml");
    let flow = out_flow(&tcp("192.0.2.10", 40000, "192.0.2.20", 443, true));
    assert!(matches!(c.outbound(&flow), Outbound::Protect(_)));
    assert!(!c.sync(), "nothing changed");
    assert!(c.cached() > 0);

    let engine = c.engine().clone();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let mut txn = s.begin(TxnKind::Write).expect("txn");
    let (_, id) = txn
        .add_filter(
            Filter::new(Layer::OutboundTransportV4, Action::Block)
                .name("quarantine db01")
                .weight(Weight::Range(15))
                .condition(Condition::new(
                    Field::IpRemoteAddress,
                    MatchType::Equal,
                    ConditionValue::Scalar(Scalar::V4(Ipv4Addr::new(192, 0, 2, 20))),
                )),
        )
        .expect("add");
    txn.commit().expect("commit");

    assert_eq!(
        c.outbound(&flow),
        Outbound::Block {
            filter_id: Some(id)
        }
    );
    assert!(!c.sync(), "the query already followed the engine");
}

#[test]
fn the_cache_stays_within_its_bound() {
    let mut c = callout_for("exemptions.toml");
    for i in 0..(FLOW_CACHE_BOUND as u32 + 100) {
        let port = u16::try_from(i % 60_000).expect("port") + 1;
        let host = i / 60_000;
        let remote = format!("10.5.{host}.1");
        c.outbound(&out_flow(&udp("10.9.9.9", port, &remote, 53)));
        assert!(c.cached() <= FLOW_CACHE_BOUND);
    }
    assert!(c.cached() > 0);
}

const FILES: [&str; 7] = [
    "transport-mode.toml",
    "tunnel-mode.toml",
    "exemptions.toml",
    "guaranteed-encryption.toml",
    "negotiation-discovery.toml",
    "remote-identity-authorization.toml",
    "domain-isolation.toml",
];

/// Addresses the policies name, their neighbours, and some that no policy names.
const V4: &[&str] = &[
    "192.0.2.10",
    "192.0.2.11",
    "192.0.2.20",
    "192.0.2.21",
    "10.1.0.5",
    "10.2.3.4",
    "10.3.0.0",
    "10.3.0.1",
    "10.3.0.255",
    "10.0.0.1",
    "10.0.0.53",
    "10.0.0.9",
    "10.0.0.10",
    "10.0.66.1",
    "10.20.1.1",
    "10.9.0.1",
    "172.16.0.1",
    "172.32.0.1",
    "198.51.100.7",
    "198.51.101.1",
    "203.0.113.1",
    "224.0.0.251",
    "255.255.255.255",
    "0.0.0.0",
];
const V6: &[&str] = &[
    "2001:db8::1",
    "2001:db8:10::5",
    "2001:db8:11::5",
    "fe80::1",
    "ff02::1",
    "::",
];
const PORTS: &[u16] = &[0, 22, 53, 443, 500, 4500, 5555, 40000];
const PROTOCOLS: &[u8] = &[TCP, UDP, ICMP, ICMPV6, 50, 132];

fn any_flow() -> impl Strategy<Value = Flow> {
    let v4 = (0..V4.len(), 0..V4.len()).prop_map(|(a, b)| (addr(V4[a]), addr(V4[b])));
    let v6 = (0..V6.len(), 0..V6.len()).prop_map(|(a, b)| (addr(V6[a]), addr(V6[b])));
    let port = prop_oneof![(0..PORTS.len()).prop_map(|i| PORTS[i]), any::<u16>()];
    (
        prop_oneof![3 => v4, 1 => v6],
        (0..PROTOCOLS.len()).prop_map(|i| PROTOCOLS[i]),
        port.clone(),
        port,
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|((local, remote), protocol, lp, rp, syn, later)| Flow {
            family: if local.is_ipv4() {
                Family::V4
            } else {
                Family::V6
            },
            local,
            remote,
            protocol,
            local_port: if later { 0 } else { lp },
            remote_port: if later { 0 } else { rp },
            tcp_syn: syn && protocol == TCP,
            later_fragment: later,
        })
}

fn any_sa() -> impl Strategy<Value = SaSelectors> {
    let everything = |v6: bool| {
        if v6 {
            range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        } else {
            range("0.0.0.0", "255.255.255.255")
        }
    };
    (
        any::<bool>(),
        0..3usize,
        any::<bool>(),
        prop::sample::select(vec![
            "admin1.example.com",
            "mallory.example.com",
            "gw-berlin",
        ]),
    )
        .prop_map(move |(v6, mode, encrypting, name)| SaSelectors {
            local: vec![everything(v6)],
            remote: vec![everything(v6)],
            mode: match mode {
                0 => ProtectionMode::Transport,
                1 => ProtectionMode::Tunnel {
                    local: addr("198.51.100.1"),
                    remote: addr("203.0.113.1"),
                },
                _ => ProtectionMode::Tunnel {
                    local: addr("198.51.100.1"),
                    remote: addr("203.0.113.9"),
                },
            },
            encrypting,
            peer_names: vec![name.to_owned()],
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Through the index and the cache, twice (a miss, then a hit), every decision is
    /// the one `Engine::classify_naive` gives through the same callouts.
    #[test]
    fn cached_decisions_are_the_naive_classifiers(
        file in 0..FILES.len(),
        flows in prop::collection::vec((any_flow(), any_sa()), 1..24),
    ) {
        let mut c = callout_for(FILES[file]);
        for _round in 0..2 {
            for (flow, sa) in &flows {
                prop_assert_eq!(c.outbound(flow), c.outbound_naive(flow), "{:?}", flow);
                prop_assert_eq!(c.inbound_clear(flow), c.inbound_clear_naive(flow), "{:?}", flow);
                let naive = c.inbound_protected_naive(flow, sa);
                prop_assert_eq!(c.inbound_protected(flow, sa), naive, "{:?} on {:?}", flow, sa);
            }
        }
    }
}

#[test]
fn blocked_prefixes_are_routed_to_the_daemon_too() {
    // A block rule outside every IPsec rule: unless its traffic is routed into the TUN
    // (and guarded by the firewall), nothing classifies it and it leaves in clear.
    let text = r#"
[policy]
name = "blocks"

[auth_sets.psk]
method = "preshared_key"
key = "k"

[[rules]]
name = "banned"
remote = "198.51.100.0/24"
action = "block"

[[rules]]
name = "peer"
remote = "192.0.2.20"
action = "require"
auth = "psk"
"#;
    let compiled =
        palisade_policy::compile_str("blocks.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    palisade_policy::apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
    let mut c = IpsecCallout::new(engine);
    let scopes = c.scopes();
    assert!(
        scopes.route_prefixes.contains(&net("198.51.100.0/24")),
        "{scopes:?}"
    );
    assert!(
        scopes.route_prefixes.contains(&net("192.0.2.20/32")),
        "{scopes:?}"
    );
    // The IKE peers are the IPsec rule's only.
    assert_eq!(scopes.peers, vec![addr("192.0.2.20")]);
    assert!(matches!(
        c.outbound(&out_flow(&tcp(
            "192.0.2.10",
            40000,
            "198.51.100.7",
            443,
            true
        ))),
        Outbound::Block { .. }
    ));
    assert!(matches!(
        c.inbound_clear(&in_flow(&tcp(
            "198.51.100.7",
            443,
            "192.0.2.10",
            40000,
            false
        ))),
        Inbound::Block { .. }
    ));
}

// ---- ALE_USER_ID and ALE_APP_ID ----

/// Owners of the local sockets by local port, counting the lookups.
struct PortOwners {
    by_port: Vec<(u16, LocalOwner)>,
    lookups: Arc<AtomicUsize>,
}

impl SocketOwners for PortOwners {
    fn lookup(&mut self, flow: &Flow, program: bool) -> Option<LocalOwner> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let mut owner = self
            .by_port
            .iter()
            .find(|(p, _)| *p == flow.local_port)
            .map(|(_, o)| o.clone())?;
        if !program {
            owner.program = None;
        }
        Some(owner)
    }
}

fn owned(uid: u32, program: &str) -> LocalOwner {
    LocalOwner {
        uid,
        gids: vec![uid],
        program: Some(program.into()),
        pending: false,
    }
}

#[test]
fn ale_layers_see_the_user_and_program_of_the_local_socket_when_a_filter_asks() {
    let lookups = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&lookups);
    let factory: SocketOwnersFactory = Arc::new(move || {
        Box::new(PortOwners {
            by_port: vec![
                (40000, owned(1000, "/usr/bin/curl")),
                (40001, owned(1000, "/usr/bin/ssh")),
                (22, owned(0, "/usr/sbin/sshd")),
                (8080, owned(1000, "/home/u/server")),
            ],
            lookups: Arc::clone(&counted),
        })
    });
    let mut c = callout_for("transport-mode.toml").with_socket_owners(factory);
    let curl = out_flow(&tcp("192.0.2.10", 40000, "192.0.2.20", 443, true));
    let ssh = out_flow(&tcp("192.0.2.10", 40001, "192.0.2.20", 22, true));
    // No filter tests the fields: no lookup at all.
    protect(c.outbound(&curl));
    assert_eq!(lookups.load(Ordering::Relaxed), 0);

    let engine = c.engine().clone();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let mut txn = s.begin(TxnKind::Write).expect("txn");
    let (_, no_curl) = txn
        .add_filter(
            Filter::new(Layer::AleAuthConnectV4, Action::Block)
                .name("no curl")
                .condition(Condition::new(
                    Field::AleAppId,
                    MatchType::Equal,
                    ConditionValue::Text("/usr/bin/curl".into()),
                )),
        )
        .expect("app filter");
    let (_, no_user_services) = txn
        .add_filter(
            Filter::new(Layer::AleAuthRecvAcceptV4, Action::Block)
                .name("no services of user 1000")
                .condition(Condition::new(
                    Field::AleUserId,
                    MatchType::Equal,
                    ConditionValue::Sd(SecurityDescriptor::allow([Principal::Uid(1000)])),
                )),
        )
        .expect("user filter");
    txn.commit().expect("commit");

    // Outbound, by program: curl's connection start is blocked, ssh's is not. The
    // decisions are cached: a protected flow's SYN and its later packets are classified
    // once each (later packets at ALE_AUTH_CONNECT too, for guaranteed encryption).
    assert_eq!(
        c.outbound(&curl),
        Outbound::Block {
            filter_id: Some(no_curl)
        }
    );
    protect(c.outbound(&ssh));
    assert_eq!(lookups.load(Ordering::Relaxed), 2);
    let ssh_later = out_flow(&tcp("192.0.2.10", 40001, "192.0.2.20", 22, false));
    for _ in 0..3 {
        protect(c.outbound(&ssh));
        protect(c.outbound(&ssh_later));
    }
    assert_eq!(
        lookups.load(Ordering::Relaxed),
        3,
        "once per cached decision"
    );

    // Inbound, by user, in a callout of another thread: user 1000's listener is not
    // reachable, root's is; a socket no one holds matches no user condition.
    let mut other = c.share();
    let sa = transport_sa(
        range("192.0.2.10", "192.0.2.10"),
        range("192.0.2.20", "192.0.2.20"),
    );
    let to = |port| in_flow(&tcp("192.0.2.20", 50000, "192.0.2.10", port, true));
    assert_eq!(
        other.inbound_protected(&to(8080), &sa),
        Inbound::Block {
            filter_id: Some(no_user_services),
            reason: reason::CONNECTION_BLOCKED
        }
    );
    assert_eq!(other.inbound_protected(&to(22), &sa), Inbound::Permit);
    assert_eq!(other.inbound_protected(&to(9999), &sa), Inbound::Permit);
    // The reference path knows no owners: the fields are unset there.
    assert_eq!(c.inbound_protected_naive(&to(8080), &sa), Inbound::Permit);
}

/// Owners whose programs take a while: the first lookup of each port says the program
/// is pending, later ones know it.
struct SlowOwners {
    by_port: Vec<(u16, LocalOwner)>,
    asked: Vec<u16>,
}

impl SocketOwners for SlowOwners {
    fn lookup(&mut self, flow: &Flow, program: bool) -> Option<LocalOwner> {
        let mut owner = self
            .by_port
            .iter()
            .find(|(p, _)| *p == flow.local_port)
            .map(|(_, o)| o.clone())?;
        if program && !self.asked.contains(&flow.local_port) {
            self.asked.push(flow.local_port);
            owner.program = None;
            owner.pending = true;
        }
        Some(owner)
    }
}

#[test]
fn a_connection_start_waits_for_a_program_still_looked_for_and_is_judged_again() {
    let factory: SocketOwnersFactory = Arc::new(|| {
        Box::new(SlowOwners {
            by_port: vec![
                (40000, owned(1000, "/usr/bin/curl")),
                (40001, owned(1000, "/usr/bin/ssh")),
                (8080, owned(1000, "/home/u/server")),
            ],
            asked: Vec::new(),
        })
    });
    let mut c = callout_for("transport-mode.toml").with_socket_owners(factory);
    let engine = c.engine().clone();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let mut txn = s.begin(TxnKind::Write).expect("txn");
    let app = |path: &str| {
        Condition::new(
            Field::AleAppId,
            MatchType::Equal,
            ConditionValue::Text(path.into()),
        )
    };
    let (_, no_curl) = txn
        .add_filter(
            Filter::new(Layer::AleAuthConnectV4, Action::Block)
                .name("no curl")
                .condition(app("/usr/bin/curl")),
        )
        .expect("connect filter");
    let (_, no_server) = txn
        .add_filter(
            Filter::new(Layer::AleAuthRecvAcceptV4, Action::Block)
                .name("no server")
                .condition(app("/home/u/server")),
        )
        .expect("accept filter");
    txn.commit().expect("commit");

    // Outbound: a block filter is not passed while curl's program is unknown; the
    // pending decision is not remembered, and the retransmitted SYN is blocked by it.
    let curl = out_flow(&tcp("192.0.2.10", 40000, "192.0.2.20", 443, true));
    assert_eq!(c.outbound(&curl), Outbound::Pending);
    let blocked = Outbound::Block {
        filter_id: Some(no_curl),
    };
    assert_eq!(c.outbound(&curl), blocked);
    assert_eq!(c.outbound(&curl), blocked);
    // A program no filter blocks: held once, then protected as policy says.
    let ssh = out_flow(&tcp("192.0.2.10", 40001, "192.0.2.20", 22, true));
    assert_eq!(c.outbound(&ssh), Outbound::Pending);
    protect(c.outbound(&ssh));

    // Inbound, at ALE_AUTH_RECV_ACCEPT, likewise.
    let sa = transport_sa(
        range("192.0.2.10", "192.0.2.10"),
        range("192.0.2.20", "192.0.2.20"),
    );
    let to_server = in_flow(&tcp("192.0.2.20", 50000, "192.0.2.10", 8080, true));
    assert_eq!(
        c.inbound_protected(&to_server, &sa),
        Inbound::Block {
            filter_id: None,
            reason: reason::PROGRAM_PENDING
        }
    );
    assert_eq!(
        c.inbound_protected(&to_server, &sa),
        Inbound::Block {
            filter_id: Some(no_server),
            reason: reason::CONNECTION_BLOCKED
        }
    );
}
