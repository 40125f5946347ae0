//! Policy routing in a namespace: unmarked traffic to a protected prefix goes into the
//! TUN, marked traffic follows `main` out of the veth, and with the TUN gone the
//! blackhole drops the traffic rather than letting it out in clear.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::net::IpNet;
use palisaded::sys::{FWMARK, IkeSocket, PolicyRoutes, ROUTE_TABLE, SysError, Tun};
use sys_common::{PROTO_UDP, ipv4_fields, readable_before, recv_matching};

const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 5);
const OTHER_PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 5);

fn prefix(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

/// `a` routes 10.9.0.0/16 to `b` in `main`; `b` holds 10.9.0.5 and 10.9.1.5 with a
/// socket on each.
struct Setup {
    pair: VethPair,
    at_peer: UdpSocket,
    at_other_peer: UdpSocket,
}

impl Setup {
    fn new() -> Setup {
        let pair = VethPair::new().expect("namespaces");
        pair.a
            .ip(&["route", "add", "10.9.0.0/16", "via", "10.200.0.2"])
            .expect("route");
        for addr in ["10.9.0.5/32", "10.9.1.5/32"] {
            pair.b
                .ip(&["addr", "add", addr, "dev", "lo"])
                .expect("address");
        }
        let at_peer = pair.b.udp_socket((PEER, 9000).into()).expect("socket");
        let at_other_peer = pair
            .b
            .udp_socket((OTHER_PEER, 9000).into())
            .expect("socket");
        Setup {
            pair,
            at_peer,
            at_other_peer,
        }
    }

    /// Sends from `a` without the mark; the error, if the kernel refuses it.
    fn send_unmarked(&self, to: Ipv4Addr, data: &[u8]) -> std::io::Result<usize> {
        let s = self.pair.a.udp_socket((Ipv4Addr::UNSPECIFIED, 0).into())?;
        s.send_to(data, (to, 9000))
    }

    fn send_marked(&self, to: Ipv4Addr, data: &[u8]) {
        let s = self
            .pair
            .a
            .run(|| IkeSocket::bind(0, FWMARK))
            .expect("setns")
            .expect("bind");
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        s.send(data, any, (to, 9000).into()).expect("marked send");
    }
}

/// Whether `socket` receives `data` within `wait`.
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

fn tun_sees(tun: &Tun, dst: Ipv4Addr, data: &[u8]) -> bool {
    recv_matching(
        tun,
        |t, b| t.recv(b),
        Duration::from_secs(2),
        |p| {
            // The TUN has no address: the kernel picks the host's own (the veth's) as
            // the source, which is what transport mode protects.
            ipv4_fields(p) == Some((VethPair::ADDR_A, dst, PROTO_UDP)) && p.ends_with(data)
        },
    )
    .is_some()
}

#[test]
fn sys_route_protected_traffic_goes_into_the_tun_and_never_out_in_clear() {
    if !netns::root_or_skip("sys_route_protected_traffic_goes_into_the_tun_and_never_out_in_clear")
    {
        return;
    }
    let setup = Setup::new();
    let tun = setup
        .pair
        .a
        .run(|| Tun::create("pal0", 1400))
        .expect("setns")
        .expect("tun");
    tun.set_nonblocking(true).expect("nonblocking");
    let routes = setup
        .pair
        .a
        .run(|| PolicyRoutes::install("pal0", &[prefix("10.9.0.0/24")]))
        .expect("setns")
        .expect("install");

    setup.send_marked(PEER, b"marked");
    assert!(
        arrives(&setup.at_peer, b"marked", Duration::from_secs(2)),
        "marked: out of the veth"
    );

    setup.send_unmarked(PEER, b"unmarked").expect("send");
    assert!(tun_sees(&tun, PEER, b"unmarked"), "unmarked: into the TUN");
    assert!(!arrives(
        &setup.at_peer,
        b"unmarked",
        Duration::from_millis(300)
    ));

    setup
        .send_unmarked(OTHER_PEER, b"unprotected")
        .expect("send");
    assert!(
        arrives(&setup.at_other_peer, b"unprotected", Duration::from_secs(2)),
        "a prefix outside the set is not affected"
    );

    // The daemon dies: its TUN goes, the blackhole stays.
    drop(tun);
    let sent = setup.send_unmarked(PEER, b"after the tun");
    assert!(
        !arrives(&setup.at_peer, b"after the tun", Duration::from_millis(500)),
        "with the TUN gone, protected traffic must not leave in clear (send gave {sent:?})"
    );
    drop(routes);
}

#[test]
fn sys_route_update_replaces_the_set_and_remove_undoes_it() {
    if !netns::root_or_skip("sys_route_update_replaces_the_set_and_remove_undoes_it") {
        return;
    }
    let setup = Setup::new();
    let tun = setup
        .pair
        .a
        .run(|| Tun::create("pal0", 1400))
        .expect("setns")
        .expect("tun");
    tun.set_nonblocking(true).expect("nonblocking");
    let a = &setup.pair.a;
    let mut routes = a
        .run(|| PolicyRoutes::install("pal0", &[prefix("10.9.0.0/24")]))
        .expect("setns")
        .expect("install");
    a.run(|| routes.update(&[prefix("10.9.1.0/24"), prefix("2001:db8::/64")]))
        .expect("setns")
        .expect_err("an IPv6 TUN route in a namespace with IPv6 off is refused");
    a.run(|| routes.update(&[prefix("10.9.1.0/24")]))
        .expect("setns")
        .expect("update");
    assert_eq!(
        routes.prefixes().collect::<Vec<_>>(),
        [&prefix("10.9.1.0/24")]
    );

    let table = a
        .ip(&["route", "show", "table", &ROUTE_TABLE.to_string()])
        .expect("table");
    assert!(table.contains("10.9.1.0/24 dev pal0"), "{table}");
    assert!(table.contains("blackhole 10.9.1.0/24"), "{table}");
    assert!(
        !table.contains("10.9.0.0"),
        "the old prefix is gone: {table}"
    );

    setup
        .send_unmarked(PEER, b"no longer protected")
        .expect("send");
    assert!(arrives(
        &setup.at_peer,
        b"no longer protected",
        Duration::from_secs(2)
    ));
    setup
        .send_unmarked(OTHER_PEER, b"now protected")
        .expect("send");
    assert!(tun_sees(&tun, OTHER_PEER, b"now protected"));

    // Installing again (a restarted daemon) finds the rule and keeps one.
    let routes = a
        .run(|| PolicyRoutes::install("pal0", &[prefix("10.9.1.0/24")]))
        .expect("setns")
        .expect("install again");
    let rules = a.ip(&["rule", "show"]).expect("rules");
    assert_eq!(rules.matches("0x5041").count(), 1, "{rules}");

    a.run(|| routes.remove()).expect("setns").expect("remove");
    let rules = a.ip(&["rule", "show"]).expect("rules");
    assert!(!rules.contains("0x5041"), "{rules}");
    let table = a
        .ip(&["route", "show", "table", &ROUTE_TABLE.to_string()])
        .expect("table");
    assert!(table.trim().is_empty(), "{table}");
    setup
        .send_unmarked(OTHER_PEER, b"clear again")
        .expect("send");
    assert!(arrives(
        &setup.at_other_peer,
        b"clear again",
        Duration::from_secs(2)
    ));
    a.run(PolicyRoutes::remove_all)
        .expect("setns")
        .expect("removing nothing succeeds");
}

#[test]
fn sys_route_errors_name_the_command_and_the_reason() {
    if !netns::root_or_skip("sys_route_errors_name_the_command_and_the_reason") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let err = pair
        .a
        .run(|| PolicyRoutes::install("nosuch0", &[prefix("10.9.0.0/24")]))
        .expect("setns")
        .expect_err("no such device");
    let SysError::Command {
        command, stderr, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert!(command.starts_with("ip -batch -"), "{command}");
    assert!(command.contains("dev nosuch0"), "{command}");
    assert!(stderr.contains("Cannot find device"), "{stderr}");
    // What did get installed fails closed: the blackhole for the prefix.
    let table = pair
        .a
        .ip(&["route", "show", "table", &ROUTE_TABLE.to_string()])
        .expect("table");
    assert!(table.contains("blackhole 10.9.0.0/24"), "{table}");
    pair.a
        .run(PolicyRoutes::remove_all)
        .expect("setns")
        .expect("remove");
}

#[test]
fn sys_route_ipv6_prefix_goes_into_the_tun() {
    if !netns::root_or_skip("sys_route_ipv6_prefix_goes_into_the_tun") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    sys_common::enable_ipv6(&pair.a, sys_common::V6_A);
    sys_common::enable_ipv6(&pair.b, sys_common::V6_B);
    let peer: std::net::Ipv6Addr = "fd00:9::5".parse().expect("addr");
    pair.a
        .ip(&[
            "-6",
            "route",
            "add",
            "fd00:9::/64",
            "via",
            &sys_common::V6_B.to_string(),
        ])
        .expect("route");
    pair.b
        // Without duplicate address detection: until its (instant, on lo) run, the
        // address is tentative and a bind to it fails (EADDRNOTAVAIL, once in CI).
        .ip(&["-6", "addr", "add", "fd00:9::5/128", "dev", "lo", "nodad"])
        .expect("address");
    let at_peer = pair.b.udp_socket((peer, 9000).into()).expect("socket");
    let tun = pair
        .a
        .run(|| Tun::create("pal0", 1400))
        .expect("setns")
        .expect("tun");
    tun.set_nonblocking(true).expect("nonblocking");
    let routes = pair
        .a
        .run(|| PolicyRoutes::install("pal0", &[prefix("fd00:9::/64")]))
        .expect("setns")
        .expect("install");

    let send = |data: &[u8]| {
        let s = pair
            .a
            .udp_socket((std::net::Ipv6Addr::UNSPECIFIED, 0).into())?;
        s.send_to(data, (peer, 9000))
    };
    send(b"v6 unmarked").expect("send");
    let seen = recv_matching(
        &tun,
        |t, b| t.recv(b),
        Duration::from_secs(2),
        |p| p.first().is_some_and(|v| v >> 4 == 6) && p.ends_with(b"v6 unmarked"),
    );
    assert!(
        seen.is_some(),
        "an unmarked IPv6 datagram comes out of the TUN"
    );
    assert!(!arrives(
        &at_peer,
        b"v6 unmarked",
        Duration::from_millis(300)
    ));

    let marked = pair
        .a
        .run(|| IkeSocket::bind_v6(0, FWMARK))
        .expect("setns")
        .expect("bind");
    let any = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0));
    marked
        .send(b"v6 marked", any, (peer, 9000).into())
        .expect("send");
    assert!(
        arrives(&at_peer, b"v6 marked", Duration::from_secs(2)),
        "marked: out of the veth"
    );

    drop(tun);
    let _ = send(b"v6 after the tun");
    assert!(
        !arrives(&at_peer, b"v6 after the tun", Duration::from_millis(500)),
        "blackholed"
    );
    pair.a
        .run(|| routes.remove())
        .expect("setns")
        .expect("remove");
    send(b"v6 clear").expect("send");
    assert!(
        arrives(&at_peer, b"v6 clear", Duration::from_secs(2)),
        "removed: main again"
    );
}
