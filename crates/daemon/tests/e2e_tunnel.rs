//! Palisade to Palisade in tunnel mode, end to end: two gateways in network namespaces,
//! each with a host on a subnet behind it; traffic between the hosts crosses the
//! gateways' link as ESP only, UDP datagrams longer than the MTU too (the gateway puts
//! the fragments it forwards back together and sends each datagram as one ESP packet,
//! cut to the MTU). Root only; skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::bridge::host_behind as link_host;
use common::daemon::{Capture, Daemon, not_ipsec_between, tcp_transfer, tunnel_policy, veth_of};
use common::echo::{LONG_SIZES, ROUNDS, SIZES, echo_all, echo_server, echo_sizes};
use netns::{Netns, VethPair, root_or_skip};

fn policy(local_net: &str, remote_net: &str, me: Ipv4Addr, peer: Ipv4Addr) -> String {
    tunnel_policy("e2e-tunnel", local_net, remote_net, me, peer)
}

/// A host namespace behind `gw` on `net` (x.y.z.0/24): the gateway is .1, the host .2.
fn host_behind(gw: &Netns, tag: char, net: [u8; 3]) -> Netns {
    let (host, g, h) = link_host(gw, tag);
    let [x, y, z] = net;
    gw.ip(&["addr", "add", &format!("{x}.{y}.{z}.1/24"), "dev", &g])
        .expect("addr");
    gw.ip(&["link", "set", &g, "up"]).expect("up");
    host.ip(&["addr", "add", &format!("{x}.{y}.{z}.2/24"), "dev", &h])
        .expect("addr");
    host.ip(&["link", "set", &h, "up"]).expect("up");
    host.ip(&["route", "add", "default", "via", &format!("{x}.{y}.{z}.1")])
        .expect("route");
    gw.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
        .expect("ns")
        .expect("forwarding");
    host
}

#[test]
fn tunnel_mode_carries_subnet_traffic_as_esp_between_gateways() {
    if !root_or_skip("tunnel_mode_carries_subnet_traffic_as_esp_between_gateways") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let h1 = host_behind(&pair.a, '1', [10, 1, 0]);
    let h2 = host_behind(&pair.b, '2', [10, 2, 0]);
    let (ga, gb) = (VethPair::ADDR_A, VethPair::ADDR_B);
    let a = Daemon::start(
        &pair.a,
        "gw-a",
        &policy("10.1.0.0/24", "10.2.0.0/24", ga, gb),
    )
    .expect("daemon a");
    let b = Daemon::start(
        &pair.b,
        "gw-b",
        &policy("10.2.0.0/24", "10.1.0.0/24", gb, ga),
    )
    .expect("daemon b");
    let veth = veth_of(&pair.a);
    let capture = Capture::start(&pair.a, &veth, a.dir().join("wire.pcap")).expect("tcpdump");

    let ping = h1
        .command("ping")
        .args(["-c", "5", "-i", "0.2", "-W", "3", "10.2.0.2"])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "ping h1 -> h2 failed:\n{}\n--- gw-a ---\n{}\n--- gw-b ---\n{}",
        String::from_utf8_lossy(&ping.stdout),
        a.log(),
        b.log()
    );

    let listen: SocketAddr = (Ipv4Addr::new(10, 2, 0, 2), 5201).into();
    let moved = tcp_transfer(&h1, &h2, listen, 64 * 65536).expect("TCP transfer");
    assert_eq!(moved, 64 * 65536);

    let h2_ip = IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2));
    let server = echo_server(&h2, SocketAddr::new(h2_ip, 5313));
    let logs = || format!("--- gw-a ---\n{}\n--- gw-b ---\n{}", a.log(), b.log());
    let (h1_ip, to) = (
        Ipv4Addr::new(10, 1, 0, 2).into(),
        SocketAddr::new(h2_ip, 5313),
    );
    echo_all(&h1, h1_ip, to, &logs);
    // Longer datagrams too: each gateway puts back what it forwards, and sends it on
    // out of the tunnel whole, for its kernel to cut to the subnet's MTU.
    echo_sizes(&h1, h1_ip, to, &LONG_SIZES, &logs);
    drop(server);
    let datagrams = (ROUNDS * (SIZES.len() + LONG_SIZES.len())) as u64;
    for d in [&a, &b] {
        let s = d.stats();
        assert!(
            s.reassembled >= datagrams && s.fragmented >= datagrams,
            "{s:?}"
        );
    }

    let lines = capture.finish();
    assert!(
        lines.iter().filter(|l| l.contains(": ip-proto-50")).count() >= datagrams as usize,
        "ESP crossed in fragments"
    );
    let inner: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("10.1.0.2") || l.contains("10.2.0.2"))
        .collect();
    assert!(
        inner.is_empty(),
        "inner addresses visible between the gateways: {inner:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ESP(")),
        "no ESP: {lines:#?}"
    );
    let clear = not_ipsec_between(&lines, ga.into(), gb.into());
    assert!(
        clear.is_empty(),
        "clear text between the gateways: {clear:#?}"
    );
    for d in [&a, &b] {
        let sas = d.wait_for_sas("a tunnel CHILD_SA", |s| {
            s.iter()
                .any(|i| i.child_sas.iter().any(|c| c.mode == "tunnel"))
        });
        let c = &sas[0].child_sas[0];
        assert!(c.inbound.packets > 0 && c.outbound.packets > 0, "{c:?}");
    }
}
