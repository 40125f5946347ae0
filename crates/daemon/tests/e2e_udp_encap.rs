//! ESP in UDP without a NAT, end to end: two Palisade hosts in transport mode, one with
//! `[ike] force_udp_encapsulation = true`, the other with the defaults. The forcing side
//! makes up its NAT detection hash, so both move IKE to port 4500 after IKE_SA_INIT and
//! carry ESP in UDP (RFC 3948): the wire between them holds UDP 500 and 4500 only.
//! With no NAT nobody sends keepalives, so dead peer detection is what notices a peer
//! gone: the last test kills one and watches the other delete its SAs.
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::daemon::{
    Capture, Daemon, assert_forged_dropped, not_ipsec_between, ping, require_policy, send_forged,
    tcp_transfer, veth_of,
};
use netns::{VethPair, root_or_skip};

const FORCE: &str = "[ike]\nforce_udp_encapsulation = true\n";

/// Everything between the two hosts protected (no ICMP exemption: ping must be ESP).
fn policy(me: IpAddr, peer: IpAddr) -> String {
    require_policy("e2e-udp-encap", me, peer, "")
}

/// The UDP ports of a tcpdump summary line `... IP 10.0.0.1.4500 > 10.0.0.2.4500: ...`,
/// or None if it is not UDP-looking (no port on either address).
fn ports(line: &str) -> Option<(u16, u16)> {
    let rest = line.split(" IP ").nth(1)?;
    let (src, rest) = rest.split_once(" > ")?;
    let dst = rest.split(':').next()?;
    // An address with a port has five dotted parts, one without four.
    fn port(a: &str) -> Option<u16> {
        if a.split('.').count() != 5 {
            return None;
        }
        a.rsplit('.').next()?.parse().ok()
    }
    Some((port(src)?, port(dst)?))
}

#[test]
fn forced_udp_encapsulation_carries_ping_and_tcp_in_udp_4500_only() {
    if !root_or_skip("forced_udp_encapsulation_carries_ping_and_tcp_in_udp_4500_only") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let a = Daemon::start_with(&pair.a, "a", &policy(a_ip, b_ip), FORCE).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    let veth = veth_of(&pair.a);
    let capture = Capture::start(&pair.a, &veth, a.dir().join("wire.pcap")).expect("tcpdump");

    // The first echo request starts IKE and waits for the SA; the rest follow on it.
    let out = ping(&pair.a, b_ip, 5);
    assert!(
        out.status.success(),
        "ping failed:\n{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        a.log(),
        b.log()
    );
    let moved = tcp_transfer(&pair.a, &pair.b, (VethPair::ADDR_B, 5201).into(), 4 << 20)
        .unwrap_or_else(|e| panic!("TCP transfer: {e}\n--- a ---\n{}", a.log()));
    assert_eq!(moved, 4 << 20, "the TCP transfer lost bytes");

    let lines = capture.finish();
    let between: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&format!(" {a_ip}")) && l.contains(&format!(" {b_ip}")))
        .filter(|l| l.contains(" IP "))
        .collect();
    let esp_in_udp = between
        .iter()
        .filter(|l| l.contains("UDP-encap: ESP("))
        .count();
    assert!(
        esp_in_udp >= 10,
        "{esp_in_udp} ESP-in-UDP packets: {lines:#?}"
    );
    let raw_esp: Vec<_> = between
        .iter()
        .filter(|l| l.contains(": ESP(") && !l.contains("UDP-encap: ESP("))
        .collect();
    assert!(raw_esp.is_empty(), "raw ESP (protocol 50): {raw_esp:#?}");
    let other: Vec<_> = between
        .iter()
        .filter(|l| !matches!(ports(l), Some((500, 500)) | Some((4500, 4500))))
        .collect();
    assert!(other.is_empty(), "not UDP 500/4500: {other:#?}");
    // IKE_SA_INIT on 500, everything after it (IKE_AUTH included) on 4500.
    assert!(
        between
            .iter()
            .any(|l| ports(l) == Some((500, 500)) && l.contains("ikev2_init")),
        "{lines:#?}"
    );
    assert!(
        between
            .iter()
            .any(|l| ports(l) == Some((4500, 4500)) && l.contains("NONESP-encap: isakmp")),
        "{lines:#?}"
    );
    assert!(
        !between
            .iter()
            .any(|l| ports(l) == Some((500, 500)) && l.contains("ikev2_auth")),
        "IKE_AUTH on port 500: {lines:#?}"
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
        assert!(sas[0].nat, "{name}: IKE SA not on 4500: {:?}", sas[0]);
        assert!(sas[0].local.ends_with(":4500"), "{name}: {}", sas[0].local);
        let child = &sas[0].child_sas[0];
        assert_eq!(child.mode, "transport", "{name}");
        assert!(child.udp_encap, "{name}: {child:?}");
        assert!(child.outbound.packets >= 5, "{name}: {child:?}");
        assert!(child.inbound.packets >= 5, "{name}: {child:?}");
    }
}

#[test]
fn tampered_esp_in_udp_is_dropped_and_counted() {
    if !root_or_skip("tampered_esp_in_udp_is_dropped_and_counted") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let a = Daemon::start_with(&pair.a, "a", &policy(a_ip, b_ip), FORCE).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    let out = ping(&pair.a, b_ip, 2);
    assert!(out.status.success(), "{}\n{}", a.log(), b.log());
    let sas = b.wait_for_sas("a CHILD_SA", |s| s.iter().any(|i| !i.child_sas.is_empty()));
    let child = &sas[0].child_sas[0];
    assert!(child.udp_encap, "{child:?}");
    let spi = child.inbound_spi;
    let before = child.inbound.clone();

    // UDP from a's port 4500 to b's (RFC 3948 §2.1: ESP right after the UDP header, no
    // marker) carrying b's SPI, a high sequence number and a wrong ICV. a's daemon holds
    // port 4500, so the UDP header is ours too, on a raw socket; checksum 0 is "none"
    // in IPv4.
    let mut datagram = Vec::new();
    let esp_len = 4 + 4 + 8 + 64 + 16;
    datagram.extend_from_slice(&4500u16.to_be_bytes());
    datagram.extend_from_slice(&4500u16.to_be_bytes());
    datagram.extend_from_slice(&((8 + esp_len) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(&spi.to_be_bytes());
    datagram.extend_from_slice(&1000u32.to_be_bytes());
    datagram.extend_from_slice(&[0xa5; 8 + 64 + 16]);
    send_forged(&pair.a, b_ip, 17, &datagram).expect("send tampered ESP in UDP");
    assert_forged_dropped(&b, &before);
    // The pair still works.
    let out = ping(&pair.a, b_ip, 1);
    assert!(out.status.success(), "{}\n{}", a.log(), b.log());
}

#[test]
fn a_peer_that_dies_is_detected_and_its_sas_deleted() {
    if !root_or_skip("a_peer_that_dies_is_detected_and_its_sas_deleted") {
        return;
    }
    // With forced encapsulation and no NAT nobody sends keepalives: dead peer
    // detection is what notices a peer gone. a checks after 1 s of silence, and gives
    // up after two retransmissions 0.2 and 0.4 s apart (1.4 s); b never checks.
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let settings =
        format!("{FORCE}dpd_delay = 1\nretransmit_timeout_ms = 200\nretransmit_tries = 2\n");
    let a = Daemon::start_with(&pair.a, "a", &policy(a_ip, b_ip), &settings).expect("daemon a");
    let mut b = Daemon::start_with(&pair.b, "b", &policy(b_ip, a_ip), "[ike]\ndpd_delay = 0\n")
        .expect("daemon b");
    let out = ping(&pair.a, b_ip, 2);
    assert!(out.status.success(), "{}\n{}", a.log(), b.log());
    let sas = a.wait_for_sas("a CHILD_SA", |s| s.len() == 1 && s[0].child_sas.len() == 1);
    let (ike_id, child_spi) = (sas[0].id, sas[0].child_sas[0].inbound_spi);

    // b answers: after several checks the same SAs are still there.
    std::thread::sleep(Duration::from_secs(4));
    let sas = a.sas();
    assert_eq!(sas.len(), 1, "{sas:#?}\n{}", a.log());
    assert_eq!(sas[0].id, ike_id);
    assert!(
        !a.events().iter().any(|e| e.kind == "ike_failure"),
        "{:#?}",
        a.events()
    );

    // b dies without a word: within the delay and a's retransmissions (2.4 s; with the
    // default ones it would be 32.5 s) a gives up and deletes what it had with b.
    b.kill9();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.sas().is_empty() {
        assert!(
            Instant::now() < deadline,
            "a still holds SAs with its dead peer: {:#?}\n{}",
            a.sas(),
            a.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let events = a.events();
    let failure = events
        .iter()
        .find(|e| e.kind == "ike_failure")
        .unwrap_or_else(|| panic!("no ike_failure: {events:#?}"));
    assert_eq!(failure.detail["ike_sa"], ike_id, "{failure:?}");
    assert_eq!(failure.detail["stage"], "Informational", "{failure:?}");
    assert_eq!(failure.detail["reason"], "PeerUnreachable", "{failure:?}");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "sa_deleted" && e.detail["inbound_spi"] == child_spi),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == "ike_sa_deleted" && e.detail["ike_sa"] == ike_id),
        "{events:#?}"
    );
}
