//! Palisade to Palisade over IPv6: transport mode between two hosts and tunnel mode
//! between gateways with a host behind each, ping and a TCP transfer, with raw ESP and
//! with ESP in UDP (forced) on the wire. Root only; skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;
mod sys_common;

use std::net::{Ipv6Addr, SocketAddr};

use common::bridge::host_behind;
use common::daemon::{
    Capture, Daemon, not_ipsec_between, require_policy, tcp_transfer, tunnel_policy, veth_of,
};
use netns::{Netns, VethPair, root_or_skip};
use sys_common::enable_ipv6;

const A: Ipv6Addr = sys_common::V6_A;
const B: Ipv6Addr = sys_common::V6_B;

fn policy(me: Ipv6Addr, peer: Ipv6Addr) -> String {
    require_policy("e2e-ipv6", me, peer, "")
}

#[test]
fn ipv6_transport_mode_ping_and_tcp_cross_as_esp_only() {
    if !root_or_skip("ipv6_transport_mode_ping_and_tcp_cross_as_esp_only") {
        return;
    }
    transport("", false);
}

/// The same in ESP in UDP (forced by `a`): over IPv6 the UDP checksum is mandatory, and
/// the segmented sends and coalesced receives run on the IPv6 NAT-T sockets.
#[test]
fn ipv6_transport_mode_in_udp_ping_and_tcp_cross_as_esp_in_udp_only() {
    if !root_or_skip("ipv6_transport_mode_in_udp_ping_and_tcp_cross_as_esp_in_udp_only") {
        return;
    }
    transport("[ike]\nforce_udp_encapsulation = true\n", true);
}

/// Ping and TCP from a to b over IPv6, a's daemon with `settings`; `udp`: the ESP must
/// be in UDP, none raw.
fn transport(settings: &str, udp: bool) {
    let pair = VethPair::new().expect("namespaces");
    enable_ipv6(&pair.a, A);
    enable_ipv6(&pair.b, B);
    let a = Daemon::start_with(&pair.a, "a", &policy(A, B), settings).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(B, A)).expect("daemon b");
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), a.dir().join("wire.pcap")).expect("tcpdump");

    let ping = pair
        .a
        .command("ping")
        .args(["-6", "-c", "5", "-i", "0.2", "-W", "3", &B.to_string()])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping -6 failed:\n{}{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr),
        a.log(),
        b.log()
    );

    let moved = tcp_transfer(&pair.a, &pair.b, SocketAddr::from((B, 5201)), 32 * 65536)
        .expect("TCP transfer");
    assert_eq!(moved, 32 * 65536);

    let lines = capture.finish();
    assert!(
        lines.iter().any(|l| l.contains("ESP(")),
        "no ESP: {lines:#?}"
    );
    let clear = not_ipsec_between(&lines, A.into(), B.into());
    assert!(clear.is_empty(), "clear text between the hosts: {clear:#?}");
    let in_udp = lines
        .iter()
        .filter(|l| l.contains("UDP-encap: ESP("))
        .count();
    let raw: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(": ESP(") && !l.contains("UDP-encap: ESP("))
        .collect();
    if udp {
        assert!(in_udp > 0, "no ESP in UDP: {lines:#?}");
        assert!(raw.is_empty(), "raw ESP: {raw:#?}");
    } else {
        assert_eq!(in_udp, 0, "ESP in UDP without a NAT: {lines:#?}");
    }
    for d in [&a, &b] {
        let sas = d.wait_for_sas("an IPv6 CHILD_SA", |s| {
            s.iter()
                .any(|i| !i.child_sas.is_empty() && i.remote.starts_with('['))
        });
        let c = &sas[0].child_sas[0];
        assert_eq!(c.mode, "transport");
        assert_eq!(c.udp_encap, udp);
        assert!(c.inbound.packets > 0 && c.outbound.packets > 0, "{c:?}");
    }
}

/// A host namespace behind `gw` on `fd00:5041:<net>::/64`: the gateway is ::1, the host
/// ::2, IPv6 on and forwarding at the gateway.
fn v6_host_behind(gw: &Netns, tag: char, net: u16) -> Netns {
    let (host, g, h) = host_behind(gw, tag);
    for (ns, dev) in [(gw, g.as_str()), (&host, h.as_str())] {
        ns.run(|| {
            for conf in ["all", "default", "lo", dev] {
                std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "0")
                    .expect("enable IPv6");
            }
        })
        .expect("setns");
    }
    let prefix = format!("fd00:5041:{net:x}::");
    gw.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{prefix}1/64"),
        "dev",
        &g,
        "nodad",
    ])
    .expect("addr");
    gw.ip(&["link", "set", &g, "up"]).expect("up");
    host.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{prefix}2/64"),
        "dev",
        &h,
        "nodad",
    ])
    .expect("addr");
    host.ip(&["link", "set", &h, "up"]).expect("up");
    host.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        &format!("{prefix}1"),
    ])
    .expect("route");
    gw.run(|| std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1"))
        .expect("ns")
        .expect("forwarding");
    host
}

fn site_policy(local_net: &str, remote_net: &str, me: Ipv6Addr, peer: Ipv6Addr) -> String {
    tunnel_policy("e2e-ipv6-tunnel", local_net, remote_net, me, peer)
}

#[test]
fn ipv6_tunnel_mode_between_gateways_carries_only_esp() {
    if !root_or_skip("ipv6_tunnel_mode_between_gateways_carries_only_esp") {
        return;
    }
    tunnel("", false);
}

/// The same with ESP in UDP (forced by gateway a).
#[test]
fn ipv6_tunnel_mode_in_udp_between_gateways_carries_only_esp_in_udp() {
    if !root_or_skip("ipv6_tunnel_mode_in_udp_between_gateways_carries_only_esp_in_udp") {
        return;
    }
    tunnel("[ike]\nforce_udp_encapsulation = true\n", true);
}

/// h1 behind gateway a pings h2 behind gateway b over IPv6, gateway a's daemon with
/// `settings`; `udp`: the ESP between the gateways must be in UDP, none raw.
fn tunnel(settings: &str, udp: bool) {
    let pair = VethPair::new().expect("namespaces");
    enable_ipv6(&pair.a, A);
    enable_ipv6(&pair.b, B);
    let h1 = v6_host_behind(&pair.a, '1', 0x10);
    let h2 = v6_host_behind(&pair.b, '2', 0x20);
    let (n1, n2) = ("fd00:5041:10::/64", "fd00:5041:20::/64");
    let a = Daemon::start_with(&pair.a, "gw-a", &site_policy(n1, n2, A, B), settings)
        .expect("daemon a");
    let b = Daemon::start(&pair.b, "gw-b", &site_policy(n2, n1, B, A)).expect("daemon b");
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), a.dir().join("wire.pcap")).expect("tcpdump");
    let ping = h1
        .command("ping")
        .args(["-6", "-c", "5", "-i", "0.2", "-W", "3", "fd00:5041:20::2"])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping -6 h1 -> h2 failed:\n{}{}\n--- gw-a ---\n{}\n--- gw-b ---\n{}",
        String::from_utf8_lossy(&ping.stdout),
        String::from_utf8_lossy(&ping.stderr),
        a.log(),
        b.log()
    );
    let to = SocketAddr::from(("fd00:5041:20::2".parse::<Ipv6Addr>().expect("h2"), 5201));
    let moved = tcp_transfer(&h1, &h2, to, 4 << 20)
        .unwrap_or_else(|e| panic!("TCP h1 -> h2: {e}\n--- gw-a ---\n{}", a.log()));
    assert_eq!(moved, 4 << 20, "the TCP transfer lost bytes");
    let lines = capture.finish();
    let inner: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("fd00:5041:10::2") || l.contains("fd00:5041:20::2"))
        .collect();
    assert!(
        inner.is_empty(),
        "inner addresses between the gateways: {inner:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ESP(")),
        "no ESP: {lines:#?}"
    );
    let raw = lines
        .iter()
        .filter(|l| l.contains(": ESP(") && !l.contains("UDP-encap: ESP("))
        .count();
    let in_udp = lines
        .iter()
        .filter(|l| l.contains("UDP-encap: ESP("))
        .count();
    if udp {
        assert!(
            in_udp > 0 && raw == 0,
            "{in_udp} in UDP, {raw} raw: {lines:#?}"
        );
    } else {
        assert!(
            raw > 0 && in_udp == 0,
            "{in_udp} in UDP, {raw} raw: {lines:#?}"
        );
    }
    for d in [&a, &b] {
        let sas = d.wait_for_sas("an IPv6 tunnel CHILD_SA", |s| {
            s.iter()
                .any(|i| i.child_sas.iter().any(|c| c.mode == "tunnel"))
        });
        let c = &sas[0].child_sas[0];
        assert!(c.inbound.packets >= 4 && c.outbound.packets >= 4, "{c:?}");
        assert_eq!(c.udp_encap, udp);
    }
}
