//! Forced UDP encapsulation ([`EndpointConfig::force_udp_encapsulation`],
//! strongSwan's `encap = yes`) over the simulated network, with no NAT in
//! the path: the forcing side sends a NAT_DETECTION_SOURCE_IP no address
//! hashes to, both sides move IKE to port 4500 after IKE_SA_INIT and both
//! CHILD_SAs carry ESP in UDP, whichever side forces it; nobody sends NAT
//! keepalives, as there is no mapping to keep open.

mod common;

use std::time::Duration;

use common::*;
use palisade_esp::UdpEncap;
use palisade_filter::policy::IpsecProposal;
use palisade_ike::nat::nat_hash;
use palisade_ike::{EndpointConfig, Transmit};
use palisade_wire::ikev2::{IkeHeader, exchange_type};

fn forcing(force: bool) -> EndpointConfig {
    EndpointConfig {
        force_udp_encapsulation: force,
        ..EndpointConfig::default()
    }
}

/// A (initiator) and B with the same PSK policy and no NAT between them,
/// A forcing encapsulation if `a`, B if `b`. Runs until both have their
/// CHILD_SA.
fn pair(a: bool, b: bool, seed: u64) -> Net {
    let p = [gcm()];
    let qm = vec![IpsecProposal::esp_aes128_gcm()];
    let mut net = Net::with_configs(
        transport_policy(B, main_mode("k", &p), qm.clone()),
        transport_policy(A, main_mode("k", &p), qm),
        seed,
        forcing(a),
        forcing(b),
    );
    net.acquire();
    net.run(Duration::from_secs(5));
    assert_eq!(children(&net.events_a).len(), 1, "{:?}", net.events_a);
    assert_eq!(children(&net.events_b).len(), 1, "{:?}", net.events_b);
    net
}

/// The IKE messages each side sent, by exchange, with their ports.
fn ike_sent(net: &Net, from_a: bool) -> Vec<(u8, Transmit)> {
    net.log
        .iter()
        .zip(&net.log_at)
        .filter(|((a, _), (_, tx))| *a == from_a && !tx.is_nat_keepalive())
        .map(|((_, bytes), (_, tx))| {
            let header = IkeHeader::parse(bytes).expect("an IKE message");
            (header.exchange_type, tx.clone())
        })
        .collect()
}

/// Both CHILD_SAs are ESP in UDP on port 4500 at both ends, IKE_SA_INIT
/// went over 500 and everything after it over 4500, the keys work.
fn assert_encapsulated(net: &Net) {
    let both = Some(UdpEncap {
        local_port: 4500,
        remote_port: 4500,
    });
    let (ca, cb) = (children(&net.events_a)[0], children(&net.events_b)[0]);
    assert_eq!(ca.udp_encap, both, "A's CHILD_SA");
    assert_eq!(cb.udp_encap, both, "B's CHILD_SA");
    for from_a in [true, false] {
        let sent = ike_sent(net, from_a);
        assert!(sent.len() >= 2, "{sent:?}");
        for (exchange, tx) in sent {
            let port = if exchange == exchange_type::IKE_SA_INIT {
                500
            } else {
                4500
            };
            assert_eq!(
                (tx.local.port(), tx.remote.port()),
                (port, port),
                "exchange {exchange} from A: {from_a}"
            );
        }
    }
    let (ia, ib) = (established(&net.events_a)[0], established(&net.events_b)[0]);
    assert_eq!((ia.local.port(), ia.remote.port()), (4500, 4500));
    assert_eq!((ib.local.port(), ib.remote.port()), (4500, 4500));
    prove_with_esp(ca, cb, net.now);
}

#[test]
fn forced_by_the_initiator_alone_both_child_sas_are_udp_encapsulated() {
    let net = pair(true, false, 61);
    assert_encapsulated(&net);
    let (ia, ib) = (established(&net.events_a)[0], established(&net.events_b)[0]);
    // A knows it fakes; B believes A is behind a NAT, and neither thinks
    // itself translated.
    assert!(ia.nat.forced_encapsulation);
    assert!(!ia.nat.local_behind_nat && !ia.nat.remote_behind_nat);
    assert!(ib.nat.remote_behind_nat && !ib.nat.local_behind_nat);
    assert!(!ib.nat.forced_encapsulation);
}

#[test]
fn forced_by_the_responder_alone_both_child_sas_are_udp_encapsulated() {
    let net = pair(false, true, 62);
    assert_encapsulated(&net);
    let (ia, ib) = (established(&net.events_a)[0], established(&net.events_b)[0]);
    assert!(ia.nat.remote_behind_nat && !ia.nat.local_behind_nat);
    assert!(ib.nat.forced_encapsulation && !ib.nat.local_behind_nat);
}

#[test]
fn forced_by_both_sides_both_child_sas_are_udp_encapsulated() {
    let net = pair(true, true, 63);
    assert_encapsulated(&net);
}

#[test]
fn the_forcing_side_sends_a_source_hash_of_no_address() {
    let net = pair(true, false, 64);
    let (ia, _) = (established(&net.events_a)[0], ());
    let (_, request) = &net.log[0];
    // The true hash of A's address must not be in A's IKE_SA_INIT, the
    // true hash of B's (the destination) must.
    let spi_i = ia.initiator_spi;
    let own = nat_hash(spi_i, 0, addr(A));
    let peer = nat_hash(spi_i, 0, addr(B));
    let contains = |needle: &[u8]| request.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&own), "NAT_DETECTION_SOURCE_IP is faked");
    assert!(contains(&peer), "NAT_DETECTION_DESTINATION_IP is true");
    // Without forcing, it is A's own.
    let honest = pair(false, false, 64);
    let spi_i = established(&honest.events_a)[0].initiator_spi;
    let (_, request) = &honest.log[0];
    let own = nat_hash(spi_i, 0, addr(A));
    assert!(request.windows(own.len()).any(|w| w == own));
}

#[test]
fn without_forcing_or_a_nat_nothing_is_encapsulated_and_ike_stays_on_500() {
    let net = pair(false, false, 65);
    let (ca, cb) = (children(&net.events_a)[0], children(&net.events_b)[0]);
    assert_eq!((ca.udp_encap, cb.udp_encap), (None, None));
    for from_a in [true, false] {
        for (_, tx) in ike_sent(&net, from_a) {
            assert_eq!((tx.local.port(), tx.remote.port()), (500, 500));
        }
    }
    let ia = established(&net.events_a)[0];
    assert!(!ia.nat.any());
}

#[test]
fn forced_encapsulation_sends_no_nat_keepalives() {
    for (a, b, seed) in [(true, false, 66), (false, true, 67)] {
        let mut net = pair(a, b, seed);
        net.run(Duration::from_secs(120));
        assert_eq!(net.a.nat_keepalives_sent(), 0, "A, forcing: {a}");
        assert_eq!(net.b.nat_keepalives_sent(), 0, "B, forcing: {b}");
        assert_eq!((net.a.ike_sas().len(), net.b.ike_sas().len()), (1, 1));
    }
}
