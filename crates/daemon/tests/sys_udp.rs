//! The IKE socket across a veth pair: it learns which of its addresses a datagram was
//! sent to, replies from the address it is told, and its sends carry the mark.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::sys::{FWMARK, IkeSocket};

/// A second address of `a` (on its loopback; `b` reaches it through ARP on the veth).
const ADDR_A2: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 3);

#[test]
fn sys_udp_learns_and_picks_the_local_address() {
    if !netns::root_or_skip("sys_udp_learns_and_picks_the_local_address") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    pair.a
        .ip(&["addr", "add", "10.200.0.3/32", "dev", "lo"])
        .expect("second address");
    // Only marked packets may leave a: proves every send below is marked.
    let rule = format!("rule add not fwmark {FWMARK:#x} blackhole priority 100");
    pair.a
        .ip(&rule.split(' ').collect::<Vec<_>>())
        .expect("rule");

    let ike = pair
        .a
        .run(|| IkeSocket::bind(500, FWMARK))
        .expect("setns")
        .expect("bind");
    assert_eq!(ike.port(), 500);
    let peer = pair
        .b
        .udp_socket((VethPair::ADDR_B, 0).into())
        .expect("peer");
    peer.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");

    let mut buf = [0u8; 256];
    for to in [ADDR_A2, VethPair::ADDR_A] {
        peer.send_to(b"IKE_SA_INIT request", (to, 500))
            .expect("send");
        let deadline = Instant::now() + Duration::from_secs(3);
        assert!(
            sys_common::readable_before(&ike, deadline),
            "the request arrives"
        );
        let (n, remote, local) = ike.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"IKE_SA_INIT request");
        assert_eq!(remote, peer.local_addr().expect("addr"));
        assert_eq!(
            local,
            SocketAddr::from((to, 500)),
            "the address the peer used"
        );

        let replier = ike.try_clone().expect("clone");
        replier
            .send(b"IKE_SA_INIT response", local, remote)
            .expect("reply");
        let (n, from) = peer.recv_from(&mut buf).expect("the reply arrives");
        assert_eq!(&buf[..n], b"IKE_SA_INIT response");
        assert_eq!(from, local, "sent from the address the request came to");
    }
}

#[test]
fn sys_udp_refuses_what_it_cannot_send() {
    if !netns::root_or_skip("sys_udp_refuses_what_it_cannot_send") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let ike = pair
        .a
        .run(|| IkeSocket::bind(4500, FWMARK))
        .expect("setns")
        .expect("bind");
    let remote = SocketAddr::from((VethPair::ADDR_B, 4500));
    let v6 = "[::1]:4500".parse().expect("v6");
    assert!(
        ike.send(b"x", v6, remote).is_err(),
        "a mix of families is refused"
    );
    let wrong_port = SocketAddr::from((VethPair::ADDR_A, 500));
    assert!(
        ike.send(b"x", wrong_port, remote).is_err(),
        "another port is refused"
    );
    // Two sockets on one port would split the peer's datagrams between them.
    let again = pair.a.run(|| IkeSocket::bind(4500, FWMARK)).expect("setns");
    assert_eq!(
        again.expect_err("the port is taken").kind(),
        std::io::ErrorKind::AddrInUse
    );
}

#[test]
fn sys_udp_ipv6_beside_ipv4_on_one_port() {
    if !netns::root_or_skip("sys_udp_ipv6_beside_ipv4_on_one_port") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    sys_common::enable_ipv6(&pair.a, sys_common::V6_A);
    sys_common::enable_ipv6(&pair.b, sys_common::V6_B);
    let rule = format!("-6 rule add not fwmark {FWMARK:#x} blackhole priority 100");
    pair.a
        .ip(&rule.split(' ').collect::<Vec<_>>())
        .expect("rule");

    let v4 = pair
        .a
        .run(|| IkeSocket::bind(500, FWMARK))
        .expect("setns")
        .expect("bind v4");
    let v6 = pair
        .a
        .run(|| IkeSocket::bind_v6(500, FWMARK))
        .expect("setns")
        .expect("bind v6");
    let peer = pair
        .b
        .udp_socket((sys_common::V6_B, 0).into())
        .expect("peer");
    peer.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");

    peer.send_to(b"over IPv6", (sys_common::V6_A, 500))
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(3);
    assert!(
        sys_common::readable_before(&v6, deadline),
        "the request arrives"
    );
    let mut buf = [0u8; 64];
    let (n, remote, local) = v6.recv(&mut buf).expect("recv");
    assert_eq!(&buf[..n], b"over IPv6");
    assert_eq!(remote, peer.local_addr().expect("addr"));
    assert_eq!(local, SocketAddr::from((sys_common::V6_A, 500)));
    v6.send(b"reply", local, remote).expect("marked reply");
    let (n, from) = peer.recv_from(&mut buf).expect("the reply arrives");
    assert_eq!((&buf[..n], from), (b"reply".as_slice(), local));

    assert!(
        v4.send(b"x", local, remote).is_err(),
        "IPv6 on the IPv4 socket"
    );
    let v4_local = SocketAddr::from((VethPair::ADDR_A, 500));
    let v4_remote = SocketAddr::from((VethPair::ADDR_B, 500));
    assert!(
        v6.send(b"x", v4_local, v4_remote).is_err(),
        "IPv4 on the IPv6 socket"
    );
}
