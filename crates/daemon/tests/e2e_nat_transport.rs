//! Palisade to Palisade in transport mode through a NAT, end to end: host `a` on a
//! private network behind a masquerading router, host `b` on its public side (the
//! topology of `common/nat.rs`, as in `e2e_nat.rs`, which runs a tunnel there).
//!
//! `b` sees `a` only as the NAT's 10.202.0.1, so that is the remote address of its rule,
//! for IKE and for the traffic alike; `a`'s rule names `b`. `a` proposes its private
//! address in its traffic selectors, and each side puts the addresses of the IKE SA in
//! their place (RFC 7296 §2.23.1), so that `b`'s CHILD_SA selects the NAT's address.
//! The NAT rewrites the one IP header of transport-mode ESP in UDP, leaving the TCP
//! checksum inside computed over the sender's addresses: each receiver fixes it up with
//! the addresses its peer proposed (RFC 3948 §3.1.2), or its kernel would drop every
//! segment. Ping (ICMP has no pseudo-header) and TCP both ways: `a` to `b`'s address,
//! `b` to the NAT's, which reaches `a` through the SAs. A UDP datagram to a closed port
//! each way: the port-unreachable error quotes it with the addresses the peer saw, and
//! only once the receiver gives the quote its own addresses back does the sending
//! socket hear of it (ECONNREFUSED).
//!
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::daemon::{Capture, Daemon, ping, tcp_transfer_via};
use common::nat::{A, B, NAT_OUTSIDE, Topology, public_link_packets};
use netns::{Netns, root_or_skip};
use palisade_control::NatOriginal;

/// Everything between `local` and `remote` in transport mode.
fn policy(local: Ipv4Addr, remote: Ipv4Addr) -> String {
    format!(
        r#"
[policy]
name = "e2e-nat-transport"

[auth_sets.psk]
method = "preshared_key"
key = "e2e nat transport secret"

[[rules]]
name = "peer"
local = "{local}"
remote = "{remote}"
action = "require"
mode = "transport"
auth = "psk"
"#
    )
}

/// `len` bytes of TCP from `from` to a listener in `at`, or a panic with both logs.
fn tcp(t: &Topology, from_a: bool, listen: SocketAddr, to: SocketAddr, d: [&Daemon; 2]) {
    let (from, at, what) = if from_a {
        (&t.a, &t.b, "a -> b")
    } else {
        (&t.b, &t.a, "b -> a")
    };
    let len = 4 << 20;
    let moved = tcp_transfer_via(from, at, listen, to, len).unwrap_or_else(|e| {
        panic!(
            "TCP {what} through the NAT: {e}\n--- a ---\n{}\n{:?}\n--- b ---\n{}\n{:?}",
            d[0].log(),
            d[0].stats(),
            d[1].log(),
            d[1].stats()
        )
    });
    assert_eq!(moved, len, "TCP {what}: bytes lost");
}

/// Whether a UDP socket in `ns`, connected to `to`, hears that the port is closed: the
/// ICMP error reached it.
fn refused(ns: &Netns, to: SocketAddr) -> bool {
    let s = ns
        .run(|| -> std::io::Result<UdpSocket> {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.connect(to)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            Ok(s)
        })
        .expect("ns")
        .expect("socket");
    // A few tries: the peer's stack limits the rate of its ICMP errors.
    for _ in 0..3 {
        if let Err(e) = s.send(b"anyone there?")
            && e.kind() == ErrorKind::ConnectionRefused
        {
            return true;
        }
        let mut buf = [0u8; 64];
        match s.recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return true,
            _ => {}
        }
    }
    false
}

#[test]
fn transport_mode_through_a_nat_carries_ping_and_tcp_both_ways() {
    if !root_or_skip("transport_mode_through_a_nat_carries_ping_and_tcp_both_ways") {
        return;
    }
    let t = Topology::new();
    assert!(
        ping(&t.a, B.into(), 1).status.success(),
        "a -> b before IPsec"
    );

    let da = Daemon::start(&t.a, "a", &policy(A, B)).expect("daemon a");
    let db = Daemon::start(&t.b, "b", &policy(B, NAT_OUTSIDE)).expect("daemon b");
    let capture =
        Capture::start(&t.nat, &t.public_dev, da.dir().join("public.pcap")).expect("tcpdump");

    // a initiates (b could not: the NAT has no mapping for it yet).
    let out = ping(&t.a, B.into(), 5);
    assert!(
        out.status.success(),
        "ping a -> b through the NAT failed:\n{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        da.log(),
        db.log()
    );
    let to_b: SocketAddr = (B, 5201).into();
    tcp(&t, true, to_b, to_b, [&da, &db]);
    // b reaches a at the only address it knows, the NAT's, on the same SAs.
    let out = ping(&t.b, NAT_OUTSIDE.into(), 3);
    assert!(
        out.status.success(),
        "ping b -> the NAT's address (a) failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    tcp(
        &t,
        false,
        (A, 5202).into(),
        (NAT_OUTSIDE, 5202).into(),
        [&da, &db],
    );

    // Closed ports: each side's socket hears of the other's port unreachable.
    assert!(
        refused(&t.a, (B, 5399).into()),
        "a never heard that b's port is closed\n--- a ---\n{}",
        da.log()
    );
    assert!(
        refused(&t.b, (NAT_OUTSIDE, 5399).into()),
        "b never heard that a's port is closed\n--- b ---\n{}",
        db.log()
    );

    public_link_packets(&capture.finish());

    // What each side's peer put in its packets, as `sa show` reports it: b's own address
    // and the NAT's public one for a; a's private address and b's for b.
    for (d, name, local, remote, sent) in [
        (&da, "a", A, B, (B, NAT_OUTSIDE)),
        (&db, "b", B, NAT_OUTSIDE, (A, B)),
    ] {
        let sas = d.wait_for_sas("one IKE SA with one CHILD_SA", |s| {
            s.len() == 1 && s[0].child_sas.len() == 1
        });
        let ike = &sas[0];
        assert!(ike.nat, "{name}: NAT not detected: {ike:#?}");
        let child = &ike.child_sas[0];
        assert_eq!(child.mode, "transport", "{name}: {child:#?}");
        assert!(child.udp_encap, "{name}: {child:#?}");
        // Each side selects the addresses it sees (RFC 7296 §2.23.1).
        let has = |ts: &[String], ip: Ipv4Addr| ts.iter().all(|s| s.contains(&ip.to_string()));
        assert!(has(&child.local_ts, local), "{name}: {child:#?}");
        assert!(has(&child.remote_ts, remote), "{name}: {child:#?}");
        assert!(
            child.outbound.packets >= 8 && child.inbound.packets >= 8,
            "{name}: {child:#?}"
        );
        let original = NatOriginal {
            source: sent.0.to_string(),
            destination: sent.1.to_string(),
        };
        assert_eq!(
            child.nat_original.as_ref(),
            Some(&original),
            "{name}: {child:#?}"
        );
        let stats = d.stats();
        assert_eq!(
            stats.global_drops.get("nat_checksum"),
            None,
            "{name}: {stats:?}"
        );
    }
}
