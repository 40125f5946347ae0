//! A gateway with two data-plane workers and two peers, one owned by each worker: the
//! kernel delivers each peer's ESP to its owner's sockets, the TUN spreads the
//! gateway's own flows over both queues by their hash (so packets read by the other
//! worker are handed to the owner), and traffic in both directions and from both sides
//! arrives whole. `palisade sa list` names the worker that holds each pair. Datagrams
//! longer than the MTU go to both peers too: their fragments, which show no ports, meet
//! at the worker their destination shards to, wherever the TUN put them.
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::bridge::star;
use common::daemon::{Daemon, ping, tcp_transfer};
use common::echo::{ROUNDS, SIZES, echo_all, echo_server};
use netns::root_or_skip;
use palisaded::sys::shard_of;

/// The gateway (on a bridge both peers are linked to, so it has one address) and the
/// peers. The peers' last words are odd and even: with two workers, peer 1 is worker
/// 1's and peer 2 worker 0's.
const G: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 254);
const P1: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 1);
const P2: Ipv4Addr = Ipv4Addr::new(10, 211, 0, 2);

fn rule(name: &str, me: Ipv4Addr, peer: Ipv4Addr) -> String {
    format!(
        "\n[[rules]]\nname = \"{name}\"\nlocal = \"{me}\"\nremote = \"{peer}\"\naction = \"require\"\nauth = \"psk\"\n"
    )
}

fn policy(rules: &[String]) -> String {
    format!(
        "[policy]\nname = \"e2e-workers\"\n\n[auth_sets.psk]\nmethod = \"preshared_key\"\nkey = \"e2e workers secret\"\n{}",
        rules.concat()
    )
}

#[test]
fn two_workers_each_own_a_peer_and_traffic_crosses_both_ways() {
    if !root_or_skip("two_workers_each_own_a_peer_and_traffic_crosses_both_ways") {
        return;
    }
    assert_eq!(shard_of(P1.into(), 2), 1);
    assert_eq!(shard_of(P2.into(), 2), 0);
    let (g, peers) = star("wk", G, &[P1, P2]);
    let (p1, p2) = (&peers[0], &peers[1]);

    let gw = Daemon::start_with(
        &g,
        "g",
        &policy(&[rule("p1", G, P1), rule("p2", G, P2)]),
        "[dataplane]\nworkers = 2\n",
    )
    .expect("gateway daemon");
    let d1 = Daemon::start(p1, "p1", &policy(&[rule("g", P1, G)])).expect("daemon p1");
    let d2 = Daemon::start(p2, "p2", &policy(&[rule("g", P2, G)])).expect("daemon p2");
    let logs = || {
        format!(
            "--- g ---\n{}\n--- p1 ---\n{}\n--- p2 ---\n{}",
            gw.log(),
            d1.log(),
            d2.log()
        )
    };

    // Each peer starts its own negotiation.
    for ns in [p1, p2] {
        let to = G;
        let out = ping(ns, to.into(), 3);
        assert!(
            out.status.success(),
            "ping {to} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            logs()
        );
    }
    // Several flows from the gateway to each peer: the TUN puts each on the queue its
    // hash picks, so about half are read by the worker that does not own the peer.
    let mut port = 5300;
    for (at, peer) in [(p1, P1), (p2, P2)] {
        for _ in 0..6 {
            port += 1;
            let to = SocketAddr::from((peer, port));
            let moved = tcp_transfer(&g, at, to, 1 << 20)
                .unwrap_or_else(|e| panic!("TCP g -> {to}: {e}\n{}", logs()));
            assert_eq!(moved, 1 << 20, "TCP g -> {to} lost bytes");
        }
    }
    // And from the peers to the gateway.
    for from in [p1, p2] {
        port += 1;
        let to = SocketAddr::from((G, port));
        let moved = tcp_transfer(from, &g, to, 2 << 20)
            .unwrap_or_else(|e| panic!("TCP -> {to}: {e}\n{}", logs()));
        assert_eq!(moved, 2 << 20, "TCP -> {to} lost bytes");
    }

    // Datagrams longer than the MTU from the gateway to each peer and back.
    for (at, peer) in [(p1, P1), (p2, P2)] {
        let to = SocketAddr::from((peer, 5400));
        let server = echo_server(at, to);
        echo_all(&g, G.into(), to, &logs);
        drop(server);
    }
    let datagrams = (2 * ROUNDS * SIZES.len()) as u64;
    let s = gw.stats();
    // The first packets of the twelve flows from the gateway went to the queue their
    // hash picked (a flow's replies steer it to its owner's queue after): that none was
    // read by the other worker has odds of 1 in 4,096.
    assert!(s.handed_off > 0, "no packet handed between workers: {s:?}");
    assert!(
        s.reassembled >= datagrams && s.fragmented >= datagrams,
        "the gateway put together and cut every datagram: {s:?}"
    );

    let sas = gw.wait_for_sas("an IKE SA with a CHILD_SA per peer", |s| {
        s.len() == 2 && s.iter().all(|ike| ike.child_sas.len() == 1)
    });
    for ike in &sas {
        let peer: IpAddr = ike
            .remote
            .parse::<SocketAddr>()
            .map(|a| a.ip())
            .expect("remote address");
        let child = &ike.child_sas[0];
        assert_eq!(
            child.worker as usize,
            shard_of(peer, 2),
            "the pair with {peer} sits on its owner"
        );
        assert!(
            child.outbound.packets > 0 && child.inbound.packets > 0,
            "traffic both ways with {peer}: {child:?}"
        );
        assert!(child.inbound.drops.is_empty(), "{child:?}");
    }
    let stats = gw.stats();
    let reassembly = stats
        .global_drops
        .keys()
        .filter(|k| k.starts_with("reassembly"))
        .collect::<Vec<_>>();
    assert!(reassembly.is_empty(), "{stats:?}");
    for reason in ["handoff_full", "unknown_spi", "not_ip", "send_error"] {
        assert!(
            !stats.global_drops.contains_key(reason),
            "{reason} drops on the gateway: {stats:?}\n{}",
            logs()
        );
    }
}
