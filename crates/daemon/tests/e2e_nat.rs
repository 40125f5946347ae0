//! Palisade to Palisade through a NAT, end to end: host `a` on a private network behind a
//! masquerading router `nat`, host `b` on the router's public side (the topology of
//! `common/nat.rs`).
//!
//! ```text
//!   a 10.201.0.1 ---- 10.201.0.2 nat 10.202.0.1 ---- 10.202.0.2 b
//!                      (masquerade of 10.201.0.0/24 out of the public link,
//!                       source ports remapped)
//! ```
//!
//! What a user configures here is a host-to-host tunnel. `b` never sees `a`'s own
//! address on the wire: IKE and ESP come from the NAT's 10.202.0.1, so that is the
//! tunnel's remote end in `b`'s policy, while the tunnel's inner addresses are the hosts'
//! own, carried unchanged inside ESP (and 10.201.0.1 is reachable from `b` only through
//! the tunnel, as a NAT's inside should be). Transport mode through the same NAT works
//! too, with `b`'s rule naming the NAT's address: see `e2e_nat_transport.rs` (the
//! traffic selectors are substituted as RFC 7296 §2.23.1 says, and the TCP/UDP checksums
//! fixed up after decapsulation, RFC 3948 §3.1.2).
//!
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::daemon::{Capture, Daemon, ping, tcp_transfer, tunnel_policy};
use common::nat::{A, B, NAT_OUTSIDE, Topology, public_link_packets};
use netns::root_or_skip;

/// Tunnel mode from `inner_local` to `inner_remote`, whose gateway the NAT shows as
/// `outer_remote`.
fn policy(inner_local: Ipv4Addr, inner_remote: Ipv4Addr, outer_remote: Ipv4Addr) -> String {
    tunnel_policy(
        "e2e-nat",
        &inner_local.to_string(),
        &inner_remote.to_string(),
        inner_local,
        outer_remote,
    )
}

#[test]
fn nat_moves_ike_to_4500_and_carries_esp_in_udp_only() {
    if !root_or_skip("nat_moves_ike_to_4500_and_carries_esp_in_udp_only") {
        return;
    }
    let t = Topology::new();
    // The NAT works, and hides the inside: b cannot reach a's private address.
    assert!(
        ping(&t.a, B.into(), 1).status.success(),
        "a -> b before IPsec"
    );
    assert!(
        !ping(&t.b, A.into(), 1).status.success(),
        "b reaches a's private address without the tunnel"
    );

    let da = Daemon::start(&t.a, "a", &policy(A, B, B)).expect("daemon a");
    let db = Daemon::start(&t.b, "b", &policy(B, A, NAT_OUTSIDE)).expect("daemon b");
    let capture =
        Capture::start(&t.nat, &t.public_dev, da.dir().join("public.pcap")).expect("tcpdump");

    // a initiates: the first echo request raises the acquire.
    let out = ping(&t.a, B.into(), 5);
    assert!(
        out.status.success(),
        "ping a -> b through the NAT failed:\n{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        da.log(),
        db.log()
    );
    let to: SocketAddr = (B, 5201).into();
    let moved = tcp_transfer(&t.a, &t.b, to, 4 << 20).unwrap_or_else(|e| {
        panic!(
            "TCP a -> b through the NAT: {e}\n--- a ---\n{}\n{:?}\n--- b ---\n{}\n{:?}",
            da.log(),
            da.stats(),
            db.log(),
            db.stats()
        )
    });
    assert_eq!(moved, 4 << 20, "the TCP transfer lost bytes");
    // And the other way, on the same SAs: b reaches a's private address through the tunnel.
    assert!(
        ping(&t.b, A.into(), 2).status.success(),
        "b -> a inside the tunnel"
    );

    let lines = capture.finish();
    // Only UDP between the NAT's public address and b, on b's IKE ports.
    let public = public_link_packets(&lines);
    let nat_ip = IpAddr::V4(NAT_OUTSIDE);
    let (b500, b4500) = (format!("{B}.500"), format!("{B}.4500"));
    // IKE started on 500 and moved to 4500 after NAT detection.
    assert!(
        public
            .iter()
            .any(|l| l.contains(&format!("> {b500}: isakmp"))),
        "no IKE_SA_INIT to b's port 500: {lines:#?}"
    );
    assert!(
        public
            .iter()
            .any(|l| l.contains(&format!("> {b4500}: NONESP-encap: isakmp"))),
        "IKE never moved to port 4500: {lines:#?}"
    );
    // The NAT remapped a's ports: nothing reached b from the NAT's 500 or 4500.
    let from_nat = |port: u16| format!("{NAT_OUTSIDE}.{port} >");
    assert!(
        !public
            .iter()
            .any(|l| l.contains(&from_nat(500)) || l.contains(&from_nat(4500))),
        "the NAT kept a's ports: {public:#?}"
    );

    for (d, name, peer) in [(&da, "a", format!("{B}:4500")), (&db, "b", String::new())] {
        let sas = d.wait_for_sas("one IKE SA with one CHILD_SA", |s| {
            s.len() == 1 && s[0].child_sas.len() == 1
        });
        let ike = &sas[0];
        assert!(ike.nat, "{name}: NAT not detected: {ike:#?}");
        assert!(ike.local.ends_with(":4500"), "{name}: {ike:#?}");
        if name == "a" {
            assert_eq!(ike.remote, peer, "{name}: {ike:#?}");
        } else {
            // b knows a only as the NAT's address and the port it mapped 4500 to.
            let remote: SocketAddr = ike.remote.parse().expect("remote");
            assert_eq!(remote.ip(), nat_ip, "{name}: {ike:#?}");
            assert_ne!(
                remote.port(),
                4500,
                "{name}: the NAT kept the port? {ike:#?}"
            );
        }
        let child = &ike.child_sas[0];
        assert!(
            child.udp_encap,
            "{name}: CHILD_SA without UDP encapsulation: {child:#?}"
        );
        assert_eq!(child.mode, "tunnel", "{name}");
        assert_eq!(
            child.nat_original, None,
            "{name}: tunnel mode fixes no checksums"
        );
        assert!(
            child.outbound.packets >= 5 && child.inbound.packets >= 5,
            "{name}: {child:#?}"
        );
    }
}
