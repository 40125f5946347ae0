//! Remote identity authorization (spec §4, `authorized_peers`) for a UDP service: a
//! server and two peers on one link, both with SAs to the server. Datagrams from the
//! peer the rule names reach the service; those from the other peer arrive over its SA
//! and are dropped at ALE_AUTH_RECV_ACCEPT, counted as `policy_blocked`; the answers to
//! a flow the server itself starts with that peer pass, as WFP lets replies in on the
//! flow their connect made. Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::bridge::star;
use common::daemon::Daemon;
use netns::root_or_skip;

/// The server (on the bridge), the authorized peer and the other one.
const S: Ipv4Addr = Ipv4Addr::new(10, 212, 0, 254);
const ADMIN: Ipv4Addr = Ipv4Addr::new(10, 212, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 212, 0, 2);
const SERVICE: u16 = 5555;

const AUTH: &str =
    "[auth_sets.psk]\nmethod = \"preshared_key\"\nkey = \"e2e authorization secret\"\n";

/// The server's policy: its UDP service only over IPsec, and only for `ADMIN`, which
/// authenticates with its address (PSK, no configured identity).
fn server_policy() -> String {
    format!(
        "[policy]\nname = \"e2e-authorization\"\n\n{AUTH}\n[[rules]]\nname = \"service\"\n\
         local = \"{S}\"\nremote = \"10.212.0.0/24\"\nprotocol = \"udp\"\n\
         local_ports = [{SERVICE}]\naction = \"require\"\nauth = \"psk\"\n\
         authorized_peers = [\"{ADMIN}\"]\n"
    )
}

/// A peer's policy: the server's service over IPsec.
fn peer_policy(me: Ipv4Addr) -> String {
    format!(
        "[policy]\nname = \"e2e-authorization\"\n\n{AUTH}\n[[rules]]\nname = \"server\"\n\
         local = \"{me}\"\nremote = \"{S}\"\nprotocol = \"udp\"\nremote_ports = [{SERVICE}]\n\
         action = \"require\"\nauth = \"psk\"\n"
    )
}

/// Sends `what` from `from` to `to` every 100 ms until `at` receives a datagram from
/// `from`'s address (packets sent while the SAs are negotiated may be held or lost), or
/// 20 s pass. Returns what arrived.
fn until_received(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, what: &[u8]) -> Vec<u8> {
    let source = from.local_addr().expect("local address");
    let deadline = Instant::now() + Duration::from_secs(20);
    at.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        from.send_to(what, to).expect("send");
        match at.recv_from(&mut buf) {
            Ok((n, src)) if src == source => return buf[..n].to_vec(),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("receive: {e}"),
        }
    }
    panic!("nothing from {source} reached {to} in 20 s");
}

/// Decapsulated packets the daemon's policy refused so far.
fn policy_blocked(d: &Daemon) -> u64 {
    d.stats()
        .global_drops
        .get("policy_blocked")
        .copied()
        .unwrap_or(0)
}

/// Everything `at` receives within `wait`, with the sender's address.
fn drain(at: &UdpSocket, wait: Duration) -> Vec<SocketAddr> {
    at.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let deadline = Instant::now() + wait;
    let mut from = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok((_, src)) = at.recv_from(&mut buf) {
            from.push(src);
        }
    }
    from
}

#[test]
fn only_the_authorized_peer_reaches_a_udp_service_and_answers_to_the_server_pass() {
    if !root_or_skip(
        "only_the_authorized_peer_reaches_a_udp_service_and_answers_to_the_server_pass",
    ) {
        return;
    }
    let (s, peers) = star("az", S, &[ADMIN, OTHER]);
    let (admin, other) = (&peers[0], &peers[1]);

    let server = Daemon::start(&s, "s", &server_policy()).expect("server daemon");
    let d_admin = Daemon::start(admin, "admin", &peer_policy(ADMIN)).expect("admin daemon");
    let d_other = Daemon::start(other, "other", &peer_policy(OTHER)).expect("other daemon");
    let logs = || {
        format!(
            "--- server ---\n{}\n--- admin ---\n{}\n--- other ---\n{}",
            server.log(),
            d_admin.log(),
            d_other.log()
        )
    };

    let service_addr = SocketAddr::from((S, SERVICE));
    let service = s.udp_socket(service_addr).expect("service socket");
    let from_admin = admin
        .udp_socket(SocketAddr::from((ADMIN, 6000)))
        .expect("admin socket");
    let got = until_received(&from_admin, service_addr, &service, b"from admin");
    assert_eq!(got, b"from admin");

    // The other peer negotiates too (its datagrams start it), and its SAs carry them.
    let from_other = other
        .udp_socket(SocketAddr::from((OTHER, 6000)))
        .expect("other socket");
    let before = policy_blocked(&server);
    from_other
        .send_to(b"from other", service_addr)
        .expect("send");
    server.wait_for_sas("SAs with both peers", |sas| {
        sas.len() == 2 && sas.iter().all(|ike| ike.child_sas.len() == 1)
    });
    for _ in 0..20 {
        from_other
            .send_to(b"from other", service_addr)
            .expect("send");
        std::thread::sleep(Duration::from_millis(10));
    }
    let arrived = drain(&service, Duration::from_secs(1));
    assert!(
        !arrived.contains(&from_other.local_addr().expect("address")),
        "the unauthorized peer reached the service: {arrived:?}\n{}",
        logs()
    );
    let blocked = policy_blocked(&server);
    assert!(
        blocked >= before + 20,
        "policy_blocked went from {before} to {blocked}, not by the 20 datagrams sent after \
         the SAs were up\n{}",
        logs()
    );
    let sas = server.sas();
    let with_other = sas
        .iter()
        .find(|ike| ike.remote.starts_with(&OTHER.to_string()))
        .unwrap_or_else(|| panic!("no IKE SA with {OTHER}: {sas:?}"));
    assert!(
        with_other.child_sas[0].inbound.packets >= 20,
        "the datagrams came over the SA and were refused there: {with_other:?}"
    );

    // The server starts a flow with the other peer from its service port: the answers
    // are not inbound connections.
    let echo = other
        .udp_socket(SocketAddr::from((OTHER, 7000)))
        .expect("echo socket");
    let asked = until_received(&service, SocketAddr::from((OTHER, 7000)), &echo, b"ask");
    assert_eq!(asked, b"ask");
    let answer = until_received(&echo, service_addr, &service, b"answer");
    assert_eq!(answer, b"answer", "{}", logs());
    // While a flow the server did not start stays refused.
    let before = policy_blocked(&server);
    from_other
        .send_to(b"from other", service_addr)
        .expect("send");
    assert!(drain(&service, Duration::from_millis(500)).is_empty());
    let blocked = policy_blocked(&server);
    assert_eq!(blocked, before + 1, "{}", logs());
}
