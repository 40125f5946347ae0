//! The fail-closed firewall between two namespaces: `a` protects traffic with `b`'s
//! address. Clear datagrams from `b` are queued to NFQUEUE, and with nobody listening
//! they are dropped; ESP and IKE still arrive; unmarked traffic to `b` leaving by the
//! veth is dropped and counted. Without the rules all of it goes through.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::sys::{EspSocket, FWMARK, Firewall, FirewallSpec, IkeSocket, NFQUEUE_NUM};
use sys_common::{PROTO_ESP, ipv4_esp, ipv4_fields, readable_before, recv_matching};

/// How long a datagram that should arrive may take (the first one waits for neighbor
/// resolution), and how long one that should not is waited for.
const ARRIVES: Duration = Duration::from_secs(3);
const DROPPED: Duration = Duration::from_millis(700);

fn spec() -> FirewallSpec {
    FirewallSpec {
        tun: "pal0".to_owned(),
        protected: vec![format!("{}/32", VethPair::ADDR_B).parse().expect("prefix")],
        queue: NFQUEUE_NUM,
        ike_ports: [500, 4500],
    }
}

fn arrives(socket: &UdpSocket, data: &[u8], wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 256];
    socket.set_nonblocking(true).expect("nonblocking");
    while readable_before(socket, deadline) {
        if let Ok(n) = socket.recv(&mut buf)
            && &buf[..n] == data
        {
            return true;
        }
    }
    false
}

/// A clear datagram from `b` to `a`:`port`: whether it is delivered.
fn clear_from_peer_arrives(pair: &VethPair, port: u16, data: &[u8], wait: Duration) -> bool {
    let rx = pair
        .a
        .udp_socket((VethPair::ADDR_A, port).into())
        .expect("socket");
    let tx = pair
        .b
        .udp_socket((VethPair::ADDR_B, 0).into())
        .expect("socket");
    tx.send_to(data, (VethPair::ADDR_A, port)).expect("send");
    arrives(&rx, data, wait)
}

fn esp_from_peer_arrives(pair: &VethPair) -> bool {
    let rx = pair
        .a
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open");
    rx.set_nonblocking(true).expect("nonblocking");
    let tx = pair
        .b
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open");
    let packet = ipv4_esp(VethPair::ADDR_B, VethPair::ADDR_A, 0x1234, 1, b"esp");
    tx.send(&packet).expect("send");
    recv_matching(
        &rx,
        |s, b| s.recv(b),
        Duration::from_secs(2),
        |p| ipv4_fields(p) == Some((VethPair::ADDR_B, VethPair::ADDR_A, PROTO_ESP)),
    )
    .is_some()
}

/// An unmarked datagram from `a` to `b`: whether `b` gets it.
fn clear_to_peer_arrives(pair: &VethPair, data: &[u8], wait: Duration) -> bool {
    let rx = pair
        .b
        .udp_socket((VethPair::ADDR_B, 9100).into())
        .expect("socket");
    let tx = pair
        .a
        .udp_socket((VethPair::ADDR_A, 0).into())
        .expect("socket");
    // The output hook refuses the packet with EPERM; that is the drop being seen.
    let _ = tx.send_to(data, (VethPair::ADDR_B, 9100));
    arrives(&rx, data, wait)
}

fn marked_to_peer_arrives(pair: &VethPair, data: &[u8]) -> bool {
    let rx = pair
        .b
        .udp_socket((VethPair::ADDR_B, 9101).into())
        .expect("socket");
    let tx = pair
        .a
        .run(|| IkeSocket::bind(0, FWMARK))
        .expect("setns")
        .expect("bind");
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    tx.send(data, any, (VethPair::ADDR_B, 9101).into())
        .expect("send");
    arrives(&rx, data, Duration::from_secs(2))
}

#[test]
fn sys_firewall_fails_closed_for_clear_traffic_with_a_protected_peer() {
    if !netns::root_or_skip("sys_firewall_fails_closed_for_clear_traffic_with_a_protected_peer") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    // Without the rules, everything goes through (so the checks below can fail).
    assert!(clear_from_peer_arrives(&pair, 9000, b"before", ARRIVES));
    assert!(clear_to_peer_arrives(&pair, b"out before", ARRIVES));

    let fw = pair
        .a
        .run(|| Firewall::install(&spec()))
        .expect("setns")
        .expect("install");
    assert!(
        !clear_from_peer_arrives(&pair, 9000, b"clear", DROPPED),
        "queued with no listener: dropped"
    );
    assert!(fw_in(&pair, || fw.queued_packets()) >= 1);
    assert!(esp_from_peer_arrives(&pair), "ESP from the peer is let in");
    assert!(
        clear_from_peer_arrives(&pair, 500, b"IKE", ARRIVES),
        "IKE on 500 is let in"
    );
    assert!(
        clear_from_peer_arrives(&pair, 4500, b"NAT-T", ARRIVES),
        "and on 4500"
    );

    assert!(
        !clear_to_peer_arrives(&pair, b"leak", DROPPED),
        "unmarked, not via the TUN: dropped"
    );
    assert!(fw_in(&pair, || fw.leaked_packets()) >= 1, "and counted");
    assert!(
        marked_to_peer_arrives(&pair, b"marked"),
        "palisaded's own packets go out"
    );

    // A second install (a restart, a policy change) replaces, keeps the counters, and
    // does not duplicate the iptables rules.
    let leaked = fw_in(&pair, || fw.leaked_packets());
    let fw = pair
        .a
        .run(|| Firewall::install(&spec()))
        .expect("setns")
        .expect("again");
    assert_eq!(fw_in(&pair, || fw.leaked_packets()), leaked);
    let rules = pair
        .a
        .command("iptables")
        .args(["-S", "INPUT"])
        .output()
        .expect("iptables");
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert_eq!(rules.matches("NFQUEUE").count(), 1, "{rules}");
    assert!(!clear_from_peer_arrives(
        &pair,
        9000,
        b"still closed",
        DROPPED
    ));

    pair.a
        .run(Firewall::remove_all)
        .expect("setns")
        .expect("remove");
    assert!(clear_from_peer_arrives(&pair, 9000, b"after", ARRIVES));
    assert!(clear_to_peer_arrives(&pair, b"out after", ARRIVES));
    let rules = pair
        .a
        .command("iptables")
        .args(["-S"])
        .output()
        .expect("iptables");
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("NFQUEUE"));
    pair.a
        .run(Firewall::remove_all)
        .expect("setns")
        .expect("removing nothing succeeds");
}

#[test]
fn sys_firewall_a_replaced_prefix_set_stops_protecting_the_old_one() {
    if !netns::root_or_skip("sys_firewall_a_replaced_prefix_set_stops_protecting_the_old_one") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let _fw = pair
        .a
        .run(|| Firewall::install(&spec()))
        .expect("setns")
        .expect("install");
    assert!(!clear_from_peer_arrives(&pair, 9000, b"protected", DROPPED));
    let other = FirewallSpec {
        protected: vec!["10.9.0.0/24".parse().expect("prefix")],
        ..spec()
    };
    let _fw = pair
        .a
        .run(|| Firewall::install(&other))
        .expect("setns")
        .expect("replace");
    assert!(clear_from_peer_arrives(
        &pair,
        9000,
        b"no longer protected",
        ARRIVES
    ));
    pair.a
        .run(Firewall::remove_all)
        .expect("setns")
        .expect("remove");
}

/// Runs a counter read inside `a` (nft talks to the namespace of its caller).
fn fw_in(
    pair: &VethPair,
    read: impl FnOnce() -> Result<u64, palisaded::sys::SysError> + Send,
) -> u64 {
    pair.a.run(read).expect("setns").expect("counter")
}

#[test]
fn sys_firewall_ipv6_fails_closed_too() {
    if !netns::root_or_skip("sys_firewall_ipv6_fails_closed_too") {
        return;
    }
    use sys_common::{V6_A, V6_B};
    let pair = VethPair::new().expect("namespaces");
    sys_common::enable_ipv6(&pair.a, V6_A);
    sys_common::enable_ipv6(&pair.b, V6_B);
    let from_peer = |port: u16, data: &[u8], wait: Duration| {
        let rx = pair.a.udp_socket((V6_A, port).into()).expect("socket");
        let tx = pair.b.udp_socket((V6_B, 0).into()).expect("socket");
        tx.send_to(data, (V6_A, port)).expect("send");
        arrives(&rx, data, wait)
    };
    let to_peer = |data: &[u8], wait: Duration| {
        let rx = pair.b.udp_socket((V6_B, 9100).into()).expect("socket");
        let tx = pair.a.udp_socket((V6_A, 0).into()).expect("socket");
        let _ = tx.send_to(data, (V6_B, 9100));
        arrives(&rx, data, wait)
    };
    assert!(from_peer(9000, b"before", ARRIVES) && to_peer(b"out before", ARRIVES));

    let spec = FirewallSpec {
        protected: vec![format!("{V6_B}/128").parse().expect("prefix")],
        ..spec()
    };
    let fw = pair
        .a
        .run(|| Firewall::install(&spec))
        .expect("setns")
        .expect("install");
    // Neighbor discovery must work through the rules, or nothing reaches the peer.
    for ns in [&pair.a, &pair.b] {
        ns.ip(&["-6", "neigh", "flush", "all"])
            .expect("flush neighbors");
    }
    assert!(
        from_peer(500, b"IKE after ND", ARRIVES),
        "the peers resolve each other"
    );
    assert!(
        !from_peer(9000, b"clear", DROPPED),
        "queued with no listener: dropped"
    );
    assert!(from_peer(500, b"IKE", ARRIVES), "IKE is let in");
    assert!(
        !to_peer(b"leak", DROPPED),
        "unmarked out of the veth: dropped"
    );
    assert!(fw_in(&pair, || fw.leaked_packets()) >= 1);
    assert!(fw_in(&pair, || fw.queued_packets()) >= 1);
    pair.a
        .run(Firewall::remove_all)
        .expect("setns")
        .expect("remove");
    assert!(from_peer(9000, b"after", ARRIVES) && to_peer(b"out after", ARRIVES));
}
