//! A path narrower than what palisaded sends: host `a` reaches `b` through a router
//! whose link to `b` has an MTU of 1,300 bytes, less than an ESP packet of a full TUN
//! packet (1,400 bytes and ESP's overhead).
//!
//! ```text
//!   a 10.201.0.1 ---- 10.201.0.2 r 10.202.0.1 ---- 10.202.0.2 b
//!                                  (MTU 1300 on this link, both ends)
//! ```
//!
//! palisaded tells no inner host of a narrower path, so what it sends must get through
//! without that: it sends IPv4 with DF clear (in transport mode too, and on the NAT-T
//! socket), so the router fragments `a`'s ESP, and `b`, whose own link is the narrow
//! one, cuts its ESP to that link's MTU itself (the raw socket would refuse it, and a
//! segmented UDP send would be refused whole). Before, TCP stalled both ways: `a`'s
//! packets were dropped at the router (DF), `b`'s refused by its kernel (`EMSGSIZE`),
//! and ESP in UDP lost its segmentation offload for good on the first refusal.
//!
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::SocketAddr;

use common::daemon::{Daemon, require_policy, tcp_transfer};
use common::nat::{A, B, Topology};
use netns::root_or_skip;

const NARROW: u16 = 1300;

fn run(settings: &str) {
    let t = Topology::routed(NARROW);
    let policy = |me, peer| require_policy("e2e-pmtu", me, peer, "");
    let da = Daemon::start_with(&t.a, "a", &policy(A, B), settings).expect("daemon a");
    let db = Daemon::start(&t.b, "b", &policy(B, A)).expect("daemon b");
    let logs = || {
        format!(
            "--- a ---\n{}\n{:?}\n--- b ---\n{}\n{:?}",
            da.log(),
            da.stats(),
            db.log(),
            db.stats()
        )
    };
    let ways = [
        (&t.a, &t.b, SocketAddr::from((B, 5201))),
        (&t.b, &t.a, SocketAddr::from((A, 5202))),
    ];
    for (from, at, to) in ways {
        let moved = tcp_transfer(from, at, to, 4 << 20)
            .unwrap_or_else(|e| panic!("TCP -> {to}: {e}\n{}", logs()));
        assert_eq!(moved, 4 << 20, "{}", logs());
    }
    for (d, name) in [(&da, "a"), (&db, "b")] {
        let s = d.stats();
        assert!(
            !s.global_drops.contains_key("send_error"),
            "{name}: the kernel refused sends\n{}",
            logs()
        );
        assert!(
            !d.log().contains("segmentation refused"),
            "{name} lost UDP segmentation\n{}",
            logs()
        );
    }
    // b's own link is the narrow one: b cut its ESP to fit.
    let s = db.stats();
    assert!(s.fragmented > 1000, "{s:?}");
}

#[test]
fn tcp_crosses_a_narrow_link_with_raw_esp() {
    if !root_or_skip("tcp_crosses_a_narrow_link_with_raw_esp") {
        return;
    }
    run("");
}

#[test]
fn tcp_crosses_a_narrow_link_with_esp_in_udp() {
    if !root_or_skip("tcp_crosses_a_narrow_link_with_esp_in_udp") {
        return;
    }
    run("[ike]\nforce_udp_encapsulation = true\n");
}
