//! Palisade to Palisade in transport mode, end to end: two hosts in network namespaces,
//! a palisaded on each with the same kind of policy file, traffic between them.
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::IpAddr;

use common::daemon::{
    Capture, Daemon, assert_forged_dropped, not_ipsec_between, require_policy, send_forged,
    tcp_transfer, veth_of,
};
use netns::{VethPair, root_or_skip};

/// Everything between the two hosts protected (no ICMP exemption: ping must be ESP).
fn policy(me: IpAddr, peer: IpAddr) -> String {
    require_policy("e2e-transport", me, peer, "")
}

#[test]
fn transport_mode_ping_and_tcp_cross_as_esp_only() {
    if !root_or_skip("transport_mode_ping_and_tcp_cross_as_esp_only") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    let veth = veth_of(&pair.a);
    let capture = Capture::start(&pair.a, &veth, a.dir().join("wire.pcap")).expect("tcpdump");

    // The first echo request starts IKE and waits for the SA; the rest follow on it.
    let ping = pair
        .a
        .command("ping")
        .args(["-c", "5", "-i", "0.2", "-W", "3", &b_ip.to_string()])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping failed:\n{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&ping.stdout),
        a.log(),
        b.log()
    );
    let moved = tcp_transfer(&pair.a, &pair.b, (VethPair::ADDR_B, 5201).into(), 4 << 20)
        .expect("TCP transfer");
    assert_eq!(moved, 4 << 20, "the TCP transfer lost bytes");

    let lines = capture.finish();
    assert!(
        lines.iter().any(|l| l.contains("ESP(")),
        "no ESP seen: {lines:#?}"
    );
    let clear = not_ipsec_between(&lines, a_ip, b_ip);
    assert!(
        clear.is_empty(),
        "clear-text packets between the hosts: {clear:#?}"
    );

    for (d, name) in [(&a, "a"), (&b, "b")] {
        let sas = d.wait_for_sas("one IKE SA with one CHILD_SA", |s| {
            s.len() == 1 && s[0].child_sas.len() == 1
        });
        let child = &sas[0].child_sas[0];
        assert_eq!(child.mode, "transport", "{name}");
        assert!(child.outbound.packets >= 5, "{name}: {child:?}");
        assert!(child.inbound.packets >= 5, "{name}: {child:?}");
        assert!(
            child.inbound.bytes > 0 && child.outbound.bytes > 0,
            "{name}"
        );
    }
}

#[test]
fn tampered_esp_is_dropped_and_counted() {
    if !root_or_skip("tampered_esp_is_dropped_and_counted") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    let ping = pair
        .a
        .command("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "3", &b_ip.to_string()])
        .output()
        .expect("ping");
    assert!(ping.status.success(), "{}\n{}", a.log(), b.log());
    let sas = b.wait_for_sas("a CHILD_SA", |s| s.iter().any(|i| !i.child_sas.is_empty()));
    let spi = sas[0].child_sas[0].inbound_spi;
    let before = sas[0].child_sas[0].inbound.clone();

    // A packet with b's SPI and a high sequence number whose ICV is wrong, from a's
    // address: the kernel builds the IP header, the rest is ours.
    let mut esp = Vec::new();
    esp.extend_from_slice(&spi.to_be_bytes());
    esp.extend_from_slice(&1000u32.to_be_bytes());
    esp.extend_from_slice(&[0xa5; 8 + 64 + 16]);
    send_forged(&pair.a, b_ip, 50, &esp).expect("send tampered ESP");
    assert_forged_dropped(&b, &before);
    assert!(
        b.stats()
            .global_drops
            .get("integrity")
            .copied()
            .unwrap_or(0)
            >= 1
    );
    // The pair still works.
    let ping = pair
        .a
        .command("ping")
        .args(["-c", "1", "-W", "3", &b_ip.to_string()])
        .output()
        .expect("ping");
    assert!(ping.status.success());
}
